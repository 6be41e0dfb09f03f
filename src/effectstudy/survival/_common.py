"""Input checks and small helpers shared by the survival modules.

Every check names the column and the number of offending rows (and the position
of the first one), never a value: time-to-event tables of minors carry client
identifiers in other columns and the values themselves may identify a girl.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import DataError


class FewEventsWarning(UserWarning):
    """Fewer than 10 events per covariate (or per estimated quantity): unstable estimates."""


class SeparationWarning(UserWarning):
    """A Cox coefficient runs off to infinity (monotone likelihood, separation)."""


class ConvergenceWarning(UserWarning):
    """The Cox fit stopped before the partial likelihood converged (iteration limit)."""


def first_row(mask: np.ndarray) -> int:
    """Position (0-based) of the first True in ``mask``, for an error's ``row=``."""
    return int(np.flatnonzero(mask)[0])


def check_frame(data: object, columns: Sequence[str]) -> pd.DataFrame:
    """Check that ``data`` is a DataFrame with ``columns``; return it with a fresh index."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for col in columns:
        if col not in data.columns:
            raise DataError("data has no such column", column=col)
    if len(data) == 0:
        raise DataError("data has no rows")
    return data.reset_index(drop=True)


def numeric_column(data: pd.DataFrame, col: str, *, allow_nan: bool = False) -> np.ndarray:
    """The column as float; non-numeric, missing or infinite values raise DataError."""
    raw = data[col]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    non_numeric = np.isnan(values) & raw.notna().to_numpy()
    if non_numeric.any():
        raise DataError(f"{int(non_numeric.sum())} row(s) hold a non-numeric value",
                        row=first_row(non_numeric), column=col)
    if not allow_nan:
        missing = np.isnan(values)
        if missing.any():
            raise DataError(f"{int(missing.sum())} row(s) have a missing value (NaN)",
                            row=first_row(missing), column=col)
    infinite = np.isinf(values)
    if infinite.any():
        raise DataError(f"{int(infinite.sum())} row(s) hold an infinite value",
                        row=first_row(infinite), column=col)
    return values


def time_column(data: pd.DataFrame, col: str) -> np.ndarray:
    """Follow-up times: numeric, present and strictly positive."""
    t = numeric_column(data, col)
    bad = t <= 0
    if bad.any():
        raise DataError(f"{int(bad.sum())} row(s) have a zero or negative time; follow-up "
                        "must be positive", row=first_row(bad), column=col)
    return t


def event_column(data: pd.DataFrame, col: str) -> np.ndarray:
    """Event indicator: 0 (censored) or 1 (event); booleans are accepted."""
    e = numeric_column(data, col)
    bad = (e != 0) & (e != 1)
    if bad.any():
        raise DataError(f"{int(bad.sum())} row(s) are neither 0 (censored) nor 1 (event)",
                        row=first_row(bad), column=col)
    return e.astype(np.int64)


def cause_column(data: pd.DataFrame, col: str) -> np.ndarray:
    """Cause codes for competing events: non-negative integers, 0 = censored."""
    e = numeric_column(data, col)
    bad = (e < 0) | (e != np.round(e))
    if bad.any():
        raise DataError(f"{int(bad.sum())} row(s) are not a cause code (0 = censored, "
                        "1, 2, ... = type of event)", row=first_row(bad), column=col)
    return e.astype(np.int64)


def group_column(data: pd.DataFrame, col: str) -> np.ndarray:
    """Group labels without missing values."""
    g = data[col]
    missing = g.isna().to_numpy()
    if missing.any():
        raise DataError(f"{int(missing.sum())} row(s) have no group (missing value)",
                        row=first_row(missing), column=col)
    return g.to_numpy()


def group_levels(groups: np.ndarray) -> list[object]:
    """Sorted group levels (as R's factor() orders them), falling back to first-seen order."""
    levels = list(pd.unique(groups))
    try:
        return sorted(levels)
    except TypeError:
        return levels


def check_confidence(confidence: float) -> float:
    """The two-sided normal quantile for ``confidence`` (which must lie in (0, 1))."""
    if not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise DataError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return float(stats.norm.ppf(0.5 + confidence / 2))
