"""MIM4D: the render box is the volume grid box (the SDF field reads the volume over it)."""
from pathlib import Path

import pytest
from mmengine.config import Config

import projects.MIM4D.mim4d  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules
from render_pretrain.grid import VoxelGrid

TINY = (Path(__file__).resolve().parents[2] / 'projects' / 'MIM4D' / 'configs'
        / 'mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py')


def test_volume_grid_and_render_box():
    register_all_modules()
    cfg = Config.fromfile(str(TINY))
    model = MODELS.build(cfg.model)
    # tiny config: [-24, 24]^2 x [-5, 3] in 24 x 24 x 4 voxels of 2 m
    assert model.view_transform.grid == VoxelGrid((-24.0, -24.0, -5.0), (2.0, 2.0, 2.0),
                                                  (24, 24, 4))
    assert model.render_head.aabb == model.view_transform.grid.aabb
    cfg.model.render_head.aabb = [-24.0, -24.0, -5.0, 24.0, 24.0, 5.0]
    with pytest.raises(ValueError, match='render_head.aabb .* must be the volume box'):
        MODELS.build(cfg.model)
