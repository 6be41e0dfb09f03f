"""Per-level slopes of a mixed-model fit and their contrasts (emmeans' ``emtrends``).

:func:`slopes` gives, for each level of a factor (e.g. each programme), the
derivative of the population-level (fixed-effects) prediction with respect to a
numeric variable (e.g. time), with small-sample Kenward-Roger or Satterthwaite
inference, and optionally each level's slope minus the unweighted mean of all
levels' slopes.

References
----------
Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects
from restricted maximum likelihood. *Biometrics*, 53(3), 983-997.

Lenth, R. V. (2023). *emmeans: Estimated marginal means, aka least-squares
means* (R package version 1.8.4). https://CRAN.R-project.org/package=emmeans

Satterthwaite, F. E. (1946). An approximate distribution of estimates of
variance components. *Biometrics Bulletin*, 2(6), 110-114.

Searle, S. R., Speed, F. M. & Milliken, G. A. (1980). Population marginal means
in the linear model: an alternative to least squares means. *The American
Statistician*, 34(4), 216-221.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import ModelError
from effectstudy.multilevel.common import (
    check_fit,
    fixed_model_matrix,
    fixed_variables,
    vcov_and_df,
)
from effectstudy.multilevel.ddf import ddf_method
from effectstudy.multilevel.results import MixedModelResults

__all__ = ["slopes"]

#: The df methods :func:`slopes` accepts.
#: The ddf methods :func:`slopes` accepts (of :data:`effectstudy.multilevel.ddf.DDF_METHODS`).
SLOPE_DDF_METHODS = ("kenward-roger", "satterthwaite")
#: The contrasts :func:`slopes` accepts (``None``: the slopes themselves).
CONTRASTS = (None, "vs_mean")

_NO_ADJUSTMENT = ("no multiplicity adjustment: each row's p-value and interval are for that "
                  "comparison on its own")

#: Relative tolerance of the check that ``var`` enters the fixed effects linearly.
_LINEAR_TOL = 1e-8


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s)


def _levels(s: pd.Series) -> list[Any]:
    """Levels of a factor column in the order the fit codes them.

    Mirrors the engine's data preparation: a categorical
    column keeps its categories, any other column gets its sorted values.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    if pd.api.types.is_bool_dtype(s):
        return [False, True]
    return sorted(pd.unique(s.astype(object)), key=str)


def _grid(fit: MixedModelResults, var: str, by: str
          ) -> tuple[list[Any], pd.DataFrame, dict[str, float], list[str]]:
    """Reference grid (emmeans ``ref_grid``): one block of rows per level of ``by``.

    Numeric covariates other than ``var`` are held at their mean over the rows
    used by the fit, ``var`` too; every other factor takes each of its levels
    (the slope is then averaged over them with equal weights).
    """
    used = fixed_variables(fit)
    data = fit.data
    if var not in used:
        raise ModelError(f"var {var!r} is not a variable of the fixed effects "
                         f"(they use {used})", column=var)
    if not _is_numeric(data[var]):
        raise ModelError(f"var {var!r} must be a numeric variable to take a slope over",
                         column=var)
    if by not in used:
        raise ModelError(f"by {by!r} is not a variable of the fixed effects "
                         f"(they use {used})", column=by)
    if by == var or _is_numeric(data[by]):
        raise ModelError(f"by {by!r} must be a factor (categorical) of the fixed effects",
                         column=by)
    at: dict[str, float] = {}
    factors: dict[str, list[Any]] = {}
    for col in used:
        if col == by:
            continue
        if _is_numeric(data[col]):
            at[col] = float(data[col].astype(float).mean())
        else:
            factors[col] = _levels(data[col])
    by_levels = _levels(data[by])
    others = list(factors)
    combos = list(itertools.product(*(factors[c] for c in others))) or [()]
    rows = []
    for lev in by_levels:
        for combo in combos:
            row = {by: lev, **dict(zip(others, combo, strict=True)), **at}
            rows.append(row)
    grid = pd.DataFrame(rows, columns=[by, *others, *at])
    return by_levels, grid, at, others


