"""Issue 21's user-facing promises of the Python API: what ``dir``/``help`` show, the one rule for wide
operands (the same as the CLI's), DRAM bytes and buildable in every summary, unit sanity."""

from __future__ import annotations

import pydoc
import subprocess
import sys
import warnings

import pytest

import codesign
from codesign import AcceleratorConfig, ConfigError, WorkloadError
from codesign.sim.result import design_model_only
from codesign.sweeps import sweep
from codesign.workloads.precision import BitsClippedWarning

PUBLIC = {"simulate", "sweep", "generate", "verify", "synth", "AcceleratorConfig", "load_workload", "NetworkResult"}


def test_dir_and_help_list_the_public_api() -> None:
    names = dir(codesign)
    assert PUBLIC <= set(names)
    assert "TYPE_CHECKING" not in names and "annotations" not in names  # module plumbing is not API
    text = pydoc.render_doc(codesign, renderer=pydoc.plaintext)
    assert "simulate(workload" in text and "class AcceleratorConfig" in text and "sweep(space" in text


def test_import_codesign_stays_lazy() -> None:
    code = ("import sys, codesign; "
            "print(sorted(m for m in ('pandas', 'amaranth', 'codesign.sweeps') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_result_methods_have_docstrings() -> None:
    from codesign.sim.result import LayerResult, NetworkResult

    for cls in (NetworkResult, LayerResult):
        for name, member in vars(cls).items():
            if name.startswith("_") or not (callable(member) or isinstance(member, property)):
                continue
            doc = (member.fget if isinstance(member, property) else member).__doc__
            assert doc, f"{cls.__name__}.{name} has no docstring"


def test_wide_operands_one_rule_in_api_and_cli() -> None:
    """mobilenet_v2 is INT8: on a 4-bit array the API and the CLI refuse it with the same message, and
    the flag the message suggests exists in both (clip_bits=True, --clip-bits)."""
    with pytest.raises(WorkloadError) as e:
        codesign.simulate("mobilenet_v2", AcceleratorConfig(weight_bits=4))
    message = str(e.value)
    assert message.startswith("layer 'conv_stem': weights are 8-bit, wider than the array's weight_bits 4 "
                              "(and 52 more operands)")
    assert "clip_bits=True, --clip-bits" in message
    r = subprocess.run([sys.executable, "-m", "codesign", "simulate", "-w", "mobilenet_v2", "--weight-bits", "4",
                        "-q"], capture_output=True, text=True, check=False)
    assert (r.returncode, r.stderr) == (2, f"codesign simulate: error: {message}\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        api = codesign.simulate("mobilenet_v2", AcceleratorConfig(weight_bits=4), clip_bits=True)
    assert [w.category for w in caught] == [BitsClippedWarning]
    cli = subprocess.run([sys.executable, "-m", "codesign", "simulate", "-w", "mobilenet_v2", "--weight-bits", "4",
                          "--clip-bits", "-q"], capture_output=True, text=True, check=False)
    assert cli.returncode == 0, cli.stderr
    assert f"cycles {api.cycles:,} " in cli.stdout  # the same numbers
    assert api.summary()["clip_bits"] is True and "clipped weights of 53 layers" in api.summary()["clipped"]


def test_sweep_follows_the_same_rule() -> None:
    space = {"workloads": ["ds_cnn_kws"], "axes": {"weight_bits": [4, 8]}}
    with pytest.raises(WorkloadError, match=r"^space: workload 'ds_cnn_kws' on the points with weight_bits 4, "
                                            r"act_bits 8: layer 'conv1': weights are 8-bit"):
        sweep(space, workers=1)
    df = sweep(space, workers=1, clip_bits=True)
    assert df["clipped"].tolist() == [True, False]  # the 4-bit point ran the INT8 weights at 4 bits
    with pytest.warns(BitsClippedWarning, match="clipped weights of 10 layers from 8 to 4 bits"):
        plain = codesign.simulate("ds_cnn_kws", AcceleratorConfig(weight_bits=4), clip_bits=True)
    assert int(df["cycles"][0]) == plain.cycles


def test_summary_has_dram_bytes_and_buildable() -> None:
    r = codesign.simulate("ds_cnn_kws")
    s = r.summary()
    rows = r.to_dataframe()
    assert s["dram_read_bytes"] == rows["dram_read_bytes"].sum()
    assert s["dram_write_bytes"] == rows["dram_write_bytes"].sum()
    assert s["dram_bytes"] == s["dram_read_bytes"] + s["dram_write_bytes"] > 0
    # the default WS W8A8 design is built, and every DS-CNN layer on it (the average pool as its GEMM);
    # ResNet-18's max pool runs on the depthwise engine; without the engine (depthwise: array) on a vector
    # unit the hardware does not build, per layer
    assert s["buildable"] is True and rows["buildable"].all()
    r18 = codesign.simulate("resnet18").to_dataframe()
    assert r18["buildable"].all()
    r18_array = codesign.simulate("resnet18", AcceleratorConfig(depthwise="array", pool_writeback=False)).to_dataframe()
    assert list(r18_array.loc[~r18_array["buildable"], "layer"]) == ["maxpool"]
    assert design_model_only(AcceleratorConfig(zero_handling="skip", skip_pattern="bitmask")).startswith(
        "skip_pattern must be n:m")
    # a residual add fused into the requantized write-back is built beside the vector unit; residency is not
    assert design_model_only(AcceleratorConfig(fusion="eltwise", requantize=True)) == ""
    assert design_model_only(AcceleratorConfig(fusion="full")) == (
        "fusion must be none or eltwise for the generated hardware (full keeps tensors on chip: model-only)")


@pytest.mark.parametrize("table", ["horowitz45", "eyeriss"])
@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_sweep_dram_bytes_equal_the_engines(table: str, dataflow: str) -> None:
    """The fast path's DRAM bytes (recovered from its DRAM energy) equal the engine's byte counts."""
    space = {"workloads": ["mobilenet_v2"], "axes": {"rows": [8, 32], "dataflow": [dataflow]},
             "base": {"energy_table": table, "requantize": dataflow != "is"}}
    df = sweep(space, workers=1)
    for row in df.itertuples():
        r = codesign.simulate("mobilenet_v2", AcceleratorConfig(rows=row.rows, dataflow=dataflow, energy_table=table,
                                                               requantize=dataflow != "is"))
        assert (row.cycles, row.dram_bytes) == (r.cycles, r.dram_bytes)


@pytest.mark.parametrize(("fields", "message"), [
    ({"clock_mhz": 200e6}, "clock_mhz must be at most 10000 (10 GHz), not 200000000.0: clock_mhz is in MHz "
                           "(200 MHz is clock_mhz: 200)"),
    ({"dram_bytes_per_cycle": 1e-6}, "dram_bytes_per_cycle must be at least 0.001, not 1e-06: it is in bytes per "
                                     "clock cycle (a 64-bit bus is 8)"),
    # 16x16 8-bit inputs of one fold = 256 bytes, x2 double-buffered
    ({"input_sram_bytes": 64}, "input_sram_bytes must hold one array word (8-bit inputs of one fold, twice for "
                               "double buffering: 512 bytes) for a 16x16 ws array, not 64: it is in bytes "
                               "(64 KiB is 65536)"),
    # OS keeps a 16 x 16 block of 32-bit accumulators per fold: 1,024 bytes, x2
    ({"dataflow": "os", "output_sram_bytes": 1024}, "output_sram_bytes must hold one array word (32-bit "
     "accumulators of one fold, twice for double buffering: 2048 bytes) for a 16x16 os array, not 1024: it is in "
     "bytes (64 KiB is 65536)"),
])
def test_unit_slips_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as e:
        AcceleratorConfig(**fields)
    assert str(e.value) == message


def test_plausible_extremes_are_accepted() -> None:
    AcceleratorConfig(clock_mhz=10_000, dram_bytes_per_cycle=0.001)
    AcceleratorConfig(input_sram_bytes=512, weight_sram_bytes=512, output_sram_bytes=128)  # exactly one word each
