"""cluster_robust edge cases (issue 15) and its per-cluster computation (issue 16).

* A factor level without complete rows is dropped (R's ``lm`` drops it with the
  incomplete rows): the result must equal clubSandwich's values for the data
  without that level (``expected_cr2.csv``, growth_a C3), and say which level.
* The HTZ scaling ``delta = (eta - q + 1) / eta`` is clamped at 0 as clubSandwich's
  ``Hotelling_Tsq`` does. Here the expected ``eta`` comes from an independent dense
  implementation of Pustejovsky & Tipton (2018, eqs. 8-11) written in this file
  (N x N matrices, fine at N = 441), and the clamp is checked by construction;
  ``test_edge_cases_r.py`` checks the same clamp against clubSandwich's own values
  (stored as test data by ``benchmarks/r/multilevel_edge_cases.R``).
* A real :func:`effectstudy.multilevel.fit` with uncorrelated (``||``) terms: the
  per-cluster working covariance built from ``variance_components()`` gives the
  same CR2 result as the fit's full ``marginal_covariance()``.
* Memory: no N x N array (20,000 rows in 60 clusters).
"""

from __future__ import annotations

import re
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.multilevel import FewClustersWarning, fit
from effectstudy.multilevel.robust import cluster_robust, cr2_from_arrays
from refdata import REFERENCE

ML = REFERENCE / "multilevel"


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(ML / "data" / f"{name}.csv")


def _c3_rows() -> pd.DataFrame:
    ref = pd.read_csv(ML / "expected_cr2.csv", keep_default_na=False)
    return ref[(ref.dataset == "growth_a") & ref.model_id.str.startswith("C3")]


def _patsy(r_name: str) -> str:
    if r_name == "(Intercept)":
        return "Intercept"
    return re.sub(r"programme(P\d+)", r"programme[T.\1]", r_name)


def _check_against_c3(res) -> int:
    coefs = res.coefficients().set_index("term")
    column = {"estimate": "estimate", "se_CR2": "se", "df_satterthwaite_CR2": "df",
              "t_CR2": "statistic", "p_satterthwaite_CR2": "p_value"}
    wald = {"wald_HTZ_F": "F", "wald_HTZ_delta": "delta", "wald_HTZ_df_denom": "df_denom",
            "wald_HTZ_p": "p_value"}
    checked = 0
    for row in _c3_rows().itertuples():
        expected = float(row.value)
        if row.quantity == "vcov_CR2":
            a, b = row.term.split("|")
            ours = res.vcov.loc[_patsy(a), _patsy(b)]
        elif row.quantity in column:
            ours = coefs.loc[_patsy(row.term), column[row.quantity]]
        elif row.quantity in wald:
            terms = [_patsy(t) for t in re.search(r"\[(.*)=0\]", row.term).group(1).split(";")]
            ours = getattr(res.wald_test(terms), wald[row.quantity])
        else:
            continue
        assert ours == pytest.approx(expected, rel=1e-6, abs=0.0), (row.term, row.quantity)
        checked += 1
    return checked


def test_level_without_complete_rows_is_dropped_and_named():
    data = _data("growth_a")
    extra = data[data.programme == "P6"].head(4).assign(programme="P7", outcome=np.nan)
    res = cluster_robust("outcome ~ time * programme", pd.concat([data, extra]), cluster="client")
    assert _check_against_c3(res) > 100
    assert res.nobs == len(data)
    assert res.messages == ("factor 'programme': level(s) P7 without complete rows dropped",)
    assert res.warnings == res.messages


def test_unused_category_is_dropped():
    data = _data("growth_a")
    cats = ["P1", "P2", "P3", "P4", "P5", "P6", "P0"]
    data["programme"] = pd.Categorical(data["programme"], categories=cats)
    res = cluster_robust("outcome ~ time * programme", data, cluster="client")
    assert _check_against_c3(res) > 100
    assert "P0" in res.messages[0] and "P1" not in res.messages[0]


def test_dropped_levels_of_an_identifier_like_factor_are_counted_not_named():
    data = _data("growth_a")
    gone = data.client.unique()[:2]
    data.loc[data.client.isin(gone), "outcome"] = np.nan
    res = cluster_robust("outcome ~ time + client", data, cluster="programme")
    assert res.messages == ("factor 'client': 2 level(s) without complete rows dropped",)
    assert not any(str(c) in m for c in gone for m in res.messages)


