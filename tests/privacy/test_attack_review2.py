"""Review attack on the public documents after the suppression and curve changes.

The attacker reads the demo's public cross-programme report and the public dossiers
(English and Dutch) and looks for what the one publication plan
(:mod:`effectstudy.report.publication`) and the coarse public curves
(:func:`effectstudy.report.dropout._public_steps`) may have left open:

* a row whose ``n`` (or single-case ``cases``) is hidden but whose statistics are
  still printed (a mean with an SD and a CI, or a share, would give the ``n`` back);
* the drawn Kaplan-Meier curve and the drawn cumulative incidence of absconding read
  together: both start from the printed referred count and step at the same event,
  and their difference is made only by the girls whose care ended otherwise
  (completion, transfer) before that event (Kaplan & Meier 1958; Aalen & Johansen
  1978). Every history of first abscondings and other ends that reproduces both drawn
  values (to their two printed decimals) is enumerated;
* the at-risk table under the curves: ``referred - at_risk(w)`` girls left before week
  ``w``, and every step drawn before ``w`` stands for at least the threshold of them;
* a printed randomization p-value next to hidden single-case cases: an exact test
  over ``N`` possible assignments cannot give a p below ``1/N`` (Edgington 1975), and
  ``N`` is at most the number of possible start points per case to the power of the
  number of cases, so a small p-value bounds the number of cases from below.

A count pinned to fewer than three values (the criterion of
``test_attack_publication``) is a leak; each attack has a positive control. The review
found two, both fixed: the two curves together (the public documents now draw the
survival curve only) and the at-risk table minus the drawn steps (steps are thinned
until no printed count pins the other ends, :func:`effectstudy.report.dropout._thinned`).
"""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import pytest
from test_attack_publication import _build_documents  # noqa: I001
from test_attack_report import (
    PROGRAMMES,
    THRESHOLD,
    _flow,
    dossiers,  # noqa: F401  (fixture)
    public,  # noqa: F401  (fixture)
)

from effectstudy import study
from effectstudy.report.i18n import catalogue


class Leak(AssertionError):
    """The attack pinned a count that the public documents should have kept hidden."""


def _no_leak(found, *context) -> None:
    if found:
        raise Leak(*context, found)


def _pinned(values: set[int]) -> bool:
    """Fewer than three possible values (the range criterion of the joint attack)."""
    return bool(values) and max(values) - min(values) < 2


@pytest.fixture(scope="module")
def drawn(public, build_once, tmp_path_factory):  # noqa: F811
    """The public report and PINQ-crisis dossier (English and Dutch) with the lines drawn."""
    return build_once("review2 drawn", lambda: _build_documents(
        public["results"], tmp_path_factory.mktemp("review2"), languages=("en", "nl"),
        programmes=(None, "pinq_crisis")))


# --------------------------------------------------------------------------- #
# 1. Statistics printed next to a hidden n
# --------------------------------------------------------------------------- #
#: Count columns (the n of a row, the single-case cases).
def _count_heads(lang: str) -> set[str]:
    return {"n", catalogue(lang)["col.cases"]}


def _label_heads(lang: str) -> set[str]:
    """Columns that name a row (no statistic of it); observed and p of the single-case
    test are kept by design next to hidden cases and attacked in section 3."""
    cat = catalogue(lang)
    keys = ("programme", "construct", "measure", "occasion", "statistic", "cutoff_kind",
            "observed", "p_value")
    return {cat[f"col.{k}"] for k in keys} | {"programme", "construct", "measure", "occasion"}


def _statistics_next_to_hidden_counts(table: dict, lang: str, threshold: int) -> list:
    """``(count column, mark, column, value)`` for every statistic printed in a row whose
    count is shown as ``<threshold`` or ``x``."""
    counts = [h for h in table["heads"] if h in _count_heads(lang)]
    out = []
    for row in table["rows"]:
        for c in counts:
            if row[c].strip() not in (f"<{threshold}", "x"):
                continue
            for h, v in row.items():
                if h in counts or h in _label_heads(lang) or not v.strip():
                    continue
                out.append((c, row[c], h, v))
    return out


