"""The two factorisations of the mixed-model engine give the same fit.

* ``"dense"``: the deviance and its gradient from the cross-products ``Z'Z``,
  ``Z'X``, ``Z'y`` (numpy, batched per level), for few random-effect columns
  outside the largest grouping factor (e.g. programmes);
* ``"sparse-lu"``: a sparse Schur complement factored by SuperLU, for crossed
  designs with many (derivatives by central differences).

Checked against a brute-force ``n x n`` computation of the REML/ML criterion
on small data, against lme4 (reference values) with the sparse path forced, and
against each other on a crossed clients x raters design.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from effectstudy.errors import ModelError
from effectstudy.multilevel import _engine
from effectstudy.multilevel.fitting import LinearMixedModel
from refdata import REFERENCE

REF = REFERENCE / "multilevel"


def crossed_data(n_clients: int, n_raters: int, per_client: int = 5, teams: int = 25,
                 seed: int = 3) -> pd.DataFrame:
    """Synthetic clients rated by staff of their own team (no real client): client and
    rater are crossed factors; intercept 10, time slope 0.3, SDs 1 / 0.5 / 1."""
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clients), per_client)
    team = (np.arange(n_clients) % teams)[cl]
    size = n_raters // teams
    rater = team * size + rng.integers(0, size, len(cl))
    t = np.tile(np.arange(per_client, dtype=float), n_clients)
    y = (10 + 0.3 * t + rng.normal(0, 1, n_clients)[cl] + rng.normal(0, 0.5, n_raters)[rater]
         + rng.normal(0, 1, len(cl)))
    return pd.DataFrame({"y": y, "time": t, "client": [f"c{i}" for i in cl],
                         "rater": [f"r{i}" for i in rater]})


def brute_force_deviance(m: LinearMixedModel, theta: np.ndarray, reml: bool) -> float:
    """The profiled criterion from ``V0 = Z Lambda Lambda'Z' + I`` as an ``n x n`` matrix
    (Bates et al. 2015, eqs. 34 and 41 with ``|L|^2 = |V0|``, ``R_X'R_X = X'V0^-1 X``)."""
    B = (m.Z @ m.lam_sparse(theta)).toarray()
    V0 = B @ B.T + np.eye(m.n)
    Vi = np.linalg.inv(V0)
    XtViX = m.X.T @ Vi @ m.X
    beta = np.linalg.solve(XtViX, m.X.T @ Vi @ m.y)
    r = m.y - m.X @ beta
    r2 = float(r @ Vi @ r)
    ld = np.linalg.slogdet(V0)[1]
    if reml:
        nmp = m.n - m.p
        return ld + np.linalg.slogdet(XtViX)[1] + nmp * (1 + np.log(2 * np.pi * r2 / nmp))
    return ld + m.n * (1 + np.log(2 * np.pi * r2 / m.n))


def _random_theta(m: LinearMixedModel, rng: np.random.Generator) -> np.ndarray:
    diag = np.isfinite(m.lower)
    return np.where(diag, rng.uniform(0.2, 1.5, m.n_theta), rng.normal(0, 0.3, m.n_theta))


@pytest.mark.parametrize("formula", [
    "y ~ time + (1 + time | client)",
    "y ~ time + (1 | client) + (1 | rater)",
    "y ~ time + (1 + time | client) + (1 | rater)",
])
def test_dense_deviance_and_gradient_equal_the_brute_force_criterion(formula):
    d = crossed_data(40, 50, per_client=4, teams=5)
    m = LinearMixedModel(formula, d)
    assert m.path == "dense"
    rng = np.random.default_rng(11)
    for _ in range(3):
        theta = _random_theta(m, rng)
        for reml in (True, False):
            dev, grad = m.deviance_gradient(theta, reml)
            assert dev == pytest.approx(brute_force_deviance(m, theta, reml), rel=1e-10)
            assert m.deviance(theta, reml) == dev
            num = optimize.approx_fprime(theta, lambda th, r=reml: brute_force_deviance(m, th, r),
                                         1e-6)
            np.testing.assert_allclose(grad, num, rtol=1e-4, atol=1e-3)


def _forced_sparse(monkeypatch, formula: str, data: pd.DataFrame) -> LinearMixedModel:
    monkeypatch.setattr(_engine, "MAX_SCHUR", 0)
    m = LinearMixedModel(formula, data)
    monkeypatch.undo()
    assert m.path == "sparse-lu"
    return m


def test_sparse_lu_factor_equals_the_dense_factor(monkeypatch):
    d = crossed_data(60, 75, per_client=4, teams=5)
    formula = "y ~ time + (1 + time | client) + (1 | rater)"
    dense = LinearMixedModel(formula, d)
    lu = _forced_sparse(monkeypatch, formula, d)
    rng = np.random.default_rng(5)
    for _ in range(3):
        theta = _random_theta(dense, rng)
        a, b = dense.factor(theta), lu.factor(theta)
        assert b.ldL2 == pytest.approx(a.ldL2, rel=1e-11)
        assert b.r2 == pytest.approx(a.r2, rel=1e-11)
        np.testing.assert_allclose(b.beta, a.beta, rtol=1e-10)
        v = rng.normal(size=(dense.q, 2))
        np.testing.assert_allclose(b.solve(v), a.solve(v), rtol=1e-9, atol=1e-12)
        # numerical derivatives of the sparse path against the analytic ones
        ga, ha = dense.derivatives(theta, 1.1, True)
        gb, hb = lu.derivatives(theta, 1.1, True)
        np.testing.assert_allclose(gb, ga, rtol=1e-6, atol=1e-4)
        np.testing.assert_allclose(hb, ha, rtol=1e-4, atol=1e-3)


def _lmer_rows(model_id: str, estimation: str) -> pd.DataFrame:
    ref = pd.read_csv(REF / "expected_lmer.csv")
    return ref[(ref.dataset == "threelevel") & (ref.model_id == model_id)
               & (ref.estimation == estimation) & (ref.package == "lme4+lmerTest+pbkrtest")]


def test_sparse_lu_path_reproduces_lme4_on_the_three_level_reference(monkeypatch):
    """lme4 / lmerTest values of the three-level fidelity model, fitted with the
    programme level on the sparse (SuperLU) path."""
    rows = _lmer_rows("M2_threelevel_fidelity", "REML")
    formula = rows["formula"].iloc[0]
    data = pd.read_csv(REF / "data" / "threelevel.csv")
    m = _forced_sparse(monkeypatch, formula, data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = m.fit()
    tab = res.coefficients("satterthwaite").set_index("term")
    num = rows[rows["term"].notna()]
    get = num.set_index(["term", "quantity"])["value"].astype(float)
    names = {"(Intercept)": "Intercept"}
    for term in ["(Intercept)", "time", "fidelity", "age", "time:fidelity"]:
        ours = tab.loc[names.get(term, term)]
        assert ours["estimate"] == pytest.approx(get[(term, "estimate")], rel=1e-5, abs=1e-8)
        assert ours["se"] == pytest.approx(get[(term, "se")], rel=1e-5)
        assert ours["df"] == pytest.approx(get[(term, "df_satterthwaite")], rel=1e-4)
    assert res.sigma == pytest.approx(get[("Residual", "sd")], rel=1e-5)
    assert res.loglik == pytest.approx(float(rows[rows.quantity == "logLik_REML"]["value"]
                                             .iloc[0]), abs=1e-6)
    theta_ref = [get[(nm, "theta")] for nm in res.theta_names]
    np.testing.assert_allclose(res.theta, theta_ref, rtol=1e-4, atol=1e-5)


def test_crossed_design_fits_the_same_on_both_paths(monkeypatch):
    d = crossed_data(300, 200)
    formula = "y ~ time + (1 | client) + (1 | rater)"
    dense = LinearMixedModel(formula, d)
    assert dense.path == "dense" and dense.q - dense.q1 == 200
    lu = _forced_sparse(monkeypatch, formula, d)
    for reml in (False, True):
        a, b = dense.fit(reml=reml), lu.fit(reml=reml)
        assert a.messages == [] and b.messages == []
        np.testing.assert_allclose(b.theta, a.theta, rtol=1e-6)
        np.testing.assert_allclose(b.beta, a.beta, rtol=1e-6)
        assert b.sigma == pytest.approx(a.sigma, rel=1e-6)
        assert b.loglik == pytest.approx(a.loglik, rel=1e-10)
        ta, tb = a.coefficients("satterthwaite"), b.coefficients("satterthwaite")
        np.testing.assert_allclose(tb["se"], ta["se"], rtol=1e-6)
        np.testing.assert_allclose(tb["df"], ta["df"], rtol=1e-4)
        ra, rb = a.random_effects(), b.random_effects()
        np.testing.assert_allclose(rb["(Intercept)"], ra["(Intercept)"], rtol=1e-5, atol=1e-7)
    # what needs the inverse of the Schur complement says so on the sparse path (REML fit)
    with pytest.raises(ModelError, match="Schur complement"):
        b.coefficients("kenward-roger")
    with pytest.raises(ModelError, match="Schur complement"):
        b.conditional_variances()


def test_more_than_max_schur_columns_take_the_sparse_path():
    d = crossed_data(3100, 3200, per_client=4, teams=64)
    m = LinearMixedModel("y ~ time + (1 | client) + (1 | rater)", d)
    assert m.q - m.q1 > _engine.MAX_SCHUR
    assert m.path == "sparse-lu"
    assert np.isfinite(m.deviance(m.theta_start()))


def test_the_switch_between_the_paths():
    formula = "y ~ time + (1 | client) + (1 | rater)"
    # 500 raters next to 600 clients: the dense Schur complement would cost
    # 600 * 500^2 = 1.5e8 flops per evaluation
    m = LinearMixedModel(formula, crossed_data(600, 500, teams=5))
    assert _engine.DENSE_Q2 < m.q - m.q1 <= _engine.MAX_SCHUR
    assert m.q1 * (m.q - m.q1) ** 2 > _engine.DENSE_WORK
    assert m.path == "sparse-lu"
    # a few hundred raters with few clients, or a programme level, stay dense
    assert LinearMixedModel(formula, crossed_data(60, 250, per_client=8, teams=1)).path == "dense"
    assert LinearMixedModel(formula, crossed_data(3000, 20, teams=1)).path == "dense"
