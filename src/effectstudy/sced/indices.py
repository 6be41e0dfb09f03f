"""One function per single-case effect size, on two arrays (baseline, treatment).

Non-overlap indices (NAP, Parker & Vannest, 2009; Tau and Tau-BC, Tarlow,
2017; Tau-U, Parker et al., 2011; IRD, Parker, Vannest & Brown, 2009; PND,
Scruggs, Mastropieri & Casto, 1987; PEM, Ma, 2006; PAND, Parker, Hagan-Burke &
Vannest, 2007) and parametric indices (within-case SMD, Busk & Serlin, 1992;
LRRd/LRRi and LRM, Pustejovsky, 2015, 2018; LOR; PoGO, Ferron et al., 2020), each
returning an :class:`EffectSize`. Definitions, standard errors and intervals
follow SingleCaseES 0.7.4 and, for the Tau-U variants, scan 0.67.1; see
:mod:`effectstudy.sced.effect_sizes` for the DataFrame API and the reference
checks.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError
from effectstudy.sced._compat import check_confidence, confidence_from_alpha, renamed_keywords
from effectstudy.sced._es_cores import (
    check_pretest,
    norm_se,
    row2d,
    signed,
    v_ird,
    v_lor,
    v_lrm,
    v_lrr,
    v_nap,
    v_pand,
    v_pem,
    v_pnd,
    v_pogo,
    v_smd,
    v_tau,
    v_tau_bc,
)
from effectstudy.sced._numeric import NAN
from effectstudy.sced._tau import TAU_U_ROWS
from effectstudy.sced._tau import corrected_tau as scan_corrected_tau
from effectstudy.sced._tau import tau_u_table as scan_tau_u_table


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
    se: float = NAN
    ci_lower: float = NAN
    ci_upper: float = NAN
    p_value: float = NAN
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
        frame = pd.DataFrame({"model": list(TAU_U_ROWS)})
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
    se: float = NAN,
    lo: float = NAN,
    hi: float = NAN,
    p: float = NAN,
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
        r["se"][0] if "se" in r else NAN,
        r["ci_lower"][0] if "ci_lower" in r else NAN,
        r["ci_upper"][0] if "ci_upper" in r else NAN,
        warnings=warnings,
        **extra,
    )


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
    a, b = signed(a, b, improvement)
    return _one("NAP", v_nap(*row2d(a, b), norm_se(se), confidence))


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
    a, b = signed(a, b, improvement)
    return _one("Tau", v_tau(*row2d(a, b), norm_se(se), confidence))


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
    check_pretest(pretest_trend)
    warnings = []
    if a.size < 2:
        warnings.append("Tau-BC needs at least two baseline observations for the Theil-Sen slope.")
    r = v_tau_bc(
        *row2d(a, b), improvement, norm_se(se), confidence, bool(kendall), pretest_trend
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
    a, b = signed(a, b, improvement)
    with np.errstate(all="ignore"):
        return scan_tau_u_table(a, b, method, tau_method, bool(continuity_correction), confidence)


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
    if row not in TAU_U_ROWS:
        raise DataError(f"row must be one of {list(TAU_U_ROWS)}, not {row!r}")
    tab = _tau_u_columns(a, b, improvement, method, tau_method, continuity_correction, confidence)
    i = TAU_U_ROWS.index(row)
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
    a, b = signed(a, b, improvement)
    return _mk("PAND", v_pand(*row2d(a, b))[0])


def ird(baseline: Any, treatment: Any, improvement: str = "increase") -> EffectSize:
    r"""Robust improvement rate difference (Parker, Vannest & Brown, 2009).

    Computed from PAND as in Pustejovsky (2019):
    :math:`IRD = ((m+n)^2 PAND - m^2 - n^2) / (2mn)`.
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = signed(a, b, improvement)
    return _mk("IRD", v_ird(*row2d(a, b))[0])


def pnd(baseline: Any, treatment: Any, improvement: str = "increase") -> EffectSize:
    """Percentage of non-overlapping data (Scruggs, Mastropieri & Casto, 1987).

    Proportion of B observations above the highest A observation (below the
    lowest for ``improvement='decrease'``); range [0, 1].
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = signed(a, b, improvement)
    return _mk("PND", v_pnd(*row2d(a, b))[0])


def pem(
    baseline: Any, treatment: Any, improvement: str = "increase", ties: float = 0.5
) -> EffectSize:
    """Percentage exceeding the median (Ma, 2006).

    Proportion of B observations above the median of A (below, for
    ``improvement='decrease'``); B values equal to the median count ``ties``
    (0.5 as in SingleCaseES; scan's ``pem()`` counts them 0).
    """
    a, b = _prep(baseline, treatment, improvement)
    a, b = signed(a, b, improvement)
    return _mk("PEM", v_pem(*row2d(a, b), ties)[0])


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
    r = v_smd(*row2d(a, b), improvement, std_dev, bias_correct, confidence)
    warnings = []
    if r["_no_variation"][0]:
        warnings.append(
            "There is no variation in the outcome; the SMD is not an appropriate ES for these data."
        )
    return _one("SMD", r, warnings)


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
    r = v_lrr(
        which,
        *row2d(a, b),
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
    return _one("LRM", v_lrm(*row2d(a, b), improvement, delta_method, confidence), warnings)


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
    r = v_lor(*row2d(a, b), improvement, scale, intervals, d_const, bias_correct, confidence)
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
    return _one("PoGO", v_pogo(*row2d(a, b), goal, confidence))


@renamed_keywords("corrected_tau", {"alpha": confidence_from_alpha})
def corrected_tau(
    baseline: Any,
    treatment: Any,
    improvement: str = "increase",
    sessions_baseline: Any = None,
    sessions_treatment: Any = None,
    confidence: float = 0.95,
    tau_method: str = "b",
    continuity: bool = False,
) -> pd.DataFrame:
    """Tarlow's (2017) baseline-corrected tau as scan's ``corrected_tau()``.

    Unlike :func:`tau_bc` (SingleCaseES) this uses the measurement times
    (``sessions_*``; default 1..m, m+1..m+n), scan's own Kendall tau (tau-b or
    tau-a, optional continuity correction) and a normal-approximation trend
    test. Returns rows "Baseline autocorrelation", "Uncorrected tau",
    "Baseline corrected tau" and "selected" (corrected only if the
    baseline-trend p <= ``1 - confidence``, scan's ``alpha``) with columns
    tau, z, p.
    """
    check_confidence(confidence)
    alpha = round(1.0 - float(confidence), 12)
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
    a, b = signed(a_raw[ka], b_raw[kb], improvement)
    with np.errstate(all="ignore"):
        res = scan_corrected_tau(a, b, mt_a[ka], mt_b[kb], alpha, tau_method, continuity)
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
