"""BEVFusionSeg: the tiny config trains and evaluates through the Runner."""
import copy
import math

import pytest
import torch
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mmdet3d.registry import DATASETS, MODELS
from tools.utils import load_config, prepare_registries
from render_pretrain.nuscenes_infos import BEV_MAP_CLASSES
from render_pretrain.paths import REPO_ROOT
from tests.bevseg.conftest import point_at_synthetic_world, seg_config


def _train_and_predict_first_sample(model, cfg):
    """One loss (asserting the six finite, positive class losses) and one prediction.

    Returns:
        tuple: the preprocessed training batch of the first sample of
        ``cfg``'s training set and ``model.predict``'s data samples.
    """
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {f'loss_{name}' for name in BEV_MAP_CLASSES}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    model.eval()
    with torch.no_grad():
        out = model.predict(data['inputs'], data['data_samples'])
    return data, out


@pytest.mark.runner
def test_runner_trains_one_epoch_and_reports_miou(synthetic_infos, tmp_path):
    cfg = point_at_synthetic_world(seg_config(), synthetic_infos)
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.update(max_epochs=1, val_interval=2)  # evaluate once, below
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0, end=1)]
    cfg.randomness = dict(seed=0)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    before = copy.deepcopy(model.seg_head.state_dict())
    runner.train()
    assert not torch.equal(before['classifier.6.weight'], model.seg_head.state_dict()[
        'classifier.6.weight'])
    assert (tmp_path / 'epoch_1.pth').is_file()
    metrics = runner.val()
    assert {f'bev_seg/{name}/iou@max' for name in BEV_MAP_CLASSES} <= set(metrics)
    assert all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in metrics.values())
    # mIoU is the mean of the per-class best thresholds
    assert metrics['bev_seg/mIoU'] == pytest.approx(
        sum(metrics[f'bev_seg/{name}/iou@max'] for name in BEV_MAP_CLASSES) / 6)


@pytest.mark.parametrize('modality', ['camera', 'lidar'])
def test_single_modality_models(modality, synthetic_infos):
    cfg = point_at_synthetic_world(seg_config(), synthetic_infos)
    model_cfg = cfg.model
    if modality == 'camera':
        model_cfg.update(pts_voxel_encoder=None, pts_middle_encoder=None, fusion_layer=None,
                         depth_input='none')
        model_cfg.pts_backbone.in_channels = 16
    else:
        model_cfg.update(img_backbone=None, img_neck=None, view_transform=None,
                         fusion_layer=None)
        model_cfg.pts_backbone.in_channels = 256
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    assert model.with_camera == (modality == 'camera')
    assert model.with_lidar == (modality == 'lidar')
    data, out = _train_and_predict_first_sample(model, cfg)
    assert out[0].pred_map_seg.shape == (6, 96, 96)
    del data['data_samples'][0].gt_map_seg
    model.train()
    with pytest.raises(KeyError, match='gt_map_seg'):
        model.loss(data['inputs'], data['data_samples'])


def test_encode_bev_is_nsmae_encoding_without_masks(synthetic_infos):
    """The shared mixin's plain encoding equals NS-MAE's with masking off."""
    config = REPO_ROOT / 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'
    nsmae_cfg = prepare_registries(load_config(str(config)))
    nsmae_cfg.model.update(img_masker=None, voxel_mask_ratio=0.0, depth_input='all',
                           pv_render_head=None, bev_render_head=None)
    torch.manual_seed(0)
    nsmae = MODELS.build(nsmae_cfg.model).eval()
    cfg = point_at_synthetic_world(seg_config(), synthetic_infos)
    dataset = DATASETS.build(cfg.train_dataloader.dataset)
    data = nsmae.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=False)
    with torch.no_grad():
        masked_path = nsmae.extract_feat(data['inputs'], data['data_samples'])['bev']
        plain = nsmae.encode_bev(data['inputs'], data['data_samples'], 'all')
        no_depth = nsmae.encode_bev(data['inputs'], data['data_samples'], 'none')
    assert plain.shape == (2, 32, 20, 20)
    torch.testing.assert_close(plain, masked_path)
    assert not torch.allclose(plain, no_depth)  # the LiDAR depth prior is used


@pytest.mark.parametrize('name', ['bevfusionseg_cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py',
                                  'bevdetseg_r18-lss_1xb1-2e_synthetic-seg.py'])
def test_tiny_camera_configs_train_and_predict_on_the_label_grid(name, synthetic_infos):
    """The camera-only tiny configs of the transfer chains (NS-MAE C, MIM4D)."""
    cfg = point_at_synthetic_world(seg_config(name), synthetic_infos)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    data, out = _train_and_predict_first_sample(model, cfg)
    assert 'points' not in data['inputs']  # camera only
    # +-24 m at 0.5 m: the label grid, the label cropped to it
    assert out[0].pred_map_seg.shape == out[0].gt_map_seg.shape == (6, 96, 96)


def test_encoder_configs_are_checked_by_name():
    """The BEVFusion encoder configs are keywords: a misspelt one is named, not dropped."""
    from projects.BEVFusionCompat.bevfusion_compat.encoder import BEVFusionEncoderMixin
    model_cfg = seg_config().model
    typo = dict(model_cfg, pts_voxel_encoders=model_cfg.pts_voxel_encoder)
    with pytest.raises(TypeError, match=r"BEVFusionSeg: unknown BEVFusion encoder config\(s\) "
                       r"\['pts_voxel_encoders'\]; the encoder configs are \['img_backbone', "):
        MODELS.build(typo)
    host = BEVFusionEncoderMixin()  # a camera-only host names only its three branches
    host._build_bevfusion_encoders('Host', img_backbone=model_cfg.img_backbone,
                                   img_neck=model_cfg.img_neck,
                                   view_transform=model_cfg.view_transform)
    assert host.with_camera and not host.with_lidar
    assert (host.pts_voxel_encoder, host.pts_middle_encoder, host.fusion_layer) == (None,) * 3
    assert type(host.view_transform).__name__ == model_cfg.view_transform.type
    with pytest.raises(ValueError, match='the camera branch needs img_neck and view_transform'):
        host._build_bevfusion_encoders('Host', img_backbone=model_cfg.img_backbone)


def test_bevdetseg_builds_bevdets_encoder_and_names_a_wrong_key():
    """BEVDetSeg's encoder configs go to BEVDetCompat's builder: same modules, keys checked."""
    model_cfg = seg_config('bevdetseg_r18-lss_1xb1-2e_synthetic-seg.py').model
    model = MODELS.build(model_cfg)
    assert [name for name, _ in model.named_children()] == [
        'data_preprocessor', 'img_backbone', 'img_neck', 'img_view_transformer',
        'img_bev_encoder_backbone', 'img_bev_encoder_neck', 'seg_head']
    assert type(model.img_view_transformer).__name__ == 'BEVDetLSSViewTransformer'
    typo = dict(model_cfg, img_view_transformers=model_cfg.pop('img_view_transformer'))
    with pytest.raises(TypeError, match=r"BEVDetSeg: BEVDet encoder configs "
                       r"\['img_view_transformer'\] missing, \['img_view_transformers'\] "
                       r"unknown; the encoder configs are \['img_backbone', "):
        MODELS.build(typo)
