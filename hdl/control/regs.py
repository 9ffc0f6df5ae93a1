"""The register block of the whole-layer accelerator: its map (pure Python) and an AXI4-Lite slave.

The map is data (:data:`REGISTERS`): the Amaranth block, the C header and the Python description
that ``codesign generate`` writes, and the host API in :mod:`codesign.hdl.host` all come from it.
Registers are 32 bits on the bus; a counter is a ``_LO``/``_HI`` pair (read ``_LO`` first: it
does not latch ``_HI``, so read while the accelerator is idle) of :data:`COUNTER_BITS` bits (``_HI``
holds bits 39..32, zero above; a counter wraps at ``2**40``: 92 minutes of cycles at 200 MHz). Writes honour ``wstrb``.

Only STATUS, ERROR, VERSION and the counters are readable (a read of any other offset returns 0):
the descriptor registers are write-only, so the read path is a 13-way multiplexer, not one over
every register (on an iCE40 UP5K that multiplexer alone was about a fifth of the logic).

Each descriptor field is held in as many flip-flops as the design needs (:func:`field_bits`: derived
from the config, published in the C header, the Python map and ``codesign generate``'s JSON).
A field a design does not build (0 bits) reads as 0 and ignores writes. A narrower field keeps one
more flip-flop, set while the bits above its width (as a 32-bit register would hold them) are not all
zero (for a two's complement field, :data:`SIGNED_FIELDS`: not all copies of its top bit); any such
flag raises ERROR bit ``too_wide`` at start (the layer does not run). The flag is exact for writes
that strobe every byte holding bits above the width (a full-word write) and conservative otherwise:
a write that leaves such a byte unwritten keeps a set flag set, and a write to a two's complement
field that strobes some but not all of the bytes holding its top bit and the bits above sets it.

Timing: a write takes effect at the edge that completes its address and data handshake (both
are accepted in the same cycle); a read answers one cycle after its address handshake.
"""

from __future__ import annotations

from dataclasses import dataclass

