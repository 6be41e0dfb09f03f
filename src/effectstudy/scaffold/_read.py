"""Reading an export for the scaffolder: text and cell helpers, the header test and
the CSV, Excel and SPSS readers that find the header row, separator and encoding.

Internal to :mod:`effectstudy.scaffold`, whose docstring states the privacy rule
these helpers serve (:func:`elfproef` and :class:`Finding` are re-exported there; the
header rule is :mod:`effectstudy.scaffold._vocabulary`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import numbers
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from effectstudy.dictionary import SourceFile
from effectstudy.errors import SourceError
from effectstudy.harmonise.readers import (
    decode_text,
    is_empty,
    read_csv,
    read_export_bytes,
    read_spss,
)

#: Most distinct values a label column may have for its values to be shown.
MAX_LABELS = 12
#: Longest label value that may be shown.
MAX_LABEL_LENGTH = 40
#: Texts that mean "not measured" in a score cell; safe to show (they name nobody).
MISSING_CODES = ("n.v.t.", "nvt", "n.v.t", "-", "--", "onbekend", "n.b.", "nb", "?", "x",
                 "niet afgenomen", "geen", "missing", "na", "n/a", "leeg", ".")
_SEPARATORS = (",", ";", "\t", "|")
SEP_NAMES = {",": '","', ";": '";"', "\t": '"\\t"', "|": '"|"'}
_SAMPLE_RECORDS = 500


@dataclass(frozen=True)
class Finding:
    """One thing the scaffolder noticed: ``level`` is ``info``, ``todo`` or ``warning``.

    The message follows the privacy rule of :mod:`effectstudy.scaffold` (no cell value
    of an identifier or free-text column, a header not made of column words by position
    only).
    """

    level: str
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


# --------------------------------------------------------------------------- #
# Text helpers
# --------------------------------------------------------------------------- #
def fold(text: str) -> str:
    """Lower case without accents (``Cliënt`` -> ``client``)."""
    norm = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in norm if not unicodedata.combining(ch)).lower()


def tokens(text: str) -> list[str]:
    return [t for t in re.split(r"[^a-z0-9]+", fold(text)) if t]


_PARTICLES = {"van", "de", "der", "den", "ter", "ten", "te", "t", "'t", "el", "al", "la", "le",
              "du", "da", "di", "von", "op", "in", "het", "bin", "ben"}


_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['’-][^\W\d_]+)*$")


def name_shaped(text: str, *, single: bool = False) -> bool:
    """Shaped like a person's name: capitalised words of letters only (particles allowed).

    ``single``: a lone capitalised word counts too (used for headers, where a first name
    alone must not be shown).
    """
    words = text.strip().split()
    if not words or len(words) > 5:
        return False
    capitals = 0
    for w in words:
        if not _NAME_WORD.match(w):
            return False
        if w[0].isupper():
            capitals += 1
        elif w.lower() not in _PARTICLES:
            return False
    if not words[0][0].isupper() and words[0].lower() not in _PARTICLES:
        return False
    return capitals >= 2 or (single and capitals == 1)


def mentions_name(text: str) -> bool:
    """Whether a label or intervention item may name someone (a third party included).

    True for an initial before a word (``M. Vos``) or a capitalised word (not an
    all-capital acronym, not a particle) anywhere but at the start of the text
    (``gesprek met Kevin``, ``Kevin Dragomir bezoek``): ordinary labels and intervention
    names start with a capital at most.
    """
    if re.search(r"(?<![^\W\d_])[A-Z]\.\s*[^\W\d_]*[a-z]", text):
        return True
    for i, m in enumerate(re.finditer(r"[^\W\d_]+", text)):
        word = m.group()
        if i == 0 or word.isupper() or not word[0].isupper():
            continue
        if word.lower() in _PARTICLES:
            continue
        return True
    return False


#: A date written with a month name (``7 nov 2009``, ``7 november 2009``, ``nov 7 2009``).
_MONTHS = (r"jan(?:uari|uary)?|feb(?:ruari|ruary)?|mrt|maart|mar(?:ch)?|apr(?:il)?|mei|may|"
           r"jun[ie]?|jul[iy]?|aug(?:ustus|ust)?|sep(?:t(?:ember)?)?|okt(?:ober)?|oct(?:ober)?|"
           r"nov(?:ember)?|dec(?:ember)?")
DATE_IN_WORDS = re.compile(rf"(?<![a-z0-9])(?:\d{{1,2}}\.?\s*(?:{_MONTHS})\.?\s*\d{{2,4}}|"
                            rf"(?:{_MONTHS})\.?\s*\d{{1,2}},?\s*\d{{2,4}})(?![a-z0-9])")


def elfproef(digits: str) -> bool:
    """The BSN 11-test on 8 or 9 digits (8 digits get a leading zero).

    ``sum(d_i * w_i)`` with weights 9, 8, ..., 2, -1 must be a multiple of 11 (and the
    number not all zeros): the variant of the 11-test that the BSN specification
    prescribes (Ministerie van Binnenlandse Zaken en Koninkrijksrelaties, *Logisch
    Ontwerp BSN*; the BSN itself is set by the Wet algemene bepalingen
    burgerservicenummer, 2007). The last weight is -1, not 1, so that a bank account
    number is not taken for a BSN. Published valid examples: 111222333, 123456782.
    """
    if not re.fullmatch(r"[0-9]{8,9}", digits):
        return False
    digits = digits.zfill(9)
    if set(digits) == {"0"}:
        return False
    weights = (9, 8, 7, 6, 5, 4, 3, 2, -1)
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0


def yaml_scalar(text: str) -> str:
    """A YAML scalar for ``text``: plain when that is unambiguous, else double-quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-]*(?: [A-Za-z0-9_.\-]+)*", text) and fold(
            text) not in ("yes", "no", "true", "false", "on", "off", "null", "y", "n", "todo"):
        return text
    out = json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    return out.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").replace(
        "\u0085", "\\u0085")


