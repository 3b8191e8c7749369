"""Label-efficient LiDAR runs sample ground-truth objects of their own subset only (#21.1)."""
import json
import pickle
import re
import textwrap
from pathlib import Path

import pytest

from tools.utils import load_config
from tools.utils.gt_database import create_subset_gt_databases
from render_pretrain.paths import REPO_ROOT

SUBSET_CONFIGS = sorted(
    p for d in ('centerpoint', 'bevfusion') for p in (REPO_ROOT / 'configs' / d).glob('*pct*.py'))
STOCK_DB = 'data/nuscenes/nuscenes_dbinfos_train.pkl'
# stand-in for mmdetection3d's projects/BEVFusion configs (not in the wheel): the
# LiDAR-only stock pipeline samples the database; C+L inherits it.
STANDIN = {
    'bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py': f"""
        train_dataloader = dict(dataset=dict(type='CBGSDataset', dataset=dict(
            type='NuScenesDataset', ann_file='nuscenes_infos_train.pkl',
            pipeline=[dict(type='LoadPointsFromFile'),
                      dict(type='ObjectSample', db_sampler=dict(
                          data_root='data/nuscenes/', info_path='{STOCK_DB}'))])))
        load_from = None
        """,
    'bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py': """
        _base_ = ['./bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']
        """,
}


@pytest.fixture
def standin_checkout(tmp_path, monkeypatch):
    configs = tmp_path / 'mmdetection3d' / 'projects' / 'BEVFusion' / 'configs'
    configs.mkdir(parents=True)
    for name, text in STANDIN.items():
        (configs / name).write_text(textwrap.dedent(text))
    monkeypatch.setenv('MMDET3D_ROOT', str(tmp_path / 'mmdetection3d'))
    monkeypatch.chdir(REPO_ROOT)


@pytest.fixture(scope='module')
def subset_databases(synthetic_infos, synthetic_gt_database, tmp_path_factory):
    out = tmp_path_factory.mktemp('subset_db')
    return create_subset_gt_databases(synthetic_gt_database, synthetic_infos['train'],
                                      synthetic_infos['manifests'], out)


def _token_of(train_info):
    """sample_idx -> sample token of the full training info file (read independently)."""
    with open(train_info, 'rb') as f:
        return {info['sample_idx']: info['token'] for info in pickle.load(f)['data_list']}


def _samplers(cfg):
    dataset = cfg.train_dataloader.dataset
    while 'dataset' in dataset:
        dataset = dataset.dataset
    return [s.db_sampler for s in dataset.pipeline if 'db_sampler' in s]


def test_there_are_subset_configs():
    assert len(SUBSET_CONFIGS) == 6 + 12


@pytest.mark.parametrize('config', SUBSET_CONFIGS, ids=lambda p: p.name)
def test_every_object_of_a_subset_config_database_is_from_its_subset(
        config, standin_checkout, subset_databases, synthetic_infos, synthetic_gt_database):
    pct = int(re.search(r'nus-(\d+)pct', config.name).group(1))
    cfg = load_config(str(config))
    samplers = _samplers(cfg)
    assert samplers, f'{config.name}: no ObjectSample in the training pipeline'
    manifest = json.loads(Path(synthetic_infos['manifests'][pct]).read_text())
    keep = set(manifest['sample_tokens'])
    token_of = _token_of(synthetic_infos['train'])
    for sampler in samplers:
        # the config reads the subset's file, beside the stock database
        assert sampler.info_path == f'data/nuscenes/nuscenes_dbinfos_train_{pct}pct.pkl'
        # ... which create_subset_gt_databases wrote for the synthetic world
        db_file = subset_databases[pct]
        assert db_file.name == Path(sampler.info_path).name
        with open(db_file, 'rb') as f:
            db = pickle.load(f)
        tokens = [token_of[e['image_idx']] for objects in db.values() for e in objects]
        assert tokens and set(tokens) <= keep
    # the full database has objects outside the subset: the check above can fail
    with open(synthetic_gt_database, 'rb') as f:
        full = pickle.load(f)
    outside = [e for objects in full.values() for e in objects
               if token_of[e['image_idx']] not in keep]
    assert outside
    n_full = sum(len(v) for v in full.values())
    with open(subset_databases[pct], 'rb') as f:
        n_sub = sum(len(v) for v in pickle.load(f).values())
    assert n_sub + len(outside) == n_full  # nothing of the subset is dropped


LIDAR_1PCT = REPO_ROOT / 'configs/bevfusion' / \
    'bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-1pct-3d.py'


def test_subset_training_set_without_its_database_is_an_error(standin_checkout, tmp_path):
    config = tmp_path / 'leaky.py'
    config.write_text(textwrap.dedent(f"""
        _base_ = ['{LIDAR_1PCT}']
        gt_database_subset = None
        """))
    with pytest.raises(ValueError, match='label leakage'):
        load_config(str(config))
    config.write_text(textwrap.dedent(f"""
        _base_ = ['{LIDAR_1PCT}']
        gt_database_subset = 'nuscenes_dbinfos_train_10pct.pkl'
        """))
    with pytest.raises(ValueError, match='does not belong'):
        load_config(str(config))