# descriptor fields, in register order (the keys of codesign.sim.tileplan.TilePlan.descriptor)
DESCRIPTOR_FIELDS: tuple[tuple[str, str], ...] = (
    ("a_base", "byte address of the A blocks (im2col'd activations), aligned to the bus width"),
    ("b_base", "byte address of the B blocks (weights), aligned to the bus width"),
    ("c_base", "byte address of the C blocks (accumulators), aligned to the bus width"),
    ("m", "GEMM rows M (output pixels x batch)"),
    ("n", "GEMM columns N (output channels per group)"),
    ("k", "reduction K (input channels per group x kernel)"),
    ("groups", "independent GEMMs (groups, heads)"),
    ("mt", "tile rows"),
    ("nt", "tile columns"),
    ("kt", "tile reduction"),
    ("gt", "groups per tile (a power of two)"),
    ("flags", "bit 0: A reused across the N loop; bit 1: B reused across the M loop; bit 2: weights outer; "
              "bit 3: depthwise (the layer runs on the depthwise engine); bit 4: vector (an add on the vector unit); "
              "bit 5: with bit 4, a multiply by a per-plane scale word (squeeze-excite); bit 6: windows (a "
              "convolution reading its feature map as planes, windows made on chip: M pixels in tiles of whole "
              "output rows, K input planes, groups the images); bit 7: residual add in the write-back (each "
              "requantized output word goes through the vector unit's ADD with its word of the residual, read "
              "with the tile's loads from the same blocks as C's at res_base; vec_* fields: the add's parameters); "
              "bits 9..8: with bit 3, the depthwise engine's mode (0: a depthwise convolution, 1: a max pool, its "
              "maxima through the write-back's identity table; others refused); bit 10: table activation in the "
              "write-back (each requantized output word goes through the vector unit's TABLE, the activation's "
              "2**act_bits entries read as the last table_words of the q_words words at q_base, act_bits each, "
              "packed from bit 0 of a word, and written into the unit in 2**act_bits cycles after the "
              "requantization table; not with bit 7 or bit 4); bit 11: max pool in the write-back (a tile is one "
              "output row of every channel; its store passes the requantized words through the pool stage and, "
              "when the row ends a pooled row's window, writes that pooled row: pl_* fields, cv_c_block the "
              "pooled planes' stride; not with bits 3, 4, 6, 7, 10); bit 12: the input is resident in the input "
              "buffer's slot of bit 13 (no A loads); bit 13: the input's slot (resident, or where its one load "
              "goes); bit 14: resident output (each store writes its words into the input buffer at c_addr, in "
              "buffer words: c_base the other slot's first word, the C strides and cv_c_block in words; not with "
              "bits 4, 7, 11); bit 15: depthwise stage in the write-back (a 1x1 convolution of one input plane in "
              "tiles of one row of one plane, weights outer; each store passes the requantized words through the "
              "depthwise engine with the padding positions, and stores the depthwise output rows the pass "
              "completes, requantized with the table words q_nf + plane, to c_base's planes in order; the engine's "
              "weights are the table words from 2 * q_nf on, 56 // weight_bits taps a word, each plane's taps and "
              "channel count from a fresh word; dw_* fields the geometry, dw_rows_00 the map's height, dws_* the "
              "depthwise output's zero point and clamps; not with bits 3, 4, 6, 7, 10, 11, 12..14)"),
    ("a_stride_g", "bytes between A blocks of consecutive group tiles"),
    ("a_stride_m", "bytes between A blocks of consecutive M tiles"),
    ("a_stride_k", "bytes between A blocks of consecutive K tiles"),
    ("b_stride_g", "bytes between B blocks of consecutive group tiles"),
    ("b_stride_n", "bytes between B blocks of consecutive N tiles"),
    ("b_stride_k", "bytes between B blocks of consecutive K tiles"),
    ("c_stride_g", "bytes between C blocks of consecutive group tiles"),
    ("c_stride_m", "bytes between C blocks of consecutive M tiles"),
    ("c_stride_n", "bytes between C blocks of consecutive N tiles"),
    ("a_words_00", "buffer words of an A block (one group): full M tile, full K tile"),
    ("a_words_01", "... full M tile, last K tile"),
    ("a_words_10", "... last M tile, full K tile"),
    ("a_words_11", "... last M tile, last K tile"),
    ("b_words_00", "buffer words of a B block (one group): full K tile, full N tile"),
    ("b_words_01", "... full K tile, last N tile"),
    ("b_words_10", "... last K tile, full N tile"),
    ("b_words_11", "... last K tile, last N tile"),
    ("c_words_00", "buffer words of a C block (one group): full M tile, full N tile"),
    ("c_words_01", "... full M tile, last N tile"),
    ("c_words_10", "... last M tile, full N tile"),
    ("c_words_11", "... last M tile, last N tile"),
    ("q_base", "requantize: byte address of the per-channel table (bias, mult, shift per output channel)"),
    ("q_words", "requantize: table words (groups x ceil(N / cols); is: groups x N); read before the first tile"),
    ("q_nf", "requantize: table words per group, ceil(N / cols) (is: N)"),
    ("q_stride_n", "requantize: table words between consecutive N tiles, nt / cols (is: nt)"),
    ("c_nf_0", "requantize: table words of a full N tile, ceil(nt / cols) (is: nt)"),
    ("c_nf_1", "requantize: table words of the last N tile"),
    ("zero_point", "requantize: output zero point (two's complement)"),
    ("clamp_lo", "requantize: lowest output value (two's complement; the zero point for ReLU)"),
    ("clamp_hi", "requantize: highest output value (two's complement)"),
    # depthwise mode (flags bit 3; sim.dwplan.DwPlan.descriptor): M is output rows, groups are planes of
    # cols channels, a_words_{last band}{first band} and the fields below describe the bands
    ("dw_skew", "depthwise: bytes the A address of a band after the first lies before m0 * a_stride_m / mt "
                "(pad_top rows of the input)"),
    ("dw_in_w", "depthwise: input width (pixels)"),
    ("dw_pad", "depthwise: padding top (bits 7..0), left (15..8), bottom of the last band (23..16), right (31..24)"),
    ("dw_kernel", "depthwise: kernel height (7..0), width (15..8), stride height (23..16), width (31..24)"),
    ("dw_rows_00", "depthwise: input rows of a middle band"),
    ("dw_rows_01", "depthwise: input rows of the first band"),
    ("dw_rows_10", "depthwise: input rows of the last band"),
    ("dw_rows_11", "depthwise: input rows of the only band"),
    # window mode (flags bit 6; sim.convplan.WinPlan.descriptor): the dw_* fields describe the bands and the
    # kernel (dw_pad's bottom unused), these the windows
    ("cv_out_w", "windows: output width (pixels)"),
    ("cv_dil", "windows: dilation height (7..0), width (15..8)"),
    ("cv_row_step", "windows: input words from an output row's windows to the next row's (stride height x input "
                    "width)"),
    ("cv_dil_step", "windows: input words from a kernel row to the next (dilation height x input width)"),
    ("cv_lanes", "windows: channels of the last input plane"),
    ("cv_a_block", "windows: bytes from an input plane to the next (the A blocks of a tile)"),
    ("cv_c_block", "windows: bytes from an output plane to the next (the C blocks of a tile)"),
    ("cv_top_words", "windows: input words of the first band's top padding rows (pad top x input width)"),
    ("cv_a_tile_words", "windows: input-buffer words of the largest tile (kt planes of the tallest band)"),
    # vector mode (flags bit 4; sim.vecplan.VecPlan.descriptor): an add of two flat tensors in chunks of mt words,
    # X through the input buffer, Y through the weight buffer; TFLite's 8-bit ADD parameters (two's complement)
    ("vec_b_stride_m", "vector: bytes between the B (second operand) chunks of consecutive M tiles"),
    ("vec_input1_offset", "vector: input 1 offset (minus its zero point)"),
    ("vec_input2_offset", "vector: input 2 offset"),
    ("vec_left_shift", "vector: left shift of both inputs (20 for 8-bit ADD)"),
    ("vec_input1_multiplier", "vector: input 1 Q31 multiplier"),
    ("vec_input1_shift", "vector: input 1 shift (<= 0)"),
    ("vec_input2_multiplier", "vector: input 2 Q31 multiplier"),
    ("vec_input2_shift", "vector: input 2 shift (<= 0)"),
    ("vec_output_multiplier", "vector: output Q31 multiplier"),
    ("vec_output_shift", "vector: output shift"),
    ("vec_output_offset", "vector: output zero point"),
    ("vec_act_min", "vector: lowest output"),
    ("vec_act_max", "vector: highest output"),
    ("res_base", "residual add (flags bit 7): byte address of the residual, laid out as C (its blocks at "
                 "res_base - c_base from C's)"),
    # a max pool in the write-back (flags bit 11; sim.poolfuse): the pooled map goes to c_base as planes
    ("pl_kernel", "pool: kernel height (7..0), width (15..8), stride height (23..16), width (31..24)"),
    ("pl_pad", "pool: padding top (7..0), left (15..8)"),
    ("pl_conv", "pool: the convolution output's height (15..0), width (31..16)"),
    ("pl_out", "pool: the pooled map's height (15..0), width (31..16)"),
    ("pl_row_bytes", "pool: bytes of one pooled row of a plane"),
    ("pl_image_bytes", "pool: bytes of one image's pooled planes"),
    # a depthwise convolution in the write-back (flags bit 15; sim.dwfuse): the dw_* fields its geometry, dw_rows_00
    # the map's height, c_base its output planes, the table its requantization and weights after the 1x1's
    ("dws_zero_point", "depthwise stage: the depthwise output's zero point (two's complement)"),
    ("dws_clamp_lo", "depthwise stage: lowest depthwise output (two's complement)"),
    ("dws_clamp_hi", "depthwise stage: highest depthwise output (two's complement)"),
)

