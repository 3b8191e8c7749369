"""Fixtures of the MIM4D tests: the tiny config pointed at the synthetic world."""
import copy
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

import projects.MIM4D.mim4d  # noqa: F401  (registers the MIM4D modules)
from mmdet3d.registry import DATASETS
from mmdet3d.utils import register_all_modules

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'projects' / 'MIM4D' / 'configs'
TINY_CONFIG = CONFIG_DIR / 'mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py'


@pytest.fixture(scope='module')
def single_thread():
    """Run the module's heavy tests on one thread (2 shared cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='session')
def tiny_cfg() -> Config:
    """The tiny synthetic-world config (mmdet3d modules registered)."""
    register_all_modules()
    return Config.fromfile(str(TINY_CONFIG))


def dataset_config(cfg: Config, infos: dict, cameras=None, is_train: bool = True,
                   aug: dict = None) -> Config:
    """The tiny config's training dataset config on the synthetic world's train split.

    Args:
        cfg (Config): The tiny config.
        infos (dict): ``synthetic_infos`` fixture.
        cameras (list[str], optional): Camera subset (default all six).
        is_train (bool): Random augmentation (seeded) or the test-time one.
        aug (dict, optional): Overrides of ``MIM4DSweepImageAug``.
    """
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    root = str(infos['root']) + '/'
    ds_cfg.data_root = root
    ds_cfg.ann_file = str(infos['train'])
    for step in ds_cfg.pipeline:
        if step.type == 'MIM4DLoadMultiViewSweeps':
            step.camera_names = cameras
        if step.type == 'MIM4DSweepImageAug':
            step.is_train = is_train
            step.seed = 0
            step.update(aug or {})
    return ds_cfg


def build_dataset(cfg: Config, infos: dict, cameras=None, is_train: bool = True,
                  aug: dict = None):
    """The dataset of :func:`dataset_config`."""
    return DATASETS.build(dataset_config(cfg, infos, cameras, is_train, aug))
