"""Helpers for the NS-MAE glue tests: tiny models and input batches.

Batches come from the real nuScenes frame (through mmdet3d's
``NuScenesDataset`` and the config's pipeline, images scaled to 64x176) or
from a small synthetic scene built here: cameras at the LiDAR origin looking
at walls of points at known depths, smooth images.
"""
import copy
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from mmdet3d.registry import DATASETS, MODELS
from mmdet3d.structures import Det3DDataSample
from mmdet3d.utils import register_all_modules

import projects.NSMAE.nsmae  # noqa: F401  (registers the NS-MAE modules)

CONFIG_DIR = Path(__file__).resolve().parents[2] / 'projects' / 'NSMAE' / 'configs'
TINY_CL = 'nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'
TINY_C = 'nsmae_r18-lss_1xb1-2e_synthetic-pretrain.py'
TINY_L = 'nsmae_second_1xb1-2e_synthetic-pretrain.py'
IMAGE_SIZE = (64, 176)
REAL_INFO = 'n015-2018-07-24-11-22-45+0800.pkl'

register_all_modules(init_default_scope=True)


def load_config(name: str) -> Config:
    """Load one of the NS-MAE configs by file name."""
    return Config.fromfile(str(CONFIG_DIR / name))


def build_model(name: str = TINY_CL, seed: int = 0, **model_overrides):
    """Build a model from a config with optional top-level model overrides."""
    cfg = load_config(name)
    cfg.model.update(model_overrides)
    cfg.model.seed = seed
    torch.manual_seed(seed)
    return MODELS.build(cfg.model)


def synthetic_item(num_cams: int = 2, seed: int = 0, num_ground: int = 3000,
                   noise_images: bool = False) -> dict:
    """One packed sample of a synthetic scene (what Pack3DDetInputs gives).

    Camera k sits at the LiDAR origin, yawed by 2 pi k / N_cam, with
    fx = fy = 80 px and the principal point at the image centre. In front of
    it a wall of points at depth 8 + 2k m covers the image; ground points
    at z = -1.6 m fill a 20 m disc.

    Returns:
        dict: ``inputs`` (``points`` [P, 5], ``img`` [N_cam, 3, 64, 176]
        in 0..255) and ``data_samples`` (metas ``cam2img``, ``lidar2cam``,
        ``img_aug_matrix``, ``lidar_aug_matrix``).
    """
    gen = torch.Generator().manual_seed(seed)
    height, width = IMAGE_SIZE
    focal = 80.0
    cam2img = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2],
                        [0, 0, 1]], dtype=np.float64)
    yaws = 2 * math.pi * np.arange(num_cams) / num_cams
    lidar2cam = np.tile(np.eye(4), (num_cams, 1, 1))
    zeros = np.zeros(num_cams)
    lidar2cam[:, 0, :3] = np.stack([np.sin(yaws), -np.cos(yaws), zeros], 1)
    lidar2cam[:, 1, :3] = [0, 0, -1]
    lidar2cam[:, 2, :3] = np.stack([np.cos(yaws), np.sin(yaws), zeros], 1)
    # walls: pixels on a 2-px grid unprojected at the wall depth
    vs, us = np.meshgrid(np.arange(0, height, 2.0), np.arange(0, width, 2.0),
                         indexing='ij')
    rays = np.stack([(us - cam2img[0, 2]) / focal, (vs - cam2img[1, 2]) / focal,
                     np.ones_like(us)], -1).reshape(-1, 3)
    depths = 8.0 + 2.0 * np.arange(num_cams)
    cam_points = depths[:, None, None] * rays[None]  # (N_cam, P_wall, 3)
    # inverse rigid transform: p_lidar = R^T (p_cam - t)
    walls = np.einsum('npk,nkj->npj', cam_points - lidar2cam[:, None, :3, 3],
                      lidar2cam[:, :3, :3]).reshape(-1, 3)
    radius = 20 * torch.rand(num_ground, generator=gen).sqrt().numpy()
    angle = 2 * math.pi * torch.rand(num_ground, generator=gen).numpy()
    ground = np.stack([radius * np.cos(angle), radius * np.sin(angle),
                       np.full(num_ground, -1.6)], -1)
    xyz = np.concatenate([walls, ground]).astype(np.float32)
    points = torch.cat([torch.from_numpy(xyz),
                        torch.rand(len(xyz), 1, generator=gen),
                        torch.zeros(len(xyz), 1)], dim=1)
    if noise_images:
        img = 255 * torch.rand(num_cams, 3, height, width, generator=gen)
    else:
        rows = torch.linspace(0, 1, height).view(1, 1, height, 1)
        cols = torch.linspace(0, 1, width).view(1, 1, 1, width)
        tint = torch.linspace(0.2, 0.8, num_cams).view(num_cams, 1, 1, 1)
        img = 255 * torch.cat([rows.expand(num_cams, 1, height, width),
                               (cols * tint).expand(num_cams, 1, height, width),
                               (0.5 + 0.4 * torch.sin(8 * cols)).expand(
                                   num_cams, 1, height, width)], dim=1)
    sample = Det3DDataSample(metainfo=dict(
        cam2img=np.tile(cam2img, (num_cams, 1, 1)),
        lidar2cam=lidar2cam,
        img_aug_matrix=np.tile(np.eye(4), (num_cams, 1, 1)),
        lidar_aug_matrix=np.eye(4),
        img_shape=IMAGE_SIZE,
        box_type_3d='LiDAR'))
    return dict(inputs=dict(points=points, img=img), data_samples=sample)


def preprocess(model, items, training: bool = True) -> dict:
    """Collate packed samples and run the model's data preprocessor."""
    return model.data_preprocessor(pseudo_collate(copy.deepcopy(items)),
                                   training=training)


@pytest.fixture(scope='session')
def real_item(real_frame):
    """The real nuScenes frame through the tiny C+L config's pipeline."""
    cfg = load_config(TINY_CL)
    ds_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    ds_cfg.update(
        data_root=str(real_frame) + '/',
        ann_file=REAL_INFO,
        data_prefix={key: '' for key in ds_cfg.data_prefix})
    return DATASETS.build(ds_cfg)[0]


@pytest.fixture(autouse=True)
def single_thread():
    """Run each test with one intra-op thread.

    The CI machine has 2 cores shared by many processes; with 2 OpenMP
    threads under oversubscription a tiny forward pass was measured 20x
    slower (13.5 s vs 0.6 s) than with one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
