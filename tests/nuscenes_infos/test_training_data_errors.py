"""At training time a damaged LiDAR file, image or info .pkl fails with the
file in the message (compat shim ``mmengine_dataset_errors_name_files``),
through the tiny NS-MAE config's stock mmdet3d dataset and pipeline."""
import copy
import os
import shutil

import numpy as np
import pytest
from mmengine.config import Config
from mmengine.dataset import BaseDataset

import projects.NSMAE.nsmae  # noqa: F401  (registers the NS-MAE transforms)
from mmdet3d.registry import DATASETS
from mmdet3d.utils import register_all_modules
from render_pretrain.compat import DataFileError
from render_pretrain.paths import REPO_ROOT

TINY_CL = REPO_ROOT / 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'


@pytest.fixture
def world_copy(synthetic_world, tmp_path):
    """Sensor files symlinked (replace, never write through them)."""
    root = tmp_path / 'world'
    shutil.copytree(synthetic_world, root, symlinks=False, copy_function=os.symlink)
    return root


def _dataset(root, ann_file):
    register_all_modules(init_default_scope=True)
    cfg = Config.fromfile(str(TINY_CL))
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.update(data_root=str(root) + '/', ann_file=str(ann_file))
    dataset_cfg.pipeline[2].update(resize_lim=[1.0, 1.0])  # 176x64 session world
    return DATASETS.build(dataset_cfg)


def _replace(path, data: bytes):
    path.unlink()
    path.write_bytes(data)


def truncated_lidar(info):
    return info['lidar_points']['lidar_path'], lambda b: b[:-6], 'truncated or corrupt'


def garbage_image(info):
    return info['images']['CAM_BACK_LEFT']['img_path'], lambda b: b'not an image' * 20, \
        'does not decode'


@pytest.mark.parametrize('damage', [truncated_lidar, garbage_image])
def test_damaged_sample_file_is_named(world_copy, synthetic_infos, damage):
    dataset = _dataset(world_copy, synthetic_infos['train'])
    dataset[0]  # intact
    path, cut, problem = damage(dataset.get_data_info(1))
    _replace(world_copy / os.path.relpath(path, str(world_copy)),
             cut((world_copy / os.path.relpath(path, str(world_copy))).read_bytes()))
    # Upstream: the error comes from numpy / the pipeline and names no file.
    with pytest.raises(Exception) as upstream:
        BaseDataset.__getitem__.__wrapped_upstream__(dataset, 1)
    assert os.path.basename(path) not in str(upstream.value)
    with pytest.raises(DataFileError) as err:
        dataset[1]
    message = str(err.value)
    assert f'{path} {problem}' in message and 'sample 1' in message
    assert isinstance(err.value.__cause__, type(upstream.value))


@pytest.mark.parametrize('cut', [0, 100])
def test_damaged_info_pkl_is_named(world_copy, synthetic_infos, tmp_path, cut):
    ann = tmp_path / 'infos.pkl'
    ann.write_bytes(synthetic_infos['train'].read_bytes()[:cut])
    with pytest.raises(DataFileError, match=f'annotation file {ann} cannot be read'):
        _dataset(world_copy, ann)


def test_intact_samples_load(world_copy, synthetic_infos):
    dataset = _dataset(world_copy, synthetic_infos['train'])
    item = dataset[len(dataset) - 1]
    assert item['inputs']['img'].shape == (6, 3, 64, 176)
    assert np.isfinite(item['inputs']['points'].numpy()).all()
