"""The whole-layer accelerator's register block: field widths from the config, the too_wide flag and
its byte strobes, the narrow read path (Amaranth simulator, a few dozen cycles), the host's refusals."""

from __future__ import annotations

import re

import pytest
from amaranth.sim import Simulator

from codesign.errors import ConfigError
from codesign.hdl.control import regs
from codesign.hdl.host import check_descriptor
from codesign.hdl.layer import LayerAccelerator
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig
from codesign.sim.tileplan import plan_tiles
from codesign.workloads.layers import GemmShape

pytestmark = pytest.mark.hdl

# the smallest design of issue 22: 2x2 OS, 1 KiB buffers, INT8 (requantizing write-back; no depthwise
# engine, vector unit or window generation: OS builds none of them)
KIB = {"input_sram_bytes": 1024, "weight_sram_bytes": 1024, "output_sram_bytes": 1024}
OS2 = AcceleratorConfig(rows=2, cols=2, dataflow="os", **KIB)
ERR = {name: 1 << i for i, (name, _) in enumerate(regs.ERROR_BITS)}


def test_field_bits_of_the_smallest_design() -> None:
    bits = regs.field_bits(OS2)
    assert list(bits) == [name for name, _ in regs.DESCRIPTOR_FIELDS]
    # buffers of 512, 512 and 128 words (16-bit A and B words, 64-bit C words of 2 int32 lanes): 9 address
    # bits and one more, so a whole 256-word slot is representable
    assert regs.words_bits(OS2) == 10 and bits["a_words_00"] == bits["c_words_11"] == 10
    # the requantization table: 1024 * 8 / (2 * 32) = 128 words, so counts up to 128 take 8 bits
    assert bits["q_words"] == bits["q_nf"] == bits["q_stride_n"] == 8
    # the config's defaults: dimensions in dim_bits = 24, addresses and strides in dram_addr_bits = 32
    assert bits["m"] == bits["gt"] == OS2.dim_bits == 24 and bits["flags"] == 15
    assert bits["a_base"] == bits["c_stride_n"] == 32
    # the zero point and clamps: 8 + 1 bits two's complement, -256..255 (int8's and uint8's ranges)
    assert bits["zero_point"] == bits["clamp_lo"] == bits["clamp_hi"] == 9
    assert all(bits[n] == 0 for n in bits if n.startswith(("dw_", "cv_", "vec_", "res_", "pl_")))
    # what the design holds: 842 flip-flops of descriptor (it was 90 x 32 = 2,880 bits of registers, of
    # which 42 were built; flags has 15 bits since residency's bits 12..14; 911 with 32-bit clamps)
    assert sum(bits.values()) == 842
    # without requantize the table fields are not built either
    no_q = regs.field_bits(OS2.replace(requantize=False))
    assert [n for n in bits if bits[n] and not no_q[n]] == list(regs._Q_FIELDS)


def test_field_bits_follow_the_config_widths() -> None:
    """dram_addr_bits and dim_bits narrow the address, stride and dimension fields (and only them)."""
    narrow = OS2.replace(dram_addr_bits=20, dim_bits=12)
    wide, bits = regs.field_bits(OS2), regs.field_bits(narrow)
    for name in regs.ADDRESS_FIELDS:
        assert bits[name] == (20 if wide[name] else 0), name
    for name in regs.DIM_FIELDS:
        assert bits[name] == 12, name
    others = [n for n in bits if n not in regs.ADDRESS_FIELDS + regs.DIM_FIELDS]
    assert all(bits[n] == wide[n] for n in others)
    # the 2x2 OS design builds 13 address fields (a, b, c bases, nine strides, q_base) and the 10 dimension fields:
    # 842 - 13 x (32 - 20) - 10 x (24 - 12) = 566 flip-flops of descriptor
    assert sum(wide[n] == 32 for n in regs.ADDRESS_FIELDS) == 13 and sum(bits.values()) == 566
    h = regs.c_header(config=narrow)
    assert re.search(r"#define CODESIGN_A_BASE_BITS\s+20u", h) and re.search(r"#define CODESIGN_M_BITS\s+12u", h)
    assert regs.description(narrow)["field_bits"]["c_stride_n"] == 20  # type: ignore[index]
    # the host refuses a wider value in one line, as the hardware's too_wide would
    good, hw, plan = _desc(narrow)
    check_descriptor(good, hw, plan)  # type: ignore[arg-type]
    for name, value, msg in (
        ("c_base", 1 << 20, "descriptor c_base must be below 2**20 (its 20-bit register in this design), not 1048576"),
        ("k", 4096, "descriptor k must be below 2**12 (its 12-bit register in this design), not 4096"),
    ):
        with pytest.raises(ConfigError) as e:
            check_descriptor({**good, name: value}, hw, plan, layer="fc")  # type: ignore[arg-type]
        assert str(e.value) == f"layer 'fc': {msg}"


