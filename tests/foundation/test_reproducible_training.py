"""Same seed -> same losses; resume -> the losses of the uninterrupted run (NS-MAE, MIM4D).

Real mmengine Runners on the tiny configs and the synthetic world, with
random image augmentation on, 2 DataLoader workers that persist across
epochs, and the configs' own ``custom_hooks`` (minus the picture hooks).
Each epoch is 2 iterations of one sample.
"""
import copy
import shutil
from pathlib import Path

import pytest
import torch
from mmengine.config import Config
from mmengine.hooks import Hook
from mmengine.runner import Runner

import projects.MIM4D.mim4d  # noqa: F401  (registers the MIM4D modules)
import projects.NSMAE.nsmae  # noqa: F401  (registers the NS-MAE modules)
from mmdet3d.utils import register_all_modules
from render_pretrain.paths import REPO_ROOT

register_all_modules(init_default_scope=True)

pytestmark = pytest.mark.runner

CONFIGS = {
    'nsmae': 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py',
    'mim4d': 'projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py',
}


class LossRecorder(Hook):
    """Keeps ``(epoch, iteration) -> {loss name: value}`` of every training iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.losses = {}

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self.losses[(runner.epoch, runner.iter)] = {
            name: float(value) for name, value in outputs.items() if name.startswith('loss')}


def _config(name: str, infos: dict, work_dir: Path, max_epochs: int,
            checkpoint: bool = False) -> Config:
    cfg = Config.fromfile(str(REPO_ROOT / CONFIGS[name]))
    root = str(infos['root']) + '/'
    loader = cfg.train_dataloader
    loader.update(num_workers=2, persistent_workers=True, batch_size=1)
    loader.dataset.update(data_root=root, ann_file=str(infos['train']), indices=[3, 5])
    for step in loader.dataset.pipeline:
        if step.type == 'BEVFusionCompatImageAug3D':  # the tiny config has no random augmentation
            step.update(is_train=True, resize_lim=[0.9, 1.2], rot_lim=[-5.4, 5.4],
                        bot_pct_lim=[0.0, 0.1], rand_flip=True)
        if step.type == 'MIM4DLoadMultiViewSweeps':  # sweeps come from the dataset's root
            step.camera_names = ['CAM_FRONT', 'CAM_BACK']
    cfg.train_cfg = dict(by_epoch=True, max_epochs=max_epochs)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0, by_epoch=True, begin=0,
                                end=max_epochs)]
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.test_cfg = cfg.test_dataloader = cfg.test_evaluator = None
    # only the run that is resumed saves (the tiny NS-MAE checkpoint is 170 MB)
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1) if checkpoint else None
    cfg.default_hooks.logger = dict(type='LoggerHook', interval=1)
    cfg.custom_hooks = [h for h in cfg.custom_hooks if 'Visualization' not in h['type']]
    cfg.randomness = dict(seed=0)
    cfg.work_dir = str(work_dir)
    cfg.experiment_name = f'{name}_{work_dir.name}'
    return cfg


def _train(cfg: Config, resume_from: Path = None) -> dict:
    """Train with a Runner built from the config's parts.

    ``Runner.from_cfg`` would also pretty-print the whole config with yapf
    four times (measured: 2/3 of the CPU time of these tiny runs), so the
    Runner gets the parts and no ``cfg``; what it builds is the same.
    """
    cfg = copy.deepcopy(cfg)
    runner = Runner(
        model=cfg.model, work_dir=cfg.work_dir, experiment_name=cfg.experiment_name,
        train_dataloader=cfg.train_dataloader, train_cfg=cfg.train_cfg,
        optim_wrapper=cfg.optim_wrapper, param_scheduler=cfg.param_scheduler,
        default_hooks=cfg.default_hooks, custom_hooks=cfg.custom_hooks, env_cfg=cfg.env_cfg,
        log_processor=cfg.log_processor, randomness=cfg.randomness,
        default_scope=cfg.default_scope, resume=resume_from is not None,
        load_from=None if resume_from is None else str(resume_from))
    recorder = LossRecorder()
    runner.register_hook(recorder)
    runner.train()
    return recorder.losses


@pytest.mark.parametrize('name', sorted(CONFIGS))
def test_same_seed_same_losses_and_resume_continues_exactly(name, synthetic_infos, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        full = _train(_config(name, synthetic_infos, tmp_path / 'full', max_epochs=2))
        first = _train(_config(name, synthetic_infos, tmp_path / 'first', max_epochs=1,
                               checkpoint=True))
        resumed_dir = tmp_path / 'resumed'
        resumed_dir.mkdir()
        shutil.copy(tmp_path / 'first' / 'epoch_1.pth', resumed_dir / 'epoch_1.pth')
        resumed = _train(_config(name, synthetic_infos, resumed_dir, max_epochs=2),
                         resume_from=resumed_dir / 'epoch_1.pth')
    finally:
        torch.set_num_threads(threads)
    assert sorted(full) == [(0, 0), (0, 1), (1, 2), (1, 3)], full
    # same seed -> the same losses at every iteration
    assert first == {key: full[key] for key in first}, (first, full)
    # resumed after epoch 1 -> epoch 2 exactly as in the uninterrupted run
    assert sorted(resumed) == [(1, 2), (1, 3)], resumed
    assert resumed == {key: full[key] for key in resumed}, (resumed, full)
