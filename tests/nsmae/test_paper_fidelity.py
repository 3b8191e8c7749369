"""The paper-scale NS-MAE configs carry the paper / released hyper-parameters.

One row per line of the table in projects/NSMAE/README.md ("Paper
fidelity"); the expected values are written here by hand from the paper and
the released code (../shared/docs/METHODS.md), never read from the code.
"""
import copy
import math
import socket
import urllib.request
from types import SimpleNamespace

import pytest
import torch
from mmengine.optim import build_optim_wrapper
from mmengine.registry import PARAM_SCHEDULERS

from mmdet3d.registry import HOOKS, MODELS
from .conftest import CONFIG_DIR, TINY_CL, build_model, load_config

PAPER_CL = 'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py'
PAPER_C = 'nsmae_swint-lss_8xb2-cyclic-50e_nus-pretrain.py'
PAPER_L = 'nsmae_second_8xb2-cyclic-50e_nus-pretrain.py'
PAPER = (PAPER_CL, PAPER_C, PAPER_L)
CONFIGS = sorted(path.name for path in CONFIG_DIR.glob('*.py'))


def _transform(cfg, name):
    found = [t for t in cfg.train_dataloader.dataset.pipeline if t['type'] == name]
    assert len(found) == 1, (name, [t['type'] for t in cfg.train_dataloader.dataset.pipeline])
    return found[0]


def _hooks(cfg, name):
    return [h for h in cfg.get('custom_hooks', []) if h['type'] == name]


@pytest.mark.parametrize('name', PAPER)
def test_paper_config_rows(name):
    """Every row of the README's paper-fidelity table, per paper config."""
    cfg = load_config(name)
    model = cfg.model
    has_cam, has_lidar = name != PAPER_L, name != PAPER_C
    layer = model.data_preprocessor.voxel_layer
    # voxel size, range, sparse shape (X, Y, Z with SECOND's +1 in Z)
    assert layer.voxel_size == [0.075, 0.075, 0.2]
    assert layer.point_cloud_range == [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    assert layer.max_num_points == 10
    assert list(layer.max_voxels) == [120000, 160000]
    if has_lidar:
        assert model.pts_middle_encoder.sparse_shape == [1440, 1440, 41]
    # LiDAR input: 9 sweeps
    assert _transform(cfg, 'LoadPointsFromMultiSweeps')['sweeps_num'] == 9
    # voxel drop ratio
    assert model.voxel_mask_ratio == 0.9
    # BEV render head: 41 height bins of 0.2 m over the grid's Z
    assert model.bev_render_head.num_bins == 41
    assert model.bev_render_head.zbound == [-5.0, 3.2]
    # loss weights and units: RGB MSE in [0, 1], PV depth L1 in metres, BEV
    # height L1 in metres (released 0.01 per 0.2 m voxel index = 0.05 / m)
    assert model.loss_weights == dict(rgb=10000.0, pv_depth=0.01, bev_depth=0.05)
    if has_cam:
        # depth bins and range: 1..60 m, step 0.5 m, 118 bins
        assert model.view_transform.dbound == [1.0, 60.0, 0.5]
        assert model.pv_render_head.dbound == [1.0, 60.0, 0.5]
        assert model.view_transform.out_channels == model.pv_render_head.in_channels == 80
        # image size 256 x 704, features at stride 8
        assert model.view_transform.image_size == [256, 704]
        assert model.view_transform.feature_size == [32, 88]
        aug = _transform(cfg, 'BEVFusionCompatImageAug3D')
        assert aug['final_dim'] == [256, 704]
        assert (aug['resize_lim'], aug['rot_lim'], aug['rand_flip']) == (
            [0.38, 0.55], [-5.4, 5.4], True)
        # image masking: 8 x 8 patches, 50 %
        assert model.img_masker.patch_size == 8
        assert model.img_masker.mask_ratio == 0.5
        # backbone: Swin-T from random init (no ImageNet download)
        assert model.img_backbone.type == 'mmdet.SwinTransformer'
        assert model.img_backbone.embed_dims == 96
        assert model.img_backbone.depths == [2, 2, 6, 2]
        assert model.img_backbone.init_cfg is None
    # optimiser, lr, weight decay, clip
    assert cfg.optim_wrapper.optimizer == dict(type='AdamW', lr=1e-4, weight_decay=0.01)
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)
    # epochs, batch (8 GPUs x 2)
    assert cfg.train_cfg.max_epochs == 50
    assert cfg.train_dataloader.batch_size == 2 and '_8xb2-' in name
    # freeze epoch (C + L only)
    freeze = _hooks(cfg, 'NSMAEFreezeLiDAREncoderHook')
    if has_cam and has_lidar:
        assert [h['freeze_epoch'] for h in freeze] == [10]
        assert cfg.model_wrapper_cfg.find_unused_parameters is True
    else:
        assert freeze == []


