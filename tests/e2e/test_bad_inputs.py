"""A corpus of bad inputs, each run through the CLI in-process (``codesign.cli.main``).

The promise, checked for every case: exit status 2, exactly one line on stderr (``codesign <cmd>:
error: ...``) naming the field or file and the value, no traceback, and nothing already written
lost (an output file that existed before the command is byte for byte unchanged). A guard alarm
turns a hang into a failure; how long each case takes is measured by ``bench/bad_inputs.py``.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from codesign.cli import main

pytestmark = pytest.mark.e2e

# -- file contents -----------------------------------------------------------------------------

# "billion laughs": 9 levels of 9 aliases expand to 9^9 = 387 million strings
BOMB = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"{c}: &{c} [" + ",".join(["*" + p] * 9) + "]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
CONTENTS: dict[str, bytes] = {
    "binary": bytes(range(256)) * 8,
    "nul": b"rows: 8\x00\n",
    "latin1": "rows: 8\n# caf\xe9\n".encode("latin-1"),
    "utf16": "rows: 8\n".encode("utf-16"),
    "garbage": b"}}}{{{ ::: ]]][[[ \n\t- - -: :",
    "empty": b"",
    "scalar": b"42\n",
    "list": b"- 1\n- 2\n",
    "bomb": BOMB.encode(),
    "recursive": b"&a [*a, *a]\n",
    "duplicate": b"rows: 8\ncols: 8\nrows: 16\n",
    "deep": b"[" * 5000 + b"]" * 5000,
    "tabs": b"rows:\t- 8\n",
    "unclosed": b"rows: [8, 16\n",
    "huge_int": b"rows: " + b"9" * 5000 + b"\n",
}
# contents that are a valid YAML mapping for a space/network/config but make no sense there
SEMANTIC_ONLY = {"empty"}


@dataclass
class Case:
    argv: list[str]
    files: dict[str, bytes] = field(default_factory=dict)
    expect: str = ""  # a fragment the error line must contain (field, value or file name)


def _config_cases() -> Iterator[tuple[str, Case]]:
    for kind, data in CONTENTS.items():
        if kind in SEMANTIC_ONLY:
            continue  # an empty config is the default config
        yield f"config-{kind}", Case(["simulate", "-w", "gemm:8,8,8", "--config", "{d}/accel.yaml", "-q"],
                                     {"accel.yaml": data}, "accel.yaml")


def _other_command_config_cases() -> Iterator[tuple[str, Case]]:
    """generate, synth and verify read the same --config: refused before anything is built."""
    for kind in ("binary", "latin1", "bomb", "duplicate"):
        for argv in (["generate", "-o", "{d}/gen"], ["synth", "--target", "ecp5-25k"], ["verify", "--gemm", "4,4,4"]):
            yield f"config-{argv[0]}-{kind}", Case([*argv, "--config", "{d}/accel.yaml"],
                                                   {"accel.yaml": CONTENTS[kind]}, "accel.yaml")


def _space_cases() -> Iterator[tuple[str, Case]]:
    for kind, data in CONTENTS.items():
        yield f"space-{kind}", Case(["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                                    {"space.yaml": data}, "space.yaml")


def _network_cases() -> Iterator[tuple[str, Case]]:
    for kind, data in CONTENTS.items():
        for cmd in (["simulate", "-q", "-w"], ["workload", "show"]):
            yield f"network-{cmd[0]}-{kind}", Case([*cmd, "{d}/net.yaml"], {"net.yaml": data}, "net.yaml")


def _mixed_cases() -> Iterator[tuple[str, Case]]:
    for kind, data in CONTENTS.items():
        if kind == "empty":
            continue
        yield f"mixed-{kind}", Case(["workload", "show", "ds_cnn_kws", "--mixed", "{d}/bits.yaml"],
                                    {"bits.yaml": data}, "bits.yaml")


def _csv_cases() -> Iterator[tuple[str, Case]]:
    for kind in ("binary", "nul", "latin1", "utf16", "garbage", "empty", "deep"):
        for cmd in (["simulate", "-q", "-w"], ["workload", "show"]):
            yield f"csv-{cmd[0]}-{kind}", Case([*cmd, "{d}/topo.csv"], {"topo.csv": CONTENTS[kind]}, "topo.csv")


def _report_cases() -> Iterator[tuple[str, Case]]:
    for kind in ("binary", "nul", "latin1", "garbage", "empty"):
        for name in ("r.parquet", "r.csv", "r.json"):
            yield f"report-{name}-{kind}", Case(["report", "{d}/" + name, "-o", "{d}/rep"],
                                                {name: CONTENTS[kind]}, name)


SPACE_HEAD = "workloads: [ds_cnn_kws]\n"
SPACES = {
    "1e12-points": ("axes:\n  rows: {start: 1, stop: 1000000, step: 1}\n  cols: {start: 1, stop: 1000000}\n",
                    "at most"),
    "1e12-product": ("axes:\n" + "".join(f"  {f}: {{start: 1, stop: 64}}\n" for f in
                                          ("rows", "cols", "weight_bits", "act_bits", "acc_bits",
                                           "dram_latency_cycles", "vector_lanes")), "points, not"),
    "tiny-step": ("axes:\n  clock_mhz: {start: 100, stop: 200, step: 1.0e-9}\n", "axes.clock_mhz"),
    "subnormal-step": ("axes:\n  clock_mhz: {start: 100, stop: 200, step: 5.0e-324}\n", "axes.clock_mhz"),
    "tiny-mul": ("axes:\n  rows: {start: 1, stop: 1000000, mul: 1.0000000001}\n", "axes.rows"),
    "zero-step": ("axes:\n  rows: {start: 1, stop: 8, step: 0}\n", "axes.rows.step"),
    "neg-step": ("axes:\n  rows: {start: 1, stop: 8, step: -1}\n", "axes.rows.step"),
    "inf-stop": ("axes:\n  rows: {start: 1, stop: .inf}\n", "axes.rows.stop"),
    "nan-start": ("axes:\n  rows: {start: .nan, stop: 8}\n", "axes.rows.start"),
    "mul-one": ("axes:\n  rows: {start: 1, stop: 8, mul: 1}\n", "axes.rows.mul"),
    "empty-range": ("axes:\n  rows: {start: 8, stop: 1}\n", "axes.rows"),
    "unknown-axis": ("axes:\n  rowz: [4]\n", "rowz"),
    "bad-value": ("axes:\n  rows: [4, -4]\n", "-4"),
    "dup-value": ("axes:\n  rows: [4, 4]\n", "rows"),
    "bad-dataflow": ("axes:\n  dataflow: [ws, xs]\n", "xs"),
    "empty-axes": ("axes: {}\n", "axes"),
    "no-axes": ("base: {rows: 4}\n", "axes"),
    "axis-and-base": ("base: {rows: 4}\naxes:\n  rows: [8]\n", "base.rows"),
    "bad-constraint": ("axes:\n  rows: [4]\nconstraints: {max_pes: -1}\n", "max_pes"),
    "unknown-constraint": ("axes:\n  rows: [4]\nconstraints: {max_luts: 1}\n", "max_luts"),
    "no-feasible": ("axes:\n  rows: [64]\nconstraints: {max_pes: 2}\n", "max_pes"),
    "sample-zero": ("axes:\n  rows: [4]\nsample: 0\n", "sample"),
    "sample-bad": ("axes:\n  rows: [4]\nsample: {n: 2, seeds: 1}\n", "sample"),
    "bad-engine": ("axes:\n  rows: [4]\nengine: warp\n", "warp"),
    "bad-pareto": ("axes:\n  rows: [4]\npareto: [latency_ms]\n", "pareto"),
    "bad-pareto-metric": ("axes:\n  rows: [4]\npareto: [latency_ms, joy]\n", "joy"),
    "unknown-section": ("axes:\n  rows: [4]\nextra: 1\n", "extra"),
    "bad-fpga": ("axes:\n  rows: [4]\nfpga: virtex9\n", "virtex9"),
    "axis-dict-bad": ("axes:\n  rows: {begin: 1}\n", "axes.rows"),
    "axis-object": ("axes:\n  rows: {values: {a: 1}}\n", "axes.rows"),
    "key-int": ("axes:\n  1: [4]\n", "1"),
}
WORKLOADS = {
    "no-workloads": ("workloads: []\naxes:\n  rows: [4]\n", "workloads"),
    "unknown-zoo": ("workloads: [resnet9000]\naxes:\n  rows: [4]\n", "resnet9000"),
    "missing-file": ("workloads: [nothere.yaml]\naxes:\n  rows: [4]\n", "nothere.yaml"),
    "bad-preset": ("workloads: [{name: ds_cnn_kws, preset: w3a3}]\naxes:\n  rows: [4]\n", "w3a3"),
    "bad-key": ("workloads: [{name: ds_cnn_kws, bits: 4}]\naxes:\n  rows: [4]\n", "bits"),
    "bad-batch": ("workloads: [{name: ds_cnn_kws, batch: 0}]\naxes:\n  rows: [4]\n", "batch"),
    "twice": ("workloads: [ds_cnn_kws, ds_cnn_kws]\naxes:\n  rows: [4]\n", "twice"),
    "binary-network": ("workloads: [net.yaml]\naxes:\n  rows: [4]\n", "net.yaml"),
    "binary-csv": ("workloads: [topo.csv]\naxes:\n  rows: [4]\n", "topo.csv"),
}


def _space_content_cases() -> Iterator[tuple[str, Case]]:
    for name, (body, expect) in SPACES.items():
        yield f"space-content-{name}", Case(["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                                            {"space.yaml": (SPACE_HEAD + body).encode()}, expect)
    for name, (body, expect) in WORKLOADS.items():
        files = {"space.yaml": body.encode(), "net.yaml": CONTENTS["binary"], "topo.csv": CONTENTS["latin1"]}
        yield f"space-workload-{name}", Case(["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                                             files, expect)


NETWORKS = {
    "matmul-mismatch": ("layers:\n  - {type: matmul, name: qk, a_shape: [64, 32], b_shape: [16, 64]}\n", "b_shape"),
    "matmul-shape-vs-k": ("layers:\n  - {type: matmul, name: qk, k: 8, a_shape: [64, 32], b_shape: [32, 64]}\n",
                          "k"),
    "matmul-shape-rank": ("layers:\n  - {type: matmul, name: qk, a_shape: [64], b_shape: [64, 2]}\n", "a_shape"),
    "neg-channels": ("layers:\n  - {type: linear, name: fc, in_features: -3, out_features: 4}\n", "-3"),
    "unknown-type": ("layers:\n  - {type: lstm, name: x}\n", "lstm"),
    "unknown-field": ("layers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4, biass: 1}\n", "biass"),
    "no-name": ("layers:\n  - {type: linear, in_features: 3, out_features: 4}\n", "name"),
    "no-layers": ("name: x\nlayers: []\n", "layers"),
    "twice": ("layers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4}\n"
              "  - {type: linear, name: fc, in_features: 4, out_features: 4}\n", "fc"),
    "bad-bits": ("layers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4, weights: {bits: 0}}\n",
                 "bits"),
    "bad-density": ("layers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4, "
                    "weights: {density: 1.5}}\n", "1.5"),
    "bad-nm": ("layers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4, "
               "weights: {sparsity: '5:4'}}\n", "5:4"),
    "bad-batch": ("batch: -1\nlayers:\n  - {type: linear, name: fc, in_features: 3, out_features: 4}\n", "-1"),
    "layer-scalar": ("layers: [3]\n", "layer 0"),
    "dup-layer-key": ("layers:\n  - {type: linear, name: fc, in_features: 3, in_features: 4, out_features: 4}\n",
                      "in_features"),
}


def _network_content_cases() -> Iterator[tuple[str, Case]]:
    for name, (body, expect) in NETWORKS.items():
        yield f"network-content-{name}", Case(["workload", "show", "{d}/net.yaml"], {"net.yaml": body.encode()},
                                              expect)


GOOD_SPACE = b"workloads: [ds_cnn_kws]\naxes:\n  rows: [4, 8]\n"
FLAGS = {
    # conflicting or no-effect flags
    "gating-vs-skip": (["generate", "--gating", "--zero-handling", "skip", "-o", "{d}/gen"], "--gating"),
    "input-shape-zoo": (["simulate", "-w", "resnet18", "--input-shape", "1,3,224,224", "-q"], "--input-shape"),
    "input-shape-yaml": (["workload", "show", "{d}/space.yaml", "--input-shape", "1,3,8,8"], "--input-shape"),
    "skip-unsupported-zoo": (["workload", "show", "resnet18", "--skip-unsupported"], "--skip-unsupported"),
    "arg-on-gemm": (["workload", "show", "gemm:4,4,4", "--arg", "width=2"], "--arg"),
    "sparsity-dense": (["simulate", "-w", "resnet18", "--sparsity", "2:4", "-q"], "zero_handling none"),
    "act-density-dense": (["simulate", "-w", "resnet18", "--act-density", "0.5", "-q"], "--act-density"),
    "preset-sparse-dense": (["simulate", "-w", "resnet18", "--preset", "2:4", "-q"], "--preset 2:4"),
    "engine-scalesim": (["simulate", "-w", "resnet18", "--timing", "scalesim", "--engine", "closed_form", "-q"],
                        "--engine"),
    "seed-no-sample": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--seed", "3", "--no-progress"],
                       "--seed"),
    "workers-with-cluster": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--scheduler",
                              "tcp://127.0.0.1:9", "--workers", "2", "--no-progress"], "--workers"),
    "workload-no-action": (["workload"], "action"),
    # bad values
    "rows-negative": (["simulate", "-w", "gemm:8,8,8", "--rows", "-4", "-q"], "-4"),
    "rows-text": (["simulate", "-w", "gemm:8,8,8", "--rows", "many", "-q"], "many"),
    "rows-float": (["simulate", "-w", "gemm:8,8,8", "--rows", "2.5", "-q"], "2.5"),
    "dataflow": (["simulate", "-w", "gemm:8,8,8", "--dataflow", "xs", "-q"], "xs"),
    "zero-handling": (["simulate", "-w", "gemm:8,8,8", "--zero-handling", "maybe", "-q"], "maybe"),
    "clock-nan": (["simulate", "-w", "gemm:8,8,8", "--clock-mhz", "nan", "-q"], "nan"),
    "clock-inf": (["simulate", "-w", "gemm:8,8,8", "--clock-mhz", "inf", "-q"], "inf"),
    "bandwidth-zero": (["simulate", "-w", "gemm:8,8,8", "--dram-bytes-per-cycle", "0", "-q"], "0"),
    "weight-bits-99": (["simulate", "-w", "gemm:8,8,8", "--weight-bits", "99", "-q"], "99"),
    "energy-table": (["simulate", "-w", "gemm:8,8,8", "--energy-table", "nope", "-q"], "nope"),
    "gemm-short": (["simulate", "-w", "gemm:8,8", "-q"], "gemm:8,8"),
    "gemm-zero": (["simulate", "-w", "gemm:0,8,8", "-q"], "gemm:0,8,8"),
    "unknown-zoo": (["simulate", "-w", "resnet9000", "-q"], "resnet9000"),
    "missing-file": (["simulate", "-w", "{d}/nothere.yaml", "-q"], "nothere.yaml"),
    "missing-onnx": (["simulate", "-w", "{d}/nothere.onnx", "-q"], "nothere.onnx"),
    "garbage-onnx": (["simulate", "-w", "{d}/garbage.onnx", "-q"], "garbage.onnx"),
    "binary-onnx": (["workload", "show", "{d}/binary.onnx"], "binary.onnx"),
    "batch-zero": (["simulate", "-w", "resnet18", "--batch", "0", "-q"], "0"),
    "arg-bad": (["simulate", "-w", "mobilenet_v2", "--arg", "width", "-q"], "width"),
    "arg-unknown": (["simulate", "-w", "mobilenet_v2", "--arg", "depth=3", "-q"], "depth"),
    "preset-unknown": (["simulate", "-w", "resnet18", "--preset", "w3a3", "-q"], "w3a3"),
    "sparsity-bad": (["simulate", "-w", "resnet18", "--sparsity", "5:4", "--zero-handling", "gate", "-q"], "5:4"),
    "act-density-bad": (["simulate", "-w", "resnet18", "--act-density", "2", "--zero-handling", "gate", "-q"], "2"),
    "mixed-missing": (["simulate", "-w", "resnet18", "--mixed", "{d}/nothere.yaml", "-q"], "nothere.yaml"),
    "config-missing": (["simulate", "-w", "resnet18", "--config", "{d}/nothere.yaml", "-q"], "nothere.yaml"),
    "config-dir": (["simulate", "-w", "resnet18", "--config", "{d}", "-q"], "directory"),
    "config-unknown-field": (["simulate", "-w", "gemm:8,8,8", "--config", "{d}/bad_config.yaml", "-q"], "rowz"),
    "timing": (["simulate", "-w", "resnet18", "--timing", "exact"], "exact"),
    "engine": (["simulate", "-w", "resnet18", "--engine", "warp"], "warp"),
    "fpga-target": (["simulate", "-w", "gemm:8,8,8", "--fpga", "virtex9", "-q"], "virtex9"),
    # outputs that cannot be written (checked before any work)
    "out-parent-file": (["simulate", "-w", "gemm:8,8,8", "-o", "{d}/existing.txt/r.csv", "-q"], "existing.txt"),
    "out-dir": (["simulate", "-w", "gemm:8,8,8", "-o", "{d}/adir.csv", "-q"], "adir.csv"),
    "out-suffix": (["simulate", "-w", "gemm:8,8,8", "-o", "{d}/r.xlsx", "-q"], "r.xlsx"),
    "out-unwritable": (["simulate", "-w", "gemm:8,8,8", "-o", "/proc/codesign-r.csv", "-q"], "/proc"),
    "sweep-out-parent-file": (["sweep", "{d}/space.yaml", "-o", "{d}/existing.txt/r.parquet", "--no-progress"],
                              "existing.txt"),
    "sweep-out-dir": (["sweep", "{d}/space.yaml", "-o", "{d}/adir.csv", "--no-progress"], "adir.csv"),
    "sweep-out-missing-dir": (["sweep", "{d}/space.yaml", "-o", "{d}/no/such/r.parquet", "--no-progress"], "no"),
    "sweep-out-suffix": (["sweep", "{d}/space.yaml", "-o", "{d}/r.json", "--no-progress"], "r.json"),
    "sweep-out-unwritable": (["sweep", "{d}/space.yaml", "-o", "/proc/codesign-r.parquet", "--no-progress"],
                             "/proc"),
    "sweep-existing-journal": (["sweep", "{d}/space.yaml", "-o", "{d}/existing.parquet", "--no-progress"],
                               "journal"),
    "sweep-foreign-journal": (["sweep", "{d}/space.yaml", "-o", "{d}/existing.parquet", "--resume",
                               "--no-progress"], "journal"),
    "report-out-file": (["report", "{d}/good.json", "-o", "{d}/existing.txt"], "existing.txt"),
    "report-missing": (["report", "{d}/nothere.parquet"], "nothere.parquet"),
    "report-suffix": (["report", "{d}/existing.txt"], "existing.txt"),
    "report-point": (["report", "{d}/good.parquet", "-o", "{d}/rep", "--point", "99999"], "99999"),
    "report-workload": (["report", "{d}/good.parquet", "-o", "{d}/rep", "--workload", "lenet"], "lenet"),
    # schedulers
    "scheduler-garbage": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--scheduler", "garbage",
                           "--no-progress"], "garbage"),
    "scheduler-port": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--scheduler", "tcp://h:123456",
                        "--no-progress"], "123456"),
    "scheduler-binary": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--scheduler", "\x7f\x01://:",
                          "--no-progress"], "scheduler"),
    "scheduler-refused": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--scheduler", "tcp://127.0.0.1:9",
                           "--no-progress"], "cannot reach"),
    "sweep-pareto": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--pareto", "joy,fun", "--no-progress"],
                     "joy"),
    "sweep-workers": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--workers", "0"], "0"),
    "sweep-sample": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--sample", "-1"], "-1"),
    "sweep-engine": (["sweep", "{d}/space.yaml", "-o", "{d}/out.parquet", "--engine", "warp"], "warp"),
    "sweep-missing-space": (["sweep", "{d}/nothere.yaml", "-o", "{d}/out.parquet"], "nothere.yaml"),
    "synth-target": (["synth", "--target", "virtex9"], "virtex9"),
    "unknown-command": (["simulat"], "simulat"),
}


def _flag_cases() -> Iterator[tuple[str, Case]]:
    for name, (argv, expect) in FLAGS.items():
        files = {"space.yaml": GOOD_SPACE, "bad_config.yaml": b"rowz: 4\n", "garbage.onnx": CONTENTS["garbage"],
                 "binary.onnx": CONTENTS["binary"]}
        yield f"flag-{name}", Case(list(argv), files, expect)


TOPO = b"Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n"
HOROWITZ = (Path(__file__).resolve().parents[2] / "sim" / "data").glob("*/horowitz45.yaml")
TABLE = next(iter(HOROWITZ)).read_bytes()
# issue 21: new flags and fields (config, clip_bits, include_model_only, unit sanity, SCALE-Sim cells)
NEW: dict[str, tuple[list[str], dict[str, bytes], str]] = {
    "config-point-missing": (["config", "{d}/good.parquet", "--point", "99999"], {}, "99999"),
    "config-point-negative": (["config", "{d}/good.parquet", "--point", "-1"], {}, "-1"),
    "config-point-text": (["config", "{d}/good.parquet", "--point", "first"], {}, "first"),
    "config-no-point": (["config", "{d}/good.parquet"], {}, "--point"),
    "config-out-suffix": (["config", "{d}/good.parquet", "--point", "0", "-o", "{d}/p.json"], {}, "p.json"),
    "config-results-missing": (["config", "{d}/nothere.parquet", "--point", "0"], {}, "nothere.parquet"),
    "config-results-binary": (["config", "{d}/r.csv", "--point", "0"], {"r.csv": CONTENTS["binary"]}, "r.csv"),
    "config-no-space": (["config", "{d}/plain.csv", "--point", "0"], {"plain.csv": b"point,workload,cycles\n0,x,1\n"},
                        "design space"),
    "config-csv-bad-meta": (["config", "{d}/m.csv", "--point", "0"],
                            {"m.csv": b"#codesign.sweep {not json\npoint,workload\n0,x\n"}, "m.csv"),
    "simulate-wide-operands": (["simulate", "-w", "ds_cnn_kws", "--weight-bits", "4", "-q"], {}, "--clip-bits"),
    "api-flag-clip-bits-value": (["simulate", "-w", "ds_cnn_kws", "--clip-bits", "yes", "-q"], {}, "yes"),
    "sweep-wide-operands": (["sweep", "{d}/s.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                            {"s.yaml": b"workloads: [ds_cnn_kws]\naxes: {weight_bits: [4, 8]}\n"}, "clip_bits"),
    "sweep-clip-bits-value": (["sweep", "{d}/s.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                              {"s.yaml": b"workloads: [ds_cnn_kws]\naxes: {rows: [4]}\nclip_bits: maybe\n"},
                              "clip_bits"),
    "sweep-include-model-only-value": (["sweep", "{d}/s.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                                       {"s.yaml": b"workloads: [ds_cnn_kws]\naxes: {rows: [4]}\n"
                                                  b"include_model_only: 3\n"}, "include_model_only"),
    "report-include-model-only-missing": (["report", "{d}/nothere.csv", "--include-model-only"], {}, "nothere.csv"),
    "clock-in-hz": (["simulate", "-w", "gemm:8,8,8", "--clock-mhz", "200000000", "-q"], {}, "clock_mhz"),
    "clock-in-hz-config": (["simulate", "-w", "gemm:8,8,8", "--config", "{d}/a.yaml", "-q"],
                           {"a.yaml": b"clock_mhz: 200000000\n"}, "200000000"),
    "sram-in-kib": (["simulate", "-w", "gemm:8,8,8", "--config", "{d}/a.yaml", "-q"],
                    {"a.yaml": b"input_sram_bytes: 64\n"}, "input_sram_bytes"),
    "output-sram-tiny": (["generate", "--config", "{d}/a.yaml", "-o", "{d}/gen"],
                         {"a.yaml": b"output_sram_bytes: 16\n"}, "output_sram_bytes"),
    "bandwidth-per-second": (["simulate", "-w", "gemm:8,8,8", "--dram-bytes-per-cycle", "1e-6", "-q"], {},
                             "dram_bytes_per_cycle"),
    "sweep-clock-axis": (["sweep", "{d}/s.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                         {"s.yaml": b"workloads: [ds_cnn_kws]\naxes: {clock_mhz: [200, 2.0e+8]}\n"}, "clock_mhz"),
    "sweep-sram-too-small": (["sweep", "{d}/s.yaml", "-o", "{d}/out.parquet", "--no-progress"],
                             {"s.yaml": b"workloads: [ds_cnn_kws]\naxes: {rows: [8, 64]}\n"
                                        b"base: {weight_sram_bytes: 1024}\n"}, "weight_sram_bytes"),
    "energy-table-bad-number": (["simulate", "-w", "gemm:8,8,8", "--energy-table", "{d}/t.yaml", "-q"],
                                {"t.yaml": TABLE.replace(b"mult_pj: 0.2 ", b"mult_pj: 0.2x")}, "mac.mult_pj"),
    "energy-table-negative": (["simulate", "-w", "gemm:8,8,8", "--energy-table", "{d}/t.yaml", "-q"],
                              {"t.yaml": TABLE.replace(b"dram_pj_per_bit: 20.3", b"dram_pj_per_bit: -1")},
                              "dram_pj_per_bit"),
    "scalesim-huge-layer": (["simulate", "-w", "{d}/t.csv", "-q"],
                            {"t.csv": TOPO + b"huge, 100000000, 100000000, 3, 3, 3, 8, 1,\n"}, "IFMAP Height"),
    "scalesim-huge-gemm": (["workload", "show", "{d}/t.csv"],
                           {"t.csv": b"Layer name, M, N, K,\ng, 99999999, 8, 8,\n"}, "99,999,999"),
    "scalesim-unbalanced-quote": (["workload", "show", "{d}/t.csv"],
                                  {"t.csv": TOPO + b'"conv1, 8, 8, 3, 3, 3, 8, 1,\n'}, "quote"),
    "scalesim-inner-quote": (["workload", "show", "{d}/t.csv"],
                             {"t.csv": TOPO + b'con"v1, 8, 8, 3, 3, 3, 8, 1,\n'}, "quote"),
    "scalesim-batch-differs": (["workload", "show", "{d}/t.csv"],
                               {"t.csv": TOPO.replace(b"Strides,", b"Strides, Batch Size,")
                                + b"a, 8, 8, 3, 3, 3, 8, 1, 1,\nb, 8, 8, 3, 3, 3, 8, 1, 2,\n"}, "Batch Size"),
    "scalesim-batch-zero": (["workload", "show", "{d}/t.csv"],
                            {"t.csv": TOPO.replace(b"Strides,", b"Strides, Batch Size,")
                             + b"a, 8, 8, 3, 3, 3, 8, 1, 0,\n"}, "Batch Size"),
    "workload-json-and-yaml": (["workload", "show", "ds_cnn_kws", "--json", "--yaml"], {}, "--yaml"),
    "synth-no-progress-bad-config": (["synth", "--target", "ecp5-25k", "--no-progress", "--clock-mhz", "1e9"], {},
                                     "clock_mhz"),
}


def _new_cases() -> Iterator[tuple[str, Case]]:
    for name, (argv, files, expect) in NEW.items():
        yield f"new-{name}", Case(list(argv), dict(files), expect)


GENERATORS = (_config_cases, _other_command_config_cases, _space_cases, _network_cases, _mixed_cases, _csv_cases,
              _report_cases, _space_content_cases, _network_content_cases, _flag_cases, _new_cases)
CASES = dict(item for gen in GENERATORS for item in gen())


@pytest.fixture(scope="module")
def good_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A valid sweep table and simulate result, for the cases that get the other arguments wrong."""
    import codesign
    from codesign.cli.simulate import write_result

    d = tmp_path_factory.mktemp("good")
    codesign.sweep({"workloads": ["ds_cnn_kws"], "axes": {"rows": [4, 8]}}, workers=1, output=d / "good.parquet")
    write_result(codesign.simulate("ds_cnn_kws"), d / "good.json")
    return {"good.parquet": (d / "good.parquet").read_bytes(), "good.json": (d / "good.json").read_bytes()}


