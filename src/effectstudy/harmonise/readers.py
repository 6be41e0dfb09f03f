"""Readers per export format: Excel (openpyxl), SPSS (pyreadstat, value labels applied), CSV.

Every reader returns a :class:`RawTable`: the cells as read (objects, no type guessing
beyond what the format itself stores), the column names, and for each data row its
*source row number*:

* CSV and Excel: the spreadsheet row (header = row 1, first data row = row 2);
* SPSS: the 1-based case number.

Rows whose cells are all empty are skipped (they hold no data). Any problem with the
file as a whole raises :class:`~effectstudy.errors.SourceError` naming the file (and
the row or column where known); never a pandas traceback.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from effectstudy.dictionary import SourceFile
from effectstudy.errors import SourceError


@dataclass(frozen=True)
class RawTable:
    """Cells of one export as read, with source row numbers."""

    frame: pd.DataFrame  # object columns, one per source column
    rows: tuple[int, ...]  # source row number of each frame row
    file: Path


def is_empty(value: object) -> bool:
    """True for a missing cell: None, NaN/NA, or a string of white space only."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _finish(columns: list, data: list[list], rows: list[int], file: Path) -> RawTable:
    names = []
    for i, col in enumerate(columns):
        name = "" if col is None else str(col).strip()
        if not name:
            if all(is_empty(r[i]) if i < len(r) else True for r in data):
                name = f"__blank_{i}"
            else:
                raise SourceError("a column with data has no header", file=file, column=f"#{i + 1}")
        if name in names:
            raise SourceError("duplicate column header", file=file, column=name)
        names.append(name)
    keep_data, keep_rows = [], []
    for r, n in zip(data, rows, strict=True):
        r = list(r) + [None] * (len(names) - len(r))
        if all(is_empty(v) for v in r):
            continue
        keep_data.append(r[: len(names)])
        keep_rows.append(n)
    frame = pd.DataFrame(keep_data, columns=names, dtype=object)
    frame = frame[[c for c in names if not c.startswith("__blank_")]]
    return RawTable(frame, tuple(keep_rows), file)


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
_SEPARATORS = (",", ";", "\t", "|")


def _decode(data: bytes, encoding: str, file: Path) -> str:
    enc = encoding.lower().replace("_", "-")
    is_utf16 = enc.startswith("utf-16") or enc.startswith("utf16")
    if not is_utf16:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4096]:
            raise SourceError(
                f"file is not {encoding} text (it looks like UTF-16: byte-order mark or NUL bytes); "
                "re-export it as declared or fix csv.encoding in the dictionary",
                file=file,
            )
    if enc in ("cp1252", "windows-1252", "latin-1", "latin1", "iso-8859-1", "iso8859-1"):
        # cp1252/latin-1 decode (almost) any bytes: catch UTF-8 exports declared as cp1252.
        if any(b >= 0x80 for b in data):
            try:
                data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise SourceError(
                    f"file is declared {encoding} but is UTF-8 encoded (non-ASCII characters "
                    "would be garbled); fix csv.encoding in the dictionary",
                    file=file,
                )
    try:
        text = data.decode(encoding)
    except LookupError as exc:
        raise SourceError(f"unknown encoding {encoding!r} declared", file=file) from exc
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"file is not valid {encoding}: undecodable byte 0x{data[exc.start]:02x} "
            f"(wrong csv.encoding in the dictionary?)",
            file=file,
            row=line,
        ) from exc
    return text.lstrip("\ufeff")


