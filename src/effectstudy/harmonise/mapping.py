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
taken); rows whose cells are all empty are skipped by the readers.

Identifier columns (names, BSN, birth date) are read only here: their values are
handed to the log's redaction list, the birth date is parsed for the age, the client
id is replaced by its keyed pseudonym, and nothing else of them is kept.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from effectstudy.dictionary import Dictionary, MeasureMap, SourceFile
from effectstudy.errors import HarmoniseError, SourceError
from effectstudy.harmonise.log import RejectionLog
from effectstudy.harmonise.pseudonym import normalise_id, pseudonymise
from effectstudy.harmonise.readers import RawTable, is_empty


@dataclass
class FileResult:
    """What one export contributes before client-level resolution."""

    file: str
    programme: str
    records: list[dict] = field(default_factory=list)
    client_obs: list[dict] = field(default_factory=list)
    rows_in: int = 0


# --------------------------------------------------------------------------- #
# Cell parsing
# --------------------------------------------------------------------------- #
def label_text(value: Any) -> str:
    """Text of a label cell (``2.0`` -> ``"2"``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def parse_number(value: Any, decimal: str = ".") -> float:
    """A finite number from a cell; ``ValueError`` when it is not one."""
    if isinstance(value, bool):
        raise ValueError("boolean")
    if isinstance(value, int | float):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError("not finite")
        return x
    text = str(value).strip()
    if decimal != ".":
        if "." in text:
            raise ValueError("decimal point in a decimal-comma file")
        text = text.replace(decimal, ".")
    if not _NUMBER.match(text):
        raise ValueError("not a number")
    return float(text)


def parse_date(value: Any, fmt: str | None) -> pd.Timestamp:
    """A date from a cell (datetime objects as they are, text with ``fmt``)."""
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

    # -- logging helpers ------------------------------------------------------
    def reject(self, row: int | None, column: str | None, kind: str, reason: str,
               value: Any = None, scores: int = 0) -> None:
        self.log.add(programme=self.prog, file=self.file, row=row, column=column, kind=kind,
                     reason=reason, value=value, scores=scores)

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
                raise SourceError("required column missing (declared in the data dictionary)",
                                  file=self.raw.file, column=col)
        declared = set(required) | set(optional)
        self.unknown_occ: list[tuple[str, str, MeasureMap]] = []
        undeclared = []
        for col in cols:
            if col in declared:
                continue
            if self.sf.layout == "wide":
                hit = None
                for m in self.sf.measures:
                    mt = _template_regex(m.column).match(col)
                    if mt and mt.group(1) not in self.sf.occasions:
                        hit = (col, mt.group(1), m)
                        break
                if hit:
                    self.unknown_occ.append(hit)
                    continue
            undeclared.append(col)
        if undeclared:
            self.reject(None, "; ".join(undeclared), "undeclared_columns",
                        f"{len(undeclared)} column(s) not declared in the data dictionary were "
                        "dropped unread")

    # -- main -----------------------------------------------------------------
    def run(self) -> FileResult:
        self.check_columns()
        sf, frame = self.sf, self.raw.frame
        # Privacy at the door: remember every identifier value (in memory, for redaction),
        # pseudonymise the client id, keep the birth date only as a parsed value for the
        # age, then drop the identifier and undeclared columns before anything else.
        ident_cols = [c for c in dict.fromkeys([sf.client_id, *sf.identifiers,
                                                *([sf.birth_date] if sf.birth_date else [])])
                      if c in frame.columns]
        for col in ident_cols:
            values = [v for v in frame[col].tolist() if not is_empty(v)]
            self.log.protect(values)
            self.log.protect([normalise_id(v) for v in values])
        raw_ids = [normalise_id(v) for v in frame[sf.client_id].tolist()]
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
                if (c in required or c in {u[0] for u in self.unknown_occ})
                and c not in ident_cols]
        frame = frame[keep]
        del raw_ids
        for rec, n, client, birth in zip(frame.to_dict("records"), self.raw.rows, clients,
                                         births, strict=True):
            self.row(rec, n, client, birth)
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
            return 1
        return sum(not is_empty(rec.get(col)) for col, _ in unit["cells"])

    def row(self, rec: dict, n: int, client: str | None, birth: Any) -> None:
        sf = self.sf
        units = self.units(rec)
        counts = [self.n_scores(rec, u) for u in units]
        extra = [(col, label, m) for col, label, m in self.unknown_occ if not is_empty(rec.get(col))]
        total = sum(counts) + len(extra)
        self.out.rows_in += total
        if client is None:
            self.reject(n, sf.client_id, "missing_client_id",
                        "client id is missing: the row's scores cannot be attributed",
                        scores=total)
            return
        for col, label, m in extra:
            self.reject(n, col, "unknown_occasion",
                        f"occasion label {label!r} in the column name is not declared for "
                        f"{m.instrument} {m.scale}", value=rec.get(col), scores=1)
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
                             parse_date(birth, sf.date_format))
            except ValueError:
                self.reject(n, sf.birth_date, "unparseable_date",
                            "date of birth cannot be parsed with the declared date format "
                            "(age unknown; value not shown)")
        for fld, col in sf.client_fields.items():
            v = rec.get(col)
            if is_empty(v):
                continue
            if fld in ("weeks_in_care", "fidelity"):
                try:
                    self.observe(client, n, fld, col, parse_number(v, self.decimal))
                except ValueError:
                    self.reject(n, col, "non_numeric", f"{fld} is not a number", value=v)
            elif fld == "last_phase":
                pid = self.map_label("last_phase", v, self.phase_ids)
                if pid is None:
                    self.reject(n, col, "unknown_phase",
                                f"last phase label is not declared for programme {self.prog}",
                                value=v)
                else:
                    self.observe(client, n, fld, col, pid)
            elif fld == "end_reason":
                reason = self.map_label("end_reason", v,
                                        {"completed", "absconded", "transferred"})
                if reason is None:
                    self.reject(n, col, "unknown_label", "end reason label is not declared",
                                value=v)
                else:
                    self.observe(client, n, fld, col, reason)
            else:  # interventions: free text (a list of modules) or a count
                self.observe(client, n, fld, col, label_text(v))

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
                session = int(s)
            except ValueError:
                self.reject(n, sf.session_column, "non_numeric",
                            "session number is missing or not a whole number", value=sv,
                            scores=count)
                return
            sced = self.map_label("sced_phase", rec.get(sf.sced_phase_column), {"A", "B"})
            if sced is None:
                self.reject(n, sf.sced_phase_column, "unknown_phase",
                            "single-case phase label is not declared (labels.sced_phase)",
                            value=rec.get(sf.sced_phase_column), scores=count)
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
                                "occasion label is not declared for this file",
                                value=lv, scores=count)
                    return
            occasion = sf.occasions[label].occasion
        # date
        date = None
        dcol = unit["date"]
        if dcol and not is_empty(rec.get(dcol)):
            try:
                date = parse_date(rec.get(dcol), sf.date_format)
            except ValueError:
                self.reject(n, dcol, "unparseable_date",
                            f"measurement date cannot be parsed (expected {sf.date_format or 'ISO'})",
                            value=rec.get(dcol), scores=count)
                return
        # programme phase
        pphase = None
        pcol = unit["phase"]
        if pcol and not is_empty(rec.get(pcol)):
            pphase = self.map_label("phase", rec.get(pcol), self.phase_ids)
            if pphase is None:
                self.reject(n, pcol, "unknown_phase",
                            f"phase label is not declared for programme {self.prog}",
                            value=rec.get(pcol), scores=count)
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
                self.reject(n, col, "unknown_instrument",
                            f"{what} label is not declared for this file",
                            value=sl if known_instr else il, scores=1)
                return
            cells = [(sf.score_column, measure)]
        for col, m in cells:
            v = rec.get(col)
            if is_empty(v):
                if sf.layout == "long":
                    self.reject(n, col, "missing_score", "score is empty", scores=1)
                continue
            self.score(n, client, col, m, v, label, occasion, date, pphase, session, sced)

    def score(self, n: int, client: str, col: str, m: MeasureMap, v: Any, label: str,
              occasion: str, date: pd.Timestamp | None, pphase: str | None,
              session: int | None, sced: str | None) -> None:
        try:
            x = parse_number(v, self.decimal)
        except ValueError:
            self.reject(n, col, "non_numeric", f"{m.instrument} {m.scale} score is not a number",
                        value=v, scores=1)
            return
        sc = self.d.scale(m.instrument, m.scale)
        if not sc.range_min <= x <= sc.range_max:
            self.reject(n, col, "out_of_range",
                        f"{m.instrument} {m.scale} score outside its range "
                        f"{sc.range_min:g}-{sc.range_max:g}", value=v, scores=1)
            return
        self.out.records.append({
            "programme": self.prog, "client": client, "occasion_label": label,
            "occasion": occasion, "date": date, "programme_phase": pphase, "session": session,
            "sced_phase": sced, "instrument": m.instrument, "scale": m.scale,
            "construct": m.construct, "raw": x, "source_file": self.file, "source_row": n,
            "source_column": col,
        })


def map_file(raw: RawTable, sf: SourceFile, dictionary: Dictionary, key: bytes,
             log: RejectionLog, file_label: str) -> FileResult:
    """Map one export onto candidate score records (see the module docstring)."""
    return _Mapper(raw, sf, dictionary, key, log, file_label).run()
