"""Reading the transfer experiment's results from mmengine's ``scalars.json`` and logs."""
import json
from pathlib import Path
from typing import Dict, List

from tools.transfer.steps import TransferExperimentError


def latest_scalars(run_dir: Path) -> Path:
    """``vis_data/scalars.json`` of the newest mmengine run under ``run_dir``.

    Raises:
        TransferExperimentError: If there is none.
    """
    candidates = sorted(Path(run_dir).glob('*/vis_data/scalars.json'))
    if not candidates:
        raise TransferExperimentError(f'no <timestamp>/vis_data/scalars.json under {run_dir}')
    return candidates[-1]


def read_scalars(path: Path) -> List[dict]:
    """Rows of an mmengine ``scalars.json`` (one JSON object per line)."""
    rows = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise TransferExperimentError(f'{path}:{number}: not JSON ({err})') from err
    return rows


def find_metric(row: dict, name: str, source: str) -> float:
    """The value of metric ``name`` in a logged row (exact key or ``.../name``).

    Raises:
        TransferExperimentError: If no key or several keys match.
    """
    keys = [key for key in row if key == name or key.endswith('/' + name)]
    if len(keys) != 1:
        raise TransferExperimentError(
            f'{source}: expected one metric key matching {name!r}, found {keys}; '
            f'keys present: {sorted(row)[:20]}')
    return float(row[keys[0]])


def parse_metrics(scalars: Path, metric_keys: Dict[str, str]) -> Dict[str, float]:
    """The last evaluation's metrics in an mmengine ``scalars.json``.

    Args:
        scalars (Path): The file.
        metric_keys (dict[str, str]): Column -> metric name (see
            :attr:`ChainSpec.metric_keys`).

    Returns:
        dict[str, float]: Column -> value.

    Raises:
        TransferExperimentError: If no row holds the metrics.
    """
    names = list(metric_keys.values())
    rows = [row for row in read_scalars(scalars)
            if any(key == n or key.endswith('/' + n) for n in names for key in row)]
    if not rows:
        raise TransferExperimentError(
            f'{scalars}: no evaluation row with {names} (did validation run?)')
    return {column: find_metric(rows[-1], name, str(scalars))
            for column, name in metric_keys.items()}


def loss_curve(scalars: Path) -> dict:
    """First and last training ``loss`` and the number of iterations (logged at every one)."""
    losses = [row for row in read_scalars(scalars) if 'loss' in row]
    if not losses:
        raise TransferExperimentError(f'{scalars}: no training loss logged')
    return dict(loss_first=float(losses[0]['loss']), loss_last=float(losses[-1]['loss']),
                iterations=int(losses[-1].get('step', len(losses))))


def checkpoint_loaded(log: Path, checkpoint: Path) -> bool:
    """Whether the training log reports loading ``checkpoint`` (mmengine ``load_from``)."""
    return f'Load checkpoint from {checkpoint}' in Path(log).read_text(errors='replace')
