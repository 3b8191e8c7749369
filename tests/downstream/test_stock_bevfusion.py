"""The real stock BEVFusion (mmdetection3d v1.4.0 ``projects/BEVFusion``) on the CPU.

Built from upstream's own unmodified configs in the shared checkout, with its
compiled ops served by ``render_pretrain.bevfusion_ops`` (compat shim
``bevfusion_cpu_ops``); the only override is switching off the Swin ImageNet
download (``model.img_backbone.init_cfg=None``, as ``--cfg-options`` would).
The paper-scale C+L model is built once per module (~40.8 M parameters).
"""
import copy
import math
import sys

import pytest
import torch

from tools.utils import load_config, prepare_registries
from render_pretrain.paths import REPO_ROOT

# the paper-scale C+L model (~40.8 M parameters) on the CPU
pytestmark = pytest.mark.slow

CONFIGS = 'projects/BEVFusion/configs'
LIDAR_CAM = 'bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
LIDAR = 'bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
NO_DOWNLOAD = {'model.img_backbone.init_cfg': None}
NSMAE_PAPER = str(REPO_ROOT / 'projects/NSMAE/configs/'
                  'nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py')
TRANSFERRED = ('img_backbone', 'img_neck', 'view_transform', 'pts_middle_encoder', 'fusion_layer')
GRID_CONSTANTS = ('view_transform.dx', 'view_transform.bx', 'view_transform.nx',
                  'view_transform.frustum')


@pytest.fixture(scope='module')
def stock_cam_lidar(upstream_mmdet3d):
    from mmdet3d.registry import MODELS
    cfg = load_config(str(upstream_mmdet3d / CONFIGS / LIDAR_CAM), NO_DOWNLOAD)
    prepare_registries(cfg)
    torch.manual_seed(0)
    model = MODELS.build(copy.deepcopy(cfg.model))
    model.init_weights()
    return cfg, model


def test_stock_configs_build_unchanged_on_the_cpu(upstream_mmdet3d, stock_cam_lidar):
    from mmdet3d.registry import MODELS
    cfg, model = stock_cam_lidar
    assert cfg.custom_imports.imports == ['projects.BEVFusion.bevfusion']
    assert type(model).__module__ == 'projects.BEVFusion.bevfusion.bevfusion'
    assert sys.modules['projects.BEVFusion.bevfusion'].__file__.startswith(str(upstream_mmdet3d))
    assert type(model.img_backbone).__name__ == 'SwinTransformer'
    assert type(model.view_transform).__name__ == 'DepthLSSTransform'
    assert sum(p.numel() for p in model.parameters()) == 40_800_087
    lidar_cfg = load_config(str(upstream_mmdet3d / CONFIGS / LIDAR))
    lidar = MODELS.build(copy.deepcopy(lidar_cfg.model))
    assert lidar.img_backbone is None and lidar.view_transform is None
    assert lidar.pts_voxel_layer.max_num_points == 10
    # the LiDAR-only model's parameters are the C+L model's minus the camera branch
    camera = sum(p.numel() for name in ('img_backbone', 'img_neck', 'view_transform',
                                        'fusion_layer') for p in getattr(model, name).parameters())
    assert sum(p.numel() for p in lidar.parameters()) == 40_800_087 - camera


@pytest.fixture(scope='module')
def converted_nsmae(stock_cam_lidar, tmp_path_factory):
    """A paper-scale NS-MAE C+L checkpoint converted strictly onto the stock model."""
    from mmdet3d.registry import MODELS
    from render_pretrain.converters import convert_checkpoint_file
    _, stock = stock_cam_lidar
    cfg = load_config(NSMAE_PAPER, {'model.img_backbone.init_cfg': None})
    prepare_registries(cfg)
    torch.manual_seed(1)
    nsmae = MODELS.build(cfg.model)
    folder = tmp_path_factory.mktemp('nsmae')
    torch.save({'state_dict': nsmae.state_dict()}, folder / 'nsmae.pth')
    manifest = {k: tuple(v.shape) for k, v in stock.state_dict().items()}
    result = convert_checkpoint_file(folder / 'nsmae.pth', folder / 'bevfusion.pth', 'nsmae',
                                     'mmdet3d-bevfusion', TRANSFERRED, strict=True,
                                     target_manifest=manifest, manifest_name='stock model')
    return folder / 'bevfusion.pth', result, nsmae.state_dict()


