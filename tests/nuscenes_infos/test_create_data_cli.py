"""tools/create_data.py end to end in a fresh interpreter (as a user runs it)."""
import os
import pickle
import subprocess
import sys

import pytest

from render_pretrain.paths import REPO_ROOT

pytestmark = pytest.mark.subprocess


def test_cli_writes_infos_subsets_and_gt_database(synthetic_world, tmp_path):
    # relative paths, as in the README and the demo (mmengine joins a
    # relative ann_file onto data_root: the gt database step once failed so)
    out = tmp_path / 'infos'
    cwd = synthetic_world.parent
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / 'tools' / 'create_data.py'), 'nuscenes',
         '--root-path', os.path.relpath(synthetic_world, cwd),
         '--out-dir', os.path.relpath(out, cwd), '--version', 'v1.0-mini',
         '--max-cam-sweeps', '2', '--subsets', '50,100'],
        cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    for name in ('nuscenes_infos_train.pkl', 'nuscenes_infos_val.pkl',
                 'nuscenes_infos_train_50pct.pkl', 'nuscenes_infos_train_100pct.pkl'):
        assert (out / name).is_file(), name
    with open(out / 'nuscenes_dbinfos_train.pkl', 'rb') as f:
        db_infos = pickle.load(f)
    with open(out / 'nuscenes_infos_train.pkl', 'rb') as f:
        train = pickle.load(f)['data_list']
    boxes = sum(len(info['instances']) for info in train)
    stored = sum(len(objects) for objects in db_infos.values())
    assert 0 < stored <= boxes
    first = next(iter(db_infos.values()))[0]
    assert (synthetic_world / first['path']).is_file()


def test_cli_reports_a_missing_root(tmp_path):
    result = subprocess.run(
        [sys.executable, 'tools/create_data.py', 'nuscenes', '--root-path',
         str(tmp_path / 'nowhere'), '--out-dir', str(tmp_path / 'out'), '--version', 'v1.0-mini'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert 'nowhere' in result.stderr
