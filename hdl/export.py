"""Verilog export of the accelerator top: one file, one named top module, plus a JSON description.

``verilog_for(config) -> (top_module_name, verilog_text)`` is the entry point for other flows
(FPGA synthesis); ``generate(config, out_dir)`` writes ``<top>.v`` and ``<top>.json``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codesign.errors import ConfigError
from codesign.hdl.plan import HardwarePlan
from codesign.sim.config import AcceleratorConfig, Dataflow
from codesign.sim.timing import PE_PRODUCT_CYCLES

# (m, n, k) shapes whose predicted cycles the JSON lists, in units of the array size
_EXAMPLES = ((1, 1, 1), (4, 2, 3), (8, 8, 8))


@dataclass(frozen=True)
class Generated:
    top: str
    verilog_path: Path
    json_path: Path
    header_path: Path | None = None  # C header of the register map
    regs_path: Path | None = None  # Python description of the register map


@lru_cache(maxsize=16)
def verilog_for(config: AcceleratorConfig) -> tuple[str, str]:
    """``(top_module_name, verilog_text)`` of the accelerator for ``config``.

    Deterministic: no source locations or machine paths in the text. The RTLIL from Amaranth goes
    through Yosys ``proc; opt; opt_clean`` (processes become plain assignments), which makes the
    Verilog simulate about twice as fast in Icarus as Amaranth's default Verilog backend.
    """
    from codesign.hdl.engines.gemm import Accelerator, top_name

    HardwarePlan(config)  # validate first: a component left unused on error warns at garbage collection
    return _to_verilog(Accelerator(config), top_name(config))


@lru_cache(maxsize=16)
def layer_verilog_for(config: AcceleratorConfig) -> tuple[str, str]:
    """``(top_module_name, verilog_text)`` of the whole-layer accelerator (AXI4-Lite registers,
    AXI4 master, DMA, sequencers) for ``config``; deterministic like :func:`verilog_for`."""
    from codesign.hdl.layer import LayerAccelerator, layer_top_name

    HardwarePlan(config)
    return _to_verilog(LayerAccelerator(config), layer_top_name(config))


@lru_cache(maxsize=16)
def network_verilog_for(config: AcceleratorConfig) -> tuple[str, str]:
    """``(top_module_name, verilog_text)`` of the network top (the whole-layer accelerator behind a network
    sequencer: :mod:`codesign.hdl.control.network`) for ``config``; deterministic like :func:`verilog_for`."""
    from codesign.hdl.control.network import NetworkAccelerator, network_top_name

    HardwarePlan(config)
    return _to_verilog(NetworkAccelerator(config), network_top_name(config))


def _to_verilog(top, name: str) -> tuple[str, str]:
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
    from amaranth._toolchain.yosys import find_yosys
    from amaranth.back import rtlil

    il = rtlil.convert(top, name=name, emit_src=False)
    yosys = find_yosys(lambda ver: ver >= (0, 40))
    script = "\n".join([
        f"read_rtlil <<rtlil\n{il}\nrtlil",
        "proc",
        "opt",
        "opt_clean",
        # renaming internal ($-prefixed) names keeps Icarus from taking $pmux functions for system tasks
        "write_verilog -noattr",
    ])
    text = yosys.run(["-q", "-"], script, src_loc_at=0)
    return name, _keep_ram_style(il, text)


_RTLIL_RAM_STYLE = re.compile(r'attribute \\ram_style "(\w+)"\n\s*memory width \d+ size \d+ \\(\S+)\n')


def _keep_ram_style(il: str, verilog: str) -> str:
    """``write_verilog -noattr`` drops every attribute; put back the ``ram_style`` of the memories
    that ask for one (a buffer's ``attrs``), which synthesis tools read to choose block RAM."""
    for style, mem in _RTLIL_RAM_STYLE.findall(il):
        verilog = re.sub(rf"^(\s*)(reg \[\d+:0\] {re.escape(mem)} \[)", rf'\1(* ram_style = "{style}" *)\n\1\2',
                         verilog, count=1, flags=re.M)
    return verilog


def timing_summary(config: AcceleratorConfig) -> dict[str, object]:
    """Closed-form timing the hardware implements, with a few worked examples."""
    plan = HardwarePlan(config)
    r, c = config.rows, config.cols
    if config.dataflow is Dataflow.WS:
        forms = {
            "folds": "ceil(K/rows) * ceil(N/cols)",
            "fold_interval_cycles": "max(M, rows)",
            "gemm_cycles": f"1 + (folds - 1) * max(M, rows) + M + rows + cols + {PE_PRODUCT_CYCLES}",
        }
    else:
        forms = {
            "folds": "ceil(M/rows) * ceil(N/cols)",
            "fold_interval_cycles": "max(K, rows, cols)",
            "gemm_cycles": "1 + folds * max(K, rows, cols) + rows + cols",
        }
    examples = []
    for fm, fn, fk in _EXAMPLES:
        m, n, k = fm * r, fn * c, fk * r
        if plan.fits(m, n, k):
            examples.append({"m": m, "n": n, "k": k, "cycles": plan.gemm_cycles(m, n, k)})
    return {
        "start_cycles": plan.start_cycles,
        "fill_cycles": plan.fill_cycles(),
        "drain_cycles": plan.drain_cycles(),
        **forms,
        "examples": examples,
    }


def _pool_timing(config: AcceleratorConfig) -> dict[str, object]:
    """The pool stage's store timing (flags bit 11, ``sim.poolfuse``), when the design builds it."""
    from codesign.hdl.layer import has_pool_stage, pool_stage_words
    from codesign.sim.poolfuse import POOL_PASS_OVERHEAD_CYCLES

    if not has_pool_stage(config):
        return {}
    return {"pool_stage_words": pool_stage_words(config),
            "pool_store_cycles": (f"{POOL_PASS_OVERHEAD_CYCLES} + planes * conv_out_w (the pass), then "
                                  "dma_write_cycles(pooled row bytes) when the row ends a pooled row's window")}


def _dws_timing(config: AcceleratorConfig) -> dict[str, object]:
    """The depthwise stage's store timing (flags bit 15, ``sim.dwfuse``), when the design builds it."""
    from codesign.hdl.layer import has_dw_stage
    from codesign.sim.dwfuse import DW_PASS_OVERHEAD_CYCLES, row_words

    if not has_dw_stage(config):
        return {}
    return {"dw_stage_row_words": row_words(config),
            "dw_stage_store_cycles": (f"{DW_PASS_OVERHEAD_CYCLES} + padded positions of the pass (+ taps + 3 at a "
                                      "plane's first row: the weight slots and the engine's start), then "
                                      "dma_write_cycles(the completed rows' bytes) when the pass completes rows")}


def _resident_timing(config: AcceleratorConfig) -> dict[str, object]:
    """A resident store's timing (flags bits 12..14, ``sim.residency``), when the design builds residency."""
    from codesign.hdl.layer import has_residency
    from codesign.sim.residency import RES_PASS_OVERHEAD_CYCLES

    if not has_residency(config):
        return {}
    return {"resident_store_cycles": f"{RES_PASS_OVERHEAD_CYCLES} + words (+ the vector unit's stages with a table "
                                     "activation): into the input buffer's other slot, no bus"}


def generate(config: AcceleratorConfig, out_dir: str | Path, *, network: bool = False) -> Generated:
    """Write the whole-layer accelerator into ``out_dir``: ``<top>.v``, ``<top>_regs.h`` (register map
    for C), ``<top>_regs.py`` (the same for Python) and ``<top>.json`` (parameters, buffers, bus,
    ports, register map, timing). With ``network`` the top is the network top (the same accelerator
    behind a network sequencer: :mod:`codesign.hdl.control.network`), and the register map adds its
    registers and the descriptor list's record format."""
    from codesign.hdl.control import regs
    from codesign.hdl.layer import layer_members
    from codesign.sim import tileplan

    if not isinstance(config, AcceleratorConfig):
        raise ConfigError(f"config must be an AcceleratorConfig, not {type(config).__name__}")
    plan = HardwarePlan(config)  # validates what the hardware supports
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"output directory {str(out_dir)!r} cannot be created: {e.strerror or e}") from e
    if network:
        from codesign.sim.program import design_reason

        reason = design_reason(config)
        if reason:
            raise ConfigError(reason)
    name, text = network_verilog_for(config) if network else layer_verilog_for(config)
    vpath, jpath = out / f"{name}.v", out / f"{name}.json"
    hpath, ppath = out / f"{name}_regs.h", out / f"{name}_regs.py"
    bus = tileplan.bus_bytes(config)
    slots = 2 if config.double_buffered else 1
    words = (plan.act_word_bits, plan.weight_word_bits, plan.out_word_bits)
    depths = (plan.act_depth, plan.weight_depth, plan.out_depth)
    desc = {
        "top": name,
        "verilog": vpath.name,
        "register_map": {"c_header": hpath.name, "python": ppath.name, **regs.description(config)},
        "config": config.to_dict(),
        "hardware": {**plan.to_dict(), "bus_bytes": bus, "slots": slots,
                     "slot_words": {k: d // slots for k, d in zip(("input", "weight", "output"), depths, strict=True)},
                     "beats_per_word": {k: tileplan.beats_per_word(w, bus)
                                        for k, w in zip(("input", "weight", "output"), words, strict=True)},
                     "depthwise_engine": _depthwise_engine(config)},
        "timing": {
            **timing_summary(config),
            "dma_read_cycles": f"{tileplan.DMA_READ_OVERHEAD_CYCLES} + dram_latency_cycles + "
                               "ceil(bytes / dram_bytes_per_cycle)",
            "dma_write_cycles": f"{tileplan.DMA_WRITE_OVERHEAD_CYCLES} + dram_latency_cycles + "
                                "ceil(bytes / dram_bytes_per_cycle)",
            "dma_read_slots": tileplan.DMA_READ_SLOTS,
            "load_overlap": (f"load k is decided once load k-{tileplan.DMA_READ_SLOTS} has its data and "
                             f"{tileplan.LOAD_ISSUE_GAP_CYCLES} cycles after load k-1's decision d; its data "
                             f"starts at max(d + {tileplan.DMA_READ_OVERHEAD_CYCLES} + dram_latency_cycles, "
                             "load k-1's data end)"),
            "tile_compute_cycles": f"groups * (gemm_cycles + {tileplan.GEMM_ISSUE_CYCLES}) + "
                                   f"{tileplan.TILE_ISSUE_CYCLES}",
            **_pool_timing(config), **_dws_timing(config), **_resident_timing(config),
        },
        "ports": _ports(layer_members(config)),
    }
    header, python = regs.c_header(config=config), regs.python_module(config)
    if network:
        from codesign.hdl.control import network as net
        from codesign.sim import program

        desc["register_map"]["program"] = net.record_description(config)
        dr = "ceil(descriptor_read_bytes / dram_bytes_per_cycle)"
        dw = "ceil(counter_write_bytes / dram_bytes_per_cycle)"
        desc["timing"]["program_cycles"] = ("sum(layer cycles) + program_first_record_cycles + (records - 1) * "
                                            "program_layer_overhead_cycles + program_last_record_cycles")
        desc["timing"]["program_first_record_cycles"] = (
            f"{program.FETCH_OVERHEAD_CYCLES} + dram_latency_cycles + {dr} + {program.START_CYCLES}")
        desc["timing"]["program_layer_overhead_cycles"] = (
            f"{program.DONE_CYCLES} + max(data_end({program.FETCH_OVERHEAD_CYCLES} + dram_latency_cycles, {dr}, "
            f"[(0, {dw})]), {dw} + dram_latency_cycles + {program.WRITE_RESPONSE_CYCLES}) + {program.START_CYCLES}"
            " (the counter write and the next fetch at once from cycle 0; the write's data cycles have the bus "
            "first; data_end: the end of the read's data cycles, the free cycles from its first on)")
        desc["timing"]["program_last_record_cycles"] = (
            f"{program.DONE_CYCLES} + {dw} + dram_latency_cycles + {program.WRITE_RESPONSE_CYCLES}")
        desc["timing"]["program_first_record_cycles_here"] = program.first_record_cycles(config)
        desc["timing"]["program_layer_overhead_cycles_here"] = program.layer_overhead_cycles(config)
        desc["timing"]["program_last_record_cycles_here"] = program.last_record_cycles(config)
        lines = header.rstrip("\n").split("\n")
        endif = max(i for i, line in enumerate(lines) if line.startswith("#endif"))
        header = "\n".join(lines[:endif] + net.c_header_lines(config) + [""] + lines[endif:]) + "\n"
        python = python + "\n".join(net.python_lines(config)) + "\n"
    _atomic_write(vpath, text)
    _atomic_write(hpath, header)
    _atomic_write(ppath, python)
    _atomic_write(jpath, json.dumps(desc, indent=2) + "\n")
    return Generated(top=name, verilog_path=vpath, json_path=jpath, header_path=hpath, regs_path=ppath)


def _depthwise_engine(config: AcceleratorConfig) -> dict[str, object] | None:
    """The depthwise engine beside the array (None when the design has none): its size and timing."""
    from codesign.hdl.layer import has_depthwise_engine
    from codesign.sim import dwplan, tileplan

    if not has_depthwise_engine(config):
        return None
    k = config.depthwise_kernel
    return {"lanes": config.cols, "kernel_max": k, "padded_width_max": dwplan.DW_WIDTH_MAX,
            "weight_block_words": "kernel_h * kernel_w + 1",
            "tile_compute_cycles": f"{tileplan.TILE_ISSUE_CYCLES} + planes_in_tile * (kernel_h * kernel_w + 1 + "
                                   f"{dwplan.DW_GROUP_OVERHEAD_CYCLES} + band_padded_rows * padded_width + "
                                   f"{dwplan.DW_LATENCY_CYCLES})",
            "layout": "feature maps as planes of lanes channels, [batch][C / lanes][H][W] words (codesign.sim.dwplan)"}


def _ports(members: dict) -> dict[str, object]:
    from amaranth.hdl import Shape
    from amaranth.lib import wiring

    sig = wiring.Signature(members)
    ports: dict[str, object] = {}
    for path, member in sig.members.flatten():
        if member.is_signature:
            continue
        ports["__".join(str(p) for p in path)] = {
            "direction": "in" if member.flow is wiring.In else "out",
            "bits": Shape.cast(member.shape).width,
        }
    return ports


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
