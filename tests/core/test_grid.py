"""The one grid value: closed-form paper grids and agreement of every derived value."""
import doctest
import math

import numpy as np
import pytest
import torch

import render_pretrain.grid as grid_module
from render_pretrain.grid import VoxelGrid, check_bev_axes, conv_output_shape

NUS_RANGE = [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]


def test_doctests():
    assert doctest.testmod(grid_module, raise_on_error=True).attempted > 0


def test_bevfusion_lidar_grid_closed_form():
    """BEVFusion / NS-MAE: [-54, 54] at 0.075 m, z [-5, 3] at 0.2 m."""
    g = VoxelGrid.from_range(NUS_RANGE, [0.075, 0.075, 0.2])
    assert g.shape == (1440, 1440, 40)  # 108 / 0.075, 8 / 0.2
    # the stock configs' sparse_shape (BEVFusion X, Y, Z; CenterPoint Z, Y, X)
    assert g.sparse_shape('xyz') == (1440, 1440, 41)
    assert g.sparse_shape('zyx') == (41, 1440, 1440)
    assert g.aabb == tuple(NUS_RANGE) == g.point_cloud_range
    assert g.bev_stride((180, 180), 'xy') == (8, 8)
    coarse = g.coarsened((8, 8))
    assert coarse.shape == (180, 180, 40)
    assert coarse.voxel_size == pytest.approx((0.6, 0.6, 0.2))
    assert coarse.aabb == pytest.approx(tuple(NUS_RANGE))


def test_bevfusion_camera_grid_closed_form():
    """BEVFusion's LSS: x/ybound [-54, 54, 0.3], zbound [-10, 10, 20]."""
    g = VoxelGrid.from_bounds([-54.0, 54.0, 0.3], [-54.0, 54.0, 0.3], [-10.0, 10.0, 20.0])
    assert g.nx == (360, 360, 1)
    assert g.dx == pytest.approx((0.3, 0.3, 20.0))
    assert g.bx == pytest.approx((-53.85, -53.85, 0.0))
    assert sum(g.bounds, ()) == pytest.approx((-54, 54, 0.3, -54, 54, 0.3, -10, 10, 20))
    # after the view transform's downsample 2, its BEV cells are the LiDAR
    # grid's 8 x 8 voxel columns: the fuser adds the two maps cell by cell
    lidar = VoxelGrid.from_range(NUS_RANGE, [0.075, 0.075, 0.2]).coarsened((8, 8))
    cam = g.coarsened((2, 2))
    assert cam.shape[:2] == lidar.shape[:2] == (180, 180)
    assert cam.voxel_size[:2] == pytest.approx(lidar.voxel_size[:2])
    assert cam.lower[:2] == lidar.lower[:2]


def test_bevdet_grid_closed_form():
    g = VoxelGrid.from_bounds([-51.2, 51.2, 0.8], [-51.2, 51.2, 0.8], [-10.0, 10.0, 20.0])
    assert g.shape == (128, 128, 1)
    assert g.bx == pytest.approx((-50.8, -50.8, 0.0))
    assert g.bev_shape('yx') == (128, 128)


def test_mim4d_volume_closed_form():
    """MIM4D: 180 x 180 x 5 voxels over the nuScenes box; the render AABB is the box."""
    g = VoxelGrid.from_range_and_shape(NUS_RANGE, (180, 180, 5))
    assert g.voxel_size == pytest.approx((0.6, 0.6, 1.6))
    assert g.aabb == tuple(NUS_RANGE)
    assert g.cell_centres(2).tolist() == pytest.approx([-4.2, -2.6, -1.0, 0.6, 2.2])
    assert g.cell_centres(0)[[0, -1]].tolist() == pytest.approx([-53.7, 53.7])


def test_constructors_agree_and_round_trip():
    a = VoxelGrid.from_range(NUS_RANGE, [0.075, 0.075, 0.2])
    b = VoxelGrid.from_bounds([-54, 54, 0.075], [-54, 54, 0.075], [-5, 3, 0.2])
    c = VoxelGrid.from_range_and_shape(NUS_RANGE, (1440, 1440, 40))
    assert a == b
    assert c.shape == a.shape and c.voxel_size == pytest.approx(a.voxel_size)
    assert VoxelGrid.from_range(a.point_cloud_range, a.voxel_size) == a
    assert VoxelGrid.from_bounds(*a.bounds) == a
    # bx is the centre of voxel 0, and every centre is lower + (i + 0.5) * size
    for axis in range(3):
        centres = a.cell_centres(axis, dtype=torch.float64)
        assert centres[0].item() == pytest.approx(a.bx[axis])
        assert centres[-1].item() == pytest.approx(a.upper[axis] - a.voxel_size[axis] / 2)
    torch.testing.assert_close(a.to_tensor('bx'), torch.tensor(a.bx, dtype=torch.float32))
    assert a.to_tensor('nx').dtype == torch.long and a.to_tensor('nx').tolist() == [1440, 1440, 40]