def test_positive_control_a_statistic_next_to_a_hidden_n_is_found():
    table = {"heads": ["measure", "n", "mean", "SD"],
             "rows": [{"measure": "YSR 1", "n": "x", "mean": "3.20", "SD": ""},
                      {"measure": "YSR 2", "n": "7", "mean": "3.20", "SD": "1.10"},
                      {"measure": "YSR 3", "n": "<5", "mean": "", "SD": ""}]}
    assert _statistics_next_to_hidden_counts(table, "en", 5) == [("n", "x", "mean", "3.20")]
    dutch = {"heads": ["meetinstrument", "casussen", "mogelijke toewijzingen"],
             "rows": [{"meetinstrument": "SUD", "casussen": "<5",
                       "mogelijke toewijzingen": "3.724"}]}
    assert _statistics_next_to_hidden_counts(dutch, "nl", 5) == [
        ("casussen", "<5", "mogelijke toewijzingen", "3.724")]


def test_no_statistic_is_printed_next_to_a_hidden_count(public, dossiers):  # noqa: F811
    found, hidden_rows = [], 0
    docs = [("en", "report", public)] + [(lang, pid, d) for (lang, pid), d in dossiers.items()]
    for lang, name, doc in docs:
        for sid, tables in doc["tables"].items():
            for tab in tables:
                counts = [h for h in tab["heads"] if h in _count_heads(lang)]
                hidden_rows += sum(r[c].strip() in (f"<{THRESHOLD}", "x")
                                   for r in tab["rows"] for c in counts)
                for hit in _statistics_next_to_hidden_counts(tab, lang, THRESHOLD):
                    found.append((lang, name, sid, *hit))
    # descriptives, norm view, pre-post, follow-up and single-case rows with hidden
    # counts exist in the demo (Hoenderloo alone has dozens)
    assert hidden_rows >= 50, hidden_rows
    _no_leak(found, "statistics printed next to a hidden count")


# --------------------------------------------------------------------------- #
# 2. Kaplan-Meier and cumulative incidence read together
# --------------------------------------------------------------------------- #
def histories(referred: int, survival: float, incidence: float, threshold: int,
              *, decimals: int = 2) -> set[tuple[int, int]]:
    """Histories that reproduce one drawn step of both curves.

    Parameters
    ----------
    referred
        Girls at risk at week 0 (the printed referred count of the programme).
    survival, incidence
        The drawn Kaplan-Meier value and the drawn cumulative incidence of absconding at
        the curves' first step (as printed: rounded to ``decimals``).
    threshold
        A drawn step groups at least this many events (the public curve rule).

    Returns
    -------
    set of (int, int)
        ``(events, other ends)``: first abscondings up to and including the event the
        step is drawn at, and girls whose care ended otherwise before it, for every
        order of the two kinds of ends that gives both drawn values.

    Notes
    -----
    One girl leaves the risk set at a time. An event among ``n`` at risk multiplies
    the product-limit survival by ``1 - 1/n`` (Kaplan & Meier 1958) and adds
    ``S_all(t-)/n`` to the Aalen-Johansen incidence, ``S_all`` being the survival from
    any end (Aalen & Johansen 1978); another end multiplies ``S_all`` only. The model
    is looser than the rule the curves are drawn by (no bound on the events before the
    step, no bound on the risk set), so a history it rules out is impossible.
    """
    tol = 0.5 * 10 ** -decimals + 1e-9
    found: set[tuple[int, int]] = set()
    states = {(0, 0, 1.0, 1.0, 0.0)}
    while states:
        nxt = set()
        for events, ends, s, s_all, inc in states:
            n = referred - events - ends
            if n <= 0:
                continue
            s2, a2, i2 = s * (1 - 1 / n), s_all * (1 - 1 / n), inc + s_all / n
            if events + 1 >= threshold and round(s2, decimals) == survival \
                    and round(i2, decimals) == incidence:
                found.add((events + 1, ends))
            # both curves are monotone: a history already past a drawn value is dropped
            if s2 >= survival - tol and i2 <= incidence + tol:
                nxt.add((events + 1, ends, round(s2, 12), round(a2, 12), round(i2, 12)))
            a3 = s_all * (1 - 1 / n)
            if s >= survival - tol:
                nxt.add((events, ends + 1, s, round(a3, 12), inc))
        states = nxt
    return found


