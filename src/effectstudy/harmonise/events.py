"""Events in the data: absconding episodes, safety reports, transfer and end of care.

A source file may declare an ``events:`` block (see :mod:`effectstudy.dictionary`,
``events.yaml`` and ``docs/dictionary.md``). The harmoniser carries the events it finds
into the ``events`` table of :class:`~effectstudy.harmonise.Harmonised`, one row per event
(:data:`EVENT_COLUMNS`): programme, client (pseudonym), type, start (week since the
intake measurement, and date), end (week and date; missing = ongoing or censored; only
episode types such as absconding have one), end reason (``end_of_care`` only) and the
source file, row and column.

Accounting unit: the **event record**. In ``columns`` form every non-empty start (or
end) cell of a declared event column of a row is one record; in row layouts the event
columns are client-level, repeated on every row of the client like client fields, so a
repeat identical to one already read for that client in the file is the same record and
is not counted again. In ``rows`` form every row with a non-empty type or start cell is
one record. Per file ``events_in = events_out + events_rejected`` exactly, where the
rejected ones are the log entries of kinds :data:`~effectstudy.harmonise.log.EVENT_KINDS`
(each removes one event and no score, so ``scores`` is 0).

Rejected, each with file, row, column and reason (a date is shown only when it has the
shape of a date; nothing else of the cell): an unparseable date, an end without a start,
a return before the start, a zero duration (return on the day of leaving), an event after
the end of care, an episode that overlaps an earlier episode of the same client, the
same event twice, an event on a row whose client cannot be attributed, an event text
that ``rows: labels:`` does not declare.

Events dated before the intake are kept with a negative week: they are the client's
history (e.g. absconding before admission, the ``prior_absconding`` covariate of
:func:`time_to_first_absconding`). Declared event columns that an export does not have
give no events (an export without the columns has none to report).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from effectstudy.dictionary import (
    ABSCONDING,
    END_OF_CARE,
    END_REASONS,
    EVENT_NUMBER,
    Dictionary,
    EventColumns,
    SourceFile,
)
from effectstudy.errors import HarmoniseError
from effectstudy.harmonise.log import EVENT_KINDS, RejectionLog

if TYPE_CHECKING:  # pragma: no cover
    from effectstudy.harmonise.core import Harmonised

#: Columns of the events table (:attr:`Harmonised.events`).
EVENT_COLUMNS = ("programme", "client", "type", "start_week", "start_date", "end_week",
                 "end_date", "reason", "source_file", "source_row", "source_column")


@dataclass(frozen=True)
class EventSlot:
    """One concrete set of event columns of an export (template filled with its number)."""

    spec: EventColumns
    number: int | None
    start: str
    end: str | None
    reason: str | None


def _slot_regex(template: str) -> re.Pattern:
    head, _, tail = template.partition(EVENT_NUMBER)
    return re.compile("^" + re.escape(head) + "([0-9]{1,3})" + re.escape(tail) + "$")


def event_slots(sf: SourceFile, columns: list[str]) -> list[EventSlot]:
    """The event columns of ``sf`` present among an export's headers, in template order.

    A numbered template (``weglopen_start_{n}``) matches ``weglopen_start_1``,
    ``weglopen_start_2``, ...; its ``end``/``reason`` columns are those with the same
    number (they may be absent: a missing end column means no return recorded).
    """
    if sf.events is None:
        return []
    present = set(columns)
    out: list[EventSlot] = []
    for spec in sf.events.columns:
        if EVENT_NUMBER not in spec.start:
            if spec.start in present:
                out.append(EventSlot(spec, None, spec.start,
                                     spec.end if spec.end in present else None,
                                     spec.reason if spec.reason in present else None))
            continue
        rx = _slot_regex(spec.start)
        numbers = sorted({int(m.group(1)) for c in columns if (m := rx.match(c))})
        for k in numbers:
            start, end, reason = (None if t is None else t.replace(EVENT_NUMBER, str(k))
                                  for t in (spec.start, spec.end, spec.reason))
            out.append(EventSlot(spec, k, start, end if end in present else None,
                                 reason if reason in present else None))
    return out


def event_column_names(sf: SourceFile, columns: list[str]) -> list[str]:
    """Every export header that the ``events:`` block declares (to keep, never log)."""
    names: list[str] = []
    for s in event_slots(sf, columns):
        names += [c for c in (s.start, s.end, s.reason) if c]
    rows = sf.events.rows if sf.events is not None else None
    if rows is not None:
        names += [c for c in (rows.type_column, rows.start_column, rows.end_column,
                              rows.reason_column) if c and c in columns]
    return list(dict.fromkeys(names))


# --------------------------------------------------------------------------- #
# Reading one row (called by the mapping engine)
# --------------------------------------------------------------------------- #
class RowEvents:
    """Reads the events of one export, row by row, for the mapping engine."""

    def __init__(self, mapper: Any, columns: list[str]) -> None:
        self.m = mapper
        self.sf: SourceFile = mapper.sf
        self.slots = event_slots(self.sf, columns)
        self.rows = self.sf.events.rows if self.sf.events is not None else None
        if self.rows is not None and self.rows.type_column not in columns:
            self.rows = None
        self.seen: set[tuple] = set()

    @property
    def active(self) -> bool:
        return bool(self.slots) or self.rows is not None

    def _date(self, value: Any) -> pd.Timestamp:
        from effectstudy.harmonise.mapping import parse_date
        return parse_date(value, self.sf.date_format, excel=self.sf.format == "excel")

    def _reject(self, n: int, column: str | None, kind: str, reason: str,
                value: Any = None) -> None:
        self.m.out.events_in += 1
        self.m.reject(n, column, kind, reason, value=value, scores=0,
                      shape="date" if value is not None else None)

    def read(self, rec: dict, n: int, client: str | None) -> None:
        """Turn the row's event cells into candidate events (or log entries)."""
        from effectstudy.harmonise.readers import is_empty
        cells: list[tuple[str, Any, str | None, Any, str | None, Any, str, str]] = []
        for s in self.slots:
            sv = rec.get(s.start)
            ev = rec.get(s.end) if s.end else None
            rv = rec.get(s.reason) if s.reason else None
            if is_empty(sv) and is_empty(ev):
                continue
            cells.append((s.spec.type, sv, s.end, ev, s.reason, rv, s.start,
                          f"{s.start}|{s.end}"))
        if self.rows is not None:
            rs = self.rows
            tv = rec.get(rs.type_column)
            sv = rec.get(rs.start_column)
            if not (is_empty(tv) and is_empty(sv)):
                from effectstudy.harmonise.mapping import label_text
                text = "" if is_empty(tv) else label_text(tv)
                tid = rs.labels.get(text, text if text in self.m.d.event_types else None)
                if tid is None:
                    self._reject(n, rs.type_column, "event_unknown_type",
                                 "event type is not declared (events.rows.labels; declared: "
                                 f"{', '.join(rs.labels)})")
                else:
                    ev = rec.get(rs.end_column) if rs.end_column else None
                    rv = rec.get(rs.reason_column) if rs.reason_column else None
                    cells.append((tid, sv, rs.end_column, ev, rs.reason_column, rv,
                                  rs.start_column, f"row {n}"))
        for tid, sv, ecol, ev, rcol, rv, scol, slot in cells:
            self._one(n, client, tid, sv, ecol, ev, rcol, rv, scol, slot)

    def _one(self, n: int, client: str | None, tid: str, sv: Any, ecol: str | None, ev: Any,
             rcol: str | None, rv: Any, scol: str, slot: str) -> None:
        from effectstudy.harmonise.readers import is_empty
        start = end = None
        s_ok = e_ok = True
        if not is_empty(sv):
            try:
                start = self._date(sv)
            except ValueError:
                s_ok = False
        if ecol and not is_empty(ev):
            try:
                end = self._date(ev)
            except ValueError:
                e_ok = False
        # a row-layout repeat of an event already read for this client is the same event
        key = (client, slot, str(start) if s_ok else repr(sv), str(end) if e_ok else repr(ev),
               None if is_empty(rv) else str(rv))
        if client is not None and key in self.seen:
            return
        self.seen.add(key)
        from effectstudy.harmonise.mapping import expected_date
        if client is None:
            self._reject(n, self.sf.client_id, "event_unattributed",
                         f"{tid} event on a row without a valid client id: it cannot be "
                         "attributed")
            return
        if not s_ok:
            self._reject(n, scol, "event_unparseable_date",
                         f"{tid} start date cannot be parsed: expected {expected_date(self.sf)}",
                         value=sv)
            return
        if not e_ok:
            self._reject(n, ecol, "event_unparseable_date",
                         f"{tid} end (return) date cannot be parsed: expected "
                         f"{expected_date(self.sf)}", value=ev)
            return
        if start is None:
            self._reject(n, ecol or scol, "event_missing_start",
                         f"{tid} has an end (return) date but no start date", value=ev)
            return
        if end is not None and end < start:
            self._reject(n, ecol, "event_return_before_start",
                         f"{tid} return date lies before its start date (column {scol})",
                         value=ev)
            return
        if end is not None and end == start:
            self._reject(n, ecol, "event_zero_duration",
                         f"{tid} has zero duration (return on the day it started): record "
                         "the episode's real return date", value=ev)
            return
        reason = None
        if tid == END_OF_CARE and rcol and not is_empty(rv):
            reason = self.m.map_label("end_reason", rv, set(END_REASONS))
            if reason is None:
                self.m.reject(n, rcol, "note", "end reason label of the end-of-care event is "
                              f"not declared (declared: "
                              f"{self.m.declared('end_reason', set(END_REASONS))}); reason "
                              "unknown", value=rv, scores=0, shape="label",
                              allowed=END_REASONS)
                reason = "unknown"
        self.m.out.events_in += 1
        self.m.out.events.append({
            "programme": self.sf.programme, "client": client, "type": tid,
            "start_date": start, "end_date": end, "reason": reason,
            "source_file": self.m.file, "source_row": n, "source_column": scol,
            "end_column": ecol,
        })


