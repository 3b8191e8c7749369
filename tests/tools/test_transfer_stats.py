"""Seed statistics of the transfer experiment (tools/transfer/stats.py) against hand values."""
import math
import sys

import pytest

from tools.transfer.stats import T_975, mean_std, paired_difference, t_quantile_975


def test_paired_difference_of_one_two_three():
    """diffs [1, 2, 3]: mean 2, std 1, half-width t_{0.975,2} / sqrt(3) = 4.303 / 1.732."""
    out = paired_difference([10.0, 20.0, 30.0], [11.0, 22.0, 33.0])
    assert out['diffs'] == [1.0, 2.0, 3.0]
    assert out['n'] == 3 and out['mean'] == pytest.approx(2.0) and out['std'] == pytest.approx(1.0)
    assert out['t'] == pytest.approx(4.303, abs=1e-3)
    assert out['half_width'] == pytest.approx(2.484, abs=1e-3)
    assert (out['low'], out['high']) == (pytest.approx(-0.484, abs=1e-3),
                                         pytest.approx(4.484, abs=1e-3))
    assert out['excludes_zero'] is False  # the interval contains 0: not marked


def test_a_consistent_difference_is_marked_either_sign():
    """diffs [2, 2.1, 1.9]: std 0.1, half-width 4.303 * 0.1 / sqrt(3) = 0.248."""
    up = paired_difference([0.0, 0.0, 0.0], [2.0, 2.1, 1.9])
    assert up['std'] == pytest.approx(0.1) and up['half_width'] == pytest.approx(0.2484, abs=1e-4)
    assert up['low'] == pytest.approx(1.7516, abs=1e-4) and up['excludes_zero'] is True
    down = paired_difference([2.0, 2.1, 1.9], [0.0, 0.0, 0.0])
    assert down['high'] == pytest.approx(-1.7516, abs=1e-4) and down['excludes_zero'] is True
    # no difference at all: the interval [0, 0] contains 0
    assert paired_difference([0.3, 0.3], [0.3, 0.3])['excludes_zero'] is False


def test_two_seeds_use_df_one():
    """diffs [1, 3]: mean 2, std sqrt(2), half-width 12.706 * sqrt(2) / sqrt(2) = 12.706."""
    out = paired_difference([0.0, 0.0], [1.0, 3.0])
    assert out['std'] == pytest.approx(math.sqrt(2.0))
    assert out['half_width'] == pytest.approx(12.706, abs=1e-3)


def test_one_seed_has_no_interval():
    out = paired_difference([0.25], [0.5])
    assert out['mean'] == pytest.approx(0.25) and out['std'] is None
    assert out['low'] is None and out['high'] is None and out['excludes_zero'] is None
    assert mean_std([0.5]) == dict(n=1, mean=0.5, std=None)


def test_mean_std_is_the_sample_std():
    out = mean_std([1.0, 2.0, 3.0, 4.0])  # sum of squared deviations 5, / (n - 1) = 5 / 3
    assert out['mean'] == pytest.approx(2.5) and out['std'] == pytest.approx(math.sqrt(5 / 3))


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match='same seeds: 2 scratch vs 3'):
        paired_difference([0.0, 1.0], [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match='non-empty'):
        mean_std([])
    with pytest.raises(ValueError, match='finite'):
        mean_std([0.1, float('nan')])
    with pytest.raises(ValueError, match='df=0'):
        t_quantile_975(0)


def test_t_table_agrees_with_scipy():
    """The fallback table against scipy's t distribution (an independent source)."""
    stats = pytest.importorskip('scipy.stats')
    for df in range(1, 31):
        assert t_quantile_975(df, use_scipy=False) == T_975[df - 1]
        assert T_975[df - 1] == pytest.approx(stats.t.ppf(0.975, df), abs=6e-4), df
    with pytest.raises(ValueError, match='install scipy'):
        t_quantile_975(31, use_scipy=False)
    assert t_quantile_975(40) == pytest.approx(2.021, abs=1e-3)  # scipy beyond the table


def test_without_scipy_the_table_is_used(monkeypatch):
    monkeypatch.setitem(sys.modules, 'scipy', None)  # import scipy -> ImportError
    assert t_quantile_975(2) == 4.303
    out = paired_difference([0.0, 0.0, 0.0], [1.0, 2.0, 3.0])
    assert out['half_width'] == pytest.approx(4.303 / math.sqrt(3), rel=1e-12)
