"""Attack on the demo's public report: suppression proven, not hoped (issue 10, items 1-4).

An attacker reads every published table, caption and text of the public report and
knows how suppression works: a ``<5`` cell lies in [0, 4] (a descriptives row that
exists has at least one client, so [1, 4] there), an ``x`` cell in [0, big]. Every
published relation - within the tables (rows, columns, margins) and across them
(flow table versus change table, descriptives, single-case cases, the limitations
text) - goes into one integer program, and every hidden cell is minimised and
maximised with ``scipy.optimize.milp``. No hidden cell may be pinned to a single
value or to two neighbouring values (max - min >= 2).

A second test greps every public output (HTML text, PDF text, the text drawn in
the figures) for client counts below the threshold.

The same two attacks run on every programme dossier (issue 11), in Dutch and
English, Hoenderloo's programme of 4 clients included: the dossier's flow row,
change table, norm-referenced view, standardised change, follow-up, single-case
cases, the summary text and the flow figure go into one integer program per dossier.
"""

from __future__ import annotations

import html as _html
import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.text import Text
from scipy.optimize import Bounds, LinearConstraint, milp

from effectstudy.report import DEMO_SPEC, build_report
from effectstudy.report.analyses import Section
from effectstudy.report.i18n import catalogue
from small_counts import small_counts

THRESHOLD = DEMO_SPEC["suppression"]["threshold"]
BIG = 100_000


# --------------------------------------------------------------------------- #
# The published report, as the attacker gets it
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def public(demo_data, demo_results, build_once, tmp_path_factory):
    # the shared demo study (tests/conftest.py), rendered once for every module importing this
    return build_once("attack public", lambda: _public(demo_data.harmonised, demo_results,
                                                       tmp_path_factory.mktemp("attack")))


def _public(h, results, root) -> dict:
    figure_texts: list[str] = []
    original = Section.figure

    def recording(self, fig, caption=""):
        # every string drawn in the figure (titles, labels, annotations, legend)
        figure_texts.extend(t.get_text() for t in fig.findobj(Text) if t.get_text())
        return original(self, fig, caption)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Section, "figure", recording)
        rep = build_report(results, out=root / "public", audience="public")
    html = rep.html_path.read_text(encoding="utf-8")
    return {"h": h, "report": rep, "html": html, "figures": figure_texts,
            "tables": _tables(html), "results": results, "root": root}


def _sections(html: str) -> dict[str, str]:
    parts = re.split(r'<h2 id="([a-z_]+)">', html)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _tables(html: str) -> dict[str, list[dict]]:
    """Every table per section: caption, headers and rows of (unescaped) cell texts."""
    out = {}
    for sid, body in _sections(html).items():
        found = []
        for caption, tab in re.findall(r'<p class="caption">(.*?)</p>\s*(<table.*?</table>)', body,
                                       flags=re.S):
            heads = [_html.unescape(x) for x in re.findall(r"<th>(.*?)</th>", tab)]
            rows = [[_html.unescape(c).strip() for c in re.findall(r"<td>(.*?)</td>", r, flags=re.S)]
                    for r in re.findall(r"<tr>(.*?)</tr>", tab, flags=re.S)[1:]]
            found.append({"caption": _html.unescape(re.sub(r"<[^>]+>", "", caption)),
                          "heads": heads, "rows": [dict(zip(heads, r, strict=True)) for r in rows]})
        out[sid] = found
    return out


