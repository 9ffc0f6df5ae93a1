"""Verilog export and the generate/verify command lines (bad input, files written)."""

from __future__ import annotations

import json
import re

import pytest

from codesign.cli import main
from codesign.hdl.export import generate, verilog_for
from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import native_gemm_cycles

pytestmark = pytest.mark.hdl

SMALL = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 2048}


def test_verilog_is_one_named_module_with_signature_ports() -> None:
    cfg = AcceleratorConfig(rows=2, cols=3, dataflow="os", zero_handling="gate", **SMALL)
    name, text = verilog_for(cfg)
    assert name == "codesign_os_2x3_ws8_as8_gate"
    header = re.search(rf"^module {name}\((.*?)\);", text, re.M)
    assert header is not None
    ports = {p.strip() for p in header.group(1).split(",")}
    assert {"load__valid", "load__ready", "load__payload", "m", "n", "k", "start", "busy", "done",
            "enabled_macs", "rd_addr__valid", "rd_data__payload", "clk", "rst"} <= ports
    assert "/work" not in text and "/home" not in text


def test_generate_writes_verilog_register_map_and_timing_json(tmp_path) -> None:
    cfg = AcceleratorConfig(rows=4, cols=4, **SMALL)
    g = generate(cfg, tmp_path)
    assert g.top == "codesign_layer_ws_4x4_ws8_as8_bus16_dw"  # (a square WS array: the depthwise engine beside it)
    text = g.verilog_path.read_text()
    assert text.count(f"module {g.top}(") == 1
    header = re.search(rf"^module {g.top}\((.*?)\);", text, re.M | re.S)
    ports = {p.strip() for p in header.group(1).split(",")}
    # an AXI4 master (128-bit data for 16 bytes/cycle), an AXI4-Lite slave, an interrupt
    assert {"m_axi_araddr", "m_axi_rdata", "m_axi_wdata", "m_axi_bvalid", "s_axil_awaddr", "s_axil_rdata",
            "irq", "clk", "rst"} <= ports
    desc = json.loads(g.json_path.read_text())
    assert desc["hardware"]["acc_bits"] == 32 and desc["hardware"]["bus_bytes"] == 16
    engine = desc["hardware"]["depthwise_engine"]
    assert engine["lanes"] == 4 and engine["kernel_max"] == 5
    assert desc["ports"]["m_axi_rdata"] == {"direction": "in", "bits": 128}
    # the register map: C header and Python module with the same offsets
    h = g.header_path.read_text()
    assert "#define CODESIGN_CTRL                 0x000u" in h and "#define CODESIGN_CYCLES_LO" in h
    ns: dict = {}
    exec(g.regs_path.read_text(), ns)
    regs = {r["name"]: r["offset"] for r in desc["register_map"]["registers"]}
    assert ns["OFFSETS"] == regs and regs["ctrl"] == 0 and regs["status"] == 4
    assert len(set(regs.values())) == len(regs)
    for ex in desc["timing"]["examples"]:
        assert ex["cycles"] == native_gemm_cycles(cfg, ex["m"], ex["n"], ex["k"])
    # 4x4 WS, M=N=K=4: one fold, 1 + M + rows + cols + 2 (the PEs' multiplier registers)
    assert desc["timing"]["examples"][0] == {"m": 4, "n": 4, "k": 4, "cycles": 15}


def test_cli_generate(tmp_path, capsys) -> None:
    rc = main(["generate", "--rows", "2", "--cols", "2", "--dataflow", "os", "--weight-bits", "4",
               "--act-bits", "4", "--gating", "-o", str(tmp_path)])
    assert rc == 0
    assert (tmp_path / "codesign_layer_os_2x2_ws4_as4_gate_bus16.v").exists()
    assert (tmp_path / "codesign_layer_os_2x2_ws4_as4_gate_bus16_regs.h").exists()
    assert "on-chip GEMM cycles" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["generate", "--rows", "-4", "-o", "x"], "rows must be a positive integer, not -4"),
        (["generate", "--zero-handling", "skip", "--skip-pattern", "bitmask", "-o", "x"],
         "skip_pattern must be n:m (such as 2:4) for the generated hardware; bitmask skipping is model-only"),
        (["generate", "--zero-handling", "skip", "--dataflow", "is", "-o", "x"],
         "dataflow must be ws for zero_handling skip in the generated hardware"),
        (["generate", "--zero-handling", "skip", "--skip-pattern", "2:5:1", "-o", "x"],
         "skip_pattern must be 'n:m' with 1 <= n < m <= 16 (such as '2:4') or 'bitmask', not '2:5:1'"),
        (["generate", "--weight-bits", "1", "-o", "x"],
         "weight_bits must be from 2 to 16 for the generated hardware, not 1"),
        (["verify", "--gemm", "3,x,3"], "--gemm must be M,N,K (three positive integers), not '3,x,3'"),
        (["verify", "--gemm", "3,0,3"], "--gemm N must be a positive integer, not 0"),
        (["verify", "--workload", "mobilenet_v2", "--layer", "nope"], "layer must be one of conv_stem, block0.dw, "),
        (["verify", "--gemm", "3,3,3", "--stall", "1.5"], "--stall must be a probability from 0 to below 1, not 1.5"),
        (["verify", "--gemm", "3,3,3", "--acc-bits", "12"],
         "acc_bits must be from 17 to 48 for 8-bit weights and 8-bit activations"),
        (["verify", "--gemm", "3,3,3", "--density", "1.5"], "density must be a number from 0 to 1, not 1.5"),
    ],
)
def test_cli_bad_input_is_one_line_exit_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err


def test_output_buffer_asks_for_block_ram() -> None:
    """The whole-layer top's output buffer carries ``ram_style = "block"`` into the Verilog (which
    ``write_verilog -noattr`` would drop): a shallow, wide buffer (here 2x2: 32 words of 64 bits)
    is block RAM like the others, not LUT RAM."""
    from codesign.hdl.export import _keep_ram_style, layer_verilog_for

    cfg = AcceleratorConfig(rows=2, cols=2, input_sram_bytes=256, weight_sram_bytes=256, output_sram_bytes=256)
    _, text = layer_verilog_for(cfg)
    assert re.search(r'\(\* ram_style = "block" \*\)\n\s*reg \[63:0\] out_mem \[31:0\];', text)
    # and the depthwise stage's rows buffer (sim.dwfuse: 32 words of the output buffer's width here)
    assert re.search(r'\(\* ram_style = "block" \*\)\n\s*reg \[63:0\] dws_mem \[31:0\];', text)
    assert text.count("ram_style") == 2
    il = 'attribute \\ram_style "block"\n  memory width 8 size 4 \\buf\n'
    assert _keep_ram_style(il, "  reg [7:0] buf [3:0];\n") == '  (* ram_style = "block" *)\n  reg [7:0] buf [3:0];\n'
