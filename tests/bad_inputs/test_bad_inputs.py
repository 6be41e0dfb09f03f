"""The bad-input corpus: every case gives the exact error class (naming file, row and/or
column/key) or the exact rejection-log entry. Never a pandas traceback, never silent loss,
never an identifier in a message or the log. Regenerate the files with ``make_corpus.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from effectstudy.dictionary import load_dictionary
from effectstudy.errors import DictionaryError, SourceError
from effectstudy.harmonise import harmonise

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
KEY = b"bad-input-corpus-key-0123456789"

import make_corpus  # noqa: E402  (same folder; pytest puts it on sys.path)

IDENTIFIERS = make_corpus.IDENTIFIERS

# case -> (error class, file name in message, row, column, key)
ERRORS = {
    "wrong_encoding_utf16": (SourceError, "pinq_gesloten_metingen.csv", None, None, None),
    "wrong_encoding_cp1252_in_utf8": (SourceError, "egoversterkend_scores_long.csv", 2, None,
                                      None),
    "wrong_encoding_utf8_in_cp1252": (SourceError, "pinq_gesloten_metingen.csv", None, None,
                                      None),
    "empty_file": (SourceError, "pinq_gesloten_metingen.csv", None, None, None),
    "header_only": (SourceError, "pinq_gesloten_metingen.csv", None, None, None),
    "missing_required_column": (SourceError, "pinq_gesloten_metingen.csv", None, "Meetmoment",
                                None),
    "csv_wrong_separator": (SourceError, "pinq_gesloten_metingen.csv", 1, None, None),
    "csv_ragged_row": (SourceError, "pinq_gesloten_metingen.csv", 3, None, None),
    "excel_missing_sheet": (SourceError, "intermetzo_rom.xlsx", None, None, "sheet"),
    "wide_missing_occasion_column": (SourceError, "intermetzo_rom.xlsx", None, "CRIES_T2", None),
    "corrupt_xlsx": (SourceError, "intermetzo_rom.xlsx", None, None, None),
    "corrupt_sav": (SourceError, "hoenderloo_metingen.sav", None, None, None),
}

# case -> (file, row, column, kind, scores rejected by that entry, value shown or None)
LOGGED = {
    "score_out_of_range": ("pinq_gesloten_metingen.csv", 3, "CRIES totaal", "out_of_range", 1,
                           "99"),
    "non_numeric_score": ("pinq_gesloten_metingen.csv", 3, "CRIES totaal", "non_numeric", 1,
                          None),  # not number-shaped: never echoed
    "decimal_point_in_comma_file": ("pinq_gesloten_metingen.csv", 4, "SDQ internaliserend",
                                    "non_numeric", 1, "11.5"),
    "duplicate_row": ("pinq_gesloten_metingen.csv", 4, "Cliëntnummer", "duplicate", 5, None),
    "unparseable_date": ("pinq_gesloten_metingen.csv", 5, "Datum", "unparseable_date", 5,
                         "31-02-2023"),  # a measurement date with a date's shape is shown
    "unparseable_birth_date": ("pinq_gesloten_metingen.csv", 4, "Geboortedatum",
                               "unparseable_date", 0, None),
    "unknown_occasion_label": ("pinq_gesloten_metingen.csv", 5, "Meetmoment",
                               "unknown_occasion", 5, None),
    "unknown_phase_label": ("pinq_gesloten_metingen.csv", 3, "Fase", "unknown_phase", 5,
                            None),  # unknown labels are never echoed
    "missing_client_id": ("pinq_gesloten_metingen.csv", 4, "Cliëntnummer", "missing_client_id",
                          5, None),
    "inconsistent_fidelity": ("pinq_gesloten_metingen.csv", 4, "Programmatrouw",
                              "inconsistent_fidelity", 0, "6"),
    "inconsistent_client_value": ("pinq_gesloten_metingen.csv", 3, "Reden einde",
                                  "inconsistent_client", 0, "transferred"),
    "unknown_end_reason": ("pinq_gesloten_metingen.csv", 2, "Reden einde", "unknown_label", 0,
                           None),
    "undeclared_columns": ("pinq_gesloten_metingen.csv", None, "column #18", "undeclared_columns",
                           0, None),
    "wide_unknown_occasion_column": ("intermetzo_rom.xlsx", 2, "column #39", "unknown_occasion",
                                     1, "33"),
    "unknown_instrument_label": ("egoversterkend_scores_long.csv", 3, "instrument",
                                 "unknown_instrument", 1, None),
    "long_missing_score": ("egoversterkend_scores_long.csv", 4, "score", "missing_score", 1,
                           None),
    "series_unknown_sced_phase": ("veilig_lima_weekreeks.csv", 3, "conditie", "unknown_phase",
                                  1, None),
}

# cases whose offending cell is not echoed (not of a safe declared shape)
NOT_SHOWN = {"non_numeric_score", "unknown_occasion_label", "unknown_phase_label",
             "unknown_end_reason", "unknown_instrument_label", "series_unknown_sced_phase",
             "unparseable_birth_date"}

# case -> (error key path contains, file name in message)
DICTIONARY = {
    "dict_unknown_programme": ("programme", "leger_des_heils.yaml"),
    "dict_unknown_instrument": ("instrument", "pinq_gesloten.yaml"),
    "dict_typo_bettter": ("bettter", "constructs.yaml"),
    "dict_unknown_key": ("sheet_name", "intermetzo.yaml"),
    "dict_yaml_syntax_error": (None, "occasions.yaml"),
}


@pytest.fixture(scope="module")
def dictionary():
    return load_dictionary()


def test_corpus_is_complete():
    cases = {p.name for p in HERE.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert cases == set(ERRORS) | set(LOGGED) | set(DICTIONARY)
    files = [p for p in HERE.rglob("*") if p.is_file() and p.parent != HERE]
    assert len(files) >= 22


def _no_identifiers(text: str) -> None:
    for ident in IDENTIFIERS:
        assert ident not in text, f"identifier {ident!r} leaked"


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_file_level_errors(case, dictionary):
    cls, fname, row, column, key = ERRORS[case]
    with pytest.raises(cls) as info:
        harmonise(HERE / case, dictionary, key=KEY)
    err = info.value
    assert type(err) is cls
    msg = str(err)
    assert fname in msg and err.file is not None and err.file.endswith(fname)
    if row is not None:
        assert err.row == row and f"row {row}" in msg
    if column is not None:
        assert err.column == column and repr(column) in msg
    if key is not None:
        assert err.key == key
    assert "Traceback" not in msg
    _no_identifiers(msg)


@pytest.mark.parametrize("case", sorted(LOGGED))
def test_logged_rejections(case, dictionary):
    fname, row, column, kind, scores, value = LOGGED[case]
    h = harmonise(HERE / case, dictionary, key=KEY)
    log = h.rejections
    hit = log[(log["file"] == fname) & (log["kind"] == kind) & (log["column"] == column)]
    hit = hit[hit["row"].isna()] if row is None else hit[hit["row"] == row]
    assert len(hit) == 1, log.to_string()
    entry = hit.iloc[0]
    assert entry["scores"] == scores
    if value is None:
        assert entry["value"] is None or entry["value"] != entry["value"]
    else:
        assert entry["value"] == value
    if case in NOT_SHOWN:
        # the cell held something that is not shown: the reason says so
        assert "value not shown" in entry["reason"]
    # headers of undeclared columns and unknown-occasion columns are never written
    for header in ("Telefoon", "CRIES_T9"):
        assert header not in log.to_csv(index=False)
    # nothing lost: every score record is in the table or rejected
    acc = h.accounting
    assert (acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]).all()
    # no identifier anywhere in the log or the tables
    for frame in (h.rejections, h.table, h.clients):
        _no_identifiers(frame.to_csv(index=False))


def test_unparseable_birth_date_is_not_echoed(dictionary):
    h = harmonise(HERE / "unparseable_birth_date", dictionary, key=KEY)
    ages = h.clients.set_index("client")["age"]
    assert ages.isna().sum() == 0  # the same client's other row has a valid birth date
    assert h.rejections["value"].isna().all()


@pytest.mark.parametrize("case", sorted(DICTIONARY))
def test_dictionary_errors(case, tmp_path):
    keypart, fname = DICTIONARY[case]
    folder = tmp_path / "dictionary"
    shutil.copytree(ROOT / "data_dictionary", folder,
                    ignore=shutil.ignore_patterns("{*}"))
    shutil.copytree(HERE / case / "dictionary", folder, dirs_exist_ok=True)
    with pytest.raises(DictionaryError) as info:
        load_dictionary(folder)
    err = info.value
    assert type(err) is DictionaryError
    assert err.file is not None and err.file.endswith(fname) and fname in str(err)
    if keypart is not None:
        assert keypart in (err.key or "")
    else:
        assert err.row is not None and f"row {err.row}" in str(err)
    # harmonise() passes the same error on, unchanged
    with pytest.raises(DictionaryError):
        harmonise(HERE / "score_out_of_range", dictionary=folder, key=KEY)
