#!/usr/bin/env bash
# Install OpenMMLab's detector stack (mmcv with compiled ops + mmengine + mmdet) into the virtualenv.
#
# PyPI ships mmcv only as a source distribution (mmcv-lite lacks the compiled ops mmdet needs), so
# the wheel is built here ONCE per machine and user, against the venv's torch, and kept in the user's
# cache: $VKEL_WHEEL_CACHE, else $XDG_CACHE_HOME/vkel/wheels, else ~/.cache/vkel/wheels. A second
# clone or a new virtualenv on the same machine reuses it in seconds. The cache key is everything the
# compiled ops depend on: mmcv version, torch version (its C++ ABI), the Python ABI, the platform and
# the CUDA choice; pip's own wheel cache is keyed by the sdist only and would silently reuse a wheel
# compiled against another torch.
#
# Why each build step:
#  - mmcv 2.1.0's setup.py hard-codes -std=c++17, while torch >= 2.14's headers refuse anything below
#    C++20 (#error in ATen) and no CFLAGS override wins over the later flag: patch setup.py.
#  - setup.py imports torch (to find its headers/ABI) and pkg_resources: build without isolation,
#    with setuptools 80.9.0 (the last one with pkg_resources, kept OUT of the venv via --target).
#  - CPU ops only (FORCE_CUDA=0, no GPU visible while building). Set MMCV_CUDA=1 to build the CUDA
#    ops too on a machine with nvcc.
#  - Parallel compile jobs: one per core, bounded by memory (a compiler process takes ~0.6 GB), so a
#    16-core workstation builds in minutes and a small machine does not swap. MAX_JOBS overrides.
#  - The build's own output (hundreds of setuptools warnings) goes to a log file; the terminal gets a
#    progress line every ~30 s, the log's path at the end, and the whole log when the build fails.
#
# Usage: scripts/build_mmcv.sh            (env: VENV=.venv, MAX_JOBS=auto, MMCV_CUDA=0, VKEL_WHEEL_CACHE)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
MMCV_VERSION=2.1.0
CONSTRAINTS=scripts/mmdet-constraints.txt
MMCV_CUDA=${MMCV_CUDA:-0}
PROGRESS_EVERY=${PROGRESS_EVERY:-30}

say() { echo "build_mmcv: $*" >&2; }

# Compile jobs: cores, bounded by available memory at ~0.6 GB per compiler process.
auto_jobs() {
  local cores mem_kb by_mem
  cores=$(nproc 2>/dev/null || echo 2)
  mem_kb=$(awk '/^MemAvailable:/ {print $2}' /proc/meminfo 2>/dev/null || echo 0)
  by_mem=$(( mem_kb / 614400 ))
  [ "$mem_kb" -gt 0 ] && [ "$by_mem" -lt "$cores" ] && cores=$by_mem
  [ "$cores" -lt 1 ] && cores=1
  echo "$cores"
}
MAX_JOBS=${MAX_JOBS:-$(auto_jobs)}

test -x "$PY" || { say "$PY not found (run 'make install' first)"; exit 1; }
read -r TORCH_VERSION PY_ABI PLATFORM < <("$PY" -c '
import sys, sysconfig, torch
print(torch.__version__.replace("+", "_"), f"cp{sys.version_info[0]}{sys.version_info[1]}",
      sysconfig.get_platform().replace("-", "_").replace(".", "_"))')
if [ "$MMCV_CUDA" = 1 ]; then
  CUDA_TAG=cuda$("$PY" -c 'import torch; print(torch.version.cuda or "none")')
else
  CUDA_TAG=cpu
fi
CACHE_ROOT=${VKEL_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vkel/wheels}
WHEEL_DIR=$CACHE_ROOT/mmcv-$MMCV_VERSION/torch-$TORCH_VERSION-$PY_ABI-$PLATFORM-$CUDA_TAG
shopt -s nullglob
wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)

