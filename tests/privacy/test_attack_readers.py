"""Attacks on the readers (issue 10, items 8, 10, 11, 15, 17, 19 and the SPSS case count).

Each test plants a client's name and a BSN in the malicious cell or header and asserts
the fixed behaviour *and* that the error text carries neither. Every name and number
here is invented.
"""

from __future__ import annotations

import csv
import io
import re
import struct
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from effectstudy.dictionary import MeasureMap, OccasionMap, SourceFile
from effectstudy.errors import SourceError
from effectstudy.harmonise import readers
from effectstudy.harmonise.readers import (
    FORMULA_WITHOUT_RESULT,
    UnreadableCell,
    is_empty,
    read_source,
)

NAME = "Milou Vos"
BSN = "641693266"
SECRETS = (NAME, "Milou", "Vos", BSN, "641 693 266")


def _clean(text: str) -> None:
    for s in SECRETS:
        assert s not in text, f"{s!r} leaked into {text!r}"


# --------------------------------------------------------------------------- #
# dictionary entries (built here: the tests do not depend on the shipped dictionary)
# --------------------------------------------------------------------------- #
PG_HEADER = ["Cliëntnummer", "Naam", "Geboortedatum", "BSN", "Meetmoment", "Datum", "Fase",
             "CRIES totaal", "Interventies"]


def pg_source(**csv_kw: str) -> SourceFile:
    return SourceFile(
        programme="pinq_gesloten", id="metingen", path="pinq_gesloten_metingen.csv",
        format="csv", layout="occasion_rows", client_id="Cliëntnummer",
        identifiers=("Naam", "Geboortedatum", "BSN"), birth_date="Geboortedatum",
        date_format="%d-%m-%Y",
        measures=(MeasureMap("CRIES-13", "total", "trauma_symptoms", column="CRIES totaal"),),
        csv={"sep": ";", "decimal": ",", "encoding": "cp1252", **csv_kw},
        client_fields={"interventions": "Interventies"},
        occasions={"Voormeting": OccasionMap("Voormeting", "intake"),
                   "Nameting": OccasionMap("Nameting", "discharge")},
        occasion_column="Meetmoment", date_column="Datum", phase_column="Fase",
        labels={"phase": {"Verblijf": "verblijf"}},
    )


def pg_row(i: int) -> list[str]:
    return [f"DK-{770000 + i}", f"Client{i} Testnaam", "14-03-2008", f"{100000000 + i}",
            "Voormeting" if i % 2 else "Nameting", "06-02-2023", "Verblijf", str(20 + i % 30),
            "onderwijs"]


def write_pg(path: Path, rows: list[list[str]], header: list[str] = PG_HEADER,
             encoding: str = "cp1252", prefix: bytes = b"") -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=";", lineterminator="\r\n")
    w.writerow(header)
    w.writerows(rows)
    path.write_bytes(prefix + buf.getvalue().encode(encoding))
    return path


def im_source() -> SourceFile:
    return SourceFile(
        programme="intermetzo", id="rom", path="intermetzo_rom.xlsx", format="excel",
        layout="wide", sheet="ROM", client_id="Dossiernr",
        identifiers=("Voornaam", "BSN-nummer"),
        measures=(MeasureMap("CRIES-13", "total", "trauma_symptoms", column="CRIES_{occasion}"),),
        occasions={"T0": OccasionMap("T0", "intake"), "T1": OccasionMap("T1", "during")},
        phase_column="Fase_{occasion}",
    )


def hl_source() -> SourceFile:
    return SourceFile(
        programme="hoenderloo", id="metingen", path="hoenderloo_metingen.sav", format="spss",
        layout="occasion_rows", client_id="clientnr", identifiers=("naam", "bsn"),
        client_fields={"weeks_in_care": "duur", "end_reason": "einde",
                       "interventions": "modules"},
        occasion_column="moment", phase_column="fase",
        occasions={"Begin": OccasionMap("Begin", "intake"), "Eind": OccasionMap("Eind",
                                                                              "discharge")},
        measures=(MeasureMap("KJTS", "total", "trauma_symptoms", column="kjts"),),
    )


