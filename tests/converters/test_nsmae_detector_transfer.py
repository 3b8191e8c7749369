"""Our own NS-MAE detector (LiDAR-only paper config) -> CenterPoint, strict.

Guards the contract between projects/NSMAE and the tables: the pre-training
detector's sparse encoder must land on stock CenterPoint's keys and shapes
with nothing missing, unexpected or mis-shaped.
"""
import importlib

import pytest
import torch

from render_pretrain.converters import convert_state_dict, get_table, load_manifest
from render_pretrain.paths import REPO_ROOT
from tests.converters.fake_checkpoints import CENTERPOINT_MANIFEST

CONFIG = REPO_ROOT / 'projects/NSMAE/configs/nsmae_second_8xb2-cyclic-50e_nus-pretrain.py'


def test_nsmae_lidar_detector_converts_strictly(manifests):
    pytest.importorskip('mmdet3d')
    from mmengine.config import Config

    from mmdet3d.registry import MODELS
    from mmdet3d.utils import register_all_modules

    register_all_modules()
    cfg = Config.fromfile(CONFIG)
    for name in cfg.custom_imports['imports']:
        importlib.import_module(name)
    state_dict = MODELS.build(cfg.model).state_dict()
    result = convert_state_dict(state_dict, get_table('nsmae', 'mmdet3d-centerpoint'),
                                manifest=load_manifest(manifests / CENTERPOINT_MANIFEST),
                                strict=True)
    encoder = result.report.module('pts_middle_encoder')
    assert len(encoder.transferred) == 126 and len(encoder.permuted) == 21
    assert result.report.unmapped == []
    key = 'pts_middle_encoder.conv_out.0.weight'
    assert torch.equal(result.state_dict[key], torch.einsum('oxyzi->ozyxi', state_dict[key]))
