"""ECP5: the registers around a multiplier moved into its MULT18X18D block (a netlist pass after Yosys).

Why. Yosys's ECP5 flow maps a ``$mul`` to a MULT18X18D with every internal register off
(``dsp_map.v`` sets no ``REG_*`` parameter, and no pass absorbs registers into the block, as
``ice40_dsp`` and ``xilinx_dsp`` do for their families). A multiplier whose operands and product are
registers in the fabric then costs, on place and route, the route from the operand flip-flops to
the block, the block's combinational multiply, and the route to the product flip-flops: 12.4-13.1 ns
on the 4x4 WS top (``bench/results/fpga_slim.md``), the design's critical path. With the block's
input and output registers the multiply is a register-to-register path inside the block, and the
fabric sees only a clock-to-out and a setup.

What. For each MULT18X18D of the synthesized netlist (Yosys JSON), each of its three groups of pins
is absorbed when the netlist lets it be, with the same behaviour cycle for cycle:

* operand A (``A0..A17``) and operand B (``B0..B17``): every non-constant bit comes from the ``Q`` of a
  TRELLIS_FF whose output feeds nothing but this group's pins; those flip-flops become the block's
  input register (``REG_INPUTA_CLK``/``REG_INPUTB_CLK``) and the pins take their ``DI``;
* the product (``P0..P35``): every used bit feeds exactly one flip-flop's ``DI`` and nothing else;
  those flip-flops become the block's output register (``REG_OUTPUT_CLK``) and their ``Q`` nets take
  the pins.

The flip-flops of all absorbed groups must share one clock, have no clock enable (``CEMUX`` 1), and a
synchronous reset to zero (``SRMODE`` LSR_OVER_CE, ``REGSET`` RESET, ``GSR`` DISABLED, as Amaranth's
``sync`` domain builds them); each group's reset net (the ``LSR``, one per group) becomes one of the
block's ``RST0..RST2`` with ``RESETMODE`` SYNC, so a register that is cleared when its MAC is disabled
(``mul_a <= enabled ? a : 0`` is a flip-flop whose reset is ``rst | ~enabled``) stays cleared the same
way. A group that does not match is left in the fabric, so the pass never changes what is computed.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

_FF = "TRELLIS_FF"
_DSP = "MULT18X18D"
_FF_PARAMS = {"CLKMUX": "CLK", "LSRMUX": "LSR", "SRMODE": "LSR_OVER_CE", "REGSET": "RESET", "GSR": "DISABLED"}


def _param(cell: dict[str, Any], name: str, default: str = "") -> str:
    return str(cell.get("parameters", {}).get(name, default)).strip()


def _plain_ff(cell: dict[str, Any]) -> bool:
    """A flip-flop the block's registers can stand for: clocked, always enabled, reset synchronously to 0."""
    if cell["type"] != _FF or _param(cell, "CEMUX", "1") != "1":
        return False
    return all(_param(cell, k, v) == v for k, v in _FF_PARAMS.items())


def absorb_dsp_registers(netlist: dict[str, Any]) -> int:
    """Move operand and product flip-flops into the MULT18X18D blocks of ``netlist`` (Yosys JSON, edited
    in place); returns how many flip-flops it removed."""
    removed = 0
    for mod in netlist.get("modules", {}).values():
        cells = mod.get("cells", {})
        if not any(c["type"] == _DSP for c in cells.values()):
            continue
        removed += _absorb_module(mod)
    return removed


