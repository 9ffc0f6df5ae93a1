"""The hardware: Amaranth components, Verilog export, FPGA synthesis flow."""
