"""AcceleratorConfig: validation messages are API, YAML uses the dataclass field names."""

from __future__ import annotations

import dataclasses

import pytest

from codesign.errors import ConfigError
from codesign.sim.config import AcceleratorConfig, Dataflow, ZeroHandling


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"rows": -4}, "rows must be a positive integer, not -4"),
        ({"cols": 0}, "cols must be a positive integer, not 0"),
        ({"rows": 2.5}, "rows must be a positive integer, not 2.5"),
        ({"dataflow": "xs"}, "dataflow must be one of ws, os, is, not 'xs'"),
        ({"weight_bits": 0}, "weight_bits must be an integer from 1 to 32, not 0"),
        ({"act_bits": 33}, "act_bits must be an integer from 1 to 32, not 33"),
        ({"zero_handling": "drop"}, "zero_handling must be one of none, gate, skip, not 'drop'"),
        ({"dram_bytes_per_cycle": 0}, "dram_bytes_per_cycle must be a positive number, not 0"),
        ({"clock_mhz": -1.0}, "clock_mhz must be a positive number, not -1.0"),
        ({"double_buffered": "yes"}, "double_buffered must be true or false, not 'yes'"),
        ({"input_sram_bytes": 0}, "input_sram_bytes must be a positive integer, not 0"),
        # the RTL's widths: 16..32 address bits (the DMA's 4 KiB pages need 12 and more), 8..32 dimension bits
        ({"dram_addr_bits": 15}, "dram_addr_bits must be an integer from 16 to 32, not 15"),
        ({"dram_addr_bits": 33}, "dram_addr_bits must be an integer from 16 to 32, not 33"),
        ({"dim_bits": 7}, "dim_bits must be an integer from 8 to 32, not 7"),
        ({"dim_bits": 12.0}, "dim_bits must be an integer from 8 to 32, not 12.0"),
    ],
)
def test_bad_values_name_field_and_value(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        AcceleratorConfig(**changes)
    assert str(e.value) == message


def test_strings_become_enums_and_config_is_frozen() -> None:
    c = AcceleratorConfig(dataflow="OS", zero_handling="gate")
    assert c.dataflow is Dataflow.OS and c.zero_handling is ZeroHandling.GATE
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.rows = 3  # type: ignore[misc]
    assert c.replace(rows=8).rows == 8 and c.rows == 16
    assert c.pes == 256 and c.lanes == 16


def test_yaml_round_trip_and_overrides(tmp_path) -> None:
    c = AcceleratorConfig(rows=8, cols=4, dataflow="is", weight_bits=4)
    f = tmp_path / "accel.yaml"
    f.write_text(c.to_yaml())
    assert AcceleratorConfig.from_yaml(f) == c
    assert AcceleratorConfig.from_yaml(f, rows=32).rows == 32


def test_yaml_unknown_field_and_malformed(tmp_path) -> None:
    f = tmp_path / "a.yaml"
    f.write_text("rows: 8\nrowz: 4\n")
    with pytest.raises(ConfigError, match=r"^a.yaml: unknown field 'rowz' \(fields: rows, cols, "):
        AcceleratorConfig.from_yaml(f)
    f.write_text("rows: [8\n")
    with pytest.raises(ConfigError, match=r"^a.yaml: malformed YAML at line 2: "):
        AcceleratorConfig.from_yaml(f)
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"^a.yaml: must hold a mapping of fields, not list$"):
        AcceleratorConfig.from_yaml(f)


def test_skip_pattern_validates_and_names_the_pattern() -> None:
    cfg = AcceleratorConfig(zero_handling="skip", skip_pattern=" 2:4 ")
    assert (cfg.skip_pattern, cfg.skip_nm) == ("2:4", (2, 4))
    assert AcceleratorConfig(skip_pattern="2:4").skip_nm is None  # not skipping
    assert AcceleratorConfig(zero_handling="skip", skip_pattern="BITMASK").skip_nm is None
    for bad in ("4:2", "0:4", "2:17", "2-4", "", 24):
        with pytest.raises(ConfigError, match=r"^skip_pattern must be 'n:m' with 1 <= n < m <= 16 \(such as '2:4'\) "
                                              r"or 'bitmask', not "):
            AcceleratorConfig(skip_pattern=bad)  # type: ignore[arg-type]


def test_unquoted_n_m_in_yaml_is_text_not_a_base_60_number(tmp_path) -> None:
    """YAML 1.1 reads ``2:4`` as 2*60+4 = 124; the loader keeps it as the pattern the user wrote."""
    f = tmp_path / "a.yaml"
    f.write_text("zero_handling: skip\nskip_pattern: 2:4\nrows: 8\ndram_bytes_per_cycle: 0x10\n")
    cfg = AcceleratorConfig.from_yaml(f)
    assert (cfg.skip_nm, cfg.rows, cfg.dram_bytes_per_cycle) == ((2, 4), 8, 16.0)
