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
                                        ("table", "clients", "rejections", "accounting", "events",
                                         "delivery", "fidelity_ratings")} | {
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


def test_entry_points_without_a_callable_module(tmp_path, dictionary):
    """``effectstudy.harmonise`` is a plain package; the function is its ``harmonise``
    and, lazily, ``effectstudy.harmonise_exports`` (issue 15: no module trick)."""
    from harmonise_helpers import write_pinq_gesloten

    import effectstudy
    import effectstudy.harmonise as module

    assert not callable(module) and type(module).__name__ == "module"
    assert effectstudy.harmonise_exports is module.harmonise
    assert effectstudy.read_harmonised is read_harmonised is module.read_harmonised
    write_pinq_gesloten(tmp_path)
    h = module.harmonise(tmp_path, dictionary, key=KEY)
    assert len(h.table) == 30
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
    # the edit alone is caught by the hash check, naming the file but not the value
    with pytest.raises(HarmoniseError, match="sha256|size") as err:
        read_harmonised(out)
    assert "table.csv" in str(err.value)
    assert "Jansen" not in str(err.value) and "123456782" not in str(err.value)
    # with provenance.json edited to match, the schema check still names only the column
    _rehash(out, "table.csv")
    with pytest.raises(HarmoniseError, match="client") as err:
        read_harmonised(out)
    assert "Jansen" not in str(err.value) and "123456782" not in str(err.value)


def _rehash(out, name, rows=None):
    """Record ``name``'s current bytes in provenance.json, as a careful forger would."""
    import hashlib

    prov = json.loads((out / "provenance.json").read_text())
    data = (out / name).read_bytes()
    prov["files"][name].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    if rows is not None:
        prov["files"][name]["rows"] = rows
    (out / "provenance.json").write_text(json.dumps(prov))


# --------------------------------------------------------------------------- #
# Atomic, private, verified output (issue 10, items 12, 13, 17, 21)
# --------------------------------------------------------------------------- #
@pytest.fixture
def small(tmp_path, key):
    from harmonise_helpers import write_pinq_gesloten

    (tmp_path / "raw").mkdir()
    write_pinq_gesloten(tmp_path / "raw")
    return harmonise(tmp_path / "raw", key=key)


def test_provenance_records_rows_size_and_hash_of_every_file(small, tmp_path):
    import hashlib

    out = tmp_path / "out"
    written = small.write(out, format=("parquet", "csv"))
    prov = json.loads((out / "provenance.json").read_text())
    data_files = sorted(p.name for p in written if p.name != "provenance.json")
    assert sorted(prov["files"]) == data_files and len(data_files) == 14
    expected_rows = {"table": len(small.table), "clients": len(small.clients),
                     "rejections": len(small.rejections), "accounting": len(small.accounting),
                     "events": len(small.events), "delivery": len(small.delivery),
                     "fidelity_ratings": len(small.fidelity_ratings)}
    assert expected_rows["table"] == 30 and expected_rows["clients"] == 3
    for name, meta in prov["files"].items():
        data = (out / name).read_bytes()
        assert meta["sha256"] == hashlib.sha256(data).hexdigest()
        assert meta["bytes"] == len(data)
        assert meta["rows"] == expected_rows[name.split(".")[0]]
    # the csv really has that many data lines (the hash is of what was written)
    assert len((out / "table.csv").read_text().splitlines()) == 30 + 1


def test_outputs_are_private_by_default(small, tmp_path):
    import os
    import stat

    out = tmp_path / "out"
    written = small.write(out, format=("parquet", "csv"))
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert {stat.S_IMODE(os.stat(p).st_mode) for p in written} == {0o600}


def test_data_files_are_byte_identical_across_runs(tmp_path, key):
    from harmonise_helpers import write_pinq_gesloten

    (tmp_path / "raw").mkdir()
    write_pinq_gesloten(tmp_path / "raw")
    harmonise(tmp_path / "raw", key=key).write(tmp_path / "a", format=("parquet", "csv"))
    harmonise(tmp_path / "raw", key=key).write(tmp_path / "b", format=("parquet", "csv"))
    pa_, pb = (json.loads((tmp_path / x / "provenance.json").read_text()) for x in "ab")
    assert pa_["files"] == pb["files"]
    for name in pa_["files"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_table_csv_cut_at_a_row_boundary_is_refused(small, tmp_path):
    out = tmp_path / "out"
    small.write(out, format="csv")
    lines = (out / "table.csv").read_bytes().splitlines(keepends=True)
    (out / "table.csv").write_bytes(b"".join(lines[:16]))  # header + 15 complete rows
    with pytest.raises(HarmoniseError, match="table.csv"):
        read_harmonised(out)
    # even with size and hash forged to match, the recorded row count refuses it
    _rehash(out, "table.csv")
    with pytest.raises(HarmoniseError, match=r"15 rows.*records 30") as err:
        read_harmonised(out)
    assert "table.csv" in str(err.value)


def test_truncated_parquet_is_a_harmonise_error(small, tmp_path):
    out = tmp_path / "out"
    small.write(out, format="parquet")
    data = (out / "table.parquet").read_bytes()
    (out / "table.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(HarmoniseError, match="table.parquet"):
        read_harmonised(out)
    # hash forged to match: pyarrow's ArrowInvalid still becomes a HarmoniseError
    _rehash(out, "table.parquet")
    with pytest.raises(HarmoniseError, match="cannot be read as parquet") as err:
        read_harmonised(out)
    assert "table.parquet" in str(err.value)


def test_missing_changed_and_unrecorded_files_are_refused(small, tmp_path):
    out = tmp_path / "out"
    small.write(out, format=("parquet", "csv"))
    (out / "clients.csv").unlink()
    with pytest.raises(HarmoniseError, match="missing") as err:
        read_harmonised(out)
    assert "clients.csv" in str(err.value)
    # parquet only, plus a csv left by another run that provenance does not list
    small.write(out, format="parquet")
    (out / "table.csv").write_text("programme,client\n")
    with pytest.raises(HarmoniseError, match="not recorded") as err:
        read_harmonised(out)
    assert "table.csv" in str(err.value)
    # one byte changed, same size
    small.write(out, format="parquet")
    data = bytearray((out / "rejections.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "rejections.parquet").write_bytes(bytes(data))
    with pytest.raises(HarmoniseError, match="sha256") as err:
        read_harmonised(out)
    assert "rejections.parquet" in str(err.value)


def test_both_formats_read_the_parquet_and_verify_it(small, tmp_path, monkeypatch):
    out = tmp_path / "out"
    small.write(out, format=("parquet", "csv"))
    read = []
    real = pd.read_parquet

    def spy(src, *a, **k):
        read.append(src)
        return real(src, *a, **k)

    monkeypatch.setattr(pd, "read_parquet", spy)
    monkeypatch.setattr(pd, "read_csv", lambda *a, **k: pytest.fail("csv read"))
    back = read_harmonised(out)
    assert len(read) == 7 and len(back.table) == 30


def test_folder_without_file_hashes_is_refused(small, tmp_path):
    out = tmp_path / "out"
    small.write(out)
    prov = json.loads((out / "provenance.json").read_text())
    del prov["files"]
    (out / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(HarmoniseError, match="no file hashes"):
        read_harmonised(out)
    (out / "provenance.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(HarmoniseError, match="not valid JSON"):
        read_harmonised(out)


def test_a_failed_write_leaves_the_earlier_output_intact(small, tmp_path, monkeypatch):
    import effectstudy.table as table_mod

    out = tmp_path / "out"
    small.write(out, format=("parquet", "csv"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = []
    real = table_mod.frame_bytes

    def fail_late(frame, fmt):
        calls.append(fmt)
        if len(calls) == 6:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the csv files
        return real(frame, fmt)

    monkeypatch.setattr(table_mod, "frame_bytes", fail_late)
    with pytest.raises(KeyboardInterrupt):
        small.write(out, format=("parquet", "csv"))
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []
    assert len(read_harmonised(out).table) == 30


def test_a_folder_with_other_content_is_not_replaced(small, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.docx").write_bytes(b"keep me")
    with pytest.raises(HarmoniseError, match="other file"):
        small.write(out)
    assert (out / "notes.docx").read_bytes() == b"keep me"
    (tmp_path / "afile").write_text("x")
    with pytest.raises(HarmoniseError, match="not a folder"):
        small.write(tmp_path / "afile")


def test_csv_cells_that_look_like_formulas_are_escaped(small, tmp_path):
    import csv

    from effectstudy.harmonise.log import LOG_COLUMNS

    evil = ["=HYPERLINK(\"http://x\")", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]
    rows = [{c: None for c in LOG_COLUMNS} for _ in evil]
    for r, e in zip(rows, evil, strict=True):
        r.update(programme="pinq_gesloten", file="x.csv", row=2, column=e, kind="out_of_range",
                 reason=e, value=e, scores=1)
    rej = pd.concat([small.rejections, pd.DataFrame(rows, columns=list(LOG_COLUMNS))],
                    ignore_index=True)
    h = type(small)(small.table, small.clients, rej, small.accounting, small.provenance)
    out = tmp_path / "out"
    h.write(out, format="csv")
    seen = 0
    for path in out.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    assert not cell.startswith(("=", "+", "@", "\t", "\r")), (path.name, cell)
                    if cell.startswith("-"):
                        float(cell)  # only plain negative numbers may start with '-'
                    seen += cell.lstrip("'") in evil
    assert seen == 3 * len(evil)  # column, reason and value of each row, all escaped
    back = read_harmonised(out)  # documented: the escaped text keeps its leading '
    assert set(evil) <= {v.lstrip("'") for v in back.rejections["value"].dropna()}
    assert "'=HYPERLINK(\"http://x\")" in set(back.rejections["value"])
