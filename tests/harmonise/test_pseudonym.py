"""Keyed pseudonyms: stable with a key, different with another, the key kept away from data."""

from __future__ import annotations

import os
import re
import stat

import pytest
from harmonise_helpers import KEY, RAW_IDS, write_pinq_gesloten

from effectstudy.errors import HarmoniseError
from effectstudy.harmonise import harmonise, pseudonymise
from effectstudy.harmonise.pseudonym import (
    PSEUDONYM_PATTERN,
    demo_key,
    normalise_id,
    programme_code,
    resolve_key,
)


def test_format_and_codes(dictionary):
    p = pseudonymise("veilig_lima", "310123", KEY)
    assert re.match(PSEUDONYM_PATTERN, p) and p.startswith("VL-")
    codes = {programme_code(pid) for pid in dictionary.programmes}
    assert len(codes) == len(dictionary.programmes)  # unique per programme


def test_stable_with_the_same_key_and_different_with_another():
    a = [pseudonymise("hoenderloo", i, KEY) for i in RAW_IDS]
    assert a == [pseudonymise("hoenderloo", i, KEY) for i in RAW_IDS]
    other = [pseudonymise("hoenderloo", i, b"another-key-0123456789") for i in RAW_IDS]
    assert set(a).isdisjoint(other)
    assert len(set(a)) == len(a)
    # the programme is part of the message: the same raw id in two programmes differs
    assert pseudonymise("intermetzo", "1", KEY)[3:] != pseudonymise("hoenderloo", "1", KEY)[3:]


def test_spss_numbers_and_csv_text_link_up():
    assert normalise_id(310123.0) == normalise_id("310123") == normalise_id(" 310123 ")
    assert normalise_id(float("nan")) is None and normalise_id("  ") is None


def test_short_keys_are_refused():
    with pytest.raises(HarmoniseError):
        pseudonymise("hoenderloo", "1", b"short")


def test_harmonise_pseudonyms_depend_on_the_key_only(tmp_path, dictionary):
    write_pinq_gesloten(tmp_path)
    a = harmonise(tmp_path, dictionary, key=KEY).table["client"]
    b = harmonise(tmp_path, dictionary, key=KEY).table["client"]
    c = harmonise(tmp_path, dictionary, key=b"another-key-0123456789").table["client"]
    assert a.tolist() == b.tolist()
    assert set(a).isdisjoint(set(c))


def test_key_file_created_once_outside_data(tmp_path, monkeypatch):
    kf = tmp_path / "keys" / "pseudonym.key"
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE", str(kf))
    from effectstudy.harmonise.pseudonym import PseudonymKeyWarning

    with pytest.warns(PseudonymKeyWarning, match="created"):
        k1, f1 = resolve_key(forbidden=[tmp_path / "data"])
    k2, f2 = resolve_key(forbidden=[tmp_path / "data"])
    assert k1 == k2 and f1 == f2 == kf and len(k1) == 32
    assert stat.S_IMODE(os.stat(kf).st_mode) == 0o600


def test_env_key_wins_over_key_file(monkeypatch):
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", "an-environment-key-0123")
    key, file = resolve_key()
    assert key == b"an-environment-key-0123" and file is None


def test_key_file_inside_data_or_output_is_refused(tmp_path, dictionary):
    data = tmp_path / "data"
    data.mkdir()
    write_pinq_gesloten(data)
    with pytest.raises(HarmoniseError, match="inside the data or output folder"):
        harmonise(data, dictionary, key_file=data / "pseudonym.key")
    assert not (data / "pseudonym.key").exists()
    from effectstudy.harmonise.pseudonym import PseudonymKeyWarning

    with pytest.warns(PseudonymKeyWarning, match="elsewhere.key"):
        h = harmonise(data, dictionary, key_file=tmp_path / "elsewhere.key")
    with pytest.raises(HarmoniseError, match="inside the data or output folder"):
        h.write(tmp_path)  # the output folder would hold the key file


def test_demo_key_is_deterministic_per_seed():
    assert demo_key(1) == demo_key(1) != demo_key(2)


def test_pseudonym_collision_is_an_error_not_a_merge(tmp_path, key, monkeypatch):
    # Force every id onto one pseudonym: two girls must never be merged silently.
    import effectstudy.harmonise.mapping as mapping
    from effectstudy.errors import HarmoniseError
    from effectstudy.harmonise import harmonise

    write_pinq_gesloten(tmp_path)
    monkeypatch.setattr(mapping, "pseudonymise", lambda prog, rid, key: "PG-00000000")
    with pytest.raises(HarmoniseError, match="share one pseudonym") as err:
        harmonise(tmp_path, key=key)
    for raw in RAW_IDS:
        assert str(raw) not in str(err.value)


# --------------------------------------------------------------------------- #
# Issue 10: 80-bit pseudonyms, run-wide collisions, one key-text rule, weak keys
# --------------------------------------------------------------------------- #
def test_pseudonyms_carry_80_bits():
    from effectstudy.harmonise.pseudonym import PSEUDONYM_HEX_DIGITS

    p = pseudonymise("veilig_lima", "310123", KEY)
    assert re.fullmatch(r"VL-[0-9a-f]{20}", p) and PSEUDONYM_HEX_DIGITS == 20
    assert re.match(PSEUDONYM_PATTERN, p)
    assert not re.match(PSEUDONYM_PATTERN, "VL-3f9a1c2e")  # the old 32-bit form
    # birthday bound at a million clients, as the module docstring says
    n = 10**6
    assert n * (n - 1) / 2 / 2**80 < 4.2e-13


