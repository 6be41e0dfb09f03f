"""Kendall-type building blocks for the SCED effect sizes.

Private helpers of :mod:`effectstudy.sced.effect_sizes`:

* :func:`kendall_scan` -- Kendall's S, tau-a/tau-b, variance of S, z and p as
  computed by the R package *scan* (Wilbert & Lueke), with its optional
  continuity correction.
* :func:`kendall_pkg` -- Kendall's tau-b and the two-sided p-value as returned
  by the R package *Kendall* (McLeod 2011; tie-corrected variance of S, normal
  approximation with continuity correction, AS 71 / Kendall 1970).
* :func:`theil_sen` -- Theil (1950) / Sen (1968) median-of-pairwise-slopes line.
* :func:`tau_u_table` -- the six-row Tau-U table of Parker et al. (2011) in the
  variants ``complete`` (tau-b or tau-a), ``parker`` and ``tarlow`` of scan.
* :func:`corrected_tau` -- Tarlow's (2017) baseline-corrected tau as
  implemented by scan's ``corrected_tau()``.

All functions work on plain 1-D float arrays and never raise on degenerate
input; undefined quantities come back as NaN (or +/-inf where IEEE arithmetic
gives it, exactly as R does).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from effectstudy.sced._numeric import safe_div, safe_sqrt, zcrit

__all__ = [
    "kendall_pkg",
    "kendall_s",
    "kendall_scan",
    "corrected_tau",
    "tau_u_table",
    "theil_sen",
    "TAU_U_ROWS",
]

TAU_U_ROWS = (
    "A vs. B",
    "Trend A",
    "Trend B",
    "A vs. B - Trend A",
    "A vs. B + Trend B",
    "A vs. B + Trend B - Trend A",
)


def kendall_s(x: np.ndarray, y: np.ndarray) -> int:
    """Kendall's S = sum over pairs of sign(x_j - x_i) * sign(y_j - y_i)."""
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    sx = np.sign(x[None, :] - x[:, None])
    sy = np.sign(y[None, :] - y[:, None])
    return int(np.triu(sx * sy, 1).sum())


def _tie_sizes(x: np.ndarray) -> np.ndarray:
    """Sizes of the groups of exactly equal values (singletons included)."""
    if x.size == 0:
        return np.zeros(0)
    v = np.sort(x)
    edges = np.flatnonzero(np.concatenate(([True], v[1:] != v[:-1], [True])))
    return np.diff(edges).astype(float)


