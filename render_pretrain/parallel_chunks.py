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
products (summed in chunk order, so the result does not depend on thread
timing). Torch ops release the GIL, so the threads overlap.

The backward pass also runs the chunks in threads: a custom autograd
function builds each chunk's graph in its forward pass (grad mode on) and
differentiates those graphs with ``torch.autograd.grad`` in its backward
pass. Every tensor that needs a gradient and is used by ``func`` must
therefore be declared: ``inputs`` are handed to ``func`` as detached leaves,
``params`` (e.g. module parameters) are used by ``func`` directly. A tensor
requiring grad that is neither would get no gradient; :func:`parallel_chunks`
checks the chunk graphs and raises instead.
"""
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Sequence, Tuple

import torch
from torch import Tensor

__all__ = ['parallel_chunks']

_POOLS = {}


def _pool(workers: int) -> ThreadPoolExecutor:
    if workers not in _POOLS:
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

        indices = range(len(ctx.chunk_outs))
        results = _map(vjp, indices, ctx.workers)
        ctx.chunk_outs = None  # free the chunk graphs
        summed = []
        for k in range(len(targets)):
            total = None
            for result in results:  # chunk order: independent of thread timing
                if result[k] is not None:
                    total = result[k].clone() if total is None else total.add_(result[k])
            summed.append(total)
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
