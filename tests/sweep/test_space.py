"""Design spaces as data: axes, ranges, constraints, workloads; bad files -> one-line errors, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from codesign.errors import CodesignError
from codesign.space import DesignSpace, expand_axis

from .conftest import SMALL_SPACE, run_cli


def space(**kw: object) -> DesignSpace:
    return DesignSpace.from_dict({"workloads": ["ds_cnn_kws"], **kw}, source="s.yaml")


def test_ranges() -> None:
    assert expand_axis("rows", [8, 16]) == (8, 16)
    assert expand_axis("rows", {"values": [4, 2]}) == (4, 2)
    assert expand_axis("rows", {"start": 8, "stop": 32, "step": 8}) == (8, 16, 24, 32)  # stop inclusive
    assert expand_axis("rows", {"start": 8, "stop": 30, "step": 8}) == (8, 16, 24)
    assert expand_axis("rows", {"start": 8, "stop": 64, "mul": 2}) == (8, 16, 32, 64)
    assert expand_axis("rows", {"start": 8, "stop": 100, "mul": 2}) == (8, 16, 32, 64)
    # float steps without float noise
    assert expand_axis("dram_bytes_per_cycle", {"start": 0.1, "stop": 0.5, "step": 0.1}) == (0.1, 0.2, 0.3, 0.4, 0.5)
    assert expand_axis("rows", 8) == (8,)


def test_issue_example_space() -> None:
    s = space(axes={"dataflow": ["ws", "os"], "rows": [8, 16, 32], "cols": [8, 16, 32], "weight_bits": [4, 8]},
              constraints={"max_pes": 1024})
    assert s.size == 2 * 3 * 3 * 2 == 36
    # every array but 32x32 (1024 PEs is allowed: the bound is inclusive) -> all 36 points
    assert len(s.points()) == 36
    s2 = s.with_(constraints={"max_pes": 256})
    # arrays with <= 256 PEs: 8x8 8x16 8x32 16x8 16x16 32x8 -> 6 of 9, x 2 dataflows x 2 bit-widths = 24
    assert len(s2.points()) == 24
    # row-major numbering in written order: the last axis varies fastest
    assert s.values(0) == {"dataflow": "ws", "rows": 8, "cols": 8, "weight_bits": 4}
    assert s.values(1) == {"dataflow": "ws", "rows": 8, "cols": 8, "weight_bits": 8}
    assert s.values(35) == {"dataflow": "os", "rows": 32, "cols": 32, "weight_bits": 8}
    cfg = s.config(35)
    assert (cfg.rows, cfg.cols, cfg.dataflow.value, cfg.weight_bits) == (32, 32, "os", 8)


def test_sram_and_area_constraints() -> None:
    s = space(axes={"input_sram_bytes": [16384, 65536], "rows": [8, 32]},
              base={"weight_sram_bytes": 16384, "output_sram_bytes": 16384},
              constraints={"max_sram_bytes": 49152})
    assert [s.values(p) for p in s.points()] == [{"input_sram_bytes": 16384, "rows": 8},
                                                 {"input_sram_bytes": 16384, "rows": 32}]
    free = space(axes={"input_sram_bytes": [16384, 65536], "rows": [8, 32]})
    areas = free.areas_mm2(range(free.size))
    # area grows with SRAM and with PEs: the 8-row designs are the two smallest... or SRAM dominates;
    # either way a bound at the second-smallest area keeps exactly two points
    bound = float(sorted(areas)[1])
    s2 = free.with_(constraints={"max_area_mm2": bound})
    assert s2.points() == sorted(int(i) for i in areas.argsort()[:2])


def test_sample_is_seeded_and_sorted() -> None:
    s = space(axes={"rows": {"start": 1, "stop": 40}, "cols": {"start": 1, "stop": 40}})
    a = s.points(sample=50, seed=3)
    assert a == s.points(sample=50, seed=3) and a == sorted(a) and len(set(a)) == 50
    assert a != s.points(sample=50, seed=4)
    assert len(s.points(sample=10_000, seed=0)) == 1600  # larger than the space: every point


def test_workload_presets_and_labels() -> None:
    s = DesignSpace.from_dict({"workloads": ["ds_cnn_kws", {"name": "ds_cnn_kws", "preset": "w4a8",
                                                            "sparsity": "2:4"}], "axes": {"rows": [8]}})
    assert [w.display_name for w in s.workloads] == ["ds_cnn_kws", "ds_cnn_kws[w4a8,2:4]"]
    nets = s.load_workloads()
    dense, sparse = nets["ds_cnn_kws"], nets["ds_cnn_kws[w4a8,2:4]"]
    conv = next(layer for layer in sparse.layers if layer.weights.bits != 8)
    assert conv.weights.bits == 4 and conv.weights.density == 0.5
    assert all(layer.weights.bits == 8 for layer in dense.layers)


def test_python_objects_and_fingerprint() -> None:
    s = DesignSpace(axes={"rows": [8, 16]}, workloads=("ds_cnn_kws",))
    assert DesignSpace.from_dict(s.to_dict()).fingerprint() == s.fingerprint()
    assert s.with_(axes={"rows": [8, 32]}).fingerprint() != s.fingerprint()
    assert s.with_(pareto=("latency_ms", "area_mm2")).fingerprint() == s.fingerprint()  # same rows


BAD = [
    ("workloads: [ds_cnn_kws]\naxes: {rowz: [8]}\n",
     "space.yaml: unknown axis 'rowz' (axes are AcceleratorConfig fields: rows, cols, dataflow, weight_bits, "
     "act_bits, acc_bits, weight_signed, act_signed, input_sram_bytes, weight_sram_bytes, output_sram_bytes, "
     "double_buffered, dram_bytes_per_cycle, dram_latency_cycles, dram_addr_bits, dim_bits, clock_mhz, "
     "zero_handling, energy_table, "
     "vector_lanes, requantize, fusion, mapping, objective, depthwise, depthwise_lanes, depthwise_kernel, "
     "vector_unit, conv_windows, pool_writeback, dw_writeback, residency, pack_products, skip_pattern)"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: {start: 64, stop: 8, step: 8}}\n",
     "space.yaml: axes.rows must be a non-empty range, not {'start': 64, 'stop': 8, 'step': 8}"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: []}\n", "space.yaml: axes.rows must be a non-empty list or range, not []"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8, 16], cols: [8, 16]}\nconstraints: {max_pes: 32}\n",
     "space.yaml: constraints leave no design point: max_pes 32 is below every point's PE count (fewest: 64)"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8, 32], input_sram_bytes: [1024, 65536]}\n"
     "base: {weight_sram_bytes: 1024, output_sram_bytes: 1024}\n"
     "constraints: {max_sram_bytes: 3072, max_area_mm2: 0.000001}\n",
     "space.yaml: constraints leave no design point: max_area_mm2 1e-06 is below every point's area "
     "(smallest: "),
    # 64x16 8-bit weights, double-buffered: 2 x 1,024 bytes, so 1,024 bytes is a unit slip
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8, 64]}\nbase: {weight_sram_bytes: 1024}\n",
     "space.yaml: axes.rows: weight_sram_bytes must hold one array word (8-bit weights of one fold, twice for "
     "double buffering: 2048 bytes) for a 64x16 ws array, not 1024: it is in bytes (64 KiB is 65536)"),
    ("workloads: [ds_cnn_kws]\naxes:\n  rows: [8, 16\n  cols: [4]\n",
     "space.yaml: malformed YAML at line 4: "),  # then PyYAML's wording of the problem
    ("workloads: [ds_cnn_kws]\naxes: {rows: [0, 8]}\n",
     "space.yaml: axes.rows: rows must be a positive integer, not 0"),
    ("workloads: [ds_cnn_kws]\naxes: {dataflow: [ws, xs]}\n",
     "space.yaml: axes.dataflow: dataflow must be one of ws, os, is, not 'xs'"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8, 8]}\n", "space.yaml: axes.rows must not repeat a value, not 8 twice"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: {start: 8, stop: 64, mul: 1}}\n",
     "space.yaml: axes.rows.mul must be a number greater than 1, not 1"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8]}\nconstraints: {max_pes: -4}\n",
     "space.yaml: constraints.max_pes must be a positive integer, not -4"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8]}\nconstraints: {max_pe: 4}\n",
     "space.yaml: unknown constraint 'max_pe' (constraints: max_pes, max_area_mm2, max_sram_bytes)"),
    ("workloads: [ds_cnn_kws]\naxis: {rows: [8]}\n",
     "space.yaml: unknown section 'axis' (sections: workloads, base, axes, constraints, sample, pareto, engine, fpga, "
     "clip_bits, include_model_only)"),
    ("axes: {rows: [8]}\n",
     "space.yaml: workloads must be a non-empty list of workload names or mappings, not None"),
    ("workloads: [no_such_net]\naxes: {rows: [8]}\n",
     "space.yaml: unknown workload 'no_such_net'"),
    ("workloads: [ds_cnn_kws]\naxes: {rows: [8]}\npareto: [latency_ms, speed]\n",
     "space.yaml: pareto metrics must be among cycles, latency_ms, energy_pj, energy_uj, edp, area_mm2, "
     "utilization, peak_dram_bytes_per_cycle, stall_cycles, dram_bytes, not 'speed'"),
    ("- just\n- a list\n", "space.yaml: must hold a mapping of fields, not list"),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_space_files_raise(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "space.yaml"
    p.write_text(text)
    with pytest.raises(CodesignError) as e:
        s = DesignSpace.from_yaml(p)
        s.load_workloads()
        s.points()
    assert str(e.value).startswith(message)
    assert "\n" not in str(e.value)


@pytest.mark.e2e
@pytest.mark.parametrize("index", [0, 1, 3, 5])  # unknown axis, empty range, contradictory, malformed
def test_bad_space_files_cli_one_line_exit_2(tmp_path: Path, index: int) -> None:
    text, message = BAD[index]
    (tmp_path / "space.yaml").write_text(text)
    r = run_cli("sweep", "space.yaml", "-o", "out.parquet", cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr.startswith(f"codesign sweep: error: {message}")
    assert r.stderr.endswith("\n") and r.stderr.count("\n") == 1  # one line, no traceback
    assert r.stdout == ""
    assert not (tmp_path / "out.parquet").exists()
    assert not (tmp_path / "out.parquet.journal").exists()


def test_small_space_fixture_parses() -> None:
    s = DesignSpace.from_dict(__import__("yaml").safe_load(SMALL_SPACE))
    # 3x3 arrays, PEs <= 128: all but 16x16 -> 8 arrays x 2 dataflows x 2 bit-widths = 32 points
    assert s.size == 36 and len(s.points()) == 32
