"""Determinism, write/read round trip, provenance, summary."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from harmonise_helpers import KEY

from effectstudy.errors import HarmoniseError
from effectstudy.harmonise import (
    CLIENT_COLUMNS,
    LOG_COLUMNS,
    TABLE_COLUMNS,
    harmonise,
    read_harmonised,
)
from effectstudy.synth import generate


def test_columns(synth_run):
    _, h, _ = synth_run
    assert tuple(h.table.columns) == TABLE_COLUMNS
    assert tuple(h.clients.columns) == CLIENT_COLUMNS
    assert tuple(h.rejections.columns) == LOG_COLUMNS
    required = {"programme", "client", "occasion", "week", "session", "phase", "programme_phase",
                "sced_phase", "construct", "instrument", "scale", "raw", "z", "t", "better",
                "norm_group", "source_file", "source_row"}
    assert required <= set(h.table.columns)


def test_deterministic(synth_run, tmp_path, dictionary):
    synth, h, raw = synth_run
    again = harmonise(raw, dictionary, key=KEY)
    pd.testing.assert_frame_equal(h.table, again.table)
    pd.testing.assert_frame_equal(h.clients, again.clients)
    pd.testing.assert_frame_equal(h.rejections, again.rejections)
    # regenerated with the same seed in another folder: the same result
    other = generate(tmp_path / "raw", seed=2026, dictionary=dictionary)
    h2 = harmonise(tmp_path / "raw", dictionary, key=KEY)
    pd.testing.assert_frame_equal(h.table, h2.table)
    assert len(other.files) == len(synth.files)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_write_and_read_back(synth_run, tmp_path, fmt, dictionary):
    _, h, _ = synth_run
    written = h.write(tmp_path / "out", format=fmt)
    assert {p.name for p in written} == {f"{n}.{fmt}" for n in
                                        ("table", "clients", "rejections", "accounting")} | {
        "provenance.json"}
    back = read_harmonised(tmp_path / "out", dictionary)
    pd.testing.assert_frame_equal(h.table, back.table, check_dtype=False)
    pd.testing.assert_frame_equal(h.clients, back.clients, check_dtype=False)
    pd.testing.assert_frame_equal(h.rejections, back.rejections, check_dtype=False)
    assert back.summary().equals(h.summary())


def test_provenance(synth_run, tmp_path, dictionary):
    _, h, raw = synth_run
    h.write(tmp_path / "out")
    prov = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert prov["dictionary_sha256"] == dictionary.sha256
    assert set(prov["inputs"]) == set(h.accounting["file"])
    assert all(len(v["sha256"]) == 64 for v in prov["inputs"].values())
    assert prov["effectstudy_version"]
    assert prov["created_utc"]
    assert prov["rows"]["in"] == prov["rows"]["out"] + prov["rows"]["rejected"]


def test_read_harmonised_refuses_other_folders(tmp_path):
    with pytest.raises(HarmoniseError):
        read_harmonised(tmp_path)


def test_summary(synth_run, dictionary):
    synth, h, _ = synth_run
    s = h.summary()
    assert set(s["programme"]) == set(dictionary.sources)
    assert (s["rows_in"] == s["rows"] + s["rows_rejected"]).all()
    counts = synth.clients.groupby("programme").size()
    assert s.set_index("programme")["clients"].to_dict() == counts.to_dict()
    assert s["rejected_by_reason"].str.len().gt(0).all()


def test_programmes_filter_and_unknown_programme(synth_run, dictionary):
    _, _, raw = synth_run
    h = harmonise(raw, dictionary, key=KEY, programmes=["intermetzo"])
    assert set(h.table["programme"]) == {"intermetzo"}
    with pytest.raises(HarmoniseError):
        harmonise(raw, dictionary, key=KEY, programmes=["nope"])


def test_list_of_files(synth_run, dictionary):
    _, h, raw = synth_run
    files = sorted(raw.glob("*"))
    h2 = harmonise(files, dictionary, key=KEY)
    pd.testing.assert_frame_equal(h.table, h2.table)


def test_module_is_callable_and_keeps_its_attributes(tmp_path, dictionary):
    from harmonise_helpers import write_pinq_gesloten

    import effectstudy.harmonise as module

    write_pinq_gesloten(tmp_path)
    h = module(tmp_path, dictionary, key=KEY)
    assert len(h.table) == 30 and module.read_harmonised is read_harmonised
    assert "30 scores" in repr(h)
    # decimal commas of the Dutch CSV are read as numbers
    sdq = h.table[h.table["instrument"] == "SDQ-S"]["raw"]
    assert {8.5, 7.5} <= set(sdq)
    assert h.provenance["ignored_files"] == 0


def test_schema_error_on_reading_back_names_columns_not_values(tmp_path, key):
    # A hand-edited table.csv with a raw id where a pseudonym belongs: the error names the
    # column and the check, never the offending value.
    import pandas as pd
    from harmonise_helpers import write_pinq_gesloten

    from effectstudy.errors import HarmoniseError
    from effectstudy.harmonise import harmonise, read_harmonised

    (tmp_path / "raw").mkdir()
    write_pinq_gesloten(tmp_path / "raw")
    out = tmp_path / "out"
    harmonise(tmp_path / "raw", key=key).write(out, format="csv")
    table = pd.read_csv(out / "table.csv", dtype=str)
    table.loc[0, "client"] = "Jansen-123456782"
    table.to_csv(out / "table.csv", index=False)
    with pytest.raises(HarmoniseError, match="client") as err:
        read_harmonised(out)
    assert "Jansen" not in str(err.value) and "123456782" not in str(err.value)
