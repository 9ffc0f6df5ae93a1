"""Compression presets applied by name, per-layer overrides, and their errors."""

from __future__ import annotations

import pytest

from codesign.errors import WorkloadError
from codesign.workloads import zoo
from codesign.workloads.layers import Conv2d, Eltwise, Linear, MatMul, Network
from codesign.workloads.operand import Pattern
from codesign.workloads.presets import PRESETS, apply, get_preset


@pytest.fixture
def llama() -> Network:
    return zoo.get("llama3_2_1b_decode", kv_len=64)


@pytest.fixture
def cnn() -> Network:
    return zoo.get("mobilenet_v3_small")


def test_presets_listed_with_descriptions() -> None:
    for name in ("int8", "w4a8", "w4a16", "binary", "ternary", "2:4", "sparse-0.5", "sparse-0.3", "sparse-0.1"):
        assert PRESETS[name]


def test_int8_everywhere(cnn: Network) -> None:
    out = apply(zoo.get("resnet8_cifar").map_layers(lambda lay: lay.with_operands(
        inputs=lay.inputs.with_bits(16), weights=lay.weights.with_bits(16))), preset="int8")
    assert {(lay.inputs.bits, lay.weights.bits) for lay in out} == {(8, 8)}


def test_w4a8(cnn: Network) -> None:
    out = apply(cnn, preset="w4a8")
    for layer in out:
        assert layer.inputs.bits == 8
        if isinstance(layer, (Conv2d, Linear)):
            assert layer.weights.bits == 4 and layer.weights.signed
    assert out.macs == cnn.macs and out.name == cnn.name


def test_w4a16_weight_only_llm(llama: Network) -> None:
    out = apply(llama, preset="w4a16")
    q = out.layer("self_attn.q_proj")
    assert (q.weights.bits, q.inputs.bits) == (4, 16)
    scores = out.layer("self_attn.scores")  # K cache is an activation: 16 bits, not 4
    assert isinstance(scores, MatMul) and (scores.inputs.bits, scores.weights.bits) == (16, 16)


def test_binary_and_ternary(cnn: Network) -> None:
    b = apply(cnn, preset="binary").layer("conv_stem")
    t = apply(cnn, preset="ternary").layer("conv_stem")
    assert (b.weights.bits, b.weights.signed, b.inputs.bits) == (1, True, 8)
    assert (t.weights.bits, t.weights.signed, t.inputs.bits) == (2, True, 8)


def test_2_4_structured_on_weights_not_on_kv(llama: Network) -> None:
    for out in (apply(llama, preset="2:4"), apply(llama, sparsity="2:4")):
        q = out.layer("mlp.down_proj")
        assert q.weights.pattern is Pattern.NM and q.weights.nm == (2, 4) and q.weights.density == 0.5
        ctx = out.layer("self_attn.context")
        assert ctx.weights.pattern is Pattern.UNSTRUCTURED and ctx.weights.density == 1.0
        assert out.layer("self_attn.scores").inputs.density == 1.0


@pytest.mark.parametrize("density", [0.5, 0.3, 0.1])
def test_unstructured_density(cnn: Network, density: float) -> None:
    for out in (apply(cnn, preset=f"sparse-{density}"), apply(cnn, sparsity=str(density))):
        for layer in out:
            if isinstance(layer, (Conv2d, Linear)):
                assert layer.weights.density == density and layer.weights.pattern is Pattern.UNSTRUCTURED
            else:
                assert layer.weights.density == 1.0


def test_act_density(cnn: Network) -> None:
    out = apply(cnn, preset="int8", act_density=0.4)
    for layer in out:
        assert layer.inputs.density == (0.4 if layer.has_gemm else 1.0)
        assert layer.weights.density == 1.0


