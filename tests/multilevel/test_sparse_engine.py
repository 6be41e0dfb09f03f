"""The block-sparse engine against dense textbook formulas, and the edge cases of ``fit``.

The dense checks build ``V = Z G Z' + sigma^2 I`` (n x n) from the data in the
test itself and differentiate the REML log-likelihood
``-2 l_R = log|V| + log|X'V^-1X| + r'V^-1 r + (n - p) log(2 pi)`` numerically,
so they share no code with the engine (Harville 1977; Bates et al. 2015).
"""

from __future__ import annotations

import ast
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError
from effectstudy.multilevel import ddf, lmm

SRC = Path(__file__).resolve().parents[2] / "src" / "effectstudy"


def _data(n_clients: int, occasions: int = 4, programmes: int = 3, seed: int = 7,
          crossed_rater: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clients), occasions)
    t = np.tile(np.arange(occasions, dtype=float), n_clients)
    pr = (np.arange(n_clients) % programmes)[cl]
    y = (5 + 0.4 * t + rng.normal(0, 1, n_clients)[cl] + rng.normal(0, 0.3, n_clients)[cl] * t
         + rng.normal(0, 0.6, programmes)[pr] + rng.normal(0, 1, len(cl)))
    d = pd.DataFrame({"y": y, "time": t, "client": [f"c{i:03d}" for i in cl],
                      "programme": [f"P{i}" for i in pr],
                      "age": rng.normal(15, 2, n_clients)[cl]})
    if crossed_rater:
        d["rater"] = [f"r{i}" for i in rng.integers(0, 4, len(d))]
        d["y"] += rng.normal(0, 0.5, 4)[rng.integers(0, 4, len(d))]
    return d


def _dense_pieces(d: pd.DataFrame, terms: list[tuple[str, list[str]]]):
    """Per-term indicator matrices Z_{t,i} (n x J) built directly from the data."""
    out = []
    for group, cols in terms:
        codes, _ = pd.factorize(d[group], sort=True)
        J = codes.max() + 1
        mats = []
        for c in cols:
            x = np.ones(len(d)) if c == "1" else d[c].to_numpy(float)
            Zc = np.zeros((len(d), J))
            Zc[np.arange(len(d)), codes] = x
            mats.append(Zc)
        out.append(mats)
    return out


def _lower_factors(theta, fams):
    """lme4's relative Cholesky factor T of each term, filled column by column from theta."""
    out = []
    pos = 0
    for mats in fams:
        k = len(mats)
        T = np.zeros((k, k))
        for j in range(k):
            for i in range(j, k):
                T[i, j] = theta[pos]
                pos += 1
        out.append(T)
    return out


def _dense_V(theta_sigma, fams, n):
    """Dense marginal covariance V = sigma^2 (I + sum_t Z_t T_t T_t' Z_t') built term by term."""
    th, s = theta_sigma[:-1], theta_sigma[-1]
    V = s**2 * np.eye(n)
    for mats, T in zip(fams, _lower_factors(th, fams), strict=True):
        G = s**2 * T @ T.T
        for a in range(len(mats)):
            for b in range(len(mats)):
                V += G[a, b] * mats[a] @ mats[b].T
    return V


def _dense_m2ll(theta_sigma, model, fams, X, y):
    """-2 REML log-likelihood from a dense V, parameterised as lme4 (theta, sigma)."""
    V = _dense_V(theta_sigma, fams, len(y))
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    beta = np.linalg.solve(XVX, X.T @ Vi @ y)
    r = y - X @ beta
    return (np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1] + r @ Vi @ r
            + (len(y) - X.shape[1]) * np.log(2 * np.pi))


CASES = [
    ("y ~ time + (1 + time | client)", [("client", ["1", "time"])], {}),
    ("y ~ time + age + (1 + time | client) + (1 | programme)",
     [("client", ["1", "time"]), ("programme", ["1"])], {}),
    ("y ~ time + (1 | client) + (1 | rater)", [("client", ["1"]), ("rater", ["1"])],
     {"crossed_rater": True}),
    ("y ~ time + (1 | client) + (0 + time | client) + (1 | programme)",
     [("client", ["1"]), ("client", ["time"]), ("programme", ["1"])], {}),
]


