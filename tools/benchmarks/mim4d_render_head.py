"""Benchmark the MIM4D NeuS render head: rays/s for forward + backward.

One training step of the render head as MIM4D runs it: rays from LiDAR
points and ground pixels of N_cam cameras, AABB collider, 72 uniform + 24
importance samples (NeuS up-sampling), an :class:`SDFField` decoding a
C-channel (Z, Y, X) feature volume with a differentiable (analytic) SDF
gradient, loss ``10 L1(rgb) + 10 L1(depth) + 0.1 eikonal`` and its
backward. Rays can be processed in chunks (forward + backward per
chunk, gradients accumulated) to bound memory; the volume is projected by
the MLPs' first layers once per step (``SDFField.project_volume``) and the
chunks' gradients w.r.t. those tables are back-propagated through the
projection once at the end.

``render_step_s`` is the median wall time of the render forward + backward
(excluding ray generation), ``render_step_min_s`` the fastest step (on a
shared machine, the closest to the code's own cost: other processes only
add), ``process_cpu_s`` the CPU time of the whole step summed over threads,
and ``load_avg_1m`` the machine's load when it ended, to judge how much
the numbers suffer from other processes. With 2 threads on a machine
shared with other jobs, set ``OMP_WAIT_POLICY=PASSIVE``: busy waiting
OpenMP threads otherwise slow the step several-fold.

By default the ray chunks are rendered in as many worker threads as torch
has threads (``--workers``, :func:`render_pretrain.parallel_chunks.parallel_chunks`,
the render head's ``ray_workers``): on the 2-core development VM that was
5-25 % faster than one chunk at a time with 2 intra-op threads
(``--workers 1``) in runs on 2026-12-03/04, 32 % on 2026-12-05. The workers switch glibc malloc
to one heap that keeps freed memory
(:func:`render_pretrain.parallel_chunks.tune_malloc_for_threads`, reported
as ``malloc_tuned``; ``RENDER_PRETRAIN_TUNE_MALLOC=0`` to compare): that
cuts the workers' page faults and kernel time, about 4 % of the step in
interleaved runs on 2026-12-04.
The step is then bound by memory traffic (a chunk's (P, 16) tensors do
not stay in cache between its forward and backward passes, so most
element-wise ops and GEMMs run at DRAM speed) and by the exponentials /
logarithms of the Softplus layers (about a tenth of a chunk's time);
``torch.compile`` of the MLP, smaller chunks (256 / 512 rays) and flushing
denormals gave no gain on CPU.

Prints one JSON line per measurement, e.g.::

    python tools/benchmarks/mim4d_render_head.py --threads 2
"""
import argparse
import json
import math
import os
import time

import torch

from render_pretrain.parallel_chunks import parallel_chunks, tune_malloc_for_threads
from render_pretrain.ray_generation import sample_camera_rays
from render_pretrain.ray_sampling import intersect_rays_aabb
from render_pretrain.reconstruction_losses import masked_l1
from render_pretrain.sdf_field import SDFField
from render_pretrain.sdf_rendering import eikonal_loss, render_neus