# --------------------------------------------------------------------------- #
# An integer program over everything published
# --------------------------------------------------------------------------- #
class Attack:
    """Unknown counts as integer variables, published relations as linear constraints."""

    def __init__(self) -> None:
        self.low: list[float] = []
        self.high: list[float] = []
        self.names: list[str] = []
        self.rows: list[tuple[dict[int, float], float, float]] = []

    def cell(self, text: str, name: str, *, at_least: int = 0):
        """A published cell: its number, or a new variable for a hidden one."""
        text = text.replace(",", "").strip()
        if re.fullmatch(r"\d+", text):
            return int(text)
        if text == f"<{THRESHOLD}":
            lo, hi = at_least, THRESHOLD - 1
        elif text == "x":
            lo, hi = 0, BIG
        else:
            raise AssertionError(f"unexpected cell {text!r} in {name}")
        self.names.append(name)
        self.low.append(lo)
        self.high.append(hi)
        return ("var", len(self.names) - 1)

    def _linear(self, terms):
        coef, const = {}, 0.0
        for sign, term in terms:
            if isinstance(term, tuple):
                coef[term[1]] = coef.get(term[1], 0.0) + sign
            else:
                const += sign * term
        return coef, const

    def equal(self, left, right) -> None:
        """sum(left) == sum(right)."""
        coef, const = self._linear([(1, t) for t in left] + [(-1, t) for t in right])
        self.rows.append((coef, -const, -const))

    def at_most(self, left, right) -> None:
        """sum(left) <= sum(right)."""
        coef, const = self._linear([(1, t) for t in left] + [(-1, t) for t in right])
        self.rows.append((coef, -np.inf, -const))

    def ranges(self) -> dict[str, tuple[float, float]]:
        n = len(self.names)
        a = np.zeros((len(self.rows), n))
        for k, (coef, _, _) in enumerate(self.rows):
            for j, v in coef.items():
                a[k, j] = v
        cons = [LinearConstraint(a, [r[1] for r in self.rows], [r[2] for r in self.rows])]
        bounds = Bounds(self.low, self.high)
        out = {}
        for j in range(n):
            obj = np.zeros(n)
            obj[j] = 1
            lo = milp(obj, constraints=cons, integrality=np.ones(n), bounds=bounds)
            hi = milp(-obj, constraints=cons, integrality=np.ones(n), bounds=bounds)
            assert lo.status == 0 and hi.status == 0, (self.names[j], lo.message, hi.message)
            out[self.names[j]] = (round(lo.fun), round(-hi.fun))
        return out


def _flow(tables):
    (flow,) = tables["flow"]
    return flow


def _build_attack(public) -> tuple[Attack, dict]:
    tables = public["tables"]
    at = Attack()
    flow = _flow(tables)
    heads = flow["heads"]
    ref, inc, comp, absc, trans, unk, ana = heads[1:8]
    assert ref.startswith("referred") and ana.startswith("analysed") and unk.startswith("unknown")
    f = {}
    for row in flow["rows"]:
        prog = row["programme"]
        f[prog] = {h: at.cell(row[h], f"flow {prog} {h}") for h in heads[1:]}
    progs = [p for p in f if p != "Total"]
    for p in f:
        at.equal([f[p][comp], f[p][absc], f[p][trans], f[p][unk]], [f[p][ref]])
        at.at_most([f[p][inc]], [f[p][ref]])
        at.at_most([f[p][ana]], [f[p][inc]])
    for h in heads[1:]:
        at.equal([f[p][h] for p in progs], [f["Total"][h]])

    # reliable change: rows and columns add up; a construct's assessed clients
    # were all analysed (intake and discharge)
    change = tables["change"][0]
    assert change["heads"][0] == "construct" and change["heads"][-1] == "Total"
    cats = change["heads"][1:-1]
    ch = {}
    for row in change["rows"]:
        ch[row["construct"]] = {h: at.cell(row[h], f"change {row['construct']} {h}")
                                for h in cats + ["Total"]}
    constructs = [c for c in ch if c != "Total"]
    for c in ch:
        at.equal([ch[c][k] for k in cats], [ch[c]["Total"]])
    for k in cats + ["Total"]:
        at.equal([ch[c][k] for c in constructs], [ch["Total"][k]])
    for c in constructs:
        at.at_most([ch[c]["Total"]], [f["Total"][ana]])

    # descriptives: clients with a score <= clients included; a construct's assessed
    # clients have an intake and a discharge score on one of its instruments
    by_occasion: dict[tuple[str, str], list] = {}
    for tab in tables["descriptives"]:
        construct = re.sub(r"^Table \d+\.\s*", "", tab["caption"]).split(":")[0].strip().lower()
        for k, row in enumerate(tab["rows"]):
            n = at.cell(row["n"], f"descriptives {construct} {k} {row['programme']} "
                        f"{row['occasion']}", at_least=1)
            at.at_most([n], [f[row["programme"]][inc]])
            by_occasion.setdefault((construct, row["occasion"]), []).append(n)
    for c in constructs:
        for occ in ("intake", "discharge"):
            if (c, occ) in by_occasion:
                at.at_most([ch[c]["Total"]], by_occasion[(c, occ)])

    # single-case: the cases of a programme are clients of that programme
    for tab in tables["single_case"]:
        if "cases" in tab["heads"]:
            for row in tab["rows"]:
                n = at.cell(row["cases"], f"cases {row['programme']}", at_least=1)
                at.at_most([n], [f[row["programme"]][ref]])

    # counts drawn in the flow figure ("referred (in export)\nn = 72", "absconded: n = 12")
    drawn = 0
    for t in public["figures"]:
        for label, value in re.findall(r"([a-z][^\n:]*?)(?::|\n)\s*n = (\S+)", t):
            if label.strip() in heads and re.fullmatch(r"\d+", value):
                at.equal([int(value)], [f["Total"][label.strip()]])
                drawn += 1
    assert drawn >= 3, public["figures"]

    # counts stated in text: the largest programme size in the limitations
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", _sections(public["html"])["limitations"]))
    largest = re.search(r"to (\d+) clients per programme", text)
    if largest:
        for p in progs:
            at.at_most([f[p][ref]], [int(largest.group(1))])
    return at, f


