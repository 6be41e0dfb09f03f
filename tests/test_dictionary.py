"""The shipped data dictionary loads, is internally consistent, and flags unsourced numbers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from effectstudy.dictionary import UNVERIFIED, load_dictionary
from effectstudy.errors import DictionaryError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dictionary():
    return load_dictionary()


def test_shipped_dictionary_is_the_repository_one(dictionary):
    assert dictionary.sha256 == load_dictionary(ROOT / "data_dictionary").sha256


def test_six_programmes_with_the_described_facts(dictionary):
    progs = dictionary.programmes
    assert set(progs) == {"pinq_crisis", "veilig_lima", "pinq_gesloten", "egoversterkend",
                          "intermetzo", "hoenderloo"}
    assert progs["pinq_crisis"].maximum_weeks.value == 12
    assert len(progs["veilig_lima"].phases) == 5
    assert (progs["veilig_lima"].age_min, progs["veilig_lima"].age_max) == (14, 24)
    assert len(progs["intermetzo"].phases) == 4
    assert progs["intermetzo"].maximum_weeks.value == 39
    assert [p.id for p in progs["hoenderloo"].phases] == ["observatie", "behandeling", "vertrek"]
    assert progs["hoenderloo"].reach == "national" and progs["pinq_gesloten"].reach == "regional"


def test_required_constructs_present(dictionary):
    needed = {"trauma_symptoms", "self_esteem", "internalising", "externalising", "safety_risk",
              "family_relations", "daily_activities", "quality_of_life"}
    assert needed <= set(dictionary.constructs)


def test_every_programme_has_a_source_and_every_construct_is_measured(dictionary):
    assert set(dictionary.sources) == set(dictionary.programmes)
    measured = {m.construct for s in dictionary.sources.values() for f in s.files for m in f.measures}
    assert set(dictionary.constructs) - measured == set()


def test_every_cited_source_exists_and_sdq_norms_match_instruments_md(dictionary):
    sdq = dictionary.scale("SDQ-S", "internalising").norm_for(15.0)
    assert (sdq.mean.value, sdq.sd.value, sdq.mean.source) == (4.1, 3.2, "vugteveen2022")
    assert dictionary.scale("SDQ-S", "total_difficulties").norm_for(13).mean.value == 8.7
    # outside the norm group's ages there is no norm, rather than a wrong one
    assert dictionary.scale("SDQ-S", "internalising").norm_for(20.5) is None
    # the age bounds of "girls 12-17" in fractional years: [12, 18); girls only
    sdq_int = dictionary.scale("SDQ-S", "internalising")
    assert sdq_int.norm_for(12.0) is not None and sdq_int.norm_for(17.99) is not None
    assert sdq_int.norm_for(11.99) is None and sdq_int.norm_for(18.0) is None
    assert sdq_int.norm_for(15.0, sex="male") is None
    assert sdq_int.norm_for(None) is None  # age unknown: no age-bound norm applies
    cries = dictionary.scale("CRIES-13", "total")
    assert cries.cutoff.value == 30 and cries.reliability.value == 0.89


def test_unverified_numbers_are_never_norms(dictionary):
    kids = dictionary.scale("KIDSCREEN-27", "psychological_wellbeing_t")
    assert kids.norms and all(not n.verified for n in kids.norms)
    assert kids.norm_for(15) is None
    flagged = dictionary.unverified()
    assert ((flagged["where"].str.contains("KIDSCREEN-27")) & (flagged["what"].str.startswith("norm"))).any()
    frame = dictionary.scales_frame().set_index(["instrument", "scale"])
    assert pd_isna(frame.loc[("KIDSCREEN-27", "psychological_wellbeing_t"), "norm_mean"])
    assert pd_isna(frame.loc[("SDQ-S", "internalising"), "reliability"])  # alpha not sourced
    for src in frame["norm_source"].dropna():
        assert src != UNVERIFIED


def pd_isna(value) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "dd"
    shutil.copytree(ROOT / "data_dictionary", target)
    return target


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


def _error_after_edit(tmp_path: Path, file: str, edit, load=load_dictionary) -> DictionaryError:
    """Copy the shipped dictionary, apply ``edit`` to ``file`` and return the error ``load`` raises."""
    dd = _copy(tmp_path)
    _edit(dd / file, edit)
    with pytest.raises(DictionaryError) as err:
        load(dd)
    return err.value


def test_adding_a_programme_is_a_yaml_edit(tmp_path):
    dd = _copy(tmp_path)

    def add(data):
        data["programmes"]["nieuw"] = dict(data["programmes"]["intermetzo"], name="Nieuw programma")

    _edit(dd / "programmes.yaml", add)
    src = yaml.safe_load((dd / "sources" / "intermetzo.yaml").read_text(encoding="utf-8"))
    src["programme"] = "nieuw"
    (dd / "sources" / "nieuw.yaml").write_text(yaml.safe_dump(src, allow_unicode=True), encoding="utf-8")
    d = load_dictionary(dd)
    assert "nieuw" in d.programmes and "nieuw" in d.sources


@pytest.mark.parametrize(
    ("file", "edit", "key_part"),
    [
        ("constructs.yaml", lambda d: d["constructs"]["self_esteem"].update(bettter="higher"),
         "constructs.self_esteem.bettter"),
        ("constructs.yaml", lambda d: d["constructs"]["self_esteem"].update(better="up"),
         "constructs.self_esteem.better"),
        ("instruments.yaml",
         lambda d: d["instruments"]["RSES"]["scales"]["total"]["reliability"].update(source="franck2009"),
         "instruments.RSES.scales.total.reliability.source"),
        ("instruments.yaml",
         lambda d: d["instruments"]["RSES"]["scales"]["total"]["reliability"].update(value=1.3),
         "instruments.RSES.scales.total.reliability.value"),
        ("instruments.yaml", lambda d: d["instruments"]["RSES"]["scales"]["total"].pop("range"),
         "instruments.RSES.scales.total.range"),
        ("programmes.yaml", lambda d: d["programmes"]["intermetzo"]["phases"][0].update(canonical="stabilise"),
         "programmes.intermetzo.phases[0].canonical"),
    ],
)
def test_dictionary_errors_name_file_and_key(tmp_path, file, edit, key_part):
    error = _error_after_edit(tmp_path, file, edit)
    assert error.file.endswith(file)
    assert error.key == key_part
    assert file in str(error) and key_part in str(error)


def test_source_referring_to_unknown_instrument(tmp_path):
    dd = _copy(tmp_path)
    _edit(dd / "sources" / "pinq_crisis.yaml",
          lambda d: d["files"][0]["measures"][0].update(instrument="CRIES-8"))
    with pytest.raises(DictionaryError, match="CRIES-8") as err:
        load_dictionary(dd)
    assert err.value.key == "files[0].measures[0].instrument"


# --------------------------------------------------------------------------- #
# Closed intervention vocabularies and client id formats (issue 10, items 5 and 18)
# --------------------------------------------------------------------------- #
def test_every_programme_declares_interventions_and_every_export_label_maps(dictionary):
    for prog in dictionary.programmes.values():
        ids = [iv.id for iv in prog.interventions]
        assert 4 <= len(ids) <= 8 and len(set(ids)) == len(ids), prog.id
        assert all(iv.label.strip() for iv in prog.interventions)
    for src in dictionary.sources.values():
        ids = {iv.id for iv in dictionary.programmes[src.programme].interventions}
        for f in src.files:
            if "interventions" in f.client_fields:
                labels = f.labels["interventions"]
                assert labels and set(labels.values()) <= ids, f.path
    # numeric exports declare their ids as integers; exports with letters in ids do not
    formats = {f.path: f.client_id_format for s in dictionary.sources.values() for f in s.files}
    assert formats["veilig_lima_weekreeks.csv"] == "integer"
    assert formats["intermetzo_rom.xlsx"] == "integer"
    assert formats["pinq_gesloten_metingen.csv"] == "text"


@pytest.mark.parametrize(
    ("file", "edit", "key_part"),
    [
        ("sources/hoenderloo.yaml",
         lambda d: d["files"][0]["labels"]["interventions"].update(EMDR="emdr_plus"),
         "files[0].labels.interventions.EMDR"),
        ("sources/hoenderloo.yaml", lambda d: d["files"][0].update(client_id_format="number"),
         "files[0].client_id_format"),
        ("programmes.yaml",
         lambda d: d["programmes"]["hoenderloo"]["interventions"].append({"id": "emdr"}),
         "programmes.hoenderloo.interventions[5].label"),
        ("programmes.yaml",
         lambda d: d["programmes"]["hoenderloo"]["interventions"].append(
             {"id": "emdr", "label": "again"}),
         "programmes.hoenderloo.interventions"),
    ],
)
def test_vocabulary_and_id_format_errors(tmp_path, file, edit, key_part):
    error = _error_after_edit(tmp_path, file, edit)
    assert error.key == key_part
    assert Path(file).name in str(error)


def test_one_dictionary_everywhere_resolver(tmp_path, monkeypatch):
    from effectstudy.dictionary import ENV_DICTIONARY, default_path, resolve_dictionary

    monkeypatch.delenv(ENV_DICTIONARY, raising=False)
    assert resolve_dictionary(None) == default_path()
    dd = _copy(tmp_path)
    _edit(dd / "programmes.yaml",
          lambda d: d["programmes"]["hoenderloo"].update(name="Hoenderloo (eigen kopie)"))
    monkeypatch.setenv(ENV_DICTIONARY, str(dd))
    assert resolve_dictionary(None) == dd
    assert load_dictionary().programmes["hoenderloo"].name == "Hoenderloo (eigen kopie)"
    # an explicit folder wins over the environment
    assert resolve_dictionary(ROOT / "data_dictionary") == ROOT / "data_dictionary"
    assert load_dictionary(ROOT / "data_dictionary").programmes["hoenderloo"].name != (
        "Hoenderloo (eigen kopie)")
    monkeypatch.setenv(ENV_DICTIONARY, str(tmp_path / "nowhere"))
    with pytest.raises(DictionaryError, match=ENV_DICTIONARY):
        load_dictionary()


def test_new_source_and_programme_keys(tmp_path, dictionary):
    assert {p.sex for p in dictionary.programmes.values()} == {"female"}
    dd = _copy(tmp_path)
    _edit(dd / "sources/intermetzo.yaml", lambda d: d["files"][0].update(
        header_row=3, missing_values=["n.v.t.", " - "], sex_column="Geslacht",
        labels={**d["files"][0]["labels"], "sex": {"V": "female", "M": "male"}}))
    _edit(dd / "programmes.yaml", lambda d: d["programmes"]["intermetzo"].update(sex="mixed"))
    d = load_dictionary(dd)
    sf = d.sources["intermetzo"].files[0]
    assert (sf.header_row, sf.missing_values, sf.sex_column) == (3, ("n.v.t.", "-"), "Geslacht")
    assert d.programmes["intermetzo"].sex == "mixed"
    assert sf.labels["sex"] == {"V": "female", "M": "male"}


@pytest.mark.parametrize(
    ("file", "edit", "key_part", "words"),
    [
        ("sources/intermetzo.yaml", lambda d: d["files"][0].update(header_row=0),
         "files[0].header_row", ">= 1"),
        ("sources/intermetzo.yaml", lambda d: d["files"][0].update(header_row="2"),
         "files[0].header_row", "whole number"),
        ("sources/veilig_lima.yaml", lambda d: d["files"][0].update(header_row=2),
         "files[0].header_row", "SPSS"),
        ("sources/intermetzo.yaml", lambda d: d["files"][0].update(missing_values="n.v.t."),
         "files[0].missing_values", "list of texts"),
        ("sources/intermetzo.yaml", lambda d: d["files"][0].update(sex_column="Geslacht"),
         "files[0].labels.sex", "labels: sex:"),
        ("sources/intermetzo.yaml", lambda d: d["files"][0]["labels"].update(sex={"V": "f"}),
         "files[0].labels.sex.V", "female"),
        ("sources/intermetzo.yaml",
         lambda d: d["files"][0]["labels"]["end_reason"].update(Onbekend="unkown"),
         "files[0].labels.end_reason.Onbekend", "did you mean 'unknown'"),
        ("programmes.yaml", lambda d: d["programmes"]["intermetzo"].update(sex="girls"),
         "programmes.intermetzo.sex", "mixed"),
    ],
)
def test_new_key_errors_name_file_and_key(tmp_path, file, edit, key_part, words):
    error = _error_after_edit(tmp_path, file, edit)
    assert error.key == key_part and words in str(error)
    assert Path(file).name in str(error)


# --------------------------------------------------------------------------- #
# programme integrity: components (programmes.yaml) and fidelity.yaml (issue 12)
# --------------------------------------------------------------------------- #
def test_components_and_fidelity_instruments_load():
    from effectstudy.dictionary import load_integrity

    integ = load_integrity()
    d = integ.dictionary
    assert set(integ.components) == set(d.programmes)
    for pid, comps in integ.components.items():
        assert comps, f"{pid} lists no components"
        phases = {"all"} | {p.id for p in d.programmes[pid].phases}
        ivs = {iv.id for iv in d.programmes[pid].interventions}
        for c in comps:
            assert c.phase in phases and set(c.interventions) <= ivs
            assert c.dose.source == UNVERIFIED or c.dose.source in d.references
    # the themes the descriptions name
    assert integ.component("veilig_lima", "trauma_treatment").interventions == ("emdr", "trauma_treatment")
    assert integ.component("hoenderloo", "relationships_sexuality").delivery == "universal"
    assert integ.component("pinq_crisis", "safety_planning").phase == "crisisinterventie"
    after = integ.component("egoversterkend", "aftercare")
    assert (after.dose.value, after.dose.unit, after.dose.verified) == (26, "weeks", True)
    # one checklist per programme, every item on a component of that programme
    assert {i.programme for i in integ.fidelity_instruments.values()} == set(d.programmes)
    for inst in integ.fidelity_instruments.values():
        comp_ids = {c.id for c in integ.components[inst.programme]}
        assert {it.component for it in inst.items} <= comp_ids
        assert inst.source == UNVERIFIED and inst.score_min < inst.score_max
    assert integ.instrument_for("egoversterkend").score_max == 2


def _first_component(data):
    return data["programmes"]["veilig_lima"]["components"][0]


@pytest.mark.parametrize("file, edit, key_part", [
    ("programmes.yaml", lambda d: _first_component(d).update(sesions=3),
     "programmes.veilig_lima.components[0].sesions"),
    ("programmes.yaml", lambda d: _first_component(d).update(phase="fase_9"),
     "programmes.veilig_lima.components[0].phase"),
    ("programmes.yaml", lambda d: _first_component(d).update(interventions=["yoga"]),
     "programmes.veilig_lima.components[0].interventions[0]"),
    ("programmes.yaml", lambda d: _first_component(d).update(delivery="sometimes"),
     "programmes.veilig_lima.components[0].delivery"),
    ("programmes.yaml", lambda d: _first_component(d)["dose"].update(unit="hours"),
     "programmes.veilig_lima.components[0].dose.unit"),
    ("programmes.yaml", lambda d: _first_component(d)["dose"].update(source="nobody2020"),
     "programmes.veilig_lima.components[0].dose.source"),
    ("fidelity.yaml", lambda d: d["fidelity_instruments"]["veilig_lima_checklist"]["items"][0]
     .update(component="safety_planning"), "fidelity_instruments.veilig_lima_checklist.items[0].component"),
    ("fidelity.yaml", lambda d: d["fidelity_instruments"]["veilig_lima_checklist"].update(raters=["parent"]),
     "fidelity_instruments.veilig_lima_checklist.raters[0]"),
    ("fidelity.yaml", lambda d: d["fidelity_instruments"]["veilig_lima_checklist"].update(scorng={}),
     "fidelity_instruments.veilig_lima_checklist.scorng"),
    ("fidelity.yaml", lambda d: d["fidelity_instruments"]["veilig_lima_checklist"].update(programme="lima"),
     "fidelity_instruments.veilig_lima_checklist.programme"),
])
def test_integrity_errors_name_file_and_key(tmp_path, file, edit, key_part):
    from effectstudy.dictionary import load_integrity

    error = _error_after_edit(tmp_path, file, edit, load=load_integrity)
    assert error.key == key_part
    assert Path(file).name in str(error)
