"""Run the speed / memory benchmarks and render their JSON lines as docs/benchmarks.md.

``run`` executes the suite (:data:`SUITE`: every script of tools/benchmarks
except ``transfer.py``, which has its own table) in subprocesses, keeps the
JSON lines they print and writes them to ``--out`` below a first line
``{"run": {...}}`` that holds the machine (CPU model, cores, memory, torch's
default thread count, versions), the commit (and whether tracked files had
uncommitted changes), the UTC start and end time, the 1-minute load average
at start and end, and per script its command, wall time, CPU time and the
load average after it. Lines a script prints that are not JSON objects
(logs) are passed on to stderr. ``make bench`` runs ``run`` and ``render``, then
``run --sizing`` (:data:`SIZING_SUITE`) into docs/results/model_sizing.jsonl.

``render`` turns such a file into Markdown: the run header, then one table
per benchmark (in order of first appearance) with one row per record:
workload, figures with their units, target, met / missed. The Markdown
depends on the JSON lines only, so the committed docs/benchmarks.md can be
regenerated from the committed docs/results/benchmarks.jsonl (a test
checks that they agree).

Record fields ``render`` reads (every benchmark script writes them):

* ``benchmark`` (str): name; records with the same name share a table;
* ``title`` (str): one line on what is measured;
* ``workload`` (str): sizes, passes and threads of this measurement;
* ``figures`` (list of ``{"name", "value", "unit"}``): value a number, a
  string or null; the table has one column per figure name;
* ``target`` (null or ``{"figure", "op", "limit"[, "text"]}``): ``op`` one of
  ``<=``, ``>=``, ``<``, ``>``; the limit is in the named figure's unit;
* ``target_met`` (bool, or null when there is no target).

Usage:
    python tools/benchmarks/report.py run [--out docs/results/benchmarks.jsonl] [--only NAME ...]
        [--full-world]
    python tools/benchmarks/report.py run --sizing --out docs/results/model_sizing.jsonl
    python tools/benchmarks/report.py render [--jsonl docs/results/benchmarks.jsonl]
        [--out docs/benchmarks.md]
"""
import argparse
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = Path(__file__).resolve().parent
DEFAULT_JSONL = REPO / 'docs' / 'results' / 'benchmarks.jsonl'
DEFAULT_MARKDOWN = REPO / 'docs' / 'benchmarks.md'

#: (script in tools/benchmarks, arguments) in the order ``run`` executes them.
#: synthetic_world.py times a 1 scene x 4 key frame world and extrapolates to
#: the 10 x 40 target (``--full-world`` times the target itself, ~8 minutes).
SUITE: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('bev_pooling.py', ()),
    ('nsmae_rendering.py', ()),
    ('mim4d_render_head.py', ('--threads', '2')),
    ('temporal_predictor.py', ('--threads', '2')),
    ('pretrain_iteration.py', ()),
    ('pretrain_iteration.py', ('--loss-curve', )),
    ('synthetic_world.py', ('--scenes', '1', '--keyframes', '4')),
)
#: The GPU-sizing benchmark (paper-scale models, ~20 minutes on 2 cores), run by
#: ``run --sizing`` into its own file (docs/results/model_sizing.jsonl), whose
#: records make README.md's model table (``model_sizing.py --readme``).
SIZING_SUITE: Tuple[Tuple[str, Tuple[str, ...]], ...] = (
    ('model_sizing.py', ('--threads', '2')),
)
FULL_WORLD_ARGS = ('--full', '--workers', '2')
#: Set for the scripts unless already set: busy-waiting OpenMP threads slow
#: multi-threaded steps several-fold on a shared machine.
SCRIPT_ENV = {'OMP_WAIT_POLICY': 'PASSIVE'}
RECORD_KEYS = ('benchmark', 'title', 'workload', 'figures', 'target', 'target_met')
TARGET_OPS = ('<=', '>=', '<', '>')


