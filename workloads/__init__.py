"""What runs: layers, networks, quantization and sparsity specs, the model zoo, importers."""

from codesign.workloads.layers import (
    Conv2d,
    Eltwise,
    GemmShape,
    Layer,
    LayerKind,
    Linear,
    MatMul,
    Network,
    Pool,
)
from codesign.workloads.operand import Operand, Pattern

__all__ = [
    "Conv2d",
    "Eltwise",
    "GemmShape",
    "Layer",
    "LayerKind",
    "Linear",
    "MatMul",
    "Network",
    "Operand",
    "Pattern",
    "Pool",
]
