"""A seventh programme end to end, as a new user adds it (issue 14).

The test writes what a provider would send: an Excel workbook with a title row above the
header, a notes sheet, Dutch headers, identifier columns (a name, a birth date and a free-text
column that mentions a name), an end-of-care column, texts for "not measured" and five
defects. It copies the shipped dictionary, adds the programme and its source as the docs
describe (``docs/dictionary.md``), and harmonises the export together with the six demo
programmes' synthetic exports through the CLI with ``--dictionary``; from the harmonised
folder it builds the public report with ``effectstudy report --dictionary``.

Every expected number below is counted from the rows the test writes, not by the package.
"""

from __future__ import annotations

import copy
import datetime as dt
import html
import re
import shutil
import warnings
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from harmonise_helpers import KEY
from typer.testing import CliRunner

from effectstudy.cli import app
from effectstudy.dictionary import ENV_DICTIONARY, default_path, load_dictionary
from effectstudy.errors import HarmoniseError, SourceError
from effectstudy.harmonise import harmonise, read_harmonised
from effectstudy.harmonise.core import UndescribedFileWarning
from small_counts import small_counts

PROG = "de_brug"
EXPORT = "de_brug_rom.xlsx"
STRAY = "de_brug_rom (kopie).xlsx"  # a second copy no source describes

PROGRAMME_YAML = f"""
  {PROG}:
    name: De Brug
    provider: Jeugdzorg De Brug (fictitious, for the test)
    setting: open residential group
    security: open
    duration_weeks:
      typical: {{value: 26, source: UNVERIFIED}}
      maximum: {{value: 52, source: UNVERIFIED}}
    age_range: {{min: 12, max: 18, source: UNVERIFIED}}
    group: girls
    sex: female
    reach: regional
    phases:
      - {{id: verblijf, label: Verblijf, canonical: treatment, typical_weeks: {{value: 26, source: UNVERIFIED}}}}
"""

SOURCE_YAML = f"""# De Brug: an Excel export with a title row, a notes sheet and Dutch headers.
programme: {PROG}
files:
  - id: rom
    path: {EXPORT}
    format: excel
    sheet: Metingen
    header_row: 2
    layout: occasion_rows
    client_id: Cliëntnr
    identifiers: [Naam, Geboortedatum, Opmerkingen]
    birth_date: Geboortedatum
    date_format: "%d-%m-%Y"
    occasion_column: Meetmoment
    date_column: Datum
    missing_values: ["n.v.t.", "-", "onbekend"]
    client_fields:
      end_reason: Reden uitstroom
    occasions:
      Begin: {{occasion: intake}}
      Eind: {{occasion: discharge}}
    measures:
      - {{column: CRIES totaal, instrument: CRIES-13, scale: total, construct: trauma_symptoms}}
      - {{column: RSES totaal, instrument: RSES, scale: total, construct: self_esteem}}
    labels:
      end_reason: {{Afgerond: completed, Weggelopen: absconded, Overgeplaatst: transferred}}
"""

HEADER = ["Cliëntnr", "Naam", "Geboortedatum", "Meetmoment", "Datum", "CRIES totaal",
          "RSES totaal", "Reden uitstroom", "Opmerkingen"]
NAMES = ["Fenna Oostveldtq", "Lotte Brinkhorstq", "Noor Vermeulenqx", "Sara Dijkgraafqz",
         "Iris Hoogeveenqy", "Mila Zandbergqw"]
RAW_IDS = ["DB-91001", "DB-91002", "DB-91003", "DB-91004", "DB-91005", "DB-91006"]
BIRTHS = [dt.datetime(2008, 3, 14), dt.datetime(2007, 11, 2), dt.datetime(2009, 6, 30),
          dt.datetime(2008, 9, 9), dt.datetime(2007, 1, 23), dt.datetime(2008, 12, 5)]
ENDS = ["Afgerond", "Afgerond", "Weggelopen", "Overgeplaatst", None, "Afgerond"]


