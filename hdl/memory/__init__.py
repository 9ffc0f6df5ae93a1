"""The memory system: the AXI4 master DMA that moves buffer words between DRAM and the buffers."""
