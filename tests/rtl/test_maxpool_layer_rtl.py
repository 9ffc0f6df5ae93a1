"""Max pooling on the built depthwise engine (MAX mode), through the whole-layer top's AXI port.

Per layer (kernels 2 to 5, strides 1 to 3, symmetric, TF-style and asymmetric padding, rectangular
windows, channel counts that leave a last plane partly empty, batch > 1, whole planes packed several to
a tile and bands of rows with their halo):

* outputs: the planes read back equal numpy's max pooling (``hdl.verify.max_pool``, and here a second,
  loop-by-loop reference), through the write-back's identity table when ``requantize``, or as 32-bit
  accumulators without it; padding never wins (maps of negative values);
* cycles, stall cycles, DRAM bytes read and written: the RTL's counters equal ``codesign.sim``'s
  (``DwPlan`` in MAX mode: a one-word block a plane, the convolution's scan);
* enabled MACs: 0 (a max pool multiplies nothing);
* bad descriptors: the host API refuses them in one line, and written straight to the registers the
  hardware raises ``dw_unsupported`` and does not start.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from codesign.errors import ConfigError
from codesign.hdl.bench.runner import default_simulator, simulator_available
from codesign.hdl.verify import PoolOperands, max_pool, verify_layers
from codesign.sim.config import AcceleratorConfig
from codesign.sim.dwplan import plan_dw
from codesign.sim.tileplan import DMA_WRITE_OVERHEAD_CYCLES, REQUANT_WRITE_CYCLES
from codesign.workloads.layers import Pool

pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(not simulator_available(default_simulator()),
                       reason=f"the RTL simulator {default_simulator()} is not installed"),
]


def loop_max_pool(x: np.ndarray, pool: Pool) -> np.ndarray:
    """The plain definition, pixel by pixel: the largest input pixel inside each window."""
    (r, s), (sh, sw), (pt, pl, _, _) = pool.kernel, pool.stride, pool.padding  # type: ignore[misc]
    batch, c_ = x.shape[:2]
    out = np.zeros((batch, c_, pool.out_h, pool.out_w), dtype=np.int64)
    for oy in range(pool.out_h):
        for ox in range(pool.out_w):
            y0, x0 = oy * sh - pt, ox * sw - pl
            win = x[:, :, max(0, y0):min(pool.in_h, y0 + r), max(0, x0):min(pool.in_w, x0 + s)]
            out[:, :, oy, ox] = win.max(axis=(2, 3))
    return out


def check(cfg: AcceleratorConfig, pools: list[Pool], *, batch: int = 1, seed: int = 1, stall: float = 0.0,
          negative: bool = False) -> list:
    pairs = []
    for i, ly in enumerate(pools):
        ops = PoolOperands.seeded(ly, cfg, batch, seed + i)
        if negative:  # every pixel below zero: a zero of the padding would win a border window
            ops = PoolOperands(np.minimum(ops.x, -1), ops.kernel, ops.stride, ops.padding)
        pairs.append((ly, ops))
    results = verify_layers(pairs, cfg, batch=batch, seed=seed, stall=stall)
    for (ly, ops), r in zip(pairs, results, strict=True):
        d = r.to_dict()
        plan = plan_dw(ly, batch, cfg)
        assert (r.tile[0], r.tile[1]) == (plan.gt, plan.mt), d
        expect = loop_max_pool(ops.x, ly)
        assert np.array_equal(max_pool(ops.x, ly.kernel, ly.stride, ly.padding), expect)  # type: ignore[arg-type]
        got = r.rtl_outputs.reshape(ly.channels, batch, ly.out_h, ly.out_w).transpose(1, 0, 2, 3)
        assert np.array_equal(got, expect), d
        if negative:
            assert (got < 0).all()
        assert r.outputs_match and r.rtl_enabled_macs == r.sim_active_macs == 0, d
        assert (r.rtl_dram_read_bytes, r.rtl_dram_write_bytes) == (r.sim_dram_read_bytes, r.sim_dram_write_bytes), d
        if stall:
            assert r.rtl_cycles >= r.sim_cycles, d
        else:
            assert (r.rtl_cycles, r.rtl_stall_cycles) == (r.sim_cycles, r.sim_stall_cycles), d
        assert r.ok, d
    return results


def small_config(**kw: object) -> AcceleratorConfig:
    base = {"rows": 4, "cols": 4, "depthwise": "engine", "depthwise_kernel": 5, "input_sram_bytes": 1024,
            "weight_sram_bytes": 1024, "output_sram_bytes": 1024, "dram_bytes_per_cycle": 4}
    return AcceleratorConfig(**{**base, **kw})  # type: ignore[arg-type]


POOLS = [
    Pool("resnet_3x3s2p1", channels=6, in_h=12, in_w=12, kernel=3, stride=2, padding=1),  # ResNet's, scaled down
    Pool("one_tile_2x2s2", channels=4, in_h=6, in_w=6, kernel=2, stride=2),
    Pool("tf_same_3x3s2", channels=5, in_h=9, in_w=9, kernel=3, stride=2, padding=(0, 0, 1, 1)),
    Pool("k5s3_asym", channels=3, in_h=14, in_w=11, kernel=5, stride=3, padding=(2, 1, 0, 2)),
    Pool("rect_2x3", channels=7, in_h=10, in_w=12, kernel=(2, 3), stride=(1, 2), padding=(0, 1, 1, 0)),
    Pool("same_3x3s1", channels=2, in_h=13, in_w=7, kernel=3, stride=1, padding=1),
    Pool("packed_3x3s2", channels=12, in_h=5, in_w=4, kernel=3, stride=2, padding=(1, 0, 1, 2)),  # 2 planes a tile
]


def test_max_pools_exact_requantized() -> None:
    """Seven max pools on a 4x4 array's engine (4 lanes, a 5x5 window), 1 KiB buffers, the requantizing
    write-back with the identity table. ``one_tile_2x2s2`` is one tile, in closed form: read the table
    (one word of 4 x 56 bits = 28 bytes) in a command of its own, then the 6x6 plane (36 words of 4 bytes)
    and its one-word block (4 bytes); compute 1 (issue) + 1 (block) + 3 + 36 positions + 5 (drain) = 46;
    store 9 words of 4 int8 lanes (DMA_WRITE_OVERHEAD_CYCLES = 3 with the DMA's command register) through the
    requantizing write-back (REQUANT_WRITE_CYCLES = 6: four cuts of arithmetic and a queue):
    (3 + 100 + 28/4) + (3 + 100 + 148/4) + 46 + (3 + 6 + 100 + 36/4) = 414 cycles (a read: the decision, the
    DMA's command register, the first address)."""
    cfg = small_config()
    plans = [plan_dw(p, 1, cfg) for p in POOLS]
    assert sum(p.n_mt > 1 for p in plans) >= 3 and sum(p.gt > 1 for p in plans) >= 1  # bands, packed planes
    results = check(cfg, POOLS, negative=False)
    one = results[1]
    assert one.tiles == 1
    assert one.rtl_cycles == (3 + 100 + 7) + (3 + 100 + 37) + 46 + (
        DMA_WRITE_OVERHEAD_CYCLES + REQUANT_WRITE_CYCLES + 100 + 9) == 414
    assert one.rtl_dram_read_bytes == 28 + 144 + 4 and one.rtl_dram_write_bytes == 36


def test_max_pools_batch_accumulators_single_buffered_narrow_bus() -> None:
    """Batch 2, negative maps (the padding's zeros must lose), maxima written as 32-bit accumulators
    (no requantize), one slot per buffer, a 2-byte bus at 1.5 B/cycle, a 3x3 window."""
    cfg = small_config(requantize=False, double_buffered=False, dram_bytes_per_cycle=1.5, depthwise_kernel=3)
    check(cfg, [POOLS[0], POOLS[2], POOLS[4]], batch=2, seed=3, negative=True)


def test_max_pool_unsigned_activations_with_stalls() -> None:
    """Unsigned 8-bit activations (maxima above 127 pass the identity table unclamped), then random AXI
    stalls on every channel: outputs unchanged, never faster."""
    cfg = small_config(act_signed=False)
    (r,) = check(cfg, [POOLS[0]], seed=5)
    assert r.rtl_outputs.max() > 127
    check(cfg, [POOLS[3]], seed=6, stall=0.25)


def test_bad_pool_descriptors_are_refused_by_host_and_hardware(tmp_path) -> None:
    """A kernel larger than the 3x3 window, a padded width over the 128-column line buffers, engine mode 2,
    and a mode without depthwise mode: the host API names the field and value in one line; written to
    the registers anyway, the hardware sets ``dw_unsupported`` and does not start. The good descriptor
    last runs."""
    from codesign.hdl.bench.runner import run_layer_job
    from codesign.hdl.control.regs import ERROR_BITS
    from codesign.hdl.host import check_descriptor
    from codesign.hdl.plan import HardwarePlan

    cfg = small_config(depthwise_kernel=3)
    plan = plan_dw(POOLS[1], 1, cfg)
    good = plan.descriptor(0, 4096, 8192, 12288)
    hw = HardwarePlan(cfg)
    bad = [
        ({**good, "dw_kernel": good["dw_kernel"] & ~0xFF | 5},
         "descriptor dw_kernel kernel height must be from 1 to 3 (depthwise_kernel), not 5"),
        ({**good, "dw_in_w": 127, "dw_pad": good["dw_pad"] | 1 << 8 | 1 << 24},
         "descriptor dw_in_w plus the left and right padding must be at most 128 (the line buffers), not 129"),
        ({**good, "flags": good["flags"] ^ 3 << 8},
         "descriptor flags bits 9..8 (the depthwise engine's mode) must be 0 (convolution) or 1 (max pool), not 2"),
        ({**good, "flags": good["flags"] & ~(1 << 3)},
         "descriptor flags bits 9..8 (the depthwise engine's mode) need bit 3 (depthwise mode), not mode 1 in "
         "flags 0x102"),
    ]
    for desc, message in bad:
        with pytest.raises(ConfigError) as e:
            check_descriptor(desc, hw, plan)  # type: ignore[arg-type]
        assert str(e.value) == message
    check_descriptor(good, hw, plan)  # type: ignore[arg-type]
    res = run_layer_job(cfg, {"layers": [{"descriptor": d} for d, _ in bad] + [{"descriptor": good}]}, tmp_path,
                        depth_words=4096, plusargs=["+LAT=5"])
    dw_bit = 1 << [name for name, _ in ERROR_BITS].index("dw_unsupported")
    errors = [r["error"] for r in res["layers"]]
    assert all(e & dw_bit for e in errors[:4]) and errors[4] == 0, errors
    for r in res["layers"][:4]:
        assert r["status"] == 0b100 and r["cycles"] == 0  # error, never started
    assert res["layers"][4]["status"] == 0b010 and res["layers"][4]["cycles"] > 0


# -- slow tier: ResNet-18's max pool at full size ------------------------------------------------------
@pytest.mark.slow
def test_resnet18_maxpool_full_size_through_the_cli(capsys, tmp_path) -> None:
    """``codesign verify -w resnet18 --layer maxpool`` (64 x 112 x 112, 3x3 s2 p1 -> 56 x 56) on an 8x8 array
    with 8 KiB input and output buffers: 8 planes of 8 channels in bands of rows, exact, every counter
    equal to the simulator's."""
    from codesign.cli import main

    cfg_file = tmp_path / "accel.yaml"
    cfg_file.write_text("input_sram_bytes: 8192\nweight_sram_bytes: 4096\noutput_sram_bytes: 8192\n")
    assert main(["verify", "--workload", "resnet18", "--layer", "maxpool", "--rows", "8", "--cols", "8",
                 "--config", str(cfg_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    (r,) = out["layers"] if isinstance(out, dict) else out
    assert r["ok"] and r["outputs_match"] and r["groups"] == 64 and r["m"] == 56 * 56
    for col in ("cycles", "stall_cycles", "dram_read_bytes", "dram_write_bytes"):
        assert r[f"rtl_{col}"] == r[f"sim_{col}"], col
    assert r["rtl_enabled_macs"] == 0
