"""Messages that say how to fix (issue 14): did-you-mean headers, the decimal-comma hint,
the pinq export without an end-of-care column, title rows in a CSV."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from harmonise_helpers import BSNS, KEY, NAMES, write_egoversterkend, write_pinq_gesloten

from effectstudy.dictionary import default_path, load_dictionary
from effectstudy.errors import SourceError
from effectstudy.harmonise import harmonise


def _dictionary(tmp_path: Path, programme: str, **changes) -> Path:
    d = tmp_path / "dictionary"
    shutil.copytree(Path(default_path()).resolve(), d)
    path = d / "sources" / f"{programme}.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["files"][0].update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return d


def _egov_rows(scores: list) -> list[dict]:
    rows = []
    for i, sc in enumerate(scores):
        rows.append({"client_id": f"R-{i}", "name": NAMES[i % 3], "birth_date": "2008-03-14",
                     "bsn": BSNS[i % 3], "occasion": "T0", "date": "2023-01-10",
                     "phase": "treatment", "instrument": "YSR", "scale": "INT", "score": sc,
                     "weeks_in_care": 50, "last_phase": "aftercare", "end_reason": "completed",
                     "interventions": "meidengroep", "fidelity": 0.7})
    return rows


def test_decimal_comma_hint_from_three_cells(tmp_path):
    write_egoversterkend(tmp_path, _egov_rows(["61,5", "62,5", "63,5", "64"]))
    h = harmonise(tmp_path, key=KEY)
    notes = h.rejections[h.rejections["kind"] == "note"]
    hint = notes[notes["reason"].str.contains("decimal comma")]
    assert len(hint) == 1 and "csv.decimal" in hint.iloc[0]["reason"]
    assert hint.iloc[0]["reason"].startswith("3 score cells")
    assert int(hint.iloc[0]["scores"]) == 0
    assert (h.rejections["kind"] == "non_numeric").sum() == 3
    # two such cells are no pattern: no hint
    write_egoversterkend(tmp_path, _egov_rows(["61,5", "62,5", "63", "64"]))
    h = harmonise(tmp_path, key=KEY)
    assert not h.rejections["reason"].str.contains("decimal comma").any()


def test_missing_column_near_miss_is_named_other_headers_are_counted(tmp_path):
    path = write_pinq_gesloten(tmp_path)
    frame = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str)
    frame = frame.rename(columns={"Meetmoment": "Meetmomnet", "Naam": NAMES[0]})
    frame.to_csv(path, sep=";", index=False, encoding="cp1252")
    with pytest.raises(SourceError) as err:
        harmonise(tmp_path, key=KEY)
    msg = str(err.value)
    assert err.value.column == "Meetmoment"
    assert "did you mean the export's column 'Meetmomnet'" in msg
    assert f"has {frame.shape[1]} column(s)" in msg
    assert NAMES[0] not in msg and "Interventies" not in msg
    # no close spelling: no header at all, a pointer to the dictionary instead
    frame = frame.rename(columns={"Meetmomnet": "Xyz"})
    frame.to_csv(path, sep=";", index=False, encoding="cp1252")
    with pytest.raises(SourceError) as err:
        harmonise(tmp_path, key=KEY)
    assert "Xyz" not in str(err.value) and "sources/pinq_gesloten.yaml" in str(err.value)


def test_no_end_of_care_column_gives_unknown_not_zero(tmp_path):
    dd = tmp_path / "dd"
    d = _dictionary(dd, "pinq_gesloten")
    src = d / "sources" / "pinq_gesloten.yaml"
    data = yaml.safe_load(src.read_text(encoding="utf-8"))
    del data["files"][0]["client_fields"]["end_reason"]
    src.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    exports = tmp_path / "exports"
    exports.mkdir()
    write_pinq_gesloten(exports)
    h = harmonise(exports, load_dictionary(d), key=KEY)
    assert h.clients["end_reason"].tolist() == ["unknown"] * 3


def test_csv_title_rows_above_the_header(tmp_path):
    dd = tmp_path / "dd"
    d = _dictionary(dd, "pinq_gesloten", header_row=3)
    exports = tmp_path / "exports"
    exports.mkdir()
    path = write_pinq_gesloten(exports)
    text = path.read_bytes().decode("cp1252")
    path.write_bytes(("Export ROM;;\n\n" + text).encode("cp1252"))
    h = harmonise(exports, load_dictionary(d), key=KEY)
    assert len(h.table) == 30 and sorted(h.table["source_row"].unique()) == list(range(4, 10))
    notes = h.rejections[h.rejections["kind"] == "note"]["reason"].tolist()
    assert any(n.startswith("1 row(s) above the header (header_row 3)") for n in notes)
    with pytest.raises(SourceError, match="header_row 12"):
        harmonise(exports, load_dictionary(_dictionary(tmp_path / "d2", "pinq_gesloten",
                                                       header_row=12)), key=KEY)
