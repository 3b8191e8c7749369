"""Benchmark BEV pooling: ``index_add_`` vs LSS's sort-and-cumsum trick (pure PyTorch).

Frustum features of B x N_cam cameras x D bins x h x w pixels x C channels
(paper scale: 6 x 118 x 32 x 88 points x 80 channels) are pooled into
BEVFusion's 360 x 360 x 1 grid (0.3 m over +-54 m, z in [-10, 10] m).
Positions come from a ring of N_cam synthetic cameras through
:func:`render_pretrain.camera_geometry.frustum_to_lidar`, so the point
distribution is that of a real LSS frustum. Prints one JSON line per
pass (forward, forward + backward) with both methods' median wall times
(seconds), the speed-up of ``index_add_`` over sort-and-cumsum and the
largest difference of their outputs (also relative to the largest output:
float32 sums in another order); the target is a speed-up of at least
2 (``TARGET_SPEEDUP``). The record carries the fields
``tools/benchmarks/report.py`` renders (``workload``, ``figures``,
``target``, ``target_met``).

Usage:
    python tools/benchmarks/bev_pooling.py [--channels 80] [--batch 1] [--repeats 3]
"""
import argparse
import json
import math
import statistics
import time

import torch

from render_pretrain.camera_geometry import create_frustum, frustum_to_lidar
from render_pretrain.voxel_pooling import pool_frustum_to_grid

GRID_LOWER = (-54.0, -54.0, -10.0)
VOXEL_SIZE = (0.3, 0.3, 20.0)
GRID_SHAPE = (360, 360, 1)
#: ``index_add_`` pooling is at least this many times faster than sort-and-cumsum.
TARGET_SPEEDUP = 2.0


def ring_cameras(batch, cams, image_size):
    """(B, N, 3, 3) intrinsics and (B, N, 4, 4) cam2lidar of cameras looking outwards."""
    img_h, img_w = image_size
    focal = 0.8 * img_w
    k = torch.tensor([[focal, 0, img_w / 2], [0, focal, img_h / 2], [0, 0, 1.0]])
    poses = []
    for n in range(cams):
        yaw = 2 * math.pi * n / cams
        fwd = torch.tensor([math.cos(yaw), math.sin(yaw), 0.0])
        right = torch.tensor([math.sin(yaw), -math.cos(yaw), 0.0])
        down = torch.tensor([0.0, 0.0, -1.0])
        pose = torch.eye(4)
        pose[:3, :3] = torch.stack([right, down, fwd], dim=1)  # camera x, y, z axes in lidar
        pose[:3, 3] = torch.tensor([0.0, 0.0, 1.6])
        poses.append(pose)
    return k.expand(batch, cams, 3, 3), torch.stack(poses).expand(batch, cams, 4, 4)


