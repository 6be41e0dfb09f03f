"""Scaffolding dictionary entries from an export (issue 14, item 6).

The exports are written here with openpyxl, pandas and pyreadstat (not with the code
under test); the BSNs are made valid with the test's own 11-test arithmetic. Every fake
identifier is distinctive so that the privacy checks can grep for it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from effectstudy.dictionary import default_path, load_dictionary
from effectstudy.errors import DictionaryError, SourceError
from effectstudy.scaffold import draft_programme, draft_source, elfproef, header_is_safe

runner = CliRunner()

PROG = "nieuw_programma"
NAMES = ["Zoë Jansenvdb", "Fleur Mulderqx", "Sanne Bakkerzz", "Noor Vriesqqx", "Lotte Smitkkz",
         "Eva Visserjjx"]
CLIENT_IDS = [520101, 520102, 520103, 520104, 520105, 520106]
BIRTHS = ["14-03-2008", "02-11-2007", "30-06-2009", "21-01-2008", "09-09-2006", "17-05-2009"]
PHONES = ["06-12345671", "06-23456782", "06-34567893", "06-45678904", "06-56789015",
          "06-67890126"]
END = ["Afgerond", "Weggelopen", "Afgerond", "Overgeplaatst", "Afgerond", "Weggelopen"]


def bsn(prefix8: str) -> str:
    """A 9-digit number passing the 11-test: weights 9..2 on the prefix, -1 on the last."""
    total = sum(int(c) * w for c, w in zip(prefix8, range(9, 1, -1), strict=True))
    for last in range(10):
        if (total - last) % 11 == 0:
            return prefix8 + str(last)
    raise ValueError("no check digit for this prefix")


BSNS = [bsn(p) for p in ("12345678", "11122233", "19283746", "30303030", "45454545",
                         "60606060")]


def secrets() -> list[str]:
    """Every identifier value written into the exports (names, parts of names, BSNs,
    phone numbers, birth dates, raw client ids)."""
    out = [*NAMES, *BSNS, *PHONES, *BIRTHS, *(str(i) for i in CLIENT_IDS)]
    out += [part for n in NAMES for part in n.split()]
    out += [p.replace("-", "") for p in PHONES]
    return out


def assert_no_identifier(text: str) -> None:
    for s in secrets():
        assert s not in text, f"identifier value {s!r} shown"


# --------------------------------------------------------------------------- #
# Exports written for the tests
# --------------------------------------------------------------------------- #
def write_messy_excel(folder: Path) -> Path:
    """A provider's workbook: a notes sheet first, then the data sheet with a merged
    title row, an empty row, the Dutch header in row 3, identifiers, free text holding a
    name and a phone number, wide CRIES columns with 'n.v.t.' in one cell."""
    from openpyxl import Workbook

    wb = Workbook()
    notes = wb.active
    notes.title = "Toelichting"
    notes["A1"] = "Export uit het cliëntsysteem"
    notes["A2"] = "Vragen over deze export: bel de functioneel beheerder"
    ws = wb.create_sheet("Metingen")
    ws["A1"] = "ROM-export Nieuw Programma, peildatum 01-06-2024"
    ws.merge_cells("A1:K1")
    ws.append([])
    ws.append(["Cliëntnummer", "Naam", "BSN", "Geboortedatum", "Overige info", "Datum_T0",
               "CRIES_T0", "Datum_T1", "CRIES_T1", "Reden einde", "Weken in zorg"])
    for i in range(6):
        first = NAMES[i].split()[0]
        ws.append([CLIENT_IDS[i], NAMES[i], BSNS[i], BIRTHS[i],
                   f"Gesprek met {first} gehad, zij belt moeder op {PHONES[i]} als het mis gaat",
                   f"0{i + 1}-02-2023", 30 + i, f"0{i + 1}-08-2023",
                   "n.v.t." if i == 2 else 20 + i, END[i], 24 + i])
    path = folder / "nieuw_rom.xlsx"
    wb.save(path)
    return path


def write_dutch_csv(folder: Path) -> Path:
    """cp1252, ';', decimal comma, a row per client and measurement; a BSN column under an
    uninformative header, a column of 9-digit numbers that fail the 11-test, and a column
    whose header is a client's name (an export mistake)."""
    rows = []
    for i in range(4):
        for j, (lab, date) in enumerate([("Voormeting", "01-02-2023"),
                                          ("Nameting", "01-08-2023")]):
            rows.append({
                "Cliëntnummer": f"R-{CLIENT_IDS[i]}", "Naam": NAMES[i],
                "Geboortedatum": BIRTHS[i], "kenmerk_2": BSNS[i],
                "batch_nr": str(123456789 + 2 * i),  # 9 digits, 11-test fails
                "Meetmoment": lab, "Datum": date, "Fase": "Verblijf" if j == 0 else "Nazorg",
                "CRIES totaal": f"{30 - 5 * j + i}", "SDQ internaliserend": f"{8 - j},5",
                "HoNOSCA_totaalscore": f"{20 - j}", NAMES[5]: str(i),
                "Weken in zorg": "26", "Reden einde": END[i],
            })
    path = folder / "nieuw_metingen.csv"
    pd.DataFrame(rows).to_csv(path, sep=";", index=False, encoding="cp1252")
    return path


