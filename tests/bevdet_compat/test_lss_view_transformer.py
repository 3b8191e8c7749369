"""BEVDetLSSViewTransformer: grid buffers, geometry and splatting of one frustum sample."""
import math

import pytest
import torch

from mmdet3d.registry import MODELS
import projects.BEVDetCompat.bevdet_compat  # noqa: F401  (registers the modules)

GRID = dict(x=[-8.0, 8.0, 1.0], y=[-4.0, 4.0, 0.5], z=[-2.0, 2.0, 4.0], depth=[2.0, 10.0, 1.0])
INPUT_SIZE = (32, 64)  # (H_in, W_in) pixels
DOWNSAMPLE = 8  # features 4 x 8
FX, FY, CX, CY = 40.0, 45.0, 30.0, 17.0


def build_transformer(in_channels=3, out_channels=2):
    return MODELS.build(
        dict(type='BEVDetLSSViewTransformer', grid_config=GRID, input_size=INPUT_SIZE,
             downsample=DOWNSAMPLE, in_channels=in_channels, out_channels=out_channels))


def forward_looking_camera(yaw: float, height: float):
    """cam2lidar of a camera at (0, 0, height) looking along lidar yaw ``yaw`` (radians)."""
    c, s = math.cos(yaw), math.sin(yaw)
    cam2lidar = torch.eye(4, dtype=torch.float64)
    # columns: camera x (right), y (down), z (forward) expressed in lidar axes
    cam2lidar[:3, 0] = torch.tensor([s, -c, 0.0])
    cam2lidar[:3, 1] = torch.tensor([0.0, 0.0, -1.0])
    cam2lidar[:3, 2] = torch.tensor([c, s, 0.0])
    cam2lidar[2, 3] = height
    return cam2lidar


def intrinsics():
    k = torch.eye(4, dtype=torch.float64)
    k[0, 0], k[1, 1], k[0, 2], k[1, 2] = FX, FY, CX, CY
    return k


def test_grid_buffers_follow_config_and_are_not_persistent():
    vt = build_transformer()
    assert vt.dx.tolist() == [1.0, 0.5, 4.0]
    assert vt.bx.tolist() == [-7.5, -3.75, 0.0]
    assert vt.nx.tolist() == [16, 16, 1]
    assert tuple(vt.frustum.shape) == (8, 4, 8, 3)
    assert vt.frustum[:, 0, 0, 2].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]
    assert vt.frustum[0, -1, -1, :2].tolist() == [63.0, 31.0]
    assert set(vt.state_dict()) == {'depthnet.weight', 'depthnet.bias'}
    assert vt.depthnet.out_channels == 8 + 2


def test_geometry_matches_hand_unprojection_with_augmentation():
    """Frustum sample (row i, column j, bin k) -> lidar point, by hand."""
    vt = build_transformer().double()
    yaw, height, scale, crop = 0.3, 1.6, 0.5, (3.0, 5.0)
    aug = torch.eye(4, dtype=torch.float64)
    aug[0, 0] = aug[1, 1] = scale
    aug[0, 3], aug[1, 3] = -crop[0], -crop[1]
    cam2lidar = forward_looking_camera(yaw, height)
    geom = vt.get_geometry(intrinsics()[None, None], cam2lidar[None, None], aug[None, None])
    assert geom.shape == (1, 1, 8, 4, 8, 3)
    i, j, k = 2, 5, 3
    u_in, v_in, depth = j * 63.0 / 7.0, i * 31.0 / 3.0, 2.0 + k
    u0, v0 = (u_in + crop[0]) / scale, (v_in + crop[1]) / scale
    x_cam, y_cam = (u0 - CX) / FX * depth, (v0 - CY) / FY * depth
    c, s = math.cos(yaw), math.sin(yaw)
    expected = [depth * c + x_cam * s, depth * s - x_cam * c, height - y_cam]
    assert geom[0, 0, k, i, j].tolist() == pytest.approx(expected, abs=1e-5)


def test_one_frustum_sample_lands_in_the_expected_bev_cell():
    """Only pixel (i, j) carries context and its depth is one-hot at bin k."""
    vt = build_transformer(in_channels=1, out_channels=2)
    i, j, k = 1, 4, 4  # feature row/column, depth bin (d = 6 m)
    with torch.no_grad():
        vt.depthnet.weight.zero_()
        vt.depthnet.bias.zero_()
        vt.depthnet.bias[k] = 40.0  # softmax ~ one-hot at bin k
        vt.depthnet.weight[8, 0] = 1.0  # context channel 0 = input
        vt.depthnet.weight[9, 0] = -2.0  # context channel 1 = -2 * input
    feat = torch.zeros(1, 1, 1, 4, 8)
    feat[0, 0, 0, i, j] = 1.0
    yaw, height = -0.4, 1.0
    cam2lidar = forward_looking_camera(yaw, height).float()
    bev, depth = vt(feat, intrinsics().float()[None, None], cam2lidar[None, None],
                    torch.eye(4)[None, None])
    assert bev.shape == (1, 2, 16, 16)
    assert depth[0, 0, k, i, j].item() == pytest.approx(1.0, abs=1e-6)
    # independent computation of the cell (no aug: input pixels = original)
    u, v, d = j * 63.0 / 7.0, i * 31.0 / 3.0, 6.0
    x_cam = (u - CX) / FX * d
    c, s = math.cos(yaw), math.sin(yaw)
    x, y = d * c + x_cam * s, d * s - x_cam * c
    z = height - (v - CY) / FY * d
    col, row = math.floor((x + 8.0) / 1.0), math.floor((y + 4.0) / 0.5)
    # the chosen sample is inside the grid (x 5.18 m, y -3.17 m, z 1.89 m)
    assert (col, row) == (13, 1) and -2.0 <= z < 2.0
    assert bev[0, 0, row, col].item() == pytest.approx(1.0, abs=1e-5)
    assert bev[0, 1, row, col].item() == pytest.approx(-2.0, abs=1e-5)
    rest = bev.clone()
    rest[0, :, row, col] = 0
    assert rest.abs().max().item() < 1e-6


def test_batch_and_cameras_are_independent():
    """A two-sample, two-camera batch equals the samples run one by one."""
    torch.manual_seed(0)
    vt = build_transformer()
    feat = torch.randn(2, 2, 3, 4, 8)
    cams = torch.stack([forward_looking_camera(0.0, 1.5), forward_looking_camera(math.pi, 1.5)])
    cam2lidar = torch.stack([cams, cams.flip(0)]).float()
    k = intrinsics().float().expand(2, 2, 4, 4)
    aug = torch.eye(4).expand(2, 2, 4, 4)
    bev, _ = vt(feat, k, cam2lidar, aug)
    for b in range(2):
        single, _ = vt(feat[b:b + 1], k[b:b + 1], cam2lidar[b:b + 1], aug[b:b + 1])
        torch.testing.assert_close(bev[b:b + 1], single)
    assert bev[0].abs().sum() > 0


def test_wrong_feature_size_raises():
    vt = build_transformer()
    with pytest.raises(ValueError, match='frustum expects'):
        vt(torch.zeros(1, 1, 3, 5, 8), intrinsics().float()[None, None],
           torch.eye(4)[None, None], torch.eye(4)[None, None])
