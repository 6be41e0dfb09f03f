"""Attacks on the scaffolder's header rule: values standing where a header should be.

An export saved with a data row as its header, or pivoted with a column per client, has
client identifiers for headers: lower-case names (no capital to give them away), names
with particles, initials, dates, BSN-like numbers, e-mail addresses, telephone numbers.
None of them may reach the console output of ``effectstudy dictionary new-source`` or
the drafted YAML. The names are common Dutch girls' first names and surnames written
here (no name list exists in the package); the BSNs pass the 11-test by this file's own
arithmetic. Every grep has a positive control.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import openpyxl
import pytest
import yaml
from typer.testing import CliRunner

from effectstudy.scaffold import draft_source, header_is_safe

runner = CliRunner()

FIRST_NAMES = ["emma", "julia", "sophie", "tess", "zoë", "sara", "anna", "eva", "fleur", "lotte",
               "noor", "sanne", "lisa", "iris", "roos", "mila", "nina", "isa", "femke", "lieke",
               "demi", "anouk", "kim", "amber", "britt", "jade", "yara", "fatima", "aya",
               "naomi", "romy", "daphne", "chantal", "kelly", "shanice", "samira", "nora",
               "ilse", "esmee", "maud", "bo", "ivy", "jasmijn", "merel", "vera", "puck", "elif",
               "ayşe", "dewi", "kiki", "floor", "fenna"]
SURNAMES = ["de jong", "jansen", "de vries", "van den berg", "van der berg", "van dijk", "bakker",
            "visser", "smit", "meijer", "de boer", "mulder", "de groot", "bos", "vos", "peters",
            "hendriks", "van leeuwen", "dekker", "brouwer", "de wit", "dijkstra", "de graaf",
            "van der meer", "van der linden", "kok", "de haan", "vermeulen", "van den heuvel",
            "van der veen", "schouten", "van beek", "willems", "hoekstra", "maas", "koster",
            "van dam", "van der wal", "prins", "blom", "huisman", "post", "groen", "koning",
            "el amrani", "el idrissi", "yilmaz", "kaya", "demir", "öztürk", "bennani", "de lange",
            "de ruiter", "van wijk", "kramer", "bosman", "sanders", "klein", "wolters"]


def bsn(prefix8: str) -> str:
    """A 9-digit number passing the 11-test (weights 9..2 on the prefix, -1 on the last)."""
    total = sum(int(c) * w for c, w in zip(prefix8, range(9, 1, -1), strict=True))
    return prefix8 + next(str(last) for last in range(10) if (total - last) % 11 == 0)


BSN_A, BSN_B = bsn("12345678"), bsn("30303030")
INITIALS = ["m.v.", "M.V.", "mv", "MV", "m v", "j.t.", "a.b.c.", "JdV", "m. vos", "M.Vos"]
DATES = ["14-03-2008", "2008-03-14", "14/3/08", "14.03.2008", "7 nov 2009", "14 maart 2008",
         "march 14, 2008", "datum 14-03-2008", "geb. 14.03.2008", "03-2008", "2008/3"]
BSNS = [BSN_A, BSN_B, f"{BSN_A[:3]} {BSN_A[3:6]} {BSN_A[6:]}", f"{BSN_B[:4]}.{BSN_B[4:6]}."
        f"{BSN_B[6:]}", f"bsn {BSN_A}", "520101"]
EMAILS = ["mila.vos@gmail.com", "m.devries@hotmail.nl", "sanne@example.nl", "mila vos gmail com"]
PHONES = ["06-12345678", "0612345678", "+31 6 1234 5678", "020-1234567", "tel 06 1234 5678",
          "06 48 21 39 77"]


def _forms(value: str) -> list[str]:
    """A value as it may stand in a header: alone, capitalised, beside column words."""
    return [value, value.title(), value.upper(), f"naam {value}", f"CRIES_{value}",
            f"{value}_T0", f"score {value}", f"{value} (moeder)", f"client {value}"]


@pytest.mark.parametrize("value", FIRST_NAMES + SURNAMES + [
    f"{f} {s}" for f, s in zip(FIRST_NAMES, SURNAMES, strict=False)])
def test_names_in_any_case_are_never_shown(value):
    shown = [h for h in _forms(value) if header_is_safe(h)]
    assert shown == []


@pytest.mark.parametrize("value", INITIALS + DATES + BSNS + EMAILS + PHONES)
def test_initials_dates_numbers_and_contacts_are_never_shown(value):
    shown = [h for h in _forms(value) if header_is_safe(h)]
    assert shown == []


def test_positive_control_the_same_forms_with_column_words_are_shown():
    # the rule is not "hide everything": the forms above with a column word in the place
    # of the value are shown
    assert [h for h in _forms("totaal") if not header_is_safe(h)] == []
    assert all(header_is_safe(h) for h in ("naam", "CRIES_T0", "score totaal", "Datum_T0",
                                           "Geboortedatum", "BSN", "Telefoon", "E-mail"))


# --------------------------------------------------------------------------- #
# End to end: the console of `effectstudy dictionary new-source` and the draft
# --------------------------------------------------------------------------- #
PLANTED = ["mila vos", "van der berg", "m.v.", "sanne", "de vries", "14-03-2008", BSN_A,
           "mila.vos@gmail.com", "06-12345678", "datum 14-03-2008", "client 520101", "MV"]
# parts a leak could show, each distinctive (checked as whole words where they are short)
SECRETS = ["mila", "vos", "van der berg", "berg", "m.v.", "sanne", "de vries", "vries",
           "14-03-2008", "2008", BSN_A, "gmail", "06-12345678", "12345678", "520101", "MV"]


def _leaks(text: str) -> list[str]:
    low = text.lower()
    return [s for s in SECRETS
            if re.search(rf"(?<![a-z0-9]){re.escape(s.lower())}(?![a-z0-9])", low)]


def _pivoted_csv(folder: Path) -> Path:
    """A pivoted export: a row per occasion and instrument, a column per client whose
    header is the client's name, initials, birth date, BSN, e-mail or phone number."""
    path = folder / "nieuw_pivot.csv"
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter=";")
        w.writerow(["Meetmoment", "instrument", *PLANTED])
        for occ in ("T0", "T1", "T2"):
            for inst in ("CRIES", "RSES"):
                w.writerow([occ, inst, *(str(10 + i) for i in range(len(PLANTED)))])
    return path


