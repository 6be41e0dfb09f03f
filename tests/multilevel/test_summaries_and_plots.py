"""Effect sizes, predicted means, R², BLUP intervals and plots of mixed-model fits.

Expected values are computed in this file *independently* of the package, from
the R reference numbers in ``expected_lmer.csv`` (lme4 / lmerTest / pbkrtest)
and the reference data:

* R² (Nakagawa & Schielzeth 2013; Johnson 2014): ``var(X beta)`` from the
  reference fixed effects and a hand-built X, ``mean diag(Z G Z')`` from the
  reference SDs/correlation, ``sigma^2`` from the reference residual SD;
* predicted means: ``x0' beta`` from the reference estimates; SEs from the
  reference SEs (intercept rows) or from a hand GLS ``(X'V^-1X)^-1`` built from
  the reference variance components (itself checked against the reference SEs);
* growth d (Feingold 2009/2015): reference estimate, SE and df scaled by
  ``duration / sqrt(var_int + sigma^2)`` of the reference components;
* BLUPs and their conditional SDs: the textbook formulas
  ``b_i = G Z_i' V_i^-1 (y_i - X_i beta)`` and ``(Z_i'Z_i / sigma^2 + G^-1)^-1``
  with the reference G, sigma and beta.

Tolerances: 1e-5 relative for things that depend on the reference estimates only
(README: ~1e-6 agreement between optimizers), 1e-4 for df (lmerTest's numerical
Hessian) and KR quantities.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from scipy import stats  # noqa: E402

from effectstudy.errors import ModelError  # noqa: E402
from effectstudy.multilevel import lmm  # noqa: E402
from effectstudy.multilevel.plots import caterpillar_plot, spaghetti_plot  # noqa: E402
from effectstudy.multilevel.summaries import (  # noqa: E402
    GrowthD,
    VarianceExplained,
    blup_intervals,
    convergence_report,
    growth_d,
    predicted_means,
    variance_explained,
)

try:
    from refdata import REFERENCE
except ImportError:  # pragma: no cover
    REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

REF_DIR = REFERENCE / "multilevel"
pytestmark = pytest.mark.skipif(not (REF_DIR / "expected_lmer.csv").exists(),
                                reason="reference values not available")

S1 = "Reaction ~ Days + (1 + Days | Subject)"
M1 = "outcome ~ time * programme + (1 + time | client)"
PROGRAMMES = ["P1", "P2", "P3", "P4", "P5", "P6"]
RTOL = 1e-5
RTOL_DF = 1e-4


# ---------------------------------------------------------------------------
# reference numbers and data
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ref() -> pd.DataFrame:
    d = pd.read_csv(REF_DIR / "expected_lmer.csv", dtype={"value": str})
    d = d[(d["estimation"] == "REML") & ~d["note"].fillna("").str.startswith("diagnostic")]
    return d


def _value(ref: pd.DataFrame, dataset: str, model: str, term: str, quantity: str) -> float:
    sel = ref[(ref["dataset"] == dataset) & (ref["model_id"].str.split("_").str[0] == model)
              & (ref["term"] == term) & (ref["quantity"] == quantity)]
    assert len(sel) == 1, (dataset, model, term, quantity)
    return float(sel["value"].iloc[0])


@pytest.fixture(scope="module")
def sleep() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / "sleepstudy.csv")


@pytest.fixture(scope="module")
def growth() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / "growth_a.csv")


@pytest.fixture(scope="module")
def fit_s1(sleep):
    return lmm.fit(S1, sleep)


@pytest.fixture(scope="module")
def fit_m1(growth):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.FewClustersWarning)
        return lmm.fit(M1, growth)


def _ref_components(ref, dataset, model, group, slope):
    """Reference G (2 x 2) and sigma^2 of a (1 + slope | group) model."""
    v0 = _value(ref, dataset, model, f"{group}:(Intercept)", "variance")
    v1 = _value(ref, dataset, model, f"{group}:{slope}", "variance")
    c01 = _value(ref, dataset, model, f"{group}:(Intercept),{slope}", "covariance")
    s2 = _value(ref, dataset, model, "Residual", "variance")
    # the covariance must agree with sd * sd * cor (a check of the reading)
    sd0 = _value(ref, dataset, model, f"{group}:(Intercept)", "sd")
    sd1 = _value(ref, dataset, model, f"{group}:{slope}", "sd")
    cor = _value(ref, dataset, model, f"{group}:(Intercept),{slope}", "cor")
    assert c01 == pytest.approx(sd0 * sd1 * cor, rel=1e-10)
    return np.array([[v0, c01], [c01, v1]]), s2


def _growth_X(data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """R's model.matrix(~ time * programme) built by hand (P1 reference)."""
    cols = {"(Intercept)": np.ones(len(data))}
    for p in PROGRAMMES[1:]:
        cols[f"programme{p}"] = (data["programme"] == p).to_numpy(float)
    cols["time"] = data["time"].to_numpy(float)
    for p in PROGRAMMES[1:]:
        cols[f"time:programme{p}"] = data["time"].to_numpy(float) * cols[f"programme{p}"]
    return np.column_stack(list(cols.values())), list(cols)


