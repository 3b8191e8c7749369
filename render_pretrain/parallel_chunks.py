"""Run a differentiable function on row chunks in parallel threads (CPU).

PyTorch parallelises each CPU op over its elements, which scales poorly for
the many small ops of a ray renderer (skinny GEMMs, gathers, sorts, and the
Python between them). Rendering independent ray chunks in concurrent
threads, each op on one core, keeps both cores busy instead: on the 2-core
development machine the MIM4D render step (forward + backward) was a
quarter faster than with two intra-op threads on 2026-12-03 and about 10 %
faster in interleaved runs on 2026-12-04 (after the single-thread ops got
faster); it varies with the machine's load.

:func:`parallel_chunks` is exact: the outputs are the concatenated chunk
outputs and the backward pass is the sum of the chunks' vector-Jacobian
products (each worker sums a fixed share of the chunks in chunk order and
frees their graphs as it goes, then the workers' sums are added in worker
order, so the result does not depend on thread timing). Torch ops release
the GIL, so the threads overlap.

The backward pass also runs the chunks in threads: a custom autograd
function builds each chunk's graph in its forward pass (grad mode on) and
differentiates those graphs with ``torch.autograd.grad`` in its backward
pass. Every tensor that needs a gradient and is used by ``func`` must
therefore be declared: ``inputs`` are handed to ``func`` as detached leaves,
``params`` (e.g. module parameters) are used by ``func`` directly. A tensor
requiring grad that is neither would get no gradient; :func:`parallel_chunks`
checks the chunk graphs and raises instead.

Memory: every op of a ray chunk writes a fresh output of a few MB. With
glibc's defaults each worker thread gets its own arena whose free memory
is returned to the kernel eagerly, and large blocks are mmap-ed and
unmapped one by one, so the workers keep faulting in fresh pages (and
page faults of threads in one process serialise on the process's memory
map lock). :func:`tune_malloc_for_threads`, applied once per process when
the first worker threads start, keeps freed memory in one heap for reuse.
Measured on the 2-core development VM on 2026-12-04 with two threads each
rendering MIM4D chunks: kernel time per chunk 35-52 ms -> 11-16 ms and a
third of the page faults; the whole render step (2 workers) 1.05 / 1.20 /
0.97 / 0.93 s against 1.06 / 1.13 / 1.06 / 1.00 s without, interleaved
(about 4 %, within this VM's run-to-run spread). Set
``RENDER_PRETRAIN_TUNE_MALLOC=0`` to leave malloc alone.
"""
import ctypes
import ctypes.util
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['parallel_chunks', 'tune_malloc_for_threads']

_POOLS = {}

# glibc mallopt parameters (<malloc.h>) and the values set.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MALLOC_SETTINGS = {
    'M_ARENA_MAX': (_M_ARENA_MAX, 1),  # worker threads share the main heap
    'M_MMAP_THRESHOLD': (_M_MMAP_THRESHOLD, 32 << 20),  # glibc's maximum, 32 MB
    'M_TRIM_THRESHOLD': (_M_TRIM_THRESHOLD, 1 << 30),  # keep up to 1 GB of free heap top
}
_MALLOC_TUNED: Optional[bool] = None