def _design_at(fit: MixedModelResults, grid: pd.DataFrame, var: str, value: float
               ) -> np.ndarray:
    g = grid.copy()
    g[var] = float(value)
    try:
        X = fixed_model_matrix(fit, g)
    except ModelError as exc:
        raise ModelError(f"cannot evaluate the fixed effects at {var} = {value:g} ({var!r} "
                         f"may enter the model non-linearly or as a factor): {exc.message}",
                         column=var) from exc
    if not np.all(np.isfinite(X)):
        raise ModelError(f"the fixed effects are not finite at {var} = {value:g}: {var!r} "
                         "enters the model through a transformation; slopes() needs it to "
                         "enter linearly", column=var)
    return X


def _slope_rows(fit: MixedModelResults, var: str, by: str
                ) -> tuple[list[Any], np.ndarray, dict[str, float], list[str]]:
    """The emtrends linear combinations, one row ``L_g`` per level of ``by``.

    ``L_g`` is ``d x0 / d var`` averaged over the grid rows of level ``g``; for a
    model in which ``var`` enters linearly it is ``x0(var + 1) - x0(var)``.
    """
    by_levels, grid, at, others = _grid(fit, var, by)
    centre = at[var]
    X0 = _design_at(fit, grid, var, centre)
    D = _design_at(fit, grid, var, centre + 1.0) - X0
    # linearity: x0(v) must equal x0(centre) + (v - centre) * D over the data range
    vals = fit.data[var].astype(float)
    lo, hi = float(vals.min()), float(vals.max())
    points = np.unique(np.r_[np.linspace(lo, hi, 7), centre + 2.0])
    for v in points:
        Xv = _design_at(fit, grid, var, float(v))
        resid = Xv - X0 - (v - centre) * D
        scale = 1.0 + np.abs(Xv) + np.abs(X0) + abs(v - centre) * np.abs(D)
        if np.any(np.abs(resid) > _LINEAR_TOL * scale):
            raise ModelError(
                f"{var!r} enters the fixed effects non-linearly (e.g. I({var}**2), a spline "
                f"or a log): its slope differs along {var}, so there is no single slope per "
                f"level of {by!r}. slopes() handles models in which {var} enters linearly "
                "(main effect and interactions with other variables)", column=var)
    n_per = len(grid) // len(by_levels)
    L = D.reshape(len(by_levels), n_per, D.shape[1]).mean(axis=1)
    return by_levels, L, at, others