# --------------------------------------------------------------------------- #
# Client-level checks and the events table (called by harmonise())
# --------------------------------------------------------------------------- #
def _week(date: pd.Timestamp | None, intake: pd.Timestamp | None) -> float:
    if date is None or intake is None or pd.isna(date) or pd.isna(intake):
        return np.nan
    return (date - intake).days / 7.0


def build_events(d: Dictionary, candidates: list[dict], clients: Mapping[tuple[str, str], dict],
                 log: RejectionLog) -> pd.DataFrame:
    """Check the candidate events per client and build the events table.

    The end of care of a client is her first ``end_of_care`` event, else the intake date
    plus ``weeks_in_care``; events that start after it are rejected. Of two absconding
    episodes that overlap (the later one starts before the earlier one's return, or the
    earlier one has no return) the later one is rejected; the same event twice (type,
    start and end, e.g. in two files) keeps the first.
    """
    def reject(ev: dict, kind: str, reason: str, column: str | None = None,
               value: Any = None) -> None:
        log.add(programme=ev["programme"], file=ev["source_file"], row=ev["source_row"],
                column=column or ev["source_column"], kind=kind, reason=reason, value=value,
                scores=0, shape="date" if value is not None else None)

    by_client: dict[tuple[str, str], list[dict]] = {}
    for ev in candidates:
        by_client.setdefault((ev["programme"], ev["client"]), []).append(ev)
    rows = []
    for k in sorted(by_client):
        evs = sorted(by_client[k], key=lambda e: (e["start_date"], e["source_file"],
                                                   e["source_row"]))
        c = clients.get(k, {})
        intake = c.get("intake_date")
        ends = [e for e in evs if e["type"] == END_OF_CARE]
        end_of_care = ends[0]["start_date"] if ends else None
        # where the end of care comes from (no date in a reason: only the log's value shows one)
        end_from = (f"the end-of-care event of {ends[0]['source_file']} row "
                    f"{ends[0]['source_row']}" if ends else "intake + weeks in care")
        if end_of_care is None and intake is not None and c.get("weeks_in_care") is not None:
            end_of_care = intake + pd.Timedelta(days=round(7 * float(c["weeks_in_care"])))
        seen: set[tuple] = set()
        last_episode: dict | None = None
        for ev in evs:
            sig = (ev["type"], ev["start_date"], ev["end_date"])
            if sig in seen:
                reject(ev, "event_duplicate", f"the same {ev['type']} event was read before "
                       "for this client; the first is kept", value=ev["start_date"])
                continue
            if ev["type"] == END_OF_CARE and ev is not ends[0]:
                reject(ev, "event_duplicate", "a second end of care for this client (the "
                       "earliest is kept)", value=ev["start_date"])
                continue
            if (end_of_care is not None and ev["type"] != END_OF_CARE
                    and ev["start_date"] > end_of_care):
                reject(ev, "event_after_end_of_care", f"{ev['type']} starts after the client's "
                       f"end of care ({end_from})", value=ev["start_date"])
                continue
            if ev["type"] == ABSCONDING:
                if last_episode is not None and (last_episode["end_date"] is None
                                                 or ev["start_date"] < last_episode["end_date"]):
                    reject(ev, "event_overlap", "absconding episode overlaps an earlier "
                           f"episode of the client ({last_episode['source_file']} row "
                           f"{last_episode['source_row']}, column "
                           f"{last_episode['source_column']})", value=ev["start_date"])
                    continue
                last_episode = ev
            seen.add(sig)
            rows.append({
                "programme": ev["programme"], "client": ev["client"], "type": ev["type"],
                "start_week": _week(ev["start_date"], intake), "start_date": ev["start_date"],
                "end_week": _week(ev["end_date"], intake), "end_date": ev["end_date"],
                "reason": ev["reason"], "source_file": ev["source_file"],
                "source_row": ev["source_row"], "source_column": ev["source_column"],
            })
    return events_frame(rows)


