#!/usr/bin/env bash
# Reproduce a bundled model and examples/ from its NW-UCLA training runs.
#   1. train with the recipe (each run's command is recorded in the model's metadata), or all
#      four modalities at once: python benchmarks/recipe_sweep.py --final --datasets nw_ucla \
#          --variants recipe-joint,recipe-bone,recipe-motion,recipe-bone-motion --seeds 0
#      restcn-train --data ../shared/data/nw_ucla/nw_ucla.pkl --train-split train --val-split val \
#          --model res-tcn --seed 0 --epochs 200 --dropout 0.3 --roll 10 --modality joint --out RUN
#      (about 9-25 min each on 2 CPU cores, depending on load)
#   2. export fp32, fp16 and int8, measure val accuracy through the runtime, ship, save examples:
#      bash scripts/build_bundled_model.sh --name ensemble --checkpoint JOINT BONE MOTION BONE_MOTION
#      bash scripts/build_bundled_model.sh --name res-tcn --checkpoint JOINT
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/restcn-cpu.lock python scripts/build_bundled_model.py "$@"
