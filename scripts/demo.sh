#!/usr/bin/env bash
# Set up and run the main job: simulate MobileNetV2 on a 32x32 weight-stationary INT8 array,
# print the per-layer table, and write the results and an HTML report under results/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p results
.venv/bin/codesign simulate --workload mobilenet_v2 --rows 32 --cols 32 --dataflow ws --out results/mobilenet_v2.json
.venv/bin/codesign report results/mobilenet_v2.json -o results/report
echo "report: results/report/index.html"