@contextlib.contextmanager
def _hang_guard(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run_case(case: Case, d: Path, good: dict[str, bytes]) -> tuple[int, str, dict[str, bytes]]:
    """Write the case's files into ``d`` (with files a command must not destroy), run it, return
    (exit status, stderr, the files that existed before the run)."""
    (d / "existing.txt").write_text("precious\n")
    (d / "adir.csv").mkdir(exist_ok=True)
    (d / "out.parquet").write_bytes(b"an earlier output that a failed run must not lose\n")
    (d / "existing.parquet").write_bytes(b"another earlier output\n")
    (d / "existing.parquet.journal").write_text('{"journal": "codesign.sweep", "fingerprint": "0"}\n')
    for name, data in {**good, **case.files}.items():
        (d / name).write_bytes(data)
    before = {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()}
    argv = [a.replace("{d}", str(d)) for a in case.argv]
    with _hang_guard(120):
        try:
            status = main(argv)
        except SystemExit as e:  # argparse usage errors
            status = e.code if isinstance(e.code, int) else 1
    return status, "", before


def test_corpus_size() -> None:
    assert len(CASES) >= 150 + len(NEW), len(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_meets_the_promise(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     good_results: dict[str, bytes]) -> None:
    case = CASES[name]
    status, _, before = run_case(case, tmp_path, good_results)
    err = capsys.readouterr().err
    assert status == 2, f"exit status {status}, stderr: {err}"
    assert err.count("\n") == 1 and err.endswith("\n"), f"not one line: {err!r}"
    assert err.startswith("codesign"), err
    assert ": error: " in err and "Traceback" not in err, err
    assert case.expect in err, f"{case.expect!r} not named in: {err}"
    for fname, data in before.items():  # nothing already written is lost
        assert (tmp_path / fname).read_bytes() == data, f"{fname} changed"