# --------------------------------------------------------------------------- #
# item 10: a stray quote must not swallow rows
# --------------------------------------------------------------------------- #
def test_stray_quote_in_row_9_of_592_lines_raises(tmp_path):
    rows = [pg_row(i) for i in range(1, 592)]  # header + 591 rows = 592 lines
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows)
    lines = path.read_bytes().split(b"\r\n")
    assert len(lines) == 593 and lines[-1] == b""  # 592 lines and the final line break
    fields = lines[8].split(b";")  # line 9 = spreadsheet row 9
    fields[1] = b'"' + f"{NAME} {BSN}".encode()  # an opening quote that is never closed
    lines[8] = b";".join(fields)
    path.write_bytes(b"\r\n".join(lines))
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    err = info.value
    assert type(err) is SourceError
    assert err.row == 9 and err.file == str(path)
    assert "583" in str(err)  # lines 10..592 would have vanished into one cell
    assert "quote" in str(err)
    _clean(str(err))


def test_stray_quote_closed_by_a_later_quote_raises(tmp_path):
    rows = [pg_row(i) for i in range(1, 40)]
    rows[30][8] = "onderwijs; EMDR"  # csv.writer quotes this cell: a closing quote later on
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows)
    text = path.read_bytes().decode("cp1252").replace(f"{rows[4][1]};",
                                                       f'"{NAME} {BSN};', 1)
    path.write_bytes(text.encode("cp1252"))
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    assert info.value.row == 6  # the 5th data row is spreadsheet row 6
    _clean(str(info.value))


def test_properly_quoted_multiline_cell_is_accepted(tmp_path):
    rows = [pg_row(i) for i in range(1, 6)]
    rows[1][8] = "onderwijs\r\nEMDR; traumabehandeling"
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows)
    assert path.read_bytes().count(b"\r\n") == 7  # 6 records, one of them on two lines
    raw = read_source(path, pg_source())
    assert raw.rows == (2, 3, 4, 5, 6)
    assert raw.frame["Interventies"].iloc[1] == "onderwijs\r\nEMDR; traumabehandeling"
    assert list(raw.frame["Cliëntnummer"]) == [r[0] for r in rows]


def test_physical_lines_counts_every_line_ending():
    assert readers.physical_lines("a\r\nb\rc\nd") == ["a", "b", "c", "d"]
    assert readers.physical_lines("a\r\n\r\nb\r\n") == ["a", "", "b"]


# --------------------------------------------------------------------------- #
# item 11: Excel formulas without a cached value
# --------------------------------------------------------------------------- #
def _workbook(path: Path, header: list, rows: list[list], sheet: str = "ROM") -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append(header)
    for r in rows:
        ws.append(r)
    wb.save(path)
    return path


def _edit_sheet(path: Path, edit) -> None:
    """Rewrite the first worksheet's XML of an .xlsx with ``edit(text) -> text``."""
    with zipfile.ZipFile(path) as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    name = "xl/worksheets/sheet1.xml"
    new = edit(parts[name].decode("utf-8"))
    assert new != parts[name].decode("utf-8")
    parts[name] = new.encode("utf-8")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for n, data in parts.items():
            zf.writestr(n, data)


IM_HEADER = ["Dossiernr", "Voornaam", "BSN-nummer", "Fase_T0", "CRIES_T0", "Fase_T1", "CRIES_T1"]


def test_formula_without_cached_value_is_an_unreadable_cell(tmp_path):
    path = _workbook(tmp_path / "intermetzo_rom.xlsx", IM_HEADER, [
        [520001, "Milou", BSN, "1", f'=LEN("{NAME}")+30', "2", 33],
        [520002, "Anna", "123456782", "1", 40, "2", "=20+13"],
    ])
    raw = read_source(path, im_source())
    cell = raw.frame["CRIES_T0"].iloc[0]
    assert isinstance(cell, UnreadableCell)
    assert cell.reason == FORMULA_WITHOUT_RESULT
    assert "stored result" in cell.reason
    assert not is_empty(cell)
    _clean(str(cell) + repr(cell))
    assert raw.frame["CRIES_T0"].iloc[1] == 40
    assert isinstance(raw.frame["CRIES_T1"].iloc[1], UnreadableCell)
    assert raw.frame["CRIES_T1"].iloc[0] == 33
    assert raw.rows == (2, 3)
    with pytest.raises(AttributeError):  # frozen
        cell.reason = "x"  # type: ignore[misc]


