"""Tiny stock BEVFusion C+L: upstream's config only shrunk, NS-MAE's tiny encoder converts into it.

Takes upstream's projects/BEVFusion from the shared checkout (skips without
it); the compiled ops are the CPU stand-ins (compat shim ``bevfusion_cpu_ops``).
"""
import copy
import math

import pytest
import torch

from tools.utils import load_config, prepare_registries
from render_pretrain.paths import REPO_ROOT

TINY = REPO_ROOT / 'configs' / 'bevfusion' / (
    'bevfusion_lidar-cam_voxel03-tiny_swint-tiny_second_secfpn_1xb2-2e_synthetic-3d.py')
UPSTREAM = ('projects/BEVFusion/configs/'
            'bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py')
NSMAE_TINY = 'projects/NSMAE/configs/nsmae_swint-tiny-lss_second_1xb1-2e_synthetic-pretrain.py'
TRANSFERRED = ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder', 'fusion_layer')
# What the tiny config may change: sizes (range, voxels, grid, images, bins,
# channels, proposals), the data (world, no CBGS, loader workers) and the schedule.
SHRUNK = {
    'model.data_preprocessor': ('pad_size_divisor', ),
    'model.data_preprocessor.voxelize_cfg': ('point_cloud_range', 'voxel_size', 'max_voxels'),
    'model.img_backbone': ('embed_dims', 'depths'),
    'model.img_neck': ('in_channels', 'out_channels'),
    'model.view_transform': ('in_channels', 'out_channels', 'image_size', 'feature_size',
                             'xbound', 'ybound', 'dbound'),
    'model.fusion_layer': ('in_channels', 'out_channels'),
    'model.pts_middle_encoder': ('sparse_shape', ),
    'model.pts_backbone': ('in_channels', 'out_channels'),
    'model.pts_neck': ('in_channels', 'out_channels'),
    'model.bbox_head': ('num_proposals', 'in_channels', 'hidden_channel'),
    'model.bbox_head.decoder_layer.self_attn_cfg': ('embed_dims', ),
    'model.bbox_head.decoder_layer.cross_attn_cfg': ('embed_dims', ),
    'model.bbox_head.decoder_layer.ffn_cfg': ('embed_dims', 'feedforward_channels'),
    'model.bbox_head.decoder_layer.pos_encoding_cfg': ('num_pos_feats', ),
    'model.bbox_head.train_cfg': ('point_cloud_range', 'grid_size', 'voxel_size'),
    'model.bbox_head.test_cfg': ('grid_size', 'voxel_size', 'pc_range'),
    'model.bbox_head.bbox_coder': ('pc_range', 'post_center_range', 'voxel_size'),
}
PIPELINE_SHRUNK = {'ImageAug3D': ('final_dim', 'resize_lim'),
                   'PointsRangeFilter': ('point_cloud_range', ),
                   'ObjectRangeFilter': ('point_cloud_range', )}


@pytest.fixture(scope='module')
def configs(upstream_mmdet3d):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('MMDET3D_ROOT', str(upstream_mmdet3d))
        tiny = load_config(str(TINY))
    stock = load_config(str(upstream_mmdet3d / UPSTREAM))
    return tiny, stock


def _leaves(value, prefix=''):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f'{prefix}.{key}' if prefix else key)
    else:
        yield prefix, value


def test_tiny_config_only_shrinks_the_stock_model(configs):
    tiny, stock = configs
    assert stock.model.img_backbone.init_cfg.type == 'Pretrained'  # an ImageNet download
    assert tiny.model.img_backbone.init_cfg is None
    theirs, ours = stock.model.to_dict(), tiny.model.to_dict()
    theirs['img_backbone'].pop('init_cfg'), ours['img_backbone'].pop('init_cfg')
    theirs, ours = dict(_leaves(theirs, 'model')), dict(_leaves(ours, 'model'))
    assert set(ours) == set(theirs)
    changed = {k for k in ours if ours[k] != theirs[k]}
    allowed = {f'{parent}.{key}' for parent, keys in SHRUNK.items() for key in keys}
    assert changed <= allowed, sorted(changed - allowed)
    # the schedule builds as written (a list replaces the stock one whole)
    from mmengine.optim import build_optim_wrapper
    from mmengine.registry import PARAM_SCHEDULERS
    optim = build_optim_wrapper(torch.nn.Linear(1, 1), tiny.optim_wrapper)
    for sched in tiny.param_scheduler:
        PARAM_SCHEDULERS.build(dict(sched, optimizer=optim.optimizer))
    assert 'model.view_transform.image_size' in changed and ours[
        'model.view_transform.image_size'] == [64, 176]


