"""A trained network run end to end on the generated hardware, against its integer reference.

Lives in the user-facing package: it joins the accuracy flow (:mod:`codesign.accuracy`: trained
weights, quantization, the numpy integer reference) with the hardware flow
(:func:`codesign.hdl.verify.verify_layers`), so the hardware package does not reach up into it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from codesign.errors import ConfigError
from codesign.hdl.plan import HardwarePlan
from codesign.hdl.verify import WholeLayerVerification, verify_layers
from codesign.sim.config import AcceleratorConfig


@dataclass(frozen=True)
class NetworkVerification:
    """A whole network run layer after layer on the RTL, each layer's inputs the previous
    layer's outputs as read back from the hardware's DRAM."""

    network: str
    images: int
    layers: tuple[WholeLayerVerification, ...]
    predictions: tuple[int, ...]  # the RTL's classes
    reference_predictions: tuple[int, ...]  # the numpy integer reference's
    labels: tuple[int, ...]

    @property
    def outputs_match(self) -> bool:
        return all(r.outputs_match for r in self.layers)

    @property
    def predictions_match(self) -> bool:
        return self.predictions == self.reference_predictions

    @property
    def rtl_cycles(self) -> int:
        return sum(r.rtl_cycles for r in self.layers)

    @property
    def sim_cycles(self) -> int:
        return sum(r.sim_cycles for r in self.layers)

    @property
    def ok(self) -> bool:
        return self.outputs_match and self.predictions_match and all(r.ok for r in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "network": self.network, "images": self.images, "ok": self.ok,
            "predictions_match": self.predictions_match, "outputs_match": self.outputs_match,
            "rtl_cycles": self.rtl_cycles, "sim_cycles": self.sim_cycles,
            "rtl_stall_cycles": sum(r.rtl_stall_cycles for r in self.layers),
            "sim_stall_cycles": sum(r.sim_stall_cycles for r in self.layers),
            "predictions": list(self.predictions), "reference_predictions": list(self.reference_predictions),
            "labels": list(self.labels),
            "accuracy": sum(int(p == y) for p, y in zip(self.predictions, self.labels, strict=True)) / self.images,
            "layers": [r.to_dict() for r in self.layers],
        }


def verify_network(workload: str, config: AcceleratorConfig, *, images: int = 8, start: int = 0,
                   preset: str | None = None, sparsity: str | float | None = None, seed: int = 0,
                   stall: float = 0.0, simulator: str | None = None) -> NetworkVerification:
    """Run a trained network's integer inference on the RTL, layer after layer (one simulation per
    layer, the inputs of layer i + 1 the requantized outputs of layer i read back from DRAM), and
    compare every layer's outputs and the classes with the numpy integer reference
    (:func:`codesign.accuracy.integer_reference`: the same requantization arithmetic)."""
    from codesign.accuracy import integer_reference
    from codesign.hdl.host import Requant
    from codesign.workloads.tensors import GemmOperands

    if not config.requantize:
        raise ConfigError("verify --network needs requantize: true (the write-back requantizes each layer's "
                          "outputs for the next)")
    HardwarePlan(config)
    ref = integer_reference(workload, config, images=images, start=start, preset=preset, sparsity=sparsity)
    results = []
    a = None
    out_layer = None
    for i, (il, trace) in enumerate(zip(ref.qnet.layers, ref.run.traces, strict=True)):
        a = trace.a if i == 0 else il.gemm_a(ref.qnet.layers[i - 1].output_from_gemm(out_layer, images))
        b = il.gemm_b()
        ops = GemmOperands(a=a, b=b, shape=il.layer.gemm(images))
        groups = a.shape[0]
        q = Requant(bias=np.broadcast_to(np.asarray(il.bias_q).reshape(groups, -1), (groups, b.shape[2])),
                    mult=np.broadcast_to(np.asarray(il.mult).reshape(groups, -1), (groups, b.shape[2])),
                    shift=np.broadcast_to(np.asarray(il.shift).reshape(groups, -1), (groups, b.shape[2])),
                    zero_point=int(il.zero_point), clamp_lo=int(il.clamp_lo), clamp_hi=int(il.clamp_hi))
        (r,) = verify_layers([(il.layer, ops)], config, batch=images, seed=seed, stall=stall, requant=[q],
                             simulator=simulator)
        # the layer's outputs equal the reference's (which came from the reference's own inputs)
        r = replace(r, outputs_match=r.outputs_match and bool(np.array_equal(r.rtl_outputs, trace.out)))
        results.append(r)
        out_layer = r.rtl_outputs
    logits = ref.qnet.layers[-1].output_from_gemm(out_layer, images)
    predictions = tuple(int(x) for x in np.argmax(np.asarray(logits).reshape(images, -1), axis=1))
    return NetworkVerification(network=workload, images=images, layers=tuple(results), predictions=predictions,
                               reference_predictions=tuple(int(x) for x in ref.run.predictions),
                               labels=tuple(int(x) for x in ref.labels))
