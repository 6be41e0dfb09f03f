"""Intraclass correlations of 2- and 3-level random-intercept models.

The variance components come from a REML fit of lme4's model (Bates et al.
2015, *J. Stat. Softw.* 67(1)); the ICC definitions are those of Snijders &
Bosker (2012), *Multilevel Analysis*, 2nd ed., sec. 3.3 and 4.9.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import ModelError
from effectstudy.multilevel.fitting import fit
from effectstudy.multilevel.results import MixedModelResults

__all__ = ["IccResult", "icc"]


@dataclass
class IccResult(ResultMixin):
    """Intraclass correlations from a random-intercept model (REML)."""

    formula: str
    table: pd.DataFrame
    fit: MixedModelResults
    warnings: list[str] = field(default_factory=list)
    _title = "Intraclass correlation"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def value(self, level: str, quantity: str) -> float:
        sel = self.table[(self.table["level"] == level) & (self.table["quantity"] == quantity)]
        if len(sel) != 1:
            raise KeyError((level, quantity))
        return float(sel["value"].iloc[0])


def icc(data: pd.DataFrame, outcome: str, groups: list[str] | str,
        covariates: list[str] | str | None = None) -> IccResult:
    """Intraclass correlations of a 2- or 3-level random-intercept model.

    Parameters
    ----------
    data:
        Long data.
    outcome:
        The response column.
    groups:
        One grouping factor (2-level: ``outcome ~ 1 + (1|client)``) or two,
        outer first (3-level: ``outcome ~ 1 + (1|programme) + (1|client)``; the
        client ids must be unique across programmes).
    covariates:
        Fixed effects to condition on (e.g. ``"time"``): the ICC is then the
        residual (conditional) ICC.

    Returns
    -------
    IccResult
        ``to_frame()`` has rows ``(level, quantity, value)``: the ``variance`` of
        every level and of ``Residual``; for 2 levels ``icc = v_g / (v_g + s^2)``;
        for 3 levels ``icc = v_outer / total`` (outer level),
        ``icc_client_level_share = v_inner / total`` and
        ``icc_same_client = (v_outer + v_inner) / total`` (the correlation of two
        observations of the same inner unit) on the inner level.
    """
    if isinstance(groups, str):
        groups = [groups]
    groups = list(groups)
    if len(groups) not in (1, 2):
        raise ModelError("icc() supports one (2-level) or two (3-level) grouping factors")
    if covariates is None:
        covariates = []
    elif isinstance(covariates, str):
        covariates = [covariates]
    fixed = " + ".join(["1", *covariates])
    rand = " + ".join(f"(1 | {g})" for g in groups)
    formula = f"{outcome} ~ {fixed} + {rand}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(formula, data, reml=True)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    vc = res.variance_components().set_index("component")
    var = {g: float(vc.loc[f"{g}:(Intercept)", "variance"]) for g in groups}
    s2 = res.sigma2
    rows = [(g, "variance", var[g]) for g in groups] + [("Residual", "variance", s2)]
    if len(groups) == 1:
        g = groups[0]
        rows.append((g, "icc", var[g] / (var[g] + s2)))
    else:
        outer, inner = groups
        total = var[outer] + var[inner] + s2
        rows += [(outer, "icc", var[outer] / total),
                 (inner, "icc_client_level_share", var[inner] / total),
                 (inner, "icc_same_client", (var[outer] + var[inner]) / total)]
    table = pd.DataFrame(rows, columns=["level", "quantity", "value"])
    return IccResult(formula=formula, table=table, fit=res, warnings=list(res.warnings))