@pytest.mark.parametrize('split', ['train', 'test'])
def test_tiny_pipelines_are_upstreams_with_smaller_sizes(configs, split):
    tiny, stock = configs
    ours, theirs = tiny[f'{split}_pipeline'], stock[f'{split}_pipeline']
    assert [s['type'] for s in ours] == [s['type'] for s in theirs]
    for a, b in zip(ours, theirs):
        shrunk = PIPELINE_SHRUNK.get(a['type'], ())
        assert {k: v for k, v in a.items() if k not in shrunk} == \
            {k: v for k, v in b.items() if k not in shrunk}, a['type']
    assert tiny.train_dataloader.dataset.pipeline == tiny.train_pipeline
    assert tiny.val_dataloader.dataset.pipeline == tiny.test_pipeline


@pytest.fixture(scope='module')
def tiny_model(configs):
    from mmdet3d.registry import MODELS
    tiny, _ = configs
    prepare_registries(tiny)
    torch.manual_seed(0)
    return MODELS.build(copy.deepcopy(tiny.model))


def test_tiny_nsmae_encoder_converts_strictly_and_the_tiny_model_trains(
        tiny_model, configs, synthetic_infos, tmp_path):
    from mmdet3d.registry import DATASETS, MODELS
    from mmengine.dataset import pseudo_collate
    from mmengine.runner.checkpoint import load_checkpoint
    from render_pretrain.converters import convert_checkpoint_file
    tiny, _ = configs
    ncfg = load_config(str(REPO_ROOT / NSMAE_TINY))
    prepare_registries(ncfg)
    nsmae = MODELS.build(ncfg.model)
    torch.save({'state_dict': nsmae.state_dict()}, tmp_path / 'nsmae.pth')
    manifest = {k: tuple(v.shape) for k, v in tiny_model.state_dict().items()}
    result = convert_checkpoint_file(tmp_path / 'nsmae.pth', tmp_path / 'bevfusion.pth', 'nsmae',
                                     'mmdet3d-bevfusion', TRANSFERRED, strict=True,
                                     target_manifest=manifest, manifest_name='tiny stock')
    for module in TRANSFERRED:
        assert len(result.report.module(module).transferred) > 0, module
    prepare_registries(tiny)
    load_checkpoint(tiny_model, str(tmp_path / 'bevfusion.pth'), map_location='cpu', strict=False)
    key = 'img_backbone.stages.3.blocks.0.attn.w_msa.qkv.weight'
    assert torch.equal(tiny_model.state_dict()[key], nsmae.state_dict()[key])

    data_cfg = copy.deepcopy(tiny.train_dataloader.dataset)
    data_cfg.update(data_root=str(synthetic_infos['root']) + '/',
                    ann_file=str(synthetic_infos['train']))
    dataset = DATASETS.build(data_cfg)
    torch.manual_seed(1)
    batch = tiny_model.data_preprocessor(pseudo_collate([dataset[0], dataset[1]]), training=True)
    assert batch['inputs']['imgs'].shape[-4:] == (6, 3, 64, 176)
    tiny_model.train()
    loss, _ = tiny_model.parse_losses(tiny_model(**batch, mode='loss'))
    assert math.isfinite(loss.item())
    loss.backward()
    for module in TRANSFERRED:
        grads = [p.grad for p in getattr(tiny_model, module).parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads), module
        assert sum(g.abs().sum() for g in grads) > 0, module
