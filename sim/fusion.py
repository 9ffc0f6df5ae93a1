"""Inter-layer dataflow: which layers fuse into a producer's write-back, which outputs stay on chip.

The graph. Each layer reads one or more activation operands (Conv2d/Linear/Pool: its input;
MatMul: A and B; Eltwise: each input). :func:`producers` gives the producer of each operand:
the layer's ``sources`` when the workload names them, else the latest earlier layer whose output
has as many elements as the first operand (the previous layer in a chain; the branch point of a
residual or concat branch), and "unknown" (read from DRAM) for the other operands.

``fusion: auto`` (the default): what the hardware builds (below), nothing else: a residual add
fuses where it would with ``eltwise`` and the design builds it; every other layer runs alone.

``fusion: eltwise``. An Eltwise layer (residual add, activation or BN lowered to a multiply/add,
a scalar or per-channel op) whose first operand is the output of the layer executed just
before it, that output having no other consumer, runs in the write-back of the GEMM layer that
heads the chain (``fused_into``): the vector unit applies it to the output words on their way out,
so it takes no cycles or DRAM round trip of its own. Its energy stays on its own row (vector
ops, and the DRAM reads of operands that are not on chip: a residual input, a per-channel scale
of ``C`` elements, a scalar of one); the head's write-back DMA carries those reads (timed with
the head's stores). Add and multiply commute: when a later operand of the layer's full size is
that output (a residual add whose shortcut branch ran last, as in a ResNet block with a
downsample conv: ``add(conv2, downsample)``), the layer fuses the same way with that operand as
its input and the first as the other operand. (Without named sources the inferred first operand
is always the latest producer; a graph with its edges named, as the importers and the zoo give
it, keeps the model's operand order, so this general rule is what makes the two agree.)

``fusion: full``. Also keeps a tensor (a layer's output, after its fused ops) on chip for its
consumers when it fits: resident tensors live in the input SRAM (``input_sram_bytes`` of them at
most at any time, at the layer's output bits). A tensor is admitted, in execution order, when
from its producer to its last consumer the resident bytes stay within the input SRAM and every
layer in between that may load its input from DRAM keeps room for the smallest tile of it; such
a layer is tiled for the input SRAM left over (a valid plan for a smaller buffer). The producer
then writes it into the input SRAM instead of DRAM, and a consumer reading it loads no input
from DRAM (an im2col'd convolution reads its windows from the resident map).

**Built** (:func:`built_add_reason`): a residual add (``Eltwise`` ADD of two full tensors, TFLite's
arithmetic) fused alone into the requantized write-back of a convolution or linear layer on the
weight-stationary array beside the built vector unit, its other operand and the head's output in
DRAM. The head's DMA reads the residual's tile (the same blocks as the tile's output, at its own
base) with the loads of each tile that stores (into a residual buffer of ``2B`` output slots, so a
load never waits for a store), and its write-back sends each requantized word with its residual
word through the vector unit on the way out (``WRITEBACK_ADD_CYCLES`` more before a store's data).
The add's row keeps its vector ops; the head's row its cycles and the residual's DRAM bytes.
A max pool right after a convolution that has no other consumer, in that convolution's write-back
(:mod:`codesign.sim.poolfuse`, with ``fusion`` auto or eltwise, where the design builds the pool stage: the
head's row its cycles and the pooled map's DRAM bytes, the pool's its comparisons).
An output kept in the input buffer for the next layer when both read their input as one tile
(:mod:`codesign.sim.residency`, with ``fusion`` auto or eltwise where the design builds it: ``res_in``,
``res_out``, ``in_slot`` of the contexts). Everything else here (other fused layers, ``fusion: full``'s
residency) is model-only: the generated hardware runs those layers one by one through DRAM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from codesign.sim.config import AcceleratorConfig, Fusion
from codesign.sim.timing import ceil_div
from codesign.workloads.layers import NETWORK_INPUT, Eltwise, Layer, MatMul, Network

DRAM, ONCHIP, WRITEBACK = "dram", "onchip", "writeback"
FUSED_REASON = "fused into its producer's write-back (fusion is not built in the generated hardware)"
HEAD_REASON = "runs fused layers in its write-back (fusion is not built in the generated hardware)"
RESIDENT_REASON = "keeps tensors on chip between layers (fusion is not built in the generated hardware)"


@dataclass(frozen=True)
class LayerContext:
    """Where one layer's operands come from and where its output goes."""

    input_from: str = DRAM  # the first activation operand: dram, onchip or writeback (fused)
    other_from: str = ""  # the other activation operands: dram, onchip, writeback or '' (none)
    output_to: str = DRAM  # dram, onchip (resident for its consumers) or writeback (a fused layer goes on)
    fused_into: str = ""  # the head of the write-back this layer runs in ('' when not fused)
    writeback_read_bytes: int = 0  # head: DRAM bytes its write-back reads for the fused layers
    other_dram_bits: int = 0  # bits of the other operands read from DRAM
    input_sram_bytes: int = 0  # the input SRAM left for the layer's tiles (0: all of it)
    resident_bits: int = 0  # head: bits of its (fused) output written into the input SRAM
    fused_layers: int = 0  # head: how many layers run in its write-back
    writeback_add: bool = False  # head or fused layer: a residual add built in the head's write-back
    # head or fused layer: the max pool built in the head's write-back (codesign.sim.poolfuse)
    pool: Layer | None = None
    # head or fused layer: the depthwise convolution in the head's write-back (codesign.sim.dwfuse)
    dw: Layer | None = None
    # built residency (codesign.sim.residency): the input lies in the input buffer's slot in_slot (res_in),
    # the output goes into the other slot for the next layer (res_out)
    res_in: bool = False
    res_out: bool = False
    in_slot: int = 0
    single_tile: bool = False  # its windows plan reads the whole input as one tile (sim.residency.single_win_plan)

    @property
    def plain_head(self) -> bool:
        """A head whose only fusion is the built residual add (its operands otherwise the default's)."""
        return self.writeback_add and not self.fused and self == replace(
            DEFAULT, writeback_add=True, fused_layers=1, writeback_read_bytes=self.writeback_read_bytes,
            other_dram_bits=self.other_dram_bits)

    @property
    def fused(self) -> bool:
        return bool(self.fused_into)

    @property
    def is_default(self) -> bool:
        return self == DEFAULT


