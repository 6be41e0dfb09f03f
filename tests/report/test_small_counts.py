"""Regression tests for issue 10, items 1-4: small counts in the public report.

Each test reproduces one finding on a small hand-made table (a programme with
three girls, two occasion labels that both map to ``during``, a two-way table
whose old secondary suppression left cells pinned) and fails on the old code.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import Bounds, LinearConstraint, milp

from effectstudy import study
from effectstudy.dictionary import load_dictionary
from effectstudy.report import analyses
from effectstudy.report import suppression as sup
from effectstudy.report.analyses import (
    Context,
    descriptives,
    limitations_section,
    reliable_change_section,
)
from effectstudy.report.suppression import suppress_table
from small_counts import section_text

SECONDARY_LABEL = "x"

SMALL_N = re.compile(r"\bn\s*=\s*[0-4](?![\d]|[.,]\d)|\b[0-4] (?:clients|girls|cases)\b")


@pytest.fixture(scope="module")
def dd():
    return load_dictionary()


def _ctx(dd, table, clients, audience="public", **spec):
    base = {"title": "t", "suppression": {"threshold": 5, "suppress_zero": True},
            "change": {"pre": "intake", "post": "discharge"}}
    base.update(spec)
    # the study layer computes, the renderer lays out (exactly as build_report does)
    return Context(study.run(base, (table, clients), dictionary=dd), audience)


def _rows(programme, client, occasion, label, raw, *, instrument="HoNOSCA", scale="total",
          construct="general_functioning"):
    return dict(programme=programme, client=client, occasion=occasion, occasion_label=label,
                construct=construct, instrument=instrument, scale=scale, raw=float(raw),
                session=np.nan, week=0.0)


_texts = section_text


# --------------------------------------------------------------------------- #
# Item 1: "sample SD of intake scores (n=3)" in the table of sources
# --------------------------------------------------------------------------- #
def test_item1_sources_table_shows_no_small_client_count(dd):
    scores = [(20, 12), (14, 13), (25, 9)]
    rows = []
    for k, (pre, post) in enumerate(scores):
        rows.append(_rows("hoenderloo", f"HO-{k}", "intake", "T0", pre))
        rows.append(_rows("hoenderloo", f"HO-{k}", "discharge", "T3", post))
    table = pd.DataFrame(rows)
    clients = pd.DataFrame({"programme": "hoenderloo", "client": [f"HO-{k}" for k in range(3)]})
    for audience in ("public", "internal"):
        sec = reliable_change_section(_ctx(dd, table, clients, audience))
        text = _texts(sec)
        assert "sample SD of intake scores" in text  # the source is still named
        assert not SMALL_N.findall(text), (audience, SMALL_N.findall(text))


def test_item1_public_texts_drop_counts_written_by_older_code():
    _public_note, _public_text = analyses.public_note, analyses.public_text
    assert _public_text("sample SD of intake scores (n=3)") == "sample SD of intake scores"
    note = _public_note("no verified norm: SD taken from the sample; maassen needs at least 3 "
                        "clients: RCI not computed")
    assert "3" not in note and "no verified norm" in note
    assert not SMALL_N.search(_public_note("no usable SD (fewer than 2 clients or no spread)"))


# --------------------------------------------------------------------------- #
# Item 2: "from fewer than 5 to 3 clients per programme"
# --------------------------------------------------------------------------- #
def test_item2_limitations_never_print_a_small_largest_programme(dd):
    clients = pd.DataFrame({"programme": ["hoenderloo"] * 3 + ["intermetzo"] * 4,
                            "client": [f"c{k}" for k in range(7)]})
    sec = limitations_section(_ctx(dd, pd.DataFrame(), clients))
    text = _texts(sec)
    assert "fewer than 5 clients per programme" in text
    without_k = text.replace("2 programmes", "")
    assert not re.search(r"\b[0-4]\b", without_k), text
    assert "7" not in re.findall(r"\b\d+\b", text)  # nor the total


def test_item2_size_range_uses_only_published_numbers():
    n_by = pd.Series({"a": 3, "b": 12, "c": 25})
    names = {"a": "A", "b": "B", "c": "C"}
    flow = pd.DataFrame({"referred": ["<5", 12, 25, 40]}, index=["A", "B", "C", "Total"])
    public_size_range = analyses.public_size_range
    assert public_size_range(n_by, 5, flow, names) == (
        "from fewer than 5 to 25 clients per programme in the exports, 3 programmes")
    # the largest programme's count hidden as a partner: its size is not printed
    flow.loc["C", "referred"] = SECONDARY_LABEL
    text = public_size_range(n_by, 5, flow, names)
    assert "25" not in text and "5 or more clients" in text


# --------------------------------------------------------------------------- #
# Item 3: descriptives counted scores, not clients
# --------------------------------------------------------------------------- #
def test_item3_descriptives_count_clients_with_two_during_labels(dd):
    # three girls; T1 and T2 both map to 'during'; A and C have two scores there
    during = {"A": [10, 20], "B": [30], "C": [12, 18]}
    rows = []
    for client, values in during.items():
        rows.append(_rows("intermetzo", client, "intake", "T0", 25))
        for label, v in zip(("T1", "T2"), values, strict=False):
            rows.append(_rows("intermetzo", client, "during", label, v))
    table = pd.DataFrame(rows)
    clients = pd.DataFrame({"programme": "intermetzo", "client": list(during)})
    internal = descriptives(_ctx(dd, table, clients, "internal"))
    (tab,) = [b.content for b in internal.blocks if b.kind == "table"]
    row = tab[tab["occasion"] == "during"].iloc[0]
    # client means 15, 30, 15: mean 20, SD sqrt(75) (the five scores would give n=5, mean 18)
    assert row["n"] == 3
    assert row["mean"] == pytest.approx(20.0)
    assert row["sd"] == pytest.approx(np.sqrt(75.0), abs=0.005)
    assert any("mean of her scores" in m for m in internal.methods)
    public = descriptives(_ctx(dd, table, clients, "public"))
    (tab,) = [b.content for b in public.blocks if b.kind == "table"]
    assert set(tab["n"]) == {"<5"}
    assert set(tab["mean"]) == {""} and set(tab["sd"]) == {""}


# --------------------------------------------------------------------------- #
# Item 4: secondary suppression strong enough, honest labels
# --------------------------------------------------------------------------- #
def _attack(shown: pd.DataFrame, threshold: int = 5) -> dict:
    """Min and max of every hidden cell of a published table with margins, for a
    reader who knows '<5' is in [0, 4] and 'x' in [0, big] (own solver, not the
    package's)."""
    cells = [(r, c) for r in shown.index for c in shown.columns if isinstance(shown.loc[r, c], str)]
    idx = {cell: k for k, cell in enumerate(cells)}
    lo = [0.0] * len(cells)
    hi = [threshold - 1.0 if shown.loc[cell] == f"<{threshold}" else 1e5 for cell in cells]
    rows, rhs = [], []
    body_r = [r for r in shown.index if r != "Total"]
    body_c = [c for c in shown.columns if c != "Total"]
    lines = [[(r, c) for c in body_c] + [(r, "Total")] for r in shown.index]
    lines += [[(r, c) for r in body_r] + [("Total", c)] for c in shown.columns]
    for line in lines:
        a, const = np.zeros(len(cells)), 0.0
        for k, cell in enumerate(line):
            sign = -1.0 if k == len(line) - 1 else 1.0
            if cell in idx:
                a[idx[cell]] += sign
            else:
                const += sign * float(shown.loc[cell])
        rows.append(a)
        rhs.append(-const)
    cons = [LinearConstraint(np.array(rows), rhs, rhs)]
    out = {}
    for cell, k in idx.items():
        obj = np.zeros(len(cells))
        obj[k] = 1.0
        res = [milp(s * obj, constraints=cons, integrality=np.ones(len(cells)),
                    bounds=Bounds(lo, hi)) for s in (1.0, -1.0)]
        assert all(r.status == 0 for r in res), f"published table is inconsistent at {cell}"
        out[cell] = (round(res[0].fun), round(-res[1].fun))
    return out


def test_item4_two_hidden_cells_pinned_by_their_partner_relation():
    # The old rule saw no lone hidden cell in any row or column (the zeros form a
    # 2 x 2 block), yet row a's total 9 = 9 visible pins both zeros of row a.
    counts = pd.DataFrame([[0, 0, 9], [0, 0, 7], [6, 8, 5]], index=list("abc"),
                          columns=list("xyz"))
    shown = suppress_table(counts)
    ranges = _attack(shown)
    assert ranges
    assert all(hi - lo >= 2 for lo, hi in ranges.values()), ranges


def test_item4_partners_are_marked_x_never_below_threshold():
    # a row with one small cell: its partner (29) is hidden, and must not read '<5'
    counts = pd.DataFrame([[3, 29, 40], [12, 30, 41], [15, 33, 44]], index=list("abc"),
                          columns=list("xyz"))
    shown = suppress_table(counts)
    assert shown.loc["a", "x"] == "<5"
    for r in shown.index:
        for c in shown.columns:
            v = shown.loc[r, c]
            full = (counts.sum(axis=1)[r] if c == "Total" and r != "Total" else
                    counts.sum(axis=0)[c] if r == "Total" and c != "Total" else
                    counts.to_numpy().sum() if r == c == "Total" else counts.loc[r, c])
            if v == "<5":
                assert full < 5, (r, c, full)
            elif v == SECONDARY_LABEL:
                assert full >= 5
            else:
                assert v == full
    assert (shown == SECONDARY_LABEL).to_numpy().sum() >= 1
    assert all(hi - lo >= 2 for lo, hi in _attack(shown).values())


def test_item4_random_tables_survive_the_attack():
    rng = np.random.default_rng(10)
    for _ in range(25):
        shape = (int(rng.integers(2, 6)), int(rng.integers(2, 5)))
        counts = pd.DataFrame(rng.choice([0, 1, 2, 3, 6, 9, 14, 29], size=shape))
        shown = suppress_table(counts)
        for (r, c), (lo, hi) in _attack(shown).items():
            assert hi - lo >= 2, (counts, shown, (r, c), (lo, hi))


def test_protect_reports_primary_and_secondary_separately():
    values = {"a": 3.0, "b": 7.0, "t": 10.0}
    res = sup.protect(values, [(["a", "b"], "t")])
    assert res.primary == {"a"}
    assert res.secondary  # a alone in a relation with a published total needs company
    assert res.label("a", 5) == "<5" and res.label(next(iter(res.secondary)), 5) == "x"


def test_public_model_messages_carry_no_small_group_count():
    msg = ("random effects of client (3 levels) are estimated from very few groups; "
           "programme (6 levels) fine; sample SD (n=2)")
    out = analyses.public_message(msg, 5)
    assert "(3 levels)" not in out and "few levels" in out and "(6 levels)" in out
    assert not SMALL_N.search(out)