def _rows() -> list[list]:
    """The data rows (spreadsheet rows 3, 4, ...) with the five defects, see DEFECTS."""
    rows = []
    for i in range(6):
        begin = dt.datetime(2024, 1, 8 + i)
        end = dt.datetime(2024, 6, 10 + i)
        note = f"gesprek met {NAMES[(i + 1) % 6]} over thuissituatie"  # free text with a name
        rows.append([RAW_IDS[i], NAMES[i], BIRTHS[i], "Begin", begin, 40 - i, 14 + i, ENDS[i],
                     note])
        rows.append([RAW_IDS[i], NAMES[i], BIRTHS[i], "Eind", end, 30 - i, 18 + i, ENDS[i],
                     None])
    # client 2's dates as the text a provider types, client 3's intake as a bare Excel serial
    rows[4][4], rows[5][4] = "10-01-2024", "12-06-2024"
    rows[6][4] = (rows[6][4] - dt.datetime(1899, 12, 30)).days
    # not measured by design: counted as empty, never rejected
    rows[5][6] = "n.v.t."
    rows[9][5] = "-"
    rows[11][6] = None
    # the five defects
    rows[1][5] = 99                    # sheet row 4: CRIES out of range (0-65)
    rows[3][3] = "Tussenmeting"        # sheet row 6: unknown occasion label (2 scores)
    rows[7][6] = "veel"                # sheet row 10: text in a score cell
    rows[8][4] = "31-02-2024"          # sheet row 11: impossible date (2 scores)
    rows.append(list(rows[4]))         # sheet row 15: duplicate of row 7 (2 scores)
    return rows


#: (sheet row, column, kind, scores rejected, value shown)
DEFECTS = [
    (4, "CRIES totaal", "out_of_range", 1, "99"),
    (6, "Meetmoment", "unknown_occasion", 2, None),
    (10, "RSES totaal", "non_numeric", 1, None),
    (11, "Datum", "unparseable_date", 2, "31-02-2024"),
    (15, "Cliëntnr", "duplicate", 2, None),
]


def _count_cells(rows: list[list]) -> tuple[int, int]:
    """(score cells read, of which empty or declared missing) counted from the test's rows."""
    read = empty = 0
    for r in rows:
        for v in r[5:7]:
            read += 1
            empty += v is None or (isinstance(v, str) and v in ("n.v.t.", "-", "onbekend"))
    return read, empty


def write_export(folder: Path, name: str = EXPORT) -> Path:
    wb = openpyxl.Workbook()
    notes = wb.active
    notes.title = "Toelichting"
    notes["A1"] = "Export van de ROM-metingen; vragen aan de functioneel beheerder"
    ws = wb.create_sheet("Metingen")
    ws.append(["ROM-export De Brug, peildatum 1 juli 2024"])  # title row above the header
    ws.append(HEADER)
    for r in _rows():
        ws.append(r)
    for row in ws.iter_rows(min_row=3, min_col=3, max_col=5):
        for cell in row:
            if isinstance(cell.value, dt.datetime):
                cell.number_format = "dd-mm-yyyy"
    path = folder / name
    wb.save(path)
    return path


def write_dictionary(folder: Path) -> Path:
    """The shipped dictionary plus the new programme and its source, as the docs say."""
    dest = folder / "dictionary"
    shutil.copytree(Path(default_path()).resolve(), dest)
    with (dest / "programmes.yaml").open("a", encoding="utf-8") as fh:
        fh.write(PROGRAMME_YAML)
    (dest / "sources" / f"{PROG}.yaml").write_text(SOURCE_YAML, encoding="utf-8")
    return dest