def test_formula_with_cached_value_gives_the_value(tmp_path):
    path = _workbook(tmp_path / "intermetzo_rom.xlsx", IM_HEADER, [
        [520001, "Milou", BSN, "1", "=40+1", "2", 33],
    ])
    _edit_sheet(path, lambda t: t.replace("<f>40+1</f><v></v>", "<f>40+1</f><v>41</v>"))
    raw = read_source(path, im_source())
    assert raw.frame["CRIES_T0"].iloc[0] == 41
    assert not any(isinstance(v, UnreadableCell) for v in raw.frame.to_numpy().ravel())


def test_formula_with_stored_empty_text_is_an_empty_cell(tmp_path):
    # =IF(...;"";...) saved by Excel: t="str" with an empty stored result. That is an
    # empty cell (no measurement), not an unreadable one.
    path = _workbook(tmp_path / "intermetzo_rom.xlsx", IM_HEADER, [
        [520001, "Anna", "123456782", "1", "=40+1", "2", "=30+3"],
    ])
    _edit_sheet(path, lambda t: t.replace('<c r="E2"><f>40+1</f><v></v></c>',
                                          '<c r="E2" t="str"><f>IF(1=1,"",1)</f><v></v></c>'))
    raw = read_source(path, im_source())
    assert is_empty(raw.frame["CRIES_T0"].iloc[0])
    assert isinstance(raw.frame["CRIES_T1"].iloc[0], UnreadableCell)


def test_formula_in_a_header_cell_is_named_by_position(tmp_path):
    path = _workbook(tmp_path / "intermetzo_rom.xlsx", [*IM_HEADER, f'="{NAME}"'],
                     [[520001, "Milou", BSN, "1", 30, "2", 33, 1]])
    with pytest.raises(SourceError) as info:
        read_source(path, im_source())
    assert info.value.column == "#8"
    _clean(str(info.value))


def test_excel_rows_are_counted_independently_of_openpyxl(tmp_path):
    path = _workbook(tmp_path / "intermetzo_rom.xlsx", IM_HEADER, [
        [520001, "Anna", "123456782", "1", 30, "2", 33],
        [520002, "Sara", "234567891", "1", 31, "2", 32],
    ])
    assert readers.xlsx_rows_with_content(path, "ROM") == {1, 2, 3}
    # An inline string in a cell not typed inlineStr: openpyxl reads it as empty,
    # the sheet XML holds it. Row 3 would vanish without a trace.
    def edit(text: str) -> str:
        text = re.sub(r'<row r="3">.*?</row>',
                      f'<row r="3"><c r="A3"><is><t>{NAME} {BSN}</t></is></c>'
                      f'<c r="E3"><is><t>35</t></is></c></row>', text)
        return text
    _edit_sheet(path, edit)
    with pytest.raises(SourceError) as info:
        read_source(path, im_source())
    assert info.value.row == 3
    _clean(str(info.value))


# --------------------------------------------------------------------------- #
# item 15: SPSS value labels only on declared categorical columns
# --------------------------------------------------------------------------- #
def _sav(path: Path, **labels: dict) -> Path:
    import pyreadstat

    df = pd.DataFrame({
        "clientnr": ["310001", "310001", "310002"],
        "naam": [NAME, NAME, "Anna Test"],
        "bsn": [BSN, BSN, "123456782"],
        "moment": [1.0, 2.0, 1.0],
        "fase": [1.0, 1.0, 2.0],
        "kjts": [24.0, 30.0, 12.0],
        "duur": [24.0, 24.0, 10.0],
        "einde": [1.0, 1.0, 2.0],
        "modules": [3.0, 3.0, 3.0],
    })
    pyreadstat.write_sav(df, str(path), variable_value_labels=labels)
    return path


