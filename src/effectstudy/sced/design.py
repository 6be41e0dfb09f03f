"""Single-case design checks (WWC pilot standards) and shared series helpers.

:func:`design_check` rates a single-case design against the design standards of
the What Works Clearinghouse pilot SCD standards (Kratochwill et al., 2010,
2013): enough attempts to demonstrate an effect (at least four phases in a
reversal/withdrawal design, at least three staggered baselines in a multiple
baseline design, at least five repetitions in an alternating-treatments design)
and enough data points per phase (five: *Meets Standards*; three or four:
*Meets Standards with Reservations*; fewer: *Does Not Meet Standards*).

The private helpers here (``_case_series`` and friends) validate and split
long-format SCED data; the other modules of :mod:`effectstudy.sced` that this
file's author wrote use them so that all raise the same
:class:`~effectstudy.errors.DataError` messages naming the case.

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

from dataclasses import dataclass

import numpy as np
import pandas as pd

from effectstudy.errors import DataError, SpecError

MEETS = "Meets Standards"
RESERVATIONS = "Meets Standards with Reservations"
DOES_NOT_MEET = "Does Not Meet Standards"
NOT_ASSESSED = "not assessed"
_RANK = {MEETS: 2, RESERVATIONS: 1, DOES_NOT_MEET: 0}


# --------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Series:
    """One case's series, sorted by session, validated."""

    case: object
    session: np.ndarray
    phase: np.ndarray  # object array of labels
    outcome: np.ndarray | None

    @property
    def runs(self) -> list[tuple[object, int, int]]:
        """Phase runs as ``(label, first_index, length)`` in session order."""
        return _runs(self.phase)

    @property
    def label(self) -> str:
        return _case_label(self.case)


def _case_label(case: object) -> str:
    return "the series" if case is None else f"case {case!r}"


def _runs(phase: np.ndarray) -> list[tuple[object, int, int]]:
    out: list[tuple[object, int, int]] = []
    for i, p in enumerate(phase):
        if out and out[-1][0] == p:
            lab, start, n = out[-1]
            out[-1] = (lab, start, n + 1)
        else:
            out.append((p, i, 1))
    return out


def _require_columns(data: pd.DataFrame, columns: dict[str, str | None]) -> None:
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
    for role, col in columns.items():
        if col is not None and col not in data.columns:
            raise DataError(f"{role} column not found in the data", column=col)


def _case_series(
    data: pd.DataFrame,
    *,
    case: str | None,
    phase: str,
    session: str,
    outcome: str | None,
    require_outcome: bool = True,
) -> list[_Series]:
    """Split long data into validated per-case series sorted by session.

    Raises :class:`DataError` naming the case for missing sessions or phases,
    duplicated sessions and (when ``require_outcome``) missing outcome values.
    """
    _require_columns(data, {"case": case, "phase": phase, "session": session, "outcome": outcome})
    if len(data) == 0:
        raise DataError("the data have no rows")
    if case is not None and data[case].isna().any():
        raise DataError("missing case labels", column=case)
    groups = [(None, data)] if case is None else list(data.groupby(case, sort=False))
    out = []
    for key, df in groups:
        label = _case_label(key)
        ses = pd.to_numeric(df[session], errors="coerce")
        if ses.isna().any():
            raise DataError(f"{label}: missing or non-numeric session values", column=session)
        if df[phase].isna().any():
            raise DataError(f"{label}: missing phase labels", column=phase)
        order = np.argsort(ses.to_numpy(dtype=float), kind="stable")
        s = ses.to_numpy(dtype=float)[order]
        if np.any(np.diff(s) == 0):
            dup = s[1:][np.diff(s) == 0]
            raise DataError(f"{label}: duplicated sessions {sorted(set(dup.tolist()))}",
                            column=session)
        ph = df[phase].to_numpy(dtype=object)[order]
        y = None
        if outcome is not None:
            y = pd.to_numeric(df[outcome], errors="coerce").to_numpy(dtype=float)[order]
            if require_outcome and np.isnan(y).any():
                bad = s[np.isnan(y)]
                raise DataError(
                    f"{label}: missing or non-numeric outcome at sessions "
                    f"{[float(v) if v % 1 else int(v) for v in bad[:10]]}; drop or impute "
                    "these observations first",
                    column=outcome,
                )
        out.append(_Series(case=key, session=s, phase=ph, outcome=y))
    return out


def _check_contiguous(series: _Series) -> None:
    """Each phase label must form one run (repeated phases need distinct labels)."""
    seen: dict[object, int] = {}
    for lab, _, _ in series.runs:
        seen[lab] = seen.get(lab, 0) + 1
    rep = [lab for lab, k in seen.items() if k > 1]
    if rep:
        raise DataError(
            f"{series.label}: phase {rep[0]!r} occurs in more than one run (phases out of order "
            "or repeated); label repeated phases distinctly, e.g. A1, B1, A2, B2"
        )


def _check_order(series: _Series, expected: tuple | list) -> None:
    """The sequence of phase runs must equal ``expected``."""
    got = [lab for lab, _, _ in series.runs]
    if list(got) != list(expected):
        raise DataError(
            f"{series.label}: phases out of order: found the sequence "
            f"{'-'.join(map(str, got))}, expected {'-'.join(map(str, expected))}"
        )


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
    case: str | None = None,
    phase: str = "phase",
    session: str = "session",
    design: str | None = None,
    outcome: str | None = None,
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
    case, phase, session : str
        Column names (``case`` may be ``None`` for a single series).
    design : {"AB", "ABAB", "MB", "ATD"}, optional
        Design; if ``None`` it is guessed: several cases -> ``"MB"``, one case
        with four or more phases -> ``"ABAB"``, otherwise ``"AB"``.
    outcome : str, optional
        If given, rows with a missing outcome are not counted as data points.

    Returns
    -------
    DataFrame
        One row per check with columns ``case``, ``phase``, ``check``,
        ``value``, ``meets``, ``reservations`` (thresholds), ``rating``. The
        last row (``check == "overall"``, ``case == "ALL"``) holds the overall
        rating; it is also in ``frame.attrs["rating"]``.
    """
    if outcome is not None:
        _require_columns(data, {"outcome": outcome})
        data = data[data[outcome].notna()]
    series = _case_series(data, case=case, phase=phase, session=session, outcome=None,
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