def write_spss(folder: Path) -> Path:
    import pyreadstat

    df = pd.DataFrame({
        "respnr": [float(c) for c in CLIENT_IDS[:3] for _ in range(2)],
        "naam": [n for n in NAMES[:3] for _ in range(2)],
        "gebdat": pd.to_datetime(["2008-01-01"] * 2 + ["2007-05-05"] * 2 + ["2009-09-09"] * 2),
        "meting": [1.0, 2.0] * 3,
        "kjts_tot": [40.0, 30, 35, 25, 50, 45],
        "ysr_int_t": [65.0, 60, 70, 66, 55, 50],
    })
    path = folder / "nieuw_spss.sav"
    pyreadstat.write_sav(df, str(path), variable_value_labels={"meting": {1: "Intake",
                                                                          2: "Uitstroom"}})
    return path


def the_file(draft: str) -> dict:
    data = yaml.safe_load(draft)
    assert data["programme"] == PROG
    assert len(data["files"]) == 1
    return data["files"][0]


# --------------------------------------------------------------------------- #
# Detection
# --------------------------------------------------------------------------- #
def test_messy_excel_draft(tmp_path):
    path = write_messy_excel(tmp_path)
    draft, findings = draft_source(path, programme=PROG)
    f = the_file(draft)
    assert f["format"] == "excel"
    assert f["sheet"] == "Metingen"  # the notes sheet comes first but holds no table
    assert f["header_row"] == 3  # merged title row and an empty row above the header
    assert f["path"] == "nieuw_rom.xlsx"
    assert f["layout"] == "wide"
    assert f["client_id"] == "Cliëntnummer"
    assert f["client_id_format"] == "integer"
    # the free-text column is recognised by its values (a phone number), not its header
    assert set(f["identifiers"]) == {"Naam", "BSN", "Geboortedatum", "Overige info"}
    assert f["birth_date"] == "Geboortedatum"
    assert f["date_format"] == "%d-%m-%Y"
    assert f["date_column"] == "Datum_{occasion}"
    assert f["client_fields"] == {"end_reason": "Reden einde", "weeks_in_care": "Weken in zorg"}
    assert f["measures"] == [{"column": "CRIES_{occasion}", "instrument": "CRIES-13",
                              "scale": "total", "construct": "trauma_symptoms"}]
    assert f["missing_values"] == ["n.v.t."]
    assert f["occasions"] is None  # to be mapped by the user
    assert "# T0: {occasion: TODO}" in draft and "# T1: {occasion: TODO}" in draft
    assert "matched CRIES_T0, CRIES_T1 -> CRIES-13 total" in draft
    # end reasons of six clients: a closed list, shown for mapping, except the one that a
    # single client holds (it would single her out)
    assert "end_reason: {Afgerond: TODO, Weggelopen: TODO}" in draft
    assert "Overgeplaatst" not in draft
    assert "1 label(s) held by one client only" in draft
    messages = "\n".join(str(x) for x in findings)
    assert "2 sheet(s); sheet #2 holds the data (66 filled cells below its header)" in messages
    assert "data cells in the other sheet(s): #1: 0" in messages
    assert "merged cell range" in messages
    assert_no_identifier(draft)
    assert_no_identifier(messages)


