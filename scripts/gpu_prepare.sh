#!/usr/bin/env bash
# Pack, here and once, what scripts/gpu_session.sh needs on a lent GPU machine, so that no minute of the
# call goes to set-up. Writes .gpu/ (add `/.gpu/` to .git/info/exclude; the call names it in carry):
#   .gpu/data.tgz  the training split alone of the three train folders, shrunk to WebP at 0.75 scale
#                  (scripts/shrink_data.py --train-only 10: the held-out validation images never travel)
#   .gpu/whl/      wheels for the packages crowdwatch needs that the GPU machine's Python (3.12) lacks
#
#   scripts/gpu_prepare.sh [DATA_DIR]     DATA_DIR: the crowd data (default ../shared/data)
#
# A call carries at most 64 MiB, and the repository's packaged weights take 36 MB of it: the script
# prints what will travel and fails when it would not fit.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
py=${PYTHON:-.venv/bin/python}
limit_mib=64

grep -qx '/.gpu/' .git/info/exclude 2> /dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu /tmp/gpu_data
mkdir -p .gpu/whl

# WebP qualities chosen so the three folders pack into ~26 MB (A is dense: its heads need the most detail)
"$py" scripts/shrink_data.py --scale 0.75 --train-only 10 --quality 38 --out /tmp/gpu_data \
  shanghaitech_a="$data/shanghaitech/part_A_train"
"$py" scripts/shrink_data.py --scale 0.75 --train-only 10 --quality 25 --out /tmp/gpu_data \
  shanghaitech_b="$data/shanghaitech/part_B_train"
"$py" scripts/shrink_data.py --scale 0.75 --train-only 10 --quality 35 --out /tmp/gpu_data \
  mall="$data/mall/train"
tar -czf .gpu/data.tgz -C /tmp gpu_data
rm -rf /tmp/gpu_data

# The machine's python3 (3.12) has torch, numpy, scipy, OpenCV, PyYAML, tqdm and prometheus_client,
# but not these (pure Python, except pydantic_core). The versions installed here, which the tests pass
# with (pydantic pins its pydantic-core exactly, so the newest of each need not match).
pins=$("$py" -c 'import importlib.metadata as m
names = ["pydantic", "pydantic-core", "annotated-types", "typing-inspection", "typing-extensions", "paho-mqtt"]
print(" ".join(f"{n}=={m.version(n)}" for n in names))')
# shellcheck disable=SC2086  # one word per pin
"$py" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .gpu/whl $pins

tracked=$(git ls-files -z | du -cb --files0-from=- | tail -1 | cut -f1)
packed=$(du -sb .gpu | cut -f1)
total_mib=$(((tracked + packed) / 1048576))
echo "will travel: repository $((tracked / 1048576)) MiB + .gpu $((packed / 1048576)) MiB = ${total_mib} MiB (limit ${limit_mib})"
if [ "$total_mib" -ge "$limit_mib" ]; then
  echo "error: over the ${limit_mib} MiB a call can carry; lower the WebP qualities above" >&2
  exit 1
fi
