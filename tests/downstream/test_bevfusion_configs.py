"""BEVFusion downstream configs inherit mmdet3d's project configs from a checkout.

mmdet3d's BEVFusion project (configs, model, compiled ops) is in the
mmdetection3d repository, not in the mmdet3d wheel, so the configs in
``configs/bevfusion/`` take their ``_base_`` from ``$MMDET3D_ROOT``. These
tests write a stand-in ``projects/BEVFusion``
with the parts of the stock configs that ours touch (the CBGS-wrapped
training set, the Swin ``init_cfg``, the stock ``load_from``) and check that
our files change exactly what they claim and nothing else. That the converted
weights fit the stock BEVFusion model is checked against its key manifest in
``tests/converters/test_bevfusion_conversion.py``, and against the real
upstream model in ``test_stock_bevfusion.py``.
"""
import os
import re
import subprocess
import sys
import textwrap

import pytest

from tools.utils import load_config
from render_pretrain.paths import REPO_ROOT

CONFIG_DIR = REPO_ROOT / 'configs' / 'bevfusion'
LIDAR = 'bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
LIDAR_CAM = 'bevfusion_lidar-cam_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
STANDIN_CONFIGS = {
    LIDAR: """
        model = dict(
            type='BEVFusion',
            pts_voxel_encoder=dict(type='HardSimpleVFE', num_features=5),
            pts_middle_encoder=dict(type='BEVFusionSparseEncoder', in_channels=5))
        train_dataloader = dict(
            batch_size=4,
            dataset=dict(
                type='CBGSDataset',
                dataset=dict(type='NuScenesDataset', ann_file='nuscenes_infos_train.pkl')))
        load_from = 'checkpoints/bevfusion_init_converted.pth'
        """,
    LIDAR_CAM: """
        _base_ = ['./bevfusion_lidar_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py']
        model = dict(
            img_backbone=dict(
                type='mmdet.SwinTransformer',
                init_cfg=dict(type='Pretrained', checkpoint='swin_tiny.pth')),
            fusion_layer=dict(type='ConvFuser', in_channels=[80, 256], out_channels=256))
        """,
}
INIT_CHECKPOINTS = {
    'lidar-cam': 'checkpoints/nsmae_swint-lss_second_to_bevfusion.pth',
    'lidar': 'checkpoints/nsmae_second_to_bevfusion-lidar.pth',
}
# the nuScenes configs (the tiny synthetic ones are tested against the real
# upstream project in test_stock_bevfusion_tiny.py)
OUR_CONFIGS = sorted(p.name for p in CONFIG_DIR.glob('*_nus-*.py'))


@pytest.fixture
def mmdet3d_checkout(tmp_path, monkeypatch):
    """A stand-in mmdetection3d checkout with projects/BEVFusion, named by $MMDET3D_ROOT."""
    root = tmp_path / 'mmdetection3d'
    configs = root / 'projects' / 'BEVFusion' / 'configs'
    configs.mkdir(parents=True)
    for name, text in STANDIN_CONFIGS.items():
        (configs / name).write_text(textwrap.dedent(text))
    package = root / 'projects' / 'BEVFusion' / 'bevfusion'
    package.mkdir()
    (package / '__init__.py').write_text("ORIGIN = 'mmdetection3d checkout'\n")
    monkeypatch.setenv('MMDET3D_ROOT', str(root))
    monkeypatch.chdir(REPO_ROOT)
    return root


def _train_ann_file(cfg) -> str:
    return cfg.train_dataloader.dataset.dataset.ann_file


def _strip(cfg, *keys) -> dict:
    return {k: v for k, v in cfg.to_dict().items() if k not in ('filename',) + keys}


def test_there_are_init_and_label_efficient_configs():
    kinds = {re.match(r'bevfusion_(lidar(?:-cam)?)_', n).group(1) for n in OUR_CONFIGS}
    assert kinds == {'lidar', 'lidar-cam'}
    for kind in kinds:
        for init in ('_nsmae-init', ''):
            for pct in ('-1pct', '-5pct', '-10pct'):
                assert (f'bevfusion_{kind}_voxel0075_second_secfpn{init}_8xb4-cyclic-20e_nus'
                        f'{pct}-3d.py') in OUR_CONFIGS
        assert f'bevfusion_{kind}_voxel0075_second_secfpn_nsmae-init_8xb4-cyclic-20e_nus-3d.py' \
            in OUR_CONFIGS
    assert len(OUR_CONFIGS) == 14


