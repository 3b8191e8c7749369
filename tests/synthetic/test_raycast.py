"""Ray casting against the ground plane and yaw-oriented boxes."""
import math

import numpy as np
import pytest
import torch

from render_pretrain.synthetic.raycast import (GROUND_ID, MISS_ID, BoxSet, cast_grid_rays,
                                               intersect_ray_box_pairs)
from render_pretrain.synthetic.scene_layout import build_scene_layout
from render_pretrain.synthetic.sensor_rendering import (_lidar_rects, camera_pose, camera_rects,
                                                        lidar_directions, lidar_pose,
                                                        render_cameras, world_state_at)
from render_pretrain.synthetic.sensor_rig import (CAMERA_MOUNTS, camera_intrinsics,
                                                  lidar_beam_elevations, quaternion_from_matrix,
                                                  rotation_z)


def _full_rects(num_boxes, rows, cols):
    return torch.tensor([[0, rows, 0, cols]], dtype=torch.int64).repeat(num_boxes, 1)


def test_analytic_hits():
    # unit cube centred at (5, 0, 1) rotated by 90 degrees (still a cube), a tall box behind it
    boxes = BoxSet(torch.tensor([[5.0, 0.0, 1.0], [20.0, 0.0, 2.0]]),
                   torch.tensor([[0.5, 0.5, 0.5], [1.0, 3.0, 2.0]]),
                   torch.tensor([math.pi / 2, 0.3]))
    origin = torch.tensor([0.0, 0.0, 1.0])
    dirs = torch.tensor([[1.0, 0.0, 0.0],       # hits the cube face x = 4.5
                         [0.0, 0.0, -1.0],      # straight down: ground at t = 1
                         [0.0, 0.0, 1.0],       # sky
                         [1.0, 0.12, 0.0],      # passes beside the cube, hits box 2
                         [3.0, 0.0, -1.0]])     # ground at x = 3 before the cube
    hits = cast_grid_rays(origin, dirs, 5, boxes, _full_rects(2, 1, 5), with_coverage=True)
    assert hits.prim.tolist() == [0, GROUND_ID, MISS_ID, 1, GROUND_ID]
    assert hits.t[0].item() == pytest.approx(4.5, abs=1e-5)
    assert hits.t[1].item() == pytest.approx(1.0, abs=1e-6)
    assert hits.t[4].item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(hits.normal[0], torch.tensor([-1.0, 0.0, 0.0]), atol=1e-5)
    assert torch.allclose(hits.normal[1], torch.tensor([0.0, 0.0, 1.0]))
    # ray 3 ends on the surface of the yawed box 2, entering against the face normal
    p = origin + hits.t[3] * dirs[3] - torch.tensor([20.0, 0.0, 2.0])
    local = torch.stack([math.cos(0.3) * p[0] + math.sin(0.3) * p[1],
                         -math.sin(0.3) * p[0] + math.cos(0.3) * p[1], p[2]])
    ratio = (local.abs() / torch.tensor([1.0, 3.0, 2.0])).max().item()
    assert ratio == pytest.approx(1.0, abs=1e-5)
    assert torch.dot(hits.normal[3], dirs[3]).item() < 0
    assert hits.normal[3].norm().item() == pytest.approx(1.0, abs=1e-6)
    # the per-pair reference slab test agrees
    t_ref, axis, sign = intersect_ray_box_pairs(origin.expand(2, 3), dirs[[0, 3]], boxes,
                                                torch.tensor([0, 1]))
    assert torch.allclose(t_ref, hits.t[[0, 3]], atol=1e-5)
    assert axis[0].item() == 1 and sign[0].item() == 1  # cube yawed by 90 deg: local +y face
    # coverage counts occluded intersections too: box 2 is behind the cube on ray 0
    assert hits.coverage.tolist() == [[1, 2]]


