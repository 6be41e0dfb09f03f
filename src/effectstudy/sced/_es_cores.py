"""Vectorised cores of the single-case effect sizes: many cases at once.

Each ``v_<index>`` function takes the baseline and treatment values of ``k``
cases with equal phase lengths as ``(k, n_A)`` and ``(k, n_B)`` arrays and
returns the estimate, standard error and confidence limits as arrays of length
``k``. The definitions follow SingleCaseES 0.7.4 (Pustejovsky, Chen & Swan);
see :mod:`effectstudy.sced.indices` for the papers of each index.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
from scipy import stats

from effectstudy.errors import DataError
from effectstudy.sced._numeric import NAN, safe_div, zcrit
from effectstudy.sced._rootfind import zeroin
from effectstudy.sced._tau import kendall_pkg, kendall_trend_p

_SCALES = ("count", "rate", "percentage", "proportion", "other")


def signed(a: np.ndarray, b: np.ndarray, improvement: str) -> tuple[np.ndarray, np.ndarray]:
    return (-a, -b) if improvement == "decrease" else (a, b)


def v_nap(
    A: np.ndarray, B: np.ndarray, se: str, confidence: float | None
) -> dict[str, np.ndarray]:
    """NAP (Parker & Vannest 2009), SE (Sen 1967/Mee 1990, Hanley & McNeil 1982, null), Newcombe CI."""
    k, m = A.shape
    n = B.shape[1]
    Q = (B[:, None, :] > A[:, :, None]) + 0.5 * (B[:, None, :] == A[:, :, None])
    est = Q.reshape(k, -1).mean(axis=1)
    Qc = Q - est[:, None, None]
    # Centred sums of squares; NAP truncated to [0.5/(mn), 1 - 0.5/(mn)] in the
    # leading term so that the SE stays positive at NAP = 0 or 1 (SingleCaseES 0.7).
    q1 = np.sum(Qc.sum(axis=2) ** 2, axis=1) / (m * n**2)
    q2 = np.sum(Qc.sum(axis=1) ** 2, axis=1) / (m**2 * n)
    trunc = 0.5 / (m * n)
    nt = np.minimum(np.maximum(est, trunc), 1 - trunc)
    if se == "unbiased":
        x = np.sum(Qc.reshape(k, -1) ** 2, axis=1) / (m * n)
        if min(m, n) > 1:  # undefined with a one-point phase: NaN
            v = (nt * (1 - nt) + n * q1 + m * q2 - 2 * x) / ((m - 1) * (n - 1))
        else:
            v = np.full(k, NAN)
    elif se == "hanley":
        v = (nt * (1 - nt) + (n - 1) * q1 + (m - 1) * q2) / (m * n)
    elif se == "null":
        v = np.full(k, (m + n + 1) / (12 * m * n))
    elif se == "none":
        v = np.full(k, NAN)
    else:
        raise DataError(f"se must be 'unbiased', 'hanley', 'null' or 'none', not {se!r}")
    with np.errstate(invalid="ignore"):
        sev = np.sqrt(v)
    lo = np.full(k, NAN)
    hi = np.full(k, NAN)
    if confidence is not None:
        h = (m + n) / 2 - 1
        z2 = zcrit(confidence) ** 2
        mn = m * n

        def f_for(e: np.ndarray):
            def f(x: np.ndarray) -> np.ndarray:
                return mn * (e - x) ** 2 * (2 - x) * (1 + x) - z2 * x * (1 - x) * (
                    2 + h + (1 + 2 * h) * x * (1 - x)
                )

            return f

        pos = est > 0
        if pos.any():
            lo[pos] = zeroin(f_for(est[pos]), np.zeros(int(pos.sum())), est[pos])
        lo[~pos] = 0.0
        below = est < 1
        if below.any():
            hi[below] = zeroin(f_for(est[below]), est[below], np.ones(int(below.sum())))
        hi[~below] = 1.0
    return {"estimate": est, "se": sev, "ci_lower": lo, "ci_upper": hi}


def v_tau(
    A: np.ndarray, B: np.ndarray, se: str, confidence: float | None
) -> dict[str, np.ndarray]:
    r = v_nap(A, B, se, confidence)
    return {
        "estimate": 2 * r["estimate"] - 1,
        "se": 2 * r["se"],
        "ci_lower": 2 * r["ci_lower"] - 1,
        "ci_upper": 2 * r["ci_upper"] - 1,
    }


def v_pand(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """PAND, Pustejovsky's (2019) formulation (max over cut points)."""
    k, m = A.shape
    n = B.shape[1]
    X = np.concatenate([np.full((k, 1), -np.inf), np.sort(A, axis=1)], axis=1)
    Y = np.concatenate([np.sort(B, axis=1), np.full((k, 1), np.inf)], axis=1)
    ok = X[:, :, None] < Y[:, None, :]
    w = np.arange(1, m + 2)[:, None] + n - np.arange(1, n + 2)[None, :]
    return np.max(w[None, :, :] * ok, axis=(1, 2)) / (m + n)


