"""No English in a Dutch report (issue 11): every section of the Dutch cross-programme report and
of every Dutch dossier, public and internal, comes from the Dutch catalogue and the dictionary's
Dutch texts.

The demo study is run once (synthetic data, harmonised, :func:`effectstudy.study.run`); each
report is rendered in Dutch and its visible text is taken from the HTML without the reference
list and the provenance appendix (citations stay as published, the spec and formulas are code).
Citations of ``references.yaml`` that a table of sources shows are removed too. What may not
be left:

* a text fragment of the English catalogue that is not also Dutch (the text between its
  ``{fields}``, of at least two words);
* an English text of the data dictionary (a setting, group, phase, component, norm group ...);
* an English function word as a whole word. Words that are Dutch as well (``of`` = "or",
  ``is``, ``was``, ``in``, ``per``, ``week``, ``over``) cannot tell the languages apart and
  are not in the list.

A positive control renders a dossier from results saved before the notes had codes (the
English note text only): the check finds the English note.
"""

from __future__ import annotations

import copy
import html as _html
import re

import matplotlib

matplotlib.use("Agg")

import pytest

from effectstudy import change
from effectstudy.dictionary import load_dictionary, load_integrity
from effectstudy.report import build_report
from effectstudy.report.i18n import catalogue

PROGRAMMES = ("egoversterkend", "hoenderloo", "intermetzo", "pinq_crisis", "pinq_gesloten",
              "veilig_lima")
ENGLISH_WORDS = ("the", "and", "with", "without", "not", "taken", "from", "sample", "for", "to",
                 "by", "on", "or", "no", "only", "each", "every", "which", "were", "has", "have",
                 "been", "than", "its", "their", "computed", "published", "found", "girls",
                 "clients", "treatment", "shelter", "group", "phase", "dose", "test", "of the")
_FIELD = re.compile(r"\{[^}]*\}")


@pytest.fixture(scope="module")
def results(demo_results):
    return demo_results  # the shared demo study (tests/conftest.py): read only


def _visible(html: str) -> str:
    """The reader's text of a rendered report, without references and provenance."""
    body = html.split('<h2 id="references">')[0]
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", body, flags=re.S)
    body = re.sub(r"<[^>]+>", "\n", body)
    lines = (line.strip() for line in _html.unescape(body).splitlines())
    return "\n".join(line for line in lines if line)


@pytest.fixture(scope="module")
def dutch(results, tmp_path_factory):
    root = tmp_path_factory.mktemp("dutch_reports")
    out = {}
    for audience in ("public", "internal"):
        for pid in (None, *PROGRAMMES):
            rep = build_report(results, out=root / audience, audience=audience, programme=pid,
                               language="nl", pdf=False)
            out[(audience, pid)] = _visible(rep.html_path.read_text(encoding="utf-8"))
    return out


def _english_catalogue_fragments() -> set[str]:
    dutch = " ".join(catalogue("nl").values()).lower()
    out = set()
    for text in catalogue("en").values():
        for part in _FIELD.split(text):
            part = part.strip(" .,;:()'\"-=+/")
            if len(part.split()) >= 2 and part.lower() not in dutch:
                out.add(part)
    return out


def _english_dictionary_texts() -> set[str]:
    d = load_dictionary()
    integ = load_integrity(d)
    records = [r for _, _, r in d.text_records()]
    records += [c for comps in integ.components.values() for c in comps]
    for inst in integ.fidelity_instruments.values():
        records += [inst, *inst.items]
    out = set()
    for record in records:
        for name in record.translations:  # the text fields the dictionary gave
            texts = record.texts(name)
            en, nl = texts.get("en", ""), texts.get("nl", "")
            if en and en.lower() not in nl.lower():
                out.add(en)
    return out


