"""Small-sample machinery shared by the design-comparable SMD estimators.

* ``J(nu) = 1 - 3 / (4 nu - 1)``: Hedges' small-sample correction (Hedges, 1981),
  as used by Hedges, Pustejovsky & Shadish (2012, 2013) and Pustejovsky, Hedges &
  Shadish (2014).
* The approximate variance of ``g = J(nu) delta`` (Pustejovsky et al., 2014, eq. 13):
  ``V(g) = J^2 {nu kappa^2 / (nu - 2) + g^2 (nu / (nu - 2) - 1 / J^2)}``, with ``nu``
  truncated at 2.001.
* Symmetric (central t) and non-central-t confidence intervals
  (Pustejovsky et al., 2014, sec. 3.3): the bounds solve
  ``F_t(delta / kappa; nu, lambda) = (1 +/- cover) / 2`` for the non-centrality
  ``lambda`` and are ``kappa * lambda`` (an interval for delta, as lmeInfo's
  ``CI_g(symmetric = FALSE)``).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

__all__ = ["J", "ci_noncentral_t", "ci_symmetric", "g_variance"]


def J(nu: float) -> float:
    """Hedges' small-sample correction factor ``1 - 3 / (4 nu - 1)``."""
    return 1.0 - 3.0 / (4.0 * nu - 1.0)


def g_variance(g: float, kappa: float, nu: float) -> float:
    """Approximate sampling variance of ``g`` (``nu`` truncated at 2.001)."""
    j = J(nu)
    nu_t = max(nu, 2.001)
    j_t = J(nu_t)
    return j**2 * (nu_t * kappa**2 / (nu_t - 2.0) + g**2 * (nu_t / (nu_t - 2.0) - 1.0 / j_t**2))


def ci_symmetric(g: float, se: float, nu: float, cover: float = 0.95) -> tuple[float, float]:
    """``g -/+ t_{nu, (1 + cover) / 2} * se``."""
    q = float(stats.t.ppf(1.0 - (1.0 - cover) / 2.0, nu))
    return g - q * se, g + q * se


def ci_noncentral_t(
    delta: float, kappa: float, nu: float, cover: float = 0.95, bound: float = 35.0
) -> tuple[float, float]:
    """Non-central t interval for delta (lmeInfo ``CI_g(symmetric = FALSE)``).

    Falls back, like lmeInfo, to the symmetric start value when a root lies
    beyond ``+/- bound`` in the non-centrality.
    """
    t_obs = delta / kappa
    j = J(nu)
    nu_t = max(nu, 2.001)
    v_delta = kappa**2 * nu_t / (nu_t - 2) + delta**2 * (nu_t / (nu_t - 2) - 1 / J(nu_t) ** 2)
    q = float(stats.t.ppf(1 - (1 - cover) / 2, nu))
    start = (
        j * (delta - q * math.sqrt(v_delta)) / kappa,
        j * (delta + q * math.sqrt(v_delta)) / kappa,
    )

    def root(prob: float, fallback: float) -> float:
        def f(ncp: float) -> float:
            val = float(stats.nct.cdf(t_obs, nu, ncp))
            if not math.isfinite(val):  # far tails: the cdf is 0 or 1 to double precision
                val = 0.0 if ncp > t_obs else 1.0
            return val - prob

        lo, hi = -bound, bound
        if np.sign(f(lo)) == np.sign(f(hi)):
            return fallback
        return optimize.brentq(f, lo, hi, xtol=1e-13, rtol=1e-14, maxiter=500)

    lower = root(1 - (1 - cover) / 2, start[0])
    upper = root((1 - cover) / 2, start[1])
    return kappa * lower, kappa * upper
