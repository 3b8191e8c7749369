"""tools/train.py, --resume and tools/dist_train.sh on the tiny CenterPoint config.

These run the real command-line tools in subprocesses on the synthetic world.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from render_pretrain.paths import REPO_ROOT

pytestmark = pytest.mark.subprocess

CONFIG = 'configs/centerpoint/centerpoint_voxel02-tiny_second_secfpn_1xb2-2e_synthetic-3d.py'


def _data_options(infos) -> list:
    root = str(infos['root'])
    return [
        f'train_dataloader.dataset.data_root={root}',
        f'train_dataloader.dataset.ann_file={infos["train"]}',
        'train_dataloader.num_workers=1',
        'randomness.seed=0',
        'default_hooks.checkpoint.interval=1',
        # Validation is tested elsewhere; these tests are about training.
        'val_cfg=None', 'val_dataloader=None', 'val_evaluator=None',
    ]


def _run(args, timeout=900):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS='1')
    result = subprocess.run(args, cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, f'{args}\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}'
    return result


def _train_losses(work_dir: Path) -> dict:
    """(epoch, iter-in-run step) -> loss, from mmengine's scalars.json."""
    losses = {}
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            record = json.loads(line)
            if 'loss' in record and 'epoch' in record:
                losses[(record['epoch'], record['iter'])] = record['loss']
    return losses


def test_resume_gives_identical_next_iteration_loss(synthetic_infos, tmp_path):
    full = tmp_path / 'full'
    _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(full),
          '--cfg-options', *_data_options(synthetic_infos), 'train_cfg.max_epochs=2'])
    assert (full / 'epoch_1.pth').exists() and (full / 'epoch_2.pth').exists()
    resumed = tmp_path / 'resumed'
    resumed.mkdir()
    shutil.copy(full / 'epoch_1.pth', resumed / 'epoch_1.pth')
    _run([sys.executable, 'tools/train.py', CONFIG, '--work-dir', str(resumed),
          '--resume', str(resumed / 'epoch_1.pth'),
          '--cfg-options', *_data_options(synthetic_infos), 'train_cfg.max_epochs=2'])
    full_losses, resumed_losses = _train_losses(full), _train_losses(resumed)
    assert resumed_losses, 'the resumed run logged no loss'
    assert all(epoch == 2 for epoch, _ in resumed_losses), resumed_losses
    first = min(resumed_losses)
    assert resumed_losses[first] == full_losses[first], (first, resumed_losses, full_losses)


def test_dist_train_two_cpu_ranks_hold_identical_parameters(synthetic_infos, tmp_path):
    work = tmp_path / 'dist'
    config = tmp_path / 'dist_config.py'
    config.write_text(
        f"_base_ = ['{REPO_ROOT / CONFIG}']\n"
        "custom_imports = dict(imports=['tests.foundation.rank_parameter_dump'],\n"
        "                      allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='RankParameterDumpHook')]\n")
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS='1',
               PORT=str(29500 + os.getpid() % 400))
    result = subprocess.run(
        ['bash', 'tools/dist_train.sh', str(config), '2', '--work-dir', str(work),
         '--cfg-options', *_data_options(synthetic_infos), 'train_cfg.max_epochs=1',
         'train_dataloader.batch_size=1'],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    before = torch.load(work / 'rank0_before.pth')
    after = [torch.load(work / f'rank{r}_after.pth') for r in (0, 1)]
    for key, value in after[0].items():
        assert torch.equal(value, after[1][key]), f'ranks differ at {key} after training'
    changed = [k for k in before if not torch.equal(before[k], after[0][k])]
    assert len(changed) > len(before) // 2, 'training did not update the parameters'
    assert _train_losses(work), 'no loss was logged'
