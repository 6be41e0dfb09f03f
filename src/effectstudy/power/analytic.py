"""Analytic power of t-tests and effect-size conversions for planners.

Power of the one-sample, paired and two-sample t-test from the noncentral t
distribution (Cohen 1988, ch. 2), as computed by R's ``pwr`` package
(Champely 2020): for a two-sided test *both* rejection tails are included.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from scipy import stats

from .._validate import check_choice, check_significance
from ..errors import SpecError

__all__ = [
    "t_test_power",
    "solve_n",
    "slope_from_d",
    "d_from_slope",
]

Kind = Literal["one-sample", "two-sample", "paired"]
Alternative = Literal["two-sided", "greater", "less"]

_KINDS = {
    "one-sample": "one",
    "one.sample": "one",
    "paired": "one",
    "two-sample": "two",
    "two.sample": "two",
}


_ALTERNATIVES = {"two-sided": "two-sided", "two.sided": "two-sided", "greater": "greater",
                 "less": "less"}


def _df_ncp(d: float, n: float, kind: str, n2: float | None) -> tuple[float, float]:
    k = check_choice("kind", kind, _KINDS, normalise=False)
    if k == "one":
        if n2 is not None:
            raise SpecError("n2 is only meaningful for kind='two-sample'")
        return n - 1.0, d * math.sqrt(n)
    m = n if n2 is None else n2
    return n + m - 2.0, d * math.sqrt(n * m / (n + m))


def t_test_power(
    d: float,
    n: float,
    kind: Kind = "one-sample",
    n2: float | None = None,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> float:
    """Power of a t-test for standardised effect ``d``.

    Parameters
    ----------
    d : float
        Cohen's d; for ``kind="paired"`` this is d_z (mean difference / SD of
        the differences).
    n : float
        Sample size: the number of observations (one-sample), pairs (paired),
        or the size of group 1 (two-sample).
    kind : {"one-sample", "two-sample", "paired"}
    n2 : float, optional
        Size of group 2 (two-sample only); defaults to ``n`` (equal groups,
        ``pwr.t.test``); otherwise as ``pwr.t2n.test``.
    alpha : float
        Significance level of the test (not a confidence level; the name is
        pwr's ``sig.level``).
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    float
        The power. Two-sided power includes the far tail
        ``P(T < -t_{1-alpha/2})`` (as pwr does).

    Notes
    -----
    ``T`` follows a noncentral t with df ``n - 1`` (one-sample/paired) or
    ``n1 + n2 - 2`` and noncentrality ``d sqrt(n)`` or ``d sqrt(n1 n2/(n1+n2))``
    (Cohen 1988).
    """
    alpha = check_significance(alpha)
    alternative = check_choice("alternative", alternative, _ALTERNATIVES,  # type: ignore[assignment]
                               normalise=False)
    df, ncp = _df_ncp(float(d), float(n), kind, n2)
    if df <= 0:
        raise SpecError("sample size too small for a t-test")
    if alternative == "two-sided":
        q = stats.t.isf(alpha / 2, df)
        return float(stats.nct.sf(q, df, ncp) + stats.nct.cdf(-q, df, ncp))
    if alternative == "greater":
        return float(stats.nct.sf(stats.t.isf(alpha, df), df, ncp))
    return float(stats.nct.cdf(stats.t.ppf(alpha, df), df, ncp))


def _r_zeroin(f, ax: float, bx: float, tol: float, maxit: int = 1000) -> float:
    """Brent's root finder exactly as R's ``zeroin.c`` (used by ``uniroot``).

    Ported from the algorithm description of Brent (1973, ch. 4) in the form
    R uses, so that ``solve_n`` returns the very number ``pwr`` reports.
    """
    eps = np.finfo(float).eps
    a, b = ax, bx
    fa, fb = f(a), f(b)
    c, fc = a, fa
    if fa == 0.0:
        return a
    if fb == 0.0:
        return b
    for _ in range(maxit + 1):
        prev_step = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new_step = (c - b) / 2
        if abs(new_step) <= tol_act or fb == 0.0:
            return b
        if abs(prev_step) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:
                t1 = fb / fa
                p = cb * t1
                q = 1.0 - t1
            else:
                q = fa / fc
                t1 = fb / fc
                t2 = fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1.0))
                q = (q - 1.0) * (t1 - 1.0) * (t2 - 1.0)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < (0.75 * cb * q - abs(tol_act * q) / 2) and p < abs(prev_step * q / 2):
                new_step = p / q
        if abs(new_step) < tol_act:
            new_step = tol_act if new_step > 0 else -tol_act
        a, fa = b, fb
        b += new_step
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def solve_n(
    d: float,
    power: float = 0.8,
    kind: Kind = "one-sample",
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    *,
    tol: float = np.finfo(float).eps ** 0.25,
) -> float:
    """Sample size (per group for two-sample) giving the requested power.

    Solves ``t_test_power(d, n) = power`` for real ``n`` on ``(2, 1e9)`` with
    Brent's method as in R's ``uniroot`` (default tolerance ``eps^0.25``), so the
    result equals ``pwr::pwr.t.test(..., n = NULL)``. Round up for planning.
    """
    if not 0 < power < 1:
        raise SpecError("power must lie in (0, 1)")

    def f(n: float) -> float:
        return t_test_power(d, n, kind=kind, alpha=alpha, alternative=alternative) - power

    return float(_r_zeroin(f, 2 + 1e-10, 1e9, tol))


def slope_from_d(d: float, duration: float, sd_total: float) -> float:
    """Raw growth-rate difference (per time unit) equivalent to a standardised effect.

    Feingold (2009, 2013): for growth models the standardised effect is
    ``d = beta * duration / SD_raw`` where ``beta`` is the (difference in)
    slope, ``duration`` the length of the study in time units, and ``SD_raw``
    the total outcome SD at baseline (all variance components). Hence
    ``beta = d * SD_raw / duration``.
    """
    if duration <= 0 or sd_total <= 0:
        raise SpecError("duration and sd_total must be positive")
    return float(d) * float(sd_total) / float(duration)


def d_from_slope(slope: float, duration: float, sd_total: float) -> float:
    """Feingold (2009) standardised effect ``d = slope * duration / sd_total``."""
    if duration <= 0 or sd_total <= 0:
        raise SpecError("duration and sd_total must be positive")
    return float(slope) * float(duration) / float(sd_total)