def read_csv(path: Path, sf: SourceFile) -> RawTable:
    """Read a CSV export with the declared ``sep``, ``decimal`` and ``encoding``.

    Cells stay text (decimal handling happens when a score is parsed).
    """
    sep = str(sf.csv.get("sep", ","))
    encoding = str(sf.csv.get("encoding", "utf-8"))
    data = path.read_bytes()
    if not data.strip():
        raise SourceError("empty file", file=path)
    text = _decode(data, encoding, path)
    if not text.strip():
        raise SourceError("empty file", file=path)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    lines: list[list[str]] = []
    try:
        for rec in reader:
            lines.append(rec)
    except csv.Error as exc:
        raise SourceError(f"malformed CSV: {exc}", file=path, row=reader.line_num) from exc
    # physical row numbers: csv.reader may span quoted newlines; keep logical numbering
    header_idx = next((i for i, r in enumerate(lines) if any(c.strip() for c in r)), None)
    if header_idx is None:
        raise SourceError("empty file", file=path)
    header = lines[header_idx]
    if len(header) == 1:
        found = [s for s in _SEPARATORS if s != sep and s in header[0]]
        if found:
            raise SourceError(
                f"only one column read with separator {sep!r}; the file seems to use "
                f"{found[0]!r} (wrong csv.sep in the dictionary?)",
                file=path,
                row=header_idx + 1,
            )
    body = lines[header_idx + 1 :]
    rows = list(range(header_idx + 2, header_idx + 2 + len(body)))
    for rec, n in zip(body, rows, strict=True):
        if len(rec) > len(header) and any(c.strip() for c in rec[len(header) :]):
            raise SourceError(
                f"row has {len(rec)} fields, the header has {len(header)} "
                f"(wrong csv.sep, or an unquoted {sep!r} in a cell?)",
                file=path,
                row=n,
            )
    if not body:
        raise SourceError("file has a header but no data rows", file=path)
    return _finish(header, body, rows, path)


# --------------------------------------------------------------------------- #
# Excel
# --------------------------------------------------------------------------- #
def read_excel(path: Path, sf: SourceFile) -> RawTable:
    """Read the declared sheet of an .xlsx workbook (header in row 1)."""
    import openpyxl  # local: slow import

    if path.stat().st_size == 0:
        raise SourceError("empty file", file=path)
    try:
        wb = openpyxl.load_workbook(path, read_only=False, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds (BadZipFile, InvalidFileException...)
        raise SourceError(f"not a readable .xlsx workbook ({type(exc).__name__})", file=path) from exc
    try:
        if sf.sheet not in wb.sheetnames:
            raise SourceError(
                f"sheet {sf.sheet!r} not found; the workbook has {len(wb.sheetnames)} other "
                "sheet(s) (names not shown: they may name clients)", file=path, key="sheet",
            )
        ws = wb[sf.sheet]
        values = [list(r) for r in ws.iter_rows(min_row=1, min_col=1, values_only=True)]
    finally:
        wb.close()
    if not values or all(all(is_empty(v) for v in r) for r in values):
        raise SourceError(f"sheet {sf.sheet!r} is empty", file=path)
    header = values[0]
    body = values[1:]
    if not body:
        raise SourceError("sheet has a header but no data rows", file=path)
    return _finish(list(header), body, list(range(2, 2 + len(body))), path)


# --------------------------------------------------------------------------- #
# SPSS
# --------------------------------------------------------------------------- #
def read_spss(path: Path, sf: SourceFile) -> RawTable:
    """Read a .sav file with pyreadstat; value labels are applied cell by cell."""
    import pyreadstat  # local: slow import

    if path.stat().st_size == 0:
        raise SourceError("empty file", file=path)
    try:
        df, meta = pyreadstat.read_sav(str(path), apply_value_formats=False,
                                       user_missing=False)
    except Exception as exc:  # pyreadstat raises its own (C-level) error classes
        msg = re.sub(r"\s+", " ", str(exc))[:120]
        raise SourceError(f"not a readable SPSS .sav file ({type(exc).__name__}: {msg})",
                          file=path) from exc
    if df.shape[0] == 0:
        raise SourceError("file has no cases", file=path)
    labels = meta.variable_value_labels or {}
    columns = [str(c) for c in df.columns]
    data: list[list] = []
    obj = df.astype(object)
    for rec in obj.itertuples(index=False, name=None):
        data.append(list(rec))
    for j, col in enumerate(columns):
        lab = labels.get(col)
        if not lab:
            continue
        for r in data:
            v = r[j]
            if is_empty(v):
                continue
            key = v
            if isinstance(v, float) and v.is_integer():
                key = v if v in lab else int(v)
            if key in lab:
                r[j] = lab[key]
            elif isinstance(v, float) and v.is_integer() and float(v) in lab:
                r[j] = lab[float(v)]
    return _finish(columns, data, list(range(1, 1 + len(data))), path)


READERS = {"csv": read_csv, "excel": read_excel, "spss": read_spss}


def read_source(path: str | Path, sf: SourceFile) -> RawTable:
    """Read one export as its dictionary entry ``sf`` describes."""
    path = Path(path)
    if not path.is_file():
        raise SourceError("export file not found", file=path)
    return READERS[sf.format](path, sf)
