"""tools/train.py and tools/test.py take every flag of mmdet3d 1.4's own tools,
with the same meaning (issue #24.2).

The option sets are compared with mmdet3d's parsers read from the installed
wheel (``mmdet3d/.mim/tools``); the meanings are checked on the config each
tool hands to mmengine's Runner (``Runner.from_cfg`` is intercepted: nothing
trains).
"""
import argparse
import importlib.util
import os.path as osp

import mmdet3d
import pytest
from mmengine.runner import Runner

from render_pretrain.paths import REPO_ROOT

CONFIG = str(REPO_ROOT / 'configs' / 'centerpoint'
             / 'centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py')


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _option_strings(parse, argv, monkeypatch):
    """Every option string (and positional name) of the parser ``parse`` builds."""
    seen = {}
    real = argparse.ArgumentParser.parse_args

    def capture(self, args=None, namespace=None):
        seen['parser'] = self
        return real(self, args, namespace)

    monkeypatch.setattr(argparse.ArgumentParser, 'parse_args', capture)
    monkeypatch.setattr('sys.argv', ['prog'] + argv)
    parse()
    monkeypatch.undo()
    options = {}
    for action in seen['parser']._actions:
        key = tuple(sorted(action.option_strings)) or (action.dest,)
        options[key] = (action.nargs, action.const, action.default, action.choices,
                        getattr(action.type, '__name__', action.type))
    return options


@pytest.mark.parametrize('tool,argv', [('train', ['CFG']), ('test', ['CFG', 'CKPT'])])
def test_option_sets_equal_mmdet3d(tool, argv, monkeypatch):
    upstream = _load(osp.join(osp.dirname(mmdet3d.__file__), '.mim', 'tools', f'{tool}.py'),
                     f'upstream_{tool}')
    ours = _load(str(REPO_ROOT / 'tools' / f'{tool}.py'), f'ours_{tool}')
    theirs = _option_strings(upstream.parse_args, argv, monkeypatch)
    mine = _option_strings(ours.parse_args, argv, monkeypatch)
    assert set(mine) == set(theirs), (sorted(set(theirs) - set(mine)),
                                      sorted(set(mine) - set(theirs)))
    for key, spec in theirs.items():  # nargs, const, default, choices, type
        assert mine[key] == spec, (key, mine[key], spec)
    must = {'train': ['--sync_bn', '--auto-scale-lr', '--amp', '--resume', '--ceph'],
            'test': ['--show', '--show-dir', '--score-thr', '--task', '--tta', '--wait-time']}
    flat = {s for key in mine for s in key}
    assert set(must[tool]) | {'--cfg-options', '--launcher', '--local_rank', '--local-rank'} <= flat


class _Captured(Exception):
    pass


@pytest.fixture
def runner_cfg(monkeypatch):
    """Run a tool's main and return the config it gives ``Runner.from_cfg``."""
    def run(tool, argv):
        seen = {}

        def from_cfg(cfg):
            seen['cfg'] = cfg
            raise _Captured

        monkeypatch.setattr(Runner, 'from_cfg', staticmethod(from_cfg))
        module = _load(str(REPO_ROOT / 'tools' / f'{tool}.py'), f'run_{tool}')
        with pytest.raises(_Captured):
            module.main(argv)
        return seen['cfg']
    return run


def test_train_flags_mean_what_mmdet3d_says(runner_cfg, tmp_path):
    cfg = runner_cfg('train', [CONFIG, '--sync_bn', 'torch', '--amp', '--auto-scale-lr',
                               '--resume', '--cfg-options', 'train_cfg.max_epochs=7'])
    assert cfg.sync_bn == 'torch'
    assert cfg.optim_wrapper.type == 'AmpOptimWrapper' and cfg.optim_wrapper.loss_scale == 'dynamic'
    assert cfg.auto_scale_lr.enable is True
    assert cfg.resume is True and cfg.load_from is None
    assert cfg.train_cfg.max_epochs == 7
    assert cfg.launcher == 'none'
    assert cfg.work_dir == osp.join('./work_dirs', osp.splitext(osp.basename(CONFIG))[0])
    ckpt = str(tmp_path / 'x.pth')
    cfg = runner_cfg('train', [CONFIG, '--resume', ckpt, '--work-dir', str(tmp_path)])
    assert cfg.resume is True and cfg.load_from == ckpt and cfg.work_dir == str(tmp_path)
    assert 'sync_bn' not in cfg and cfg.optim_wrapper.type == 'OptimWrapper'


def test_train_takes_stock_configs_by_package(runner_cfg):
    stock = 'centerpoint/centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d.py'
    cfg = runner_cfg('train', [f'mmdet3d::{stock}'])
    assert cfg.model.type == 'CenterPoint'
    assert cfg.work_dir.endswith('centerpoint_voxel0075_second_secfpn_8xb4-cyclic-20e_nus-3d')


def test_test_flags_mean_what_mmdet3d_says(runner_cfg, tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    show = str(tmp_path / 'vis')
    cfg = runner_cfg('test', [CONFIG, str(ckpt), '--show-dir', show, '--task', 'lidar_det',
                              '--score-thr', '0.3', '--work-dir', str(tmp_path)])
    vis = cfg.default_hooks.visualization
    assert vis.draw is True and vis.test_out_dir == show
    assert vis.vis_task == 'lidar_det' and vis.score_thr == 0.3
    assert cfg.load_from == str(ckpt) and cfg.work_dir == str(tmp_path)
    # --show-dir without --task: mmdet3d's own refusal
    with pytest.raises(AssertionError, match="'--task'"):
        runner_cfg('test', [CONFIG, str(ckpt), '--show-dir', show])


def test_test_tta_wraps_the_model(runner_cfg, tmp_path):
    ckpt = tmp_path / 'model.pth'
    ckpt.write_bytes(b'')
    config = tmp_path / 'tta.py'
    config.write_text(f"_base_ = ['{CONFIG}']\n"
                      "tta_model = dict(type='Seg3DTTAModel')\n"
                      "tta_pipeline = [dict(type='LoadPointsFromFile', coord_type='LIDAR', "
                      "load_dim=5, use_dim=5)]\n")
    cfg = runner_cfg('test', [str(config), str(ckpt), '--tta'])
    assert cfg.model.type == 'Seg3DTTAModel' and cfg.model.module.type == 'CenterPoint'
    assert cfg.test_dataloader.dataset.pipeline == cfg.tta_pipeline
    with pytest.raises(AssertionError, match='tta_model'):
        runner_cfg('test', [CONFIG, str(ckpt), '--tta'])


def test_test_refuses_a_missing_checkpoint(tmp_path):
    module = _load(str(REPO_ROOT / 'tools' / 'test.py'), 'missing_ckpt')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        module.main([CONFIG, str(tmp_path / 'nope.pth')])


def test_train_takes_plugin_configs_by_package(runner_cfg):
    name = 'nsmae_second_1xb1-2e_synthetic-pretrain'
    cfg = runner_cfg('train', [f'render_pretrain::NSMAE/{name}.py'])
    assert cfg.model.type == 'NSMAE'
    assert cfg.work_dir == osp.join('./work_dirs', name)