def test_dutch_csv_draft(tmp_path):
    path = write_dutch_csv(tmp_path)
    draft, findings = draft_source(path, programme=PROG)
    f = the_file(draft)
    assert f["format"] == "csv"
    assert f["csv"] == {"sep": ";", "decimal": ",", "encoding": "cp1252"}
    assert f["header_row"] == 1
    assert f["layout"] == "occasion_rows"
    assert f["occasion_column"] == "Meetmoment"
    assert f["date_column"] == "Datum"
    assert f["phase_column"] == "Fase"
    assert f["client_id"] == "Cliëntnummer"
    assert f["client_id_format"] == "text"
    # BSNs found by the 11-test under an uninformative header; 9-digit numbers failing
    # it are not BSNs
    assert set(f["identifiers"]) == {"Naam", "Geboortedatum", "kenmerk_2"}
    assert "batch_nr" not in f["identifiers"]
    assert {(m["column"], m["instrument"], m["scale"]) for m in f["measures"]} == {
        ("CRIES totaal", "CRIES-13", "total"), ("SDQ internaliserend", "SDQ-S", "internalising"),
        ("HoNOSCA_totaalscore", "HoNOSCA", "total")}
    assert "# Voormeting: {occasion: TODO}" in draft and "# Nameting: {occasion: TODO}" in draft
    assert "phase: {Nazorg: TODO, Verblijf: TODO}" in draft
    # a header that is a client's name is shown by position only
    assert "column #12" in draft
    assert_no_identifier(draft)
    assert_no_identifier("\n".join(str(x) for x in findings))


def test_spss_draft(tmp_path):
    draft, _findings = draft_source(write_spss(tmp_path), programme=PROG)
    f = the_file(draft)
    assert f["format"] == "spss"
    assert not {"csv", "sheet", "header_row"} & set(f)
    assert f["client_id"] == "respnr" and f["client_id_format"] == "integer"
    assert set(f["identifiers"]) == {"naam", "gebdat"}
    assert f["birth_date"] == "gebdat"
    assert f["occasion_column"] == "meting"
    # occasion codes 1/2 are listed by their SPSS value labels (the harmoniser applies them)
    assert "# Intake: {occasion: TODO}" in draft and "# Uitstroom: {occasion: TODO}" in draft
    assert {(m["column"], m["instrument"], m["scale"], m["construct"]) for m in f["measures"]} \
        == {("kjts_tot", "KJTS", "total", "trauma_symptoms"),
            ("ysr_int_t", "YSR", "internalising_t", "internalising")}
    assert_no_identifier(draft)


def test_csv_title_rows_bom_and_comma_separator(tmp_path):
    lines = ["Export ROM,,,", "gemaakt op 1 juni 2024,,,", "",
             "client,RSES_T0,RSES_T1,Datum_T0", "11,12.5,14.0,2023-01-05",
             "12,15.5,16.0,2023-02-07", "13,10.0,,2023-03-09"]
    path = tmp_path / "nieuw_export.csv"
    path.write_bytes("\ufeff".encode() + "\r\n".join(lines).encode())
    draft, _ = draft_source(path, programme=PROG)
    f = the_file(draft)
    assert f["csv"] == {"sep": ",", "decimal": ".", "encoding": "utf-8-sig"}
    assert f["header_row"] == 4
    assert f["date_format"] == "%Y-%m-%d"
    assert f["measures"][0]["column"] == "RSES_{occasion}"