def v_ird(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    m, n = A.shape[1], B.shape[1]
    return ((m + n) ** 2 * v_pand(A, B) - m**2 - n**2) / (2 * m * n)


def v_pnd(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.mean(B > A.max(axis=1, keepdims=True), axis=1)


def v_pem(A: np.ndarray, B: np.ndarray, ties: float = 0.5) -> np.ndarray:
    med = np.median(A, axis=1, keepdims=True)
    return np.mean((B > med) + ties * (B == med), axis=1)


def v_tau_u_sces(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """SingleCaseES Tau_U = (S_AB - S_A) / (mn) (= scan method 'parker', 'A vs. B - Trend A')."""
    m, n = A.shape[1], B.shape[1]
    s_ab = np.sign(B[:, None, :] - A[:, :, None]).reshape(A.shape[0], -1).sum(axis=1)
    i, j = np.triu_indices(m, 1)
    s_a = np.sign(A[:, j] - A[:, i]).sum(axis=1)
    return (s_ab - s_a) / (m * n)


def _v_theil_sen(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Theil-Sen slope and intercept of each baseline on sessions 1..m."""
    k, m = A.shape
    if m < 2:
        return np.full(k, NAN), np.full(k, NAN)
    sess = np.arange(1, m + 1, dtype=float)
    i, j = np.triu_indices(m, 1)
    slope = np.median((A[:, j] - A[:, i]) / (sess[j] - sess[i]), axis=1)
    intercept = np.median(A - sess[None, :] * slope[:, None], axis=1)
    return slope, intercept


def v_tau_bc(
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    se: str,
    confidence: float | None,
    kendall: bool,
    pretest_trend: float | bool,
) -> dict[str, np.ndarray]:
    """Tau-BC (Tarlow 2017) on raw (unsigned) A, B; see :func:`tau_bc`."""
    k, m = A.shape
    n = B.shape[1]
    sess_a = np.arange(1, m + 1, dtype=float)
    sess_b = np.arange(m + 1, m + n + 1, dtype=float)
    out: dict[str, np.ndarray] = {}
    if pretest_trend is not False:
        pval = kendall_trend_p(A)
        adjust = ~(pval > float(pretest_trend))
        out["pval_slope_A"] = pval
        out["corrected"] = adjust
    else:
        adjust = np.ones(k, dtype=bool)
    slope, intercept = _v_theil_sen(A)
    Aa = np.where(adjust[:, None], A - intercept[:, None] - slope[:, None] * sess_a[None, :], A)
    Ba = np.where(adjust[:, None], B - intercept[:, None] - slope[:, None] * sess_b[None, :], B)
    if improvement == "decrease":
        Aa, Ba = -Aa, -Ba
    if kendall:
        est = np.empty(k)
        dummy = np.r_[np.zeros(m), np.ones(n)]
        for i in range(k):
            allv = np.concatenate([Aa[i], Ba[i]])
            if np.isnan(allv).any():
                est[i] = NAN
            elif np.all(allv == allv[0]):
                est[i] = 0.0
            else:
                est[i] = kendall_pkg(allv, dummy)["tau"]
        with np.errstate(invalid="ignore"):
            sev = np.sqrt((2 / (m + n)) * (1 - est**2))
        z = zcrit(confidence)
        lo, hi = est - z * sev, est + z * sev
        out.update(estimate=est, se=sev, ci_lower=lo, ci_upper=hi)
    else:
        bad = np.isnan(Aa).any(axis=1) | np.isnan(Ba).any(axis=1)
        res = {key: np.full(k, NAN) for key in ("estimate", "se", "ci_lower", "ci_upper")}
        if (~bad).any():
            r = v_tau(Aa[~bad], Ba[~bad], se, confidence)
            for key in res:
                res[key][~bad] = r[key]
        out.update(res)
    out["slope"] = slope
    out["intercept"] = intercept
    return out


def _wald(est: np.ndarray, sev: np.ndarray, confidence: float | None) -> dict[str, np.ndarray]:
    z = zcrit(confidence)
    return {"estimate": est, "se": sev, "ci_lower": est - z * sev, "ci_upper": est + z * sev}


def _rowvar(X: np.ndarray) -> np.ndarray:
    if X.shape[1] < 2:
        return np.full(X.shape[0], NAN)
    return np.var(X, axis=1, ddof=1)


def v_smd(
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    std_dev: str,
    bias_correct: bool,
    confidence: float | None,
) -> dict[str, np.ndarray]:
    """Within-case SMD (Pustejovsky 2015; Hedges 1981 correction)."""
    if std_dev not in ("baseline", "pool"):
        raise DataError(f"std_dev must be 'baseline' or 'pool', not {std_dev!r}")
    na, nb = A.shape[1], B.shape[1]
    va, vb = _rowvar(A), _rowvar(B)
    with np.errstate(divide="ignore", invalid="ignore"):
        if std_dev == "baseline":
            df = na - 1
            s_sq = va
            sv1 = 1 / na + vb / (nb * va)
        else:
            df = na + nb - 2
            s_sq = (np.nan_to_num((na - 1) * va) + np.nan_to_num((nb - 1) * vb)) / df
            if nb < 2 and na < 2:
                s_sq = np.full_like(va, NAN)
            sv1 = np.full_like(va, 1 / na + 1 / nb)
        j = (1 - safe_div(3, 4 * df - 1)) if bias_correct else 1.0
        d = j * (B.mean(axis=1) - A.mean(axis=1)) / np.sqrt(s_sq)
        if improvement == "decrease":
            d = -d
        sev = j * np.sqrt(sv1 + d**2 / (2 * df) if df != 0 else sv1 + d**2 * np.inf)
        out = _wald(d, sev, confidence)
    out["baseline_SD" if std_dev == "baseline" else "pooled_SD"] = np.sqrt(s_sq)
    out["_no_variation"] = np.isnan(s_sq) | (s_sq == 0)
    return out


def v_lrr(
    which: str,
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    scale: str | None,
    observation_length: Any,
    intervals: Any,
    d_const: Any,
    bias_correct: bool,
    pct_change: bool,
    confidence: float | None,
) -> dict[str, np.ndarray]:
    """LRRd / LRRi (Pustejovsky 2015, 2018)."""
    sc = _scale(scale)
    n = np.array([A.shape[1], B.shape[1]], dtype=float)
    mean = np.column_stack([A.mean(axis=1), B.mean(axis=1)])
    var = np.column_stack([_rowvar(A), _rowvar(B)])
    flip = (improvement == "increase") if which == "LRRd" else (improvement == "decrease")
    if flip and sc == "percentage":
        mean = 100 - mean
    if flip and sc == "proportion":
        mean = 1 - mean
    dconst = _num(d_const)
    if dconst is None:
        dconst = _trunc_constant(sc, _num(observation_length), _num(intervals))
    with np.errstate(divide="ignore", invalid="ignore"):
        if dconst > 0:
            mean = np.maximum(1 / (2 * dconst * n), mean)
            var = np.where(np.isnan(var), var, np.maximum(1 / (dconst**2 * n**3), var))
        if bias_correct:
            bc = np.log(mean) + var / (2 * n * mean**2)
        else:
            bc = np.log(mean)
        lrr = bc[:, 1] - bc[:, 0]
        if flip and sc not in ("percentage", "proportion"):
            lrr = -lrr
        sev = np.sqrt(np.sum(var / (n * mean**2), axis=1))
        out = _wald(lrr, sev, confidence)
        if pct_change:
            out["pct_change"] = 100 * (np.exp(lrr) - 1)
            out["pct_change_lower"] = 100 * (np.exp(out["ci_lower"]) - 1)
            out["pct_change_upper"] = 100 * (np.exp(out["ci_upper"]) - 1)
    out["D_const"] = np.full(A.shape[0], dconst)
    return out


def v_lrm(
    A: np.ndarray, B: np.ndarray, improvement: str, delta_method: bool, confidence: float | None
) -> dict[str, np.ndarray]:
    """Log ratio of medians (Bonett & Price 2020)."""

    def stats_(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = X.shape[1]
        o1, o2, z0 = _lrm_order(n)
        Y = np.sort(X, axis=1)
        lo, up = Y[:, o1 - 1], Y[:, o2 - 1]
        med = np.median(X, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            if delta_method:
                v = ((up - lo) / (2 * z0)) ** 2 / med**2
            else:
                v = ((np.log(up) - np.log(lo)) / (2 * z0)) ** 2
            return np.log(med), v

    with np.errstate(divide="ignore", invalid="ignore"):
        la, va = stats_(A)
        lb, vb = stats_(B)
        est = lb - la
        if improvement == "decrease":
            est = -est
        out = _wald(est, np.sqrt(va + vb), confidence)
    return out


def v_lor(
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    scale: str | None,
    intervals: Any,
    d_const: Any,
    bias_correct: bool,
    confidence: float | None,
) -> dict[str, np.ndarray]:
    """Log odds ratio (Pustejovsky 2015)."""
    k = A.shape[0]
    sc = _scale(scale)
    if sc not in ("percentage", "proportion"):
        nan = np.full(k, NAN)
        return {
            "estimate": nan,
            "se": nan,
            "ci_lower": nan,
            "ci_upper": nan,
            "_not_defined": np.ones(k, dtype=bool),
        }
    top = 1.0 if sc == "proportion" else 100.0
    if np.any((A < 0) | (A > top)) or np.any((B < 0) | (B > top)):
        raise DataError(f"{sc}s must lie between 0 and {top:g}")
    dconst = _num(d_const)
    if dconst is None:
        dconst = _trunc_constant(sc, None, _num(intervals))
    if sc == "percentage":
        A, B = A / 100, B / 100
        dconst = 100 * dconst
    n = np.array([A.shape[1], B.shape[1]], dtype=float)
    mean = np.column_stack([A.mean(axis=1), B.mean(axis=1)])
    var = np.column_stack([_rowvar(A), _rowvar(B)])
    with np.errstate(divide="ignore", invalid="ignore"):
        lower = 1 / (2 * dconst * n)
        if dconst > 0:
            mean = np.minimum(1 - lower, np.maximum(lower, mean))
            var = np.where(np.isnan(var), var, np.maximum(1 / (dconst**2 * n**3), var))
        logit = np.log(mean) - np.log(1 - mean)
        if bias_correct:
            logit = logit - (2 * mean - 1) * var / (2 * n * mean**2 * (1 - mean) ** 2)
        est = logit[:, 1] - logit[:, 0]
        if improvement == "decrease":
            est = -est
        sev = np.sqrt(np.sum(var / (n * mean**2 * (1 - mean) ** 2), axis=1))
        out = _wald(est, sev, confidence)
    out["D_const"] = np.full(k, dconst)
    return out


def v_pogo(
    A: np.ndarray, B: np.ndarray, goal: Any, confidence: float | None
) -> dict[str, np.ndarray]:
    """Percent of goal obtained (Ferron et al. 2020), SE after Dunlap & Silver (1986)."""
    g = _num(goal)
    if g is None:
        raise DataError("PoGO needs the goal level of the behaviour (option goal=...)")
    na, nb = A.shape[1], B.shape[1]
    ma, mb = A.mean(axis=1), B.mean(axis=1)
    va, vb = _rowvar(A), _rowvar(B)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = 100 * (mb - ma) / (g - ma)
        var = (va / na + vb / nb + (est / 100) ** 2 * va / na) / (g - ma) ** 2
        out = _wald(est, 100 * np.sqrt(var), confidence)
    out["goal"] = np.full(A.shape[0], g)
    return out


def row2d(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a[None, :], b[None, :]


def norm_se(se: str) -> str:
    return str(se).lower()


def check_pretest(pretest_trend: Any) -> None:
    if pretest_trend is True or (pretest_trend is not False and not (0 < float(pretest_trend) < 1)):
        raise DataError("pretest_trend must be False or a significance level between 0 and 1")


def _scale(scale: str | None) -> str | None:
    if scale is None:
        return None
    key = str(scale).lower()
    matches = [s for s in _SCALES if s.startswith(key)] if key else []
    if len(matches) != 1:
        raise DataError(f"scale must be one of {list(_SCALES)}, not {scale!r}")
    return matches[0]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError) as exc:
        raise DataError(f"expected a number, got {x!r}") from exc
    return None if math.isnan(v) else v


def _trunc_constant(
    scale: str | None, observation_length: float | None, intervals: float | None
) -> float:
    """Truncation constant D of Pustejovsky (2018), as SingleCaseES ``trunc_constant``."""
    if scale is None:
        return math.inf
    if scale == "count":
        return 1.0
    if scale == "rate":
        return observation_length if observation_length is not None else math.inf
    if scale == "proportion":
        return intervals if intervals is not None else math.inf
    if scale == "percentage":
        return intervals / 100 if intervals is not None else math.inf
    return math.inf


@functools.lru_cache(maxsize=256)
def _lrm_order(n: int) -> tuple[int, int, float]:
    """Order statistics c, n - c + 1 and z0 of the Bonett-Price median variance."""
    o1 = max(int(np.round(n / 2 - math.sqrt(n))), 1)
    p = float(stats.binom.cdf(o1 - 1, n, 0.5))
    return o1, n - o1 + 1, float(stats.norm.ppf(1 - p))
