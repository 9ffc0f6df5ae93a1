"""One exception base for the whole package.

Every message names the field and the bad value ("rows must be a positive integer, not -4").
The CLI turns a :class:`CodesignError` into one line on stderr and exit status 2.
"""

from __future__ import annotations


class CodesignError(Exception):
    """Base of every error raised on bad input by codesign."""


class ConfigError(CodesignError, ValueError):
    """An accelerator configuration or design space is invalid."""


class WorkloadError(CodesignError, ValueError):
    """A layer, network, topology file or model file is invalid."""


class ToolError(CodesignError, RuntimeError):
    """An external tool (simulator, synthesizer) is missing or failed."""