def kendall_scan(
    x: np.ndarray,
    y: np.ndarray,
    tau_method: str = "b",
    continuity_correction: bool = False,
) -> dict[str, Any]:
    """Kendall's tau between ``x`` and ``y`` as scan computes it.

    S is the usual Kendall score (ties contribute 0). For ``tau_method="a"``
    the denominator is N(N-1)/2 and sd(S) = sqrt(N(N-1)(2N+5)/2)/3, written as
    scan writes it, ``S / (3S / sqrt(...))``, so sd(S) is NaN when S = 0.
    For ``tau_method="b"`` the denominator is sqrt((n0 - t)(n0 - u)) and var(S)
    is the tie-corrected variance (Kendall 1970, eq. 4.3). z = S/sd(S) or, with
    the continuity correction, sign(S)(|S| - 1)/sd(S); p is two-sided normal.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = int(x.size)
    s = float(kendall_s(x, y)) if n >= 2 else 0.0
    n0 = n * (n - 1) / 2
    # tie-group sums are integers, exact in any summation order
    tx = _tie_sizes(x)
    ty = _tie_sizes(y)
    if tau_method == "a":
        den = n0
        tau = safe_div(s, den)
        root = safe_sqrt(n * (n - 1) * (2 * n + 5) / 2)
        sds = safe_div(s, safe_div(3 * s, root))
        vars_ = sds * sds
        if continuity_correction:
            z = safe_div(
                3 * (math.copysign(1.0, s) * (abs(s) - 1) if s != 0 else 0.0 * (abs(s) - 1)), root
            )
        else:
            z = safe_div(3 * s, root)
    else:
        ti = float(np.sum(tx * (tx - 1))) / 2
        ui = float(np.sum(ty * (ty - 1))) / 2
        den = safe_sqrt((n0 - ti) * (n0 - ui))
        tau = safe_div(s, den)
        v0 = n * (n - 1) * (2 * n + 5)
        vt = float(np.sum(tx * (tx - 1) * (2 * tx + 5)))
        vu = float(np.sum(ty * (ty - 1) * (2 * ty + 5)))
        v1 = float(np.sum(tx * (tx - 1))) * float(np.sum(ty * (ty - 1)))
        v2 = float(np.sum(tx * (tx - 1) * (tx - 2))) * float(np.sum(ty * (ty - 1) * (ty - 2)))
        vars_ = (
            (v0 - vt - vu) / 18 + safe_div(v1, 2 * n * (n - 1)) + safe_div(v2, 9 * n * (n - 1) * (n - 2))
        )
        sds = safe_sqrt(vars_)
        if continuity_correction:
            sign_s = math.copysign(1.0, s) if s != 0 else 0.0
            z = safe_div(sign_s * (abs(s) - 1), sds)
        else:
            z = safe_div(s, sds)
    p = math.erfc(abs(z) / math.sqrt(2)) if not math.isnan(z) else math.nan
    if math.isinf(z):
        p = math.nan
        tau = math.nan
    return {"N": n, "S": s, "D": den, "tau": tau, "varS": vars_, "sdS": sds, "z": z, "p": p}


def _as66_far(z, y):
    """AS 66 tail for z > 1.28 (continued fraction), float32 scalars or arrays; y = z^2/2."""
    f = np.float32
    return (
        f(0.398942280385)
        * np.exp(-y)
        / (
            z
            - f(3.8052e-8)
            + f(1.00000615302)
            / (
                z
                + f(3.98064794e-4)
                + f(1.98615381364)
                / (
                    z
                    - f(0.151679116635)
                    + f(5.29330324926)
                    / (
                        z
                        + f(4.8385912808)
                        - f(15.1508972451)
                        / (z + f(0.742380924027) + f(30.789933034) / (z + f(3.99019417011)))
                    )
                )
            )
        )
    )


def _as66_near(z, y):
    """AS 66 tail for z <= 1.28 (rational approximation), float32 scalars or arrays."""
    f = np.float32
    return f(0.5) - z * (
        f(0.398942280444)
        - f(0.399903438504)
        * y
        / (
            y
            + f(5.75885480458)
            - f(29.8213557808)
            / (y + f(2.62433121679) + f(48.6959930692) / (y + f(5.92885724438)))
        )
    )


def _alnorm32(x: np.float32, upper: bool) -> np.float32:
    """Normal tail area, algorithm AS 66 (Hill 1973) in single precision."""
    f = np.float32
    ltone, utzero, con = f(7.0), f(18.66), f(1.28)
    zero, half, one = f(0.0), f(0.5), f(1.0)
    res = one if not x > zero else zero
    if abs(x) < f(10.0):
        up = upper
        z = f(x)
        if z < zero:
            up = not up
            z = -z
        if z <= ltone or (up and z <= utzero):
            y = half * z * z
            if z > con:
                res = _as66_far(z, y)
            else:
                res = _as66_near(z, y)
        else:
            res = zero
        if not up:
            res = one - res
        return f(res)
    if upper:
        return f(res)
    return f(one - res)


def kendall_pkg(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Kendall's tau-b and two-sided p-value as the R package *Kendall* returns.

    Follows the package's Fortran routine ``TAUK2`` (Kendall 1970 tie
    corrections; AS 66 normal tail): the data are single precision (so values
    equal in single precision are ties) and so is all arithmetic, which is
    reproduced here with ``numpy.float32``. If either variable is constant the
    routine stops with ``IFAULT = 12``, tau = 1 and p = 1; for N < 4 p = 1.
    Otherwise tau-b = S / sqrt((n0 - t)(n0 - u)) and
    p = 2 P(Z > |S - sign(S)| / sd(S)) with the tie-corrected variance of S.
    """
    f = np.float32
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32)
    n = x.size
    out = {"tau": 1.0, "sl": 1.0, "S": math.nan, "D": math.nan, "varS": math.nan}
    if n < 2:
        return out
    if bool(np.all(x == x[0])) or bool(np.all(y == y[0])):
        return out
    s = f(kendall_s(x.astype(float), y.astype(float)))
    cn = f(n) * f(n - 1)
    dn = f(0.5) * cn

    def _sums(v: np.ndarray) -> tuple[np.float32, np.float32, np.float32]:
        # tie-group sums are small integers: exact in any order, then single
        t = _tie_sizes(v)
        return (
            f(np.sum(t * (t - 1))),
            f(np.sum(t * (t - 1) * (2 * t + 5))),
            f(np.sum(t * (t - 1) * (t - 2))),
        )

    sumt, suma1, suma2 = _sums(x)
    sumu, sumb1, sumb2 = _sums(y)
    d1 = f(np.sqrt(f(dn - f(0.5) * sumt)))
    d2 = f(np.sqrt(f(dn - f(0.5) * sumu)))
    if d1 <= 0 or d2 <= 0:
        return out
    denom = f(d1 * d2)
    tau = f(s / denom)
    with np.errstate(divide="ignore", invalid="ignore"):
        vars1 = f((cn * f(2 * n + 5) - suma1 - sumb1) / f(18.0))
        vars2 = f(suma2 * sumb2 / (f(9.0) * cn * f(n - 2)))
        vars3 = f(sumt * sumu / (cn + cn))
    vars_ = f(vars1 + vars2 + vars3)
    out.update(tau=float(tau), S=float(s), D=float(denom), varS=float(vars_))
    if n > 3:
        scor = f(s - 1) if s > 0 else (f(s + 1) if s < 0 else f(0.0))
        zscore = f(scor / f(np.sqrt(vars_)))
        prob = _alnorm32(zscore, False)
        sl = f(2.0) * prob
        if prob >= f(0.5):
            sl = f(2.0) * f(f(1.0) - prob)
        out["sl"] = float(sl)
    return out


