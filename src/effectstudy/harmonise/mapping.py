"""Mapping engine: one export (as read) -> candidate score records + client observations.

The accounting unit ("row" in *rows in = rows out + rows rejected*) is the **score
record**:

``wide``
    each non-empty cell of a declared measure column for a declared occasion
    (``CRIES_T1`` for client row 7 is one record), plus each non-empty cell of a column
    that matches a measure template with an *unknown* occasion label (``CRIES_T9``;
    rejected as ``unknown_occasion``);
``occasion_rows`` and ``series``
    each non-empty cell of a declared measure column;
``long``
    each data row (it holds exactly one score; an empty score is rejected as
    ``missing_score``).

Empty cells in wide/occasion-row/series files are *not* records (no measurement was
taken), and neither is a score cell holding one of the source's ``missing_values`` (text
such as ``n.v.t.`` or ``-`` that the provider writes for "not measured by design"); both
are counted as *empty* cells. So, per file and per client x occasion,
``cells read = empty + score records`` and ``score records = in the table + rejected``
(:attr:`FileResult.cells` and the ``cells`` frame of :class:`~effectstudy.harmonise.Harmonised`).
Rows whose cells are all empty are skipped by the readers.

Identifier columns (names, BSN, birth date) are read only here: their values are
handed to the log's second line of defence (:meth:`RejectionLog.protect`), the birth
date is parsed for the age, the client id is normalised in its declared format
(``client_id_format``, see :mod:`effectstudy.dictionary`) and replaced by its keyed
pseudonym, and nothing else of them is kept.

Privacy rules of the mapping (besides the log's whitelist of shown values):

* free text never passes: the ``interventions`` field is parsed into the programme's
  closed vocabulary (ids, sorted and ``;``-joined); every other item is logged as
  ``unknown_intervention`` without its text;
* headers of undeclared columns, and of columns that match a measure template with an
  unknown occasion, are never written: the log names them by position
  (``column #12``, counting the columns as read, headerless empty columns not counted);
* numbers are ASCII only (``５０`` is not a number);
* an implausible cell (a negative or absurd number of weeks in care or session number)
  is a rejection-log entry with file, row and column, never an abort.

Messages that say how to fix: a missing required column names the export's header that is a
near-miss spelling of it (``difflib`` ratio >= 0.8: a misspelt declared name, not an
identifier) and how many headers the file has, never the other headers; three or more score
cells written like ``9,7`` in a file read with a decimal point give one ``note`` pointing at
``csv.decimal``; an unparseable measurement date shows its value when it has the shape of a
date, with the expected format.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from effectstudy.dictionary import (
    ABSCONDING,
    CLIENT_SEXES,
    END_REASONS,
    Dictionary,
    MeasureMap,
    SourceFile,
)
from effectstudy.errors import HarmoniseError, SourceError
from effectstudy.harmonise import readers
from effectstudy.harmonise.events import RowEvents, event_column_names
from effectstudy.harmonise.log import RejectionLog
from effectstudy.harmonise.pseudonym import normalise_id, pseudonymise
from effectstudy.harmonise.readers import RawTable, is_empty
from effectstudy.harmonise.schema import MAX_SESSION, MAX_WEEKS_IN_CARE

#: Separators of the items of an interventions cell.
_ITEM_SEP = re.compile(r"[;,|\n\r\t]+")


def is_unreadable(value: Any) -> bool:
    """True for a cell the reader could not read (``readers.UnreadableCell``)."""
    cls = getattr(readers, "UnreadableCell", None)
    return cls is not None and isinstance(value, cls)


@dataclass
class FileResult:
    """What one export contributes before client-level resolution."""

    file: str
    programme: str
    records: list[dict] = field(default_factory=list)
    client_obs: list[dict] = field(default_factory=list)
    rows_in: int = 0
    #: Score cells examined (declared measure cells of each row and occasion).
    cells_read: int = 0
    #: Of those, empty or declared missing-by-design (not measured: no record).
    cells_empty: int = 0
    #: (client or None, occasion label or None, occasion or None) -> [cells read, empty,
    #: score records]; the label is a declared one (an undeclared label is None).
    cells: dict[tuple, list[int]] = field(default_factory=dict)
    #: Candidate events (see :mod:`effectstudy.harmonise.events`) and event records read.
    events: list[dict] = field(default_factory=list)
    events_in: int = 0
    #: Whether the export has absconding columns (no episode is then a real none).
    absconding_columns: bool = False


# --------------------------------------------------------------------------- #
# Cell parsing
# --------------------------------------------------------------------------- #
def label_text(value: Any) -> str:
    """Text of a label cell (``2.0`` -> ``"2"``; an unreadable cell -> ``""``)."""
    if is_unreadable(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


# ASCII digits only: full-width or other non-ASCII digits are not numbers.
_NUMBER = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$", re.ASCII)


def parse_number(value: Any, decimal: str = ".") -> float:
    """A finite number from a cell; ``ValueError`` when it is not one.

    Text is read with an ASCII-only grammar (sign, digits ``0-9``, one decimal mark,
    exponent), so ``"５０"`` is not 50.
    """
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, numbers.Real):
        try:
            x = float(value)
        except (OverflowError, ValueError) as exc:
            raise ValueError("not a finite number") from exc
        if not math.isfinite(x):
            raise ValueError("not finite")
        return x
    if not isinstance(value, str):
        raise ValueError("not a number")
    text = value.strip()
    if decimal != ".":
        if "." in text:
            raise ValueError("decimal point in a decimal-comma file")
        text = text.replace(decimal, ".")
    if not _NUMBER.match(text):
        raise ValueError("not a number")
    x = float(text)
    if not math.isfinite(x):
        raise ValueError("not finite")
    return x


def integer_id(value: Any) -> str:
    """Canonical text of a client id declared ``client_id_format: integer``.

    ``0829259``, ``829259.0``, ``829 259`` (also with thin or no-break spaces) and the
    numbers 829259 / 829259.0 all give ``"829259"``. ``ValueError`` for anything else
    (letters, a fraction, a negative number, non-ASCII digits).
    """
    if isinstance(value, bool) or is_unreadable(value):
        raise ValueError("not an integer id")
    if isinstance(value, numbers.Integral):
        n = int(value)
        if n < 0:
            raise ValueError("negative id")
        return str(n)
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x) or not x.is_integer() or x < 0:
            raise ValueError("not a whole number")
        return str(int(x))
    if not isinstance(value, str):
        raise ValueError("not an integer id")
    text = re.sub(r"\s+", "", value)
    text = re.sub(r"[.,]0+$", "", text)
    if not re.fullmatch(r"[0-9]+", text, re.ASCII):
        raise ValueError("not an integer id")
    return text.lstrip("0") or "0"


#: Excel's day 0 in the 1900 date system (serial 60 is the fictitious 1900-02-29, so from
#: serial 61 on the offset from 1899-12-30 is exact; earlier serials are not plausible here).
_EXCEL_EPOCH = dt.datetime(1899, 12, 30)
#: Plausible Excel date serials: 1950-01-01 .. 2100-12-31.
_EXCEL_SERIALS = (18264, 73415)


def parse_date(value: Any, fmt: str | None, excel: bool = False) -> pd.Timestamp:
    """A date from a cell (datetime objects as they are, text with ``fmt``).

    With ``excel=True`` a number is read as an Excel date serial (days since 1899-12-30 in
    the 1900 date system, e.g. ``45000`` is 2023-03-15) when it lies between 1950 and
    2100; a cell Excel formatted as a date arrives as a datetime already.
    """
    if excel and isinstance(value, numbers.Real) and not isinstance(value, bool):
        x = float(value)
        if math.isfinite(x) and _EXCEL_SERIALS[0] <= x <= _EXCEL_SERIALS[1]:
            return pd.Timestamp(_EXCEL_EPOCH + dt.timedelta(days=int(x))).normalize()
        raise ValueError("not a date serial")
    if isinstance(value, pd.Timestamp):
        return value.normalize()
    if isinstance(value, dt.datetime):
        return pd.Timestamp(value).normalize()
    if isinstance(value, dt.date):
        return pd.Timestamp(value)
    if not isinstance(value, str):
        raise ValueError("not a date")
    text = value.strip()
    formats = [fmt] if fmt else ["%Y-%m-%d", "%d-%m-%Y", "%Y-%m-%d %H:%M:%S"]
    for f in formats:
        try:
            return pd.Timestamp(dt.datetime.strptime(text, f)).normalize()
        except ValueError:
            continue
    raise ValueError("unparseable date")


# --------------------------------------------------------------------------- #
# Columns
# --------------------------------------------------------------------------- #
def _template_regex(template: str) -> re.Pattern:
    head, _, tail = template.partition("{occasion}")
    return re.compile("^" + re.escape(head) + "(.+)" + re.escape(tail) + "$")


def declared_columns(sf: SourceFile) -> tuple[list[str], list[str]]:
    """(required columns, optional columns) the dictionary declares for this file."""
    req: list[str] = [sf.client_id]
    if sf.birth_date:
        req.append(sf.birth_date)
    req += list(sf.client_fields.values())
    if sf.sex_column:
        req.append(sf.sex_column)
    if sf.layout == "wide":
        templates = [m.column for m in sf.measures]
        templates += [t for t in (sf.date_column, sf.phase_column) if t]
        for label in sf.occasions:
            req += [t.replace("{occasion}", label) for t in templates]
    else:
        for col in (sf.occasion_column, sf.date_column, sf.phase_column, sf.session_column,
                    sf.sced_phase_column, sf.instrument_column, sf.scale_column,
                    sf.score_column):
            if col:
                req.append(col)
        req += [m.column for m in sf.measures if m.column]
    opt = [c for c in sf.identifiers if c not in req]
    return list(dict.fromkeys(req)), opt


# --------------------------------------------------------------------------- #
# The engine
# --------------------------------------------------------------------------- #
class _Mapper:
    def __init__(self, raw: RawTable, sf: SourceFile, dictionary: Dictionary, key: bytes,
                 log: RejectionLog, file_label: str) -> None:
        self.raw, self.sf, self.d, self.key, self.log = raw, sf, dictionary, key, log
        self.file = file_label
        self.prog = sf.programme
        self.programme = dictionary.programmes[sf.programme]
        self.decimal = str(sf.csv.get("decimal", ".")) if sf.format == "csv" else "."
        self.out = FileResult(file_label, sf.programme)
        self.phase_ids = {p.id for p in self.programme.phases}
        self.missing = {v.casefold() for v in sf.missing_values}
        self.comma_like = 0  # score cells like "9,7" in a file read with a decimal point

    # -- logging helpers ------------------------------------------------------
    def reject(self, row: int | None, column: str | None, kind: str, reason: str,
               value: Any = None, scores: int = 0, shape: str | None = None,
               allowed: Any = ()) -> None:
        if is_unreadable(value):
            # the reader's own reason is safe text; the cell itself is never shown
            reason = f"{reason}: {getattr(value, 'reason', 'cell cannot be read')}"
            shape = None
        self.log.add(programme=self.prog, file=self.file, row=row, column=column, kind=kind,
                     reason=reason, value=value, scores=scores, shape=shape,
                     allowed=allowed)

    def declared(self, kind: str, targets: Any = ()) -> str:
        """The declared labels of ``labels[kind]`` (dictionary text, safe to show)."""
        labels = list(self.sf.labels.get(kind, {})) or sorted(targets)
        text = ", ".join(labels)
        return text if len(text) <= 200 else text[:197] + "..."

    # -- label maps -----------------------------------------------------------
    def map_label(self, kind: str, value: Any, targets: set[str]) -> str | None:
        """Map a label cell through ``labels[kind]``; a target id itself is accepted too."""
        text = label_text(value)
        table = self.sf.labels.get(kind, {})
        if text in table:
            return table[text]
        if text in targets:
            return text
        return None

    # -- columns --------------------------------------------------------------
    def check_columns(self) -> None:
        cols = list(self.raw.frame.columns)
        required, optional = declared_columns(self.sf)
        for col in required:
            if col not in cols:
                raise SourceError(self.missing_column_message(col, cols), file=self.raw.file,
                                  column=col)
        self.events = RowEvents(self, cols)
        self.event_cols = set(event_column_names(self.sf, cols))
        self.out.absconding_columns = any(s.spec.type == ABSCONDING for s in self.events.slots)
        declared = set(required) | set(optional) | self.event_cols
        # (column, position label, measure) of columns matching a measure template with an
        # occasion label the dictionary does not declare; the header is never shown
        self.unknown_occ: list[tuple[str, str, MeasureMap]] = []
        for pos, col in enumerate(cols, start=1):
            if col in declared:
                continue
            where = f"column #{pos}"
            if self.sf.layout == "wide":
                hit = None
                for m in self.sf.measures:
                    mt = _template_regex(m.column).match(col)
                    if mt and mt.group(1) not in self.sf.occasions:
                        hit = (col, where, m)
                        break
                if hit:
                    self.unknown_occ.append(hit)
                    continue
            # privacy: a header may be a name or a number; name the column by position only
            self.reject(None, where, "undeclared_columns",
                        "column not declared in the data dictionary was dropped unread "
                        "(header not shown)")

    def missing_column_message(self, col: str, cols: list[str]) -> str:
        """How to fix a missing required column, showing no undeclared header but a near miss.

        Only a header that is a close spelling of the declared name (``difflib`` ratio
        >= 0.8) is shown; any other header may name a client and is only counted.
        """
        near = [c for c in cols if difflib.SequenceMatcher(None, col.casefold(),
                                                            c.casefold()).ratio() >= 0.8]
        near.sort(key=lambda c: -difflib.SequenceMatcher(None, col.casefold(),
                                                          c.casefold()).ratio())
        where = f"sources/{self.prog}.yaml, file {self.sf.id!r}"
        hint = (f"; did you mean the export's column {near[0]!r}? Then correct the name in "
                f"{where}" if near else
                f"; no header of the export is a close spelling of it: check the name in "
                f"{where} (and header_row if the header is not the first row)")
        return (f"required column missing (declared in the data dictionary){hint}; the export "
                f"has {len(cols)} column(s), other headers not shown")

    def is_missing_score(self, value: Any) -> bool:
        """An empty score cell, or one holding a declared ``missing_values`` text."""
        if is_empty(value):
            return True
        return (bool(self.missing) and isinstance(value, str)
                and value.strip().casefold() in self.missing)

    def count_cells(self, client: str | None, label: str | None, occasion: str | None,
                    read: int, empty: int) -> None:
        self.out.cells_read += read
        self.out.cells_empty += empty
        c = self.out.cells.setdefault((client, label, occasion), [0, 0, 0])
        c[0] += read
        c[1] += empty
        c[2] += read - empty

    # -- main -----------------------------------------------------------------
    def run(self) -> FileResult:
        self.check_columns()
        for note in getattr(self.raw, "notes", ()):
            # reader text (counts, declared names), never cell content
            self.log.add(programme=self.prog, file=self.file, row=None, column=None,
                         kind="note", reason=note, scores=0)
        sf, frame = self.sf, self.raw.frame
        # Privacy at the door: remember every identifier value (in memory, for redaction),
        # pseudonymise the client id, keep the birth date only as a parsed value for the
        # age, then drop the identifier and undeclared columns before anything else.
        ident_cols = [c for c in dict.fromkeys([sf.client_id, *sf.identifiers,
                                                *([sf.birth_date] if sf.birth_date else [])])
                      if c in frame.columns]
        for col in ident_cols:
            values = [v for v in frame[col].tolist() if not is_empty(v) and not is_unreadable(v)]
            self.log.protect(values)
            self.log.protect([normalise_id(v) for v in values])
        raw_ids: list[str | None] = []
        self.invalid_ids: set[int] = set()
        for i, v in enumerate(frame[sf.client_id].tolist()):
            if is_empty(v):
                raw_ids.append(None)
            elif is_unreadable(v):
                raw_ids.append(None)
                self.invalid_ids.add(i)
            elif sf.client_id_format == "integer":
                try:
                    rid = integer_id(v)
                except ValueError:
                    raw_ids.append(None)
                    self.invalid_ids.add(i)
                else:
                    raw_ids.append(rid)
                    self.log.protect([rid])
            else:
                raw_ids.append(normalise_id(v))
        clients = [pseudonymise(self.prog, rid, self.key) if rid is not None else None
                   for rid in raw_ids]
        seen: dict[str, str] = {}
        for rid, pseudo in zip(raw_ids, clients, strict=True):
            if pseudo is not None and seen.setdefault(pseudo, rid) != rid:
                # Two different clients with one pseudonym would be merged silently.
                raise HarmoniseError("two different client ids share one pseudonym; choose "
                                     "another pseudonym key", file=self.raw.file)
        births = (frame[sf.birth_date].tolist() if sf.birth_date else [None] * len(frame))
        required, _ = declared_columns(sf)
        keep = [c for c in frame.columns
                if (c in required or c in {u[0] for u in self.unknown_occ}
                    or c in self.event_cols)
                and c not in ident_cols]
        frame = frame[keep]
        del raw_ids
        for i, (rec, n, client, birth) in enumerate(zip(frame.to_dict("records"), self.raw.rows,
                                                        clients, births, strict=True)):
            self.row(rec, n, client, birth, invalid_id=i in self.invalid_ids)
        if self.comma_like >= 3:
            if sf.format == "csv":
                fix = (f"if the export writes decimals with a comma, set csv.decimal: \",\" "
                       f"for file {sf.id!r} in sources/{self.prog}.yaml")
            else:
                fix = ("the cells hold text with a decimal comma: store them as numbers in the "
                       "workbook (or export them again)")
            self.log.add(programme=self.prog, file=self.file, row=None, column=None,
                         kind="note", reason=(f"{self.comma_like} score cells look like numbers "
                                              f"with a decimal comma (e.g. 9,7) and were "
                                              f"rejected as not a number: {fix}"), scores=0)
        return self.out

    def units(self, rec: dict) -> list[dict]:
        """Split one source row into measurement units (occasion x its score cells)."""
        sf = self.sf
        if sf.layout == "wide":
            out = []
            for label in sf.occasions:
                out.append({
                    "label": label,
                    "date": (sf.date_column.replace("{occasion}", label)
                             if sf.date_column else None),
                    "phase": (sf.phase_column.replace("{occasion}", label)
                              if sf.phase_column else None),
                    "cells": [(m.column.replace("{occasion}", label), m) for m in sf.measures],
                })
            return out
        if sf.layout == "long":
            return [{"label": None, "date": sf.date_column, "phase": sf.phase_column,
                     "cells": [(sf.score_column, None)]}]
        return [{"label": None, "date": sf.date_column, "phase": sf.phase_column,
                 "cells": [(m.column, m) for m in sf.measures]}]

    def n_scores(self, rec: dict, unit: dict) -> int:
        if self.sf.layout == "long":
            v = rec.get(self.sf.score_column)
            return 0 if (not is_empty(v) and self.is_missing_score(v)) else 1
        return sum(not self.is_missing_score(rec.get(col)) for col, _ in unit["cells"])

    def unit_key(self, rec: dict, unit: dict) -> tuple[str | None, str | None]:
        """(declared occasion label, occasion) of a unit; (None, None) when undeclared."""
        sf = self.sf
        if sf.layout == "series":
            return "session", "session"
        label = unit["label"]
        if label is None:
            lv = rec.get(sf.occasion_column)
            label = "" if is_empty(lv) else label_text(lv)
        if label not in sf.occasions:
            return None, None
        return label, sf.occasions[label].occasion

    def row(self, rec: dict, n: int, client: str | None, birth: Any,
            invalid_id: bool = False) -> None:
        sf = self.sf
        units = self.units(rec)
        counts = [self.n_scores(rec, u) for u in units]
        extra = [(col, where, m) for col, where, m in self.unknown_occ
                 if not is_empty(rec.get(col))]
        total = sum(counts) + len(extra)
        self.out.rows_in += total
        owner = None if (invalid_id or client is None) else client
        if self.events.active:
            self.events.read(rec, n, owner)
        for unit, count in zip(units, counts, strict=True):
            read = 1 if sf.layout == "long" else len(unit["cells"])
            self.count_cells(owner, *self.unit_key(rec, unit), read, read - count)
        if self.unknown_occ:
            self.count_cells(owner, None, None, len(self.unknown_occ),
                             len(self.unknown_occ) - len(extra))
        if invalid_id:
            self.reject(n, sf.client_id, "invalid_client_id",
                        f"client id does not have the declared {sf.client_id_format} format "
                        "(client_id_format): the row's scores cannot be attributed "
                        "(value not shown)", scores=total)
            return
        if client is None:
            self.reject(n, sf.client_id, "missing_client_id",
                        "client id is missing: the row's scores cannot be attributed",
                        scores=total)
            return
        for col, where, m in extra:
            self.reject(n, where, "unknown_occasion",
                        f"column matches {m.instrument} {m.scale} but its occasion label is not "
                        f"declared (label not shown; declared: {', '.join(sf.occasions)})",
                        value=rec.get(col), scores=1, shape="number")
        self.client_row(rec, n, client, birth)
        for unit, count in zip(units, counts, strict=True):
            if count:
                self.unit(rec, n, client, unit, count)

    # -- client-level fields ----------------------------------------------------
    def observe(self, client: str, n: int, field_: str, column: str | None, value: Any) -> None:
        self.out.client_obs.append({"programme": self.prog, "client": client, "file": self.file,
                                    "row": n, "field": field_, "column": column, "value": value})

    def client_row(self, rec: dict, n: int, client: str, birth: Any) -> None:
        sf = self.sf
        self.observe(client, n, "_seen", None, None)
        if sf.birth_date and not is_empty(birth):
            try:
                self.observe(client, n, "birth_date", sf.birth_date,
                             parse_date(birth, sf.date_format, excel=sf.format == "excel"))
            except ValueError:
                self.reject(n, sf.birth_date, "unparseable_date",
                            "date of birth cannot be parsed with the declared date format "
                            "(age unknown; value not shown)")
        if sf.sex_column and not is_empty(rec.get(sf.sex_column)):
            v = rec.get(sf.sex_column)
            sex = self.map_label("sex", v, set(CLIENT_SEXES))
            if sex is None:
                self.reject(n, sf.sex_column, "unknown_label", "sex label is not declared "
                            f"(labels.sex; declared: {self.declared('sex', CLIENT_SEXES)}); "
                            "sex unknown", value=v, shape="label", allowed=CLIENT_SEXES)
            else:
                self.observe(client, n, "sex", sf.sex_column, sex)
        for fld, col in sf.client_fields.items():
            v = rec.get(col)
            if is_empty(v):
                continue
            if fld in ("weeks_in_care", "fidelity"):
                try:
                    x = parse_number(v, self.decimal)
                except ValueError:
                    self.reject(n, col, "non_numeric", f"{fld} is not a number", value=v,
                                shape="number")
                    continue
                if fld == "weeks_in_care" and not 0 <= x <= MAX_WEEKS_IN_CARE:
                    self.reject(n, col, "implausible_value",
                                f"weeks in care outside the plausible range "
                                f"0-{MAX_WEEKS_IN_CARE:g}; left empty", value=v, shape="number")
                    continue
                self.observe(client, n, fld, col, x)
            elif fld == "last_phase":
                pid = self.map_label("last_phase", v, self.phase_ids)
                if pid is None:
                    self.reject(n, col, "unknown_phase",
                                f"last phase label is not declared for programme {self.prog} "
                                f"(declared: {self.declared('last_phase', self.phase_ids)})",
                                value=v, shape="label")
                else:
                    self.observe(client, n, fld, col, pid)
            elif fld == "end_reason":
                targets = set(END_REASONS)
                reason = self.map_label("end_reason", v, targets)
                if reason is None:
                    self.reject(n, col, "unknown_label", "end reason label is not declared "
                                f"(declared: {self.declared('end_reason', targets)})",
                                value=v, shape="label")
                else:
                    self.observe(client, n, fld, col, reason)
            else:  # interventions: parsed into the programme's closed vocabulary
                ids = self.interventions(n, col, v)
                if ids is not None:
                    self.observe(client, n, fld, col, ids)

    def interventions(self, n: int, col: str, value: Any) -> str | None:
        """Declared intervention ids of a cell (sorted, ``;``-joined); the rest is logged.

        Items are matched to the source's export labels (``labels.interventions``) or
        to the ids themselves, ignoring case and repeated white space. Items that do
        not match are never copied: one log entry says how many were dropped.
        """
        vocab = {iv.id for iv in self.programme.interventions}
        table = {" ".join(k.split()).casefold(): t
                 for k, t in self.sf.labels.get("interventions", {}).items()}
        table.update({i.casefold(): i for i in vocab})
        if is_unreadable(value) or not isinstance(value, str):
            items = [None]  # a number or an unreadable cell is not a list of interventions
        else:
            items = [" ".join(t.split()) for t in _ITEM_SEP.split(value)]
            items = [t for t in items if t]
        found = {table.get(t.casefold()) if t is not None else None for t in items}
        unknown = sum(1 for t in items if t is None or table.get(t.casefold()) is None)
        if unknown:
            self.reject(n, col, "unknown_intervention",
                        f"{unknown} item{'s' if unknown != 1 else ''} not in the declared "
                        f"vocabulary of {self.prog} (not shown); declared items kept",
                        value=value)
        ids = sorted(i for i in found if i is not None)
        return ";".join(ids) if ids else None

    # -- one measurement unit ---------------------------------------------------
    def unit(self, rec: dict, n: int, client: str, unit: dict, count: int) -> None:
        sf = self.sf
        # occasion
        session = None
        sced = None
        if sf.layout == "series":
            label, occasion = "session", "session"
            sv = rec.get(sf.session_column)
            try:
                s = parse_number(sv, self.decimal)
                if not s.is_integer():
                    raise ValueError
            except ValueError:
                self.reject(n, sf.session_column, "non_numeric",
                            "session number is missing or not a whole number", value=sv,
                            scores=count, shape="number")
                return
            if not 0 <= s <= MAX_SESSION:
                self.reject(n, sf.session_column, "implausible_value",
                            f"session number outside the plausible range 0-{MAX_SESSION}",
                            value=sv, scores=count, shape="number")
                return
            session = int(s)
            sced = self.map_label("sced_phase", rec.get(sf.sced_phase_column), {"A", "B"})
            if sced is None:
                self.reject(n, sf.sced_phase_column, "unknown_phase",
                            "single-case phase label is not declared (labels.sced_phase; "
                            f"declared: {self.declared('sced_phase', {'A', 'B'})})",
                            value=rec.get(sf.sced_phase_column), scores=count, shape="label")
                return
        else:
            if sf.layout == "wide":
                label = unit["label"]
            else:
                lv = rec.get(sf.occasion_column)
                label = "" if is_empty(lv) else label_text(lv)
                if label not in sf.occasions:
                    self.reject(n, sf.occasion_column, "unknown_occasion",
                                "occasion label is missing" if not label else
                                "occasion label is not declared for this file (declared: "
                                f"{', '.join(sf.occasions)})",
                                value=lv, scores=count, shape="label", allowed=sf.occasions)
                    return
            occasion = sf.occasions[label].occasion
        # date
        date = None
        dcol = unit["date"]
        if dcol and not is_empty(rec.get(dcol)):
            try:
                date = parse_date(rec.get(dcol), sf.date_format, excel=sf.format == "excel")
            except ValueError:
                self.reject(n, dcol, "unparseable_date",
                            f"measurement date cannot be parsed: expected {expected_date(sf)}",
                            value=rec.get(dcol), scores=count, shape="date")
                return
        # programme phase
        pphase = None
        pcol = unit["phase"]
        if pcol and not is_empty(rec.get(pcol)):
            pphase = self.map_label("phase", rec.get(pcol), self.phase_ids)
            if pphase is None:
                self.reject(n, pcol, "unknown_phase",
                            f"phase label is not declared for programme {self.prog} "
                            f"(declared: {self.declared('phase', self.phase_ids)})",
                            value=rec.get(pcol), scores=count, shape="label")
                return
        cells = unit["cells"]
        if sf.layout == "long":
            il = rec.get(sf.instrument_column)
            sl = rec.get(sf.scale_column)
            itext = "" if is_empty(il) else label_text(il)
            stext = "" if is_empty(sl) else label_text(sl)
            measure = next((m for m in sf.measures if m.label == (itext, stext)), None)
            if measure is None:
                known_instr = any(m.label[0] == itext for m in sf.measures)
                col = sf.scale_column if known_instr else sf.instrument_column
                what = "scale" if known_instr else "instrument"
                labels = sorted({m.label[1] if known_instr else m.label[0] for m in sf.measures
                                 if not known_instr or m.label[0] == itext})
                self.reject(n, col, "unknown_instrument",
                            f"{what} label is not declared for this file (declared: "
                            f"{', '.join(labels)})",
                            value=sl if known_instr else il, scores=1, shape="label")
                return
            cells = [(sf.score_column, measure)]
        for col, m in cells:
            v = rec.get(col)
            if self.is_missing_score(v):
                if sf.layout == "long" and is_empty(v):
                    self.reject(n, col, "missing_score", "score is empty", scores=1)
                continue
            self.score(n, client, col, m, v, label, occasion, date, pphase, session, sced)

    def score(self, n: int, client: str, col: str, m: MeasureMap, v: Any, label: str,
              occasion: str, date: pd.Timestamp | None, pphase: str | None,
              session: int | None, sced: str | None) -> None:
        if is_unreadable(v):
            self.reject(n, col, "unreadable_cell", f"{m.instrument} {m.scale} score cannot be "
                        "read", value=v, scores=1)
            return
        try:
            x = parse_number(v, self.decimal)
        except ValueError:
            if (self.decimal == "." and isinstance(v, str)
                    and _COMMA_NUMBER.fullmatch(v.strip())):
                self.comma_like += 1
            missing = (f"; declared missing-by-design texts: {', '.join(self.sf.missing_values)}"
                       if self.sf.missing_values else
                       "; text meaning 'not measured' can be declared with missing_values")
            self.reject(n, col, "non_numeric", f"{m.instrument} {m.scale} score is not a number"
                        f"{missing}", value=v, scores=1, shape="number")
            return
        sc = self.d.scale(m.instrument, m.scale)
        if not sc.range_min <= x <= sc.range_max:
            self.reject(n, col, "out_of_range",
                        f"{m.instrument} {m.scale} score outside its range "
                        f"{sc.range_min:g}-{sc.range_max:g}", value=v, scores=1, shape="number")
            return
        self.out.records.append({
            "programme": self.prog, "client": client, "occasion_label": label,
            "occasion": occasion, "date": date, "programme_phase": pphase, "session": session,
            "sced_phase": sced, "instrument": m.instrument, "scale": m.scale,
            "construct": m.construct, "raw": x, "source_file": self.file, "source_row": n,
            "source_column": col,
        })


_COMMA_NUMBER = re.compile(r"[+-]?[0-9]+,[0-9]+", re.ASCII)


def expected_date(sf: SourceFile) -> str:
    """The date format a source declares, with an example (dictionary text, safe to show)."""
    example = dt.date(2024, 1, 31)
    if sf.date_format:
        try:
            shown = example.strftime(sf.date_format)
        except ValueError:  # pragma: no cover - a format strftime cannot write
            shown = sf.date_format
        text = f"date_format {sf.date_format!r} (e.g. {shown})"
    else:
        text = "an ISO date (e.g. 2024-01-31; set date_format for other layouts)"
    if sf.format == "excel":
        text += " or a cell Excel stores as a date"
    return text


def map_file(raw: RawTable, sf: SourceFile, dictionary: Dictionary, key: bytes,
             log: RejectionLog, file_label: str) -> FileResult:
    """Map one export onto candidate score records (see the module docstring)."""
    return _Mapper(raw, sf, dictionary, key, log, file_label).run()