def _identifiers() -> list[str]:
    out = list(RAW_IDS) + [n for name in NAMES for n in name.split()] + NAMES
    for b in BIRTHS:
        out += [b.strftime("%Y-%m-%d"), b.strftime("%d-%m-%Y")]
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Synthetic exports of the six programmes + the new export + a stray copy, harmonised
    with the CLI and ``--dictionary``."""
    from effectstudy.synth import generate

    base = tmp_path_factory.mktemp("newprog")
    raw = base / "exports"
    generate(raw, seed=2026)
    write_export(raw)
    write_export(raw, STRAY)
    d = write_dictionary(base)
    out = base / "harmonised"
    key_file = base / "keys" / "pseudonym.key"
    key_file.parent.mkdir()
    key_file.write_text(KEY.hex())
    key_file.chmod(0o600)
    runner = CliRunner()
    env = {ENV_DICTIONARY: "", "EFFECTSTUDY_PSEUDONYM_KEY": ""}
    res = runner.invoke(app, ["harmonise", str(raw), "--out", str(out), "--dictionary", str(d),
                              "--key-file", str(key_file)], env=env)
    strict = runner.invoke(app, ["harmonise", str(raw), "--out", str(base / "strict"),
                                 "--dictionary", str(d), "--key-file", str(key_file),
                                 "--strict"], env=env)
    return {"res": res, "strict": strict, "out": out, "dict": d, "raw": raw, "base": base,
            "runner": runner, "env": env, "key_file": key_file}


def _brug(frame: pd.DataFrame, col: str = "file") -> pd.DataFrame:
    return frame[frame[col] == EXPORT]


def test_cli_run_succeeds_and_reports_the_stray_file_by_name(run):
    res = run["res"]
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert f"'{STRAY}' is not described in the data dictionary" in out
    assert f"nearest declared path: '{EXPORT}'" in out
    strict = run["strict"]
    assert strict.exit_code == 1 and isinstance(strict.exception, SystemExit)
    assert STRAY in strict.output and "strict" in strict.output
    assert "Traceback" not in strict.output and not (run["base"] / "strict").exists()


def test_every_defect_is_logged_with_file_row_column_and_reason(run):
    h = read_harmonised(run["out"], run["dict"])
    log = _brug(h.rejections)
    for row, column, kind, scores, value in DEFECTS:
        hit = log[(log["row"] == row) & (log["kind"] == kind)]
        assert len(hit) == 1, (row, kind, log[["row", "column", "kind"]].to_dict("records"))
        entry = hit.iloc[0]
        assert entry["column"] == column and int(entry["scores"]) == scores
        assert entry["reason"].strip()
        shown = entry["value"]
        assert (None if pd.isna(shown) else shown) == value, (kind, shown)
    date = log[log["kind"] == "unparseable_date"].iloc[0]
    assert "%d-%m-%Y" in date["reason"] and "31-01-2024" in date["reason"]
    dup = log[log["kind"] == "duplicate"].iloc[0]
    assert "row 7" in dup["reason"]
    text = log[log["kind"] == "non_numeric"].iloc[0]
    assert "n.v.t." in text["reason"]  # says which texts are declared missing-by-design
    # the title row and the notes sheet are reported, neither read as data
    notes = log[log["kind"] == "note"]["reason"].tolist()
    assert any("1 row(s) above the header" in n for n in notes)
    assert any("1 other sheet(s), not read" in n for n in notes)
    # declared missing-by-design texts are not rejections
    assert set(log.loc[log["scores"] > 0, "kind"]) == {k for _, _, k, _, _ in DEFECTS}


def test_rows_in_equal_table_plus_log(run):
    h = read_harmonised(run["out"], run["dict"])
    rows = _rows()
    read, empty = _count_cells(rows)
    acc = _brug(h.accounting).iloc[0]
    rejected = sum(s for *_, s, _ in [(r, c, k, s, v) for r, c, k, s, v in DEFECTS])
    assert (acc["cells_read"], acc["cells_empty"]) == (read, empty) == (26, 3)
    assert acc["rows_in"] == read - empty == 23
    assert acc["rows_rejected"] == rejected == 8
    assert acc["rows_out"] == len(_brug(h.table, "source_file")) == 23 - 8
    assert int(_brug(h.rejections)["scores"].sum()) == 8
    # the whole run adds up too
    assert h.accounting["rows_in"].sum() == len(h.table) + h.rejections["scores"].sum()
    # written files refer to the stray file by position and extension, never by name
    assert STRAY not in set(h.accounting["file"])
    stray = h.accounting[h.accounting["file"] == "undescribed file 1 (.xlsx)"].iloc[0]
    assert stray["status"].startswith("not described in the dictionary")
    assert EXPORT in stray["status"] and stray["rows_in"] == 0
    summ = h.summary().set_index("programme").loc[PROG]
    assert (summ["cells_read"], summ["cells_empty"], summ["rows"]) == (26, 3, 15)


def test_dates_of_every_kind_give_weeks(run):
    h = read_harmonised(run["out"], run["dict"])
    t = _brug(h.table, "source_file")
    weeks = t[t["occasion"] == "discharge"].set_index("source_row")["week"]
    # client 2: text dates 10-01-2024 -> 12-06-2024 (sheet rows 7 and 8)
    assert weeks.loc[8] == pytest.approx((dt.date(2024, 6, 12) - dt.date(2024, 1, 10)).days / 7)
    # client 3: intake as the serial of 11 Jan 2024, discharge a date cell (rows 9 and 10)
    assert weeks.loc[10] == pytest.approx((dt.date(2024, 6, 13) - dt.date(2024, 1, 11)).days / 7)
    # client 4's intake date is impossible (row 11): her discharge (row 12) has no week,
    # and a note says so; no other row lacks a week
    assert t.loc[t["week"].isna(), "source_row"].unique().tolist() == [12]
    log = _brug(h.rejections)
    note = log[(log["kind"] == "note") & (log["row"] == 12)]
    assert len(note) == 1 and "week in care cannot be computed" in note.iloc[0]["reason"]
    assert int(note.iloc[0]["scores"]) == 0


def test_end_reasons_in_the_clients_table(run):
    h = read_harmonised(run["out"], run["dict"])
    c = h.clients[h.clients["programme"] == PROG]
    assert len(c) == 6
    assert c["end_reason"].value_counts().to_dict() == {"completed": 3, "absconded": 1,
                                                         "transferred": 1, "unknown": 1}
    assert set(c["sex"]) == {"female"}
    # unknown is never empty anywhere in the clients table
    assert h.clients["end_reason"].notna().all()


def test_no_identifier_in_any_output_or_the_console(run):
    ids = _identifiers()
    texts = {p.name: p.read_bytes().decode("utf-8", "replace")
             for p in run["out"].rglob("*") if p.is_file()}
    assert len(texts) == 15  # 7 frames x parquet, csv + provenance.json
    texts["console"] = run["res"].output + run["strict"].output
    for name, text in texts.items():
        low = text.lower()
        for v in ids:
            assert v.lower() not in low, (name, v)
        assert "thuissituatie" not in low and "peildatum" not in low and "toelichting" not in low


def test_read_harmonised_uses_the_recorded_dictionary(run, monkeypatch):
    monkeypatch.delenv(ENV_DICTIONARY, raising=False)
    h = read_harmonised(run["out"])  # no dictionary= : the one recorded in provenance
    assert PROG in set(h.table["programme"])
    assert Path(h.provenance["dictionary"]["path"]) == run["dict"].resolve()
    assert h.provenance["dictionary"]["sha256"] == load_dictionary(run["dict"]).sha256


def test_a_changed_dictionary_gives_one_sentence_naming_the_programme(run, tmp_path,
                                                                       monkeypatch):
    monkeypatch.delenv(ENV_DICTIONARY, raising=False)
    out = tmp_path / "h"
    shutil.copytree(run["out"], out)
    moved = tmp_path / "elsewhere"
    shutil.copytree(run["dict"], moved)
    prov = (out / "provenance.json").read_text(encoding="utf-8")
    (out / "provenance.json").write_text(prov.replace(str(run["dict"].resolve()),
                                                      str(tmp_path / "gone")), encoding="utf-8")
    with pytest.raises(HarmoniseError) as err:
        read_harmonised(out)
    msg = str(err.value)
    assert f"programme(s) {PROG} " in msg and "pass --dictionary <the folder" in msg
    assert "Traceback" not in msg and msg.count(". ") == 0
    # the environment variable is honoured ...
    monkeypatch.setenv(ENV_DICTIONARY, str(moved))
    assert PROG in set(read_harmonised(out).clients["programme"])
    # ... and so is the report's --dictionary: the same one-line error without it
    res = run["runner"].invoke(app, ["report", "--data", str(out), "--out",
                                     str(tmp_path / "r")], env={ENV_DICTIONARY: ""})
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    assert PROG in res.output and "--dictionary" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_library_warns_about_the_stray_file_and_strict_refuses(run, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_export(folder)
    write_export(folder, STRAY)
    d = load_dictionary(run["dict"])
    with pytest.warns(UndescribedFileWarning, match=r"de_brug_rom \(kopie\)\.xlsx"):
        h = harmonise(folder, d, key=KEY)
    assert h.provenance["undescribed_files"] == [{"file": "undescribed file 1 (.xlsx)",
                                                  "nearest_declared_path": EXPORT}]
    assert {a["programme"] for a in h.provenance["absent_sources"]} == set(d.programmes) - {PROG}
    with pytest.raises(HarmoniseError, match="strict"):
        harmonise(folder, d, key=KEY, strict=True)
    # without the stray file there is no warning
    (folder / STRAY).unlink()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndescribedFileWarning)
        harmonise(folder, d, key=KEY)


def test_a_misspelt_header_gets_a_did_you_mean_and_no_other_header(run, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = write_export(folder)
    wb = openpyxl.load_workbook(path)
    wb["Metingen"]["F2"] = "CRIES totaa"      # a near miss of the declared 'CRIES totaal'
    wb["Metingen"]["I2"] = NAMES[0]            # an undeclared header that is a name
    wb.save(path)
    with pytest.raises(SourceError) as err:
        harmonise(folder, load_dictionary(run["dict"]), key=KEY)
    msg = str(err.value)
    assert "'CRIES totaa'" in msg and "9 column(s)" in msg and "CRIES totaal" in msg
    assert NAMES[0] not in msg and "Naam" not in msg


def test_cells_per_client_occasion_add_up(run, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    write_export(folder)
    h = harmonise(folder, load_dictionary(run["dict"]), key=KEY)
    cells = h.cells
    acc = h.accounting.iloc[0]
    for col in ("cells_read", "cells_empty", "rows_in", "rows_out", "rows_rejected"):
        assert int(cells[col].sum()) == int(acc[col]), col
    assert (cells["cells_read"] == cells["cells_empty"] + cells["rows_in"]).all()
    assert (cells["rows_in"] == cells["rows_out"] + cells["rows_rejected"]).all()
    # the duplicated intake of client 2 (sheet rows 7 and 15): 4 cells, 2 kept, 2 rejected
    c2 = h.table.loc[(h.table["source_row"] == 7), "client"].iloc[0]
    row = cells[(cells["client"] == c2) & (cells["occasion_label"] == "Begin")].iloc[0]
    assert (row["cells_read"], row["rows_out"], row["rows_rejected"]) == (4, 2, 2)
    # the unknown occasion label (row 6) is counted under no declared occasion
    assert int(cells.loc[cells["occasion_label"].isna(), "rows_rejected"].sum()) == 2


def test_a_merged_cell_counts_for_its_top_left_cell_only(run, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = write_export(folder)
    wb = openpyxl.load_workbook(path)
    ws = wb["Metingen"]
    ws["D4"] = None
    ws.merge_cells("D3:D4")  # "Begin" written once over the rows 3 and 4
    wb.save(path)
    h = harmonise(folder, load_dictionary(run["dict"]), key=KEY)
    log = h.rejections
    row4 = log[log["row"] == 4]
    assert row4["kind"].tolist() == ["unknown_occasion"]  # its own out-of-range is not reached
    assert "occasion label is missing" in row4.iloc[0]["reason"]
    assert int(row4.iloc[0]["scores"]) == 2
    assert (h.table["source_row"] == 3).sum() == 2



# -- the public report with --dictionary (issue 14, "Done when") ------------------------
THRESHOLD = 5  # the demo spec's suppression threshold (asserted in the fixture)
END_COLUMNS = ["completed care", "absconded", "transferred", "unknown (not recorded)"]
def _visible_text(page: str) -> str:
    page = re.sub(r'src="data:[^"]*"', "", page)
    page = re.sub(r"<style.*?</style>", " ", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def _flow_table(page: str) -> list[dict[str, str]]:
    section = re.split(r'<h2 id="flow">', page)[1].split("<h2 ")[0]
    tables = re.findall(r"<table.*?</table>", section, flags=re.S)
    assert len(tables) == 1
    heads = [html.unescape(h) for h in re.findall(r"<th>(.*?)</th>", tables[0])]
    rows = [[html.unescape(c).strip() for c in re.findall(r"<td>(.*?)</td>", r, flags=re.S)]
            for r in re.findall(r"<tr>(.*?)</tr>", tables[0], flags=re.S)[1:]]
    return [dict(zip(heads, r, strict=True)) for r in rows]


@pytest.fixture(scope="module")
def public_report(run):
    """``effectstudy report --data ... --dictionary ...`` (public) on the seven programmes.

    The CLI has no option to skip the PDF, so the report is built once for the module,
    with the demo spec made cheaper (fewer power runs and imputations)."""
    import yaml

    from effectstudy.report import DEMO_SPEC

    assert DEMO_SPEC["suppression"]["threshold"] == THRESHOLD
    spec = copy.deepcopy(DEMO_SPEC)
    spec["power"]["nsim"] = 10
    spec["dropout"].update(m=2, burn_in=20, thin=2)
    spec_path = run["base"] / "ANALYSIS.yaml"
    spec_path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    out = run["base"] / "report"
    res = run["runner"].invoke(app, ["report", "--data", str(run["out"]), "--out", str(out),
                                     "--dictionary", str(run["dict"]), "--spec", str(spec_path),
                                     "--audience", "public"], env=run["env"])
    assert res.exit_code == 0, res.output
    (page,) = out.glob("*.html")
    return {"res": res, "out": out, "html": page.read_text(encoding="utf-8")}


@pytest.mark.slow  # builds the report and its PDF once (about 25 s of CPU)
def test_public_report_shows_the_new_programme_and_its_end_reasons(run, public_report):
    flow = {row["programme"]: row for row in _flow_table(public_report["html"])}
    assert "De Brug" in flow  # the name from the programme entry the test added
    assert len(flow) == 8  # seven programmes and the total
    for column in END_COLUMNS:
        # De Brug: 3 completed, 1 absconded, 1 transferred, 1 unknown: all suppressed
        assert flow["De Brug"][column] == f"<{THRESHOLD}", column
    # the demo programmes' end reasons from the harmonised clients table, De Brug's from
    # the rows the test wrote: the published totals include the new programme
    h = read_harmonised(run["out"], run["dict"])
    demo = h.clients[h.clients["programme"] != PROG]["end_reason"].value_counts()
    brug = pd.Series(ENDS).map(
        {"Afgerond": "completed", "Weggelopen": "absconded", "Overgeplaatst": "transferred",
         None: "unknown"}).value_counts()
    total = flow["Total"]
    for column, reason in zip(END_COLUMNS, ["completed", "absconded", "transferred", "unknown"],
                              strict=True):
        expected = int(demo.get(reason, 0) + brug.get(reason, 0))
        shown = total[column]
        if re.fullmatch(r"\d+", shown):
            assert int(shown) == expected >= THRESHOLD, column
        else:
            assert shown in (f"<{THRESHOLD}", "x"), column
            assert shown == "x" or expected < THRESHOLD, column
    assert int(total["completed care"]) == int(demo["completed"]) + 3


@pytest.mark.slow  # builds the report and its PDF once (about 25 s of CPU)
def test_public_report_holds_no_identifier_and_no_small_count(run, public_report):
    page = public_report["html"]
    # without the embedded images: base64 text holds short names like "Iris" by chance
    low = re.sub(r'src="data:[^"]*"', "", page).lower()
    assert len(low) < len(page) / 2  # the figures were there and are gone
    for value in _identifiers():
        assert value.lower() not in low, value
    for word in ("thuissituatie", "peildatum", "toelichting", "de_brug_rom"):
        assert word not in low, word
    # not even the pseudonyms of the new programme's clients (a public report)
    h = read_harmonised(run["out"], run["dict"])
    pseudonyms = h.clients.loc[h.clients["programme"] == PROG, "client"].astype(str)
    assert len(pseudonyms) == 6
    assert not [p for p in pseudonyms if p.lower() in low]
    text = _visible_text(page)
    alts = " ".join(html.unescape(a) for a in re.findall(r'alt="([^"]*)"', page))
    assert "De Brug" in text and "unknown (not recorded)" in text
    assert small_counts(text) == [] and small_counts(alts) == []
    # the grep does catch what it looks for
    assert sorted(small_counts("only 2 girls (n=3)")) == ["(n=3)", "2 girls", "n=3"]
    assert "Traceback" not in public_report["res"].output
