"""NS-MAE's voxel grid, encoder sparse_shape and BEV axes must agree (else misplaced targets)."""
import pytest
import torch

from render_pretrain.grid import VoxelGrid
from .conftest import TINY_CL, build_model, preprocess, synthetic_item

TINY_VIEW = dict(type='BEVFusionCompatDepthLSSTransform', in_channels=32, out_channels=16,
                 image_size=[64, 176], feature_size=[8, 22], xbound=[-24.0, 24.0, 1.2],
                 ybound=[-24.0, 24.0, 1.2], zbound=[-10.0, 10.0, 20.0],
                 dbound=[1.0, 40.0, 1.0], downsample=2)


def test_detector_grid_is_the_preprocessor_voxel_grid():
    model = build_model(TINY_CL)
    # tiny config: [-24, 24]^2 x [-5, 3] at (0.3, 0.3, 0.2) m
    assert model.grid == VoxelGrid((-24.0, -24.0, -5.0), (0.3, 0.3, 0.2), (160, 160, 40))
    assert model.pts_middle_encoder.sparse_shape == [160, 160, 41]
    assert model.grid_shape == [160, 160, 40]


def test_sparse_shape_off_the_voxel_grid_is_refused():
    with pytest.raises(ValueError, match=r'sparse_shape \[160, 160, 40\] does not match .*'
                                         r'expected \[160, 160, 41\] \(XYZ order\)'):
        build_model(TINY_CL, pts_middle_encoder=dict(sparse_shape=[160, 160, 40]))


def test_bev_axes_that_disagree_with_the_encoders_are_refused():
    # detector 'yx' but BEVFusionCompat encoders lay their maps out [.., X, Y]
    with pytest.raises(ValueError, match="bev_axes='yx' but .*pts_middle_encoder"):
        build_model(TINY_CL, bev_axes='yx')
    with pytest.raises(ValueError, match="view_transform"):
        build_model(TINY_CL, view_transform=dict(TINY_VIEW, bev_axes='yx'))


def test_empty_lidar_bev_has_the_encoder_output_shape():
    """The all-masked LiDAR map has the shape the sparse encoder gives on real voxels."""
    model = build_model(TINY_CL)
    model.eval()
    data = preprocess(model, [synthetic_item(seed=2)], training=False)
    voxels = data['inputs']['voxels']
    with torch.no_grad():
        real = model._extract_lidar(voxels, torch.ones(len(voxels['coors']), dtype=torch.bool), 1)
    empty = model._empty_lidar_bev(1, voxels['voxels'])
    assert empty.shape == real.shape == (1, 256, 20, 20)
    assert not bool(empty.any())
