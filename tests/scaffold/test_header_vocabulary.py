"""The scaffolder's header rule keeps every real header visible.

The rule is a whitelist (a header is shown only when made of column words), so its risk is
hiding too much: every header of every export that :mod:`effectstudy.synth` writes, and
every column that the built-in ``sources/*.yaml`` name, must still be shown. The headers
are read here with csv, openpyxl and pyreadstat and the YAML with ``yaml.safe_load``, not
with the scaffolder's own reader or the dictionary walk under test.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import openpyxl
import pyreadstat
import pytest
import yaml
from typer.testing import CliRunner

from effectstudy.dictionary import default_path, load_dictionary
from effectstudy.scaffold import EXPORT_WORDS, dictionary_words, draft_source, header_is_safe
from effectstudy.synth import generate

runner = CliRunner()
HIDDEN = re.compile(r"column #\d+ \(not shown")
SOURCES = sorted((default_path() / "sources").glob("*.yaml"))


@pytest.fixture(scope="module")
def synth_exports(tmp_path_factory) -> tuple[Path, list[tuple[Path, object]]]:
    out = tmp_path_factory.mktemp("synth")
    d = load_dictionary(None)
    generate(out, seed=7, dictionary=d, n_clients=6)
    files = [(out / sf.path, sf) for src in d.sources.values() for sf in src.files]
    assert len(files) >= 20 and all(p.is_file() for p, _sf in files)
    return out, files


def _headers(path: Path, sf) -> list[str]:
    """The header row of an export, read without the scaffolder."""
    if sf.format == "csv":
        with open(path, encoding=sf.csv["encoding"], newline="") as fh:
            rows = list(csv.reader(fh, delimiter=sf.csv["sep"]))
        return [h.strip() for h in rows[sf.header_row - 1]]
    if sf.format == "excel":
        wb = openpyxl.load_workbook(path, read_only=True)
        try:
            row = next(wb[sf.sheet].iter_rows(min_row=sf.header_row, max_row=sf.header_row,
                                               values_only=True))
        finally:
            wb.close()
        return [str(h).strip() for h in row if h is not None]
    _df, meta = pyreadstat.read_sav(str(path), metadataonly=True)
    return list(meta.column_names)


def test_every_header_of_every_synth_export_is_shown(synth_exports):
    _out, files = synth_exports
    seen = set()
    for path, sf in files:
        for h in _headers(path, sf):
            assert header_is_safe(h), f"{path.name}: {h!r} hidden"
            seen.add(h)
    # positive control: the exports hold Dutch compounds, abbreviations and templates
    assert {"Geb.datum", "Uitstroomreden", "KIDS_OUDERS_T0", "kids_psy_t", "wekenzorg",
            "weglopen_start_1", "Dossiernr", "respnr"} <= seen


def test_every_column_of_every_source_yaml_is_shown():
    columns: set[str] = set()
    for file in SOURCES:
        for sf in yaml.safe_load(file.read_text(encoding="utf-8"))["files"]:
            occasions = list(sf.get("occasions") or ["T0"])
            names = [sf.get(k) for k in ("client_id", "birth_date", "sheet", "sex_column")]
            names += [v for k, v in sf.items() if k.endswith("_column")]
            names += list(sf.get("identifiers") or ())
            names += list((sf.get("client_fields") or {}).values())
            names += list((sf.get("columns") or {}).values())
            names += [m.get("column") for m in sf.get("measures") or ()]  # labels are values
            for ev in (sf.get("events") or {}).get("columns") or ():
                names += [ev.get("start"), ev.get("end"), ev.get("reason")]
            for name in filter(None, names):
                for occ in occasions:
                    columns.add(str(name).replace("{occasion}", str(occ)).replace("{n}", "2"))
    assert len(columns) > 60  # positive control: the walk found the columns
    hidden = sorted(c for c in columns if not header_is_safe(c))
    assert hidden == []


def test_drafts_of_the_synth_exports_show_every_header(synth_exports):
    """End to end: the draft of each built-in export names no column by position only,
    and its file name and sheet are written out."""
    _out, files = synth_exports
    for path, sf in files:
        if sf.layout not in ("wide", "occasion_rows", "long", "series"):
            continue
        text, findings = draft_source(path, programme=sf.programme)
        shown = text + "\n".join(map(str, findings))
        assert not HIDDEN.search(shown), path.name
        assert "is not shown" not in shown, path.name
        assert f"path: {path.name}" in text
        if sf.format == "excel":
            assert f"sheet: {sf.sheet}" in text


def test_dictionary_words_leave_out_capitalised_label_words():
    words = dictionary_words(load_dictionary(None))
    # ids, scales and mapped columns are column words ...
    assert {"cries", "kjts", "honosca", "internalising", "weglopen", "uitbuiter",
            "geboortedatum", "intake", "discharge"} <= words
    # ... the authors and places in instrument names and programme names are not
    # (Rosenberg Self-Esteem Scale; YSR, Dutch version Verhulst, Van der Ende & Koot;
    # programme Veilig Lima)
    assert not {"rosenberg", "verhulst", "ende", "koot", "franck", "lima", "hoenderloo"} & words
    assert all(len(w) >= 3 and w == w.lower() for w in words)
    assert {"datum", "score", "meting", "fase", "client", "week"} <= EXPORT_WORDS


def test_compounds_numbers_and_connectors():
    for shown in ("Uitstroomreden", "behandelingsduur", "Weken in zorg", "Datum van intake",
                  "Sessie 3", "follow-up 12m", "CRIES_FU3", "score (0-10)", "ID", "Nr",
                  "totaalscores"):
        assert header_is_safe(shown), shown
    for hidden in ("T0", "12", "in de", "van der", "Egon", "Romy", "client 12", "dossier 7",
                   "clientnr2", "score 12345"):
        assert not header_is_safe(hidden), hidden


def test_vocabulary_given_makes_a_new_instrument_shown():
    # the hint tells a user to add a new instrument to the dictionary: its id then counts
    assert not header_is_safe("PTSS_T0")
    assert header_is_safe("PTSS_T0", ["PTSS"])
    assert header_is_safe("PTSS_T0", frozenset({"ptss"}))
    # a given word does not launder a name beside it
    assert not header_is_safe("PTSS_T0 mila", ["PTSS"])


def test_a_header_with_a_line_break_is_shown_escaped(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Data"
    ws.append(["client", "CRIES_T0", "CRIES_T1", "score\nsheet: totaal"])
    for i in range(1, 5):
        ws.append([i, 20, 18, 3])
    path = tmp_path / "nieuw_odd.xlsx"
    wb.save(path)
    text, _ = draft_source(path, programme="nieuw")
    data = yaml.safe_load(text)
    assert data["files"][0]["sheet"] == "Data"
    assert "score\\nsheet: totaal" in text  # escaped on its comment line
    assert not re.search(r"^sheet: totaal", text, re.MULTILINE)
