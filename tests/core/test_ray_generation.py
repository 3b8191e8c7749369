"""Tests for render_pretrain.ray_generation (LiDAR rays and pixel-grid rays)."""
import math

import pytest
import torch

from render_pretrain.camera_geometry import compose_lidar2img, project_points_to_image
from render_pretrain.ray_generation import (camera_centers, generate_lidar_rays,
                                            generate_pixel_rays, optical_axes,
                                            ray_distance_to_z_depth, sample_camera_rays,
                                            sample_ground_pixels)

IMAGE_SIZE = (60, 80)  # (H, W)


def _rig(yaws_deg, centre_xyz=(1.0, 0.2, 1.5)):
    """(N, 4, 4) lidar2img of pinhole cameras at one centre, looking along yaw."""
    mats = []
    for yaw in yaws_deg:
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        forward = torch.tensor([c, s, 0.])
        right = torch.tensor([s, -c, 0.])
        down = torch.tensor([0., 0., -1.])
        rot = torch.stack([right, down, forward])  # lidar -> camera axes (x right, y down, z fwd)
        lidar2cam = torch.eye(4)
        lidar2cam[:3, :3] = rot
        lidar2cam[:3, 3] = -rot @ torch.tensor(centre_xyz)
        mats.append(lidar2cam)
    cam2img = torch.tensor([[50., 0., 40.], [0., 50., 30.], [0., 0., 1.]])
    lidar2cam = torch.stack(mats)
    return compose_lidar2img(cam2img.expand(len(yaws_deg), 3, 3), lidar2cam)


def _cloud(gen, num):
    radius = torch.rand(num, generator=gen) * 58 + 1
    angle = torch.rand(num, generator=gen) * 2 * math.pi
    height = torch.rand(num, generator=gen) * 4 - 1.5
    return torch.stack([radius * torch.cos(angle), radius * torch.sin(angle), height], -1)


def test_camera_centres_and_axes(device):
    lidar2img = _rig([0, 90])[None].to(device)
    torch.testing.assert_close(camera_centers(lidar2img)[0],
                               torch.tensor([[1.0, 0.2, 1.5], [1.0, 0.2, 1.5]], device=device))
    torch.testing.assert_close(optical_axes(lidar2img)[0],
                               torch.tensor([[1., 0., 0.], [0., 1., 0.]], device=device),
                               atol=1e-6, rtol=0)