def test_positive_control_both_curves_pin_the_other_ends():
    # 10 girls: two abscond, one completes care, three abscond; both curves drawn at
    # the fifth event. The exact history is the only one left at four decimals ...
    s, s_all, inc, n = 1.0, 1.0, 0.0, 10
    for kind in "EECEEE":
        if kind == "E":
            inc += s_all / n
            s *= 1 - 1 / n
        s_all *= 1 - 1 / n
        n -= 1
    assert histories(10, round(s, 4), round(inc, 4), 5, decimals=4) == {(5, 1)}
    # ... and without any other end, 1 - S equals the incidence: no end is hidden
    assert histories(10, 0.5, 0.5, 5) == {(5, 0)}
    # not every pair of values pins the ends: 25 girls, steps at 0.80 and 0.20 allow
    # 0, 1 or 2 other ends
    assert {c for _, c in histories(25, 0.8, 0.2, 5)} == {0, 1, 2}


def _first_steps(doc: dict) -> dict[str, tuple[float, float]]:
    """Per programme label: the first drawn step of the Kaplan-Meier curve and of the
    cumulative incidence (the two figures whose lines start at 1 and at 0)."""
    km = [ls for ls in doc["curves"] if ls and all(ln[2][0] == 1.0 for ln in ls)]
    assert km, "the survival figure was not read"
    labels = [ln[0] for ln in km[0]]
    cif = [ls for ls in doc["curves"] if [ln[0] for ln in ls] == labels
           and all(ln[2][0] == 0.0 for ln in ls)]
    assert cif, "the incidence figure was not read"
    inc = {label: (x, y) for label, x, y in cif[0]}
    out = {}
    for label, x, y in km[0]:
        if len(y) < 2 or label not in inc or len(inc[label][1]) < 2:
            continue
        assert x[1] == inc[label][0][1], (label, x, inc[label][0])  # the same step
        out[label] = (float(y[1]), float(inc[label][1][1]))
    return out


def _other_ends_pinned(doc: dict, threshold: int) -> tuple[list, int]:
    referred = {r[_flow(doc["tables"])["heads"][0]]: r[_flow(doc["tables"])["heads"][1]]
                for r in _flow(doc["tables"])["rows"]}
    found, read = [], 0
    for label, (s, inc) in _first_steps(doc).items():
        if not referred.get(label, "").isdigit():
            continue
        read += 1
        h = histories(int(referred[label]), s, inc, threshold)
        ends = {c for _, c in h}
        assert h, (label, s, inc)  # the truth is one of them: no history means a misread
        if _pinned(ends) and min(ends) < threshold:
            found.append((label, f"referred {referred[label]}", f"S={s}", f"CIF={inc}",
                          f"other ends before the step's event: {sorted(ends)}"))
    return found, read


def test_survival_and_incidence_together_give_no_small_count(drawn):
    """1 - S and the incidence differ only by the girls whose care ended otherwise
    (PINQ-crisis, 12 referred, first steps S=0.56 and CIF=0.42: 1 or 2 of them). The
    public documents therefore draw the survival curve only; where both were drawn the
    attack below runs on them."""
    found, read = [], 0
    for key, doc in drawn.items():
        km = [ls for ls in doc["curves"] if ls and all(ln[2][0] == 1.0 for ln in ls)]
        assert km, ("the survival figure was not read", key)
        if not _incidence_figures(doc):
            continue
        f, r = _other_ends_pinned(doc, THRESHOLD)
        found += [(key, *x) for x in f]
        read += r
    assert read == 0, "a public document draws both curves"
    _no_leak(found)


def _incidence_figures(doc: dict) -> list:
    """The figures with the survival figure's programme lines, every one starting at 0
    (cumulative incidence)."""
    km = [ls for ls in doc["curves"] if ls and all(ln[2][0] == 1.0 for ln in ls)]
    labels = [ln[0] for ln in km[0]] if km else []
    return [ls for ls in doc["curves"] if ls and [ln[0] for ln in ls] == labels
            and all(ln[2][0] == 0.0 for ln in ls)]


