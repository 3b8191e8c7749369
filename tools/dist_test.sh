#!/usr/bin/env bash
# Usage: tools/dist_test.sh CONFIG CHECKPOINT NUM_PROCS [test.py args...]
# Interpreter, PYTHONPATH and launcher: tools/utils/launch_env.sh.
set -euo pipefail
source "$(dirname "$0")/utils/launch_env.sh"
dist_run test.py "$3" "$1" "$2" --launcher pytorch "${@:4}"
