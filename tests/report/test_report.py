"""The study report end to end on the synthetic demo: sections, audiences, privacy."""

from __future__ import annotations

import copy
import re

import matplotlib

matplotlib.use("Agg")

import pytest

from effectstudy.errors import SpecError
from effectstudy.report import DEMO_SPEC, build_report
from effectstudy.report.spec import load_spec, validate_spec

SECTION_IDS = ["programmes", "flow", "descriptives", "change", "single_case", "multilevel",
               "slopes", "power", "scribe", "limitations", "methods", "references", "provenance"]


@pytest.fixture(scope="module")
def demo(demo_data, demo_results, tmp_path_factory):
    # rendered from the shared demo study (tests/conftest.py); rendering straight from
    # harmonised data is tested in tests/test_cli.py
    root = tmp_path_factory.mktemp("report")
    reports = {aud: build_report(demo_results, out=root / aud, audience=aud)
               for aud in ("public", "internal")}
    return demo_data.synth, demo_data.harmonised, reports


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<h2 id="([a-z_]+)">', html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


@pytest.mark.parametrize("audience", ["public", "internal"])
def test_every_section_present_and_non_empty(demo, audience):
    html = demo[2][audience].html_path.read_text(encoding="utf-8")
    sections = _sections(html)
    for sid in SECTION_IDS:
        assert sid in sections, sid
        body = re.sub(r"<[^>]+>", "", sections[sid].split("</h2>", 1)[1]).strip()
        assert len(body) > 40, sid
    assert "data:image/png;base64," in html  # figures embedded: opens offline
    assert demo[2][audience].pdf_path.read_bytes()[:4] == b"%PDF"


def _numbers_in_tables(html: str, section: str) -> list[float]:
    body = _sections(html)[section]
    cells = re.findall(r"<td>([^<]*)</td>", body)
    return [float(c) for c in cells if re.fullmatch(r"-?\d+", c.strip())]


def test_public_report_suppresses_small_counts_and_shows_no_pseudonym(demo):
    _, h, reports = demo
    html = reports["public"].html_path.read_text(encoding="utf-8")
    # counts in the flow and reliable-change tables: none below 5 (0 suppressed too)
    for section in ("flow", "change"):
        nums = _numbers_in_tables(html, section)
        assert nums, section
        assert all(v >= 5 for v in nums), (section, [v for v in nums if v < 5])
    assert "&lt;5" in html
    # descriptives: any row with n shown has n >= 5
    desc = _sections(html)["descriptives"]
    tables = re.findall(r"<table.*?</table>", desc, flags=re.S)
    assert tables
    for tab in tables:
        headers = re.findall(r"<th>([^<]*)</th>", tab)
        col = headers.index("n")
        for row in re.findall(r"<tr>(.*?)</tr>", tab, flags=re.S)[1:]:
            cell = re.findall(r"<td>([^<]*)</td>", row)[col]
            assert cell == "&lt;5" or int(cell) >= 5
    for pseudonym in h.table["client"].unique():
        assert pseudonym not in html


def test_internal_report_has_case_level_detail(demo):
    _, h, reports = demo
    html = reports["internal"].html_path.read_text(encoding="utf-8")
    assert any(p in html for p in h.table["client"].unique())


def test_no_synthetic_identifier_in_any_report(demo):
    synth, _, reports = demo
    values = {str(v) for v in synth.identifiers["value"]} if "value" in synth.identifiers else {
        str(v) for col in synth.identifiers.columns for v in synth.identifiers[col].dropna()}
    values = {v for v in values if len(v) >= 4}
    for rep in reports.values():
        for name, text in (("html", rep.html_path.read_bytes().decode("latin-1")),
                           ("html:utf8", rep.html_path.read_text(encoding="utf-8")),
                           ("pdf", _pdf_text(rep.pdf_path))):
            leaked = [v for v in values if v in text]
            assert not leaked, (name, leaked[:3])


def _pdf_text(path) -> str:
    """The text of a PDF. Its content streams are Flate-compressed, so grepping the raw
    bytes finds nothing (not even the pseudonyms the internal report does print)."""
    import pypdf  # a dependency of xhtml2pdf

    return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)


def test_pdf_text_is_searchable_and_public_pdf_has_no_pseudonym(demo):
    _, h, reports = demo
    pseudonyms = set(h.table["client"].unique())
    internal = _pdf_text(reports["internal"].pdf_path)
    # positive control: the search does find pseudonyms where they are meant to be
    assert any(p in internal for p in pseudonyms)
    public = _pdf_text(reports["public"].pdf_path)
    assert "Sample flow" in public
    assert not [p for p in pseudonyms if p in public]


def test_provenance_records_hashes_and_spec(demo):
    prov = demo[2]["public"].provenance
    assert len(prov["dictionary_sha256"]) == 64 and len(prov["data_sha256"]) == 64
    assert prov["seed"] == 2026 and "single_case" in prov["spec"]


def test_spec_typo_is_an_error(tmp_path):
    bad = copy.deepcopy(DEMO_SPEC)
    bad["multilevel"]["formla"] = "y ~ 1"
    with pytest.raises(SpecError, match="formla"):
        validate_spec(bad)
    path = tmp_path / "a.yaml"
    path.write_text("title: x\npowr: {}\n", encoding="utf-8")
    with pytest.raises(SpecError, match="did you mean 'power'"):
        load_spec(path)


def test_public_single_case_section_shows_no_small_client_count(demo):
    _, _, reports = demo
    html = reports["public"].html_path.read_text(encoding="utf-8")
    body = _sections(html)["single_case"]
    checked = 0
    for tab in re.findall(r"<table.*?</table>", body, flags=re.S):
        headers = re.findall(r"<th>([^<]*)</th>", tab)
        if "cases" not in headers:
            continue
        col = headers.index("cases")
        for row in re.findall(r"<tr>(.*?)</tr>", tab, flags=re.S)[1:]:
            cell = re.findall(r"<td>([^<]*)</td>", row)[col].strip()
            checked += 1
            assert cell == "&lt;5" or int(cell.replace(",", "")) >= 5, cell
    assert checked


def test_public_limitations_give_no_per_programme_counts(demo):
    # A list of per-programme counts beside the total would undo the flow table's
    # suppression (one hidden count = total - the others); the public text gives a range.
    _, h, reports = demo
    html = reports["public"].html_path.read_text(encoding="utf-8")
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _sections(html)["limitations"]))
    assert "clients per programme" in text
    numbers = [int(n) for n in re.findall(r"\b\d+\b", text)]
    assert all(n >= 5 for n in numbers), numbers
    assert str(len(h.clients)) not in re.findall(r"\b\d+\b", text)
    internal = reports["internal"].html_path.read_text(encoding="utf-8")
    assert f"{len(h.clients)} in all" in internal


def test_shipped_example_spec_is_the_demo_spec():
    from pathlib import Path

    import effectstudy.report as rep

    example = Path(rep.__file__).parent / "examples" / "analysis.yaml"
    assert load_spec(example) == DEMO_SPEC
