"""Small statistical helpers shared by several modules."""

from __future__ import annotations

import math

from scipy import stats


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper & Pearson 1934) binomial confidence interval for k successes in n.

    Clopper C.J. & Pearson E.S. (1934). The use of confidence or fiducial limits
    illustrated in the case of the binomial. Biometrika 26:404-413.
    """
    if n == 0:
        return (math.nan, math.nan)
    a = 1 - level
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi
