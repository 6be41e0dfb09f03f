"""The rejection log: every score record that does not reach the table, and why.

One log entry per problem. ``scores`` says how many score records (the accounting
unit, see :mod:`effectstudy.harmonise.mapping`) the entry removes from the table:

* a bad score cell (non-numeric, out of range, duplicate) removes 1;
* a bad row-level cell (missing client id, unknown occasion/phase/instrument label,
  unparseable measurement date) removes all score records that depended on it;
* notes (undeclared columns dropped, an inconsistent client-level value, an
  unparseable birth date, a deviating fidelity) remove 0.

So, per file, ``rows in = rows in the table + sum(scores)`` exactly.

Privacy: ``value`` is filled only for score cells and label cells, never for
identifier columns or dates of birth, and is redacted if it equals an identifier
value seen in the same run, contains one (case-insensitive), or contains a word of
three or more letters of one (a first name alone, a name inside a note). Values are
redacted when the log is turned into a table, after every file has been read, so an
identifier first seen in a later file is still caught.
"""

from __future__ import annotations

import re
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
)

# 8-9 digit runs look like a BSN; dates look like dates of birth: never echo them.
_BSN_LIKE = re.compile(r"\d{8,9}")
_DATE_LIKE = re.compile(r"\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}")
_WORDS = re.compile(r"[^\W\d_]+")
REDACTED = "<redacted>"


@dataclass
class RejectionLog:
    """Collects rejections; :meth:`frame` gives the tidy table."""

    entries: list[dict] = field(default_factory=list)
    _secrets: set[str] = field(default_factory=set, repr=False)
    _tokens: set[str] = field(default_factory=set, repr=False)

    def protect(self, values: object) -> None:
        """Remember identifier values (in memory only) so they are never echoed."""
        for v in values if isinstance(values, list | tuple | set) else [values]:
            if v is None:
                continue
            text = str(v).strip()
            if text and text.lower() != "nan":
                self._secrets.add(text.lower())
                self._tokens.update(t for t in _WORDS.findall(text.lower()) if len(t) >= 3)

    def _safe_value(self, value: object) -> str | None:
        if value is None:
            return None
        try:
            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        text = str(value).strip()
        low = text.lower()
        if (_BSN_LIKE.search(text) or _DATE_LIKE.search(text)
                or any(secret in low for secret in self._secrets)
                or any(word in self._tokens for word in _WORDS.findall(low))):
            return REDACTED
        if len(text) > 60:
            text = text[:57] + "..."
        return text

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
    ) -> None:
        """Log one rejection (``value`` only for score or label cells)."""
        if kind not in KINDS:  # pragma: no cover - programming error
            raise ValueError(f"unknown rejection kind {kind!r}")
        self.entries.append(
            {
                "programme": programme,
                "file": file,
                "row": row,
                "column": column,
                "kind": kind,
                "reason": reason,
                "value": value,
                "scores": int(scores),
            }
        )

    def frame(self) -> pd.DataFrame:
        """The log as a DataFrame with :data:`LOG_COLUMNS`, in input order."""
        entries = [dict(e, value=self._safe_value(e["value"])) for e in self.entries]
        df = pd.DataFrame(entries, columns=list(LOG_COLUMNS))
        df["row"] = pd.array(df["row"].tolist(), dtype="Int64")
        df["scores"] = df["scores"].astype("int64")
        for col in ("programme", "file", "column", "kind", "reason", "value"):
            df[col] = df[col].astype("str").where(df[col].notna(), None)
        return df