def test_label_values_not_a_closed_list_are_not_shown(tmp_path):
    # each client has an end-reason value of its own (places: they may identify her)
    places = ["Deventerzz", "Zwollezz", "Arnhemzz", "Bredazz", "Venlozz"]
    rows = [{"client": 100 + i, "Meetmoment": "T0", "CRIES totaal": 20 + i,
             "Reden einde": places[i], "Naam": NAMES[i]} for i in range(5)]
    path = tmp_path / "nieuw_x.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    draft, findings = draft_source(path, programme=PROG)
    assert the_file(draft)["client_fields"] == {"end_reason": "Reden einde"}
    assert "end_reason: {}" in draft and "not a closed list" in draft
    for text in (draft, "\n".join(map(str, findings))):
        assert_no_identifier(text)
        assert not any(p in text for p in places)


def test_names_under_an_uninformative_header_are_identifiers(tmp_path):
    rows = [{"client": 100 + i, "Meetmoment": "T0", "CRIES totaal": 20 + i,
             "Reden einde": NAMES[i]} for i in range(5)]
    path = tmp_path / "nieuw_x.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    draft, findings = draft_source(path, programme=PROG)
    assert the_file(draft)["identifiers"] == ["Reden einde"]
    assert "values shaped like person names" in draft
    assert_no_identifier(draft)
    assert_no_identifier("\n".join(map(str, findings)))


def test_long_layout_label_pairs_are_matched(tmp_path):
    rows = []
    for i in range(3):
        for occ in ("T0", "T3"):
            for inst, scale, score in (("YSR", "INT", 60), ("CBSA", "GSW", 12), ("GAS", "T", 45)):
                rows.append({"client_id": f"X{i}", "name": NAMES[i], "occasion": occ,
                             "instrument": inst, "scale": scale, "score": score,
                             "interventions": "EMDR;meidengroep" + (
                                 f";belt {PHONES[i]} ({NAMES[i]})" if i == 1 else "")})
    path = tmp_path / "nieuw_long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    draft, findings = draft_source(path, programme=PROG)
    f = the_file(draft)
    assert f["layout"] == "long"
    assert (f["instrument_column"], f["scale_column"], f["score_column"]) == (
        "instrument", "scale", "score")
    assert {(tuple(m["label"]), m["instrument"], m["scale"]) for m in f["measures"]} == {
        (("YSR", "INT"), "YSR", "internalising_t"), (("CBSA", "GSW"), "CBSA", "global_self_worth"),
        (("GAS", "T"), "GAS", "t_score")}
    # interventions: the shared items are listed, the one with a phone number and a name is not
    assert f["client_fields"]["interventions"] == "interventions"
    assert "interventions: {EMDR: TODO, meidengroep: TODO}" in draft
    assert any("1 intervention item(s) not shown" in str(x) for x in findings)
    assert_no_identifier(draft)
    assert_no_identifier("\n".join(map(str, findings)))


def test_series_layout(tmp_path):
    rows = [{"respnr": 300 + i, "week": w, "conditie": "baseline" if w < 5 else "behandeling",
             "spanning": 5 + (w % 3)} for i in range(2) for w in range(1, 17)]
    path = tmp_path / "nieuw_reeks.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    draft, _ = draft_source(path, programme=PROG)
    f = the_file(draft)
    assert f["layout"] == "series"
    assert (f["session_column"], f["sced_phase_column"]) == ("week", "conditie")
    assert f["measures"] == [{"column": "spanning", "instrument": "SUD-week", "scale": "rating",
                              "construct": "trauma_symptoms"}]
    assert "sced_phase: {baseline: TODO, behandeling: TODO}" in draft
    assert "occasions" not in f