def one_line(text: str) -> str:
    """``text`` on one line (line breaks and other control characters escaped), for
    comments: a line break in a header must not end a YAML comment."""
    if all(ch.isprintable() for ch in text):
        return text
    return json.dumps(text, ensure_ascii=False)[1:-1].replace("\u2028", "\\u2028").replace(
        "\u2029", "\\u2029")


def natural(text: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", fold(text)))


# --------------------------------------------------------------------------- #
# Cell helpers
# --------------------------------------------------------------------------- #
NUM_DOT = re.compile(r"^[+-]?(?:[0-9]+\.[0-9]+|[0-9]+)$", re.ASCII)
NUM_COMMA = re.compile(r"^[+-]?[0-9]+,[0-9]+$", re.ASCII)
DATE_TEXT = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}(?:[ T]\d{1,2}:\d{2}(?::\d{2})?)?$")
DATE_FORMATS = ("%d-%m-%Y", "%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y/%m/%d", "%d-%m-%y",
                 "%d/%m/%y", "%m/%d/%Y", "%m-%d-%Y")
TIMES = ("", " %H:%M:%S", " %H:%M", "T%H:%M:%S")
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")
PHONE = re.compile(r"(?<!\d)(?:\+31|0031|0)[\s-]?(?:6|[1-9]\d)[\s-]?(?:\d[\s-]?){7}(?!\d)")


def is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, numbers.Real):
        return not (isinstance(value, float) and math.isnan(value))
    if isinstance(value, str):
        text = value.strip()
        return bool(NUM_DOT.match(text) or NUM_COMMA.match(text))
    return False


def _is_date(value: Any) -> bool:
    if isinstance(value, dt.date | dt.datetime):
        return True
    return isinstance(value, str) and bool(DATE_TEXT.match(value.strip()))


def _is_text(value: Any) -> bool:
    return (isinstance(value, str) and bool(value.strip()) and not is_number(value)
            and not _is_date(value))


