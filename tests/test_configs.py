"""Every config in the repository builds its model and its datasets.

Datasets are pointed at the tiny synthetic world's info files (the paper-scale
configs expect nuScenes under data/nuscenes, which CI does not have), so this
checks the config structure, the registered types and the info schema.
"""
from pathlib import Path

import pytest
from mmdet3d.registry import DATASETS, MODELS
from mmdet3d.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import init_default_scope

from projects.common import load_config
from render_pretrain.paths import REPO_ROOT

CONFIGS = sorted(
    str(p.relative_to(REPO_ROOT))
    for pattern in ('projects/*/configs/**/*.py', 'configs/**/*.py')
    for p in REPO_ROOT.glob(pattern)
    if not p.name.startswith('_'))


def _innermost_dataset(cfg: Config):
    """Descend through dataset wrappers (CBGSDataset, RepeatDataset, ...)."""
    while 'dataset' in cfg and 'ann_file' not in cfg:
        cfg = cfg.dataset
    return cfg


def test_there_are_configs():
    assert any(c.startswith('configs/') for c in CONFIGS)


@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds_model_and_datasets(config, synthetic_infos, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    register_all_modules(init_default_scope=False)
    cfg = load_config(config)
    if cfg.get('custom_imports'):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    init_default_scope(cfg.get('default_scope', 'mmdet3d'))
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
    for split, pkl in (('train_dataloader', 'train'), ('val_dataloader', 'val')):
        if cfg.get(split) is None:  # pre-training configs have no validation
            continue
        dataset_cfg = _innermost_dataset(cfg[split].dataset)
        dataset_cfg.data_root = str(synthetic_infos['root'])
        dataset_cfg.ann_file = str(synthetic_infos[pkl])
        dataset = DATASETS.build(cfg[split].dataset)
        assert len(dataset) > 0, f'{config}: {split} is empty'
