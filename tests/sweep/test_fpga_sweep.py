"""FPGA resources as sweep metrics: ``fpga: TARGET`` or a Pareto axis ``fpga:TARGET``."""

from __future__ import annotations

import subprocess
import sys

import pytest

import codesign
from codesign.errors import ConfigError
from codesign.space import DesignSpace

SPACE = {
    "workloads": ["ds_cnn_kws"],
    # the small design of tests/fpga (2x2 INT8, 256-byte buffers, no depthwise engine or vector unit)
    "base": {"rows": 2, "cols": 2, "input_sram_bytes": 256, "weight_sram_bytes": 256, "output_sram_bytes": 256,
             "clock_mhz": 50.0, "skip_pattern": "bitmask", "depthwise": "array", "vector_unit": False,
             "conv_windows": False},
    "axes": {"zero_handling": ["gate", "skip"]},
    "pareto": "latency_ms,energy_pj,fpga:ecp5-25k",
}


@pytest.mark.fpga
def test_fpga_columns_and_infeasible_points_are_marked() -> None:
    df = codesign.sweep(SPACE, workers=1)
    ws, skip = df.iloc[0], df.iloc[1]
    assert (ws.zero_handling, skip.zero_handling) == ("gate", "skip")
    # 2x2 PEs -> 4 MULT18X18D on ECP5 (each multiplier maps to one DSP), of the 25k's 28; the requantizing
    # write-back (the default) adds a (sum + bias) x multiplier per column, 33 x 16 bits: 2 DSPs each
    assert bool(ws.fpga_fits) and ws.fpga_dsps == 8 and ws.fpga_dsp_util == pytest.approx(8 / 28, abs=1e-3)
    assert ws.fpga_max_util == max(ws.fpga_lut_util, ws.fpga_ff_util, ws.fpga_dsp_util, ws.fpga_bram_util,
                                   ws.fpga_io_util)
    assert ws.fpga_target == "ecp5-25k" and bool(ws.pareto)
    # the generator does not build bitmask skipping: an infeasible point, off the front, with the reason
    assert not bool(skip.fpga_fits) and not bool(skip.pareto)
    assert skip.fpga_fit_message == ("skip_pattern must be n:m (such as 2:4) for the generated hardware; "
                                     "bitmask skipping is model-only")


def test_fpga_section_errors() -> None:
    with pytest.raises(ConfigError, match=r"^space: fpga target must be one of ice40-up5k, .*not 'virtex9'$"):
        DesignSpace.from_dict({**SPACE, "pareto": "latency_ms,energy_pj", "fpga": "virtex9"})
    with pytest.raises(ConfigError, match=r"^space: fpga.pnr must be true, false or place, not 'yes'$"):
        DesignSpace.from_dict({**SPACE, "fpga": {"target": "ecp5-25k", "pnr": "yes"}})
    with pytest.raises(ConfigError, match=r"needs an fpga section"):
        DesignSpace.from_dict({**SPACE, "pareto": "latency_ms,fpga_luts"})
    sp = DesignSpace.from_dict(SPACE)
    assert sp.fpga == {"target": "ecp5-25k", "pnr": False} and sp.pareto[-1] == "fpga_max_util"