def _alnorm32_lower(x: np.ndarray) -> np.ndarray:
    """Vectorised AS 66 lower tail P(Z <= x) in single precision (as ``_alnorm32``)."""
    f = np.float32
    x = np.asarray(x, dtype=np.float32)
    z = np.abs(x)
    up = x < 0  # upper=False flipped for negative x
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        y = f(0.5) * z * z
        big = _as66_far(z, y)
        small = _as66_near(z, y)
    cond = (z <= f(7.0)) | (up & (z <= f(18.66)))
    val = np.where(cond, np.where(z > f(1.28), big, small), f(0.0)).astype(np.float32)
    val = np.where(up, val, f(1.0) - val).astype(np.float32)
    outside = np.where(x > 0, f(1.0), f(0.0)).astype(np.float32)  # |x| >= 10
    return np.where(z < f(10.0), val, outside).astype(np.float32)


def kendall_trend_p(values: np.ndarray) -> np.ndarray:
    """Kendall-package p-value of the trend of each row of ``values`` against 1..m.

    Row-wise vectorised version of ``kendall_pkg(row, 1..m)["sl"]`` (same
    single-precision arithmetic): used for the Tau-BC baseline-trend pre-test.
    """
    f = np.float32
    X = np.asarray(values, dtype=np.float32)
    k, n = X.shape
    sl = np.ones(k)
    if n < 4:
        return sl
    const = np.all(X == X[:, :1], axis=1)
    i, j = np.triu_indices(n, 1)
    s = np.sign(X[:, j].astype(float) - X[:, i].astype(float)).sum(axis=1)
    t = (X[:, :, None] == X[:, None, :]).sum(axis=2).astype(float)  # tie size of each element
    sumt = np.sum(t - 1, axis=1).astype(np.float32)
    suma1 = np.sum((t - 1) * (2 * t + 5), axis=1).astype(np.float32)
    cn = f(n) * f(n - 1)
    # the time variable 1..n has no ties: SUMU = SUMB1 = SUMB2 = 0
    vars1 = ((cn * f(2 * n + 5) - suma1 - f(0.0)) / f(18.0)).astype(np.float32)
    vars_ = (vars1 + f(0.0) + (sumt * f(0.0) / (cn + cn))).astype(np.float32)
    s32 = s.astype(np.float32)
    scor = np.where(s > 0, s32 - f(1.0), np.where(s < 0, s32 + f(1.0), f(0.0))).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        zscore = (scor / np.sqrt(vars_)).astype(np.float32)
    prob = _alnorm32_lower(zscore)
    two = np.where(prob >= f(0.5), f(2.0) * (f(1.0) - prob), f(2.0) * prob).astype(np.float32)
    return np.where(const, 1.0, two.astype(float))