@pytest.mark.parametrize("formula, terms, kw", CASES)
def test_derivatives_match_dense_finite_differences(formula, terms, kw):
    d = _data(14, **kw)
    model = lmm.LinearMixedModel(formula, d)
    fams = _dense_pieces(d, terms)
    m = model.n_theta
    rng = np.random.default_rng(3)
    theta = np.where(np.isfinite(model.lower), rng.uniform(0.3, 1.2, m), rng.uniform(-0.3, 0.3, m))
    sigma = 1.3
    grad, hess = model.derivatives(theta, sigma, reml=True)
    x0 = np.r_[theta, sigma]
    h = 1e-4

    def f(x):
        return _dense_m2ll(x, model, fams, model.X, model.y)

    e = np.eye(m + 1)
    num_g = np.array([(f(x0 + h * e[i]) - f(x0 - h * e[i])) / (2 * h) for i in range(m + 1)])
    num_h = np.empty((m + 1, m + 1))
    for i in range(m + 1):
        for j in range(m + 1):
            num_h[i, j] = (f(x0 + h * e[i] + h * e[j]) - f(x0 + h * e[i] - h * e[j])
                           - f(x0 - h * e[i] + h * e[j]) + f(x0 - h * e[i] - h * e[j])) / (4 * h * h)
    assert grad == pytest.approx(num_g, rel=1e-6, abs=1e-6)
    assert hess == pytest.approx(num_h, rel=1e-4, abs=1e-4)
    # the profiled gradient used by the optimiser is the theta part at sigma_hat
    dev, g_prof = model.deviance_gradient(theta, reml=True)
    s_hat = np.sqrt(model.factor(theta).r2 / (model.n - model.p))
    g_full, _ = model.derivatives(theta, s_hat, reml=True, hessian=False)
    assert g_prof == pytest.approx(g_full[:m], rel=1e-9, abs=1e-9)
    assert dev == pytest.approx(_dense_m2ll(np.r_[theta, s_hat], model, fams, model.X, model.y),
                                rel=1e-10)


@pytest.mark.parametrize("formula, terms, kw", CASES)
def test_kenward_roger_terms_match_dense(formula, terms, kw):
    d = _data(12, **kw)
    model = lmm.LinearMixedModel(formula, d)
    fams = _dense_pieces(d, terms)
    theta = np.where(np.isfinite(model.lower), 0.8, 0.2)
    sigma = 0.9
    P, Q, K = model.kenward_roger_terms(theta, sigma)
    # dense G_r (pbkrtest get_SigmaG) and V
    G, gam = [], []
    for mats, T in zip(fams, _lower_factors(theta, fams), strict=True):
        k = len(mats)
        S = sigma**2 * T @ T.T
        for j in range(k):
            for i in range(j, k):
                A = mats[i] @ mats[j].T
                G.append(A if i == j else A + A.T)
                gam.append(S[i, j])
    G.append(np.eye(model.n))
    gam.append(sigma**2)
    V = sum(g * Gr for g, Gr in zip(gam, G, strict=True))
    Vi = np.linalg.inv(V)
    X = model.X
    for r, Gr in enumerate(G):
        assert P[r] == pytest.approx(-X.T @ Vi @ Gr @ Vi @ X, rel=1e-8, abs=1e-10)
        for s in range(r, len(G)):
            Qd = X.T @ Vi @ Gr @ Vi @ G[s] @ Vi @ X
            assert Q[(r, s)] == pytest.approx(Qd, rel=1e-8, abs=1e-10)
            assert K[r, s] == pytest.approx(np.trace(Vi @ Gr @ Vi @ G[s]), rel=1e-8)


def test_vcov_jacobian_matches_finite_differences():
    d = _data(15)
    model = lmm.LinearMixedModel("y ~ time + (1 + time | client) + (1 | programme)", d)
    fams = _dense_pieces(d, [("client", ["1", "time"]), ("programme", ["1"])])
    theta = np.array([0.9, 0.1, 0.4, 0.7])
    sigma = 1.1

    def C_of(x):
        V = _dense_V(x, fams, model.n)
        return np.linalg.inv(model.X.T @ np.linalg.solve(V, model.X))

    C, jac = model.vcov_jacobian(theta, sigma)
    x0 = np.r_[theta, sigma]
    assert C == pytest.approx(C_of(x0), rel=1e-9)
    h = 1e-6
    for i, J in enumerate(jac):
        e = np.zeros(len(x0))
        e[i] = h
        assert J == pytest.approx((C_of(x0 + e) - C_of(x0 - e)) / (2 * h), rel=1e-5, abs=1e-9)


