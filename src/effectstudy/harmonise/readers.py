"""Readers per export format: Excel (openpyxl), SPSS (pyreadstat), CSV.

Every reader returns a :class:`RawTable`: the cells as read (objects, no type guessing
beyond what the format itself stores), the column names, and for each data row its
*source row number*:

* CSV and Excel: the spreadsheet row (header = row 1, first data row = row 2);
* SPSS: the 1-based case number.

The header is row 1 unless the source declares ``header_row:`` (1-based, CSV and Excel):
rows above it are titles, counted and reported (:attr:`RawTable.notes`), never data.
In an Excel workbook only the declared ``sheet:`` is read; other sheets (notes, lists)
are reported by their number only, since a sheet name may name a client. Merged cells:
openpyxl gives the value of a merged range to its top-left cell only and leaves the
other cells of the range empty, so a merged score or label counts once, for the row and
column of its top-left cell.

Rows whose cells are all empty are skipped (they hold no data). Any problem with the
file as a whole raises :class:`~effectstudy.errors.SourceError` naming the file (and
the row or column where known); never a traceback of the underlying library, and never
the content of a cell or of an undeclared header (it may name a client).

Nothing is lost silently; each reader checks what its parser returned against an
independent count of the file:

* CSV: the physical lines of the decoded text are counted without the csv parser; a
  record may span several lines only through a properly quoted field, so a stray
  opening quote that swallows later rows raises an error naming the row where it starts
  and how many lines it swallowed.
* Excel: formulas are inspected; a formula cell gives its cached result, and one
  without a stored result becomes an :class:`UnreadableCell` (for the rejection log),
  never an empty cell. The rows with content in the sheet XML are counted from the
  workbook package itself and compared with the rows openpyxl read.
* SPSS: the number of cases the file's header declares is compared with the cases
  read. Value labels are applied only to the columns the dictionary declares as
  categorical (occasion, phase, single-case phase, instrument, scale, last phase, end
  reason, interventions); a score column keeps its numbers whatever labels it carries.
"""

from __future__ import annotations

import codecs
import csv
import io
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd

from effectstudy.dictionary import SourceFile
from effectstudy.errors import EffectStudyError, SourceError

__all__ = ["FORMULA_WITHOUT_RESULT", "READERS", "RawTable", "UnreadableCell",
           "declared_headers", "decode_text", "is_empty", "label_columns", "physical_lines", "read_csv",
           "read_excel", "read_export_bytes", "read_source", "read_spss", "sav_case_count",
           "xlsx_rows_with_content"]


@dataclass(frozen=True)
class RawTable:
    """Cells of one export as read, with source row numbers."""

    frame: pd.DataFrame  # object columns, one per source column
    rows: tuple[int, ...]  # source row number of each frame row
    file: Path
    #: Facts about the file worth a ``note`` in the log (title rows, sheets not read);
    #: text written by the reader, never cell content.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnreadableCell:
    """A cell that holds something the reader cannot turn into a value.

    It is not empty (:func:`is_empty` is ``False``): the mapping step logs it as a
    rejection with :attr:`reason`. The reason never repeats the cell's content.
    """

    reason: str

    def __str__(self) -> str:
        return f"unreadable cell: {self.reason}"


#: Reason of an :class:`UnreadableCell` for an Excel formula without a cached result.
FORMULA_WITHOUT_RESULT = ("Excel formula without a stored result (open and save the workbook "
                          "in Excel, or export values)")


def is_empty(value: object) -> bool:
    """True for a missing cell: None, NaN/NA, or a string of white space only.

    An :class:`UnreadableCell` is not empty.
    """
    if value is None:
        return True
    if isinstance(value, UnreadableCell):
        return False
    if isinstance(value, str):
        return not value.strip()
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


# --------------------------------------------------------------------------- #
# Columns the dictionary declares (safe to name in a message)
# --------------------------------------------------------------------------- #
def _expand(names: Iterable[str | None], sf: SourceFile) -> set[str]:
    """Column names, with ``{occasion}`` templates expanded for each occasion label."""
    out: set[str] = set()
    for name in names:
        if not name:
            continue
        if "{occasion}" in name:
            out.update(name.replace("{occasion}", label) for label in sf.occasions)
        else:
            out.add(name)
    return out