def _gls_vcov(X, y, groups, Zcols, G, s2):
    """Hand GLS: (sum_i X_i' V_i^-1 X_i)^-1 with V_i = Z_i G Z_i' + s2 I."""
    p = X.shape[1]
    A = np.zeros((p, p))
    for g in pd.unique(groups):
        m = groups == g
        Zi = Zcols[m]
        Vi = Zi @ G @ Zi.T + s2 * np.eye(int(m.sum()))
        A += X[m].T @ np.linalg.solve(Vi, X[m])
    return np.linalg.inv(A)


# ---------------------------------------------------------------------------
# R² (Nakagawa & Schielzeth 2013; Johnson 2014)
# ---------------------------------------------------------------------------
def _hand_r2(X, beta, Zc, G, s2):
    var_f = np.var(X @ beta, ddof=1)  # R's var(), as MuMIn::r.squaredGLMM
    var_l = np.mean(np.einsum("ij,jk,ik->i", Zc, G, Zc))  # mean diag(Z G Z')
    total = var_f + var_l + s2
    return var_f / total, (var_f + var_l) / total, var_f, var_l


def test_r2_sleepstudy_s1_against_reference_components(ref, sleep, fit_s1):
    G, s2 = _ref_components(ref, "sleepstudy", "S1", "Subject", "Days")
    beta = np.array([_value(ref, "sleepstudy", "S1", "(Intercept)", "estimate"),
                     _value(ref, "sleepstudy", "S1", "Days", "estimate")])
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"].to_numpy(float)])
    r2m, r2c, vf, vl = _hand_r2(X, beta, X, G, s2)
    res = variance_explained(fit_s1)
    assert isinstance(res, VarianceExplained)
    assert res.var_fixed == pytest.approx(vf, rel=RTOL)
    assert res.var_random == pytest.approx(vl, rel=RTOL)
    assert res.var_residual == pytest.approx(s2, rel=RTOL)
    assert res.r2_marginal == pytest.approx(r2m, rel=RTOL)
    assert res.r2_conditional == pytest.approx(r2c, rel=RTOL)
    frame = res.to_frame().set_index("quantity")["value"]
    assert frame["R2_marginal"] == pytest.approx(r2m, rel=RTOL)
    assert res.reduction is None


def test_r2_growth_m1_against_reference_components(ref, growth, fit_m1):
    G, s2 = _ref_components(ref, "growth_a", "M1", "client", "time")
    X, names = _growth_X(growth)
    beta = np.array([_value(ref, "growth_a", "M1", n, "estimate") for n in names])
    Zc = np.column_stack([np.ones(len(growth)), growth["time"].to_numpy(float)])
    r2m, r2c, _, _ = _hand_r2(X, beta, Zc, G, s2)
    res = variance_explained(fit_m1)
    assert res.r2_marginal == pytest.approx(r2m, rel=RTOL)
    assert res.r2_conditional == pytest.approx(r2c, rel=RTOL)


