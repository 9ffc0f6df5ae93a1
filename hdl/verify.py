"""Verify the generated RTL on workload layers: cocotb on Verilator or Icarus, against numpy and the simulator.

**Whole layers** (:func:`verify`, ``codesign verify``): each layer's seeded quantized (sparse)
operands (``workloads.tensors.layer_operands``, im2col for convolutions) are laid out in DRAM as
the tiling plan says (:mod:`codesign.hdl.host`); the whole-layer accelerator
(:mod:`codesign.hdl.layer`) runs the layer from one ``start`` through its AXI port, against the
AXI memory model with the config's latency and bandwidth. Reported per layer
(:class:`WholeLayerVerification`): ``outputs_match`` (C read back from DRAM equals numpy's int64
``A @ B``, bit for bit), and the RTL's counters beside the simulator's numbers for the same
layer and config (``codesign simulate``'s columns): cycles, stall cycles, DRAM bytes read and
written, enabled MACs. With ``stall > 0`` the memory adds random wait cycles on every AXI
channel: outputs must not change and the cycles are at least the ideal ones.

**The GEMM engine alone** (:func:`verify_batch`, used by the engine's own tests): operands are
cut into on-chip tiles, each runs from loaded buffers to ``done`` through the GEMM top's streams;
reported per layer:

* ``outputs_match``: the RTL's C equals numpy's int64 ``A @ B`` for every group, bit for bit;
* ``rtl_cycles``: sum over tiles of the cycles from ``start`` to ``done`` measured in the RTL;
* ``sim_cycles``: sum over the same tiles of the simulator's on-chip time
  (``sim.engine.simulate_gemm_on_chip`` = ``native_gemm_cycles``);
* ``rtl_enabled_macs``: sum of the RTL's ``enabled_macs`` counter over the tiles;
* ``sim_active_macs``: the simulator's enabled MACs for the same tiles. A MAC ``(m, n, k)`` is
  enabled when it lies inside the GEMM (not padding) and, with zero-gating, ``A[m, k] != 0``
  and ``B[k, n] != 0``; so with gating it is ``GemmOperands.active_macs()``, without it
  ``M * N * K`` per group.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np

from codesign.errors import ConfigError, WorkloadError
from codesign.hdl.plan import HardwarePlan, core_config
from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.fusion import DEFAULT as DEFAULT_CTX
from codesign.sim.vecplan import layer_reason as vec_reason
from codesign.sim.widths import check_layout_end
from codesign.workloads.layers import Eltwise, Layer, Linear, MatMul, Pool, gemm_layer
from codesign.workloads.tensors import GemmOperands, layer_operands


@dataclass(frozen=True)
class Tile:
    group: int
    m0: int
    n0: int
    k0: int
    m: int
    n: int
    k: int


@dataclass(frozen=True)
class LayerVerification:
    layer: str
    m: int
    n: int
    k: int
    groups: int
    tiles: int
    outputs_match: bool
    rtl_cycles: int
    sim_cycles: int
    rtl_enabled_macs: int
    sim_active_macs: int
    wall_s: float

    @property
    def ok(self) -> bool:
        return (self.outputs_match and self.rtl_cycles == self.sim_cycles
                and self.rtl_enabled_macs == self.sim_active_macs)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _round_up(x: int, q: int) -> int:
    return -(-x // q) * q


def engine_tiles(plan: HardwarePlan, m: int, n: int, k: int, groups: int = 1) -> list[Tile]:
    """For the GEMM engine's own tests (:func:`verify_batch`): on-chip tiles covering ``groups``
    GEMMs ``[m, k] @ [k, n]``: K whole when it fits, else cut;
    then M and N halved (keeping array multiples) until a tile fits the buffers."""
    r, c = plan.rows, plan.cols
    tm, tn, tk = m, n, min(k, plan.k_max)
    while not plan.fits(tm, tn, tk):
        a, w, o = plan.words(tm, tn, tk)
        over_a, over_w, over_o = a > plan.act_depth, w > plan.weight_depth, o > plan.out_depth
        if over_o or over_a:
            if tm > r:
                tm = _round_up(tm // 2, r) if tm // 2 >= r else r
                continue
            if over_o and tn > c:
                tn = _round_up(tn // 2, c) if tn // 2 >= c else c
                continue
        if over_w and tn > c:
            tn = _round_up(tn // 2, c) if tn // 2 >= c else c
            continue
        if tk > r:
            tk = _round_up(tk // 2, r) if tk // 2 >= r else r
            continue
        if tm > 1:
            tm = max(1, tm // 2)
            continue
        if tn > 1:
            tn = max(1, tn // 2)
            continue
        raise ConfigError(f"no tile of gemm {m},{n},{k} fits the buffers of a {r}x{c} array")
    tiles = []
    for g in range(groups):
        for m0 in range(0, m, tm):
            for n0 in range(0, n, tn):
                for k0 in range(0, k, tk):
                    tiles.append(Tile(g, m0, n0, k0, min(tm, m - m0), min(tn, n - n0), min(tk, k - k0)))
    return tiles


def hardware_layer(layer: Layer, config: AcceleratorConfig, density: str | float | None = None) -> Layer:
    """The layer with the hardware's operand precisions (and an optional weight sparsity)."""
    inputs = layer.inputs.with_bits(config.act_bits, config.act_signed)
    weights = layer.weights.with_bits(config.weight_bits, config.weight_signed)
    if density is not None:
        weights = weights.with_sparsity(density)
    return layer.with_operands(inputs=inputs, weights=weights)


def verify_operands(
    name: str,
    ops: GemmOperands,
    config: AcceleratorConfig,
    **kwargs: Any,
) -> LayerVerification:
    """Run ``ops`` (all groups) through the RTL and compare with numpy and the simulator."""
    return verify_batch([(name, ops)], config, **kwargs)[0]


def verify_batch(
    named_ops: list[tuple[str, GemmOperands]],
    config: AcceleratorConfig,
    *,
    seed: int = 0,
    idle: float = 0.2,
    stall: float = 0.2,
    work_dir: str | Path | None = None,
    simulator: str | None = None,
) -> list[LayerVerification]:
    """Several layers in one RTL simulation (one simulator start-up), one result per layer.

    ``idle``/``stall``: probability of an idle cycle on the load stream / of ``rd_data.ready``
    low in a cycle (seeded by ``seed``).
    """
    from amaranth.hdl import Shape

    from codesign.hdl.bench.runner import run_job
    from codesign.hdl.engines.gemm import load_layout
    from codesign.sim.engine import simulate_gemm_on_chip

    t0 = time.perf_counter()
    plan = HardwarePlan(config)
    job_tiles: list[dict[str, Any]] = []
    per_layer = []
    for name, ops in named_ops:
        groups, m, k = ops.a.shape
        n = ops.b.shape[2]
        tiles = engine_tiles(plan, m, n, k, groups)
        sim_cycles = sim_active = 0
        for t in tiles:
            a = ops.a[t.group, t.m0:t.m0 + t.m, t.k0:t.k0 + t.k]
            b = ops.b[t.group, t.k0:t.k0 + t.k, t.n0:t.n0 + t.n]
            act, wt = plan.pack_operands(a, b)
            job_tiles.append({"m": t.m, "n": t.n, "k": t.k, "act": [f"{w:x}" for w in act],
                              "weight": [f"{w:x}" for w in wt], "out_words": plan.words(t.m, t.n, t.k)[2]})
            on_chip = simulate_gemm_on_chip(config, t.m, t.n, t.k, a=a, b=b)
            sim_cycles += on_chip.cycles
            sim_active += on_chip.active_macs
        per_layer.append((name, ops, tiles, sim_cycles, sim_active))
    lay = load_layout(plan)
    job = {
        "tiles": job_tiles, "seed": seed, "idle": idle, "stall": stall,
        "load_layout": {"data": Shape.cast(lay["data"].shape).width, "addr": Shape.cast(lay["addr"].shape).width},
    }
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="codesign-verify-") as tmp:
            result = run_job(config, job, Path(tmp), simulator)
    else:
        result = run_job(config, job, Path(work_dir), simulator)
    wall = round(time.perf_counter() - t0, 3)
    results = iter(result["tiles"])
    out = []
    for name, ops, tiles, sim_cycles, sim_active in per_layer:
        groups, m, k = ops.a.shape
        n = ops.b.shape[2]
        c = np.zeros((groups, m, n), dtype=np.int64)
        rtl_cycles = rtl_enabled = 0
        for t in tiles:
            res = next(results)
            words = [int(w, 16) for w in res["out"]]
            c[t.group, t.m0:t.m0 + t.m, t.n0:t.n0 + t.n] += plan.unpack_outputs(words, t.m, t.n)
            rtl_cycles += res["cycles"]
            rtl_enabled += res["enabled_macs"]
        out.append(LayerVerification(
            layer=name, m=m, n=n, k=k, groups=groups, tiles=len(tiles),
            outputs_match=bool(np.array_equal(c, ops.c)),
            rtl_cycles=rtl_cycles, sim_cycles=sim_cycles,
            rtl_enabled_macs=rtl_enabled, sim_active_macs=sim_active,
            wall_s=wall,
        ))
    return out


