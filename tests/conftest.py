"""Shared pytest configuration: test tiers are folders (unit, sim, hdl, rtl, fpga, e2e, sweep)."""

from __future__ import annotations

import os

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")
