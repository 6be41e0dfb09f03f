"""The one series parser of :mod:`effectstudy.sced`.

Every single-case function takes long data (one row per measurement occasion)
and column names; :func:`case_series` validates them and splits the data into
one :class:`CaseSeries` per case, sorted by session, so that all functions raise
the same :class:`~effectstudy.errors.DataError` messages. Messages name the case
label as given (expected to be a pseudonym), the column and the sessions; they
never contain outcome values or free text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from effectstudy.errors import DataError

__all__ = [
    "CaseSeries", "case_label", "case_series", "check_contiguous", "check_order",
    "phase_labels", "phase_runs", "require_columns",
]


@dataclass(frozen=True)
class CaseSeries:
    """One case's series, sorted by session and validated.

    Attributes
    ----------
    case : object
        Case label (``None`` for a single series without a case column).
    session : ndarray of float
        Session numbers, strictly increasing.
    phase : ndarray of object
        Phase label per session.
    outcome : ndarray of float or None
        Outcome per session (NaN where missing, if allowed).
    """

    case: object
    session: np.ndarray
    phase: np.ndarray
    outcome: np.ndarray | None

    @property
    def runs(self) -> list[tuple[object, int, int]]:
        """Phase runs as ``(label, first_index, length)`` in session order."""
        return phase_runs(self.phase)

    @property
    def label(self) -> str:
        """``"case 'X'"`` or ``"the series"``, for messages."""
        return case_label(self.case)


def case_label(case: object) -> str:
    """How a case is named in messages."""
    return "the series" if case is None else f"case {case!r}"


def phase_runs(phase: np.ndarray) -> list[tuple[object, int, int]]:
    """Consecutive runs of equal phase labels as ``(label, first_index, length)``."""
    out: list[tuple[object, int, int]] = []
    for i, p in enumerate(phase):
        if out and out[-1][0] == p:
            lab, start, n = out[-1]
            out[-1] = (lab, start, n + 1)
        else:
            out.append((p, i, 1))
    return out


def require_columns(data: pd.DataFrame, columns: dict[str, str | None]) -> None:
    """Raise :class:`DataError` unless ``data`` is a DataFrame holding every named column."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(data).__name__}")
    for role, col in columns.items():
        if col is not None and col not in data.columns:
            raise DataError(f"{role} column not found in the data", column=col)


def case_series(
    data: pd.DataFrame,
    *,
    case: str | None,
    phase: str,
    session: str,
    outcome: str | None,
    require_outcome: bool = True,
    phases: Sequence | None = None,
) -> list[CaseSeries]:
    """Split long data into validated per-case series sorted by session.

    ``phases``: keep only rows in these phases (every case is still returned,
    possibly with an empty series). Raises :class:`DataError` naming the case
    for missing sessions or phases, duplicated sessions and (when
    ``require_outcome``) missing outcome values.
    """
    require_columns(data, {"case": case, "phase": phase, "session": session, "outcome": outcome})
    if len(data) == 0:
        raise DataError("the data have no rows")
    if case is not None and data[case].isna().any():
        raise DataError("missing case labels", column=case)
    groups = [(None, data)] if case is None else list(data.groupby(case, sort=False))
    out = []
    for key, df in groups:
        if isinstance(key, np.generic):
            key = key.item()
        label = case_label(key)
        if phases is not None:
            df = df[df[phase].isin(list(phases))]
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
        out.append(CaseSeries(case=key, session=s, phase=ph, outcome=y))
    return out


def check_contiguous(series: CaseSeries) -> None:
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


def check_order(series: CaseSeries, expected: Sequence) -> None:
    """The sequence of phase runs must equal ``expected``."""
    got = [lab for lab, _, _ in series.runs]
    if list(got) != list(expected):
        raise DataError(
            f"{series.label}: phases out of order: found the sequence "
            f"{'-'.join(map(str, got))}, expected {'-'.join(map(str, expected))}"
        )


def phase_labels(series: Sequence[CaseSeries]) -> list:
    """Phase labels in order of first appearance over all series."""
    out: list = []
    for s in series:
        for lab, _, _ in s.runs:
            if lab not in out:
                out.append(lab)
    return out
