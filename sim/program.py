"""A network run from one start: the descriptor list's format and the network sequencer's timing.

The network top (:mod:`codesign.hdl.control.network`) runs a *program*: a list of layer records in
DRAM, one per layer that runs (a residual add fused into its producer's write-back is part of that
layer's record). The host writes the list's address (``prog_base``) and length (``prog_layers``) and
presses ``prog_ctrl`` bit 0 once; the sequencer

1. **fetches** the first record's descriptor (the layer registers' values in register order, 32 bits each,
   little-endian: :data:`codesign.hdl.control.regs.DESCRIPTOR_FIELDS`) in one AXI read burst of
   ``ceil(descriptor_bytes / bus_bytes)`` beats, **loading** each beat's ``bus_bytes / 4`` fields into the
   layer's register file in the cycle the beat is accepted (the layer's descriptor beat port);
2. **starts** the layer (a write of CTRL bit 0) in the cycle after the last beat; an error of the layer's
   descriptor checks stops the program (PROG_STATUS bit 2, PROG_LAYER names the record);
3. **waits** for the layer's ``done``; in the cycle that sees it, latches the layer's counters
   (:data:`codesign.hdl.control.regs.COUNTERS`, 64 bits each, little-endian) and, from the next cycle,
   **writes** them into the record at :func:`record_layout`'s ``counters_offset`` in one AXI write burst
   **and fetches the next record's descriptor** at once (AXI's read and write channels are independent;
   the memory gives the write's data the bus, the read's beats take the cycles the write leaves);
4. starts the next layer once **both** its descriptor's last beat and the counter write's response have
   come, and goes on at 3.; after the last record the counter write runs alone and its response ends
   the program: ``irq`` (PROG_STATUS bit 1).

Why the start waits for the write's response too: the bus is the sequencer's only while the layer is
idle, so the layer starts with no transfer of the sequencer outstanding and runs on the memory alone, in
exactly its own cycles (the simulator's ``L_i``), and record i's counters are in DRAM before record i + 1
can fail. And it costs nothing: the counters are fewer bytes than the descriptor (40 against 292 with 73
fields), so ``Dw <= Dr`` below and the write's response (cycle ``Dw + latency``) always comes before the
descriptor's last beat (cycle ``latency + Dr`` or later).

Timing contract (the memory of ``sim.tileplan`` and ``hdl/bench/axi_mem_model.v``: first read beat
``latency`` cycles after the address, ``bw`` bytes a cycle of the bus in total, a write's data phase
``ceil(bytes / bw)`` cycles that have the bus first, its response ``latency + 1`` cycles after its last
beat): from the edge that accepts the ``prog_ctrl`` start write to the edge that raises the program's
``done``, a program of ``N >= 1`` layers with cycles ``L_i`` (each layer's own cycles, from its start edge
to its done edge: ``codesign.sim.engine``) takes ``sum_i L_i + first_record_cycles + (N - 1) *
layer_overhead_cycles + last_record_cycles``, with ``Dr = ceil(descriptor_read_bytes / bw)`` and ``Dw =
ceil(counter_write_bytes / bw)``::

    first_record_cycles   = FETCH_OVERHEAD_CYCLES + latency + Dr + START_CYCLES     # start edge -> layer 0's start
    layer_overhead_cycles = DONE_CYCLES + transfer_cycles + START_CYCLES            # done edge -> next layer's start
    transfer_cycles       = max(read_end, write_end)        # from the cycle both bursts are issued (cycle 0)
    read_end              = data_end(FETCH_OVERHEAD_CYCLES + latency, Dr, [(0, Dw)])   # the cycle after the last beat
    write_end             = Dw + latency + WRITE_RESPONSE_CYCLES                    # the cycle after the response
    last_record_cycles    = DONE_CYCLES + Dw + latency + WRITE_RESPONSE_CYCLES      # done edge -> program's done

(``data_end`` is :func:`codesign.sim.engine.data_end`: ``Dr`` cycles from the read's first data cycle on
that the write's data phase ``[0, Dw)`` does not take; when ``1 + latency >= Dw`` they never meet and
``read_end = 1 + latency + Dr``.) ``descriptor_read_bytes`` and ``counter_write_bytes`` are whole bus
beats (:func:`record_layout`). The default memory (16-byte bus, 16 bytes a cycle, latency 100; 19
descriptor beats, 3 counter beats): 122 cycles before the first layer, 123 between two layers, 105 after
the last (299 a layer when the fields were loaded one a cycle after the burst and the counter write ran
before the next fetch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from codesign.sim.config import AcceleratorConfig
from codesign.sim.timing import ceil_div

#: the first fetch: the cycle of the descriptor burst's address (its handshake's edge is its end); a fetch's
#: first beat comes ``latency`` cycles after it
FETCH_OVERHEAD_CYCLES = 1
#: the cycle that writes CTRL bit 0 after the descriptor's last beat, and the layer top's decision on its
#: registered descriptor checks (``hdl.layer``: the layer's start edge is its end; the cycle that checks the
#: layer's ERROR is the layer's first)
START_CYCLES = 2
#: the cycle that sees the layer's done and latches its counters (the bursts are issued from the next one)
DONE_CYCLES = 1
#: the cycle that takes the counter write's response (``latency`` cycles after its last beat's)
WRITE_RESPONSE_CYCLES = 1
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


def _burst_cycles(config: AcceleratorConfig) -> tuple[int, int]:
    """``(Dr, Dw)``: the data cycles of the descriptor's read burst and of the counters' write burst."""
    from codesign.sim.tileplan import bus_bytes

    lay = record_layout(bus_bytes(config))
    bw = config.dram_bytes_per_cycle
    return math.ceil(lay.descriptor_read_bytes / bw), math.ceil(lay.counter_write_bytes / bw)


def first_record_cycles(config: AcceleratorConfig) -> int:
    """From the program's start edge to the first layer's start edge: the descriptor's fetch alone, the start."""
    read, _ = _burst_cycles(config)
    return FETCH_OVERHEAD_CYCLES + config.dram_latency_cycles + read + START_CYCLES


def transfer_cycles(config: AcceleratorConfig) -> int:
    """From the cycle the counter write and the next fetch are issued together to the cycle after both ended
    (the descriptor's last beat, the write's response): the write's data phase has the bus first."""
    from codesign.sim.engine import data_end

    read, write = _burst_cycles(config)
    lat = config.dram_latency_cycles
    read_end = data_end(FETCH_OVERHEAD_CYCLES + lat, read, [(0, write)])
    return max(read_end, write + lat + WRITE_RESPONSE_CYCLES)


def layer_overhead_cycles(config: AcceleratorConfig) -> int:
    """The sequencer's cycles between two layers (from a layer's done edge to the next one's start edge):
    the cycle that sees done, the counter write overlapped with the next descriptor's fetch, the start."""
    return DONE_CYCLES + transfer_cycles(config) + START_CYCLES


def last_record_cycles(config: AcceleratorConfig) -> int:
    """From the last layer's done edge to the program's done edge: its counter write alone."""
    _, write = _burst_cycles(config)
    return DONE_CYCLES + write + config.dram_latency_cycles + WRITE_RESPONSE_CYCLES


def program_cycles(layer_cycles: list[int] | tuple[int, ...], config: AcceleratorConfig) -> int:
    """Cycles of a program of layers with ``layer_cycles`` from one start (the timing contract above)."""
    if not layer_cycles:
        return 0
    return (sum(layer_cycles) + first_record_cycles(config) + (len(layer_cycles) - 1) * layer_overhead_cycles(config)
            + last_record_cycles(config))