def declared_headers(sf: SourceFile) -> set[str]:
    """Every column name the dictionary declares for this file.

    These names come from the dictionary, not from the export, so an error message may
    show them; any other header of the export may be a client's name and is shown only
    by its position.
    """
    names: list[str | None] = [sf.client_id, sf.birth_date, *sf.identifiers,
                               *sf.client_fields.values(), sf.sex_column, sf.occasion_column,
                               sf.date_column, sf.phase_column, sf.session_column,
                               sf.sced_phase_column, sf.instrument_column, sf.scale_column,
                               sf.score_column, *(m.column for m in sf.measures)]
    return _expand(names, sf)


#: Client fields whose cells are categories (value labels apply to them).
LABELLED_CLIENT_FIELDS = ("last_phase", "end_reason", "interventions")


def label_columns(sf: SourceFile) -> set[str]:
    """The declared categorical columns of ``sf``: the only ones SPSS value labels touch."""
    names: list[str | None] = [sf.occasion_column, sf.phase_column, sf.sced_phase_column,
                               sf.instrument_column, sf.scale_column]
    names += [sf.client_fields.get(f) for f in LABELLED_CLIENT_FIELDS]
    names.append(sf.sex_column)
    return _expand(names, sf)


def _positions(idx: list[int]) -> str:
    marks = [f"#{i + 1}" for i in idx]
    return marks[0] if len(marks) == 1 else ", ".join(marks[:-1]) + " and " + marks[-1]


def _title_note(above: list[list], sf: SourceFile) -> tuple[str, ...]:
    """A note on the non-empty rows above a declared header row (titles, not data)."""
    titles = sum(1 for r in above if not all(is_empty(v) for v in r))
    if not titles:
        return ()
    return (f"{titles} row(s) above the header (header_row {sf.header_row}) were skipped as "
            "titles, not data",)


def _finish(columns: list, data: list[list], rows: list[int], file: Path,
            sf: SourceFile, notes: tuple[str, ...] = ()) -> RawTable:
    declared = declared_headers(sf)
    names: list[str] = []
    keep: list[int] = []
    for i, col in enumerate(columns):
        if isinstance(col, UnreadableCell):
            raise SourceError(f"the header cell holds an {FORMULA_WITHOUT_RESULT}", file=file,
                              column=f"#{i + 1}")
        name = "" if col is None else str(col).strip()
        if not name:
            if all(is_empty(r[i]) if i < len(r) else True for r in data):
                continue  # an empty column without a header: nothing to read
            raise SourceError("a column with data has no header", file=file, column=f"#{i + 1}")
        names.append(name)
        keep.append(i)
    seen: dict[str, list[int]] = {}
    for name, i in zip(names, keep, strict=True):
        seen.setdefault(name, []).append(i)
    dups = [(name, idx) for name, idx in seen.items() if len(idx) > 1]
    if dups:
        name, idx = min(dups, key=lambda d: d[1][0])
        more = (f"; {len(dups) - 1} other header(s) also occur more than once"
                if len(dups) > 1 else "")
        # A header the dictionary declares is safe to show; any other may name a client.
        raise SourceError(f"columns {_positions(idx)} have the same header{more}", file=file,
                          column=name if name in declared else None)
    keep_data, keep_rows = [], []
    width = max(keep, default=-1) + 1
    for r, n in zip(data, rows, strict=True):
        r = list(r) + [None] * (width - len(r))
        cells = [r[i] for i in keep]
        if all(is_empty(v) for v in cells):
            continue
        keep_data.append(cells)
        keep_rows.append(n)
    frame = pd.DataFrame(keep_data, columns=names, dtype=object)
    return RawTable(frame, tuple(keep_rows), file, tuple(notes))


