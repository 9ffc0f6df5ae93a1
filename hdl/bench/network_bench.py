"""cocotb bench of the network top (run inside Verilator or Icarus by :mod:`codesign.hdl.bench.runner`).

The testbench top is the whole-layer bench's (:func:`codesign.hdl.bench.layer_bench.testbench_verilog`:
the accelerator and the AXI memory model, loaded from a hex image of DRAM holding the descriptor list and
every tensor). The bench writes ``PROG_BASE``, ``PROG_LAYERS`` and ``PROG_CTRL`` bit 0 (one start), waits
for ``irq`` without touching the design, reads ``PROG_STATUS``, ``PROG_LAYER``, the program's cycles and
the layer's ``ERROR``, and dumps DRAM: the layers' outputs and counters (written into the records by the
sequencer) are read from the dump by :mod:`codesign.hdl.verify`.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import cocotb
from cocotb.triggers import RisingEdge, Timer

from codesign.hdl.bench.layer_bench import _axil_read, _axil_write, start_bench
from codesign.hdl.control.network import NETWORK_OFFSETS
from codesign.hdl.control.regs import REGISTER_OFFSETS


@cocotb.test()
async def run_program(dut: Any) -> None:
    """Run the job's program from one start, then dump DRAM."""
    job = await start_bench(dut)
    w0 = time.perf_counter()
    await _axil_write(dut, NETWORK_OFFSETS["prog_base"], job["prog_base"])
    await _axil_write(dut, NETWORK_OFFSETS["prog_layers"], job["prog_layers"])
    await _axil_write(dut, NETWORK_OFFSETS["prog_ctrl"], 1)
    status = await _axil_read(dut, NETWORK_OFFSETS["prog_status"])
    if status & 0b001:  # busy: wait for the program's end
        await RisingEdge(dut.irq)
        await RisingEdge(dut.clk)
    out = {"prog_status": await _axil_read(dut, NETWORK_OFFSETS["prog_status"]),
           "prog_layer": await _axil_read(dut, NETWORK_OFFSETS["prog_layer"]),
           "error": await _axil_read(dut, REGISTER_OFFSETS["error"])}
    lo = await _axil_read(dut, NETWORK_OFFSETS["prog_cycles_lo"])
    hi = await _axil_read(dut, NETWORK_OFFSETS["prog_cycles_hi"])
    out["prog_cycles"] = lo | hi << 32
    out["run_wall_s"] = time.perf_counter() - w0
    dut.dump.value = 1
    await Timer(1, unit="ns")
    await RisingEdge(dut.clk)
    tmp = job["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(out, f)
    os.replace(tmp, job["result"])