@pytest.mark.parametrize('kind', ['lidar', 'lidar-cam'])
def test_init_config_is_the_stock_config_plus_the_converted_weights(kind, mmdet3d_checkout):
    ours = load_config(str(CONFIG_DIR / f'bevfusion_{kind}_voxel0075_second_secfpn_nsmae-init_'
                                        '8xb4-cyclic-20e_nus-3d.py'))
    stock = load_config(str(mmdet3d_checkout / 'projects/BEVFusion/configs' /
                            (LIDAR if kind == 'lidar' else LIDAR_CAM)))
    assert stock.load_from == 'checkpoints/bevfusion_init_converted.pth'
    assert ours.load_from == INIT_CHECKPOINTS[kind]
    mine, theirs = _strip(ours, 'load_from'), _strip(stock, 'load_from')
    if kind == 'lidar-cam':  # the Swin ImageNet init is off: load_from brings the backbone
        assert theirs['model']['img_backbone'].pop('init_cfg')['type'] == 'Pretrained'
        assert mine['model']['img_backbone'].pop('init_cfg') is None
    assert mine == theirs


@pytest.mark.parametrize('config', [c for c in OUR_CONFIGS if 'pct' in c])
def test_label_efficient_config_changes_only_the_training_subset(config, mmdet3d_checkout):
    pct = re.search(r'nus-(\d+)pct', config).group(1)
    full_name = config.replace(f'_nus-{pct}pct-3d.py', '_nus-3d.py')
    full = CONFIG_DIR / full_name
    if not full.exists():  # scratch: the stock config itself
        full = mmdet3d_checkout / 'projects/BEVFusion/configs' / full_name
    cfg, base = load_config(str(CONFIG_DIR / config)), load_config(str(full))
    assert _train_ann_file(cfg) == f'nuscenes_infos_train_{pct}pct.pkl'
    assert _train_ann_file(base) == 'nuscenes_infos_train.pkl'
    if 'lidar-cam' in config:  # two-stage recipe: test_cl_subset_starts_from_its_own_lidar_stage
        assert cfg.load_from != base.load_from
        cfg.load_from = base.load_from
    assert cfg.load_from == base.load_from
    # ObjectSample of the subset reads the subset's database (tests/tools/test_subset_gt_database)
    assert cfg.gt_database_subset == f'nuscenes_dbinfos_train_{pct}pct.pkl'
    mine = _strip(cfg, 'train_dataloader', 'gt_database_subset')
    theirs = _strip(base, 'train_dataloader')
    assert mine == theirs
    cfg.train_dataloader.dataset.dataset.ann_file = 'nuscenes_infos_train.pkl'
    assert cfg.train_dataloader.to_dict() == base.train_dataloader.to_dict()


def test_missing_checkout_says_how_to_point_at_one(tmp_path, monkeypatch):
    monkeypatch.setenv('MMDET3D_ROOT', str(tmp_path / 'no-checkout-here'))
    config = CONFIG_DIR / OUR_CONFIGS[0]
    with pytest.raises(FileNotFoundError, match='MMDET3D_ROOT=/path/to/mmdetection3d') as err:
        load_config(str(config))
    assert str(config) in str(err.value) and 'no-checkout-here' in str(err.value)


