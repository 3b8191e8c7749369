"""The tiny config trains with mmengine's Runner; hooks write renderings."""
import copy

import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from mmengine.visualization import Visualizer

from mmdet3d.registry import DATASETS

from projects.NSMAE.nsmae.visualization_hook import NSMAERenderVisualizationHook
from .conftest import REAL_INFO, TINY_CL, build_model, load_config, preprocess, synthetic_item


def _predicted_samples(cameras=('CAM_FRONT', 'CAM_BACK')):
    model = build_model(TINY_CL).eval()
    item = synthetic_item(seed=8)
    item['data_samples'].set_metainfo(dict(
        img_path=[f'samples/{cam}/frame_{cam}.jpg' for cam in cameras]))
    data = preprocess(model, [item], training=False)
    with torch.no_grad():
        return model.predict(data['inputs'], data['data_samples'])


def test_render_figure_panels_caption_and_quality():
    """One figure: five picture rows + BEV, camera names, colour bars, caption numbers."""
    sample = _predicted_samples()[0]
    outputs = sample.render_outputs
    figure = NSMAERenderVisualizationHook().figure_of(sample, 'val', 0, 3)
    caption = figure._suptitle.get_text()
    # PSNR over all cameras, pixels and channels, computed here from the arrays
    rgb, target = outputs.rgb.double().numpy(), outputs.rgb_target.double().numpy()
    psnr = 10 * np.log10(1.0 / np.mean((rgb - target) ** 2))
    depth, lidar = outputs.depth.double().numpy(), outputs.depth_target.double().numpy()
    depth_err = np.abs(depth - lidar)[lidar > 0].mean()
    assert caption.startswith('NS-MAE val sample 0 | iter 3 | ')
    assert f'PSNR {psnr:.2f} dB' in caption
    assert f'depth abs err {depth_err:.3f} m' in caption
    assert 'BEV height abs err' in caption
    image_axes = [ax for ax in figure.axes if ax.get_label() != '<colorbar>']
    assert [ax.get_ylabel() for ax in image_axes] == [
        'masked input', 'target RGB', 'rendered RGB', 'target depth (LiDAR)',
        'rendered depth', 'target BEV height', 'rendered BEV height']
    for ax in image_axes[:5]:
        assert [t.get_text() for t in ax.get_xticklabels()] == ['CAM_FRONT', 'CAM_BACK']
    bars = [ax for ax in figure.axes if ax not in image_axes]
    assert sorted(ax.get_ylabel() for ax in bars) == ['depth (m)', 'height (m)']
    # the depth colour scale runs from 0 m to the farthest LiDAR depth
    depth_bar = next(ax for ax in bars if ax.get_ylabel() == 'depth (m)')
    assert np.allclose(depth_bar.get_ylim(), (0.0, lidar.max()))
    # the LiDAR row: the 8 m wall (camera 0) is drawn with another colour than the 10 m one
    lidar_image = image_axes[3].get_images()[0].get_array()
    width = lidar_image.shape[1] // 2
    assert abs(float(lidar_image[0, :width].mean()) - 8.0) < 0.5
    assert abs(float(lidar_image[0, width:].mean()) - 10.0) < 0.5


def test_hook_writes_one_image_per_sample_through_the_visualizer(tmp_path, monkeypatch):
    samples = _predicted_samples()
    visualizer = Visualizer(name='nsmae_test_vis', save_dir=str(tmp_path / 'vis'),
                            vis_backends=[dict(type='LocalVisBackend')])
    runner = type('RunnerView', (), dict(work_dir=str(tmp_path), visualizer=visualizer,
                                         iter=3))()
    NSMAERenderVisualizationHook(max_samples=1).after_val_iter(runner, 0, outputs=samples)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*.png'))
    assert written == ['vis/vis_data/vis_image/nsmae_val_sample0_3.png']  # no second copy
    import mmcv
    image = mmcv.imread(str(tmp_path / written[0]))
    assert image.ndim == 3 and image.shape[0] > 300 and image.std() > 10
    # another rank writes nothing
    import mmengine.dist.utils as dist_utils
    monkeypatch.setattr(dist_utils, 'get_rank', lambda group=None: 1)
    runner.iter = 4
    NSMAERenderVisualizationHook(max_samples=1).after_val_iter(runner, 0, outputs=samples)
    assert len(list(tmp_path.rglob('*.png'))) == 1


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
    # its own visualizer: mmengine hands a later runner of this process the instance
    # named 'visualizer' that an earlier test's runner created (see the hook's warning)
    cfg.visualizer.name = f'nsmae-{tmp_path.name}'
    runner = Runner.from_cfg(copy.deepcopy(cfg))
    runner.train()
    model = runner.model
    assert model.lidar_frozen and not model.pts_middle_encoder.training
    pngs = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob('*.png'))
    assert pngs == [f'{runner.timestamp}/vis_data/vis_image/nsmae_train_sample0_{i}.png'
                    for i in (1, 2)]
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


def test_hook_warns_when_the_visualizer_writes_outside_the_run_folder(tmp_path, monkeypatch):
    """mmengine reuses a visualizer by name in one process: the hook says so at the start."""
    import logging

    import projects.common.render_visualization_hook as base
    said = []
    monkeypatch.setattr(base, 'print_log', lambda msg, logger=None, level=None:
                        said.append((msg, level)))
    visualizer = Visualizer(name='nsmae_test_vis_stale', save_dir=str(tmp_path / 'run0'),
                            vis_backends=[dict(type='LocalVisBackend')])
    hook = NSMAERenderVisualizationHook()
    for log_dir, warned in ((tmp_path / 'run0', False), (tmp_path / 'run1', True)):
        runner = type('RunnerView', (), dict(log_dir=str(log_dir), visualizer=visualizer))()
        said.clear()
        hook.before_run(runner)
        assert any('outside this run' in msg and level == logging.WARNING
                   for msg, level in said) == warned
