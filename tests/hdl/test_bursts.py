"""The DMA's burst walk (``hdl.memory.dma._Bursts``) cuts a range into the AXI4 bursts a reference in
Python integers makes: each block from its start (``stride`` bytes apart, or one after the other), in
bursts of ``min(beats left in the block, 256, beats to the next 4 KiB boundary)``, one burst a cycle.
Ranges that cross 4 KiB boundaries inside and between blocks, blocks longer than 256 beats, one-beat
blocks, on buses of 1 to 128 bytes."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from codesign.hdl.memory.dma import AXI_ADDR_BITS, BLOCK_BEAT_BITS, BLOCK_COUNT_BITS, _Bursts

pytestmark = pytest.mark.hdl


def reference(addr: int, block_beats: int, blocks: int, stride: int, bus: int) -> list[tuple[int, int]]:
    """(address, beats) of every burst, AXI4 INCR: at most 256 beats, never across a 4 KiB boundary."""
    out = []
    for b in range(blocks):
        a = addr + b * (stride if stride else block_beats * bus)
        left = block_beats
        while left:
            n = min(left, 256, (4096 - a % 4096) // bus)
            out.append((a, n))
            a += n * bus
            left -= n
    return out


def ranges(bus: int, rng: np.random.Generator) -> list[tuple[int, int, int, int]]:
    page = 4096 // bus
    cases = [
        (4096 - bus, 3, 1, 0),  # one beat before a boundary, then on
        (0, 600, 2, 0),  # blocks longer than 256 beats, one after the other
        (bus * 5, 1, 7, bus * 3),  # one-beat blocks at a stride
        (4096 * 3 - 2 * bus, 2 * page + 5, 2, 4096 * 5 + bus),  # across pages inside blocks and between them
    ]
    for _ in range(12):
        cases.append((int(rng.integers(0, 1 << 16)) * bus, int(rng.integers(1, 3 * page + 300)),
                      int(rng.integers(1, 5)), int(rng.choice([0, int(rng.integers(1, 1 << 14)) * bus]))))
    return cases


@pytest.mark.parametrize("bus", [1, 4, 8, 16, 64, 128])
def test_burst_walk_matches_the_reference(bus: int) -> None:
    m = Module()
    walk = _Bursts(m, "t", bus, AXI_ADDR_BITS)
    a, beats, n, stride = (Signal(AXI_ADDR_BITS), Signal(BLOCK_BEAT_BITS + 3), Signal(BLOCK_COUNT_BITS),
                           Signal(AXI_ADDR_BITS))
    load, fire, active = Signal(), Signal(), Signal()
    with m.If(load):
        m.d.sync += [*walk.load(a, beats, n, stride), active.eq(1)]
    with m.Elif(fire):  # a burst handed over every cycle: the walk's worst case
        with m.If(walk.last_burst):
            m.d.sync += active.eq(0)
        with m.Else():
            m.d.sync += walk.step()
    m.d.comb += fire.eq(active & ~load)
    cases = ranges(bus, np.random.default_rng(bus))
    got: list[list[tuple[int, int]]] = []

    async def bench(ctx) -> None:
        for addr, bb, blocks, sd in cases:
            ctx.set(a, addr)
            ctx.set(beats, bb)
            ctx.set(n, blocks)
            ctx.set(stride, sd)
            ctx.set(load, 1)
            await ctx.tick()
            ctx.set(load, 0)
            seen = []
            while ctx.get(active):
                seen.append((ctx.get(walk.addr), ctx.get(walk.len_beats)))
                await ctx.tick()
            got.append(seen)

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    for case, seen in zip(cases, got, strict=True):
        assert seen == reference(*case, bus), case