def _git(*args: str) -> Optional[str]:
    """Output of ``git args`` in the repository, or None when git fails."""
    try:
        out = subprocess.run(['git', *args], cwd=REPO, capture_output=True, text=True,
                             check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def machine_info() -> dict:
    """CPU model, logical cores, memory, torch's default threads and versions.

    Returns:
        dict: ``cpu``, ``cores``, ``memory_gib`` (None when unknown),
        ``torch_threads``, ``torch``, ``python``, ``platform``.
    """
    import torch
    cpu = platform.processor() or 'unknown'
    memory_gib = None
    if Path('/proc/cpuinfo').exists():
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    if Path('/proc/meminfo').exists():
        for line in Path('/proc/meminfo').read_text().splitlines():
            if line.startswith('MemTotal:'):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)  # kB -> GiB
                break
    return dict(cpu=cpu, cores=os.cpu_count(), memory_gib=memory_gib,
                torch_threads=torch.get_num_threads(), torch=torch.__version__,
                python=platform.python_version(), platform=platform.platform())


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_script(script: str, args: Sequence[str]) -> Tuple[List[dict], dict]:
    """Run one benchmark script; return its records and its step summary.

    Args:
        script (str): File name in tools/benchmarks.
        args (Sequence[str]): Its command-line arguments.

    Returns:
        tuple: The JSON records it printed (each with ``command`` added) and
        ``{command, wall_s, cpu_s, load_avg_1m_after, records}``.

    Raises:
        RuntimeError: The script failed or printed no benchmark record.
        ValueError: A line starting with ``{`` is not valid JSON or has no
            ``benchmark`` key.
    """
    command = ' '.join(['tools/benchmarks/' + script, *args])
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(filter(None, [str(REPO), env.get('PYTHONPATH')]))
    for key, value in SCRIPT_ENV.items():
        env.setdefault(key, value)
    print(f'== {command}', file=sys.stderr, flush=True)
    wall, cpu = time.perf_counter(), _children_cpu_s()
    out = subprocess.run([sys.executable, str(BENCH_DIR / script), *args], cwd=REPO, env=env,
                         stdout=subprocess.PIPE, text=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu_s() - cpu
    if out.returncode != 0:
        raise RuntimeError(f'{command} exited with code {out.returncode}')
    records = []
    for line in out.stdout.splitlines():
        if not line.startswith('{'):
            print(line, file=sys.stderr)
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f'{command} printed a line that is not JSON ({err}): {line}')
        if 'benchmark' not in record:
            raise ValueError(f'{command} printed a JSON line without "benchmark": {line}')
        record['command'] = command
        print(json.dumps(record), flush=True)
        records.append(record)
    if not records:
        raise RuntimeError(f'{command} printed no benchmark record')
    step = dict(command=command, wall_s=round(wall, 1), cpu_s=round(cpu, 1),
                load_avg_1m_after=round(os.getloadavg()[0], 2), records=len(records))
    return records, step


def run_suite(suite=SUITE, out: Path = DEFAULT_JSONL) -> List[dict]:
    """Run ``suite`` and write the run line and the records as JSON lines to ``out``.

    The file is written once every script has succeeded.

    Returns:
        list: The lines written (run line first).
    """
    status = _git('status', '--porcelain', '--untracked-files=no')
    run = dict(commit=_git('rev-parse', 'HEAD') or 'unknown',
               uncommitted_changes=None if status is None else bool(status),
               started=_utc_now(), load_avg_start=[round(v, 2) for v in os.getloadavg()],
               machine=machine_info(), env=SCRIPT_ENV, steps=[])
    records = []
    for script, args in suite:
        script_records, step = run_script(script, args)
        records += script_records
        run['steps'].append(step)
    run.update(finished=_utc_now(), load_avg_end=[round(v, 2) for v in os.getloadavg()])
    lines = [dict(run=run)] + records
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    return lines


def read_jsonl(path: Path) -> Tuple[dict, List[dict]]:
    """Read and check a benchmark JSON-lines file.

    Args:
        path (Path): File written by :func:`run_suite`.

    Returns:
        tuple: The run dict and the benchmark records, in file order.

    Raises:
        ValueError: Naming the file, line and key: the first line is not a
            ``run`` line, a line is not a JSON object, a record lacks a
            field of the module docstring or has one of the wrong type.
    """
    run, records = None, []
    lines = Path(path).read_text().splitlines()
    for number, line in enumerate(lines, 1):
        where = f'{path}:{number}'
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f'{where}: not JSON ({err})')
        if not isinstance(item, dict):
            raise ValueError(f'{where}: expected a JSON object, got {type(item).__name__}')
        if 'run' in item:
            if run is not None:
                raise ValueError(f'{where}: a second "run" line (one run per file)')
            run = item['run']
            for key in ('commit', 'started', 'finished', 'machine', 'steps'):
                if key not in run:
                    raise ValueError(f'{where}: the run line has no "{key}"')
            continue
        if run is None:
            raise ValueError(f'{where}: the first line must be the "run" line')
        check_record(item, where)
        records.append(item)
    if run is None:
        raise ValueError(f'{path}: no "run" line')
    return run, records


