#!/usr/bin/env bash
# Train within one call on a lent GPU machine and bring the network back in parts the call can return.
#
#   scripts/device_train.sh CONFIG RUN_DIR MINUTES RESULT_DIR
#
# 1. scripts/size_run.py times CONFIG's steps here and writes RUN_DIR.yaml, CONFIG with train.steps sized
#    to MINUTES and the lr drop at 75% of them;
# 2. crowdwatch train runs it (capped at MINUTES as well);
# 3. the last step is exported as a float16 checkpoint and split into parts of 15 MiB (a call returns
#    files of at most 16 MiB) under RESULT_DIR, with its sha256, the curve (log.csv), the sized config
#    and nvidia-smi's view of the GPU. Join them here with: cat RESULT_DIR/last_fp16.pt.part* > last.pt
#    and check the sha256 (sha256sum -c RESULT_DIR/last_fp16.pt.sha256 from the folder holding it).
#
# Leave room in the call: on a fresh H200 machine about 3 minutes went before the sized run's first
# step (first imports from a cold disk, spawning the loader workers, the calibration), so a 10-minute
# call holds MINUTES=5, not 7 (session 8 asked for 7, was stopped at step 8525 and exported the
# step-8000 checkpoint, then finished the run in a second call on the still-warm machine).
set -euo pipefail
if [ $# -ne 4 ]; then
    echo "usage: $0 CONFIG RUN_DIR MINUTES RESULT_DIR" >&2
    exit 2
fi
config=$1 run=$2 minutes=$3 result=$4
py=${PYTHON:-python3}
mkdir -p "$result"
nvidia-smi > "$result/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" > "$result/nvidia-smi.txt"
"$py" scripts/size_run.py "$config" --minutes "$minutes" --calibrate "${CALIBRATE_STEPS:-200}" --out "$run.yaml"
cp "$run.yaml" "$result/config.yaml"
"$py" -m crowdwatch train "$run.yaml" --out "$run" --max-minutes "$minutes" --no-progress
"$py" -m crowdwatch train "$run.yaml" --out "$run" --resume --export-last "$run/last_fp16.pt" --half
cp "$run/log.csv" "$result/log.csv"
(cd "$run" && sha256sum last_fp16.pt) > "$result/last_fp16.pt.sha256"
split -b 15M -d "$run/last_fp16.pt" "$result/last_fp16.pt.part"
ls -l "$result"
