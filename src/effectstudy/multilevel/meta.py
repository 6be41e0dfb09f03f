"""Multilevel random-effects meta-analysis of case-level effect sizes (REML).

Effect sizes ``y_i`` with known sampling variances ``v_i`` are nested in cases, and
cases in programmes.  The model (Van den Noortgate & Onghena 2008; Konstantopoulos
2011) is

    y = X beta + sum_l Z_l u_l + e,   u_l ~ N(0, sigma2_l I),   e ~ N(0, diag(v)),

so the marginal covariance is ``V = sum_l sigma2_l Z_l Z_l' + diag(v)``, with one
random intercept per level of each nesting factor (``programme``,
``programme/case``, optionally ``programme/case/es_id``).  The variance components
are estimated by restricted maximum likelihood, matching metafor 3.8
``rma.mv(yi, vi, random = ~ 1 | programme/case, method = "REML")``:

* REML log-likelihood (metafor's, with ``REMLf = TRUE``):
  ``ll = -(k - p)/2 log(2 pi) + 1/2 log|X'X| - 1/2 log|V| - 1/2 log|X' V^-1 X| - 1/2 r' V^-1 r``;
  deviance ``= -2 ll``; ``AIC = -2 ll + 2 q``, ``BIC = -2 ll + q log(k - p)``,
  ``AICc = -2 ll + 2 q max(k - p, q + 2) / (max(k - p, q + 2) - q - 1)`` with
  ``q = p + number of variance components``.
* Fixed effects ``b = (X' V^-1 X)^-1 X' V^-1 y`` with model-based covariance
  ``(X' V^-1 X)^-1``; Wald z tests, or t tests with metafor's ``dfs = "contain"``
  degrees of freedom (for each coefficient, the number of levels of the coarsest
  nesting factor within whose levels the predictor is constant, minus ``p``).
* Cochran's heterogeneity statistic ``QE = y' P y`` with
  ``P = W - W X (X' W X)^-1 X' W``, ``W = diag(1 / v)``, on ``k - p`` df; the
  omnibus moderator test ``QM`` (chi-square on ``m`` df, or ``F = QM / m``).
* Multilevel I-squared (Cheung 2014): with the typical sampling variance
  ``v~ = (k - p) / tr(P)``, ``I2_l = sigma2_l / (sum sigma2 + v~)`` and
  ``I2_total = sum sigma2 / (sum sigma2 + v~)``.
* Cluster-robust CR2 inference on programmes (``robust(..., clubSandwich = TRUE)``)
  via :func:`effectstudy.multilevel.robust.cr2_from_arrays` with working model ``V``.

References
----------
Cheung, M. W.-L. (2014). Modeling dependent effect sizes with three-level
meta-analyses: a structural equation modeling approach. *Psychological Methods*,
19(2), 211-229.

Konstantopoulos, S. (2011). Fixed effects and variance components estimation in
three-level meta-analysis. *Research Synthesis Methods*, 2(1), 61-76.

Van den Noortgate, W., & Onghena, P. (2008). A multilevel meta-analysis of
single-subject experimental design studies. *Evidence-Based Communication
Assessment and Intervention*, 2(3), 142-151.

Viechtbauer, W. (2010). Conducting meta-analyses in R with the metafor package.
*Journal of Statistical Software*, 36(3), 1-48.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, stats

from effectstudy._compat import renamed_keywords
from effectstudy._results import ResultMixin
from effectstudy._validate import check_confidence
from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel.robust import ClusterRobustResult, cr2_from_arrays

__all__ = ["MetaAnalysisResult", "meta_analysis"]


@dataclass(frozen=True, eq=False)
class MetaAnalysisResult(ResultMixin):
    """Result of :func:`meta_analysis` (multilevel REML meta-analysis).

    Attributes
    ----------
    terms : tuple of str
        Coefficient names (``intrcpt`` for the intercept, as metafor).
    estimate, se, statistic, p_value, ci_lower, ci_upper, df : ndarray
        Per-coefficient results; ``df`` is ``inf`` for z tests.
    test : str
        ``"z"`` or ``"t"``.
    confidence : float
        Confidence level of the intervals (``level`` is its deprecated name).
    components : tuple of str
        Variance-component labels, e.g. ``("programme", "programme/case")``.
    sigma2 : ndarray
        REML variance components, one per level.
    n_levels : tuple of int
        Number of levels of each nesting factor.
    k : int
        Number of effect sizes.
    QE, QE_df, QE_p : float
        Residual heterogeneity test.
    QM, QM_df, QM_p : float
        Omnibus test of the moderators (NaN without moderators); ``QM_df`` is
        ``(m,)`` for z and ``(m, ddf)`` for t.
    logLik, deviance, AIC, BIC, AICc : float
        REML fit statistics as metafor computes them.
    typical_sampling_variance : float
        Cheung's (2014) ``v~ = (k - p) / tr(P)``.
    """

    terms: tuple[str, ...]
    estimate: np.ndarray
    se: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_lower: np.ndarray
    ci_upper: np.ndarray
    df: np.ndarray
    test: str
    confidence: float
    components: tuple[str, ...]
    sigma2: np.ndarray
    n_levels: tuple[int, ...]
    k: int
    QE: float
    QE_df: int
    QE_p: float
    QM: float
    QM_df: tuple[float, ...]
    QM_p: float
    logLik: float
    deviance: float
    AIC: float
    BIC: float
    AICc: float
    typical_sampling_variance: float
    vcov: pd.DataFrame
    method: str = "REML"
    warnings: tuple[str, ...] = ()
    # arrays needed for cluster-robust inference
    _X: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _y: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _V: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    _data: pd.DataFrame = field(default=None, repr=False)  # type: ignore[assignment]
    _title = "Multilevel meta-analysis (REML)"

    @property
    def level(self) -> float:
        """Deprecated name of :attr:`confidence` (kept for one release)."""
        warnings.warn("MetaAnalysisResult.level is deprecated and will be removed in the next "
                      "release; use .confidence", FutureWarning, stacklevel=2)
        return self.confidence

    def to_frame(self) -> pd.DataFrame:
        """Coefficients: term, estimate, se, statistic, df, p_value, ci_lower, ci_upper."""
        return pd.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.estimate,
                "se": self.se,
                "statistic": self.statistic,
                "df": self.df,
                "p_value": self.p_value,
                "ci_lower": self.ci_lower,
                "ci_upper": self.ci_upper,
            }
        )

    @property
    def I2(self) -> np.ndarray:
        """Multilevel I-squared per component (Cheung 2014)."""
        return self.sigma2 / (self.sigma2.sum() + self.typical_sampling_variance)

    @property
    def I2_total(self) -> float:
        """Share of total variance that is heterogeneity, ``sum sigma2 / (sum sigma2 + v~)``."""
        s = float(self.sigma2.sum())
        return s / (s + self.typical_sampling_variance)

    def heterogeneity(self) -> pd.DataFrame:
        """Tidy frame per component: component, sigma2, sd, n_levels, I2; plus a total row."""
        rows = pd.DataFrame(
            {
                "component": list(self.components),
                "sigma2": self.sigma2,
                "sd": np.sqrt(self.sigma2),
                "n_levels": list(self.n_levels),
                "I2": self.I2,
            }
        )
        total = pd.DataFrame(
            {
                "component": ["total"],
                "sigma2": [float(self.sigma2.sum())],
                "sd": [float(np.sqrt(self.sigma2.sum()))],
                "n_levels": [pd.NA],
                "I2": [self.I2_total],
            }
        )
        return pd.concat([rows, total], ignore_index=True)

    def fit_statistics(self) -> pd.DataFrame:
        """One-row frame: logLik, deviance, AIC, BIC, AICc (REML), k, QE, QE_df, QE_p."""
        return pd.DataFrame(
            {
                "logLik": [self.logLik],
                "deviance": [self.deviance],
                "AIC": [self.AIC],
                "BIC": [self.BIC],
                "AICc": [self.AICc],
                "k": [self.k],
                "QE": [self.QE],
                "QE_df": [self.QE_df],
                "QE_p": [self.QE_p],
            }
        )

    def robust(
        self, cluster: str | Sequence[Any] | np.ndarray = "programme"
    ) -> ClusterRobustResult:
        """CR2 cluster-robust inference (Pustejovsky & Tipton 2018) on ``cluster``.

        Equivalent to metafor's ``robust(fit, cluster, clubSandwich = TRUE)``: the
        working model is the fitted marginal covariance ``V`` (``W = V^-1``), with
        Satterthwaite df for single coefficients (see
        :meth:`ClusterRobustResult.conf_int` for intervals).
        """
        if isinstance(cluster, str):
            if cluster not in self._data.columns:
                raise DataError(f"cluster column {cluster!r} not in the data", column=cluster)
            values = self._data[cluster].to_numpy(dtype=object)
            name = cluster
        else:
            values = np.asarray(cluster, dtype=object)
            name = "cluster"
        return cr2_from_arrays(
            self._X, self._y, self.estimate, values, V=self._V, terms=self.terms, cluster_name=name
        )


# ---------------------------------------------------------------------------
# estimation
# ---------------------------------------------------------------------------


def _design(data: pd.DataFrame, mods: Any) -> tuple[np.ndarray, list[str]]:
    if mods is None:
        return np.ones((len(data), 1)), ["intrcpt"]
    from effectstudy.multilevel.design import design_matrix

    if isinstance(mods, str):
        rhs = mods.split("~", 1)[1] if "~" in mods else mods
    else:
        rhs = " + ".join(str(m) for m in mods)
    try:
        Xd = design_matrix(rhs, data, NA_action="raise")
    except ModelError as exc:
        raise ModelError(f"cannot build the moderator design {rhs!r}: {exc.message}",
                         column=exc.column) from exc
    names = ["intrcpt" if c == "Intercept" else c for c in Xd.column_names]
    X = np.asarray(Xd.matrix, dtype=float)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ModelError("the moderator design is rank deficient")
    return X, names


def _reml_pieces(
    sigma2: np.ndarray, ZZ: list[np.ndarray], v: np.ndarray, X: np.ndarray, y: np.ndarray
):
    V = np.diag(v) + sum(s * zz for s, zz in zip(sigma2, ZZ, strict=True))
    C = np.linalg.cholesky(V)
    logdetV = 2.0 * np.log(np.diag(C)).sum()
    Vi = np.linalg.inv(V)
    XtVi = X.T @ Vi
    XtViX = XtVi @ X
    XtViX_inv = np.linalg.inv(XtViX)
    P = Vi - XtVi.T @ XtViX_inv @ XtVi
    return V, logdetV, XtViX, XtViX_inv, P


def _neg2ll_reml(sigma2, ZZ, v, X, y, logdetXtX):
    k, p = X.shape
    try:
        _, logdetV, XtViX, _, P = _reml_pieces(sigma2, ZZ, v, X, y)
    except np.linalg.LinAlgError:
        return np.inf, np.full(len(sigma2), np.nan)
    rss = float(y @ P @ y)
    ll = (
        -0.5 * (k - p) * np.log(2 * np.pi)
        + 0.5 * logdetXtX
        - 0.5 * logdetV
        - 0.5 * np.linalg.slogdet(XtViX)[1]
        - 0.5 * rss
    )
    Py = P @ y
    grad = np.array([np.sum(P * zz) - Py @ zz @ Py for zz in ZZ])  # d(-2 ll)/d sigma2
    return -2.0 * ll, grad


def _contain_df(
    X: np.ndarray, factors: list[np.ndarray], n_levels: list[int], k: int
) -> np.ndarray:
    """metafor's ``dfs = "contain"``: levels of the coarsest factor a predictor is constant in, minus p."""
    p = X.shape[1]
    out = np.full(p, float(k))
    for j in range(p):
        cands = []
        for f, n in zip(factors, n_levels, strict=True):
            frame = pd.DataFrame({"f": f, "x": X[:, j]})
            if (frame.groupby("f")["x"].nunique() == 1).all():
                cands.append(n)
        if cands:
            out[j] = min(cands)
    out = out - p
    out[out < 1] = 1
    return out


