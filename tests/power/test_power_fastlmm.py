"""The fast REML engine (effectstudy.multilevel.fastlmm, used by power) against
lme4/lmerTest/pbkrtest, finite differences, statsmodels and the general engine."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import patsy
import pytest

from effectstudy.multilevel.fastlmm import FastLMM, RandomTerm
from refdata import REFERENCE

ML = REFERENCE / "multilevel"
LMER = ML / "expected_lmer.csv"


def build(df: pd.DataFrame, rhs: str, spec) -> tuple[FastLMM, list[str]]:
    """The engine from the lme4 formula ``y ~ rhs + (cols | group)...`` (the fit() grammar)."""
    random = [
        "(" + " + ".join("1" if c == "(Intercept)" else c for c in cols) + f" | {grp})"
        for grp, cols in spec
    ]
    m = FastLMM.from_lme4_formula(f"y ~ {rhs} + " + " + ".join(random), df)
    return m, m.fixed_names


def build_by_hand(df: pd.DataFrame, rhs: str, spec) -> tuple[FastLMM, list[str]]:
    """The same engine from matrices built independently (patsy, pandas)."""
    X = patsy.dmatrix(rhs, df, return_type="dataframe")
    terms = []
    for grp, cols in spec:
        g = pd.factorize(df[grp], sort=True)[0]
        M = np.column_stack(
            [np.ones(len(df)) if c == "(Intercept)" else df[c].to_numpy(float) for c in cols]
        )
        terms.append(RandomTerm(grp, g, M, tuple(cols)))
    names = [c.replace("Intercept", "(Intercept)") if c == "Intercept" else c for c in X.columns]
    return FastLMM(X.to_numpy(), terms), names


THREE = [("programme", ["(Intercept)"]), ("client", ["(Intercept)", "time"])]
CASES = [
    ("growth_a", "M2_threelevel_fidelity", "time * fidelity + age", THREE, "outcome"),
    ("threelevel", "M2_threelevel_fidelity", "time * fidelity + age", THREE, "outcome"),
    ("dense_ar1", "M2_threelevel_fidelity", "time * fidelity + age", THREE, "outcome"),
    ("growth_a", "M3_random_intercept", "time + age", [("client", ["(Intercept)"])], "outcome"),
    ("threelevel", "M1_growth_time_x_programme", "time", None, "outcome"),  # only time rows used
    (
        "sleepstudy",
        "S1_sleepstudy_random_slope",
        "Days",
        [("Subject", ["(Intercept)", "Days"])],
        "Reaction",
    ),
]


@pytest.fixture(autouse=True)
def _single_threaded_blas():
    """Small dense LAPACK calls are slow with multithreaded OpenBLAS on 2 cores."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture(scope="module")
def lmer_ref() -> pd.DataFrame:
    return pd.read_csv(LMER)


@pytest.mark.parametrize("case", CASES, ids=[f"{c[0]}-{c[1][:2]}" for c in CASES])
def test_engine_matches_lmer_reference(case, lmer_ref):
    ds, model, rhs, spec, yname = case
    df = pd.read_csv(ML / "data" / f"{ds}.csv")
    if model.startswith("M1"):
        rhs, spec = "time * C(programme)", [("client", ["(Intercept)", "time"])]
    m, names = build(df, rhs, spec)
    fit = m.fit(m.stats(df[yname].to_numpy(float)), tol=1e-12)
    assert fit.converged
    ref = lmer_ref[
        (lmer_ref.dataset == ds) & (lmer_ref.model_id == model) & (lmer_ref.estimation == "REML")
    ]
    remlcrit = float(ref.loc[ref.quantity == "REMLcrit", "value"].iloc[0])
    assert fit.deviance == pytest.approx(remlcrit, rel=1e-9, abs=1e-6)
    sig = float(ref.loc[(ref.term == "Residual") & (ref.quantity == "sd"), "value"].iloc[0])
    assert fit.sigma == pytest.approx(sig, rel=1e-5)
    checked = 0
    for j, nm in enumerate(names):
        r = ref[ref.term == nm].set_index("quantity")["value"].astype(float)
        if r.empty:
            continue
        L = np.zeros(len(names))
        L[j] = 1.0
        res = m.contrast_tests(fit, L, satterthwaite=True, kr=True)
        assert res["estimate"] == pytest.approx(r["estimate"], rel=1e-5, abs=1e-8)
        assert res["se"] == pytest.approx(r["se"], rel=1e-5)
        assert res["df_satterthwaite"] == pytest.approx(r["df_satterthwaite"], rel=1e-3)
        assert res["se_kr"] == pytest.approx(r["se_kr"], rel=1e-5)
        assert res["df_kr"] == pytest.approx(r["df_kr"], rel=1e-3)
        checked += 1
    assert checked >= 1


