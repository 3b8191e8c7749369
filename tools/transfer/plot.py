"""Plot of the transfer experiment: scratch vs pre-trained over the label fractions.

One panel per chain: the chain's main metric (its first ``table_metrics``
column, in %) against the label percentage (log axis), scratch and
pre-trained, each point the mean over the fine-tuning seeds with error bars
of +- one sample standard deviation over the seeds (none with one seed).
Written by ``tools/benchmarks/transfer.py --table ... --plot PATH``
(``docs/images/transfer.png``).
"""
from pathlib import Path
from typing import Dict, Sequence

import numpy as np

from tools.transfer.table import cell_statistics, run_seeds

INIT_STYLE = {'scratch': dict(marker='o', linestyle='--', color='tab:gray', label='scratch'),
              'pretrained': dict(marker='s', linestyle='-', color='tab:blue',
                                 label='pre-trained')}


def _drawn(container) -> Dict[str, np.ndarray]:
    """x, y and the half error bar of an ``errorbar`` container, read from its artists."""
    line, _, bars = container.lines
    x = np.asarray(line.get_xdata(), dtype=np.float64)
    y = np.asarray(line.get_ydata(), dtype=np.float64)
    err = np.zeros_like(y)
    if bars:
        segments = bars[0].get_segments()
        err = np.array([(seg[1][1] - seg[0][1]) / 2 for seg in segments], dtype=np.float64)
    return dict(x=x, y=y, yerr=err)


def plot_transfer(results_list: Sequence[dict], path: Path) -> Dict[str, dict]:
    """Draw the transfer plot of one or more results files and save it.

    Results files are read in order; a chain present in several is drawn
    from the last one (the latest run of it).

    Args:
        results_list (Sequence[dict]): Outputs of ``run_experiment`` (or
            their JSON), e.g. one per ``--table`` file.
        path (Path): Image to write (PNG; folders created).

    Returns:
        dict: Per chain (panel order): ``metric`` (name), ``seeds`` and per
        init (``scratch``, ``pretrained``) the drawn ``x`` (label %), ``y``
        (mean metric, %) and ``yerr`` (half error bar, % = sample std over
        the seeds, 0 with one seed), read back from the plotted artists.
    """
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt

    panels = {}
    for results in results_list:
        seeds = run_seeds(results)
        for cell in cell_statistics(results):
            chain = cell['chain']
            metric = results['chains'][chain]['spec']['table_metrics'][0]
            if chain not in panels or panels[chain]['results'] is not results:
                panels[chain] = dict(results=results, metric=metric, seeds=seeds, cells=[])
            panels[chain]['cells'].append(cell)
    if not panels:
        raise ValueError('no fine-tuning runs to plot')
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.2), squeeze=False)
    drawn = {}
    for ax, (chain, panel) in zip(axes[0], panels.items()):
        metric = panel['metric']
        cells = sorted(panel['cells'], key=lambda c: c['fraction'])
        x = np.array([c['fraction'] for c in cells], dtype=np.float64)
        drawn[chain] = dict(metric=metric, seeds=panel['seeds'])
        for init, style in INIT_STYLE.items():
            stats = [c['metrics'][metric][init] for c in cells]
            y = np.array([100 * s['mean'] for s in stats])
            err = np.array([100 * s['std'] if s['std'] is not None else 0.0 for s in stats])
            container = ax.errorbar(x, y, yerr=err if err.any() else None, capsize=3, **style)
            drawn[chain][init] = _drawn(container)
        top = max(max(drawn[chain][init]['y'] + drawn[chain][init]['yerr'])
                  for init in INIT_STYLE)
        ax.set_ylim(0, max(1.0, 1.15 * top))
        ax.set_xscale('log')
        ax.set_xticks(x)
        ax.set_xticklabels([f'{int(v)}' for v in x])
        ax.minorticks_off()
        ax.set_xlabel('labels %')
        ax.set_ylabel(f'{metric} (%)')
        count = len(panel['seeds'])
        ax.set_title(f'{chain}\n{count} seed{"s" if count > 1 else ""}, bars: ± std'
                     if count > 1 else f'{chain}\n1 seed', fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(str(path), dpi=110)
    plt.close(fig)
    return drawn