def pool_sort_cumsum(feats, geometry):
    """LSS (Philion & Fidler 2020) voxel pooling: sort by rank, cumsum, take boundaries.

    Returns (B, C, Z, X, Y) like BEVFusion's ``bev_pool``.
    """
    batch, num_c = feats.shape[0], feats.shape[-1]
    x = feats.reshape(-1, num_c)
    lower = torch.tensor(GRID_LOWER)
    size = torch.tensor(VOXEL_SIZE)
    coords = torch.floor((geometry.reshape(-1, 3) - lower) / size).long()
    bidx = torch.arange(batch).repeat_interleave(x.shape[0] // batch)
    num_x, num_y, num_z = GRID_SHAPE
    kept = ((coords >= 0) & (coords < torch.tensor(GRID_SHAPE))).all(1)
    x, coords, bidx = x[kept], coords[kept], bidx[kept]
    ranks = ((bidx * num_x + coords[:, 0]) * num_y + coords[:, 1]) * num_z + coords[:, 2]
    order = ranks.argsort()
    x, coords, bidx, ranks = x[order], coords[order], bidx[order], ranks[order]
    x = x.cumsum(0)
    last = torch.ones_like(ranks, dtype=torch.bool)
    last[:-1] = ranks[1:] != ranks[:-1]
    x, coords, bidx = x[last], coords[last], bidx[last]
    x = torch.cat((x[:1], x[1:] - x[:-1]))
    out = x.new_zeros(batch, num_z, num_x, num_y, num_c)
    out[bidx, coords[:, 2], coords[:, 0], coords[:, 1]] = x
    return out.permute(0, 4, 1, 2, 3)


def pool_index_add(feats, geometry):
    return pool_frustum_to_grid(feats, geometry, GRID_LOWER, VOXEL_SIZE, GRID_SHAPE,
                                bev_axes='xy')


def timed(fn, feats, geometry, backward, repeats):
    times, out = [], None
    for _ in range(repeats + 1):  # the first run is a warm-up
        x = feats.detach().requires_grad_(backward)
        start = time.perf_counter()
        out = fn(x, geometry)
        if backward:
            out.sum().backward()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), out.detach()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--batch', type=int, default=1)
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--channels', type=int, default=80)
    parser.add_argument('--image-size', type=int, nargs=2, default=[256, 704])
    parser.add_argument('--feature-size', type=int, nargs=2, default=[32, 88])
    parser.add_argument('--depth-bins', type=float, nargs=3, default=[1.0, 60.0, 0.5])
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--threads', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    frustum = create_frustum(args.image_size, args.feature_size, args.depth_bins)
    k, cam2lidar = ring_cameras(args.batch, args.cams, args.image_size)
    geometry = frustum_to_lidar(frustum, k, cam2lidar)
    gen = torch.Generator().manual_seed(0)
    feats = torch.rand(geometry.shape[:-1] + (args.channels, ), generator=gen)
    num_points = feats.numel() // args.channels
    common = dict(benchmark='bev_pooling',
                  title="BEV pooling: index_add_ vs LSS's sort-and-cumsum",
                  batch=args.batch, cams=args.cams,
                  points=num_points, channels=args.channels,
                  frustum=[frustum.shape[0]] + list(args.feature_size),
                  grid_xyz=list(GRID_SHAPE), threads=args.threads, repeats=args.repeats)
    for backward in (False, True):
        passes = 'forward+backward' if backward else 'forward'
        seconds, outs = {}, {}
        for name, fn in (('lss_sort_cumsum', pool_sort_cumsum), ('index_add', pool_index_add)):
            seconds[name], outs[name] = timed(fn, feats, geometry, backward, args.repeats)
        speedup = round(seconds['lss_sort_cumsum'] / seconds['index_add'], 2)
        max_abs_diff = float((outs['lss_sort_cumsum'] - outs['index_add']).abs().max())
        max_abs_value = float(outs['index_add'].abs().max())
        workload = (f'{num_points / 1e6:.2f} M frustum points ({args.batch} x {args.cams} cams '
                    f'x {frustum.shape[0]} bins x {args.feature_size[0]}x{args.feature_size[1]})'
                    f' x {args.channels} ch into {GRID_SHAPE[0]}x{GRID_SHAPE[1]}, {passes}, '
                    f'{args.threads} thread(s), median of {args.repeats}')
        print(json.dumps(dict(
            common, passes=passes, workload=workload,
            seconds={name: round(value, 4) for name, value in seconds.items()},
            points_per_s=round(num_points / seconds['index_add']), speedup=speedup,
            max_abs_diff=max_abs_diff, max_abs_value=max_abs_value,
            figures=[
                dict(name='index_add_', value=seconds['index_add'], unit='s'),
                dict(name='sort-and-cumsum', value=seconds['lss_sort_cumsum'], unit='s'),
                dict(name='speed-up', value=speedup, unit='x'),
                dict(name='max abs. difference / max abs. output',
                     value=max_abs_diff / max_abs_value, unit='')],
            target=dict(figure='speed-up', op='>=', limit=TARGET_SPEEDUP),
            target_met=speedup >= TARGET_SPEEDUP)))


if __name__ == '__main__':
    main()
