"""Control: the fold controller (one on-chip GEMM), the tile iterator and sequencers (a layer's tile
program), and the AXI4-Lite register block (descriptor, start, status, counters)."""