def test_spss_value_labels_only_on_categorical_columns(tmp_path):
    path = _sav(tmp_path / "hoenderloo_metingen.sav",
                moment={1: "Begin", 2: "Eind"}, fase={1: "Observatie", 2: "Behandeling"},
                kjts={24: "42", 30: NAME}, duur={24: "52"},
                einde={1: "Afgerond", 2: "Weggelopen"}, modules={3: "EMDR"})
    raw = read_source(path, hl_source())
    f = raw.frame
    assert list(f["kjts"]) == [24.0, 30.0, 12.0]  # a score keeps its numbers
    assert list(f["duur"]) == [24.0, 24.0, 10.0]  # weeks in care is not categorical
    assert list(f["moment"]) == ["Begin", "Eind", "Begin"]
    assert list(f["fase"]) == ["Observatie", "Observatie", "Behandeling"]
    assert list(f["einde"]) == ["Afgerond", "Afgerond", "Weggelopen"]
    assert list(f["modules"]) == ["EMDR"] * 3
    assert raw.rows == (1, 2, 3)
    assert NAME not in f.drop(columns=["naam"]).to_csv()


def test_spss_unlabelled_category_keeps_its_code(tmp_path):
    path = _sav(tmp_path / "hoenderloo_metingen.sav", moment={1: "Begin"})
    f = read_source(path, hl_source()).frame
    assert list(f["moment"]) == ["Begin", 2.0, "Begin"]


# --------------------------------------------------------------------------- #
# item 7 (SPSS): cases in the header against cases read
# --------------------------------------------------------------------------- #
def test_spss_case_count_disagreement_raises(tmp_path, monkeypatch):
    import pyreadstat

    path = _sav(tmp_path / "hoenderloo_metingen.sav")
    real = pyreadstat.read_sav

    def short_read(*args, **kw):  # a reader that silently loses the last case
        df, meta = real(*args, **kw)
        return df.iloc[:-1], meta

    monkeypatch.setattr(pyreadstat, "read_sav", short_read)
    with pytest.raises(SourceError) as info:
        read_source(path, hl_source())
    assert "3 case(s)" in str(info.value) and "2 were read" in str(info.value)
    _clean(str(info.value))


def test_spss_header_declaring_too_few_cases_raises(tmp_path):
    # pyreadstat reads only the number of cases the header declares: with 2 declared,
    # the third case would vanish silently. The independent count sees 3.
    import pyreadstat

    path = _sav(tmp_path / "hoenderloo_metingen.sav")
    data = bytearray(path.read_bytes())
    assert struct.unpack_from("<i", data, 80)[0] == 3
    struct.pack_into("<i", data, 80, 2)
    path.write_bytes(bytes(data))
    assert pyreadstat.read_sav(str(path))[0].shape[0] == 2  # the silent loss
    with pytest.raises(SourceError) as info:
        read_source(path, hl_source())
    assert "holds 3 case(s) but 2 were read" in str(info.value)
    _clean(str(info.value))


@pytest.mark.parametrize("kw", [{}, {"row_compress": True}, {"compress": True}])
def test_sav_case_count_of_every_compression(tmp_path, kw):
    import pyreadstat

    df = pd.DataFrame({"clientnr": [f"31{i:04d}" for i in range(57)],
                       "naam": [("x" * (i % 300)) for i in range(57)],
                       "kjts": [float(i % 7) if i % 5 else None for i in range(57)]})
    path = tmp_path / "t.sav"
    pyreadstat.write_sav(df, str(path), variable_value_labels={"kjts": {1: "een"}},
                         column_labels=["id", None, "score"], note="documents record", **kw)
    data = path.read_bytes()
    assert readers.sav_case_count(data) == 57
    unknown = bytearray(data)
    struct.pack_into("<i", unknown, 80, -1)
    assert readers.sav_case_count(bytes(unknown)) == 57
    with pytest.raises(ValueError):
        readers.sav_case_count(data[:-300])


def test_truncated_sav_is_a_source_error_without_content(tmp_path):
    path = _sav(tmp_path / "hoenderloo_metingen.sav")
    data = path.read_bytes()
    assert NAME.encode() in data
    path.write_bytes(data[:-40])
    with pytest.raises(SourceError) as info:
        read_source(path, hl_source())
    assert info.value.file == str(path)
    _clean(str(info.value))


