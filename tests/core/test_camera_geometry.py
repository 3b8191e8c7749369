import doctest
import math
import pickle

import numpy as np
import pytest
import torch

import render_pretrain.camera_geometry as camera_geometry_module
from render_pretrain.camera_geometry import (compose_lidar2img, create_frustum,
                                             frustum_to_lidar, intrinsics_to_4x4,
                                             project_points_to_image,
                                             render_depth_map_from_points,
                                             unproject_pixels_to_lidar)

CAMS = ('CAM_FRONT', 'CAM_FRONT_RIGHT', 'CAM_FRONT_LEFT', 'CAM_BACK', 'CAM_BACK_LEFT',
        'CAM_BACK_RIGHT')
IMG_H, IMG_W = 900, 1600


@pytest.fixture(scope='module')
def calib(real_frame):
    """Real nuScenes calibration (float64 numpy) and LiDAR points of the shared frame."""
    pkl = next(real_frame.glob('*.pkl'))
    with open(pkl, 'rb') as f:
        info = pickle.load(f)['data_list'][0]
    cam2img = np.stack([np.asarray(info['images'][c]['cam2img'], dtype=np.float64) for c in CAMS])
    lidar2cam = np.stack(
        [np.asarray(info['images'][c]['lidar2cam'], dtype=np.float64) for c in CAMS])
    raw = np.fromfile(real_frame / info['lidar_points']['lidar_path'], dtype=np.float32)
    points = raw.reshape(-1, info['lidar_points']['num_pts_feats'])[:, :3].astype(np.float64)
    return cam2img, lidar2cam, points


def _image_aug(resize, crop, angle_deg, centre):
    """BEVFusion ImageAug3D-style 4x4: resize, rotate about the resized centre, crop."""
    a = math.radians(angle_deg)
    rot = np.array([[math.cos(a), math.sin(a)], [-math.sin(a), math.cos(a)]])
    mat = np.eye(4)
    lin = rot * resize
    c = np.asarray(centre) * resize
    mat[:2, :2] = lin
    mat[:2, 3] = -rot @ c + c - np.asarray(crop)
    return mat


def _lidar_aug(angle, scale, trans):
    mat = np.eye(4)
    c, s = math.cos(angle), math.sin(angle)
    mat[:3, :3] = scale * np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    mat[:3, 3] = trans
    return mat


def _numpy_projection(points, cam2img, lidar2cam):
    cam = points @ lidar2cam[:3, :3].T + lidar2cam[:3, 3]
    pix = cam @ cam2img.T
    return pix[:, :2] / pix[:, 2:3], cam[:, 2]


@pytest.fixture(scope='module')
def visible(calib, per_cam=150):
    """(N_cam, per_cam) LiDAR points seen by each camera with their (u, v, depth)."""
    cam2img, lidar2cam, points = calib
    pts, pix = [], []
    for k in range(len(CAMS)):
        uv, depth = _numpy_projection(points, cam2img[k], lidar2cam[k])
        ok = np.flatnonzero((depth > 1.0) & (uv[:, 0] >= 0) & (uv[:, 0] < IMG_W) & (uv[:, 1] >= 0)
                            & (uv[:, 1] < IMG_H))
        sel = ok[np.linspace(0, len(ok) - 1, per_cam).astype(int)]
        pts.append(points[sel])
        pix.append(np.concatenate([uv[sel], depth[sel, None]], 1))
    return np.stack(pts), np.stack(pix)


def test_unprojection_of_lidar_pixels_lands_on_the_points(calib, visible, device):
    cam2img, lidar2cam, _ = calib
    pts, pix = visible
    assert np.ptp(pix[..., 2]) > 10  # depths from near to far
    cam2lidar = torch.from_numpy(np.linalg.inv(lidar2cam)).float()[None].to(device)
    k = torch.from_numpy(cam2img).float()[None].to(device)
    back = unproject_pixels_to_lidar(torch.from_numpy(pix).float()[None].to(device), k, cam2lidar)
    err = (back[0].double().cpu() - torch.from_numpy(pts)).norm(dim=-1)
    assert err.max() < 0.01  # 1 cm, float32
    uv, depth = project_points_to_image(torch.from_numpy(pts).float().to(device),
                                        compose_lidar2img(k, cam2lidar.inverse())[0])
    assert torch.allclose(uv.double().cpu(), torch.from_numpy(pix[..., :2]), atol=0.02)
    assert torch.allclose(depth.double().cpu(), torch.from_numpy(pix[..., 2]), atol=1e-3)