# -- edge cases of fit ----------------------------------------------------------------
def _intake_only_programme() -> pd.DataFrame:
    d = _data(30, programmes=3, seed=11)
    # programme P2 has only intake scores (time 0): its time slope is not estimable
    return d[(d["programme"] != "P2") | (d["time"] == 0)].reset_index(drop=True)


def test_rank_deficient_fixed_effects_are_dropped_with_a_message():
    d = _intake_only_programme()
    res = lmm.fit("y ~ time * programme + (1 | client)", d)
    assert res.model.dropped_fixed == ["time:programme[T.P2]"]
    assert "time:programme[T.P2]" not in res.fixed_names
    msg = [m for m in res.messages if "rank deficient" in m]
    assert len(msg) == 1 and "dropping 1 column" in msg[0] and "time:programme[T.P2]" in msg[0]
    # the same model written without the aliased column: identical inference
    d2 = d.copy()
    d2["time_P1"] = d2["time"] * (d2["programme"] == "P1")
    ref = lmm.fit("y ~ time + programme + time_P1 + (1 | client)", d2)
    assert res.loglik == pytest.approx(ref.loglik, rel=1e-10)
    for method in ("satterthwaite", "kenward-roger"):
        a = res.coefficients(method).set_index("term")
        b = ref.coefficients(method).set_index("term").rename(
            index={"time_P1": "time:programme[T.P1]"})
        b = b.loc[a.index]
        for col in ("estimate", "se", "df", "p_value"):
            assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), rel=1e-6), (method, col)
    # type-III tests leave the dropped column out and stay finite
    tab = res.anova()
    assert np.all(np.isfinite(tab["F"])) and set(tab["term"]) >= {"time", "programme"}


def test_constant_outcome_raises_data_error_without_identifiers():
    d = _data(10)
    d["y"] = 3.0
    with pytest.raises(DataError) as err:
        lmm.fit("y ~ time + (1 | client)", d)
    assert err.value.column == "y"
    assert "constant" in str(err.value)
    assert "c00" not in str(err.value)


def test_boundary_fit_is_reported_singular():
    d = _data(20, seed=5)
    d["y"] = d["y"] - d.groupby("programme")["y"].transform("mean")  # no programme variance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.FewClustersWarning)
        res = lmm.fit("y ~ time + (1 | client) + (1 | programme)", d)
    assert res.is_singular
    assert res.messages[0] == lmm.SINGULAR_MESSAGE


# -- structure --------------------------------------------------------------------------
def _imports(path: Path) -> list[tuple[str, list[str]]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = "effectstudy." + mod if mod else "effectstudy"
            out.append((mod, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
    return out


MINE = ["_engine", "_sparse_algebra", "fitting", "results", "anova", "icc", "lmm", "ddf",
        "common", "summaries", "trends"]


def test_ddf_imports_no_engine_and_no_private_names_cross_modules():
    ddf_imports = {m for m, _ in _imports(SRC / "multilevel" / "ddf.py")}
    assert not any(m.startswith("effectstudy.multilevel") for m in ddf_imports), ddf_imports
    for name in MINE:
        for mod, names in _imports(SRC / "multilevel" / f"{name}.py"):
            if mod.startswith("effectstudy"):
                private = [n for n in names if n.startswith("_")]
                assert not private, (name, mod, private)


def test_one_ddf_methods_constant():
    from effectstudy.power import growth

    assert growth.DDF_METHODS is ddf.DDF_METHODS
    assert lmm.DDF_METHODS is ddf.DDF_METHODS
    assert ddf.ddf_method("KR") == "kenward-roger"
    with pytest.raises(ValueError, match="unknown ddf"):
        ddf.ddf_method("wald")


def test_old_import_path_still_works():
    from effectstudy.multilevel.lmm import (  # noqa: F401
        FewClustersWarning,
        IccResult,
        LinearMixedModel,
        LRTResult,
        MixedModelResults,
        compare,
        fit,
        icc,
        kr_modcomp,
    )

    assert lmm.fit is fit


def test_no_module_over_800_lines():
    for name in MINE:
        n = len((SRC / "multilevel" / f"{name}.py").read_text(encoding="utf-8").splitlines())
        assert n <= 800, (name, n)