# --------------------------------------------------------------------------- #
# item 19: a UTF-8 byte-order mark on a file declared cp1252
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("body_encoding", ["utf-8", "cp1252"])
def test_utf8_bom_on_cp1252_file_is_named(tmp_path, body_encoding):
    rows = [pg_row(1), pg_row(2)]
    rows[0][1] = f"{NAME} Zoë"
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows, encoding=body_encoding,
                    prefix=b"\xef\xbb\xbf")
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    msg = str(info.value)
    assert "byte-order mark" in msg and "cp1252" in msg
    assert "required column" not in msg
    if body_encoding == "utf-8":
        assert "utf-8" in msg
    _clean(msg)


def test_utf8_bom_on_utf8_file_is_read(tmp_path):
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(1)], encoding="utf-8",
                    prefix=b"\xef\xbb\xbf")
    raw = read_source(path, pg_source(encoding="utf-8"))
    assert list(raw.frame.columns) == PG_HEADER


# --------------------------------------------------------------------------- #
# item 8: duplicate and missing headers are named by position
# --------------------------------------------------------------------------- #
def test_duplicate_undeclared_header_is_named_by_position(tmp_path):
    header = [*PG_HEADER, f"{NAME} {BSN}", "Telefoon", f"{NAME} {BSN}"]
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv",
                    [pg_row(1) + ["x", "y", "z"]], header=header)
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    msg = str(info.value)
    assert "columns #10 and #12 have the same header" in msg
    assert info.value.column is None
    _clean(msg)


def test_duplicate_declared_header_is_named(tmp_path):
    header = [*PG_HEADER, "CRIES totaal", f"{NAME}", f"{NAME}"]
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(1) + ["1", "2", "3"]],
                    header=header)
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    msg = str(info.value)
    assert "columns #8 and #10 have the same header" in msg
    assert "1 other header(s) also occur more than once" in msg
    assert info.value.column == "CRIES totaal"
    _clean(msg)


def test_column_with_data_but_no_header_is_named_by_position(tmp_path):
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv",
                    [pg_row(1) + [f"{NAME} {BSN}"]], header=[*PG_HEADER, ""])
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    assert info.value.column == "#10"
    _clean(str(info.value))


def test_blank_column_named_like_a_placeholder_is_kept(tmp_path):
    # an earlier version dropped any header starting with "__blank_" unread
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(1) + ["7", ""]],
                    header=[*PG_HEADER, "__blank_9", ""])
    raw = read_source(path, pg_source())
    assert list(raw.frame.columns) == [*PG_HEADER, "__blank_9"]
    assert raw.frame["__blank_9"].iloc[0] == "7"


# --------------------------------------------------------------------------- #
# item 17: no traceback, no parser message from the readers
# --------------------------------------------------------------------------- #
def test_corrupt_xlsx_and_sav_give_source_errors_without_content(tmp_path):
    x = tmp_path / "intermetzo_rom.xlsx"
    x.write_bytes(b"PK\x03\x04" + f"{NAME} {BSN}".encode() * 20)
    s = tmp_path / "hoenderloo_metingen.sav"
    s.write_bytes(b"$FL2@(#) IBM SPSS STATISTICS" + f"{NAME} {BSN}".encode() * 40)
    for path, sf in ((x, im_source()), (s, hl_source())):
        with pytest.raises(SourceError) as info:
            read_source(path, sf)
        assert info.value.file == str(path)
        assert info.value.__cause__ is None and info.value.__suppress_context__
        _clean(str(info.value))


def test_unexpected_parser_exception_becomes_a_source_error(tmp_path, monkeypatch):
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(1)])

    def boom(path, sf):
        raise ValueError(f"could not parse {NAME} {BSN}")

    monkeypatch.setitem(readers.READERS, "csv", boom)
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    assert "ValueError" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__
    _clean(str(info.value))


def test_undecodable_byte_names_the_line_not_the_text(tmp_path):
    rows = [pg_row(1), pg_row(2)]
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows, encoding="utf-8")
    data = path.read_bytes().replace(rows[1][1].encode(), f"{NAME}\x81".encode("latin-1"))
    path.write_bytes(data)
    with pytest.raises(SourceError) as info:  # declared utf-8, a stray 0x81 byte in row 3
        read_source(path, pg_source(encoding="utf-8"))
    assert info.value.row == 3
    _clean(str(info.value))


