#!/usr/bin/env bash
# Reproduce a bundled model and examples/ from its NW-UCLA training run.
#   1. train with the default recipe (the command is recorded in the model's metadata):
#      restcn-train --data ../shared/data/nw_ucla/nw_ucla.pkl --train-split train --val-split val \
#          --model ms-res-tcn --seed 0 --out RUN      # about 17 min on 2 CPU cores
#          --model res-tcn ...                        # the baseline: about 8 min
#   2. export fp32, fp16 and int8, measure val accuracy through the runtime, ship, save examples:
#      bash scripts/build_bundled_model.sh --name ms-res-tcn --checkpoint RUN/checkpoint.pt
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/restcn-cpu.lock python scripts/build_bundled_model.py "$@"
