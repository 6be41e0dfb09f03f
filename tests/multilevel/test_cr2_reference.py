"""CR2 / Satterthwaite / HTZ against clubSandwich 0.5.8 (expected_cr2.csv, every row).

OLS rows (C1-C3, sleepstudy lm) are fitted here with patsy + least squares and must
agree to 1e-6 relative.  Mixed-model rows (C4, C5, sleepstudy lmer) need the REML
working covariance V of ``lmer(... + (1 + time | client))``.  Until the lme4-style
engine (``effectstudy.multilevel.fit``) exists, the test builds V from a statsmodels
``MixedLM`` REML fit (random intercept + slope per client), polished by a small
profiled-REML optimisation on the same parameters, and passes it through a
duck-typed adapter exposing exactly what the real fit object will expose
(``X, y, beta, fixed_names, data, marginal_covariance(), vcov()``); 1e-4 relative.
"""

from __future__ import annotations

import re
import warnings
from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from effectstudy.multilevel.robust import ClusterRobustResult, cluster_robust
from refdata import REFERENCE

REF_DIR = REFERENCE / "multilevel"
EXPECTED = REF_DIR / "expected_cr2.csv"

OLS_RTOL = 1e-6
LMM_RTOL = 1e-4


def _load() -> pd.DataFrame:
    if not EXPECTED.is_file():  # pragma: no cover - collection without reference
        return pd.DataFrame(columns=["dataset", "model_id", "term", "quantity", "value"])
    frame = pd.read_csv(EXPECTED, keep_default_na=False)
    return frame


ROWS = _load()


def _row_id(row: pd.Series) -> str:
    return f"{row['dataset']}|{row['model_id'].split('_')[0]}|{row['term']}|{row['quantity']}"


PARAMS = [
    pytest.param(r["dataset"], r["model_id"], r["term"], r["quantity"], r["value"], id=_row_id(r))
    for _, r in ROWS.iterrows()
]


# ---------------------------------------------------------------------------
# model specifications (from the r_call column)
# ---------------------------------------------------------------------------


def _spec(dataset: str, model_id: str) -> tuple[str, str, bool]:
    """(formula, cluster, mixed) for a reference model."""
    kind = model_id.split("_")[0]
    if dataset == "sleepstudy":
        return "Reaction ~ Days", "Subject", kind == "C4"
    if kind == "C3":
        return "outcome ~ time * programme", "client", False
    cluster = "programme" if kind in ("C1", "C5") else "client"
    return "outcome ~ time * fidelity + age", cluster, kind in ("C4", "C5")


def _patsy_name(r_name: str) -> str:
    """R coefficient name -> patsy name (treatment contrasts)."""
    if r_name == "(Intercept)":
        return "Intercept"
    return re.sub(r"programme(P\d+)", r"programme[T.\1]", r_name)


# ---------------------------------------------------------------------------
# stand-in for the lmm engine: REML random intercept + slope per group
# ---------------------------------------------------------------------------


class _REMLRandomSlopeFit:
    """Duck-typed mixed-model fit: ``y ~ X + (1 + slope | group)`` by REML.

    Exposes the attributes the effectstudy lmm fit object will have:
    ``X, y, beta, fixed_names, data, marginal_covariance(), vcov()``.
    Starting values come from statsmodels ``MixedLM`` (REML, slope variable rescaled
    for numerical stability); the relative covariance parameters are then polished
    by minimising the profiled REML deviance (Bates et al. 2015, eq. 41) with tight
    tolerances.
    """

    def __init__(self, formula: str, data: pd.DataFrame, group: str, slope: str) -> None:
        import patsy
        import statsmodels.formula.api as smf

        yd, Xd = patsy.dmatrices(formula, data, return_type="dataframe")
        self.data = data.loc[Xd.index].reset_index(drop=True)
        self.X = Xd.to_numpy(dtype=float)
        self.y = yd.to_numpy(dtype=float).ravel()
        self.fixed_names = list(Xd.columns)
        groups = self.data[group].to_numpy()
        self._idx = list(pd.Series(np.arange(len(groups))).groupby(groups).indices.values())
        t = self.data[slope].to_numpy(dtype=float)
        # work on a rescaled slope variable (same model, better conditioned); V is unchanged
        scale = max(float(np.abs(t).max()) / 5.0, 1.0)
        self._Z = np.column_stack([np.ones_like(t), t / scale])
        scaled = self.data.copy()
        scaled[slope] = t / scale
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sm = smf.mixedlm(formula, scaled, groups=scaled[group], re_formula=f"~{slope}").fit(
                reml=True, method="lbfgs", gtol=1e-10, maxiter=5000
            )
        G = np.asarray(sm.cov_re, dtype=float) / sm.scale
        L0 = np.linalg.cholesky(G + 1e-12 * np.eye(2))
        x0 = np.array([L0[0, 0], L0[1, 0], L0[1, 1]])
        opt = optimize.minimize(self._deviance, x0, method="BFGS", options={"gtol": 1e-9})
        self.theta = opt.x
        self.reml_deviance = float(opt.fun)
        self.beta, self.sigma2, self._XtViX = self._gls(self.theta)

    def _G(self, theta: np.ndarray) -> np.ndarray:
        L = np.array([[theta[0], 0.0], [theta[1], theta[2]]])
        return L @ L.T

    def _pieces(self, theta: np.ndarray):
        G = self._G(theta)
        p = self.X.shape[1]
        XtViX = np.zeros((p, p))
        XtViy = np.zeros(p)
        ytViy = 0.0
        logdet = 0.0
        for ix in self._idx:
            Z = self._Z[ix]
            V = Z @ G @ Z.T + np.eye(len(ix))
            C = np.linalg.cholesky(V)
            logdet += 2.0 * np.log(np.diag(C)).sum()
            Xi = np.linalg.solve(C, self.X[ix])
            yi = np.linalg.solve(C, self.y[ix])
            XtViX += Xi.T @ Xi
            XtViy += Xi.T @ yi
            ytViy += yi @ yi
        return XtViX, XtViy, ytViy, logdet

    def _deviance(self, theta: np.ndarray) -> float:
        XtViX, XtViy, ytViy, logdet = self._pieces(theta)
        n, p = self.X.shape
        beta = np.linalg.solve(XtViX, XtViy)
        rss = ytViy - beta @ XtViy
        return float(logdet + np.linalg.slogdet(XtViX)[1] + (n - p) * np.log(rss))

    def _gls(self, theta: np.ndarray):
        XtViX, XtViy, ytViy, _ = self._pieces(theta)
        n, p = self.X.shape
        beta = np.linalg.solve(XtViX, XtViy)
        sigma2 = (ytViy - beta @ XtViy) / (n - p)
        return beta, sigma2, XtViX

    def marginal_covariance(self) -> np.ndarray:
        G = self._G(self.theta) * self.sigma2
        n = len(self.y)
        V = np.zeros((n, n))
        for ix in self._idx:
            Z = self._Z[ix]
            V[np.ix_(ix, ix)] = Z @ G @ Z.T + self.sigma2 * np.eye(len(ix))
        return V

    def vcov(self) -> np.ndarray:
        return self.sigma2 * np.linalg.inv(self._XtViX)


