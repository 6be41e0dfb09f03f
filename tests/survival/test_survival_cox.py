"""Cox model beyond the R reference rows: brute-force likelihoods, Firth, warnings, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from effectstudy.errors import DataError
from effectstudy.survival import (
    ConvergenceWarning,
    FewEventsWarning,
    SeparationWarning,
    cox,
    events_per_variable,
)
from refdata import REFERENCE

ABSCONDING = REFERENCE / "study" / "data" / "absconding_20261130.csv"
COVARIATES = ["age", "prior_absconding"]


@pytest.fixture(scope="module")
def absconding() -> pd.DataFrame:
    if not ABSCONDING.is_file():
        pytest.fail(f"reference data not found at {ABSCONDING}; set EFFECTSTUDY_REFERENCE")
    return pd.read_csv(ABSCONDING)


def naive_loglik_info(beta, t, e, x, ties):
    """Partial log-likelihood and information by explicit loops over risk sets."""
    beta = np.asarray(beta, dtype=float)
    p = x.shape[1]
    ll, info = 0.0, np.zeros((p, p))
    for tau in np.unique(t[e == 1]):
        risk = np.flatnonzero(t >= tau)
        dead = np.flatnonzero((t == tau) & (e == 1))
        d = len(dead)
        for step in range(d):
            f = step / d if ties == "efron" else 0.0
            w = np.exp(x[risk] @ beta) * np.where(np.isin(risk, dead), 1 - f, 1.0)
            a = w.sum()
            mean = (w[:, None] * x[risk]).sum(axis=0) / a
            second = (w[:, None, None] * x[risk][:, :, None] * x[risk][:, None, :]).sum(0) / a
            ll -= np.log(a)
            info += second - np.outer(mean, mean)
        ll += sum(x[j] @ beta for j in dead)
    return ll, info


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_loglik_and_se_match_brute_force(absconding, ties):
    t = absconding["weeks"].to_numpy(float)
    e = absconding["absconded"].to_numpy()
    x = absconding[COVARIATES].to_numpy(float)
    fit = cox(absconding, time="weeks", event="absconded", covariates=COVARIATES, ties=ties)
    beta = fit.coefficients()["estimate"].to_numpy()
    ll, info = naive_loglik_info(beta, t, e, x, ties)
    assert fit.loglik == pytest.approx(ll, rel=1e-10)
    se = np.sqrt(np.diag(np.linalg.inv(info)))
    np.testing.assert_allclose(fit.coefficients()["se"], se, rtol=1e-8)
    ll0, _ = naive_loglik_info(np.zeros(2), t, e, x, ties)
    assert fit.loglik_null == pytest.approx(ll0, rel=1e-10)
    # the maximum: a brute-force optimiser finds no higher likelihood
    best = optimize.minimize(lambda b: -naive_loglik_info(b, t, e, x, ties)[0], beta + 0.05,
                             method="Nelder-Mead",
                             options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 4000})
    np.testing.assert_allclose(beta, best.x, atol=1e-5)
    assert -best.fun <= fit.loglik + 1e-12


def test_efron_equals_breslow_without_ties(absconding):
    d = absconding.copy()
    d["weeks"] = d["weeks"] + np.arange(len(d)) * 1e-3  # break every tie
    a = cox(d, time="weeks", event="absconded", covariates=COVARIATES, ties="efron")
    b = cox(d, time="weeks", event="absconded", covariates=COVARIATES, ties="breslow")
    np.testing.assert_allclose(a.coefficients()["estimate"], b.coefficients()["estimate"],
                               rtol=1e-10)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)


def test_robust_se_with_one_client_per_cluster_ignores_row_order(absconding):
    """With one client per cluster the sandwich is the plain Lin-Wei robust variance."""
    d = absconding.copy()
    d["id"] = np.arange(len(d))
    a = cox(d, time="weeks", event="absconded", covariates=COVARIATES, cluster="id")
    b = cox(d.iloc[::-1], time="weeks", event="absconded", covariates=COVARIATES, cluster="id")
    np.testing.assert_allclose(a.coefficients()["robust_se"], b.coefficients()["robust_se"],
                               rtol=1e-10)
    # robust and model SE agree roughly when the model holds (same order of magnitude)
    ratio = a.coefficients()["robust_se"] / a.coefficients()["se"]
    assert ((ratio > 0.5) & (ratio < 2)).all()


# --------------------------------------------------------------------------- #
# Firth
# --------------------------------------------------------------------------- #
SEPARATED = pd.DataFrame({
    "time":  [1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14],
    "event": [1, 1, 1, 0, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0],
    "exposed": [1, 1, 1, 0, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0],
    "age": [15.2, 13.1, 17.0, 16.4, 14.8, 12.9, 15.5, 16.1, 13.7, 17.3, 14.0, 15.9, 12.5,
            16.8, 14.4, 13.3],
})


@pytest.mark.parametrize("ties", ["efron", "breslow"])
def test_firth_matches_brute_force_penalised_likelihood(ties):
    d = SEPARATED
    t, e = d["time"].to_numpy(float), d["event"].to_numpy()
    x = d[["exposed", "age"]].to_numpy(float)

    def neg_penalised(b):
        ll, info = naive_loglik_info(b, t, e, x, ties)
        sign, logdet = np.linalg.slogdet(info)
        return -(ll + 0.5 * logdet) if sign > 0 else np.inf

    best = optimize.minimize(neg_penalised, np.zeros(2), method="Nelder-Mead",
                             options={"xatol": 1e-10, "fatol": 1e-13, "maxiter": 10000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewEventsWarning)
        fit = cox(d, time="time", event="event", covariates=["exposed", "age"], ties=ties,
                  firth=True)
    est = fit.coefficients()["estimate"].to_numpy()
    np.testing.assert_allclose(est, best.x, atol=1e-5)
    assert fit.penalised_loglik == pytest.approx(-best.fun, abs=1e-9)
    assert fit.converged
    assert np.isfinite(fit.coefficients()["se"]).all()


def test_separation_warns_and_offers_firth():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = cox(SEPARATED, time="time", event="event", covariates=["exposed", "age"])
    sep = [w for w in caught if issubclass(w.category, SeparationWarning)]
    assert len(sep) == 1
    assert "exposed" in str(sep[0].message) and "firth=True" in str(sep[0].message)
    assert not fit.converged
    assert fit.coefficients().set_index("term").loc["exposed", "estimate"] > 5
    assert any("firth=True" in n for n in fit.warnings)


def test_few_events_warning(absconding):
    d = SEPARATED
    with pytest.warns(FewEventsWarning, match="events per covariate"):
        epv = events_per_variable(d, event="event", covariates=["exposed", "age"])
    assert epv == pytest.approx(d["event"].sum() / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewEventsWarning)
        assert events_per_variable(absconding, event="absconded",
                                   covariates=COVARIATES) >= 10
        cox(absconding, time="weeks", event="absconded", covariates=COVARIATES)
    with pytest.warns(FewEventsWarning):
        cox(absconding.iloc[:20], time="weeks", event="absconded", covariates=COVARIATES)


# --------------------------------------------------------------------------- #
# Bad input
# --------------------------------------------------------------------------- #
def test_constant_covariate_is_an_error(absconding):
    d = absconding.assign(constant=1.0)
    with pytest.raises(DataError) as err:
        cox(d, time="weeks", event="absconded", covariates=["age", "constant"])
    assert err.value.column == "constant"


def test_collinear_covariates_are_an_error(absconding):
    d = absconding.assign(age_months=absconding["age"] * 12)
    with pytest.raises(DataError, match="collinear"):
        cox(d, time="weeks", event="absconded", covariates=["age", "age_months"])


@pytest.mark.parametrize("kwargs, column", [
    ({"ties": "exact"}, None),
    ({"covariates": ["age", "missing_column"]}, "missing_column"),
    ({"cluster": "no_such_cluster"}, "no_such_cluster"),
    ({"cluster": "programme", "firth": True}, "programme"),
])
def test_bad_arguments(absconding, kwargs, column):
    args = {"time": "weeks", "event": "absconded", "covariates": COVARIATES} | kwargs
    with pytest.raises(DataError) as err:
        cox(absconding, **args)
    assert err.value.column == column


def test_missing_covariate_value_names_column_and_count(absconding):
    d = absconding.copy()
    d.loc[[3, 7], "age"] = np.nan
    with pytest.raises(DataError) as err:
        cox(d, time="weeks", event="absconded", covariates=COVARIATES)
    assert err.value.column == "age" and err.value.row == 3
    assert "2 row(s)" in str(err.value)
    assert "P1_C04" not in str(err.value)


def test_result_api(absconding):
    import matplotlib

    matplotlib.use("Agg")
    fit = cox(absconding, time="weeks", event="absconded", covariates=COVARIATES)
    tab = fit.coefficients()
    assert list(tab.columns) == ["term", "estimate", "se", "statistic", "p_value",
                                 "hazard_ratio", "hr_ci_lower", "hr_ci_upper"]
    np.testing.assert_allclose(tab["hazard_ratio"], np.exp(tab["estimate"]))
    assert fit.converged and fit.iterations < 10
    assert fit.warnings == ()
    s = fit.summary()
    assert s.loc[0, "lr_statistic"] == pytest.approx(2 * (fit.loglik - fit.loglik_null))
    assert s.loc[0, "events"] == absconding["absconded"].sum()
    assert "<table" in fit._repr_html_()
    fig = fit.plot()
    assert len(fig.axes[0].get_yticklabels()) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_iteration_limit_warns_and_is_not_converged(absconding):
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iteration") as rec:
        fit = cox(absconding, time="weeks", event="absconded", covariates=COVARIATES,
                  max_iter=1)
    # an unfinished fit is not misreported as separation (monotone likelihood)
    assert not [w for w in rec if issubclass(w.category, SeparationWarning)]
    assert not fit.converged and fit.iterations == 1
    assert any("did not converge" in n for n in fit.warnings)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert cox(absconding, time="weeks", event="absconded",
                   covariates=COVARIATES).converged
    for bad in (0, 2.5, True):
        with pytest.raises(DataError, match="max_iter"):
            cox(absconding, time="weeks", event="absconded", covariates=COVARIATES,
                max_iter=bad)


def test_robust_se_by_hand_for_breslow_without_ties(absconding):
    """Lin-Wei sandwich written out from its definition (Breslow, no tied times).

    Score residual of subject i: delta_i (x_i - xbar(t_i)) - sum over event times
    t_j <= t_i of r_i (x_i - xbar(t_j)) / S0(t_j); dfbeta = residual I^-1; robust
    covariance = sum over clusters of (sum of dfbeta)(sum of dfbeta)'.
    """
    d = absconding.copy()
    d["weeks"] = d["weeks"] + np.arange(len(d)) * 1e-3
    fit = cox(d, time="weeks", event="absconded", covariates=COVARIATES, ties="breslow",
              cluster="programme")
    t = d["weeks"].to_numpy(float)
    e = d["absconded"].to_numpy()
    x = d[COVARIATES].to_numpy(float)
    x = x - x.mean(axis=0)
    beta = fit.coefficients()["estimate"].to_numpy()
    r = np.exp(x @ beta)
    resid = np.zeros_like(x)
    for j in np.flatnonzero(e == 1):
        risk = t >= t[j]
        s0 = r[risk].sum()
        xbar = (r[risk, None] * x[risk]).sum(axis=0) / s0
        resid[j] += x[j] - xbar
        resid[risk] -= r[risk, None] * (x[risk] - xbar) / s0
    _, info = naive_loglik_info(beta, t, e, x, "breslow")
    dfbeta = resid @ np.linalg.inv(info)
    groups = pd.Series(range(len(d))).groupby(d["programme"].to_numpy())
    summed = np.array([dfbeta[idx].sum(axis=0) for idx in groups.indices.values()])
    robust = np.sqrt(np.diag(summed.T @ summed))
    np.testing.assert_allclose(fit.coefficients()["robust_se"], robust, rtol=1e-8)
    # with a cluster the interval is built on the robust SE (as summary(coxph) does)
    tab = fit.coefficients()
    np.testing.assert_allclose(np.log(tab["hr_ci_upper"]) - tab["estimate"],
                               1.959963984540054 * tab["robust_se"], rtol=1e-9)
