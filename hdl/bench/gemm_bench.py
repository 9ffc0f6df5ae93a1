"""cocotb bench for the accelerator top (run inside Verilator or Icarus by :mod:`codesign.hdl.bench.runner`).

The job (a JSON file named by ``CODESIGN_RTL_JOB``) lists on-chip GEMM tiles with their buffer
words. For each tile the bench

1. **drives** the ``load`` stream word by word, with random idle cycles (``valid`` low);
2. pulses ``start`` with ``m``, ``n``, ``k`` and waits for ``done`` without touching the design
   in between (no Python in the loop while the array computes), measuring the cycles from the
   edge that samples ``start`` to the edge that raises ``done``;
3. **monitors** the ``rd_addr``/``rd_data`` streams reading the output words back, with random
   back-pressure on ``rd_data.ready``;
4. records the words, cycles and ``enabled_macs`` in the result file.

Checking (numpy, native timing, active MACs) happens outside, in :mod:`codesign.hdl.verify`.
"""

from __future__ import annotations

import json
import os
import random
import time
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge
from cocotb.utils import get_sim_time

CLOCK_PERIOD_NS = 10


async def _load(dut: Any, words: list[int], sel: int, layout: dict[str, int], rng: random.Random,
                idle: float) -> None:
    dbits, abits = layout["data"], layout["addr"]
    for addr, word in enumerate(words):
        while idle and rng.random() < idle:
            dut.load__valid.value = 0
            await RisingEdge(dut.clk)
        dut.load__payload.value = word | (addr << dbits) | (sel << (dbits + abits))
        dut.load__valid.value = 1
        await RisingEdge(dut.clk)
        # ready is high whenever the controller is idle, which it is while loading
        assert dut.load__ready.value == 1, "load stream not ready while idle"
    dut.load__valid.value = 0


async def _read(dut: Any, count: int, rng: random.Random, stall: float) -> list[int]:
    words: list[int] = []
    issued = 0
    while len(words) < count:
        dut.rd_addr__valid.value = 1 if issued < count else 0
        dut.rd_addr__payload.value = issued if issued < count else 0
        ready = 0 if stall and rng.random() < stall else 1
        dut.rd_data__ready.value = ready
        await ReadOnly()
        took_addr = issued < count and dut.rd_addr__ready.value == 1
        if ready and dut.rd_data__valid.value == 1:
            words.append(int(dut.rd_data__payload.value))
        await RisingEdge(dut.clk)
        if took_addr:
            issued += 1
    dut.rd_addr__valid.value = 0
    dut.rd_data__ready.value = 0
    return words


@cocotb.test()
async def run_tiles(dut: Any) -> None:
    """Load, run and read back every tile of the job."""
    with open(os.environ["CODESIGN_RTL_JOB"]) as f:
        job = json.load(f)
    rng = random.Random(job.get("seed", 0))
    idle, stall = job.get("idle", 0.0), job.get("stall", 0.0)
    layout = job["load_layout"]
    Clock(dut.clk, CLOCK_PERIOD_NS, unit="ns", impl="gpi").start()  # C++ clock: no Python per edge
    for name in ("load__valid", "start", "rd_addr__valid", "rd_data__ready", "m", "n", "k"):
        getattr(dut, name).value = 0
    dut.rst.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    results = []
    for tile in job["tiles"]:
        w0 = time.perf_counter()
        await _load(dut, [int(w, 16) for w in tile["act"]], 0, layout, rng, idle)
        await _load(dut, [int(w, 16) for w in tile["weight"]], 1, layout, rng, idle)
        dut.m.value, dut.n.value, dut.k.value = tile["m"], tile["n"], tile["k"]
        w1 = time.perf_counter()
        dut.start.value = 1
        await RisingEdge(dut.clk)  # this edge samples start
        t0 = get_sim_time(unit="ns")
        dut.start.value = 0
        await RisingEdge(dut.done)  # the design runs on its own until done
        t1 = get_sim_time(unit="ns")
        w2 = time.perf_counter()
        cycles = round((t1 - t0) / CLOCK_PERIOD_NS)
        await ReadOnly()
        enabled = int(dut.enabled_macs.value)
        await RisingEdge(dut.clk)
        words = await _read(dut, tile["out_words"], rng, stall)
        w3 = time.perf_counter()
        results.append({"cycles": cycles, "enabled_macs": enabled, "out": [f"{w:x}" for w in words],
                        "load_wall_s": w1 - w0, "run_wall_s": w2 - w1, "read_wall_s": w3 - w2,
                        "load_words": len(tile["act"]) + len(tile["weight"]), "out_words": len(words)})
    tmp = job["result"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"tiles": results, "sim_time_ns": get_sim_time(unit="ns")}, f)
    os.replace(tmp, job["result"])