def test_cli_bad_fpga_target_one_line_exit_2(tmp_path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("workloads: [ds_cnn_kws]\naxes: {rows: [2]}\nfpga: virtex9\n")
    p = subprocess.run([sys.executable, "-m", "codesign", "sweep", str(f), "-o", str(tmp_path / "r.parquet")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
    assert p.stderr.startswith("codesign sweep: error: s.yaml: fpga target must be one of ice40-up5k")


def test_a_failing_tool_is_retried_then_raised_never_marked_does_not_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The once-seen failure of the test above on a loaded machine: ``fpga_columns`` caught every
    CodesignError, so a Yosys crash or timeout (a ToolError) became ``fpga_fits`` false with the
    tool's message, and the WS point looked like it did not fit. Now a tool failure is retried once,
    then raised; only the generator's refusal (a ConfigError) marks a point infeasible."""
    import codesign.hdl.fpga as fpga
    from codesign.errors import ToolError

    real = {"fpga_target": "ecp5-25k", "fpga_part": "LFE5U-25F-CABGA381", "fpga_fits": True,
            "fpga_limiting_resource": "dsp", "fpga_fit_message": "fits", "fpga_luts": 1, "fpga_ffs": 1,
            "fpga_dsps": 4, "fpga_brams": 0, "fpga_carries": 0, "fpga_lut_util": 0.1, "fpga_ff_util": 0.1,
            "fpga_dsp_util": 4 / 28, "fpga_bram_util": 0.0, "fpga_io_util": 0.1, "fpga_max_util": 4 / 28,
            "fpga_fmax_mhz": None}
    calls: list[str] = []

    def flaky(config, target, *, pnr):  # type: ignore[no-untyped-def]
        calls.append(config.zero_handling.value)
        if config.zero_handling.value == "skip":
            raise ConfigError("zero_handling must be none or gate for the generated hardware, not 'skip'")
        if calls.count("gate") == 1:  # the first run of Yosys is killed
            raise ToolError("yosys failed on top for ecp5-25k: killed by signal 9")
        return real

    monkeypatch.setattr(fpga, "fpga_metrics", flaky)
    df = codesign.sweep(SPACE, workers=1)
    assert calls == ["gate", "gate", "skip"]  # gate retried once, skip refused by the generator (not retried)
    assert bool(df.iloc[0].fpga_fits) and df.iloc[0].fpga_dsps == 4 and bool(df.iloc[0].pareto)
    assert not bool(df.iloc[1].fpga_fits)

    def broken(config, target, *, pnr):  # type: ignore[no-untyped-def]
        raise ToolError("yosys timed out after 3600 s on top (reading ports)")

    monkeypatch.setattr(fpga, "fpga_metrics", broken)
    with pytest.raises(ToolError, match=r"^FPGA figures of 2x2 ws on ecp5-25k: yosys timed out after 3600 s"):
        codesign.sweep(SPACE, workers=1)


def _ecp5_85k_metrics(target: str, fmax_mhz: float | None, basis: str) -> dict[str, object]:
    """What ``fpga_metrics`` returns for a fitting design on ECP5-85k with this Fmax (for the fakes below)."""
    return {"fpga_target": target, "fpga_part": "LFE5U-85F-CABGA381", "fpga_fits": True,
            "fpga_limiting_resource": "lut", "fpga_fit_message": "fits", "fpga_luts": 1, "fpga_ffs": 1,
            "fpga_dsps": 4, "fpga_brams": 0, "fpga_carries": 0, "fpga_lut_util": 0.1, "fpga_ff_util": 0.1,
            "fpga_dsp_util": 0.1, "fpga_bram_util": 0.0, "fpga_io_util": 0.1, "fpga_max_util": 0.1,
            "fpga_fmax_mhz": fmax_mhz, "fpga_fmax_basis": basis}


def _rows_space(pnr: bool) -> dict[str, object]:
    """The small design at 2 and 4 rows, 50 MHz in the config, with ``fpga: {ecp5-85k, pnr}``."""
    base = {k: v for k, v in SPACE["base"].items() if k != "rows"}  # type: ignore[union-attr]
    return {**SPACE, "base": base, "axes": {"rows": [2, 4]}, "pareto": "latency_ms,energy_pj",
            "fpga": {"target": "ecp5-85k", "pnr": pnr}}


def test_fpga_latency_is_each_points_cycles_at_its_own_fmax(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Issue 22, item 4: with P&R in the space (``fpga: {target, pnr: true}``) each point's
    ``fpga_latency_us`` is its cycles at the Fmax its own design met (here 40 MHz for the 2x2 point and
    80 MHz for the 4x2 one, as a P&R run would report them), not at the config's clock_mhz (50)."""
    import codesign.hdl.fpga as fpga

    fmax = {2: 40.0, 4: 80.0}

    def placed(config, target, *, pnr):  # type: ignore[no-untyped-def]
        assert pnr is True  # the space asked for place and route
        return _ecp5_85k_metrics(target, fmax[config.rows], "place and route")

    monkeypatch.setattr(fpga, "fpga_metrics", placed)
    df = codesign.sweep(_rows_space(True), workers=1)
    assert sorted(df.rows) == [2, 4]
    for _, row in df.iterrows():
        assert row.fpga_fmax_mhz == fmax[row.rows]
        assert row.fpga_latency_us == pytest.approx(row.cycles / fmax[row.rows], rel=1e-12)
        # the latency the front ranks is at that clock too, and the row says which clock it is
        assert row.latency_ms == pytest.approx(row.cycles / (fmax[row.rows] * 1e3), rel=1e-12)
        assert row.clock_mhz_used == fmax[row.rows] and row.clock_basis == "place and route"
        assert row.fpga_fmax_basis == "place and route"
    # the report's Pareto plot and table say the latency is at each design's own clock
    from codesign.report import latency_clock, sweep_report

    assert latency_clock(df) == "at each design's FPGA Fmax (place and route)"
    (tmp_path / "report").mkdir()
    html = sweep_report(df, tmp_path / "report").read_text()
    assert "FPGA Fmax (place and route)" in html  # the Pareto plot's caption
    assert "clock_mhz_used" in html


def test_a_space_without_pnr_keeps_the_config_clock_and_reports_a_cached_fmax(monkeypatch: pytest.MonkeyPatch
                                                                              ) -> None:
    """``pnr: false``: synthesis only. A design placed before (here the 2x2 point: its cached estimate,
    60 MHz) gives ``fpga_latency_us`` at that Fmax, but ``latency_ms`` stays at the config's 50 MHz for every
    point, so one front never ranks measured clocks against assumed ones."""
    import codesign.hdl.fpga as fpga

    def synthesized(config, target, *, pnr):  # type: ignore[no-untyped-def]
        assert pnr is False
        cached = config.rows == 2
        return _ecp5_85k_metrics(target, 60.0 if cached else None, "placement estimate (cached)" if cached else "")

    monkeypatch.setattr(fpga, "fpga_metrics", synthesized)
    df = codesign.sweep(_rows_space(False), workers=1).set_index("rows")
    for rows in (2, 4):
        assert df.latency_ms[rows] == pytest.approx(df.cycles[rows] / 50e3, rel=1e-12)
        assert df.clock_mhz_used[rows] == 50.0 and df.clock_basis[rows] == "config clock_mhz"
    assert df.fpga_latency_us[2] == pytest.approx(df.cycles[2] / 60.0, rel=1e-12)
    assert df.fpga_fmax_basis[2] == "placement estimate (cached)"
    assert df.fpga_latency_us[4] != df.fpga_latency_us[4]  # NaN: no Fmax
