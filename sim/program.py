"""A network run from one start: the descriptor list's format and the network sequencer's timing.

The network top (:mod:`codesign.hdl.control.network`) runs a *program*: a list of layer records in
DRAM, one per layer that runs (a residual add fused into its producer's write-back is part of that
layer's record). The host writes the list's address (``prog_base``) and length (``prog_layers``) and
presses ``prog_ctrl`` bit 0 once; the sequencer, for each record in order,

1. **fetches** the record's descriptor (the layer registers' values in register order, 32 bits each,
   little-endian: :data:`codesign.hdl.control.regs.DESCRIPTOR_FIELDS`) in one AXI read burst of
   ``ceil(descriptor_bytes / bus_bytes)`` beats;
2. **loads** it into the layer's register file, one field a cycle, and starts the layer (a write of
   CTRL bit 0);
3. **waits** for the layer's ``done`` (an error of the layer's descriptor checks stops the program:
   PROG_STATUS bit 2, PROG_LAYER names the record);
4. **writes** the layer's counters (:data:`codesign.hdl.control.regs.COUNTERS`, 64 bits each,
   little-endian) into the record at :func:`record_layout`'s ``counters_offset``, in one AXI write burst,
   and waits for its response;

then raises ``irq`` (PROG_STATUS bit 1) after the last record. The bus belongs to the sequencer only
while the layer is idle, so every phase runs alone on the memory.

Timing contract (the memory of ``sim.tileplan``: first read beat ``latency`` cycles after the
address, ``bw`` bytes a cycle, a write burst's response ``latency + 1`` cycles after its last beat):
from the edge that accepts the ``prog_ctrl`` start write to the edge that raises the program's
``done``, a program of layers with cycles ``L_i`` (each layer's own cycles, ``codesign.sim.engine``)
takes ``sum_i (L_i + layer_overhead_cycles) + PROGRAM_END_CYCLES``, with::

    layer_overhead_cycles = FETCH_OVERHEAD_CYCLES + latency + ceil(descriptor_read_bytes / bw)
                          + fields                                  # the register loads, one a cycle
                          + START_CYCLES                            # the CTRL write, the error check
                          + WRITE_OVERHEAD_CYCLES + latency + ceil(counter_write_bytes / bw)

``descriptor_read_bytes`` and ``counter_write_bytes`` are whole bus beats (:func:`record_layout`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import ceil_div

#: from the cycle the sequencer decides to fetch (its address on the bus) to the descriptor's last beat:
#: the address handshake's edge, then the memory's latency and beats
FETCH_OVERHEAD_CYCLES = 1
#: the cycle that writes CTRL bit 0 (the layer's start edge is its end) and the cycle that checks the layer's
#: ERROR after it
START_CYCLES = 1
#: from the layer's done edge: the cycle that sees done and loads the counters, then the write burst's address
#: and beats, its response, and the cycle that takes the response
WRITE_OVERHEAD_CYCLES = 2
#: the edge after the last record's counter response that raises the program's done
PROGRAM_END_CYCLES = 0
#: record alignment: a record never crosses a 4 KiB boundary, so each of its bursts is one AXI burst
MIN_BUS_BYTES = 4


@dataclass(frozen=True)
class RecordLayout:
    """Where things are in one record of the descriptor list (bytes from the record's start)."""

    fields: int  # descriptor fields (32-bit registers, register order)
    descriptor_bytes: int  # 4 x fields
    counters_offset: int  # the layer's counters, 64 bits each, COUNTERS order
    counter_bytes: int  # 8 x counters
    record_bytes: int  # the stride of the list (a power of two; prog_base aligned to it)
    bus_bytes: int
    descriptor_beats: int  # the fetch burst
    counter_beats: int  # the counter write burst

    @property
    def descriptor_read_bytes(self) -> int:
        return self.descriptor_beats * self.bus_bytes

    @property
    def counter_write_bytes(self) -> int:
        return self.counter_beats * self.bus_bytes


def record_layout(bus_bytes: int) -> RecordLayout:
    """The record format for an AXI data bus of ``bus_bytes`` (a power of two, at least 4)."""
    from codesign.hdl.control.regs import COUNTERS, DESCRIPTOR_FIELDS

    fields = len(DESCRIPTOR_FIELDS)
    desc = 4 * fields
    counters_offset = ceil_div(desc, 64) * 64
    counter_bytes = 8 * len(COUNTERS)
    desc_beats = ceil_div(desc, bus_bytes)
    cnt_beats = ceil_div(counter_bytes, bus_bytes)
    end = max(desc_beats * bus_bytes, counters_offset + cnt_beats * bus_bytes)
    record = 1 << (end - 1).bit_length()
    return RecordLayout(fields=fields, descriptor_bytes=desc, counters_offset=counters_offset,
                        counter_bytes=counter_bytes, record_bytes=record, bus_bytes=bus_bytes,
                        descriptor_beats=desc_beats, counter_beats=cnt_beats)


def design_reason(config: AcceleratorConfig) -> str:
    """Why ``config`` does not build the network sequencer ('' when it does)."""
    from codesign.sim.tileplan import bus_bytes

    bus = bus_bytes(config)
    if bus < MIN_BUS_BYTES:
        return (f"the network sequencer needs an AXI bus of at least {MIN_BUS_BYTES} bytes (dram_bytes_per_cycle "
                f"above {MIN_BUS_BYTES // 2}), not {bus}")
    return ""


def layer_overhead_cycles(config: AcceleratorConfig) -> int:
    """The sequencer's cycles per layer record: descriptor fetch, register loads, start, counter write."""
    from codesign.sim.tileplan import bus_bytes

    lay = record_layout(bus_bytes(config))
    bw, lat = config.dram_bytes_per_cycle, config.dram_latency_cycles
    fetch = FETCH_OVERHEAD_CYCLES + lat + math.ceil(lay.descriptor_read_bytes / bw)
    write = WRITE_OVERHEAD_CYCLES + lat + math.ceil(lay.counter_write_bytes / bw)
    return fetch + lay.fields + START_CYCLES + write


def program_cycles(layer_cycles: list[int] | tuple[int, ...], config: AcceleratorConfig) -> int:
    """Cycles of a program of layers with ``layer_cycles`` from one start (the timing contract above)."""
    if not layer_cycles:
        return 0
    return sum(layer_cycles) + len(layer_cycles) * layer_overhead_cycles(config) + PROGRAM_END_CYCLES
