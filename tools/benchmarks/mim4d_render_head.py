"""Benchmark the MIM4D NeuS render head: rays/s for forward + backward.

One training step of :class:`projects.MIM4D.mim4d.MIM4DNeuSRenderHead` as
MIM4D runs it: rays from LiDAR points and ground pixels of N_cam cameras
(``sample_rays``), the AABB collider, 72 uniform + 24 importance samples
(NeuS up-sampling), the :class:`render_pretrain.sdf_field.SDFField`
decoding a C-channel (Z, Y, X) feature volume with its analytic SDF
gradient, the loss ``10 L1(rgb) + 10 L1(depth) + 0.1 eikonal`` and its
backward. All rays of the step are rendered at once, as in training.

``render_step_s`` is the median wall time of the render forward + backward
(excluding ray generation), ``render_step_min_s`` the fastest step (on a
shared machine, the closest to the code's own cost: other processes only
add), ``process_cpu_s`` the CPU time of the whole step summed over threads,
and ``load_avg_1m`` the machine's load when it ended, to judge how much
the numbers suffer from other processes. With 2 threads on a machine
shared with other jobs, set ``OMP_WAIT_POLICY=PASSIVE``: busy waiting
OpenMP threads otherwise slow the step several-fold.

There is no CPU target: users train on GPUs and the head stays plain
autograd (DESIGN rule 7); the figures show what a CPU step costs. Prints
one JSON line, with the fields ``tools/benchmarks/report.py`` renders
(``workload``, ``figures``, ``target`` = None), e.g.::

    python tools/benchmarks/mim4d_render_head.py --threads 2
"""
import argparse
import json
import math
import os
import time

import torch

from projects.MIM4D.mim4d import MIM4DNeuSRenderHead

AABB = (-54.0, -54.0, -5.0, 54.0, 54.0, 3.0)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--cams', type=int, default=6)
    parser.add_argument('--rays-per-cam', type=int, default=512)
    parser.add_argument('--uniform', type=int, default=72)
    parser.add_argument('--importance', type=int, default=24)
    parser.add_argument('--upsample-steps', type=int, default=1)
    parser.add_argument('--channels', type=int, default=32)
    parser.add_argument('--grid', type=int, nargs=3, default=(5, 180, 180), metavar=('Z', 'Y', 'X'))
    parser.add_argument('--steps', type=int, default=3, help='timed steps (after one warm-up)')
    parser.add_argument('--threads', type=int, default=0, help='torch threads (0: default)')
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

    head = MIM4DNeuSRenderHead(args.channels, AABB, rays_per_camera=args.rays_per_cam,
                               lidar_fraction=0.5, horizon_fraction=0.45,
                               num_uniform=args.uniform, num_importance=args.importance,
                               num_upsample_steps=args.upsample_steps,
                               loss_weights=dict(eikonal=0.1))
    volume = torch.randn(1, args.channels, *args.grid, generator=gen).requires_grad_()

    def step():
        cpu0 = time.process_time()
        t0 = time.perf_counter()
        rays = head.sample_rays(points, None, lidar2img, image_size, gen)
        t1 = time.perf_counter()
        num_rays = rays.origins.shape[0]
        target_rgb = torch.rand(num_rays, 3, generator=gen)
        rendered = head(volume, rays.origins, rays.directions, rays.batch_idx, gen)
        sum(head.loss(rendered, rays, target_rgb).values()).backward()
        t2 = time.perf_counter()
        return num_rays, t1 - t0, t2 - t1, time.process_time() - cpu0

    step()
    times = [step() for _ in range(args.steps)]
    num_rays = times[0][0]
    render = sorted(t[2] for t in times)[len(times) // 2]
    raygen = sorted(t[1] for t in times)[len(times) // 2]
    cpu = sorted(t[3] for t in times)[len(times) // 2]
    threads = torch.get_num_threads()
    workload = (f'{args.cams} cams x {args.rays_per_cam} rays ({num_rays} rays) x '
                f'({args.uniform}+{args.importance}) samples, {args.upsample_steps} up-sampling '
                f'step(s), volume {args.channels} x {" x ".join(map(str, args.grid))} (C x Z x Y '
                f'x X), forward+backward, {threads} thread(s), median of {args.steps} steps')
    print(json.dumps(dict(
        benchmark='mim4d_render_head', measurement='forward_backward_step',
        title='MIM4D NeuS render head: one training step',
        rays=num_rays, samples_per_ray=args.uniform + args.importance,
        upsample_steps=args.upsample_steps, volume=[1, args.channels, *args.grid],
        threads=threads,
        ray_generation_s=round(raygen, 4), render_step_s=round(render, 4),
        render_step_min_s=round(min(t[2] for t in times), 4),
        rays_per_s=round(num_rays / render, 1), process_cpu_s=round(cpu, 3),
        load_avg_1m=round(os.getloadavg()[0], 2), steps=args.steps,
        device='cpu', torch=torch.__version__, workload=workload,
        figures=[dict(name='render step', value=render, unit='s'),
                 dict(name='fastest step', value=min(t[2] for t in times), unit='s'),
                 dict(name='process CPU per step', value=cpu, unit='s'),
                 dict(name='ray generation', value=raygen, unit='s'),
                 dict(name='throughput', value=num_rays / render, unit='rays/s')],
        target=None, target_met=None)))


if __name__ == '__main__':
    main()
