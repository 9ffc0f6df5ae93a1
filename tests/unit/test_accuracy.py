"""digits_cnn with its real weights: the zoo entry, pruning, PTQ and the integer reference.

The float model's numbers come from the shipped weights (``bench/train_digits_cnn.py`` makes
them); the integer bounds are derived from the float run, not pinned to a quantized figure.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.accuracy import accuracy, load_data
from codesign.cli import main
from codesign.errors import WorkloadError
from codesign.sim.config import AcceleratorConfig
from codesign.workloads import digits, intarith, quantize, trained, zoo
from codesign.workloads.layers import Conv2d
from codesign.workloads.operand import Operand

pytest.importorskip("sklearn")


@pytest.fixture(scope="module")
def tn() -> trained.TrainedNetwork:
    return trained.get("digits_cnn")


@pytest.fixture(scope="module")
def data(tn: trained.TrainedNetwork) -> trained.Dataset:
    return tn.load_dataset()


def test_zoo_entry_is_gemm_layers_only() -> None:
    net = zoo.get("digits_cnn")
    assert [la.kind.value for la in net] == ["conv", "conv", "conv", "linear"]
    # conv1 64 px * K 9 * N 8 + conv2 16 * 72 * 16 + conv3 4 * 144 * 16 + fc 64 * 10
    assert net.macs == 4608 + 18432 + 9216 + 640 == 32896
    assert [(g.m, g.k, g.n) for g in (la.gemm(1) for la in net)] == [(64, 9, 8), (16, 72, 16), (4, 144, 16),
                                                                     (1, 64, 10)]


def test_split_is_the_last_quarter(data: trained.Dataset) -> None:
    assert (len(data.x_train), len(data.x_test)) == (1348, 449)  # 1,797 images; round(1797 / 4) = 449 test
    assert data.x_test.shape[1:] == (1, 8, 8) and data.x_train.max() == 16


def test_shipped_weights_classify_digits(tn: trained.TrainedNetwork, data: trained.Dataset) -> None:
    pred = np.asarray(tn.forward(tn.prepare(data.x_test))).argmax(axis=1)
    # the weights were trained to 92.4 % (415 of 449) on the test split, 100 % on the training split
    assert int((pred == data.y_test).sum()) == 415


def test_int8_is_within_one_point_of_float() -> None:
    r = accuracy("digits_cnn", weight_bits=8, act_bits=8, simulate=False)
    assert abs(r.accuracy - r.float_accuracy) <= 0.01
    assert r.images == 449 and r.float_accuracy == 415 / 449


def test_accuracy_is_deterministic_and_falls_at_low_bits() -> None:
    a = accuracy("digits_cnn", weight_bits=3, act_bits=3, simulate=False)
    b = accuracy("digits_cnn", weight_bits=3, act_bits=3, simulate=False)
    assert a.to_dict() == b.to_dict()
    low = accuracy("digits_cnn", weight_bits=2, act_bits=2, simulate=False)
    # 2-bit signed activations hold only {0, 1} after ReLU: the network is near chance (10 classes)
    assert low.accuracy < a.accuracy < a.float_accuracy and low.accuracy < 0.2


def test_integer_layer_equals_a_direct_convolution(tn: trained.TrainedNetwork, data: trained.Dataset) -> None:
    qn = quantize.quantize_network(tn)
    x = qn.quantize_input(tn.prepare(data.x_test[:2]))
    h1, _ = qn.layers[0].forward(x)
    il = qn.layers[1]  # conv2: 8x8x8 -> 16x4x4, stride 2, padding 1
    layer = il.layer
    assert isinstance(layer, Conv2d)
    y, t = il.forward(h1)
    xp = np.pad(h1, ((0, 0), (0, 0), (1, 1), (1, 1)))
    acc = np.zeros((2, 16, 4, 4), dtype=np.int64)
    for n in range(2):
        for o in range(16):
            for oy in range(4):
                for ox in range(4):
                    win = xp[n, :, 2 * oy : 2 * oy + 3, 2 * ox : 2 * ox + 3]
                    acc[n, o, oy, ox] = int((win * il.weight_q[o]).sum()) + int(il.bias_q[o])
    want = intarith.requantize(acc.transpose(0, 2, 3, 1), il.mult, il.shift, 0, il.clamp_lo, il.clamp_hi)
    assert np.array_equal(y, want.transpose(0, 3, 1, 2))
    assert np.array_equal(t.acc[0], acc.transpose(0, 2, 3, 1).reshape(32, 16))
    assert (il.clamp_lo, il.clamp_hi) == (0, 127)  # ReLU into signed 8-bit: [zero point, qmax]


def test_integer_outputs_track_the_float_layer(tn: trained.TrainedNetwork, data: trained.Dataset) -> None:
    qn = quantize.quantize_network(tn)
    x = tn.prepare(data.x_test[:16])
    xq = qn.quantize_input(x)
    y_float = np.asarray(tn.forward(x, collect=True)[0])
    y_int, _ = qn.layers[0].forward(xq)
    il = qn.layers[0]
    # one layer away from the input: weight and input rounding cost at most a few output steps
    assert np.abs(y_int * il.out_scale - y_float).max() <= 3 * il.out_scale


def test_pruning_by_magnitude_and_n_of_m() -> None:
    w = np.array([[1.0, -4.0, 3.0, 2.0, 5.0, 0.1]])
    # 2:4 along K: [1, -4, 3, 2] keeps -4 and 3; the ragged group [5, 0.1] keeps both
    assert quantize.prune(w, Operand().with_sparsity("2:4")).tolist() == [[0, -4, 3, 0, 5, 0.1]]
    # density 0.5 of 6 weights: the 3 largest |w| (5, -4, 3)
    assert quantize.prune(w, Operand().with_sparsity(0.5)).tolist() == [[0, -4, 3, 0, 5, 0]]
    assert quantize.prune(w, Operand()).tolist() == w.tolist()


def test_measured_density_feeds_the_simulator() -> None:
    cfg = AcceleratorConfig(rows=8, cols=8, zero_handling="gate")
    dense = accuracy("digits_cnn", cfg)
    half = accuracy("digits_cnn", cfg, sparsity="0.5")
    assert half.network is not None
    for layer in half.network:
        assert layer.weights.density == pytest.approx(half.weight_density[layer.name], abs=1e-6)
        assert layer.weights.density <= 0.5 and layer.inputs.density == pytest.approx(
            half.input_density[layer.name], abs=1e-6)
    assert half.simulated["energy_pj"] < dense.simulated["energy_pj"]  # gated MACs on the pruned weights
    nm = accuracy("digits_cnn", cfg, sparsity="2:4")
    assert nm.network is not None and all(la.weights.nm == (2, 4) for la in nm.network)


def test_user_data_npz_gives_the_bundled_numbers(tmp_path, data: trained.Dataset) -> None:
    f = tmp_path / "digits_test.npz"
    np.savez(f, x=data.x_test.reshape(-1, 64), y=data.y_test)
    mine = accuracy("digits_cnn", data=f, simulate=False)
    bundled = accuracy("digits_cnn", simulate=False)
    assert (mine.accuracy, mine.float_accuracy) == (bundled.accuracy, bundled.float_accuracy)
    assert mine.data == "digits_test.npz"


@pytest.mark.parametrize(("arrays", "message"), [
    ({"x": np.zeros((3, 64))}, "data file 'bad.npz' has no array 'y' (arrays: x)"),
    ({"x": np.zeros((3, 64)), "y": np.array([0, 1])}, "data file 'bad.npz': y must be one label per image (3), "
                                                       "not shape [2]"),
    ({"x": np.zeros((2, 64)), "y": np.array([0, 12])}, "data file 'bad.npz': y must be class labels from 0 to 9, "
                                                       "not 12"),
    ({"x": np.zeros((2, 64)), "y": np.array([0.5, 1])}, "data file 'bad.npz': y must be integer class labels, "
                                                        "not float64 values"),
])
def test_bad_data_files(tmp_path, arrays: dict[str, np.ndarray], message: str) -> None:
    f = tmp_path / "bad.npz"
    np.savez(f, **arrays)  # type: ignore[arg-type]
    with pytest.raises(WorkloadError) as e:
        load_data(f, classes=10)
    assert str(e.value) == message


def test_digits_inputs_must_be_8x8() -> None:
    with pytest.raises(WorkloadError, match=r"^digits inputs must be 8x8 images .*not shape \[2, 10\]$"):
        digits.prepare(np.zeros((2, 10)))


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["accuracy", "-w", "digits_cnn", "--preset", "w4a8", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["weight_bits"] == 4 and d["act_bits"] == 8 and d["float_accuracy"] == 415 / 449
    assert 0 <= d["accuracy"] <= 1 and d["cycles"] > 0


@pytest.mark.parametrize(("argv", "message"), [
    (["--weight-bits", "1"], "codesign accuracy: error: weight_bits must be an integer from 2 to 16, not 1\n"),
    (["--act-bits", "17"], "codesign accuracy: error: act_bits must be an integer from 2 to 16, not 17\n"),
    (["--preset", "int7"], "codesign accuracy: error: unknown preset 'int7' (choices: "),
    (["-w", "resnet18"],
     "codesign accuracy: error: workload 'resnet18' has no trained weights (trained: digits_cnn)\n"),
    (["--data", "missing.npz"], "codesign accuracy: error: data file 'missing.npz' does not exist\n"),
])
def test_cli_errors_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    assert main(["accuracy", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_integer_reference_chains_layer_outputs_into_the_next_layer() -> None:
    from codesign.accuracy import integer_reference

    ref = integer_reference("digits_cnn", images=8)
    layers, traces = ref.qnet.layers, ref.run.traces
    assert [t.a.shape for t in traces] == [(1, 512, 9), (1, 128, 72), (1, 32, 144), (1, 8, 64)]  # M = 8 images
    for i in range(len(layers) - 1):
        nxt = layers[i].output_from_gemm(traces[i].out, 8)  # what the hardware writes back, as the next input
        assert np.array_equal(layers[i + 1].gemm_a(nxt), traces[i + 1].a)
    for il, t in zip(layers, traces, strict=True):
        assert np.array_equal(t.acc, t.a @ t.b + il.bias_q.reshape(1, 1, -1))
        assert np.array_equal(t.out, intarith.requantize(t.acc, il.mult, il.shift, il.zero_point, il.clamp_lo,
                                                          il.clamp_hi))
        assert np.abs(t.acc).max() < 2**31  # the 32-bit accumulator of the default config holds every sum
    assert np.array_equal(ref.run.predictions, traces[-1].out[0].argmax(axis=1))
    pairs = ref.gemm_operands()
    assert [(la.name, ops.shape.m, ops.shape.k, ops.shape.n) for la, ops in pairs] == [
        ("conv1", 512, 9, 8), ("conv2", 128, 72, 16), ("conv3", 32, 144, 16), ("fc", 8, 64, 10)]
    assert all(np.array_equal(ops.c + il.bias_q, t.acc) for (_, ops), il, t in zip(pairs, layers, traces, strict=True))
    full = integer_reference("digits_cnn", images=449)
    assert int((full.run.predictions == full.labels).sum()) == accuracy("digits_cnn", simulate=False).correct


def test_onnx_initializers_are_read(tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
                              initializer=[numpy_helper.from_array(w, "w")])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph), str(path))
    got = trained.onnx_weights(path)
    assert list(got) == ["w"] and got["w"].tolist() == w.tolist()
    with pytest.raises(WorkloadError, match=r"^'bad.onnx' is not an ONNX model"):
        (tmp_path / "bad.onnx").write_bytes(b"not a model")
        trained.onnx_weights(tmp_path / "bad.onnx")


def test_finetuning_keeps_the_pruned_zeros_and_recovers_accuracy(tn: trained.TrainedNetwork) -> None:
    ptq = accuracy("digits_cnn", sparsity="2:4", simulate=False)
    tuned = accuracy("digits_cnn", sparsity="2:4", finetune_epochs=3, simulate=False)
    assert tuned.accuracy > ptq.accuracy  # masked fine-tuning wins back part of what pruning lost
    net = zoo.get("digits_cnn")
    from codesign.workloads import presets

    qn = quantize.quantize_network(tn, presets.apply(net, sparsity="2:4"), finetune_epochs=3)
    for il in qn.layers:  # still 2:4 along K: at most 2 non-zeros in every group of 4
        k = il.weight_q.reshape(il.weight_q.shape[0], -1)
        for s in range(0, k.shape[1], 4):
            assert (np.count_nonzero(k[:, s : s + 4], axis=1) <= 2).all()
    with pytest.raises(WorkloadError, match=r"^finetune_epochs must be a non-negative integer, not -1$"):
        quantize.quantize_network(tn, finetune_epochs=-1)