def test_complete_data_gives_no_message():
    res = cluster_robust("outcome ~ time * programme", _data("growth_a"), cluster="client")
    assert res.messages == ()


# -- HTZ clamp ----------------------------------------------------------------------


def _dense_eta(X: np.ndarray, cluster: np.ndarray, C: np.ndarray) -> float:
    """HTZ eta for OLS from the definitions, with N x N matrices (Pustejovsky & Tipton 2018)."""
    N = X.shape[0]
    M = np.linalg.inv(X.T @ X)
    IH = np.eye(N) - X @ M @ X.T
    G = []
    for c in np.unique(cluster):
        ix = np.flatnonzero(cluster == c)
        vals, vecs = np.linalg.eigh(IH[np.ix_(ix, ix)])
        inv_sqrt = (vecs * np.where(vals > 1e-12, 1.0 / np.sqrt(np.abs(vals)), 0.0)) @ vecs.T
        G.append(C @ M @ X[ix].T @ inv_sqrt @ IH[ix])  # q x N
    omega = sum(g @ g.T for g in G)
    vals, vecs = np.linalg.eigh(omega)
    ons = (vecs / np.sqrt(vals)) @ vecs.T
    total = 0.0
    for gj in G:
        for gk in G:
            B = ons @ gj @ gk.T @ ons
            total += np.trace(B @ B) + np.trace(B) ** 2
    q = C.shape[0]
    return q * (q + 1) / total


def test_htz_scaling_clamped_at_zero():
    data = _data("growth_a")
    res = cluster_robust("outcome ~ time * fidelity + age", data, cluster="programme")
    terms = ["time", "fidelity", "age", "time:fidelity"]
    w = res.wald_test(terms)
    X = np.column_stack([np.ones(len(data)), data.time, data.fidelity, data.age,
                         data.time * data.fidelity])
    C = np.eye(5)[1:]
    eta = _dense_eta(X, data.programme.to_numpy(), C)
    assert w.eta == pytest.approx(eta, rel=1e-8)
    assert eta < len(terms) - 1  # (eta - q + 1) / eta < 0 before the clamp
    assert w.delta == 0.0
    assert w.F == 0.0
    assert w.df_denom == pytest.approx(eta - len(terms) + 1, rel=1e-8)
    assert np.isnan(w.p_value)


def test_htz_unclamped_case_matches_the_dense_definition():
    data = _data("growth_a")
    res = cluster_robust("outcome ~ time * fidelity + age", data, cluster="programme")
    w = res.wald_test(["fidelity", "time:fidelity"])
    X = np.column_stack([np.ones(len(data)), data.time, data.fidelity, data.age,
                         data.time * data.fidelity])
    eta = _dense_eta(X, data.programme.to_numpy(), np.eye(5)[[2, 4]])
    delta = (eta - 1.0) / eta
    assert delta > 0
    assert w.delta == pytest.approx(delta, rel=1e-8)
    assert w.F == pytest.approx(delta * w.Q / 2.0, rel=1e-12)
    assert w.p_value == pytest.approx(stats.f.sf(delta * w.Q / 2.0, 2, eta - 1.0), rel=1e-7)


# -- real mixed-model fits ------------------------------------------------------------


