"""Programme dossiers and the Dutch/English reports, rendered from one study run."""

from __future__ import annotations

import html as _html
import re
import string

import matplotlib

matplotlib.use("Agg")

import pytest

from effectstudy.errors import SpecError
from effectstudy.report import build_report
from effectstudy.report.i18n import catalogue

PROGRAMMES = ["egoversterkend", "hoenderloo", "intermetzo", "pinq_crisis", "pinq_gesloten",
              "veilig_lima"]


@pytest.fixture(scope="module")
def demo(demo_data, demo_goal_results, tmp_path_factory):
    # the shared demo study with goal attainment among the slopes (tests/conftest.py)
    h, res = demo_data.harmonised, demo_goal_results
    root = tmp_path_factory.mktemp("dossier")
    out = root / "out"
    reps = {}
    for lang in ("nl", "en"):
        for aud in ("public", "internal"):
            for prog in (None, "veilig_lima"):
                reps[(lang, aud, prog)] = build_report(res, out=out / lang / aud, audience=aud,
                                                       programme=prog, language=lang, pdf=False)
    return h, res, reps


def _html_of(rep) -> str:
    return rep.html_path.read_text(encoding="utf-8")


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<h2 id="([a-z_]+)">', html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _visible(html: str) -> str:
    html = re.sub(r'src="data:[^"]*"', "", html)
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", _html.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_dutch_dossier_has_summary_first_and_recognition_and_reliable_change(demo):
    html = _html_of(demo[2][("nl", "public", "veilig_lima")])
    secs = _sections(html)
    ids = list(secs)
    assert ids[0] == "summary"
    assert secs["summary"].split("</h2>")[0] == "Samenvatting"
    assert secs["recognition"].split("</h2>")[0] == "Erkenning"
    for sid in ("summary", "recognition", "change"):
        body = _visible(secs[sid].split("</h2>", 1)[1])
        assert len(body) > 200, sid
    change = _visible(secs["change"])
    assert "Betrouwbare verandering" in change and "klinisch significante verandering" in change
    assert "voormeting" in change and "nameting" in change
    # the recognition table names every level and what is missing (a comparison group)
    rec = _visible(secs["recognition"])
    for level in ("goed onderbouwd", "eerste aanwijzingen", "goede aanwijzingen",
                  "sterke aanwijzingen"):
        assert level in rec, level
    assert "vergelijkingsgroep" in rec and "programma-integriteit" in rec
    refs = _visible(_sections(html)["references"])
    assert "nji.nl" in refs and "Erkenningscommissie" in refs


def test_catalogues_have_the_same_keys_and_fields():
    en, nl = catalogue("en"), catalogue("nl")
    assert set(en) == set(nl)
    fields = string.Formatter()
    for key in en:
        f_en = {f for _, f, _, _ in fields.parse(en[key]) if f}
        f_nl = {f for _, f, _, _ in fields.parse(nl[key]) if f}
        assert f_en == f_nl, key


def _english_only_words(res) -> set[str]:
    """Distinctive words of the English catalogue: not in the Dutch one, not in any text
    the data or the dictionary bring in (those are not the catalogue's to translate)."""
    def words(text: str) -> set[str]:
        return {w.lower() for w in re.findall(r"[A-Za-z]{6,}", text)}

    en = set().union(*(words(v) for k, v in catalogue("en").items() if not k.startswith("ref.")))
    nl = set().union(*(words(v) for v in catalogue("nl").values()))
    data = set()
    for frame in res.frames.values():  # values only: column names are code, not shown
        for col in frame.columns:
            if frame[col].dtype == object or str(frame[col].dtype) in ("str", "string"):
                data |= set().union(set(), *(words(str(v)) for v in frame[col].dropna().unique()))
    for prog in res.meta["programmes"].values():  # the dictionary's own descriptions
        data |= words(" ".join(str(prog.get(k) or "") for k in
                               ("name", "provider", "setting", "reach", "aims", "phases")))
    data |= words(" ".join(res.meta.get("multilevel", {}).get("messages", [])))
    return en - nl - data


def test_every_section_in_dutch_shows_no_english_fallback(demo):
    _, res, reps = demo
    english = _english_only_words(res)
    assert len(english) > 100  # the check has teeth
    assert {"recognition", "heterogeneity", "limitations"} <= english
    # positive control: the same search finds the English words in the English dossier
    en_text = _visible(_sections(_html_of(reps[("en", "public", "veilig_lima")]))["recognition"])
    assert len({w for w in re.findall(r"[A-Za-z]{6,}", en_text) if w.lower() in english}) > 10
    keys = set(catalogue("nl"))
    for (lang, aud, prog), rep in reps.items():
        if lang != "nl":
            continue
        html = _html_of(rep)
        secs = _sections(html)
        for sid, body in secs.items():
            if sid in ("references", "provenance"):  # citations and the spec as written
                continue
            text = _visible(body)
            found = {w for w in re.findall(r"[A-Za-z]{6,}", text) if w.lower() in english}
            assert not found, (aud, prog, sid, sorted(found)[:10])
            assert not [k for k in keys if k in text], (aud, prog, sid)
            assert not re.search(r"\{[a-z_]+\}", text), (aud, prog, sid)


