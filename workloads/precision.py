"""A network's bit-widths against an array's: wider operands are an error or an explicit, stated clip.

The simulator runs an operand at ``min(operand bits, array bits)`` (``sim.mapping.effective_bits``):
left alone, an INT8 model on a 4-bit array would silently be simulated at 4 bits. The importer and
CLI layer call :func:`fit_to_array` first: without ``clip`` a wider operand is a
:class:`~codesign.errors.WorkloadError` naming the layer, the operand, its bits and the array's; with
``clip`` the network's operands are set to the array's bits (so results show the bits actually run)
and the returned notes say which layers were clipped, for the caller to print.
"""

from __future__ import annotations

from dataclasses import replace

from codesign.errors import WorkloadError
from codesign.workloads.layers import Layer, Network


class BitsClippedWarning(UserWarning):
    """Operands were narrowed to the array's bits because the caller asked for it (``clip_bits``)."""


# operand -> the array's bits it runs on (as sim.mapping pairs them)
_OPERANDS = (("weights", "weight_bits"), ("inputs", "act_bits"))


def wider_operands(net: Network, weight_bits: int, act_bits: int) -> list[tuple[str, str, int, int]]:
    """(layer, operand, model bits, array bits) of every GEMM operand wider than the array's."""
    hw = {"weight_bits": weight_bits, "act_bits": act_bits}
    out = []
    for layer in net:
        if not layer.has_gemm:
            continue
        for operand, field in _OPERANDS:
            bits = getattr(layer, operand).bits
            if bits > hw[field]:
                out.append((layer.name, operand, bits, hw[field]))
    return out


def fit_to_array(net: Network, weight_bits: int, act_bits: int, *, clip: bool = False) -> tuple[Network, list[str]]:
    """``net`` checked against an array of ``weight_bits``/``act_bits``; (network, notes to print).

    Raises WorkloadError on an operand wider than the array unless ``clip``; with ``clip`` such operands
    are narrowed to the array's bits and each clipped operand kind gets one note.
    """
    wide = wider_operands(net, weight_bits, act_bits)
    if not wide:
        return net, []
    if not clip:
        layer, operand, bits, hw = wide[0]
        field = dict(_OPERANDS)[operand]
        more = f" (and {len(wide) - 1} more operands)" if len(wide) > 1 else ""
        raise WorkloadError(f"layer {layer!r}: {operand} are {bits}-bit, wider than the array's {field} {hw}{more}; "
                            f"use an array of {bits} bits, a model quantized to {hw} bits, or clip explicitly "
                            "(clip_bits=True, --clip-bits)")
    hw_bits = {"weights": weight_bits, "inputs": act_bits}

    def narrow(layer: Layer) -> Layer:
        if not layer.has_gemm:
            return layer
        changes = {op: getattr(layer, op).with_bits(hw_bits[op]) for op, _ in _OPERANDS
                   if getattr(layer, op).bits > hw_bits[op]}
        return replace(layer, **changes) if changes else layer

    notes = []
    for operand, field in _OPERANDS:
        hits = [(name, bits) for name, op, bits, _ in wide if op == operand]
        if hits:
            widths = sorted({bits for _, bits in hits})
            names = ", ".join(name for name, _ in hits[:3]) + (", ..." if len(hits) > 3 else "")
            layers = f"{len(hits)} layer{'s' if len(hits) != 1 else ''}"
            notes.append(f"clipped {operand} of {layers} from {'/'.join(map(str, widths))} to {hw_bits[operand]} bits "
                         f"(the array's {field}): {names}")
    return net.map_layers(narrow), notes