def test_unprojection_with_image_and_lidar_augmentation(calib, visible, device):
    cam2img, lidar2cam, _ = calib
    pts, pix = visible
    # 1600 x 900 -> resize 0.48 -> crop to 704 x 256 (+ a small rotation), per camera
    img_aug = np.stack([
        _image_aug(0.48, (32 + 2 * k, 176 - k), angle_deg=3.0 * (k - 2), centre=(800, 450))
        for k in range(len(CAMS))
    ])
    lidar_aug = _lidar_aug(0.3, 1.05, (0.5, -1.0, 0.2))
    hom = np.concatenate([pix, np.ones(pix.shape[:2] + (1, ))], -1)
    pix_aug = np.einsum('nij,npj->npi', img_aug, hom)[..., :3]
    assert np.allclose(pix_aug[..., 2], pix[..., 2])  # depth unchanged by the image aug
    expected = pts @ lidar_aug[:3, :3].T + lidar_aug[:3, 3]
    t = lambda a: torch.from_numpy(a).float().to(device)  # noqa: E731
    back = unproject_pixels_to_lidar(t(pix_aug)[None], t(cam2img)[None],
                                     t(np.linalg.inv(lidar2cam))[None], t(img_aug)[None],
                                     t(lidar_aug)[None])
    assert (back[0].double().cpu() - torch.from_numpy(expected)).norm(dim=-1).max() < 0.01
    # the composed projection maps augmented points to augmented pixels
    lidar2img = compose_lidar2img(t(cam2img)[None], t(lidar2cam)[None], t(img_aug)[None],
                                  t(lidar_aug)[None])
    uv, depth = project_points_to_image(t(expected), lidar2img[0])
    assert torch.allclose(uv.double().cpu(), torch.from_numpy(pix_aug[..., :2]), atol=0.02)
    assert torch.allclose(depth.double().cpu(), torch.from_numpy(pix[..., 2]), atol=1e-3)


def test_frustum_node_at_a_lidar_pixel_lands_on_the_point(calib, visible, device):
    """frustum_to_lidar itself: a resize+crop aug puts each LiDAR pixel on a frustum node."""
    cam2img, lidar2cam, _ = calib
    pts, pix = (a[:, ::30] for a in visible)
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).float().to(device)  # noqa: E731
    for k in range(len(CAMS)):
        for p in range(pts.shape[1]):
            u, v, d = pix[k, p]
            # 'bevfusion' frustum of a 9 x 16 image at stride 1: nodes at integer pixels;
            # resize by 0.01 and crop so that (u, v) lands on node (x=7, y=4)
            aug = np.eye(4)
            aug[0, 0] = aug[1, 1] = 0.01
            aug[:2, 3] = (7 - 0.01 * u, 4 - 0.01 * v)
            frustum = create_frustum((9, 16), (9, 16), (d, d + 1.0, 2.0), device=device)
            geom = frustum_to_lidar(frustum, t(cam2img[k])[None, None],
                                    t(np.linalg.inv(lidar2cam[k]))[None, None], t(aug)[None, None])
            assert geom.shape == (1, 1, 1, 9, 16, 3)
            assert np.linalg.norm(geom[0, 0, 0, 4, 7].double().cpu().numpy() - pts[k, p]) < 0.01


def _bevfusion_geometry_reference(frustum, cam2img, cam2lidar, img_aug, lidar_aug):
    """BEVFusion get_geometry written step by step with loops (post_rots / extra_rots)."""
    out = np.zeros(cam2img.shape[:2] + frustum.shape)
    for b in range(cam2img.shape[0]):
        for n in range(cam2img.shape[1]):
            post_rot, post_trans = img_aug[b, n, :3, :3], img_aug[b, n, :3, 3]
            p = (frustum - post_trans) @ np.linalg.inv(post_rot).T
            p = np.concatenate([p[..., :2] * p[..., 2:3], p[..., 2:3]], -1)
            combine = cam2lidar[b, n, :3, :3] @ np.linalg.inv(cam2img[b, n])
            p = p @ combine.T + cam2lidar[b, n, :3, 3]
            out[b, n] = p @ lidar_aug[b, :3, :3].T + lidar_aug[b, :3, 3]
    return out


