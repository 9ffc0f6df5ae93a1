"""cocotb bench of the whole-layer accelerator (run inside Verilator or Icarus by :mod:`codesign.hdl.bench.runner`).

The testbench top (:func:`testbench_verilog`) wires the generated accelerator to the behavioural
AXI4 memory model ``axi_mem_model.v`` (latency and bandwidth of the config; random stalls for
functional runs), loaded from a hex image of DRAM. The bench, per layer of the job (a JSON file
named by ``CODESIGN_RTL_JOB``):

1. writes the layer descriptor through the AXI4-Lite port, then ``CTRL.start``;
2. waits for ``irq`` without touching the design (no Python in the loop while the layer runs);
3. reads ``STATUS``, ``ERROR`` and the counters back;

then dumps the DRAM image for the host to read the results. Checking happens outside, in
:mod:`codesign.hdl.verify`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge, Timer

from codesign.hdl.control.regs import COUNTERS, REGISTER_OFFSETS, REGS_ADDR_BITS

CLOCK_PERIOD_NS = 10


def testbench_verilog(dut_name: str, bus_bytes: int, depth_words: int) -> str:
    """The Verilog testbench top ``codesign_tb`` around the accelerator ``dut_name``."""
    data = bus_bytes * 8
    axi = ["araddr", "arlen", "aruser", "arvalid", "arready", "rdata", "rresp", "rlast", "rvalid", "rready",
           "awaddr", "awlen", "awvalid", "awready", "wdata", "wstrb", "wlast", "wvalid", "wready",
           "bresp", "bvalid", "bready"]
    widths = {"araddr": 32, "awaddr": 32, "arlen": 8, "awlen": 8, "rdata": data, "wdata": data,
              "wstrb": bus_bytes, "rresp": 2, "bresp": 2}
    wires = "\n".join(f"    wire [{widths.get(n, 1) - 1}:0] {n};" for n in axi)
    dut_axi = ",\n".join(f"        .m_axi_{n}({n})" for n in axi)
    mem_axi = ",\n".join(f"        .{n}({n})" for n in axi)
    lite_in = [("awaddr", REGS_ADDR_BITS), ("awvalid", 1), ("wdata", 32), ("wstrb", 4), ("wvalid", 1),
               ("bready", 1), ("araddr", REGS_ADDR_BITS), ("arvalid", 1), ("rready", 1)]
    lite_out = [("awready", 1), ("wready", 1), ("bresp", 2), ("bvalid", 1), ("arready", 1), ("rdata", 32),
                ("rresp", 2), ("rvalid", 1)]
    ports = ",\n".join(["    input clk", "    input rst", "    input dump", "    output irq"]
                       + [f"    input [{w - 1}:0] s_axil_{n}" for n, w in lite_in]
                       + [f"    output [{w - 1}:0] s_axil_{n}" for n, w in lite_out])
    lite = ",\n".join(f"        .s_axil_{n}(s_axil_{n})" for n, _ in lite_in + lite_out)
    return f"""`timescale 1ns/1ps
module codesign_tb (
{ports}
);
{wires}
    {dut_name} dut (
        .clk(clk),
        .rst(rst),
        .irq(irq),
{lite},
{dut_axi}
    );
    codesign_axi_mem #(.BUS_BYTES({bus_bytes}), .DEPTH({depth_words})) mem (
        .clk(clk),
        .rst(rst),
{mem_axi}
    );
    reg [1023:0] dump_file;
    integer dump_lo, dump_hi;
    always @(posedge dump) begin
        if (!$value$plusargs("DUMP=%s", dump_file)) dump_file = "dram_out.hex";
        if (!$value$plusargs("DUMP_LO=%d", dump_lo)) dump_lo = 0;
        if (!$value$plusargs("DUMP_HI=%d", dump_hi)) dump_hi = {depth_words - 1};
        $writememh(dump_file, mem.mem, dump_lo, dump_hi);
    end
endmodule
"""


async def _axil_write(dut: Any, offset: int, value: int) -> None:
    dut.s_axil_awaddr.value = offset
    dut.s_axil_wdata.value = value & 0xFFFFFFFF
    dut.s_axil_wstrb.value = 0xF
    dut.s_axil_awvalid.value = 1
    dut.s_axil_wvalid.value = 1
    while True:
        await ReadOnly()
        taken = dut.s_axil_awready.value == 1
        await RisingEdge(dut.clk)
        if taken:
            break
    dut.s_axil_awvalid.value = 0
    dut.s_axil_wvalid.value = 0
    while True:
        await ReadOnly()
        if dut.s_axil_bvalid.value == 1:
            await RisingEdge(dut.clk)
            break
        await RisingEdge(dut.clk)


async def _axil_read(dut: Any, offset: int) -> int:
    dut.s_axil_araddr.value = offset
    dut.s_axil_arvalid.value = 1
    while True:
        await ReadOnly()
        taken = dut.s_axil_arready.value == 1
        await RisingEdge(dut.clk)
        if taken:
            break
    dut.s_axil_arvalid.value = 0
    while True:
        await ReadOnly()
        if dut.s_axil_rvalid.value == 1:
            value = int(dut.s_axil_rdata.value)
            await RisingEdge(dut.clk)
            return value
        await RisingEdge(dut.clk)


async def start_bench(dut: Any) -> dict[str, Any]:
    """The job (the JSON file named by ``CODESIGN_RTL_JOB``), with the clock started, the AXI4-Lite port idle
    and the design out of reset."""
    with open(os.environ["CODESIGN_RTL_JOB"]) as f:
        job = json.load(f)
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start()
    for name in ("s_axil_awvalid", "s_axil_wvalid", "s_axil_arvalid", "dump", "s_axil_awaddr", "s_axil_wdata",
                 "s_axil_wstrb", "s_axil_araddr"):
        getattr(dut, name).value = 0
    dut.s_axil_bready.value = 1
    dut.s_axil_rready.value = 1
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    return job


@cocotb.test()
async def run_layers(dut: Any) -> None:
    """Run every layer of the job through the AXI port, then dump DRAM."""
    job = await start_bench(dut)
    results = []
    for layer in job["layers"]:
        w0 = time.perf_counter()
        for name, value in layer["descriptor"].items():
            await _axil_write(dut, REGISTER_OFFSETS[name], value)
        await _axil_write(dut, REGISTER_OFFSETS["ctrl"], 1)
        status = await _axil_read(dut, REGISTER_OFFSETS["status"])
        if status & 0b001:  # busy: wait for done
            await RisingEdge(dut.irq)
            await RisingEdge(dut.clk)
        w1 = time.perf_counter()
        out = {"status": await _axil_read(dut, REGISTER_OFFSETS["status"]),
               "error": await _axil_read(dut, REGISTER_OFFSETS["error"])}
        for name, _ in COUNTERS:
            lo = await _axil_read(dut, REGISTER_OFFSETS[f"{name}_lo"])
            hi = await _axil_read(dut, REGISTER_OFFSETS[f"{name}_hi"])
            out[name] = lo | hi << 32
        out["run_wall_s"] = w1 - w0
        results.append(out)
        if job.get("progress"):  # one line per finished layer, for the caller's progress bar
            with open(job["progress"], "a") as f:
                f.write(json.dumps(out) + "\n")
    dut.dump.value = 1
    await Timer(1, unit="ns")
    await RisingEdge(dut.clk)
    tmp = job["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"layers": results}, f)
    os.replace(tmp, job["result"])