def test_r2_and_growth_d_threelevel_m2_sum_over_terms(ref, growth):
    """M2 has (1 | programme) + (1 + time | client): s2_l and SD_raw sum over both terms."""
    m = "M2"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lmm.FewClustersWarning)
        f = lmm.fit("outcome ~ time * fidelity + age + (1 | programme) + (1 + time | client)",
                    growth)
    G, s2 = _ref_components(ref, "growth_a", m, "client", "time")
    v_prog = _value(ref, "growth_a", m, "programme:(Intercept)", "variance")
    t, fid, age = (growth[c].to_numpy(float) for c in ("time", "fidelity", "age"))
    X = np.column_stack([np.ones(len(t)), t, fid, age, t * fid])
    beta = np.array([_value(ref, "growth_a", m, n, "estimate")
                     for n in ("(Intercept)", "time", "fidelity", "age", "time:fidelity")])
    Zc = np.column_stack([np.ones(len(t)), t])
    var_f = np.var(X @ beta, ddof=1)
    var_l = np.mean(np.einsum("ij,jk,ik->i", Zc, G, Zc)) + v_prog
    res = variance_explained(f)
    assert res.r2_marginal == pytest.approx(var_f / (var_f + var_l + s2), rel=RTOL)
    assert res.r2_conditional == pytest.approx((var_f + var_l) / (var_f + var_l + s2), rel=RTOL)
    by_term = dict(res.var_random_by_term)
    assert by_term["programme:(Intercept)"] == pytest.approx(v_prog, rel=RTOL)
    est = _value(ref, "growth_a", m, "time:fidelity", "estimate")
    sd_raw = np.sqrt(G[0, 0] + v_prog + s2)
    d = growth_d(f, "time:fidelity", duration=24, ddf="satterthwaite")
    assert d.sd_raw == pytest.approx(sd_raw, rel=RTOL)
    assert d.d == pytest.approx(est * 24 / sd_raw, rel=RTOL)


def test_proportional_reduction_in_variance(ref, sleep, fit_s1):
    # null model: S1 without the Days fixed effect; PRV = (v0 - v1) / v0 per component
    null = lmm.fit("Reaction ~ 1 + (1 + Days | Subject)", sleep)
    res = variance_explained(fit_s1, null_fit=null)
    tab = res.reduction.set_index("component")
    assert list(tab.index) == ["Subject:(Intercept)", "Subject:Days", "Residual"]
    v1 = _value(ref, "sleepstudy", "S1", "Subject:Days", "variance")
    v0 = float(null.variance_components().set_index("component").loc["Subject:Days", "variance"])
    assert tab.loc["Subject:Days", "variance_model"] == pytest.approx(v1, rel=RTOL)
    assert tab.loc["Subject:Days", "proportional_reduction"] == pytest.approx((v0 - v1) / v0,
                                                                              rel=RTOL)
    with pytest.raises(ModelError):
        variance_explained(fit_s1, null_fit=lmm.fit(S1, sleep.iloc[:-10]))


# ---------------------------------------------------------------------------
# predicted means
# ---------------------------------------------------------------------------
def test_predicted_intercept_row_reproduces_reference_sleepstudy(ref, fit_s1):
    est = _value(ref, "sleepstudy", "S1", "(Intercept)", "estimate")
    for ddf, se_q, df_q in [("kenward-roger", "se_kr", "df_kr"),
                            ("satterthwaite", "se", "df_satterthwaite")]:
        pm = predicted_means(fit_s1, pd.DataFrame({"Days": [0]}), ddf=ddf)
        se = _value(ref, "sleepstudy", "S1", "(Intercept)", se_q)
        df = _value(ref, "sleepstudy", "S1", "(Intercept)", df_q)
        assert pm["estimate"].iloc[0] == pytest.approx(est, rel=RTOL)
        assert pm["se"].iloc[0] == pytest.approx(se, rel=RTOL)
        assert pm["df"].iloc[0] == pytest.approx(df, rel=RTOL_DF)
        q = stats.t.ppf(0.975, df)
        assert pm["ci_lower"].iloc[0] == pytest.approx(est - q * se, rel=RTOL)
        assert pm["ci_upper"].iloc[0] == pytest.approx(est + q * se, rel=RTOL)


def test_predicted_means_sleepstudy_days_against_hand_gls(ref, sleep, fit_s1):
    G, s2 = _ref_components(ref, "sleepstudy", "S1", "Subject", "Days")
    b = np.array([_value(ref, "sleepstudy", "S1", t, "estimate") for t in ("(Intercept)", "Days")])
    X = np.column_stack([np.ones(len(sleep)), sleep["Days"].to_numpy(float)])
    C = _gls_vcov(X, sleep["Reaction"].to_numpy(float), sleep["Subject"].to_numpy(), X, G, s2)
    ref_se = [_value(ref, "sleepstudy", "S1", t, "se") for t in ("(Intercept)", "Days")]
    np.testing.assert_allclose(np.sqrt(np.diag(C)), ref_se, rtol=RTOL)  # the hand GLS is right
    days = np.arange(10.0)
    X0 = np.column_stack([np.ones(10), days])
    pm = predicted_means(fit_s1, {"Days": days}, ddf="satterthwaite")
    np.testing.assert_allclose(pm["estimate"], X0 @ b, rtol=RTOL)
    np.testing.assert_allclose(pm["se"], np.sqrt(np.einsum("ij,jk,ik->i", X0, C, X0)), rtol=RTOL)
    assert list(pm.columns) == ["Days", "estimate", "se", "df", "ci_lower", "ci_upper"]
    assert (pm["ci_lower"] < pm["estimate"]).all() and (pm["estimate"] < pm["ci_upper"]).all()


