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
drawn uniformly with replacement from the :class:`numpy.random.Generator`
given as ``rng`` (or seeded with it), ``p = (b + 1) / (m + 1)`` with ``b`` the number of drawn
statistics at least as extreme (Phipson & Smyth, 2010), never 0. Ties are
compared with a relative tolerance of 1e-10 so that values that are equal in
exact arithmetic count as equal. ``alternative="two-sided"`` doubles the smaller
one-sided p-value. The null distribution and these p-value rules live in
:mod:`effectstudy._randomization` and are shared with :mod:`effectstudy.power`.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from effectstudy._randomization import (
    AGGREGATES,
    draw_indices,
    exact_null,
    p_value,
    sampled_null,
)
from effectstudy._randomization import aggregate as aggregate_values
from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, SpecError
from effectstudy.sced._assignments import (
    ab_masks,
    ab_starts,
    abab_changes,
    abab_masks,
    case_statistic,
    min_lengths,
    staggered_windows,
)
from effectstudy.sced._compat import (
    REQUIRED,
    as_generator,
    check_confidence,
    columns,
    confidence_from_alpha,
    renamed_keywords,
)
from effectstudy.sced._series import CaseSeries, case_series, check_order
from effectstudy.sced.design import design_check
from effectstudy.style import GREY, OKABE_ITO, label_axes, use_style

Design = Literal["AB", "ABAB", "MB"]
Scheme = Literal["marascuilo_busk", "koehler_levin"]

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