#: bits of each counter (``_HI`` reads bits 39..32): 2**40 cycles are 92 minutes at 200 MHz, 2**40 bytes a
#: terabyte; 64 bits cost an iCE40 UP5K about 5 % of its logic cells in adders and the read multiplexer
COUNTER_BITS = 40

COUNTERS: tuple[tuple[str, str], ...] = (
    ("cycles", "cycles from start to done"),
    ("stall_cycles", "cycles of the layer in which the array was not computing"),
    ("dram_read_bytes", "bytes read over AXI (bus beats x bus width)"),
    ("dram_write_bytes", "bytes written over AXI (bus beats x bus width)"),
    ("enabled_macs", "MACs the PEs enabled (operands inside the GEMM; non-zero with gating)"),
)

# error bits (ERROR register): the descriptor checks the hardware makes at start
ERROR_BITS: tuple[tuple[str, str], ...] = (
    ("zero_size", "m, n, k, groups, mt, nt, kt or gt is zero"),
    ("tile_too_large", "mt > m, nt > n, kt > k or gt > groups"),
    ("unaligned", "a base address or stride is not a multiple of the bus width"),
    ("a_overflow", "gt x a_words_00 (or an A block) exceeds a slot of the input buffer"),
    ("b_overflow", "gt x b_words_00 (or a B block) exceeds a slot of the weight buffer"),
    ("c_overflow", "gt x c_words_00 (or a C block) exceeds a slot of the output buffer"),
    ("gt_not_power_of_two", "gt is not a power of two"),
    ("q_overflow", "requantize: q_words exceeds the requantization table buffer"),
    ("dw_unsupported", "depthwise: no depthwise engine in this design, or a kernel larger than its window, or a "
                       "padded width larger than its line buffers, or an engine mode (flags bits 9..8) other than "
                       "0 and 1, or a mode without bit 3; the depthwise stage (flags bit 15): not built in this "
                       "design, or with another mode, or a tile other than one row (mt = dw_in_w) of one plane "
                       "(nt = cols), all of K, weights outer, one group"),
    ("vec_unsupported", "vector: no vector unit in this design, or both depthwise and vector modes"),
    ("cv_unsupported", "windows: no window generation in this design, or windows with another mode, or gt > 1"),
    ("res_unsupported", "residual add: no vector unit or requantizing write-back in this design, or with the "
                        "depthwise or vector mode"),
    ("too_wide", "a descriptor field was written with bits above its width in this design (field_bits)"),
    ("act_unsupported", "table activation: no vector unit or requantizing write-back in this design, or "
                        "with the vector mode or a residual add, or q_words smaller than the activation table"),
    ("pool_unsupported", "max pool in the write-back: no pool stage in this design, or with another mode, or a "
                         "tile other than one output row (mt != the convolution's width) of every channel, or a "
                         "pooled row wider than the stage holds"),
    ("resident_unsupported", "residency (flags bits 12..14): not built in this design, or a resident output "
                             "with the vector mode, a residual add or a pool in the write-back, or a resident "
                             "input with the vector mode"),
)

