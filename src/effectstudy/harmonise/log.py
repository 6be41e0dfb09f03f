"""The rejection log: every score record that does not reach the table, and why.

One log entry per problem. ``scores`` says how many score records (the accounting
unit, see :mod:`effectstudy.harmonise.mapping`) the entry removes from the table:

* a bad score cell (non-numeric, out of range, duplicate) removes 1;
* a bad row-level cell (missing client id, unknown occasion/phase/instrument label,
  unparseable measurement date) removes all score records that depended on it;
* a bad row of a delivery log or of fidelity ratings (kinds :data:`INTEGRITY_KINDS`,
  or a shared kind such as ``non_numeric``) removes 0: those exports hold no score
  records; they are accounted in log rows (:mod:`effectstudy.harmonise.integrity`);
* notes (undeclared columns dropped, an inconsistent client-level value, an
  unparseable birth date, a deviating fidelity, and entries of kind ``note``: a hint
  such as "these cells look like decimal commas", a measurement whose week in care
  cannot be computed, title rows above the header, sheets not read) remove 0.

So, per file, ``rows in = rows in the table + sum(scores)`` exactly.

Privacy: ``value`` is a **whitelist by declared type**, never a redaction list.
The caller says what the cell is (``shape``) and the log fills ``value`` only when
that declared type is safe *and* the text has that type's shape:

``"number"``
    a score or another numeric field: ASCII digits with an optional sign and one
    decimal mark, at most 6 digits in all (``99``, ``-3``, ``9,7``); so a BSN or a
    phone number in a score cell never passes, in whatever way it is written;
``"date"``
    a date of measurement: ``yyyy-mm-dd`` or ``dd-mm-yyyy`` with ``-``, ``/`` or ``.``
    and nothing else (no words, so ``7 nov 2009`` never passes);
``"label"``
    a label from a closed list given with ``allowed`` (dictionary text); an unknown
    label is never echoed, the reason lists the declared labels instead.

Every other value (free text, undeclared columns, identifiers, unknown labels, cells
of any other type) is dropped and the reason ends with ``(value not shown)``. As a
second line of defence a value equal to, or containing, an identifier value seen in
the run (:meth:`RejectionLog.protect`) is dropped as well; this is checked when the
log is turned into a table, after every file has been read.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
import re
from collections.abc import Collection
from dataclasses import dataclass, field

import pandas as pd

LOG_COLUMNS = ("programme", "file", "row", "column", "kind", "reason", "value", "scores")

KINDS = (
    "missing_client_id",
    "unknown_occasion",
    "unknown_phase",
    "unknown_instrument",
    "unknown_label",
    "unparseable_date",
    "non_numeric",
    "out_of_range",
    "missing_score",
    "duplicate",
    "inconsistent_client",
    "inconsistent_fidelity",
    "undeclared_columns",
    "unknown_intervention",
    "implausible_value",
    "invalid_client_id",
    "unreadable_cell",
    "note",
)

#: Kinds of entries that each remove exactly one *event* (not a score record, so their
#: ``scores`` is 0): per file ``events in = events in the table + entries of these kinds``
#: (see :mod:`effectstudy.harmonise.events`).
EVENT_KINDS = (
    "event_unparseable_date",
    "event_missing_start",
    "event_return_before_start",
    "event_zero_duration",
    "event_after_end_of_care",
    "event_overlap",
    "event_duplicate",
    "event_unattributed",
    "event_unknown_type",
)
KINDS = KINDS + EVENT_KINDS

#: Kinds of entries that each remove one *row* of a delivery log or of fidelity ratings
#: (``scores`` 0; see :mod:`effectstudy.harmonise.integrity`): checks that exist only
#: for these exports. Their rows can also be rejected under the shared kinds
#: ``missing_client_id``, ``unknown_phase``, ``non_numeric`` and ``duplicate``, which
#: mean there what they mean for the score exports.
INTEGRITY_KINDS = (
    "integrity_unknown_programme",  # programme not in the dictionary / no fidelity instrument
    "component_not_in_programme",   # delivery: component not listed for the programme
    "delivery_out_of_range",        # delivery: negative minutes, delivered not 0/1, week < 1
    "delivery_outside_care",        # delivery: week after the client's time in care
    "item_not_on_checklist",        # ratings: item not on the programme's checklist
    "rating_missing_id",            # ratings: no target or no rater
    "rating_out_of_range",          # ratings: score outside the instrument's scoring range
    "unknown_rater_role",           # ratings: rater role not one of the closed list
    "wrong_fidelity_instrument",    # ratings: instrument is not the programme's
)
KINDS = KINDS + INTEGRITY_KINDS

SHAPES = ("number", "date", "label")
NOT_SHOWN = "value not shown"

_NUMBER_SHAPE = re.compile(r"[+-]?[0-9]+(?:[.,][0-9]+)?", re.ASCII)
_DATE_SHAPE = re.compile(r"[0-9]{4}([-/.])[0-9]{1,2}\1[0-9]{1,2}|[0-9]{1,2}([-/.])[0-9]{1,2}\2"
                         r"(?:[0-9]{2}|[0-9]{4})", re.ASCII)
_MAX_DIGITS = 6


def _number_text(value: object) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return None
        return str(int(x)) if x.is_integer() else repr(x)
    if isinstance(value, str):
        return value.strip()
    return None


def shown_value(value: object, shape: str | None, allowed: Collection[str] = ()) -> str | None:
    """The text of ``value`` if its declared ``shape`` allows showing it, else None."""
    if value is None or shape is None:
        return None
    if shape == "number":
        text = _number_text(value)
        if text is None or not _NUMBER_SHAPE.fullmatch(text):
            return None
        if sum(ch.isdigit() for ch in text) > _MAX_DIGITS:
            return None
        return text
    if shape == "date":
        if isinstance(value, dt.datetime | dt.date):  # also pandas.Timestamp
            return value.strftime("%Y-%m-%d")
        if not isinstance(value, str):
            return None
        text = value.strip()
        return text if _DATE_SHAPE.fullmatch(text) else None
    if shape == "label":
        text = _number_text(value) if isinstance(value, numbers.Real) else (
            value.strip() if isinstance(value, str) else None)
        if text is None:
            return None
        parts = text.split(";")
        return text if parts and all(p in allowed for p in parts) else None
    raise ValueError(f"unknown value shape {shape!r}")  # pragma: no cover


@dataclass
class RejectionLog:
    """Collects rejections; :meth:`frame` gives the tidy table."""

    entries: list[dict] = field(default_factory=list)
    _secrets: set[str] = field(default_factory=set, repr=False)

    def protect(self, values: object) -> None:
        """Remember identifier values (in memory only): a second line of defence.

        A logged value equal to one, or containing one of 4 or more characters, is
        not shown even when its shape would allow it.
        """
        for v in values if isinstance(values, list | tuple | set) else [values]:
            if v is None:
                continue
            if isinstance(v, dt.datetime | dt.date):  # a birth date read as a date
                for fmt in ("%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y"):
                    self._secrets.add(v.strftime(fmt))
                continue
            text = str(v).strip().lower()
            if text and text != "nan":
                self._secrets.add(text)

    def _leaks(self, text: str) -> bool:
        low = text.lower()
        return any(low == s or (len(s) >= 4 and s in low) for s in self._secrets)

    def add(
        self,
        *,
        programme: str,
        file: str,
        row: int | None,
        column: str | None,
        kind: str,
        reason: str,
        value: object = None,
        scores: int = 0,
        shape: str | None = None,
        allowed: Collection[str] = (),
    ) -> None:
        """Log one rejection.

        ``value`` is the offending cell and ``shape`` its declared type (``"number"``,
        ``"date"``, ``"label"`` with the closed list ``allowed``, or None); the value
        is shown only as described in the module docstring. ``column`` and
        ``reason`` must never hold text from the file other than declared column
        names (undeclared columns are named by position).
        """
        if kind not in KINDS:  # pragma: no cover - programming error
            raise ValueError(f"unknown rejection kind {kind!r}")
        if shape is not None and shape not in SHAPES:  # pragma: no cover
            raise ValueError(f"unknown value shape {shape!r}")
        present = value is not None and not (isinstance(value, str) and not value.strip())
        try:
            if present and bool(pd.isna(value)):
                present = False
        except (TypeError, ValueError):
            pass
        self.entries.append(
            {
                "programme": programme,
                "file": file,
                "row": row,
                "column": column,
                "kind": kind,
                "reason": reason,
                "value": shown_value(value, shape, allowed) if present else None,
                "hidden": present,
                "scores": int(scores),
            }
        )

    def frame(self) -> pd.DataFrame:
        """The log as a DataFrame with :data:`LOG_COLUMNS`, in input order."""
        entries = []
        for e in self.entries:
            value = e["value"]
            if value is not None and self._leaks(value):
                value = None
            reason = e["reason"]
            if e["hidden"] and value is None and NOT_SHOWN not in reason:
                reason = f"{reason} ({NOT_SHOWN})"
            entries.append({k: e[k] for k in LOG_COLUMNS} | {"value": value, "reason": reason})
        df = pd.DataFrame(entries, columns=list(LOG_COLUMNS))
        df["row"] = pd.array(df["row"].tolist(), dtype="Int64")
        df["scores"] = df["scores"].astype("int64")
        for col in ("programme", "file", "column", "kind", "reason", "value"):
            df[col] = df[col].astype("str").where(df[col].notna(), None)
        return df