def test_english_reports_show_english(demo):
    html = _html_of(demo[2][("en", "public", "veilig_lima")])
    secs = _sections(html)
    assert secs["summary"].split("</h2>")[0] == "Summary"
    assert secs["recognition"].split("</h2>")[0] == "Recognition"
    assert "Samenvatting" not in _visible(html)


def test_dutch_numbers_use_a_decimal_comma(demo):
    html = _html_of(demo[2][("nl", "public", "veilig_lima")])
    slopes = _sections(html)["slopes"]
    cells = [_html.unescape(c) for c in re.findall(r"<td>([^<]*)</td>", slopes)]
    decimals = [c for c in cells if re.search(r"\d[.,]\d", c)]
    assert decimals and all("," in c and not re.search(r"\d\.\d", c) for c in decimals), decimals
    en = _html_of(demo[2][("en", "public", "veilig_lima")])
    en_cells = re.findall(r"<td>([^<]*)</td>", _sections(en)["slopes"])
    assert any(re.search(r"\d\.\d", c) for c in en_cells)


def test_unknown_programme_lists_the_known_ids(demo, tmp_path):
    _, res, _ = demo
    with pytest.raises(SpecError) as err:
        build_report(res, out=tmp_path, programme="veilig_lmia", pdf=False)
    for pid in PROGRAMMES:
        assert pid in str(err.value)
    with pytest.raises(SpecError, match="language"):
        build_report(res, out=tmp_path, language="de", pdf=False)


def test_a_construct_without_data_says_so_never_an_empty_table(demo):
    _, _, reps = demo
    cross = _visible(_sections(_html_of(reps[("en", "public", None)]))["slopes"])
    assert "goal attainment: the joint model of the programme slopes could not be estimated" \
        in cross
    dossier = _visible(_sections(_html_of(reps[("nl", "public", "veilig_lima")]))["slopes"])
    assert "doelrealisatie" in dossier and "niet worden geschat" in dossier
    for rep in reps.values():
        for tab in re.findall(r"<table[^>]*class=\"data[^\"]*\".*?</table>", _html_of(rep),
                              flags=re.S):
            assert len(re.findall(r"<tr>", tab)) >= 2, (rep.html_path, tab[:200])


def test_dossier_never_shows_another_programmes_client_level_results(demo):
    h, _, reps = demo
    own = set(h.clients.loc[h.clients["programme"] == "veilig_lima", "client"])
    others = set(h.clients["client"]) - own
    internal = _html_of(reps[("nl", "internal", "veilig_lima")])
    assert any(p in internal for p in own)  # positive control: her own pseudonyms are there
    assert not [p for p in others if p in internal]
    for sid in ("flow", "change", "single_case", "follow_up"):
        body = _visible(_sections(internal)[sid])
        for name in ("Hoenderloo", "Intermetzo", "PINQ", "Egoversterkend"):
            assert name not in body, (sid, name)
    public = _html_of(reps[("nl", "public", "veilig_lima")])
    assert not [p for p in own | others if p in public]


def test_multiple_baseline_panels_only_in_the_internal_dossier(demo):
    _, _, reps = demo
    internal = _sections(_html_of(reps[("en", "internal", "veilig_lima")]))["single_case"]
    public = _sections(_html_of(reps[("en", "public", "veilig_lima")]))["single_case"]
    assert "Multiple-baseline graph" in internal and "<img" in internal
    assert "Multiple-baseline graph" not in public and "<img" not in public
    assert "What Works Clearinghouse" in public and "Randomization tests" in public


def test_cross_programme_report_has_forest_plots_heterogeneity_and_cr2(demo):
    _, res, reps = demo
    body = _sections(_html_of(reps[("en", "public", None)]))["slopes"]
    text = _visible(body)
    assert body.count("<img") >= 2  # a forest plot per construct with a joint model
    assert "Heterogeneity of the internalising slopes" in text and "few clusters" in text
    assert "CR2 check of the programme contrasts" in text
    assert "Programme characteristics beside the slopes" in text
    assert "no multiplicity adjustment" in text
    # the slopes shown are the saved ones (no recomputation, same rounding)
    s = res.frames["slopes"].query("construct == 'internalising' and programme == 'veilig_lima'")
    assert f"{s['estimate'].iloc[0]:.4f}" in text


def test_dropout_curves_in_both_audiences_public_without_small_counts(demo):
    _, _, reps = demo
    internal = _sections(_html_of(reps[("en", "internal", "veilig_lima")]))["dropout"]
    public = _sections(_html_of(reps[("nl", "public", "veilig_lima")]))["dropout"]
    assert "<img" in internal and "<table" in internal
    # Veilig Lima has 9 clients: its curve is drawn in public too, stopped before fewer
    # than 5 are at risk, and no number in the section's tables is below 5
    assert "<img" in public
    cells = [int(c) for c in re.findall(r"<td>(\d+)</td>", public)]
    assert all(c >= 5 for c in cells), cells
