"""Every NS-MAE config builds; the paper-scale encoder matches stock BEVFusion."""
import json

import pytest
import torch

from .conftest import CONFIG_DIR, build_model, load_config

PAPER_CL = 'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py'
BEVFUSION_MANIFEST = 'mmdet3d-bevfusion_lidar-cam_voxel0075_second_secfpn.json'
ENCODERS = ('img_backbone', 'img_neck', 'view_transform', 'pts_voxel_encoder',
            'pts_middle_encoder', 'fusion_layer')
GRID_CONSTANTS = tuple(f'view_transform.{name}' for name in ('dx', 'bx', 'nx', 'frustum'))
CONFIGS = sorted(path.name for path in CONFIG_DIR.glob('*.py'))


def test_config_names_cover_all_variants():
    expected = {
        'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py',
        'nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py',
        'nsmae_second_8xb2-cyclic-50e_nus-pretrain.py',
        'nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
        'nsmae_r18-lss_1xb1-2e_synthetic-pretrain.py',
        'nsmae_second_1xb1-2e_synthetic-pretrain.py',
    }
    assert expected <= set(CONFIGS)


@pytest.mark.parametrize('name', CONFIGS)
def test_config_builds(name):
    cfg = load_config(name)
    assert cfg.default_scope == 'mmdet3d'
    assert cfg.custom_imports.imports == ['projects.BEVFusionCompat.bevfusion_compat',
                                          'projects.NSMAE.nsmae']
    model = build_model(name)
    has_cam = '-lss' in name
    has_lidar = '_second_' in name
    assert model.with_camera == has_cam
    assert model.with_lidar == has_lidar
    assert (model.fusion_layer is not None) == (has_cam and has_lidar)
    if 'synthetic' in name:
        assert cfg.train_dataloader.batch_size == 1
        if has_cam:  # ResNet-18, or the shrunk Swin-T of the tiny stock BEVFusion
            assert cfg.model.img_backbone.type == (
                'mmdet.SwinTransformer' if 'swint-tiny' in name else 'mmdet.ResNet')


def test_paper_encoder_matches_stock_bevfusion_manifest(manifests):
    path = manifests / BEVFUSION_MANIFEST
    if not path.exists():
        pytest.skip(f'{path} not found')
    stock = json.loads(path.read_text())['keys']
    model = build_model(PAPER_CL)
    ours = {key: list(value.shape) for key, value in model.state_dict().items()
            if key.split('.')[0] in ENCODERS}
    ref = {key: shape for key, shape in stock.items()
           if key.split('.')[0] in ENCODERS and key not in GRID_CONSTANTS}
    assert len(ref) == 187 + 24 + 55 + 126 + 6
    assert sorted(set(ref) - set(ours)) == []
    assert sorted(set(ours) - set(ref)) == []
    assert {key: shape for key, shape in ref.items() if ours[key] != shape} == {}
    # grid constants: present in the stock checkpoint, buffers-not-saved here
    assert all(key in stock for key in GRID_CONSTANTS)
    view = model.view_transform
    assert list(view.frustum.shape) == stock['view_transform.frustum']
    assert view.nx.tolist() == [360, 360, 1]
    assert torch.allclose(view.dx, torch.tensor([0.3, 0.3, 20.0]))
    assert torch.allclose(view.bx, torch.tensor([-53.85, -53.85, 0.0]))
