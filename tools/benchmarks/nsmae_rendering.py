"""Benchmark NS-MAE perspective rendering (forward + backward) against a bin loop.

Renders B x N_cam images of h x w rays through D depth bins (paper scale:
6 cameras x 32 x 88 rays x 118 bins) with
:func:`render_pretrain.volume_rendering.render_depth_bins` in the image
layout the rendering conv produces (density (B*N, D, h, w), colour
(B*N, D, 3, h, w)), and with a naive reference that loops over the bins in
Python. Prints one JSON line per measurement (samples/s = rays * bins / s).

Usage:
    python tools/benchmarks/nsmae_rendering.py [--batch 1 2] [--repeats 5]
"""
import argparse
import json
import statistics
import time

import torch

from render_pretrain.volume_rendering import render_depth_bins, split_density_color


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
        results = {}
        for name, fn in (('naive_bin_loop', render_naive), ('render_depth_bins', render_ours)):
            seconds, grad = time_fwd_bwd(fn, feats, num_bins, bin_depths, args.repeats)
            results[name] = (seconds, grad)
            samples = rays * h * w * num_bins
            print(json.dumps(dict(
                benchmark='nsmae_perspective_rendering', method=name, batch=batch,
                cams=args.cams, feature_size=[h, w], bins=num_bins, threads=args.threads,
                passes='forward+backward', seconds=round(seconds, 5),
                samples_per_s=round(samples / seconds), rays_per_s=round(rays * h * w / seconds))))
        ours, naive = results['render_depth_bins'], results['naive_bin_loop']
        print(json.dumps(dict(
            benchmark='nsmae_perspective_rendering', method='speedup_vs_naive', batch=batch,
            speedup=round(naive[0] / ours[0], 3),
            max_abs_grad_diff=float((ours[1] - naive[1]).abs().max()))))


if __name__ == '__main__':
    main()
