"""Per-case effect sizes for single-case experimental designs (SCED).

Non-overlap indices (NAP, Tau, Tau-BC, Tau-U, IRD, PND, PEM, PAND) and
parametric indices (within-case SMD, LRRd/LRRi, LRM, LOR, PoGO) for the
comparison of a baseline phase A with a treatment phase B of one case.

The definitions, standard errors and confidence intervals follow the R package
SingleCaseES 0.7.4 (Pustejovsky, Chen & Swan) -- the package that the reference
values in ``shared/reference/sced`` were computed with -- and, for the Tau-U
variants, Tarlow's baseline-corrected tau and the ``overlap()`` table, the R
package scan 0.67.1 (Wilbert & Lueke). The code here is an independent
implementation from the papers and the packages' documentation.

Three levels of API:

* one function per index on two arrays (``nap(baseline, treatment, ...)``,
  ``tau``, ``tau_bc``, ``tau_u``, ``ird``, ``pnd``, ``pem``, ``pand``, ``smd``,
  ``lrrd``, ``lrri``, ``lrm``, ``lor``, ``pogo``), each returning an
  :class:`EffectSize` (frozen dataclass; ``to_frame()``, notebook HTML);
* :func:`effect_sizes` -- a tidy table (one row per case and measure) from a
  long DataFrame;
* :func:`batch_effect_sizes` -- as SingleCaseES ``batch_calc_ES``: effect sizes
  per case and phase pair, optionally averaged over phase pairs
  (``aggregate=``, ``weighting='equal'`` or ``'1/V'``);

plus :func:`overlap` (scan's ``overlap()`` table), :func:`tau_u_table` and
:func:`corrected_tau` (scan's ``tau_u()`` and ``corrected_tau()``).

``improvement='decrease'`` means that lower values in phase B are therapeutic
improvements; the indices are then oriented exactly as in SingleCaseES: values
above the null value indicate improvement for all of them except LRRd, whose
negative values are improvements by definition (Pustejovsky 2018). Option
names are SingleCaseES's argument names in snake case (``SE`` -> ``se``,
``Kendall`` -> ``kendall``; keys are case-insensitive).

Reference check: ``tests/sced/test_effect_sizes_reference.py`` reproduces
every row of ``expected_singlecasees.csv``, ``expected_singlecasees_batch.csv``
and ``expected_scan_overlap.csv`` to 1e-6 relative (R's ``uniroot``
tolerance, the *Kendall* package's single precision and ``lm()``'s QR are
emulated where the reference depends on them).
"""

from __future__ import annotations

import functools
import math
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError
from effectstudy.sced import _tau

__all__ = [
    "EffectSize",
    "TauUResult",
    "MEASURES",
    "effect_sizes",
    "batch_effect_sizes",
    "overlap",
    "nap",
    "tau",
    "tau_bc",
    "tau_u",
    "tau_u_table",
    "corrected_tau",
    "ird",
    "pnd",
    "pem",
    "pand",
    "smd",
    "lrrd",
    "lrri",
    "lrm",
    "lor",
    "pogo",
]

#: Measure names produced by :func:`effect_sizes`, in output order.
MEASURES: tuple[str, ...] = (
    "NAP",
    "IRD",
    "PND",
    "PEM",
    "PAND",
    "Tau",
    "Tau_BC",
    "Tau_U",
    "SMD",
    "LRRd",
    "LRRi",
    "Pct_Change_d",
    "Pct_Change_i",
    "LRM",
    "LOR",
    "PoGO",
)

_NAN = math.nan
_SCALES = ("count", "rate", "percentage", "proportion", "other")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class EffectSize(ResultMixin):
    """One effect size of one A-B comparison.

    Attributes
    ----------
    measure : str
        Name of the index (``"NAP"``, ``"SMD"``, ...).
    estimate, se, ci_lower, ci_upper : float
        Point estimate, standard error and confidence limits; NaN where the
        method defines none.
    p_value : float
        p-value where the method reports one (scan Tau-U rows), else NaN.
    extra : Mapping[str, Any]
        Further outputs of the method (e.g. ``S``, ``pairs``, ``slope``,
        ``baseline_SD``); also readable as attributes (``res.slope``).
    warnings : tuple of str
        Notes about degenerate input (e.g. no baseline variation).
    """

    measure: str
    estimate: float
    se: float = _NAN
    ci_lower: float = _NAN
    ci_upper: float = _NAN
    p_value: float = _NAN
    extra: Mapping[str, Any] = field(default_factory=lambda: types.MappingProxyType({}))
    warnings: tuple[str, ...] = ()

    _title = "Single-case effect size"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("extra", "measure"):
            raise AttributeError(name)
        extra = self.__dict__.get("extra", {})
        if name in extra:
            return extra[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def to_frame(self) -> pd.DataFrame:
        """One-row DataFrame: measure, estimate, se, ci_lower, ci_upper (+ p, extras)."""
        row: dict[str, Any] = {
            "measure": self.measure,
            "estimate": self.estimate,
            "se": self.se,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
        }
        if not math.isnan(self.p_value):
            row["p_value"] = self.p_value
        for key, value in self.extra.items():
            if np.isscalar(value):
                row[key] = value
        return pd.DataFrame([row])


@dataclass(frozen=True)
class TauUResult(EffectSize):
    """Tau-U with the full six-row table of Parker et al. (2011).

    ``estimate`` etc. describe the row selected by ``row`` (by default
    ``"A vs. B - Trend A"``, the usual Tau-U); :attr:`table` holds all rows.
    """

    columns: Mapping[str, tuple[float, ...]] = field(
        default_factory=lambda: types.MappingProxyType({})
    )

    _title = "Tau-U"

    @property
    def table(self) -> pd.DataFrame:
        """All six Tau-U rows (scan's table; columns pairs ... p, n, ci_lower, ci_upper)."""
        frame = pd.DataFrame({"model": list(_tau.TAU_U_ROWS)})
        for key, values in self.columns.items():
            frame[key] = list(values)
        return frame

    def to_frame(self) -> pd.DataFrame:
        """The full Tau-U table (one row per comparison)."""
        if not self.columns:
            return super().to_frame()
        return self.table


def _mk(
    measure: str,
    est: float,
    se: float = _NAN,
    lo: float = _NAN,
    hi: float = _NAN,
    p: float = _NAN,
    warnings: Sequence[str] = (),
    **extra: Any,
) -> EffectSize:
    return EffectSize(
        measure=measure,
        estimate=float(est),
        se=float(se),
        ci_lower=float(lo),
        ci_upper=float(hi),
        p_value=float(p),
        extra=types.MappingProxyType(dict(extra)),
        warnings=tuple(warnings),
    )


# --------------------------------------------------------------------------- helpers


def _as_array(values: Any, name: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=float).ravel()
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} must be numeric") from exc
    return arr[~np.isnan(arr)]


