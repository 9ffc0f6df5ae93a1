"""Quantization and sparsity of one operand, as data (not subclasses)."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, replace

from codesign.errors import WorkloadError


class Pattern(str, enum.Enum):
    """Where the zeros of an operand lie."""

    UNSTRUCTURED = "unstructured"
    NM = "n:m"  # at most N non-zeros in every group of M consecutive elements along K


@dataclass(frozen=True)
class Operand:
    """One operand of a layer: its precision and its sparsity.

    ``density`` is the fraction of non-zero elements. For an N:M pattern the density is
    ``n / m`` exactly and is derived from ``n`` and ``m``.
    """

    bits: int = 8
    signed: bool = True
    density: float = 1.0
    pattern: Pattern = Pattern.UNSTRUCTURED
    n: int = 0
    m: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 1 <= self.bits <= 32:
            raise WorkloadError(f"bits must be an integer from 1 to 32, not {self.bits!r}")
        if not isinstance(self.signed, bool):
            raise WorkloadError(f"signed must be true or false, not {self.signed!r}")
        try:
            pattern = Pattern(self.pattern)
        except ValueError:
            raise WorkloadError(
                f"pattern must be 'unstructured' or 'n:m', not {self.pattern!r}"
            ) from None
        object.__setattr__(self, "pattern", pattern)
        if pattern is Pattern.NM:
            if not (isinstance(self.n, int) and isinstance(self.m, int) and 1 <= self.n <= self.m):
                raise WorkloadError(
                    f"an n:m pattern needs 1 <= n <= m, not {self.n}:{self.m}"
                )
            object.__setattr__(self, "density", self.n / self.m)
        else:
            d = self.density
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not (0.0 <= d <= 1.0) or math.isnan(d):
                raise WorkloadError(f"density must be a number from 0 to 1, not {d!r}")
            object.__setattr__(self, "density", float(d))

    @property
    def nm(self) -> tuple[int, int] | None:
        return (self.n, self.m) if self.pattern is Pattern.NM else None

    @property
    def sparsity_label(self) -> str:
        if self.pattern is Pattern.NM:
            return f"{self.n}:{self.m}"
        return "dense" if self.density == 1.0 else f"{self.density:g}"

    def with_bits(self, bits: int, signed: bool | None = None) -> Operand:
        return replace(self, bits=bits, signed=self.signed if signed is None else signed)

    def with_sparsity(self, spec: str | float) -> Operand:
        """``"2:4"``, ``"dense"``, or a density like ``0.5``."""
        return replace(self, **parse_sparsity(spec))

    @property
    def min_value(self) -> int:
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max_value(self) -> int:
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1


def parse_sparsity(spec: str | float) -> dict[str, object]:
    """Fields of :class:`Operand` for a sparsity spec: ``"2:4"``, ``"dense"``, ``0.5`` or ``"0.5"``."""
    if isinstance(spec, str):
        text = spec.strip().lower()
        if text in ("dense", "none", ""):
            return {"pattern": Pattern.UNSTRUCTURED, "density": 1.0, "n": 0, "m": 0}
        if ":" in text:
            a, _, b = text.partition(":")
            try:
                n, m = int(a), int(b)
            except ValueError:
                raise WorkloadError(f"sparsity must be 'N:M' or a density, not {spec!r}") from None
            if not 1 <= n <= m:
                raise WorkloadError(f"sparsity N:M needs 1 <= N <= M, not {spec!r}")
            return {"pattern": Pattern.NM, "n": n, "m": m}
        try:
            spec = float(text)
        except ValueError:
            raise WorkloadError(f"sparsity must be 'N:M' or a density, not {spec!r}") from None
    if isinstance(spec, bool) or not isinstance(spec, (int, float)) or not 0.0 <= spec <= 1.0:
        raise WorkloadError(f"density must be a number from 0 to 1, not {spec!r}")
    return {"pattern": Pattern.UNSTRUCTURED, "density": float(spec), "n": 0, "m": 0}


INT8 = Operand(bits=8, signed=True)
