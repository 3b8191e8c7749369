#!/usr/bin/env bash
# Usage: tools/dist_train.sh CONFIG NUM_PROCS [train.py args...]
# One process per GPU (nccl); on a CPU-only machine the processes use gloo.
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT.
# Interpreter, PYTHONPATH and launcher: tools/utils/launch_env.sh.
set -euo pipefail
source "$(dirname "$0")/utils/launch_env.sh"
dist_run train.py "$2" "$1" --launcher pytorch "${@:3}"
