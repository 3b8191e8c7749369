"""Packaging (issue #24.1): setup.py declares the OpenMMLab stack with the
version series we test, pip keeps an installed stack (never rebuilds mmcv),
and the launch scripts run the active environment's Python.
"""
import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version

import pytest
from packaging.requirements import Requirement

from render_pretrain.paths import REPO_ROOT

OPENMMLAB = {'mmengine', 'mmcv', 'mmdet', 'mmdet3d', 'nuscenes-devkit'}


def _setup_constants():
    """The module-level list constants of setup.py, read without running it."""
    tree = ast.parse((REPO_ROOT / 'setup.py').read_text())
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except (ValueError, AttributeError):
                pass
    return constants


def _install_requires():
    consts = _setup_constants()
    return [Requirement(r) for r in consts['BASE_REQUIRES'] + consts['OPENMMLAB_REQUIRES']]


def _readme_tested_versions():
    """package -> version from the README's "Tested versions" table."""
    text = (REPO_ROOT / 'README.md').read_text()
    table = text.split('### Tested versions', 1)[1].split('\n\n', 2)[1]
    rows = re.findall(r'^\| (\S+) \| ([0-9][^ |]*)', table, flags=re.M)
    return dict(rows)


def test_setup_declares_the_openmmlab_stack_but_not_torch_or_spconv():
    names = {r.name for r in _install_requires()}
    assert OPENMMLAB <= names
    # torch: mmcv's ops are built against the installed one; spconv: the CPU
    # wheel would land over a GPU user's spconv-cu1xx (same import name).
    assert not names & {'torch', 'spconv'}
    assert Requirement(_setup_constants()['SPCONV_CPU']).name == 'spconv'
    assert "'cpu': [SPCONV_CPU]" in (REPO_ROOT / 'setup.py').read_text()


def test_declared_ranges_hold_the_tested_versions_and_refuse_untested_series():
    specs = {r.name: r.specifier for r in _install_requires()}
    tested = _readme_tested_versions()
    for name in OPENMMLAB:
        assert tested[name] in specs[name], (name, tested[name], specs[name])
    # the next series (mmdet3d 1.4 itself refuses mmcv 2.2 and mmdet 3.4)
    for name, untested in [('mmcv', '2.2.0'), ('mmdet', '3.4.0'), ('mmdet3d', '1.5.0'),
                           ('mmengine', '0.11.0'), ('mmcv', '2.0.1'), ('mmdet3d', '1.3.0')]:
        assert untested not in specs[name], (name, untested)
    spconv = Requirement(_setup_constants()['SPCONV_CPU']).specifier
    assert tested['spconv'] in spconv


def test_this_environment_satisfies_the_declared_ranges():
    for req in _install_requires() + [Requirement(_setup_constants()['SPCONV_CPU'])]:
        if req.name == 'spconv':  # a GPU environment holds spconv-cu1xx instead
            try:
                installed = version('spconv')
            except PackageNotFoundError:
                continue
        else:
            installed = version(req.name)
        assert installed in req.specifier, (req.name, installed, str(req.specifier))


@pytest.mark.subprocess
def test_pip_install_editable_keeps_the_installed_stack(tmp_path):
    """``pip install -e .`` as tools/install.sh runs it, dry: only this package."""
    report = tmp_path / 'report.json'
    result = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--dry-run', '--no-index',
         '--no-build-isolation', '--disable-pip-version-check', '--quiet',
         '--report', str(report), '-e', f'{REPO_ROOT}[tests]'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    planned = [item['metadata']['name'] for item in json.loads(report.read_text())['install']]
    assert planned == ['render-pretrain'], planned


