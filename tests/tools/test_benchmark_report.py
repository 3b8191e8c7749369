"""tools/benchmarks/report.py: the benchmark JSON lines -> docs/benchmarks.md.

A hand-made JSON-lines sample is rendered and its tables are read back
cell by cell; the committed page must equal the renderer's output from the
committed JSON lines (so neither can drift); the collector runs one small
benchmark script for real and stamps the machine and the commit.
"""
import json
import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


RUN = dict(commit='0123456789abcdef0123456789abcdef01234567', uncommitted_changes=False,
           started='2026-12-05 19:00 UTC', finished='2026-12-05 19:14 UTC',
           load_avg_start=[1.5, 1.25, 1.0], load_avg_end=[2.5, 2.0, 1.75],
           machine=dict(cpu='Example CPU 9000', cores=2, memory_gib=23.5, torch_threads=2,
                        torch='2.13.0+cpu', python='3.11.7', platform='Linux-x86_64'),
           env=dict(OMP_WAIT_POLICY='PASSIVE'),
           steps=[dict(command='tools/benchmarks/pool.py', wall_s=61.5, cpu_s=60.25,
                       load_avg_1m_after=2.0, records=2),
                  dict(command='tools/benchmarks/step.py --threads 2', wall_s=5.0, cpu_s=9.5,
                       load_avg_1m_after=2.5, records=1)])


def _figure(name, value, unit):
    return dict(name=name, value=value, unit=unit)


RECORDS = [
    dict(benchmark='pool', title='Pooling: ours vs theirs', workload='2 M points, forward',
         command='tools/benchmarks/pool.py',
         figures=[_figure('ours', 1.3219, 's'), _figure('theirs', 12.74, 's'),
                  _figure('speed-up', 9.64, 'x')],
         target=dict(figure='speed-up', op='>=', limit=2.0), target_met=True),
    dict(benchmark='pool', title='Pooling: ours vs theirs', workload='2 M points, backward',
         command='tools/benchmarks/pool.py',
         figures=[_figure('ours', 3.0, 's'), _figure('speed-up', 1.5, 'x')],
         target=dict(figure='speed-up', op='>=', limit=2.0), target_met=False),
    dict(benchmark='step', title='One step', workload='6 cams x 512 rays | 2 threads',
         command='tools/benchmarks/step.py --threads 2',
         figures=[_figure('render step', 2.2051, 's'), _figure('throughput', 1393.4, 'rays/s'),
                  _figure('loss', '6.54 -> 5.92', '')],
         target=None, target_met=None),
]


def _write(path: Path, lines) -> Path:
    path.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    return path


def _table(text: str, heading: str):
    """Rows (lists of cells) of the first table after ``heading``; header row first."""
    lines = text.splitlines()
    start = lines.index(heading)
    rows = []
    for line in lines[start if heading.startswith('|') else start + 1:]:
        if line.startswith('## '):
            break
        if line.startswith('|'):
            rows.append(line)
        elif rows:
            break
    # split on unescaped pipes
    cells = [[c.strip().replace('\\|', '|')
              for c in row.replace('\\|', '\0').strip('|').split('|')] for row in rows]
    cells = [[c.replace('\0', '|') for c in row] for row in cells]
    assert set(''.join(cells[1])) <= set('- '), rows[1]  # the separator row
    return [cells[0]] + cells[2:]


def test_render_hand_made_sample(report, tmp_path):
    """Header names machine, commit, date, load; one table per benchmark, one row per record."""
    path = _write(tmp_path / 'bench.jsonl', [dict(run=RUN)] + RECORDS)
    text = report.render_file(path, tmp_path / 'bench.md')
    assert (tmp_path / 'bench.md').read_text() == text
    run = dict(_table(text, '# Benchmarks')[1:])
    assert run['commit'] == '`0123456789abcdef0123456789abcdef01234567`'
    assert run['date'] == '2026-12-05 19:00 UTC to 2026-12-05 19:14 UTC'
    assert run['machine'].startswith('Example CPU 9000, 2 cores, 23.5 GiB RAM; torch 2 threads')
    assert run['software'] == 'Linux-x86_64, Python 3.11.7, torch 2.13.0+cpu'
    assert run['load average (1, 5, 15 min)'] == '1.5, 1.25, 1 at start, 2.5, 2, 1.75 at end'
    assert run['environment'] == '`OMP_WAIT_POLICY=PASSIVE`'
    assert text.splitlines().count('## pool') == 1 and text.splitlines().count('## step') == 1
    assert 'Command: `tools/benchmarks/pool.py`.' in text

    pool = _table(text, '## pool')
    assert pool == [
        ['workload', 'ours (s)', 'theirs (s)', 'speed-up (x)', 'target', 'met'],
        ['2 M points, forward', '1.32', '12.7', '9.64', 'speed-up >= 2 x', 'met'],
        ['2 M points, backward', '3', '', '1.5', 'speed-up >= 2 x', '**missed**'],
    ]
    step = _table(text, '## step')
    assert step == [
        ['workload', 'render step (s)', 'throughput (rays/s)', 'loss', 'target', 'met'],
        ['6 cams x 512 rays | 2 threads', '2.21', '1393', '6.54 -> 5.92', 'none', ''],
    ]
    steps = _table(text, '| command | wall (s) | CPU (s) | records | load after (1 min) |')
    assert steps[1] == ['`tools/benchmarks/pool.py`', '61.5', '60.2', '2', '2']


