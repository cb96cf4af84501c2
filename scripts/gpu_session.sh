#!/usr/bin/env bash
# Everything a lent GPU machine is for, in one call: prove the GPU path, then train for the time left.
#
#   scripts/gpu_session.sh RESULT_DIR            on the GPU machine, as the call's whole command
#   scripts/gpu_session.sh --dry-run RESULT_DIR  here, on the CPU, with tiny settings (the test suite runs it)
#
# Before the call, once, here: scripts/gpu_prepare.sh packs the data and the missing wheels into .gpu/
# (ignored by git; name it in the call's carry). The call is then
#   scripts/gpu_session.sh $OUT/r        with carry [".gpu"] and timeout_s 600
# and every figure and file comes back under RESULT_DIR:
#   results.json     phase timings and return codes, the environment, the model and pipeline figures
#   session.log      what each phase printed
#   model.json       benchmarks/bench_gpu.py: frames/s and peak GPU memory, 720p and 1080p, batch 1-16
#   pipeline.json    benchmarks/bench_pipeline.py: 16 file cameras through the real pipeline vs the bare model
#   cuda_tests.txt   the CUDA tests (pytest -m cuda)
#   train/           the sized config, log.csv, and the last step as an fp16 checkpoint in parts of
#                    15 MiB (a call returns files of at most 16 MiB) with its sha256. Here:
#                    cat train/last_fp16.pt.part* > last.pt && sha256sum -c train/last_fp16.pt.sha256
#
# Time: the call's limit is CALL_S (default 590 s). The phases before training have fixed caps; the
# training gets what is left, less the time to start it and to export its last step. Its step count
# comes from STEPS_PER_S, the rate measured by the last run on such a machine (no calibration run),
# and --max-minutes caps it whatever the rate. time_to_first_step_s in results.json says how long the
# training took to start: the next session can trim TRAIN_START_S by it.
#
# Settings (environment): CALL_S, STEPS_PER_S (default 21.5: an H200, bf16, 8 x 4 crops of 128 px),
# TRAIN_CONFIG (default configs/train_gpu_continue.yaml), TRAIN_START_S (default 60), EXPORT_S (default 45),
# CAP_SCALE (multiplies each phase's cap; default 1, and 20 in a dry run, where a loaded 2-core machine
# can take minutes to import torch: the dry run proves the steps, not their speed).
set -uo pipefail
cd "$(dirname "$0")/.."

dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
if [ $# -ne 1 ]; then
  echo "usage: scripts/gpu_session.sh [--dry-run] RESULT_DIR" >&2
  exit 2
fi
result=$1
mkdir -p "$result/train" || exit 2
result=$(cd "$result" && pwd)
log=$result/session.log
: > "$log"
started=$(date +%s)
py=${PYTHON:-python3}

if [ $dry = 1 ]; then
  device=cpu
  cap_scale=${CAP_SCALE:-20}
  call_s=${CALL_S:-36000}
  rate=${STEPS_PER_S:-0.5}
  train_start_s=${TRAIN_START_S:-20}
  export_s=${EXPORT_S:-30}
  model_args=(--device cpu --sizes 96x64 --batches 1 2 --iters 1 --warmup 1)
  pipeline_args=(--device cpu --cameras 2 --size 96x64 --camera-fps 2 --clip-fps 5 --duration 6 --warmup 2 --bare 1)
else
  device=cuda
  cap_scale=${CAP_SCALE:-1}
  call_s=${CALL_S:-590}
  rate=${STEPS_PER_S:-21.5}
  train_start_s=${TRAIN_START_S:-60}
  export_s=${EXPORT_S:-45}
  model_args=(--device cuda)
  pipeline_args=(--device cuda --cameras 16 --size 1280x720 --camera-fps 25 --clip-fps 25 --duration 40 --warmup 10 --bare 10)
fi

say() { printf '[%4ds] %s\n' "$(($(date +%s) - started))" "$*" | tee -a "$log" >&2; }
phases=()
# phase NAME CAP_S COMMAND...: run with a time cap, log its output, record its seconds and exit code
phase() {
  local name=$1 cap=$(($2 * cap_scale))
  shift 2
  say "phase $name (at most ${cap} s): $*"
  local t0 rc
  t0=$(date +%s)
  timeout --kill-after=5 "$cap" "$@" >> "$log" 2>&1
  rc=$?
  phases+=("{\"phase\": \"$name\", \"seconds\": $(($(date +%s) - t0)), \"rc\": $rc}")
  say "phase $name: exit $rc after $(($(date +%s) - t0)) s"
  return 0
}

# -- set-up: wheels and data packed beforehand by scripts/gpu_prepare.sh ---------------------------------
if compgen -G ".gpu/whl/*.whl" > /dev/null; then
  phase wheels 60 "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu_site .gpu/whl/*.whl
  export PYTHONPATH=/tmp/gpu_site:$PWD${PYTHONPATH:+:$PYTHONPATH}
else
  export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONUNBUFFERED=1

if [ $dry = 1 ]; then
  # a tiny dataset and config of the same shape as the real one: continue from the packaged weights
  phase data 60 "$py" - "$result/dry" <<'EOF'
import sys
from pathlib import Path
from crowdwatch.data.synthetic import write_blob_folder
root = Path(sys.argv[1])
data = write_blob_folder(root / "blobs", 6, size=(48, 48), max_count=4)
(root / "train.yaml").write_text(
    f"seed: 1\ndata: {{datasets: [{{path: {data}, name: blobs}}], val_every: 0}}\n"
    "model: {init_from: default, freeze_blocks: 0}\n"
    "train: {steps: 10, images_per_step: 1, crops_per_image: 1, crop_size: 32, workers: 0, threads: 1, "
    "device: cpu, checkpoint_every: 1000}\n"
)
EOF
  train_config=$result/dry/train.yaml
else
  train_config=${TRAIN_CONFIG:-configs/train_gpu_continue.yaml}
  if [ -f .gpu/data.tgz ]; then
    mkdir -p .gpu/data
    phase unpack 60 tar -xzf .gpu/data.tgz -C .gpu/data --strip-components=1
  fi
fi

# -- 1. the GPU path -------------------------------------------------------------------------------------
phase environment 60 "$py" - "$result/environment.json" <<'EOF'
import json, platform, sys
from pathlib import Path
import torch
from crowdwatch.model.precision import machine_description
cuda = torch.cuda.is_available()
info = {
    "python": sys.version.split()[0], "torch": torch.__version__, "cuda": torch.version.cuda,
    "cudnn": torch.backends.cudnn.version() if cuda else None, "gpu": torch.cuda.get_device_name(0) if cuda else None,
    "gpu_memory_mib": torch.cuda.get_device_properties(0).total_memory // 2**20 if cuda else None,
    "machine": machine_description(torch.device("cuda" if cuda else "cpu")), "platform": platform.platform(),
}
Path(sys.argv[1]).write_text(json.dumps(info, indent=1) + "\n")
print(json.dumps(info))
EOF
phase cuda_tests 90 "$py" -m pytest -q -p no:cacheprovider -m cuda tests/model/test_model.py \
  -o addopts="" --junitxml="$result/cuda_tests.xml"
phase model 120 "$py" benchmarks/bench_gpu.py "${model_args[@]}" --json "$result/model.json"
phase pipeline 120 "$py" benchmarks/bench_pipeline.py "${pipeline_args[@]}" --workdir /tmp/gpu_pipeline \
  --json "$result/pipeline.json"

# -- 2. training for the time left -----------------------------------------------------------------------
now=$(date +%s)
left=$((started + call_s - now))
train_s=$((left - train_start_s - export_s))
# the dry run proves the steps, not the training: a few seconds of it
[ $dry = 1 ] && [ "$train_s" -gt 10 ] && train_s=10
time_to_first=null
if [ "$train_s" -lt 10 ]; then
  say "only ${left} s left: no training"
else
  minutes=$(awk -v s="$train_s" 'BEGIN { printf "%.2f", s / 60 }')
  run=$result/train/run
  phase size 60 "$py" scripts/size_run.py "$train_config" --minutes "$minutes" --rate "$rate" \
    --out "$result/train/config.yaml"
  say "training: $minutes minutes at $rate steps/s planned"
  # the run stops itself at --max-minutes; the time cap (SIGINT: stop after this step and save) only
  # guards a hang, with what is left of the call before the export
  cap=$((started + call_s - export_s - $(date +%s)))
  [ "$cap" -lt 5 ] && cap=5
  t0=$(date +%s.%N)
  timeout --signal=INT --kill-after=20 "$cap" \
    "$py" -m crowdwatch train "$result/train/config.yaml" --out "$run" --max-minutes "$minutes" --no-progress \
    >> "$log" 2>&1 &
  train_pid=$!
  # the first step is done when log.csv holds a row under its header
  while kill -0 "$train_pid" 2> /dev/null; do
    if [ -f "$run/log.csv" ] && [ "$(wc -l < "$run/log.csv")" -ge 2 ]; then
      time_to_first=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
      say "first training step after ${time_to_first} s"
      break
    fi
    sleep 0.5
  done
  t_train=$(date +%s)
  wait "$train_pid"
  rc=$?
  if [ "$time_to_first" = null ] && [ -f "$run/log.csv" ] && [ "$(wc -l < "$run/log.csv")" -ge 2 ]; then
    # the run ended between two looks: its end bounds the first step's time from above
    time_to_first=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  fi
  phases+=("{\"phase\": \"train\", \"seconds\": $(($(date +%s) - t_train)), \"rc\": $rc}")
  say "training: exit $rc"
  phase export $((export_s - 5)) "$py" -m crowdwatch train "$result/train/config.yaml" --out "$run" --resume \
    --export-last "$run/last_fp16.pt" --half
  if [ -f "$run/last_fp16.pt" ]; then
    (cd "$run" && sha256sum last_fp16.pt) > "$result/train/last_fp16.pt.sha256"
    split -b 15M -d "$run/last_fp16.pt" "$result/train/last_fp16.pt.part"
  fi
  [ -f "$run/log.csv" ] && cp "$run/log.csv" "$result/train/log.csv"
  # the parts, the log and the config come back; the run folder (full state, 100s of MB) does not
  rm -rf "$run"
fi

# -- results ---------------------------------------------------------------------------------------------
"$py" - "$result" "$(IFS=,; echo "${phases[*]}")" "$time_to_first" "$(($(date +%s) - started))" "$rate" <<'EOF'
import json, sys
from pathlib import Path
result = Path(sys.argv[1])
def read(name):
    path = result / name
    return json.loads(path.read_text()) if path.is_file() else None
report = {
    "phases": json.loads(f"[{sys.argv[2]}]"),
    "time_to_first_step_s": json.loads(sys.argv[3]),
    "total_s": int(sys.argv[4]),
    "planned_steps_per_s": float(sys.argv[5]),
    "environment": read("environment.json"),
    "model": read("model.json"),
    "pipeline": read("pipeline.json"),
}
log = result / "train" / "log.csv"
if log.is_file():
    import csv
    rows = list(csv.DictReader(log.open()))
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        span = float(last["elapsed_s"]) - float(first["elapsed_s"])
        report["train"] = {
            "steps": int(last["step"]),
            "measured_steps_per_s": round((int(last["step"]) - int(first["step"])) / span, 2) if span > 0 else None,
            "last_loss": float(last["loss"]),
        }
(result / "results.json").write_text(json.dumps(report, indent=1) + "\n")
print(json.dumps({k: report[k] for k in ("phases", "time_to_first_step_s", "total_s")}, indent=1))
EOF
say "done: $result/results.json"