AABB = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--rays-per-cam', type=int, default=1024)
    parser.add_argument('--uniform', type=int, default=72)
    parser.add_argument('--importance', type=int, default=24)
    parser.add_argument('--upsample-steps', type=int, default=1)
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--grid', type=int, nargs=3, default=(5, 180, 180), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--chunk', type=int, default=1024, help='rays per chunk (0: all at once)')
    parser.add_argument('--field-chunk-samples', type=int, default=131072,
                        help='SDFField chunk_samples (0: one pass)')
    parser.add_argument('--steps', type=int, default=3, help='timed steps (after one warm-up)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
    parser.add_argument('--workers', type=int, default=0,
                        help='render ray chunks in this many threads (parallel_chunks), '
                        'each op single-threaded; 1: chunks in sequence with intra-op '
                        'threads; 0 (default): the torch thread count')
    return parser.parse_args()


def make_rig(num_cams: int, image_size=(450, 800)):
    """lidar2img (1, N_cam, 4, 4) of cameras around the ego, 1.6 m high."""
    yaws = torch.arange(num_cams, dtype=torch.float32) * (2 * math.pi / num_cams)
    forward = torch.stack([yaws.cos(), yaws.sin(), torch.zeros_like(yaws)], -1)
    right = torch.stack([yaws.sin(), -yaws.cos(), torch.zeros_like(yaws)], -1)
    down = torch.tensor([0., 0., -1.]).expand(num_cams, 3)
    rot = torch.stack([right, down, forward], 1)
    lidar2cam = torch.eye(4).repeat(num_cams, 1, 1)
    lidar2cam[:, :3, :3] = rot
    lidar2cam[:, :3, 3] = -(rot @ torch.tensor([0., 0., 1.6]))
    cam2img = torch.eye(4)
    cam2img[:3, :3] = torch.tensor([[630., 0., image_size[1] / 2], [0., 630., image_size[0] / 2],
                                    [0., 0., 1.]])
    return (cam2img @ lidar2cam)[None]


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.workers <= 0:
        args.workers = torch.get_num_threads()
    gen = torch.Generator().manual_seed(0)
    image_size = (450, 800)
    lidar2img = make_rig(args.cams, image_size)
    # LiDAR-like cloud: a ground plane ring plus some walls.
    num_pts = 30000
    radius = torch.rand(num_pts, generator=gen) * 50 + 2
    angle = torch.rand(num_pts, generator=gen) * 2 * math.pi
    height = torch.where(torch.rand(num_pts, generator=gen) < 0.7, torch.zeros(num_pts),
                         torch.rand(num_pts, generator=gen) * 3)
    points = torch.stack([radius * angle.cos(), radius * angle.sin(), height], -1)

    field = SDFField(args.channels, AABB, chunk_samples=args.field_chunk_samples)
    volume = torch.randn(1, args.channels, *args.grid, generator=gen).requires_grad_()
    aabb = torch.tensor(AABB)

    def render_parallel(rays, near, far, valid, target_rgb, tables, chunk):
        # Ray chunks in worker threads (render_pretrain.parallel_chunks), one
        # loss over all rays, one backward pass (the chunks' in parallel).
        seeds = torch.randint(2**62, (math.ceil(near.shape[0] / chunk), ), generator=gen).tolist()

        def render_rows(rows, sdf_table, feature_table):
            chunk_gen = torch.Generator().manual_seed(seeds[rows.start // chunk])
            sdf_fn, field_fn = field.callbacks(volume.detach(), rays.batch_idx[rows],
                                               tables=(sdf_table, feature_table))
            out = render_neus(rays.origins[rows], rays.directions[rows], near[rows], far[rows],
                              field_fn, field.inv_s(), sdf_fn, args.uniform, args.importance,
                              args.upsample_steps, jitter=True, generator=chunk_gen,
                              valid=valid[rows])
            return out['rgb'], out['depth'], out['gradients']

        rgb, depth, gradients = parallel_chunks(render_rows, near.shape[0], chunk, tables,
                                                field.parameters(), args.workers)
        loss = (10 * masked_l1(rgb, target_rgb, valid[:, None])
                + 10 * masked_l1(depth, rays.depth, rays.has_depth & valid)
                + 0.1 * eikonal_loss(gradients, valid[:, None]))
        loss.backward()

    def step():
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        rays = sample_camera_rays(points, lidar2img, image_size, args.rays_per_cam, gen,
                                  lidar_fraction=0.5, horizon_fraction=0.45)
        near, far, valid = intersect_rays_aabb(rays.origins, rays.directions, aabb)
        t1 = time.perf_counter()
        num_rays = rays.origins.shape[0]
        chunk = args.chunk or num_rays
        target_rgb = torch.rand(num_rays, 3, generator=gen)
        tables = field.project_volume(volume)
        if args.workers > 1:
            render_parallel(rays, near, far, valid, target_rgb, tables, chunk)
            t2 = time.perf_counter()
            return num_rays, t1 - t0, t2 - t1, time.process_time() - cpu0
        leaves = tuple(table.detach().requires_grad_() for table in tables)
        for start in range(0, num_rays, chunk):
            sl = slice(start, start + chunk)
            sdf_fn, field_fn = field.callbacks(volume, rays.batch_idx[sl], tables=leaves)
            out = render_neus(rays.origins[sl], rays.directions[sl], near[sl], far[sl],
                              field_fn, field.inv_s(), sdf_fn, args.uniform, args.importance,
                              args.upsample_steps, jitter=True, generator=gen, valid=valid[sl])
            weight = (min(num_rays, start + chunk) - start) / num_rays
            loss = weight * (10 * masked_l1(out['rgb'], target_rgb[sl], valid[sl, None])
                             + 10 * masked_l1(out['depth'], rays.depth[sl],
                                              rays.has_depth[sl] & valid[sl])
                             + 0.1 * eikonal_loss(out['gradients'], valid[sl, None]))
            loss.backward()
        torch.autograd.backward(tables, [leaf.grad for leaf in leaves])
        t2 = time.perf_counter()
        return num_rays, t1 - t0, t2 - t1, time.process_time() - cpu0

    step()
    times = [step() for _ in range(args.steps)]
    num_rays = times[0][0]
    render = sorted(t[2] for t in times)[len(times) // 2]
    raygen = sorted(t[1] for t in times)[len(times) // 2]
    cpu = sorted(t[3] for t in times)[len(times) // 2]
    print(json.dumps(dict(
        benchmark='mim4d_render_head', measurement='forward_backward_step',
        rays=num_rays, samples_per_ray=args.uniform + args.importance,
        upsample_steps=args.upsample_steps, volume=[1, args.channels, *args.grid],
        chunk=args.chunk or num_rays, field_chunk_samples=args.field_chunk_samples,
        threads=torch.get_num_threads(), workers=args.workers,
        malloc_tuned=args.workers > 1 and tune_malloc_for_threads(),
        ray_generation_s=round(raygen, 4), render_step_s=round(render, 4),
        render_step_min_s=round(min(t[2] for t in times), 4),
        rays_per_s=round(num_rays / render, 1), process_cpu_s=round(cpu, 3),
        load_avg_1m=round(os.getloadavg()[0], 2), steps=args.steps,
        device='cpu', torch=torch.__version__)))


if __name__ == '__main__':
    main()
