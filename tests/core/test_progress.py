"""One progress bar per long job (issue #24.5): counts, format, INFO (not WARNING), ETA."""
import io
import json
import logging
import re

import pytest

from render_pretrain.progress import ProgressBar, eta_seconds, format_duration, track


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno >= logging.WARNING
            and r.name.startswith(('render_pretrain', 'tools', 'root', 'convert'))]


def test_bar_counts_and_logs_at_info(caplog):
    stream = io.StringIO()
    with caplog.at_level(logging.INFO):
        with ProgressBar(5, 'job', 'frame', file=stream) as bar:
            for _ in range(5):
                bar.update()
        assert list(track([1, 2, 3], 'other', 'sample', file=stream)) == [1, 2, 3]
    text = stream.getvalue()
    assert 'job: 100%' in text and '5/5 frame' in text and '3/3 sample' in text
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(re.fullmatch(r'job: 5 frame in \d+\.\d s', m) for m in infos)
    assert not _warnings(caplog)


def test_eta_from_hand_made_step_times():
    # two steps ran in 60 s and 120 s: 90 s per step, 3 steps left
    assert eta_seconds([60.0, 120.0], remaining=3) == pytest.approx(270.0)
    assert eta_seconds([60.0, 120.0], remaining=3, jobs=2) == pytest.approx(135.0)
    assert eta_seconds([], remaining=3) is None  # nothing ran yet (all skipped)
    assert eta_seconds([50.0], remaining=0) == 0.0
    assert [format_duration(s) for s in (None, 42.4, 150.0, 7200.0)] == [
        '?', '42 s', '2.5 min', '2.0 h']


def test_step_runner_lines_carry_overall_count_and_eta(tmp_path):
    from tools.transfer.steps import StepRunner
    lines = []
    runner = StepRunner(tmp_path, tmp_path, progress=lines.append, total=5, jobs=1)
    assert runner.overall() == '[0/5 done, ETA ?] '
    runner._finish(None)  # skipped: done by an earlier run
    runner._finish(100.0)
    runner._finish(200.0)
    runner._say('x: finished in 200 s')
    # 3 of 5 done; the two that ran took 150 s on average: 2 x 150 s = 5.0 min left
    assert re.fullmatch(r'\[ *\d+\.\d min\] \[3/5 done, ETA 5\.0 min\] x: finished in 200 s',
                        lines[-1])


def test_world_generation_bar_counts_every_frame(tmp_path, capsys, caplog):
    import sys
    from render_pretrain.paths import REPO_ROOT
    sys.path.insert(0, str(REPO_ROOT / 'tools'))
    import create_synthetic_nuscenes
    with caplog.at_level(logging.INFO):
        create_synthetic_nuscenes.main([
            '--out-dir', str(tmp_path), '--scenes', '1', '--keyframes', '2',
            '--resolution', '48x24', '--camera-sweeps', '1', '--lidar-sweeps', '2',
            '--lidar-azimuth-steps', '64'])
    # frames: the distinct capture instants of the written sample_data records
    records = json.loads((tmp_path / 'v1.0-mini' / 'sample_data.json').read_text())
    frames = len({r['timestamp'] for r in records})
    assert frames > 2  # sweeps between the key frames: more frames than key frames
    err = capsys.readouterr().err
    assert 'synthetic world: 100%' in err and f'{frames}/{frames} frame' in err
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith(f'synthetic world: {frames} frame in ') for m in messages)
    assert any(m.startswith('synthetic world written to') for m in messages)
    assert not _warnings(caplog)


def test_create_data_bar_counts_every_sample(synthetic_world, tmp_path, capsys, caplog):
    import sys
    from render_pretrain.paths import REPO_ROOT
    sys.path.insert(0, str(REPO_ROOT / 'tools'))
    import create_data
    samples = len(json.loads((synthetic_world / 'v1.0-mini' / 'sample.json').read_text()))
    with caplog.at_level(logging.INFO):
        create_data.main(['nuscenes', '--root-path', str(synthetic_world), '--out-dir',
                          str(tmp_path), '--version', 'v1.0-mini', '--subsets', '',
                          '--no-gt-database'])
    err = capsys.readouterr().err
    assert 'nuScenes infos: 100%' in err and f'{samples}/{samples} sample' in err
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any(m.startswith(f'nuScenes infos: {samples} sample in ') for m in messages)
    assert not _warnings(caplog)
