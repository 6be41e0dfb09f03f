"""Attack corpus, issue 10 items 12, 13, 14, 17 (key file, truncated parquet), 18 (hex key),
20 and 21: outputs are atomic, verified, private and formula-free; pseudonyms do not collide.

Each test tries what an attacker (or an unlucky Ctrl-C) would, and asserts the fixed
behaviour. The last block keeps what already held (key file placement, short keys,
0600 key files, byte-identical outputs).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harmonise_helpers import RAW_IDS, write_pinq_gesloten

from effectstudy.errors import HarmoniseError
from effectstudy.harmonise import harmonise, read_harmonised
from effectstudy.harmonise.pseudonym import PseudonymKeyWarning, resolve_key

KEY = b"attack-corpus-key-0123456789"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(autouse=True)
def _no_home_key(tmp_path_factory, monkeypatch):
    """Never touch a real ~/.config key."""
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE", str(tmp_path_factory.mktemp("k") / "p.key"))
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY", raising=False)


@pytest.fixture
def raw(tmp_path) -> Path:
    folder = tmp_path / "raw"
    folder.mkdir()
    write_pinq_gesloten(folder)
    return folder


# --------------------------------------------------------------------------- #
# Item 12: an interrupted write never yields partial data
# --------------------------------------------------------------------------- #
_WRITER = textwrap.dedent('''
    import signal
    import sys
    import pandas as pd
    # a pytest-xdist worker ignores SIGINT and its children inherit that: restore Ctrl-C
    signal.signal(signal.SIGINT, signal.default_int_handler)
    from effectstudy.harmonise import harmonise

    raw, out = sys.argv[1], sys.argv[2]
    h = harmonise(raw, key=%r)
    base = h.rejections

    def version(n, tag):
        extra = pd.DataFrame({c: [None] * n for c in base.columns})
        extra["programme"], extra["file"], extra["row"] = "pinq_gesloten", "x.csv", range(2, n + 2)
        extra["column"], extra["kind"], extra["reason"] = "CRIES totaal", "out_of_range", tag
        extra["value"], extra["scores"] = "99", 1
        rej = pd.concat([base, extra], ignore_index=True)
        return type(h)(h.table, h.clients, rej, h.accounting, h.provenance)

    versions = [version(40000, "version A"), version(70000, "version B")]
    print("ready", flush=True)
    i = 0
    while True:
        versions[i %% 2].write(out, format=("parquet", "csv"))
        i += 1
''') % (KEY,)


def _outcome(out: Path, n_base: int) -> str:
    """'old', 'A' or 'B' for a complete output; 'absent' when the kill fell between the two
    renames of the swap (no output folder at all, the complete new one beside it); 'error'
    (with the message) for any other HarmoniseError: a folder that is there but does not
    verify."""
    if not out.exists():
        left = sorted(p.name for p in out.parent.glob(".out.tmp-*"))
        assert left, "no output folder and no complete new folder beside it"
        return "absent"
    try:
        h = read_harmonised(out)
    except HarmoniseError as exc:
        return f"error: {exc}"
    reasons = set(h.rejections["reason"])
    n = len(h.rejections)
    if "version A" in reasons:
        assert (h.rejections["reason"] == "version A").sum() == 40000 and n == 40000 + n_base
        return "A"
    if "version B" in reasons:
        assert (h.rejections["reason"] == "version B").sum() == 70000 and n == 70000 + n_base
        return "B"
    assert n == n_base
    return "old"


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_interrupted_write_leaves_old_or_new_never_partial(raw, tmp_path, sig):
    old = harmonise(raw, key=KEY)
    out = tmp_path / "out"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    rng = np.random.default_rng(20261201 + int(sig))
    outcomes = []
    for _ in range(3):
        old.write(out, format=("parquet", "csv"))  # an earlier run
        # stderr goes to a file: a pipe nobody reads fills up and blocks the writer
        errfile = (tmp_path / "writer.err").open("w")
        child = subprocess.Popen([sys.executable, str(script), str(raw), str(out)],
                                 stdout=subprocess.PIPE, stderr=errfile, text=True)
        try:
            ready = child.stdout.readline().strip()
            assert ready == "ready", (tmp_path / "writer.err").read_text()
            child.stdout.close()
            try:  # let it write for a random while, then interrupt it
                child.wait(timeout=float(rng.uniform(0.2, 3.0)))
            except subprocess.TimeoutExpired:
                pass
            assert child.poll() is None, "the writer stopped by itself"
            child.send_signal(sig)
            child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            errfile.close()
        outcomes.append(_outcome(out, len(old.rejections)))
        # whatever an interrupted run left beside the output is private
        for left in tmp_path.glob(".out.*"):
            assert stat.S_IMODE(left.stat().st_mode) == 0o700, left.name
    # never a folder that is there but incomplete or mixed: atomic means old or new
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    assert set(outcomes) - {"absent"}, outcomes  # a complete output was there most of the time


def test_the_reported_mix_of_two_runs_is_refused(raw, tmp_path):
    # the scenario: an old csv run, then a non-atomic writer left new parquet files
    # and a truncated table.csv beside the old provenance.json
    out = tmp_path / "out"
    h = harmonise(raw, key=KEY)
    h.write(out, format="csv")
    for name, frame in (("table", h.table), ("clients", h.clients)):
        frame.to_parquet(out / f"{name}.parquet", index=False)
    with pytest.raises(HarmoniseError, match="not recorded") as err:
        read_harmonised(out)
    assert ".parquet" in str(err.value)
    for p in out.glob("*.parquet"):
        p.unlink()
    lines = (out / "table.csv").read_bytes().splitlines(keepends=True)
    (out / "table.csv").write_bytes(b"".join(lines[:11]))  # cut at a row boundary
    with pytest.raises(HarmoniseError) as err:
        read_harmonised(out)
    assert "table.csv" in str(err.value)


# --------------------------------------------------------------------------- #
# Item 13: no cell of any written CSV can run as a spreadsheet formula
# --------------------------------------------------------------------------- #
INJECTIONS = ['=HYPERLINK("http://x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)"]


def _assert_no_formula_cells(folder: Path) -> int:
    n = 0
    for path in folder.glob("*.csv"):
        with path.open(newline="", encoding="utf-8") as fh:
            for row in csv.reader(fh):
                for cell in row:
                    n += 1
                    if cell.startswith("-"):
                        float(cell)  # a plain negative number is the only '-' start allowed
                    else:
                        assert not cell.startswith(FORMULA_START), (path.name, cell[:1])
    return n


def test_formula_injection_through_an_export(raw, tmp_path):
    path = raw / "pinq_gesloten_metingen.csv"
    df = pd.read_csv(path, sep=";", encoding="cp1252", dtype=str)
    for i, text in enumerate(INJECTIONS):
        df.loc[i, "CRIES totaal"] = text          # rejected score cells
        df.loc[i, "Fase"] = text                  # unknown labels
    df[INJECTIONS[0]] = "1"                       # an undeclared column named like a formula
    df.to_csv(path, sep=";", index=False, encoding="cp1252")
    h = harmonise(raw, key=KEY)
    assert len(h.rejections) >= len(INJECTIONS)
    h.write(tmp_path / "out", format="csv")
    assert _assert_no_formula_cells(tmp_path / "out") > 100


def test_formula_injection_in_every_text_column_is_escaped(raw, tmp_path):
    h = harmonise(raw, key=KEY)
    rows = pd.DataFrame({c: [None] * len(INJECTIONS) for c in h.rejections.columns})
    rows["programme"], rows["file"], rows["row"] = "pinq_gesloten", "x.csv", 2
    rows["column"] = rows["reason"] = rows["value"] = INJECTIONS
    rows["kind"], rows["scores"] = "out_of_range", 1
    rej = pd.concat([h.rejections, rows], ignore_index=True)
    out = tmp_path / "out"
    type(h)(h.table, h.clients, rej, h.accounting, h.provenance).write(out, format="csv")
    _assert_no_formula_cells(out)
    with (out / "rejections.csv").open(newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    for inj in INJECTIONS:
        assert cells.count("'" + inj) == 3  # column, reason, value: present, as inert text
    back = read_harmonised(out)
    assert {"'" + i for i in INJECTIONS} <= set(back.rejections["value"].dropna())


# --------------------------------------------------------------------------- #
# Item 14: 80-bit pseudonyms, collisions checked over the whole run
# --------------------------------------------------------------------------- #
def test_pseudonyms_are_80_bits_in_every_output(raw, tmp_path):
    h = harmonise(raw, key=KEY)
    assert h.clients["client"].str.fullmatch(r"PG-[0-9a-f]{20}").all()
    h.write(tmp_path / "out", format="csv")
    table = pd.read_csv(tmp_path / "out" / "table.csv", dtype=str)
    assert table["client"].str.fullmatch(r"PG-[0-9a-f]{20}").all()


def test_collision_across_files_and_programmes_stops_the_run(tmp_path, monkeypatch):
    from harmonise_helpers import write_egoversterkend

    import effectstudy.harmonise.mapping as mapping

    write_pinq_gesloten(tmp_path)
    write_egoversterkend(tmp_path)
    real = mapping.pseudonymise
    first: dict[str, str] = {}

    def brute_forced_pair(prog, rid, key):
        # one client of each programme shares a pseudonym, as a brute-forced pair would
        if first.setdefault(prog, str(rid)) == str(rid):
            return "PG-" + "0" * 20
        return real(prog, rid, key)

    monkeypatch.setattr(mapping, "pseudonymise", brute_forced_pair)
    with pytest.raises(HarmoniseError, match="share one pseudonym") as err:
        harmonise(tmp_path, key=KEY)
    assert len(first) == 2
    assert "row" in str(err.value)
    for rid in [*first.values(), *RAW_IDS]:
        assert rid not in str(err.value)


# --------------------------------------------------------------------------- #
# Item 17: no traceback from a key file or a truncated parquet
# --------------------------------------------------------------------------- #
def test_non_utf8_key_file(raw, tmp_path):
    kf = tmp_path / "keys" / "p.key"
    kf.parent.mkdir()
    kf.write_bytes("Geheim wachtwoord van Zoë".encode("cp1252") * 2)
    kf.chmod(0o600)
    with pytest.raises(HarmoniseError, match="not UTF-8") as err:
        harmonise(raw, key_file=kf)
    assert "p.key" in str(err.value)
    assert "Geheim" not in str(err.value) and "wachtwoord" not in str(err.value)


def test_truncated_parquet(raw, tmp_path):
    out = tmp_path / "out"
    harmonise(raw, key=KEY).write(out)
    data = (out / "clients.parquet").read_bytes()
    (out / "clients.parquet").write_bytes(data[:-40])
    with pytest.raises(HarmoniseError) as err:
        read_harmonised(out)
    assert "clients.parquet" in str(err.value)
    # a forger who also fixes provenance.json meets the parquet reader: still our error
    prov = json.loads((out / "provenance.json").read_text())
    cut = (out / "clients.parquet").read_bytes()
    prov["files"]["clients.parquet"].update(sha256=hashlib.sha256(cut).hexdigest(),
                                            bytes=len(cut))
    (out / "provenance.json").write_text(json.dumps(prov))
    with pytest.raises(HarmoniseError, match="cannot be read as parquet") as err:
        read_harmonised(out)
    assert "clients.parquet" in str(err.value)


# --------------------------------------------------------------------------- #
# Item 18: a hex key links up whether it comes from the environment or a key file
# --------------------------------------------------------------------------- #
def test_hex_key_in_env_and_key_file_give_the_same_pseudonyms(raw, tmp_path, monkeypatch):
    secret = os.urandom(32)
    kf = tmp_path / "keys" / "p.key"
    kf.parent.mkdir()
    kf.write_text(secret.hex() + "\n")
    kf.chmod(0o600)
    from_file = harmonise(raw, key_file=kf).clients["client"].tolist()
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", secret.hex())
    from_env = harmonise(raw).clients["client"].tolist()
    from_bytes = harmonise(raw, key=secret).clients["client"].tolist()
    assert from_file == from_env == from_bytes and len(from_env) == 3


# --------------------------------------------------------------------------- #
# Item 20: a created key is announced; weak keys refused; open key files warned about
# --------------------------------------------------------------------------- #
def test_created_key_is_announced_with_its_place(raw, tmp_path):
    kf = tmp_path / "keys" / "p.key"
    with pytest.warns(PseudonymKeyWarning, match="created a new random key file") as rec:
        harmonise(raw, key_file=kf)
    assert str(kf) in str(rec[0].message)
    assert stat.S_IMODE(kf.stat().st_mode) == 0o600


@pytest.mark.parametrize("key", [bytes(32), b"\xaa" * 16, "00" * 32, "x" * 32],
                         ids=["zeros", "one-byte", "hex-zeros", "text-one-char"])
def test_weak_keys_are_refused(raw, key):
    with pytest.raises(HarmoniseError, match="weak"):
        harmonise(raw, key=key)


def test_all_zero_key_in_the_environment_is_refused(raw, monkeypatch):
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", "00" * 32)
    with pytest.raises(HarmoniseError, match="weak"):
        harmonise(raw)


def test_key_file_readable_by_others_is_warned_about(raw, tmp_path):
    kf = tmp_path / "keys" / "p.key"
    kf.parent.mkdir()
    kf.write_text(os.urandom(32).hex())
    kf.chmod(0o644)
    with pytest.warns(PseudonymKeyWarning, match=r"chmod 600"):
        harmonise(raw, key_file=kf)
    kf.chmod(0o600)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PseudonymKeyWarning)
        harmonise(raw, key_file=kf)


# --------------------------------------------------------------------------- #
# Item 21: private outputs by default
# --------------------------------------------------------------------------- #
def test_outputs_are_0600_in_a_0700_folder(raw, tmp_path):
    old = os.umask(0o022)  # a typical umask that would give 0644 / 0755
    try:
        written = harmonise(raw, key=KEY).write(tmp_path / "out", format=("parquet", "csv"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == 0o700
    assert len(written) == 15  # 7 frames x parquet, csv + provenance.json
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o600}


# --------------------------------------------------------------------------- #
# What held before stays
# --------------------------------------------------------------------------- #
def test_what_held_still_holds(raw, tmp_path):
    # key file inside the data or the output folder is refused
    with pytest.raises(HarmoniseError, match="inside the data or output folder"):
        harmonise(raw, key_file=raw / "p.key")
    with pytest.warns(PseudonymKeyWarning, match="created"):
        h = harmonise(raw, key_file=tmp_path / "k" / "p.key")
    with pytest.raises(HarmoniseError, match="inside the data or output folder"):
        h.write(tmp_path / "k")
    # created key files are 0600; keys shorter than 16 bytes are refused
    assert stat.S_IMODE((tmp_path / "k" / "p.key").stat().st_mode) == 0o600
    with pytest.raises(HarmoniseError, match="too short"):
        resolve_key(b"0123456789abcde")
    # byte-identical data files across runs (provenance.json carries the run's date)
    harmonise(raw, key=KEY).write(tmp_path / "a", format=("parquet", "csv"))
    harmonise(raw, key=KEY).write(tmp_path / "b", format=("parquet", "csv"))
    names = [p.name for p in (tmp_path / "a").iterdir() if p.name != "provenance.json"]
    assert len(names) == 14
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    prov = [json.loads((tmp_path / x / "provenance.json").read_text()) for x in "ab"]
    assert prov[0]["files"] == prov[1]["files"]


# --------------------------------------------------------------------------- #
# Item 12 (reading): a forged or damaged provenance.json cannot steer the reader
# --------------------------------------------------------------------------- #
def _edit_provenance(out: Path, edit) -> None:
    prov = json.loads((out / "provenance.json").read_text())
    edit(prov["files"])
    (out / "provenance.json").write_text(json.dumps(prov))


@pytest.mark.parametrize("name", ["../outside.csv", "/etc/passwd.csv", ".hidden.csv",
                                  "sub/table.csv", "table.txt"])
def test_provenance_cannot_point_outside_the_folder(raw, tmp_path, name):
    out = tmp_path / "out"
    harmonise(raw, key=KEY).write(out, format="csv")
    outside = tmp_path / "outside.csv"
    outside.write_text("secret,kept\n1,2\n")
    meta = {"rows": 1, "bytes": outside.stat().st_size,
            "sha256": hashlib.sha256(outside.read_bytes()).hexdigest()}
    _edit_provenance(out, lambda files: files.__setitem__(name, meta))
    with pytest.raises(HarmoniseError, match="not plain data file names") as err:
        read_harmonised(out)
    assert "provenance.json" in str(err.value) and "secret" not in str(err.value)


@pytest.mark.parametrize("field, value", [("bytes", "many"), ("rows", 2.5), ("rows", True),
                                          ("bytes", -1), ("sha256", "abc"), ("sha256", 7)])
def test_malformed_manifest_entries_are_our_error(raw, tmp_path, field, value):
    out = tmp_path / "out"
    harmonise(raw, key=KEY).write(out, format="csv")
    _edit_provenance(out, lambda files: files["table.csv"].__setitem__(field, value))
    with pytest.raises(HarmoniseError, match="whole row count, byte size and sha256"):
        read_harmonised(out)


def test_symbolic_links_in_the_output_folder_are_refused(raw, tmp_path):
    out = tmp_path / "out"
    harmonise(raw, key=KEY).write(out, format="parquet")
    # a link to an identical copy elsewhere: same bytes, same hash, still refused
    copy = tmp_path / "elsewhere.parquet"
    copy.write_bytes((out / "clients.parquet").read_bytes())
    (out / "clients.parquet").unlink()
    (out / "clients.parquet").symlink_to(copy)
    with pytest.raises(HarmoniseError, match="symbolic link") as err:
        read_harmonised(out)
    assert "clients.parquet" in str(err.value)
    # provenance.json itself as a link
    harmonise(raw, key=KEY).write(out, format="parquet")
    prov = tmp_path / "prov.json"
    prov.write_bytes((out / "provenance.json").read_bytes())
    (out / "provenance.json").unlink()
    (out / "provenance.json").symlink_to(prov)
    with pytest.raises(HarmoniseError, match="symbolic link"):
        read_harmonised(out)


def test_a_fifo_in_place_of_a_data_file_does_not_block(raw, tmp_path):
    out = tmp_path / "out"
    harmonise(raw, key=KEY).write(out, format="csv")
    (out / "table.csv").unlink()
    os.mkfifo(out / "table.csv")
    with pytest.raises(HarmoniseError, match="not a regular file") as err:
        read_harmonised(out)
    assert "table.csv" in str(err.value)


def test_frame_names_must_be_plain_file_names(tmp_path):
    from effectstudy.table import write_frames

    frame = pd.DataFrame({"a": [1]})
    for name in ("../escape", "sub/x", ".hidden", ""):
        with pytest.raises(HarmoniseError, match="not plain file names"):
            write_frames(tmp_path / "out", {name: frame}, {}, ["csv"])
    assert sorted(p.name for p in tmp_path.iterdir()) == []
