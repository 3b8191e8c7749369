#!/usr/bin/env bash
# Install the full stack into an isolated virtual environment, in the order
# the OpenMMLab packages need (torch before mmcv's source build, mmcv before
# mmdet/mmdet3d), then this repository in develop mode with its test extras.
#
# Environment overrides:
#   VENV          where the environment lives            (default: .venv)
#   PYTHON        interpreter used to create it          (default: python3)
#   TORCH_SPEC    torch requirement, e.g. for CUDA users (default: torch==2.13.0)
#   TORCH_INDEX   extra index URL for torch (e.g. https://download.pytorch.org/whl/cu121)
#   SHARED_DIR    folder whose wheels/ holds prebuilt wheels (default: ../shared)
#   MMCV_SPEC     mmcv requirement                       (default: mmcv==2.1.0)
#   SPCONV_SPEC   spconv requirement (spconv-cu121 on GPU)(default: spconv==2.3.8)
set -euo pipefail

cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
MMCV_SPEC=${MMCV_SPEC:-mmcv==2.1.0}
SPCONV_SPEC=${SPCONV_SPEC:-spconv==2.3.8}
SHARED_DIR=${SHARED_DIR:-../shared}

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  step "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install --disable-pip-version-check)

have() {  # have DIST VERSION -> exit 0 when DIST==VERSION is installed
  "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import sys
from importlib.metadata import version
sys.exit(0 if version(sys.argv[1]) == sys.argv[2] else 1)
PYEOF
}

step "torch ($TORCH_SPEC)"
if ! "$PY" -c "import torch" 2>/dev/null; then
  if [ -n "${TORCH_INDEX:-}" ]; then
    "${PIP[@]}" "$TORCH_SPEC" --extra-index-url "$TORCH_INDEX"
  else
    "${PIP[@]}" "$TORCH_SPEC"
  fi
fi

step "mmengine 0.10.7"
have mmengine 0.10.7 || "${PIP[@]}" mmengine==0.10.7

step "$MMCV_SPEC with ops (source build unless a matching wheel is cached or in $SHARED_DIR/wheels)"
if ! "$PY" -c "import mmcv.ops" 2>/dev/null; then
  FIND_LINKS=()
  if [ -d "$SHARED_DIR/wheels" ]; then
    FIND_LINKS=(--find-links "$SHARED_DIR/wheels")
    echo "using prebuilt wheels from $SHARED_DIR/wheels when they match"
  else
    echo "no $SHARED_DIR/wheels: building mmcv from source (about 50 min on 2 cores; pip caches the wheel)"
  fi
  # mmcv 2.1.0's setup.py needs an old setuptools (pkg_resources, <70) to build.
  "${PIP[@]}" "setuptools==69.5.1" wheel
  MMCV_WITH_OPS=1 "${PIP[@]}" --no-build-isolation "${FIND_LINKS[@]}" "$MMCV_SPEC"
fi

step "mmdet 3.3.0, mmdet3d 1.4.0, $SPCONV_SPEC, nuscenes-devkit"
have mmdet 3.3.0 || "${PIP[@]}" mmdet==3.3.0
have mmdet3d 1.4.0 || "${PIP[@]}" mmdet3d==1.4.0
"$PY" -c "import spconv" 2>/dev/null || "${PIP[@]}" "$SPCONV_SPEC"
"$PY" -c "import nuscenes" 2>/dev/null || "${PIP[@]}" "nuscenes-devkit>=1.2.0,<1.3"

# torch needs setuptools>=77.0.3; mmengine imports pkg_resources (gone in 81).
step "setuptools 80.9.0 (pkg_resources for mmengine, >=77.0.3 for torch)"
have setuptools 80.9.0 || "${PIP[@]}" "setuptools==80.9.0"

step "this repository (develop mode, test extras)"
"${PIP[@]}" --no-build-isolation -e ".[tests]"

step "done: $("$PY" -c 'import torch, mmcv, mmdet, mmdet3d, mmengine; print(f"torch {torch.__version__}, mmengine {mmengine.__version__}, mmcv {mmcv.__version__}, mmdet {mmdet.__version__}, mmdet3d {mmdet3d.__version__}")')"
