#!/usr/bin/env bash
# Install OpenMMLab's detector stack (mmcv with compiled ops + mmengine + mmdet) into the virtualenv.
#
# PyPI ships mmcv only as a source distribution (mmcv-lite lacks the compiled ops mmdet needs), so
# the wheel is built here ONCE, against the venv's torch, and kept in wheels/torch-<version>/: a
# second run (or `make install` on the same machine) reuses it and takes seconds. The folder is
# named by the torch version because pip's own wheel cache is keyed by the sdist only and would
# silently reuse a wheel compiled against another torch's C++ ABI.
#
# Why each build step:
#  - mmcv 2.1.0's setup.py hard-codes -std=c++17, while torch >= 2.14's headers refuse anything below
#    C++20 (#error in ATen) and no CFLAGS override wins over the later flag: patch setup.py.
#  - setup.py imports torch (to find its headers/ABI) and pkg_resources: build without isolation,
#    with setuptools 80.9.0 (the last one with pkg_resources, kept OUT of the venv via --target).
#  - CPU ops only (FORCE_CUDA=0, no GPU visible while building). Set MMCV_CUDA=1 to build the CUDA
#    ops too on a machine with nvcc (the wheel then goes to wheels/torch-<version>-cuda/).
#
# Usage: scripts/build_mmcv.sh            (env: VENV=.venv, MAX_JOBS=2, MMCV_CUDA=0)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=$VENV/bin/python
MMCV_VERSION=2.1.0
CONSTRAINTS=scripts/mmdet-constraints.txt
MAX_JOBS=${MAX_JOBS:-2}
MMCV_CUDA=${MMCV_CUDA:-0}

test -x "$PY" || { echo "build_mmcv: $PY not found (run 'make install' first)" >&2; exit 1; }
TORCH_VERSION=$("$PY" -c 'import torch; print(torch.__version__.replace("+", "_"))')
SUFFIX=""; [ "$MMCV_CUDA" = 1 ] && SUFFIX="-cuda"
WHEEL_DIR=wheels/torch-$TORCH_VERSION$SUFFIX
shopt -s nullglob
wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)

if [ ${#wheels[@]} -eq 0 ]; then
  start=$(date +%s)
  WORK=build/mmcv-$MMCV_VERSION-torch-$TORCH_VERSION$SUFFIX
  TOOLS=$WORK/tools
  rm -rf "$WORK"; mkdir -p "$WORK" "$WHEEL_DIR"
  echo "build_mmcv: building mmcv $MMCV_VERSION for torch $TORCH_VERSION (once; ~12 min on 2 cores)" >&2
  "$PY" -m pip install -q --target "$TOOLS" setuptools==80.9.0 wheel ninja
  # pip reads the sdist's metadata (runs setup.py, which imports pkg_resources) even for a download.
  PYTHONPATH="$PWD/$TOOLS" "$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation \
    -d "$WORK" "mmcv==$MMCV_VERSION"
  tar -xzf "$WORK"/mmcv-$MMCV_VERSION.tar.gz -C "$WORK"
  SRC=$WORK/mmcv-$MMCV_VERSION
  grep -q -- '-std=c++17' "$SRC/setup.py" || { echo "build_mmcv: no -std=c++17 in setup.py to patch" >&2; exit 1; }
  sed -i 's/-std=c++17/-std=c++20/g' "$SRC/setup.py"
  if [ "$MMCV_CUDA" = 1 ]; then cuda_env=(FORCE_CUDA=1); else cuda_env=(FORCE_CUDA=0 CUDA_VISIBLE_DEVICES=); fi
  env PYTHONPATH="$PWD/$TOOLS" PATH="$PWD/$TOOLS/bin:$PATH" MMCV_WITH_OPS=1 MAX_JOBS="$MAX_JOBS" "${cuda_env[@]}" \
    "$PY" -m pip wheel --no-build-isolation --no-deps --no-cache-dir -w "$WORK/dist" "$SRC"
  # Publish the wheel only once it is complete, so an interrupted build is simply redone.
  built=("$WORK"/dist/mmcv-$MMCV_VERSION-*.whl)
  mv "${built[0]}" "$WHEEL_DIR/"
  rm -rf "$WORK"
  wheels=("$WHEEL_DIR"/mmcv-$MMCV_VERSION-*.whl)
  echo "build_mmcv: built ${wheels[0]} ($(du -h "${wheels[0]}" | cut -f1)) in $(( $(date +%s) - start )) s" >&2
else
  echo "build_mmcv: reusing ${wheels[0]}" >&2
fi

start=$(date +%s)
# constraints.txt keeps torch/torchvision as they are; the second file pins the mm* stack and
# setuptools < 81: mmengine 0.10.7 resolves `mmdet::...` config references with pkg_resources.
"$PY" -m pip install -q -c constraints.txt -c "$CONSTRAINTS" "${wheels[0]}" mmengine mmdet setuptools
"$PY" -c 'import mmcv, mmcv.ops, mmdet, mmdet.apis; print("build_mmcv: mmcv", mmcv.__version__, "ops ok; mmdet", mmdet.__version__)' >&2
echo "build_mmcv: installed in $(( $(date +%s) - start )) s" >&2
