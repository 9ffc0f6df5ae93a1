"""The hardware: Amaranth components, Verilog export, FPGA synthesis flow.

Where to look:

* :mod:`~codesign.hdl.engines` — compute engines (the systolic array, the GEMM engine);
* :mod:`~codesign.hdl.memory` — the memory system (the AXI4 master DMA);
* :mod:`~codesign.hdl.control` — control (fold controller, tile sequencers, register block);
* :mod:`~codesign.hdl.layer` — the whole-layer accelerator that wires them together;
* :mod:`~codesign.hdl.plan` — what the hardware is, in pure Python (depths, widths, timing);
* :mod:`~codesign.hdl.export`, :mod:`~codesign.hdl.fpga` — Verilog export, Yosys/nextpnr flow;
* :mod:`~codesign.hdl.host`, :mod:`~codesign.hdl.verify` — the host side and verification;
* :mod:`~codesign.hdl.bench` — cocotb benches, the AXI memory model and the simulator runner.
"""