def test_uncommitted_changes_are_named(report, tmp_path):
    path = _write(tmp_path / 'bench.jsonl',
                  [dict(run=dict(RUN, uncommitted_changes=True))] + RECORDS[:1])
    text = report.render_file(path, None)
    assert '| commit | `0123456789abcdef0123456789abcdef01234567` with uncommitted changes |' \
        in text.splitlines()


@pytest.mark.parametrize('lines, message', [
    ([RECORDS[0]], r'bench.jsonl:1: the first line must be the "run" line'),
    ([dict(run=RUN), {k: v for k, v in RECORDS[0].items() if k != 'workload'}],
     r'bench.jsonl:2: .*has no "workload"'),
    ([dict(run=RUN), RECORDS[0], dict(RECORDS[1], target_met=None)],
     r'bench.jsonl:3: "target_met" must be true or false'),
    ([dict(run=RUN), dict(RECORDS[0], target=dict(figure='speedup', op='>=', limit=2))],
     r"bench.jsonl:2: target figure 'speedup' is not in figures"),
    ([dict(run=RUN), dict(RECORDS[2], target_met=True)],
     r'bench.jsonl:2: "target_met" is True without a target'),
])
def test_bad_lines_name_file_line_and_key(report, tmp_path, lines, message):
    path = _write(tmp_path / 'bench.jsonl', lines)
    with pytest.raises(ValueError, match=message):
        report.render_file(path, None)


def test_committed_page_matches_committed_jsonl(report):
    """docs/benchmarks.md is exactly what the renderer makes of docs/results/benchmarks.jsonl."""
    jsonl = REPO / 'docs' / 'results' / 'benchmarks.jsonl'
    page = REPO / 'docs' / 'benchmarks.md'
    assert page.read_text() == report.render_file(jsonl, None), \
        'docs/benchmarks.md drifted: run `python tools/benchmarks/report.py render`'
    run, records = report.read_jsonl(jsonl)
    # a real run of the whole suite: every script contributed records
    scripts = {Path(step['command'].split()[0]).name for step in run['steps']}
    assert scripts == {script for script, _ in report.SUITE}
    assert sum(step['records'] for step in run['steps']) == len(records)
    assert len(run['commit']) == 40 and not run['uncommitted_changes']


@pytest.mark.subprocess
def test_run_stamps_machine_and_commit(report, tmp_path):
    """The collector runs a real (small) benchmark and adds the run line and commands."""
    out = tmp_path / 'bench.jsonl'
    suite = [('nsmae_rendering.py', ('--batch', '1', '--cams', '1', '--feature-size', '4', '4',
                                     '--repeats', '1'))]
    lines = report.run_suite(suite, out)
    assert [json.loads(line) for line in out.read_text().splitlines()] == lines
    run, records = report.read_jsonl(out)
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=REPO, capture_output=True,
                          text=True).stdout.strip()
    assert run['commit'] == head
    assert run['machine']['cores'] == os.cpu_count()
    assert run['machine']['cpu'] and run['machine']['torch_threads'] >= 1
    command = 'tools/benchmarks/nsmae_rendering.py --batch 1 --cams 1 --feature-size 4 4 ' \
        '--repeats 1'
    assert [step['command'] for step in run['steps']] == [command]
    assert run['steps'][0]['records'] == len(records) == 1
    assert records[0]['command'] == command
    assert records[0]['benchmark'] == 'nsmae_perspective_rendering'
    assert '## nsmae_perspective_rendering' in report.render_markdown(run, records, 'x')
