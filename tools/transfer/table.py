"""README table of the transfer experiment, rendered from its JSON results.

Each row is one (chain, label fraction) cell: the scratch and pre-trained
metrics as mean +- sample std over the fine-tuning seeds, and the paired
difference pre-trained - scratch (the runs of one seed share the seed) with
its 95 % t interval over the seeds (:mod:`tools.transfer.stats`); a
difference whose interval excludes 0 is **bold**. The paper's numbers stand
beside them (``ChainSpec.paper_reference``, stored in the results). A header
line states the seeds, the schedule, the world size and the wall time.
:func:`replace_readme_block` puts the table between the
``<!-- transfer-table:start -->`` / ``<!-- transfer-table:end -->`` markers.
:func:`append_history` keeps every rendered run, one JSON line each with its
commit, world, schedules, wall time, per-seed values and statistics, so
numbers replaced in the README stay on record.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

from tools.transfer.stats import NO_INTERVAL, mean_std, paired_difference

HISTORY_SCHEMA = 'render-pretrain/transfer-history/v2'

START_MARKER = '<!-- transfer-table:start -->'
END_MARKER = '<!-- transfer-table:end -->'


class TransferTableError(ValueError):
    """The results cannot be rendered (missing runs or fields)."""


def _fmt(value: float) -> str:
    """A metric in [0, 1] as a percentage (the papers' unit)."""
    return f'{100 * value:.2f}'


def _signed(value: float) -> str:
    """A difference of metrics in percentage points, never ``-0.00``."""
    text = f'{100 * value:+.2f}'
    return '+0.00' if text == '-0.00' else text


def _epochs(count: int) -> str:
    return f'{count} epoch' + ('' if count == 1 else 's')


def pair_runs(results: dict) -> List[Tuple[str, int, Dict[int, Dict[str, dict]]]]:
    """(chain, fraction, {seed: {init: run}}) in chain order, then fraction order.

    Raises:
        TransferTableError: If a seed of a chain/fraction lacks its scratch
            or pre-trained run, or has one twice.
    """
    groups: Dict[Tuple[str, int], Dict[int, Dict[str, dict]]] = {}
    for run in results['runs']:
        chain, fraction, seed = run['chain'], int(run['fraction']), int(run['seed'])
        by_init = groups.setdefault((chain, fraction), {}).setdefault(seed, {})
        if run['init'] in by_init:
            raise TransferTableError(
                f'{chain} {fraction} % seed {seed}: two {run["init"]} runs')
        by_init[run['init']] = run
    chain_order = list(results['chains'])
    out = []
    for (chain, fraction), seeds in sorted(
            groups.items(), key=lambda item: (chain_order.index(item[0][0]), item[0][1])):
        for seed, runs in sorted(seeds.items()):
            missing = {'scratch', 'pretrained'} - set(runs)
            if missing:
                raise TransferTableError(
                    f'{chain} {fraction} % seed {seed}: no {sorted(missing)} run')
        out.append((chain, fraction, dict(sorted(seeds.items()))))
    return out


def cell_statistics(results: dict) -> List[dict]:
    """Per (chain, fraction): values per seed, mean +- std, paired difference.

    Args:
        results (dict): Output of ``run_experiment`` (or its JSON).

    Returns:
        list[dict]: In table order, each ``chain``, ``fraction``, ``seeds``
        and ``metrics``: per metric name ``scratch`` / ``pretrained``
        (``values`` per seed, ``mean``, ``std``) and ``diff``
        (:func:`tools.transfer.stats.paired_difference`).
    """
    out = []
    for chain, fraction, seeds in pair_runs(results):
        names = results['chains'][chain]['spec']['metric_keys']
        metrics = {}
        for name in names:
            values = {init: [seeds[seed][init]['metrics'][name] for seed in seeds]
                      for init in ('scratch', 'pretrained')}
            metrics[name] = dict(
                {init: dict(mean_std(vals), values=vals) for init, vals in values.items()},
                diff=paired_difference(values['scratch'], values['pretrained']))
        out.append(dict(chain=chain, fraction=fraction, seeds=list(seeds), metrics=metrics))
    return out


def _mean_std(summary: dict) -> str:
    """``12.96 ± 1.20`` (in %), or the value alone for one seed."""
    if summary['std'] is None:
        return _fmt(summary['mean'])
    return f'{_fmt(summary["mean"])} ± {_fmt(summary["std"])}'


def _difference(diff: dict) -> str:
    """``+11.50 [+5.21, +17.79]`` in points, bold when the interval excludes 0."""
    if diff['low'] is None:
        return f'{_signed(diff["mean"])} [{NO_INTERVAL}]'
    text = f'{_signed(diff["mean"])} [{_signed(diff["low"])}, {_signed(diff["high"])}]'
    return f'**{text}**' if diff['excludes_zero'] else text


def run_seeds(results: dict) -> List[int]:
    """Fine-tuning seeds of the results (from the runs: older results lack the setting)."""
    return sorted({int(run['seed']) for run in results['runs']})


def describe_setup(results: dict) -> str:
    """One line: seeds, schedule, world size, wall time, commit."""
    settings, world = results['settings'], results['world']
    seeds = run_seeds(results)
    if len(seeds) == 1:
        stats = 'one seed: no interval'
    else:
        stats = (f'mean ± sample std over the {len(seeds)} seeds; difference = pre-trained - '
                 f'scratch paired by seed, [95 % t interval over the seeds], **bold** when it '
                 f'excludes 0')
    fractions = ', '.join(
        f'{pct} % = {info["frames"]} frames' for pct, info in world['fractions'].items())
    resolution = world.get('resolution')
    size = 'x'.join(str(v) for v in resolution) if resolution else settings.get('resolution')
    commit = (results.get('git') or {}).get('commit') or 'unknown'
    dirty = ' (+ local changes)' if (results.get('git') or {}).get('dirty') else ''
    return (f'Fine-tuning seed{"s" if len(seeds) > 1 else ""} '
            f'{", ".join(str(seed) for seed in seeds)} (init of the new layers and data '
            f'order; {stats}); pre-training once per chain (seed {settings["seed"]}), '
            f'{_epochs(settings["pretrain_epochs"])} on '
            f'all {world["train_frames"]} train frames (no labels), fine-tuning '
            f'{_epochs(settings["finetune_epochs"])} (config schedule stretched), same for '
            f'scratch and pre-trained; metrics in % on the val frames (mAP / NDS: NuScenesMetric, '
            f'mIoU: BEVMapSegMetric); '
            f'synthetic world {world.get("scenes")} scenes x '
            f'{world.get("keyframes")} key frames at {size} ({world["train_frames"]} train / '
            f'{world["val_frames"]} val frames; labels by {world["subset_by"]}: {fractions}); '
            f'wall time of the last invocation {results["wall_s"] / 60:.1f} min (finished steps '
            f'of earlier invocations are reused; {settings.get("jobs", 1)} steps at a '
            f'time, {settings.get("threads", 1)} thread each, {results.get("cpu_count")} CPU '
            f'cores; steps total {results["steps_wall_s"] / 60:.1f} min); commit '
            f'{commit[:10]}{dirty}.')


RENDER_QUALITY_UNITS = (('psnr', 'PSNR', 'dB'), ('depth_abs_err', 'depth error', 'm'),
                        ('bev_height_abs_err', 'BEV height error', 'm'))


def render_quality_note(pretrain: dict) -> str:
    """``; held-out render PSNR 9.1 -> 14.2 dB, depth error 8.3 -> 3.1 m`` (start -> end).

    Empty for results recorded before the render quality was (no
    ``render_quality`` in the pre-training record).
    """
    quality = pretrain.get('render_quality')
    if not quality:
        return ''
    parts = [f'{label} {quality["start"][key]:.3g} -> {quality["end"][key]:.3g} {unit}'
             for key, label, unit in RENDER_QUALITY_UNITS if key in quality['start']]
    return '; held-out render ' + ', '.join(parts) + ' (before training -> end)'


def render_table(results: dict) -> str:
    """Markdown: setup line, table (metrics in %, differences in points), references.

    A row: scratch and pre-trained ``mean ± std`` over the seeds, the paired
    difference ``mean [low, high]`` (95 % t interval), bold when the
    interval excludes 0; one seed: the values and ``[n/a (1 seed)]``.

    Args:
        results (dict): Output of ``run_experiment`` (or its JSON).

    Returns:
        str: The markdown block (no markers).
    """
    lines = [describe_setup(results), '',
             '| chain | labels % | scratch | pre-trained | pre-trained - scratch (points, '
             '[95 % CI]) | paper (reference) |',
             '| --- | --- | --- | --- | --- | --- |']
    for cell in cell_statistics(results):
        chain, fraction, stats = cell['chain'], cell['fraction'], cell['metrics']
        spec = results['chains'][chain]['spec']
        names = spec['table_metrics']
        cells = [' / '.join(f'{name} {_mean_std(stats[name][init])}' for name in names)
                 for init in ('scratch', 'pretrained')]
        delta = ' / '.join(f'{name} {_difference(stats[name]["diff"])}' for name in names)
        paper = spec['paper_reference'].get(str(fraction), 'n/a')
        lines.append(f'| {chain} | {fraction} | {cells[0]} | {cells[1]} | {delta} | {paper} |')
    lines.append('')
    for chain, info in results['chains'].items():
        pre = info['pretrain']
        lines.append(
            f'- {chain}: {info["spec"]["pretrain_config"]} -> {info["spec"]["downstream_config"]} '
            f'({",".join(info["spec"]["modules"])}); pre-training loss {pre["loss_first"]:.3g} -> '
            f'{pre["loss_last"]:.3g} in {pre["wall_s"] / 60:.1f} min{render_quality_note(pre)}. '
            f'Paper: {info["spec"]["citation"]}.')
    return '\n'.join(lines) + '\n'


def replace_readme_block(readme: Path, block: str) -> Path:
    """Replace the text between the transfer-table markers of ``readme``.

    Raises:
        TransferTableError: If the markers are missing or out of order.
    """
    readme = Path(readme)
    text = readme.read_text()
    start, end = text.find(START_MARKER), text.find(END_MARKER)
    if start < 0 or end < 0 or end < start:
        raise TransferTableError(
            f'{readme}: needs the lines {START_MARKER!r} and {END_MARKER!r} (in this order)')
    head = text[:start + len(START_MARKER)]
    readme.write_text(head + '\n' + block.rstrip('\n') + '\n' + text[end:])
    return readme


def summarize_run(results: dict) -> dict:
    """The history record of one experiment run.

    Args:
        results (dict): Output of ``run_experiment`` (or its JSON).

    Returns:
        dict: ``schema`` (:data:`HISTORY_SCHEMA`), ``created``, ``git``
        (commit, dirty), ``settings`` (seeds, epochs, world size, jobs),
        ``world`` (scenes, key frames, resolution, train / val frames, frames
        of each fraction, subset mode), ``schedules`` (epochs and the
        iterations of each pre-training and of each fraction's fine-tuning),
        ``wall_s`` (last invocation) and ``steps_wall_s`` (all steps), per
        chain its specification and pre-training loss / wall time / render quality, and one
        ``cells`` entry per (chain, fraction): ``seeds``, the scratch and
        pre-trained metrics per seed (lists in seed order), and ``stats``
        (:func:`cell_statistics`: mean, std, paired difference with its
        interval).
    """
    settings, world = results['settings'], results['world']
    keep = ('seed', 'seeds', 'finetune_seeds', 'scenes', 'keyframes', 'resolution',
            'pretrain_epochs', 'finetune_epochs', 'fractions', 'subset_by', 'jobs', 'threads')
    cells = []
    for cell in cell_statistics(results):
        values = {init: {name: stats[init]['values'] for name, stats in cell['metrics'].items()}
                  for init in ('scratch', 'pretrained')}
        summary = {name: dict(scratch={k: stats['scratch'][k] for k in ('mean', 'std')},
                              pretrained={k: stats['pretrained'][k] for k in ('mean', 'std')},
                              diff=stats['diff'])
                   for name, stats in cell['metrics'].items()}
        cells.append(dict(chain=cell['chain'], fraction=cell['fraction'], seeds=cell['seeds'],
                          stats=summary, **values))
    chains = {name: dict(pretrain_config=info['spec']['pretrain_config'],
                         downstream_config=info['spec']['downstream_config'],
                         modules=list(info['spec']['modules']),
                         pretrain_loss=[info['pretrain']['loss_first'],
                                        info['pretrain']['loss_last']],
                         pretrain_wall_s=info['pretrain']['wall_s'],
                         pretrain_render_quality=info['pretrain'].get('render_quality'))
              for name, info in results['chains'].items()}
    iterations = {}
    for run in results['runs']:
        if 'iterations' in run:
            key = f'{run["chain"]}/{run["fraction"]}pct'
            iterations[key] = run['iterations']
    schedules = dict(
        pretrain_epochs=settings.get('pretrain_epochs'),
        finetune_epochs=settings.get('finetune_epochs'),
        pretrain_iterations={name: info['pretrain'].get('iterations')
                             for name, info in results['chains'].items()},
        finetune_iterations=iterations)
    world_keep = ('scenes', 'keyframes', 'resolution', 'train_frames', 'val_frames', 'subset_by')
    fractions = {pct: dict(frames=info['frames'])
                 for pct, info in world.get('fractions', {}).items()}
    return dict(schema=HISTORY_SCHEMA, created=results.get('created'), git=results.get('git'),
                settings={key: settings[key] for key in keep if key in settings},
                world=dict({key: world[key] for key in world_keep if key in world},
                           fractions=fractions),
                schedules=schedules, wall_s=results['wall_s'],
                steps_wall_s=results.get('steps_wall_s'), chains=chains, cells=cells)


def append_history(history: Path, results: dict) -> bool:
    """Append the run's record to a JSON-lines history unless it is there.

    A run is identified by its ``created`` time stamp and commit, so
    rendering the same results twice adds one line.

    Args:
        history (Path): The ``.jsonl`` file (created if missing).
        results (dict): Output of ``run_experiment`` (or its JSON).

    Returns:
        bool: True if a line was added.

    Raises:
        TransferTableError: If an existing line is not JSON (names the line).
    """
    history = Path(history)
    record = summarize_run(results)
    key = (record['created'], (record['git'] or {}).get('commit'))
    lines = history.read_text().splitlines() if history.exists() else []
    for number, line in enumerate(lines, 1):
        try:
            old = json.loads(line)
        except json.JSONDecodeError as err:
            raise TransferTableError(f'{history}:{number}: not JSON ({err})') from err
        if (old.get('created'), (old.get('git') or {}).get('commit')) == key:
            return False
    history.parent.mkdir(parents=True, exist_ok=True)
    with history.open('a') as stream:
        stream.write(json.dumps(record, sort_keys=True) + '\n')
    return True