@pytest.mark.parametrize("sep", ["", ";;"])
def test_invalid_separator_is_a_source_error(tmp_path, sep):
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(1)])
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source(sep=sep))
    assert "csv.sep" in str(info.value)


def test_field_larger_than_the_csv_limit_is_a_source_error(tmp_path):
    rows = [pg_row(1), pg_row(2)]
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", rows)
    text = path.read_text(encoding="cp1252").replace(rows[1][1], '"' + (NAME + " ") * 20000)
    path.write_text(text, encoding="cp1252")
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    assert info.value.row == 3
    _clean(str(info.value))


def test_formula_scores_are_counted_and_logged_end_to_end(tmp_path):
    """The issue's case: 5 of 13 CRIES_T0 scores were formulas without stored results and
    were neither counted nor logged. Now each is in the accounting and in the log."""
    from openpyxl import Workbook

    from effectstudy.dictionary import load_dictionary
    from effectstudy.harmonise import harmonise

    occ = ["T0", "T1", "T2", "T3"]
    header = ["Dossiernr", "Voornaam", "Achternaam", "Geb.datum", "BSN-nummer", "Duur_weken",
              "Fase_bereikt", "Uitstroomreden", "Modules", "Modelgetrouwheid"]
    for o in occ:
        header += [f"Datum_{o}", f"Fase_{o}", f"CRIES_{o}", f"YSR_INT_{o}", f"YSR_EXT_{o}",
                   f"RSES_{o}", f"KIDS_OUDERS_{o}"]
    phases = ["1 Stabilisatie", "2 Diagnostiek", "3 Versterking", "4 Nazorg"]
    wb = Workbook()
    ws = wb.active
    ws.title = "ROM"
    ws.append(header)
    formulas = {1, 4, 6, 9, 12}  # 5 of 13 clients
    for i in range(13):
        row = [520101 + i, "Milou" if i == 1 else f"Naam{i}", "Vos", "2008-03-14",
               BSN if i == 1 else f"{200000000 + i}", 30, "4 Nazorg", "Regulier",
               "traumabehandeling", 0.9]
        for k, o in enumerate(occ):
            cries = f'=LEN("{NAME}")+30' if (o == "T0" and i in formulas) else 40 - 5 * k
            row += [f"2023-0{1 + 2 * k}-01", phases[k], cries, 70 - 3 * k, 60 - 2 * k,
                    10 + k, 40 + k]
        ws.append(row)
    wb.save(tmp_path / "intermetzo_rom.xlsx")
    h = harmonise(tmp_path, load_dictionary(), key=b"attack-readers-key-0123456789")
    acc = h.accounting.set_index("file").loc["intermetzo_rom.xlsx"]
    assert acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]
    assert acc["rows_in"] == 13 * 4 * 5  # every score cell, formulas included
    log = h.rejections[h.rejections["column"] == "CRIES_T0"]
    assert sorted(log["row"].astype(int)) == [i + 2 for i in sorted(formulas)]
    assert (log["kind"] == "unreadable_cell").all() and log["scores"].sum() == 5
    t0 = h.table[(h.table["source_column"] == "CRIES_T0")]
    assert len(t0) == 13 - 5
    for frame in (h.rejections, h.table, h.clients):
        _clean(frame.to_csv(index=False))


def test_stray_quote_in_the_header_raises_on_row_1(tmp_path):
    path = write_pg(tmp_path / "pinq_gesloten_metingen.csv", [pg_row(i) for i in range(1, 6)],
                    header=[f'"{NAME}', *PG_HEADER[1:]])
    text = path.read_text(encoding="cp1252").replace(f'"""{NAME}"', f'"{NAME}', 1)
    path.write_text(text, encoding="cp1252")
    with pytest.raises(SourceError) as info:
        read_source(path, pg_source())
    assert info.value.row == 1 and "5 non-blank line(s)" in str(info.value)
    _clean(str(info.value))
