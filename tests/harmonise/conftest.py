"""Fixtures of the harmonise tests: a temp key file, the dictionary, one synth run."""

from __future__ import annotations

import pytest
from harmonise_helpers import KEY


@pytest.fixture
def key() -> bytes:
    return KEY


@pytest.fixture(autouse=True)
def _no_home_key(tmp_path_factory, monkeypatch):
    """Never touch the real ~/.config key: point the key file at a temp folder."""
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE",
                       str(tmp_path_factory.mktemp("keys") / "pseudonym.key"))
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY", raising=False)


# --------------------------------------------------------------------------- #
# effectstudy.synth end to end (generated once per session)
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="session")
def dictionary():
    from effectstudy.dictionary import load_dictionary

    return load_dictionary()


@pytest.fixture(scope="session")
def synth_run(tmp_path_factory, dictionary):
    """(SynthResult, Harmonised, raw folder) for seed 2026 with injected errors."""
    from effectstudy.harmonise import harmonise
    from effectstudy.synth import generate

    raw = tmp_path_factory.mktemp("synth") / "raw"
    result = generate(raw, seed=2026, dictionary=dictionary)
    h = harmonise(raw, dictionary, key=KEY)
    return result, h, raw