def check_record(record: dict, where: str) -> None:
    """Raise ValueError naming ``where`` and the key when a record cannot be rendered."""
    for key in RECORD_KEYS:
        if key not in record:
            raise ValueError(f'{where}: record of {record.get("benchmark")!r} has no "{key}"')
    names = []
    if not isinstance(record['figures'], list) or not record['figures']:
        raise ValueError(f'{where}: "figures" must be a non-empty list')
    for figure in record['figures']:
        if not isinstance(figure, dict) or set(figure) != {'name', 'value', 'unit'}:
            raise ValueError(f'{where}: each of "figures" needs exactly name, value, unit; '
                             f'got {figure!r}')
        names.append(figure['name'])
    target, met = record['target'], record['target_met']
    if target is None:
        if met is not None:
            raise ValueError(f'{where}: "target_met" is {met!r} without a target')
        return
    if not isinstance(target, dict) or not {'figure', 'op', 'limit'} <= set(target):
        raise ValueError(f'{where}: "target" needs figure, op and limit; got {target!r}')
    if target['op'] not in TARGET_OPS:
        raise ValueError(f'{where}: target op {target["op"]!r} is not one of {TARGET_OPS}')
    if target['figure'] not in names:
        raise ValueError(f'{where}: target figure {target["figure"]!r} is not in figures '
                         f'{names}')
    if not isinstance(met, bool):
        raise ValueError(f'{where}: "target_met" must be true or false, got {met!r}')


def format_value(value) -> str:
    """A figure as table text: 3 significant digits, no exponent from 1e-3 upwards."""
    if value is None:
        return '-'
    if isinstance(value, bool):
        return 'yes' if value else 'no'
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0:
            return '0'
        if abs(value) >= 1000:
            return f'{value:.0f}'
        return f'{value:.3g}' if abs(value) >= 1e-3 else f'{value:.2g}'
    return _cell(str(value))


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace('|', '\\|').replace('\n', ' ')


def _units(records: List[dict]) -> Dict[str, str]:
    """Figure name -> unit, in order of first appearance."""
    units: Dict[str, str] = {}
    for record in records:
        for figure in record['figures']:
            units.setdefault(figure['name'], figure['unit'])
    return units


def _target_text(target: Optional[dict], units: Dict[str, str]) -> str:
    if target is None:
        return 'none'
    if target.get('text'):
        return _cell(target['text'])
    unit = units.get(target['figure'], '')
    return _cell(f'{target["figure"]} {target["op"]} {format_value(target["limit"])} '
                 f'{unit}'.strip())