def test_formula_design_equals_hand_built_design():
    """from_lme4_formula (the fit() grammar) builds the matrices patsy and pandas build by
    hand, with the columns in the order of R's model.matrix (terms by degree), which
    differs from patsy's (``time:fidelity`` before ``age``)."""
    df = pd.read_csv(ML / "data" / "growth_a.csv")
    m, names = build(df, "time * fidelity + age", THREE)
    h, hnames = build_by_hand(df, "time * fidelity + age", THREE)
    assert names == ["(Intercept)", "time", "fidelity", "age", "time:fidelity"]
    assert hnames == ["(Intercept)", "time", "fidelity", "time:fidelity", "age"]
    np.testing.assert_array_equal(m.X, h.X[:, [hnames.index(n) for n in names]])
    np.testing.assert_array_equal(m.Z, h.Z)
    assert m.theta_names == h.theta_names
    assert m.formula == "y ~ time * fidelity + age + (1 | programme) + (1 + time | client)"
    y = df["outcome"].to_numpy(float)
    fm, fh = m.fit(m.stats(y), tol=1e-12), h.fit(h.stats(y), tol=1e-12)
    assert fm.deviance == pytest.approx(fh.deviance, rel=1e-12)


def test_formula_errors_are_model_errors():
    from effectstudy.errors import ModelError

    df = _toy()
    with pytest.raises(ModelError, match="no random-effect term"):
        FastLMM.from_lme4_formula("y ~ time", df)
    with pytest.raises(ModelError, match="grouping factor not found") as err:
        FastLMM.from_lme4_formula("y ~ time + (1 | site)", df)
    assert err.value.column == "site"
    with pytest.raises(ModelError, match="rank deficient"):
        FastLMM.from_lme4_formula("y ~ time + I(2 * time) + (1 | client)", df)


def _toy(seed=3, n_prog=5, n_cl=6, weeks=(0, 6, 12, 24)):
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_prog):
        bp = rng.normal(0, 2)
        for c in range(n_cl):
            u0, u1 = rng.normal(0, 5), rng.normal(0, 0.2)
            for t in weeks[: rng.integers(2, len(weeks) + 1)]:
                rows.append(
                    (f"P{p}", f"P{p}C{c}", t, 50 + bp + u0 + (u1 - 0.2) * t + rng.normal(0, 4))
                )
    return pd.DataFrame(rows, columns=["programme", "client", "time", "y"])


def test_analytic_derivatives_match_finite_differences():
    df = _toy()
    m, _ = build(df, "time", THREE)
    zty, xty, yty = m.stats(df["y"].to_numpy())
    theta = np.array([0.4, 1.1, -0.01, 0.03])
    sigma = 4.2

    def dev(phi):
        th, s = phi[:-1], phi[-1]
        c = m._core(th, zty, xty, yty)
        return (
            c["logdetA"] + c["logdetX"] + c["pwrss"] / s**2 + (m.n - m.p) * np.log(2 * np.pi * s**2)
        )

    c = m._core(theta, zty, xty, yty)
    d = m._derivs(theta, sigma, c)
    phi = np.append(theta, sigma)
    k = len(phi)
    h = 1e-6 * np.maximum(1, np.abs(phi))
    g_num = np.array(
        [
            (dev(phi + h[i] * np.eye(k)[i]) - dev(phi - h[i] * np.eye(k)[i])) / (2 * h[i])
            for i in range(k)
        ]
    )
    np.testing.assert_allclose(-2 * d["g_phi"], g_num, rtol=1e-5, atol=1e-5)
    h = 1e-4 * np.maximum(1, np.abs(phi))  # second differences need a larger step
    H_num = np.empty((k, k))
    for i in range(k):
        ei = np.eye(k)[i] * h[i]
        for j in range(k):
            ej = np.eye(k)[j] * h[j]
            H_num[i, j] = (
                dev(phi + ei + ej) - dev(phi + ei - ej) - dev(phi - ei + ej) + dev(phi - ei - ej)
            ) / (4 * h[i] * h[j])
    np.testing.assert_allclose(-2 * d["H_phi"], H_num, rtol=1e-4, atol=1e-2)


def test_two_level_model_matches_statsmodels():
    """(1 + Days | Subject) on sleepstudy: statsmodels MixedLM REML (interior optimum)."""
    import statsmodels.formula.api as smf

    df = pd.read_csv(ML / "data" / "sleepstudy.csv")
    m, names = build(df, "Days", [("Subject", ["(Intercept)", "Days"])])
    fit = m.fit(m.stats(df["Reaction"].to_numpy(float)), tol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = smf.mixedlm("Reaction ~ Days", df, groups="Subject", re_formula="~Days").fit(
            reml=True, method=["powell", "lbfgs"], maxiter=5000
        )
    np.testing.assert_allclose(fit.beta, sm.fe_params.to_numpy(), rtol=1e-4)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)), sm.bse_fe.to_numpy(), rtol=1e-3)
    assert fit.sigma**2 == pytest.approx(sm.scale, rel=1e-3)
    cov_sm = sm.cov_re.to_numpy()
    lam = fit.theta
    cov_ours = fit.sigma**2 * np.array(
        [[lam[0] ** 2, lam[0] * lam[1]], [lam[0] * lam[1], lam[1] ** 2 + lam[2] ** 2]]
    )
    np.testing.assert_allclose(cov_ours, cov_sm, rtol=5e-3)