def test_predicted_means_growth_per_programme_and_week(ref, growth, fit_m1):
    G, s2 = _ref_components(ref, "growth_a", "M1", "client", "time")
    X, names = _growth_X(growth)
    Zc = np.column_stack([np.ones(len(growth)), growth["time"].to_numpy(float)])
    C = _gls_vcov(X, growth["outcome"].to_numpy(float), growth["client"].to_numpy(), Zc, G, s2)
    np.testing.assert_allclose(np.sqrt(np.diag(C)),
                               [_value(ref, "growth_a", "M1", n, "se") for n in names], rtol=RTOL)
    beta = np.array([_value(ref, "growth_a", "M1", n, "estimate") for n in names])
    grid = pd.DataFrame([(p, w) for p in PROGRAMMES for w in (0.0, 12.0, 24.0)],
                        columns=["programme", "time"])
    X0, _ = _growth_X(grid)
    pm = predicted_means(fit_m1, grid, ddf="satterthwaite")
    assert pm[["programme", "time"]].equals(grid)
    np.testing.assert_allclose(pm["estimate"], X0 @ beta, rtol=RTOL)
    np.testing.assert_allclose(pm["se"], np.sqrt(np.einsum("ij,jk,ik->i", X0, C, X0)), rtol=RTOL)
    # the P1 intake row is the intercept: reference KR SE and df
    kr = predicted_means(fit_m1, {"programme": ["P1"], "time": [0]})
    assert kr.attrs["ddf"] == "kenward-roger"
    assert kr["se"].iloc[0] == pytest.approx(
        _value(ref, "growth_a", "M1", "(Intercept)", "se_kr"), rel=RTOL)
    assert kr["df"].iloc[0] == pytest.approx(
        _value(ref, "growth_a", "M1", "(Intercept)", "df_kr"), rel=RTOL_DF)
    assert pm["df"].iloc[0] == pytest.approx(
        _value(ref, "growth_a", "M1", "(Intercept)", "df_satterthwaite"), rel=RTOL_DF)


def test_predicted_means_rejects_unknown_levels_and_missing_columns(fit_m1):
    # the unknown value itself is not echoed (errors never repeat data values)
    with pytest.raises(ModelError, match="programme are not among the 6 levels"):
        predicted_means(fit_m1, {"programme": ["P9"], "time": [0]})
    with pytest.raises(ModelError, match="time"):
        predicted_means(fit_m1, pd.DataFrame({"programme": ["P1"]}))


# ---------------------------------------------------------------------------
# growth d (Feingold 2009; CI Feingold 2015)
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("ddf, se_q, df_q", [("kenward-roger", "se_kr", "df_kr"),
                                             ("satterthwaite", "se", "df_satterthwaite")])
def test_growth_d_against_reference(ref, fit_m1, ddf, se_q, df_q):
    term = "time:programmeP2"
    est = _value(ref, "growth_a", "M1", term, "estimate")
    se = _value(ref, "growth_a", "M1", term, se_q)
    df = _value(ref, "growth_a", "M1", term, df_q)
    var_int = _value(ref, "growth_a", "M1", "client:(Intercept)", "variance")
    s2 = _value(ref, "growth_a", "M1", "Residual", "variance")
    duration = 24.0
    scale = duration / np.sqrt(var_int + s2)
    res = growth_d(fit_m1, term, duration=duration, ddf=ddf)
    assert isinstance(res, GrowthD)
    assert res.term == "time:programme[T.P2]"
    assert res.sd_raw == pytest.approx(np.sqrt(var_int + s2), rel=RTOL)
    assert res.d == pytest.approx(est * scale, rel=RTOL)
    assert res.se_d == pytest.approx(se * scale, rel=RTOL)
    q = stats.t.ppf(0.975, df)
    assert res.ci_lower == pytest.approx((est - q * se) * scale, rel=1e-4)
    assert res.ci_upper == pytest.approx((est + q * se) * scale, rel=1e-4)
    frame = res.to_frame()
    assert frame["estimate"].iloc[0] == res.d and len(frame) == 1
    with pytest.raises(AttributeError):
        res.d = 0.0  # frozen