def lm_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Intercept and slope of the OLS line y ~ x with R's ``lm()`` arithmetic.

    Householder QR as LINPACK ``dqrdc2``/``dqrsl`` (what ``lm.fit`` calls), so
    fitted values agree with R to the last bit in the usual cases; this matters
    where B values are compared with the extrapolated baseline trend (PET).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = x.size
    a = np.column_stack([np.ones(n), x]).copy()
    qraux = np.zeros(2)
    p = 2

    def nrm2(v: np.ndarray) -> float:
        acc = 0.0
        for e in v:
            acc += e * e
        return math.sqrt(acc)

    def dot(u: np.ndarray, v: np.ndarray) -> float:
        acc = 0.0
        for e, g in zip(u, v, strict=True):
            acc += e * g
        return acc

    for j in range(p):
        qraux[j] = nrm2(a[:, j])
    for k in range(min(n, p)):
        if k == n - 1:
            continue
        nrmxl = nrm2(a[k:, k])
        if nrmxl == 0.0:
            continue
        if a[k, k] != 0.0:
            nrmxl = math.copysign(nrmxl, a[k, k])
        a[k:, k] = a[k:, k] * (1.0 / nrmxl)
        a[k, k] = 1.0 + a[k, k]
        for j in range(k + 1, p):
            t = -dot(a[k:, k], a[k:, j]) / a[k, k]
            a[k:, j] = a[k:, j] + t * a[k:, k]
        qraux[k] = a[k, k]
        a[k, k] = -nrmxl
    qty = y.copy()
    for j in range(min(p, n - 1)):
        if qraux[j] == 0.0:
            continue
        temp = a[j, j]
        a[j, j] = qraux[j]
        t = -dot(a[j:, j], qty[j:]) / a[j, j]
        qty[j:] = qty[j:] + t * a[j:, j]
        a[j, j] = temp
    b = qty[:p].copy()
    for j in range(p - 1, -1, -1):
        b[j] = b[j] / a[j, j]
        if j > 0:
            t = -b[j]
            b[:j] = b[:j] + t * a[:j, j]
    return float(b[0]), float(b[1])


