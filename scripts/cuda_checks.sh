#!/usr/bin/env bash
# What CI cannot check: the CUDA paths of training and inference, on a machine with an NVIDIA GPU.
#
#   OUT=DIR bash scripts/cuda_checks.sh [SWEEP_SECONDS [WALL_SECONDS]]
#   SMOKE=1 DEVICE=cpu bash scripts/cuda_checks.sh 5   # the script itself, tiny, on a CPU
#   CHECKS=1,2,3 ...                                    # some of the checks below only
#
# 1. benchmarks/train_throughput.py on CUDA (project loop vs plain eager, NTU shape, and one
#    NTU60-xsub epoch's time at that rate), then benchmarks/ntu_ensemble_time.py (the four-member
#    ensemble's NTU60 training time projected from each modality's measured throughput).
# 2. restcn-train on NW-UCLA with the defaults on CUDA (bf16 autocast, pinned memory, loader
#    workers), then restcn-export of that checkpoint and the torch-free runtime on the examples.
# 3. fp16 autocast with its GradScaler; SIGKILL mid-run and --resume to the same epoch count.
# 4. In the background from the start: benchmarks/fix_experiment.py (100 epochs, 3 seeds, both
#    datasets) and benchmarks/recipe_sweep.py, many runs at once on the one GPU; the sweep
#    starts no new run after SWEEP_SECONDS (default 300); at WALL_SECONDS after the script's
#    start (default 480) unfinished runs are stopped and what finished is summarised.
# 5. Inference (needs onnxruntime-gpu; the TensorRT rows need TensorRT's libraries, else they fall
#    back to CUDA and say so): benchmarks/infer_latency.py --gpu (fp32 on the CUDA provider, TensorRT fp16,
#    int8 on TensorRT; batch 1, 16, 128 at NTU shape) and benchmarks/stream_load.py on
#    fp32@cuda, fp32@tensorrt, int8@tensorrt (batched vs unbatched, p99 < 50 ms). TensorRT
#    engines are cached in $OUT/cache (RESTCN_CACHE_DIR); the first session of a model builds
#    them. Runs only where onnxruntime lists the CUDA provider.
# Everything lands in $OUT (logs, and results.tgz with every run's metrics and history).
# The package is put on PYTHONPATH from this checkout when it is not installed (GPU machines
# are often offline); ../shared/data must hold nw_ucla/nw_ucla.pkl and utd_mhad/utd_mhad.pkl.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/cuda}; SWEEP_SECONDS=${1:-300}; WALL_SECONDS=${2:-480}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
RUNS=$OUT/runs; mkdir -p "$RUNS"
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 COLUMNS=160
DATA=../shared/data
DEVICE=${DEVICE:-cuda}; HALF=fp16; TINY=""
[ "$DEVICE" = cpu ] && HALF=bf16                       # fp16 autocast needs CUDA
RESUME_EPOCHS=30; ENSEMBLE_STEPS=40; FIX_PARALLEL=${FIX_PARALLEL:-6}; SWEEP_PARALLEL=${SWEEP_PARALLEL:-8}
FIX_SET="--datasets ${FIX_DATASETS:-utd_mhad,nw_ucla}"; SWEEP_SET="${SWEEP_SET:-}"
if [ -n "${SMOKE:-}" ]; then                           # appended: the last --epochs wins
    TINY="--epochs 2"; RESUME_EPOCHS=5; ENSEMBLE_STEPS=1; FIX_PARALLEL=1; SWEEP_PARALLEL=1; SWEEP_SET="--variants default,long --seeds 0"
    FIX_SET="$FIX_SET --seeds 0"
fi

if ! command -v restcn-train >/dev/null; then
    pkg=/tmp/restcn-pkg; bin=/tmp/restcn-bin; mkdir -p $pkg $bin
    for pair in training:restcn_training export:restcn_export cli:restcn_cli restcn_infer:restcn_infer; do
        ln -sfn "$PWD/${pair%%:*}" "$pkg/${pair##*:}"
    done
    for cmd in train export infer diagnose; do
        printf '#!/bin/sh\nexec python3 -c "from restcn_cli.%s import app; app()" "$@"\n' $cmd > $bin/restcn-$cmd
        chmod +x $bin/restcn-$cmd
    done
    export PYTHONPATH=$pkg${PYTHONPATH:+:$PYTHONPATH} PATH=$bin:$PATH
fi

step() { echo; echo "=== $* ($(date +%T))"; }
want() { [[ ",${CHECKS:-1,2,3,4,5}," == *",$1,"* ]]; }
step environment
nvidia-smi -L || true
python3 -c "import torch, onnxruntime; gpu = torch.cuda.is_available()
print('torch', torch.__version__, 'cuda', torch.version.cuda,
      torch.cuda.get_device_name(0) if gpu else 'no CUDA device',
      'bf16', gpu and torch.cuda.is_bf16_supported(), '| onnxruntime',
      onnxruntime.__version__, onnxruntime.get_available_providers())"

if want 1; then
step "1. training throughput on CUDA"
python3 benchmarks/train_throughput.py --device $DEVICE ${SMOKE:+--steps 1 --cuda-steps 2 --rounds 1} 2>&1 | tee "$OUT/throughput.log"
python3 benchmarks/ntu_ensemble_time.py --device $DEVICE --steps $ENSEMBLE_STEPS 2>&1 | tee "$OUT/ntu_ensemble_time.log"
fi

