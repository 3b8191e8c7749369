"""Downstream configs inherit stock ones and only add the init and the subset."""
import re

import pytest

from tools.utils import load_config
from render_pretrain.paths import REPO_ROOT

INIT_CONFIGS = {
    'configs/centerpoint/centerpoint_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-3d.py':
        ('mmdet3d::centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py',
         'checkpoints/nsmae_swint-lss_second_to_centerpoint.pth'),
    'configs/bevdet/bevdet-r50_lss_centerhead_mim4d-init_8xb8-24e_nus-3d.py':
        ('configs/bevdet/bevdet-r50_lss_centerhead_8xb8-24e_nus-3d.py',
         'checkpoints/mim4d_r50_to_bevdet.pth'),
}
# BEVFusion's (stock base from an mmdetection3d checkout): test_bevfusion_configs.py.
SUBSET_CONFIGS = sorted(str(p.relative_to(REPO_ROOT))
                        for p in REPO_ROOT.glob('configs/*/*pct-3d.py')
                        if p.parent.name != 'bevfusion')


def _train_ann_file(cfg) -> str:
    dataset = cfg.train_dataloader.dataset
    while 'ann_file' not in dataset:
        dataset = dataset.dataset
    return dataset.ann_file


def _without_scope(value):
    """Drop the ``_scope_`` keys mmengine adds to dicts inherited from a package."""
    if isinstance(value, dict):
        return {k: _without_scope(v) for k, v in value.items() if k != '_scope_'}
    if isinstance(value, (list, tuple)):
        return type(value)(_without_scope(v) for v in value)
    return value


def _strip(cfg) -> dict:
    return _without_scope({k: v for k, v in cfg.to_dict().items()
                           if k not in ('load_from', 'filename')})


@pytest.mark.parametrize('config', sorted(INIT_CONFIGS))
def test_init_config_is_the_stock_config_plus_load_from(config, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    stock_path, checkpoint = INIT_CONFIGS[config]
    cfg, stock = load_config(config), load_config(stock_path)
    assert cfg.load_from == checkpoint
    assert stock.get('load_from') is None
    mine, theirs = _strip(cfg), _strip(stock)
    if 'bevdet' in config:  # the ImageNet init is switched off: load_from brings the backbone
        assert mine['model']['img_backbone'].pop('init_cfg') is None
        theirs['model']['img_backbone'].pop('init_cfg')
    assert mine == theirs


def test_there_are_label_efficient_variants():
    percents = {re.search(r'nus-(\d+)pct', c).group(1) for c in SUBSET_CONFIGS}
    assert percents == {'1', '5', '10'}
    assert len(SUBSET_CONFIGS) == 12  # {CenterPoint, BEVDet} x {scratch, pre-trained} x 3


@pytest.mark.parametrize('config', SUBSET_CONFIGS)
def test_label_efficient_config_changes_only_the_training_subset(config, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    pct = re.search(r'nus-(\d+)pct', config).group(1)
    full = config.replace(f'_nus-{pct}pct-3d.py', '_nus-3d.py')
    if not (REPO_ROOT / full).exists():  # scratch CenterPoint: the stock packaged config
        full = 'mmdet3d::centerpoint/' + full.split('/')[-1]
    cfg, base = load_config(config), load_config(full)
    assert _train_ann_file(cfg) == f'nuscenes_infos_train_{pct}pct.pkl'
    assert _train_ann_file(base) == 'nuscenes_infos_train.pkl'
    assert cfg.get('load_from') == base.get('load_from')
    mine, theirs = _strip(cfg), _strip(base)
    mine.pop('train_dataloader'), theirs.pop('train_dataloader')
    # LiDAR subsets sample their own ground-truth database (tests/tools/test_subset_gt_database)
    if 'gt_database_subset' in mine:
        assert mine.pop('gt_database_subset') == f'nuscenes_dbinfos_train_{pct}pct.pkl'
    # BEVDet subsets warm up over their first epoch (tests/bevdet_compat/test_bevdet_head.py)
    if 'bevdet' in config:
        warm, base_warm = mine['param_scheduler'][0], theirs['param_scheduler'][0]
        assert (warm['by_epoch'], warm['end'], warm['convert_to_iter_based']) == (True, 1, True)
        assert (base_warm['by_epoch'], base_warm['end']) == (False, 500)
        mine['param_scheduler'][0] = base_warm
    assert mine == theirs
