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


RENDER_QUALITY_KEYS = ('psnr', 'depth_abs_err', 'bev_height_abs_err')


def render_quality(scalars: Path) -> dict:
    """Held-out render quality at the start and at the end of a pre-training.

    The rows of ``RenderQualityMetric`` (``render/psnr`` in dB,
    ``render/depth_abs_err`` and ``render/bev_height_abs_err`` in metres;
    a model without a quantity logs no key for it): the first must be the
    validation before any training step (``step`` 0, written by
    ``ValidateBeforeTrainHook``), the last is the one after the final epoch.

    Returns:
        dict: ``start`` and ``end`` (metric -> value, the keys found in the
        rows), ``start_epoch`` (0) and ``end_epoch``.

    Raises:
        TransferExperimentError: If there are fewer than two such rows, the
            first is not at step 0, or the two rows hold different keys.
    """
    rows = [row for row in read_scalars(scalars)
            if any(key == 'render/' + name for name in RENDER_QUALITY_KEYS for key in row)]
    if len(rows) < 2:
        raise TransferExperimentError(
            f'{scalars}: {len(rows)} render-quality validation row(s) (render/psnr, '
            'render/depth_abs_err), need one before training (ValidateBeforeTrainHook) and '
            'one at the end')
    first, last = rows[0], rows[-1]
    if first.get('step') != 0:
        raise TransferExperimentError(
            f'{scalars}: the first render-quality row is at step {first.get("step")}, not 0: '
            'no validation before training (ValidateBeforeTrainHook)')

    def values(row):
        return {name: float(row['render/' + name]) for name in RENDER_QUALITY_KEYS
                if 'render/' + name in row}
    start, end = values(first), values(last)
    if set(start) != set(end):
        raise TransferExperimentError(
            f'{scalars}: render-quality keys differ between start {sorted(start)} and end '
            f'{sorted(end)}')
    return dict(start=start, end=end, start_epoch=0, end_epoch=int(last.get('step', -1)))


def checkpoint_loaded(log: Path, checkpoint: Path) -> bool:
    """Whether the training log reports loading ``checkpoint`` (mmengine ``load_from``)."""
    return f'Load checkpoint from {checkpoint}' in Path(log).read_text(errors='replace')