STATUS_BITS = (("busy", "running a layer"), ("done", "the last layer finished (cleared by start)"),
               ("error", "the last start was refused; see ERROR"))


@dataclass(frozen=True)
class Register:
    name: str
    offset: int
    access: str  # "rw", "r", "w"
    description: str


def _build() -> tuple[Register, ...]:
    regs = [Register("ctrl", 0x00, "w", "bit 0: start the layer (ignored while busy)"),
            Register("status", 0x04, "r", "bit 0: busy; bit 1: done; bit 2: error"),
            Register("error", 0x08, "r", "; ".join(f"bit {i}: {d}" for i, (_, d) in enumerate(ERROR_BITS))),
            Register("version", 0x0C, "r", f"register map version ({MAP_VERSION})")]
    off = 0x10
    for name, desc in DESCRIPTOR_FIELDS:
        regs.append(Register(name, off, "w", desc))
        off += 4
    off = (off + 0x3F) & ~0x3F
    for name, desc in COUNTERS:
        regs.append(Register(f"{name}_lo", off, "r", f"{desc} (bits 31..0)"))
        regs.append(Register(f"{name}_hi", off + 4, "r", f"{desc} (bits {COUNTER_BITS - 1}..32; zero above)"))
        off += 8
    return tuple(regs)


MAP_VERSION = 11  # 5: write-only descriptor registers at field_bits widths, ERROR bit too_wide; 6: 40-bit counters;
# 7: flags bit 10 (table activation), ERROR bit act_unsupported; 8: flags bit 11 (max pool in the write-back),
# pl_* fields, ERROR bit pool_unsupported; 9: flags bits 12..14 (residency), ERROR bit resident_unsupported;
# 10: flags bit 15 (a depthwise convolution in the write-back), dws_* fields; 11: the zero points and clamps
# act_bits + 1 bits two's complement (SIGNED_FIELDS)
REGISTERS: tuple[Register, ...] = _build()
REGISTER_OFFSETS: dict[str, int] = {r.name: r.offset for r in REGISTERS}
READABLE: tuple[str, ...] = tuple(r.name for r in REGISTERS if "r" in r.access)
REGS_ADDR_BITS = 9

#: descriptor fields of GEMM dimensions, tile sizes and tile counts (the tile iterator's counters): the config's
#: ``dim_bits`` wide
DIM_FIELDS = ("m", "n", "k", "groups", "mt", "nt", "kt", "gt", "c_nf_0", "c_nf_1")
#: descriptor fields of DRAM byte addresses and strides (the tile iterator's offsets, the DMA's burst walks, the
#: pool stage's rows): the config's ``dram_addr_bits`` wide
ADDRESS_FIELDS = ("a_base", "b_base", "c_base", "a_stride_g", "a_stride_m", "a_stride_k", "b_stride_g", "b_stride_n",
                  "b_stride_k", "c_stride_g", "c_stride_m", "c_stride_n", "q_base", "dw_skew", "cv_a_block",
                  "cv_c_block", "vec_b_stride_m", "res_base", "pl_row_bytes", "pl_image_bytes")