def test_voxel_indices_match_mmcv_voxelization():
    """The grid's voxel index of a point is the one mmcv's (real) hard voxeliser gives."""
    from mmcv.ops import Voxelization
    g = VoxelGrid.from_range([-4.0, -3.0, -2.0, 4.0, 3.0, 2.0], [0.5, 0.25, 1.0])
    gen = torch.Generator().manual_seed(0)
    points = torch.rand(2000, 3, generator=gen) * torch.tensor([10.0, 8.0, 5.0]) - torch.tensor(
        [5.0, 4.0, 2.5])
    layer = Voxelization(list(g.voxel_size), list(g.point_cloud_range), max_num_points=1,
                         max_voxels=100000, deterministic=True)
    _, coors_zyx, _ = layer(points)
    ijk, inside = g.voxel_indices(points)
    ours = {tuple(v) for v in ijk[inside].flip(1).tolist()}
    assert ours == {tuple(v) for v in coors_zyx.tolist()}
    assert 0 < int(inside.sum()) < 2000


def test_voxel_index_coarsened_is_the_bev_cell_and_keys_are_row_major():
    g = VoxelGrid.from_range(NUS_RANGE, [0.075, 0.075, 0.2])
    gen = torch.Generator().manual_seed(1)
    points = (torch.rand(5000, 3, generator=gen, dtype=torch.float64) * 120 - 60) * torch.tensor(
        [1.0, 1.0, 0.08], dtype=torch.float64)
    ijk, inside = g.voxel_indices(points)
    stride = g.bev_stride((180, 180), 'xy')
    coarse = g.coarsened(stride)
    cell, cell_inside = coarse.voxel_indices(points)
    assert torch.equal(inside, cell_inside)
    assert torch.equal(VoxelGrid.coarsen_indices(ijk[inside], stride), cell[inside])
    # numpy closed form of the cell: floor((p - lower) / 0.6)
    expected = np.floor((points[inside, :2].numpy() + 54.0) / 0.6).astype(np.int64)
    assert np.array_equal(cell[inside, :2].numpy(), expected)
    # flat keys = row-major index of a (B, Z, Y, X) array
    batch = torch.randint(0, 3, (int(inside.sum()), ), generator=gen)
    keys = g.flat_keys(batch, ijk[inside])
    sel = ijk[inside].numpy()
    ravel = np.ravel_multi_index((batch.numpy(), sel[:, 2], sel[:, 1], sel[:, 0]),
                                 (3, 40, 1440, 1440))
    assert np.array_equal(keys.numpy(), ravel)


def test_bev_shape_and_stride_follow_bev_axes():
    g = VoxelGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (12, 8, 2))
    assert g.bev_shape('xy') == (12, 8) and g.bev_shape('yx') == (8, 12)
    assert g.bev_stride((6, 2), 'xy') == (2, 4)
    assert g.bev_stride((2, 6), 'yx') == (2, 4)
    assert g.coarsened((5, 3)).shape == (3, 3, 2)  # ceil(12 / 5), ceil(8 / 3)
    with pytest.raises(ValueError, match='integer multiple'):
        g.bev_stride((5, 8), 'xy')
    with pytest.raises(ValueError, match="bev_axes must be 'xy'"):
        check_bev_axes('zx')


def test_bad_grids_raise_with_the_axis():
    with pytest.raises(ValueError, match='axis y: extent .* not a whole number'):
        VoxelGrid.from_range([-1, -1, -1, 1, 1, 1], [0.5, 0.3, 0.5])
    with pytest.raises(ValueError, match='axis z: needs max > min'):
        VoxelGrid.from_bounds([-1, 1, 0.5], [-1, 1, 0.5], [1, -1, 0.5])
    with pytest.raises(ValueError, match='positive voxel sizes'):
        VoxelGrid((0, 0, 0), (1, 0, 1), (1, 1, 1))
    with pytest.raises(ValueError, match="order must be 'xyz' or 'zyx'"):
        VoxelGrid((0, 0, 0), (1, 1, 1), (1, 1, 1)).sparse_shape('yxz')


@pytest.mark.parametrize('kernel, stride, padding', [
    ((3, 3, 3), (2, 2, 2), (1, 1, 1)),
    ((3, 1, 1), (2, 1, 1), (0, 0, 0)),
    ((1, 1, 3), (1, 1, 2), (0, 0, 0)),
    ((3, 3, 3), (2, 2, 2), (0, 1, 1)),
])
def test_conv_output_shape_matches_torch_conv3d(kernel, stride, padding):
    shape = (11, 9, 7)
    conv = torch.nn.Conv3d(1, 1, kernel, stride=stride, padding=padding)
    out = conv(torch.zeros(1, 1, *shape)).shape[2:]
    assert conv_output_shape(shape, kernel, stride, padding, (1, 1, 1)) == tuple(out)


def test_sparse_shape_through_second_encoder_gives_the_paper_bev():
    """SECOND's z chain: 41 -> 21 -> 11 -> 5 (pad 0 in z) -> conv_out (3, stride 2) -> 2."""
    z = VoxelGrid.from_range(NUS_RANGE, [0.075, 0.075, 0.2]).sparse_shape('zyx')
    shape = z
    for pad in ((1, 1, 1), (1, 1, 1), (0, 1, 1)):
        shape = conv_output_shape(shape, (3, 3, 3), (2, 2, 2), pad, (1, 1, 1))
    shape = conv_output_shape(shape, (3, 1, 1), (2, 1, 1), (0, 0, 0), (1, 1, 1))
    assert shape == (2, 180, 180)
    assert math.prod(shape[1:]) == 180 * 180