def tune_malloc_for_threads() -> bool:
    """Make glibc malloc keep freed memory in one heap (once per process).

    Sets :data:`MALLOC_SETTINGS` with ``mallopt``: one arena for all
    threads, blocks up to 32 MB served from the heap instead of fresh
    mmap-ed pages, and no trimming of the heap top below 1 GB. Freed tensor
    memory is then reused by the next op instead of being returned to the
    kernel and faulted in again; the cost is that the process keeps its
    peak heap (resident memory does not shrink after a large step). The
    settings are process-wide and stay in effect; they change speed only,
    never values. See the module docstring for the measurements.

    Returns:
        bool: Whether the settings are in effect: False off Linux/glibc,
        when ``mallopt`` refused a value, or when the environment variable
        ``RENDER_PRETRAIN_TUNE_MALLOC`` is ``0``.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED is None:
        _MALLOC_TUNED = False
        if os.environ.get('RENDER_PRETRAIN_TUNE_MALLOC', '1') != '0' and sys.platform == 'linux':
            try:
                libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
                mallopt = None
            if mallopt is not None:
                mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
                accepted = [mallopt(param, value) == 1 for param, value in MALLOC_SETTINGS.values()]
                _MALLOC_TUNED = all(accepted)
    return _MALLOC_TUNED


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
        tune_malloc_for_threads()  # before the new threads allocate (M_ARENA_MAX)
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix='parallel_chunks')
    return _POOLS[workers]


def _map(func, items, workers: int) -> list:
    """``[func(item) ...]`` in ``workers`` threads, each op on one core.

    The intra-op thread count is process-wide: it is set to 1 while the
    workers run (the calling thread only waits) and restored afterwards.
    """
    if workers == 1:
        return [func(item) for item in items]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return list(_pool(workers).map(func, items))
    finally:
        torch.set_num_threads(threads)


def _graph_leaves(outputs: Sequence[Tensor]) -> List[Tensor]:
    """Leaf tensors (requiring grad) that ``outputs`` depend on."""
    leaves, seen = [], set()
    stack = [t.grad_fn for t in outputs if t.grad_fn is not None]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if hasattr(node, 'variable'):
            leaves.append(node.variable)
        stack.extend(fn for fn, _ in node.next_functions)
    return leaves


def _accumulate(totals: list, grads: Sequence[Optional[Tensor]], copy: bool) -> None:
    """``totals[k] += grads[k]`` in place (the first gradient is cloned if ``copy``:
    autograd may hand back a tensor that other code still reads)."""
    for k, grad in enumerate(grads):
        if grad is not None:
            if totals[k] is None:
                totals[k] = grad.clone() if copy else grad
            else:
                totals[k].add_(grad)


class _ParallelChunks(torch.autograd.Function):

    @staticmethod
    def forward(ctx, func, slices, workers, num_inputs, *tensors):
        inputs, params = tensors[:num_inputs], tensors[num_inputs:]
        leaves = tuple(t.detach().requires_grad_(t.requires_grad) for t in inputs)

        def run(chunk):
            with torch.enable_grad():
                outs = func(chunk, *leaves)
            if isinstance(outs, Tensor):
                outs = (outs, )
            return tuple(outs)

        chunk_outs = _map(run, slices, workers)
        allowed = {id(t) for t in leaves + tuple(params)}
        for outs in chunk_outs[:1]:
            stray = [t for t in _graph_leaves(outs) if id(t) not in allowed]
            if stray:
                raise ValueError(f'parallel_chunks: func uses {len(stray)} tensor(s) requiring '
                                 f'grad (shapes {[tuple(t.shape) for t in stray][:4]}) that are '
                                 f'neither inputs nor params; declare them in params')
        ctx.chunk_outs, ctx.leaves, ctx.params, ctx.workers = chunk_outs, leaves, params, workers
        ctx.sizes = [outs[0].shape[0] for outs in chunk_outs]
        return tuple(torch.cat([outs[k] for outs in chunk_outs]).detach()
                     for k in range(len(chunk_outs[0])))

    @staticmethod
    def backward(ctx, *grads):
        targets = [t for t in ctx.leaves + tuple(ctx.params) if t.requires_grad]
        split = [None if g is None else g.split(ctx.sizes) for g in grads]

        def vjp(index):
            outs = ctx.chunk_outs[index]
            pairs = [(out, g[index]) for out, g in zip(outs, split)
                     if g is not None and out.requires_grad]
            if not pairs or not targets:
                return [None] * len(targets)
            return torch.autograd.grad([p[0] for p in pairs], targets, [p[1] for p in pairs],
                                       allow_unused=True)

        num_chunks = len(ctx.chunk_outs)
        workers = min(ctx.workers, num_chunks)

        def worker_sum(first):
            # A fixed share of the chunks (first, first + workers, ...) summed in chunk
            # order in the worker, then the workers' sums in worker order: the result
            # does not depend on thread timing, and the main thread adds only
            # ``workers`` partial sums.
            totals = [None] * len(targets)
            for index in range(first, num_chunks, workers):
                _accumulate(totals, vjp(index), copy=True)
                ctx.chunk_outs[index] = None  # free the chunk's graph
            return totals

        summed = [None] * len(targets)
        for partial in _map(worker_sum, range(workers), workers):
            _accumulate(summed, partial, copy=False)
        ctx.chunk_outs = None
        by_id = {id(t): g for t, g in zip(targets, summed)}
        tensor_grads = [by_id.get(id(t)) for t in ctx.leaves + tuple(ctx.params)]
        return (None, None, None, None, *tensor_grads)


def parallel_chunks(func: Callable[..., Tuple[Tensor, ...]],
                    num_rows: int,
                    chunk_size: int,
                    inputs: Sequence[Tensor] = (),
                    params: Sequence[Tensor] = (),
                    workers: int = 2) -> Tuple[Tensor, ...]:
    """``func`` on consecutive row chunks, in ``workers`` threads, outputs concatenated.

    Args:
        func (Callable): ``func(rows: slice, *inputs) -> tuple of tensors``,
            each with the chunk's rows along dim 0 (e.g. per-ray outputs).
        num_rows (int): Total rows (e.g. rays).
        chunk_size (int): Rows per chunk (> 0).
        inputs (Sequence[Tensor]): Passed to ``func`` as detached leaves
            (shared by all chunks); they receive the summed gradients.
        params (Sequence[Tensor]): Tensors ``func`` uses directly that need
            gradients (module parameters).
        workers (int): Threads; 1 runs the chunks one after the other.

    Returns:
        tuple[Tensor, ...]: The concatenated outputs, differentiable w.r.t.
        ``inputs`` and ``params``.
    """
    if num_rows <= 0 or chunk_size <= 0 or workers < 1:
        raise ValueError(f'need num_rows > 0, chunk_size > 0 and workers >= 1, got '
                         f'{num_rows}, {chunk_size}, {workers}')
    slices = [slice(start, min(start + chunk_size, num_rows))
              for start in range(0, num_rows, chunk_size)]
    params = [p for p in params if p.requires_grad]
    return _ParallelChunks.apply(func, slices, int(workers), len(inputs), *inputs, *params)