@dataclass(frozen=True)
class EltwiseOperands:
    """Seeded operands of an element-wise layer on the vector unit, with TFLite's parameters for seeded
    scales and zero points: an add's two flat inputs (``eltwise_arith.tflite_add``), or a squeeze-excite
    scale's map ``x[batch, C, pixels]`` and per-channel scale ``y[batch, C]`` (``tflite_mul``, the scale
    broadcast over the pixels). :meth:`expected` is the reference."""

    op: str
    x: np.ndarray
    y: np.ndarray
    params: Any

    @classmethod
    def seeded(cls, layer: Layer, config: AcceleratorConfig, batch: int = 1, seed: int = 0) -> EltwiseOperands:
        from codesign.sim.vecplan import _shape
        from codesign.workloads.eltwise_arith import add_params, mul_params

        shape = _shape(layer) if isinstance(layer, Eltwise) else None
        if shape is None:
            raise WorkloadError(f"layer {layer.name!r} runs on a vector unit the generated hardware does not build")
        op, size, pixels = shape
        rng = np.random.default_rng(seed)
        bits = config.act_bits
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if config.act_signed else (0, (1 << bits) - 1)
        s1, s2, so = (float(v) for v in rng.uniform(0.01, 0.1, size=3))
        z1, z2, zo = (int(v) for v in rng.integers(lo // 8, hi // 8 + 1, size=3))
        if op == "add":
            n = layer.output_elements(batch)
            x, y = rng.integers(lo, hi, size=n, endpoint=True), rng.integers(lo, hi, size=n, endpoint=True)
            return cls(op, x, y, add_params(s1, z1, s2, z2, so, zo, lo, hi))
        x = rng.integers(lo, hi, size=(batch, size, pixels), endpoint=True)
        y = rng.integers(lo, hi, size=(batch, size), endpoint=True)
        return cls(op, x, y, mul_params(s1, z1, s2, z2, so * 8, zo, lo, hi))

    def expected(self) -> np.ndarray:
        from codesign.workloads.eltwise_arith import tflite_add, tflite_mul

        if self.op == "add":
            return tflite_add(self.x, self.y, self.params)
        return tflite_mul(self.x, self.y[:, :, None], self.params)


AddOperands = EltwiseOperands  # the residual add's (the name tests use)


@dataclass(frozen=True)
class ResidualOperands:
    """A residual add fused into a layer's write-back (``codesign.sim.fusion``'s built add): the residual
    ``y`` in the layer's GEMM view ``[G, M, N]`` and TFLite's ADD parameters for seeded scales and zero
    points, the layer's (requantized) output as input 1."""

    y: np.ndarray
    params: Any

    @classmethod
    def seeded(cls, shape: tuple[int, int, int], config: AcceleratorConfig, seed: int = 0) -> ResidualOperands:
        from codesign.workloads.eltwise_arith import add_params

        rng = np.random.default_rng(seed + 11)
        bits = config.act_bits
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if config.act_signed else (0, (1 << bits) - 1)
        s1, s2, so = (float(v) for v in rng.uniform(0.01, 0.1, size=3))
        z1, z2, zo = (int(v) for v in rng.integers(lo // 8, hi // 8 + 1, size=3))
        y = rng.integers(lo, hi, size=shape, endpoint=True)
        return cls(y, add_params(s1, z1, s2, z2, so, zo, lo, hi))

    def expected(self, x: np.ndarray) -> np.ndarray:
        from codesign.workloads.eltwise_arith import tflite_add

        return tflite_add(x, self.y, self.params)


def residual_context() -> Any:
    """The :class:`codesign.sim.fusion.LayerContext` of a layer whose write-back runs a built residual add."""
    from codesign.sim.fusion import DEFAULT

    return replace(DEFAULT, writeback_add=True, fused_layers=1)


def max_pool(x: np.ndarray, kernel: tuple[int, int], stride: tuple[int, int],
             padding: tuple[int, int, int, int]) -> np.ndarray:
    """Integer max pooling (TFLite's MAX_POOL_2D, PyTorch's ``max_pool2d``): ``x[batch, C, H, W]`` ->
    ``[batch, C, out_h, out_w]``, each output the largest of its window's pixels inside the image
    (padding never wins; every window has one: ``pool_reason`` refuses padding of a kernel's size)."""
    r, s = kernel
    pt, pl, pb, pr = padding
    lowest = np.iinfo(np.int64).min
    xp = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=lowest)
    oh = (xp.shape[2] - r) // stride[0] + 1
    ow = (xp.shape[3] - s) // stride[1] + 1
    out = np.full((*x.shape[:2], oh, ow), lowest, dtype=np.int64)
    for i in range(r):
        for j in range(s):
            out = np.maximum(out, xp[:, :, i:i + (oh - 1) * stride[0] + 1:stride[0],
                                     j:j + (ow - 1) * stride[1] + 1:stride[1]])
    return out


def pool_on_engine(layer: Layer, config: AcceleratorConfig, batch: int = 1) -> bool:
    """Whether ``layer`` is a max pool the design runs on its depthwise engine (``sim.dwplan.pool_reason``)."""
    from codesign.sim.dwplan import pool_reason

    return isinstance(layer, Pool) and config.depthwise_on_engine and not pool_reason(layer, batch, config)


@dataclass(frozen=True)
class PoolOperands:
    """A max pool's seeded input ``x[batch, C, H, W]`` (the activations' full range) and its window;
    :meth:`expected` is :func:`max_pool` in the depthwise engine's GEMM view ``[C, batch * out_h * out_w, 1]``
    (what :func:`codesign.hdl.host.read_dw_outputs` reads back)."""

    x: np.ndarray
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int, int, int]

    @classmethod
    def seeded(cls, layer: Pool, config: AcceleratorConfig, batch: int = 1, seed: int = 0) -> PoolOperands:
        rng = np.random.default_rng(seed)
        bits = config.act_bits
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if config.act_signed else (0, (1 << bits) - 1)
        x = rng.integers(lo, hi, size=(batch, layer.channels, layer.in_h, layer.in_w), endpoint=True)
        return cls(x, tuple(layer.kernel), tuple(layer.stride), tuple(layer.padding))  # type: ignore[arg-type]

    def expected(self) -> np.ndarray:
        out = max_pool(self.x, self.kernel, self.stride, self.padding)
        batch, c_, oh, ow = out.shape
        return out.transpose(1, 0, 2, 3).reshape(c_, batch * oh * ow, 1)


def _check_cocotb() -> None:
    try:
        import cocotb  # noqa: F401
        import cocotb_tools  # noqa: F401
    except ModuleNotFoundError as e:  # pragma: no cover - the hdl extra installs them
        raise ConfigError(f"verify needs cocotb ({e.name} missing): pip install 'codesign[hdl]'") from e


@dataclass(frozen=True)
class WholeLayerVerification:
    layer: str
    m: int
    n: int
    k: int
    groups: int
    tiles: int
    tile: tuple[int, int, int, int]  # gt, mt, nt, kt
    outputs_match: bool
    rtl_cycles: int
    sim_cycles: int
    rtl_stall_cycles: int
    sim_stall_cycles: int
    rtl_dram_read_bytes: int
    sim_dram_read_bytes: int
    rtl_dram_write_bytes: int
    sim_dram_write_bytes: int
    rtl_enabled_macs: int
    sim_active_macs: int  # the simulator's count (exact for dense operands; padding zeros included)
    ref_enabled_macs: int  # from the layer's tensors: sum_k nnz(A[:, k]) * nnz(B[k, :]) with gating
    stall_percent: int
    wall_s: float
    simulator: str = ""  # the RTL simulator that ran it (verilator, icarus)
    rtl_outputs: Any = field(default=None, repr=False, compare=False)  # C read back (int64 [G, M, N])

    @property
    def ok(self) -> bool:
        if not self.outputs_match or self.rtl_enabled_macs != self.ref_enabled_macs:
            return False
        traffic = (self.rtl_dram_read_bytes == self.sim_dram_read_bytes
                   and self.rtl_dram_write_bytes == self.sim_dram_write_bytes)
        if self.stall_percent:  # random memory stalls: never faster than the ideal memory
            return traffic and self.rtl_cycles >= self.sim_cycles
        return traffic and self.rtl_cycles == self.sim_cycles and self.rtl_stall_cycles == self.sim_stall_cycles

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "rtl_outputs"}
        d["tile"] = list(self.tile)
        return {**d, "ok": self.ok}


@dataclass(frozen=True)
class RtlRunEstimate:
    """What an RTL verification is about to do, and about how long it will take."""

    simulator: str
    layers: int
    runs: int  # simulator runs (layers share a DRAM image up to the memory model's depth)
    sim_cycles: int  # the simulator's cycles of all layers (what the RTL will simulate, without stalls)
    built: bool  # the design is already built (cached)
    seconds: float  # estimated wall time, build included when not built


def _bandwidth_ratio(bw: float) -> tuple[int, int]:
    from fractions import Fraction

    f = Fraction(bw).limit_denominator(1 << 12)
    if float(f) != bw:
        raise ConfigError(f"dram_bytes_per_cycle must be a ratio of small integers for verify, not {bw!r}")
    return f.numerator, f.denominator


def _rtl_run_setup(config: AcceleratorConfig, simulator: str | None,
                   stall: float) -> tuple[str, HardwarePlan, HardwarePlan]:
    """Checks before an RTL run (cocotb, the simulator, ``stall``, a bandwidth the memory model takes):
    ``(simulator, HardwarePlan(config), the core's plan)``."""
    from codesign.hdl.bench.runner import require_simulator

    _check_cocotb()
    simulator = require_simulator(simulator)
    if not 0 <= stall < 1:
        raise ConfigError(f"stall must be a probability from 0 to below 1, not {stall!r}")
    _bandwidth_ratio(config.dram_bytes_per_cycle)
    return simulator, HardwarePlan(config), HardwarePlan(core_config(config))


def _memory_plusargs(config: AcceleratorConfig, stall: float, seed: int, tmp: Path, beats: int) -> list[str]:
    """The AXI memory model's plusargs: the config's latency and bandwidth, the stall pattern, the DRAM image
    ``tmp/dram.hex`` in, its ``beats`` out to ``tmp/dram_out.hex``."""
    num, den = _bandwidth_ratio(config.dram_bytes_per_cycle)
    return [f"+LAT={config.dram_latency_cycles}", f"+BW_NUM={num}", f"+BW_DEN={den}", f"+STALL={round(stall * 100)}",
            f"+SEED={seed + 1}", f"+DRAM={tmp / 'dram.hex'}", f"+DUMP={tmp / 'dram_out.hex'}", "+DUMP_LO=0",
            f"+DUMP_HI={beats - 1}"]


def _check_placed(name: str, image: bytearray, placed: Any, hw: HardwarePlan, plan: Any,
                  config: AcceleratorConfig) -> None:
    """Refuse, in one line naming layer ``name``, a placed layer the design cannot run: the DRAM image it ends
    beyond the ``2**dram_addr_bits`` bytes the design addresses, or (with ``plan``) a descriptor field the
    hardware would refuse."""
    from codesign.hdl.host import check_descriptor

    check_layout_end(name, len(image), config)
    if plan is not None:
        check_descriptor(placed.descriptor, hw, plan, layer=name)


def verify_layers(layers: list[tuple[Layer, GemmOperands]], config: AcceleratorConfig, *, batch: int = 1,
                  stall: float = 0.0, seed: int = 0, work_dir: str | Path | None = None,
                  requant: list[Any] | None = None, simulator: str | None = None,
                  on_layer: Callable[[int, dict[str, Any]], None] | None = None,
                  on_start: Callable[[RtlRunEstimate], None] | None = None,
                  dw_seeds: list[int] | None = None,
                  unit_weights: list[bool] | None = None,
                  residuals: list[ResidualOperands | None] | None = None,
                  act_tables: list[np.ndarray | None] | None = None,
                  pools: list[Layer | None] | None = None) -> list[WholeLayerVerification]:
    """Run whole layers (one RTL simulation for all of them) through the AXI port and compare.

    ``simulator``: ``"verilator"`` or ``"icarus"`` (default: :func:`codesign.hdl.bench.runner.default_simulator`).
    ``on_layer(i, counters)`` is called as the RTL finishes layer ``i`` (its counters and ``layer``, the
    layer's name: for progress reports), and
    ``on_start(estimate)`` once the layers are laid out, before the RTL starts (:class:`RtlRunEstimate`).

    With ``config.requantize`` the outputs are requantized in the write-back: ``requant`` gives
    each layer's :class:`codesign.hdl.host.Requant` (default: seeded random parameters), and the
    expected outputs are ``Requant.apply(A @ B)`` (``codesign.workloads.intarith.requantize``).

    A depthwise layer the plan puts on the depthwise engine (``codesign.sim.dwplan``) is laid out as
    planes from its seeded tensors (``workloads.tensors.conv_tensors`` with ``dw_seeds[i]``, default
    ``seed``: the seed its ``ops`` were made with; unit weights where ``unit_weights[i]``: an average
    pool's convolution), not as im2col. A max pool on the engine (:class:`PoolOperands`) is laid out as
    planes too, written back through the identity table, and compared with :func:`max_pool`.

    ``residuals[i]``: a residual add fused into layer ``i``'s write-back (``codesign.sim.fusion``, built
    with the vector unit): the layer runs with flags bit 7, the residual laid out as its output, and the
    expected outputs are TFLite's ADD of its requantized outputs and the residual; the simulator's
    numbers are the layer's in that fusion context.

    ``pools[i]``: a max pool in layer ``i``'s write-back (``codesign.sim.poolfuse``, built with the pool stage):
    the layer runs with flags bit 11 in tiles of one output row, and the expected outputs are :func:`max_pool`
    of its requantized outputs, read as the pooled planes it writes.

    A layer with a table ``activation`` (requantizing designs) runs with flags bit 10: its table
    (``act_tables[i]``, default ``eltwise_arith.seeded_activation_table`` of its function) is written
    after its requantization table, and the expected outputs are the table's entries for the
    requantized outputs."""
    from codesign.hdl.bench.runner import (
        VERILATOR_MIN_DEPTH_WORDS,
        estimate_seconds,
        layer_built,
        layer_depth_words,
        run_layer_job,
    )
    from codesign.hdl.host import (
        hex_image,
        identity_requant,
        image_hex,
        place_act_table,
        place_dw_layer,
        place_layer,
        place_residual,
        place_vec_layer,
        place_win_layer,
        random_requant,
        read_dw_outputs,
        read_outputs,
        read_pooled_outputs,
        read_vec_outputs,
        read_win_outputs,
        skip_enabled_macs,
        skip_operands,
    )
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.engine import simulate_layer
    from codesign.sim.mapping import plan_layer
    from codesign.sim.tileplan import bus_bytes, skip_slots
    from codesign.sim.vecplan import VecPlan
    from codesign.workloads.eltwise_arith import apply_table, seeded_activation_table
    from codesign.workloads.tensors import col2im, conv_tensors

    if dw_seeds is None:
        dw_seeds = [seed] * len(layers)
    if residuals is None:
        residuals = [None] * len(layers)
    if pools is None:
        pools = [None] * len(layers)
    tables: list[Any] = []  # each layer's activation table (None: none)

    simulator, hw, core = _rtl_run_setup(config, simulator, stall)
    t0 = time.perf_counter()
    # layers go into DRAM images of at most max_image_bytes (and within the 2**dram_addr_bits bytes the design
    # addresses): one simulator run per image
    max_image_bytes = min(VERILATOR_MIN_DEPTH_WORDS * bus_bytes(config), 1 << config.dram_addr_bits)
    chunks: list[tuple[bytearray, list[int]]] = [(bytearray(), [])]
    placed = []
    rng = np.random.default_rng(seed + 7)
    quants: list[Any] = []
    refs: list[int] = []  # enabled MACs from the tensors
    for i, (layer, ops) in enumerate(layers):
        if isinstance(ops, PoolOperands):  # a max pool on the depthwise engine: planes in, planes out
            pplan = plan_layer(layer, batch, config).tiling
            if not isinstance(pplan, DwPlan) or not pplan.pooling:
                raise WorkloadError(f"layer {layer.name!r} is not a max pool this design runs on its depthwise engine")
            q = identity_requant(pplan.channels, config.act_bits, config.act_signed) if config.requantize else None
            quants.append(q)
            tables.append(None)
            refs.append(0)  # a max pool multiplies nothing
            image, members = chunks[-1]
            start = len(image)
            p = place_dw_layer(image, pplan, ops.x, None, start, q)
            if len(image) > max_image_bytes and members:
                del image[start:]
                chunks.append((bytearray(), []))
                image, members = chunks[-1]
                p = place_dw_layer(image, pplan, ops.x, None, 0, q)
            members.append(i)
            _check_placed(layer.name, image, p, hw, pplan, config)
            placed.append((layer, ops, p, simulate_layer(layer, batch, config)))
            continue
        if isinstance(ops, EltwiseOperands):  # on the vector unit: TFLite's ADD or MUL
            vplan = plan_layer(layer, batch, config).tiling
            if not isinstance(vplan, VecPlan):
                raise WorkloadError(f"layer {layer.name!r} runs on a vector unit this design does not build")
            quants.append(None)
            tables.append(None)
            refs.append(0)
            image, members = chunks[-1]
            start = len(image)
            p = place_vec_layer(image, vplan, ops.x, ops.y, ops.params, start, config.requantize)
            if len(image) > max_image_bytes and members:
                del image[start:]
                chunks.append((bytearray(), []))
                image, members = chunks[-1]
                p = place_vec_layer(image, vplan, ops.x, ops.y, ops.params, 0, config.requantize)
            members.append(i)
            _check_placed(layer.name, image, p, hw, None, config)
            placed.append((layer, ops, p, simulate_layer(layer, batch, config)))
            continue
        q = None
        if config.requantize:
            q = requant[i] if requant is not None else random_requant(ops.c, config.act_bits, config.act_signed, rng)
        quants.append(q)
        groups, m, k = ops.a.shape
        hw.check_accumulator(k, f"layer {layer.name!r}")
        res = residuals[i]
        ctx = residual_context() if res is not None else DEFAULT_CTX
        if pools[i] is not None:
            ctx = replace(DEFAULT_CTX, pool=pools[i])
        if res is not None and not config.requantize:
            raise ConfigError(f"layer {layer.name!r}: a residual add in the write-back needs requantize: true")
        plan = plan_layer(layer, batch, config, ctx).tiling

        tab = None  # the layer's activation table (flags bit 10): given, or seeded for its function
        if act_tables is not None and act_tables[i] is not None:
            tab = act_tables[i]
        elif layer.activation and config.requantize:
            tab = seeded_activation_table(layer.activation, config.act_bits, config.act_signed)
        tables.append(tab)

        def with_residual(image: bytearray, p: Any, res: ResidualOperands | None = res, tab: Any = tab) -> Any:
            if tab is not None:
                p = place_act_table(image, p, tab)
            return place_residual(image, p, core, res.y, res.params) if res is not None else p

        if isinstance(plan, DwPlan):  # on the depthwise engine: the feature map as planes, not im2col
            refs.append(plan.enabled_macs())
            x, w = conv_tensors(layer, batch=batch, seed=dw_seeds[i])  # type: ignore[arg-type]
            w3 = w.reshape(layer.out_channels, layer.r, layer.s)  # type: ignore[attr-defined]
            if unit_weights is not None and unit_weights[i]:  # an average pool's convolution
                w3 = np.ones_like(w3)
            image, members = chunks[-1]
            start = len(image)
            p = with_residual(image, place_dw_layer(image, plan, x, w3, start, q))
            if len(image) > max_image_bytes and members:
                del image[start:]
                chunks.append((bytearray(), []))
                image, members = chunks[-1]
                p = with_residual(image, place_dw_layer(image, plan, x, w3, 0, q))
            members.append(i)
            _check_placed(layer.name, image, p, hw, plan, config)
            placed.append((layer, ops, p, simulate_layer(layer, batch, config)))
            continue
        if isinstance(plan, WinPlan):  # windows made on chip: the feature map as planes, not im2col
            refs.append(ops.active_macs() if hw.gating else groups * m * k * ops.b.shape[2])
            # the map and the weights behind the operands (seeded or a trained network's own)
            x = col2im(ops.a, layer, batch)  # type: ignore[arg-type]
            w4 = ops.b[0].T.reshape(layer.out_channels, layer.in_channels, layer.r, layer.s)  # type: ignore[attr-defined]
            image, members = chunks[-1]
            start = len(image)
            p = with_residual(image, place_win_layer(image, plan, core, x, w4, start, q))
            if len(image) > max_image_bytes and members:
                del image[start:]
                chunks.append((bytearray(), []))
                image, members = chunks[-1]
                p = with_residual(image, place_win_layer(image, plan, core, x, w4, 0, q))
            members.append(i)
            _check_placed(layer.name, image, p, hw, plan, config)
            placed.append((layer, ops, p, simulate_layer(layer, batch, config, context=ctx)))
            continue
        slots, compressed = k, False
        if core.skip_nm:  # K counts weight slots (sim.tileplan.skip_slots)
            slots, compressed = skip_slots(k, layer.weights if layer.weight_elements > 0 else None, core.skip_nm)
        if plan is None or (plan.gemm.m, plan.gemm.n, plan.gemm.k, plan.gemm.repeats) != (m, ops.b.shape[2], slots,
                                                                                          groups):
            raise WorkloadError(f"layer {layer.name!r}: its GEMM does not match its operands")
        operands: tuple[np.ndarray, np.ndarray, np.ndarray | None] = (ops.a, ops.b, None)
        if core.skip_nm:
            a_g, vals, idx = skip_operands(ops.a, ops.b, core.skip_nm, compressed, f"layer {layer.name!r}")
            operands = (a_g, vals, idx)
            refs.append(skip_enabled_macs(a_g, vals, idx, core.skip_nm))
        else:
            refs.append(ops.active_macs() if hw.gating else groups * m * k * ops.b.shape[2])
        image, members = chunks[-1]
        start = len(image)
        p = with_residual(image, place_layer(image, plan, core, operands[0], operands[1], start, q,
                                             b_index=operands[2]))
        if len(image) > max_image_bytes and members:  # a new image (and simulator run) for this layer
            del image[start:]
            chunks.append((bytearray(), []))
            image, members = chunks[-1]
            p = with_residual(image, place_layer(image, plan, core, operands[0], operands[1], 0, q,
                                                 b_index=operands[2]))
        members.append(i)
        _check_placed(layer.name, image, p, hw, plan, config)
        sim = simulate_layer(layer, batch, config, context=ctx)
        placed.append((layer, ops, p, sim))
    bus = bus_bytes(config)
    results: list[dict[str, Any]] = []
    out_images: list[bytes] = []
    if on_start is not None:
        depths = {layer_depth_words(max(1, len(image) // bus), simulator) for image, members in chunks if members}
        cycles = sum(sim.cycles for *_, sim in placed)
        built = all(layer_built(config, d, simulator) for d in depths)
        runs = sum(1 for _, m in chunks if m)
        on_start(RtlRunEstimate(simulator=simulator, layers=len(placed), runs=runs, sim_cycles=cycles, built=built,
                                seconds=estimate_seconds(config, cycles, simulator, built=built, runs=runs)))

    def run(tmp: Path, image: bytearray, members: list[int]) -> None:
        beats = max(1, len(image) // bus)
        job = {"layers": [{"descriptor": placed[i][2].descriptor} for i in members]}
        (tmp / "dram.hex").write_text(image_hex(bytes(image), bus))
        plusargs = _memory_plusargs(config, stall, seed, tmp, beats)
        first = members[0]
        res = run_layer_job(config, job, tmp, depth_words=layer_depth_words(beats, simulator), plusargs=plusargs,
                            simulator=simulator,
                            on_layer=None if on_layer is None
                            else lambda j, rec: on_layer(first + j, {**rec, "layer": placed[first + j][0].name}))
        out = hex_image((tmp / "dram_out.hex").read_text(), bus)
        results.extend(res["layers"])
        out_images.extend(out for _ in members)

    for image, members in chunks:
        if not members:
            continue
        if work_dir is None:
            with tempfile.TemporaryDirectory(prefix="codesign-verify-") as tmp:
                run(Path(tmp), image, members)
        else:
            wd = Path(work_dir) / (f"run{members[0]}" if len(chunks) > 1 else "")
            wd.mkdir(parents=True, exist_ok=True)
            run(wd, image, members)
    wall = round(time.perf_counter() - t0, 3)
    out = []
    for (layer, ops, p, sim), res, q, active, out_image, resid, tab, pool in zip(
            placed, results, quants, refs, out_images, residuals, tables, pools, strict=True):
        if res["error"]:
            raise ConfigError(f"layer {layer.name!r}: the hardware refused its descriptor "
                              f"(error bits {res['error']:#x})")
        if isinstance(ops, EltwiseOperands):
            c = read_vec_outputs(out_image, p, core)
            expect, (groups, m, k, n) = ops.expected(), (1, p.plan.words, 1, 1)
        elif isinstance(ops, PoolOperands):  # the maxima, through the identity table when requantizing
            c = read_dw_outputs(out_image, p, core)
            expect = q.apply(ops.expected()) if q is not None else ops.expected()
            groups, m, k, n = p.plan.channels, c.shape[1], p.plan.r * p.plan.s, 1
        else:
            if isinstance(p.plan, DwPlan):
                c = read_dw_outputs(out_image, p, core)
            elif isinstance(p.plan, WinPlan):
                c = read_win_outputs(out_image, p, core)
            elif pool is not None:
                c = read_pooled_outputs(out_image, p, core)
            else:
                c = read_outputs(out_image, p, core)
            expect = q.apply(ops.c) if q is not None else ops.c
            if tab is not None:
                expect = apply_table(tab, expect, config.act_bits)
            if resid is not None:
                expect = resid.expected(expect)
            if pool is not None:  # the pooled map of the requantized outputs
                oh, ow = layer.out_h, layer.out_w  # type: ignore[attr-defined]
                fmap = expect.reshape(-1, oh, ow, expect.shape[-1]).transpose(0, 3, 1, 2)
                expect = max_pool(fmap, pool.kernel, pool.stride, pool.padding)  # type: ignore[attr-defined]
            (groups, m, k), n = ops.a.shape, ops.b.shape[2]
        out.append(WholeLayerVerification(
            layer=layer.name, m=m, n=n, k=k, groups=groups, tiles=p.plan.tile_count,
            tile=(p.plan.gt, p.plan.mt, p.plan.nt, p.plan.kt),
            outputs_match=bool(np.array_equal(c, expect)),
            rtl_cycles=res["cycles"], sim_cycles=sim.cycles,
            rtl_stall_cycles=res["stall_cycles"], sim_stall_cycles=sim.stall_cycles,
            rtl_dram_read_bytes=res["dram_read_bytes"], sim_dram_read_bytes=sim.counts.dram_read_bits // 8,
            rtl_dram_write_bytes=res["dram_write_bytes"], sim_dram_write_bytes=sim.counts.dram_write_bits // 8,
            rtl_enabled_macs=res["enabled_macs"], sim_active_macs=sim.counts.active_macs, ref_enabled_macs=active,
            stall_percent=round(stall * 100), wall_s=wall, simulator=simulator, rtl_outputs=c,
        ))
    return out


def verify_layer(layer: Layer, config: AcceleratorConfig, *, density: str | float | None = None,
                 seed: int = 0, batch: int = 1, **kwargs: Any) -> WholeLayerVerification:
    """One whole layer through the AXI port (see :func:`verify_layers`)."""
    if not layer.has_gemm:
        raise WorkloadError(f"layer {layer.name!r} ({layer.kind.value}) has no GEMM to run on the array")
    hw = hardware_layer(layer, config, density)
    ops = layer_operands(hw, batch=batch, seed=seed)
    return verify_layers([(hw, ops)], config, batch=batch, seed=seed, **kwargs)[0]


def verify(
    config: AcceleratorConfig | None = None,
    *,
    gemm: tuple[int, int, int] | None = None,
    workload: Any = None,
    layer: str | None = None,
    density: str | float | None = None,
    seed: int = 0,
    batch: int = 1,
    stall: float = 0.0,
    work_dir: str | Path | None = None,
    simulator: str | None = None,
    on_layer: Callable[[int, dict[str, Any]], None] | None = None,
    on_start: Callable[[RtlRunEstimate], None] | None = None,
) -> list[WholeLayerVerification]:
    """Verify the whole-layer RTL for ``config`` on a bare GEMM ``(M, N, K)`` or on layer(s) of a
    workload (a :class:`~codesign.workloads.layers.Network`, a zoo name, a file).

    ``layer`` picks one layer by name (default: every layer with a GEMM, and the max pools and element-wise
    layers the design builds an engine for). ``density`` sets the
    weights' sparsity (``0.5``, ``"2:4"``). ``stall``: probability of a random wait cycle on every
    AXI channel of the memory model. ``simulator``: ``"verilator"`` or ``"icarus"`` (default: Verilator when
    installed, or ``$CODESIGN_SIMULATOR``). ``on_start(estimate)`` is called before the RTL starts and
    ``on_layer(i, counters)`` as layer ``i`` finishes (progress reports).
    Returns one :class:`WholeLayerVerification` per layer.
    """
    config = config or AcceleratorConfig()
    HardwarePlan(config)  # validate early: one line naming what the hardware cannot build
    if (gemm is None) == (workload is None):
        raise ConfigError("verify needs exactly one of gemm=(M, N, K) or workload=...")
    if gemm is not None:
        try:
            m, n, k = (int(x) for x in gemm)
        except (TypeError, ValueError):
            raise ConfigError(f"gemm must be three positive integers M,N,K, not {gemm!r}") from None
        for nm, v in (("M", m), ("N", n), ("K", k)):
            if v < 1:
                raise ConfigError(f"gemm {nm} must be a positive integer, not {v}")
        layers: list[Layer] = [Linear(f"gemm_{m}x{n}x{k}", in_features=k, out_features=n, tokens=m, bias=False)]
    heads: dict[str, Layer] = {}  # built residual adds (fusion: eltwise): the head's name -> the add
    if gemm is None:
        from codesign.workloads.layers import Network

        if isinstance(workload, Network):
            net = workload
        else:
            from codesign.workloads.loading import load_workload

            net = load_workload(workload)
        from codesign.sim.fusion import plan_network

        contexts = plan_network(net, config)
        fused_adds = {ly.name: ctx.fused_into for ly, ctx in zip(net.layers, contexts, strict=True)
                      if ctx.fused and (ctx.writeback_add or ctx.pool is not None or ctx.dw is not None)}
        dws_heads = {ly.name: ctx.dw for ly, ctx in zip(net.layers, contexts, strict=True)
                     if ctx.dw is not None and not ctx.fused}
        by_name = {ly.name: ly for ly in net.layers}
        heads = {head: by_name[add] for add, head in fused_adds.items()}
        layers = [ly for ly in net.layers if ly.name not in fused_adds
                  and (gemm_layer(ly) is not None or not vec_reason(ly, config) or pool_on_engine(ly, config, batch))]
        if layer is not None:
            chosen = [by_name[fused_adds.get(ly.name, ly.name)] for ly in net.layers if ly.name == layer]
            if not chosen:
                names = ", ".join(ly.name for ly in layers[:12])
                raise WorkloadError(f"layer must be one of {names}{', ...' if len(layers) > 12 else ''}; "
                                    f"not {layer!r}")
            layers = chosen
        for ly in layers:
            if gemm_layer(ly) is None and vec_reason(ly, config) and not pool_on_engine(ly, config, batch):
                raise WorkloadError(f"layer {ly.name!r} ({ly.kind.value}) runs on a vector unit the generated "
                                    "hardware does not build (model-only)")
    pairs: list[tuple[Layer, Any]] = []
    units = []
    residuals: list[ResidualOperands | None] = []
    pools: list[Layer | None] = []
    dws_pairs = [(ly, dws_heads[ly.name]) for ly in layers if ly.name in dws_heads] if gemm is None else []
    layers = [ly for ly in layers if gemm is not None or ly.name not in dws_heads]
    for ly in layers:
        if isinstance(ly, Eltwise):  # an add or a scale on the vector unit
            pairs.append((ly, EltwiseOperands.seeded(ly, config, batch, seed)))
            units.append(False)
            residuals.append(None)
            pools.append(None)
            continue
        if pool_on_engine(ly, config, batch):  # a max pool on the depthwise engine
            hwp = ly.with_operands(inputs=ly.inputs.with_bits(config.act_bits, config.act_signed))
            pairs.append((hwp, PoolOperands.seeded(ly, config, batch, seed)))  # type: ignore[arg-type]
            units.append(False)
            residuals.append(None)
            pools.append(None)
            continue
        hwl = hardware_layer(gemm_layer(ly) or ly, config, density)
        ops = layer_operands(hwl, batch=batch, seed=seed)
        pooled = not ly.has_gemm  # an average pool: its GEMM's unit operand (Pool.as_gemm_layer)
        if pooled and isinstance(hwl, MatMul):  # global: ones[1, H*W] @ X
            ops = replace(ops, a=np.ones_like(ops.a))
            # planned and timed as the pool, as simulate does (its map B as planes: mapping.planes_b_tiling)
            hwl = hardware_layer(ly, config, density)
        elif pooled:  # a depthwise convolution with unit weights
            ops = replace(ops, b=np.ones_like(ops.b))
        pairs.append((hwl, ops))
        units.append(pooled)
        # a residual add built in its write-back: the add's seeded residual and parameters
        fused = heads.get(ly.name)
        is_pool = isinstance(fused, Pool)
        residuals.append(ResidualOperands.seeded(ops.c.shape, config, seed) if fused is not None and not is_pool
                         else None)
        pools.append(fused if is_pool else None)
    results = verify_layers(pairs, config, batch=batch, stall=stall, seed=seed, work_dir=work_dir,
                            simulator=simulator, on_layer=on_layer, on_start=on_start, unit_weights=units,
                            residuals=residuals, pools=pools) if pairs else []
    out = [replace(r, layer=f"{r.layer}+{heads[r.layer].name}") if r.layer in heads else r for r in results]
    if dws_pairs:  # 1x1 convolutions with their depthwise layers in their write-backs (sim.dwfuse), one run
        if batch != 1:
            raise ConfigError(f"the depthwise stage runs a batch of one, not {batch}")
        out += verify_dws_pairs(dws_pairs, config, seed=seed, stall=stall, simulator=simulator,
                                work_dir=None if work_dir is None else Path(work_dir) / "dws")
        order = {ly.name: i for i, ly in enumerate(net.layers)}
        out.sort(key=lambda r: order.get(r.layer.split("+")[0], -1))
    return out


def scaled(layer: Layer, **changes: Any) -> Layer:
    """A copy of ``layer`` with some sizes changed (to keep an RTL run short)."""
    return replace(layer, **changes)


# --------------------------------------------------------------------------------------------
# A whole network from one start (the network top: codesign.hdl.control.network)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ProgramVerification:
    """A network run on the network top from one start: every layer's outputs (read back from the one
    DRAM image) against the numpy integer reference, its counters (written into its record by the
    sequencer) against the simulator's layer, and the program's cycles against ``program_cycles``. A layer
    whose output stays in the input buffer for the next (:mod:`codesign.sim.residency`) never writes it to
    DRAM: its outputs are checked through those of the chain that reads it."""

    network: str
    layers: tuple[WholeLayerVerification, ...]
    rtl_cycles: int  # PROG_CYCLES: from the one start to irq
    sim_cycles: int  # codesign simulate's program_cycles
    records: int
    stall_percent: int
    wall_s: float
    simulator: str = ""

    @property
    def outputs_match(self) -> bool:
        return all(r.outputs_match for r in self.layers)

    @property
    def ok(self) -> bool:
        cycles = self.rtl_cycles >= self.sim_cycles if self.stall_percent else self.rtl_cycles == self.sim_cycles
        return self.outputs_match and cycles and all(r.ok for r in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {"network": self.network, "ok": self.ok, "outputs_match": self.outputs_match,
                "rtl_cycles": self.rtl_cycles, "sim_cycles": self.sim_cycles, "records": self.records,
                "one_start": True, "stall_percent": self.stall_percent, "wall_s": self.wall_s,
                "simulator": self.simulator,
                "rtl_layer_cycles": sum(r.rtl_cycles for r in self.layers),
                "sim_layer_cycles": sum(r.sim_cycles for r in self.layers),
                "layers": [r.to_dict() for r in self.layers]}


@dataclass
class _Step:
    """One record of a program: the layer the hardware runs, where its operands come from, its reference."""

    layer: Layer  # as the network names it (a pool, a convolution, a linear layer)
    hw: Layer  # at the hardware's bits (a global average pool: its MatMul)
    plan: Any
    source: str  # the producer of its activation operand (NETWORK_INPUT: the host writes it)
    residual: str = ""  # the producer of a fused residual add's operand
    add: Layer | None = None  # the fused add
    second: str = ""  # a squeeze-excite scale's: the producer of its per-channel scale (its B)
    pool: Layer | None = None  # a max pool in its write-back (sim.poolfuse): the record writes the pooled map
    dw: Layer | None = None  # a depthwise convolution in its write-back (sim.dwfuse): the record writes its output
    ctx: Any = None  # its fusion context (sim.fusion: residency's flags)


def program_steps(net: Any, config: AcceleratorConfig, batch: int = 1) -> list[_Step]:
    """The records of ``net`` run from one start on ``config``'s network top, each checked to read its
    operands where their producers write them; a one-line WorkloadError names the first layer that
    cannot (its plan needs the host between layers) and why."""
    from codesign.hdl.host import input_planes_reason, output_planes_reason
    from codesign.sim.fusion import plan_network
    from codesign.sim.mapping import map_is_b, plan_layer
    from codesign.sim.program import design_reason
    from codesign.sim.vecplan import VecPlan
    from codesign.workloads.layers import NETWORK_INPUT, Conv2d

    reason = design_reason(config)
    if reason:
        raise ConfigError(reason)
    if not config.requantize:
        raise ConfigError("a network from one start needs requantize: true (each layer writes its outputs at the "
                          "activations' bits for the next), not requantize: false")
    if config.dataflow is not Dataflow.WS:
        raise ConfigError(f"a network from one start needs dataflow ws (its layers read each other's planes), not "
                          f"{config.dataflow.value}")
    if batch != 1:
        raise ConfigError(f"a network from one start runs batch 1, not {batch}")
    contexts = plan_network(net, config)
    fused = {ly.name: ctx.fused_into for ly, ctx in zip(net.layers, contexts, strict=True)
             if ctx.fused and (ctx.writeback_add or ctx.pool is not None or ctx.dw is not None)}
    by_name = {ly.name: ly for ly in net.layers}
    heads = {head: by_name[add] for add, head in fused.items()}
    writer = {name: fused.get(name, name) for name in by_name}  # who writes a tensor: a fused layer's head
    steps: list[_Step] = []
    produced: dict[str, Any] = {}  # layer name -> plan of the record that writes it
    for ly, ctx in zip(net.layers, contexts, strict=True):
        if ly.name in fused:
            continue
        if ctx.fused:
            raise WorkloadError(f"layer {ly.name!r}: fused into {ctx.fused_into!r} in a way the hardware does not "
                                "build")
        g = gemm_layer(ly)
        if g is None and pool_on_engine(ly, config, batch):  # a max pool on the depthwise engine: planes in and out
            g = ly.with_operands(inputs=ly.inputs.with_bits(config.act_bits, config.act_signed))
        if g is None and isinstance(ly, Eltwise):  # a squeeze-excite scale on the vector unit: planes in and out
            vec = plan_layer(ly, batch, config, ctx).tiling
            if isinstance(vec, VecPlan) and vec.broadcast:
                steps.append(_scale_step(ly, vec, writer, produced, config))
                produced[ly.name] = vec
                continue
        if g is None:
            raise WorkloadError(f"layer {ly.name!r} ({ly.kind.value}) runs on the vector unit as flat words, not on "
                                "its producer's planes: it cannot run in a program")
        if isinstance(g, Conv2d) and (g.groups not in (1, g.in_channels)
                                      or (g.groups > 1 and g.out_channels != g.in_channels)):
            raise WorkloadError(f"layer {ly.name!r}: grouped convolutions other than depthwise with channel "
                                "multiplier 1 do not run in a program (a multiplier's output planes are multiplier "
                                "by multiplier, not in its consumer's channel order)")
        hwl = g if isinstance(g, Pool) else hardware_layer(g, config)
        # a global average pool is planned as the pool (its map is B, read as planes: mapping.planes_b_tiling)
        pooled = map_is_b(ly, g)
        plan = plan_layer(hardware_layer(ly, config) if pooled else hwl, batch, config, ctx).tiling
        sources = [s for s in ly.sources if s] or [NETWORK_INPUT]
        src = sources[0]
        if src != NETWORK_INPUT:
            why = input_planes_reason(ly, plan, config)
            if why:
                raise WorkloadError(f"layer {ly.name!r} cannot run from one start: {why}")
            prod = produced.get(writer.get(src, src))
            why = output_planes_reason(prod, config) if prod is not None else f"its source {src!r} is not a record"
            pixels = getattr(by_name[src], "out_h", 1) * getattr(by_name[src], "out_w", 1)
            if not why and isinstance(ly, Linear) and pixels != 1:
                why = (f"it flattens a map of {pixels} pixels, whose planes (channels-last) are not its K order: "
                       "the host would reorder them")
            if why:
                raise WorkloadError(f"layer {ly.name!r} cannot read {writer.get(src, src)!r}'s output in place: {why}")
        step = _Step(layer=ly, hw=hwl, plan=plan, source=writer.get(src, src), ctx=ctx)
        if ly.name in heads and ctx.pool is not None:  # the record writes the pooled map
            step.pool = ctx.pool
        elif ly.name in heads and ctx.dw is not None:  # the record writes the depthwise output
            step.dw = hardware_layer(ctx.dw, config)
        elif ly.name in heads:
            add = heads[ly.name]
            others = [s for s in add.sources if s != ly.name]
            if len(others) != 1 or others[0] == NETWORK_INPUT:
                raise WorkloadError(f"layer {add.name!r}: a residual add in a program needs one other operand written "
                                    f"by a layer, not {add.sources!r}")
            res = writer.get(others[0], others[0])
            prod = produced.get(res)
            why = output_planes_reason(prod, config) if prod is not None else f"{res!r} is not a record"
            if why:
                raise WorkloadError(f"layer {add.name!r} cannot read {res!r}'s output in place: {why}")
            step.residual, step.add = res, add
        steps.append(step)
        produced[ly.name] = plan
    return steps


def _scale_step(ly: Layer, plan: Any, writer: dict[str, str], produced: dict[str, Any],
                config: AcceleratorConfig) -> _Step:
    """The record of a squeeze-excite scale (``map * scale[C]`` on the vector unit, flags bits 4 and 5): its
    map (A) the planes of its first source, its per-channel scale (B, one word a plane) the planes of 1 pixel
    of its second, each read where its producer wrote it."""
    from codesign.hdl.host import output_planes_reason
    from codesign.workloads.layers import NETWORK_INPUT

    if len(ly.sources) != 2 or NETWORK_INPUT in ly.sources:
        raise WorkloadError(f"layer {ly.name!r}: a scale in a program reads two layers' outputs, not {ly.sources!r}")
    src, second = (writer.get(s, s) for s in ly.sources)
    for name in (src, second):
        prod = produced.get(name)
        why = output_planes_reason(prod, config) if prod is not None else f"its source {name!r} is not a record"
        if why:
            raise WorkloadError(f"layer {ly.name!r} cannot read {name!r}'s output in place: {why}")
    return _Step(layer=ly, hw=ly, plan=plan, source=src, second=second)


def verify_program(workload: Any, config: AcceleratorConfig | None = None, *, seed: int = 0, stall: float = 0.0,
                   work_dir: str | Path | None = None, simulator: str | None = None,
                   on_start: Callable[[RtlRunEstimate], None] | None = None) -> ProgramVerification:
    """Run a whole network with seeded integer weights (and seeded requantization) on the network top from
    one start: the host lays out one DRAM image (the first layer's input, every layer's weights and tables,
    each layer reading its producer's output in place) and the descriptor list; the bench writes
    PROG_BASE, PROG_LAYERS and one PROG_CTRL start and waits for irq. Every layer's outputs are compared
    with the numpy integer reference (:mod:`codesign.workloads.intarith`'s requantization, TFLite's ADD for
    fused residuals), its counters with the simulator's layer, and the program's cycles with
    :attr:`codesign.sim.result.NetworkResult.program_cycles`."""
    from codesign.hdl.bench.runner import (
        estimate_seconds,
        layer_depth_words,
        network_built,
        run_network_job,
    )
    from codesign.hdl.host import (
        check_descriptor,
        feed,
        hex_image,
        identity_requant,
        image_hex,
        input_plane_bytes,
        output_plane_bytes,
        place_act_table,
        place_dw_layer,
        place_dws_pair,
        place_layer,
        place_program,
        place_residual,
        place_vec_layer,
        place_win_layer,
        random_requant,
        read_dw_outputs,
        read_dws_outputs,
        read_gemm_planes,
        read_outputs,
        read_pooled_outputs,
        read_program_counters,
        read_vec_outputs,
        read_win_outputs,
        restride_output,
        writes_planes,
    )
    from codesign.sim.convplan import WinPlan
    from codesign.sim.dwplan import DwPlan
    from codesign.sim.engine import simulate_network
    from codesign.sim.tileplan import bus_bytes
    from codesign.sim.vecplan import VecPlan
    from codesign.workloads.eltwise_arith import apply_table, seeded_activation_table, tflite_add, tflite_mul
    from codesign.workloads.layers import NETWORK_INPUT, Conv2d, Linear, MatMul, Network
    from codesign.workloads.tensors import conv_tensors, im2col, layer_operands

    config = config or AcceleratorConfig()
    HardwarePlan(config)
    if isinstance(workload, Network):
        net = workload
    else:
        from codesign.workloads.loading import load_workload

        net = load_workload(workload)
    steps = program_steps(net, config, net.batch)
    simulator, hw, core = _rtl_run_setup(config, simulator, stall)
    t0 = time.perf_counter()
    bus = bus_bytes(config)
    result = simulate_network(net, config)
    sim_rows = {r.layer: r for r in result.layers}
    rng = np.random.default_rng(seed + 7)
    lo, hi = ((-(1 << (config.act_bits - 1)), (1 << (config.act_bits - 1)) - 1) if config.act_signed
              else (0, (1 << config.act_bits) - 1))
    acts: dict[str, np.ndarray] = {}  # tensor [1, C, H, W] by the name of the layer that writes it
    image = bytearray()
    placed: dict[str, Any] = {}
    expects: list[np.ndarray] = []
    refs: list[int] = []
    dims: list[tuple[int, int, int, int]] = []  # groups, M, N, K of each record's GEMM view

    fed: set[str] = set()  # layers whose output a consumer already reads (its layout is fixed)

    def in_reach(name: str) -> None:
        """Refuse an image that layer ``name``'s placement took beyond the design's 2**dram_addr_bits bytes."""
        check_layout_end(name, len(image), config, what="the network's DRAM image with this layer")

    def producer(name: str, plane_bytes: int) -> Any:
        """The placed layer ``name``, writing its output as planes ``plane_bytes`` apart (moved if need be)."""
        prod = placed[name]
        if not writes_planes(prod) or output_plane_bytes(prod) != plane_bytes:
            if getattr(prod.plan, "pool", None) is not None:
                raise ConfigError(f"layer {name!r}: its pooled planes are {output_plane_bytes(prod)} bytes apart, "
                                  f"its consumer reads them {plane_bytes} apart")
            if name in fed:
                raise ConfigError(f"layer {name!r}: its consumers read its output planes {output_plane_bytes(prod)} "
                                  f"and {plane_bytes} bytes apart")
            placed[name] = prod = restride_output(prod, plane_bytes, config, image)
        fed.add(name)
        return prod

    for i, st in enumerate(steps):
        ly, hwl, plan = st.layer, st.hw, st.plan
        first = st.source == NETWORK_INPUT
        lseed = seed + i
        # the activation operand: the host's seeded input for the first record, the producer's reference after
        if isinstance(hwl, Pool):  # a max pool: the maxima through the write-back's identity table
            if first:
                raise WorkloadError(f"layer {ly.name!r}: a network starting with a max pool is not a program")
            x = acts[st.source]
            q = identity_requant(hwl.channels, config.act_bits, config.act_signed)
            out = q.apply(PoolOperands(x, tuple(hwl.kernel), tuple(hwl.stride),  # type: ignore[arg-type]
                                       tuple(hwl.padding)).expected())  # type: ignore[arg-type]
            expects.append(out)
            dims.append((hwl.channels, out.shape[1], 1, hwl.kernel[0] * hwl.kernel[1]))  # type: ignore[index]
            acts[ly.name] = out[:, :, 0].reshape(1, hwl.channels, hwl.out_h, hwl.out_w)
            refs.append(0)
            p = place_dw_layer(image, plan, np.zeros_like(x), None, len(image), q)
            p = feed(p, "a", producer(st.source, input_plane_bytes(p, "a")))
            placed[ly.name] = p
            in_reach(ly.name)
            continue
        if isinstance(plan, VecPlan):  # a squeeze-excite scale: the map's planes times the scale's (one word each)
            x, gate = acts[st.source], acts[st.second]
            xin, yin = x.reshape(1, x.shape[1], -1), gate.reshape(1, -1)
            params = EltwiseOperands.seeded(ly, config, seed=lseed).params
            out = tflite_mul(xin, yin[:, :, None], params)
            expects.append(out)
            dims.append((plan.groups, plan.pixels, plan.size, 1))
            acts[ly.name] = out.reshape(x.shape)
            refs.append(0)
            p = place_vec_layer(image, plan, np.zeros_like(xin), np.zeros_like(yin), params, len(image),
                                config.requantize)
            p = feed(p, "a", producer(st.source, input_plane_bytes(p, "a")))
            placed[ly.name] = feed(p, "b", producer(st.second, input_plane_bytes(p, "b")))
            in_reach(ly.name)
            continue
        if isinstance(hwl, Conv2d):
            x_seed, w_seed = conv_tensors(hwl, seed=lseed)
            x = x_seed if first else acts[st.source]
            a = im2col(x, hwl)
            if hwl.groups > 1:  # depthwise: each channel's windows by its kernel
                w3 = w_seed.reshape(hwl.out_channels, hwl.r, hwl.s)
                if not ly.has_gemm:  # an average pool's convolution: unit weights
                    w3 = np.ones_like(w3)
                b = w3.reshape(hwl.out_channels, hwl.r * hwl.s, 1)
            else:
                b = layer_operands(hwl, seed=lseed).b
        elif isinstance(hwl, MatMul):  # a global average pool: ones[1, H*W] @ X[H*W, C]
            if first:
                raise WorkloadError(f"layer {ly.name!r}: a network starting with a global pool is not a program")
            x = acts[st.source]
            a = np.ones((1, 1, hwl.k), dtype=np.int64)
            b = x[0].reshape(hwl.n, hwl.k).T[None]
        elif isinstance(hwl, Linear):
            ops = layer_operands(hwl, seed=lseed)
            a = ops.a if first else acts[st.source].reshape(1, 1, -1)
            b = ops.b
        else:  # pragma: no cover - program_steps refuses the rest
            raise WorkloadError(f"layer {ly.name!r} does not run in a program")
        hw.check_accumulator(a.shape[2], f"layer {ly.name!r}")
        acc = np.matmul(a.astype(np.int64), b.astype(np.int64))
        q = random_requant(acc, config.act_bits, config.act_signed, rng)
        out = q.apply(acc)
        tab = None  # a table activation in the write-back (flags bit 10): seeded for its function
        if getattr(plan, "act_table", False):
            tab = seeded_activation_table(ly.activation, config.act_bits, config.act_signed)
            out = apply_table(tab, out, config.act_bits)
        resid = None
        if st.add is not None:
            params = ResidualOperands.seeded(out.shape, config, seed).params
            y = acts[st.residual]
            resid = (y[0].reshape(y.shape[1], -1).T[None], params)
            out = tflite_add(out, resid[0], params)
        assert out.min() >= lo and out.max() <= hi
        if st.pool is not None:  # the pooled map of the requantized outputs is what the record writes
            fmap = out[0].reshape(hwl.out_h, hwl.out_w, hwl.out_channels).transpose(2, 0, 1)[None]  # type: ignore[union-attr]
            out = max_pool(fmap, st.pool.kernel, st.pool.stride, st.pool.padding)  # type: ignore[attr-defined]
        dws_q, dws_w = None, None
        if st.dw is not None:  # the depthwise layer on the requantized outputs is what the record writes
            dwl = st.dw
            fmap = out[0].reshape(hwl.out_h, hwl.out_w, hwl.out_channels).transpose(2, 0, 1)[None]  # type: ignore[union-attr]
            _, w_dw = conv_tensors(dwl, seed=lseed + 100_003)  # type: ignore[arg-type]
            dws_w = w_dw.reshape(dwl.out_channels, dwl.r, dwl.s)  # type: ignore[attr-defined]
            acc2 = np.einsum("cmk,ck->cm", im2col(fmap, dwl).astype(np.int64),  # type: ignore[arg-type]
                             w_dw.reshape(dwl.out_channels, -1).astype(np.int64))  # type: ignore[attr-defined]
            dws_q = random_requant(acc2.T[None], config.act_bits, config.act_signed, rng)
            dws_q = replace(dws_q, bias=dws_q.bias.T, mult=dws_q.mult.T, shift=dws_q.shift.T)  # per channel: [C, 1]
            out = dws_q.apply(acc2[:, :, None])[:, :, 0].reshape(1, dwl.out_channels, dwl.out_h, dwl.out_w)  # type: ignore[attr-defined]
        expects.append(out)
        dims.append((*acc.shape, a.shape[2]))
        # the output as a feature map [1, C, H, W] for its consumers
        if st.pool is not None or st.dw is not None:
            acts[ly.name] = out
        elif isinstance(hwl, Conv2d) and hwl.groups > 1:
            acts[ly.name] = out[:, :, 0].reshape(1, hwl.out_channels, hwl.out_h, hwl.out_w)
        elif isinstance(hwl, Conv2d):
            acts[ly.name] = out[0].reshape(hwl.out_h, hwl.out_w, hwl.out_channels).transpose(2, 0, 1)[None]
        else:
            acts[ly.name] = out.reshape(1, -1, 1, 1)
        # the layer in DRAM: its weights and table; its input only when it is the network's (else zeros:
        # it reads its producer's output in place)
        start = len(image)
        if isinstance(plan, DwPlan):
            refs.append(plan.enabled_macs())
            xin = x if first else np.zeros_like(x)
            p = place_dw_layer(image, plan, xin, b.reshape(hwl.out_channels, hwl.r, hwl.s), start, q)
        elif isinstance(plan, WinPlan):
            refs.append(GemmOperands(a, b, hwl.gemm(1)).active_macs() if hw.gating else int(np.prod(acc.shape))
                        * a.shape[2])
            xin = x if first else np.zeros_like(x)
            w4 = b[0].T.reshape(hwl.out_channels, hwl.in_channels, hwl.r, hwl.s)
            p = place_win_layer(image, plan, core, xin, w4, start, q)
            if resid is not None:
                p = place_residual(image, p, core, np.zeros_like(resid[0]), resid[1])
        else:
            refs.append(GemmOperands(a, b, hwl.gemm(1)).active_macs() if hw.gating else int(np.prod(acc.shape))
                        * a.shape[2])
            if resid is not None:
                raise WorkloadError(f"layer {ly.name!r}: a residual add on a GEMM plan reads im2col'd rows, not "
                                    "its operand's planes")
            pooled = isinstance(hwl, MatMul)
            a_img = a if (first or pooled) else np.zeros_like(a)
            b_img = np.zeros_like(b) if pooled else b
            if st.dw is not None:
                p = place_dws_pair(image, plan, core, a_img, b_img, dws_w, start, q, dws_q)
                refs[-1] += st.dw.macs(1)
            else:
                p = place_layer(image, plan, core, a_img, b_img, start, q)
        if tab is not None:
            p = place_act_table(image, p, tab)
        # read the producer's output in place (a global pool's map is its B operand)
        if not first:
            operand = "b" if isinstance(hwl, MatMul) else "a"
            p = feed(p, operand, producer(st.source, input_plane_bytes(p, operand)))
        if resid is not None:
            p = feed(p, "res", producer(st.residual, output_plane_bytes(p)))
        placed[ly.name] = p
        in_reach(ly.name)
    records = [_resident(placed[st.layer.name], st) for st in steps]
    for st, p in zip(steps, records, strict=True):
        check_descriptor(p.descriptor, hw, st.plan, layer=st.layer.name)
    prog_base = place_program(image, [p.descriptor for p in records], bus)
    check_layout_end(steps[-1].layer.name, len(image), config,
                     what="the network's DRAM image with the descriptor list after this last layer")
    sim_total = result.program_cycles
    if on_start is not None:
        beats = max(1, len(image) // bus)
        built = network_built(config, layer_depth_words(beats, simulator), simulator)
        on_start(RtlRunEstimate(simulator=simulator, layers=len(steps), runs=1, sim_cycles=sim_total, built=built,
                                seconds=estimate_seconds(config, sim_total, simulator, built=built)))

    def run(tmp: Path) -> tuple[dict[str, Any], bytes]:
        beats = max(1, len(image) // bus)
        (tmp / "dram.hex").write_text(image_hex(bytes(image), bus))
        plusargs = _memory_plusargs(config, stall, seed, tmp, beats)
        res = run_network_job(config, {"prog_base": prog_base, "prog_layers": len(records)}, tmp,
                              depth_words=layer_depth_words(beats, simulator), plusargs=plusargs, simulator=simulator)
        return res, hex_image((tmp / "dram_out.hex").read_text(), bus)

    res, out_image = _in_work_dir(work_dir, run)
    if res["prog_status"] & 0b100:
        idx = res["prog_layer"]
        raise ConfigError(f"layer {steps[idx].layer.name!r} (record {idx}): the hardware refused its descriptor "
                          f"(error bits {res['error']:#x})")
    counters = read_program_counters(out_image, prog_base, len(records), bus)
    wall = round(time.perf_counter() - t0, 3)
    out = []
    for st, p, cnt, expect, active, (g_, m_, n_, k_) in zip(steps, records, counters, expects, refs, dims,
                                                           strict=True):
        if isinstance(p.plan, DwPlan):
            c = read_dw_outputs(out_image, p, core)
        elif isinstance(p.plan, VecPlan):
            c = read_vec_outputs(out_image, p, core)
        elif isinstance(p.plan, WinPlan):
            c = read_win_outputs(_compact_planes(out_image, p), p, core)
        elif st.pool is not None:  # the pooled map
            c = read_pooled_outputs(out_image, p, core)
        elif st.dw is not None:  # the depthwise output
            c = read_dws_outputs(out_image, p, core)
        elif p.descriptor.get("cv_c_block"):  # a GEMM's planes out
            c = read_gemm_planes(out_image, p, core)
        else:
            c = read_outputs(out_image, p, core)
        sim = sim_rows[st.layer.name]
        name = f"{st.layer.name}+{st.add.name}" if st.add is not None else st.layer.name
        if st.pool is not None:
            name = f"{st.layer.name}+{st.pool.name}"
        macs = sim.counts.active_macs
        if st.dw is not None:
            name = f"{st.layer.name}+{st.dw.name}"
            macs += sim_rows[st.dw.name].counts.active_macs
        out.append(WholeLayerVerification(
            layer=name, m=m_, n=n_, k=k_, groups=g_, tiles=p.plan.tile_count,
            tile=(p.plan.gt, p.plan.mt, p.plan.nt, p.plan.kt), outputs_match=bool(np.array_equal(c, expect)),
            rtl_cycles=cnt["cycles"], sim_cycles=sim.cycles, rtl_stall_cycles=cnt["stall_cycles"],
            sim_stall_cycles=sim.stall_cycles, rtl_dram_read_bytes=cnt["dram_read_bytes"],
            sim_dram_read_bytes=sim.counts.dram_read_bits // 8, rtl_dram_write_bytes=cnt["dram_write_bytes"],
            sim_dram_write_bytes=sim.counts.dram_write_bits // 8, rtl_enabled_macs=cnt["enabled_macs"],
            sim_active_macs=macs, ref_enabled_macs=active, stall_percent=round(stall * 100),
            wall_s=wall, simulator=simulator, rtl_outputs=c))
    # a resident output never reaches DRAM: it is checked through the outputs of the chain that reads it
    for j in range(len(out) - 2, -1, -1):
        if steps[j].ctx is not None and steps[j].ctx.res_out:
            out[j] = replace(out[j], outputs_match=out[j + 1].outputs_match, rtl_outputs=None)
    return ProgramVerification(network=net.name, layers=tuple(out), rtl_cycles=res["prog_cycles"],
                               sim_cycles=sim_total, records=len(records), stall_percent=round(stall * 100),
                               wall_s=wall, simulator=simulator)


def _in_work_dir(work_dir: str | Path | None, run: Callable[[Path], Any]) -> Any:
    """``run(directory)`` in ``work_dir`` (created), or in a temporary directory removed afterwards."""
    if work_dir is None:
        with tempfile.TemporaryDirectory(prefix="codesign-verify-") as tmp:
            return run(Path(tmp))
    Path(work_dir).mkdir(parents=True, exist_ok=True)
    return run(Path(work_dir))


def _resident(placed: Any, step: _Step) -> Any:
    """``placed`` with its step's residency (:mod:`codesign.sim.residency`) in its descriptor."""
    ctx = step.ctx
    if ctx is None or not (ctx.res_in or ctx.res_out or ctx.in_slot):
        return placed
    from codesign.sim.residency import descriptor_fields

    return replace(placed, descriptor=descriptor_fields(placed.descriptor, placed.plan, ctx,
                                                                    placed.plan.slot_words[0]))


def _compact_planes(image: bytes, placed: Any) -> bytes:
    """``image`` with a window layer's output planes moved together (``out_h * out_w`` words apart), when its
    descriptor wrote them further apart (:func:`codesign.hdl.host.restride_output`)."""
    plan = placed.plan
    natural, stride = plan.strides_bytes["plane_c"], placed.descriptor["cv_c_block"]
    if stride == natural:
        return image
    out = bytearray(image)
    for f in range(plan.out_planes * plan.batch):
        src = placed.c_base + f * stride
        out[placed.c_base + f * natural:placed.c_base + (f + 1) * natural] = image[src:src + natural]
    return bytes(out)


def verify_dws_pairs(pairs: list[tuple[Layer, Layer]], config: AcceleratorConfig, *, seed: int = 0, stall: float = 0.0,
                     simulator: str | None = None, work_dir: str | Path | None = None) -> list[WholeLayerVerification]:
    """Run 1x1 convolutions each with the depthwise convolution after it in its write-back (``codesign.sim.dwfuse``:
    flags bit 15) through the AXI port (one RTL run for all of them) and compare with numpy and the simulator.

    Each pair's seeded tensors: the 1x1's input and weights (``workloads.tensors.conv_tensors``), the depthwise
    weights (seed + 1), seeded requantization parameters for both. Expected: ``requant_dw(dwconv(requant(x @ W)))``
    (TFLite's integer arithmetic), read back as the depthwise output's planes. The simulator's numbers are the
    pair's: the 1x1 layer's row in the fusion context (cycles, stalls, DRAM bytes) and both layers' MACs."""
    from codesign.hdl.bench.runner import layer_depth_words, run_layer_job
    from codesign.hdl.host import (
        hex_image,
        image_hex,
        place_dws_pair,
        random_requant,
        read_dws_outputs,
    )
    from codesign.sim.dwfuse import pair_reason, plan_fused
    from codesign.sim.engine import simulate_layer
    from codesign.sim.tileplan import bus_bytes
    from codesign.workloads.tensors import conv_tensors, im2col

    simulator, hw, core = _rtl_run_setup(config, simulator, stall)
    t0 = time.perf_counter()
    image = bytearray()
    placed: list[Any] = []
    rng = np.random.default_rng(seed + 7)
    for pw, dw in ((hardware_layer(a, config), hardware_layer(b, config)) for a, b in pairs):  # at the design's bits
        reason = pair_reason(pw, dw, 1, config)
        if reason:
            raise WorkloadError(f"layer {dw.name!r} does not run in {pw.name!r}'s write-back: {reason}")
        plan = plan_fused(pw, dw, 1, config)  # type: ignore[arg-type]
        x, w = conv_tensors(pw, seed=seed)  # type: ignore[arg-type]
        _, w_dw = conv_tensors(dw, seed=seed + 1)  # type: ignore[arg-type]
        a = im2col(x, pw)  # type: ignore[arg-type]
        b = w.reshape(1, pw.out_channels, -1).transpose(0, 2, 1)  # type: ignore[attr-defined]
        acc = np.matmul(a.astype(np.int64), b.astype(np.int64))
        q1 = random_requant(acc, config.act_bits, config.act_signed, rng)
        e = q1.apply(acc)  # [1, H*W, N]
        fmap = e.reshape(1, pw.out_h, pw.out_w, -1).transpose(0, 3, 1, 2)  # type: ignore[attr-defined]
        a2 = im2col(fmap, dw)  # type: ignore[arg-type]  # [C, OH*OW, R*S]
        w3 = w_dw.reshape(dw.out_channels, -1)  # type: ignore[attr-defined]
        acc2 = np.einsum("cmk,ck->cm", a2.astype(np.int64), w3.astype(np.int64))
        q2 = random_requant(acc2.T[None], config.act_bits, config.act_signed, rng)
        q2 = replace(q2, bias=q2.bias.T, mult=q2.mult.T, shift=q2.shift.T)  # per channel: [C, 1]
        expect = q2.apply(acc2[:, :, None])[:, :, 0].reshape(1, dw.out_channels, dw.out_h, dw.out_w)  # type: ignore[attr-defined]
        p = place_dws_pair(image, plan, core, a, b, w_dw.reshape(dw.out_channels, dw.r, dw.s),  # type: ignore[attr-defined]
                           len(image), q1, q2)
        _check_placed(pw.name, image, p, hw, plan, config)
        macs = pw.macs(1) + dw.macs(1)
        head = simulate_layer(pw, 1, config, context=replace(DEFAULT_CTX, dw=dw))
        placed.append((pw, dw, p, expect, head, macs))
    bus = bus_bytes(config)
    beats = max(1, len(image) // bus)

    def run(tmp: Path) -> tuple[list[dict[str, Any]], bytes]:
        job = {"layers": [{"descriptor": p.descriptor} for _, _, p, *_ in placed]}
        (tmp / "dram.hex").write_text(image_hex(bytes(image), bus))
        res = run_layer_job(config, job, tmp, depth_words=layer_depth_words(beats, simulator),
                            plusargs=_memory_plusargs(config, stall, seed, tmp, beats), simulator=simulator)
        return res["layers"], hex_image((tmp / "dram_out.hex").read_text(), bus)

    results, out_image = _in_work_dir(work_dir, run)
    wall = round(time.perf_counter() - t0, 3)
    out = []
    for (pw, dw, p, expect, head, macs), res in zip(placed, results, strict=True):
        if res["error"]:
            raise ConfigError(f"layer {pw.name!r}: the hardware refused its descriptor (error bits {res['error']:#x})")
        c = read_dws_outputs(out_image, p, core)
        g = p.plan.gemm
        out.append(WholeLayerVerification(
            layer=f"{pw.name}+{dw.name}", m=g.m, n=g.n, k=g.k, groups=1, tiles=p.plan.tile_count,
            tile=(p.plan.gt, p.plan.mt, p.plan.nt, p.plan.kt), outputs_match=bool(np.array_equal(c, expect)),
            rtl_cycles=res["cycles"], sim_cycles=head.cycles, rtl_stall_cycles=res["stall_cycles"],
            sim_stall_cycles=head.stall_cycles, rtl_dram_read_bytes=res["dram_read_bytes"],
            sim_dram_read_bytes=head.counts.dram_read_bits // 8, rtl_dram_write_bytes=res["dram_write_bytes"],
            sim_dram_write_bytes=head.counts.dram_write_bits // 8, rtl_enabled_macs=res["enabled_macs"],
            sim_active_macs=macs, ref_enabled_macs=macs, stall_percent=round(stall * 100), wall_s=wall,
            simulator=simulator, rtl_outputs=c))
    return out
