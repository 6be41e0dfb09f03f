"""Monte Carlo power of t-tests (a check of the analytic noncentral-t power)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .._compat import renamed_keywords, seed_to_rng
from .._validate import RNGLike, check_choice, check_rng, check_significance

__all__ = ["simulate_t_test_power"]


@renamed_keywords("simulate_t_test_power", {"seed": seed_to_rng})
def simulate_t_test_power(
    d: float,
    n: int,
    kind: str = "one-sample",
    n2: int | None = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    nsim: int = 2000,
    rng: RNGLike = None,
) -> float:
    """Share of ``nsim`` simulated data sets in which the t-test rejects.

    Normal data with standardised effect ``d`` (for paired designs the
    differences have mean ``d`` and SD 1), tested with ``scipy.stats``
    one-sample or pooled two-sample t-tests. ``alpha`` is the significance
    level of the test; ``rng`` an int seed, a Generator or ``None`` (``seed=``
    is accepted for one release with a :class:`FutureWarning`).
    """
    gen = check_rng(rng)
    alpha = check_significance(alpha)
    alt = check_choice("alternative", alternative, {
        "two-sided": "two-sided", "two.sided": "two-sided", "greater": "greater", "less": "less"})
    kind = check_choice("kind", kind, ("one-sample", "paired", "two-sample"))
    if kind in ("one-sample", "paired"):
        x = gen.standard_normal((nsim, int(n))) + d
        p = stats.ttest_1samp(x, 0.0, axis=1, alternative=alt).pvalue
    elif kind == "two-sample":
        m = int(n if n2 is None else n2)
        a = gen.standard_normal((nsim, int(n))) + d
        b = gen.standard_normal((nsim, m))
        p = stats.ttest_ind(a, b, axis=1, alternative=alt).pvalue
    return float(np.mean(p < alpha))