FLAGS_BITS = 16  # flags bits 15..0 (14..0 in a design without the depthwise stage)
#: fields of at most 16 bits whatever the config: pixel widths and heights of depthwise and window mode
#: (the engine's counters hold DW_DIM_BITS = 10, the window generator's 12: sim.dwplan, sim.convplan)
#: and the window mode's pair of 8-bit dilations
_FIELDS_16 = ("dw_in_w", "dw_rows_00", "dw_rows_01", "dw_rows_10", "dw_rows_11", "cv_out_w", "cv_dil")
#: requantization fields the write-back reads only with requantize
_Q_FIELDS = ("q_base", "q_words", "q_nf", "q_stride_n", "zero_point", "clamp_lo", "clamp_hi")
#: two's complement fields held at ``act_bits + 1`` bits (the output's zero point and clamps: both the signed
#: and the unsigned output range, -256..255 for 8 bits, what ``hdl.memory.dma.requantize_lane`` takes); a value
#: is too wide when the bits of a 32-bit word above the field's top bit are not all copies of it
SIGNED_FIELDS = ("zero_point", "clamp_lo", "clamp_hi", "dws_zero_point", "dws_clamp_lo", "dws_clamp_hi")


def _addr_bits(depth: int) -> int:
    return max(1, (depth - 1).bit_length())


def words_bits(config) -> int:
    """Bits of a buffer-word count in the design for ``config`` (the tile iterator's block sizes): one
    more than the address bits of the deepest buffer, so a slot's whole depth is representable."""
    from codesign.hdl.plan import HardwarePlan, core_config

    p = HardwarePlan(core_config(config))
    return max(_addr_bits(d) for d in (p.act_depth, p.weight_depth, p.out_depth)) + 1


def field_bits(config) -> dict[str, int]:
    """Flip-flops of each descriptor field in the whole-layer design for ``config``
    (an :class:`codesign.sim.config.AcceleratorConfig`), in register order.

    0: the design does not build the field (an engine it leaves out, or requantization without
    ``requantize``): it reads as 0 and writes are ignored. 32: a full register (packed bytes, two's
    complement values; addresses and dimensions at ``dram_addr_bits``/``dim_bits`` 32). Otherwise the
    field's largest legal value is below ``2**bits``, from the config: DRAM byte addresses and strides
    (:data:`ADDRESS_FIELDS`, ``config.dram_addr_bits``), GEMM dimensions and tile counts (:data:`DIM_FIELDS`,
    ``config.dim_bits``: the tile iterator), block sizes in buffer words (:func:`words_bits`),
    requantization table words (the table's depth), the last window plane's channels (the array's rows),
    pixel counts (16); the output zero points and clamps (:data:`SIGNED_FIELDS`) are two's complement values
    of ``act_bits + 1`` bits. A wider value sets ERROR ``too_wide``; :func:`codesign.hdl.host.check_descriptor`
    refuses it first.
    """
    from codesign.sim.convplan import design_reason as win_reason
    from codesign.sim.dwplan import design_reason as dw_reason
    from codesign.sim.poolfuse import design_reason as pool_reason
    from codesign.sim.tileplan import q_table_words
    from codesign.sim.vecplan import design_reason as vec_reason

    depthwise = config.depthwise_on_engine and not dw_reason(config)
    vector = not vec_reason(config)
    windows = not win_reason(config)
    residual = vector and config.requantize
    pool = not pool_reason(config)
    from codesign.sim.dwfuse import design_reason as dws_reason

    dws = not dws_reason(config)
    wb = words_bits(config)
    qb = q_table_words(config).bit_length()
    out: dict[str, int] = {}
    for name, _ in DESCRIPTOR_FIELDS:
        if ((name.startswith("dw_") and not (depthwise or windows)) or (name.startswith("vec_") and not vector)
                or (name.startswith("cv_") and not windows) or (name.startswith("res_") and not residual)
                or (name.startswith("pl_") and not pool) or (name.startswith("dws_") and not dws)
                or (name in _Q_FIELDS and not config.requantize)):
            bits = 0
        elif name in SIGNED_FIELDS:
            bits = config.act_bits + 1
        elif name in DIM_FIELDS:
            bits = config.dim_bits
        elif name in ADDRESS_FIELDS:
            bits = config.dram_addr_bits
        elif name == "flags":  # bit 15 (the depthwise stage) where the design builds it
            bits = FLAGS_BITS if dws else FLAGS_BITS - 1
        elif "_words_" in name or name == "cv_a_tile_words":
            bits = wb
        elif name in ("q_words", "q_nf", "q_stride_n"):
            bits = qb
        elif name == "cv_lanes":
            bits = config.rows.bit_length()
        elif name in _FIELDS_16 or name == "pl_pad":
            bits = 16
        else:
            bits = 32
        out[name] = bits
    return out