def test_field_bits_published_in_header_python_and_json() -> None:
    h = regs.c_header(config=OS2)
    assert "#define CODESIGN_A_WORDS_00_BITS" in h
    assert re.search(r"#define CODESIGN_A_WORDS_00_BITS\s+10u", h)
    assert re.search(r"#define CODESIGN_DW_PAD_BITS\s+0u", h)
    assert re.search(r"#define CODESIGN_ERROR_TOO_WIDE\s+\(1u << 12\)", h)
    ns: dict = {}
    exec(regs.python_module(OS2), ns)
    assert ns["FIELD_BITS"] == regs.field_bits(OS2) == regs.description(OS2)["field_bits"]
    assert ns["VERSION"] == 11 and "field_bits" not in regs.description()
    # counters hold 40 bits (map v6): 2**40 cycles are 92 minutes at 200 MHz; _HI reads bits 39..32
    hi = next(r for r in regs.REGISTERS if r.name == "cycles_hi")
    assert regs.COUNTER_BITS == 40 and "(bits 39..32; zero above)" in hi.description
    # descriptors are write-only: status, error, version and the five counters' halves are readable
    assert regs.READABLE == ("status", "error", "version", *(f"{c}_{h}" for c, _ in regs.COUNTERS
                                                              for h in ("lo", "hi")))


def _desc(cfg: AcceleratorConfig = OS2) -> tuple[dict[str, int], HardwarePlan, object]:
    plan = plan_tiles(GemmShape(13, 10, 21), cfg)
    return plan.descriptor(0, 4096, 8192), HardwarePlan(cfg), plan


def test_host_refuses_values_wider_than_the_register_in_one_line() -> None:
    good, hw, plan = _desc()
    check_descriptor(good, hw, plan)  # type: ignore[arg-type]
    for name, value, msg in (
        ("m", (1 << 24) + 13, "descriptor m must be below 2**24 (its 24-bit register in this design), not 16777229"),
        ("q_nf", 256, "descriptor q_nf must be below 2**8 (its 8-bit register in this design), not 256"),
        ("flags", 1 << 16, "descriptor flags must be below 2**15 (its 15-bit register in this design), not 65536"),
        # two's complement fields: 9 bits hold -256..255, as 32-bit words (the plan's descriptor masks them)
        ("zero_point", 256, "descriptor zero_point must be from -256 to 255 (its 9-bit two's complement register "
                            "in this design), not 256"),
        ("clamp_lo", -257 & 0xFFFFFFFF, "descriptor clamp_lo must be from -256 to 255 (its 9-bit two's complement "
                                        "register in this design), not -257"),
        # bit 15, the depthwise stage, where the design does not build it
        ("flags", 1 << 15, "descriptor flags bit 15 (depthwise stage in the write-back) needs dw_writeback: true and "
                           "the depthwise engine in this design"),
    ):
        with pytest.raises(ConfigError) as e:
            check_descriptor({**good, name: value}, hw, plan)  # type: ignore[arg-type]
        assert str(e.value) == msg
    # a field the design does not build ignores writes: nothing to refuse
    check_descriptor({**good, "dw_in_w": 1 << 20}, hw, plan)  # type: ignore[arg-type]



def _drive(script) -> dict[str, int]:
    """Run ``script(write, read, good, seen)`` on the 2x2 OS design's register block over AXI4-Lite, after a
    good descriptor is written; ``write(name, value, strb)`` and ``read(name)`` take a register's name (a
    write's response taken, a read's data one cycle after its address). Returns ``seen``."""
    good, _, _ = _desc()
    dut = LayerAccelerator(OS2)
    off = regs.REGISTER_OFFSETS
    seen: dict[str, int] = {}

    async def bench(ctx):
        async def write(name: str, value: int, strb: int = 0xF) -> None:
            ctx.set(dut.s_axil_awaddr, off[name])
            ctx.set(dut.s_axil_wdata, value)
            ctx.set(dut.s_axil_wstrb, strb)
            ctx.set(dut.s_axil_awvalid, 1)
            ctx.set(dut.s_axil_wvalid, 1)
            await ctx.tick()
            ctx.set(dut.s_axil_awvalid, 0)
            ctx.set(dut.s_axil_wvalid, 0)
            await ctx.tick()  # bvalid, taken (bready high)

        async def read(name: str) -> int:
            ctx.set(dut.s_axil_araddr, off[name])
            ctx.set(dut.s_axil_arvalid, 1)
            await ctx.tick()
            ctx.set(dut.s_axil_arvalid, 0)
            value = ctx.get(dut.s_axil_rdata)
            assert ctx.get(dut.s_axil_rvalid)
            await ctx.tick()
            return value

        ctx.set(dut.s_axil_bready, 1)
        ctx.set(dut.s_axil_rready, 1)
        for name, value in good.items():
            await write(name, value)
        await script(write, read, good, seen)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