# Prints "elapsed, compiled N of M sources" every PROGRESS_EVERY seconds while the build runs.
watch_build() {
  local log=$1 start=$2 line done total
  while sleep "$PROGRESS_EVERY"; do
    # ninja's "[N/M] c++ ..." lines (pip -v indents the build's output)
    line=$(grep -oE '^[[:space:]]*\[[0-9]+/[0-9]+\]' "$log" 2>/dev/null | tail -n 1 | tr -d '[:space:]' || true)
    if [ -n "$line" ]; then
      done=${line#[}; done=${done%%/*}; total=${line#*/}; total=${total%]}
      say "$(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s: compiled $done of $total sources"
    else
      say "$(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s: preparing the build"
    fi
  done
}

if [ ${#wheels[@]} -eq 0 ]; then
  start=$(date +%s)
  WORK=build/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION-$CUDA_TAG
  TOOLS=$WORK/tools
  LOG=build/mmcv-build.log
  rm -rf "$WORK"; mkdir -p "$WORK" "$WHEEL_DIR"; : > "$LOG"
  say "building mmcv $MMCV_VERSION for torch $TORCH_VERSION with $MAX_JOBS parallel jobs, once per machine" \
      "(~12 min on 2 cores, a few on 16); log: $LOG"
  watch_build "$LOG" "$start" &
  watcher=$!
  trap 'kill $watcher 2>/dev/null || true' EXIT
  status=0
  {
    "$PY" -m pip install -q --target "$TOOLS" setuptools==80.9.0 wheel ninja &&
    # pip reads the sdist's metadata (runs setup.py, which imports pkg_resources) even for a download.
    PYTHONPATH="$PWD/$TOOLS" "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
      -d "$WORK" "mmcv==$MMCV_VERSION" &&
    tar -xzf "$WORK"/mmcv-$MMCV_VERSION.tar.gz -C "$WORK" &&
    grep -q -- '-std=c++17' "$WORK/mmcv-$MMCV_VERSION/setup.py" &&
    sed -i 's/-std=c++17/-std=c++20/g' "$WORK/mmcv-$MMCV_VERSION/setup.py" &&
    if [ "$MMCV_CUDA" = 1 ]; then cuda_env=(FORCE_CUDA=1); else cuda_env=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=); fi &&
    env PYTHONPATH="$PWD/$TOOLS" PATH="$PWD/$TOOLS/bin:$PATH" MMCV_WITH_OPS=1 MAX_JOBS="$MAX_JOBS" "${cuda_env[@]}" \
      "$PY" -m pip wheel -v --no-build-isolation --no-deps --no-cache-dir -w "$WORK/dist" "$WORK/mmcv-$MMCV_VERSION"
  } >>"$LOG" 2>&1 || status=$?
  kill $watcher 2>/dev/null || true
  wait $watcher 2>/dev/null || true
  trap - EXIT
  if [ "$status" -ne 0 ]; then
    cat "$LOG" >&2
    say "the build FAILED (exit $status) after $(( $(date +%s) - start )) s; the whole log is above and in $LOG"
    exit "$status"
  fi
  # Publish the wheel only once it is complete (rename within the cache), so an interrupted build is redone.
  built=("$WORK"/dist/mmcv-$MMCV_VERSION-*.whl)
  cp "${built[0]}" "$WHEEL_DIR/.build.tmp" && mv "$WHEEL_DIR/.build.tmp" "$WHEEL_DIR/$(basename "${built[0]}")"
  rm -rf "$WORK"
  wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
  say "built ${wheels[0]} ($(du -h "${wheels[0]}" | cut -f1)) in $(( $(date +%s) - start )) s with $MAX_JOBS jobs;" \
      "the build's output is in $LOG"
else
  say "reusing ${wheels[0]}"
fi

start=$(date +%s)
# constraints.txt keeps torch/torchvision as they are; the second file pins the mm* stack and
# setuptools < 81: mmengine 0.10.7 resolves `mmdet::...` config references with pkg_resources.
mkdir -p build
"$PY" -m pip install -q -c constraints.txt -c "$CONSTRAINTS" "${wheels[0]}" mmengine mmdet setuptools \
  >build/mmdet-install.log 2>&1 || { cat build/mmdet-install.log >&2; say "installing mmcv/mmdet FAILED (log above)"; exit 1; }
"$PY" -c 'import mmcv, mmcv.ops, mmdet, mmdet.apis; print("build_mmcv: mmcv", mmcv.__version__, "ops ok; mmdet", mmdet.__version__)' >&2
say "installed in $(( $(date +%s) - start )) s"