def slopes(fit: MixedModelResults, *, var: str = "time", by: str = "programme",
           ddf: str = "kenward-roger", contrast: str | None = None,
           confidence: float = 0.95) -> pd.DataFrame:
    """Slope of ``var`` at each level of ``by``, or each slope minus their mean.

    The slope of level ``g`` is the derivative of the population-level
    prediction ``x0' beta`` with respect to ``var`` on emmeans' reference grid
    (Lenth, emmeans ``emtrends``): with ``L_g = d x0 / d var`` (for
    ``outcome ~ time * programme`` the ``time`` coefficient plus the
    ``time:programme[T.g]`` coefficient of level g, and just the ``time``
    coefficient for the reference level)::

        estimate_g = L_g' beta,    se_g = sqrt(L_g' V L_g),
        t_g = estimate_g / se_g,   CI: estimate_g -+ t_{df_g, (1+confidence)/2} se_g

    Numeric covariates other than ``var`` are held at their mean (they matter
    only if they interact with ``var``); the slope is averaged with equal
    weights over the levels of any other factor. With ``contrast="vs_mean"``
    the rows are ``L_g - (1/k) sum_h L_h`` over the k levels (emmeans
    ``contrast(emtrends(...), "eff")``): each level's slope minus the
    unweighted mean of all levels' slopes.

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit` in which ``var`` enters the
        fixed effects linearly and ``by`` is a factor.
    var:
        The numeric variable the slope is taken over (default ``"time"``).
    by:
        The factor giving one slope per level (default ``"programme"``).
    ddf:
        ``"kenward-roger"`` (default; REML fits only): ``V`` is the KR-adjusted
        covariance ``Phi_A`` and each row's df is the KR df of the one-row
        hypothesis ``L_g' beta = 0`` (Kenward & Roger 1997; pbkrtest ``Lb_ddf``).
        ``"satterthwaite"``: ``V = (X'V^-1X)^-1`` and the Satterthwaite (1946)
        df of ``L_g' beta`` as lmerTest computes it. The df come from the fit's
        own machinery (:meth:`MixedModelResults.contrast`).
    contrast:
        ``None`` (default): the slopes. ``"vs_mean"``: each slope minus the
        unweighted mean of all slopes.
    confidence:
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        Columns ``<by>, estimate, se, df, ci_lower, ci_upper, statistic, p_value``
        (``statistic`` is t, ``p_value`` two-sided), one row per level of
        ``by``; with ``contrast="vs_mean"`` an ``adjustment`` column (``"none"``)
        follows. ``frame.attrs`` records ``var``, ``by``, ``ddf``, ``contrast``,
        ``confidence``, ``adjustment`` (``"none"``), ``note``, ``at`` (the values
        numeric covariates were held at) and ``averaged_over`` (other factors).

    Raises
    ------
    ModelError
        For an unknown ``ddf`` or ``contrast``, a ``var`` that is not numeric or
        enters non-linearly (e.g. ``I(time**2)``), a ``by`` that is not a factor
        of the fixed effects, or a Kenward-Roger request on an ML fit.

    Notes
    -----
    ``contrast="vs_mean"`` carries **no multiplicity adjustment** (emmeans
    ``adjust = "none"``): with six programmes, six such tests are made, and
    their p-values and intervals hold for each comparison on its own. The
    slopes are population-level (random effects at zero), as emmeans reports
    them.

    References
    ----------
    Lenth, emmeans: Estimated marginal means (R package, version 1.8.4),
    ``emtrends`` and ``contrast(..., "eff")``; Kenward & Roger (1997),
    Biometrics 53, 983-997; Satterthwaite (1946), Biometrics Bulletin 2,
    110-114; Searle, Speed & Milliken (1980), The American Statistician 34,
    216-221 (equal-weight marginal means).
    """
    fit = check_fit(fit)
    method = ddf_method(ddf, allowed=SLOPE_DDF_METHODS)
    if contrast not in CONTRASTS:
        raise ModelError(f"unknown contrast {contrast!r}: use None (the slopes) or 'vs_mean'")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) \
            or not (0 < confidence < 1):
        raise ModelError("confidence must be a number in (0, 1)")
    by_levels, L, at, others = _slope_rows(fit, var, by)
    if contrast == "vs_mean":
        if len(by_levels) < 2:
            raise ModelError(f"contrast 'vs_mean' needs at least two levels of {by!r}",
                             column=by)
        L = L - L.mean(axis=0, keepdims=True)
    V, df_of = vcov_and_df(fit, method)
    est = L @ fit.beta
    se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", L, V, L), 0.0))
    dfs = np.array([df_of(row) for row in L], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        tval = np.where(se > 0, est / se, np.nan)
    pval = 2.0 * stats.t.sf(np.abs(tval), dfs)
    crit = stats.t.ppf(0.5 + confidence / 2.0, dfs)
    out = pd.DataFrame({
        by: by_levels, "estimate": est, "se": se, "df": dfs,
        "ci_lower": est - crit * se, "ci_upper": est + crit * se,
        "statistic": tval, "p_value": pval,
    })
    if contrast == "vs_mean":
        out["adjustment"] = "none"
        note = (f"each {by}'s slope of {var} minus the unweighted mean of all "
                f"{len(by_levels)} slopes; " + _NO_ADJUSTMENT)
    else:
        note = f"slope of {var} per {by}; " + _NO_ADJUSTMENT
    out.attrs.update(var=var, by=by, ddf=method, contrast=contrast or "none",
                     confidence=float(confidence), adjustment="none", note=note,
                     at=dict(at), averaged_over=list(others))
    return out
