"""BEVFusion-compatible encoder modules: layouts and equivalences."""
import numpy as np
import pytest
import torch

from mmdet3d.models.middle_encoders import SparseEncoder
from projects.BEVFusionCompat.bevfusion_compat import (BEVFusionCompatConvFuser,
                                                       BEVFusionCompatDepthLSSTransform,
                                                       BEVFusionCompatGeneralizedLSSFPN,
                                                       BEVFusionCompatImageAug3D,
                                                       BEVFusionCompatSparseEncoder)

SPARSE_KW = dict(
    in_channels=4,
    order=('conv', 'norm', 'act'),
    norm_cfg=dict(type='BN1d', eps=1e-3, momentum=0.01),
    base_channels=8,
    output_channels=16,
    encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)),
    block_type='basicblock')


def _view_transform(bev_axes='xy'):
    return BEVFusionCompatDepthLSSTransform(
        in_channels=8, out_channels=4, image_size=(64, 176), feature_size=(8, 22),
        xbound=(-24.0, 24.0, 1.2), ybound=(-24.0, 24.0, 1.2), zbound=(-10.0, 10.0, 20.0),
        dbound=(1.0, 40.0, 1.0), downsample=2, bev_axes=bev_axes)


def test_grid_constants_are_non_persistent_buffers():
    view = _view_transform()
    keys = set(view.state_dict())
    assert not keys & {'dx', 'bx', 'nx', 'frustum'}
    assert {'dx', 'bx', 'nx', 'frustum'} <= {name for name, _ in view.named_buffers()}
    assert view.frustum.shape == (39, 8, 22, 3)
    assert view.nx.tolist() == [40, 40, 1]


@pytest.mark.parametrize('bev_axes', ['xy', 'yx'])
def test_bev_pool_layout_matches_bevfusion(bev_axes):
    """A feature at LiDAR (x, y) = (5.0, -10.0) m lands in cell (ix, iy) = (24, 11).

    BEVFusion's ``bev_pool`` output is [B, C * nz, nx, ny]: rows follow X.
    """
    view = _view_transform(bev_axes)
    feats = torch.zeros(2, 1, 1, 1, 2, 4)
    geometry = torch.zeros(2, 1, 1, 1, 2, 3)
    geometry[1, 0, 0, 0, 0] = torch.tensor([5.0, -10.0, 0.3])
    geometry[1, 0, 0, 0, 1] = torch.tensor([5.5, -9.8, -3.0])  # same cell
    feats[1, 0, 0, 0, 0] = torch.tensor([1.0, 2.0, 3.0, 4.0])
    feats[1, 0, 0, 0, 1] = torch.tensor([0.5, 0.5, 0.5, 0.5])
    geometry[0, ..., :] = 100.0  # outside the grid: dropped
    feats[0] = 7.0
    bev = view.bev_pool(geometry, feats)
    assert bev.shape == (2, 4, 40, 40)
    cell = (24, 11) if bev_axes == 'xy' else (11, 24)
    assert torch.equal(bev[1, :, cell[0], cell[1]], torch.tensor([1.5, 2.5, 3.5, 4.5]))
    assert float(bev.abs().sum()) == pytest.approx(12.0)