@pytest.mark.subprocess
def test_mmdet3d_projects_import_next_to_ours(mmdet3d_checkout, tmp_path):
    """``projects`` is a namespace package here and in mmdetection3d.

    The tools put this repository first on ``sys.path`` and the checkout
    after it (``use_mmdet3d_checkout``); the BEVFusion configs'
    ``custom_imports`` (``projects.BEVFusion.bevfusion``) and ours
    (``projects.NSMAE.nsmae``) must both import. A regular package
    ``projects/__init__.py`` on either side would hide the other.
    """
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from tools.utils import use_mmdet3d_checkout
        print(use_mmdet3d_checkout())
        import projects.BEVFusion.bevfusion as theirs
        import projects.NSMAE.nsmae as ours
        print(theirs.ORIGIN)
        print(ours.__file__)
        """)
    result = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True,
                            text=True, env=dict(os.environ), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == str(mmdet3d_checkout)
    assert lines[1] == 'mmdetection3d checkout'
    assert lines[2] == str(REPO_ROOT / 'projects' / 'NSMAE' / 'nsmae' / '__init__.py')


def test_unusable_checkout_path_is_an_error(tmp_path, monkeypatch):
    from tools.utils import use_mmdet3d_checkout
    monkeypatch.setenv('MMDET3D_ROOT', str(tmp_path / 'missing'))
    with pytest.raises(FileNotFoundError, match='MMDET3D_ROOT=.*missing is not a directory'):
        use_mmdet3d_checkout()
    monkeypatch.delenv('MMDET3D_ROOT')
    monkeypatch.setattr('tools.utils.runner_cli.DEFAULT_MMDET3D_ROOT', str(tmp_path / 'no'))
    assert use_mmdet3d_checkout() is None


@pytest.mark.parametrize('config', [c for c in OUR_CONFIGS if 'pct' in c and 'lidar-cam' in c])
def test_cl_subset_starts_from_its_own_lidar_stage(config, mmdet3d_checkout):
    """C+L subset runs load a LiDAR-only stage trained on the same subset (#21.2)."""
    pct = re.search(r'nus-(\d+)pct', config).group(1)
    cfg = load_config(str(CONFIG_DIR / config))
    stage1 = config.replace('bevfusion_lidar-cam_', 'bevfusion_lidar_')
    stage1_cfg = load_config(str(CONFIG_DIR / stage1))
    assert _train_ann_file(stage1_cfg) == _train_ann_file(cfg) == \
        f'nuscenes_infos_train_{pct}pct.pkl'
    assert cfg.gt_database_subset == stage1_cfg.gt_database_subset
    if 'nsmae-init' in config:
        # stage 2 = merge_stage_checkpoints(stage-1 checkpoint, NS-MAE C+L conversion)
        assert stage1_cfg.load_from == INIT_CHECKPOINTS['lidar']
        assert cfg.load_from == f'checkpoints/bevfusion_lidar-cam_nsmae-init_{pct}pct_stage2.pth'
        text = (CONFIG_DIR / config).read_text()
        assert f'work_dirs/{stage1[:-3]}/epoch_20.pth' in text
        assert INIT_CHECKPOINTS['lidar-cam'] in text
    else:
        assert cfg.load_from == f'work_dirs/{stage1[:-3]}/epoch_20.pth'
        assert 'bevfusion_init_converted' not in cfg.load_from  # not the 100 % checkpoint


def test_default_checkout_serves_custom_imports_as_well_as_base(tmp_path, monkeypatch):
    """Without ``$MMDET3D_ROOT``, ``../mmdetection3d`` goes on sys.path too.

    The configs' ``_base_`` default (``{{$MMDET3D_ROOT:../../../mmdetection3d}}``
    relative to ``configs/bevfusion/``) and the import default are one folder.
    """
    from tools.utils import runner_cli, use_mmdet3d_checkout
    monkeypatch.delenv('MMDET3D_ROOT', raising=False)
    text = (CONFIG_DIR / OUR_CONFIGS[0]).read_text()
    default = re.search(r"\{\{\$MMDET3D_ROOT:([^}]+)\}\}", text).group(1)
    assert os.path.normpath(CONFIG_DIR / default) == os.path.normpath(
        runner_cli.DEFAULT_MMDET3D_ROOT)
    monkeypatch.setattr(sys, 'path', list(sys.path))
    checkout = tmp_path / 'mmdetection3d'
    checkout.mkdir()
    monkeypatch.setattr(runner_cli, 'DEFAULT_MMDET3D_ROOT', str(checkout))
    assert use_mmdet3d_checkout() == str(checkout)
    assert sys.path[-1] == str(checkout)