def test_frustum_to_lidar_matches_bevfusion_reference_and_round_trips(calib, device):
    cam2img, lidar2cam, _ = calib
    frustum = create_frustum((256, 704), (8, 22), (1.0, 60.0, 4.0), dtype=torch.float64,
                             device=device)
    assert frustum.shape == (15, 8, 22, 3)
    img_aug = np.stack([
        np.stack([_image_aug(r, (20 * b, 100), 2.0 * b, (800, 450)) for _ in CAMS])
        for b, r in enumerate((0.44, 0.5))
    ])
    lidar_aug = np.stack([_lidar_aug(0.1, 1.0, (0, 0, 0)), _lidar_aug(-0.4, 0.95, (1, 2, 0.1))])
    cam2lidar = np.broadcast_to(np.linalg.inv(lidar2cam), (2, 6, 4, 4))
    k = np.broadcast_to(cam2img, (2, 6, 3, 3))
    t = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    geom = frustum_to_lidar(frustum, t(k.copy()), t(cam2lidar.copy()), t(img_aug), t(lidar_aug))
    assert geom.shape == (2, 6, 15, 8, 22, 3)
    ref = _bevfusion_geometry_reference(frustum.cpu().numpy(), k, cam2lidar, img_aug, lidar_aug)
    assert np.allclose(geom.cpu().numpy(), ref, atol=1e-8)
    # float32 with (4, 4) intrinsics agrees, and projecting back recovers (u, v, d)
    geom32 = frustum_to_lidar(frustum.float(), intrinsics_to_4x4(t(k.copy())).float(),
                              t(cam2lidar.copy()).float(), t(img_aug).float(),
                              t(lidar_aug).float())
    assert (geom32.double() - geom).abs().max() < 1e-3
    lidar2img = compose_lidar2img(t(k.copy()), t(np.linalg.inv(cam2lidar)), t(img_aug),
                                  t(lidar_aug))
    uv, depth = project_points_to_image(geom.flatten(2, 4), lidar2img)
    assert torch.allclose(uv, frustum[..., :2].reshape(-1, 2).expand_as(uv), atol=1e-6)
    assert torch.allclose(depth, frustum[..., 2].reshape(-1).expand_as(depth), atol=1e-8)


def test_create_frustum_conventions_and_errors(device):
    f = create_frustum((256, 704), (32, 88), (1.0, 60.0, 0.5), device=device)
    assert f.shape == (118, 32, 88, 3)
    assert f[0, 0, :, 0].tolist() == pytest.approx(np.linspace(0, 703, 88).tolist())
    assert f[:, 0, 0, 2].tolist() == pytest.approx([1.0 + 0.5 * i for i in range(118)])
    c = create_frustum((256, 704), (32, 88), (1.0, 60.0, 0.5), pixel_convention='centre',
                       device=device)
    assert c[0, 0, :3, 0].tolist() == [3.5, 11.5, 19.5] and c[0, :2, 0, 1].tolist() == [3.5, 11.5]
    with pytest.raises(ValueError, match='depth_bins'):
        create_frustum((8, 8), (2, 2), (5.0, 1.0, 1.0))
    with pytest.raises(ValueError, match='pixel_convention'):
        create_frustum((8, 8), (2, 2), (1.0, 5.0, 1.0), pixel_convention='corner')
    # identity extrinsics: a point on the optical axis projects to the principal point
    k = torch.tensor([[500.0, 0, 320], [0, 500, 240], [0, 0, 1]], device=device)
    uv, depth = project_points_to_image(torch.tensor([[0.0, 0.0, 7.0]], device=device),
                                        intrinsics_to_4x4(k))
    assert uv.tolist() == [[320.0, 240.0]] and depth.tolist() == [7.0]
    with pytest.raises(ValueError, match='cam2img'):
        intrinsics_to_4x4(torch.eye(2, device=device))


