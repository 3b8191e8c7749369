"""Statistics of the transfer experiment over fine-tuning seeds (pure Python / numpy).

Each (chain, label fraction) cell is fine-tuned once per seed from scratch
and once per seed from the pre-trained weights; the two runs of a seed share
the seed (init of the new layers, data order), so the effect of pre-training
is estimated from the paired differences ``d_s = pretrained_s - scratch_s``:

    mean  = sum(d_s) / n
    std   = sqrt(sum((d_s - mean)^2) / (n - 1))          (sample std, ddof=1)
    95 % interval = mean -+ t_{0.975, n-1} * std / sqrt(n)

(the t interval of a mean; it assumes the seed-to-seed differences are
roughly normal, which a handful of seeds cannot check). A difference whose
interval excludes 0 is marked. With one seed there is no interval.

The t quantile comes from ``scipy.stats.t.ppf`` when scipy is installed (it
is in this project's environment); otherwise from :data:`T_975`, the
two-sided 95 % table for 1..30 degrees of freedom.
"""
import math
from typing import Dict, Optional, Sequence

import numpy as np

# Two-sided 95 % quantiles t_{0.975, df} of Student's t, df = 1..30
# (standard tables, e.g. NIST/SEMATECH e-Handbook 1.3.6.7.2), 3 decimals.
T_975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
         2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
         2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042)

NO_INTERVAL = 'n/a (1 seed)'


def t_quantile_975(df: int, use_scipy: bool = True) -> float:
    """Two-sided 95 % quantile of Student's t (``t_{0.975, df}``).

    Args:
        df (int): Degrees of freedom (>= 1): seeds - 1.
        use_scipy (bool): Use ``scipy.stats.t.ppf`` if scipy is importable;
            False forces the table :data:`T_975`.

    Returns:
        float: e.g. 12.706 for df 1, 4.303 for df 2.

    Raises:
        ValueError: If ``df < 1``, or ``df > 30`` and scipy is unavailable.
    """
    df = int(df)
    if df < 1:
        raise ValueError(f'a t interval needs >= 1 degree of freedom (2 seeds), got df={df}')
    if use_scipy:
        try:
            from scipy import stats
        except ImportError:
            pass
        else:
            return float(stats.t.ppf(0.975, df))
    if df > len(T_975):
        raise ValueError(f't quantile for df={df}: the built-in table stops at df='
                         f'{len(T_975)}; install scipy for more seeds')
    return T_975[df - 1]


def mean_std(values: Sequence[float]) -> Dict[str, Optional[float]]:
    """Mean and sample standard deviation (ddof=1) of a metric over seeds.

    Args:
        values (Sequence[float]): One value per seed (>= 1).

    Returns:
        dict: ``n``, ``mean``, ``std`` (None for one value).

    Raises:
        ValueError: If ``values`` is empty or not finite.
    """
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f'need a non-empty list of values, got {values!r}')
    if not np.isfinite(array).all():
        raise ValueError(f'values must be finite, got {values!r}')
    std = float(array.std(ddof=1)) if array.size > 1 else None
    return dict(n=int(array.size), mean=float(array.mean()), std=std)


def paired_difference(scratch: Sequence[float], pretrained: Sequence[float],
                      use_scipy: bool = True) -> dict:
    """Paired difference ``pretrained - scratch`` over seeds, with its 95 % t interval.

    Args:
        scratch (Sequence[float]): Metric of the scratch run of each seed.
        pretrained (Sequence[float]): Metric of the pre-trained run of the
            same seeds, in the same order.
        use_scipy (bool): See :func:`t_quantile_975`.

    Returns:
        dict: ``n`` (seeds), ``diffs`` (per seed), ``mean``, ``std``
        (ddof=1), ``t`` (quantile used), ``half_width``, ``low``, ``high``
        and ``excludes_zero`` (``low > 0 or high < 0``); the last five are
        None with one seed.

    Raises:
        ValueError: If the lists differ in length or are empty.
    """
    if len(scratch) != len(pretrained):
        raise ValueError(f'paired values need the same seeds: {len(scratch)} scratch vs '
                         f'{len(pretrained)} pre-trained')
    diffs = np.asarray(pretrained, dtype=np.float64) - np.asarray(scratch, dtype=np.float64)
    summary = mean_std(diffs)
    out = dict(summary, diffs=[float(d) for d in diffs], t=None, half_width=None, low=None,
               high=None, excludes_zero=None)
    if summary['n'] > 1:
        t = t_quantile_975(summary['n'] - 1, use_scipy)
        half = t * summary['std'] / math.sqrt(summary['n'])
        low, high = summary['mean'] - half, summary['mean'] + half
        out.update(t=t, half_width=half, low=low, high=high,
                   excludes_zero=bool(low > 0 or high < 0))
    return out
