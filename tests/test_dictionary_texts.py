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


def _kind(key: str) -> str:
    """The record kind of a key path (as in TEXT_FIELDS): ``programmes.x`` -> ``programmes``,
    ``...phases[0]`` -> ``phases``, ``...scales.total.reliability`` -> ``reliability``."""
    parts = key.split(".")
    return parts[0] if len(parts) == 2 else parts[-1].split("[", 1)[0]


def _all_records(d, integ) -> list[tuple[str, str, object]]:
    records = list(d.text_records())
    for pid, comps in integ.components.items():
        for i, c in enumerate(comps):
            records += [("programmes.yaml", f"programmes.{pid}.components[{i}]", c),
                        ("programmes.yaml", f"programmes.{pid}.components[{i}].dose", c.dose)]
    for inst in integ.fidelity_instruments.values():
        k = f"fidelity_instruments.{inst.id}"
        records += [("fidelity.yaml", k, inst),
                    *[("fidelity.yaml", f"{k}.items[{i}]", it) for i, it in enumerate(inst.items)]]
    return records


def test_every_text_field_is_a_field_of_its_record():
    d = load_dictionary()
    records = _all_records(d, load_integrity(d))
    given = set()
    for file, kinds in TEXT_FIELDS.items():
        for kind, names in kinds.items():
            of_kind = [r for f, k, r in records if f == file and _kind(k) == kind]
            assert of_kind, (file, kind)
            for record in of_kind:
                for name in names:
                    assert hasattr(record, name), (file, kind, name)
                    texts = record.texts(name)
                    if texts:  # a text the dictionary gives has both languages, not copied
                        given.add((file, kind, name))
                        assert set(texts) == {"en", "nl"}, (file, kind, name)
                        assert texts["en"] != texts["nl"] or name == "security", (file, kind, name)
    # the shipped dictionary does give notes and populations, in both languages
    for where in [("instruments.yaml", "reliability", "population"),
                  ("instruments.yaml", "reliability", "note"), ("instruments.yaml", "cutoff", "note"),
                  ("instruments.yaml", "range", "note"), ("instruments.yaml", "items", "note"),
                  ("programmes.yaml", "typical", "note"), ("programmes.yaml", "maximum", "note"),
                  ("programmes.yaml", "aftercare_weeks", "note"), ("programmes.yaml", "dose", "note")]:
        assert where in given, where


def test_notes_and_populations_are_read_in_both_languages():
    d = load_dictionary()
    cries = d.scale("CRIES-13", "total").reliability
    assert cries.population == cries.text("population") == "Dutch clinically referred youth 7-18"
    assert cries.text("population", "nl") == "Nederlandse klinisch verwezen jeugd van 7-18 jaar"
    assert cries.text("note", "nl") is None and cries.texts("note") == {}  # no note given
    kjts = d.scale("KJTS", "total").cutoff
    assert kjts.note == "international cut-off; Dutch bands not found"
    assert kjts.text("note", "nl") == "internationaal afkappunt; geen Nederlandse scoregrenzen gevonden"
    cbsa = d.scale("CBSA", "global_self_worth")
    assert (cbsa.range.min, cbsa.range.max, cbsa.range.source) == (5, 20, "UNVERIFIED")
    assert cbsa.range.text("note", "nl") == "afgeleid: 5 items met score 1-4"
    incidents = d.scale("INCIDENTS", "count").reliability
    assert incidents.text("note", "nl") == "een telling van gebeurtenissen, geen betrouwbaarheid"
    assert d.scale("GAS", "t_score").items.text("note", "nl") == "doelen per cliënt vastgesteld"
    crisis = d.programmes["pinq_crisis"]
    assert crisis.typical_weeks.text("note", "en") == "NJi gives a stay of 4-8 weeks"
    assert crisis.typical_weeks.text("note", "nl") == "het NJi noemt een verblijf van 4-8 weken"
    assert d.programmes["intermetzo"].maximum_weeks.text("note", "nl") == "hoogstens 9 maanden"
    dose = load_integrity(d).component("egoversterkend", "aftercare").dose
    assert dose.text("note", "nl") == \
        "vertrouwde medewerkers blijven tot een half jaar na ontslag betrokken"
    # the notes of the unverified numbers in the language asked for (English by default)
    flagged = d.unverified().set_index(["where", "what"])["note"]
    dutch = d.unverified("nl").set_index(["where", "what"])["note"]
    key = ("programmes.yaml: pinq_gesloten", "typical weeks")
    assert (flagged[key], dutch[key]) == ("descriptions give 6-9 months",
                                          "de beschrijvingen noemen 6-9 maanden")
    key = ("instruments.yaml: CBSA.global_self_worth", "norm")
    assert (flagged[key], dutch[key]) == ("no norm group with a published source",
                                          "geen normgroep met een gepubliceerde bron")
    assert not dutch.dropna().str.contains("niet vertaald").any()


def test_the_typed_view_stays_frozen_and_hashable_and_takes_a_plain_note():
    from dataclasses import FrozenInstanceError

    from effectstudy.dictionary import Reliability, SourcedValue

    plain = SourcedValue(8.0, "nji_pinq_crisis", "about two months")
    both = SourcedValue(8.0, "nji_pinq_crisis", "about two months",
                        translations={"note": {"en": "about two months", "nl": "ongeveer twee maanden"}})
    assert plain == both and hash(plain) == hash(both)  # translations are not compared
    assert plain.text("note") == "about two months" and plain.text("note", "nl") is None
    assert both.text("note", "nl") == "ongeveer twee maanden"
    with pytest.raises(FrozenInstanceError):
        plain.note = "x"  # type: ignore[misc]
    rel = Reliability(0.8, "alpha", "vanmeijel", "Dutch youth")
    assert rel.texts("population") == {"en": "Dutch youth"} and rel.texts("note") == {}
    d = load_dictionary()
    assert len({d.scale("YSR", "internalising_t"), d.scale("YSR", "internalising_t")}) == 1