def test_growth_d_user_sd_and_patsy_name(ref, fit_m1):
    est = _value(ref, "growth_a", "M1", "time", "estimate")
    res = growth_d(fit_m1, "time", duration=10, sd=8.0)
    assert res.d == pytest.approx(est * 10 / 8.0, rel=RTOL)
    assert res.sd_source == "user-given"
    same = growth_d(fit_m1, "time:programme[T.P3]", duration=10, sd=8.0)
    assert same.term == "time:programme[T.P3]"
    with pytest.raises(ModelError):
        growth_d(fit_m1, "time:programmeP9", duration=10)
    with pytest.raises(ModelError):
        growth_d(fit_m1, "time", duration=0)


# ---------------------------------------------------------------------------
# BLUPs and conditional variances (lme4 condVar)
# ---------------------------------------------------------------------------
def test_blup_intervals_against_textbook_formulas(ref, sleep, fit_s1):
    G, s2 = _ref_components(ref, "sleepstudy", "S1", "Subject", "Days")
    beta = np.array([_value(ref, "sleepstudy", "S1", t, "estimate")
                     for t in ("(Intercept)", "Days")])
    tab = blup_intervals(fit_s1, "Subject").set_index(["level", "term"])
    for subj, d in sleep.groupby("Subject"):
        Z = np.column_stack([np.ones(len(d)), d["Days"].to_numpy(float)])
        V = Z @ G @ Z.T + s2 * np.eye(len(d))
        b = G @ Z.T @ np.linalg.solve(V, d["Reaction"].to_numpy(float) - Z @ beta)
        cv = np.linalg.inv(Z.T @ Z / s2 + np.linalg.inv(G))
        for k, name in enumerate(["(Intercept)", "Days"]):
            row = tab.loc[(str(subj), name)]
            scale = np.sqrt(G[k, k])
            assert row["estimate"] == pytest.approx(b[k], abs=1e-5 * scale)
            assert row["se"] == pytest.approx(np.sqrt(cv[k, k]), rel=1e-4)
            z = stats.norm.ppf(0.975)
            assert row["ci_upper"] - row["ci_lower"] == pytest.approx(2 * z * row["se"], rel=1e-12)


# ---------------------------------------------------------------------------
# convergence report
# ---------------------------------------------------------------------------
def test_convergence_report_clean_fit(fit_s1):
    rep = convergence_report(fit_s1)
    assert {"check", "status", "value", "detail"} <= set(rep.columns)
    st = rep.set_index("check")["status"]
    # lme4: is_singular 0, fit_messages "none" for S1
    assert st["singular fit"] == "ok" and st["optimizer"] == "ok"
    assert st["gradient"] == "ok" and st["Hessian"] == "ok"
    assert (rep["status"] == "ok").all()