def test_lidar_rays_reconstruct_points_and_respect_the_range(device):
    gen = torch.Generator().manual_seed(0)
    points = _cloud(gen, 3000).to(device)
    lidar2img = _rig([0, 90, 180])[None].to(device)
    rays = generate_lidar_rays(points, lidar2img, IMAGE_SIZE)
    assert rays.origins.shape[0] > 200
    # Independent check: brute-force visibility by projecting into each camera.
    uv, z = project_points_to_image(points, lidar2img[0])  # (N, P, 2), (N, P)
    dist = (points[None] - camera_centers(lidar2img)[0][:, None]).norm(dim=-1)
    inside = ((uv >= -0.5) & (uv < torch.tensor([79.5, 59.5], device=device))).all(-1) & (z > 0)
    expected = inside & (dist > 3) & (dist < 50)
    assert rays.origins.shape[0] == int(expected.sum())
    assert (rays.depth > 3).all() and (rays.depth < 50).all()
    # origin + depth * direction is the LiDAR point; it projects to the ray's pixel.
    hit = rays.origins + rays.depth[:, None] * rays.directions
    uv_hit, z_hit = project_points_to_image(hit[:, None], lidar2img[0][rays.cam_idx])
    torch.testing.assert_close(uv_hit[:, 0], rays.pixels, atol=1e-3, rtol=0)
    torch.testing.assert_close(z_hit[:, 0], rays.z_depth, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(rays.directions.norm(dim=-1), torch.ones(len(hit), device=device))
    # z-depth and ray distance convert through the optical axis.
    axes = optical_axes(lidar2img)[0][rays.cam_idx]
    torch.testing.assert_close(ray_distance_to_z_depth(rays.depth, rays.directions, axes),
                               rays.z_depth, atol=1e-4, rtol=1e-5)
    assert (rays.depth > rays.z_depth - 1e-4).all() and rays.has_depth.all()


def test_pixel_rays_pass_through_their_pixels(device):
    lidar2img = _rig([30, -45])[None].double().to(device)
    pixels = torch.tensor([[[0., 0.], [79., 59.], [40., 30.]], [[10., 50.], [3., 4.], [70., 2.]]],
                          device=device)
    origins, dirs = generate_pixel_rays(pixels[None], lidar2img)
    points = origins + 7.5 * dirs
    uv, z = project_points_to_image(points[0], lidar2img[0])
    torch.testing.assert_close(uv, pixels.double())
    # The principal point looks along the optical axis: z-depth equals the distance.
    assert abs(z[0, 2].item() - 7.5) < 1e-6
    assert (z < 7.5 + 1e-6).all()


def test_ground_pixels_avoid_sky_and_are_distinct(device):
    gen = torch.Generator(device).manual_seed(1)  # keys are drawn on the output device
    pixels, valid = sample_ground_pixels(2, 3, IMAGE_SIZE, 500, gen, horizon_fraction=0.4,
                                         device=device)
    assert pixels.device.type == device
    assert valid.all() and (pixels[..., 1] >= 24).all() and (pixels[..., 0] < 80).all()
    flat = pixels[..., 1] * 80 + pixels[..., 0]
    assert all(row.unique().numel() == 500 for row in flat.view(6, 500))
    sky = torch.zeros(1, 2, *IMAGE_SIZE, dtype=torch.bool, device=device)
    sky[0, 0, :, :40] = True   # left half is sky
    sky[0, 1, :59] = True      # only the last row (80 pixels) is ground
    pixels, valid = sample_ground_pixels(1, 2, IMAGE_SIZE, 100, gen, sky_mask=sky)
    assert valid[0, 0].all() and (pixels[0, 0, :, 0] >= 40).all()
    assert valid[0, 1].sum() == 80 and (pixels[0, 1][valid[0, 1]][:, 1] == 59).all()


# sample_camera_rays draws from a CPU generator (torch.randperm on the CPU, then
# moved); MIM4D draws its rays on the CPU by design and moves them to the device,
# so the tests of the seeded ray sampler below run on the CPU only.
def test_sample_camera_rays_fixed_budget_batch_and_determinism():
    gen = torch.Generator().manual_seed(2)
    lidar2img = torch.stack([_rig([0, 120, 240]), _rig([10, 130, 250], (0., 0., 1.8))])
    points = torch.cat([_cloud(gen, 100), _cloud(gen, 5000)])
    batch_idx = torch.cat([torch.zeros(100), torch.ones(5000)]).long()
    budget = 64
    rays = sample_camera_rays(points, lidar2img, IMAGE_SIZE, budget,
                              torch.Generator().manual_seed(3), batch_idx,
                              lidar_fraction=0.75, horizon_fraction=0.3)
    group = rays.batch_idx * 3 + rays.cam_idx
    assert torch.equal(torch.bincount(group, minlength=6), torch.full((6,), budget))
    lidar_per_cam = torch.bincount(group[rays.has_depth], minlength=6)
    assert (lidar_per_cam <= 48).all() and (lidar_per_cam[3:] == 48).all()
    assert (lidar_per_cam[:3] < 48).any()  # the sparse sample is padded with pixel rays
    # LiDAR rays still hit their own sample's points.
    hits = rays.origins + rays.depth[:, None] * rays.directions
    lidar_hits = hits[rays.has_depth]
    own = batch_idx[None] == rays.batch_idx[rays.has_depth][:, None]
    dist = torch.cdist(lidar_hits, points, compute_mode='donot_use_mm_for_euclid_dist')
    dmin = torch.where(own, dist, torch.inf).amin(-1)
    assert dmin.max() < 1e-3
    assert (rays.pixels[~rays.has_depth][:, 1] >= 18).all()
    assert (rays.depth[~rays.has_depth] == 0).all()
    again = sample_camera_rays(points, lidar2img, IMAGE_SIZE, budget,
                               torch.Generator().manual_seed(3), batch_idx,
                               lidar_fraction=0.75, horizon_fraction=0.3)
    assert all(torch.equal(a, b) for a, b in zip(rays, again))


def test_no_points_gives_only_pixel_rays():
    lidar2img = _rig([0, 180])[None]
    rays = sample_camera_rays(torch.zeros(0, 3), lidar2img, IMAGE_SIZE, 16,
                              torch.Generator().manual_seed(0))
    assert rays.origins.shape == (32, 3) and not rays.has_depth.any()
    assert torch.isfinite(rays.directions).all()


def test_bad_inputs_raise(device):
    eye = torch.eye(4, device=device)
    with pytest.raises(ValueError, match='point_batch_idx'):
        generate_lidar_rays(torch.zeros(5, 3, device=device), eye.expand(2, 1, 4, 4), IMAGE_SIZE)
    with pytest.raises(ValueError, match='points must be'):
        generate_lidar_rays(torch.zeros(5, 4, device=device), eye.expand(1, 1, 4, 4), IMAGE_SIZE)


def test_real_nuscenes_frame_against_independent_projection(real_frame):
    import pickle

    import numpy as np

    with open(real_frame / 'n015-2018-07-24-11-22-45+0800.pkl', 'rb') as f:
        info = pickle.load(f)['data_list'][0]
    raw = np.fromfile(real_frame / info['lidar_points']['lidar_path'], dtype=np.float32)
    points = torch.from_numpy(raw.reshape(-1, 5)[:, :3].copy())
    cams = sorted(info['images'])
    cam2img = torch.tensor(np.stack([np.asarray(info['images'][c]['cam2img']) for c in cams]),
                           dtype=torch.float32)
    lidar2cam = torch.tensor(np.stack([np.asarray(info['images'][c]['lidar2cam']) for c in cams]),
                             dtype=torch.float32)
    lidar2img = compose_lidar2img(cam2img, lidar2cam)[None]
    rays = sample_camera_rays(points, lidar2img, (900, 1600), 1024,
                              torch.Generator().manual_seed(0), lidar_fraction=0.5,
                              horizon_fraction=0.45)
    group = rays.cam_idx
    assert torch.equal(torch.bincount(group, minlength=6), torch.full((6,), 1024))
    assert (torch.bincount(group[rays.has_depth], minlength=6) == 512).all()
    # Independent float64 numpy projection (intrinsics @ extrinsics) of the LiDAR rays.
    hit = (rays.origins + rays.depth[:, None] * rays.directions)[rays.has_depth]
    cam = rays.cam_idx[rays.has_depth]
    for index, name in enumerate(cams):
        sel = cam == index
        extrinsics = np.asarray(info['images'][name]['lidar2cam'], dtype=np.float64)
        pts_cam = extrinsics[:3, :3] @ hit[sel].double().numpy().T + extrinsics[:3, 3:]
        pix = np.asarray(info['images'][name]['cam2img'], dtype=np.float64)[:3, :3] @ pts_cam
        uv = (pix[:2] / pix[2:]).T
        np.testing.assert_allclose(uv, rays.pixels[rays.has_depth][sel].double().numpy(),
                                   atol=0.05)
        centre = torch.linalg.inv(lidar2cam[index])[:3, 3]
        torch.testing.assert_close(rays.origins[rays.cam_idx == index],
                                   centre.expand(int((rays.cam_idx == index).sum()), 3),
                                   atol=1e-4, rtol=0)
    assert (rays.depth[rays.has_depth] > 3).all() and (rays.depth[rays.has_depth] < 50).all()
    # Pixel rays start below the horizon row, and pass through their pixels.
    pixel_rays = ~rays.has_depth
    assert int(pixel_rays.sum()) == 6 * 512
    assert (rays.pixels[pixel_rays][:, 1] >= 405).all()
    far = rays.origins[pixel_rays] + 20.0 * rays.directions[pixel_rays]
    uv, _ = project_points_to_image(far[:, None], lidar2img[0][rays.cam_idx[pixel_rays]])
    torch.testing.assert_close(uv[:, 0], rays.pixels[pixel_rays], atol=0.05, rtol=0)
