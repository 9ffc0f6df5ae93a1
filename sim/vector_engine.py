"""The depthwise engine (``depthwise: engine``, model-only): channel-parallel MACs beside the array.

On the PE array a depthwise convolution is ``C`` GEMMs with ``N = 1`` (one output channel per
group), so the array uses one column in ``cols`` and the im2col'd input moves ``R * S`` times the
feature map. Edge accelerators give depthwise layers their own datapath instead; this one is:

* ``lanes = config.dw_lanes`` channels at a time (one per array column unless
  ``depthwise_lanes`` is given), each lane a window of ``R * S`` multipliers and an adder tree,
  fed by line buffers over the channels-last input: the engine of :mod:`codesign.hdl.engines.depthwise`
  (built and verified on its own in the Amaranth simulator; not yet wired into the whole-layer top).
  It scans the padded input band in raster order, one position a cycle, so a pass (one lane group,
  one channel multiplier, one image) takes ``band_rows * padded_width + DW_LATENCY_CYCLES`` cycles
  (:func:`dw_pass_cycles`, the RTL's ``pass_cycles``): strided layers pay for the positions between
  their outputs.
* Tiles are channel groups (a multiple of the lanes) or, when one group's feature map does not
  fit half the input SRAM, bands of output rows of one lane group (with their ``R - stride``
  rows of halo). A tile loads its input band and its weights, computes, and stores its outputs
  requantized to the layer's output bits (the engine's write-back) through the same DMA and
  double-buffered pipeline as the array's tiles (``codesign.sim.engine``).
* Counts: MACs (gated with zero-gating, as on the array), each input element read from the
  input SRAM once per pass, each weight once, window and weight registers per MAC, outputs
  written once.

Energy uses the same table as the array (MAC, register, SRAM and DRAM per bit). Not built in
the generated hardware: results are marked model-only.
"""

from __future__ import annotations

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, ZeroHandling
from codesign.sim.fusion import DRAM, ONCHIP, LayerContext
from codesign.sim.result import Counts
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import Conv2d

REASON = "runs on the depthwise engine (not built in the generated hardware)"
DW_LATENCY_CYCLES = 5  # codesign.hdl.engines.depthwise.LATENCY_CYCLES (tested equal)


def dw_pass_cycles(rows: int, padded_width: int) -> int:
    """Cycles of one depthwise-engine pass over ``rows`` padded input rows of ``padded_width``."""
    return rows * padded_width + DW_LATENCY_CYCLES


def plan_depthwise(layer: Conv2d, batch: int, config: AcceleratorConfig, context: LayerContext):  # type: ignore[no-untyped-def]
    """The :class:`codesign.sim.mapping.LayerPlan` of a depthwise convolution on the engine."""
    from codesign.sim.mapping import LayerPlan, TileRun, _sizes, effective_bits

    cfg = config
    lanes = cfg.dw_lanes
    ab = effective_bits(layer.inputs, cfg.act_bits)
    wb = effective_bits(layer.weights, cfg.weight_bits)
    ob = min(layer.outputs.bits, cfg.acc_bits)
    c, mult = layer.in_channels, layer.out_channels // layer.groups
    r, s = layer.r, layer.s
    sh = layer.stride[0]  # type: ignore[index]
    dil = layer.dilation[0]  # type: ignore[index]
    oh, ow = layer.out_h, layer.out_w
    in_w = layer.in_w + layer.padding[1] + layer.padding[3]  # type: ignore[index]
    eff_r = dil * (r - 1) + 1
    slots = 2 if cfg.double_buffered else 1
    cap_in = cfg.input_sram_bytes * 8 // slots
    cap_w = cfg.weight_sram_bytes * 8 // slots
    cap_out = cfg.output_sram_bytes * 8 // slots

    def in_rows(out_rows: int) -> int:
        return (out_rows - 1) * sh + eff_r

    def fits(ct: int, rows: int) -> bool:
        return (ct * in_rows(rows) * in_w * batch * ab <= cap_in and ct * mult * r * s * wb <= cap_w
                and ct * mult * rows * ow * batch * ob <= cap_out)

    ct0 = min(c, lanes)
    if fits(ct0, oh):  # whole maps: as many lane groups per tile as fit
        ct = ct0
        while ct + lanes <= c and fits(ct + lanes, oh):
            ct += lanes
        if ct < c and fits(c, oh):
            ct = c
        rows = oh
    else:  # bands of output rows of one lane group
        rows = oh
        while rows > 1 and not fits(ct0, rows):
            rows = max(1, rows // 2)
        if not fits(ct0, rows):
            raise ConfigError(f"input_sram_bytes must hold {r} input rows of {ct0} channels for the depthwise "
                              f"engine on layer {layer.name!r}, not {cfg.input_sram_bytes!r}")
        ct = ct0
    a_onchip, c_onchip = context.input_from == ONCHIP, context.output_to == ONCHIP
    runs: list[TileRun] = []
    load_bits = store_bits = in_reads = 0
    for cs, cn in _sizes(c, ct):
        passes = ceil_div(cs, lanes)
        for rs, rn in _sizes(oh, rows):
            band_in = min(in_rows(rs), layer.in_h + layer.padding[0] + layer.padding[2])  # type: ignore[index]
            in_bits = cs * band_in * in_w * batch * ab
            w_bits = cs * mult * r * s * wb
            o_bits = cs * mult * rs * ow * batch * ob
            load = (0 if a_onchip or context.input_from != DRAM else in_bits) + w_bits
            store = 0 if c_onchip else o_bits
            comp = passes * mult * batch * dw_pass_cycles(band_in, in_w)
            runs.append(TileRun(cn * rn, ceil_div(load, 8), ceil_div(store, 8), comp))
            load_bits += cn * rn * ceil_div(load, 8) * 8
            store_bits += cn * rn * ceil_div(store, 8) * 8
            in_reads += cn * rn * in_bits
    macs = layer.macs(batch)
    if cfg.zero_handling is ZeroHandling.NONE:
        active, gated = macs, 0
    else:
        active = round(macs * layer.weights.density * layer.inputs.density)
        gated = macs - active
    outputs = layer.output_elements(batch)
    counts = Counts(
        active_macs=active,
        gated_macs=gated,
        register_bits=active * (ab + wb),
        input_sram_read_bits=in_reads,
        input_sram_write_bits=(0 if a_onchip else in_reads) + context.resident_bits,
        weight_sram_read_bits=layer.weight_elements * wb,
        weight_sram_write_bits=layer.weight_elements * wb,
        output_sram_read_bits=outputs * ob,
        output_sram_write_bits=outputs * ob,
        dram_read_bits=load_bits,
        dram_write_bits=store_bits,
    )
    return LayerPlan(runs=tuple(runs), counts=counts, folds=0, tile_mnk=(ct, rows, mult, r * s))
