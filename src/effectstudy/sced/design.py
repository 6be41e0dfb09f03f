"""Single-case design checks (WWC pilot standards).

:func:`design_check` rates a single-case design against the design standards of
the What Works Clearinghouse pilot SCD standards (Kratochwill et al., 2010,
2013): enough attempts to demonstrate an effect (at least four phases in a
reversal/withdrawal design, at least three staggered baselines in a multiple
baseline design, at least five repetitions in an alternating-treatments design)
and enough data points per phase (five: *Meets Standards*; three or four:
*Meets Standards with Reservations*; fewer: *Does Not Meet Standards*).

The data are split and validated by :func:`effectstudy.sced._series.case_series`,
the one series parser of :mod:`effectstudy.sced`.

References
----------
Kratochwill, T. R., Hitchcock, J., Horner, R. H., Levin, J. R., Odom, S. L.,
Rindskopf, D. M., & Shadish, W. R. (2010). *Single-case designs technical
documentation*. What Works Clearinghouse.

Kratochwill, T. R., Hitchcock, J. H., Horner, R. H., Levin, J. R., Odom, S. L.,
Rindskopf, D. M., & Shadish, W. R. (2013). Single-case intervention research
design standards. *Remedial and Special Education, 34*(1), 26-38.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from effectstudy.errors import SpecError
from effectstudy.sced._compat import REQUIRED, columns
from effectstudy.sced._series import case_series, require_columns

MEETS = "Meets Standards"
RESERVATIONS = "Meets Standards with Reservations"
DOES_NOT_MEET = "Does Not Meet Standards"
NOT_ASSESSED = "not assessed"
_RANK = {MEETS: 2, RESERVATIONS: 1, DOES_NOT_MEET: 0}


# --------------------------------------------------------------------------
# design check
# --------------------------------------------------------------------------

_DESIGNS = {
    "AB": "AB",
    "ABAB": "reversal",
    "reversal": "reversal",
    "withdrawal": "reversal",
    "MB": "multiple_baseline",
    "multiple_baseline": "multiple_baseline",
    "ATD": "alternating",
    "alternating": "alternating",
}


def _points_rating(n: int, meets: int = 5, reservations: int = 3) -> str:
    if n >= meets:
        return MEETS
    if n >= reservations:
        return RESERVATIONS
    return DOES_NOT_MEET


def design_check(
    data: pd.DataFrame,
    *,
    outcome: str | None = None,
    session: str = REQUIRED,
    phase: str = REQUIRED,
    case: str | None = None,
    design: str | None = None,
) -> pd.DataFrame:
    """Rate a single-case design against the WWC pilot design standards.

    Checks only what the data can show: the number of attempts to demonstrate
    an effect (standard 3) and the number of data points per phase
    (standard 4) of Kratochwill et al. (2010, 2013). Systematic manipulation of
    the intervention and inter-assessor agreement (standards 1 and 2) are not
    in the data and are reported as ``"not assessed"``.

    Rules
    -----
    * **reversal / withdrawal** (``"ABAB"``): each case needs at least four
      alternating phases (A-B-A-B); fewer phases: *Does Not Meet Standards*.
    * **multiple baseline** (``"MB"``): at least three tiers (cases, settings
      or behaviours), each an A-B series, with the intervention introduced at
      three different (staggered) sessions.
    * **alternating treatments** (``"ATD"``): at least five repetitions of each
      condition (four: with reservations).
    * **points per phase**: at least five in every phase meets the standard,
      three or four meets it with reservations, fewer does not meet.
    * **AB**: a single AB series gives one demonstration and never meets.

    The overall rating is the lowest rating of all checks.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per measurement occasion.
    outcome : str, optional
        If given, rows with a missing outcome are not counted as data points.
    session, phase : str
        Column names (give them explicitly; the old defaults ``"session"`` and
        ``"phase"`` still work for one release with a warning).
    case : str, optional
        Case column (``None`` for a single series). Any phase labels are rated,
        so there are no ``baseline_phase`` / ``treatment_phase`` arguments.
    design : {"AB", "ABAB", "MB", "ATD"}, optional
        Design; if ``None`` it is guessed: several cases -> ``"MB"``, one case
        with four or more phases -> ``"ABAB"``, otherwise ``"AB"``.

    Returns
    -------
    DataFrame
        One row per check with columns ``case``, ``phase``, ``check``,
        ``value``, ``meets``, ``reservations`` (thresholds), ``rating``. The
        last row (``check == "overall"``, ``case == "ALL"``) holds the overall
        rating; it is also in ``frame.attrs["rating"]``.
    """
    session, phase = columns("design_check", session=session, phase=phase)
    if outcome is not None:
        require_columns(data, {"outcome": outcome})
        data = data[data[outcome].notna()]
    series = case_series(data, case=case, phase=phase, session=session, outcome=None,
                          require_outcome=False)
    if design is None:
        if len(series) > 1:
            design = "MB"
        elif len(series[0].runs) >= 4:
            design = "ABAB"
        else:
            design = "AB"
    if design not in _DESIGNS:
        raise SpecError(f"unknown design {design!r}; use one of {sorted(_DESIGNS)}")
    kind = _DESIGNS[design]

    rows: list[dict] = []

    def add(case_, phase_, check, value, meets, reservations, rating):
        rows.append(dict(case=case_, phase=phase_, check=check, value=value, meets=meets,
                         reservations=reservations, rating=rating))

    for s in series:
        lab = "ALL" if s.case is None else s.case
        runs = s.runs
        if kind == "alternating":
            labels, counts = np.unique(s.phase.astype(str), return_counts=True)
            for ph, k in zip(labels, counts, strict=True):
                add(lab, ph, "repetitions_of_condition", int(k), 5, 4, _points_rating(k, 5, 4))
            longest = max(n for _, _, n in runs)
            add(lab, None, "max_consecutive_points_per_condition", longest, 2, 2,
                MEETS if longest <= 2 else DOES_NOT_MEET)
            continue
        for ph, _, n in runs:
            add(lab, ph, "points_in_phase", int(n), 5, 3, _points_rating(n))
        n_phases = len(runs)
        if kind == "reversal":
            labels = [r[0] for r in runs]
            alternating = all(labels[i] != labels[i + 1] for i in range(len(labels) - 1))
            rating = MEETS if n_phases >= 4 and alternating else DOES_NOT_MEET
            add(lab, None, "number_of_phases", n_phases, 4, 4, rating)
        elif kind in ("multiple_baseline", "AB"):
            rating = MEETS if n_phases >= 2 else DOES_NOT_MEET
            add(lab, None, "number_of_phases", n_phases, 2, 2, rating)

    if kind == "multiple_baseline":
        n_tiers = len(series)
        add("ALL", None, "number_of_baselines", n_tiers, 3, 3,
            MEETS if n_tiers >= 3 else DOES_NOT_MEET)
        starts = [s.session[s.runs[1][1]] for s in series if len(s.runs) >= 2]
        n_distinct = len(set(starts))
        add("ALL", None, "staggered_intervention_starts", n_distinct, 3, 3,
            MEETS if n_distinct >= 3 else DOES_NOT_MEET)
    elif kind == "AB":
        add("ALL", None, "demonstrations_of_effect", len(series), 3, 3, DOES_NOT_MEET)
    add("ALL", None, "systematic_manipulation_and_ioa", None, None, None, NOT_ASSESSED)

    frame = pd.DataFrame(rows, columns=["case", "phase", "check", "value", "meets",
                                        "reservations", "rating"])
    rated = [r for r in frame["rating"] if r in _RANK]
    overall = min(rated, key=_RANK.__getitem__) if rated else DOES_NOT_MEET
    frame.loc[len(frame)] = ["ALL", None, "overall", None, None, None, overall]
    frame.attrs["rating"] = overall
    frame.attrs["design"] = kind
    return frame


__all__ = ["DOES_NOT_MEET", "MEETS", "RESERVATIONS", "design_check"]
