"""Helpers for the BEV segmentation tests: configs and the synthetic world's labels."""
import copy
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from tools.utils import load_config, prepare_registries
from render_pretrain.nuscenes_infos import load_map_label
from render_pretrain.paths import REPO_ROOT

CONFIG_DIR = REPO_ROOT / 'projects' / 'BEVSeg' / 'configs'
TINY = 'bevfusionseg_lidar-cam_r18-lss_second_secfpn_1xb1-2e_synthetic-seg.py'
PAPER_CL = 'bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py'
PAPER_C = 'bevfusionseg_cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py'


def seg_config(name: str = TINY):
    """A BEVSeg config, registries prepared (as the Runner would)."""
    return prepare_registries(load_config(str(CONFIG_DIR / name)))


def point_at_synthetic_world(cfg, synthetic_infos: dict):
    """Point the tiny config's dataloaders at the session's synthetic world.

    The session world renders 176x64 images (the demo world 704x256), so
    the image resize becomes 1.0.
    """
    cfg = copy.deepcopy(cfg)
    for split, pkl in (('train_dataloader', 'train'), ('val_dataloader', 'val'),
                       ('test_dataloader', 'val')):
        dataset = cfg[split].dataset
        dataset.data_root = str(synthetic_infos['root']) + '/'
        dataset.ann_file = str(synthetic_infos[pkl])
        for step in dataset.pipeline:
            if step['type'] == 'BEVFusionCompatImageAug3D':
                step['resize_lim'] = [1.0, 1.0]
    return cfg


def first_label(synthetic_infos: dict, split: str = 'train') -> np.ndarray:
    """The (6, 200, 200) bool map label of the first sample of a split."""
    with open(synthetic_infos[split], 'rb') as f:
        info = pickle.load(f)['data_list'][0]
    return load_map_label(Path(synthetic_infos['out_dir']) / info['map_seg_path'])


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread (2 shared cores; see tests/nsmae/conftest.py)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