def _prep(
    baseline: Any, treatment: Any, improvement: str | None = None, *, min_a: int = 1, min_b: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Arrays without NaN; checks lengths and ``improvement``."""
    a = _as_array(baseline, "baseline")
    b = _as_array(treatment, "treatment")
    if improvement is not None and improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    if a.size < min_a:
        raise DataError(
            f"the baseline phase needs at least {min_a} non-missing value(s), has {a.size}"
        )
    if b.size < min_b:
        raise DataError(
            f"the treatment phase needs at least {min_b} non-missing value(s), has {b.size}"
        )
    return a, b


def _signed(a: np.ndarray, b: np.ndarray, improvement: str) -> tuple[np.ndarray, np.ndarray]:
    return (-a, -b) if improvement == "decrease" else (a, b)


@functools.lru_cache(maxsize=64)
def _zcrit(confidence: float | None) -> float:
    if confidence is None:
        return _NAN
    if not 0 < confidence < 1:
        raise DataError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")
    return float(stats.norm.ppf(1 - (1 - confidence) / 2))


def _var(x: np.ndarray) -> float:
    return float(np.var(x, ddof=1)) if x.size > 1 else _NAN


def _sqrt(x: float) -> float:
    return math.sqrt(x) if x >= 0 else _NAN


def _div(a: float, b: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return float(np.float64(a) / np.float64(b))


def _log(x: float) -> float:
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.log(np.float64(x)))


_EPS = float(np.finfo(float).eps)
_UNIROOT_TOL = _EPS**0.25


def _zeroin(
    f, ax: np.ndarray, bx: np.ndarray, tol: float = _UNIROOT_TOL, maxiter: int = 1000
) -> np.ndarray:
    """Brent's root finder with the same steps as R's ``uniroot()``, for many roots at once.

    R's ``uniroot`` (C ``R_zeroin2``; Brent 1973) stops at an absolute
    tolerance of ``.Machine$double.eps^0.25`` (about 1.2e-4); SingleCaseES's NAP
    interval uses that default, so the same iteration is used here to return
    the same limits (not the exact roots). ``f`` maps an array of x values to
    an array of f(x) (element i belongs to root i); every element follows R's
    iteration exactly and stops when R's would.
    """
    a = np.asarray(ax, dtype=float).copy()
    b = np.asarray(bx, dtype=float).copy()
    fa, fb = f(a), f(b)
    c, fc = a.copy(), fa.copy()
    result = np.where(fa == 0.0, a, np.where(fb == 0.0, b, np.nan))
    done = (fa == 0.0) | (fb == 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(maxiter + 1):
            active = ~done
            if not active.any():
                break
            prev_step = b - a
            sw = active & (np.abs(fc) < np.abs(fb))
            a = np.where(sw, b, a)
            fa = np.where(sw, fb, fa)
            b = np.where(sw, c, b)
            fb = np.where(sw, fc, fb)
            c = np.where(sw, a, c)
            fc = np.where(sw, fa, fc)
            tol_act = 2 * _EPS * np.abs(b) + tol / 2
            new_step = (c - b) / 2
            conv = active & ((np.abs(new_step) <= tol_act) | (fb == 0.0))
            result = np.where(conv, b, result)
            done = done | conv
            active = active & ~conv
            if not active.any():
                break
            cb = c - b
            t1_lin = fb / fa
            q_ = fa / fc
            t1 = fb / fc
            t2 = fb / fa
            lin = a == c
            p = np.where(lin, cb * t1_lin, t2 * (cb * q_ * (q_ - t1) - (b - a) * (t1 - 1.0)))
            q = np.where(lin, 1.0 - t1_lin, (q_ - 1.0) * (t1 - 1.0) * (t2 - 1.0))
            pos = p > 0
            q = np.where(pos, -q, q)
            p = np.where(pos, p, -p)
            interp = active & (np.abs(prev_step) >= tol_act) & (np.abs(fa) > np.abs(fb))
            accept = (
                interp
                & (p < (0.75 * cb * q - np.abs(tol_act * q) / 2))
                & (p < np.abs(prev_step * q / 2))
            )
            new_step = np.where(accept, p / q, new_step)
            small = np.abs(new_step) < tol_act
            new_step = np.where(small, np.where(new_step > 0, tol_act, -tol_act), new_step)
            a = np.where(active, b, a)
            fa = np.where(active, fb, fa)
            b = np.where(active, b + new_step, b)
            fb = np.where(active, f(b), fb)
            adj = active & (((fb > 0) & (fc > 0)) | ((fb < 0) & (fc < 0)))
            c = np.where(adj, a, c)
            fc = np.where(adj, fa, fc)
    return np.where(done, result, b)


# --------------------------------------------------------------------------- vectorised cores
#
# Every index is computed by a "core" on 2-D arrays: A is (k, m) baseline and
# B is (k, n) treatment values of k cases of equal phase lengths, already
# oriented so that larger is better where the index needs it. The one-case
# public functions call the cores with k = 1; effect_sizes() stacks the cases
# of equal length so that 1,000 cases cost little more than one.


def _v_nap(
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
            v = np.full(k, _NAN)
    elif se == "hanley":
        v = (nt * (1 - nt) + (n - 1) * q1 + (m - 1) * q2) / (m * n)
    elif se == "null":
        v = np.full(k, (m + n + 1) / (12 * m * n))
    elif se == "none":
        v = np.full(k, _NAN)
    else:
        raise DataError(f"se must be 'unbiased', 'hanley', 'null' or 'none', not {se!r}")
    with np.errstate(invalid="ignore"):
        sev = np.sqrt(v)
    lo = np.full(k, _NAN)
    hi = np.full(k, _NAN)
    if confidence is not None:
        h = (m + n) / 2 - 1
        z2 = _zcrit(confidence) ** 2
        mn = m * n

        def f_for(e: np.ndarray):
            def f(x: np.ndarray) -> np.ndarray:
                return mn * (e - x) ** 2 * (2 - x) * (1 + x) - z2 * x * (1 - x) * (
                    2 + h + (1 + 2 * h) * x * (1 - x)
                )

            return f

        pos = est > 0
        if pos.any():
            lo[pos] = _zeroin(f_for(est[pos]), np.zeros(int(pos.sum())), est[pos])
        lo[~pos] = 0.0
        below = est < 1
        if below.any():
            hi[below] = _zeroin(f_for(est[below]), est[below], np.ones(int(below.sum())))
        hi[~below] = 1.0
    return {"estimate": est, "se": sev, "ci_lower": lo, "ci_upper": hi}


def _v_tau(
    A: np.ndarray, B: np.ndarray, se: str, confidence: float | None
) -> dict[str, np.ndarray]:
    r = _v_nap(A, B, se, confidence)
    return {
        "estimate": 2 * r["estimate"] - 1,
        "se": 2 * r["se"],
        "ci_lower": 2 * r["ci_lower"] - 1,
        "ci_upper": 2 * r["ci_upper"] - 1,
    }


def _v_pand(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """PAND, Pustejovsky's (2019) formulation (max over cut points)."""
    k, m = A.shape
    n = B.shape[1]
    X = np.concatenate([np.full((k, 1), -np.inf), np.sort(A, axis=1)], axis=1)
    Y = np.concatenate([np.sort(B, axis=1), np.full((k, 1), np.inf)], axis=1)
    ok = X[:, :, None] < Y[:, None, :]
    w = np.arange(1, m + 2)[:, None] + n - np.arange(1, n + 2)[None, :]
    return np.max(w[None, :, :] * ok, axis=(1, 2)) / (m + n)


def _v_ird(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    m, n = A.shape[1], B.shape[1]
    return ((m + n) ** 2 * _v_pand(A, B) - m**2 - n**2) / (2 * m * n)


def _v_pnd(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.mean(B > A.max(axis=1, keepdims=True), axis=1)


def _v_pem(A: np.ndarray, B: np.ndarray, ties: float = 0.5) -> np.ndarray:
    med = np.median(A, axis=1, keepdims=True)
    return np.mean((B > med) + ties * (B == med), axis=1)


def _v_tau_u_sces(A: np.ndarray, B: np.ndarray) -> np.ndarray:
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
        return np.full(k, _NAN), np.full(k, _NAN)
    sess = np.arange(1, m + 1, dtype=float)
    i, j = np.triu_indices(m, 1)
    slope = np.median((A[:, j] - A[:, i]) / (sess[j] - sess[i]), axis=1)
    intercept = np.median(A - sess[None, :] * slope[:, None], axis=1)
    return slope, intercept


def _v_tau_bc(
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
        pval = _tau.kendall_trend_p(A)
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
                est[i] = _NAN
            elif np.all(allv == allv[0]):
                est[i] = 0.0
            else:
                est[i] = _tau.kendall_pkg(allv, dummy)["tau"]
        with np.errstate(invalid="ignore"):
            sev = np.sqrt((2 / (m + n)) * (1 - est**2))
        z = _zcrit(confidence)
        lo, hi = est - z * sev, est + z * sev
        out.update(estimate=est, se=sev, ci_lower=lo, ci_upper=hi)
    else:
        bad = np.isnan(Aa).any(axis=1) | np.isnan(Ba).any(axis=1)
        res = {key: np.full(k, _NAN) for key in ("estimate", "se", "ci_lower", "ci_upper")}
        if (~bad).any():
            r = _v_tau(Aa[~bad], Ba[~bad], se, confidence)
            for key in res:
                res[key][~bad] = r[key]
        out.update(res)
    out["slope"] = slope
    out["intercept"] = intercept
    return out


def _wald(est: np.ndarray, sev: np.ndarray, confidence: float | None) -> dict[str, np.ndarray]:
    z = _zcrit(confidence)
    return {"estimate": est, "se": sev, "ci_lower": est - z * sev, "ci_upper": est + z * sev}


def _rowvar(X: np.ndarray) -> np.ndarray:
    if X.shape[1] < 2:
        return np.full(X.shape[0], _NAN)
    return np.var(X, axis=1, ddof=1)


def _v_smd(
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
                s_sq = np.full_like(va, _NAN)
            sv1 = np.full_like(va, 1 / na + 1 / nb)
        j = (1 - _div(3, 4 * df - 1)) if bias_correct else 1.0
        d = j * (B.mean(axis=1) - A.mean(axis=1)) / np.sqrt(s_sq)
        if improvement == "decrease":
            d = -d
        sev = j * np.sqrt(sv1 + d**2 / (2 * df) if df != 0 else sv1 + d**2 * np.inf)
        out = _wald(d, sev, confidence)
    out["baseline_SD" if std_dev == "baseline" else "pooled_SD"] = np.sqrt(s_sq)
    out["_no_variation"] = np.isnan(s_sq) | (s_sq == 0)
    return out


def _v_lrr(
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


def _v_lrm(
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


def _v_lor(
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
        nan = np.full(k, _NAN)
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


def _v_pogo(
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


def _one(measure: str, r: Mapping[str, np.ndarray], warnings: Sequence[str] = ()) -> EffectSize:
    """EffectSize from row 0 of a core's output."""
    extra = {
        key: (v[0].item() if isinstance(v[0], np.generic) else v[0])
        for key, v in r.items()
        if key not in ("estimate", "se", "ci_lower", "ci_upper") and not key.startswith("_")
    }
    return _mk(
        measure,
        r["estimate"][0],
        r["se"][0] if "se" in r else _NAN,
        r["ci_lower"][0] if "ci_lower" in r else _NAN,
        r["ci_upper"][0] if "ci_upper" in r else _NAN,
        warnings=warnings,
        **extra,
    )


def _row2d(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return a[None, :], b[None, :]


# --------------------------------------------------------------------------- non-overlap


def _norm_se(se: str) -> str:
    return str(se).lower()


def _check_pretest(pretest_trend: Any) -> None:
    if pretest_trend is True or (pretest_trend is not False and not (0 < float(pretest_trend) < 1)):
        raise DataError("pretest_trend must be False or a significance level between 0 and 1")


def nap(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    se: str = "unbiased",
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Non-overlap of all pairs (Parker & Vannest, 2009).

    NAP is the proportion of all (A, B) pairs in which the B observation
    improves on the A observation, ties counting one half:
    :math:`NAP = \frac{1}{mn}\sum_i\sum_j [I(y^B_j > y^A_i) + 0.5 I(y^B_j = y^A_i)]`.

    Parameters
    ----------
    baseline, treatment : array-like
        Outcomes of phase A and phase B (NaN dropped).
    improvement : {"increase", "decrease"}
        Direction of therapeutic improvement.
    se : {"unbiased", "hanley", "null", "none"}
        Standard error: the exactly unbiased variance estimator (Sen 1967;
        Mee 1990), Hanley & McNeil (1982), or the variance under the null
        hypothesis, :math:`(m + n + 1) / (12mn)`.
    confidence : float or None
        Level of the confidence interval: the symmetrised score-inversion
        interval of Newcombe (2006, method 5); limits are found with R's
        ``uniroot`` tolerance, as in SingleCaseES.

    Returns
    -------
    EffectSize
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _one("NAP", _v_nap(*_row2d(a, b), _norm_se(se), confidence))


def tau(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    se: str = "unbiased",
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Tau (non-overlap) of Parker, Vannest, Davis & Sauber (2011).

    :math:`Tau = 2\,NAP - 1`, range [-1, 1]; SE and interval are the NAP ones
    transformed the same way (see :func:`nap` for ``se`` and ``confidence``).
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _one("Tau", _v_tau(*_row2d(a, b), _norm_se(se), confidence))


def tau_bc(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    se: str = "unbiased",
    confidence: float | None = 0.95,
    kendall: bool = False,
    pretest_trend: float | bool = False,
) -> EffectSize:
    r"""Baseline-corrected Tau (Tarlow, 2017), as SingleCaseES ``Tau_BC``.

    1. If ``pretest_trend`` is a level in (0, 1), the baseline trend is tested
       with Kendall's rank correlation between the baseline values and session
       1..m (R package *Kendall*: normal approximation with continuity
       correction; p = 1 when m < 4 or the baseline is constant). If p exceeds
       the level, no correction is made. With ``pretest_trend=False`` the
       correction is always made.
    2. Correction: a Theil-Sen line (median of pairwise slopes; intercept =
       median of :math:`y_i - \hat\beta t_i`) is fitted to the baseline, with
       sessions numbered 1..m (A) and m+1..m+n (B), and subtracted from all
       observations.
    3. Tau of the residuals: with ``kendall=False`` the non-overlap
       :func:`tau` (SE and interval as there); with ``kendall=True`` Kendall's
       tau-b between the values and a 0/1 phase dummy, as in Tarlow (2017), with
       :math:`SE = \sqrt{2(1 - \tau^2)/(m + n)}` and a Wald interval.

    ``extra`` holds ``slope``, ``intercept``, and (with a pre-test)
    ``pval_slope_A`` and ``corrected``.
    """
    a, b = _prep(baseline, treatment, improvement)
    _check_pretest(pretest_trend)
    warnings = []
    if a.size < 2:
        warnings.append("Tau-BC needs at least two baseline observations for the Theil-Sen slope.")
    r = _v_tau_bc(
        *_row2d(a, b), improvement, _norm_se(se), confidence, bool(kendall), pretest_trend
    )
    return _one("Tau_BC", r, warnings)


_TAU_U_COLS = (
    "pairs",
    "pos",
    "neg",
    "ties",
    "S",
    "D",
    "Tau",
    "ci_lower",
    "ci_upper",
    "SD_S",
    "VAR_S",
    "SE_Tau",
    "Z",
    "p",
    "n",
)


def _tau_u_columns(
    a: np.ndarray,
    b: np.ndarray,
    improvement: str,
    method: str,
    tau_method: str,
    continuity_correction: bool,
    confidence: float | None,
) -> dict[str, np.ndarray]:
    if method not in ("complete", "parker", "tarlow"):
        raise DataError(f"method must be 'complete', 'parker' or 'tarlow', not {method!r}")
    if tau_method not in ("a", "b"):
        raise DataError(f"tau_method must be 'a' or 'b', not {tau_method!r}")
    a, b = _signed(a, b, improvement)
    with np.errstate(all="ignore"):
        return _tau.tau_u_table(a, b, method, tau_method, bool(continuity_correction), confidence)


def tau_u_table(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    method: str = "complete",
    tau_method: str = "b",
    continuity_correction: bool = False,
    confidence: float | None = 0.95,
) -> pd.DataFrame:
    """The six-row Tau-U table of scan's ``tau_u()`` (see :func:`tau_u` for the variants)."""
    return tau_u(
        baseline, treatment, improvement, method, tau_method, continuity_correction, confidence
    ).table


def tau_u(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    method: str = "parker",
    tau_method: str = "b",
    continuity_correction: bool = False,
    confidence: float | None = 0.95,
    row: str = "A vs. B - Trend A",
) -> TauUResult:
    r"""Tau-U: non-overlap corrected for baseline trend (Parker, Vannest, Davis & Sauber, 2011).

    Tau-U ("A vs. B - Trend A") is :math:`(S_{AB} - S_{A}) / D` where
    :math:`S_{AB} = \#\{y^B_j > y^A_i\} - \#\{y^B_j < y^A_i\}` over all A-B
    pairs and :math:`S_A` is Kendall's S of the baseline against time.

    Variants (``method``), following scan's ``tau_u()`` (reference rows
    ``scan_tau_u[...]`` with ``method=`` / ``tau_method=``):

    ``"parker"`` (default)
        Parker et al. (2011): D = m n for "A vs. B - Trend A" and D = N(N-1)/2
        for "A vs. B + Trend B - Trend A", so Tau-U can exceed 1. Its estimate
        equals SingleCaseES ``Tau_U()``. Z (and SE = Tau / Z) from Kendall's
        tau-b test of the corresponding ranking; ``tau_method`` is ignored.
    ``"complete"`` with ``tau_method="b"`` (scan's default)
        D = Kendall tau-b denominator of the combined ranking (pairs incl. trend
        pairs, tie-corrected); for "A vs. B" D = m n - ties / 2; Z from tau-b.
    ``"complete"`` with ``tau_method="a"``
        D = number of pairs incl. trend pairs (Kendall tau-a), Z from tau-a.
    ``"tarlow"``
        As Tarlow's online Tau-U calculator: D = pairs (tau-a), SD(S) and Z
        from Kendall tau-b with a continuity correction (|S| - 1).

    For every row the confidence interval is the Fisher-z interval
    :math:`\tanh(\operatorname{atanh}(\tau) \pm z_{1-\alpha/2} / \sqrt{N - 3})`
    (scan ``ci_method="z"``); it is NaN where tau lies outside (-1, 1) or
    N <= 3.

    Parameters
    ----------
    baseline, treatment : array-like
        Phase A and phase B outcomes in session order (NaN dropped).
    improvement : {"increase", "decrease"}
        For "decrease" the values are negated first (as the reference does
        with scan, which has no direction argument).
    method, tau_method, continuity_correction :
        See above (``continuity_correction`` only for ``method="complete"``).
    confidence : float or None
        Level of the Fisher-z intervals.
    row : str
        Which row of the table to report as ``estimate`` (one of
        ``"A vs. B"``, ``"Trend A"``, ``"Trend B"``, ``"A vs. B - Trend A"``,
        ``"A vs. B + Trend B"``, ``"A vs. B + Trend B - Trend A"``).

    Returns
    -------
    TauUResult
        ``estimate``, ``se`` (Tau / Z), ``ci_lower``, ``ci_upper``, ``p_value``
        of the chosen row; ``extra`` has ``S``, ``D``, ``pairs``, ``pos``,
        ``neg``, ``ties``, ``Z``, ``SD_S``, ``VAR_S``, ``n``; ``table`` has all
        six rows.
    """
    a, b = _prep(baseline, treatment, improvement)
    if row not in _tau.TAU_U_ROWS:
        raise DataError(f"row must be one of {list(_tau.TAU_U_ROWS)}, not {row!r}")
    tab = _tau_u_columns(a, b, improvement, method, tau_method, continuity_correction, confidence)
    i = _tau.TAU_U_ROWS.index(row)
    extra: dict[str, Any] = {
        k: float(tab[k][i])
        for k in ("pairs", "pos", "neg", "ties", "S", "D", "Z", "SD_S", "VAR_S", "n")
    }
    extra.update(method=method, tau_method=tau_method if method == "complete" else "a", row=row)
    return TauUResult(
        measure="Tau_U",
        estimate=float(tab["Tau"][i]),
        se=float(tab["SE_Tau"][i]),
        ci_lower=float(tab["ci_lower"][i]),
        ci_upper=float(tab["ci_upper"][i]),
        p_value=float(tab["p"][i]),
        extra=types.MappingProxyType(extra),
        columns=types.MappingProxyType({k: tuple(float(v) for v in tab[k]) for k in _TAU_U_COLS}),
    )


def pand(baseline: Any, treatment: Any, improvement: str = "increase") -> EffectSize:
    r"""Percentage of all non-overlapping data (Parker, Hagan-Burke & Vannest, 2007).

    The proportion of observations left after removing the fewest observations
    (from either phase) needed for complete non-overlap, in Pustejovsky's
    (2019) formulation :math:`\max_{i,j}\{(i + j) I(y^A_{(i)} < y^B_{(n+1-j)})\}/(m+n)`
    (SingleCaseES; scan ``pand(method='minimum')``). Range depends on m, n.
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _mk("PAND", _v_pand(*_row2d(a, b))[0])


def ird(baseline: Any, treatment: Any, improvement: str = "increase") -> EffectSize:
    r"""Robust improvement rate difference (Parker, Vannest & Brown, 2009).

    Computed from PAND as in Pustejovsky (2019):
    :math:`IRD = ((m+n)^2 PAND - m^2 - n^2) / (2mn)`.
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _mk("IRD", _v_ird(*_row2d(a, b))[0])


def pnd(baseline: Any, treatment: Any, improvement: str = "increase") -> EffectSize:
    """Percentage of non-overlapping data (Scruggs, Mastropieri & Casto, 1987).

    Proportion of B observations above the highest A observation (below the
    lowest for ``improvement='decrease'``); range [0, 1].
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _mk("PND", _v_pnd(*_row2d(a, b))[0])


def pem(
    baseline: Any, treatment: Any, improvement: str = "increase", ties: float = 0.5
) -> EffectSize:
    """Percentage exceeding the median (Ma, 2006).

    Proportion of B observations above the median of A (below, for
    ``improvement='decrease'``); B values equal to the median count ``ties``
    (0.5 as in SingleCaseES; scan's ``pem()`` counts them 0).
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = _signed(a, b, improvement)
    return _mk("PEM", _v_pem(*_row2d(a, b), ties)[0])


# --------------------------------------------------------------------------- parametric


def smd(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    std_dev: str = "baseline",
    bias_correct: bool = True,
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Within-case standardised mean difference (Busk & Serlin 1992; Hedges 1981).

    :math:`d = J (\bar y_B - \bar y_A) / s` with s the baseline SD
    (``std_dev="baseline"``, df = m - 1) or the pooled SD (``"pool"``, df =
    m + n - 2), and Hedges' small-sample correction
    :math:`J = 1 - 3/(4\,df - 1)` when ``bias_correct`` (else J = 1). The SE is
    :math:`J\sqrt{1/m + s_B^2/(n s_A^2) + d^2/(2 df)}` (baseline) or
    :math:`J\sqrt{1/m + 1/n + d^2/(2 df)}` (pooled), with a Wald interval
    (Pustejovsky 2015; SingleCaseES ``SMD``). Sign flipped for
    ``improvement='decrease'``. With no variation in the denominator SD the
    estimate is +/-inf or NaN and a warning is attached.
    """
    a, b = _prep(baseline, treatment, improvement)
    r = _v_smd(*_row2d(a, b), improvement, std_dev, bias_correct, confidence)
    warnings = []
    if r["_no_variation"][0]:
        warnings.append(
            "There is no variation in the outcome; the SMD is not an appropriate ES for these data."
        )
    return _one("SMD", r, warnings)


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


def _lrr(
    which: str,
    baseline: Any,
    treatment: Any,
    improvement: str,
    scale: str | None,
    observation_length: float | None,
    intervals: float | None,
    d_const: float | None,
    bias_correct: bool,
    pct_change: bool,
    confidence: float | None,
) -> EffectSize:
    a, b = _prep(baseline, treatment, improvement)
    r = _v_lrr(
        which,
        *_row2d(a, b),
        improvement,
        scale,
        observation_length,
        intervals,
        d_const,
        bias_correct,
        pct_change,
        confidence,
    )
    warnings = []
    if min(a.size, b.size) < 2:
        warnings.append("A phase with fewer than 2 observations has no variance; SE is NaN.")
    return _one(which, r, warnings)


_LRR_DOC = r"""Log response ratio, {kind} version (Pustejovsky, 2015, 2018).

    :math:`\ln(\bar y_B / \bar y_A)`, with the delta-method bias correction
    :math:`\ln \bar y + s^2 / (2 n \bar y^2)` per phase when ``bias_correct``;
    :math:`SE = \sqrt{{\sum_p s_p^2 / (n_p \bar y_p^2)}}` and a Wald interval.
    {sign}
    For percentages/proportions, the outcome is reversed (100 - y, 1 - y) when
    it runs opposite to the {kind} direction. Means are truncated below at
    :math:`1/(2Dn)` and variances at :math:`1/(D^2 n^3)`, with D = 1 for
    counts, the session length for rates, the number of intervals for
    proportions and intervals/100 for percentages (infinite, i.e. no
    truncation, for ``scale='other'`` or when the needed length is missing).

    Parameters
    ----------
    scale : {{"count", "rate", "percentage", "proportion", "other"}}
    observation_length, intervals, d_const : float, optional
        Session length (minutes), intervals per session, or D directly.
    pct_change : bool
        Also report the percentage change :math:`100(e^{{LRR}} - 1)` and its
        interval in ``extra`` (``pct_change``, ``pct_change_lower``,
        ``pct_change_upper``).
    """


def lrrd(
    baseline: Any,
    treatment: Any,
    improvement: str = "decrease",
    scale: str | None = "count",
    observation_length: float | None = None,
    intervals: float | None = None,
    d_const: float | None = None,
    bias_correct: bool = True,
    pct_change: bool = False,
    confidence: float | None = 0.95,
) -> EffectSize:
    return _lrr(
        "LRRd",
        baseline,
        treatment,
        improvement,
        scale,
        observation_length,
        intervals,
        d_const,
        bias_correct,
        pct_change,
        confidence,
    )


def lrri(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    scale: str | None = "count",
    observation_length: float | None = None,
    intervals: float | None = None,
    d_const: float | None = None,
    bias_correct: bool = True,
    pct_change: bool = False,
    confidence: float | None = 0.95,
) -> EffectSize:
    return _lrr(
        "LRRi",
        baseline,
        treatment,
        improvement,
        scale,
        observation_length,
        intervals,
        d_const,
        bias_correct,
        pct_change,
        confidence,
    )


lrrd.__doc__ = _LRR_DOC.format(
    kind="decreasing",
    sign="Negative values are improvements (the sign is flipped for counts/rates when improvement='increase').",
)
lrri.__doc__ = _LRR_DOC.format(
    kind="increasing",
    sign="Positive values are improvements (the sign is flipped for counts/rates when improvement='decrease').",
)


@functools.lru_cache(maxsize=256)
def _lrm_order(n: int) -> tuple[int, int, float]:
    """Order statistics c, n - c + 1 and z0 of the Bonett-Price median variance."""
    o1 = max(int(np.round(n / 2 - math.sqrt(n))), 1)
    p = float(stats.binom.cdf(o1 - 1, n, 0.5))
    return o1, n - o1 + 1, float(stats.norm.ppf(1 - p))


def lrm(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    delta_method: bool = False,
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Log ratio of medians (Bonett & Price, 2020), as SingleCaseES ``LRM``.

    :math:`LRM = \ln(\tilde y_B) - \ln(\tilde y_A)` (sign flipped for
    ``improvement='decrease'``). The variance of each log median is
    :math:`[(\ln y_{(n-c+1)} - \ln y_{(c)}) / (2 z_0)]^2` with
    :math:`c = \max(\mathrm{round}(n/2 - \sqrt n), 1)` and
    :math:`z_0 = \Phi^{-1}(1 - P(\mathrm{Bin}(n, .5) \le c - 1))`; with
    ``delta_method`` the delta-method version
    :math:`[(y_{(n-c+1)} - y_{(c)}) / (2 z_0)]^2 / \tilde y^2`. Wald interval.
    Only meaningful for positive outcomes (log of a non-positive median is
    -inf/NaN).
    """
    a, b = _prep(baseline, treatment, improvement)
    warnings = []
    if min(a.min(), b.min()) <= 0:
        warnings.append("LRM needs positive outcomes; log of a non-positive value is undefined.")
    return _one("LRM", _v_lrm(*_row2d(a, b), improvement, delta_method, confidence), warnings)


def lor(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    scale: str | None = "percentage",
    intervals: float | None = None,
    d_const: float | None = None,
    bias_correct: bool = True,
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Log odds ratio for percentages/proportions (Pustejovsky, 2015).

    :math:`\mathrm{logit}(\bar p_B) - \mathrm{logit}(\bar p_A)` with the
    delta-method bias correction
    :math:`(2\bar p - 1) s^2 / (2 n \bar p^2 (1 - \bar p)^2)` per phase
    subtracted when ``bias_correct``;
    :math:`SE = \sqrt{\sum_p s_p^2 / (n_p \bar p_p^2 (1 - \bar p_p)^2)}`, Wald
    interval; sign flipped for ``improvement='decrease'``. Means are truncated
    to :math:`[1/(2Dn), 1 - 1/(2Dn)]` and variances below at
    :math:`1/(D^2 n^3)` (D = intervals). For other scales the LOR is undefined
    and NaN is returned (with a warning), as in SingleCaseES.
    """
    a, b = _prep(baseline, treatment, improvement)
    r = _v_lor(*_row2d(a, b), improvement, scale, intervals, d_const, bias_correct, confidence)
    warnings = []
    if "_not_defined" in r:
        warnings.append("LOR can only be calculated for proportions or percentages.")
    return _one("LOR", r, warnings)


def pogo(
    baseline: Any,
    treatment: Any,
    goal: float,
    improvement: str = "increase",
    confidence: float | None = 0.95,
) -> EffectSize:
    r"""Percent of goal obtained (Ferron, Goldstein, Olszewski & Rohrer, 2020).

    :math:`PoGO = 100 (\bar y_B - \bar y_A) / (\gamma - \bar y_A)` for goal
    level :math:`\gamma`; the direction is implied by the goal, so
    ``improvement`` is not used. SE after Dunlap & Silver (1986):
    :math:`100\sqrt{(s_A^2/m + s_B^2/n + (PoGO/100)^2 s_A^2/m)} / |\gamma - \bar y_A|`,
    Wald interval.
    """
    a, b = _prep(baseline, treatment, improvement)
    return _one("PoGO", _v_pogo(*_row2d(a, b), goal, confidence))


def corrected_tau(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    sessions_baseline: Any = None,
    sessions_treatment: Any = None,
    alpha: float = 0.05,
    tau_method: str = "b",
    continuity: bool = False,
) -> pd.DataFrame:
    """Tarlow's (2017) baseline-corrected tau as scan's ``corrected_tau()``.

    Unlike :func:`tau_bc` (SingleCaseES) this uses the measurement times
    (``sessions_*``; default 1..m, m+1..m+n), scan's own Kendall tau (tau-b or
    tau-a, optional continuity correction) and a normal-approximation trend
    test. Returns rows "Baseline autocorrelation", "Uncorrected tau",
    "Baseline corrected tau" and "selected" (corrected only if the
    baseline-trend p <= ``alpha``) with columns tau, z, p.
    """
    a_raw = np.asarray(baseline, dtype=float)
    b_raw = np.asarray(treatment, dtype=float)
    if improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    mt_a = (
        np.arange(1, a_raw.size + 1, dtype=float)
        if sessions_baseline is None
        else np.asarray(sessions_baseline, dtype=float)
    )
    mt_b = (
        np.arange(a_raw.size + 1, a_raw.size + b_raw.size + 1, dtype=float)
        if sessions_treatment is None
        else np.asarray(sessions_treatment, dtype=float)
    )
    ka = ~np.isnan(a_raw) & ~np.isnan(mt_a)
    kb = ~np.isnan(b_raw) & ~np.isnan(mt_b)
    a, b = _signed(a_raw[ka], b_raw[kb], improvement)
    with np.errstate(all="ignore"):
        res = _tau.corrected_tau(a, b, mt_a[ka], mt_b[kb], alpha, tau_method, continuity)
    rows = [
        ("Baseline autocorrelation", res["auto"]),
        ("Uncorrected tau", res["uncorrected"]),
        ("Baseline corrected tau", res["corrected"]),
        ("selected", res["selected"]),
    ]
    frame = pd.DataFrame(
        {
            "model": [r[0] for r in rows],
            "tau": [r[1]["tau"] for r in rows],
            "z": [r[1]["z"] for r in rows],
            "p": [r[1]["p"] for r in rows],
        }
    )
    frame.attrs.update(
        correction_applied=res["correction_applied"],
        slope=res["slope"],
        intercept=res["intercept"],
        warnings=res["warnings"],
    )
    return frame


# --------------------------------------------------------------------------- scan overlap()


def _overlap_row(
    a: np.ndarray, b: np.ndarray, mt_a: np.ndarray, mt_b: np.ndarray, decreasing: bool
) -> dict[str, float]:
    """One case of scan's ``overlap()`` table (percentages as in scan)."""
    out: dict[str, float] = {}
    sa, sb = (-a, -b) if decreasing else (a, b)
    out["PND"] = 100 * float(np.mean(sb > sa.max()))
    out["PEM"] = 100 * float(np.mean(sb > np.median(sa)))
    # PET: B points beyond the OLS baseline trend (values ~ mt) extrapolated to B.
    if a.size >= 2 and np.unique(mt_a).size >= 2:
        intercept, slope = _tau.lm_line(mt_a, a)
        fit = intercept + slope * mt_b
        out["PET"] = 100 * float(np.mean(b < fit if decreasing else b > fit))
    else:
        out["PET"] = _NAN
    q = (sb[None, :] > sa[:, None]) + 0.5 * (sb[None, :] == sa[:, None])
    nap_ = float(q.mean())
    out["NAP"] = nap_ * 100
    out["NAP rescaled"] = 2 * (nap_ * 100) - 100
    # PAND, sort method (Parker et al. 2007 algorithm without randomisation)
    values = np.concatenate([a, b])
    phase = np.concatenate([np.zeros(a.size), np.ones(b.size)])
    if decreasing:
        order = np.lexsort((-phase, -values))
    else:
        order = np.lexsort((phase, values))
    sorted_phase = phase[order]
    out["PAND"] = 100 * float(np.mean(sorted_phase == phase))
    m, n = a.size, b.size
    p_min = float(_v_pand(*_row2d(sa, sb))[0])
    out["IRD"] = 1 - ((m + n) ** 2 / (2 * m * n)) * (1 - p_min)
    with np.errstate(all="ignore"):
        tab = _tau.tau_u_table(a, b, "complete", "b", False, 0.95)
        out["Tau_U(A)"] = float(tab["Tau"][3])
        out["Tau_U(BA)"] = float(tab["Tau"][5])
        ct = _tau.corrected_tau(a, b, mt_a, mt_b, 0.05, "b", False)
    out["Base_Tau"] = float(ct["selected"]["tau"])
    ma, mb = float(a.mean()), float(b.mean())
    sda, sdb = _sqrt(_var(a)), _sqrt(_var(b))
    out["Diff_mean"] = mb - ma
    out["SMD"] = _div(mb - ma, sda)
    sd_hg = _sqrt(_div((m - 1) * sda**2 + (n - 1) * sdb**2, m + n - 2))
    out["Hedges_g"] = _div(mb - ma, sd_hg) * (1 - _div(3, 4 * (m + n) - 9))

    def _ols_slope(y: np.ndarray, x: np.ndarray) -> float:
        if y.size < 2 or np.unique(x).size < 2:
            return _NAN
        x = x - x[0] + 1
        xm = x.mean()
        return float(np.sum((x - xm) * (y - y.mean())) / np.sum((x - xm) ** 2))

    out["Diff_trend"] = _ols_slope(b, mt_b) - _ols_slope(a, mt_a)
    return out


_OVERLAP_COLS = (
    "PND",
    "PEM",
    "PET",
    "NAP",
    "NAP rescaled",
    "PAND",
    "IRD",
    "Tau_U(A)",
    "Tau_U(BA)",
    "Base_Tau",
    "Diff_mean",
    "Diff_trend",
    "SMD",
    "Hedges_g",
)


# --------------------------------------------------------------------------- data frames

_ESTIMATOR_OPTIONS: dict[str, tuple[str, ...]] = {
    "NAP": ("se",),
    "Tau": ("se",),
    "Tau_BC": ("se", "kendall", "pretest_trend"),
    "Tau_U": ("method", "tau_method", "continuity_correction"),
    "IRD": (),
    "PND": (),
    "PEM": (),
    "PAND": (),
    "SMD": ("std_dev", "bias_correct"),
    "LRRd": ("scale", "observation_length", "intervals", "d_const", "bias_correct", "pct_change"),
    "LRRi": ("scale", "observation_length", "intervals", "d_const", "bias_correct", "pct_change"),
    "LRM": ("delta_method",),
    "LOR": ("scale", "intervals", "d_const", "bias_correct"),
    "PoGO": ("goal",),
}
_KNOWN_OPTIONS = frozenset(o for opts in _ESTIMATOR_OPTIONS.values() for o in opts)
_MEASURE_ALIASES = {m.lower().replace("-", "_"): m for m in MEASURES}
_MEASURE_ALIASES.update(
    {
        "tau_u": "Tau_U",
        "tau_bc": "Tau_BC",
        "pct_change_d": "Pct_Change_d",
        "pct_change_i": "Pct_Change_i",
    }
)


def _check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    opts = {}
    for key, value in options.items():
        k = key.lower()
        if k not in _KNOWN_OPTIONS:
            raise DataError(f"unknown option {key!r}; known options are {sorted(_KNOWN_OPTIONS)}")
        opts[k] = value
    if "se" in opts and opts["se"] is not None:
        opts["se"] = str(opts["se"]).lower()
    return opts


def _resolve_measures(measures: str | Iterable[str] | None, has_goal: bool) -> list[str]:
    if measures is None:
        out = [m for m in MEASURES if m not in ("Pct_Change_d", "Pct_Change_i")]
        if not has_goal:
            out.remove("PoGO")
        return out
    if isinstance(measures, str):
        measures = [measures]
    out = []
    for m in measures:
        key = _MEASURE_ALIASES.get(str(m).lower().replace("-", "_"))
        if key is None:
            raise DataError(f"unknown measure {m!r}; choose from {list(MEASURES)}")
        if key not in out:
            out.append(key)
    return out


def _plan(measures: Sequence[str], opts: Mapping[str, Any]) -> list[tuple[str, bool, bool]]:
    """(index, emit its own row, emit a Pct_Change row) in output order."""
    want = list(measures)
    plan: list[tuple[str, bool, bool]] = []
    for measure in want:
        if measure in ("Pct_Change_d", "Pct_Change_i"):
            base = "LRRd" if measure.endswith("d") else "LRRi"
            if base not in want:
                plan.append((base, False, True))
            continue
        pct = measure in ("LRRd", "LRRi") and (
            bool(opts.get("pct_change")) or f"Pct_Change_{measure[-1]}" in want
        )
        plan.append((measure, True, pct))
    return plan


def _compute_group(
    A: np.ndarray,
    B: np.ndarray,
    improvement: str,
    plan: Sequence[tuple[str, bool, bool]],
    opts: Mapping[str, Any],
    confidence: float | None,
) -> list[tuple[str, dict[str, np.ndarray]]]:
    """All requested indices for k cases of equal phase lengths (rows of A, B)."""
    k = A.shape[0]
    SA, SB = _signed(A, B, improvement)
    se = _norm_se(opts.get("se", "unbiased"))
    nan = np.full(k, _NAN)
    out: list[tuple[str, dict[str, np.ndarray]]] = []

    def est_only(values: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "estimate": np.asarray(values, dtype=float),
            "se": nan,
            "ci_lower": nan,
            "ci_upper": nan,
        }

    for measure, own, pct in plan:
        if measure == "NAP":
            r = _v_nap(SA, SB, se, confidence)
        elif measure == "Tau":
            r = _v_tau(SA, SB, se, confidence)
        elif measure == "IRD":
            r = est_only(_v_ird(SA, SB))
        elif measure == "PND":
            r = est_only(_v_pnd(SA, SB))
        elif measure == "PEM":
            r = est_only(_v_pem(SA, SB))
        elif measure == "PAND":
            r = est_only(_v_pand(SA, SB))
        elif measure == "Tau_U":
            if opts.get("method") is None:
                # SingleCaseES's Tau_U() reports the estimate only; scan's SE and
                # CI are reported when a Tau-U method is chosen explicitly.
                r = est_only(_v_tau_u_sces(SA, SB))
            else:
                res = [
                    tau_u(
                        A[i],
                        B[i],
                        improvement,
                        method=str(opts["method"]),
                        tau_method=str(opts.get("tau_method") or "b"),
                        continuity_correction=bool(opts.get("continuity_correction", False)),
                        confidence=confidence,
                    )
                    for i in range(k)
                ]
                r = {
                    key: np.array([getattr(x, key) for x in res], dtype=float)
                    for key in ("estimate", "se", "ci_lower", "ci_upper")
                }
        elif measure == "Tau_BC":
            pre = opts.get("pretest_trend", False)
            pre = False if pre is None else pre
            _check_pretest(pre)
            r = _v_tau_bc(A, B, improvement, se, confidence, bool(opts.get("kendall", False)), pre)
        elif measure == "SMD":
            r = _v_smd(
                A,
                B,
                improvement,
                opts.get("std_dev") or "baseline",
                bool(opts.get("bias_correct", True)),
                confidence,
            )
        elif measure in ("LRRd", "LRRi"):
            r = _v_lrr(
                measure,
                A,
                B,
                improvement,
                opts.get("scale", "count"),
                opts.get("observation_length"),
                opts.get("intervals"),
                opts.get("d_const"),
                bool(opts.get("bias_correct", True)),
                pct,
                confidence,
            )
        elif measure == "LRM":
            r = _v_lrm(A, B, improvement, bool(opts.get("delta_method", False)), confidence)
        elif measure == "LOR":
            r = _v_lor(
                A,
                B,
                improvement,
                opts.get("scale", "percentage"),
                opts.get("intervals"),
                opts.get("d_const"),
                bool(opts.get("bias_correct", True)),
                confidence,
            )
        elif measure == "PoGO":
            if opts.get("goal") is None:
                raise DataError("PoGO needs the goal level of the behaviour (option goal=...)")
            r = _v_pogo(A, B, opts["goal"], confidence)
        else:  # pragma: no cover - guarded by _resolve_measures
            raise DataError(f"unknown measure {measure!r}")
        if own:
            out.append((measure, r))
        if pct:
            out.append(
                (
                    f"Pct_Change_{measure[-1]}",
                    {
                        "estimate": r["pct_change"],
                        "se": nan,
                        "ci_lower": r["pct_change_lower"],
                        "ci_upper": r["pct_change_upper"],
                    },
                )
            )
    return out


def _columns(data: pd.DataFrame, names: Sequence[str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    missing = [c for c in names if c is not None and c not in data.columns]
    if missing:
        raise DataError(f"column(s) not found in data: {missing}")


def _numeric(data: pd.DataFrame, column: str) -> np.ndarray:
    try:
        return pd.to_numeric(data[column], errors="raise").to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise DataError("column must be numeric", column=column) from exc


def _iter_cases(data: pd.DataFrame, case: str | None):
    """Yield (case key, row positions) in order of first appearance."""
    if case is None:
        yield None, np.arange(len(data))
        return
    codes, keys = pd.factorize(data[case], sort=False, use_na_sentinel=False)
    keys = np.asarray(keys, dtype=object)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for idx in np.split(order, bounds):
        if idx.size:
            key = keys[codes[idx[0]]]
            yield (key.item() if isinstance(key, np.generic) else key), idx


def _split(
    case: Any,
    sess: np.ndarray,
    y: np.ndarray,
    ph: np.ndarray,
    baseline_phase: Any,
    treatment_phase: Any,
    phase: str,
    session: str,
    outcome: str,
) -> tuple[np.ndarray, ...]:
    """Baseline/treatment arrays of one case, ordered by session, NaN outcomes dropped."""
    where = f"case {case!r}"
    key = str(case)
    is_a = ph == baseline_phase
    is_b = ph == treatment_phase
    if not is_a.any():
        raise DataError(
            f"{where}: no observations in baseline phase {baseline_phase!r}", key=key, column=phase
        )
    if not is_b.any():
        raise DataError(
            f"{where}: no observations in treatment phase {treatment_phase!r}",
            key=key,
            column=phase,
        )
    keep = is_a | is_b
    if np.isnan(sess[keep]).any():
        raise DataError(f"{where}: missing session numbers", key=key, column=session)
    if np.unique(sess[keep]).size != keep.sum():
        raise DataError(f"{where}: duplicated session numbers", key=key, column=session)
    if sess[is_a].max() > sess[is_b].min():
        raise DataError(
            f"{where}: phases out of order (a baseline session follows a treatment session); "
            "split phase pairs (e.g. ABAB) into separate series or use batch_effect_sizes(aggregate=...)",
            key=key,
            column=phase,
        )
    oa = np.argsort(sess[is_a], kind="stable")
    ob = np.argsort(sess[is_b], kind="stable")
    a, sa = y[is_a][oa], sess[is_a][oa]
    b, sb = y[is_b][ob], sess[is_b][ob]
    ka, kb = ~np.isnan(a), ~np.isnan(b)
    if not ka.any():
        raise DataError(f"{where}: all baseline outcomes are missing", key=key, column=outcome)
    if not kb.any():
        raise DataError(f"{where}: all treatment outcomes are missing", key=key, column=outcome)
    return a[ka], b[kb], sa[ka], sb[kb]


def _per_case_value(values: np.ndarray, option: str) -> Any:
    """SingleCaseES semantics for per-row option columns: mode for text, mean for numbers."""
    vals = pd.Series(values).dropna()
    if vals.empty:
        return None
    if option in ("improvement", "scale", "std_dev", "se", "method", "tau_method"):
        return vals.astype(str).value_counts().index[0]
    return float(pd.to_numeric(vals).mean())


def _prepared_cases(
    data,
    case,
    phase,
    session,
    outcome,
    baseline_phase,
    treatment_phase,
    improvement,
    opts,
    case_options,
):
    """List of (key, a, b, sa, sb, improvement, options) for every case."""
    _columns(data, [case, phase, session, outcome, *case_options.values()])
    sess = _numeric(data, session)
    y = _numeric(data, outcome)
    ph = data[phase].to_numpy(dtype=object)
    opt_cols = {opt: data[col].to_numpy(dtype=object) for opt, col in case_options.items()}
    cases = []
    for key, idx in _iter_cases(data, case):
        a, b, sa, sb = _split(
            key,
            sess[idx],
            y[idx],
            ph[idx],
            baseline_phase,
            treatment_phase,
            phase,
            session,
            outcome,
        )
        case_opts = dict(opts)
        imp = improvement
        for opt, col in opt_cols.items():
            val = _per_case_value(col[idx], opt)
            if opt == "improvement":
                imp = val if val is not None else improvement
            elif val is not None:
                case_opts[opt.lower()] = val
        if imp not in ("increase", "decrease"):
            raise DataError(
                f"case {key!r}: improvement must be 'increase' or 'decrease', not {imp!r}",
                key=str(key),
            )
        cases.append((key, a, b, sa, sb, imp, case_opts))
    return cases


def effect_sizes(
    data: pd.DataFrame,
    *,
    case: str | None,
    phase: str,
    session: str,
    outcome: str,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
    measures: str | Iterable[str] | None = None,
    confidence: float | None = 0.95,
    case_options: Mapping[str, str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Per-case SCED effect sizes in a tidy table.

    Parameters
    ----------
    data : DataFrame
        Long format: one row per measurement occasion.
    case, phase, session, outcome : str
        Column names. ``case=None`` treats the whole frame as one case. Within a
        case, rows are ordered by ``session``; missing outcomes are dropped.
    baseline_phase, treatment_phase :
        Labels of phase A and phase B in ``phase``; other phases are ignored.
    improvement : {"increase", "decrease"}
        Direction of therapeutic improvement.
    measures : str or list of str, optional
        Any of :data:`MEASURES`. Default: all except the Pct_Change rows, and
        PoGO only when ``goal`` is given. ``Pct_Change_d``/``_i`` rows come with
        LRRd/LRRi when ``pct_change=True`` or when requested by name.
    confidence : float or None
        Confidence level (None: no intervals).
    case_options : mapping, optional
        Option name -> column holding per-case values (e.g.
        ``{"improvement": "direction", "scale": "metric", "intervals":
        "n_intervals"}``). Text options take the most frequent value in the case,
        numbers the mean (SingleCaseES batch semantics).
    **options
        SingleCaseES argument names in snake case: ``se`` ('unbiased',
        'hanley', 'null'), ``std_dev`` ('baseline', 'pool'), ``bias_correct``,
        ``scale`` ('count', 'rate', 'percentage', 'proportion', 'other'),
        ``observation_length``, ``intervals``, ``d_const``, ``goal``,
        ``pretest_trend`` (a level or False), ``kendall``, ``pct_change``,
        ``delta_method`` (LRM), and for Tau-U ``method`` ('parker', 'complete',
        'tarlow'), ``tau_method`` ('a', 'b'), ``continuity_correction``. An
        option that a measure does not take is ignored for that measure; an
        unknown option raises :class:`~effectstudy.errors.DataError`.

    Returns
    -------
    DataFrame
        Columns ``case, measure, estimate, se, ci_lower, ci_upper`` (NaN where
        undefined).

    Raises
    ------
    DataError
        Unknown option/measure, bad option value, missing columns, or a case
        whose series cannot be analysed (missing phase, phases out of order,
        duplicated sessions, all outcomes missing) -- the message names the
        case.

    Notes
    -----
    Definitions, SEs and intervals are those of SingleCaseES 0.7.4 (see the
    per-index functions: :func:`nap`, :func:`tau`, :func:`tau_bc`,
    :func:`tau_u`, :func:`ird`, :func:`pnd`, :func:`pem`, :func:`pand`,
    :func:`smd`, :func:`lrrd`, :func:`lrri`, :func:`lrm`, :func:`lor`,
    :func:`pogo`). Tau_U: without a ``method`` option the row is SingleCaseES's
    ``Tau_U`` (Parker et al. 2011; estimate only, SE/CI NaN); with
    ``method=`` the scan variant and its SE (Tau / Z) and Fisher-z interval.
    LOR is NaN unless ``scale`` is a percentage or proportion.

    Degenerate but analysable series give defined values following
    SingleCaseES: a constant series gives NAP 0.5, Tau 0, PND 0 and a NaN SMD
    (0/0); zero baseline variance gives an infinite SMD; an all-zero baseline
    gives finite LRRs through the truncated mean 1/(2Dn) (LRM is then
    infinite: log of 0); a one-point phase gives the non-overlap estimates and
    NaN where a variance (or the Theil-Sen slope of Tau-BC) needs two points.
    NaN outcomes are dropped.

    Cases with equal phase lengths, direction and options are computed
    together with NumPy (1,000 cases of 20 + 20 points in well under a
    second; ``benchmarks/sced_effect_sizes.py``).
    """
    opts = _check_options(options)
    case_options = dict(case_options or {})
    for key in case_options:
        if key != "improvement" and key.lower() not in _KNOWN_OPTIONS:
            raise DataError(f"unknown option {key!r} in case_options")
    if improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    has_goal = opts.get("goal") is not None or "goal" in case_options
    wanted = _resolve_measures(measures, has_goal)
    _zcrit(confidence)
    cases = _prepared_cases(
        data,
        case,
        phase,
        session,
        outcome,
        baseline_phase,
        treatment_phase,
        improvement,
        opts,
        case_options,
    )
    # stack cases with equal phase lengths, direction and options
    groups: dict[tuple, list[int]] = {}
    for pos, (_, a, b, _, _, imp, copts) in enumerate(cases):
        sig = (a.size, b.size, imp, tuple(sorted((k, repr(v)) for k, v in copts.items())))
        groups.setdefault(sig, []).append(pos)
    results: list[list[tuple[str, float, float, float, float]]] = [[] for _ in cases]
    for members in groups.values():
        first = cases[members[0]]
        A = np.vstack([cases[i][1] for i in members])
        B = np.vstack([cases[i][2] for i in members])
        plan = _plan(wanted, first[6])
        try:
            out = _compute_group(A, B, first[5], plan, first[6], confidence)
        except DataError as exc:
            names = ", ".join(repr(cases[i][0]) for i in members[:3])
            more = " ..." if len(members) > 3 else ""
            raise DataError(f"case {names}{more}: {exc.message}", key=str(first[0])) from exc
        for measure, r in out:
            cols = [r["estimate"], r["se"], r["ci_lower"], r["ci_upper"]]
            for j, pos in enumerate(members):
                results[pos].append((measure, *(float(c[j]) for c in cols)))
    rows = [(cases[pos][0], *vals) for pos in range(len(cases)) for vals in results[pos]]
    return pd.DataFrame(rows, columns=["case", "measure", "estimate", "se", "ci_lower", "ci_upper"])


def batch_effect_sizes(
    data: pd.DataFrame,
    *,
    case: str | Sequence[str],
    phase: str,
    session: str,
    outcome: str,
    aggregate: str | None = None,
    weighting: str = "equal",
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
    measures: str | Iterable[str] | None = None,
    confidence: float | None = 0.95,
    case_options: Mapping[str, str] | None = None,
    **options: Any,
) -> pd.DataFrame:
    r"""Effect sizes per case and phase pair, averaged over pairs (SingleCaseES ``batch_calc_ES``).

    Each (case, ``aggregate``) group (e.g. the phase pairs of an ABAB design)
    is analysed as one A-B series with :func:`effect_sizes`; the estimates of a
    case are then averaged over its groups with weights :math:`w_k = 1`
    (``weighting="equal"``) or :math:`w_k = 1/SE_k^2` (``"1/V"``):
    :math:`\hat\theta = \sum w_k\hat\theta_k / \sum w_k`,
    :math:`SE = \sqrt{\sum w_k^2 SE_k^2} / \sum w_k`, Wald interval. Indices
    without an SE (PND, Tau-U, ...) get an equal-weight mean and NaN SE under
    "equal" and NaN under "1/V", as in SingleCaseES.

    Parameters
    ----------
    case : str or list of str
        Column(s) identifying a series (e.g. ``["behavior", "student"]``); the
        output ``case`` is the values joined by ``"|"``.
    aggregate : str, optional
        Column numbering the phase pairs. None: no aggregation (one result per
        case, as :func:`effect_sizes`).
    weighting : {"equal", "1/V"}

    Other parameters are as in :func:`effect_sizes`.

    Returns
    -------
    DataFrame
        ``case, measure, estimate, se, ci_lower, ci_upper``; ``case`` is the
        ``case`` column values joined by ``"|"``. With ``aggregate=None`` each
        case must be a single A-B series (include the phase-pair column in
        ``case`` to get one row set per pair).
    """
    if weighting not in ("equal", "1/V"):
        raise DataError(f"weighting must be 'equal' or '1/V', not {weighting!r}")
    keys = [case] if isinstance(case, str) else list(case)
    missing = [
        c
        for c in [*keys, phase, session, outcome, *([aggregate] if aggregate else [])]
        if c not in data.columns
    ]
    if missing:
        raise DataError(f"column(s) not found in data: {missing}")
    frame = data.copy()
    frame["__case__"] = frame[keys].astype(str).agg("|".join, axis=1)
    group_cols = ["__case__"] + ([aggregate] if aggregate else [])
    frame["__series__"] = frame[group_cols].astype(str).agg("\x1f".join, axis=1)
    res = effect_sizes(
        frame,
        case="__series__",
        phase=phase,
        session=session,
        outcome=outcome,
        baseline_phase=baseline_phase,
        treatment_phase=treatment_phase,
        improvement=improvement,
        measures=measures,
        confidence=confidence,
        case_options=case_options,
        **options,
    )
    lookup = frame.drop_duplicates("__series__").set_index("__series__")
    res["__case__"] = lookup.loc[res["case"], "__case__"].to_numpy()
    if aggregate is None:
        res["case"] = res["__case__"]
        return res.drop(columns="__case__")
    res[aggregate] = lookup.loc[res["case"], aggregate].to_numpy()
    z = _zcrit(confidence)
    out = []
    for (key, measure), grp in res.groupby(["__case__", "measure"], sort=False):
        est = grp["estimate"].to_numpy(dtype=float)
        se = grp["se"].to_numpy(dtype=float)
        w = np.ones_like(est) if weighting == "equal" else 1 / se**2
        with np.errstate(divide="ignore", invalid="ignore"):
            e = float(np.sum(est * w) / np.sum(w))
            s = float(np.sqrt(np.sum(w**2 * se**2)) / np.sum(w))
        out.append(
            {
                "case": key,
                "measure": measure,
                "estimate": e,
                "se": s,
                "ci_lower": e - z * s if confidence is not None else _NAN,
                "ci_upper": e + z * s if confidence is not None else _NAN,
            }
        )
    return pd.DataFrame(out, columns=["case", "measure", "estimate", "se", "ci_lower", "ci_upper"])


def overlap(
    data: pd.DataFrame,
    *,
    case: str | None,
    phase: str,
    session: str,
    outcome: str,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: str = "increase",
) -> pd.DataFrame:
    """scan's ``overlap()`` table: one row per case.

    Columns (scan's names): ``PND``, ``PEM`` (ties at the median count 0),
    ``PET`` (percent of B points beyond the OLS baseline trend, Parker et al.
    2011), ``NAP`` and ``NAP rescaled`` (2 NAP - 100), ``PAND`` (sort method of
    Parker, Hagan-Burke & Vannest 2007, without randomisation), ``IRD``,
    ``Tau_U(A)`` and ``Tau_U(BA)`` (rows "A vs. B - Trend A" and "A vs. B +
    Trend B - Trend A" of :func:`tau_u` with ``method="complete"``, tau-b, on
    the raw values), ``Base_Tau`` (:func:`corrected_tau`, raw values),
    ``Diff_mean``, ``Diff_trend`` (difference of OLS slopes on session),
    ``SMD`` (mean difference / baseline SD) and ``Hedges_g`` (pooled SD,
    times 1 - 3/(4N - 9)). PND, PEM, PET, NAP and PAND are percentages (0-100).
    As in scan, only the overlap indices follow ``improvement`` (scan's
    ``decreasing``); Tau-U, Base_Tau and the mean/trend/SMD columns are raw.
    """
    if improvement not in ("increase", "decrease"):
        raise DataError(f"improvement must be 'increase' or 'decrease', not {improvement!r}")
    rows = []
    for key, a, b, sa, sb, _, _ in _prepared_cases(
        data, case, phase, session, outcome, baseline_phase, treatment_phase, improvement, {}, {}
    ):
        row = {"case": key}
        row.update(_overlap_row(a, b, sa, sb, improvement == "decrease"))
        rows.append(row)
    return pd.DataFrame(rows, columns=["case", *_OVERLAP_COLS])
