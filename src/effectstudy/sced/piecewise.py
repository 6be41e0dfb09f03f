"""Piecewise (segmented) regression for single-case series.

The level- and slope-change models of Huitema and McKean (2000) with the
codings offered by the R package scan's ``plm()`` (Wilbert & Lueke, 2023):

``"H-M"``  (Huitema & McKean, 2000)
    trend = session; level dummy per phase; slope term = sessions since the
    start of the phase (0 at the first session of the phase).
``"B&L-B"`` (Beretvas & Chung, 2008)
    as ``"H-M"`` but the slope term counts from 1 at the first session of the
    phase.
``"W"`` (scan's default)
    as ``"H-M"`` but the trend is centred on the first session (0 at the
    first session), so the intercept is the baseline level at the start.
``"JW"``
    ``"B&L-B"`` with *preceding* contrasts for level and slope.

With more than two phases the *contrast* decides what a level or slope term
compares: ``"first"`` (each phase against the baseline; dummy = 1 in that phase
only) or ``"preceding"`` (each phase against the phase before it; dummy = 1
from that phase on, slope term counted from that phase's start onward).

``ar=0`` fits ordinary least squares (scan: gaussian ``glm``); ``ar=1`` fits
generalised least squares with AR(1) errors by maximum likelihood, as scan's
``plm(AR = 1)`` (``nlme::gls(correlation = corARMA(p = 1), method = "ML")``):
the autocorrelation is profiled by exact ML (Prais-Winsten likelihood), the
coefficient covariance is ``sigma^2 (X' R^-1 X)^-1`` and tests use ``t`` with
``n - p`` degrees of freedom. AR(1) uses the order of the observations, not the
distance between sessions (as ``corARMA`` without a covariate).

Several cases: ``case=`` fits the model per case (one block of rows per case);
``multilevel=True`` instead fits one two-level model with the same fixed
effects and a random intercept per case (statsmodels ``MixedLM``, REML; Wald
``z`` tests, ``df`` left empty), the simplest form of the hierarchical
piecewise models of Van den Noortgate & Onghena (2003).

References
----------
Huitema, B. E., & McKean, J. W. (2000). Design specification issues in
time-series intervention models. *Educational and Psychological Measurement,
60*(1), 38-58.

Beretvas, S. N., & Chung, H. (2008). An evaluation of modified R2-change effect
size indices for single-subject experimental designs. *Evidence-Based
Communication Assessment and Intervention, 2*, 120-128.

Van den Noortgate, W., & Onghena, P. (2003). Hierarchical linear models for
the quantitative integration of effect sizes in single-case research.
*Behavior Research Methods, Instruments, & Computers, 35*(1), 1-10.

Wilbert, J., & Lueke, T. (2023). *scan: Single-Case Data Analyses for Single
and Multiple Baseline Designs* (R package version 0.67).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError, SpecError
from effectstudy.sced._compat import REQUIRED, columns
from effectstudy.sced._series import (
    CaseSeries,
    case_series,
    check_contiguous,
    check_order,
    phase_labels,
)
from effectstudy.style import GREY, label_axes, use_style

Model = Literal["W", "H-M", "B&L-B", "JW"]
Contrast = Literal["first", "preceding"]

_COLUMNS = ["case", "term", "scan_term", "estimate", "se", "statistic", "p_value", "df"]


@dataclass(frozen=True, eq=False)
class PiecewiseResult(ResultMixin):
    """Result of :func:`piecewise`.

    Attributes
    ----------
    table : DataFrame
        Coefficient table (see :meth:`to_frame`).
    model, contrast_level, contrast_slope : str
        Coding used.
    ar : int
        0 (OLS) or 1 (AR(1) GLS, ML).
    multilevel : bool
        True for the random-intercept model across cases.
    fit : DataFrame
        Per case: ``n``, ``df_resid``, ``sigma``, ``phi`` (AR(1)
        autocorrelation), ``loglik``, ``r2`` (OLS only).
    design : DataFrame
        The design matrix columns (with ``case``, ``session``, ``outcome``,
        ``fitted``) used for the fit.
    """

    table: pd.DataFrame
    model: str
    contrast_level: str
    contrast_slope: str
    ar: int
    multilevel: bool
    fit: pd.DataFrame
    design: pd.DataFrame = field(repr=False)
    warnings: tuple[str, ...] = ()
    _title = "Piecewise regression"

    def to_frame(self) -> pd.DataFrame:
        """Coefficient table: ``case, term, scan_term, estimate, se, statistic, p_value, df``.

        Terms are ``intercept``, ``trend``, ``level_<phase>`` and
        ``slope_<phase>``; ``scan_term`` gives scan's names (``(Intercept)``,
        ``mt``, ``phase<X>``, ``inter<X>``).
        """
        return self.table.copy()

    def coef(self, term: str, case: object = None) -> float:
        """Estimate of one term (of one case when several were fitted)."""
        t = self.table
        sel = t["term"] == term
        if case is not None:
            sel &= t["case"] == case
        if sel.sum() != 1:
            raise KeyError(f"term {term!r} (case {case!r}) not found uniquely")
        return float(t.loc[sel, "estimate"].iloc[0])

    def plot(self, ax=None, *, fig=None, **kwargs):
        """Observed series with fitted piecewise lines (one panel per case).

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw into this axes (one case only).
        fig : matplotlib Figure, optional
            Draw the panels (one per case) into this figure.
        **kwargs
            Passed to the fitted lines (``Axes.plot``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        d = self.design
        cases = list(pd.unique(d["case"]))
        with use_style():
            if ax is not None:
                if len(cases) != 1:
                    raise SpecError(f"ax= draws one case, got {len(cases)}; pass fig= instead")
                axes = [ax]
                fig = ax.figure
            else:
                if fig is None:
                    import matplotlib.pyplot as plt

                    fig = plt.figure(figsize=(7, 2.2 * len(cases) + 0.6))
                grid = fig.subplots(len(cases), 1, sharex=True, squeeze=False)
                axes = grid[:, 0]
            for a, c in zip(axes, cases, strict=True):
                sub = d[d["case"] == c] if c is not None else d
                a.plot(sub["session"], sub["outcome"], "o", color=GREY, ms=4)
                for _, seg in sub.groupby("phase", sort=False):
                    a.plot(seg["session"], seg["fitted"], "-", **kwargs)
                label_axes(a, y="outcome", title=None if c is None else str(c))
            label_axes(axes[-1], x="session")
        return fig


def _coding(
    s: CaseSeries,
    *,
    model: str,
    contrast_level: str,
    contrast_slope: str,
    trend: bool,
    level: bool,
    slope: bool,
    phases: list,
) -> tuple[np.ndarray, list[str], list[str]]:
    """Design matrix for one series (columns: intercept, trend, levels, slopes)."""
    t = s.session.astype(float)
    n = len(t)
    idx = np.array([phases.index(p) for p in s.phase])
    starts = [t[idx == k][0] for k in range(len(phases))]
    cols, names, scan_names = [np.ones(n)], ["intercept"], ["(Intercept)"]
    if trend:
        cols.append(t - t[0] if model == "W" else t.copy())
        names.append("trend")
        scan_names.append("mt")
    offset = 1.0 if model == "B&L-B" else 0.0
    if level:
        for k in range(1, len(phases)):
            d = (idx == k) if contrast_level == "first" else (idx >= k)
            cols.append(d.astype(float))
            names.append(f"level_{phases[k]}")
            scan_names.append(f"phase{phases[k]}")
    if slope:
        for k in range(1, len(phases)):
            d = (idx == k) if contrast_slope == "first" else (idx >= k)
            cols.append(np.where(d, t - starts[k] + offset, 0.0))
            names.append(f"slope_{phases[k]}")
            scan_names.append(f"inter{phases[k]}")
    return np.column_stack(cols), names, scan_names


def _ols(X: np.ndarray, y: np.ndarray) -> dict:
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise ModelError("design matrix is rank deficient (too few sessions in a phase?)")
    xtx_inv = np.linalg.inv(X.T @ X)
    beta = xtx_inv @ X.T @ y
    resid = y - X @ beta
    df = n - p
    if df <= 0:
        raise ModelError(f"no residual degrees of freedom ({n} observations, {p} coefficients)")
    s2 = float(resid @ resid) / df
    se = np.sqrt(np.diag(xtx_inv) * s2)
    ll = -n / 2 * (np.log(2 * np.pi * float(resid @ resid) / n) + 1)
    r2 = 1 - float(resid @ resid) / float(((y - y.mean()) ** 2).sum())
    return dict(beta=beta, se=se, df=df, sigma=np.sqrt(s2), phi=np.nan, loglik=ll, r2=r2,
                fitted=X @ beta)


def _ar1_whiten(A: np.ndarray, phi: float) -> np.ndarray:
    """Prais-Winsten transform: rows of ``L^-1 A`` for an AR(1) correlation matrix."""
    out = np.empty_like(A, dtype=float)
    out[0] = A[0] * np.sqrt(1 - phi**2)
    out[1:] = A[1:] - phi * A[:-1]
    return out


def _gls_ar1_ml(X: np.ndarray, y: np.ndarray) -> dict:
    """Exact ML GLS with AR(1) errors (as ``nlme::gls(corAR1/corARMA(p=1), method="ML")``)."""
    n, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise ModelError("design matrix is rank deficient (too few sessions in a phase?)")
    if n - p <= 0:
        raise ModelError(f"no residual degrees of freedom ({n} observations, {p} coefficients)")

    def profile(phi: float) -> tuple[float, np.ndarray, float]:
        Xw, yw = _ar1_whiten(X, phi), _ar1_whiten(y, phi)
        beta, *_ = np.linalg.lstsq(Xw, yw, rcond=None)
        rw = yw - Xw @ beta
        rss = float(rw @ rw) / (1 - phi**2)  # e' R^-1 e
        ll = -n / 2 * (np.log(2 * np.pi * rss / n) + 1) - (n - 1) / 2 * np.log(1 - phi**2)
        return ll, beta, rss

    # optimise on the unconstrained scale used by nlme (phi = tanh-like transform)
    res = optimize.minimize_scalar(lambda z: -profile(np.tanh(z))[0], bounds=(-8, 8),
                                   method="bounded", options={"xatol": 1e-12})
    phi = float(np.tanh(res.x))
    ll, beta, rss = profile(phi)
    Xw = _ar1_whiten(X, phi) / np.sqrt(1 - phi**2)  # X' R^-1 X = Xw' Xw
    sigma2 = rss / (n - p)  # nlme reports sigma with n - p (see test against scan)
    cov = np.linalg.inv(Xw.T @ Xw) * sigma2
    return dict(beta=beta, se=np.sqrt(np.diag(cov)), df=n - p, sigma=np.sqrt(sigma2), phi=phi,
                loglik=ll, r2=np.nan, fitted=X @ beta)


def _phase_order(series: list[CaseSeries], phases) -> list:
    if phases is not None:
        return list(phases)
    return phase_labels(series)


def piecewise(
    data: pd.DataFrame,
    *,
    outcome: str = REQUIRED,
    session: str = REQUIRED,
    phase: str = REQUIRED,
    case: str | None = None,
    ar: int = 0,
    model: Model = "W",
    contrast: Contrast = "first",
    contrast_level: Contrast | None = None,
    contrast_slope: Contrast | None = None,
    trend: bool = True,
    level: bool = True,
    slope: bool = True,
    phases: list | tuple | None = None,
    multilevel: bool = False,
) -> PiecewiseResult:
    """Piecewise regression (level- and slope-change model) per single case.

    Fits ``outcome ~ 1 + trend + level_<phase> + slope_<phase>`` (Huitema &
    McKean, 2000) with the codings of scan's ``plm()``; see the module
    docstring for the models and contrasts.

    Parameters
    ----------
    data : DataFrame
        Long format: one row per measurement occasion.
    outcome, session, phase : str
        Column names (give them explicitly; the old defaults ``"outcome"``,
        ``"session"``, ``"phase"`` still work for one release with a warning).
        Sessions must be numeric and unique within a case; each phase label
        must form one contiguous run (label repeated phases ``A1, B1, A2, B2``).
        The first phase in session order is the baseline. Unlike the other
        sced functions there are no ``baseline_phase``/``treatment_phase``
        arguments: the model takes any number of phases (see ``phases``).
    case : str, optional
        Column with case labels (pseudonyms). Each case is fitted separately
        unless ``multilevel=True``.
    ar : {0, 1}
        0: OLS. 1: AR(1) errors, ML GLS (as scan ``plm(AR = 1)``).
    model : {"W", "H-M", "B&L-B", "JW"}
        Coding of trend and slope terms.
    contrast, contrast_level, contrast_slope : {"first", "preceding"}
        Contrast for level and slope terms (the latter two override
        ``contrast``; ``model="JW"`` forces ``"preceding"``).
    trend, level, slope : bool
        Include the trend, level-change and slope-change terms.
    phases : sequence, optional
        Expected phase order (e.g. ``["A", "B"]``); a series whose phases run in
        another order raises :class:`~effectstudy.errors.DataError`.
    multilevel : bool
        Fit one model across cases with a random intercept per case
        (statsmodels ``MixedLM``, REML, Wald z tests). Requires ``case`` and
        ``ar=0``.

    Returns
    -------
    PiecewiseResult
        ``.to_frame()`` gives the coefficient table.

    Raises
    ------
    DataError
        Missing outcomes, duplicated sessions, a phase with fewer than two
        sessions, a single phase, phases out of order or repeated.
    """
    outcome, session, phase = columns("piecewise", outcome=outcome, session=session,
                                       phase=phase)
    if ar not in (0, 1):
        raise SpecError(f"ar must be 0 or 1, got {ar!r}")
    if model not in ("W", "H-M", "B&L-B", "JW"):
        raise SpecError(f"unknown model {model!r}; use 'W', 'H-M', 'B&L-B' or 'JW'")
    for c in (contrast, contrast_level, contrast_slope):
        if c not in (None, "first", "preceding"):
            raise SpecError(f"unknown contrast {c!r}; use 'first' or 'preceding'")
    cl = contrast_level or contrast
    cs = contrast_slope or contrast
    coding_model = model
    if model == "JW":
        cl = cs = "preceding"
        coding_model = "B&L-B"
    if multilevel and case is None:
        raise SpecError("multilevel=True needs case=")
    if multilevel and ar:
        raise SpecError("multilevel=True supports ar=0 only")

    series = case_series(data, case=case, phase=phase, session=session, outcome=outcome)
    order = _phase_order(series, phases)
    notes: list[str] = []
    for s in series:
        check_contiguous(s)
        if phases is not None:
            if not set(s.phase) <= set(order):
                raise DataError(f"{s.label}: phases {sorted(set(s.phase) - set(order), key=str)} "
                                f"not in phases={list(order)}")
            check_order(s, [p for p in order if p in set(s.phase)])
        if len(s.runs) < 2:
            raise DataError(f"{s.label}: only one phase ({s.runs[0][0]!r}); piecewise regression "
                            "needs a baseline and at least one intervention phase")
        for lab, _, n in s.runs:
            if n < 2:
                raise DataError(f"{s.label}: phase {lab!r} has {n} session(s); at least 2 are "
                                "needed to estimate its level and slope")

    blocks, tables, fits, designs = [], [], [], []
    for s in series:
        case_phases = [p for p in order if p in set(s.phase)]
        if case_phases != [lab for lab, _, _ in s.runs] and phases is None:
            # series whose runs disagree with the pooled order (e.g. A-C-B): use its own order
            case_phases = [lab for lab, _, _ in s.runs]
        X, names, scan_names = _coding(s, model=coding_model, contrast_level=cl,
                                       contrast_slope=cs, trend=trend, level=level,
                                       slope=slope, phases=case_phases)
        blocks.append((s, X, names, scan_names))

    if not multilevel:
        for s, X, names, scan_names in blocks:
            try:
                r = _ols(X, s.outcome) if ar == 0 else _gls_ar1_ml(X, s.outcome)
            except ModelError as exc:
                raise ModelError(f"{s.label}: {exc.message}") from None
            stat = r["beta"] / r["se"]
            p = 2 * stats.t.sf(np.abs(stat), r["df"])
            tables.append(pd.DataFrame({
                "case": s.case, "term": names, "scan_term": scan_names, "estimate": r["beta"],
                "se": r["se"], "statistic": stat, "p_value": p, "df": float(r["df"]),
            }))
            fits.append(dict(case=s.case, n=len(s.outcome), df_resid=r["df"], sigma=r["sigma"],
                             phi=r["phi"], loglik=r["loglik"], r2=r["r2"]))
            designs.append(_design_frame(s, X, names, r["fitted"]))
    else:
        tables, fits, designs = _fit_multilevel(blocks, notes)

    return PiecewiseResult(
        table=pd.concat(tables, ignore_index=True)[_COLUMNS],
        model=model, contrast_level=cl, contrast_slope=cs, ar=ar, multilevel=multilevel,
        fit=pd.DataFrame(fits), design=pd.concat(designs, ignore_index=True),
        warnings=tuple(notes),
    )


def _design_frame(s: CaseSeries, X: np.ndarray, names: list[str], fitted) -> pd.DataFrame:
    d = pd.DataFrame(X, columns=names)
    d.insert(0, "case", s.case)
    d.insert(1, "session", s.session)
    d.insert(2, "phase", s.phase)
    d.insert(3, "outcome", s.outcome)
    d["fitted"] = fitted
    return d


def _fit_multilevel(blocks, notes: list[str]):
    from statsmodels.regression.mixed_linear_model import MixedLM

    names = blocks[0][2]
    scan_names = blocks[0][3]
    for s, _, nm, _ in blocks:
        if nm != names:
            raise DataError(f"{s.label}: phases differ from the other cases ({nm} vs {names}); "
                            "the multilevel model needs the same phases in every case")
    X = np.vstack([b[1] for b in blocks])
    y = np.concatenate([b[0].outcome for b in blocks])
    groups = np.concatenate([[i] * len(b[0].outcome) for i, b in enumerate(blocks)])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = MixedLM(y, X, groups=groups).fit(reml=True)
    notes.extend(str(w.message) for w in caught)
    beta = np.asarray(res.fe_params)
    se = np.asarray(res.bse_fe)
    stat = beta / se
    table = pd.DataFrame({
        "case": "ALL", "term": names, "scan_term": scan_names, "estimate": beta, "se": se,
        "statistic": stat, "p_value": 2 * stats.norm.sf(np.abs(stat)), "df": np.nan,
    })
    fit = [dict(case="ALL", n=len(y), df_resid=np.nan, sigma=float(np.sqrt(res.scale)),
                phi=np.nan, loglik=float(res.llf), r2=np.nan,
                tau_intercept=float(np.sqrt(np.asarray(res.cov_re)[0, 0])))]
    fitted = np.asarray(res.fittedvalues)
    designs, start = [], 0
    for s, Xi, nm, _ in blocks:
        k = len(s.outcome)
        designs.append(_design_frame(s, Xi, nm, fitted[start:start + k]))
        start += k
    return [table], fit, designs


__all__ = ["PiecewiseResult", "piecewise"]