def c_header(prefix: str = "CODESIGN", config=None) -> str:
    """The register map as a C header (offsets, bit positions; with ``config``, each descriptor
    field's width in that design as ``<PREFIX>_<FIELD>_BITS``: see :func:`field_bits`)."""
    lines = [f"/* codesign whole-layer accelerator: register map v{MAP_VERSION} (AXI4-Lite, 32-bit registers) */",
             f"#ifndef {prefix}_REGS_H", f"#define {prefix}_REGS_H", ""]
    for r in REGISTERS:
        lines.append(f"#define {prefix}_{r.name.upper():<20} 0x{r.offset:03X}u  /* {r.access}: {r.description} */")
    lines.append("")
    for i, (name, _) in enumerate(STATUS_BITS):
        lines.append(f"#define {prefix}_STATUS_{name.upper():<13} (1u << {i})")
    for i, (name, _) in enumerate(ERROR_BITS):
        lines.append(f"#define {prefix}_ERROR_{name.upper():<14} (1u << {i})")
    if config is not None:
        lines += ["", "/* descriptor field widths in this design (0: not built, writes ignored; a wider value "
                      "raises ERROR_TOO_WIDE); " + ", ".join(SIGNED_FIELDS).upper() + " are two's complement, "
                      "from -2**(bits-1) to 2**(bits-1)-1 */"]
        for name, bits in field_bits(config).items():
            lines.append(f"#define {prefix}_{(name + '_bits').upper():<25} {bits}u")
    lines += ["", f"#endif /* {prefix}_REGS_H */", ""]
    return "\n".join(lines)


def description(config=None) -> dict[str, object]:
    """The register map as plain data (what ``codesign generate`` writes as JSON / Python); with
    ``config``, ``field_bits``: each descriptor field's width in that design."""
    out: dict[str, object] = {
        "version": MAP_VERSION,
        "bus": "AXI4-Lite, 32-bit data",
        "registers": [{"name": r.name, "offset": r.offset, "access": r.access, "description": r.description}
                      for r in REGISTERS],
        "status_bits": {name: i for i, (name, _) in enumerate(STATUS_BITS)},
        "error_bits": {name: i for i, (name, _) in enumerate(ERROR_BITS)},
    }
    if config is not None:
        out["field_bits"] = field_bits(config)
        out["signed_fields"] = list(SIGNED_FIELDS)  # two's complement within their field_bits
    return out


def python_module(config=None) -> str:
    """A dependency-free Python module with the register map (for a host script); with ``config``,
    ``FIELD_BITS``: each descriptor field's width in that design."""
    lines = ['"""codesign whole-layer accelerator: register map (generated by codesign generate)."""', "",
             f"VERSION = {MAP_VERSION}", "OFFSETS = {"]
    lines += [f"    {r.name!r}: 0x{r.offset:03X},  # {r.access}: {r.description}" for r in REGISTERS]
    lines += ["}", "STATUS_BITS = {" + ", ".join(f"{n!r}: {i}" for i, (n, _) in enumerate(STATUS_BITS)) + "}",
              "ERROR_BITS = {" + ", ".join(f"{n!r}: {i}" for i, (n, _) in enumerate(ERROR_BITS)) + "}"]
    if config is not None:
        lines.append("# descriptor field widths in this design (0: not built; a wider value raises ERROR too_wide)")
        lines.append("FIELD_BITS = {" + ", ".join(f"{n!r}: {b}" for n, b in field_bits(config).items()) + "}")
        lines.append("# two's complement fields: from -2**(bits-1) to 2**(bits-1)-1")
        lines.append(f"SIGNED_FIELDS = {SIGNED_FIELDS!r}")
    lines.append("")
    return "\n".join(lines)
