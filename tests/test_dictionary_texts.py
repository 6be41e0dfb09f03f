"""Texts of the data dictionary in two languages (issue 11): ``{en: ..., nl: ...}`` or a plain
string (English only), validated, exposed per language, and checked for missing Dutch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from effectstudy.cli import app
from effectstudy.dictionary import (
    TEXT_FIELDS,
    TEXT_LANGUAGES,
    default_path,
    load_dictionary,
    load_integrity,
)
from effectstudy.errors import DictionaryError

runner = CliRunner()


@pytest.fixture()
def folder(tmp_path) -> Path:
    out = tmp_path / "dd"
    shutil.copytree(default_path(), out)
    return out


def _edit(file: Path, change) -> None:
    data = yaml.safe_load(file.read_text(encoding="utf-8"))
    change(data)
    file.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def test_the_shipped_dictionary_has_every_text_in_dutch():
    d = load_dictionary()
    missing = [*d.untranslated("nl").itertuples(), *load_integrity(d).untranslated("nl").itertuples()]
    assert missing == []
    # and the walk does look at the texts: the English side is never missing either
    assert d.untranslated("en").empty


def test_dutch_texts_are_the_dutch_words_of_the_field():
    d = load_dictionary()
    crisis, lima = d.programmes["pinq_crisis"], d.programmes["veilig_lima"]
    assert crisis.text("setting", "nl") == "crisisopvang op een beschermd adres (Meisa)"
    assert crisis.setting == crisis.text("setting", "en") == "crisis shelter at a protected address (Meisa)"
    assert [p.text("label", "nl") for p in lima.phases] == [f"Fase {i}" for i in range(1, 6)]
    assert d.programmes["pinq_gesloten"].text("setting", "nl").startswith("gesloten jeugdzorg")
    ego = load_integrity(d).component("egoversterkend", "girls_group")
    assert (ego.label, ego.text("label", "nl")) == ("Girls' group", "Meidengroep")
    sdq = d.scale("SDQ-S", "internalising").norms[0]
    # the English text stays the norm group's name in harmonised data
    assert sdq.group == "NL general population girls 12-17, self-report"
    assert "meisjes 12-17" in sdq.text("group", "nl")
    assert d.event_types["police_report"].label_nl == "Aangifte bij de politie"
    assert d.event_types["police_report"].text("label", "en") == "Police report (aangifte)"


def test_a_plain_string_is_english_only_and_is_reported(folder):
    def change(data):
        data["programmes"]["veilig_lima"]["setting"] = "a protected address"
        data["programmes"]["veilig_lima"]["phases"][1]["label"] = "Phase 2"
    _edit(folder / "programmes.yaml", change)
    d = load_dictionary(folder)
    prog = d.programmes["veilig_lima"]
    assert prog.setting == "a protected address"
    assert prog.text("setting", "en") == "a protected address"
    assert prog.text("setting", "nl") is None  # never the English text in its place
    missing = d.untranslated("nl")
    assert list(missing["key"]) == ["programmes.veilig_lima.setting",
                                    "programmes.veilig_lima.phases[1].label"]
    assert set(missing["file"]) == {"programmes.yaml"}
    assert list(missing["text"]) == ["a protected address", "Phase 2"]


def test_dictionary_check_lists_the_missing_dutch_texts(folder):
    def change(data):
        data["fidelity_instruments"]["hoenderloo_checklist"]["items"][0]["text"] = "A report"
    _edit(folder / "fidelity.yaml", change)
    res = runner.invoke(app, ["dictionary", "check", str(folder)])
    assert res.exit_code == 0, res.output
    assert "1 text(s) without a Dutch translation" in res.output
    assert "fidelity.yaml: fidelity_instruments.hoenderloo_checklist.items[0].text" in res.output
    res = runner.invoke(app, ["dictionary", "check", str(default_path())])
    assert "every text has a Dutch translation" in res.output


@pytest.mark.parametrize(("value", "message", "where"), [
    ({"en": "x", "nl": "y", "de": "z"}, "unknown key 'de'", "setting.de"),
    ({"en": "x"}, "missing required key 'nl'", "setting.nl"),
    ({"en": "x", "nl": ""}, "expected text", "setting.nl"),
    ({"en": 3, "nl": "y"}, "expected text", "setting.en"),
])
def test_a_text_mapping_holds_exactly_the_known_languages(folder, value, message, where):
    assert TEXT_LANGUAGES == ("en", "nl")

    def change(data):
        data["programmes"]["hoenderloo"]["setting"] = value
    _edit(folder / "programmes.yaml", change)
    with pytest.raises(DictionaryError) as exc:
        load_dictionary(folder)
    assert message in str(exc.value)
    assert f"programmes.hoenderloo.{where}" in str(exc.value)
    assert "programmes.yaml" in str(exc.value)


def test_events_read_the_older_label_pair_but_not_both(folder):
    def old_pair(data):
        entry = data["event_types"]["transfer"]
        entry.pop("label")
        entry["label_nl"], entry["label_en"] = "Overplaatsing", "Transfer"
    _edit(folder / "events.yaml", old_pair)
    d = load_dictionary(folder)
    assert d.event_types["transfer"].text("label", "nl") == "Overplaatsing"
    assert d.untranslated("nl").empty

    def both(data):
        data["event_types"]["transfer"]["label"] = {"en": "Transfer", "nl": "Overplaatsing"}
    _edit(folder / "events.yaml", both)
    with pytest.raises(DictionaryError, match="not both"):
        load_dictionary(folder)


def test_every_text_field_is_a_field_of_its_record():
    d = load_dictionary()
    integ = load_integrity(d)
    records = {"programmes": d.programmes["pinq_crisis"], "phases": d.programmes["pinq_crisis"].phases[0],
               "interventions": d.programmes["pinq_crisis"].interventions[0],
               "components": integ.components["pinq_crisis"][0],
               "constructs": d.constructs["self_esteem"], "occasions": d.occasions["intake"],
               "instruments": d.instruments["YSR"], "norms": d.scale("YSR", "internalising_t").norms[0],
               "fidelity_instruments": integ.instrument_for("pinq_crisis"),
               "items": integ.instrument_for("pinq_crisis").items[0],
               "event_types": d.event_types["absconding"]}
    for file, kinds in TEXT_FIELDS.items():
        for kind, names in kinds.items():
            if file == "occasions.yaml" and kind == "phases":
                record = d.phases["treatment"]
            else:
                record = records[kind]
            for name in names:
                texts = record.texts(name)
                assert set(texts) == {"en", "nl"}, (file, kind, name)
                assert texts["en"] != texts["nl"] or name == "security", (file, kind, name)


def test_an_unknown_language_is_a_spec_error():
    from effectstudy.errors import SpecError

    d = load_dictionary()
    with pytest.raises(SpecError, match="language must be one of"):
        d.programmes["veilig_lima"].text("setting", "de")
    with pytest.raises(SpecError, match="language must be one of"):
        d.untranslated("fr")
