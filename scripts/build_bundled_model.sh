#!/usr/bin/env bash
# Reproduce the bundled model and examples/ from the bundled NW-UCLA training run.
#   1. train (about 8 minutes on 2 CPU cores; the command is recorded in the model's metadata):
#      restcn-train --data ../shared/data/nw_ucla/nw_ucla.pkl --train-split train --val-split val \
#          --model res-tcn --rotate 90 --shift 0.8 --seed 0 --out runs/bundled-nw-ucla
#   2. export fp32 + fp16, measure val accuracy through the runtime, ship, save examples:
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/restcn-cpu.lock python scripts/build_bundled_model.py "$@"
