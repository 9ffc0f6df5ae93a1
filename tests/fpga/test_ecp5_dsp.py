"""The ECP5 netlist pass that moves a multiplier's operand and product flip-flops into its MULT18X18D
(``codesign.hdl.ecp5_dsp``), on hand-built Yosys JSON netlists (no tools)."""

from __future__ import annotations

import copy

from codesign.hdl.ecp5_dsp import absorb_dsp_registers

FF_PARAMS = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET",
             "SRMODE": "LSR_OVER_CE"}
CLK, RST, CLEAR = 2, 3, 4  # the clock, the reset, and rst | ~enabled (the operand register's clear)


def _ff(d, q, lsr=RST, **params):
    return {"type": "TRELLIS_FF", "parameters": {**FF_PARAMS, **params},
            "port_directions": {"CLK": "input", "DI": "input", "LSR": "input", "Q": "output"},
            "connections": {"CLK": [CLK], "DI": [d], "LSR": [lsr], "Q": [q]}}


def _netlist():
    """``x <= en ? a : 0`` (2 bits, sign-extended to A0..A17), ``y <= w`` (2 bits), ``prod <= x * y``
    (3 bits used, P0..P2), and a LUT reading ``prod``."""
    a, w, x, y, p, prod = [10, 11], [12, 13], [20, 21], [22, 23], [30, 31, 32], [40, 41, 42]
    conn = {f"A{i}": [x[min(i, 1)]] for i in range(18)}
    conn.update({f"B{i}": [y[min(i, 1)]] for i in range(18)})
    conn.update({f"P{i}": [p[i]] if i < 3 else [100 + i] for i in range(36)})
    conn.update({"SIGNEDA": ["1"], "SIGNEDB": ["1"]})
    dirs = {k: ("output" if k.startswith("P") else "input") for k in conn}
    cells = {"dsp": {"type": "MULT18X18D", "parameters": {}, "port_directions": dirs, "connections": conn}}
    for i in range(2):
        cells[f"x{i}"] = _ff(a[i], x[i], lsr=CLEAR)
        cells[f"y{i}"] = _ff(w[i], y[i])
    for i in range(3):
        cells[f"prod{i}"] = _ff(p[i], prod[i])
    cells["use"] = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "B": "input", "Z": "output"},
                    "connections": {"A": [prod[0]], "B": [prod[2]], "Z": [50]}}
    return {"modules": {"top": {"ports": {"out": {"direction": "output", "bits": [50]}}, "cells": cells}}}


def test_operands_and_product_move_into_the_block():
    n = _netlist()
    assert absorb_dsp_registers(n) == 7  # 2 + 2 operand bits, 3 product bits
    cells = n["modules"]["top"]["cells"]
    assert sorted(cells) == ["dsp", "use"]
    d = cells["dsp"]
    assert d["parameters"] == {
        "REG_INPUTA_CLK": "CLK0", "REG_INPUTA_CE": "CE0", "REG_INPUTA_RST": "RST0",
        "REG_INPUTB_CLK": "CLK0", "REG_INPUTB_CE": "CE0", "REG_INPUTB_RST": "RST1",
        "REG_OUTPUT_CLK": "CLK0", "REG_OUTPUT_CE": "CE0", "REG_OUTPUT_RST": "RST1",
        "RESETMODE": "SYNC", "GSR": "DISABLED"}
    c = d["connections"]
    # the operand pins read the registers' inputs (the sign extension too), the product pins drive their outputs
    assert [c[f"A{i}"][0] for i in (0, 1, 17)] == [10, 11, 11]
    assert [c[f"B{i}"][0] for i in (0, 1, 17)] == [12, 13, 13]
    assert [c[f"P{i}"][0] for i in range(4)] == [40, 41, 42, 103]
    # one clock, always enabled; the operand A register keeps its own clear (rst | ~enabled)
    assert (c["CLK0"], c["CE0"], c["RST0"], c["RST1"]) == ([CLK], ["1"], [CLEAR], [RST])
    assert d["port_directions"]["CLK0"] == "input"


def test_a_register_read_elsewhere_is_copied_into_the_block():
    n = _netlist()
    cells = n["modules"]["top"]["cells"]
    cells["use"]["connections"]["B"] = [20]  # x0 also feeds the LUT: it stays, the block's register copies it
    assert absorb_dsp_registers(n) == 6
    assert "x0" in cells and "x1" not in cells
    assert cells["dsp"]["parameters"]["REG_INPUTA_CLK"] == "CLK0" and cells["dsp"]["connections"]["A0"] == [10]


def test_one_registered_operand_alone_is_not_taken():
    n = _netlist()
    cells = n["modules"]["top"]["cells"]
    cells["y0"]["parameters"]["CEMUX"] = "CE"  # operand B's register has an enable: neither operand moves
    assert absorb_dsp_registers(n) == 3  # the product only
    assert "REG_INPUTA_CLK" not in cells["dsp"]["parameters"] and {"x0", "x1", "y0", "y1"} <= set(cells)
    assert cells["dsp"]["parameters"]["REG_OUTPUT_RST"] == "RST0"  # the resets are numbered as used


def test_a_product_bit_with_a_second_reader_or_an_enable_stays():
    n = _netlist()
    cells = n["modules"]["top"]["cells"]
    cells["use"]["connections"]["A"] = [31]  # P1's net read by the LUT as well as by its register
    assert absorb_dsp_registers(copy.deepcopy(n)) == 4
    n = _netlist()
    n["modules"]["top"]["cells"]["prod1"]["parameters"]["CEMUX"] = "CE"  # an enabled register: not the block's
    assert absorb_dsp_registers(n) == 4
    assert "REG_OUTPUT_CLK" not in n["modules"]["top"]["cells"]["dsp"]["parameters"]


def test_registers_on_two_clocks_are_left_alone():
    n = _netlist()
    n["modules"]["top"]["cells"]["prod0"]["connections"]["CLK"] = [99]
    n["modules"]["top"]["cells"]["prod1"]["connections"]["CLK"] = [99]
    n["modules"]["top"]["cells"]["prod2"]["connections"]["CLK"] = [99]
    before = copy.deepcopy(n)
    assert absorb_dsp_registers(n) == 0 and n == before