def test_hex_key_text_means_the_same_key_in_env_and_file(tmp_path, monkeypatch):
    import secrets

    raw = secrets.token_bytes(32)
    kf = tmp_path / "k.key"
    kf.write_text(raw.hex() + "\n")
    os.chmod(kf, 0o600)
    from_file, _ = resolve_key(key_file=kf)
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", "  " + raw.hex().upper() + "\n")
    from_env, file = resolve_key()
    assert from_file == from_env == raw and file is None
    assert pseudonymise("hoenderloo", "1", from_env) == pseudonymise("hoenderloo", "1", raw)
    # a passphrase (not only hex digits) is its UTF-8 bytes in both places
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", "a passphrase of some length")
    kf.write_text("a passphrase of some length\n")
    assert resolve_key()[0] == resolve_key(key_file=kf)[0] == b"a passphrase of some length"


def test_non_utf8_key_file_is_a_harmonise_error_without_its_content(tmp_path):
    kf = tmp_path / "k.key"
    kf.write_bytes(b"\xff\xfeS\x00e\x00c\x00r\x00e\x00t\x00" * 4)
    os.chmod(kf, 0o600)
    with pytest.raises(HarmoniseError, match="not UTF-8") as err:
        resolve_key(key_file=kf)
    msg = str(err.value).replace(str(kf), "")
    assert str(kf) in str(err.value) and "\\xff" not in msg and "\ufffd" not in msg
    assert "Secret" not in msg and "S\x00" not in msg


@pytest.mark.parametrize("weak", [bytes(32), b"\x07" * 32, b"ab" * 16, "00" * 32, "a" * 40])
def test_weak_keys_are_refused(weak):
    with pytest.raises(HarmoniseError, match="weak"):
        resolve_key(weak)


def test_weak_key_in_env_or_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("EFFECTSTUDY_PSEUDONYM_KEY", "00" * 32)
    with pytest.raises(HarmoniseError, match="weak"):
        resolve_key()
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY")
    kf = tmp_path / "k.key"
    kf.write_text("00" * 32)
    os.chmod(kf, 0o600)
    with pytest.raises(HarmoniseError, match="weak"):
        resolve_key(key_file=kf)


def test_creating_a_key_says_where(tmp_path):
    from effectstudy.harmonise.pseudonym import PseudonymKeyWarning

    kf = tmp_path / "keys" / "new.key"
    with pytest.warns(PseudonymKeyWarning, match="created a new random key file") as rec:
        resolve_key(key_file=kf)
    assert str(kf) in str(rec[0].message)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        resolve_key(key_file=kf)  # reused: no warning at 0600


def test_open_key_file_warns_with_the_fix(tmp_path):
    from effectstudy.harmonise.pseudonym import PseudonymKeyWarning

    kf = tmp_path / "k.key"
    kf.write_text(os.urandom(32).hex())
    os.chmod(kf, 0o644)
    with pytest.warns(PseudonymKeyWarning, match="chmod 600") as rec:
        resolve_key(key_file=kf)
    assert "0644" in str(rec[0].message) and str(kf) in str(rec[0].message)


def test_collision_across_programmes_is_an_error(synth_run, dictionary, monkeypatch):
    import effectstudy.harmonise.mapping as mapping

    _, _, raw = synth_run
    real = mapping.pseudonymise
    first: dict[str, str] = {}

    def colliding(prog, rid, key):
        # the first client id of every programme gets the same pseudonym
        if first.setdefault(prog, str(rid)) == str(rid):
            return "ZZ-" + "0" * 20
        return real(prog, rid, key)

    monkeypatch.setattr(mapping, "pseudonymise", colliding)
    with pytest.raises(HarmoniseError,
                       match=r"share one pseudonym \(\S+ row \d+ and \S+ row \d+\)") as err:
        harmonise(raw, dictionary, key=KEY)
    assert len(first) == 2  # stopped at the second programme
    for rid in first.values():
        assert rid not in str(err.value)


def test_collision_check_spans_files_and_tolerates_linked_id_formats(key):
    from effectstudy.harmonise.core import _check_collisions, _loose_id
    from effectstudy.harmonise.mapping import FileResult

    def result(file, rows):
        return FileResult(file=file, programme="hoenderloo",
                          client_obs=[{"client": c, "row": r, "field": "_seen"} for r, c in rows])

    seen: dict = {}
    _check_collisions(seen, result("a.csv", [(2, "HO-x"), (3, "HO-y")]), {2: "id1", 3: "id2"})
    # another file: the same owner under the same pseudonym links up
    _check_collisions(seen, result("b.csv", [(5, "HO-x")]), {5: "id1"})
    with pytest.raises(HarmoniseError, match=r"a.csv row 2 and b.csv row 7"):
        _check_collisions(seen, result("b.csv", [(7, "HO-x")]), {7: "id3"})
    # id spellings that a declared id format links are one owner, not a collision
    assert len({_loose_id(v) for v in ("829259", "0829259", "829259.0", "829 259",
                                       "829.259")}) == 1
    assert _loose_id("R-7781") != _loose_id("R-7782")