@renamed_keywords("meta_analysis", {"level": "confidence"})
def meta_analysis(
    data: pd.DataFrame,
    *,
    yi: str,
    vi: str,
    levels: Sequence[str] = ("programme", "case"),
    mods: str | Sequence[str] | None = None,
    test: str = "z",
    method: str = "REML",
    confidence: float = 0.95,
) -> MetaAnalysisResult:
    """Multilevel random-effects meta-analysis by REML (metafor ``rma.mv``).

    Parameters
    ----------
    data : DataFrame
        One row per effect size.
    yi, vi : str
        Columns with the effect sizes and their (known) sampling variances.
    levels : sequence of str
        Nesting factors from outer to inner, e.g. ``["programme", "case"]``
        (``random = ~ 1 | programme/case``) or ``["programme", "case", "es_id"]``.
        Inner levels are taken within outer ones (labels need not be unique).
    mods : str or sequence of str, optional
        Moderators as a formula right-hand side (``"~ fidelity"``; grammar of
        :mod:`effectstudy.multilevel.design`) or column names.
    test : {"z", "t"}
        Wald z tests, or t tests with ``dfs = "contain"`` degrees of freedom.
    method : {"REML"}
        Only REML is implemented.
    confidence : float
        Confidence level of the intervals (``level=`` is its deprecated name and warns
        for one release).

    Returns
    -------
    MetaAnalysisResult
        ``to_frame()`` (coefficients), ``heterogeneity()`` (sigma2, n_levels, I2),
        ``fit_statistics()`` and ``robust(cluster)`` (CR2).

    Notes
    -----
    Variance components are optimised on the (non-negative) variance scale with the
    analytic REML gradient; a component at the boundary is reported as 0 (metafor,
    which optimises on the log scale, reports a tiny positive number instead).
    """
    if method != "REML":
        raise ModelError(f"method={method!r} is not supported; use 'REML'")
    if test not in ("z", "t"):
        raise ModelError(f"test must be 'z' or 't', not {test!r}")
    levels = list(levels)
    if not levels:
        raise ModelError("give at least one nesting level")
    needed = [yi, vi, *levels]
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise DataError(f"columns missing from the data: {missing}")
    d = data.reset_index(drop=True)
    if d[needed].isna().any().any():
        raise DataError("yi, vi and the level columns must not have missing values")
    y = d[yi].to_numpy(dtype=float)
    v = d[vi].to_numpy(dtype=float)
    if np.any(v <= 0):
        raise DataError("sampling variances must be positive", column=vi)
    X, names = _design(d, mods)
    k, p = X.shape
    if k <= p:
        raise ModelError("too few effect sizes for the model")

    # nesting factors: programme, programme/case, programme/case/es_id
    factors: list[np.ndarray] = []
    labels: list[str] = []
    n_levels: list[int] = []
    ZZ: list[np.ndarray] = []
    for i in range(len(levels)):
        key = d[levels[: i + 1]].astype(str).agg("\x1f".join, axis=1).to_numpy()
        codes, uniq = pd.factorize(key)
        factors.append(codes)
        labels.append("/".join(levels[: i + 1]))
        n_levels.append(len(uniq))
        ZZ.append((codes[:, None] == codes[None, :]).astype(float))

    logdetXtX = np.linalg.slogdet(X.T @ X)[1]

    # fixed-effect (sampling variance only) pieces: QE and Cheung's typical variance
    W = np.diag(1.0 / v)
    XtW = X.T @ W
    Pfe = W - XtW.T @ np.linalg.solve(XtW @ X, XtW)
    QE = float(y @ Pfe @ y)
    QE_df = k - p
    QE_p = float(stats.chi2.sf(QE, QE_df))
    vt = (k - p) / float(np.trace(Pfe))

    # REML: start from a method-of-moments-like split of the residual variance
    resid_var = max(
        float(np.var(y - X @ np.linalg.lstsq(X, y, rcond=None)[0])) - float(v.mean()), 0.01
    )
    x0 = np.full(len(ZZ), resid_var / len(ZZ))

    def fun(s):
        return _neg2ll_reml(s, ZZ, v, X, y, logdetXtX)

    opt = optimize.minimize(
        fun,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * len(ZZ),
        options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000},
    )
    sigma2 = np.maximum(opt.x, 0.0)
    # polish interior components by Newton steps on the REML score (Fisher information)
    for _ in range(50):
        V, _, _, XtViX_inv, P = _reml_pieces(sigma2, ZZ, v, X, y)
        Py = P @ y
        score = np.array([-0.5 * np.sum(P * zz) + 0.5 * Py @ zz @ Py for zz in ZZ])
        PZ = [P @ zz for zz in ZZ]
        info = 0.5 * np.array([[np.sum(a * b.T) for b in PZ] for a in PZ])
        free = ~((sigma2 <= 0) & (score <= 0))
        if not free.any():
            break
        step = np.zeros_like(sigma2)
        step[free] = np.linalg.solve(info[np.ix_(free, free)], score[free])
        new = np.maximum(sigma2 + step, 0.0)
        if np.max(np.abs(new - sigma2)) < 1e-14 * max(1.0, float(np.max(sigma2))):
            sigma2 = new
            break
        if fun(new)[0] <= fun(sigma2)[0] + 1e-12:
            sigma2 = new
        else:
            break
    warn: list[str] = []
    if not opt.success:
        warn.append(f"REML optimiser: {opt.message}")
    at_boundary = [lab for lab, s in zip(labels, sigma2, strict=True) if s <= 1e-10]
    if at_boundary:
        warn.append(f"variance component(s) at the boundary (0): {', '.join(at_boundary)}")

    V, _, XtViX, XtViX_inv, P = _reml_pieces(sigma2, ZZ, v, X, y)
    beta = XtViX_inv @ (X.T @ np.linalg.solve(V, y))
    se = np.sqrt(np.diag(XtViX_inv))
    stat = beta / se
    alpha = 1.0 - check_confidence(confidence)
    if test == "z":
        df = np.full(p, np.inf)
        pval = 2.0 * stats.norm.sf(np.abs(stat))
        crit = np.full(p, stats.norm.ppf(1 - alpha / 2))
    else:
        df = _contain_df(X, factors, n_levels, k)
        pval = 2.0 * stats.t.sf(np.abs(stat), df)
        crit = stats.t.ppf(1 - alpha / 2, df)
    ci_lo, ci_hi = beta - crit * se, beta + crit * se

    # omnibus moderator test (all coefficients except the intercept)
    btt = [i for i, n in enumerate(names) if n != "intrcpt"]
    if btt:
        b = beta[btt]
        QM = float(b @ np.linalg.solve(XtViX_inv[np.ix_(btt, btt)], b))
        m = len(btt)
        if test == "z":
            QM_df: tuple[float, ...] = (float(m),)
            QM_p = float(stats.chi2.sf(QM, m))
        else:
            ddf = float(np.min(df[btt]))
            QM = QM / m
            QM_df = (float(m), ddf)
            QM_p = float(stats.f.sf(QM, m, ddf))
    else:
        QM, QM_df, QM_p = float("nan"), (), float("nan")

    neg2ll = fun(sigma2)[0]
    ll = -0.5 * neg2ll
    q = p + len(ZZ)
    n_eff = k - p
    AIC = neg2ll + 2 * q
    BIC = neg2ll + q * np.log(n_eff)
    mx = max(n_eff, q + 2)
    AICc = neg2ll + 2 * q * mx / (mx - q - 1)

    return MetaAnalysisResult(
        terms=tuple(names),
        estimate=beta,
        se=se,
        statistic=stat,
        p_value=pval,
        ci_lower=ci_lo,
        ci_upper=ci_hi,
        df=df,
        test=test,
        confidence=confidence,
        components=tuple(labels),
        sigma2=sigma2,
        n_levels=tuple(n_levels),
        k=k,
        QE=QE,
        QE_df=QE_df,
        QE_p=QE_p,
        QM=QM,
        QM_df=QM_df,
        QM_p=QM_p,
        logLik=float(ll),
        deviance=float(neg2ll),
        AIC=float(AIC),
        BIC=float(BIC),
        AICc=float(AICc),
        typical_sampling_variance=vt,
        vcov=pd.DataFrame(XtViX_inv, index=names, columns=names),
        warnings=tuple(warn),
        _X=X,
        _y=y,
        _V=V,
        _data=d,
    )