@pytest.fixture(scope="module")
def check():
    fragments = _english_catalogue_fragments()
    dictionary_texts = _english_dictionary_texts()
    citations = sorted((r.citation for r in load_dictionary().references.values()), key=len,
                       reverse=True)
    words = re.compile(r"\b(" + "|".join(re.escape(w) for w in ENGLISH_WORDS) + r")\b")

    def english(text: str) -> list[str]:
        for citation in citations:
            text = text.replace(citation, " ")
        found = [f"catalogue: {f}" for f in fragments if f in text]
        found += [f"dictionary: {d}" for d in dictionary_texts
                  if re.search(r"(?<!\w)" + re.escape(d) + r"(?!\w)", text)]
        for line in text.splitlines():
            if words.search(line):
                found.append(f"words: {line}")
        return found

    # the lists are not empty: the check has something to find
    assert len(fragments) > 200 and len(dictionary_texts) > 80
    return english


def test_every_dutch_report_and_dossier_is_free_of_english(dutch, check):
    leaks = {key: check(text) for key, text in dutch.items()}
    leaks = {key: found for key, found in leaks.items() if found}
    assert leaks == {}


def test_the_dutch_reports_show_the_dutch_texts_of_the_dictionary(dutch):
    report = dutch[("public", None)]
    assert "crisisopvang op een beschermd adres (Meisa)" in report
    assert "gesloten jeugdzorg met onderwijs en ggz-behandeling" in report
    assert "landelijk" in report and "regionaal" in report
    assert "geen geverifieerde norm: SD uit de eigen steekproef" in report
    assert "t-toets van time = 0 (Satterthwaite-vrijheidsgraden), REML" in report
    assert "vugteveen2022 (Nederlandse algemene bevolking, meisjes 12-17 jaar, zelfrapportage)" \
        in report
    assert "Meidengroep" in report
    lima = dutch[("public", "veilig_lima")]
    assert "Fasen: Fase 1, Fase 2, Fase 3, Fase 4, Fase 5." in lima
    crisis = dutch[("internal", "pinq_crisis")]
    assert "Doelen (datawoordenboek): Crisisinterventie; taxatie" in crisis


def test_the_check_catches_an_english_note(results, tmp_path, check):
    """Positive control: results saved before the codes (English note text only) render the
    English note, marked as untranslated, and the check finds it."""
    old = copy.deepcopy(results)
    rc = old.frames["rc"]
    old.frames["rc"] = rc.drop(columns=[c for c in (*change.CODE_COLUMNS,
                                                    "reliability_source_key") if c in rc])
    for prog in old.meta["programmes"].values():  # plain English strings, as older results
        prog["setting"] = (prog["setting"] or {}).get("en")
    rep = build_report(old, out=tmp_path, audience="public", programme="veilig_lima",
                       language="nl", pdf=False)
    text = _visible(rep.html_path.read_text(encoding="utf-8"))
    found = check(text)
    assert "catalogue: no verified norm: SD taken from the sample" in found
    assert "dictionary: residential treatment at a protected address; sex-specific ward" in found
    assert any(f.startswith("words: ") and "taken from the sample" in f for f in found)
    # the English text is marked, never passed off as Dutch
    assert "residential treatment at a protected address; sex-specific ward " \
           "(niet vertaald in het datawoordenboek)" in text


def test_a_dictionary_text_without_dutch_is_marked_not_passed_off():
    from effectstudy.report.i18n import dictionary_text, message, use_language

    both = {"en": "girls group", "nl": "meidengroep"}
    with use_language("nl"):
        assert dictionary_text(both) == "meidengroep"
        assert dictionary_text("girls group") == dictionary_text({"en": "girls group"}) == \
            "girls group (niet vertaald in het datawoordenboek)"
        assert dictionary_text(None) == dictionary_text({}) == ""
        assert message("change.notes", "no_verified_norm;no_cutoff;no_verified_norm") == (
            "geen geverifieerde norm: SD uit de eigen steekproef; "
            "geen afkappunt: klinische significantie niet beoordeeld")
    with use_language("en"):
        assert dictionary_text(both) == dictionary_text("girls group") == "girls group"
        assert message("change.notes", ["no_cutoff"]) == change.NOTES["no_cutoff"]
        assert message("change.notes", None) == message("change.notes", "") == ""