def theil_sen(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Theil-Sen line: median of pairwise slopes, median of y - slope * x.

    Pairs with equal x are skipped (as in ``mblm(repeated = FALSE)``); with
    fewer than two distinct x values the slope is NaN.
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    i, j = np.triu_indices(x.size, 1)
    dx = x[j] - x[i]
    keep = dx != 0
    if not np.any(keep):
        return math.nan, math.nan
    slope = float(np.median((y[j] - y[i])[keep] / dx[keep]))
    intercept = float(np.median(y - slope * x))
    return slope, intercept


def _inv_fisher_z(t: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        e = np.exp(2 * t)
        return (e - 1) / (e + 1)


def _tau_ci(tau: np.ndarray, n: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Fisher-z interval for tau, se(z) = 1/sqrt(n - 3) (scan ``ci_method='z'``)."""
    z = zcrit(ci)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_z = 1 / np.sqrt(n - 3.0)
        tz = 0.5 * np.log((1 + tau) / (1 - tau))
    return _inv_fisher_z(tz - z * se_z), _inv_fisher_z(tz + z * se_z)


def tau_u_table(
    a: np.ndarray,
    b: np.ndarray,
    method: str = "complete",
    tau_method: str = "b",
    continuity_correction: bool = False,
    ci: float | None = 0.95,
) -> dict[str, np.ndarray]:
    """The Tau-U family table (Parker, Vannest, Davis & Sauber, 2011).

    Rows (:data:`TAU_U_ROWS`): A vs. B, Trend A, Trend B, A vs. B - Trend A,
    A vs. B + Trend B, A vs. B + Trend B - Trend A. Returns a dict of columns
    ``pairs, pos, neg, ties, S, D, Tau, SD_S, VAR_S, SE_Tau, Z, p, n,
    ci_lower, ci_upper``. See :func:`effectstudy.sced.effect_sizes.tau_u` for
    the meaning of ``method`` / ``tau_method``.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if method == "parker":
        tau_method, continuity_correction = "a", False
    elif method == "tarlow":
        tau_method, continuity_correction = "a", True
    elif method != "complete":
        raise ValueError(f"unknown Tau-U method {method!r}")
    na, nb = a.size, b.size
    nab = na + nb
    ab = np.concatenate([a, b])

    def _upper_counts(v: np.ndarray) -> tuple[int, int, int]:
        d = v[None, :] - v[:, None]
        iu = np.triu_indices(v.size, 1)
        d = d[iu]
        return int(np.sum(d > 0)), int(np.sum(d < 0)), int(np.sum(d == 0))

    aa_pos, aa_neg, aa_tie = _upper_counts(a)
    bb_pos, bb_neg, bb_tie = _upper_counts(b)
    diff = b[None, :] - a[:, None]
    ab_pos, ab_neg, ab_tie = int(np.sum(diff > 0)), int(np.sum(diff < 0)), int(np.sum(diff == 0))

    kmeth = "a" if (method == "complete" and tau_method == "a") else "b"
    cc = continuity_correction
    t_avb = np.concatenate([np.zeros(na), np.ones(nb)])
    rev_a = np.arange(na, 0, -1, dtype=float)
    t_avb_a = np.concatenate([rev_a, np.full(nb, na + 1.0)])
    t_avb_b = np.concatenate([np.zeros(na), np.arange(na + 1, nab + 1, dtype=float)])
    t_avb_b_a = np.concatenate([rev_a, np.arange(na + 1, nab + 1, dtype=float)])
    ks = [
        kendall_scan(ab, t_avb, kmeth, cc),
        kendall_scan(a, np.arange(1, na + 1, dtype=float), kmeth, cc),
        kendall_scan(b, np.arange(1, nb + 1, dtype=float), kmeth, cc),
        kendall_scan(ab, t_avb_a, kmeth, cc),
        kendall_scan(ab, t_avb_b, kmeth, cc),
        kendall_scan(ab, t_avb_b_a, kmeth, cc),
    ]
    ab_pair = na * nb
    aa_pair = na * (na - 1) / 2
    bb_pair = nb * (nb - 1) / 2
    pairs = np.array(
        [
            ab_pair,
            aa_pair,
            bb_pair,
            ab_pair + aa_pair,
            ab_pair + bb_pair,
            ab_pair + aa_pair + bb_pair,
        ],
        dtype=float,
    )
    if method == "parker":
        pairs[3] = ab_pair
        pairs[5] = nab * (nab - 1) / 2
    pos = np.array(
        [ab_pos, aa_pos, bb_pos, ab_pos + aa_neg, ab_pos + bb_pos, ab_pos + bb_pos + aa_neg],
        dtype=float,
    )
    neg = np.array(
        [ab_neg, aa_neg, bb_neg, ab_neg + aa_pos, ab_neg + bb_neg, ab_neg + bb_neg + aa_pos],
        dtype=float,
    )
    ties = np.array(
        [ab_tie, aa_tie, bb_tie, ab_tie + aa_tie, ab_tie + bb_tie, ab_tie + bb_tie + aa_tie],
        dtype=float,
    )
    s = np.array([k["S"] for k in ks], dtype=float)
    if method == "complete" and tau_method == "b":
        d = np.array([k["D"] for k in ks], dtype=float)
        d[0] = pairs[0] - ties[0] / 2
    else:
        d = pairs.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        tau = s / d
    if method == "tarlow":
        sd_s = np.array([k["sdS"] for k in ks], dtype=float)
    else:
        sd_s = np.array(
            [
                math.sqrt(na * nb * (na + nb + 1) / 12) * 2,
                kendall_scan(np.arange(1.0, na + 1), np.arange(1.0, na + 1), tau_method)["sdS"],
                kendall_scan(np.arange(1.0, nb + 1), np.arange(1.0, nb + 1), tau_method)["sdS"],
                ks[3]["sdS"],
                ks[4]["sdS"],
                ks[5]["sdS"],
            ],
            dtype=float,
        )
    z = np.array([k["z"] for k in ks], dtype=float)
    p = np.array([k["p"] for k in ks], dtype=float)
    n = np.array([k["N"] for k in ks], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_tau = tau / z
    if ci is None:
        lo = hi = np.full(6, np.nan)
    else:
        lo, hi = _tau_ci(tau, n, ci)
    return {
        "pairs": pairs,
        "pos": pos,
        "neg": neg,
        "ties": ties,
        "S": s,
        "D": d,
        "Tau": tau,
        "SD_S": sd_s,
        "VAR_S": sd_s**2,
        "SE_Tau": se_tau,
        "Z": z,
        "p": p,
        "n": n,
        "ci_lower": lo,
        "ci_upper": hi,
    }


def corrected_tau(
    a: np.ndarray,
    b: np.ndarray,
    mt_a: np.ndarray,
    mt_b: np.ndarray,
    alpha: float = 0.05,
    tau_method: str = "b",
    continuity: bool = False,
) -> dict[str, Any]:
    """Tarlow's (2017) baseline-corrected tau as scan's ``corrected_tau()``.

    Step 1: Kendall's tau between the baseline values and measurement times
    (NA when the baseline is constant or has fewer than 3 points). Step 2: a
    Theil-Sen line fitted to the baseline is subtracted from all values. Step 3:
    Kendall's tau between the (corrected or raw) values and the phase dummy.
    The corrected tau is "selected" only when the baseline-trend p <= alpha.
    """
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    mt_a = np.asarray(mt_a, dtype=float)
    mt_b = np.asarray(mt_b, dtype=float)
    nan_row = {"tau": math.nan, "z": math.nan, "p": math.nan}
    warnings: list[str] = []
    if np.unique(mt_a).size < 2 or a.size < 2 or b.size < 1:
        return {
            "auto": dict(nan_row),
            "uncorrected": dict(nan_row),
            "corrected": dict(nan_row),
            "selected": dict(nan_row),
            "correction_applied": False,
            "slope": math.nan,
            "intercept": math.nan,
            "warnings": ["need at least two complete observations in phase A and one in phase B"],
        }
    if np.all(a == a[0]):
        warnings.append("All phase A values are identical; baseline trend test set to NA.")
        auto = dict(nan_row)
    elif a.size < 3:
        warnings.append(
            "Need at least three data points in phase A; baseline trend test set to NA."
        )
        auto = dict(nan_row)
    else:
        k = kendall_scan(a, mt_a, tau_method, continuity)
        auto = {"tau": k["tau"], "z": k["z"], "p": k["p"]}
    slope, intercept = theil_sen(mt_a, a)
    values = np.concatenate([a, b])
    mt = np.concatenate([mt_a, mt_b])
    fit = intercept + mt * slope
    y = np.concatenate([np.ones(a.size), np.full(b.size, 2.0)])
    kc = kendall_scan(values - fit, y, tau_method, continuity)
    ku = kendall_scan(values, y, tau_method, continuity)
    corrected = {"tau": kc["tau"], "z": kc["z"], "p": kc["p"]}
    uncorrected = {"tau": ku["tau"], "z": ku["z"], "p": ku["p"]}
    applied = not (math.isnan(auto["p"]) or auto["p"] > alpha)
    return {
        "auto": auto,
        "uncorrected": uncorrected,
        "corrected": corrected,
        "selected": dict(corrected if applied else uncorrected),
        "correction_applied": applied,
        "slope": slope,
        "intercept": intercept,
        "warnings": warnings,
    }
