"""What the whole-layer RTL's address and dimension registers hold (``dram_addr_bits``, ``dim_bits``).

The RTL holds every DRAM byte address and stride in ``config.dram_addr_bits`` bits and every GEMM dimension,
tile size and tile count in ``config.dim_bits`` bits (:func:`codesign.hdl.control.regs.field_bits`: the
descriptor's ``ADDRESS_FIELDS`` and ``DIM_FIELDS``, the tile iterator's offsets and sums, the DMA's burst
walks). Its sums wrap at those widths, so a layer whose descriptor holds a wider value, or whose DRAM layout
ends beyond ``2**dram_addr_bits`` bytes, would move the wrong bytes. The simulator refuses such a layer
(:func:`check_plan`, from :func:`codesign.sim.engine.simulate_layer`: what ``simulate`` and ``verify`` run
first), the host such a DRAM image (:func:`check_layout_end`, from ``verify``'s placement of layers and of a
network's descriptor list), each in one line naming the layer, the field and the value.
"""

from __future__ import annotations

from typing import Any

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig
from codesign.sim.tileplan import beats_per_word
from codesign.sim.timing import ceil_div

#: each of a layer's DRAM regions (A, B, C, the table) starts on a 4 KiB page (the host's layout: a region's
#: bursts then never share a page with another region's)
LAYOUT_ALIGN_BYTES = 4096


def layer_regions(plan: Any, base: int) -> tuple[int, int, int, int, int]:
    """``(a_base, b_base, c_base, q_base, end)`` of a layer's DRAM regions laid out from ``base`` as the host
    lays them out (:func:`codesign.hdl.host.place_layer`): A, B, C and the requantization table, each
    :data:`LAYOUT_ALIGN_BYTES` aligned, from ``plan``'s footprints (a ``TilePlan``, ``DwPlan``, ``WinPlan`` or
    ``VecPlan``)."""
    def up(x: int) -> int:
        return ceil_div(x, LAYOUT_ALIGN_BYTES) * LAYOUT_ALIGN_BYTES

    foot_a, foot_b, foot_c = plan.dram_footprint_bytes
    a_base = up(base)
    b_base = up(a_base + foot_a)
    c_base = up(b_base + foot_b)
    q_base = up(c_base + foot_c)
    q_word_bytes = beats_per_word(plan.q_word_bits, plan.bus_bytes) * plan.bus_bytes
    return a_base, b_base, c_base, q_base, up(q_base + plan.q_words * q_word_bytes)


def _field_bits(config: AcceleratorConfig) -> dict[str, tuple[str, int]]:
    """``{descriptor field: (config field, bits)}`` of the fields the two widths bound, in register order."""
    from codesign.hdl.control.regs import ADDRESS_FIELDS, DESCRIPTOR_FIELDS, DIM_FIELDS

    out = {}
    for name, _ in DESCRIPTOR_FIELDS:
        if name in DIM_FIELDS:
            out[name] = ("dim_bits", config.dim_bits)
        elif name in ADDRESS_FIELDS:
            out[name] = ("dram_addr_bits", config.dram_addr_bits)
    return out


def check_fields(layer: str, desc: dict[str, int], config: AcceleratorConfig, *, kind: str = "") -> None:
    """Refuse, in one line, a descriptor of ``layer`` with a dimension (``kind="dim_bits"``), an address or stride
    (``kind="dram_addr_bits"``) or either (``kind=""``) wider than its register in the design for ``config``."""
    for name, (field, bits) in _field_bits(config).items():
        v = desc.get(name, 0)
        if (not kind or field == kind) and v >> bits:
            what = "GEMM dimensions and tile counts" if field == "dim_bits" else "DRAM byte addresses and strides"
            raise ConfigError(f"layer {layer!r}: descriptor {name} = {v} does not fit {field}: {bits} ({what} "
                              f"below 2**{bits} in this design; it needs {field}: {v.bit_length()})")


def check_layout_end(layer: str, end: int, config: AcceleratorConfig, *, what: str = "its DRAM layout") -> None:
    """Refuse, in one line, a DRAM image that ``layer``'s placement (``what``) ends at byte ``end`` (exclusive)
    beyond the ``2**dram_addr_bits`` bytes the design for ``config`` addresses."""
    bits = config.dram_addr_bits
    if end > 1 << bits:
        raise ConfigError(f"layer {layer!r}: {what} ends at byte {end}, beyond the {1 << bits} bytes "
                          f"dram_addr_bits: {bits} addresses (it needs dram_addr_bits: {(end - 1).bit_length()})")


def check_plan(layer: str, plan: Any, config: AcceleratorConfig) -> None:
    """Refuse, in one line, a layer whose plan (laid out alone from byte 0, as ``verify`` lays out a layer) does not
    fit the design's widths: a dimension beyond ``dim_bits``, a layout beyond ``2**dram_addr_bits`` bytes, an
    address or stride beyond ``dram_addr_bits``."""
    a_base, b_base, c_base, q_base, end = layer_regions(plan, 0)
    desc = plan.descriptor(a_base, b_base, c_base, q_base)
    check_fields(layer, desc, config, kind="dim_bits")
    check_layout_end(layer, end, config)
    check_fields(layer, desc, config, kind="dram_addr_bits")