def test_converted_nsmae_loads_into_the_stock_model_through_load_from(stock_cam_lidar,
                                                                      converted_nsmae):
    from mmengine.runner.checkpoint import _load_checkpoint, _load_checkpoint_to_model
    cfg, model = stock_cam_lidar
    path, result, source = converted_nsmae
    # what Runner.load_checkpoint does for cfg.load_from (map_location cpu, strict=False)
    checkpoint = _load_checkpoint(str(path), map_location='cpu')
    converted = checkpoint['state_dict']
    ours = model.state_dict()
    assert set(converted) - set(ours) == set()  # no unexpected key
    for module in TRANSFERRED:
        missing = {k for k in ours if k.startswith(module + '.') and k not in converted}
        assert missing <= set(GRID_CONSTANTS), (module, sorted(missing)[:5])
        assert sum(k.startswith(module + '.') for k in converted) > 0
    before = {k: v.clone() for k, v in ours.items() if k.startswith('bbox_head.')}
    _load_checkpoint_to_model(model, checkpoint, strict=False)
    loaded = model.state_dict()
    for key, tensor in converted.items():
        assert torch.equal(loaded[key], tensor), key
    # NS-MAE's encoder tensors arrive unchanged (same names, X,Y,Z spconv kernels both sides)
    for key in ('img_backbone.stages.2.blocks.5.attn.w_msa.qkv.weight',
                'pts_middle_encoder.conv_input.0.weight', 'fusion_layer.0.weight',
                'view_transform.depthnet.3.weight'):
        assert torch.equal(loaded[key], source[key]), key
    assert all(torch.equal(loaded[k], v) for k, v in before.items())  # head untouched
    assert len(result.report.module('pts_middle_encoder').transferred) == 126


def test_one_training_step_on_the_real_frame(stock_cam_lidar, converted_nsmae, real_frame):
    from mmengine.dataset import pseudo_collate
    from mmengine.optim import build_optim_wrapper
    from mmengine.runner.checkpoint import load_checkpoint
    from mmdet3d.registry import DATASETS
    cfg, model = stock_cam_lidar
    load_checkpoint(model, str(converted_nsmae[0]), map_location='cpu', strict=False)
    data_cfg = copy.deepcopy(cfg.train_dataloader.dataset.dataset)  # inside CBGSDataset
    data_cfg.update(data_root=str(real_frame), ann_file='n015-2018-07-24-11-22-45+0800.pkl',
                    data_prefix={k: '' for k in data_cfg.data_prefix})
    dataset = DATASETS.build(data_cfg)
    torch.manual_seed(2)
    batch = model.data_preprocessor(pseudo_collate([dataset[0]]), training=True)
    assert batch['inputs']['imgs'].shape[-4:] == (6, 3, 256, 704)
    assert len(batch['data_samples'][0].gt_instances_3d) > 0
    model.train()
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    losses = model(**batch, mode='loss')
    loss, log_vars = model.parse_losses(losses)
    assert math.isfinite(loss.item()) and loss.item() > 0
    optim.backward(loss)
    for module in TRANSFERRED:
        grads = [p.grad for p in getattr(model, module).parameters() if p.requires_grad]
        assert grads and all(g is not None and torch.isfinite(g).all() for g in grads), module
        assert sum(g.abs().sum() for g in grads) > 0, module
    weight = model.fusion_layer[0].weight
    before = weight.detach().clone()
    optim.step()
    assert not torch.equal(weight.detach(), before)