def test_boundary_fit_is_flagged_singular():
    # no programme variance in the data: the programme SD estimate sits at 0 in many draws
    df = _toy(seed=1)
    rng = np.random.default_rng(0)
    m, _ = build(df, "time", THREE)
    n_sing = 0
    for _ in range(10):
        y = 50 + rng.normal(0, 5, len(df))
        fit = m.fit(m.stats(y))
        assert np.isfinite(fit.deviance)
        n_sing += fit.singular
    assert n_sing >= 5


def _general_fit():
    try:
        from effectstudy.multilevel.lmm import fit
    except ImportError:  # pragma: no cover - engine written concurrently
        return None
    return fit


@pytest.mark.skipif(_general_fit() is None, reason="effectstudy.multilevel.lmm.fit not available")
@pytest.mark.parametrize("which", ["A", "C"])
def test_agrees_with_general_multilevel_engine(which):
    """Fast power engine vs effectstudy.multilevel.fit on simulated data sets."""
    from effectstudy.power.growth import reference_design

    lay = pd.read_csv(ML / "data" / f"power_design_{which}.csv")
    d = reference_design(which, lay)
    if which == "A":
        formula, ddf = "y ~ time + (1 | programme) + (1 + time | client)", "satterthwaite"
    else:
        formula, ddf = "y ~ time + (1 | programme) + (1 | client)", "kenward-roger"
    eng = d.simulation_engine()
    fit_general = _general_fit()
    compared = 0
    for seed in range(40):
        y = eng.draw(np.random.default_rng(seed))
        ours = eng.model.fit(eng.model.stats(y), start=eng.theta0, tol=1e-12)
        data = lay.assign(y=y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gen = fit_general(formula, data)
        # both engines reach the same optimum, at the boundary too (the general
        # engine checks the KKT conditions at its bounds, so it does not stop at a
        # false boundary optimum: design A seed 7 here, seeds 1 and 4 elsewhere)
        assert gen.reml_criterion == pytest.approx(ours.deviance, abs=1e-6), seed
        assert not any("false boundary" in m for m in gen.messages), seed
        if ours.singular:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tab = gen.coefficients(ddf=ddf).set_index("term")
        L = eng.L
        r = eng.model.contrast_tests(ours, L, satterthwaite=True, kr=(ddf == "kenward-roger"))
        row = tab.loc["time"]
        assert r["estimate"] == pytest.approx(row["estimate"], rel=1e-5), seed
        se = r["se_kr"] if ddf == "kenward-roger" else r["se"]
        df = r["df_kr"] if ddf == "kenward-roger" else r["df_satterthwaite"]
        assert se == pytest.approx(row["se"], rel=1e-4), seed
        assert df == pytest.approx(row["df"], rel=1e-3), seed
        compared += 1
    assert compared >= 25  # every non-singular seed (here design A: 30, design C: 31)


BOUNDARY_REF = Path(__file__).parent / "data" / "boundary_reference"


def test_boundary_fits_match_lmertest_and_pbkrtest():
    """Singular fits (programme SD or slope Cholesky at 0) against lmerTest/pbkrtest.

    The data sets (design A draws 5, 8, 11, 0 of ``SeedSequence(1).spawn(40)``) and
    R's values are stored in tests/power/data/boundary_reference/, written by
    benchmarks/r/fastlmm_boundary_reference.py (R is never called from the tests).
    """
    from effectstudy.power.growth import GrowthDesign

    lay = pd.read_csv(ML / "data" / "power_design_A.csv")
    eng = GrowthDesign(layout=lay).simulation_engine()
    ref = pd.read_csv(BOUNDARY_REF / "r_reference.csv", comment="#").set_index("file")
    assert len(ref) == 4
    ours = {}
    for name in ref.index:
        data = pd.read_csv(BOUNDARY_REF / name)
        pd.testing.assert_frame_equal(data[lay.columns], lay)
        y = data["y"].to_numpy(float)
        fit = eng.model.fit(eng.model.stats(y), start=eng.theta0, tol=1e-12)
        ours[name] = (fit, eng.model.contrast_tests(fit, eng.L, kr=True))
    # programme boundary, both, slope boundary, interior
    assert sum(fit.singular for fit, _ in ours.values()) == 3
    for name, (fit, r) in ours.items():
        row = ref.loc[name]
        assert fit.singular == bool(row["singular"])
        assert fit.deviance == pytest.approx(row["REMLcrit"], abs=1e-6)
        assert r["estimate"] == pytest.approx(row["estimate"], rel=1e-6, abs=1e-9)
        assert r["se"] == pytest.approx(row["se"], rel=1e-5)
        assert r["df_satterthwaite"] == pytest.approx(row["df_satterthwaite"], rel=1e-4)
        assert r["se_kr"] == pytest.approx(row["se_kr"], rel=1e-5)
        assert r["df_kr"] == pytest.approx(row["df_kr"], rel=1e-4)
