"""Cost model: pure functions from action counts and an energy table to energy and area.

Tables are YAML data files (``sim/data/energy/*.yaml``) that carry their source, node, voltage
and units. Scaling rules:

* MAC: multiplier ``~ weight_bits * act_bits``, adder ``~ acc_bits``; a gated MAC costs
  ``gated_fraction`` of an active one.
* SRAM: energy per bit ``~ (capacity / ref_kib) ** capacity_exponent``.
* DRAM, register, PE-to-PE: per bit moved.
* Leakage: per cycle, per PE and per KiB of SRAM.
* Area: per PE (multiplier, adder, operand/accumulator registers) and per KiB of SRAM; the
  table's ``area.mult_um2`` is for an 8x8-bit multiplier and ``area.add_um2`` for a 32-bit adder.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, load_yaml_mapping
from codesign.sim.result import Counts

TABLE_DIR = Path(__file__).parent / "data" / "energy"


@dataclass(frozen=True)
class EnergyTable:
    name: str
    title: str
    source: str
    node_nm: float
    voltage_v: float
    mac_ref_weight_bits: int
    mac_ref_act_bits: int
    mac_mult_pj: float
    mac_ref_acc_bits: int
    mac_add_pj: float
    gated_fraction: float
    register_pj_per_bit: float
    pe_to_pe_pj_per_bit: float
    sram_ref_kib: float
    sram_pj_per_bit: float
    sram_capacity_exponent: float
    dram_pj_per_bit: float
    leak_pe_pj_per_cycle: float
    leak_sram_pj_per_kib_per_cycle: float
    area_mult_um2: float
    area_add_um2: float
    area_register_um2_per_bit: float
    area_sram_um2_per_kib: float

    # -- energy per action ------------------------------------------------------------------
    def mac_pj(self, weight_bits: int, act_bits: int, acc_bits: int) -> float:
        mult = self.mac_mult_pj * (weight_bits * act_bits) / (self.mac_ref_weight_bits * self.mac_ref_act_bits)
        add = self.mac_add_pj * acc_bits / self.mac_ref_acc_bits
        return mult + add

    def add_pj(self, bits: int) -> float:
        return self.mac_add_pj * bits / self.mac_ref_acc_bits

    def sram_pj_per_bit_at(self, capacity_bytes: int) -> float:
        kib = capacity_bytes / 1024
        return self.sram_pj_per_bit * (kib / self.sram_ref_kib) ** self.sram_capacity_exponent


def available_tables() -> list[str]:
    return sorted(p.stem for p in TABLE_DIR.glob("*.yaml"))


def load_table(name: str) -> EnergyTable:
    """A table by name (``horowitz45``, ``eyeriss``) or path to a YAML file of the same form."""
    return _load_table(name)


@lru_cache(maxsize=32)
def _load_table(name: str) -> EnergyTable:
    path = TABLE_DIR / f"{name}.yaml"
    if not path.exists():
        candidate = Path(name)
        if candidate.suffix in (".yaml", ".yml") and candidate.exists():
            path = candidate
        else:
            choices = ", ".join(available_tables())
            raise ConfigError(f"energy_table must be one of {choices} or a YAML file, not {name!r}")
    d = load_yaml_mapping(path)
    try:
        mac, sram, leak, area = d["mac"], d["sram"], d.get("leakage", {}), d["area"]
        for key in ("source", "node_nm", "voltage_v", "units"):
            if key not in d:
                raise KeyError(key)
        return EnergyTable(
            name=str(d.get("name", path.stem)),
            title=str(d.get("title", path.stem)),
            source=" ".join(str(d["source"]).split()),
            node_nm=float(d["node_nm"]),
            voltage_v=float(d["voltage_v"]),
            mac_ref_weight_bits=int(mac["ref_weight_bits"]),
            mac_ref_act_bits=int(mac["ref_act_bits"]),
            mac_mult_pj=float(mac["mult_pj"]),
            mac_ref_acc_bits=int(mac["ref_acc_bits"]),
            mac_add_pj=float(mac["add_pj"]),
            gated_fraction=float(mac["gated_fraction"]),
            register_pj_per_bit=float(d["register_pj_per_bit"]),
            pe_to_pe_pj_per_bit=float(d["pe_to_pe_pj_per_bit"]),
            sram_ref_kib=float(sram["ref_kib"]),
            sram_pj_per_bit=float(sram["pj_per_bit"]),
            sram_capacity_exponent=float(sram["capacity_exponent"]),
            dram_pj_per_bit=float(d["dram_pj_per_bit"]),
            leak_pe_pj_per_cycle=float(leak.get("pe_pj_per_cycle", 0.0)),
            leak_sram_pj_per_kib_per_cycle=float(leak.get("sram_pj_per_kib_per_cycle", 0.0)),
            area_mult_um2=float(area["mult_um2"]),
            area_add_um2=float(area["add_um2"]),
            area_register_um2_per_bit=float(area["register_um2_per_bit"]),
            area_sram_um2_per_kib=float(area["sram_um2_per_kib"]),
        )
    except KeyError as e:
        raise ConfigError(f"energy table {path.name}: missing field {e.args[0]!r}") from e
    except (TypeError, ValueError) as e:
        raise ConfigError(f"energy table {path.name}: {e}") from e


def leakage_pj_per_cycle(config: AcceleratorConfig) -> float:
    """Leakage of the PE array and the SRAMs per cycle."""
    t = load_table(config.energy_table)
    return config.pes * t.leak_pe_pj_per_cycle + config.sram_bytes / 1024 * t.leak_sram_pj_per_kib_per_cycle


def layer_energy(counts: Counts, cycles: int, config: AcceleratorConfig) -> dict[str, float]:
    """Energy in pJ (or the table's unit) by component for one layer."""
    t = load_table(config.energy_table)
    e_mac = t.mac_pj(config.weight_bits, config.act_bits, config.acc_bits)
    return {
        "mac": counts.active_macs * e_mac + counts.gated_macs * e_mac * t.gated_fraction,
        "register": counts.register_bits * t.register_pj_per_bit,
        "pe_to_pe": counts.pe_to_pe_bits * t.pe_to_pe_pj_per_bit,
        "input_sram": (counts.input_sram_read_bits + counts.input_sram_write_bits)
        * t.sram_pj_per_bit_at(config.input_sram_bytes),
        "weight_sram": (counts.weight_sram_read_bits + counts.weight_sram_write_bits)
        * t.sram_pj_per_bit_at(config.weight_sram_bytes),
        "output_sram": (counts.output_sram_read_bits + counts.output_sram_write_bits)
        * t.sram_pj_per_bit_at(config.output_sram_bytes),
        "dram": (counts.dram_read_bits + counts.dram_write_bits) * t.dram_pj_per_bit,
        "vector": counts.vector_ops * t.add_pj(config.acc_bits),
        "leakage": cycles * leakage_pj_per_cycle(config),
    }


def area_breakdown_mm2(config: AcceleratorConfig) -> dict[str, float]:
    """Area of the PE array and the SRAMs in mm^2 at the energy table's node."""
    t = load_table(config.energy_table)
    pe_um2 = (
        t.area_mult_um2 * config.weight_bits * config.act_bits / 64
        + t.area_add_um2 * config.acc_bits / 32
        + t.area_register_um2_per_bit * (config.weight_bits + config.act_bits + config.acc_bits)
    )
    return {
        "pe_array": config.pes * pe_um2 * 1e-6,
        "sram": config.sram_bytes / 1024 * t.area_sram_um2_per_kib * 1e-6,
    }


def area_mm2(config: AcceleratorConfig) -> float:
    return sum(area_breakdown_mm2(config).values())

