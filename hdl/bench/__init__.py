"""Verification benches, apart from the hardware they check: the cocotb benches, the AXI4 memory
model (Verilog), the runner that builds and runs them on a simulator, and the Amaranth-simulator path."""
