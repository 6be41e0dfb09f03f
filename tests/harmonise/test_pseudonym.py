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