def test_the_truth_lies_among_the_histories(public, drawn):  # noqa: F811
    # not vacuous: the saved curves' own history at the first drawn step is found
    from effectstudy.report.dropout import _public_steps

    res = public["results"]
    km, cif = res.frame("dropout_km"), res.frame("dropout_cif")
    checked = 0
    for pid in ("egoversterkend", "pinq_crisis", "pinq_gesloten"):
        g = km[km["programme"] == pid].sort_values("time")
        steps = _public_steps(g, "survival", THRESHOLD)
        gi = cif[cif["programme"] == pid].sort_values("time")
        inc = _public_steps(gi, "cif", THRESHOLD)
        t1 = float(steps["time"].iloc[0])
        upto = g[(g["time"] <= t1) & (g["n_risk"] >= THRESHOLD)]
        # the step is drawn at the event that made the pending events reach the
        # threshold: ends at that very time come after it
        pending, last = 0, None
        for time, ev in zip(upto["time"], upto["n_event"], strict=True):
            pending += int(ev)
            if pending >= THRESHOLD:
                last = time
                break
        before = g[g["time"] <= last]
        events = int(before["n_event"].sum())
        ends = int(before.loc[before["time"] < last, "n_censor"].sum())
        referred = int((public["h"].clients["programme"] == pid).sum())
        found = histories(referred, float(steps["survival"].iloc[0]),
                          float(inc["cif"].iloc[0]), THRESHOLD)
        assert (events, ends) in found, (pid, events, ends, sorted(found))
        checked += 1
    assert checked == 3


# --------------------------------------------------------------------------- #
# 3. Randomization p-value next to hidden single-case cases
# --------------------------------------------------------------------------- #
def cases_range(p_text: str, mark: str, *, max_weeks: int, min_phase: int,
                threshold: int) -> set[int]:
    """Numbers of cases still possible after a printed p-value.

    An exact randomization test over ``N`` assignments gives ``p >= 1/N`` (the
    observed assignment is one of them; Edgington 1975), so a printed p (rounded to its
    printed decimals) gives ``N >= 1 / (p + half a unit)``. A series of at most
    ``max_weeks`` weekly measurements with phases of at least ``min_phase`` sessions
    has at most ``max_weeks - 2 min_phase + 1`` start points, and a multiple-baseline
    design at most that many to the power of its cases (staggering only removes
    assignments; Koehler & Levin 1998). A ``<threshold`` mark allows 1 to
    ``threshold - 1`` cases.
    """
    assert mark == f"<{threshold}", mark
    possible = set(range(1, threshold))
    text = p_text.strip().replace(",", ".")
    if re.fullmatch(r"<\s*\d*\.\d+", text):  # 'p < 0.05': p >= 1/N still gives N > 1/0.05
        n_min = 1 / float(text.lstrip("<").strip())
        starts = max(1, max_weeks - 2 * min_phase + 1)
        return {c for c in possible if starts ** c > n_min}
    if not re.fullmatch(r"\d*\.\d+", text):
        return possible  # no p printed: no bound
    half = 0.5 * 10 ** -len(text.split(".")[1])
    n_min = 1 / (float(text) + half)
    starts = max(1, max_weeks - 2 * min_phase + 1)
    return {c for c in possible if starts ** c >= n_min}


def test_positive_control_a_small_p_pins_the_cases():
    # p = 0.0002 of series of at most 20 weeks (at most 15 start points): at least
    # 4,762 assignments, so 4 cases (15 ** 3 = 3,375 is too few)
    assert cases_range("0.0002", "<5", max_weeks=20, min_phase=3, threshold=5) == {4}
    # a bound is a bound too: p < 0.001 and p >= 1/N give N > 1,000 (15 ** 2 = 225)
    assert cases_range("<0.001", "<5", max_weeks=20, min_phase=3, threshold=5) == {3, 4}
    assert cases_range("0.0234", "<5", max_weeks=39, min_phase=3, threshold=5) == {2, 3, 4}
    # p < 0.05 of 9-week series (4 start points): 4 ** c > 20
    assert cases_range("< 0.05", "<5", max_weeks=9, min_phase=3, threshold=5) == {3, 4}
    assert cases_range("", "<5", max_weeks=9, min_phase=3, threshold=5) == {1, 2, 3, 4}


def _max_weeks(doc: dict) -> dict[str, int]:
    """Documented maximum length of care per programme (the slopes' characteristics)."""
    out = {}
    for tab in doc["tables"].get("slopes", []):
        if "max weeks" in tab["heads"]:
            for r in tab["rows"]:
                if r["max weeks"].isdigit():
                    out[r["programme"]] = int(r["max weeks"])
    return out


