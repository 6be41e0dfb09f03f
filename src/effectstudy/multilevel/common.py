"""Helpers shared by the summaries of a fitted mixed model (``summaries``, ``trends``).

Not part of the documented API: the public functions of
:mod:`effectstudy.multilevel` use these to check a fit, rebuild its fixed-effects
design for new data and choose the covariance and df of a contrast.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.errors import ModelError
from effectstudy.multilevel.results import MixedModelResults

__all__ = ["check_fit", "fixed_variables", "fixed_model_matrix", "vcov_and_df"]


def check_fit(fit: Any) -> MixedModelResults:
    """``fit`` if it is a fitted mixed model, else :class:`ModelError`."""
    if not isinstance(fit, MixedModelResults):
        raise ModelError("expected a fitted mixed model from effectstudy.multilevel.fit()")
    return fit


def fixed_variables(fit: MixedModelResults) -> list[str]:
    """Data columns used by the fixed-effects part of the formula."""
    used = set(fit.model.design_info.variables)
    return [c for c in fit.data.columns if c in used and c != fit.model.parsed.response]


def fixed_model_matrix(fit: MixedModelResults, newdata: pd.DataFrame) -> np.ndarray:
    """Fixed-effects model matrix of ``newdata`` with the fit's coding (its design info),
    restricted to the columns the fit kept."""
    info = fit.model.design_info
    needed = fixed_variables(fit)
    missing = [c for c in needed if c not in newdata.columns]
    if missing:
        raise ModelError(f"newdata lacks column(s) {missing} used by the fixed effects",
                         column=missing[0])
    nd = newdata.loc[:, needed].copy()
    if nd.isna().any().any():
        raise ModelError("newdata has missing values in the model variables")
    for col in needed:
        src = fit.data[col]
        if isinstance(src.dtype, pd.CategoricalDtype):
            cats = list(src.cat.categories)
            vals = nd[col].astype(object)
            unknown = sorted({str(v) for v in vals if v not in set(cats)})
            if unknown:
                raise ModelError(f"newdata column {col!r} has level(s) {unknown} not in the "
                                 f"fitted data ({[str(c) for c in cats]})", column=col)
            nd[col] = pd.Categorical(vals, categories=cats)
        elif pd.api.types.is_numeric_dtype(src) and not pd.api.types.is_bool_dtype(src):
            try:
                nd[col] = pd.to_numeric(nd[col]).astype(float)
            except (TypeError, ValueError) as exc:
                raise ModelError(f"newdata column {col!r} must be numeric", column=col) from exc
    try:
        mat, _ = info.build(nd, NA_action="raise")
    except ModelError as exc:
        raise ModelError(f"cannot build the model matrix of newdata: {exc.message}",
                         column=exc.column) from exc
    # the columns the fit kept (aliased columns of a rank-deficient design are dropped)
    return np.asarray(mat, dtype=float)[:, np.asarray(fit.model.fixed_columns)]


def vcov_and_df(fit: MixedModelResults, method: str
                ) -> tuple[np.ndarray, Callable[[np.ndarray], float]]:
    """The covariance of beta and a function giving the df of one contrast row."""
    if method == "kenward-roger":
        if not fit.reml:
            raise ModelError("Kenward-Roger needs a REML fit; use ddf='satterthwaite' for ML fits")
        V = fit.vcov_kr()
    else:
        V = fit.vcov()

    def df_of(x0: np.ndarray) -> float:
        if method == "residual":
            return float(fit.nobs - len(fit.beta))
        if not np.any(x0 != 0):
            return np.nan
        tab = fit.contrast(x0[None, :], ddf=method)
        return float(tab["den_df"].iloc[0])

    return V, df_of