def test_no_hidden_cell_is_pinned_by_the_published_relations(public):
    at, f = _build_attack(public)
    assert len(at.names) >= 20, "the demo must have hidden cells for this test to mean anything"
    ranges = at.ranges()
    pinned = {name: r for name, r in ranges.items() if r[1] - r[0] < 2}
    assert not pinned, pinned
    # the model is not vacuous: the true referred counts lie in the ranges found
    h = public["h"]
    flow = _flow(public["tables"])
    names = {row["programme"] for row in flow["rows"]}
    from effectstudy.dictionary import load_dictionary

    dd = load_dictionary()
    for pid, n in h.clients.groupby("programme").size().items():
        prog = dd.programmes[pid]
        shown = prog.short_name or prog.name
        assert shown in names
        key = f"flow {shown} {flow['heads'][1]}"
        if key in ranges:
            lo, hi = ranges[key]
            assert lo <= n <= hi, (shown, n, lo, hi)


def test_the_attack_recovers_a_cell_of_a_weak_pattern():
    # positive control of the solver: a lone hidden cell in a row with a published
    # total is found exactly
    at = Attack()
    a = at.cell("<5", "a")
    b = at.cell("7", "b")
    at.equal([a, b], [10])
    assert at.ranges() == {"a": (3, 3)}


def test_hidden_cells_are_labelled_honestly(public):
    # a total of 29 must never read '<5': every '<5' cell is below the threshold in
    # truth, checked against the flow counted here from the clients
    h = public["h"]
    flow = _flow(public["tables"])
    from effectstudy.dictionary import load_dictionary

    dd = load_dictionary()
    true = {}
    for pid, g in h.clients.groupby("programme"):
        prog = dd.programmes[pid]
        ends = g["end_reason"].value_counts()
        true[prog.short_name or prog.name] = {
            flow["heads"][1]: len(g), "completed care": int(ends.get("completed", 0)),
            "absconded": int(ends.get("absconded", 0)),
            "transferred": int(ends.get("transferred", 0)),
            "unknown (not recorded)": int(ends.get("unknown", 0))}
    true["Total"] = {k: sum(v[k] for v in true.values()) for k in next(iter(true.values()))}
    checked = 0
    for row in flow["rows"]:
        for col, value in true[row["programme"]].items():
            shown = row[col]
            if shown == f"<{THRESHOLD}":
                assert value < THRESHOLD, (row["programme"], col, value)
            elif shown != "x":
                assert int(shown) == value
            checked += 1
    assert checked >= 28


# --------------------------------------------------------------------------- #
# Grep every public output for small counts
# --------------------------------------------------------------------------- #
def test_the_grep_finds_the_leaks_of_the_issue():
    # positive control: the texts the issue found in the old report are caught
    for leak in ("sample SD of intake scores (n=3)", "(n=2)", "n = 1 scores",
                 "from fewer than 5 to 3 clients per programme", "only 2 girls",
                 "maassen needs at least three clients"):
        assert small_counts(leak), leak
    assert not small_counts("alpha .63, n=1,533; n = 205 scores; 25 clients; n = 47")
    # the design term N=1 is no count; a count written the same way without it is
    assert not small_counts("N=1-resultaten; een N=1-design met herhaalde metingen")
    assert small_counts("n=1 girl") and small_counts("(N=1)") and small_counts("N=1 scores")
    assert small_counts("n=1-design") and small_counts("N=1-3 clients")


