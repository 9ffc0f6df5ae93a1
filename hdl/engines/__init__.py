"""Compute engines: the systolic PE array and the GEMM engine around it (buffers, fold controller)."""