def events_frame(rows: list[dict] | pd.DataFrame | None = None) -> pd.DataFrame:
    """An events table with :data:`EVENT_COLUMNS` and fixed dtypes (also when empty)."""
    df = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(
        rows or [], columns=list(EVENT_COLUMNS))
    for col in EVENT_COLUMNS:
        if col not in df.columns:
            df[col] = None
    df = df[list(EVENT_COLUMNS)]
    for col in ("start_week", "end_week"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    for col in ("start_date", "end_date"):
        df[col] = pd.to_datetime(df[col], errors="coerce")
    df["source_row"] = pd.to_numeric(df["source_row"]).astype("int64")
    for col in ("programme", "client", "type", "reason", "source_file", "source_column"):
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df.reset_index(drop=True)


def event_accounting(file: str, events_in: int, events: pd.DataFrame,
                     rejections: pd.DataFrame) -> tuple[int, int]:
    """(events in the table, events rejected) of one file; checks the balance."""
    out = int((events["source_file"] == file).sum()) if len(events) else 0
    rej = (rejections["kind"].isin(EVENT_KINDS) & (rejections["file"] == file)).sum() \
        if len(rejections) else 0
    if events_in != out + int(rej):  # pragma: no cover - an engine bug, never data
        raise HarmoniseError(f"event accounting broken: {events_in} in, {out} in the table, "
                             f"{int(rej)} rejected", file=file)
    return out, int(rej)


# --------------------------------------------------------------------------- #
# Derived survival data
# --------------------------------------------------------------------------- #
def time_to_first_absconding(harmonised: Harmonised) -> pd.DataFrame:
    """One row per client: weeks to the first absconding episode in care, or censoring.

    Parameters
    ----------
    harmonised
        A :class:`~effectstudy.harmonise.Harmonised` (from :func:`harmonise` or
        :func:`read_harmonised`) with its ``events`` table.

    Returns
    -------
    pandas.DataFrame
        Columns ``programme, client, weeks, absconded, age, prior_absconding``: ``weeks``
        from the intake to the first absconding episode that starts in care (week >= 0,
        at or before the end of care), with ``absconded = 1``; else ``absconded = 0``
        and ``weeks`` the weeks in care (censored at the end of care). ``age`` is the age
        at intake; ``prior_absconding`` is 1 when an absconding episode is recorded before
        the intake, 0 when none is, NaN for programmes whose exports record no absconding
        dates (not declared: unknown, never zero). Clients without a time (no dated intake,
        no weeks in care) are left out. The frame is ready for
        :func:`effectstudy.survival.kaplan_meier` and :func:`effectstudy.survival.cox`
        (``time="weeks", event="absconded"``).
    """
    ev = harmonised.events if harmonised.events is not None else events_frame()
    cl = harmonised.clients
    absc = ev[ev["type"] == ABSCONDING]
    recorded = set(absc["programme"].unique())
    # programmes whose exports have absconding columns (none recorded is then a real 0)
    declared = (harmonised.provenance or {}).get("events", {})
    recorded |= set(declared.get("absconding_recorded", []) if isinstance(declared, dict)
                    else [])
    first_in = (absc[absc["start_week"] >= 0].groupby(["programme", "client"])["start_week"]
                .min().to_dict())
    prior = set(map(tuple, absc.loc[absc["start_week"] < 0, ["programme", "client"]]
                    .drop_duplicates().to_numpy().tolist()))
    eoc = ev[ev["type"] == END_OF_CARE].groupby(["programme", "client"])["start_week"].min()
    eoc = eoc.to_dict()
    rows = []
    for rec in cl.itertuples(index=False):
        k = (rec.programme, rec.client)
        in_care = rec.weeks_in_care if pd.notna(rec.weeks_in_care) else eoc.get(k, np.nan)
        t = first_in.get(k)
        if t is not None and (pd.isna(in_care) or t <= in_care + 1e-9):
            weeks, event = float(t), 1
        else:
            weeks, event = float(in_care) if pd.notna(in_care) else np.nan, 0
        if pd.isna(weeks):
            continue
        rows.append({"programme": rec.programme, "client": rec.client, "weeks": weeks,
                     "absconded": event, "age": rec.age,
                     "prior_absconding": (float(k in prior) if rec.programme in recorded
                                          else np.nan)})
    out = pd.DataFrame(rows, columns=["programme", "client", "weeks", "absconded", "age",
                                      "prior_absconding"])
    out["absconded"] = out["absconded"].astype("int64")
    return out


__all__ = ["EVENT_COLUMNS", "EventSlot", "build_events", "event_column_names", "event_slots",
           "events_frame", "time_to_first_absconding"]
