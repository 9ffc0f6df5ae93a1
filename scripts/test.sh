#!/usr/bin/env bash
# Set up and run the test suite (the default tier: everything but the cases marked slow).
#   bash scripts/test.sh                 lint, type check, tests
#   bash scripts/test.sh -m slow         extra pytest arguments are passed on (here: the slow cases)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export AMARANTH_USE_YOSYS=builtin
.venv/bin/ruff check .
.venv/bin/mypy sim codesign
if [ $# -eq 0 ]; then set -- -m "not slow"; fi
.venv/bin/python -m pytest -n 2 "$@"
