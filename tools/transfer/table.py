"""README table of the transfer experiment, rendered from its JSON results.

The table pairs each chain's scratch and pre-trained fine-tuning runs of the
same label fraction (same seed and schedule) and shows the difference, with
the paper's numbers beside them (``ChainSpec.paper_reference``, stored in the
results). A header line states the seed, the schedule, the world size and
the wall time. :func:`replace_readme_block` puts the table between the
``<!-- transfer-table:start -->`` / ``<!-- transfer-table:end -->`` markers.
:func:`append_history` keeps every rendered run, one JSON line each with its
commit, so numbers replaced in the README stay on record.
"""
import json
from pathlib import Path
from typing import Dict, List, Tuple

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


def pair_runs(results: dict) -> List[Tuple[str, int, Dict[str, dict]]]:
    """(chain, fraction, {init: run}) in chain order, then fraction order.

    Raises:
        TransferTableError: If a chain/fraction lacks its scratch or
            pre-trained run.
    """
    groups: Dict[Tuple[str, int], Dict[str, dict]] = {}
    for run in results['runs']:
        groups.setdefault((run['chain'], int(run['fraction'])), {})[run['init']] = run
    chain_order = list(results['chains'])
    out = []
    for (chain, fraction), runs in sorted(
            groups.items(), key=lambda item: (chain_order.index(item[0][0]), item[0][1])):
        missing = {'scratch', 'pretrained'} - set(runs)
        if missing:
            raise TransferTableError(f'{chain} {fraction} %: no {sorted(missing)} run')
        out.append((chain, fraction, runs))
    return out


def describe_setup(results: dict) -> str:
    """One line: seed, schedule, world size, wall time, commit."""
    settings, world = results['settings'], results['world']
    fractions = ', '.join(
        f'{pct} % = {info["frames"]} frames' for pct, info in world['fractions'].items())
    resolution = world.get('resolution')
    size = 'x'.join(str(v) for v in resolution) if resolution else settings.get('resolution')
    commit = (results.get('git') or {}).get('commit') or 'unknown'
    dirty = ' (+ local changes)' if (results.get('git') or {}).get('dirty') else ''
    return (f'Seed {settings["seed"]}; pre-training {_epochs(settings["pretrain_epochs"])} on '
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
    """Markdown: setup line, table (metrics in %, deltas in points), references.

    Args:
        results (dict): Output of ``run_experiment`` (or its JSON).

    Returns:
        str: The markdown block (no markers).
    """
    lines = [describe_setup(results), '',
             '| chain | labels % | scratch | pre-trained | delta (points) | paper (reference) |',
             '| --- | --- | --- | --- | --- | --- |']
    for chain, fraction, runs in pair_runs(results):
        spec = results['chains'][chain]['spec']
        names = spec['table_metrics']
        cells = []
        for init in ('scratch', 'pretrained'):
            metrics = runs[init]['metrics']
            cells.append(' / '.join(f'{name} {_fmt(metrics[name])}' for name in names))
        gains = {name: runs['pretrained']['metrics'][name] - runs['scratch']['metrics'][name]
                 for name in names}
        delta = ' / '.join(f'{name} {_signed(gains[name])}' for name in names)
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
        dict: ``created``, ``git`` (commit, dirty), ``settings`` (seed,
        epochs, world size, jobs), ``wall_s``, per chain its specification
        and pre-training loss / wall time / render quality, and one ``cells`` entry per
        (chain, fraction) with the scratch and pre-trained metrics.
    """
    settings = results['settings']
    keep = ('seed', 'scenes', 'keyframes', 'resolution', 'pretrain_epochs', 'finetune_epochs',
            'fractions', 'subset_by', 'jobs', 'threads')
    cells = [dict(chain=chain, fraction=fraction,
                  scratch=runs['scratch']['metrics'], pretrained=runs['pretrained']['metrics'])
             for chain, fraction, runs in pair_runs(results)]
    chains = {name: dict(pretrain_config=info['spec']['pretrain_config'],
                         downstream_config=info['spec']['downstream_config'],
                         modules=list(info['spec']['modules']),
                         pretrain_loss=[info['pretrain']['loss_first'],
                                        info['pretrain']['loss_last']],
                         pretrain_wall_s=info['pretrain']['wall_s'],
                         pretrain_render_quality=info['pretrain'].get('render_quality'))
              for name, info in results['chains'].items()}
    return dict(created=results.get('created'), git=results.get('git'),
                settings={key: settings[key] for key in keep if key in settings},
                world=dict(train_frames=results['world']['train_frames'],
                           val_frames=results['world']['val_frames']),
                wall_s=results['wall_s'], chains=chains, cells=cells)


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