def test_odd_headers_give_valid_yaml(tmp_path):
    # headers with YAML syntax, quotes and a line break (Alt+Enter in Excel) must neither
    # break the draft nor inject keys into it
    from openpyxl import Workbook

    heads = ["client", "CRIES_T0", "CRIES_T1", "a: b", "# x", "uitslag\nsheet: injected",
             '"quoted" [1]', "- dash", "Meetmoment {x}"]
    wb = Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(heads)
    for i in range(1, 5):
        ws.append([i, 20, 18, 1, 2, 3, 4, 5, "T0"])
    path = tmp_path / "nieuw_odd.xlsx"
    wb.save(path)
    draft, _ = draft_source(path, programme=PROG)
    data = yaml.safe_load(draft)
    assert set(data) == {"programme", "files"}
    f = data["files"][0]
    assert f["sheet"] == "Data" and "injected" not in str(f)
    assert f["measures"][0]["column"] == "CRIES_{occasion}"
    # not made of column words, so not shown at all (the escaping of a shown header with a
    # line break is tested in tests/scaffold/test_header_vocabulary.py)
    assert "injected" not in draft


def test_stray_quote_is_refused_without_content(tmp_path):
    path = tmp_path / "nieuw_quote.csv"
    path.write_text(f'client;opmerking;CRIES_T0\n1;"{NAMES[0]} belt;3\n2;x;4\n', encoding="utf-8")
    with pytest.raises(SourceError, match="quoted field") as info:
        draft_source(path, programme=PROG)
    assert_no_identifier(str(info.value))


def test_headers_that_look_like_identifiers():
    assert header_is_safe("CRIES_T0")
    assert header_is_safe("Reden einde")
    assert header_is_safe("Naam")
    assert header_is_safe("BSN")
    assert not header_is_safe("Zoë Jansenvdb")  # a client's name
    assert not header_is_safe("Fleur")  # a first name alone
    assert not header_is_safe("client 1234567")  # 7+ digits


def test_elfproef():
    assert elfproef("111222333")  # 9*1+8*1+7*1+6*2+5*2+4*2+3*3+2*3 - 3 = 66 = 6*11
    assert elfproef("123456782")  # 9+16+21+24+25+24+21+16 - 2 = 154 = 14*11
    assert not elfproef("123456789")  # 156 - 9 = 147
    assert elfproef("11222333".zfill(9)) == elfproef("11222333")  # 8 digits: leading zero
    assert not elfproef("000000000")
    assert not elfproef("12345678a")


def test_unreadable_exports(tmp_path):
    bad = tmp_path / "x.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="not a readable .xlsx"):
        draft_source(bad, programme=PROG)
    with pytest.raises(SourceError, match="unknown export type"):
        other = tmp_path / "x.pdf"
        other.write_bytes(b"%PDF")
        draft_source(other, programme=PROG)
    with pytest.raises(SourceError, match="not found"):
        draft_source(tmp_path / "absent.csv", programme=PROG)
    with pytest.raises(DictionaryError, match="lower-case"):
        draft_source(bad, programme="Nieuw Programma")


# --------------------------------------------------------------------------- #
# Programme entry
# --------------------------------------------------------------------------- #
REQUIRED_PROGRAMME_KEYS = {"name", "provider", "setting", "security", "duration_weeks",
                           "age_range", "group", "reach", "phases"}


def test_draft_programme_has_every_required_key():
    text = draft_programme(PROG, name="Nieuw Programma")
    entry = yaml.safe_load("programmes:\n" + text)["programmes"][PROG]
    assert REQUIRED_PROGRAMME_KEYS <= set(entry)
    assert entry["name"] == "Nieuw Programma"
    assert entry["duration_weeks"]["typical"]["source"] == "UNVERIFIED"
    assert entry["age_range"]["source"] == "UNVERIFIED"
    assert entry["phases"][0]["typical_weeks"]["source"] == "UNVERIFIED"
    assert "NP-" in text  # the pseudonym prefix, from the initials of the id's parts
    assert "TODO" in text
    with pytest.raises(DictionaryError, match="already in the dictionary"):
        draft_programme("veilig_lima")
    with pytest.raises(DictionaryError):
        draft_programme("nieuw-programma")