def read_export_bytes(path: Path) -> bytes:
    """The bytes of an export; an unreadable file raises :class:`SourceError` naming it."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read the file ({type(exc).__name__})", file=path) from None


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
_SEPARATORS = (",", ";", "\t", "|")
_UTF8_BOM = codecs.BOM_UTF8
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_SINGLE_BYTE = {"cp1252", "latin-1", "iso8859-1", "iso8859-15", "cp850", "cp437", "mac-roman"}


def decode_text(data: bytes, encoding: str, file: Path) -> str:
    """Decode an export declared as ``encoding``; a byte-order mark, NUL bytes or UTF-8
    text that contradict the declaration, or undecodable bytes, raise :class:`SourceError`."""
    try:
        enc = codecs.lookup(encoding).name
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r} declared", file=file) from None
    if data.startswith(_UTF8_BOM) and enc not in ("utf-8", "utf-8-sig"):
        try:
            data[len(_UTF8_BOM):].decode("utf-8")
        except UnicodeDecodeError:
            rest = ("but the rest is not UTF-8 either: re-export the file as UTF-8 or as "
                    f"{encoding} without a byte-order mark")
        else:
            rest = "and the file is UTF-8: set csv.encoding to utf-8 (or utf-8-sig)"
        raise SourceError(f"file starts with a UTF-8 byte-order mark but is declared {encoding} "
                          f"in the data dictionary, {rest}", file=file)
    if not enc.startswith("utf-16") and not enc.startswith("utf-32"):
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in data[:4096]:
            raise SourceError(
                f"file is not {encoding} text (it looks like UTF-16: byte-order mark or NUL bytes); "
                "re-export it as declared or fix csv.encoding in the dictionary",
                file=file,
            )
    if enc in _SINGLE_BYTE:
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
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SourceError(
            f"file is not valid {encoding}: undecodable byte 0x{data[exc.start]:02x} "
            f"(wrong csv.encoding in the dictionary?)",
            file=file,
            row=line,
        ) from None
    except UnicodeError as exc:  # e.g. a UTF-16 stream without a byte-order mark
        raise SourceError(f"file is not valid {encoding} ({type(exc).__name__}; wrong "
                          "csv.encoding in the dictionary?)", file=file) from None
    return text.lstrip("\ufeff")


def physical_lines(text: str) -> list[str]:
    """The lines of ``text`` as a text editor shows them (CR LF, CR or LF end a line).

    Counted without the csv module: the independent count the parser is checked against.
    """
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the break after the last line ends it; it does not start a new one
    return lines


def _check_spans(records: list[list[str]], spans: list[tuple[int, int]], lines: list[str],
                 sep: str, n_columns: int, path: Path) -> None:
    """Each record spanning several lines must be one properly quoted field, not a stray
    opening quote that swallowed rows (Python's csv module reads ``"abc`` up to the next
    quote anywhere in the file, or to its end, without an error). A quoted field may
    hold line breaks (RFC 4180, section 2, rule 6); by the grammar of that section its
    closing quote is followed by a separator or the end of the record (checked here by
    re-reading the record with ``strict=True``).

    ``lines`` is the independent count (:func:`physical_lines`); ``spans`` the first and
    last line of each record by the parser's own ``line_num``. A multi-line record is
    accepted only when it parses with ``strict=True`` as one record and no line inside
    its fields has the separators of a whole row (``n_columns - 1``).
    """
    covered = spans[-1][1] if spans else 0
    if covered != len(lines):
        raise SourceError(f"the CSV parser read {covered} line(s) but the file has "
                          f"{len(lines)}; the file cannot be read reliably", file=path)
    for number, (rec, (first, last)) in enumerate(zip(records, spans, strict=True), start=1):
        if last == first:
            continue
        inner = [seg for value in rec for seg in _LINE_BREAK.split(value)[1:]]
        row_like = n_columns < 2 or any(seg.count(sep) >= n_columns - 1 for seg in inner)
        block = "\n".join(lines[first - 1:last])
        try:
            closed = len(list(csv.reader(io.StringIO(block, newline=""), delimiter=sep,
                                         strict=True))) == 1
        except csv.Error:
            closed = False
        if row_like or not closed:
            lost = sum(1 for line in lines[first:last] if line.strip())
            where = f" (line {first} of the file)" if first != number else ""
            raise SourceError(
                f"a quoted field starting in this row{where} is not closed where the cell "
                f"ends: it swallows the next {lost} non-blank line(s) of the file, which would "
                "be lost as rows; fix the stray quote character in the export (cell content "
                "not shown)", file=path, row=number)


def read_csv(path: Path, sf: SourceFile) -> RawTable:
    """Read a CSV export with the declared ``sep``, ``decimal`` and ``encoding``.

    Cells stay text (decimal handling happens when a score is parsed). The records the
    csv parser returns are checked against an independent count of the file's lines; a
    quoted field may span lines only when it is properly closed and the lines it holds
    do not look like rows of their own.
    """
    sep = str(sf.csv.get("sep", ","))
    encoding = str(sf.csv.get("encoding", "utf-8"))
    data = read_export_bytes(path)
    if not data.strip():
        raise SourceError("empty file", file=path)
    text = decode_text(data, encoding, path)
    if not text.strip():
        raise SourceError("empty file", file=path)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    except (TypeError, csv.Error):
        raise SourceError(f"invalid csv.sep {sep!r} declared (one character expected)",
                          file=path) from None
    records: list[list[str]] = []
    spans: list[tuple[int, int]] = []
    try:
        for rec in reader:
            spans.append((spans[-1][1] + 1 if spans else 1, reader.line_num))
            records.append(rec)
    except csv.Error as exc:
        hint = (" (an unclosed quote starting in this row?)" if "field larger" in str(exc)
                else "")
        raise SourceError(f"malformed CSV: {exc}{hint}", file=path,
                          row=len(records) + 1) from None
    # records are numbered as a spreadsheet numbers rows (blank lines included)
    header_idx = next((i for i, r in enumerate(records) if any(c.strip() for c in r)), None)
    if header_idx is None:
        raise SourceError("empty file", file=path)
    notes: tuple[str, ...] = ()
    if sf.header_row > 1:
        header_idx = sf.header_row - 1
        if header_idx >= len(records) or not any(c.strip() for c in records[header_idx]):
            raise SourceError(f"header_row {sf.header_row} is empty or beyond the end of the "
                              "file (check header_row in the dictionary)", file=path,
                              row=sf.header_row)
        notes = _title_note([list(r) for r in records[:header_idx]], sf)
    header = records[header_idx]
    header_one_line = spans[header_idx][0] == spans[header_idx][1]
    if len(header) == 1 and header_one_line:
        found = [s for s in _SEPARATORS if s != sep and s in header[0]]
        if found:
            raise SourceError(
                f"only one column read with separator {sep!r}; the file seems to use "
                f"{found[0]!r} (wrong csv.sep in the dictionary?)",
                file=path,
                row=header_idx + 1,
            )
    _check_spans(records, spans, physical_lines(text), sep,
                 len(header) if header_one_line else 0, path)
    body = records[header_idx + 1:]
    rows = list(range(header_idx + 2, header_idx + 2 + len(body)))
    for rec, n in zip(body, rows, strict=True):
        if len(rec) > len(header) and any(c.strip() for c in rec[len(header):]):
            raise SourceError(
                f"row has {len(rec)} fields, the header has {len(header)} "
                f"(wrong csv.sep, or an unquoted {sep!r} in a cell?)",
                file=path,
                row=n,
            )
    if not body:
        raise SourceError("file has a header but no data rows", file=path)
    return _finish(header, body, rows, path, sf, notes)


# --------------------------------------------------------------------------- #
# Excel
# --------------------------------------------------------------------------- #
def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, str]:
    """Relationship id -> target part name of ``part`` (a path inside the package)."""
    folder, name = posixpath.split(part)
    rels_name = posixpath.join(folder, "_rels", name + ".rels")
    root = ElementTree.fromstring(zf.read(rels_name))
    out = {}
    for rel in root:
        target = rel.get("Target", "")
        if rel.get("TargetMode") == "External":
            continue
        target = (target.lstrip("/") if target.startswith("/")
                  else posixpath.normpath(posixpath.join(folder, target)))
        out[rel.get("Id", "")] = target
    return out


def _sheet_part(zf: zipfile.ZipFile, sheet: str) -> str:
    """Name of the XML part of worksheet ``sheet`` inside the .xlsx package."""
    workbook = "xl/workbook.xml"
    root = ElementTree.fromstring(zf.read("_rels/.rels"))
    for rel in root:
        if rel.get("Type", "").endswith("/officeDocument"):
            workbook = rel.get("Target", workbook).lstrip("/")
            break
    targets = _rels(zf, workbook)
    for el in ElementTree.fromstring(zf.read(workbook)).iter():
        if _local(el.tag) == "sheet" and el.get("name") == sheet:
            rid = next((v for k, v in el.attrib.items()
                        if k.startswith("{") and _local(k) == "id"), None)
            if rid in targets:
                return targets[rid]
    raise KeyError("sheet part not found")


def _column_number(ref: str) -> int:
    letters = "".join(ch for ch in ref if ch.isalpha()).upper()
    number = 0
    for ch in letters:
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def _scan_sheet(path: Path, sheet: str) -> tuple[set[int], set[tuple[int, int]]]:
    """(rows with content, cells of a formula with a stored text result) of one worksheet."""
    rows: set[int] = set()
    text_results: set[tuple[int, int]] = set()
    with zipfile.ZipFile(path) as zf, zf.open(_sheet_part(zf, sheet)) as fh:
        previous = 0
        for _event, el in ElementTree.iterparse(fh, events=("end",)):
            if _local(el.tag) != "row":
                continue
            r = el.get("r")
            number = int(r) if r else previous + 1
            previous = number
            column = 0
            for cell in el:
                if _local(cell.tag) != "c":
                    continue
                ref = cell.get("r")
                column = _column_number(ref) if ref else column + 1
                parts = {_local(part.tag): part for part in cell}
                value = parts.get("v")
                if ("f" in parts or (value is not None and value.text not in (None, ""))
                        or ("is" in parts and "".join(parts["is"].itertext()))):
                    rows.add(number)
                if "f" in parts and value is not None and cell.get("t") == "str":
                    text_results.add((number, column))  # a stored result, maybe ""
            el.clear()
    return rows, text_results


def xlsx_rows_with_content(path: Path, sheet: str) -> set[int]:
    """Sheet rows (1-based) that hold a value, a formula or an inline string.

    Read from the worksheet XML in the .xlsx package directly (an independent count,
    not openpyxl): the ``row`` elements of ``sheetData`` and their ``c`` cells with a
    ``v``, ``f`` or ``is`` child, as SpreadsheetML defines them (ECMA-376 Part 1,
    section 18.3.1). The part of sheet ``sheet`` is found through the package's
    relationships (``_rels/.rels``, the workbook's ``sheets`` and its ``.rels``).
    """
    return _scan_sheet(path, sheet)[0]


def read_excel(path: Path, sf: SourceFile) -> RawTable:
    """Read the declared sheet of an .xlsx workbook (header in ``header_row``, default 1).

    Only the declared sheet is read (other sheets are counted in a note). The value of a
    merged range belongs to its top-left cell only; the other cells of the range read as
    empty. Cells Excel stores as dates arrive as dates; date columns may also hold date
    serials or text dates (parsed by the mapping step).

    A formula cell gives the result Excel stored with it; a formula without a stored
    result (a workbook written by a script and never opened in Excel) becomes an
    :class:`UnreadableCell`. The rows read are checked against the rows with content in
    the worksheet XML.
    """
    import openpyxl  # local: slow import
    from openpyxl.worksheet.worksheet import Worksheet

    if path.stat().st_size == 0:
        raise SourceError("empty file", file=path)
    try:
        values_wb = openpyxl.load_workbook(path, read_only=False, data_only=True)
        formula_wb = openpyxl.load_workbook(path, read_only=False, data_only=False)
    except Exception as exc:  # openpyxl raises many kinds (BadZipFile, InvalidFileException...)
        raise SourceError(f"not a readable .xlsx workbook ({type(exc).__name__})",
                          file=path) from None
    try:
        if sf.sheet not in values_wb.sheetnames:
            raise SourceError(
                f"sheet {sf.sheet!r} not found; the workbook has {len(values_wb.sheetnames)} "
                "other sheet(s) (names not shown: they may name clients)", file=path,
                key="sheet",
            )
        others = len(values_wb.sheetnames) - 1
        ws, wf = values_wb[sf.sheet], formula_wb[sf.sheet]
        if not isinstance(ws, Worksheet) or not isinstance(wf, Worksheet):
            raise SourceError(f"sheet {sf.sheet!r} is not a worksheet (a chart sheet?)",
                              file=path, key="sheet")
        try:
            in_xml, text_results = _scan_sheet(path, sf.sheet)
        except Exception as exc:
            raise SourceError(f"cannot count the rows of sheet {sf.sheet!r} in the workbook "
                              f"package ({type(exc).__name__})", file=path) from None
        max_row = max(ws.max_row, wf.max_row)
        max_col = max(ws.max_column, wf.max_column)
        values: list[list] = []
        read_rows: set[int] = set()
        for number, (vrow, frow) in enumerate(
                zip(ws.iter_rows(min_row=1, max_row=max_row, min_col=1, max_col=max_col),
                    wf.iter_rows(min_row=1, max_row=max_row, min_col=1, max_col=max_col),
                    strict=True), start=1):
            out = []
            for vcell, fcell in zip(vrow, frow, strict=True):
                value = vcell.value
                if (fcell.data_type == "f" and value is None
                        and (number, vcell.column) not in text_results):
                    value = UnreadableCell(FORMULA_WITHOUT_RESULT)
                if value is not None or fcell.value is not None:
                    read_rows.add(number)
                out.append(value)
            values.append(out)
    finally:
        values_wb.close()
        formula_wb.close()
    missed = sorted(in_xml - read_rows)
    if missed:
        raise SourceError(f"{len(missed)} row(s) with content in the sheet were not read by "
                          "openpyxl; the workbook cannot be read reliably (re-save it in "
                          "Excel)", file=path, row=missed[0])
    if not values or all(all(is_empty(v) for v in r) for r in values):
        raise SourceError(f"sheet {sf.sheet!r} is empty", file=path)
    hr = sf.header_row
    if hr > len(values) or all(is_empty(v) for v in values[hr - 1]):
        raise SourceError(f"header_row {hr} of sheet {sf.sheet!r} is empty or below its last "
                          "row (check header_row in the dictionary)", file=path, row=hr)
    header = values[hr - 1]
    body = values[hr:]
    if not body:
        raise SourceError("sheet has a header but no data rows", file=path)
    notes = _title_note(values[:hr - 1], sf)
    if others:
        notes += (f"the workbook has {others} other sheet(s), not read (only sheet "
                  f"{sf.sheet!r} is declared; names not shown)",)
    return _finish(list(header), body, list(range(hr + 1, hr + 1 + len(body))), path, sf,
                   notes)


# --------------------------------------------------------------------------- #
# SPSS
# --------------------------------------------------------------------------- #
def _label_of(value: object, labels: dict) -> object:
    """The value label of a cell, or the cell itself when it has none."""
    if is_empty(value):
        return value
    try:
        if value in labels:
            return labels[value]
    except TypeError:  # unhashable
        return value
    if isinstance(value, float) and value.is_integer() and int(value) in labels:
        return labels[int(value)]
    return value


def _bytecode_units(stream: bytes) -> int:
    """8-byte values in a bytecode-compressed case stream (SPSS "simple compression").

    Each block of 8 command bytes is followed by the raw 8-byte values its ``253``
    commands announce; ``0`` is padding, ``252`` ends the data, every other code stands
    for one value.
    """
    i, n, units = 0, len(stream), 0
    while n - i >= 8:
        block = stream[i:i + 8]
        i += 8
        for code in block:
            if code == 0:
                continue
            if code == 252:
                return units
            units += 1
            if code == 253:
                i += 8
        if i > n:
            raise ValueError("a compressed value is cut off")
    if i != n:
        raise ValueError("the compressed data end inside a command block")
    return units


def sav_case_count(data: bytes) -> int:
    """Number of cases in the data section of an SPSS system file (.sav / .zsav).

    Counted from the bytes without pyreadstat, as the independent count the rows read
    are checked against: the dictionary records are skipped to find the case size (one
    8-byte unit per variable record) and the data section is measured (uncompressed),
    or its compression codes are counted (bytecode, or zlib blocks of bytecode).
    Layout per the GNU PSPP Developers Guide, "System File Format"
    (https://www.gnu.org/software/pspp/pspp-dev/).

    Raises ``ValueError`` (or ``struct.error``/``zlib.error``) when the file does not
    follow that layout or ends inside a case.
    """
    if data[:4] not in (b"$FL2", b"$FL3"):
        raise ValueError("not an SPSS system file")
    end = "<" if struct.unpack_from("<i", data, 64)[0] in (2, 3) else ">"
    compression = struct.unpack_from(end + "i", data, 72)[0]
    pos = 176
    case_units = 0

    def take(count: int = 1) -> tuple[int, ...]:
        nonlocal pos
        values = struct.unpack_from(f"{end}{count}i", data, pos)
        pos += 4 * count
        return values

    while True:
        (rec,) = take()
        if rec == 2:  # variable: type, has label, missing values, print, write, name
            _type, has_label, n_missing = take(3)
            pos += 16
            case_units += 1
            if has_label:
                (length,) = take()
                pos += (length + 3) // 4 * 4
            pos += 8 * abs(n_missing)
        elif rec == 3:  # value labels: value, length byte, label padded to 8
            (count,) = take()
            for _ in range(count):
                length = data[pos + 8]
                pos += 8 + 1 + length + (-(length + 1)) % 8
        elif rec == 4:  # variables the labels apply to
            (count,) = take()
            pos += 4 * count
        elif rec == 6:  # documents: lines of 80 characters
            (count,) = take()
            pos += 80 * count
        elif rec == 7:  # extension: subtype, element size, element count
            _sub, size, count = take(3)
            if size < 0 or count < 0:
                raise ValueError("negative extension record size")
            pos += size * count
        elif rec == 999:
            pos += 4
            break
        else:
            raise ValueError("unknown dictionary record type")
        if pos > len(data) or pos < 0:
            raise ValueError("the dictionary is cut off")
    if case_units == 0:
        raise ValueError("no variables")
    if compression == 0:
        units, rest = divmod(len(data) - pos, 8)
        if rest:
            raise ValueError("the data end inside a value")
    elif compression == 1:
        units = _bytecode_units(data[pos:])
    elif compression == 2:
        _zheader, ztrailer, _zlen = struct.unpack_from(end + "3q", data, pos)
        i = pos + 24
        stream = bytearray()
        while i < ztrailer:
            inflater = zlib.decompressobj()
            stream += inflater.decompress(data[i:ztrailer])
            if not inflater.eof:
                raise ValueError("a compressed block is cut off")
            i = ztrailer - len(inflater.unused_data)
        units = _bytecode_units(bytes(stream))
    else:
        raise ValueError("unknown compression")
    cases, rest = divmod(units, case_units)
    if rest:
        raise ValueError("the data end inside a case")
    return cases


def read_spss(path: Path, sf: SourceFile) -> RawTable:
    """Read a .sav file with pyreadstat.

    Value labels are applied only to the declared categorical columns
    (:func:`label_columns`); every other column keeps the values stored in the file (a
    score of 24 labelled ``'42'`` stays 24). The number of cases in the file's header
    is checked against the cases read.
    """
    import pyreadstat  # local: slow import

    if path.stat().st_size == 0:
        raise SourceError("empty file", file=path)
    try:
        df, meta = pyreadstat.read_sav(str(path), apply_value_formats=False,
                                       user_missing=False)
    except Exception as exc:  # pyreadstat's messages may quote the file: class name only
        raise SourceError(f"not a readable SPSS .sav file ({type(exc).__name__})",
                          file=path) from None
    declared_n = getattr(meta, "number_rows", None)
    if isinstance(declared_n, int) and declared_n >= 0 and declared_n != df.shape[0]:
        raise SourceError(f"the file's header declares {declared_n} case(s) but "
                          f"{df.shape[0]} were read (a truncated or damaged file?)", file=path)
    try:
        counted = sav_case_count(read_export_bytes(path))
    except (ValueError, IndexError, struct.error, zlib.error) as exc:
        raise SourceError(f"the cases of the SPSS file cannot be counted ({type(exc).__name__}:"
                          " the file does not follow the system-file layout or is cut off)",
                          file=path) from None
    if counted != df.shape[0]:
        raise SourceError(f"the file holds {counted} case(s) but {df.shape[0]} were read (its "
                          "header may declare a wrong number of cases; re-save it in SPSS)",
                          file=path)
    if df.shape[0] == 0:
        raise SourceError("file has no cases", file=path)
    all_labels = meta.variable_value_labels or {}
    columns = [str(c) for c in df.columns]
    data = [list(rec) for rec in df.astype(object).itertuples(index=False, name=None)]
    categorical = label_columns(sf)
    for j, col in enumerate(columns):
        labels = all_labels.get(col)
        if not labels or col not in categorical:
            continue
        for r in data:
            r[j] = _label_of(r[j], labels)
    return _finish(columns, data, list(range(1, 1 + len(data))), path, sf)


READERS = {"csv": read_csv, "excel": read_excel, "spss": read_spss}


def read_source(path: str | Path, sf: SourceFile) -> RawTable:
    """Read one export as its dictionary entry ``sf`` describes.

    Raises :class:`~effectstudy.errors.SourceError` for any problem with the file; an
    unexpected exception of a parser becomes one too, naming only its class (parser
    messages may quote the file's content).
    """
    path = Path(path)
    if not path.is_file():
        raise SourceError("export file not found", file=path)
    try:
        return READERS[sf.format](path, sf)
    except EffectStudyError:
        raise
    except Exception as exc:
        raise SourceError(f"the export could not be read ({type(exc).__name__})",
                          file=path) from None