def test_view_transform_forward_shapes_and_geometry():
    view = _view_transform().eval()
    batch, cams = 1, 2
    cam2img = torch.tensor([[80.0, 0, 87.5], [0, 80.0, 31.5], [0, 0, 1]]).expand(batch, cams, 3, 3)
    cam2lidar = torch.eye(4).expand(batch, cams, 4, 4).clone()
    # camera looking along LiDAR +x: x_cam = -y, y_cam = -z, z_cam = x
    cam2lidar[..., :3, :3] = torch.tensor([[0.0, 0, 1], [-1, 0, 0], [0, -1, 0]])
    img_aug, lidar_aug = torch.eye(4).expand(batch, cams, 4, 4), torch.eye(4).expand(batch, 4, 4)
    with torch.no_grad():
        geometry = view.get_geometry(cam2img, cam2lidar, img_aug, lidar_aug)
        bev, frustum = view(torch.randn(batch, cams, 8, 8, 22),
                            torch.zeros(batch, cams, 1, 64, 176), cam2img, cam2lidar,
                            img_aug, lidar_aug)
    assert bev.shape == (1, 4, 20, 20)
    assert frustum.shape == (1, 2, 39, 8, 22, 4)
    # the frustum sample at depth d straight through the principal point
    # row/col is (d, 0, 0) in the LiDAR frame; BEVFusion's pixel grid is
    # linspace(0, W - 1, w), so column 0 is pixel 0 (87.5 px left of centre)
    d = view.frustum[:, 0, 0, 2]
    expected_y = 87.5 / 80.0 * d
    assert torch.allclose(geometry[0, 0, :, 0, 0, 0], d)
    assert torch.allclose(geometry[0, 0, :, 0, 0, 1], expected_y)
    assert torch.allclose(geometry[0, 0, :, 0, 0, 2], 31.5 / 80.0 * d)


def test_sparse_encoder_equals_stock_with_permuted_kernels():
    """X,Y,Z encoder == stock Z,Y,X encoder with kernels permuted; BEV transposed."""
    torch.manual_seed(0)
    ours = BEVFusionCompatSparseEncoder(
        sparse_shape=[64, 48, 41],
        encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)), **SPARSE_KW).eval()
    stock = SparseEncoder(sparse_shape=[41, 48, 64],
                          encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (0, 1, 1)), (0, 0)),
                          **SPARSE_KW).eval()
    ours_state, stock_state = ours.state_dict(), stock.state_dict()
    assert set(ours_state) == set(stock_state)
    with torch.no_grad():  # copy in place (load_state_dict would apply
        # mmdet3d's spconv 1.x -> 2.x conversion hook to unversioned dicts)
        for key, value in ours_state.items():
            # spconv 2.x weights [out, k0, k1, k2, in]: reverse the kernel axes
            stock_state[key].copy_(value.permute(0, 3, 2, 1, 4) if value.dim() == 5 else value)
    gen = torch.Generator().manual_seed(1)
    num = 600
    coors = torch.stack([torch.randint(0, 2, (num, ), generator=gen),
                         torch.randint(0, 40, (num, ), generator=gen),
                         torch.randint(0, 48, (num, ), generator=gen),
                         torch.randint(0, 64, (num, ), generator=gen)], 1)
    coors = torch.unique(coors, dim=0).int()
    feats = torch.randn(len(coors), 4, generator=gen)
    with torch.no_grad():
        out_ours = ours(feats, coors, 2)
        out_stock = stock(feats, coors, 2)
    assert out_ours.shape == (2, 32, 8, 6)  # [B, C * Z', X', Y']
    assert out_stock.shape == (2, 32, 6, 8)  # [B, C * Z', Y', X']
    assert float(out_ours.abs().sum()) > 0
    assert torch.allclose(out_ours, out_stock.transpose(-1, -2), atol=1e-4)


def test_neck_and_fuser_forward():
    neck = BEVFusionCompatGeneralizedLSSFPN(in_channels=[8, 16, 32], out_channels=12, num_outs=3)
    outs = neck([torch.randn(2, 8, 16, 44), torch.randn(2, 16, 8, 22), torch.randn(2, 32, 4, 11)])
    assert [tuple(o.shape) for o in outs] == [(2, 12, 16, 44), (2, 12, 8, 22)]
    assert neck.lateral_convs[1].conv.in_channels == 16 + 32
    assert neck.lateral_convs[0].conv.in_channels == 8 + 12
    fuser = BEVFusionCompatConvFuser(in_channels=[4, 6], out_channels=5)
    assert fuser([torch.randn(1, 4, 8, 8), torch.randn(1, 6, 8, 8)]).shape == (1, 5, 8, 8)
    with pytest.raises(ValueError, match='channels'):
        fuser([torch.randn(1, 6, 8, 8), torch.randn(1, 4, 8, 8)])


