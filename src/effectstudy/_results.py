"""Shared behaviour of result objects: small frozen dataclasses for notebooks.

Each result dataclass defines ``to_frame()``; this mixin adds an HTML
representation for Jupyter built from that frame, a plain-text ``summary()``
and a default ``plot`` that subclasses override where a picture means more.

The default plot draws only coefficient estimates with confidence intervals:
rows with a finite ``estimate``, ``ci_lower`` and ``ci_upper``. Rows of fit
statistics (AIC, BIC, logLik, deviance...) have no interval and are therefore
never drawn beside the coefficients, and rows named as a fit statistic are left
out even if a table happens to give them interval columns.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FIT_STATISTICS", "ResultMixin", "coefficient_rows"]

#: Row labels that are statistics of a fit, never coefficients (compared in lower case).
FIT_STATISTICS = frozenset({
    "aic", "aicc", "bic", "loglik", "log-likelihood", "loglikelihood", "log likelihood",
    "deviance", "remlcrit", "reml criterion", "nobs",
})

#: Columns that hold the row label, in order of preference (else the first column).
_LABEL_COLUMNS = ("term", "coefficient", "parameter", "name", "quantity")


def _label_column(frame: pd.DataFrame) -> str:
    for col in _LABEL_COLUMNS:
        if col in frame.columns:
            return col
    return str(frame.columns[0])


def coefficient_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` that are estimates with a confidence interval.

    A row qualifies when ``estimate``, ``ci_lower`` and ``ci_upper`` are all
    finite numbers and its label is not a fit statistic (:data:`FIT_STATISTICS`).
    Without those three columns no row qualifies.
    """
    needed = ("estimate", "ci_lower", "ci_upper")
    if frame.empty or any(c not in frame.columns for c in needed):
        return frame.iloc[0:0]
    values = frame.loc[:, list(needed)].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    finite = np.isfinite(values).all(axis=1)
    labels = frame[_label_column(frame)].astype(str).str.strip().str.lower()
    return frame[finite & ~labels.isin(FIT_STATISTICS).to_numpy()]


class ResultMixin:
    """Mixin for frozen result dataclasses: ``to_frame`` -> ``_repr_html_``, ``summary``, ``plot``."""

    #: Title shown above the table in notebooks; subclasses override.
    _title: str = ""

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def _repr_html_(self) -> str:
        title = self._title or type(self).__name__
        table = self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
        notes = getattr(self, "warnings", None) or ()
        note_html = "".join(f"<p><em>Note:</em> {html.escape(str(n))}</p>" for n in notes)
        return f"<h4>{html.escape(title)}</h4>{table}{note_html}"

    def summary(self) -> str:
        """Plain-text summary: the title, the table of :meth:`to_frame` and any notes."""
        title = self._title or type(self).__name__
        table = self.to_frame().to_string(index=False, float_format=lambda v: f"{v:.4g}",
                                          na_rep="")
        notes = getattr(self, "warnings", None) or ()
        return "\n".join([title, table, *(f"Note: {n}" for n in notes)])

    def plot(self, ax: Axes | None = None, **kwargs: Any) -> Figure:
        """Coefficient estimates with their confidence intervals (a forest-style plot).

        Only rows that are estimates with a finite interval are drawn (see
        :func:`coefficient_rows`): AIC, logLik and other fit statistics never
        appear beside coefficients. ``ax``: axes to draw on (a new figure
        otherwise); ``kwargs`` go to :meth:`matplotlib.axes.Axes.errorbar`.
        Returns the Figure.

        Raises
        ------
        NotImplementedError
            The result has no rows of estimates with confidence intervals.
        """
        frame = self.to_frame()
        rows = coefficient_rows(frame)
        if rows.empty:
            raise NotImplementedError(
                f"{type(self).__name__} has no estimates with confidence intervals to plot")
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, max(2.0, 0.35 * len(rows) + 1.0)))
        labels = rows[_label_column(frame)].astype(str).tolist()
        est = rows["estimate"].to_numpy(float)
        lo, hi = rows["ci_lower"].to_numpy(float), rows["ci_upper"].to_numpy(float)
        y = np.arange(len(rows))
        ax.errorbar(est, y, xerr=[est - lo, hi - est], **{"fmt": "o", "capsize": 2, **kwargs})
        ax.set_yticks(y, labels)
        ax.invert_yaxis()
        ax.set_xlabel("estimate (confidence interval)")
        return ax.figure
