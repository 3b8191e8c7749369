"""Benchmark NS-MAE perspective rendering (forward + backward) against a bin loop.

Renders B x N_cam images of h x w rays through D depth bins (paper scale:
6 cameras x 32 x 88 rays x 118 bins) with
:func:`render_pretrain.volume_rendering.render_depth_bins` in the image
layout the rendering conv produces (density (B*N, D, h, w), colour
(B*N, D, 3, h, w)), and with a naive reference that loops over the bins in
Python. Prints one JSON line per batch size with both methods' median wall
times of forward + backward (seconds), samples/s (rays * bins / s) of
``render_depth_bins``, its speed-up over the loop and the largest gradient
difference; the target is to be no slower than the loop (speed-up >= 1,
``TARGET_SPEEDUP``). The record carries the fields
``tools/benchmarks/report.py`` renders (``workload``, ``figures``,
``target``, ``target_met``).

Usage:
    python tools/benchmarks/nsmae_rendering.py [--batch 1 2] [--repeats 5]
"""
import argparse
import json
import statistics
import time

import torch

from render_pretrain.volume_rendering import render_depth_bins, split_density_color

#: ``render_depth_bins`` is at least as fast as the per-bin loop.
TARGET_SPEEDUP = 1.0


def render_naive(density, color, bin_depths, far=1e10):
    """Reference: front-to-back compositing with a Python loop over the bins."""
    trans = torch.ones_like(density[:, 0])
    rgb = torch.zeros_like(color[:, 0])
    depth = torch.zeros_like(density[:, 0])
    num_bins = density.shape[1]
    for i in range(num_bins):
        delta = (bin_depths[i + 1] - bin_depths[i]) if i + 1 < num_bins else far
        alpha = 1 - torch.exp(-torch.relu(density[:, i]) * delta)
        weight = trans * alpha
        rgb = rgb + weight.unsqueeze(1) * color[:, i]
        depth = depth + weight * bin_depths[i]
        trans = trans * (1 - alpha)
    return rgb, depth


def render_ours(density, color, bin_depths):
    out = render_depth_bins(density, color, bin_depths, bin_dim=1)
    return out['rgb'], out['depth']


def time_fwd_bwd(fn, feats, num_bins, bin_depths, repeats):
    times = []
    for _ in range(repeats + 1):  # first run is a warm-up
        x = feats.detach().requires_grad_()
        start = time.perf_counter()
        density, color = split_density_color(x, num_bins)
        rgb, depth = fn(density, color, bin_depths)
        (rgb.square().mean() + depth.mean()).backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), x.grad


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, nargs='+', default=[1, 2])
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--feature-size', type=int, nargs=2, default=[32, 88])
    parser.add_argument('--depth-bins', type=float, nargs=3, default=[1.0, 60.0, 0.5])
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    bin_depths = torch.arange(*args.depth_bins)
    num_bins = bin_depths.numel()
    h, w = args.feature_size
    gen = torch.Generator().manual_seed(0)
    for batch in args.batch:
        rays = batch * args.cams
        feats = torch.randn(rays, num_bins * 4, h, w, generator=gen)
        seconds, grads = {}, {}
        for name, fn in (('naive_bin_loop', render_naive), ('render_depth_bins', render_ours)):
            seconds[name], grads[name] = time_fwd_bwd(fn, feats, num_bins, bin_depths,
                                                      args.repeats)
        samples = rays * h * w * num_bins
        speedup = round(seconds['naive_bin_loop'] / seconds['render_depth_bins'], 2)
        max_abs_grad_diff = float((grads['render_depth_bins']
                                   - grads['naive_bin_loop']).abs().max())
        workload = (f'batch {batch} x {args.cams} cams x {h}x{w} rays x {num_bins} bins, '
                    f'forward+backward, {args.threads} thread(s), median of {args.repeats}')
        print(json.dumps(dict(
            benchmark='nsmae_perspective_rendering',
            title='NS-MAE perspective rendering: render_depth_bins vs a per-bin loop',
            batch=batch, cams=args.cams, feature_size=[h, w], bins=num_bins,
            threads=args.threads, repeats=args.repeats, passes='forward+backward',
            workload=workload,
            seconds={name: round(value, 5) for name, value in seconds.items()},
            samples_per_s=round(samples / seconds['render_depth_bins']),
            rays_per_s=round(rays * h * w / seconds['render_depth_bins']),
            speedup=speedup, max_abs_grad_diff=max_abs_grad_diff,
            figures=[
                dict(name='render_depth_bins', value=seconds['render_depth_bins'], unit='s'),
                dict(name='bin loop', value=seconds['naive_bin_loop'], unit='s'),
                dict(name='throughput', value=samples / seconds['render_depth_bins'] / 1e6,
                     unit='M samples/s'),
                dict(name='speed-up', value=speedup, unit='x'),
                dict(name='max abs. gradient difference', value=max_abs_grad_diff, unit='')],
            target=dict(figure='speed-up', op='>=', limit=TARGET_SPEEDUP),
            target_met=speedup >= TARGET_SPEEDUP)))


if __name__ == '__main__':
    main()