# ---------------------------------------------------------------------------
# fitted-once cache
# ---------------------------------------------------------------------------


@cache
def _data(dataset: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / f"{dataset}.csv")


@cache
def _lmm(dataset: str) -> _REMLRandomSlopeFit:
    formula, _, _ = _spec(dataset, "C4")
    group = "Subject" if dataset == "sleepstudy" else "client"
    slope = "Days" if dataset == "sleepstudy" else "time"
    return _REMLRandomSlopeFit(formula, _data(dataset), group, slope)


@cache
def _result(dataset: str, model_id: str) -> ClusterRobustResult:
    formula, cluster, mixed = _spec(dataset, model_id)
    if mixed:
        return cluster_robust(_lmm(dataset), cluster=cluster)
    return cluster_robust(formula, _data(dataset), cluster=cluster)


@pytest.fixture(scope="module")
def results():
    """Module-level cache of fitted results (each model fitted once)."""
    yield _result
    _result.cache_clear()
    _lmm.cache_clear()


_COEF_COLUMN = {
    "estimate": "estimate",
    "se_CR2": "se",
    "t_CR2": "statistic",
    "df_satterthwaite_CR2": "df",
    "p_satterthwaite_CR2": "p_value",
}
_WALD_FIELD = {
    "wald_HTZ_F": "F",
    "wald_HTZ_delta": "delta",
    "wald_HTZ_df_num": "df_num",
    "wald_HTZ_df_denom": "df_denom",
    "wald_HTZ_p": "p_value",
}


def _ours(res: ClusterRobustResult, term: str, quantity: str) -> float:
    if quantity == "n_clusters":
        return float(res.n_clusters)
    if quantity == "vcov_CR2":
        a, b = term.split("|")
        return float(res.vcov.loc[_patsy_name(a), _patsy_name(b)])
    if quantity in _COEF_COLUMN:
        frame = res.coefficients().set_index("term")
        return float(frame.loc[_patsy_name(term), _COEF_COLUMN[quantity]])
    if quantity in _WALD_FIELD:
        inside = re.search(r"\[(.*)=0\]", term)
        assert inside is not None, term
        terms = [_patsy_name(t) for t in inside.group(1).split(";")]
        return float(getattr(res.wald_test(terms), _WALD_FIELD[quantity]))
    raise AssertionError(f"unknown quantity {quantity}")


@pytest.mark.parametrize(("dataset", "model_id", "term", "quantity", "value"), PARAMS)
def test_cr2_reference_row(results, dataset, model_id, term, quantity, value):
    expected = float(value)
    _, _, mixed = _spec(dataset, model_id)
    ours = _ours(results(dataset, model_id), term, quantity)
    rtol = LMM_RTOL if mixed else OLS_RTOL
    assert ours == pytest.approx(expected, rel=rtol, abs=0.0), (ours, expected)


def test_reference_rows_present():
    assert len(ROWS) == 1037


def test_formula_and_array_inputs_agree():
    data = _data("growth_a")
    by_name = cluster_robust("outcome ~ time * fidelity + age", data, cluster="programme")
    by_values = cluster_robust(
        "outcome ~ time * fidelity + age", data, cluster=data["programme"].to_numpy()
    )
    np.testing.assert_allclose(by_name.vcov.to_numpy(), by_values.vcov.to_numpy())
    frame = by_name.coefficients()
    assert list(frame.columns) == ["term", "estimate", "se", "df", "statistic", "p_value"]
    assert by_name.wald_test(["fidelity", "time:fidelity"]).to_frame().shape[0] == 1


def test_non_nested_working_covariance_rejected():
    from effectstudy.errors import ModelError

    fit = _lmm("sleepstudy")
    with pytest.raises(ModelError):
        # clusters that split subjects: the random effects are not nested in them
        cluster_robust(fit, cluster=np.arange(len(fit.y)) % 2)