def test_register_block_flags_too_wide_with_byte_strobes_and_reads_narrow() -> None:
    """Write a descriptor with m one bit too wide (its low 24 bits the good value): start is refused
    with too_wide alone; rewriting m's low three bytes keeps the flag (the unwritten top byte may
    still hold the bit), zeroing the top byte clears it and the layer starts. Descriptors read 0."""
    async def script(write, read, good, seen) -> None:
        await write("m", good["m"] | 1 << 24)
        await write("ctrl", 1)
        seen["wide"] = await read("error")
        await write("m", good["m"], strb=0b0111)
        await write("ctrl", 1)
        seen["low_bytes"] = await read("error")
        await write("m", 0, strb=0b1000)
        await write("ctrl", 1)
        seen["cleared"] = await read("error")
        seen["status"] = await read("status")
        seen["m_read"] = await read("m")
        seen["version"] = await read("version")

    seen = _drive(script)
    assert seen["wide"] == seen["low_bytes"] == ERR["too_wide"]
    assert seen["cleared"] == 0 and seen["status"] & 0b101 == 0b001  # busy, no error
    assert seen["m_read"] == 0 and seen["version"] == regs.MAP_VERSION == 11


def test_register_block_flags_a_twos_complement_field_outside_its_bits() -> None:
    """zero_point holds 9 bits two's complement in an INT8 design: 256 (bit 8 set, the bits above clear)
    is refused with too_wide; -256 written as the bytes holding bit 8 and up in two writes sets the flag
    too (a write of some of those bytes is refused: the flag is conservative); -256 in one full-word write
    is taken and the layer starts."""
    async def script(write, read, good, seen) -> None:
        for label, strobes in (("256", [(256, 0xF)]), ("two_writes", [(-256, 0b0011), (-256, 0b1100)]),
                               ("full", [(-256, 0xF)])):
            for value, strb in strobes:
                await write("zero_point", value & 0xFFFFFFFF, strb)
            await write("ctrl", 1)
            seen[label] = await read("error")

    seen = _drive(script)
    assert seen["256"] == seen["two_writes"] == ERR["too_wide"]
    assert seen["full"] == 0


@pytest.mark.parametrize("limit", [0, 1, 100, 128, 255])
def test_start_check_product_exceeds_without_the_full_multiply(limit: int) -> None:
    """The pool check's ``a * b > limit`` multiplies only limit's bits of each factor (a factor with a bit
    above them exceeds the limit unless the other is 0): equal to Python's product for every factor up to
    2**(bits + 1) against the factors where the product crosses the limit, and at the fields' extremes."""
    from amaranth.hdl import Module, Signal

    from codesign.hdl.layer import _product_exceeds

    a, b, out = Signal(16), Signal(24), Signal()
    m = Module()
    m.d.comb += out.eq(_product_exceeds(a, b, limit))
    top = 2 << max(1, limit.bit_length())
    # every factor up to twice the limit's bits, each with the other factors around where the product crosses
    # the limit (limit // x and its neighbours), 0, 1 and the largest; and the fields' extremes
    cases = [(x, y) for x in range(top) for q in ({0, 1, top - 1} | ({limit // x - 1, limit // x, limit // x + 1}
                                                                      if x else set())) for y in (q,) if y >= 0]
    cases += [(y, x) for x, y in cases]
    cases += [(x, y) for x in (0, 1, (1 << 16) - 1) for y in (0, 1, limit, (1 << 24) - 1)]
    bad: list[tuple[int, int]] = []

    async def bench(ctx) -> None:
        for x, y in cases:
            ctx.set(a, x)
            ctx.set(b, y)
            if ctx.get(out) != (x * y > limit):
                bad.append((x, y))

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert not bad, bad[:5]
