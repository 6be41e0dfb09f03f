"""CR2 with a low-rank mixed-model working covariance (issue 16) against the exact path.

A cluster whose working covariance is ``sigma^2 I + F F'`` is reduced to a
``(p + r)``-dimensional problem (:func:`effectstudy.multilevel.cr2_core.project_lowrank`);
the reduction is exact, so every CR2 piece (covariance, ``S_j``, ``U_j``, ``M``,
Satterthwaite and HTZ df) must agree with the dense ``n_j x n_j`` path to 1e-8, on
the reference fits (clubSandwich cases C4/C5) and on random designs.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel import fit
from effectstudy.multilevel.cr2_core import (
    LowRankCovariance,
    _independent_parts,
    cr2_core,
    project_lowrank,
)
from effectstudy.multilevel.robust import (
    _cluster_codes,
    _cluster_rows,
    _fit_blocks,
    cr2_from_arrays,
)
from refdata import REFERENCE

ML = REFERENCE / "multilevel"
RTOL = 1e-8


def _close(a: np.ndarray, b: np.ndarray, rtol: float = RTOL) -> None:
    """Agreement relative to the largest entry (entries near 0 are compared on that scale)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    scale = float(np.max(np.abs(b)))
    assert scale > 0
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def _compare(X, y, beta, idx, blocks, contrasts) -> None:
    """All CR2 pieces of the low-rank path against the exact (dense) path."""
    vc_e, pc_e = cr2_core(X, y, beta, idx, blocks, method="exact")
    vc_l, pc_l = cr2_core(X, y, beta, idx, blocks, method="lowrank")
    vc_a, _ = cr2_core(X, y, beta, idx, blocks, method="auto")
    _close(vc_l, vc_e)
    _close(vc_a, vc_e)
    _close(pc_l.M, pc_e.M)
    _close(pc_l.U, pc_e.U)
    _close(pc_l.S, pc_e.S)
    for C in contrasts:
        assert pc_l.eta(C) == pytest.approx(pc_e.eta(C), rel=RTOL)


# -- the reference fits (clubSandwich C4: client clusters, C5: programme clusters) ------


@cache
def _reference_fit(dataset: str):
    data = pd.read_csv(ML / "data" / f"{dataset}.csv")
    if dataset == "sleepstudy":
        return fit("Reaction ~ Days + (1 + Days | Subject)", data)
    return fit("outcome ~ time * fidelity + age + (1 + time | client)", data)


CASES = [
    ("growth_a", "client"),
    ("growth_a", "programme"),
    ("threelevel", "client"),
    ("threelevel", "programme"),
    ("dense_ar1", "programme"),
    ("sleepstudy", "Subject"),
]


@pytest.mark.parametrize(("dataset", "cluster"), CASES)
def test_reference_fits_lowrank_equals_exact(dataset, cluster):
    m = _reference_fit(dataset)
    codes, k = _cluster_codes(m.data[cluster].to_numpy(dtype=object), m.X.shape[0], cluster)
    idx = _cluster_rows(codes, k)
    blocks = _fit_blocks(m, idx, codes)
    assert all(isinstance(b, LowRankCovariance) for b in blocks)
    X, y, beta = np.asarray(m.X), np.asarray(m.y).ravel(), np.asarray(m.beta)
    p = X.shape[1]
    contrasts = [np.eye(p)[[s]] for s in range(p)] + [np.eye(p)[1:]]
    _compare(X, y, beta, idx, blocks, contrasts)
    # the blocks are the fit's marginal covariance (not a vacuous comparison)
    V = m.marginal_covariance()
    for ix, b in zip(idx, blocks, strict=True):
        _close(b.dense(), V[np.ix_(ix, ix)], rtol=1e-12)


