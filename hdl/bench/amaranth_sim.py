"""Run GEMMs on the Accelerator top in the Amaranth simulator (no Icarus; slow but dependency-free)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from codesign.hdl.engines.gemm import Accelerator
from codesign.sim.config import AcceleratorConfig


@dataclass
class AmaranthRun:
    c: np.ndarray
    cycles: int
    enabled_macs: int


def run_gemms(
    config: AcceleratorConfig, gemms: list[tuple[np.ndarray, np.ndarray]], *, seed: int = 0
) -> list[AmaranthRun]:
    """Load each ``(a, b)`` through the load stream, start, wait for done, read C back."""
    dut = Accelerator(config)
    plan = dut.plan
    rng = np.random.default_rng(seed)
    results: list[AmaranthRun] = []

    async def bench(ctx):
        for a, b in gemms:
            m, k = a.shape
            n = b.shape[1]
            act, wt = plan.pack_operands(a, b)
            for sel, words in ((0, act), (1, wt)):
                for addr, word in enumerate(words):
                    while rng.random() < 0.25:  # idle cycles on the load stream
                        ctx.set(dut.load.valid, 0)
                        await ctx.tick()
                    ctx.set(dut.load.valid, 1)
                    ctx.set(dut.load.payload, {"data": word, "addr": addr, "sel": sel})
                    await ctx.tick()
            ctx.set(dut.load.valid, 0)
            ctx.set(dut.m, m)
            ctx.set(dut.n, n)
            ctx.set(dut.k, k)
            ctx.set(dut.start, 1)
            await ctx.tick()  # the edge that samples start
            ctx.set(dut.start, 0)
            cycles = 0
            while not ctx.get(dut.done):
                await ctx.tick()
                cycles += 1
            enabled = ctx.get(dut.enabled_macs)
            words = []
            addrs = plan.output_addresses(m, n, k)
            i = 0
            ctx.set(dut.rd_data.ready, 0)
            while len(words) < len(addrs):
                ctx.set(dut.rd_addr.valid, i < len(addrs))
                ctx.set(dut.rd_addr.payload, addrs[i] if i < len(addrs) else 0)
                ready = rng.random() < 0.7  # back-pressure on the read data stream
                ctx.set(dut.rd_data.ready, ready)
                take_addr = i < len(addrs) and ctx.get(dut.rd_addr.ready)
                if ready and ctx.get(dut.rd_data.valid):
                    words.append(ctx.get(dut.rd_data.payload))
                await ctx.tick()
                if take_addr:
                    i += 1
            ctx.set(dut.rd_addr.valid, 0)
            ctx.set(dut.rd_data.ready, 0)
            results.append(AmaranthRun(plan.unpack_outputs(words, m, n), cycles, enabled))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return results