def _stub(path, tag, log):
    path.write_text(f'#!/bin/sh\necho "{tag} $*" >> "{log}"\n')
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize('script,args', [
    ('dist_train.sh', ['CFG', '2']),
    ('dist_test.sh', ['CFG', 'CKPT', '2']),
    ('slurm_train.sh', ['PART', 'JOB', 'CFG', 'WORK']),
])
@pytest.mark.subprocess
def test_launch_scripts_use_the_active_python_not_the_repository_venv(tmp_path, script, args):
    # a copy of the repository layout with its own .venv, and an active env on PATH
    root = tmp_path / 'repo'
    (root / 'tools').mkdir(parents=True)
    (root / 'tools' / 'utils').mkdir()
    for name in (script, 'utils/launch_env.sh'):  # the script and the part it sources
        (root / 'tools' / name).write_text((REPO_ROOT / 'tools' / name).read_text())
    (root / '.venv' / 'bin').mkdir(parents=True)
    active = tmp_path / 'active_env' / 'bin'
    active.mkdir(parents=True)
    log = tmp_path / 'calls.log'
    _stub(root / '.venv' / 'bin' / 'python', 'REPO_VENV', log)
    _stub(active / 'python', 'ACTIVE', log)
    _stub(active / 'srun', 'SRUN', log)
    env = dict(os.environ, PATH=f'{active}:/usr/bin:/bin')
    env.pop('PYTHON', None)
    run = subprocess.run(['bash', str(root / 'tools' / script), *args], env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = log.read_text()
    assert 'REPO_VENV' not in calls
    python_used = str(active / 'python')
    assert (calls.startswith('ACTIVE ') if script != 'slurm_train.sh'
            else f' {python_used} -u ' in calls), calls
    # the whole command line, as the scripts have always written it
    tools = root.resolve() / 'tools'
    launch = ('ACTIVE -m torch.distributed.run --nnodes=1 --node_rank=0 '
              '--master_addr=127.0.0.1 --nproc_per_node=2 --master_port=29500 ')
    assert calls.strip() == {
        'dist_train.sh': f'{launch}{tools}/train.py CFG --launcher pytorch',
        'dist_test.sh': f'{launch}{tools}/test.py CFG CKPT --launcher pytorch',
        'slurm_train.sh': (f'SRUN -p PART --job-name=JOB --gres=gpu:8 --ntasks=8 '
                           f'--ntasks-per-node=8 --cpus-per-task=5 --kill-on-bad-exit=1 '
                           f'{python_used} -u {tools}/train.py CFG --work-dir=WORK '
                           '--launcher=slurm'),
    }[script]
    # $PYTHON wins over the active environment
    log.unlink()
    explicit = tmp_path / 'explicit_python'
    _stub(explicit, 'EXPLICIT', log)
    run = subprocess.run(['bash', str(root / 'tools' / script), *args],
                         env=dict(env, PYTHON=str(explicit)), capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    calls = log.read_text()
    assert (calls.startswith('EXPLICIT ') if script != 'slurm_train.sh'
            else f' {explicit} -u ' in calls), calls


def _config_groups():
    """group -> real config folder, as render_pretrain/.mim/configs names them."""
    groups = {p.name: p for p in (REPO_ROOT / 'configs').iterdir() if p.is_dir()}
    groups.update({p.parent.name: p for p in (REPO_ROOT / 'projects').glob('*/configs')})
    return groups


def test_every_config_is_reachable_as_render_pretrain_package_path():
    from tools.utils.runner_cli import resolve_config_path
    groups = _config_groups()
    assert {'centerpoint', 'bevdet', 'bevfusion', 'NSMAE', 'MIM4D', 'BEVSeg'} <= set(groups)
    count = 0
    for group, folder in groups.items():
        for config in sorted(folder.glob('*.py')):
            resolved = resolve_config_path(f'render_pretrain::{group}/{config.name}')
            assert resolved == os.path.realpath(config), (group, config.name, resolved)
            count += 1
    assert count >= 40
    mim_tools = REPO_ROOT / 'render_pretrain' / '.mim' / 'tools'
    for tool in ('train.py', 'test.py', 'dist_train.sh', 'dist_test.sh'):
        assert os.path.samefile(mim_tools / tool, REPO_ROOT / 'tools' / tool)


def test_package_config_loads_as_the_file():
    from tools.utils.runner_cli import load_config
    name = 'centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py'
    by_package = load_config(f'render_pretrain::centerpoint/{name}')
    by_file = load_config(str(REPO_ROOT / 'configs' / 'centerpoint' / name))
    assert by_package.to_dict() == by_file.to_dict()
    with pytest.raises(FileNotFoundError, match='no file'):
        load_config('render_pretrain::centerpoint/no_such_config.py')


def test_configs_load_from_the_package_data_as_a_wheel_installs_it(tmp_path):
    """A wheel holds copies of render_pretrain/.mim (symlinks followed): every project config's
    relative ``_base_`` (``./_base_`` -> the shared configs/_base_) resolves there too."""
    from mmengine.config import Config
    mim = tmp_path / 'render_pretrain' / '.mim'
    shutil.copytree(REPO_ROOT / 'render_pretrain' / '.mim', mim, symlinks=False)
    loaded = 0
    for group in ('NSMAE', 'MIM4D', 'BEVSeg', 'bevdet'):
        for path in sorted((mim / 'configs' / group).glob('*.py')):
            text = path.read_text()
            if '_base_' not in text or '::' in text:
                continue  # mmdet3d:: bases need the mmdet3d package: covered by the source tests
            cfg = Config.fromfile(str(path), import_custom_modules=False)
            source = _config_groups()[group] / path.name
            expected = Config.fromfile(str(source), import_custom_modules=False)
            assert cfg.to_dict() == expected.to_dict(), path.name
            loaded += 1
    assert loaded >= 4
