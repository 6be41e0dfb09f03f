"""(Re)generate the bad-input corpus: one folder per case, one small bad file each.

Run ``.venv/bin/python tests/bad_inputs/make_corpus.py`` from the repository root.
Export cases hold one export under its dictionary file name; dictionary cases hold a
``dictionary/`` overlay (only the changed YAML files) that the test lays over a copy
of the shipped dictionary. Every name, BSN and birth date here is invented.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DICT = ROOT / "data_dictionary"

#: Invented identifiers in the corpus; tests assert none reaches a message or a log.
IDENTIFIERS = ["Zoë Jansenvdb", "Fleur Mulderqx", "14-03-2008", "2008-03-14", "02-11-2007",
               "2007-11-02", "123456782", "234567891", "DK-770001", "DK-770002", "TJ99001",
               "TJ99002", "Zoë", "Jansenvdb", "1-13-2007", "520001", "310001"]

PG_HEADER = ["Cliëntnummer", "Naam", "Geboortedatum", "BSN", "Meetmoment", "Datum", "Fase",
             "CRIES totaal", "SDQ internaliserend", "SDQ externaliserend", "RSES totaal",
             "HoNOSCA totaal", "Weken in zorg", "Laatste fase", "Reden einde", "Interventies",
             "Programmatrouw"]


def pg_rows() -> list[list[str]]:
    """Four valid pinq_gesloten rows (spreadsheet rows 2-5): two clients x two occasions."""
    return [
        ["DK-770001", "Zoë Jansenvdb", "14-03-2008", "123456782", "Voormeting", "06-02-2023",
         "Verblijf", "41", "12", "9", "14", "22", "30", "Verblijf", "Afgerond", "onderwijs", "7,5"],
        ["DK-770001", "Zoë Jansenvdb", "14-03-2008", "123456782", "Nameting", "04-09-2023",
         "Verblijf", "30", "9,5", "7", "17", "15", "30", "Verblijf", "Afgerond", "onderwijs", "7,5"],
        ["DK-770002", "Fleur Mulderqx", "02-11-2007", "234567891", "Voormeting", "13-03-2023",
         "Verblijf", "35", "11", "10", "12", "25", "20", "Verblijf", "Weggelopen", "onderwijs",
         "7,5"],
        ["DK-770002", "Fleur Mulderqx", "02-11-2007", "234567891", "Tussenmeting 1", "12-06-2023",
         "Verblijf", "33", "10", "11", "13", "24", "20", "Verblijf", "Weggelopen", "onderwijs",
         "7,5"],
    ]


def edited(rows: list[list[str]], *cells: tuple[int, int, str]) -> list[list[str]]:
    """``rows`` with each (row, column, value) of ``cells`` written in; returns the same list."""
    for i, j, value in cells:
        rows[i][j] = value
    return rows


def write_csv(path: Path, header: list[str], rows: list[list[str]], *, sep: str = ";",
              encoding: str = "cp1252", newline: str = "\r\n") -> None:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter=sep, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buf.getvalue().encode(encoding))


def pg(case: str, rows: list[list[str]] | None = None, header: list[str] | None = None,
       **kw) -> None:
    write_csv(HERE / case / "pinq_gesloten_metingen.csv", header or PG_HEADER,
              rows if rows is not None else pg_rows(), **kw)


EGO_HEADER = ["client_id", "name", "birth_date", "bsn", "occasion", "date", "phase", "instrument",
              "scale", "score", "weeks_in_care", "last_phase", "end_reason", "interventions",
              "fidelity"]


def ego_rows() -> list[list[str]]:
    base = ["TJ99001", "Zoë Jansenvdb", "2008-03-14", "123456782"]
    tail = ["52", "nazorg", "completed", "EMDR", "6.5"]
    return [
        base + ["T0", "2023-02-06", "behandeling", "YSR", "INT", "68"] + tail,
        base + ["T0", "2023-02-06", "behandeling", "CBSA", "GSW", "11"] + tail,
        base + ["T3", "2024-02-05", "behandeling", "YSR", "INT", "58"] + tail,
    ]


def ego(case: str, rows: list[list[str]], **kw) -> None:
    write_csv(HERE / case / "egoversterkend_scores_long.csv", EGO_HEADER, rows, sep=",",
              encoding=kw.pop("encoding", "utf-8"), newline="\n")


IM_OCC = ["T0", "T1", "T2", "T3"]


def intermetzo(case: str, *, sheet: str = "ROM", drop: tuple[str, ...] = (),
               extra: dict | None = None) -> None:
    from openpyxl import Workbook

    header = ["Dossiernr", "Voornaam", "Achternaam", "Geb.datum", "BSN-nummer", "Duur_weken",
              "Fase_bereikt", "Uitstroomreden", "Modules", "Modelgetrouwheid"]
    row = [520001, "Zoë", "Jansenvdb", "2008-03-14", "123456782", 30, "4 Nazorg", "Regulier",
           "traumabehandeling", 8.0]
    for k, occ in enumerate(IM_OCC):
        for col, val in ((f"Datum_{occ}", f"2023-0{1 + 2 * k}-09"),
                         (f"Fase_{occ}", ["1 Stabilisatie", "2 Diagnostiek", "3 Versterking",
                                          "4 Nazorg"][k]),
                         (f"CRIES_{occ}", 40 - 4 * k), (f"YSR_INT_{occ}", 70 - 2 * k),
                         (f"YSR_EXT_{occ}", 62 - k), (f"RSES_{occ}", 11 + k),
                         (f"KIDS_OUDERS_{occ}", 40 + k)):
            header.append(col)
            row.append(val)
    for col, val in (extra or {}).items():
        header.append(col)
        row.append(val)
    keep = [i for i, h in enumerate(header) if h not in drop]
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([header[i] for i in keep])
    ws.append([row[i] for i in keep])
    path = HERE / case / "intermetzo_rom.xlsx"
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)


def overlay(case: str, relpath: str, text: str) -> None:
    path = HERE / case / "dictionary" / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def shipped(relpath: str) -> str:
    return (DICT / relpath).read_text(encoding="utf-8")


def main() -> None:
    for child in HERE.iterdir():
        if child.is_dir() and not child.name.startswith(("_", ".")):
            shutil.rmtree(child)

    # ---- exports: file-level errors (SourceError) ------------------------------------------
    pg("wrong_encoding_utf16", encoding="utf-16")
    ego("wrong_encoding_cp1252_in_utf8", ego_rows(), encoding="cp1252")
    pg("wrong_encoding_utf8_in_cp1252", encoding="utf-8")
    (HERE / "empty_file").mkdir()
    (HERE / "empty_file" / "pinq_gesloten_metingen.csv").write_bytes(b"")
    pg("header_only", rows=[])
    pg("missing_required_column",
       rows=[r[:4] + r[5:] for r in pg_rows()], header=PG_HEADER[:4] + PG_HEADER[5:])
    pg("csv_wrong_separator", sep=",")
    bad = pg_rows()
    bad[1] = bad[1] + ["extra", "fields"]
    pg("csv_ragged_row", rows=bad)
    intermetzo("excel_missing_sheet", sheet="Blad1")
    intermetzo("wide_missing_occasion_column", drop=("CRIES_T2",))
    (HERE / "corrupt_xlsx").mkdir()
    (HERE / "corrupt_xlsx" / "intermetzo_rom.xlsx").write_bytes(b"PK\x03\x04 this is not a zip")
    (HERE / "corrupt_sav").mkdir()
    (HERE / "corrupt_sav" / "hoenderloo_metingen.sav").write_bytes(
        b"$FL2@(#) IBM SPSS STATISTICS" + bytes(range(256)) * 3)

    # ---- exports: row/cell-level errors (rejection log) -----------------------------------
    pg("score_out_of_range", edited(pg_rows(), (1, 7, "99")))
    pg("non_numeric_score", edited(pg_rows(), (1, 7, "n.v.t.")))
    pg("decimal_point_in_comma_file", edited(pg_rows(), (2, 8, "11.5")))
    rows = pg_rows()
    rows.insert(2, list(rows[1]))
    pg("duplicate_row", rows)
    pg("unparseable_date", edited(pg_rows(), (3, 5, "31-02-2023")))
    pg("unparseable_birth_date", edited(pg_rows(), (2, 2, "1-13-2007")))
    pg("unknown_occasion_label", edited(pg_rows(), (3, 4, "Tussenmeting 9")))
    pg("unknown_phase_label", edited(pg_rows(), (1, 6, "Crisisbed")))
    pg("missing_client_id", edited(pg_rows(), (2, 0, "")))
    pg("inconsistent_fidelity", edited(pg_rows(), (2, 16, "6,0"), (3, 16, "6,0")))
    pg("inconsistent_client_value", edited(pg_rows(), (1, 14, "Overgeplaatst")))
    pg("unknown_end_reason",
       edited(pg_rows(), (0, 14, "Uitgeschreven"), (1, 14, "Uitgeschreven")))
    pg("undeclared_columns", [r + ["06-12345678"] for r in pg_rows()],
       header=PG_HEADER + ["Telefoon"])
    intermetzo("wide_unknown_occasion_column", extra={"CRIES_T9": 33})
    ego("unknown_instrument_label", edited(ego_rows(), (1, 7, "SCL-90")))
    ego("long_missing_score", edited(ego_rows(), (2, 9, "")))
    write_csv(HERE / "series_unknown_sced_phase" / "veilig_lima_weekreeks.csv",
              ["respnr", "week", "datum", "conditie", "spanning"],
              [["310001", "1", "2023-02-06", "baseline", "7"],
               ["310001", "2", "2023-02-13", "follow-up", "6"],
               ["310001", "3", "2023-02-20", "behandeling", "4"]],
              sep=",", encoding="utf-8", newline="\n")

    # ---- dictionaries (DictionaryError) ---------------------------------------------------
    overlay("dict_unknown_programme", "sources/leger_des_heils.yaml",
            shipped("sources/pinq_gesloten.yaml").replace("programme: pinq_gesloten",
                                                          "programme: leger_des_heils"))
    overlay("dict_unknown_instrument", "sources/pinq_gesloten.yaml",
            shipped("sources/pinq_gesloten.yaml").replace("instrument: RSES,",
                                                          "instrument: RSES-NL,"))
    overlay("dict_typo_bettter", "constructs.yaml",
            shipped("constructs.yaml").replace("    better: higher", "    bettter: higher", 1))
    overlay("dict_unknown_key", "sources/intermetzo.yaml",
            shipped("sources/intermetzo.yaml").replace("    sheet: ROM\n",
                                                       "    sheet: ROM\n    sheet_name: ROM\n"))
    overlay("dict_yaml_syntax_error", "occasions.yaml",
            shipped("occasions.yaml").replace("  discharge:\n    label:",
                                              "  discharge:\n   label: [unclosed\n    label:"))


if __name__ == "__main__":
    main()