DEFAULT = LayerContext()


def activation_operands(layer: Layer, batch: int) -> tuple[int, ...]:
    """Elements of each activation operand of a layer, in operand order."""
    if isinstance(layer, Eltwise):
        return layer.operand_sizes(batch)
    if isinstance(layer, MatMul):
        return (layer.m * layer.k * layer.heads * batch, layer.k * layer.n * layer.heads * batch)
    return (layer.input_elements(batch),)


def producers(net: Network) -> tuple[tuple[int | None, ...], ...]:
    """The index of the producer of each activation operand of each layer (None: the network's
    input, or not known and read from DRAM)."""
    index = {layer.name: i for i, layer in enumerate(net.layers)}
    outs = [layer.output_elements(net.batch) for layer in net.layers]
    result: list[tuple[int | None, ...]] = []
    for i, layer in enumerate(net.layers):
        ops = activation_operands(layer, net.batch)
        if layer.sources:
            named: list[int | None] = [None if s == NETWORK_INPUT else index[s] for s in layer.sources]
            result.append(tuple(named[:len(ops)]) + (None,) * max(0, len(ops) - len(named)))
            continue
        first = next((j for j in range(i - 1, -1, -1) if outs[j] == ops[0]), None)
        result.append((first,) + (None,) * (len(ops) - 1))
    return tuple(result)


def _bytes(elements: int, bits: int) -> int:
    return ceil_div(elements * bits, 8)


def _min_input_bytes(layer: Layer, batch: int, config: AcceleratorConfig) -> int:
    """Input SRAM the smallest tile of a GEMM layer takes (0 for vector layers)."""
    g = layer.gemm(batch)
    if g is None:
        return 0
    from codesign.sim.tileplan import WordGeometry

    geo = WordGeometry(config.dataflow, config.rows, config.cols, config.act_bits, config.weight_bits,
                       config.acc_bits)
    slots = 2 if config.double_buffered else 1
    return ceil_div(geo.words(1, 1, 1)[0] * geo.a_word_bits * slots, 8)


def design_reason(config: AcceleratorConfig) -> str:
    """Why the generated hardware does not run ``config.fusion`` ('' when it does: none, or eltwise
    beside the built vector unit with requantized outputs of the weight-stationary array; each fused
    layer's own reasons are :func:`model_only_reasons`)."""
    if config.fusion in (Fusion.NONE, Fusion.AUTO):
        return ""
    if config.fusion is Fusion.FULL:
        return "fusion must be none or eltwise for the generated hardware (full keeps tensors on chip: model-only)"
    reason = writeback_add_reason(config)
    return f"fusion eltwise needs the built vector unit in the write-back ({reason})" if reason else ""