def test_randomization_p_values_do_not_pin_hidden_cases(public, dossiers):  # noqa: F811
    weeks = _max_weeks(public)
    assert weeks, "the programme characteristics were not read"
    # a programme without a documented maximum: the attacker assumes the longest one
    longest = max(weeks.values())
    min_phase = study.DEMO_SPEC["single_case"]["randomization"]["min_phase_length"]
    found, hidden = [], 0
    docs = [("report", public)] + [(pid, dossiers[("en", pid)]) for pid in PROGRAMMES]
    for name, doc in docs:
        for tab in doc["tables"].get("single_case", []):
            if "cases" not in tab["heads"] or "p" not in tab["heads"]:
                continue
            for r in tab["rows"]:
                if r["cases"] != f"<{THRESHOLD}":
                    continue
                hidden += 1
                assert r["p"] == "", "a p-value printed next to hidden cases"
                possible = cases_range(r["p"], r["cases"],
                                       max_weeks=weeks.get(r["programme"], longest),
                                       min_phase=min_phase, threshold=THRESHOLD)
                if _pinned(possible):
                    found.append((name, r["programme"], r["p"], sorted(possible)))
    assert hidden >= 2, "no hidden single-case cases next to a p-value: nothing attacked"
    _no_leak(found, "cases bounded by the smallest attainable p-value")


# --------------------------------------------------------------------------- #
# 2b. The at-risk table minus the events a drawn step stands for
# --------------------------------------------------------------------------- #
def at_risk_slack(referred: int, at_risk: dict[int, int], step_weeks: list[float],
                  threshold: int) -> dict[int, int]:
    """Per printed at-risk week ``w``: how many girls, at most, left the risk set before
    ``w`` beyond the events the drawn steps stand for.

    ``referred - at_risk[w]`` girls left before week ``w`` (first absconding or another
    end of care). Each step drawn before ``w`` (drawn at the whole week after its event,
    so its events are before ``w``) stands for at least ``threshold`` first abscondings
    (the public curve rule), so the other ends and the further events before ``w``
    add up to at most ``referred - at_risk[w] - threshold * steps``, and at least 0.
    A slack below 2 pins that count (and the events) to fewer than three values.
    """
    out = {}
    for w, n in sorted(at_risk.items()):
        steps = sum(1 for t in step_weeks if t < w)
        if steps:
            out[w] = referred - n - threshold * steps
    return out


def test_positive_control_a_step_and_an_at_risk_count_pin_the_other_ends():
    # 25 referred, a step before week 16, 20 at risk at week 16: nobody else left
    assert at_risk_slack(25, {8: 22, 16: 20}, [13.0], 5) == {16: 0}
    # a step drawn at week 16 itself says nothing about the girls at risk at week 16
    assert at_risk_slack(25, {16: 20}, [16.0], 5) == {}
    assert at_risk_slack(16, {16: 8}, [14.0], 5) == {16: 3}


def test_at_risk_counts_minus_drawn_steps_give_no_small_count(drawn):
    found, read = [], 0
    for key in (("en", None), ("nl", None), ("en", "pinq_crisis")):
        doc = drawn[key]
        flow = _flow(doc["tables"])
        referred = {r[flow["heads"][0]]: r[flow["heads"][1]] for r in flow["rows"]}
        km = [ls for ls in doc["curves"] if ls and all(ln[2][0] == 1.0 for ln in ls)][0]
        steps = {label: [float(t) for t in x[1:]] for label, x, _ in km}
        tabs = [t for t in doc["tables"].get("dropout", [])
                if all(re.fullmatch(r"\D+ \d+", h) for h in t["heads"][1:])
                and len(t["heads"]) > 1 and t["rows"] and t["rows"][0][t["heads"][1]]]
        assert tabs, ("the at-risk table was not read", key)
        for r in tabs[0]["rows"]:
            label = r[tabs[0]["heads"][0]]
            if label not in steps or not referred.get(label, "").isdigit():
                continue
            printed = {int(h.split()[-1]): int(v) for h, v in r.items()
                       if h != tabs[0]["heads"][0] and v.isdigit()}
            read += 1
            for w, slack in at_risk_slack(int(referred[label]), printed, steps[label],
                                          THRESHOLD).items():
                assert slack >= 0, (key, label, w, slack)  # else the model is wrong
                if slack < 2:
                    found.append((key, label, f"week {w}", f"slack {slack}"))
    assert read >= 5, read
    _no_leak(found)