def test_uncorrelated_terms_blocks_equal_the_full_marginal_covariance():
    data = _data("threelevel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        m = fit("outcome ~ time * fidelity + (1 + time || programme) + (1 + time | client)", data)
    res = cluster_robust(m, cluster="programme")
    full = cr2_from_arrays(m.X, m.y, m.beta, m.data["programme"].to_numpy(),
                           V=m.marginal_covariance(), terms=m.fixed_names)
    assert res.model == "LMM"
    np.testing.assert_allclose(res.vcov.to_numpy(), full.vcov.to_numpy(), rtol=1e-9, atol=0)
    np.testing.assert_allclose(res.satterthwaite_df(), full.satterthwaite_df(), rtol=1e-9)
    # and the CR2 SEs differ from the model-based ones (the check is not vacuous)
    assert not np.allclose(res.se, np.sqrt(np.diag(m.vcov())), rtol=1e-3)


def test_cluster_splitting_a_programme_effect_is_rejected():
    from effectstudy.errors import ModelError

    data = _data("threelevel")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        m = fit("outcome ~ time + (1 | programme) + (1 | client)", data)
    with pytest.raises(ModelError, match="not nested"):
        cluster_robust(m, cluster="client")


# -- memory -------------------------------------------------------------------------


def test_no_n_by_n_array_at_20000_rows():
    rng = np.random.default_rng(16)
    N, m = 20_000, 60
    cl = rng.integers(0, m, N)
    X = np.column_stack([np.ones(N), rng.normal(size=N), rng.normal(size=N) + cl / m])
    y = X @ np.array([1.0, 0.5, -0.2]) + rng.normal(size=N) + rng.normal(size=m)[cl]
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    tracemalloc.start()
    try:
        res = cr2_from_arrays(X, y, beta, cl)
        res.coefficients()
        res.wald_test(["x1", "x2"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 50e6, peak  # one 20,000 x 20,000 array is 3.2 GB
    assert res.n_clusters == m
    assert np.all(res.satterthwaite_df() > 1.0)


def _dense_cr2(X, y, beta, cluster, V, c):
    """CR2 vcov and the Satterthwaite df of contrast ``c`` from the definitions (N x N)."""
    N = X.shape[0]
    W = np.zeros_like(V)
    labels = np.unique(cluster)
    rows = [np.flatnonzero(cluster == g) for g in labels]
    for ix in rows:
        W[np.ix_(ix, ix)] = np.linalg.inv(V[np.ix_(ix, ix)])
    M = np.linalg.inv(X.T @ W @ X)
    IH = np.eye(N) - X @ M @ X.T @ W
    meat = np.zeros_like(M)
    g = []
    for ix in rows:
        D = np.linalg.cholesky(V[np.ix_(ix, ix)]).T
        B = D @ (IH @ V @ IH.T)[np.ix_(ix, ix)] @ D.T
        vals, vecs = np.linalg.eigh(B)
        A = D.T @ ((vecs / np.sqrt(vals)) @ vecs.T) @ D
        u = X[ix].T @ W[np.ix_(ix, ix)] @ A @ (y - X @ beta)[ix]
        meat += np.outer(u, u)
        g.append(IH[ix].T @ A @ W[np.ix_(ix, ix)] @ X[ix] @ M @ c)
    P = np.array([[gj @ V @ gk for gk in g] for gj in g])
    return M @ meat @ M, np.trace(P) ** 2 / np.sum(P**2)


def test_large_block_diagonal_clusters_match_the_dense_definition():
    """Clusters of 160 rows whose working covariance is block-diagonal per client
    (the per-client path of the cluster computation) against the N x N definitions."""
    rng = np.random.default_rng(21)
    n_clients, k = 160, 4
    client = np.repeat(np.arange(n_clients), k)
    cluster = client % 4
    t = np.tile(np.arange(k) * 6.0, n_clients)
    X = np.column_stack([np.ones(t.size), t, rng.normal(size=n_clients)[client]])
    T = np.array([[30.0, -0.2], [-0.2, 0.02]])
    Z = np.column_stack([np.ones(t.size), t])
    V = (Z @ T @ Z.T) * (client[:, None] == client[None, :]) + 20.0 * np.eye(t.size)
    y = X @ np.array([50.0, -0.3, 1.0]) + rng.multivariate_normal(np.zeros(t.size), V)
    Vi = np.linalg.inv(V)
    beta = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    blocks = [V[np.ix_(np.flatnonzero(cluster == j), np.flatnonzero(cluster == j))]
              for j in range(4)]
    res = cr2_from_arrays(X, y, beta, cluster, V_blocks=blocks)
    vc, df = _dense_cr2(X, y, beta, cluster, V, np.array([0.0, 1.0, 0.0]))
    np.testing.assert_allclose(res.vcov.to_numpy(), vc, rtol=1e-8)
    assert res.satterthwaite_df()[1] == pytest.approx(df, rel=1e-8)


def test_mixed_formula_is_fitted_by_reml_and_matches_clubsandwich():
    """A formula with ``|`` goes through :func:`effectstudy.multilevel.fit` (C4, growth_a)."""
    ref = pd.read_csv(ML / "expected_cr2.csv", keep_default_na=False)
    rows = ref[(ref.dataset == "growth_a") & ref.model_id.str.startswith("C4")
               & (ref.quantity == "se_CR2")]
    res = cluster_robust("outcome ~ time * fidelity + age + (1 + time | client)",
                         _data("growth_a"), cluster="client")
    se = res.coefficients().set_index("term")["se"]
    assert res.model == "LMM" and len(rows) == 5
    for row in rows.itertuples():
        assert se[_patsy(row.term)] == pytest.approx(float(row.value), rel=1e-4)