def _visible_text(html: str) -> str:
    html = re.sub(r'src="data:[^"]*"', "", html)
    html = re.sub(r"<style.*?</style>", " ", html, flags=re.S)
    return _html.unescape(re.sub(r"<[^>]+>", " ", html))


def _pdf_text(path) -> str:
    import pypdf

    return "\n".join(page.extract_text() or "" for page in pypdf.PdfReader(path).pages)


def test_no_small_count_in_any_public_output(public):
    html_text = _visible_text(public["html"])
    # the alt text of the figures is their caption; include attribute text too
    alts = " ".join(_html.unescape(a) for a in re.findall(r'alt="([^"]*)"', public["html"]))
    pdf_text = _pdf_text(public["report"].pdf_path)
    figures = public["figures"]
    assert "Sample flow" in pdf_text and len(pdf_text) > 2000
    assert any("n = " in t for t in figures), "the flow figure's annotations were not collected"
    found = {"html": small_counts(html_text), "alt": small_counts(alts),
             "pdf": small_counts(pdf_text), "figures": small_counts(" | ".join(figures))}
    assert not any(found.values()), found


def test_public_report_files_are_private(public):
    rep = public["report"]
    for path in (rep.html_path, rep.pdf_path):
        assert path.stat().st_mode & 0o777 == 0o600, path


# --------------------------------------------------------------------------- #
# The same attacks on every programme dossier (Dutch and English)
# --------------------------------------------------------------------------- #
PROGRAMMES = ("egoversterkend", "hoenderloo", "intermetzo", "pinq_crisis", "pinq_gesloten",
              "veilig_lima")


@pytest.fixture(scope="module")
def dossiers(public, build_once):
    return build_once("attack dossiers", lambda: _dossiers(public))


def _dossiers(public) -> dict:
    out = {}
    for lang in ("nl", "en"):
        for pid in PROGRAMMES:
            figure_texts: list[str] = []
            original = Section.figure

            def recording(self, fig, caption="", texts=figure_texts, original=original):
                texts.extend(t.get_text() for t in fig.findobj(Text) if t.get_text())
                return original(self, fig, caption)

            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(Section, "figure", recording)
                # PDF for the Dutch dossiers (their text is grepped too), HTML for all
                rep = build_report(public["results"], out=public["root"] / "dossiers" / lang,
                                   audience="public", programme=pid, language=lang,
                                   pdf=lang == "nl")
            html = rep.html_path.read_text(encoding="utf-8")
            out[(lang, pid)] = {"report": rep, "html": html, "figures": figure_texts,
                                "tables": _tables(html), "lang": lang}
    return out


def _caption_is(tab: dict, lang: str, key: str) -> bool:
    want = catalogue(lang)[key].split("{")[0][:40]
    return re.sub(r"^\S+ \d+\.\s*", "", tab["caption"]).startswith(want)


