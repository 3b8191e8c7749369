"""Benchmark the MIM4D temporal predictor's two attention forms (forward + backward).

:class:`projects.MIM4D.mim4d.MIM4DTemporalPredictor` predicts the target
volume from F warped context volumes (B, F, C, Z, Y, X); paper scale is
C = 32 channels on the 5 x 180 x 180 (Z, Y, X) grid with 2 context frames,
2 layers and 4 heads. ``attention='deformable'`` (paper config, MIM4D's
form) samples ``num_points`` learned offsets per head and frame with
``F.grid_sample``; ``attention='window'`` (tiny config) attends to a 3 x 3
window of the nearest frame and to the same voxel in all frames with
``nn.MultiheadAttention``. One step is the predictor's forward and the
backward of the mean squared output, timed after one warm-up step; a
quarter of the context voxels are invalid (outside the warped grid).

Prints one JSON line per attention form, with the fields
``tools/benchmarks/report.py`` renders (``workload``, ``figures``,
``target`` = None: no target on the CPU, users train on GPUs)::

    python tools/benchmarks/temporal_predictor.py [--threads 2] [--grid 5 180 180]
"""
import argparse
import json
import statistics
import time

import torch

from projects.MIM4D.mim4d import MIM4DTemporalPredictor


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--attention', nargs='+', default=['deformable', 'window'],
                        choices=['deformable', 'window'])
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--grid', type=int, nargs=3, default=(5, 180, 180),
                        metavar=('Z', 'Y', 'X'))
    parser.add_argument('--frames', type=int, default=2, help='context frames')
    parser.add_argument('--layers', type=int, default=2)
    parser.add_argument('--heads', type=int, default=4)
    parser.add_argument('--steps', type=int, default=2, help='timed steps (after one warm-up)')
    parser.add_argument('--threads', type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    shape = (1, args.frames, args.channels, *args.grid)
    context = torch.randn(shape, generator=gen)
    valid = torch.rand((1, args.frames, *args.grid), generator=gen) > 0.25
    time_offsets = -0.5 * torch.arange(1, args.frames + 1, dtype=torch.float32)[None]
    for attention in args.attention:
        torch.manual_seed(0)
        predictor = MIM4DTemporalPredictor(args.channels, num_layers=args.layers,
                                           num_heads=args.heads, attention=attention)
        walls, cpus = [], []
        for _ in range(args.steps + 1):
            volumes = context.detach().requires_grad_()
            wall, cpu = time.perf_counter(), time.process_time()
            predictor(volumes, valid, time_offsets).square().mean().backward()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        step, cpu = statistics.median(walls[1:]), statistics.median(cpus[1:])
        voxels = torch.Size(args.grid).numel()
        print(json.dumps(dict(
            benchmark='mim4d_temporal_predictor',
            title='MIM4D temporal predictor: deformable vs window attention, one step',
            attention=attention, context=list(shape), layers=args.layers, heads=args.heads,
            threads=args.threads, steps=args.steps, step_s=round(step, 4),
            process_cpu_s=round(cpu, 3),
            workload=(f'attention={attention!r}: {args.frames} context frames x '
                      f'{args.channels} x {" x ".join(map(str, args.grid))} (C x Z x Y x X), '
                      f'{args.layers} layers, {args.heads} heads, forward+backward, '
                      f'{args.threads} thread(s), median of {args.steps} steps'),
            figures=[dict(name='step', value=step, unit='s'),
                     dict(name='process CPU per step', value=cpu, unit='s'),
                     dict(name='throughput', value=voxels / step / 1e3, unit='k voxels/s')],
            target=None, target_met=None)), flush=True)


if __name__ == '__main__':
    main()
