"""``codesign verify --network`` on a network the one-start program cannot run, and ``generate --network`` on a
design without the sequencer: exit status 2 and one line naming the layer (or field) and why, before anything
is built or simulated."""

from __future__ import annotations

import pytest

from codesign.cli import main

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("argv", "line"), [
    (["verify", "--workload", "resnet8_cifar", "--network", "--rows", "8", "--cols", "8", "--no-conv-windows"],
     "codesign verify: error: layer 'stack1.conv1' cannot run from one start: its plan reads im2col (a 3x3 "
     "convolution, stride 1x1), which the host lays out from the producer's output"),
    (["verify", "--workload", "ds_cnn_kws", "--network", "--batch", "2"],
     "codesign verify: error: --batch must be 1 for a network from one start, not 2"),
    (["verify", "--workload", "ds_cnn_kws", "--network", "--dataflow", "os"],
     "codesign verify: error: a network from one start needs dataflow ws (its layers read each other's planes), "
     "not os"),
    (["verify", "--workload", "ds_cnn_kws", "--network", "--preset", "int8"],
     "codesign verify: error: --preset needs a trained --workload (digits_cnn), not 'int8'"),
])
def test_verify_network_refusals(argv, line, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [line]


def test_generate_network_needs_a_wide_enough_bus(tmp_path, capsys):
    assert main(["generate", "--network", "-o", str(tmp_path / "g"), "--rows", "4", "--cols", "4",
                 "--dram-bytes-per-cycle", "2"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "codesign generate: error: the network sequencer needs an AXI bus of at least 4 bytes (dram_bytes_per_cycle "
        "above 2), not 2"]


@pytest.mark.slow
def test_generate_network_writes_the_program_map(tmp_path):
    """The network top's Verilog (minutes on a loaded machine) and its map: registers and the record format."""
    import json

    assert main(["generate", "--network", "-o", str(tmp_path), "--rows", "2", "--cols", "2", "--json"]) == 0
    header = next(tmp_path.glob("codesign_net_*_regs.h")).read_text()
    assert "#define CODESIGN_PROG_CTRL" in header and "CODESIGN_PROG_RECORD_BYTES" in header
    desc = json.loads(next(tmp_path.glob("codesign_net_*.json")).read_text())
    assert desc["register_map"]["program"]["record_bytes"] == 512
    # the sequencer's timing for the default memory (a 16-byte bus at 16 bytes a cycle, latency 100): 19 descriptor
    # beats fetched alone before the first layer (1 + 100 + 19 + 2: the CTRL write and the layer's decision), with the 3
    # counter beats between two layers (1 + 1 + 100 + 19 + 2: the write is over before the fetch's first beat), the
    # last write alone (1 + 3 + 100 + 1)
    timing = desc["timing"]
    assert (timing["program_first_record_cycles_here"], timing["program_layer_overhead_cycles_here"],
            timing["program_last_record_cycles_here"]) == (122, 123, 105)
    assert timing["program_first_record_cycles"] == (
        "1 + dram_latency_cycles + ceil(descriptor_read_bytes / dram_bytes_per_cycle) + 2")


def test_simulate_says_whether_the_network_runs_from_one_start(capsys):
    """``codesign simulate`` prints the one-start cycles only for a network the program can run (the layers'
    cycles plus the sequencer's: ``NetworkResult.program_cycles``), and for another the reason ``verify
    --network`` would give, not a figure no hardware reaches."""
    from codesign.sim.config import AcceleratorConfig
    from codesign.sim.engine import simulate_network
    from codesign.workloads.loading import load_workload

    assert main(["simulate", "-w", "ds_cnn_kws", "--rows", "8", "--cols", "8"]) == 0
    program = simulate_network(load_workload("ds_cnn_kws"), AcceleratorConfig(rows=8, cols=8)).program_cycles
    out = capsys.readouterr().out
    assert f"from one start (network top, 11 descriptor records): {program:,} cycles" in out
    # the squeeze-excite networks: their SE pools read the depthwise planes as the scales do (unpadded)
    for name, records in (("mobilenet_v3_large", 81), ("efficientnet_b0", 115)):
        assert main(["simulate", "-w", name, "--rows", "8", "--cols", "8"]) == 0
        program = simulate_network(load_workload(name), AcceleratorConfig(rows=8, cols=8)).program_cycles
        out = capsys.readouterr().out
        assert f"from one start (network top, {records} descriptor records): {program:,} cycles" in out
    assert main(["simulate", "-w", "ds_cnn_kws", "--rows", "8", "--cols", "8", "--dataflow", "os"]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("from one start")]
    assert lines == ["from one start: not on the network top (a network from one start needs dataflow ws (its "
                     "layers read each other's planes), not os)"]
