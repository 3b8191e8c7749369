"""Procedural albedo and shading of ray hits (channel-major, chunk-friendly)."""
import numpy as np
import pytest
import torch

from render_pretrain.synthetic.raycast import GROUND_ID, MISS_ID, RayHits
from render_pretrain.synthetic.scene_layout import MATERIAL_ID, build_scene_layout
from render_pretrain.synthetic.sensor_rendering import camera_grid_directions
from render_pretrain.synthetic.sensor_rig import CAMERA_MOUNTS, camera_intrinsics, rotation_z
from render_pretrain.synthetic.shading import (SKY_HORIZON, ground_albedo, hit_albedo,
                                               shade_hits)


def _hits(prim, local, normal):
    prim = torch.tensor(prim)
    return RayHits(torch.ones(len(prim)), prim, torch.tensor(normal), torch.tensor(local),
                   torch.zeros(1, 1, dtype=torch.int64))


def test_box_details_ground_and_misses():
    layout = build_scene_layout(np.random.default_rng(0), 1.0, 1, (200.0, 200.0), 0.0)
    m = MATERIAL_ID
    material = torch.tensor([m['vehicle'], m['barrier'], m['building'], m['pedestrian']])
    color = torch.tensor([[0.6, 0.2, 0.2], [0.9, 0.9, 0.9], [0.5, 0.5, 0.45], [0.3, 0.6, 0.3]])
    half = torch.tensor([[2.3, 1.0, 0.85], [0.25, 1.25, 0.5], [10.0, 5.0, 9.0],
                         [0.35, 0.35, 0.9]])
    side = [1.0, 0.0, 0.0]
    hits = _hits(
        [0, 0, 1, 2, 3, 3, GROUND_ID, MISS_ID],
        [[2.3, 0.0, -0.8],     # vehicle side near the bottom: wheels / bumper
         [2.3, 0.0, 0.3],      # vehicle side at zn = 0.68: glass band
         [0.25, -1.0, 0.0],    # barrier: (y + half_y) / 0.5 = 0.5 -> red band
         [10.0, 1.5, -1.0],    # facade at height 8 m, along 1.5 m: window
         [0.35, 0.0, 0.85],    # pedestrian head
         [0.35, 0.0, 0.0],     # pedestrian shirt: base colour x noise factor
         [3.0, 0.0, 0.0],      # ground point (scene frame)
         [0.0, 0.0, 0.0]],
        [side, side, side, side, side, side, [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    albedo = hit_albedo(hits, layout, material, color, half)
    assert albedo.shape == (8, 3)
    expected = torch.tensor([[0.07, 0.07, 0.07], [0.1, 0.12, 0.15], [0.85, 0.1, 0.1],
                             [0.16, 0.2, 0.27], [0.78, 0.62, 0.5]])
    assert torch.allclose(albedo[:5], expected)
    ratio = albedo[5] / color[3]
    assert torch.allclose(ratio, ratio[0].expand(3), atol=1e-6) and 0.9 <= ratio[0] <= 1.1
    assert torch.allclose(albedo[6], ground_albedo(torch.tensor([[3.0, 0.0]]), layout)[0])
    assert torch.equal(albedo[7], torch.zeros(3))
    # shading: a miss is pure sky, a lit hit is albedo x Lambert (x fog)
    dirs = torch.tensor([[-1.0, 0.0, 0.0]] * 7 + [[1.0, 0.0, 0.0]])
    rgb = shade_hits(hits, dirs, albedo)
    assert torch.allclose(rgb[7], torch.tensor(SKY_HORIZON))
    sun = torch.tensor([0.45, 0.3, 0.84])
    lambert = 0.38 + 0.62 * (sun[0] / sun.norm())
    fog = 1 - torch.exp(torch.tensor(-1.0 / 350.0))
    sky_h = torch.tensor(SKY_HORIZON)
    assert torch.allclose(rgb[0], albedo[0] * lambert * (1 - fog) + sky_h * fog, atol=1e-6)


def test_camera_grid_directions_unproject_pixels():
    width, height = 40, 16
    mounts = CAMERA_MOUNTS[:2]
    intrinsics = np.stack([camera_intrinsics(m, (width, height)) for m in mounts])
    rotations = np.stack([rotation_z(0.3), rotation_z(-1.2) @ rotation_z(0.1)])
    dirs = camera_grid_directions(intrinsics, rotations, width, height)
    assert dirs.shape == (2 * height * width, 3) and dirs.dtype == torch.float32
    for g, (u, v) in [(0, (0, 0)), (0, (39, 15)), (1, (17, 3))]:
        ray = rotations[g] @ np.linalg.solve(intrinsics[g], [u, v, 1.0])
        index = (g * height + v) * width + u
        assert dirs[index].numpy() == pytest.approx(ray, abs=1e-6)
    # each component is contiguous (channel-major storage)
    assert dirs[:, 0].is_contiguous()
