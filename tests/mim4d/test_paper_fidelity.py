"""The paper config against the README's paper-fidelity table, row by row.

Each row of the table in projects/MIM4D/README.md ("Paper fidelity") has one
check here, read from the built paper config (the model, its optimiser and
its pipeline). Changing a value of the config fails the row; adding or
removing a table row without a check fails ``test_every_readme_row_is_checked``.
"""
import copy
import math
import re
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from torch import nn

import projects.MIM4D.mim4d  # noqa: F401
from mmdet3d.registry import MODELS
from mmdet3d.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[2]
PAPER_CONFIG = (ROOT / 'projects' / 'MIM4D' / 'configs'
                / 'mim4d_r50-lss_temporal-neus_8xb1-12e_nus-pretrain.py')
README = ROOT / 'projects' / 'MIM4D' / 'README.md'


@pytest.fixture(scope='module')
def paper():
    """The paper config, its built model and its optimiser wrapper."""
    register_all_modules()
    cfg = Config.fromfile(str(PAPER_CONFIG))
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    optim_wrapper = build_optim_wrapper(model, copy.deepcopy(cfg.optim_wrapper))
    return cfg, model, optim_wrapper


def _step(cfg, name):
    steps = [s for s in cfg.train_dataloader.dataset.pipeline if s.type == name]
    assert len(steps) == 1, name
    return steps[0]


def _linears(module):
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def check_grid(cfg, model, _):
    vt = model.view_transform
    assert vt.point_cloud_range == [-54.0, -54.0, -5.0, 54.0, 54.0, 3.0]
    assert vt.grid_shape == [180, 180, 5]
    assert vt.voxel_size == pytest.approx([0.6, 0.6, 1.6])
    assert model.render_head.aabb == tuple(vt.point_cloud_range)


def check_sweeps(cfg, model, _):
    assert _step(cfg, 'MIM4DLoadMultiViewSweeps').num_sweeps == 3


def check_mask(cfg, model, _):
    assert model.img_masker.cell_size == 32
    assert model.img_masker.mask_ratio == 0.3


def check_depth_bins(cfg, model, _):
    assert model.view_transform.num_depth == 59
    depths = model.view_transform.frustum[:, 0, 0, 2]
    assert depths[0].item() == 1.0 and depths[-1].item() == 59.0  # 1..60 m, 1 m bins


def check_volume_projection(cfg, model, _):
    proj = model.view_transform.volume_proj
    assert [type(m) for m in proj] == [nn.Conv3d, nn.BatchNorm3d, nn.ReLU]
    conv = proj[0]
    assert (conv.in_channels, conv.out_channels) == (64, 32)
    assert conv.kernel_size == (3, 3, 3) and conv.padding == (1, 1, 1)
    assert conv.stride == (1, 1, 1) and proj[1].num_features == 32


def check_rays(cfg, model, _):
    assert model.render_head.rays_per_camera == 512
    assert model.render_head.lidar_fraction == 1.0


def check_lidar_range(cfg, model, _):
    head = model.render_head
    assert (head.min_depth, head.max_depth) == (3.0, 50.0)
    # horizontal range: a point 2.9 m away horizontally but 5 m below is not a LiDAR ray
    lidar2img = torch.eye(4).view(1, 1, 4, 4)  # camera at the origin looking along +z
    lidar2img[0, 0, :3, :3] = torch.tensor([[1.0, 0.0, 50.0], [0.0, 1.0, 50.0],
                                            [0.0, 0.0, 1.0]])
    points = torch.tensor([[0.0, 2.9, 5.0], [0.0, 0.0, 4.0], [3.5, 0.0, 5.0]])
    rays = head.sample_rays(points, torch.zeros(3, dtype=torch.long), lidar2img, (100, 100),
                            torch.Generator().manual_seed(0))
    assert int(rays.has_depth.sum()) == 1
    torch.testing.assert_close(rays.depth[rays.has_depth], points[2].norm().view(1))


def check_sky_rows(cfg, model, _):
    assert model.render_head.horizon_fraction == 0.3


def check_samples(cfg, model, _):
    assert (model.render_head.num_uniform, model.render_head.num_importance) == (72, 24)


def check_upsample_steps(cfg, model, _):
    assert model.render_head.num_upsample_steps == 1


def check_near_far(cfg, model, _):
    head = model.render_head
    assert head.near_plane == 1.0
    with torch.no_grad():
        out = head(torch.zeros(1, 32, 5, 180, 180), torch.zeros(1, 3),
                   torch.tensor([[1.0, 0.0, 0.0]]), torch.zeros(1, dtype=torch.long))
    assert out['far'].item() == pytest.approx(54.0)  # the box exit, metres
    assert out['t_mid'].min().item() > 1.0


def check_render_units(cfg, model, _):
    assert model.render_head.scene_scale == pytest.approx(1.0 / 54.0)
    torch.testing.assert_close(model.render_head.field.aabb,
                               torch.tensor([-1.0, -1.0, -5 / 54, 1.0, 1.0, 3 / 54]))


def check_loss_weights(cfg, model, _):
    assert model.render_head.loss_weights == dict(rgb=10.0, depth=10.0, eikonal=0.0)
    assert model.render_head.scene_scale == pytest.approx(1.0 / 54.0)  # depth / 54


def check_direct_loss(cfg, model, _):
    assert model.direct_loss_weight == 1.0


def check_targets(cfg, model, _):
    assert model.bitemporal is True and model.target_frames == [0]


