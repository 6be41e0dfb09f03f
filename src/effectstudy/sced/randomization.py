"""Randomization tests for single-case designs, and random start-point designs.

A randomization test compares the observed test statistic with its
distribution over all assignments the design *could* have produced: the
intervention start points (AB, multiple baseline) or phase-change points
(ABAB) that the random assignment procedure allowed (Edgington, 1980;
Onghena, 1992; Onghena & Edgington, 2005). The observations are never
permuted; only the assignment is.

Designs and schemes
-------------------
``design="AB"``
    One case, one random intervention start point with at least
    ``min_phase_length`` sessions in each phase (Edgington, 1975).
``design="ABAB"``
    Three random phase-change points, each of the four phases at least
    ``min_phase_length`` long (Onghena, 1992). Several cases are combined as
    in a multiple-baseline test.
``design="MB"``
    Multiple baseline across cases. ``scheme="marascuilo_busk"`` (default,
    Marascuilo & Busk, 1988; scan's ``rand_test``): each case has its own
    independently randomised start point, so there are
    ``prod(n_start_points)`` assignments. ``scheme="koehler_levin"``
    (regulated randomization, Koehler & Levin, 1998): cases are randomly
    ordered over staggered, non-overlapping start windows and a start point is
    drawn within each window: ``n_cases! * prod(window sizes)`` assignments.
    With windows of one session each this is the Wampold-Worsham (1986) test.

p-values
--------
Exact enumeration (``exhaustive``): ``p`` = proportion of assignments whose
statistic is at least as extreme as the observed one; the observed assignment
is one of them, so ``p >= 1 / n_assignments``. Monte Carlo: ``m`` assignments
drawn uniformly with replacement from a :class:`numpy.random.Generator`
seeded with ``seed``, ``p = (b + 1) / (m + 1)`` with ``b`` the number of drawn
statistics at least as extreme (Phipson & Smyth, 2010), never 0. Ties are
compared with a relative tolerance of 1e-10 so that values that are equal in
exact arithmetic count as equal.

References
----------
Edgington, E. S. (1975). Randomization tests for one-subject operant
experiments. *The Journal of Psychology, 90*(1), 57-68.

Koehler, M. J., & Levin, J. R. (1998). Regulated randomization: A potentially
sharper analytical tool for the multiple-baseline design. *Psychological
Methods, 3*(2), 206-217.

Marascuilo, L. A., & Busk, P. L. (1988). Combining statistics for multiple-
baseline AB and replicated ABAB designs across subjects. *Behavioral
Assessment, 10*(1), 1-28.

Onghena, P. (1992). Randomization tests for extensions and variations of ABAB
single-case experimental designs: A rejoinder. *Behavioral Assessment, 14*,
153-171.

Onghena, P., & Edgington, E. S. (2005). Customization of pain treatments:
Single-case design and analysis. *Clinical Journal of Pain, 21*(1), 56-68.

Phipson, B., & Smyth, G. K. (2010). Permutation p-values should never be zero.
*Statistical Applications in Genetics and Molecular Biology, 9*(1), Article 39.

Wampold, B. E., & Worsham, N. L. (1986). Randomization tests for multiple-
baseline designs. *Behavioral Assessment, 8*, 135-143.

Bulte, I., & Onghena, P. (2008). An R package for single-case randomization
tests. *Behavior Research Methods, 40*(2), 467-478.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, SpecError
from effectstudy.sced.design import _case_series, _check_order, _Series

Design = Literal["AB", "ABAB", "MB"]
Scheme = Literal["marascuilo_busk", "koehler_levin"]

_TOL = 1e-10

#: statistics: name -> (aggregate default, tail, supports ABAB)
_STATISTICS: dict[str, tuple[str, str, bool]] = {
    "mean_difference": ("mean", "greater", True),
    "median_difference": ("median", "greater", True),
    "nap": ("mean", "greater", True),
    "smd_hedges": ("mean", "greater", True),
    "smd_glass": ("mean", "greater", True),
    "t_statistic": ("mean", "greater", True),
    "wilcoxon_w": ("mean", "less", True),
    "slope_difference": ("mean", "greater", False),
    "level_change": ("mean", "greater", False),
}

#: scan ``rand_test(statistic=...)`` names -> (statistic, improvement)
SCAN_STATISTICS: dict[str, tuple[str, str]] = {
    "Mean B-A": ("mean_difference", "increase"),
    "Mean A-B": ("mean_difference", "decrease"),
    "Median B-A": ("median_difference", "increase"),
    "Median A-B": ("median_difference", "decrease"),
    "NAP": ("nap", "increase"),
    "NAP decreasing": ("nap", "decrease"),
    "SMD hedges": ("smd_hedges", "increase"),
    "SMD glass": ("smd_glass", "increase"),
    "W-test": ("wilcoxon_w", "increase"),
    "T-test": ("t_statistic", "increase"),
    "Slope B-A": ("slope_difference", "increase"),
    "Slope A-B": ("slope_difference", "decrease"),
}

_AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda m: m.mean(axis=1),
    "median": lambda m: np.median(m, axis=1),
    "rms": lambda m: np.sqrt((m**2).mean(axis=1)),
}


# --------------------------------------------------------------------------
# statistics over many assignments at once
# --------------------------------------------------------------------------


def _case_statistic(name: str, y: np.ndarray, t: np.ndarray, masks: np.ndarray,
                    sign: float, starts: np.ndarray | None = None) -> np.ndarray:
    """Statistic of one case for every assignment (rows of the boolean ``masks``; True = B)."""
    B = masks.astype(float)
    A = 1.0 - B
    nA, nB = A.sum(1), B.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in ("mean_difference", "smd_hedges", "smd_glass", "t_statistic"):
            mA, mB = A @ y / nA, B @ y / nB
            if name == "mean_difference":
                return sign * (mB - mA)
            vA = (A * (y[None, :] - mA[:, None]) ** 2).sum(1) / (nA - 1)
            vB = (B * (y[None, :] - mB[:, None]) ** 2).sum(1) / (nB - 1)
            if name == "smd_glass":
                return sign * (mB - mA) / np.sqrt(vA)
            if name == "t_statistic":
                return sign * (mB - mA) / np.sqrt(vA / nA + vB / nB)
            n = nA + nB
            sp = np.sqrt(((nA - 1) * vA + (nB - 1) * vB) / (n - 2))
            corr = (n - 3) / (n - 2.25) * np.sqrt((n - 2) / n)  # as scan (Hedges' g approx.)
            return sign * (mB - mA) / sp * corr
        if name == "median_difference":
            med_a = np.nanmedian(np.where(masks, np.nan, y[None, :]), axis=1)
            med_b = np.nanmedian(np.where(masks, y[None, :], np.nan), axis=1)
            return sign * (med_b - med_a)
        if name in ("nap", "wilcoxon_w"):
            diff = y[None, :] - y[:, None]  # [i, j] = y_j - y_i
            better = (diff > 0) if sign > 0 else (diff < 0)
            P = better + 0.5 * (diff == 0)  # i in A, j in B
            count = np.einsum("ki,ij,kj->k", A, P, B)
            if name == "nap":
                return count / (nA * nB)
            return nA * nB - count  # Mann-Whitney W of the baseline: small = improvement
        if name == "slope_difference":
            def slope(W):
                n_ = W.sum(1)
                mx, my = W @ t / n_, W @ y / n_
                sxy = W @ (t * y) - n_ * mx * my
                sxx = W @ (t * t) - n_ * mx * mx
                return sxy / sxx
            return sign * (slope(B) - slope(A))
        if name == "level_change":
            t0 = t - t[0]
            tstart = t[starts][:, None]  # session of the first B observation
            X = np.stack([np.ones_like(B), np.broadcast_to(t0, B.shape), B,
                          B * (t[None, :] - tstart)], axis=2)
            xtx = np.einsum("kni,knj->kij", X, X)
            xty = np.einsum("kni,n->ki", X, y)
            beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
            return sign * beta[:, 2]
    raise SpecError(f"unknown statistic {name!r}")  # pragma: no cover


# --------------------------------------------------------------------------
# permissible assignments
# --------------------------------------------------------------------------


def _min_lengths(min_phase_length) -> tuple[int, int]:
    if np.ndim(min_phase_length) == 0:
        m = int(min_phase_length)
        out = (m, m)
    else:
        vals = list(min_phase_length)
        if len(vals) != 2:
            raise SpecError("min_phase_length must be an int or a pair (baseline, treatment)")
        out = (int(vals[0]), int(vals[1]))
    if min(out) < 1:
        raise SpecError("min_phase_length must be at least 1")
    return out


def _ab_starts(n: int, mA: int, mB: int) -> np.ndarray:
    """0-based index of the first B observation for every permissible AB split."""
    return np.arange(mA, n - mB + 1)


def _ab_masks(n: int, starts: np.ndarray) -> np.ndarray:
    return np.arange(n)[None, :] >= starts[:, None]


def _abab_changes(n: int, mA: int, mB: int) -> np.ndarray:
    """All (s1, s2, s3): 0-based starts of B1, A2, B2 with every phase long enough."""
    out = [(s1, s2, s3)
           for s1 in range(mA, n + 1)
           for s2 in range(s1 + mB, n + 1)
           for s3 in range(s2 + mA, n - mB + 1)]
    return np.array(out, dtype=int).reshape(-1, 3)


def _abab_masks(n: int, ch: np.ndarray) -> np.ndarray:
    i = np.arange(n)[None, :]
    return ((i >= ch[:, [0]]) & (i < ch[:, [1]])) | (i >= ch[:, [2]])


def _kl_windows(first: int, last: int, n_cases: int) -> list[np.ndarray]:
    """Split the permissible start range ``first..last`` into staggered windows."""
    rng = np.arange(first, last + 1)
    if len(rng) < n_cases:
        raise DataError(f"only {len(rng)} permissible start points for {n_cases} cases; "
                        "Koehler-Levin needs at least one start point per case")
    return [w for w in np.array_split(rng, n_cases)]


def _positions(s: _Series, sessions, what: str) -> np.ndarray:
    sessions = np.atleast_1d(np.asarray(sessions, dtype=float))
    pos = np.searchsorted(s.session, sessions)
    ok = (pos < len(s.session)) & (s.session[np.minimum(pos, len(s.session) - 1)] == sessions)
    if not ok.all():
        raise DataError(f"{s.label}: {what} {sessions[~ok].tolist()} are not sessions of this case")
    return pos


# --------------------------------------------------------------------------
# result
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class RandomizationResult(ResultMixin):
    """Result of :func:`randomization_test`.

    Attributes
    ----------
    statistic : str
        Name of the test statistic; ``tail`` tells which direction counts as
        extreme (``"greater"``, or ``"less"`` for ``wilcoxon_w``).
    observed : float
        Observed statistic (aggregated over cases).
    p_value : float
        One-sided randomization p-value.
    n_assignments : int
        Number of permissible assignments of the design.
    n_used : int
        Number of assignments in the null distribution (``n_assignments`` when
        exact, the Monte Carlo sample size otherwise).
    exact : bool
        True when all assignments were enumerated.
    min_p : float
        Smallest attainable p-value (``1 / n_assignments`` exact,
        ``1 / (n_samples + 1)`` Monte Carlo).
    null_distribution : ndarray
        Statistic under every enumerated or sampled assignment.
    per_case : DataFrame
        Per case: sessions, phase lengths, number of permissible start points,
        observed start session and statistic.
    design_checks : DataFrame
        The What Works Clearinghouse design checks of the data tested
        (:func:`effectstudy.sced.design_check`), so every result says whether the
        design meets the standards; ``wwc_rating`` in :meth:`to_frame` is the overall
        rating.
    """

    statistic: str
    observed: float
    p_value: float
    n_assignments: int
    n_used: int
    exact: bool
    min_p: float
    null_distribution: np.ndarray = field(repr=False)
    design: str = "AB"
    scheme: str = "marascuilo_busk"
    improvement: str = "increase"
    tail: str = "greater"
    aggregate: str = "mean"
    seed: int | None = None
    alpha: float = 0.05
    per_case: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    warnings: tuple[str, ...] = ()
    design_checks: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _title = "Randomization test"

    def to_frame(self) -> pd.DataFrame:
        """One-row summary table."""
        return pd.DataFrame([{
            "design": self.design, "scheme": self.scheme, "statistic": self.statistic,
            "improvement": self.improvement, "tail": self.tail, "aggregate": self.aggregate,
            "observed": self.observed, "p_value": self.p_value,
            "n_assignments": self.n_assignments, "n_used": self.n_used, "exact": self.exact,
            "min_p": self.min_p, "seed": self.seed, "wwc_rating": self.wwc_rating,
        }])

    @property
    def wwc_rating(self) -> str | None:
        """Overall What Works Clearinghouse rating of the design (None if not checked)."""
        checks = self.design_checks
        if checks.empty or "check" not in checks:
            return None
        overall = checks.loc[checks["check"] == "overall", "rating"]
        return str(overall.iloc[0]) if len(overall) else None

    def plot(self, ax=None):
        """Histogram of the null distribution with the observed statistic marked."""
        import matplotlib.pyplot as plt

        from effectstudy.style import GREY, OKABE_ITO, label_axes, use_style

        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 3.5))
            dist = self.null_distribution
            bins = min(40, max(5, len(np.unique(dist))))
            ax.hist(dist, bins=bins, color=OKABE_ITO["sky_blue"], edgecolor="white")
            ax.axvline(self.observed, color=OKABE_ITO["vermillion"], ls="--", lw=2,
                       label=f"observed = {self.observed:.3g}")
            kind = "exact" if self.exact else "Monte Carlo"
            label_axes(ax, x=self.statistic, y="number of assignments",
                       title=f"Randomization distribution ({kind}, p = {self.p_value:.3g})")
            ax.legend(loc="upper left", labelcolor=GREY)
        return ax.figure


# --------------------------------------------------------------------------
# the test
# --------------------------------------------------------------------------


def randomization_test(
    data: pd.DataFrame,
    *,
    case: str | None = None,
    phase: str = "phase",
    session: str = "session",
    outcome: str = "outcome",
    design: Design = "AB",
    statistic: str = "mean_difference",
    min_phase_length: int | tuple[int, int] = 3,
    exhaustive: bool | None = None,
    n_samples: int | None = None,
    seed: int | np.random.Generator | None = None,
    improvement: Literal["increase", "decrease"] = "increase",
    scheme: Scheme = "marascuilo_busk",
    start_points: Sequence | dict | None = None,
    phases: Sequence[str] = ("A", "B"),
    aggregate: str | None = None,
    exclude_equal: bool = False,
    alpha: float = 0.05,
    max_exhaustive: int = 200_000,
) -> RandomizationResult:
    """Randomization test for an AB, ABAB or multiple-baseline design.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per measurement occasion; no missing outcomes.
    case, phase, session, outcome : str
        Column names (``case=None`` for one series).
    design : {"AB", "ABAB", "MB"}
        ``"AB"``: one case, random start point. ``"ABAB"``: random phase-change
        points (phases labelled A, B, A, B in session order). ``"MB"``:
        multiple baseline across cases (see ``scheme``).
    statistic : str
        ``"mean_difference"`` (B - A), ``"median_difference"``, ``"nap"``
        (non-overlap of all pairs, 0-1; Parker & Vannest, 2009),
        ``"smd_hedges"``, ``"smd_glass"``, ``"t_statistic"`` (Welch),
        ``"wilcoxon_w"`` (Mann-Whitney W of the baseline; small values favour
        improvement, so its tail is ``"less"``), ``"slope_difference"`` (OLS
        slope over session numbers, B minus A, AB/MB only; scan regresses on
        positions 1..n, identical when sessions are consecutive), ``"level_change"`` (level-change
        coefficient of the piecewise model ``y ~ trend + level + slope``,
        Huitema & McKean, 2000; AB/MB only). scan's names (``"Mean B-A"``,
        ``"NAP decreasing"``, ...) are accepted too and set ``improvement``.
        Statistics are oriented so that larger values favour improvement.
    min_phase_length : int or (int, int)
        Minimum sessions per baseline and treatment phase of a permissible
        assignment (scan's ``limit``).
    exhaustive : bool, optional
        ``True``: enumerate all assignments; ``False``: Monte Carlo; ``None``:
        enumerate when there are at most ``max_exhaustive`` assignments.
    n_samples : int, optional
        Monte Carlo sample size (default 10,000).
    seed : int or numpy.random.Generator, optional
        Seed of the Monte Carlo draws (recorded in the result).
    improvement : {"increase", "decrease"}
        Direction of a therapeutic change.
    scheme : {"marascuilo_busk", "koehler_levin"}
        Randomisation scheme of a multiple-baseline design.
    start_points : sequence or dict, optional
        Permissible start sessions (the session of the first treatment
        observation). ``"marascuilo_busk"``: one list for all cases, or a dict
        ``{case: sessions}``; overrides ``min_phase_length`` as scan's
        ``startpoints``. ``"koehler_levin"``: a list of staggered windows (one
        list of sessions per tier, earliest first); by default the permissible
        range is split into ``n_cases`` consecutive windows as in
        :func:`random_start_points`.
    phases : (str, str) or four labels
        Labels of baseline and treatment phase; for ``"ABAB"`` also the four
        labels in session order, e.g. ``("A1", "B1", "A2", "B2")``.
    aggregate : {"mean", "median", "rms"}, optional
        How per-case statistics are combined across cases (default: median for
        ``median_difference``, else mean; scan combines SMDs with the root mean
        square, ``"rms"``, which drops their sign).
    exclude_equal : bool
        Count only strictly more extreme assignments (scan's
        ``exclude.equal = TRUE``). Not a valid test: an exact p can be 0.
    alpha : float
        Significance level; a warning is given when the smallest attainable p
        exceeds it.
    max_exhaustive : int
        Largest number of assignments enumerated when ``exhaustive=None``.

    Returns
    -------
    RandomizationResult

    Raises
    ------
    DataError
        Missing outcomes, duplicated sessions, phases out of order, a series
        too short for ``min_phase_length`` or only one permissible assignment.
    """
    if statistic in SCAN_STATISTICS:
        statistic, improvement = SCAN_STATISTICS[statistic]
    if statistic not in _STATISTICS:
        raise SpecError(f"unknown statistic {statistic!r}; use one of {sorted(_STATISTICS)}")
    if improvement not in ("increase", "decrease"):
        raise SpecError("improvement must be 'increase' or 'decrease'")
    if design not in ("AB", "ABAB", "MB"):
        raise SpecError(f"unknown design {design!r}; use 'AB', 'ABAB' or 'MB'")
    if scheme not in ("marascuilo_busk", "koehler_levin"):
        raise SpecError(f"unknown scheme {scheme!r}")
    default_agg, tail, abab_ok = _STATISTICS[statistic]
    if design == "ABAB" and not abab_ok:
        raise SpecError(f"statistic {statistic!r} is not defined for ABAB designs")
    aggregate = aggregate or default_agg
    if aggregate not in _AGGREGATES:
        raise SpecError(f"aggregate must be one of {sorted(_AGGREGATES)}")
    mA, mB = _min_lengths(min_phase_length)
    sign = 1.0 if improvement == "increase" else -1.0
    notes: list[str] = []

    series = _case_series(data, case=case, phase=phase, session=session, outcome=outcome)
    if design == "AB" and len(series) > 1:
        raise SpecError(f"design='AB' got {len(series)} cases; use design='MB' for a multiple "
                        "baseline across cases")
    if design == "MB" and scheme == "koehler_levin" and len(series) < 2:
        raise SpecError("the Koehler-Levin scheme needs at least two cases")
    phases = tuple(phases)
    if design == "ABAB" and len(phases) == 4:
        expected = list(phases)
    elif len(phases) == 2:
        base, treat = phases
        expected = [base, treat] if design in ("AB", "MB") else [base, treat, base, treat]
    else:
        raise SpecError("phases must be (baseline, treatment) labels, or four labels in "
                        "session order for an ABAB design")
    for s in series:
        _check_order(s, expected)

    # per-case permissible assignments ---------------------------------------
    options: list[list[np.ndarray]] = []  # per case, per window: statistic per option
    option_starts: list[list[np.ndarray]] = []
    obs_stats, obs_index, rows = [], [], []
    kl_windows = None
    if scheme == "koehler_levin" and design == "MB":
        lengths = {len(s.session) for s in series}
        if start_points is None:
            if len(lengths) != 1:
                raise DataError("Koehler-Levin windows by default need series of equal length; "
                                "give start_points= (one window of sessions per tier)")
            n = lengths.pop()
            kl_windows = [("pos", w) for w in _kl_windows(mA, n - mB, len(series))]
        else:
            if len(start_points) != len(series):
                raise SpecError(f"start_points has {len(start_points)} windows for "
                                f"{len(series)} cases")
            kl_windows = [("ses", np.asarray(w, dtype=float)) for w in start_points]

    for s in series:
        y, t, n = s.outcome, s.session, len(s.outcome)
        runs = s.runs
        if design in ("AB", "MB"):
            obs_start = runs[1][1]
            if kl_windows is not None:
                wins = [w if kind == "pos" else _positions(s, w, "start points")
                        for kind, w in kl_windows]
            else:
                if start_points is None:
                    if n < mA + mB:
                        raise DataError(f"{s.label}: {n} sessions cannot hold a baseline of "
                                        f"{mA} and a treatment phase of {mB} sessions "
                                        "(too few start points)")
                    st = _ab_starts(n, mA, mB)
                else:
                    sp = start_points.get(s.case) if isinstance(start_points, dict) \
                        else start_points
                    if sp is None:
                        raise SpecError(f"start_points has no entry for {s.label}")
                    st = _positions(s, sp, "start points")
                    if np.any(st < 1):
                        raise DataError(f"{s.label}: a start point leaves no baseline session")
                wins = [np.asarray(st, dtype=int)]
            for w in wins:
                if len(w) == 0:
                    raise DataError(f"{s.label}: no permissible start points")
                if np.any((w < 1) | (w > n - 1)):
                    raise DataError(f"{s.label}: start points leave an empty phase")
            allst = np.unique(np.concatenate(wins + [[obs_start]]))
            vals = _case_statistic(statistic, y, t, _ab_masks(n, allst), sign, allst)
            lookup = dict(zip(allst.tolist(), vals, strict=True))
            options.append([np.array([lookup[i] for i in w]) for w in wins])
            option_starts.append(wins)
            obs_stats.append(lookup[obs_start])
            obs_index.append(obs_start)
            n_opt = sum(len(w) for w in wins) if kl_windows is None else len(wins[0])
            rows.append(dict(case=s.case, n_sessions=n, n_baseline=runs[0][2],
                             n_treatment=n - runs[0][2], n_start_points=n_opt,
                             observed_start_session=t[obs_start], observed_statistic=None))
        else:  # ABAB
            ch = _abab_changes(n, mA, mB)
            if len(ch) == 0:
                raise DataError(f"{s.label}: {n} sessions cannot hold four phases of at least "
                                f"{mA}/{mB} sessions (too few phase-change points)")
            obs = np.array([[runs[1][1], runs[2][1], runs[3][1]]])
            allch = np.vstack([ch, obs])
            vals = _case_statistic(statistic, y, t, _abab_masks(n, allch), sign)
            options.append([vals[:-1]])
            option_starts.append([ch])
            obs_stats.append(vals[-1])
            in_set = bool(np.all(ch == obs[0], axis=1).any())
            obs_index.append(tuple(obs[0]) if in_set else None)
            rows.append(dict(case=s.case, n_sessions=n, n_baseline=runs[0][2] + runs[2][2],
                             n_treatment=runs[1][2] + runs[3][2], n_start_points=len(ch),
                             observed_start_session=t[runs[1][1]], observed_statistic=None))
        rows[-1]["observed_statistic"] = float(obs_stats[-1])

    # is the observed assignment permissible? --------------------------------
    k = len(series)
    if design == "ABAB":
        observed_ok = all(o is not None for o in obs_index)
    elif kl_windows is not None:
        observed_ok = any(
            all(obs_index[i] in option_starts[i][perm[i]] for i in range(k))
            for perm in itertools.permutations(range(k))
        )
    else:
        observed_ok = all(obs_index[i] in option_starts[i][0] for i in range(k))
    if not observed_ok:
        notes.append("the observed assignment is not one of the permissible assignments "
                     "(phase shorter than min_phase_length or start outside start_points); "
                     "the p-value counts it as one extra assignment")

    agg = _AGGREGATES[aggregate]
    observed = float(agg(np.array(obs_stats)[None, :])[0])

    if kl_windows is not None:
        n_assign = math.factorial(k) * math.prod(len(w) for w in option_starts[0])
    else:
        n_assign = math.prod(len(o[0]) for o in options)
    if n_assign < 2:
        raise DataError("only one permissible assignment: a randomization test is impossible "
                        "(too few start points)")

    if exhaustive is None:
        exhaustive = n_assign <= max_exhaustive
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if exhaustive:
        if n_assign > 50_000_000:
            raise SpecError(f"{n_assign} assignments are too many to enumerate; use "
                            "exhaustive=False")
        if kl_windows is not None:
            parts = []
            for perm in itertools.permutations(range(k)):
                parts.append(_product_aggregate([options[i][perm[i]] for i in range(k)],
                                                aggregate))
            dist = np.concatenate(parts)
        else:
            dist = _product_aggregate([o[0] for o in options], aggregate)
        m = len(dist)
    else:
        m = int(n_samples or 10_000)
        if m < 1:
            raise SpecError("n_samples must be positive")
        mat = np.empty((m, k))
        if kl_windows is not None:
            perms = np.argsort(rng.random((m, k)), axis=1)  # uniform random orders
            for i in range(k):
                for w in range(k):
                    sel = perms[:, i] == w
                    vals = options[i][w]
                    mat[sel, i] = vals[rng.integers(len(vals), size=int(sel.sum()))]
        else:
            for i in range(k):
                vals = options[i][0]
                mat[:, i] = vals[rng.integers(len(vals), size=m)]
        dist = agg(mat)

    if not np.isfinite(observed) or not np.all(np.isfinite(dist)):
        raise DataError("the statistic is not finite for the observed data or some assignments "
                        "(e.g. a constant phase for an SMD); choose another statistic or a "
                        "larger min_phase_length")
    tol = _TOL * max(1.0, abs(observed))
    if tail == "greater":
        extreme = dist > observed + tol if exclude_equal else dist >= observed - tol
    else:
        extreme = dist < observed - tol if exclude_equal else dist <= observed + tol
    b = int(extreme.sum())
    if exhaustive and observed_ok:
        p = b / m
        min_p = 1 / m
    else:
        p = (b + 1) / (m + 1)
        min_p = 1 / (m + 1)
    if exclude_equal:
        notes.append("exclude_equal=True: assignments as extreme as the observed one are not "
                     "counted; the p-value is not a valid randomization p-value")
    if min_p > alpha:
        msg = (f"the smallest attainable p-value is {min_p:.4g} > alpha = {alpha}: this design "
               f"({n_assign} permissible assignments) cannot reach significance")
        notes.append(msg)
        warnings.warn(msg, stacklevel=2)

    return RandomizationResult(
        statistic=statistic, observed=observed, p_value=float(p), n_assignments=int(n_assign),
        n_used=int(m), exact=bool(exhaustive), min_p=float(min_p), null_distribution=dist,
        design=design, scheme=scheme if design == "MB" else "single", improvement=improvement,
        tail=tail, aggregate=aggregate,
        seed=None if isinstance(seed, np.random.Generator) else seed, alpha=alpha,
        per_case=pd.DataFrame(rows), warnings=tuple(notes),
        design_checks=_wwc_checks(data, case, phase, session, design),
    )


def _wwc_checks(data, case, phase, session, design) -> pd.DataFrame:
    """WWC design checks of the tested data (empty if the design cannot be rated)."""
    from effectstudy.errors import DataError
    from effectstudy.sced.design import design_check

    try:
        return design_check(data, case=case, phase=phase, session=session, design=design)
    except DataError:
        return pd.DataFrame()


def _product_aggregate(vectors: list[np.ndarray], aggregate: str) -> np.ndarray:
    """Aggregate statistic over the Cartesian product of per-case values (C order)."""
    k = len(vectors)
    if aggregate == "mean":
        total = vectors[0]
        for v in vectors[1:]:
            total = np.add.outer(total, v)
        return np.ravel(total) / k
    grids = np.meshgrid(*vectors, indexing="ij")
    mat = np.stack([g.ravel() for g in grids], axis=1)
    return _AGGREGATES[aggregate](mat)


# --------------------------------------------------------------------------
# planning: random start points
# --------------------------------------------------------------------------


def random_start_points(
    n_cases: int,
    series_length: int | Sequence[int],
    min_phase_length: int | tuple[int, int] = 3,
    rng: np.random.Generator | int | None = None,
    *,
    seed: int | None = None,
    scheme: Scheme = "marascuilo_busk",
    case_labels: Sequence | None = None,
) -> pd.DataFrame:
    """Draw and record random intervention start points for a planned AB/MB study.

    ``"marascuilo_busk"`` (Marascuilo & Busk, 1988): every case draws its start
    point independently and uniformly from its permissible range.
    ``"koehler_levin"`` (Koehler & Levin, 1998): the permissible range is split
    into ``n_cases`` consecutive, non-overlapping windows (staggered tiers),
    the cases are randomly ordered over the windows and each draws its start
    point uniformly within its window. Analyse the study with
    :func:`randomization_test` using the same ``min_phase_length`` and
    ``scheme``.

    Parameters
    ----------
    n_cases : int
        Number of cases (tiers).
    series_length : int or sequence of int
        Planned number of sessions (per case; equal for Koehler-Levin).
    min_phase_length : int or (int, int)
        Minimum baseline and treatment sessions.
    rng, seed : numpy.random.Generator or int, optional
        Source of randomness; pass one for a reproducible, recorded draw.
    scheme : {"marascuilo_busk", "koehler_levin"}
    case_labels : sequence, optional
        Labels for the cases (default ``1..n_cases``).

    Returns
    -------
    DataFrame
        One row per case: ``case, scheme, tier, series_length, window_first,
        window_last, n_options, start_point`` (1-based session number of the
        first treatment session), ``n_baseline, n_treatment, n_assignments``
        (of the whole design) and ``min_p`` (``1 / n_assignments``). The seed is
        in ``frame.attrs["seed"]``.
    """
    if n_cases < 1:
        raise SpecError("n_cases must be at least 1")
    if rng is not None and seed is not None:
        raise SpecError("give rng or seed, not both")
    seed_used = seed if seed is not None else (rng if isinstance(rng, int | np.integer) else None)
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(seed_used)
    lengths = ([int(series_length)] * n_cases if np.ndim(series_length) == 0
               else [int(v) for v in series_length])
    if len(lengths) != n_cases:
        raise SpecError("series_length must be one int or one per case")
    labels = list(case_labels) if case_labels is not None else list(range(1, n_cases + 1))
    if len(labels) != n_cases:
        raise SpecError("case_labels must have n_cases labels")
    mA, mB = _min_lengths(min_phase_length)
    for lab, n in zip(labels, lengths, strict=True):
        if n < mA + mB:
            raise DataError(f"case {lab!r}: {n} sessions cannot hold phases of {mA} and {mB} "
                            "sessions (too few start points)")
    rows = []
    if scheme == "marascuilo_busk":
        for tier, (lab, n) in enumerate(zip(labels, lengths, strict=True), start=1):
            first, last = mA + 1, n - mB + 1
            start = int(gen.integers(first, last + 1))
            rows.append(dict(case=lab, scheme=scheme, tier=tier, series_length=n,
                             window_first=first, window_last=last, n_options=last - first + 1,
                             start_point=start))
        n_assign = math.prod(r["n_options"] for r in rows)
    elif scheme == "koehler_levin":
        if len(set(lengths)) != 1:
            raise SpecError("the Koehler-Levin scheme needs equal series lengths")
        n = lengths[0]
        windows = _kl_windows(mA, n - mB, n_cases)  # 0-based positions
        order = gen.permutation(n_cases)  # case i gets window order[i]
        for i, lab in enumerate(labels):
            w = windows[order[i]]
            start = int(gen.choice(w)) + 1
            rows.append(dict(case=lab, scheme=scheme, tier=int(order[i]) + 1, series_length=n,
                             window_first=int(w[0]) + 1, window_last=int(w[-1]) + 1,
                             n_options=len(w), start_point=start))
        n_assign = math.factorial(n_cases) * math.prod(len(w) for w in windows)
    else:
        raise SpecError(f"unknown scheme {scheme!r}")
    frame = pd.DataFrame(rows)
    frame["n_baseline"] = frame["start_point"] - 1
    frame["n_treatment"] = frame["series_length"] - frame["n_baseline"]
    frame["n_assignments"] = n_assign
    frame["min_p"] = 1 / n_assign
    frame = frame.sort_values("tier", kind="stable").reset_index(drop=True)
    frame.attrs["seed"] = seed_used
    return frame


__all__ = ["SCAN_STATISTICS", "RandomizationResult", "random_start_points", "randomization_test"]