def _data_row_as_header_xlsx(folder: Path) -> Path:
    """A workbook saved with a client's data row as its header; sheet and file named after
    the client."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "mila vos"
    ws.append(["Cliëntnummer", "Meetmoment", "CRIES_T0", "CRIES_T1", *PLANTED])
    for i in range(6):
        ws.append([600 + i, "T0", 20 + i, 15 + i, *(3 + i for _ in PLANTED)])
    path = folder / "export sanne de vries.xlsx"
    wb.save(path)
    return path


@pytest.mark.parametrize("make", [_pivoted_csv, _data_row_as_header_xlsx])
def test_new_source_console_and_draft_never_show_a_value_header(tmp_path, make):
    from effectstudy.cli import app

    export = make(tmp_path)
    first = 3 if export.suffix == ".csv" else 5  # column number of the first planted header
    res = runner.invoke(app, ["dictionary", "new-source", str(export), "--programme", "nieuw"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "draft.yaml"
    res_out = runner.invoke(app, ["dictionary", "new-source", str(export), "--programme",
                                  "nieuw", "--out", str(out)])
    assert res_out.exit_code == 0, res_out.output
    draft = out.read_text(encoding="utf-8")
    for text in (res.output, res_out.output, draft):
        assert _leaks(text) == []
    # positive controls: the export was read (its ordinary headers are shown) and every
    # planted header is listed by its position, with the hint how to name it
    assert "Meetmoment" in draft and "Meetmoment" in res.output
    for n in range(first, first + len(PLANTED)):
        assert re.search(rf"column #{n}\b", draft), n
    assert "column #14 (not shown: may be a value)" in draft + res.output
    hint = "header of column(s) " + ", ".join(f"#{n}" for n in range(first, first + len(PLANTED)))
    assert hint in res.output and "rename it in the export" in res.output
    assert "--show-headers" not in res.output
    data = yaml.safe_load(draft)
    assert data["programme"] == "nieuw"
    if export.suffix == ".csv":  # 'datum 14-03-2008' taken for the date column
        assert "date_column: TODO   # column #12" in draft
    else:
        f = data["files"][0]
        assert f["sheet"] == "TODO" and f["path"] == "TODO"
        assert f["measures"][0]["column"] == "CRIES_{occasion}"


def test_the_hint_names_columns_by_position_only(tmp_path):
    export = _pivoted_csv(tmp_path)
    _text, findings = draft_source(export, programme="nieuw")
    hints = [f for f in findings if "is not shown: a header is shown only" in f.message]
    assert len(hints) == 1 and hints[0].level == "warning"
    assert _leaks(hints[0].message) == []
    assert "#3" in hints[0].message and f"#{2 + len(PLANTED)}" in hints[0].message
