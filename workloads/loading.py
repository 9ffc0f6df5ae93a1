"""Loading a workload from what a user has: a Network, a zoo name, ``gemm:M,N,K``, or a file.

Lives in ``workloads`` so that the simulator and the hardware flow (``hdl.verify``) can load
workloads without reaching up into the user-facing API (``codesign.api`` re-exports it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codesign.errors import WorkloadError
from codesign.workloads.layers import Network


def load_workload(spec: str | Path | Network, *, batch: int | None = None, **kwargs: Any) -> Network:
    """A Network from a Network, a zoo name (``gemm:M,N,K`` too) or a file (.csv SCALE-Sim topology,
    .yaml network, .onnx model)."""
    if isinstance(spec, Network):
        net = spec
    else:
        text = str(spec)
        suffix = Path(text).suffix.lower()
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
            net = read_onnx(text, **kwargs)
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
