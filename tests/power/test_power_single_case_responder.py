"""Single-case randomization-test power and responder (reliable change) power."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import SpecError
from effectstudy.power.responder import ResponderDesign, reliable_change_sdiff
from effectstudy.power.simulate import simulate
from effectstudy.power.single_case import SingleCaseDesign, _case_stats, mb_randomization_test


def test_case_statistics_match_direct_definitions():
    y = np.random.default_rng(1).standard_normal(12)
    y[3] = y[8]  # a tie
    starts = np.arange(3, 11)
    nap = [
        np.mean([(b > a) + 0.5 * (b == a) for a in y[: s - 1] for b in y[s - 1 :]]) for s in starts
    ]
    md = [y[s - 1 :].mean() - y[: s - 1].mean() for s in starts]
    np.testing.assert_allclose(_case_stats(y, "nap", starts), nap)
    np.testing.assert_allclose(_case_stats(y, "mean_difference", starts), md)


def test_exact_mb_test_against_brute_force():
    rng = np.random.default_rng(4)
    y = rng.standard_normal((3, 10))
    windows = [(3, 5), (4, 7), (5, 8)]
    starts = [4, 6, 5]
    y[0, 3:] += 1
    y[1, 5:] += 1
    y[2, 4:] += 1
    for statistic in ("mean_difference", "nap"):
        stat, p = mb_randomization_test(y, windows, starts, statistic, "greater")

        def s(assign, statistic=statistic):
            vals = [_case_stats(y[c], statistic, np.array([a]))[0] for c, a in enumerate(assign)]
            return np.mean(vals) - (0.5 if statistic == "nap" else 0)

        obs = s(starts)
        dist = [s(a) for a in itertools.product(*[range(lo, hi + 1) for lo, hi in windows])]
        assert stat == pytest.approx(obs)
        assert p == pytest.approx(np.mean(np.array(dist) >= obs - 1e-12))
        _, p_less = mb_randomization_test(y, windows, starts, statistic, "less")
        assert p_less == pytest.approx(np.mean(np.array(dist) <= obs + 1e-12))


@pytest.mark.parametrize("statistic", ["mean_difference", "nap"])
def test_single_case_size_and_power(statistic):
    d0 = SingleCaseDesign(
        n_cases=3,
        series_length=20,
        start_window=(6, 15),
        level_shift=0.0,
        ar=0.3,
        statistic=statistic,
    )
    nsim = 600
    r0 = simulate(d0, nsim=nsim, rng=3, progress=False)
    # a randomization test is exact: size <= alpha up to MC error (discreteness)
    assert r0.power < 0.05 + 3 * np.sqrt(0.05 * 0.95 / nsim)
    r1 = simulate(d0.replace(level_shift=1.5), nsim=200, rng=3, progress=False)
    assert r1.power > 0.5
    assert "exact" in r1.test


def test_single_case_monte_carlo_and_invariance():
    d = SingleCaseDesign(
        n_cases=6,
        series_length=24,
        start_window=(6, 18),
        level_shift=1.0,
        statistic="nap",
        n_perm=199,
    )
    assert d.n_assignments > d.max_exact
    a = simulate(d, nsim=30, rng=1, progress=False)
    b = simulate(d, nsim=30, rng=1, n_jobs=2, progress=False, chunk_size=7)
    pd.testing.assert_frame_equal(a.replicates, b.replicates)
    assert "Monte Carlo" in a.test
    with pytest.raises(SpecError):
        SingleCaseDesign(start_window=(1, 30))
    with pytest.raises(SpecError):
        SingleCaseDesign(ar=1.0)


def test_responder_power_is_exact_binomial():
    rd = ResponderDesign(
        n_per_programme=[8, 12, 25],
        mean_change=-8.0,
        sd=10.0,
        reliability=0.85,
        sd_true_change=5.0,
        null_proportion=0.2,
    )
    sdiff = rd.s_diff
    assert sdiff == pytest.approx(10 * np.sqrt(0.3))
    pi = stats.norm.cdf((8 - 1.96 * sdiff) / np.hypot(5, sdiff))
    assert rd.responder_probability == pytest.approx(pi)
    tab = rd.analytic()
    for _, row in tab.iterrows():
        n, k = int(row["n"]), int(row["critical_k"])
        # critical count: smallest k with P(X >= k | pi0) <= alpha
        assert stats.binom.sf(k - 1, n, 0.2) <= 0.05 < stats.binom.sf(k - 2, n, 0.2)
        assert row["power"] == pytest.approx(stats.binom.sf(k - 1, n, pi))
    # simulation of the pooled test agrees with the exact power
    nsim = 2000
    res = simulate(rd, nsim=nsim, rng=9, progress=False)
    p = float(tab.loc[tab.programme == "pooled", "power"].iloc[0])
    assert abs(res.power - p) < 4 * np.sqrt(p * (1 - p) / nsim)
    with pytest.raises(SpecError):
        ResponderDesign(reliability=1.2)


def test_one_standard_error_difference_for_change_and_power():
    """power's responder design uses change.standard_error_difference (one set of bounds)."""
    from effectstudy.change import standard_error_difference
    from effectstudy.errors import DataError

    assert standard_error_difference(10.0, 0.0) == pytest.approx(10 * np.sqrt(2))
    for sd, r in [(10.0, 1.0), (10.0, -0.1), (0.0, 0.8), (10.0, float("nan"))]:
        with pytest.raises(DataError):
            standard_error_difference(sd, r)
        with pytest.raises(SpecError):
            ResponderDesign(sd=sd, reliability=r)
    assert ResponderDesign(sd=8.0, reliability=0.0).s_diff == pytest.approx(8 * np.sqrt(2))
    with pytest.warns(FutureWarning, match="standard_error_difference"):
        old = reliable_change_sdiff(10.0, 0.85)
    assert old == pytest.approx(10 * np.sqrt(0.3))


def test_yaml_single_case_and_responder(tmp_path):
    from effectstudy.power.yaml_design import load_design, run_from_yaml

    p = tmp_path / "mb.yaml"
    p.write_text(
        "type: single-case\nname: mb\n"
        "design: {n_cases: 3, series_length: 16, start_window: [5, 12], level_shift: 1.0, statistic: nap}\n"
        "simulation: {nsim: 40, seed: 2}\n"
    )
    d = load_design(p)
    assert isinstance(d, SingleCaseDesign) and d.windows() == [(5, 12)] * 3
    r = run_from_yaml(p, progress=False)
    assert r.nsim == 40 and r.design == "mb"
    q = tmp_path / "resp.yaml"
    q.write_text(
        "type: responder\ndesign: {n_per_programme: [8, 10], mean_change: -8, sd: 10, reliability: 0.85}\n"
    )
    assert isinstance(load_design(q), ResponderDesign)
    q.write_text("type: responder\ndesign: {n_per_programme: 8, reliabilty: 0.85}\n")
    with pytest.raises(SpecError):
        load_design(q)