if want 4; then
step "4. (background) fix experiment and recipe sweep, fp32, many runs at once"
experiment_args="--device $DEVICE --precision fp32 $TINY"
python3 benchmarks/fix_experiment.py --out "$RUNS/fix" $FIX_SET --parallel $FIX_PARALLEL --lock '' \
    --train-args "$experiment_args" > "$OUT/fix.log" 2>&1 &
fix_pid=$!
python3 benchmarks/recipe_sweep.py --out "$RUNS/recipe" --parallel $SWEEP_PARALLEL --lock '' $SWEEP_SET \
    --deadline "$SWEEP_SECONDS" --train-args "$experiment_args" > "$OUT/recipe.log" 2>&1 &
sweep_pid=$!
fi

if want 2; then
step "2. restcn-train NW-UCLA defaults on $DEVICE (auto precision), export, runtime"
ucla="--data $DATA/nw_ucla/nw_ucla.pkl --train-split train --val-split val"
start=$SECONDS
restcn-train $ucla --out "$RUNS/nw_ucla_cuda" --seed 0 --device $DEVICE $TINY \
    > "$OUT/train_cuda.log" 2>&1
echo "wall $((SECONDS - start)) s"
tail -n 3 "$OUT/train_cuda.log"
python3 -c "import json; m = json.load(open('$RUNS/nw_ucla_cuda/metrics.json'));
print({k: m[k] for k in ('device', 'final_val_accuracy', 'best_val_accuracy', 'train_seconds',
                         'train_samples_per_second')})"
restcn-export "$RUNS/nw_ucla_cuda/checkpoint.pt" --out "$RUNS/nw_ucla_cuda/model.onnx" 2>&1 | tail -n 3
restcn-infer classify examples/*.npy --model "$RUNS/nw_ucla_cuda/model.onnx" 2>&1 | tail -n 8

fi
if want 3; then
step "3. $HALF autocast (fp16: GradScaler), SIGKILL mid-run, --resume"
small="--data $DATA/nw_ucla/nw_ucla.pkl --train-split train --val-split val --epochs $RESUME_EPOCHS --seed 1 --device $DEVICE --precision $HALF --out $RUNS/fp16_resume"
restcn-train $small > "$OUT/fp16_resume.log" 2>&1 &
train_pid=$!
until [ "$( { wc -l < "$RUNS/fp16_resume/history.csv"; } 2>/dev/null)" -ge 4 ] 2>/dev/null \
        || ! kill -0 $train_pid 2>/dev/null; do sleep 0.2; done
kill -9 $train_pid; wait $train_pid 2>/dev/null
echo "killed after epoch $(($(wc -l < "$RUNS/fp16_resume/history.csv") - 1)) of $RESUME_EPOCHS"
restcn-train $small --resume >> "$OUT/fp16_resume.log" 2>&1
echo "after --resume: $(($(wc -l < "$RUNS/fp16_resume/history.csv") - 1)) history rows; epochs:" \
    "$(cut -d, -f1 "$RUNS/fp16_resume/history.csv" | tr '\n' ' ')"
python3 -c "import json; m = json.load(open('$RUNS/fp16_resume/metrics.json'));
print('fp16 run:', m['epochs'], 'epochs, final accuracy', round(m['final_val_accuracy'], 4))"

fi
if want 5; then
step "5. inference on the GPU: latency and streams, fp32 / TensorRT fp16 / int8 TensorRT"
if python3 -c "import sys, onnxruntime as o; from restcn_infer.session import nvidia_driver_present as d
sys.exit('CUDAExecutionProvider' not in o.get_available_providers() or not d())"; then
    export RESTCN_CACHE_DIR=$OUT/cache
    python3 benchmarks/infer_latency.py --gpu ${SMOKE:+--batch 1 --repeats 2 --rounds 1} 2>&1 \
        | grep -v -i "warn" | tee "$OUT/infer_latency_gpu.log"
    python3 benchmarks/stream_load.py --ntu --slo-ms 50 --start 512 --models fp32@cuda fp32@tensorrt \
        int8@tensorrt ${SMOKE:+--seconds 1 --warmup 0.5 --max-streams 1024 --refine 0 --no-decode} 2>&1 \
        | grep -v -i "warn" | tee "$OUT/stream_load_gpu.log"
else
    echo "no NVIDIA driver, or onnxruntime without its CUDA provider (pip install onnxruntime-gpu): skipped"
fi
fi
if want 4; then
step "waiting for the background runs (stopped at ${WALL_SECONDS} s)"
while { kill -0 $fix_pid || kill -0 $sweep_pid; } 2>/dev/null && [ $SECONDS -lt $WALL_SECONDS ]; do
    sleep 2
done
if pkill -f "$RUNS/"; then echo "stopped unfinished runs at $SECONDS s"; fi
wait
python3 benchmarks/fix_experiment.py --out "$RUNS/fix" $FIX_SET --summary-only 2>&1 | tee "$OUT/fix_summary.log"
python3 benchmarks/recipe_sweep.py --out "$RUNS/recipe" --deadline 0 $SWEEP_SET 2>&1 \
    | grep -v '^\$' | tee "$OUT/recipe_summary.log"
fi
(cd "$RUNS" && find . -name '*.json' -o -name '*.csv' -o -name '*.log' | tar czf "$OUT/results.tgz" -T -)
step done