def writeback_add_reason(config: AcceleratorConfig) -> str:
    """Why ``config``'s write-back cannot add a residual ('' when it can, whatever ``config.fusion``)."""
    from codesign.sim import vecplan
    from codesign.sim.config import Dataflow

    reason = vecplan.design_reason(config)
    if not reason and (config.dataflow is not Dataflow.WS or not config.requantize):
        reason = "it runs on requantized outputs of the weight-stationary array"
    return reason


def built_add_reason(head: Layer, add: Layer, config: AcceleratorConfig) -> str:
    """Why the residual add ``add`` fused into ``head``'s write-back is not built ('' when it is)."""
    from codesign.workloads.layers import Conv2d, EltwiseOp, Linear

    if not isinstance(add, Eltwise) or add.op is not EltwiseOp.ADD or add.inputs_count != 2 or (
            add.operand_elements and set(add.operand_elements) != {add.elements}):
        return "the write-back adds a residual of the output's size"
    reason = writeback_add_reason(config)
    if reason:
        return reason
    if not isinstance(head, (Conv2d, Linear)) or (isinstance(head, Conv2d) and head.is_depthwise
                                                   and config.depthwise_on_engine):
        return "the write-back adds a residual to the array's convolutions and linear layers"
    if head.activation:
        return f"the write-back runs either a residual add or a table activation, and {head.name!r} has " \
               f"{head.activation}"
    return ""