def test_mixed_dict_overrides_preset(cnn: Network) -> None:
    mixed = {"conv_stem": 8, "block*.dw": {"weights": 2, "inputs": 4},
             "classifier.3": {"weights": {"bits": 8, "sparsity": "2:4"}, "inputs": {"bits": 8, "density": 0.5}}}
    out = apply(cnn, preset="w4a8", mixed=mixed)
    assert out.layer("conv_stem").weights.bits == 8
    assert out.layer("block1.expand").weights.bits == 4
    dw = out.layer("block5.dw")
    assert (dw.weights.bits, dw.inputs.bits) == (2, 4)
    fc = out.layer("classifier.3")
    assert fc.weights.nm == (2, 4) and fc.weights.bits == 8 and fc.inputs.density == 0.5


def test_mixed_from_yaml_file(tmp_path, cnn: Network) -> None:
    f = tmp_path / "mixed.yaml"
    f.write_text("layers:\n  conv_stem: 8\n  conv_head: {weights: 6}\n")
    out = apply(cnn, preset="w4a8", mixed=f)
    assert [out.layer(n).weights.bits for n in ("conv_stem", "conv_head", "block1.expand")] == [8, 6, 4]
    out2 = apply(cnn, mixed=str(f))
    assert out2.layer("conv_head").weights.bits == 6


def test_eltwise_takes_activation_bits(cnn: Network) -> None:
    out = apply(cnn, preset="w4a16")
    scale = out.layer("block0.se.scale")
    assert isinstance(scale, Eltwise) and (scale.inputs.bits, scale.weights.bits) == (16, 16)


def test_input_network_unchanged(cnn: Network) -> None:
    before = cnn.layers
    apply(cnn, preset="binary", sparsity="2:4", act_density=0.5)
    assert cnn.layers == before


def test_unknown_preset(cnn: Network) -> None:
    with pytest.raises(WorkloadError) as e:
        apply(cnn, preset="int3")
    assert str(e.value) == ("unknown preset 'int3' (choices: int8, w8a8, w4a8, w4a16, w8a16, w2a8, binary, "
                            "ternary, 2:4, w4a8-2:4, sparse-0.5, sparse-0.3, sparse-0.1)")
    assert get_preset("W4A8").weight_bits == 4


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sparsity": "2-4"}, "sparsity must be 'N:M' or a density, not '2-4'"),
    ({"act_density": 1.5}, "act_density must be a number from 0 to 1, not 1.5"),
    ({"mixed": {"nope": 4}}, "mixed-precision map names layer 'nope', which is not in network 'mobilenet_v3_small'"),
    ({"mixed": {"conv_stem": "four"}},
     "mixed-precision entry 'conv_stem' must be weight bits or a mapping of operand -> bits, not 'four'"),
    ({"mixed": {"conv_stem": {"weight": 4}}},
     "mixed-precision entry 'conv_stem': unknown operand 'weight' (expected inputs, weights, outputs)"),
    ({"mixed": {"conv_stem": {"weights": {"bitz": 4}}}},
     "conv_stem.weights: unknown field 'bitz' (expected bits, signed, density, sparsity)"),
    ({"mixed": {"conv_stem": 40}}, "bits must be an integer from 1 to 32, not 40"),
    ({"mixed": [1, 2]}, "mixed-precision map must be a mapping of layer name -> bits, not list"),
])
def test_errors(cnn: Network, kwargs: dict, message: str) -> None:
    with pytest.raises(WorkloadError) as e:
        apply(cnn, **kwargs)
    assert str(e.value) == message


def test_mixed_yaml_errors(tmp_path, cnn: Network) -> None:
    f = tmp_path / "m.yaml"
    f.write_text("layers: {conv_stem: 4}\nextra: 1\n")
    with pytest.raises(WorkloadError, match=r"^m\.yaml: unknown field 'extra' \(expected 'layers'\)$"):
        apply(cnn, mixed=f)
    with pytest.raises(WorkloadError, match=r"^cannot read mixed-precision map '.*missing\.yaml': "):
        apply(cnn, mixed=tmp_path / "missing.yaml")