def _build_schedule(cfg, epoch_length):
    """Optimiser wrapper and schedulers as mmengine's Runner builds them."""
    net = torch.nn.Linear(2, 2)
    optim_wrapper = build_optim_wrapper(net, copy.deepcopy(cfg.optim_wrapper))
    schedulers = []
    for sched in copy.deepcopy(cfg.param_scheduler):
        sched = dict(sched)
        assert sched.pop('convert_to_iter_based') is True
        cls = PARAM_SCHEDULERS.get(sched.pop('type'))
        schedulers.append(cls.build_iter_from_epoch(
            optimizer=optim_wrapper, epoch_length=epoch_length, **sched))
    return optim_wrapper, schedulers


def test_paper_schedule_is_bevfusion_cyclic():
    """lr 1e-4 -> 1e-3 (40 %) -> 1e-8; beta1 0.9 -> 0.9 * 0.85 / 0.95 (40 %) -> 0.9."""
    cfg = load_config(PAPER_CL)
    epoch_length = 4  # scaled down: 50 epochs of 4 iterations
    optim_wrapper, schedulers = _build_schedule(cfg, epoch_length)
    group = optim_wrapper.optimizer.param_groups[0]
    assert group['betas'][0] == pytest.approx(0.9)
    total = 50 * epoch_length
    seen = []  # (lr, beta1) used by iterations 0 .. total - 1
    for _ in range(total):
        seen.append((group['lr'], group['betas'][0]))
        for scheduler in schedulers:
            scheduler.step()
    low = 0.9 * 0.85 / 0.95

    def phase(t, period, start, end):
        return end + (start - end) * (1 + math.cos(math.pi * t / period)) / 2

    # closed form of the two chained cosine phases; as in mmengine, phase 2
    # starts (iteration 80) from the value phase 1 reached at iteration 79
    lr79, beta79 = phase(79, 80, 1e-4, 1e-3), phase(79, 80, 0.9, low)
    for step in (0, 20, 40, 60, 79, 80, 100, 140, 199):
        if step < 80:
            lr, beta = phase(step, 80, 1e-4, 1e-3), phase(step, 80, 0.9, low)
        else:
            lr, beta = phase(step - 80, 120, lr79, 1e-8), phase(step - 80, 120, beta79, 0.9)
        assert seen[step][0] == pytest.approx(lr, rel=1e-6), step
        assert seen[step][1] == pytest.approx(beta, rel=1e-6), step
    # 40 %: beta1 at 0.85 / 0.95 of its start, lr at 10x
    assert seen[79][1] == pytest.approx(0.8052631578947368, abs=1e-4)
    assert seen[79][0] == pytest.approx(1e-3, rel=1e-3)
    # the end: beta1 back to its start (never towards 1.0), lr at 1e-4 x
    assert seen[199][1] == pytest.approx(0.9, abs=1e-4)
    assert seen[199][0] < 1e-6  # 1e-8 at the end of the last iteration
    assert max(beta for _, beta in seen) <= 0.9 + 1e-9


def test_paper_freeze_hook_freezes_lidar_encoder_at_epoch_10():
    cfg = load_config(PAPER_CL)
    hooks = [HOOKS.build(copy.deepcopy(h)) for h in cfg.custom_hooks
             if h['type'] == 'NSMAEFreezeLiDAREncoderHook']
    assert len(hooks) == 1
    model = build_model(TINY_CL).train()
    runner = SimpleNamespace(model=model, epoch=9)
    hooks[0].before_train_epoch(runner)
    assert not model.lidar_frozen
    assert all(p.requires_grad for p in model.pts_middle_encoder.parameters())
    runner.epoch = 10
    hooks[0].before_train_epoch(runner)
    model.train()
    assert model.lidar_frozen
    for module in (model.pts_voxel_encoder, model.pts_middle_encoder):
        assert all(not p.requires_grad for p in module.parameters())
    norms = [m for m in model.pts_middle_encoder.modules()
             if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert len(norms) > 10 and not any(m.training for m in norms)
    assert all(p.requires_grad for p in model.img_backbone.parameters())
    assert model.fusion_layer.training


def _find_pretrained(node, path='model'):
    """Paths of every init_cfg of type Pretrained in a config tree."""
    found = []
    if isinstance(node, dict):
        if node.get('type') == 'Pretrained':
            found.append(path)
        for key, value in node.items():
            found += _find_pretrained(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for index, value in enumerate(node):
            found += _find_pretrained(value, f'{path}[{index}]')
    return found


@pytest.mark.parametrize('name', CONFIGS)
def test_building_and_initialising_never_touches_the_network(name, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f'network access while building {name}: {args[:2]}')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setattr(urllib.request, 'urlopen', refuse)
    monkeypatch.setattr(torch.hub, 'load_state_dict_from_url', refuse)
    monkeypatch.setattr(torch.hub, 'download_url_to_file', refuse)
    cfg = load_config(name)
    assert _find_pretrained(cfg.model) == []
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
