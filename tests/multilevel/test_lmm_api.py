"""API behaviour of effectstudy.multilevel.lmm: errors, singular fits, warnings, accessors."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import ModelError
from effectstudy.multilevel import lmm
from effectstudy.multilevel.formula import RandomTerm, parse_formula

try:
    from refdata import REFERENCE
except ImportError:  # pragma: no cover
    REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

DATA = REFERENCE / "multilevel" / "data"


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(DATA / "sleepstudy.csv")


@pytest.fixture(scope="module")
def growth() -> pd.DataFrame:
    return pd.read_csv(DATA / "growth_a.csv")


@pytest.fixture(scope="module")
def sleep_fit(sleep):
    return lmm.fit("Reaction ~ Days + (1 + Days | Subject)", sleep)


# -- formula parsing -----------------------------------------------------------
def test_parse_formula_terms():
    p = parse_formula("y ~ a * b + (1 | g) + (1 + t || h) + (1 | p/c)")
    assert p.response == "y"
    assert p.fixed == "a * b"
    assert p.random == [RandomTerm("1", "g"), RandomTerm("1", "h"), RandomTerm("0 + t", "h"),
                        RandomTerm("1", "p"), RandomTerm("1", "p:c")]


@pytest.mark.parametrize("formula", [
    "y ~ x + (1 | g",           # unbalanced
    "y x + (1 | g)",            # no tilde
    "~ x + (1 | g)",            # no response
    "y ~ x + 1 | g",            # bar outside parentheses
    "y ~ x + ( | g)",           # empty random expression
    "y ~ x",                    # no random term
])
def test_bad_formula_raises_model_error(formula, sleep):
    with pytest.raises(ModelError):
        lmm.fit(formula, sleep.rename(columns={"Reaction": "y", "Days": "x", "Subject": "g"}))


def test_unknown_column_raises_model_error(sleep):
    with pytest.raises(ModelError):
        lmm.fit("Reaction ~ Dayz + (1 | Subject)", sleep)
    with pytest.raises(ModelError):
        lmm.fit("Reaction ~ Days + (1 | Subjekt)", sleep)
    with pytest.raises(ModelError):
        lmm.fit("Reactie ~ Days + (1 | Subject)", sleep)


def test_unknown_ddf_raises(sleep_fit):
    with pytest.raises(ModelError):
        sleep_fit.coefficients(ddf="containment")


# -- singular fits and warnings -------------------------------------------------
def test_singular_fit_is_flagged():
    # every group has the same values in another order: group means are equal,
    # so the REML estimate of the group variance is exactly on the boundary
    rng = np.random.default_rng(1)
    base = np.array([3.0, 5.0, 4.0, 8.0, 6.0])
    rows = [(f"g{j}", v) for j in range(8) for v in rng.permutation(base)]
    data = pd.DataFrame(rows, columns=["g", "y"])
    res = lmm.fit("y ~ 1 + (1 | g)", data)
    assert res.is_singular
    assert any("singular" in m for m in res.messages)
    vc = res.variance_components().set_index("component")
    assert vc.loc["g:(Intercept)", "estimate"] < 1e-4


def test_not_singular(sleep_fit):
    assert not sleep_fit.is_singular
    assert sleep_fit.messages == []


def test_few_programmes_warns(growth):
    with pytest.warns(lmm.FewClustersWarning, match="fixed effects"):
        res = lmm.fit("outcome ~ time + (1 | programme) + (1 | client)", growth)
    assert issubclass(lmm.FewClustersWarning, UserWarning)
    assert any("programme" in w for w in res.warnings)


def test_no_warning_with_many_groups(sleep):
    with warnings.catch_warnings():
        warnings.simplefilter("error", lmm.FewClustersWarning)
        lmm.fit("Reaction ~ Days + (1 | Subject)", sleep)


# -- accessors used by other modules (CR2) ---------------------------------------
def test_accessors(sleep_fit, sleep):
    f = sleep_fit
    n, p = f.X.shape
    assert (n, p) == (180, 2) and len(f.y) == n and len(f.data) == n
    assert f.fixed_names == ["Intercept", "Days"]
    V = f.marginal_covariance()
    assert V.shape == (n, n)
    np.testing.assert_allclose(V, V.T)
    C = np.linalg.inv(f.X.T @ np.linalg.solve(V, f.X))
    np.testing.assert_allclose(f.vcov(), C, rtol=1e-8)
    beta = C @ f.X.T @ np.linalg.solve(V, f.y)
    np.testing.assert_allclose(f.beta, beta, rtol=1e-8)
    assert f.n_groups == {"Subject": 18}
    assert f.nobs == 180


def test_rows_with_missing_values_are_dropped(sleep):
    d = sleep.copy()
    d.loc[[0, 5], "Reaction"] = np.nan
    res = lmm.fit("Reaction ~ Days + (1 | Subject)", d)
    assert res.nobs == 178 and len(res.data) == 178 and res.X.shape[0] == 178


def test_tables(sleep_fit):
    tab = sleep_fit.coefficients("satterthwaite")
    assert list(tab.columns) == ["term", "estimate", "se", "df", "statistic", "p_value",
                                 "ci_lower", "ci_upper"]
    kr = sleep_fit.coefficients("kenward-roger")
    res = sleep_fit.coefficients("residual")
    assert (res["df"] == 178).all()
    assert (kr["se"] >= res["se"] - 1e-12).all()
    vc = sleep_fit.variance_components()
    assert set(vc["kind"]) == {"sd", "cor"}
    assert "Subject:(Intercept),Days" in set(vc["component"])
    html = sleep_fit._repr_html_()
    assert "<table" in html


def test_contrast_and_anova_agree_for_one_df(sleep_fit):
    c = sleep_fit.contrast(["Days"], ddf="satterthwaite").iloc[0]
    t = sleep_fit.coefficients("satterthwaite").set_index("term").loc["Days"]
    assert c["F"] == pytest.approx(t["statistic"] ** 2)
    assert c["den_df"] == pytest.approx(t["df"])
    a = sleep_fit.anova("kenward-roger").set_index("term").loc["Days"]
    k = sleep_fit.coefficients("kenward-roger").set_index("term").loc["Days"]
    assert a["F"] == pytest.approx(k["statistic"] ** 2, rel=1e-8)


def test_compare_refits_with_ml(sleep):
    m0 = lmm.fit("Reaction ~ Days + (1 | Subject)", sleep)
    m1 = lmm.fit("Reaction ~ Days + (1 + Days | Subject)", sleep)
    lrt = lmm.compare(m1, m0)
    assert lrt.refitted and lrt.df == 2
    ml0 = lmm.fit("Reaction ~ Days + (1 | Subject)", sleep, reml=False)
    ml1 = lmm.fit("Reaction ~ Days + (1 + Days | Subject)", sleep, reml=False)
    assert lrt.chisq == pytest.approx(2 * (ml1.loglik - ml0.loglik))
    assert 0 <= lrt.p_value < 1e-6
    assert list(lrt.to_frame()["model"]) == [m0.formula, m1.formula]


def test_kr_modcomp_equals_contrast(sleep_fit, sleep):
    small = lmm.fit("Reaction ~ 1 + (1 + Days | Subject)", sleep)
    a = lmm.kr_modcomp(sleep_fit, small).set_index("test")
    b = sleep_fit.contrast(["Days"], ddf="kenward-roger").set_index("test")
    np.testing.assert_allclose(a[["F", "den_df"]].to_numpy(), b[["F", "den_df"]].to_numpy(),
                               rtol=1e-8)


def test_icc_two_level(sleep):
    r = lmm.icc(sleep, outcome="Reaction", groups="Subject")
    v = r.to_frame().set_index(["level", "quantity"])["value"]
    assert v[("Subject", "icc")] == pytest.approx(
        v[("Subject", "variance")] / (v[("Subject", "variance")] + v[("Residual", "variance")]))


def test_data_keeps_all_columns_of_used_rows(growth):
    d = growth.copy()
    d.loc[d.index[:3], "age"] = np.nan
    res = lmm.fit("outcome ~ time + age + (1 | client)", d)
    assert res.nobs == len(growth) - 3
    assert "programme" in res.data.columns  # e.g. for clustering on programme (CR2)
    np.testing.assert_array_equal(res.data["outcome"].to_numpy(), res.y)
    np.testing.assert_array_equal(res.data["time"].to_numpy(), res.X[:, 1])


# -- false boundary optima ---------------------------------------------------------
# Design-A draws (seeds 1, 4, 7) at which the engine once stopped with a zero Cholesky
# column that was not optimal; data and lme4's tight-control REML criterion are stored
# in tests/multilevel/data (benchmarks/r/lmm_boundary_regression_data.py).
LOCAL = Path(__file__).parent / "data"
BOUNDARY_FORMULA = "y ~ time + (1 | programme) + (1 + time | client)"


def _boundary_case(seed: int) -> tuple[pd.DataFrame, pd.Series]:
    ref = pd.read_csv(LOCAL / "lmm_boundary_reference.csv", comment="#").set_index("file")
    name = f"lmm_boundary_A_seed{seed}.csv"
    return pd.read_csv(LOCAL / name), ref.loc[name]


@pytest.mark.parametrize("seed", [1, 4, 7])
@pytest.mark.parametrize("moment_start", [True, False])
def test_no_false_boundary_optimum(seed, moment_start):
    data, ref = _boundary_case(seed)
    model = lmm.LinearMixedModel(BOUNDARY_FORMULA, data)
    if not moment_start:  # lme4's start only: the KKT check alone must find the optimum
        model.moment_start = lambda: None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.FewClustersWarning)
        res = model.fit()
    assert res.reml_criterion == pytest.approx(ref["REMLcrit"], abs=1e-6)
    assert res.reml_criterion <= ref["REMLcrit"] + 1e-6
    theta_r = np.array([float(v) for v in ref["theta"].split(";")])
    # lme4 orders the terms as we do (client, then programme)
    np.testing.assert_allclose(res.theta, theta_r, rtol=1e-3, atol=1e-5)
    assert not res.is_singular
    assert res.messages == []


def test_kkt_check_finds_descent_from_zero_column():
    """At programme SD = 0 the gradient vanishes (the criterion is even in the column),
    yet the point is a saddle: the second-order check must find the way out."""
    data, ref = _boundary_case(7)
    model = lmm.LinearMixedModel(BOUNDARY_FORMULA, data)
    # where L-BFGS-B from lme4's start stopped (REML criterion 0.0018 above lme4's)
    stuck = np.array([0.93155088, 0.00098433, 0.02729558, 0.0])
    _, grad = model.deviance_gradient(stuck)
    assert grad[3] == 0.0
    dirs = model.boundary_descent_directions(stuck)
    assert len(dirs) == 1
    point, v = dirs[0]
    np.testing.assert_array_equal(point, stuck)
    assert np.flatnonzero(v).tolist() == [3]
    start = model._line_escape(point, v, True)
    assert start is not None and start[3] > 0
    assert model.deviance(start) < model.deviance(stuck) - 1e-3
    msg = model._boundary_doubt(stuck, True)
    assert msg is not None and "programme.(Intercept)" in msg
    # at lme4's optimum there is nothing to report
    theta_r = np.array([float(v) for v in ref["theta"].split(";")])
    assert model.boundary_descent_directions(theta_r) == []


def test_kkt_check_accepts_true_boundary_optimum():
    """A genuine boundary optimum (no programme variance) passes the check unflagged."""
    rng = np.random.default_rng(0)
    d = pd.read_csv(DATA / "growth_a.csv")
    d = d.assign(y=50 + rng.normal(0, 5, len(d)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = lmm.fit("y ~ time + (1 | programme) + (1 | client)", d)
    assert res.is_singular
    assert not any("false boundary" in m for m in res.messages)
    assert res.model.boundary_descent_directions(res.theta) == []


def test_kkt_check_uses_column_sign_symmetry():
    """With T_11 = 0 the sign of the rest of the column is free (T T' does not change):
    a positive gradient in T_11 is then a way into the interior from the flipped column."""
    data, _ = _boundary_case(7)
    model = lmm.LinearMixedModel(BOUNDARY_FORMULA, data)
    pos, neg = np.array([0.0, 0.01, 0.02, 0.07]), np.array([0.0, -0.01, 0.02, 0.07])
    assert model.deviance(pos) == pytest.approx(model.deviance(neg), abs=1e-9)
    _, g_neg = model.deviance_gradient(neg)
    assert g_neg[0] > 0  # KKT would hold if only this sign were considered
    (point, v), = model.boundary_descent_directions(neg)
    np.testing.assert_allclose(point, pos)
    assert np.flatnonzero(v).tolist() == [0]
    start = model._line_escape(point, v, True)
    assert start is not None and model.deviance(start) < model.deviance(neg)


def test_rows_with_missing_values_are_reported_not_silently_dropped():
    import numpy as np
    import pandas as pd

    from effectstudy.multilevel import fit as fit_model

    d = pd.read_csv(REFERENCE / "multilevel" / "data" / "sleepstudy.csv")
    d.loc[[3, 7], "Reaction"] = np.nan
    f = fit_model("Reaction ~ Days + (1 + Days | Subject)", d)
    assert f.nobs == 178
    assert any("2 row(s) with a missing value" in m for m in f.messages)
