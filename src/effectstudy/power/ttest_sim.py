"""Monte Carlo power of t-tests (a check of the analytic noncentral-t power)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import SpecError

__all__ = ["simulate_t_test_power"]


def simulate_t_test_power(
    d: float,
    n: int,
    kind: str = "one-sample",
    n2: int | None = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    nsim: int = 2000,
    seed: int | None = 1,
) -> float:
    """Share of ``nsim`` simulated data sets in which the t-test rejects.

    Normal data with standardised effect ``d`` (for paired designs the
    differences have mean ``d`` and SD 1), tested with ``scipy.stats``
    one-sample or pooled two-sample t-tests.
    """
    rng = np.random.default_rng(seed)
    alt = {
        "two-sided": "two-sided",
        "two.sided": "two-sided",
        "greater": "greater",
        "less": "less",
    }[alternative]
    if kind in ("one-sample", "paired"):
        x = rng.standard_normal((nsim, int(n))) + d
        p = stats.ttest_1samp(x, 0.0, axis=1, alternative=alt).pvalue
    elif kind == "two-sample":
        m = int(n if n2 is None else n2)
        a = rng.standard_normal((nsim, int(n))) + d
        b = rng.standard_normal((nsim, m))
        p = stats.ttest_ind(a, b, axis=1, alternative=alt).pvalue
    else:
        raise SpecError(f"unknown kind {kind!r}")
    return float(np.mean(p < alpha))