def test_programme_clusters_reduced_problem_matches_clubsandwich():
    """C5 (growth_a, clusters = programmes) through the reduced problem: smaller than
    the cluster, one QR per client, and the SEs agree with clubSandwich 0.5.8."""
    m = _reference_fit("growth_a")
    codes, k = _cluster_codes(m.data["programme"].to_numpy(dtype=object), m.X.shape[0], "x")
    idx = _cluster_rows(codes, k)
    blocks = _fit_blocks(m, idx, codes)
    X, y, beta = np.asarray(m.X), np.asarray(m.y).ravel(), np.asarray(m.beta)
    e = y - X @ beta
    largest = int(np.argmax([ix.size for ix in idx]))
    Ps, Xs, es = project_lowrank(blocks[largest], X[idx[largest]], e[idx[largest]])
    assert _independent_parts(blocks[largest].F) is not None  # one QR per client
    assert Ps.shape[0] < 0.75 * idx[largest].size and Xs.shape == (Ps.shape[0], 5)
    assert es.shape == (Ps.shape[0],)
    vc, _ = cr2_core(X, y, beta, idx, blocks, method="lowrank")
    se = dict(zip(m.fixed_names, np.sqrt(np.diag(vc)), strict=True))
    ref = pd.read_csv(ML / "expected_cr2.csv", keep_default_na=False)
    rows = ref[(ref.dataset == "growth_a") & ref.model_id.str.startswith("C5")
               & (ref.quantity == "se_CR2")]
    assert len(rows) == 5
    for row in rows.itertuples():
        name = "Intercept" if row.term == "(Intercept)" else row.term
        assert se[name] == pytest.approx(float(row.value), rel=1e-4)


# -- random designs ------------------------------------------------------------------


def _nested_design(seed: int, n_clusters: int, clients: int, k: int, slope_var: float,
                   cluster_intercept: bool = True):
    """Clients nested in clusters, random intercept + slope per client and (optionally)
    a random cluster intercept; a cluster-level covariate (so [X, F] is rank deficient).
    Without the cluster intercept ``F`` falls apart into one block per client."""
    rng = np.random.default_rng(seed)
    n_cl = n_clusters * clients
    client = np.repeat(np.arange(n_cl), k)
    cluster = client % n_clusters
    keep = rng.random(client.size) > 0.2  # dropout: unequal cluster and client sizes
    client, cluster = client[keep], cluster[keep]
    t = np.tile(np.arange(k) * 4.0, n_cl)[keep]
    g = rng.normal(size=n_clusters)[cluster]  # cluster-level covariate
    X = np.column_stack([np.ones(t.size), t, g, t * g, rng.normal(size=t.size)])
    T = np.array([[20.0, -0.1], [-0.1, slope_var]])
    idx = [np.flatnonzero(cluster == j) for j in range(n_clusters)]
    blocks, Vs = [], []
    y = X @ np.array([40.0, -0.5, 2.0, 0.1, 0.4])
    for ix in idx:
        _, inv = np.unique(client[ix], return_inverse=True)
        nc = int(inv.max()) + 1
        Z = np.zeros((ix.size, 2 * nc + 1))
        Z[np.arange(ix.size), 2 * inv] = 1.0
        Z[np.arange(ix.size), 2 * inv + 1] = t[ix]
        Z[:, -1] = 1.0  # cluster intercept
        Tj = np.zeros((2 * nc + 1, 2 * nc + 1))
        Tj[: 2 * nc, : 2 * nc] = np.kron(np.eye(nc), T)
        Tj[-1, -1] = 3.0 if cluster_intercept else 0.0
        b = LowRankCovariance.from_components(9.0, Z, Tj)
        blocks.append(b)
        Vs.append(b.dense())
        y[ix] += rng.multivariate_normal(np.zeros(ix.size), Vs[-1])
    XtWX = sum(X[ix].T @ np.linalg.solve(V, X[ix]) for ix, V in zip(idx, Vs, strict=True))
    XtWy = sum(X[ix].T @ np.linalg.solve(V, y[ix]) for ix, V in zip(idx, Vs, strict=True))
    beta = np.linalg.solve(XtWX, XtWy)
    return X, y, beta, idx, blocks, cluster


@pytest.mark.parametrize("cluster_intercept", [True, False])
@pytest.mark.parametrize(
    ("seed", "n_clusters", "clients", "k", "slope_var"),
    [
        (1, 6, 12, 6, 0.05),  # p + r well below n_j: the reduction pays
        (2, 8, 3, 4, 0.05),  # p + r above n_j: the projection is a full rotation
        (3, 5, 20, 5, 0.0),  # zero slope variance: T singular, r drops
        (4, 12, 1, 9, 0.3),  # one client per cluster
    ],
)
def test_random_designs_lowrank_equals_exact(seed, n_clusters, clients, k, slope_var,
                                             cluster_intercept):
    X, y, beta, idx, blocks, cluster = _nested_design(seed, n_clusters, clients, k, slope_var,
                                                      cluster_intercept)
    if not cluster_intercept and clients >= 3:  # the per-client basis is taken
        assert all(_independent_parts(b.F) is not None for b in blocks)
    p = X.shape[1]
    contrasts = [np.eye(p)[[s]] for s in range(p)] + [np.eye(p)[[2, 3]], np.eye(p)[1:]]
    _compare(X, y, beta, idx, blocks, contrasts)
    # the working model matters: CR2 under the mixed model differs from the OLS one
    vc_ols, _ = cr2_core(X, y, beta, idx, None)
    vc_lmm, _ = cr2_core(X, y, beta, idx, blocks)
    assert not np.allclose(vc_lmm, vc_ols, rtol=1e-3)


def test_zero_slope_variance_gives_a_smaller_factor():
    Z = np.column_stack([np.ones(6), np.arange(6.0)])
    b = LowRankCovariance.from_components(2.0, Z, np.array([[4.0, 0.0], [0.0, 0.0]]))
    assert b.rank == 1
    np.testing.assert_allclose(b.dense(), 2.0 * np.eye(6) + 4.0 * np.ones((6, 6)), rtol=1e-14)


@pytest.mark.parametrize("cluster_intercept", [True, False])
def test_programme_dummies_with_programme_clusters_match_exact(cluster_intercept):
    """Cluster-specific columns make ``I - H_jj`` singular: both paths zero the same
    eigenvalues of ``B_j``."""
    X, y, beta, idx, blocks, cluster = _nested_design(5, 4, 10, 5, 0.05, cluster_intercept)
    dummies = (cluster[:, None] == np.arange(1, 4)[None, :]).astype(float)
    X = np.column_stack([X[:, [0, 1, 4]], dummies])
    V = [b.dense() for b in blocks]
    XtWX = sum(X[ix].T @ np.linalg.solve(v, X[ix]) for ix, v in zip(idx, V, strict=True))
    XtWy = sum(X[ix].T @ np.linalg.solve(v, y[ix]) for ix, v in zip(idx, V, strict=True))
    beta = np.linalg.solve(XtWX, XtWy)
    _compare(X, y, beta, idx, blocks, [np.eye(6)[[1]], np.eye(6)[[2]]])


def test_cr2_from_arrays_takes_lowrank_blocks():
    X, y, beta, idx, blocks, cluster = _nested_design(6, 6, 10, 5, 0.05)
    low = cr2_from_arrays(X, y, beta, cluster, V_blocks=blocks)
    dense = cr2_from_arrays(X, y, beta, cluster, V_blocks=[b.dense() for b in blocks])
    _close(low.vcov.to_numpy(), dense.vcov.to_numpy())
    np.testing.assert_allclose(low.satterthwaite_df(), dense.satterthwaite_df(), rtol=RTOL)
    w_low, w_dense = low.wald_test(["x2", "x3"]), dense.wald_test(["x2", "x3"])
    assert w_low.F == pytest.approx(w_dense.F, rel=RTOL)
    assert w_low.df_denom == pytest.approx(w_dense.df_denom, rel=RTOL)


# -- errors --------------------------------------------------------------------------


def test_lowrank_block_errors():
    with pytest.raises(ModelError, match="positive residual variance"):
        LowRankCovariance(0.0, np.ones((3, 1)))
    with pytest.raises(ModelError, match="finite 2-D"):
        LowRankCovariance(1.0, np.array([1.0, np.nan]))
    with pytest.raises(ModelError, match="do not conform"):
        LowRankCovariance.from_components(1.0, np.ones((3, 2)), np.eye(3))
    X, y, beta, idx, blocks, cluster = _nested_design(7, 3, 4, 4, 0.05)
    wrong = [LowRankCovariance(1.0, np.ones((ix.size + 1, 1))) for ix in idx]
    with pytest.raises(DataError, match="one n_j x n_j block per cluster"):
        cr2_from_arrays(X, y, beta, cluster, V_blocks=wrong)
    with pytest.raises(ModelError, match="method must be"):
        cr2_core(X, y, beta, idx, blocks, method="fast")