def plan_network(net: Network, config: AcceleratorConfig,
                 maybe_single: Callable[[int], bool] | None = None) -> tuple[LayerContext, ...]:
    """The context of each layer of ``net`` under ``config.fusion`` (all default with ``none``).
    ``maybe_single``: whether layer ``i`` may read its input as one tile (False only where no plan of it does: the
    sweep's fast path knows its plans and slots), which spares residency planning those layers."""
    n = len(net.layers)
    if config.fusion is Fusion.NONE:
        return (DEFAULT,) * n
    auto = config.fusion is Fusion.AUTO
    layers, batch = net.layers, net.batch
    prod = list(producers(net))
    consumers: list[set[int]] = [set() for _ in range(n)]
    for i, ps in enumerate(prod):
        for p in ps:
            if p is not None:
                consumers[p].add(i)
    head = list(range(n))  # the GEMM layer whose write-back runs layer i (i itself when not fused)
    fused = [False] * n
    order = [tuple(range(len(ps))) for ps in prod]  # operand order, the fused (write-back) operand first
    for i, layer in enumerate(layers):
        if not isinstance(layer, Eltwise):
            continue
        sizes = layer.operand_sizes(batch)
        for j, p in enumerate(prod[i]):
            if (p is not None and p == i - 1 and consumers[p] == {i} and layers[head[p]].has_gemm
                    and (j == 0 or sizes[j] == layer.output_elements(batch))
                    and not (auto and (fused[p] or built_add_reason(layers[p], layer, config)))):
                fused[i] = True
                head[i] = head[p]
                if j:
                    order[i] = (j, *(k for k in order[i] if k != j))
                    prod[i] = tuple(prod[i][k] for k in order[i])
                break
    final = [not (i + 1 < n and fused[i + 1] and prod[i + 1][0] == i) for i in range(n)]
    out_bits = [min(layer.outputs.bits, config.act_bits) for layer in layers]

    resident = [False] * n  # by final layer of a tensor
    usage = [0] * n  # resident bytes while layer i runs
    if config.fusion is Fusion.FULL:
        budget = config.input_sram_bytes
        need = [_min_input_bytes(layer, batch, config) for layer in layers]
        for t in range(n):
            if not final[t] or not consumers[t]:
                continue
            start, last = head[t], max(consumers[t])
            size = _bytes(layers[t].output_elements(batch), out_bits[t])
            ok = True
            for j in range(start, last + 1):
                reads_t = prod[j][0] == t
                a_src = prod[j][0]
                a_resident = a_src is not None and resident[a_src]
                room = 0 if (reads_t or a_resident or fused[j]) else need[j]
                if usage[j] + size + room > budget:
                    ok = False
                    break
            if ok:
                resident[t] = True
                for j in range(start, last + 1):
                    usage[j] += size

    contexts: list[LayerContext] = []
    for i, layer in enumerate(layers):
        ops = tuple(activation_operands(layer, batch)[k] for k in order[i])
        ab = min(layer.inputs.bits, config.act_bits)

        def where(src: int | None, i: int = i) -> str:
            if src is None:
                return DRAM
            if fused[i] and head[src] == head[i] and src < i:
                return WRITEBACK
            return ONCHIP if resident[src] else DRAM

        first = WRITEBACK if fused[i] else where(prod[i][0])
        others = [where(s) for s in prod[i][1:]]
        other_from = ""
        if others:
            kinds = set(others)
            other_from = others[0] if len(kinds) == 1 else "+".join(sorted(kinds))
        other_dram_bits = sum(e * ab for e, w in zip(ops[1:], others, strict=True) if w == DRAM)
        if not final[i]:
            output_to = WRITEBACK
        else:
            output_to = ONCHIP if resident[i] else DRAM
        ctx = LayerContext(input_from=first, other_from=other_from, output_to=output_to,
                           fused_into=layers[head[i]].name if fused[i] else "", other_dram_bits=other_dram_bits)
        contexts.append(ctx)
    # the residual adds the hardware builds: alone in a head's write-back, both tensors in DRAM
    built = [False] * n
    for i in range(n):
        h = head[i]
        if (fused[i] and h == i - 1 and not [j for j in range(i + 1, n) if fused[j] and head[j] == h]
                and contexts[i].other_from == DRAM and contexts[h].input_from == DRAM
                and contexts[i].output_to == DRAM and not usage[h]
                and not built_add_reason(layers[h], layers[i], config)):
            built[i] = built[h] = True
    # heads: the DRAM reads of their fused layers, their resident output, their input SRAM
    out = []
    for i, ctx in enumerate(contexts):
        if fused[i]:
            out.append(replace(ctx, writeback_add=built[i]))
            continue
        members = [j for j in range(i + 1, n) if fused[j] and head[j] == i]
        wb_bits = sum(contexts[j].other_dram_bits for j in members)
        t = members[-1] if members else i
        res_bits = layers[t].output_elements(batch) * out_bits[t] if resident[t] else 0
        a_src = prod[i][0]
        a_onchip = a_src is not None and resident[a_src]
        left = config.input_sram_bytes - usage[i] if (usage[i] and not a_onchip) else 0
        out.append(LayerContext(input_from=ctx.input_from, other_from=ctx.other_from,
                                output_to=ONCHIP if resident[t] else DRAM,
                                writeback_read_bytes=ceil_div(wb_bits, 8), other_dram_bits=ctx.other_dram_bits,
                                input_sram_bytes=left, resident_bits=res_bits, fused_layers=len(members),
                                writeback_add=built[i]))
    if auto:  # the layers outside a built fusion run alone, exactly as with none
        out = [ctx if ctx.writeback_add else DEFAULT for ctx in out]
    if config.fusion is not Fusion.FULL:  # a layer in its producer's write-back (built), the producer's only reader:
        from codesign.sim.dwfuse import fuses  # a depthwise layer after a 1x1 convolution, where that is faster
        from codesign.sim.poolfuse import pair_reason  # a max pool after a convolution

        for i, layer in enumerate(layers):
            p = prod[i][0] if prod[i] else None
            if not (p == i - 1 and p is not None and consumers[p] == {i} and out[p].is_default and out[i].is_default):
                continue
            if not pair_reason(layers[p], layer, batch, config):
                stage = {"pool": layer}
            elif fuses(layers[p], layer, batch, config):
                stage = {"dw": layer}
            else:
                continue
            out[p] = replace(DEFAULT, **stage)  # type: ignore[arg-type]
            out[i] = replace(DEFAULT, input_from=WRITEBACK, fused_into=layers[p].name, **stage)  # type: ignore[arg-type]
    # outputs kept in the input buffer for the next layer (built: sim.residency)
    from codesign.sim.residency import resident_edges

    r_in, r_out, slots, forced = resident_edges(list(layers), batch, consumers, [c.is_default for c in out],
                                                config, maybe_single)
    out = [replace(c, res_in=a, res_out=b, in_slot=s, single_tile=f) if (a or b or s) else c
           for c, a, b, s, f in zip(out, r_in, r_out, slots, forced, strict=True)]
    return tuple(out)


def model_only_reasons(ctx: LayerContext) -> list[str]:
    """Why a layer in this context is model-only (fusion)."""
    if ctx.writeback_add or ctx.pool is not None or ctx.dw is not None:  # built in the write-back (and its head):
        return []  # a residual add, a max pool, a depthwise layer
    if ctx.fused:
        return [FUSED_REASON]
    reasons = []
    if ctx.fused_layers:
        reasons.append(HEAD_REASON)
    if ctx.input_from == ONCHIP or ctx.other_from == ONCHIP or ctx.resident_bits:
        reasons.append(RESIDENT_REASON)
    return reasons