def test_a_note_or_population_without_dutch_is_listed(folder):
    def instruments(data):
        scale = data["instruments"]["CRIES-13"]["scales"]["total"]
        scale["reliability"]["population"] = "clinically referred youth"
        scale["cutoff"]["note"] = "as published"
        data["instruments"]["SDQ-S"]["scales"]["prosocial"]["norms"][0]["sd"]["note"] = "rounded"

    def programmes(data):
        data["programmes"]["pinq_gesloten"]["duration_weeks"]["typical"]["note"] = "6-9 months"
        data["programmes"]["veilig_lima"]["phases"][2]["typical_weeks"]["note"] = "seven weeks"
        ego = data["programmes"]["egoversterkend"]
        ego["components"][0]["dose"]["note"] = "weekly"
    _edit(folder / "instruments.yaml", instruments)
    _edit(folder / "programmes.yaml", programmes)
    d = load_dictionary(folder)
    missing = d.untranslated("nl")
    assert list(missing["key"]) == [
        "instruments.CRIES-13.scales.total.reliability.population",
        "instruments.CRIES-13.scales.total.cutoff.note",
        "instruments.SDQ-S.scales.prosocial.norms[0].sd.note",
        "programmes.veilig_lima.phases[2].typical_weeks.note",  # in the file's order
        "programmes.pinq_gesloten.duration_weeks.typical.note"]
    assert list(missing["text"]) == ["clinically referred youth", "as published", "rounded",
                                     "seven weeks", "6-9 months"]
    rel = d.scale("CRIES-13", "total").reliability
    assert rel.population == "clinically referred youth" and rel.text("population", "nl") is None
    integ = load_integrity(d).untranslated("nl")
    assert list(integ["key"]) == ["programmes.egoversterkend.components[0].dose.note"]
    # a Dutch list of unverified numbers marks the English note, never passes it off as Dutch
    dutch = d.unverified("nl").set_index(["where", "what"])["note"]
    assert dutch[("programmes.yaml: pinq_gesloten", "typical weeks")] == \
        "6-9 months (niet vertaald in het datawoordenboek)"
    res = runner.invoke(app, ["dictionary", "check", str(folder)])
    assert res.exit_code == 0, res.output
    assert "6 text(s) without a Dutch translation" in res.output
    assert "instruments.yaml: instruments.CRIES-13.scales.total.reliability.population" in res.output


@pytest.mark.parametrize(("file", "where", "value", "message"), [
    ("instruments.yaml", "instruments.CRIES-13.scales.total.reliability.population",
     {"en": "x", "de": "y"}, "unknown key 'de'"),
    ("instruments.yaml", "instruments.KJTS.scales.total.cutoff.note", {"en": "x"},
     "missing required key 'nl'"),
    ("instruments.yaml", "instruments.CBSA.scales.global_self_worth.range.note",
     {"en": "x", "nl": ""}, "expected text"),
    ("instruments.yaml", "instruments.GAS.scales.t_score.items.note", 5, "expected text"),
    ("instruments.yaml", "instruments.INCIDENTS.scales.count.reliability.note",
     {"en": "x", "nl": "y", "fr": "z"}, "unknown key 'fr'"),
    ("programmes.yaml", "programmes.pinq_crisis.duration_weeks.typical.note",
     {"en": "x", "NL": "y"}, "unknown key 'NL'"),
    ("programmes.yaml", "programmes.egoversterkend.aftercare_weeks.note", {"nl": "y"},
     "missing required key 'en'"),
])
def test_a_bad_note_or_population_names_file_and_key(folder, file, where, value, message):
    def change(data):
        node = data
        parts = where.split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    _edit(folder / file, change)
    with pytest.raises(DictionaryError) as exc:
        load_dictionary(folder)
    assert message in str(exc.value)
    assert file in str(exc.value)
    assert where in str(exc.value)


def test_a_bad_component_dose_note_names_file_and_key(folder):
    def change(data):
        data["programmes"]["egoversterkend"]["components"][5]["dose"]["note"] = {"en": "x", "de": "y"}
    _edit(folder / "programmes.yaml", change)
    d = load_dictionary(folder)  # components are read by load_integrity
    with pytest.raises(DictionaryError) as exc:
        load_integrity(d)
    assert "unknown key 'de'" in str(exc.value) and "programmes.yaml" in str(exc.value)
    assert "programmes.egoversterkend.components[5].dose.note.de" in str(exc.value)


def test_an_unknown_language_is_a_spec_error():
    from effectstudy.errors import SpecError

    d = load_dictionary()
    with pytest.raises(SpecError, match="language must be one of"):
        d.programmes["veilig_lima"].text("setting", "de")
    with pytest.raises(SpecError, match="language must be one of"):
        d.untranslated("fr")


def test_the_untranslated_mark_is_the_report_catalogues():
    # dictionary.py imports nothing from the report: its copy of the mark must match
    from effectstudy.dictionary import UNTRANSLATED_MARK
    from effectstudy.report.i18n import catalogue

    assert UNTRANSLATED_MARK["nl"] == catalogue("nl")["common.untranslated"]