def _positions(s: CaseSeries, sessions, what: str) -> np.ndarray:
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
        Randomization p-value (one-sided in the direction of improvement, or
        two-sided: see ``alternative``).
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
    alternative: str = "one-sided"
    seed: int | None = None
    confidence: float = 0.95
    per_case: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    warnings: tuple[str, ...] = ()
    design_checks: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _title = "Randomization test"

    def to_frame(self) -> pd.DataFrame:
        """One-row summary table."""
        return pd.DataFrame([{
            "design": self.design, "scheme": self.scheme, "statistic": self.statistic,
            "improvement": self.improvement, "tail": self.tail,
            "alternative": self.alternative, "aggregate": self.aggregate,
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

    def plot(self, ax=None, **kwargs):
        """Histogram of the null distribution with the observed statistic marked.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Draw into this axes (default: a new figure).
        **kwargs
            Passed to ``Axes.hist`` (e.g. ``bins=``, ``color=``).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt  # only when drawing: importing sced loads no pyplot

        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 3.5))
            dist = self.null_distribution
            style = dict(bins=min(40, max(5, len(np.unique(dist)))),
                         color=OKABE_ITO["sky_blue"], edgecolor="white")
            style.update(kwargs)
            ax.hist(dist, **style)
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


def _phases_keyword(phases: Sequence[str]) -> dict[str, object]:
    """Old ``phases=`` as ``baseline_phase=`` / ``treatment_phase=``."""
    phases = tuple(phases)
    if len(phases) == 2:
        return {"baseline_phase": phases[0], "treatment_phase": phases[1]}
    if len(phases) == 4:
        return {"baseline_phase": (phases[0], phases[2]),
                "treatment_phase": (phases[1], phases[3])}
    raise SpecError("phases must be (baseline, treatment) labels, or four labels in "
                    "session order for an ABAB design")


@dataclass(frozen=True)
class _Spec:
    """The validated choices of one call."""

    statistic: str
    improvement: str
    tail: str
    aggregate: str
    alternative: str  # "greater", "less" or "two-sided" for the core
    sign: float
    min_lengths: tuple[int, int]


def _resolve_spec(statistic: str, improvement: str, design: str, scheme: str,
                  aggregate: str | None, alternative: str, min_phase_length) -> _Spec:
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
    if alternative not in ("one-sided", "two-sided"):
        raise SpecError("alternative must be 'one-sided' (in the direction of improvement) or "
                        "'two-sided'")
    default_agg, tail, abab_ok = _STATISTICS[statistic]
    if design == "ABAB" and not abab_ok:
        raise SpecError(f"statistic {statistic!r} is not defined for ABAB designs")
    aggregate = aggregate or default_agg
    if aggregate not in AGGREGATES:
        raise SpecError(f"aggregate must be one of {sorted(AGGREGATES)}")
    return _Spec(statistic=statistic, improvement=improvement, tail=tail, aggregate=aggregate,
                 alternative=tail if alternative == "one-sided" else "two-sided",
                 sign=1.0 if improvement == "increase" else -1.0,
                 min_lengths=min_lengths(min_phase_length))


def _expected_phases(design: str, baseline_phase, treatment_phase) -> list:
    """Phase runs every case must show, in session order."""
    def pair(label) -> tuple:
        if isinstance(label, tuple | list):
            if len(label) != 2:
                raise SpecError("for ABAB give one phase label or two (first and second run)")
            return tuple(label)
        return (label, label)

    if design in ("AB", "MB"):
        if isinstance(baseline_phase, tuple | list) or isinstance(treatment_phase, tuple | list):
            raise SpecError("an AB or multiple-baseline design has one baseline and one "
                            "treatment phase label")
        return [baseline_phase, treatment_phase]
    (a1, a2), (b1, b2) = pair(baseline_phase), pair(treatment_phase)
    return [a1, b1, a2, b2]


def _koehler_levin_windows(series: list[CaseSeries], spec: _Spec, start_points) -> list | None:
    """Staggered start windows as ``(kind, values)``: positions or sessions."""
    mA, mB = spec.min_lengths
    if start_points is None:
        lengths = {len(s.session) for s in series}
        if len(lengths) != 1:
            raise DataError("Koehler-Levin windows by default need series of equal length; "
                            "give start_points= (one window of sessions per tier)")
        n = lengths.pop()
        return [("pos", w) for w in staggered_windows(mA, n - mB, len(series))]
    if len(start_points) != len(series):
        raise SpecError(f"start_points has {len(start_points)} windows for {len(series)} cases")
    return [("ses", np.asarray(w, dtype=float)) for w in start_points]


@dataclass
class _CaseOptions:
    """One case's permissible assignments and its statistic under each."""

    values: list[np.ndarray]  # per window: statistic per option
    starts: list[np.ndarray]  # per window: the options (start index or change points)
    observed: float
    observed_option: object  # start index / change points, or None if not permissible
    row: dict


def _ab_options(s: CaseSeries, spec: _Spec, kl_windows, start_points) -> _CaseOptions:
    """AB / multiple-baseline case: permissible start points (0-based first B index)."""
    mA, mB = spec.min_lengths
    y, t, n, runs = s.outcome, s.session, len(s.outcome), s.runs
    obs_start = runs[1][1]
    if kl_windows is not None:
        wins = [w if kind == "pos" else _positions(s, w, "start points") for kind, w in kl_windows]
    else:
        if start_points is None:
            if n < mA + mB:
                raise DataError(f"{s.label}: {n} sessions cannot hold a baseline of {mA} and a "
                                f"treatment phase of {mB} sessions (too few start points)")
            st = ab_starts(n, mA, mB)
        else:
            sp = start_points.get(s.case) if isinstance(start_points, dict) else start_points
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
    vals = case_statistic(spec.statistic, y, t, ab_masks(n, allst), spec.sign, allst)
    lookup = dict(zip(allst.tolist(), vals, strict=True))
    n_opt = sum(len(w) for w in wins) if kl_windows is None else len(wins[0])
    row = dict(case=s.case, n_sessions=n, n_baseline=runs[0][2], n_treatment=n - runs[0][2],
               n_start_points=n_opt, observed_start_session=t[obs_start],
               observed_statistic=float(lookup[obs_start]))
    return _CaseOptions(values=[np.array([lookup[i] for i in w]) for w in wins], starts=wins,
                        observed=lookup[obs_start], observed_option=obs_start, row=row)


def _abab_options(s: CaseSeries, spec: _Spec) -> _CaseOptions:
    """ABAB case: all permissible triples of phase-change points."""
    mA, mB = spec.min_lengths
    y, t, n, runs = s.outcome, s.session, len(s.outcome), s.runs
    ch = abab_changes(n, mA, mB)
    if len(ch) == 0:
        raise DataError(f"{s.label}: {n} sessions cannot hold four phases of at least "
                        f"{mA}/{mB} sessions (too few phase-change points)")
    obs = np.array([[runs[1][1], runs[2][1], runs[3][1]]])
    vals = case_statistic(spec.statistic, y, t, abab_masks(n, np.vstack([ch, obs])), spec.sign)
    in_set = bool(np.all(ch == obs[0], axis=1).any())
    row = dict(case=s.case, n_sessions=n, n_baseline=runs[0][2] + runs[2][2],
               n_treatment=runs[1][2] + runs[3][2], n_start_points=len(ch),
               observed_start_session=t[runs[1][1]], observed_statistic=float(vals[-1]))
    return _CaseOptions(values=[vals[:-1]], starts=[ch], observed=vals[-1],
                        observed_option=tuple(obs[0]) if in_set else None, row=row)


def _observed_is_permissible(cases: list[_CaseOptions], design: str, koehler_levin: bool) -> bool:
    k = len(cases)
    if design == "ABAB":
        return all(c.observed_option is not None for c in cases)
    if koehler_levin:
        return any(all(cases[i].observed_option in cases[i].starts[perm[i]] for i in range(k))
                   for perm in itertools.permutations(range(k)))
    return all(c.observed_option in c.starts[0] for c in cases)


def _null_distribution(cases: list[_CaseOptions], koehler_levin: bool, exhaustive: bool,
                       n_assign: int, n_samples: int | None, gen: np.random.Generator,
                       how: str) -> np.ndarray:
    """Statistic under every permissible assignment, or under a uniform sample of them."""
    k = len(cases)
    if exhaustive:
        if n_assign > 50_000_000:
            raise SpecError(f"{n_assign} assignments are too many to enumerate; use "
                            "exhaustive=False")
        if koehler_levin:
            return np.concatenate([exact_null([cases[i].values[perm[i]] for i in range(k)], how)
                                   for perm in itertools.permutations(range(k))])
        return exact_null([c.values[0] for c in cases], how)
    m = int(n_samples or 10_000)
    if m < 1:
        raise SpecError("n_samples must be positive")
    if not koehler_levin:
        values = [c.values[0] for c in cases]
        return sampled_null(values, draw_indices(gen, [len(v) for v in values], m), how)
    mat = np.empty((m, k))
    perms = np.argsort(gen.random((m, k)), axis=1)  # uniform random orders
    for i in range(k):
        for w in range(k):
            sel = perms[:, i] == w
            vals = cases[i].values[w]
            mat[sel, i] = vals[gen.integers(len(vals), size=int(sel.sum()))]
    return aggregate_values(mat, how)


@renamed_keywords("randomization_test",
                  {"seed": "rng", "alpha": confidence_from_alpha, "phases": _phases_keyword})
def randomization_test(
    data: pd.DataFrame,
    *,
    outcome: str = REQUIRED,
    session: str = REQUIRED,
    phase: str = REQUIRED,
    case: str | None = None,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    improvement: Literal["increase", "decrease"] = "increase",
    design: Design = "AB",
    statistic: str = "mean_difference",
    alternative: Literal["one-sided", "two-sided"] = "one-sided",
    min_phase_length: int | tuple[int, int] = 3,
    exhaustive: bool | None = None,
    n_samples: int | None = None,
    rng: int | np.random.Generator | None = None,
    scheme: Scheme = "marascuilo_busk",
    start_points: Sequence | dict | None = None,
    aggregate: str | None = None,
    exclude_equal: bool = False,
    confidence: float = 0.95,
    max_exhaustive: int = 200_000,
) -> RandomizationResult:
    """Randomization test for an AB, ABAB or multiple-baseline design.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per measurement occasion; no missing outcomes.
    outcome, session, phase : str
        Column names (give them explicitly; the old defaults ``"outcome"``,
        ``"session"``, ``"phase"`` still work for one release with a warning).
    case : str, optional
        Case column (``None`` for one series).
    baseline_phase, treatment_phase : label, or two labels for ABAB
        Phase labels. For ``"ABAB"`` a label used for both runs, or the labels
        of the first and second run, e.g. ``baseline_phase=("A1", "A2")``.
    improvement : {"increase", "decrease"}
        Direction of a therapeutic change.
    design : {"AB", "ABAB", "MB"}
        ``"AB"``: one case, random start point. ``"ABAB"``: random phase-change
        points. ``"MB"``: multiple baseline across cases (see ``scheme``).
    statistic : str
        ``"mean_difference"`` (B - A), ``"median_difference"``, ``"nap"``
        (non-overlap of all pairs, 0-1; Parker & Vannest, 2009),
        ``"smd_hedges"``, ``"smd_glass"``, ``"t_statistic"`` (Welch),
        ``"wilcoxon_w"`` (Mann-Whitney W of the baseline; small values favour
        improvement, so its tail is ``"less"``), ``"slope_difference"`` (OLS
        slope over session numbers, B minus A, AB/MB only; scan regresses on
        positions 1..n, identical when sessions are consecutive),
        ``"level_change"`` (level-change coefficient of the piecewise model
        ``y ~ trend + level + slope``, Huitema & McKean, 2000; AB/MB only).
        scan's names (``"Mean B-A"``, ``"NAP decreasing"``, ...) are accepted
        too and set ``improvement``. Statistics are oriented so that larger
        values favour improvement.
    alternative : {"one-sided", "two-sided"}
        ``"one-sided"``: extreme in the direction of improvement;
        ``"two-sided"``: twice the smaller one-sided p-value (at most 1).
    min_phase_length : int or (int, int)
        Minimum sessions per baseline and treatment phase of a permissible
        assignment (scan's ``limit``).
    exhaustive : bool, optional
        ``True``: enumerate all assignments; ``False``: Monte Carlo; ``None``:
        enumerate when there are at most ``max_exhaustive`` assignments.
    n_samples : int, optional
        Monte Carlo sample size (default 10,000).
    rng : int, numpy.random.Generator or None
        Source of the Monte Carlo draws; an int seed is recorded in the result.
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
    aggregate : {"mean", "median", "rms"}, optional
        How per-case statistics are combined across cases (default: median for
        ``median_difference``, else mean; scan combines SMDs with the root mean
        square, ``"rms"``, which drops their sign).
    exclude_equal : bool
        Count only strictly more extreme assignments (scan's
        ``exclude.equal = TRUE``). Not a valid test: an exact p can be 0.
    confidence : float
        ``1 - confidence`` is the significance level; a warning is given when
        the smallest attainable p exceeds it.
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

    Notes
    -----
    The null distribution and p-value come from :mod:`effectstudy._randomization`,
    shared with the power simulation of :mod:`effectstudy.power.single_case`.
    """
    outcome, session, phase = columns("randomization_test", outcome=outcome, session=session,
                                       phase=phase)
    check_confidence(confidence)
    spec = _resolve_spec(statistic, improvement, design, scheme, aggregate, alternative,
                         min_phase_length)
    gen, seed = as_generator(rng)
    notes: list[str] = []

    # 1. series and their phase sequence
    series = case_series(data, case=case, phase=phase, session=session, outcome=outcome)
    if design == "AB" and len(series) > 1:
        raise SpecError(f"design='AB' got {len(series)} cases; use design='MB' for a multiple "
                        "baseline across cases")
    koehler_levin = design == "MB" and scheme == "koehler_levin"
    if koehler_levin and len(series) < 2:
        raise SpecError("the Koehler-Levin scheme needs at least two cases")
    expected = _expected_phases(design, baseline_phase, treatment_phase)
    for s in series:
        check_order(s, expected)

    # 2. per case: permissible assignments and the statistic under each
    kl_windows = _koehler_levin_windows(series, spec, start_points) if koehler_levin else None
    cases = [_abab_options(s, spec) if design == "ABAB"
             else _ab_options(s, spec, kl_windows, start_points) for s in series]
    observed_ok = _observed_is_permissible(cases, design, koehler_levin)
    if not observed_ok:
        notes.append("the observed assignment is not one of the permissible assignments "
                     "(phase shorter than min_phase_length or start outside start_points); "
                     "the p-value counts it as one extra assignment")
    observed = float(aggregate_values(np.array([c.observed for c in cases]), spec.aggregate))

    # 3. null distribution
    if koehler_levin:
        n_assign = math.factorial(len(cases)) * math.prod(len(w) for w in cases[0].starts)
    else:
        n_assign = math.prod(len(c.values[0]) for c in cases)
    if n_assign < 2:
        raise DataError("only one permissible assignment: a randomization test is impossible "
                        "(too few start points)")
    if exhaustive is None:
        exhaustive = n_assign <= max_exhaustive
    dist = _null_distribution(cases, koehler_levin, exhaustive, n_assign, n_samples, gen,
                              spec.aggregate)
    if not np.isfinite(observed) or not np.all(np.isfinite(dist)):
        raise DataError("the statistic is not finite for the observed data or some assignments "
                        "(e.g. a constant phase for an SMD); choose another statistic or a "
                        "larger min_phase_length")

    # 4. p-value
    p, min_p = p_value(dist, observed, spec.alternative,
                       includes_observed=bool(exhaustive and observed_ok),
                       exclude_equal=exclude_equal)
    if exclude_equal:
        notes.append("exclude_equal=True: assignments as extreme as the observed one are not "
                     "counted; the p-value is not a valid randomization p-value")
    alpha = 1 - confidence
    if min_p > alpha + 1e-12:
        msg = (f"the smallest attainable p-value is {min_p:.4g} > alpha = {alpha:.4g}: this "
               f"design ({n_assign} permissible assignments) cannot reach significance")
        notes.append(msg)
        warnings.warn(msg, stacklevel=3)

    return RandomizationResult(
        statistic=spec.statistic, observed=observed, p_value=float(p), n_assignments=int(n_assign),
        n_used=len(dist), exact=bool(exhaustive), min_p=float(min_p), null_distribution=dist,
        design=design, scheme=scheme if design == "MB" else "single",
        improvement=spec.improvement, tail=spec.tail, alternative=alternative,
        aggregate=spec.aggregate, seed=seed, confidence=confidence,
        per_case=pd.DataFrame([c.row for c in cases]), warnings=tuple(notes),
        design_checks=_wwc_checks(data, case, phase, session, design),
    )


def _wwc_checks(data, case, phase, session, design) -> pd.DataFrame:
    """WWC design checks of the tested data (empty if the design cannot be rated)."""
    try:
        return design_check(data, case=case, phase=phase, session=session, design=design)
    except DataError:
        return pd.DataFrame()


# --------------------------------------------------------------------------
# planning: random start points
# --------------------------------------------------------------------------


@renamed_keywords("random_start_points", {"seed": "rng"})
def random_start_points(
    n_cases: int,
    series_length: int | Sequence[int],
    min_phase_length: int | tuple[int, int] = 3,
    rng: np.random.Generator | int | None = None,
    *,
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
    rng : int, numpy.random.Generator or None
        Source of randomness; pass an int seed for a reproducible, recorded draw.
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
    gen, seed_used = as_generator(rng)
    lengths = ([int(series_length)] * n_cases if np.ndim(series_length) == 0
               else [int(v) for v in series_length])
    if len(lengths) != n_cases:
        raise SpecError("series_length must be one int or one per case")
    labels = list(case_labels) if case_labels is not None else list(range(1, n_cases + 1))
    if len(labels) != n_cases:
        raise SpecError("case_labels must have n_cases labels")
    mA, mB = min_lengths(min_phase_length)
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
        windows = staggered_windows(mA, n - mB, n_cases)  # 0-based positions
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
