"""Inter-layer dataflow: which layers fuse into a producer's write-back, which outputs stay on chip.

The graph. Each layer reads one or more activation operands (Conv2d/Linear/Pool: its input;
MatMul: A and B; Eltwise: each input). :func:`producers` gives the producer of each operand:
the layer's ``sources`` when the workload names them, else the latest earlier layer whose output
has as many elements as the first operand (the previous layer in a chain; the branch point of a
residual or concat branch), and "unknown" (read from DRAM) for the other operands.

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

Everything here is model-only: the generated hardware runs layers one by one through DRAM.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def plan_network(net: Network, config: AcceleratorConfig) -> tuple[LayerContext, ...]:
    """The context of each layer of ``net`` under ``config.fusion`` (all default with ``none``)."""
    n = len(net.layers)
    if config.fusion is Fusion.NONE:
        return (DEFAULT,) * n
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
                    and (j == 0 or sizes[j] == layer.output_elements(batch))):
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
    # heads: the DRAM reads of their fused layers, their resident output, their input SRAM
    out = []
    for i, ctx in enumerate(contexts):
        if fused[i]:
            out.append(ctx)
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
                                input_sram_bytes=left, resident_bits=res_bits, fused_layers=len(members)))
    return tuple(out)


def model_only_reasons(ctx: LayerContext) -> list[str]:
    """Why a layer in this context is model-only (fusion)."""
    if ctx.fused:
        return [FUSED_REASON]
    reasons = []
    if ctx.fused_layers:
        reasons.append(HEAD_REASON)
    if ctx.input_from == ONCHIP or ctx.other_from == ONCHIP or ctx.resident_bits:
        reasons.append(RESIDENT_REASON)
    return reasons
