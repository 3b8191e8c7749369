"""Label-efficient training subsets (1 / 5 / 10 / 50 / 100 % of train).

A subset is drawn either by scene (default: whole driving sequences, as in
the label-efficient protocols of NS-MAE / MIM4D) or by key frame. One seeded
permutation of the training scenes (or frames) is drawn and every percentage
takes a prefix of it, so the subsets are nested (1 % within 5 % within ...),
identical for the same seed and different for another seed. The number of
units kept is ``max(1, round(p / 100 * N))``, so the fraction is within one
scene (or frame) of the target. Only training entries are ever selected, so
a subset is disjoint from val.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

SUBSET_MODES = ('scene', 'frame')


def subset_size(percent: float, total: int) -> int:
    """Number of units (scenes or frames) kept for ``percent`` of ``total``.

    Args:
        percent (float): target percentage in (0, 100].
        total (int): number of units available.

    Returns:
        int: ``max(1, round(percent / 100 * total))``, at most ``total``.
    """
    if not 0 < percent <= 100:
        raise ValueError(f'subset percentage must be in (0, 100], got {percent}')
    if total == 0:
        return 0
    return min(total, max(1, int(round(percent / 100 * total))))


def select_subsets(sample_tokens: Sequence[str], scene_names: Sequence[str],
                   percents: Sequence[float], by: str = 'scene',
                   seed: int = 0) -> Dict[float, List[int]]:
    """Indices of the training entries kept by each percentage.

    Args:
        sample_tokens (Sequence[str]): N training sample tokens (info order).
        scene_names (Sequence[str]): N scene names, aligned with the tokens.
        percents (Sequence[float]): percentages, e.g. (1, 5, 10, 50, 100).
        by (str): ``'scene'`` or ``'frame'``.
        seed (int): seed of the numpy Generator drawing the permutation.

    Returns:
        dict[float, list[int]]: per percentage, sorted indices into the
        training entries.
    """
    if by not in SUBSET_MODES:
        raise ValueError(f'subset mode must be one of {SUBSET_MODES}, got {by!r}')
    if len(sample_tokens) != len(scene_names):
        raise ValueError(f'{len(sample_tokens)} sample tokens but '
                         f'{len(scene_names)} scene names')
    rng = np.random.default_rng(seed)
    names = np.asarray(scene_names)
    if by == 'scene':
        units = np.array(sorted(set(scene_names)))
        order = units[rng.permutation(len(units))]
    else:
        order = np.array(sorted(range(len(sample_tokens)),
                                key=lambda i: sample_tokens[i]))[
                                    rng.permutation(len(sample_tokens))]
    subsets = {}
    for pct in percents:
        chosen = order[:subset_size(pct, len(order))]
        if by == 'scene':
            keep = np.flatnonzero(np.isin(names, chosen))
        else:
            keep = np.sort(chosen)
        subsets[pct] = keep.tolist()
    return subsets


def subset_manifest(percent: float, by: str, seed: int,
                    sample_tokens: Sequence[str], scene_names: Sequence[str],
                    indices: Sequence[int], total_scenes: int,
                    total_samples: int) -> Dict:
    """JSON-serialisable description of one subset.

    Returns:
        dict: ``percent``, ``subset_by``, ``seed``, counts of the subset and of
        the full training split, sorted ``scene_names`` and ``sample_tokens``.
    """
    scenes = sorted({scene_names[i] for i in indices})
    return dict(percent=percent, subset_by=by, seed=seed,
                num_scenes=len(scenes), num_samples=len(indices),
                total_train_scenes=total_scenes, total_train_samples=total_samples,
                scene_names=scenes,
                sample_tokens=[sample_tokens[i] for i in indices])


def percent_tag(percent: float) -> str:
    """File-name tag of a percentage: 10 -> ``'10pct'``, 0.5 -> ``'0.5pct'``."""
    return f'{percent:g}pct'


def parse_percents(text: str) -> Tuple[float, ...]:
    """Parse ``'1,5,10'`` into ``(1.0, 5.0, 10.0)``."""
    try:
        return tuple(float(p) for p in text.split(',') if p.strip())
    except ValueError as err:
        raise ValueError(f'--subsets expects comma-separated percentages, '
                         f'got {text!r}') from err
