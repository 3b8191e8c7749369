"""The tiny config trains with mmengine's Runner; hooks write renderings."""
import copy

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from mmdet3d.registry import DATASETS

from projects.NSMAE.nsmae.visualization_hook import (
    NSMAERenderVisualizationHook, render_outputs_to_images)
from .conftest import REAL_INFO, TINY_CL, build_model, load_config, preprocess, synthetic_item


def test_render_images_and_hook_files(tmp_path):
    model = build_model(TINY_CL).eval()
    data = preprocess(model, [synthetic_item(seed=8)], training=False)
    with torch.no_grad():
        samples = model.predict(data['inputs'], data['data_samples'])
    images = render_outputs_to_images(samples[0].render_outputs)
    assert set(images) == {'masked_input', 'rendered_rgb', 'target_rgb', 'depth', 'bev_depth'}
    assert images['masked_input'].shape == (64, 2 * 176, 3)
    assert images['rendered_rgb'].shape == (8, 2 * 22, 3)
    assert images['depth'].shape == (16, 2 * 22, 3)
    assert images['bev_depth'].shape == (40, 20, 3)
    # LiDAR depth panel: the 8 m wall (camera 0) is brighter than the 10 m one
    target_panel = images['depth'][8:, :, 0].astype(int)
    assert target_panel[0, :22].mean() > target_panel[0, 22:].mean()
    visualizer = Visualizer(name='nsmae_test_vis', save_dir=str(tmp_path / 'vis'),
                            vis_backends=[dict(type='LocalVisBackend')])
    runner = type('RunnerView', (), dict(work_dir=str(tmp_path), visualizer=visualizer,
                                         iter=3))()
    NSMAERenderVisualizationHook(max_samples=1).after_val_iter(runner, 0, outputs=samples)
    written = sorted(p.name for p in (tmp_path / 'nsmae_vis').glob('*.png'))
    assert written == sorted(f'val_0000003_0_{name}.png' for name in images)
    backend_files = list((tmp_path / 'vis').rglob('*.png'))
    assert len(backend_files) == len(images)
    # 8-pixel-high renderings are enlarged by a nearest-neighbour factor (>= 128 px)
    import mmcv
    rendered_png = tmp_path / 'nsmae_vis' / 'val_0000003_0_rendered_rgb.png'
    rendered = mmcv.imread(str(rendered_png))[..., ::-1]
    assert rendered.shape == (8 * 16, 2 * 22 * 16, 3)
    assert np.array_equal(rendered[::16, ::16], images['rendered_rgb'])


@pytest.mark.runner
def test_runner_trains_tiny_config_on_real_frame(tmp_path, real_frame):
    cfg = load_config(TINY_CL)
    cfg.work_dir = str(tmp_path)
    dataset = cfg.train_dataloader.dataset
    dataset.update(data_root=str(real_frame) + '/', ann_file=REAL_INFO,
                   data_prefix={key: '' for key in dataset.data_prefix})
    cfg.train_cfg = dict(by_epoch=True, max_epochs=2)
    cfg.val_dataloader = cfg.val_cfg = cfg.val_evaluator = None  # training only
    cfg.custom_hooks = [
        dict(type='NSMAERenderVisualizationHook', interval=1, max_samples=1),
        dict(type='NSMAEFreezeLiDAREncoderHook', freeze_epoch=1),
    ]
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=2)
    cfg.model.seed = 0
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    model = runner.model
    assert model.lidar_frozen and not model.pts_middle_encoder.training
    pngs = sorted(p.name for p in (tmp_path / 'nsmae_vis').glob('*.png'))
    assert 'train_0000001_0_rendered_rgb.png' in pngs
    assert 'train_0000002_0_bev_depth.png' in pngs
    ckpt = torch.load(tmp_path / 'epoch_2.pth', map_location='cpu', weights_only=False)
    keys = ckpt['state_dict'].keys()
    assert 'view_transform.depthnet.0.weight' in keys
    assert not any(k.startswith('view_transform.') and k.split('.')[-1] in
                   ('dx', 'bx', 'nx', 'frustum') for k in keys)
    assert np.isfinite(runner.message_hub.get_scalar('train/loss').current())


def test_tiny_config_loss_on_synthetic_infos(synthetic_infos):
    """The tiny config's dataset/pipeline reads the create_data info files."""
    cfg = load_config(TINY_CL)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.update(data_root=str(synthetic_infos['root']) + '/',
                       ann_file=str(synthetic_infos['train']))
    # the session world renders 176x64 images (the default world is 704x256)
    dataset_cfg.pipeline[2].update(resize_lim=[1.0, 1.0])
    dataset = DATASETS.build(dataset_cfg)
    items = [dataset[0], dataset[len(dataset) - 1]]
    assert items[0]['inputs']['img'].shape == (6, 3, 64, 176)
    model = build_model(TINY_CL)
    data = preprocess(model, items)
    losses = model.loss(data['inputs'], data['data_samples'])
    assert set(losses) == {'loss_rgb', 'loss_pv_depth', 'loss_bev_depth'}
    assert all(torch.isfinite(v) and float(v) > 0 for v in losses.values())
    sum(losses.values()).backward()