def test_depth_map_min_depth_wins_and_filters(device):
    lidar2img = torch.eye(4, device=device)[None]  # identity intrinsics: (u, v) = (x / z, y / z)
    pts = torch.tensor([
        [2.0, 2.0, 2.0],  # pixel (1, 1), depth 2
        [3.0, 3.0, 3.0],  # pixel (1, 1), depth 3
        [1.0, 1.0, 1.0],  # pixel (1, 1), depth 1  <- wins
        [0.0, 4.0, 2.0],  # pixel (0, 2), depth 2
        [1.0, 1.0, -1.0],  # behind the camera
        [9.0, 0.0, 1.0],  # outside the image
    ], device=device)
    depth = render_depth_map_from_points(pts, lidar2img, (3, 3))
    expected = torch.zeros(1, 3, 3, device=device)
    expected[0, 1, 1], expected[0, 2, 0] = 1.0, 2.0
    assert torch.equal(depth, expected)
    # stride 2 on a 4x4 image: cells span pixels [2j - 0.5, 2j + 1.5)
    pts2 = torch.tensor([[1.4, 1.4, 1.0], [1.6, 0.0, 1.0], [3.4, 3.4, 1.0], [3.6, 0.0, 1.0]],
                        device=device)
    depth2 = render_depth_map_from_points(pts2, lidar2img, (4, 4), stride=2)
    assert depth2[0].tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert render_depth_map_from_points(pts, lidar2img, (3, 3), max_depth=1.5).sum() == 1.0
    with pytest.raises(ValueError, match='divisible'):
        render_depth_map_from_points(pts, lidar2img, (3, 3), stride=2)


def test_depth_map_matches_projection_on_real_frame(calib, device):
    cam2img, lidar2cam, points = calib
    stride = 4
    lidar2img = compose_lidar2img(torch.from_numpy(cam2img).to(device),
                                  torch.from_numpy(lidar2cam).to(device))
    pts = torch.from_numpy(points).to(device)
    depth = render_depth_map_from_points(pts, lidar2img, (IMG_H, IMG_W), stride=stride)
    assert depth.shape == (6, IMG_H // stride, IMG_W // stride)
    ref = np.full(depth.shape, np.inf)
    for k in range(len(CAMS)):
        uv, d = _numpy_projection(points, cam2img[k], lidar2cam[k])
        col = np.floor((uv[:, 0] + 0.5) / stride).astype(np.int64)
        row = np.floor((uv[:, 1] + 0.5) / stride).astype(np.int64)
        ok = (d > 1e-3) & (col >= 0) & (col < depth.shape[2]) & (row >= 0) & (row < depth.shape[1])
        np.minimum.at(ref[k], (row[ok], col[ok]), d[ok])
    ref[np.isinf(ref)] = 0
    assert (ref > 0).sum() > 5000
    assert np.allclose(depth.cpu().numpy(), ref, atol=1e-9)
    # packed batch of two clouds == one call per sample
    sub = pts[::3] + torch.tensor([0.3, -0.2, 0.0], dtype=torch.float64, device=device)
    both = torch.cat([pts, sub])
    batch_idx = torch.cat([torch.zeros(len(pts), dtype=torch.long, device=device),
                           torch.ones(len(sub), dtype=torch.long, device=device)])
    l2i = torch.stack([lidar2img, lidar2img.flip(0)])
    packed = render_depth_map_from_points(both, l2i, (IMG_H, IMG_W), stride, batch_idx=batch_idx)
    assert torch.equal(packed[0], depth)
    assert torch.equal(packed[1], render_depth_map_from_points(sub, l2i[1], (IMG_H, IMG_W), stride))


def test_image_aug_must_keep_depth(device):
    bad = torch.eye(4, device=device)
    bad[2, 2] = 2.0
    with pytest.raises(ValueError, match='img_aug_matrix'):
        compose_lidar2img(torch.eye(3, device=device)[None], torch.eye(4, device=device)[None],
                          bad[None])
    shear = torch.eye(4, device=device)
    shear[0, 2] = 0.1
    with pytest.raises(ValueError, match='img_aug_matrix'):
        compose_lidar2img(torch.eye(3, device=device)[None], torch.eye(4, device=device)[None],
                          shear[None])


def test_docstring_examples():
    result = doctest.testmod(camera_geometry_module, extraglobs={'torch': torch})
    assert result.attempted > 0 and result.failed == 0
