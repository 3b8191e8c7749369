"""Smoke tests of tools/benchmarks/pretrain_iteration.py (on the session synthetic world)
and tools/benchmarks/mim4d_render_head.py."""
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / 'tools' / 'benchmarks' / 'pretrain_iteration.py'
NSMAE_CL = 'projects/NSMAE/configs/nsmae_r18-lss_second_1xb1-2e_synthetic-pretrain.py'
MIM4D = 'projects/MIM4D/configs/mim4d_r18-lss_temporal-neus_1xb1-2e_synthetic-pretrain.py'


@pytest.fixture(scope='module')
def pretrain_iteration():
    spec = importlib.util.spec_from_file_location('pretrain_iteration', SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_args(synthetic_infos):
    return ['--data-root', str(synthetic_infos['root']),
            '--ann-file', str(synthetic_infos['train']), '--in-process']


# The session world renders 176x64 images; the NS-MAE tiny pipeline resizes
# 704x256 ones by 0.25, so its resize is set to 1 (MIM4D's is relative).
NSMAE_RESIZE = ['--cfg-options', 'train_dataloader.dataset.pipeline.2.resize_lim=[1.0,1.0]']


def test_iteration_benchmark_record(pretrain_iteration, synthetic_infos):
    """One NS-MAE iteration gives finite timings, memory and render-head share."""
    (record, ) = pretrain_iteration.main(
        ['--config', NSMAE_CL, '--iters', '1', '--warmup', '0'] + _data_args(synthetic_infos)
        + NSMAE_RESIZE)
    assert record['model'] == 'NSMAE' and record['iters'] == 1 and record['dataset_len'] == 8
    assert set(record['losses']) == {'loss', 'loss_rgb', 'loss_pv_depth', 'loss_bev_depth'}
    assert all(math.isfinite(v) and v > 0 for v in record['losses'].values())
    for key in ('iter_s', 'data_s', 'cpu_s', 'render_head_s'):
        assert math.isfinite(record[key]['median']) and record[key]['median'] > 0, key
    assert record['peak_rss_mb'] >= record['peak_rss_before_mb'] > 0
    assert record['peak_rss_delta_mb'] >= 0
    share = record['render_head_share']
    assert math.isfinite(share) and share > 0
    assert record['render_head_share_target'] == 0.15
    assert record['meets_target'] == (share <= 0.15)


@pytest.mark.runner
def test_loss_curve_stops_on_time_budget(pretrain_iteration, synthetic_infos):
    """MIM4D under the Runner: a zero budget stops training after one iteration."""
    (record, ) = pretrain_iteration.main(
        ['--config', MIM4D, '--loss-curve', '--time-limit', '0'] + _data_args(synthetic_infos))
    assert record['model'] == 'MIM4D'
    assert record['stopped_by_time_limit'] and record['iters'] == 1
    assert set(record['losses']) >= {'loss', 'loss_rgb', 'loss_depth'}
    for term in record['losses'].values():
        assert math.isfinite(term['first']) and term['first'] == term['last']
        assert term['drop'] == 0.0


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.subprocess
def test_render_head_benchmark_record(threads):
    """The MIM4D render-head benchmark runs a small step and reports consistent numbers."""
    cmd = [sys.executable, str(REPO / 'tools' / 'benchmarks' / 'mim4d_render_head.py'),
           '--cams', '2', '--rays-per-cam', '48', '--grid', '3', '12', '12',
           '--uniform', '8', '--importance', '4', '--steps', '2', '--threads', str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record['benchmark'] == 'mim4d_render_head' and record['steps'] == 2
    assert record['rays'] == 2 * 48 and record['samples_per_ray'] == 12
    assert record['volume'] == [1, 32, 3, 12, 12]
    assert record['threads'] == threads
    # The CPU speed layer's knobs are gone (rays rendered at once, as in training).
    assert not {'workers', 'chunk', 'field_chunk_samples', 'malloc_tuned'} & set(record)
    assert 0 < record['render_step_min_s'] <= record['render_step_s']
    assert record['rays_per_s'] == pytest.approx(record['rays'] / record['render_step_s'],
                                                 rel=1e-2)
