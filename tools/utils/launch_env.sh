# Shared by tools/dist_train.sh, tools/dist_test.sh and tools/slurm_train.sh (sourced; bash).
# ROOT: the repository (the folder above the calling script's tools/), first on PYTHONPATH.
# PYTHON: $PYTHON, else the active environment's interpreter; never the repository's .venv
# behind the user's back: PYTHON=.venv/bin/python tools/dist_train.sh ... for that one.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON=${PYTHON:-$(command -v python || command -v python3 || true)}
[ -n "$PYTHON" ] || { echo "no python on PATH: activate an environment or set PYTHON" >&2; exit 1; }
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"

# dist_run SCRIPT NUM_PROCS [ARGS...]: run tools/SCRIPT ARGS in NUM_PROCS processes per node
# with torch.distributed.run (one per GPU, nccl; on a CPU-only machine gloo).
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR, PORT.
dist_run() {
    local script=$1 nproc=$2
    shift 2
    "$PYTHON" -m torch.distributed.run \
        --nnodes="${NNODES:-1}" \
        --node_rank="${NODE_RANK:-0}" \
        --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --nproc_per_node="$nproc" \
        --master_port="${PORT:-29500}" \
        "$ROOT/tools/$script" "$@"
}