# --------------------------------------------------------------------------- #
# Filling in the TODOs as docs/adding-a-programme.md tells a user, then loading
# --------------------------------------------------------------------------- #
PROGRAMME_FILLS = {
    "provider: TODO": "provider: Testaanbieder",
    "setting: TODO": "setting: residential treatment",
    "security: TODO": "security: open",
    "group: TODO": "group: girls only",
    "sex: TODO": "sex: female",
    "reach: TODO": "reach: regional",
    "aims: TODO": "aims: safety and recovery",
    "id: TODO_phase": "id: verblijf",
    "label: TODO": "label: Residential stay",
    "canonical: TODO": "canonical: treatment",
}


def dictionary_with(tmp_path: Path, programme: str, source: str | None) -> Path:
    folder = tmp_path / "dictionary"
    shutil.copytree(default_path(), folder)
    with open(folder / "programmes.yaml", "a", encoding="utf-8") as fh:
        fh.write(programme)
    if source is not None:
        (folder / "sources" / f"{PROG}.yaml").write_text(source, encoding="utf-8")
    return folder


def fill_programme(text: str) -> str:
    for todo, value in PROGRAMME_FILLS.items():
        text = text.replace(todo, value)
    return text


def test_excel_draft_loads_after_the_todos_are_filled(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    export = write_messy_excel(tmp_path)
    draft, _ = draft_source(export, programme=PROG)
    # as it comes the draft does not load: the occasions are still to be mapped
    folder = dictionary_with(tmp_path, fill_programme(draft_programme(PROG, name="Nieuw")), draft)
    res = runner.invoke(dictionary_app, ["check", str(folder)])
    assert res.exit_code == 1
    assert f"{PROG}.yaml" in res.output and "occasions" in res.output
    filled = (draft.replace("# T0: {occasion: TODO}", "T0: {occasion: intake}")
              .replace("# T1: {occasion: TODO}", "T1: {occasion: discharge}")
              .replace("# labels:", "labels:")
              .replace("#   end_reason: {Afgerond: TODO, Weggelopen: TODO}",
                       "  end_reason: {Afgerond: completed, Overgeplaatst: transferred, "
                       "Weggelopen: absconded}"))  # the held-back label added by the user
    (folder / "sources" / f"{PROG}.yaml").write_text(filled, encoding="utf-8")
    d = load_dictionary(folder)
    sf = d.sources[PROG].files[0]
    assert sf.sheet == "Metingen" and sf.layout == "wide"
    assert set(sf.occasions) == {"T0", "T1"}
    assert sf.labels["end_reason"] == {"Afgerond": "completed", "Overgeplaatst": "transferred",
                                       "Weggelopen": "absconded"}
    res = runner.invoke(dictionary_app, ["check", str(folder)])
    assert res.exit_code == 0, res.output
    assert PROG in res.output and "7 programme(s)" in res.output


def test_check_refuses_todos_left_in_text_fields(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    text = draft_programme(PROG)
    for todo in ("sex: TODO", "reach: TODO", "id: TODO_phase", "canonical: TODO"):
        text = text.replace(todo, PROGRAMME_FILLS[todo])
    folder = dictionary_with(tmp_path, text, None)
    load_dictionary(folder)  # "provider: TODO" and the like load as text ...
    res = runner.invoke(dictionary_app, ["check", str(folder)])
    assert res.exit_code == 1  # ... but check does not let them pass
    assert "TODO(s) of a draft are still in the dictionary" in res.output
    assert "programmes.yaml line" in res.output


def test_csv_draft_loads_and_harmonises(tmp_path):
    from effectstudy.harmonise import harmonise

    exports = tmp_path / "exports"
    exports.mkdir()
    export = write_dutch_csv(exports)
    draft, _ = draft_source(export, programme=PROG)
    filled = (draft.replace("# Voormeting: {occasion: TODO}", "Voormeting: {occasion: intake}")
              .replace("# Nameting: {occasion: TODO}", "Nameting: {occasion: discharge}")
              .replace("# labels:", "labels:")
              .replace("#   phase: {Nazorg: TODO, Verblijf: TODO}",
                       "  phase: {Nazorg: verblijf, Verblijf: verblijf}")
              .replace("#   end_reason: {Afgerond: TODO}",
                       "  end_reason: {Afgerond: completed, Overgeplaatst: transferred, "
                       "Weggelopen: absconded}"))
    assert "end_reason: {Afgerond: completed" in filled
    folder = dictionary_with(tmp_path, fill_programme(draft_programme(PROG)), filled)
    d = load_dictionary(folder)
    assert d.sources[PROG].files[0].labels["end_reason"]["Weggelopen"] == "absconded"
    h = harmonise(exports, d, key=b"scaffold-test-key-0123456789", programmes=[PROG])
    table = h.table
    # 4 clients x 2 occasions x 3 matched measures, every cell a number
    assert len(table) == 24
    assert set(table["instrument"]) == {"CRIES-13", "SDQ-S", "HoNOSCA"}
    sdq = table[table["instrument"] == "SDQ-S"]
    assert sorted(sdq["raw"].unique()) == [7.5, 8.5]  # decimal comma read right
    assert_no_identifier(table.astype(str).to_csv())


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #
def test_cli_new_source_prints_no_identifier(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    export = write_messy_excel(tmp_path)
    res = runner.invoke(dictionary_app, ["new-source", str(export), "--programme", PROG])
    assert res.exit_code == 0, res.output
    assert "header_row: 3" in res.output and "CRIES_{occasion}" in res.output
    assert_no_identifier(res.output)
    out = tmp_path / "draft.yaml"
    res = runner.invoke(dictionary_app, ["new-source", str(export), "--programme", PROG,
                                         "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert the_file(out.read_text(encoding="utf-8"))["sheet"] == "Metingen"
    assert os.stat(out).st_mode & 0o777 == 0o600
    assert_no_identifier(res.output)
    # an existing file is never overwritten
    res = runner.invoke(dictionary_app, ["new-source", str(export), "--programme", PROG,
                                         "--out", str(out)])
    assert res.exit_code == 1 and "already exists" in res.output


def test_cli_new_source_honours_the_dictionary_option(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    export = write_messy_excel(tmp_path)
    res = runner.invoke(dictionary_app, ["new-source", str(export), "--programme", PROG,
                                         "--dictionary", str(tmp_path / "absent")])
    assert res.exit_code == 1
    assert "data dictionary folder not found" in res.output
    # ... and EFFECTSTUDY_DICTIONARY when the option is not given
    res = runner.invoke(dictionary_app, ["new-source", str(export), "--programme", PROG],
                        env={"EFFECTSTUDY_DICTIONARY": str(tmp_path / "absent-too")})
    assert res.exit_code == 1
    assert "absent-too" in res.output and "not found" in res.output


def test_cli_new_programme(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    res = runner.invoke(dictionary_app, ["new-programme", PROG, "--name", "Nieuw Programma"])
    assert res.exit_code == 0, res.output
    assert f"  {PROG}:" in res.output and "UNVERIFIED" in res.output
    res = runner.invoke(dictionary_app, ["new-programme", "veilig_lima"])
    assert res.exit_code == 1 and "already in the dictionary" in res.output


def test_cli_check(tmp_path):
    from effectstudy.cli_dictionary import dictionary_app

    res = runner.invoke(dictionary_app, ["check", str(default_path())])
    assert res.exit_code == 0, res.output
    assert "6 programme(s)" in res.output and "UNVERIFIED" in res.output
    res = runner.invoke(dictionary_app, ["check", str(tmp_path / "absent")])
    assert res.exit_code == 1 and "not found" in res.output
    # a misspelt key: the error names the file and the key path
    folder = dictionary_with(tmp_path, "", None)
    text = (folder / "programmes.yaml").read_text(encoding="utf-8")
    (folder / "programmes.yaml").write_text(text.replace("    provider: Spirit",
                                                         "    provder: Spirit", 1),
                                            encoding="utf-8")
    res = runner.invoke(dictionary_app, ["check", str(folder)])
    assert res.exit_code == 1
    assert "programmes.yaml" in res.output and "programmes.pinq_crisis.provder" in res.output
    assert "did you mean 'provider'" in res.output