@pytest.mark.parametrize('rand_flip,angle', [(False, 0.0), (True, 0.0), (True, 4.0)])
def test_image_aug_matrix_maps_pixels(rand_flip, angle):
    """A bright pixel lands where img_aug_matrix sends it (flipped or not)."""
    img = np.zeros((900, 1600, 3), np.float32)
    u, v = 1000, 700
    img[v - 4:v + 5, u - 4:u + 5] = 255.0
    aug = BEVFusionCompatImageAug3D(final_dim=(256, 704), resize_lim=(0.44, 0.48),
                                    bot_pct_lim=(0.0, 0.1), rot_lim=(angle, angle),
                                    rand_flip=rand_flip, is_train=True, seed=0)
    flips = []
    for _ in range(6):
        out = aug.transform(dict(img=[img], cam2img=[np.eye(3)]))
        matrix = out['img_aug_matrix'][0]
        target = matrix[:2, :2] @ np.array([u, v]) + matrix[:2, 3]
        bright = np.argwhere(out['img'][0][..., 0] > 100)
        centre = bright.mean(0)[::-1]  # (col, row)
        assert np.allclose(centre, target, atol=1.5), (centre, target)
        flips.append(bool(matrix[0, 0] < 0))
    assert out['img'][0].shape == (256, 704, 3)
    assert out['cam2img'].shape == (1, 4, 4)
    assert any(flips) == rand_flip and all(flips) is False


def test_image_aug_matrix_follows_the_flipped_pixels():
    """A bright pixel lands where ``img_aug_matrix`` says, flipped or not.

    Regression: the flip used ``u' = W - u`` while reversing the array gives
    ``u' = W - 1 - u`` (integer pixel centres), a one-pixel error.
    """
    import numpy as np

    from projects.BEVFusionCompat.bevfusion_compat.image_aug import BEVFusionCompatImageAug3D
    aug = BEVFusionCompatImageAug3D(final_dim=(32, 64), resize_lim=(0.5, 0.5), rand_flip=True,
                                    is_train=True)
    image = np.zeros((64, 128, 3), np.uint8)
    image[20, 30] = 255
    flips = set()
    for seed in range(8):
        aug.rng = np.random.default_rng(seed)
        results = aug.transform(dict(img=[image.copy()], cam2img=[np.eye(3)]))
        out, matrix = results['img'][0][..., 0], results['img_aug_matrix'][0]
        v, u = np.unravel_index(out.argmax(), out.shape)
        expected = matrix[:2, :2] @ np.array([30.0, 20.0]) + matrix[:2, 3]
        assert (u, v) == tuple(expected.round().astype(int)), (seed, (u, v), expected)
        flips.add(bool(matrix[0, 0] < 0))
    assert flips == {True, False}


def test_relative_resize_fits_any_input_width():
    # resize_lim=(1, 1) with resize_relative fits 704- and 176-wide inputs to 176 x 64.
    aug = BEVFusionCompatImageAug3D(final_dim=(64, 176), resize_lim=(1.0, 1.0),
                                    resize_relative=True)
    absolute = BEVFusionCompatImageAug3D(final_dim=(64, 176), resize_lim=(0.25, 0.25))
    big = np.random.default_rng(0).uniform(0, 255, (256, 704, 3)).astype(np.float32)
    ours = aug.transform(dict(img=[big], cam2img=[np.eye(3)]))
    theirs = absolute.transform(dict(img=[big], cam2img=[np.eye(3)]))
    np.testing.assert_array_equal(ours['img_aug_matrix'], theirs['img_aug_matrix'])
    np.testing.assert_array_equal(ours['img'][0], theirs['img'][0])
    small = big[::4, ::4].copy()
    out = aug.transform(dict(img=[small], cam2img=[np.eye(3)]))
    np.testing.assert_array_equal(out['img_aug_matrix'][0], np.eye(4, dtype=np.float32))
    np.testing.assert_array_equal(out['img'][0], small)
