"""Every config in the repository builds its model and its datasets.

Datasets are pointed at the tiny synthetic world's info files (the paper-scale
configs expect nuScenes under data/nuscenes, which CI does not have), so this
checks the config structure, the registered types and the info schema.
"""

import os

import pytest
from mmdet3d.registry import DATASETS, MODELS
from mmengine.config import Config

from tools.utils import load_config, prepare_registries
from render_pretrain.paths import REPO_ROOT

# configs/bevfusion inherit mmdet3d's BEVFusion project from an mmdetection3d
# checkout ($MMDET3D_ROOT), which the wheel lacks: tests/downstream/
# test_bevfusion_configs.py checks them against a stand-in checkout. The
# shared parts in configs/_base_/ are built through the configs that inherit them.
CONFIGS = sorted(
    str(p.relative_to(REPO_ROOT))
    for pattern in ('projects/*/configs/**/*.py', 'configs/**/*.py')
    for p in REPO_ROOT.glob(pattern)
    if not p.name.startswith('_') and '_base_' not in p.parts and p.parent.name != 'bevfusion')


def _innermost_dataset(cfg: Config):
    """Descend through dataset wrappers (CBGSDataset, RepeatDataset, ...)."""
    while 'dataset' in cfg and 'ann_file' not in cfg:
        cfg = cfg.dataset
    return cfg


def test_there_are_configs():
    assert any(c.startswith('configs/') for c in CONFIGS)


def _point_db_samplers_at(pipeline, data_root: str, info_path: str) -> None:
    """Point every ``ObjectSample`` database at the synthetic world's.

    mmdet3d's DataBaseSampler fails on a class with no database object left
    after its min-points filter (never the case on nuScenes); the tiny world
    may lack some, so their sample groups are dropped here.
    """
    import pickle
    with open(info_path, 'rb') as f:
        db_infos = pickle.load(f)
    for transform in pipeline:
        if 'db_sampler' not in transform:
            continue
        sampler = transform.db_sampler
        sampler.data_root = data_root
        sampler.info_path = info_path
        min_points = sampler.prepare.get('filter_by_min_points', {})
        available = {name for name, objects in db_infos.items()
                     if any(o['num_points_in_gt'] >= min_points.get(name, 0) for o in objects)}
        sampler.sample_groups = {k: v for k, v in sampler.sample_groups.items() if k in available}
        assert sampler.sample_groups, 'the synthetic database has no usable object'


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_model_and_datasets(config, synthetic_infos, monkeypatch, request):
    monkeypatch.chdir(REPO_ROOT)
    cfg = prepare_registries(load_config(config))
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for split, pkl in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        if cfg.get(split) is None:  # pre-training configs have no validation
            continue
        dataset_cfg = _innermost_dataset(cfg[split].dataset)
        dataset_cfg.data_root = str(synthetic_infos['root'])
        dataset_cfg.ann_file = str(synthetic_infos[pkl])
        if any('db_sampler' in t for t in dataset_cfg.get('pipeline', [])):
            db_infos = request.getfixturevalue('synthetic_gt_database')
            _point_db_samplers_at(dataset_cfg.pipeline, str(synthetic_infos['root']) + '/',
                                  str(db_infos))
        dataset = DATASETS.build(cfg[split].dataset)
        assert len(dataset) > 0, f'{config}: {split} is empty'
        if split == 'train_dataloader' and 'db_sampler' in str(dataset_cfg.get('pipeline')):
            # the stock pipeline, ObjectSample included, runs on a real sample
            sample = dataset[0]
            assert len(sample['data_samples'].gt_instances_3d) > 0


@pytest.mark.parametrize('config', CONFIGS)
def test_seeded_transforms_come_with_the_seeding_hook(config):
    """A train pipeline with a seeded transform also has SeededRandomnessHook.

    Without the hook such a transform falls back to a per-worker generator
    that repeats its draws every epoch and does not resume exactly.
    """
    from mmdet3d.registry import TRANSFORMS
    from render_pretrain.seeding import EpochSeededTransformMixin
    cfg = prepare_registries(load_config(config))
    loader = cfg.get('train_dataloader')
    if not loader:
        pytest.skip(f'{config} has no train_dataloader')
    seeded = [step['type'] for step in _innermost_dataset(loader.dataset).get('pipeline', [])
              if issubclass(TRANSFORMS.get(step['type']), EpochSeededTransformMixin)]
    hooks = [hook['type'] for hook in cfg.get('custom_hooks') or []]
    assert not seeded or 'SeededRandomnessHook' in hooks, (config, seeded, hooks)


BASE_DIR = REPO_ROOT / 'configs' / '_base_'
#: paper config -> the parts it shares through configs/_base_/ (instead of copies)
SHARED_BASES = {
    'projects/NSMAE/configs/nsmae_swint-lss_second_8xb2-cyclic-50e_nus-pretrain.py': (
        'models/bevfusion-encoder_swint-lss_second.py', 'datasets/nus-multiview.py',
        'schedules/cyclic-50e.py', 'default_runtime.py'),
    'projects/BEVSeg/configs/'
    'bevfusionseg_lidar-cam_swint-lss_second_secfpn_8xb4-cyclic-20e_nus-seg.py': (
        'models/bevfusion-encoder_swint-lss_second.py', 'datasets/nus-multiview.py',
        'schedules/cyclic-20e.py', 'default_runtime.py'),
    'projects/MIM4D/configs/mim4d_r50-lss_temporal-neus_8xb1-12e_nus-pretrain.py': (
        'models/bevdet-r50_image-encoder.py', 'datasets/nus-multiview.py', 'default_runtime.py'),
    'configs/bevdet/bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py': (
        'models/bevdet-r50_image-encoder.py', 'schedules/bevdet-24e.py'),
}


@pytest.mark.parametrize('config', sorted(SHARED_BASES))
def test_paper_configs_inherit_the_shared_parts(config):
    path = REPO_ROOT / config
    inherited = {os.path.realpath(path.parent / base)
                 for base in Config._get_base_files(str(path)) if '::' not in base}
    expected = {os.path.realpath(BASE_DIR / base) for base in SHARED_BASES[config]}
    assert expected <= inherited, f'{config}: not inherited: {expected - inherited}'


def test_every_shared_part_is_inherited():
    shared = {str(p.relative_to(BASE_DIR)) for p in BASE_DIR.rglob('*.py')}
    assert shared == {base for bases in SHARED_BASES.values() for base in bases}