def test_culled_camera_and_lidar_match_brute_force():
    layout = build_scene_layout(np.random.default_rng(3), 2.0, -1, (200.0, 200.0), 0.7)
    state = world_state_at(layout, 1.0)
    width, height = 64, 24
    mounts = CAMERA_MOUNTS[:3]
    poses = [camera_pose(state, m) for m in mounts]
    origins = np.stack([p[0] for p in poses])
    rotations = np.stack([p[1] for p in poses])
    intrinsics = np.stack([camera_intrinsics(m, (width, height)) for m in mounts])
    vv, uu = torch.meshgrid(torch.arange(height, dtype=torch.float64),
                            torch.arange(width, dtype=torch.float64), indexing='ij')
    dirs = []
    for intr, rot in zip(intrinsics, rotations):
        d = torch.stack([(uu - intr[0, 2]) / intr[0, 0], (vv - intr[1, 2]) / intr[1, 1],
                         torch.ones_like(uu)], -1).reshape(-1, 3)
        dirs.append((d @ torch.from_numpy(rot).T).float())
    dirs = torch.cat(dirs)
    o = torch.from_numpy(origins).float()
    rects = camera_rects(state.boxes, origins, rotations, intrinsics, width, height)
    culled = cast_grid_rays(o, dirs, width, state.boxes, rects, with_coverage=True)
    brute = cast_grid_rays(o, dirs, width, state.boxes,
                           _full_rects(len(state.boxes), height, width)[None].repeat(3, 1, 1),
                           with_coverage=True)
    assert torch.equal(culled.prim, brute.prim)
    assert torch.equal(culled.t, brute.t)
    assert torch.equal(culled.coverage, brute.coverage)
    assert (culled.prim >= 0).float().mean() > 0.2
    # the batched cast equals casting each camera alone
    single = cast_grid_rays(o[1], dirs[width * height:2 * width * height], width, state.boxes,
                            rects[1])
    assert torch.equal(single.t, culled.t[width * height:2 * width * height])
    origin, rot = lidar_pose(state)
    dirs = (lidar_directions(90) @ torch.from_numpy(rot).T).float()
    o = torch.from_numpy(origin).float()
    rects = _lidar_rects(state, origin, rot, 90, lidar_beam_elevations(), 70.0)
    culled = cast_grid_rays(o, dirs, 90, state.boxes, rects, max_t=70.0)
    brute = cast_grid_rays(o, dirs, 90, state.boxes, _full_rects(len(state.boxes), 32, 90),
                           max_t=70.0)
    assert torch.equal(culled.prim, brute.prim)
    assert torch.equal(culled.t, brute.t)


def test_render_camera_outputs_and_quaternion():
    layout = build_scene_layout(np.random.default_rng(1), 1.0, 1, (200.0, 200.0), 0.0)
    state = world_state_at(layout, 0.5)
    out = render_cameras(state, CAMERA_MOUNTS, (64, 24))
    assert out['rgb'].shape == (6, 24, 64, 3) and out['rgb'].dtype == np.uint8
    out = {k: v[0] for k, v in out.items()}
    sky = out['prim'] == MISS_ID
    assert np.isinf(out['depth'][sky]).all() and np.isfinite(out['depth'][~sky]).all()
    # the level front camera (1.51 m high) sees the road at the bottom-centre pixel at
    # depth = height * focal / (v - cy)
    intr = camera_intrinsics(CAMERA_MOUNTS[0], (64, 24))
    assert out['prim'][-1, 32] == GROUND_ID
    expected = 1.51 * intr[1, 1] / (23 - intr[1, 2])
    assert out['depth'][-1, 32] == pytest.approx(expected, abs=1e-4)
    rot = rotation_z(0.7) @ rotation_z(-0.2)
    q = quaternion_from_matrix(rot)
    assert np.allclose(q, [math.cos(0.25), 0, 0, math.sin(0.25)])
    with pytest.raises(ValueError, match='expects a \\(3, 3\\)'):
        quaternion_from_matrix(np.eye(4))