def _absorb_module(mod: dict[str, Any]) -> int:
    cells: dict[str, dict[str, Any]] = mod["cells"]
    driver: dict[int, tuple[str, str]] = {}
    users: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for name, c in cells.items():
        dirs = c.get("port_directions", {})
        for port, bits in c["connections"].items():
            for b in bits:
                if isinstance(b, int):
                    if dirs.get(port) == "output":
                        driver[b] = (name, port)
                    else:
                        users[b].append((name, port))
    for port in mod.get("ports", {}).values():  # a module output is a user no pass may take away
        if port.get("direction") != "input":
            for b in port["bits"]:
                if isinstance(b, int):
                    users[b].append(("", "port"))
    gone: set[str] = set()  # removed: product registers taken into a block, operand registers nobody reads
    dropped: set[str] = set()  # operand registers copied into a block
    removed = 0
    for name, dsp in list(cells.items()):
        if dsp["type"] != _DSP or any(_param(dsp, f"REG_{g}_CLK", "NONE") != "NONE"
                                      for g in ("INPUTA", "INPUTB", "PIPELINE", "OUTPUT")):
            continue
        plan = []  # (group, flip-flops, the pins' new bits, the reset net)
        operands = [(group, _operand_group(cells, dsp, prefix, driver, gone))
                    for group, prefix in (("INPUTA", "A"), ("INPUTB", "B"))]
        if all(got is not None for _, got in operands):  # one registered operand: A->P or B->P stays a path
            plan += [(group, *got) for group, got in operands if got is not None]
        got = _product_group(cells, dsp, users, gone | dropped)
        if got is not None:
            plan.append(("OUTPUT", *got))
        clocks = {cells[ff]["connections"]["CLK"][0] for _, ffs, _, _ in plan for ff in ffs}
        if not plan or len(clocks) != 1:
            continue
        (clk,) = clocks
        conn, dirs, params = dsp["connections"], dsp.setdefault("port_directions", {}), dsp.setdefault("parameters", {})
        resets: list[Any] = []
        for group, ffs, pins, rst in plan:
            if rst not in resets:
                resets.append(rst)
            params[f"REG_{group}_CLK"] = "CLK0"
            params[f"REG_{group}_CE"] = "CE0"
            params[f"REG_{group}_RST"] = f"RST{resets.index(rst)}"
            for pin, bit in pins.items():
                if group != "OUTPUT":  # the pin reads the register's input instead of its output
                    users[conn[pin][0]].remove((name, pin))
                    if isinstance(bit, int):
                        users[bit].append((name, pin))
                conn[pin] = [bit]
            if group == "OUTPUT":
                gone.update(ffs)
                removed += len(ffs)
            else:
                dropped.update(ffs)
        params["RESETMODE"] = "SYNC"
        params["GSR"] = "DISABLED"
        conn["CLK0"], conn["CE0"] = [clk], ["1"]
        dirs["CLK0"] = dirs["CE0"] = "input"
        for i, rst in enumerate(resets):
            conn[f"RST{i}"] = [rst]
            dirs[f"RST{i}"] = "input"
    # an operand register stays when something else reads it (another block's operand, the fabric): the
    # block's input register is then a copy of it, with the same input, clock and reset
    for ff in dropped:
        if not users[cells[ff]["connections"]["Q"][0]]:
            gone.add(ff)
            removed += 1
    for ff in gone:
        del cells[ff]
    return removed


def _operand_group(cells, dsp, prefix, driver, gone):
    """(flip-flops, {pin: its D bit}, reset net) when every non-constant bit of the operand's pins is a
    plain flip-flop's output, else None."""
    pins = {f"{prefix}{i}": dsp["connections"].get(f"{prefix}{i}", ["0"])[0] for i in range(18)}
    live = {p: b for p, b in pins.items() if isinstance(b, int)}
    if not live:
        return None
    ffs: set[str] = set()
    new: dict[str, Any] = {}
    for pin, bit in live.items():
        src = driver.get(bit)
        if src is None or src[1] != "Q" or src[0] in gone or not _plain_ff(cells[src[0]]):  # not a block's now
            return None
        ffs.add(src[0])
        new[pin] = cells[src[0]]["connections"]["DI"][0]
    rsts = {cells[ff]["connections"]["LSR"][0] for ff in ffs}
    return (sorted(ffs), new, rsts.pop()) if len(rsts) == 1 else None


def _product_group(cells, dsp, users, taken):
    """(flip-flops, {pin: the flip-flop's Q bit}, reset net) when every used product bit feeds exactly one
    plain flip-flop's D and nothing else, else None."""
    ffs: list[str] = []
    new: dict[str, Any] = {}
    for i in range(36):
        pin = f"P{i}"
        bit = dsp["connections"].get(pin, [None])[0]
        if not isinstance(bit, int) or not users.get(bit):
            continue
        use = users[bit]
        if len(use) != 1 or use[0][1] != "DI" or use[0][0] in taken or not _plain_ff(cells[use[0][0]]):
            return None
        ff = use[0][0]
        ffs.append(ff)
        new[pin] = cells[ff]["connections"]["Q"][0]
    if not ffs:
        return None
    rsts = {cells[ff]["connections"]["LSR"][0] for ff in ffs}
    return (ffs, new, rsts.pop()) if len(rsts) == 1 else None
