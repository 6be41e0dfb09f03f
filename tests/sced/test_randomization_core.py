"""One null-distribution/p-value core for sced.randomization_test and the power simulation.

The expected p-values are counted by brute force here (itertools over all
assignments), independently of both implementations.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from effectstudy._randomization import TIE_TOLERANCE, p_value
from effectstudy.errors import SpecError
from effectstudy.power.single_case import mb_randomization_test
from effectstudy.sced import randomization_test

WINDOWS = [(3, 5), (4, 7), (5, 8)]  # 1-based first phase-B sessions
STARTS = [4, 6, 5]


def _data(seed: int = 4) -> np.ndarray:
    y = np.random.default_rng(seed).standard_normal((3, 10))
    for c, s in enumerate(STARTS):
        y[c, s - 1:] += 0.8
    return y


def _frame(y: np.ndarray) -> pd.DataFrame:
    rows = []
    for c, s in enumerate(STARTS):
        for t in range(1, y.shape[1] + 1):
            rows.append(dict(case=f"c{c}", session=t, phase="A" if t < s else "B",
                             outcome=y[c, t - 1]))
    return pd.DataFrame(rows)


def _sced(y, statistic, improvement="increase", **kw):
    return randomization_test(
        _frame(y), outcome="outcome", session="session", phase="phase", case="case",
        design="MB", statistic=statistic, improvement=improvement,
        start_points={f"c{c}": list(range(lo, hi + 1)) for c, (lo, hi) in enumerate(WINDOWS)},
        **kw)


def _brute(y, statistic):
    def stat(assign):
        vals = []
        for c, s in enumerate(assign):
            a, b = y[c, :s - 1], y[c, s - 1:]
            if statistic == "mean_difference":
                vals.append(b.mean() - a.mean())
            else:
                vals.append(np.mean((b[None, :] > a[:, None]) + 0.5 * (b[None, :] == a[:, None])))
        return np.mean(vals)

    dist = np.array([stat(a) for a in itertools.product(*[range(lo, hi + 1)
                                                          for lo, hi in WINDOWS])])
    return stat(STARTS), dist


@pytest.mark.parametrize("statistic", ["mean_difference", "nap"])
def test_power_and_sced_give_the_same_exact_p_values(statistic):
    y = _data()
    obs, dist = _brute(y, statistic)
    tol = TIE_TOLERANCE * max(1.0, abs(obs))
    p_greater = np.mean(dist >= obs - tol)
    p_less = np.mean(dist <= obs + tol)
    p_two = min(1.0, 2 * min(p_greater, p_less))
    assert 0 < p_greater < 1 and 0 < p_less < 1

    for alternative, improvement, expected in [("greater", "increase", p_greater),
                                               ("less", "decrease", p_less)]:
        _, p_power = mb_randomization_test(y, WINDOWS, STARTS, statistic, alternative)
        res = _sced(y, statistic, improvement)
        assert res.exact
        assert p_power == pytest.approx(expected, abs=1e-12)
        assert res.p_value == pytest.approx(expected, abs=1e-12)

    _, p_power_two = mb_randomization_test(y, WINDOWS, STARTS, statistic, "two-sided")
    res_two = _sced(y, statistic, alternative="two-sided")
    assert p_power_two == pytest.approx(p_two, abs=1e-12)
    assert res_two.p_value == pytest.approx(p_two, abs=1e-12)
    assert res_two.alternative == "two-sided"


@pytest.mark.parametrize("statistic", ["mean_difference", "nap"])
def test_power_and_sced_agree_in_monte_carlo_with_the_same_generator(statistic):
    y = _data(7)
    _, p_power = mb_randomization_test(y, WINDOWS, STARTS, statistic, "greater", n_perm=499,
                                       max_exact=10, rng=np.random.default_rng(11))
    res = _sced(y, statistic, exhaustive=False, n_samples=499, rng=np.random.default_rng(11))
    assert not res.exact and res.n_used == 499
    assert p_power == pytest.approx(res.p_value, abs=1e-12)
    b = int(round(res.p_value * 500)) - 1  # p = (b + 1) / (m + 1)
    assert 0 <= b <= 499 and res.p_value == pytest.approx((b + 1) / 500)


def test_ties_use_one_relative_tolerance():
    # within 1e-10 * |observed| (here 1e-4) counts as a tie: 1e6 + 1e-5 and 1e6 do,
    # which the old absolute 1e-12 rule of the power module did not count
    null = np.array([1e6 + 1e-5, 1e6 - 1.0, 0.0, 1e6])
    p, min_p = p_value(null, 1e6 + 2e-5, "greater", includes_observed=True)
    assert p == pytest.approx(2 / 4) and min_p == pytest.approx(1 / 4)
    p, _ = p_value(null, 1e6 + 2e-5, "greater", includes_observed=True, exclude_equal=True)
    assert p == 0.0
    p, _ = p_value(null, 0.0, "less", includes_observed=False)
    assert p == pytest.approx(2 / 5)
    p, min_p = p_value(null, 0.0, "two-sided", includes_observed=False)
    assert p == pytest.approx(4 / 5) and min_p == pytest.approx(2 / 5)
    with pytest.raises(SpecError):
        p_value(null, 0.0, "both", includes_observed=True)