def test_convergence_report_singular_fit():
    # every group holds the same multiset of y values: the between-group mean
    # square is 0, so the REML variance of (1 | g) is exactly at its bound 0
    vals = np.array([1.0, 3.0, 2.0, 6.0, 4.0])
    rows = [(f"g{g}", v) for g in range(6) for v in np.roll(vals, g)]
    data = pd.DataFrame(rows, columns=["g", "y"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm.fit("y ~ 1 + (1 | g)", data)
    rep = convergence_report(f).set_index("check")
    assert rep.loc["singular fit", "status"] == "warning"
    assert rep.loc["boundary: g:(Intercept)", "status"] == "boundary"
    assert "g.(Intercept)" in rep.loc["singular fit", "detail"]
    notes = convergence_report(f)
    assert ((notes["check"] == "warning") & (notes["status"] == "note")).any()  # 6 groups


# ---------------------------------------------------------------------------
# plots
# ---------------------------------------------------------------------------
def test_spaghetti_plot_lines_and_no_client_labels(growth, fit_m1):
    fig = spaghetti_plot(fit_m1, time="time", outcome="outcome", client="client",
                         by="programme", band=True)
    try:
        ax = fig.axes[0]
        n_clients = growth["client"].nunique()
        assert len(ax.lines) == n_clients + len(PROGRAMMES)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend == PROGRAMMES
        texts = [t.get_text() for t in fig.findobj(matplotlib.text.Text)]
        assert not any(c in txt for c in growth["client"].unique() for txt in texts)
    finally:
        plt.close(fig)
    fig = spaghetti_plot(growth, time="time", outcome="outcome", client="client")
    try:
        assert len(fig.axes[0].lines) == growth["client"].nunique()
    finally:
        plt.close(fig)


def test_caterpillar_plot_one_point_per_group(fit_m1, fit_s1):
    fig = caterpillar_plot(fit_m1)
    try:
        pts = [ln for ln in fig.axes[0].lines if ln.get_gid() == "blups"]
        assert len(pts) == 1 and len(pts[0].get_xdata()) == 87
        # sorted by the BLUP
        assert np.all(np.diff(pts[0].get_ydata()) > 0)
        assert np.all(np.diff(np.asarray(pts[0].get_xdata())) >= 0)
    finally:
        plt.close(fig)
    fig = caterpillar_plot(fit_s1, term=None, group="Subject")
    try:
        assert len(fig.axes) == 2
        for ax in fig.axes:
            pts = [ln for ln in ax.lines if ln.get_gid() == "blups"]
            assert len(pts[0].get_xdata()) == 18
    finally:
        plt.close(fig)
    with pytest.raises(ModelError):
        caterpillar_plot(fit_s1, term="Hours", group="Subject")


def test_spaghetti_plot_draws_on_given_axes_and_forwards_kwargs(growth, fit_m1):
    fig, ax = plt.subplots()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", FutureWarning)
            out = spaghetti_plot(fit_m1, time="time", outcome="outcome", client="client",
                                 by="programme", ax=ax, lw=0.3)
        assert out is fig and fig.axes == [ax]
        n_clients = growth["client"].nunique()
        client_lines = [ln for ln in ax.lines if ln.get_label() == "_nolegend_"]
        assert len(client_lines) == n_clients
        assert {ln.get_linewidth() for ln in client_lines} == {0.3}
    finally:
        plt.close(fig)
    # the old keyword keeps working for one release, with a FutureWarning
    with pytest.warns(FutureWarning, match="group= is deprecated.*by="):
        fig = spaghetti_plot(growth, time="time", outcome="outcome", client="client",
                             group="programme")
    plt.close(fig)


def test_caterpillar_plot_draws_in_given_figure_and_forwards_kwargs(fit_s1):
    fig = plt.figure()
    try:
        out = caterpillar_plot(fit_s1, term=None, group="Subject", fig=fig, ms=7)
        assert out is fig and len(fig.axes) == 2
        for ax in fig.axes:
            pts = [ln for ln in ax.lines if ln.get_gid() == "blups"]
            assert len(pts) == 1 and pts[0].get_markersize() == 7
    finally:
        plt.close(fig)
    from effectstudy.errors import SpecError

    with pytest.raises(SpecError, match="confidence"):
        caterpillar_plot(fit_s1, group="Subject", confidence=95)


def test_generic_result_plot_draws_only_estimates_with_intervals():
    """ResultMixin.plot(): coefficients with CIs only, never AIC/logLik rows beside them."""
    from dataclasses import dataclass

    from effectstudy._results import ResultMixin

    @dataclass(frozen=True)
    class Table(ResultMixin):
        frame: pd.DataFrame

        def to_frame(self) -> pd.DataFrame:
            return self.frame

    frame = pd.DataFrame({
        "term": ["(Intercept)", "time", "AIC", "logLik", "sigma"],
        "estimate": [50.0, -0.2, 812.4, -401.2, 4.0],
        "ci_lower": [48.0, -0.3, np.nan, np.nan, 3.5],
        "ci_upper": [52.0, -0.1, np.nan, np.nan, 4.6],
    })
    fig = Table(frame).plot(capsize=5)
    try:
        ax = fig.axes[0]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["(Intercept)", "time", "sigma"]
        (container,) = ax.containers
        np.testing.assert_allclose(container.lines[0].get_xdata(), [50.0, -0.2, 4.0])
    finally:
        plt.close(fig)
    # a fit statistic is left out even when a table gives it interval columns
    bad = frame.assign(ci_lower=[48.0, -0.3, 800.0, -410.0, 3.5],
                       ci_upper=[52.0, -0.1, 820.0, -390.0, 4.6])
    fig = Table(bad).plot()
    try:
        labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
        assert labels == ["(Intercept)", "time", "sigma"]
    finally:
        plt.close(fig)
    with pytest.raises(NotImplementedError, match="no estimates with confidence intervals"):
        Table(frame[["term", "estimate"]]).plot()
    text = Table(frame).summary()
    assert text.splitlines()[0] == "Table" and "logLik" in text
