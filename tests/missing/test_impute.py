"""Multiple imputation (:func:`effectstudy.missing.impute`), pooling of analyses and the
delta-adjusted tipping point (:func:`effectstudy.missing.tipping_point`).

The Gibbs sampler is checked against closed-form normal posteriors (fixed variance
parameters), the grid rule and the tipping point against values worked out by hand
in the tests, and the whole procedure by a short simulation (the long one is
``benchmarks/missing_coverage.py``).
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import DataError, ModelError, SpecError
from effectstudy.missing import (
    ImputationResult,
    TippingPointResult,
    analyse_imputed,
    growth_analysis,
    impute,
    planned_grid,
    tipping_point,
)
from effectstudy.missing.impute import _gibbs
from effectstudy.multilevel import fit

ROOT = Path(__file__).resolve().parents[2]


def _load_benchmark():
    spec = importlib.util.spec_from_file_location(
        "missing_coverage", ROOT / "benchmarks" / "missing_coverage.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ------------------------------------------------------------------------------------
# the sampler against closed-form posteriors


def _batch_mean_z(draws: np.ndarray, target: float, n_batches: int = 40) -> float:
    """|mean - target| in units of its batch-means Monte Carlo standard error."""
    batches = np.array_split(draws, n_batches)
    means = np.array([b.mean() for b in batches])
    se = means.std(ddof=1) / math.sqrt(n_batches)
    return abs(draws.mean() - target) / se


def _tiny_case():
    """Five clients x three occasions, random intercept, two missing outcomes."""
    t = np.array([0.0, 1.0, 2.0])
    X = [np.column_stack([np.ones(3), t]) for _ in range(5)]
    Z = [np.ones((3, 1)) for _ in range(5)]
    y = [np.array([1.0, 2.5, np.nan]),
         np.array([0.2, 1.1, 2.3]),
         np.array([2.0, np.nan, 3.9]),
         np.array([-0.5, 0.7, 1.2]),
         np.array([1.4, 1.9, 3.3])]
    return X, Z, y


def test_gibbs_conditional_draws_match_closed_form():
    """With Psi and sigma^2 fixed and a flat prior, beta | y_obs is normal with the GLS
    mean and covariance (X'V^-1X)^-1, and a missing y given y_obs is normal with the
    conditional (kriging) mean and variance plus the beta uncertainty."""
    X, Z, y = _tiny_case()
    psi, sigma2 = np.array([[2.0]]), 1.0
    # Closed form, observed cells only.
    A = np.zeros((2, 2))
    c = np.zeros(2)
    for Xi, Zi, yi in zip(X, Z, y, strict=True):
        o = ~np.isnan(yi)
        Vo = Zi[o] @ psi @ Zi[o].T + sigma2 * np.eye(o.sum())
        A += Xi[o].T @ np.linalg.solve(Vo, Xi[o])
        c += Xi[o].T @ np.linalg.solve(Vo, yi[o])
    C = np.linalg.inv(A)
    beta_hat = C @ c
    # Predictive of client 0's missing third score.
    Xi, Zi, yi = X[0], Z[0], y[0]
    o, mis = ~np.isnan(yi), np.isnan(yi)
    V = Zi @ psi @ Zi.T + sigma2 * np.eye(3)
    Voo, Vmo, Vmm = V[np.ix_(o, o)], V[np.ix_(mis, o)], V[np.ix_(mis, mis)]
    K = Vmo @ np.linalg.inv(Voo)
    H = Xi[mis] - K @ Xi[o]
    pred_mean = (Xi[mis] @ beta_hat + K @ (yi[o] - Xi[o] @ beta_hat)).item()
    pred_var = (Vmm - K @ Vmo.T + H @ C @ H.T).item()
    # The sampler.
    n_iter, burn = 40_000, 1_000
    draws = _gibbs(X, Z, y, n_iter=n_iter, keep=range(burn, n_iter),
                   rng=np.random.default_rng(20261201), fix_psi=psi, fix_sigma2=sigma2)
    assert np.all(draws.sigma2 == sigma2) and np.all(draws.psi == 2.0)
    betas = draws.beta[burn:]
    ymis = np.array([d[0][2] for d in draws.y])
    # Observed cells are never altered.
    assert all(d[1][1] == 1.1 and d[0][0] == 1.0 for d in draws.y[:50])
    for k in range(2):
        assert _batch_mean_z(betas[:, k], beta_hat[k]) < 4.0
        assert _batch_mean_z((betas[:, k] - beta_hat[k]) ** 2, C[k, k]) < 4.0
    cov01 = np.mean((betas[:, 0] - beta_hat[0]) * (betas[:, 1] - beta_hat[1]))
    assert cov01 == pytest.approx(C[0, 1], abs=0.15 * math.sqrt(C[0, 0] * C[1, 1]))
    assert _batch_mean_z(ymis, pred_mean) < 4.0
    assert _batch_mean_z((ymis - pred_mean) ** 2, pred_var) < 4.0
    # And the Monte Carlo error is small enough for these checks to mean something.
    assert abs(ymis.var() / pred_var - 1) < 0.05
    assert abs(betas[:, 1].var() / C[1, 1] - 1) < 0.05


def test_gibbs_recovers_variance_parameters():
    """All parameters free: on a large simulated data set the posterior means of
    sigma^2 and Psi are near the values that generated the data."""
    rng = np.random.default_rng(5)
    n, t = 300, np.array([0.0, 1.0, 2.0, 3.0])
    X = [np.column_stack([np.ones(4), t])] * n
    Z = [np.column_stack([np.ones(4), t])] * n
    psi = np.array([[1.0, 0.2], [0.2, 0.25]])
    b = rng.multivariate_normal([0, 0], psi, n)
    y = []
    for i in range(n):
        yi = 1.0 + 0.5 * t + b[i, 0] + b[i, 1] * t + rng.normal(0, 0.7, 4)
        if i % 3 == 0:
            yi[3] = np.nan
        y.append(yi)
    d = _gibbs(X, Z, y, n_iter=1500, keep=[1499], rng=np.random.default_rng(1))
    assert d.sigma2[300:].mean() == pytest.approx(0.49, rel=0.15)
    est_psi = d.psi[300:].mean(axis=0)
    assert est_psi[0, 0] == pytest.approx(1.0, rel=0.25)
    assert est_psi[1, 1] == pytest.approx(0.25, rel=0.25)
    assert d.beta[300:, 1].mean() == pytest.approx(0.5, abs=0.1)


# ------------------------------------------------------------------------------------
# the planned grid


def _grid_table() -> pd.DataFrame:
    rows = [
        # programme A plans occasions 1, 2, 3
        ("A", "ps-a1", "t1", 0.0, 10.0),
        ("A", "ps-a1", "t2", 10.0, 12.0),
        ("A", "ps-a1", "t3", 20.0, 15.0),
        ("A", "ps-a2", "t1", 1.0, 11.0),
        ("A", "ps-a2", "t3", 22.0, 9.0),
        ("A", "ps-a3", "t1", 0.0, 8.0),
        ("A", "ps-a3", "t2", 12.0, np.nan),  # planned, week known, not observed
        # programme B plans occasions 1 and 4 only
        ("B", "ps-b1", "t1", 0.0, 20.0),
        ("B", "ps-b1", "t4", 30.0, 25.0),
        ("B", "ps-b2", "t1", 2.0, 21.0),
        ("B", "ps-b3", "t1", 1.0, 19.0),
        ("B", "ps-b3", "t4", 34.0, 22.0),
    ]
    return pd.DataFrame(rows, columns=["programme", "client", "occasion", "week", "score"])


def test_planned_grid_rule():
    g = planned_grid(_grid_table(), outcome="score", time="week")
    key = {(r.client, r.occasion): (r.week, r.score, r.in_table) for r in g.itertuples()}
    assert len(g) == 3 * 3 + 3 * 2
    assert set(g.loc[g["programme"] == "B", "occasion"]) == {"t1", "t4"}
    # Her own week when her row has one, even with a missing score.
    assert key[("ps-a3", "t2")][0] == 12.0 and key[("ps-a3", "t2")][2]
    assert math.isnan(key[("ps-a3", "t2")][1])
    # Otherwise the programme's median week of that occasion.
    assert key[("ps-a2", "t2")][0] == 11.0 and not key[("ps-a2", "t2")][2]  # median(10, 12)
    assert key[("ps-a3", "t3")][0] == 21.0  # median(20, 22)
    assert key[("ps-b2", "t4")][0] == 32.0  # median(30, 34)
    assert key[("ps-a1", "t3")] == (20.0, 15.0, True)
    assert g["in_table"].sum() == 12


def test_impute_fills_only_planned_missing_cells():
    tab = _grid_table()
    res = impute(tab, outcome="score", time="week", m=3, rng=1, burn_in=20, thin=5)
    assert isinstance(res, ImputationResult) and len(res) == 3
    for comp in res:
        assert list(comp.columns) == ["programme", "client", "occasion", "week", "score",
                                      "imputed"]
        assert len(comp) == 15
        assert comp["score"].notna().all()
        assert comp["imputed"].sum() == 4  # a2 t2, a3 t2, a3 t3, b2 t4
        merged = comp.merge(tab, on=["client", "occasion"], suffixes=("", "_orig"))
        obs = merged["score_orig"].notna()
        assert (merged.loc[obs, "score"] == merged.loc[obs, "score_orig"]).all()
        assert not merged.loc[obs, "imputed"].any()
    # Different imputations differ in the imputed cells.
    assert not np.allclose(res[0].loc[res[0]["imputed"], "score"],
                           res[1].loc[res[1]["imputed"], "score"])
    summary = res.to_frame().set_index("programme")
    assert summary.loc["A", "planned"] == 9 and summary.loc["A", "imputed"] == 3
    assert summary.loc["B", "observed"] == 5
    assert res.long()["imputation"].nunique() == 3
    assert "<table" in res._repr_html_()


def test_occasion_none_uses_weeks():
    tab = _grid_table().drop(columns="occasion")
    tab = tab[tab["score"].notna()]
    g = planned_grid(tab, outcome="score", time="week", occasion=None)
    # programme A weeks {0, 1, 10, 20, 22} x 3 clients
    assert (g["programme"] == "A").sum() == 15


# ------------------------------------------------------------------------------------
# bad input


def test_programme_with_one_client_names_programme_not_client():
    tab = _grid_table()
    tab = tab[~tab["client"].isin(["ps-b2", "ps-b3"])]
    with pytest.raises(DataError) as err:
        impute(tab, outcome="score", time="week", m=2, rng=1)
    assert "'B'" in str(err.value) and "ps-b1" not in str(err.value)


def test_client_without_scores_and_covariates():
    tab = _grid_table()
    tab.loc[tab["client"] == "ps-b2", "score"] = np.nan
    with pytest.raises(DataError) as err:
        impute(tab, outcome="score", time="week", m=2, rng=1)
    assert "'B'" in str(err.value) and "ps-b2" not in str(err.value)
    # With a client-level covariate she can be imputed.
    tab["age"] = tab["client"].map({c: 12.0 + i for i, c in enumerate(sorted(set(tab["client"])))})
    res = impute(tab, outcome="score", time="week", covariates=["age"], m=2, rng=1,
                 burn_in=10, thin=2)
    b2 = res[0][res[0]["client"] == "ps-b2"]
    assert b2["imputed"].all() and b2["score"].notna().all()


@pytest.mark.parametrize("change, column, row", [
    (lambda t: pd.concat([t, t.iloc[[3]]], ignore_index=True), "occasion", 12),
    (lambda t: t.assign(score=t["score"].astype(object).where(t.index != 4, "x")), "score", 4),
    (lambda t: t.assign(programme=t["programme"].where(t.index != 2, None)), "programme", 2),
    (lambda t: t.assign(week=t["week"].where(~t["occasion"].eq("t4"), np.nan)), "week", None),
])
def test_bad_values_rejected_without_client_labels(change, column, row):
    with pytest.raises(DataError) as err:
        impute(change(_grid_table()), outcome="score", time="week", m=2, rng=1)
    assert err.value.column == column
    assert err.value.row == row
    assert "ps-" not in str(err.value)


def test_bad_arguments():
    tab = _grid_table()
    with pytest.raises(DataError, match="no such column"):
        impute(tab, outcome="nope", time="week")
    with pytest.raises(SpecError):
        impute(tab, outcome="score", time="week", m=0)
    with pytest.raises(SpecError):
        impute(tab, outcome="score", time="week", rng="seed")
    tab["age"] = np.arange(len(tab), dtype=float)  # varies within clients
    with pytest.raises(DataError, match="not constant") as err:
        impute(tab, outcome="score", time="week", covariates=["age"])
    assert err.value.column == "age"


def test_client_in_two_programmes():
    tab = _grid_table()
    tab.loc[8, "programme"] = "A"  # ps-b1's second row
    with pytest.raises(DataError, match="more than one programme") as err:
        planned_grid(tab, outcome="score", time="week")
    assert "ps-b1" not in str(err.value)


# ------------------------------------------------------------------------------------
# reproducibility


def test_same_seed_same_tables_and_no_global_state():
    tab = _grid_table()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    kw = dict(outcome="score", time="week", m=2, burn_in=10, thin=3)
    a = impute(tab, rng=42, **kw)
    b = impute(tab, rng=np.random.default_rng(42), **kw)
    for x, y in zip(a, b, strict=True):
        pd.testing.assert_frame_equal(x, y)
    assert np.array_equal(np.random.get_state()[1], before)
    gen = np.random.default_rng(42)
    c1 = impute(tab, rng=gen, **kw)
    c2 = impute(tab, rng=gen, **kw)  # the generator was advanced: new draws
    pd.testing.assert_frame_equal(c1[0], a[0])
    assert not c2[0]["score"].equals(c1[0]["score"])


# ------------------------------------------------------------------------------------
# analyse_imputed


def _mean_analysis(table: pd.DataFrame) -> pd.DataFrame:
    s = table["score"]
    return pd.DataFrame({"term": ["mean"], "estimate": [s.mean()],
                         "se": [s.std(ddof=1) / math.sqrt(len(s))]})


def test_analyse_imputed_pools_with_rubins_rules():
    res = impute(_grid_table(), outcome="score", time="week", m=5, rng=3, burn_in=20,
                 thin=4)
    out = analyse_imputed(_mean_analysis, res, df_complete=14)
    q = np.array([t["score"].mean() for t in res])
    u = np.array([t["score"].var(ddof=1) / len(t) for t in res])
    total = u.mean() + (1 + 1 / 5) * q.var(ddof=1)
    assert out["estimate"].iloc[0] == pytest.approx(q.mean(), rel=1e-12)
    assert out["se"].iloc[0] == pytest.approx(math.sqrt(total), rel=1e-12)
    assert out["m"].iloc[0] == 5
    with pytest.raises(DataError, match="lacks a column"):
        analyse_imputed(lambda t: pd.DataFrame({"term": ["x"], "estimate": [1.0]}), res)
    with pytest.raises(DataError, match="at least two"):
        analyse_imputed(_mean_analysis, [res[0]])


def test_growth_analysis_wraps_multilevel_fit():
    bm = _load_benchmark()
    table, _ = bm.simulate(11, n_per_programme=6)
    res = impute(table, outcome="score", time="week", covariates=["age"], m=3, rng=4,
                 burn_in=50, thin=10)
    fn = growth_analysis("score ~ week + age + (1 | client)", term="week")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = fn(res[0])
        direct = fit("score ~ week + age + (1 | client)", res[0]).coefficients()
        per_imp = [fit("score ~ week + age + (1 | client)", t).coefficients().set_index(
            "term").loc["week"] for t in res]
        pooled = analyse_imputed(fn, res)
    assert list(rows.columns) == ["term", "estimate", "se", "df"]
    assert list(rows["term"]) == ["week"]
    assert rows["estimate"].iloc[0] == pytest.approx(
        direct.set_index("term").loc["week", "estimate"], rel=1e-10)
    q = np.array([r["estimate"] for r in per_imp])
    u = np.array([r["se"] ** 2 for r in per_imp])
    assert pooled["estimate"].iloc[0] == pytest.approx(q.mean(), rel=1e-8)
    assert pooled["se"].iloc[0] == pytest.approx(
        math.sqrt(u.mean() + (1 + 1 / 3) * q.var(ddof=1)), rel=1e-8)
    with pytest.raises(ModelError, match="no term"):
        growth_analysis("score ~ week + (1 | client)", term="weeks")(res[0])


# ------------------------------------------------------------------------------------
# tipping point


def _tipping_data():
    rows = []
    rng = np.random.default_rng(9)
    clients = []
    # name, programme, observed occasions, end reason, weeks in care
    plan = [("ps-a1", "A", (1, 2), "absconded", 12.0),   # misses t3 after leaving: shifted
            ("ps-a2", "A", (1, 3), "completed", 21.0),   # misses t2, not absconded
            ("ps-a3", "A", (1, 2, 3), "completed", 21.0),
            ("ps-a4", "A", (1, 3), "absconded", 25.0),   # misses t2 before leaving
            ("ps-b1", "B", (1,), "absconded", 5.0),      # misses t2, t3 after leaving: shifted
            ("ps-b2", "B", (1, 2, 3), "absconded", 22.0),  # nothing missing
            ("ps-b3", "B", (1, 2, 3), "transferred", 21.0),
            ("ps-b4", "B", (1, 2), "absconded", 15.0)]   # misses t3 after leaving: shifted
    for name, prog, occ, reason, weeks in plan:
        for k in occ:
            rows.append((prog, name, k, 10.0 * (k - 1), 1.6 + 0.1 * k + rng.normal(0, 0.6)))
        clients.append((prog, name, reason, weeks))
    table = pd.DataFrame(rows, columns=["programme", "client", "occasion", "week", "score"])
    cl = pd.DataFrame(clients, columns=["programme", "client", "end_reason", "weeks_in_care"])
    return table, cl


def _last_occasion_mean(table: pd.DataFrame) -> pd.DataFrame:
    last = table.loc[table["occasion"] == 3, "score"]
    return pd.DataFrame({"term": ["level"], "estimate": [last.mean()], "se": [0.2]})


def test_tipping_point_matches_hand_computation():
    table, clients = _tipping_data()
    m, seed = 6, 77
    deltas = np.round(np.arange(0.0, 8.01, 0.25), 10)
    res = tipping_point(table, clients, outcome="score", time="week", deltas=deltas,
                        analysis=_last_occasion_mean, term="level", m=m, rng=seed,
                        better="higher", burn_in=50, thin=5)
    assert isinstance(res, TippingPointResult)
    # By hand: same imputations (impute with the same seed), pooled with Rubin's rules.
    imp = impute(table, outcome="score", time="week", m=m, rng=seed, burn_in=50, thin=5)
    q = np.array([t.loc[t["occasion"] == 3, "score"].mean() for t in imp])
    b = q.var(ddof=1)
    total = 0.04 + (1 + 1 / m) * b
    r = (1 + 1 / m) * b / 0.04
    df = (m - 1) * (1 + 1 / r) ** 2
    half = stats.t.ppf(0.975, df) * math.sqrt(total)
    sd = table["score"].std(ddof=1)
    # Shifted cells: a1 t3, b1 t2, b1 t3, b4 t3; of these 3 are at the last occasion of 8.
    assert res.n_cells_shifted == 4 and res.n_clients_shifted == 3
    slope = -sd * 3 / 8  # better = higher: worse is lower
    expect = q.mean() + slope * res.table["delta"].to_numpy()
    np.testing.assert_allclose(res.table["estimate"], expect, rtol=1e-10)
    np.testing.assert_allclose(res.table["ci_upper"] - res.table["ci_lower"], 2 * half,
                               rtol=1e-9)
    assert res.outcome_sd == pytest.approx(sd, rel=1e-12)
    # Significantly positive under MAR; the lower bound reaches 0 at delta*.
    assert q.mean() - half > 0
    delta_star = (q.mean() - half) / (-slope)
    assert 0.25 < delta_star < 8.0
    assert res.tipping_crossing == pytest.approx(delta_star, rel=1e-9)
    assert res.tipping_delta == deltas[np.searchsorted(deltas, delta_star)]
    before = res.table.loc[res.table["delta"] < delta_star, "significant"]
    assert before.all() and not res.table.loc[
        res.table["delta"] == res.tipping_delta, "significant"].iloc[0]
    text = res.summary()
    assert "no longer statistically significant" in text and "ps-" not in text
    assert "<table" in res._repr_html_()
    assert list(res.to_frame().columns)[:3] == ["delta", "shift", "estimate"]


def test_tipping_point_direction_and_no_change():
    table, clients = _tipping_data()
    kw = dict(outcome="score", time="week", analysis=_last_occasion_mean, term="level",
              m=3, rng=5, burn_in=20, thin=3)
    up = tipping_point(table, clients, deltas=[1.0, 2.0], better="lower", **kw)
    assert up.sign == 1 and up.tipping_delta is None  # worse = higher: stays positive
    assert np.all(np.diff(up.table["estimate"]) > 0)
    assert "does not change" in up.summary()
    better = tipping_point(table, clients, deltas=[1.0], better="lower", direction="better",
                           **kw)
    assert better.sign == -1
    # `better` read from the table's column.
    t2 = table.assign(better="higher")
    res = tipping_point(t2, clients, deltas=[1.0], **kw)
    assert res.sign == -1
    assert res.table["delta"].tolist() == [0.0, 1.0]


def test_tipping_point_bad_input():
    table, clients = _tipping_data()
    kw = dict(outcome="score", time="week", analysis=_last_occasion_mean, term="level",
              m=2, rng=5, burn_in=5, thin=1, better="higher")
    with pytest.raises(DataError, match="no row in clients") as err:
        tipping_point(table, clients.iloc[1:], deltas=[1.0], **kw)
    assert "ps-a1" not in str(err.value)
    bad = clients.copy()
    bad.loc[0, "weeks_in_care"] = np.nan
    with pytest.raises(DataError) as err:
        tipping_point(table, bad, deltas=[1.0], **kw)
    assert err.value.column == "weeks_in_care" and err.value.row == 0
    with pytest.raises(SpecError):
        tipping_point(table, clients, deltas=[-1.0], **kw)
    with pytest.raises(SpecError):
        tipping_point(table, clients, deltas=[1.0], direction="sideways", **kw)
    with pytest.raises(DataError, match="no term"):
        tipping_point(table, clients, deltas=[1.0], **{**kw, "term": "slope"})


def test_tipping_point_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table, clients = _tipping_data()
    res = tipping_point(table, clients, outcome="score", time="week",
                        deltas=np.arange(0.5, 8.01, 0.5), analysis=_last_occasion_mean,
                        term="level", m=3, rng=2, better="higher", burn_in=20, thin=3)
    fig = res.plot(color="black")
    ax = fig.axes[0]
    assert res.tipping_delta is not None
    xs = [ln.get_xdata()[0] for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert xs == [res.tipping_delta]
    plt.close(fig)


# ------------------------------------------------------------------------------------
# simulation (short; benchmarks/missing_coverage.py runs 500 seeds)


def test_mar_coverage_short_simulation():
    bm = _load_benchmark()
    nsim = 40
    out = pd.DataFrame([bm.run_mar(s, n_per_programme=10, m=10, burn_in=200, thin=20)
                        for s in range(nsim)])
    k = int(out["covered"].sum())
    # Binomial(40, 0.95): P(X <= 33) ~ 0.05 %; a working method lands at 34 or above.
    assert k >= 34, f"coverage {k}/{nsim}"
    # Unbiased: the mean slope within 4 Monte Carlo SE of the truth.
    se_mc = out["estimate"].std(ddof=1) / math.sqrt(nsim)
    assert abs(out["estimate"].mean() - bm.TRUE_SLOPE) < 4 * se_mc
    # The pooled SE is about the spread of the estimates (neither too narrow nor wide).
    assert 0.7 < out["se"].mean() / out["estimate"].std(ddof=1) < 1.5
    assert out["missing"].mean() > 0.1  # the simulation does lose data


def test_mnar_tipping_point_short_simulation():
    bm = _load_benchmark()
    nsim, shift = 15, 6.0
    truth = bm.true_change(shift, n=20_000)
    deltas = np.round(np.arange(0.0, 2.01, 0.25), 10)
    out = pd.DataFrame([bm.run_mnar(s, truth=truth, shift=shift, n_per_programme=10, m=10,
                                    burn_in=200, thin=20, deltas=deltas)
                        for s in range(nsim)])
    # MAR imputation is biased under this MNAR mechanism (too much improvement) ...
    se_mar = out["mar_estimate"].std(ddof=1) / math.sqrt(nsim)
    assert out["mar_estimate"].mean() < truth - 4 * se_mar
    # ... the delta-adjusted analysis at the true delta is not ...
    se_adj = out["adjusted_estimate"].std(ddof=1) / math.sqrt(nsim)
    assert abs(out["adjusted_estimate"].mean() - truth) < 4 * se_adj
    # ... and its intervals bracket the truth (Binomial(15, 0.95): P(X <= 11) ~ 0.5 %).
    assert out["brackets"].sum() >= 12
