"""CLI (demo, harmonise) and the privacy guarantee on everything the demo writes or prints."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from harmonise_helpers import write_pinq_gesloten
from typer.testing import CliRunner

from effectstudy.cli import app
from effectstudy.synth import generate

SEED = 7


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    result = CliRunner().invoke(app, ["demo", "--out", str(out), "--seed", str(SEED)])
    return result, out


def test_demo_runs_and_writes(demo):
    result, out = demo
    assert result.exit_code == 0, result.output
    for name in ("table", "clients", "rejections", "accounting"):
        assert (out / "harmonised" / f"{name}.parquet").is_file()
        assert (out / "harmonised" / f"{name}.csv").is_file()
    assert (out / "harmonised" / "provenance.json").is_file()
    assert "SYNTHETIC" in result.output  # the demo key is announced as demo-only
    for prog in ("hoenderloo", "intermetzo", "pinq_crisis", "pinq_gesloten", "veilig_lima",
                 "egoversterkend"):
        assert prog in result.output
    assert "out_of_range" in result.output and "duplicate" in result.output


def test_no_identifier_in_any_output_or_console(demo, tmp_path):
    """Grep every written file (raw bytes as latin-1, text also as UTF-8, parquet cells too)
    and the console output for every synthetic identifier.

    Identifiers are matched as whole tokens: short names such as "Bo" or 6-digit ids
    also occur by chance inside base64 schema metadata or inside the digits of a float.
    Identifiers of 6+ characters (full names, dates, BSNs) must not occur even as a
    substring (digit-only ones excepted: any 6-digit run occurs inside some float).
    """
    result, out = demo
    ids = generate(tmp_path / "again", seed=SEED).identifiers
    values = sorted(set(ids["value"].astype(str)))
    assert len(values) > 100
    written = [p for p in (out / "harmonised").rglob("*") if p.is_file()]
    assert len(written) == 15  # 7 frames x parquet, csv + provenance.json
    texts = {p.name: p.read_bytes().decode("latin-1") for p in written}
    # text files also as UTF-8 (names with diacritics)
    for p in written:
        if p.suffix in (".csv", ".json"):
            texts[p.name + ":utf8"] = p.read_text(encoding="utf-8")
    texts["console"] = result.output
    # parquet cells decoded
    for p in written:
        if p.suffix == ".parquet":
            df = pd.read_parquet(p)
            texts[p.name + ":cells"] = df.astype(str).to_csv(index=False)
    digits = [v for v in values if v.isdigit()]
    words = [v for v in values if not v.isdigit()]
    alt = "|".join(re.escape(v) for v in sorted(words, key=len, reverse=True))
    word_pat = re.compile(rf"(?<![A-Za-z0-9À-ÿ])(?:{alt})(?![A-Za-z0-9À-ÿ])")
    digit_pat = re.compile(r"(?<![0-9.])(?:" + "|".join(map(re.escape, digits)) + r")(?![0-9])")
    long_pat = re.compile("|".join(re.escape(v) for v in words if len(v) >= 6))
    # negative control: the same search does find them in the synthetic raw exports
    raw_text = "".join(p.read_bytes().decode("latin-1") for p in (out / "raw").glob("*.csv"))
    assert word_pat.search(raw_text) and digit_pat.search(raw_text) and long_pat.search(raw_text)
    for name, text in texts.items():
        for pat in (word_pat, digit_pat, long_pat):
            found = pat.search(text)
            assert found is None, f"an identifier leaked into {name}"


def test_harmonise_command(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    key = tmp_path / "secret" / "pseudonym.key"
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "out"),
                                   "--key-file", str(key)])
    assert res.exit_code == 0, res.output
    assert key.is_file()
    assert (tmp_path / "out" / "table.parquet").is_file()
    assert "pinq_gesloten" in res.output


def test_errors_are_one_line_without_traceback(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "pinq_gesloten_metingen.csv").write_bytes(b"")
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "out"),
                                   "--key-file", str(tmp_path / "k.key")])
    assert res.exit_code == 1
    assert "Traceback" not in res.output
    assert "empty file" in res.output and "pinq_gesloten_metingen.csv" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_key_file_in_data_folder_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "out"),
                                   "--key-file", str(data / "k.key")])
    assert res.exit_code == 1
    assert "inside the data or output folder" in res.output
    assert not (data / "k.key").exists()


def test_name_fragments_in_rejected_cells_are_redacted(tmp_path, key):
    from harmonise_helpers import NAMES

    from effectstudy.harmonise import harmonise

    path = write_pinq_gesloten(tmp_path)
    df = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str)
    first, last = NAMES[0].split()
    df.loc[0, "Fase"] = first                                  # first name alone
    df.loc[1, "CRIES totaal"] = f"zie {NAMES[0]}"              # name inside a note
    df.loc[2, "Reden einde"] = NAMES[0].lower()                # other case
    df.to_csv(path, sep=";", index=False, encoding="cp1252")
    h = harmonise(tmp_path, key=key)
    rej = h.rejections
    # the three cells are rejected and logged by file, row and column (rows 2-4 of the file)
    where = {(int(r), c) for r, c in zip(rej["row"], rej["column"], strict=True)
             if not pd.isna(r)}
    assert {(2, "Fase"), (3, "CRIES totaal"), (4, "Reden einde")} <= where, where
    # and no part of the name is in any cell of the log (value, reason, column)
    text = rej.astype(str).to_csv(index=False).lower()
    assert first.lower() not in text and last.lower() not in text


# --------------------------------------------------------------------------- #
# Issue 10: key notices, private and atomic output from the command line
# --------------------------------------------------------------------------- #
def test_harmonise_command_says_where_a_new_key_was_written(tmp_path):
    import os
    import stat

    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    key = tmp_path / "secret" / "pseudonym.key"
    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(out),
                                   "--key-file", str(key)])
    assert res.exit_code == 0, res.output
    assert "created a new random key file" in res.output and str(key) in res.output
    # outputs are private: folder 0700, files 0600
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.iterdir()} == {0o600}
    # the second run reuses the key quietly and replaces the earlier output
    again = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(out),
                                     "--key-file", str(key)])
    assert again.exit_code == 0, again.output
    assert "pseudonym key:" not in again.output
    # a key file others can read is used, with a line that says how to fix it
    os.chmod(key, 0o644)
    opened = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(out),
                                      "--key-file", str(key)])
    assert opened.exit_code == 0, opened.output
    assert "chmod 600" in opened.output and "created" not in opened.output


def test_harmonise_command_refuses_weak_and_unreadable_keys(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    zero = tmp_path / "zero.key"
    zero.write_text("00" * 32)
    zero.chmod(0o600)
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "out"),
                                   "--key-file", str(zero)])
    assert res.exit_code == 1 and "weak" in res.output and "Traceback" not in res.output
    binary = tmp_path / "bin.key"
    binary.write_bytes(b"\x80\x81\xfe\xff" * 8)
    binary.chmod(0o600)
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "out"),
                                   "--key-file", str(binary)])
    assert res.exit_code == 1 and "not UTF-8" in res.output and "bin.key" in res.output
    assert isinstance(res.exception, SystemExit)
    assert not (tmp_path / "out").exists()


def test_harmonise_command_never_replaces_a_folder_with_other_files(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    out = tmp_path / "project"
    out.mkdir()
    (out / "thesis.docx").write_bytes(b"years of work")
    res = CliRunner().invoke(app, ["harmonise", str(data), "--out", str(out),
                                   "--key-file", str(tmp_path / "k.key")])
    assert res.exit_code == 1 and "other file" in res.output
    assert (out / "thesis.docx").read_bytes() == b"years of work"
    assert sorted(p.name for p in out.iterdir()) == ["thesis.docx"]