def check_inverse_std(cfg, model, _):
    field = model.render_head.field
    assert field.inv_s().item() == pytest.approx(math.exp(10 * 0.3), rel=1e-6)


def check_upsample_s(cfg, model, _):
    assert model.render_head.base_inv_s == 64.0


def check_sdf_mlp(cfg, model, _):
    field = model.render_head.field
    layers = list(field.sdf_layers)
    assert len(layers) == 6
    assert [m.out_features for m in layers] == [16] * 5 + [1 + 16]
    assert layers[0].in_features == 32 + 3  # volume feature + position


def check_colour_mlp(cfg, model, _):
    layers = _linears(model.render_head.field.color_net)
    assert len(layers) == 4
    assert [m.out_features for m in layers] == [16, 16, 16, 3]
    assert layers[0].in_features == 32 + 16 + 3 + 3  # feature, geometry, view dir, normal


def check_temporal_predictor(cfg, model, _):
    assert cfg.model.temporal_predictor.num_layers == 2
    assert cfg.model.temporal_predictor.attention == 'deformable'


def check_optimiser(cfg, model, optim_wrapper):
    optimizer = optim_wrapper.optimizer
    assert isinstance(optimizer, torch.optim.AdamW)
    assert {g['weight_decay'] for g in optimizer.param_groups} == {0.01}
    assert cfg.optim_wrapper.clip_grad == dict(max_norm=35, norm_type=2)


def check_lr(cfg, model, optim_wrapper):
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {names[id(p)]: group['lr'] for group in optim_wrapper.optimizer.param_groups
           for p in group['params']}
    assert len(lrs) == len(names)
    backbone = {lr for name, lr in lrs.items() if name.startswith('img_backbone.')}
    rest = {lr for name, lr in lrs.items() if not name.startswith('img_backbone.')}
    assert len(backbone) == len(rest) == 1
    assert backbone.pop() == pytest.approx(4e-5) and rest.pop() == pytest.approx(4e-4)


def check_schedule(cfg, model, _):
    assert cfg.train_cfg.max_epochs == 12
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.begin, warmup.end, warmup.by_epoch) == ('LinearLR', 0, 500,
                                                                        False)
    assert warmup.start_factor == pytest.approx(1 / 3)
    assert cosine.type == 'CosineAnnealingLR' and cosine.end == 12
    assert cosine.eta_min == pytest.approx(4e-4 * 1e-3)


def check_batch(cfg, model, _):
    assert cfg.train_dataloader.batch_size == 1
    assert cfg.auto_scale_lr.base_batch_size == 8  # 8 GPUs x 1


def check_image_size(cfg, model, _):
    aug = _step(cfg, 'MIM4DSweepImageAug')
    assert list(aug.final_dim) == [256, 704] and list(aug.resize_lim) == [0.47, 0.53]


def check_backbone(cfg, model, _):
    assert cfg.model.img_backbone.type == 'mmdet.ResNet' and cfg.model.img_backbone.depth == 50
    assert cfg.model.img_neck.type == 'BEVDetCustomFPN'


def check_rendered_depth(cfg, model, _):
    torch.manual_seed(0)
    with torch.no_grad():
        out = model.render_head(torch.randn(1, 32, 5, 180, 180), torch.zeros(1, 3),
                                torch.tensor([[0.0, 1.0, 0.0]]), torch.zeros(1, dtype=torch.long))
    assert out['opacity'].item() < 0.999
    expected = (out['weights'] * out['t_mid']).sum(-1) / (out['weights'].sum(-1) + 1e-10)
    torch.testing.assert_close(out['depth'], expected)


def check_precision_ema(cfg, model, optim_wrapper):
    assert type(optim_wrapper).__name__ == 'OptimWrapper'  # not AmpOptimWrapper
    assert not any(h.type == 'EMAHook' for h in cfg.custom_hooks)


ROWS = {
    'grid, voxel size': check_grid,
    'camera sweeps': check_sweeps,
    'mask cell, ratio': check_mask,
    'depth bins': check_depth_bins,
    'volume projection': check_volume_projection,
    'rays per camera': check_rays,
    'LiDAR ray range': check_lidar_range,
    'sky rows': check_sky_rows,
    'samples per ray': check_samples,
    'up-sampling steps': check_upsample_steps,
    'near plane, far': check_near_far,
    'render units': check_render_units,
    'loss weights, units': check_loss_weights,
    'direct-volume loss': check_direct_loss,
    'target frames': check_targets,
    'NeuS initial inverse std': check_inverse_std,
    'NeuS up-sampling s': check_upsample_s,
    'SDF MLP': check_sdf_mlp,
    'colour MLP': check_colour_mlp,
    'temporal predictor': check_temporal_predictor,
    'optimiser': check_optimiser,
    'lr, multipliers': check_lr,
    'schedule': check_schedule,
    'batch': check_batch,
    'image size': check_image_size,
    'backbone': check_backbone,
    'rendered depth': check_rendered_depth,
    'precision, EMA': check_precision_ema,
}


def _readme_rows():
    text = README.read_text()
    section = text.split('## Paper fidelity', 1)[1].split('\n## ', 1)[0]
    rows = [line for line in section.splitlines() if line.startswith('| ')]
    assert rows[0].startswith('| hyper-parameter | paper / released value | our paper config')
    return [re.match(r'\| ([^|]+?) \|', line).group(1) for line in rows[2:]]


def test_every_readme_row_is_checked():
    assert _readme_rows() == list(ROWS)


@pytest.mark.parametrize('row', list(ROWS))
def test_paper_config_row(paper, row):
    ROWS[row](*paper)
