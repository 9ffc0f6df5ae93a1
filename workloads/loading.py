"""Loading a workload from what a user has: a Network, a zoo name, ``gemm:M,N,K``, or a file.

Lives in ``workloads`` so that the simulator and the hardware flow (``hdl.verify``) can load
workloads without reaching up into the user-facing API (``codesign.api`` re-exports it).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from codesign.errors import WorkloadError
from codesign.workloads.layers import Network


def _is_torch_module(spec: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(spec, torch.nn.Module)


def load_workload(spec: str | Path | Network | Any, *, batch: int | None = None,
                  input_shape: Sequence[int] | None = None, **kwargs: Any) -> Network:
    """A Network from a Network, a zoo name (``gemm:M,N,K`` too), a file (.csv SCALE-Sim topology,
    .yaml network, .onnx model) or a ``torch.nn.Module`` (exported with ``torch.export`` on zeros of
    ``input_shape``, which it needs; for ONNX, ``input_shape`` binds dynamic dimensions)."""
    if isinstance(spec, Network):
        net = spec
    elif _is_torch_module(spec):
        if input_shape is None:
            raise WorkloadError(f"a PyTorch module ({type(spec).__name__}) needs input_shape, e.g. (1, 3, 224, 224)")
        if kwargs:
            raise WorkloadError(f"a PyTorch module takes input_shape and batch only, not {sorted(kwargs)}")
        from codesign.workloads.torch_import import from_torch

        net = from_torch(spec, tuple(input_shape))
    elif not isinstance(spec, (str, Path)):
        raise WorkloadError("workload must be a Network, a zoo name, a model file or a torch.nn.Module, "
                            f"not {type(spec).__name__}")
    else:
        text = str(spec)
        suffix = Path(text).suffix.lower()
        if input_shape is not None and suffix != ".onnx":
            raise WorkloadError(f"input_shape applies to ONNX files and PyTorch modules, not {text!r}")
        if suffix == ".csv":
            from codesign.workloads.scalesim_csv import read_topology

            net = read_topology(text)
        elif suffix in (".yaml", ".yml"):
            from codesign.workloads.yaml_io import read_network_yaml

            net = read_network_yaml(text)
        elif suffix == ".onnx":
            try:
                from codesign.workloads.onnx_import import read_onnx
            except ModuleNotFoundError as e:
                raise WorkloadError(f"ONNX import needs the onnx package ({e.name} missing)") from e
            net = read_onnx(text, input_shape=input_shape, **kwargs)
        else:
            from codesign.workloads import zoo

            if text.lower().startswith("gemm:"):
                dims = text.split(":", 1)[1].split(",")
                try:
                    m, n, k = (int(d) for d in dims)
                except ValueError:
                    raise WorkloadError(f"gemm workload must be gemm:M,N,K, not {text!r}") from None
                if min(m, n, k) < 1:
                    raise WorkloadError(f"gemm workload needs positive M, N, K, not {text!r}")
                net = zoo.get("gemm", m=m, n=n, k=k)
            else:
                net = zoo.get(text)
    if batch is not None:
        net = net.with_batch(batch)
    return net
