"""Small numerical helpers shared by the sced effect sizes and Tau-U code.

R semantics where the reference values depend on them: IEEE division
(``x/0 -> +/-inf``, ``0/0 -> NaN``), a square root that returns NaN instead
of raising, the sample variance (NaN for one value) and the normal
critical value of a two-sided interval.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import stats

from effectstudy.errors import DataError

NAN = math.nan


@functools.lru_cache(maxsize=64)
def zcrit(confidence: float | None) -> float:
    """Normal critical value of a two-sided ``confidence`` interval (NaN for None)."""
    if confidence is None:
        return NAN
    if not 0 < confidence < 1:
        raise DataError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def sample_var(x: np.ndarray) -> float:
    """Sample variance (ddof 1); NaN for fewer than two values, as R's ``var``."""
    return float(np.var(x, ddof=1)) if x.size > 1 else NAN


def safe_sqrt(x: float) -> float:
    """R's ``sqrt``: NaN (not an exception) for negative or NaN input."""
    return math.sqrt(x) if x >= 0 else NAN


def safe_div(a: float, b: float) -> float:
    """IEEE division as in R (``x/0 -> +/-inf``, ``0/0 -> NaN``, signed zeros kept)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(np.float64(a) / np.float64(b))
