"""Smoke tests of tools/benchmarks/pretrain_iteration.py (on the session synthetic world),
mim4d_render_head.py, temporal_predictor.py, bev_pooling.py, nsmae_rendering.py and
synthetic_world.py at tiny sizes: each record carries what tools/benchmarks/report.py
renders (workload, figures with units, target, whether it is met), consistent with the
raw measurements."""
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


def _run_script(name, *args):
    """JSON records printed by tools/benchmarks/<name> run as a subprocess."""
    cmd = [sys.executable, str(REPO / 'tools' / 'benchmarks' / name), *args]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                         env={**os.environ, 'PYTHONPATH': str(REPO)})
    assert out.returncode == 0, out.stderr[-2000:]
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith('{')]


def _figures(record):
    """Figure name -> (value, unit)."""
    return {f['name']: (f['value'], f['unit']) for f in record['figures']}


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


def test_iteration_benchmark_record(pretrain_iteration, report, synthetic_infos):
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
    # rendered fields: the share in percent against 15 %
    report.check_record(record, 'pretrain_iteration')
    figures = _figures(record)
    assert figures['render-head share'] == (pytest.approx(100 * share, abs=0.01), '%')
    assert figures['iteration'] == (pytest.approx(record['iter_s']['median'], abs=1e-4), 's')
    assert figures['peak RSS'] == (pytest.approx(record['peak_rss_mb'], abs=0.1), 'MB')
    assert record['target']['op'] == '<=' and record['target']['limit'] == pytest.approx(15)
    assert record['target_met'] == record['meets_target']
    assert 'NSMAE' in record['workload'] and '1 iterations' in record['workload']


@pytest.mark.runner
def test_loss_curve_stops_on_time_budget(pretrain_iteration, report, synthetic_infos):
    """MIM4D under the Runner: a zero budget stops training after one iteration."""
    (record, ) = pretrain_iteration.main(
        ['--config', MIM4D, '--loss-curve', '--time-limit', '0'] + _data_args(synthetic_infos))
    assert record['model'] == 'MIM4D'
    assert record['stopped_by_time_limit'] and record['iters'] == 1
    assert set(record['losses']) >= {'loss', 'loss_rgb', 'loss_depth'}
    for term in record['losses'].values():
        assert math.isfinite(term['first']) and term['first'] == term['last']
        assert term['drop'] == 0.0
    # rendered fields: one iteration cannot show a drop, so the target is missed
    report.check_record(record, 'pretrain_loss_curve')
    figures = _figures(record)
    assert figures['iterations'] == (1, '') and figures['total loss drop'] == (0.0, '%')
    assert record['target']['text'] == 'total loss drops within 0 s'
    assert record['target_met'] is False and record['loss_dropped'] is False


@pytest.mark.parametrize('threads', [1, 2])
@pytest.mark.subprocess
def test_render_head_benchmark_record(threads, report):
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
    report.check_record(record, 'mim4d_render_head')
    assert record['target'] is None and record['target_met'] is None
    figures = _figures(record)
    assert figures['render step'] == (pytest.approx(record['render_step_s'], abs=1e-4), 's')
    assert figures['throughput'][1] == 'rays/s'
    assert f'{threads} thread(s)' in record['workload'] and '(96 rays)' in record['workload']


@pytest.mark.subprocess
def test_bev_pooling_benchmark_record(report):
    """One record per pass; the speed-up is the ratio of the two methods' times, >= 2 is met."""
    records = _run_script('bev_pooling.py', '--cams', '1', '--channels', '4', '--repeats', '1',
                          '--feature-size', '8', '22')
    assert [r['passes'] for r in records] == ['forward', 'forward+backward']
    for record in records:
        report.check_record(record, 'bev_pooling')
        figures = _figures(record)
        ours, theirs = figures['index_add_'], figures['sort-and-cumsum']
        assert ours[1] == theirs[1] == 's' and figures['speed-up'][1] == 'x'
        assert figures['speed-up'][0] == pytest.approx(theirs[0] / ours[0], abs=0.01)
        assert record['target'] == dict(figure='speed-up', op='>=', limit=2.0)
        assert record['target_met'] == (figures['speed-up'][0] >= 2.0)
        # 1 cam x 118 bins x 8 x 22 pixels, 4 channels; the outputs agree up to the
        # rounding of LSS's float32 cumsum (differences of running sums)
        assert record['points'] == 118 * 8 * 22
        assert figures['max abs. difference / max abs. output'][0] < 1e-3
        assert '0.02 M frustum points' in record['workload']


@pytest.mark.subprocess
def test_nsmae_rendering_benchmark_record(report):
    """One record per batch; samples/s = rays * bins / time of render_depth_bins."""
    records = _run_script('nsmae_rendering.py', '--batch', '1', '2', '--cams', '1',
                          '--feature-size', '4', '6', '--repeats', '1')
    assert [r['batch'] for r in records] == [1, 2]
    for record in records:
        report.check_record(record, 'nsmae_rendering')
        figures = _figures(record)
        seconds = figures['render_depth_bins'][0]
        rays = record['batch'] * 1 * 4 * 6
        assert figures['throughput'] == (pytest.approx(rays * 118 / seconds / 1e6, rel=1e-6),
                                         'M samples/s')
        assert figures['speed-up'][0] == pytest.approx(figures['bin loop'][0] / seconds,
                                                       abs=0.01)
        assert record['target_met'] == (figures['speed-up'][0] >= 1.0)
        assert figures['max abs. gradient difference'][0] < 1e-5


@pytest.mark.subprocess
def test_synthetic_world_benchmark_record(report):
    """The small world is extrapolated to the 5470 frames of 10 x 40 at nuScenes rates."""
    (record, ) = _run_script('synthetic_world.py', '--scenes', '1', '--keyframes', '1',
                             '--resolution', '176x64')
    report.check_record(record, 'synthetic_world')
    figures = _figures(record)
    assert record['target_frames'] == 5470 and record['extrapolated']
    expected = figures['CPU per frame'][0] * 5470 / 2
    assert figures['10 x 40 world on 2 cores'] == (pytest.approx(expected, abs=0.1), 's')
    assert record['target'] == dict(figure='10 x 40 world on 2 cores', op='<=', limit=600.0)
    assert record['target_met'] == (expected <= 600)
    assert 'extrapolated to 10 x 40 (5470 frames)' in record['workload']


@pytest.mark.subprocess
def test_temporal_predictor_benchmark_record(report):
    """One record per attention form; throughput = voxels / step time."""
    records = _run_script('temporal_predictor.py', '--grid', '2', '6', '6', '--channels', '8',
                          '--heads', '2', '--layers', '1', '--steps', '1', '--threads', '1')
    assert [r['attention'] for r in records] == ['deformable', 'window']
    for record in records:
        report.check_record(record, 'temporal_predictor')
        assert record['context'] == [1, 2, 8, 2, 6, 6] and record['target'] is None
        figures = _figures(record)
        step = figures['step'][0]
        assert step == pytest.approx(record['step_s'], abs=1e-4)
        assert figures['throughput'] == (pytest.approx(2 * 6 * 6 / step / 1e3, rel=1e-6),
                                         'k voxels/s')