def cell_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def id_digits(value: Any) -> str | None:
    """The digits of a number-like id cell (``123456782``, ``1234.56.782``), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if isinstance(value, str):
        text = re.sub(r"[\s.\-]", "", value)
        return text if re.fullmatch(r"[0-9]+", text, re.ASCII) else None
    return None


# --------------------------------------------------------------------------- #
# Reading the export
# --------------------------------------------------------------------------- #
@dataclass
class ExportTable:
    format: str
    header: list[str]
    body: list[list[Any]]
    header_row: int = 1
    encoding: str | None = None
    sep: str | None = None
    sheet: str | None = None
    sheet_index: int | None = None
    value_labels: dict[str, dict] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


def _blank_sf(path: Path, fmt: str, **kw: Any) -> SourceFile:
    return SourceFile(programme="draft", id="draft", path=path.name, format=fmt, layout="wide",
                      client_id="", identifiers=(), measures=(), **kw)


def _detect_encoding(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig", "UTF-8 with a byte-order mark"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "utf-16", "UTF-16 (byte-order mark)"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        try:
            data.decode("cp1252")
        except UnicodeDecodeError:
            return "latin-1", "neither UTF-8 nor cp1252: read as latin-1"
        return "cp1252", "not valid UTF-8: Windows cp1252 (Excel's 'CSV' on Dutch Windows)"
    if any(b >= 0x80 for b in data):
        return "utf-8", "valid UTF-8 with non-ASCII characters"
    return "utf-8", "plain ASCII (read as UTF-8)"


def _records(text: str, sep: str, limit: int | None = None) -> list[list[str]]:
    out = []
    try:
        for rec in csv.reader(io.StringIO(text, newline=""), delimiter=sep):
            out.append(rec)
            if limit is not None and len(out) >= limit:
                break
    except csv.Error:
        return out
    return out


def _detect_sep(text: str) -> tuple[str, str]:
    best: tuple | None = None
    for sep in _SEPARATORS:
        recs = [r for r in _records(text, sep, _SAMPLE_RECORDS) if any(c.strip() for c in r)]
        if not recs:
            continue
        counts = Counter(len(r) for r in recs)
        width, n = max(counts.items(), key=lambda kv: (kv[1], kv[0]))
        score = (width >= 2, n, width)
        if best is None or score > best[0]:
            best = (score, sep, width, n, len(recs))
    if best is None or not best[0][0]:
        return ",", "one column only with every separator tried: read as ','"
    _score, sep, width, n, total = best
    return sep, f"{SEP_NAMES[sep]} gives {width} columns in {n} of {total} rows"


def _row_kind(cells: Sequence[Any]) -> tuple[int, int, int]:
    """(non-empty cells, text cells, number-or-date cells)."""
    filled = [c for c in cells if not is_empty(c)]
    text = sum(1 for c in filled if _is_text(c))
    data = sum(1 for c in filled if is_number(c) or _is_date(c))
    return len(filled), text, data


def _detect_header(rows: Sequence[Sequence[Any]]) -> int | None:
    """Index of the header row: the first row whose cells are mostly non-empty text,
    followed by a data row (a row with a number or a date and at least half as many
    filled cells)."""
    kinds = [_row_kind(r) for r in rows]
    width = max((k[0] for k in kinds), default=0)
    if width == 0:
        return None
    for i, (filled, text, _data) in enumerate(kinds):
        if filled < max(2, math.ceil(0.6 * width)) and not (width == 1 and filled == 1):
            continue
        if text < 0.8 * filled:
            continue
        nxt = next((j for j in range(i + 1, len(kinds)) if kinds[j][0]), None)
        if nxt is None:
            continue
        n_filled, _t, n_data = kinds[nxt]
        if n_data >= 1 and n_filled >= 0.5 * filled:
            return i
    return next((i for i, k in enumerate(kinds) if k[0] == width), None)


def _read_csv_table(path: Path) -> ExportTable:
    data = read_export_bytes(path)
    if not data.strip():
        raise SourceError("empty file", file=path)
    encoding, why_enc = _detect_encoding(data)
    text = decode_text(data, encoding, path)
    sep, why_sep = _detect_sep(text)
    records = _records(text, sep)
    hidx = _detect_header(records)
    if hidx is None:
        raise SourceError("no header row found (the file holds no cells)", file=path)
    first = next(i for i, r in enumerate(records) if any(c.strip() for c in r))
    findings = [Finding("info", f"encoding {encoding}: {why_enc}"),
                Finding("info", f"separator {SEP_NAMES[sep]}: {why_sep}")]
    if hidx == first:
        # the package's own reader: stray quotes, column counts, header checks
        # (refused: the harmoniser could not read the file either, and a stray quote
        # would make later rows look like a header or a label)
        read_csv(path, _blank_sf(path, "csv", csv={"sep": sep, "decimal": ".",
                                                    "encoding": encoding}))
    elif any(sep in part for cell in records[hidx] for part in cell.splitlines()[1:]):
        raise SourceError("a quoted field of the header row runs over several lines that "
                          "look like rows (a stray quote character?); fix the export", file=path,
                          row=hidx + 1)
    header = [c.strip() for c in records[hidx]]
    body = [r for r in records[hidx + 1:] if any(c.strip() for c in r)]
    return ExportTable("csv", header, body, header_row=hidx + 1, encoding=encoding, sep=sep,
                  findings=findings)


def _read_excel_table(path: Path) -> ExportTable:
    import openpyxl  # local: slow import

    if path.stat().st_size == 0:
        raise SourceError("empty file", file=path)
    try:
        wb = openpyxl.load_workbook(path, read_only=False, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds
        raise SourceError(f"not a readable .xlsx workbook ({type(exc).__name__})",
                          file=path) from None
    findings: list[Finding] = []
    try:
        names = list(wb.sheetnames)
        candidates = []
        for index, name in enumerate(names):
            ws = wb[name]
            if not hasattr(ws, "iter_rows"):
                continue  # a chart sheet
            rows = [[c.value for c in r] for r in ws.iter_rows()]
            hidx = _detect_header(rows)
            if hidx is None:
                candidates.append((0, index, name, rows, None, ws))
                continue
            body = [r for r in rows[hidx + 1:] if not all(is_empty(c) for c in r)]
            cells = sum(1 for r in body for c in r if not is_empty(c))
            has_data = any(_row_kind(r)[2] for r in body)
            candidates.append((cells if has_data else 0, index, name, rows, hidx, ws))
        if not candidates or max(c[0] for c in candidates) == 0:
            raise SourceError(f"none of the workbook's {len(names)} sheet(s) holds a header "
                              "row followed by data", file=path)
        cells, index, name, rows, hidx, ws = max(candidates, key=lambda c: (c[0], -c[1]))
        merged = [str(m) for m in ws.merged_cells.ranges]
        merged_rows = [m for m in ws.merged_cells.ranges if m.max_row >= hidx + 1]
    finally:
        wb.close()
    others = [f"#{c[1] + 1}: {c[0]}" for c in sorted(candidates, key=lambda c: c[1])
              if c[1] != index]
    findings.append(Finding("info", f"workbook with {len(names)} sheet(s); sheet #{index + 1} "
                                    f"holds the data ({cells} filled cells below its header)"
                            + (f"; data cells in the other sheet(s): {', '.join(others)}"
                               if others else "")))
    if merged:
        msg = (f"{len(merged)} merged cell range(s) in the sheet; a merged range keeps its "
               "value in its top-left cell only")
        if merged_rows:
            msg += (f"; {len(merged_rows)} of them lie in or below the header: the other cells "
                    "of such a range read as empty (unmerge them in the export)")
            findings.append(Finding("warning", msg))
        else:
            findings.append(Finding("info", msg + " (above the header: a title)"))
    header = ["" if is_empty(c) else cell_text(c) for c in rows[hidx]]
    body = [list(r) for r in rows[hidx + 1:] if not all(is_empty(c) for c in r)]
    return ExportTable("excel", header, body, header_row=hidx + 1, sheet=name, sheet_index=index,
                  findings=findings)


def _read_spss_table(path: Path) -> ExportTable:
    import pyreadstat  # local: slow import

    raw = read_spss(path, _blank_sf(path, "spss"))
    try:
        _df, meta = pyreadstat.read_sav(str(path), metadataonly=True)
        labels = dict(meta.variable_value_labels or {})
    except Exception:  # labels are a help only; the reader above has checked the file
        labels = {}
    header = [str(c) for c in raw.frame.columns]
    body = [list(r) for r in raw.frame.itertuples(index=False, name=None)]
    return ExportTable("spss", header, body, value_labels=labels,
                  findings=[Finding("info", f"SPSS file with {len(body)} case(s) and "
                                            f"{len(header)} variable(s)")])


def read_table(path: Path) -> ExportTable:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_excel_table(path)
    if suffix in (".sav", ".zsav"):
        return _read_spss_table(path)
    if suffix in (".csv", ".txt", ".tsv"):
        return _read_csv_table(path)
    if suffix == ".xls":
        raise SourceError("old Excel .xls workbooks are not read: save it as .xlsx", file=path)
    raise SourceError(f"unknown export type {suffix or '(no extension)'!r}: expected .csv, "
                      ".xlsx or .sav", file=path)
