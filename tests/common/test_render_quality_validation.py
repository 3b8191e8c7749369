"""The tiny pre-training configs validate with RenderQualityMetric (held-out frames).

A real mmengine Runner built from each tiny config's own val dataloader, val
loop and evaluator, on the synthetic world's val split (2 frames): the
model's ``predict`` renders the masked frames and the metric reports PSNR and
depth errors, finite and in their units' plausible ranges.
"""
import copy
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

import projects.MIM4D.mim4d  # noqa: F401  (registers the MIM4D modules)
import projects.NSMAE.nsmae  # noqa: F401  (registers the NS-MAE modules)
from mmdet3d.utils import register_all_modules
from render_pretrain.paths import REPO_ROOT

register_all_modules(init_default_scope=True)

pytestmark = pytest.mark.runner

# config -> metric keys it must report
CONFIGS = {
    'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py':
        ('render/psnr', 'render/depth_abs_err', 'render/bev_height_abs_err'),
    'projects/NSMAE/configs/nsmae_second_1xb1-2e_synthetic-pretrain.py':
        ('render/bev_height_abs_err', ),
    'projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py':
        ('render/psnr', 'render/depth_abs_err'),
}


@pytest.mark.parametrize('config', sorted(CONFIGS))
def test_tiny_config_validates_render_quality(config, synthetic_infos, tmp_path):
    cfg = Config.fromfile(str(REPO_ROOT / config))
    assert cfg.train_cfg.val_interval == 1  # logged every epoch
    assert cfg.val_evaluator.type == 'RenderQualityMetric'
    loader = copy.deepcopy(cfg.val_dataloader)
    loader.dataset.update(data_root=str(synthetic_infos['root']) + '/',
                          ann_file=str(synthetic_infos['val']), indices=2)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        runner = Runner(model=cfg.model, work_dir=str(tmp_path), val_dataloader=loader,
                        val_cfg=cfg.val_cfg, val_evaluator=cfg.val_evaluator,
                        default_hooks=dict(logger=None, checkpoint=None),
                        custom_hooks=[h for h in cfg.custom_hooks
                                      if 'Visualization' not in h['type']],
                        randomness=dict(seed=0), default_scope=cfg.default_scope,
                        env_cfg=cfg.env_cfg)
        metrics = runner.val()
    finally:
        torch.set_num_threads(threads)
    assert set(metrics) == set(CONFIGS[config]), metrics
    for name, value in metrics.items():
        assert math.isfinite(value), (name, value)
    if 'render/psnr' in metrics:  # colours in [0, 1]: an untrained render is 5-30 dB
        assert 3.0 < metrics['render/psnr'] < 40.0
    for name in ('render/depth_abs_err', 'render/bev_height_abs_err'):
        if name in metrics:  # metres, within the +-24 m box
            assert 0.0 < metrics[name] < 48.0