def render_markdown(run: dict, records: List[dict], source: str) -> str:
    """The Markdown page of one run.

    Args:
        run (dict): The run line's dict.
        records (list): Checked benchmark records (:func:`read_jsonl`).
        source (str): Name of the JSON-lines file, as the page should cite it.

    Returns:
        str: The page, ending in a newline.
    """
    machine = run['machine']
    memory = '' if machine.get('memory_gib') is None else f', {machine["memory_gib"]} GiB RAM'
    commit = f'`{run["commit"]}`' + (' with uncommitted changes'
                                     if run.get('uncommitted_changes') else '')
    load_start, load_end = (', '.join(format_value(v) for v in run.get(key) or ['?'])
                            for key in ('load_avg_start', 'load_avg_end'))
    env = ', '.join(f'{key}={value}' for key, value in (run.get('env') or {}).items())
    lines = [
        '# Benchmarks',
        '',
        f'Generated by `tools/benchmarks/report.py render` from `{source}`, which',
        '`make bench` writes; do not edit by hand. What each benchmark measures',
        'and why its target: README.md, "Benchmarks". Times are wall-clock seconds',
        'unless a column says CPU; on a shared machine they are upper bounds.',
        '',
        '| run | |',
        '| --- | --- |',
        f'| commit | {commit} |',
        f'| date | {run["started"]} to {run["finished"]} |',
        f'| machine | {_cell(machine["cpu"])}, {machine["cores"]} cores{memory}; torch '
        f'{machine["torch_threads"]} threads by default (each benchmark sets its own, '
        'see its workload) |',
        f'| software | {_cell(machine.get("platform", "?"))}, Python '
        f'{machine.get("python", "?")}, torch {machine.get("torch", "?")} |',
        f'| load average (1, 5, 15 min) | {load_start} at start, {load_end} at end |',
    ]
    if env:
        lines.append(f'| environment | `{env}` |')
    lines += ['', '| command | wall (s) | CPU (s) | records | load after (1 min) |',
              '| --- | --- | --- | --- | --- |']
    for step in run['steps']:
        lines.append(f'| `{_cell(step["command"])}` | {format_value(step.get("wall_s"))} | '
                     f'{format_value(step.get("cpu_s"))} | {step.get("records", "?")} | '
                     f'{format_value(step.get("load_avg_1m_after"))} |')
    groups: Dict[str, List[dict]] = {}
    for record in records:
        groups.setdefault(record['benchmark'], []).append(record)
    for name, group in groups.items():
        units = _units(group)
        commands = list(dict.fromkeys(r['command'] for r in group if r.get('command')))
        lines += ['', f'## {name}', '', _cell(group[0]['title']) + '.']
        if commands:
            lines += ['', 'Command: ' + ', '.join(f'`{c}`' for c in commands) + '.']
        headers = ['workload'] + [f'{n} ({u})' if u else n for n, u in units.items()]
        headers += ['target', 'met']
        lines += ['', '| ' + ' | '.join(_cell(h) for h in headers) + ' |',
                  '|' + ' --- |' * len(headers)]
        for record in group:
            values = {figure['name']: figure['value'] for figure in record['figures']}
            met = record['target_met']
            cells = [_cell(record['workload'])]
            cells += [format_value(values[n]) if n in values else '' for n in units]
            cells += [_target_text(record['target'], units),
                      '' if met is None else ('met' if met else '**missed**')]
            lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def render_file(jsonl: Path = DEFAULT_JSONL, out: Optional[Path] = DEFAULT_MARKDOWN) -> str:
    """Render ``jsonl`` and write the page to ``out`` (None: only return it)."""
    jsonl = Path(jsonl)
    run, records = read_jsonl(jsonl)
    try:
        source = str(jsonl.resolve().relative_to(REPO))
    except ValueError:
        source = jsonl.name
    text = render_markdown(run, records, source)
    if out is not None:
        Path(out).write_text(text)
    return text


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest='mode', required=True)
    run = sub.add_parser('run', help='run the benchmarks and write their JSON lines')
    run.add_argument('--out', type=Path, default=DEFAULT_JSONL)
    run.add_argument('--only', nargs='+', metavar='NAME',
                     help='run only these scripts (file names without .py)')
    run.add_argument('--full-world', action='store_true',
                     help='synthetic_world.py times the 10 x 40 world itself (~8 min)')
    run.add_argument('--sizing', action='store_true',
                     help='run the GPU-sizing suite (model_sizing.py) instead')
    render = sub.add_parser('render', help='write the Markdown page from the JSON lines')
    render.add_argument('--jsonl', type=Path, default=DEFAULT_JSONL)
    render.add_argument('--out', type=Path, default=DEFAULT_MARKDOWN)
    args = parser.parse_args(argv)
    if args.mode == 'render':
        render_file(args.jsonl, args.out)
        return
    if args.sizing:
        run_suite(SIZING_SUITE, args.out)
        return
    known = {Path(script).stem for script, _ in SUITE}
    unknown = set(args.only or ()) - known
    if unknown:
        parser.error(f'--only: unknown benchmark(s) {sorted(unknown)}; known: {sorted(known)}')
    suite = [(script, FULL_WORLD_ARGS if args.full_world and script == 'synthetic_world.py'
              else script_args)
             for script, script_args in SUITE
             if not args.only or Path(script).stem in args.only]
    run_suite(suite, args.out)


if __name__ == '__main__':
    main()
