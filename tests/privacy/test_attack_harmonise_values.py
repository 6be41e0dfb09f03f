"""Attack corpus, issue 10 items 5, 6, 7, 16, 17 (overflow), 18 (id formats) and 22:
no free text, no undeclared header, no unsafe cell value reaches a written file; an
implausible cell is a logged rejection, never an abort; id formats link; ASCII numbers.

Every test builds small exports in ``tmp_path``, harmonises them, writes the output in
both formats and greps every written file (CSV/JSON text, parquet cells) for the planted
identifier in all its forms; and checks rows in = rows in the table + rows rejected.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from harmonise_helpers import write_intermetzo, write_pinq_gesloten

from effectstudy.dictionary import load_dictionary
from effectstudy.harmonise import harmonise, pseudonymise
from effectstudy.harmonise import readers as readers_module
from effectstudy.harmonise.log import RejectionLog, shown_value
from effectstudy.harmonise.mapping import map_file, parse_number
from effectstudy.harmonise.readers import RawTable

KEY = b"attack-values-key-0123456789"

#: Item 7: identifier forms a redaction list misses (BSN with spaces/dots, a birth date in
#: words, names without diacritics, a two-letter name, a third party in brackets).
FORMS = ["641 693 266", "641.693.266", "7 nov 2009", "Ozturk", "Anais", "Bo", "A (Milou Vos)"]


@pytest.fixture(autouse=True)
def _no_home_key(tmp_path_factory, monkeypatch):
    """Never touch a real ~/.config key (every call passes key= anyway)."""
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE", str(tmp_path_factory.mktemp("k") / "p.key"))
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY", raising=False)


@pytest.fixture(scope="module")
def dictionary():
    return load_dictionary()


# --------------------------------------------------------------------------- #
# Helpers
# --------------------------------------------------------------------------- #
def _pg_row(client: str = "DK-1", occasion: str = "Voormeting", date: str = "06-02-2023",
            **cells: str) -> dict:
    """One valid pinq_gesloten row (5 scores); ``cells`` override columns by name."""
    row = {"Cliëntnummer": client, "Naam": "Test Persoonqx", "Geboortedatum": "14-03-2008",
           "BSN": "111222333", "Meetmoment": occasion, "Datum": date, "Fase": "Verblijf",
           "CRIES totaal": "30", "SDQ internaliserend": "8", "SDQ externaliserend": "6",
           "RSES totaal": "15", "HoNOSCA totaal": "20", "Weken in zorg": "26",
           "Laatste fase": "Verblijf", "Reden einde": "Afgerond",
           "Interventies": "onderwijs", "Programmatrouw": "7,5"}
    row.update(cells)
    return row


def _series(folder: Path, rows: list[list[str]]) -> Path:
    """veilig_lima_weekreeks.csv (series, UTF-8, ',', integer client ids)."""
    path = folder / "veilig_lima_weekreeks.csv"
    frame = pd.DataFrame(rows, columns=["respnr", "week", "datum", "conditie", "spanning"])
    frame.to_csv(path, index=False, encoding="utf-8")
    return path


def _written_text(h, out: Path) -> str:
    """Everything written to ``out`` (both formats), as text: CSV/JSON as written, parquet
    cells decoded."""
    files = h.write(out, format=["parquet", "csv"])
    assert files, "nothing written"
    parts = []
    for p in sorted(q for q in out.rglob("*") if q.is_file()):
        if p.suffix == ".parquet":
            parts.append(pd.read_parquet(p).astype(str).to_csv(index=False))
        else:
            parts.append(p.read_bytes().decode("utf-8", errors="replace"))
    return "\n".join(parts)


def _forms(identifier: str) -> list[str]:
    """The identifier as written, and its digits alone when it is number-like."""
    out = [identifier]
    digits = re.sub(r"\D", "", identifier)
    if len(digits) >= 6:
        out.append(digits)
    return out


def _assert_absent(text: str, identifiers: list[str]) -> None:
    for ident in identifiers:
        for form in _forms(ident):
            pat = re.compile(r"(?<![A-Za-z0-9])" + re.escape(form) + r"(?![A-Za-z0-9])",
                             re.IGNORECASE)
            assert pat.search(text) is None, f"identifier form {form!r} leaked"


def _assert_accounting(h) -> None:
    acc = h.accounting
    assert (acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]).all()
    assert int(acc["rows_in"].sum()) == len(h.table) + int(h.rejections["scores"].sum())


def _entry(h, **match) -> pd.Series:
    log = h.rejections
    hit = log
    for k, v in match.items():
        hit = hit[hit[k] == v]
    assert len(hit) == 1, log.to_string()
    return hit.iloc[0]


# --------------------------------------------------------------------------- #
# Item 5: free text never passes
# --------------------------------------------------------------------------- #
def test_item5_free_text_interventions_are_parsed_into_the_vocabulary(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    free = "traumabehandeling; Gesprek met Naomi Jansen 0612345678, ONDERWIJS"
    rows = [_pg_row("DK-1", Interventies=free),
            _pg_row("DK-1", "Nameting", "04-09-2023", Interventies=free),
            _pg_row("DK-2", Interventies="oudergesprekken|afspraak tante Ozturk"),
            _pg_row("DK-3", Interventies="bel Bo 06-87654321")]
    write_pinq_gesloten(raw, rows)
    h = harmonise(raw, dictionary, key=KEY)
    clients = h.clients.set_index("client")["interventions"]
    pseudo = {c: pseudonymise("pinq_gesloten", c, KEY) for c in ("DK-1", "DK-2", "DK-3")}
    # declared items become sorted ids (labels matched ignoring case); the rest is dropped
    assert clients[pseudo["DK-1"]] == "school;trauma_treatment"
    assert clients[pseudo["DK-2"]] == "parent_work"
    assert clients[pseudo["DK-3"]] is None or pd.isna(clients[pseudo["DK-3"]])
    log = h.rejections[h.rejections["kind"] == "unknown_intervention"]
    assert sorted(log["row"].astype(int)) == [2, 3, 4, 5]
    assert set(log["column"]) == {"Interventies"} and (log["scores"] == 0).all()
    assert log["value"].isna().all()
    assert log["reason"].str.startswith("1 item not in the declared vocabulary").all()
    assert log["reason"].str.contains("not shown").all()
    _assert_accounting(h)
    assert len(h.table) == 20  # the scores of the rows are untouched
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, ["Naomi", "Jansen", "0612345678", "Ozturk", "tante", "Bo",
                          "06-87654321", "Gesprek"])


# --------------------------------------------------------------------------- #
# Item 6: headers of undeclared columns are never written
# --------------------------------------------------------------------------- #
def test_item6_undeclared_headers_are_named_by_position(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    header = "Naomi Jansen 641693266"
    rows = [dict(_pg_row("DK-1"), **{header: "x"}), dict(_pg_row("DK-2"), **{header: ""})]
    write_pinq_gesloten(raw, rows)
    # a wide workbook with a column matching CRIES_{occasion} for a name as occasion
    frame = pd.read_excel(write_intermetzo(raw), sheet_name="ROM")
    frame["CRIES_Mila van der Linden"] = [33, 34, 35]
    write_intermetzo(raw, frame)
    h = harmonise(raw, dictionary, key=KEY)
    und = _entry(h, kind="undeclared_columns")
    assert und["file"] == "pinq_gesloten_metingen.csv" and und["column"] == "column #18"
    assert pd.isna(und["row"]) and und["scores"] == 0
    occ = h.rejections[(h.rejections["kind"] == "unknown_occasion")
                       & (h.rejections["file"] == "intermetzo_rom.xlsx")]
    assert len(occ) == 3 and set(occ["column"]) == {f"column #{len(frame.columns)}"}
    assert sorted(occ["row"].astype(int)) == [2, 3, 4] and (occ["scores"] == 1).all()
    assert occ["reason"].str.contains("label not shown").all()
    assert sorted(occ["value"]) == ["33", "34", "35"]  # scores: a safe shape
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, ["Naomi", "Jansen", "641693266", "Mila", "Linden",
                          "Mila van der Linden"])


# --------------------------------------------------------------------------- #
# Item 7: the log's value is a whitelist by declared type
# --------------------------------------------------------------------------- #
TARGETS = ["CRIES totaal", "Datum", "Meetmoment", "Fase", "Reden einde", "Laatste fase",
           "Weken in zorg", "Programmatrouw", "Interventies"]


def test_item7_no_identifier_form_in_any_cell_reaches_the_log(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = []
    for i, form in enumerate(FORMS):
        for col in TARGETS:
            rows.append(_pg_row(f"DK-{i}-{col[:3]}", **{col: form}))
    write_pinq_gesloten(raw, rows)
    h = harmonise(raw, dictionary, key=KEY)
    log = h.rejections
    # every planted cell is logged at its own row and column, and its value is not shown
    planted = {(r + 2, col) for r, col in enumerate(c for _ in FORMS for c in TARGETS)}
    got = {(int(r), c) for r, c in zip(log["row"], log["column"], strict=True)
           if not pd.isna(r)}
    assert planted <= got
    assert log["value"].isna().all(), log[log["value"].notna()].to_string()
    assert log["reason"].str.contains("value not shown").all()
    # unknown labels: the reason lists the declared labels instead (dictionary text)
    occ = log[log["kind"] == "unknown_occasion"]
    assert len(occ) == len(FORMS) and occ["reason"].str.contains("Voormeting").all()
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, FORMS + ["Milou", "Vos", "nov"])


def test_item7_series_file_alone_without_identifier_columns(tmp_path, dictionary):
    # No identifier column: a redaction list learns nothing; the whitelist must hold alone.
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [["310001", "1", "2023-02-06", "baseline", "7"]]
    for j, form in enumerate(FORMS):
        rows += [["310001", str(10 + 4 * j), "2023-03-06", "baseline", form],
                 ["310001", str(11 + 4 * j), form, "baseline", "5"],
                 ["310001", str(12 + 4 * j), "2023-03-20", form, "5"],
                 ["310001", form, "2023-03-27", "behandeling", "5"]]
    _series(raw, rows)
    h = harmonise(raw, dictionary, key=KEY)
    assert len(h.table) == 1
    log = h.rejections
    assert len(log) == 4 * len(FORMS) and (log["scores"] == 1).all()
    assert log["value"].isna().all() and log["reason"].str.contains("value not shown").all()
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, FORMS + ["Milou", "Vos", "nov"])


def test_item7_safe_shapes_are_still_shown(tmp_path, dictionary):
    # the whitelist is not a blanket ban: scores and measurement dates of a safe shape show
    raw = tmp_path / "raw"
    raw.mkdir()
    write_pinq_gesloten(raw, [_pg_row("DK-1", **{"CRIES totaal": "99"}),
                              _pg_row("DK-2", **{"SDQ internaliserend": "9.7"}),
                              _pg_row("DK-3", date="31-02-2023"),
                              _pg_row("DK-4", **{"CRIES totaal": "1234567"})])
    h = harmonise(raw, dictionary, key=KEY)
    assert _entry(h, row=2, column="CRIES totaal")["value"] == "99"
    assert _entry(h, row=3, column="SDQ internaliserend")["value"] == "9.7"
    assert _entry(h, row=4, column="Datum")["value"] == "31-02-2023"
    seven = _entry(h, row=5, column="CRIES totaal")  # 7 digits: never shown
    assert pd.isna(seven["value"]) and "value not shown" in seven["reason"]
    _assert_accounting(h)
    # the shape rules themselves, on the forms of the issue
    for form in FORMS + ["641693266", "0612345678", "A1", "5 5"]:
        assert shown_value(form, "number") is None, form
        assert shown_value(form, "date") is None, form
        assert shown_value(form, "label", {"A", "B"}) is None, form
    assert shown_value("-3", "number") == "-3" and shown_value("9,7", "number") == "9,7"
    assert shown_value(12.5, "number") == "12.5" and shown_value(24.0, "number") == "24"
    assert shown_value("B", "label", {"A", "B"}) == "B"
    assert shown_value("2023-02-31", "date") == "2023-02-31"
    assert shown_value("Bo", None) is None


def test_item7_protect_is_only_a_second_line(dictionary):
    log = RejectionLog()
    log.protect(["14-03-2008", "Zoe Persoonqx"])
    log.add(programme="p", file="f", row=2, column="Datum", kind="unparseable_date",
            reason="bad date", value="14-03-2008", scores=1, shape="date")
    log.add(programme="p", file="f", row=3, column="Datum", kind="unparseable_date",
            reason="bad date", value="15-03-2008", scores=1, shape="date")
    log.protect([pd.Timestamp("2009-11-07")])  # a birth date read from Excel as a date
    log.add(programme="p", file="f", row=4, column="Datum", kind="unparseable_date",
            reason="bad date", value="07-11-2009", scores=1, shape="date")
    frame = log.frame()
    assert pd.isna(frame["value"].iloc[0]) and frame["value"].iloc[1] == "15-03-2008"
    assert pd.isna(frame["value"].iloc[2])
    assert "value not shown" in frame["reason"].iloc[0]


def test_item7_unreadable_cell_is_a_logged_score_record(monkeypatch, dictionary):
    cls = getattr(readers_module, "UnreadableCell", None)
    if cls is None:
        class _Unreadable:  # stand-in until readers.py has its own
            def __init__(self, reason: str) -> None:
                self.reason = reason

            def __repr__(self) -> str:  # what a careless echo would print
                return "=HYPERLINK(\"Milou Vos\")"

        monkeypatch.setattr(readers_module, "UnreadableCell", _Unreadable, raising=False)
        cell = _Unreadable("formula without a cached value")
    else:
        try:
            cell = cls(reason="formula without a cached value")
        except TypeError:
            cell = cls("formula without a cached value")
    sf = next(f for f in dictionary.sources["veilig_lima"].files if f.layout == "series")
    frame = pd.DataFrame({"respnr": ["310001", "310001"], "week": ["1", "2"],
                          "datum": ["2023-02-06", "2023-02-13"],
                          "conditie": ["baseline", "baseline"], "spanning": ["4", cell]},
                         dtype=object)
    raw = RawTable(frame, (2, 3), Path("veilig_lima_weekreeks.csv"))
    log = RejectionLog()
    res = map_file(raw, sf, dictionary, KEY, log, "veilig_lima_weekreeks.csv")
    assert res.rows_in == 2 and len(res.records) == 1  # counted as present, not as empty
    entry = log.frame().iloc[0]
    assert (entry["kind"], int(entry["row"]), entry["column"]) == ("unreadable_cell", 3,
                                                                   "spanning")
    assert "formula without a cached value" in entry["reason"]
    assert pd.isna(entry["value"]) and entry["scores"] == 1
    assert "Milou" not in log.frame().to_csv(index=False)


# --------------------------------------------------------------------------- #
# Item 16 and 17: an implausible cell is a logged rejection, never an abort
# --------------------------------------------------------------------------- #
def test_item16_implausible_cells_are_logged_and_the_run_goes_on(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_pinq_gesloten(raw, [
        _pg_row("DK-1", Geboortedatum="01-01-1950"),            # age 73
        _pg_row("DK-2", Geboortedatum="01-01-2022"),            # age 1: the schema's range
        _pg_row("DK-3", **{"Weken in zorg": "-3"}),
        _pg_row("DK-4", **{"Weken in zorg": "99999"}),
        _pg_row("DK-5"),
    ])
    _series(raw, [["310001", "1", "2023-02-06", "baseline", "7"],
                  ["310001", "-1", "2023-02-13", "baseline", "6"],
                  ["310001", "2", "2023-02-20", "baseline", "6"]])
    h = harmonise(raw, dictionary, key=KEY)
    imp = h.rejections[h.rejections["kind"] == "implausible_value"]
    where = {(f, int(r), c) for f, r, c in zip(imp["file"], imp["row"], imp["column"],
                                               strict=True)}
    assert where == {("pinq_gesloten_metingen.csv", 2, "Geboortedatum"),
                     ("pinq_gesloten_metingen.csv", 3, "Geboortedatum"),
                     ("pinq_gesloten_metingen.csv", 4, "Weken in zorg"),
                     ("pinq_gesloten_metingen.csv", 5, "Weken in zorg"),
                     ("veilig_lima_weekreeks.csv", 3, "week")}
    by = imp.set_index("row")
    assert sorted(by.loc[3, "scores"].tolist()) == [0, 1]  # the session's score is removed
    ages = h.clients.set_index("client")["age"]
    assert pd.isna(ages[pseudonymise("pinq_gesloten", "DK-1", KEY)])  # age unknown
    assert pd.isna(ages[pseudonymise("pinq_gesloten", "DK-2", KEY)])
    assert ages[pseudonymise("pinq_gesloten", "DK-5", KEY)] == pytest.approx(14.9, abs=0.1)
    weeks = h.clients.set_index("client")["weeks_in_care"]
    assert pd.isna(weeks[pseudonymise("pinq_gesloten", "DK-3", KEY)])
    assert len(h.table) == 25 + 2
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, ["01-01-1950", "1950-01-01", "01-01-2022"])


def test_item17_overflowing_numbers_are_logged_not_raised(tmp_path, dictionary):
    big = "99999999999999999999"
    raw = tmp_path / "raw"
    raw.mkdir()
    _series(raw, [["310001", "1", "2023-02-06", "baseline", "7"],
                  ["310001", big, "2023-02-13", "baseline", "6"],
                  ["310001", "1e400", "2023-02-20", "baseline", "6"],
                  ["310001", "3", "2023-02-27", "baseline", big]])
    write_pinq_gesloten(raw, [_pg_row("DK-1", **{"Weken in zorg": big}),
                              _pg_row("DK-2", **{"CRIES totaal": big})])
    h = harmonise(raw, dictionary, key=KEY)
    log = h.rejections.set_index(["file", "row"])
    assert log.loc[("veilig_lima_weekreeks.csv", 3), "kind"] == "implausible_value"
    assert log.loc[("veilig_lima_weekreeks.csv", 4), "kind"] == "non_numeric"  # not finite
    assert log.loc[("veilig_lima_weekreeks.csv", 5), "kind"] == "out_of_range"
    assert log.loc[("pinq_gesloten_metingen.csv", 2), "kind"] == "implausible_value"
    assert log.loc[("pinq_gesloten_metingen.csv", 3), "kind"] == "out_of_range"
    assert h.rejections["value"].isna().all()  # 20 digits: never a safe shape
    assert len(h.table) == 1 + 9
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    assert big not in text and "1e+20" not in text


# --------------------------------------------------------------------------- #
# Item 18: declared id formats link
# --------------------------------------------------------------------------- #
def test_item18_integer_ids_link_in_every_written_form(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    forms = ["829259", "0829259", "829259.0", "829 259", "829\u00a0259", " 829259 "]
    rows = [[f, str(i + 1), f"2023-02-{6 + i:02d}", "baseline", "5"]
            for i, f in enumerate(forms)]
    rows += [["82925x", "9", "2023-03-01", "baseline", "5"],     # not an integer id
             ["８２９２５９", "10", "2023-03-02", "baseline", "5"],  # full-width digits
             ["829259.5", "11", "2023-03-03", "baseline", "5"]]
    _series(raw, rows)
    h = harmonise(raw, dictionary, key=KEY)
    expected = pseudonymise("veilig_lima", "829259", KEY)
    assert set(h.table["client"]) == {expected} and len(h.table) == len(forms)
    assert h.table["session"].tolist() == list(range(1, len(forms) + 1))
    bad = h.rejections[h.rejections["kind"] == "invalid_client_id"]
    assert sorted(bad["row"].astype(int)) == [8, 9, 10]
    assert (bad["column"] == "respnr").all() and bad["value"].isna().all()
    assert (bad["scores"] == 1).all()
    _assert_accounting(h)
    # a text-format source keeps ids as written (no silent merging of distinct ids)
    sf = next(f for f in dictionary.sources["pinq_gesloten"].files)
    assert sf.client_id_format == "text"
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, ["829259", "0829259", "82925x"])


def test_item18_wide_excel_ids_link_across_files(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    frame = pd.read_excel(write_intermetzo(raw), sheet_name="ROM")
    frame["Dossiernr"] = ["0520001", "520 002", "520003.0"]
    write_intermetzo(raw, frame.astype({"Dossiernr": object}))
    h = harmonise(raw, dictionary, key=KEY)
    assert set(h.clients["client"]) == {pseudonymise("intermetzo", str(n), KEY)
                                        for n in (520001, 520002, 520003)}
    _assert_accounting(h)


# --------------------------------------------------------------------------- #
# Item 22: ASCII-only numbers
# --------------------------------------------------------------------------- #
def test_item22_full_width_and_other_digits_are_not_numbers(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    # the Excel workbook holds full-width digits as text; the UTF-8 series also Arabic-Indic
    frame = pd.read_excel(write_intermetzo(raw), sheet_name="ROM").astype(object)
    frame.loc[0, "CRIES_T0"] = "５０"
    frame.loc[1, "Duur_weken"] = "２６"
    write_intermetzo(raw, frame)
    _series(raw, [["310001", "１", "2023-02-06", "baseline", "7"],
                  ["310001", "2", "2023-02-13", "baseline", "６"],
                  ["310001", "3", "2023-02-20", "baseline", "\u0665"]])
    h = harmonise(raw, dictionary, key=KEY)
    assert 50.0 not in set(h.table["raw"])
    log = h.rejections.set_index(["file", "row"])
    for where, col in ((("intermetzo_rom.xlsx", 2), "CRIES_T0"),
                       (("intermetzo_rom.xlsx", 3), "Duur_weken"),
                       (("veilig_lima_weekreeks.csv", 2), "week"),
                       (("veilig_lima_weekreeks.csv", 3), "spanning"),
                       (("veilig_lima_weekreeks.csv", 4), "spanning")):
        assert (log.loc[where, "kind"], log.loc[where, "column"]) == ("non_numeric", col)
        assert pd.isna(log.loc[where, "value"])
    assert pd.isna(h.clients.set_index("client")["weeks_in_care"][
        pseudonymise("intermetzo", "520102", KEY)])
    _assert_accounting(h)
    for text in ("５０", "٥٠", "１", "\u0661\u0662"):
        with pytest.raises(ValueError):
            parse_number(text)
    assert parse_number("50") == 50.0 and parse_number("9,5", ",") == 9.5


def test_item7_excel_formula_without_result_end_to_end(tmp_path, dictionary):
    if getattr(readers_module, "UnreadableCell", None) is None:
        pytest.skip("readers.UnreadableCell not available yet")
    raw = tmp_path / "raw"
    raw.mkdir()
    frame = pd.read_excel(write_intermetzo(raw), sheet_name="ROM").astype(object)
    frame.loc[0, "CRIES_T0"] = '=HYPERLINK("http://x","Milou Vos")'  # no cached value
    write_intermetzo(raw, frame)
    h = harmonise(raw, dictionary, key=KEY)
    entry = _entry(h, kind="unreadable_cell")
    assert (entry["file"], int(entry["row"]), entry["column"]) == ("intermetzo_rom.xlsx", 2,
                                                                   "CRIES_T0")
    assert entry["scores"] == 1 and pd.isna(entry["value"])
    assert len(h.table) == 3 * 20 - 1
    _assert_accounting(h)
    text = _written_text(h, tmp_path / "out")
    _assert_absent(text, ["Milou", "Vos", "HYPERLINK"])