def _dossier_attack(d: dict) -> Attack:
    cat = catalogue(d["lang"])
    total = cat["common.total"]
    tables = d["tables"]
    at = Attack()
    (flow,) = tables["flow"]
    heads = flow["heads"]
    (row,) = flow["rows"]
    f = {h: at.cell(row[h], f"flow {h}") for h in heads[1:8]}
    ref, inc, comp, absc, trans, unk, ana = (f[h] for h in heads[1:8])
    at.equal([comp, absc, trans, unk], [ref])
    at.at_most([inc], [ref])
    at.at_most([ana], [inc])
    for tab in tables.get("change", []):
        if tab["heads"][-1] == total:  # clients per change category and construct
            cats = tab["heads"][1:-1]
            ch = {r[tab["heads"][0]]: {h: at.cell(r[h], f"change {r[tab['heads'][0]]} {h}")
                                       for h in cats + [total]} for r in tab["rows"]}
            constructs = [c for c in ch if c != total]
            for c in ch:
                at.equal([ch[c][k] for k in cats], [ch[c][total]])
            for k in cats + [total]:
                at.equal([ch[c][k] for c in constructs], [ch[total][k]])
            for c in constructs:
                at.at_most([ch[c][total]], [ana])
        elif _caption_is(tab, d["lang"], "change.norm_caption"):
            for k, r in enumerate(tab["rows"]):
                n = at.cell(r["n"], f"norm {k} n", at_least=1)
                at.at_most([n], [ana])
                for h in tab["heads"][4:6]:  # construct, measure, cut-off, n, intake, discharge
                    if r[h]:
                        at.at_most([at.cell(r[h].split(" (")[0], f"norm {k} {h}")], [n])
        elif _caption_is(tab, d["lang"], "change.prepost_caption"):
            for k, r in enumerate(tab["rows"]):
                at.at_most([at.cell(r["n"], f"prepost {k} n", at_least=1)], [ana])
    for tab in tables.get("follow_up", []):
        for k, r in enumerate(tab["rows"]):
            at.at_most([at.cell(r["n"], f"follow-up {k} n", at_least=1)], [inc])
    for tab in tables.get("single_case", []):
        if cat["col.cases"] in tab["heads"]:
            for r in tab["rows"]:
                at.at_most([at.cell(r[cat["col.cases"]], "cases", at_least=1)], [ref])
    # counts drawn in the flow figure and written in the summary
    drawn = 0
    for t in d["figures"]:
        for label, value in re.findall(r"([^\n:$]+?)(?::|\n)\s*n = (\S+)", t):
            if label.strip() in heads and re.fullmatch(r"\d+", value):
                at.equal([int(value)], [f[label.strip()]])
                drawn += 1
            elif label.strip() in heads:
                drawn += 1
    assert drawn >= 3, d["figures"]
    text = re.sub(r"\s+", " ", _html.unescape(re.sub(r"<[^>]+>", " ",
                                                      _sections(d["html"])["summary"])))
    count = r"((?:fewer than |minder dan )?\d+(?: or more| of meer)?)"
    who = re.search(count + r" (?:clients in the export, of whom|cliënten in de export, van wie) "
                    + count, text)
    assert who, text
    for value, cell in zip(who.groups(), (ref, ana), strict=True):
        if value.isdigit():
            at.equal([int(value)], [cell])
    return at


def test_no_hidden_cell_of_any_dossier_is_pinned(dossiers):
    hidden = 0
    for key, d in dossiers.items():
        at = _dossier_attack(d)
        hidden += len(at.names)
        ranges = at.ranges()
        pinned = {name: r for name, r in ranges.items() if r[1] - r[0] < 2}
        assert not pinned, (key, pinned)
    assert hidden >= 40, "the dossiers must have hidden cells for this test to mean anything"


def test_the_dossier_of_four_clients_hides_every_count(public, dossiers):
    h = public["h"]
    assert (h.clients["programme"] == "hoenderloo").sum() == 4
    for lang in ("nl", "en"):
        (flow,) = dossiers[(lang, "hoenderloo")]["tables"]["flow"]
        assert all(v == f"<{THRESHOLD}" for k, v in flow["rows"][0].items()
                   if k != flow["heads"][0])


def test_no_small_count_in_any_dossier_output(dossiers):
    checked_pdf = 0
    for key, d in dossiers.items():
        html_text = _visible_text(d["html"])
        alts = " ".join(_html.unescape(a) for a in re.findall(r'alt="([^"]*)"', d["html"]))
        found = {"html": small_counts(html_text), "alt": small_counts(alts),
                 "figures": small_counts(" | ".join(d["figures"]))}
        rep = d["report"]
        if rep.pdf_path is not None:
            pdf_text = _pdf_text(rep.pdf_path)
            assert "Samenvatting" in pdf_text and "Erkenning" in pdf_text
            found["pdf"] = small_counts(pdf_text)
            checked_pdf += 1
        assert not any(found.values()), (key, found)
        assert any("n = " in t for t in d["figures"]), key
    assert checked_pdf == len(PROGRAMMES)


def test_dossier_files_are_private(dossiers):
    for d in dossiers.values():
        rep = d["report"]
        for path in (rep.html_path, rep.pdf_path):
            if path is not None:
                assert path.stat().st_mode & 0o777 == 0o600, path
