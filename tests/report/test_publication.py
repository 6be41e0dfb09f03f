"""One suppression pattern for linked public tables (report + dossiers).

The attack here is written independently of :mod:`effectstudy.report.suppression`:
every published relation becomes a row of an integer program (scipy ``milp``) and
each hidden cell is minimised and maximised.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy.optimize import Bounds, LinearConstraint, milp

from effectstudy.report.publication import ALL, CATEGORIES, publication_plan
from effectstudy.report.suppression import protect, suppress_table

THRESHOLD = 5


def _ranges(known: dict, hidden: dict, equalities: list, inequalities: list = ()) -> dict:
    """Feasible integer range of every hidden cell.

    ``known``: cell -> published value; ``hidden``: cell -> (low, high) as the
    reader knows it from its label; ``equalities``: lists of (coef, cell) summing to
    0; ``inequalities``: lists of (coef, cell) summing to at most 0.
    """
    names = sorted(hidden, key=str)
    ix = {c: k for k, c in enumerate(names)}
    rows, lo, hi = [], [], []
    for terms, upper_only in [(e, False) for e in equalities] + [(e, True) for e in inequalities]:
        row, const = np.zeros(len(names)), 0.0
        for a, c in terms:
            if c in ix:
                row[ix[c]] += a
            else:
                const += a * known[c]
        if row.any():
            rows.append(row)
            lo.append(-np.inf if upper_only else -const)
            hi.append(-const)
    cons = [LinearConstraint(np.array(rows), lo, hi)] if rows else []
    bounds = Bounds([hidden[c][0] for c in names], [hidden[c][1] for c in names])
    out = {}
    for c in names:
        obj = np.zeros(len(names))
        obj[ix[c]] = 1
        a = milp(obj, constraints=cons, integrality=np.ones(len(names)), bounds=bounds)
        b = milp(-obj, constraints=cons, integrality=np.ones(len(names)), bounds=bounds)
        assert a.status == 0
        out[c] = (round(a.fun), round(-b.fun) if b.status == 0 else np.inf)
    return out


def _reader_view(cells: dict, shown: dict) -> tuple[dict, dict]:
    known, hidden = {}, {}
    for c in cells:
        s = shown[c]
        if s == f"<{THRESHOLD}":
            hidden[c] = (0, THRESHOLD - 1)
        elif s == "x":
            hidden[c] = (0, 10_000)
        else:
            known[c] = int(s)
    return known, hidden


def _cube() -> dict:
    """Two programmes x two constructs x two categories, with every margin."""
    inner = {("A", "c1", "k1"): 6, ("A", "c1", "k2"): 6, ("A", "c2", "k1"): 9, ("A", "c2", "k2"): 12,
             ("B", "c1", "k1"): 0, ("B", "c1", "k2"): 1, ("B", "c2", "k1"): 10, ("B", "c2", "k2"): 12}
    cube = dict(inner)
    for p, c, k in itertools.product(["A", "B", ALL], ["c1", "c2", ALL], ["k1", "k2", ALL]):
        if (p, c, k) not in cube:
            cube[(p, c, k)] = sum(v for (p2, c2, k2), v in inner.items()
                                  if p in (p2, ALL) and c in (c2, ALL) and k in (k2, ALL))
    return cube


def _cube_relations(cube: dict) -> list:
    eqs = []
    for p, c in itertools.product(["A", "B", ALL], ["c1", "c2", ALL]):
        eqs.append([(1, (p, c, k)) for k in ("k1", "k2")] + [(-1, (p, c, ALL))])
    for p, k in itertools.product(["A", "B", ALL], ["k1", "k2", ALL]):
        eqs.append([(1, (p, c, k)) for c in ("c1", "c2")] + [(-1, (p, ALL, k))])
    for c, k in itertools.product(["c1", "c2", ALL], ["k1", "k2", ALL]):
        eqs.append([(1, ("A", c, k)), (1, ("B", c, k)), (-1, (ALL, c, k))])
    return eqs


def _layer_table(cube: dict, p: str) -> pd.DataFrame:
    return pd.DataFrame([[cube[(p, c, k)] for k in ("k1", "k2")] for c in ("c1", "c2")],
                        index=["c1", "c2"], columns=["k1", "k2"])


def test_layers_suppressed_one_by_one_leak_when_read_together():
    # positive control of the attack: each layer is safe alone, the three together are not
    cube = _cube()
    shown = {}
    for p in ("A", "B", ALL):
        table = suppress_table(_layer_table(cube, p), threshold=THRESHOLD)
        for c, k in itertools.product(["c1", "c2", "Total"], ["k1", "k2", "Total"]):
            shown[(p, ALL if c == "Total" else c, ALL if k == "Total" else k)] = \
                table.loc[c, k]
    known, hidden = _reader_view(cube, shown)
    assert hidden, "the layers hide something"
    for p in ("A", "B", ALL):  # each layer alone: no hidden cell pinned
        layer = {c: v for c, v in cube.items() if c[0] == p}
        k_, h_ = _reader_view(layer, shown)
        eqs = [e for e in _cube_relations(cube) if all(c[0] == p for _, c in e)]
        assert all(hi - lo >= 2 for lo, hi in _ranges(k_, h_, eqs).values())
    together = _ranges(known, hidden, _cube_relations(cube))
    assert any(hi - lo < 2 for lo, hi in together.values()), together


def test_one_pattern_over_the_cube_pins_no_hidden_cell():
    cube = _cube()
    eqs = _cube_relations(cube)
    lines = [([c for a, c in e if a == 1], next(c for a, c in e if a == -1)) for e in eqs]
    sup = protect({c: float(v) for c, v in cube.items()}, lines, threshold=THRESHOLD)
    shown = {c: sup.label(c, THRESHOLD) or v for c, v in cube.items()}
    known, hidden = _reader_view(cube, shown)
    assert ("B", "c1", "k1") in hidden and ("B", "c1", "k2") in hidden
    ranges = _ranges(known, hidden, eqs)
    assert all(hi - lo >= 2 for lo, hi in ranges.values()), ranges
    for c, (lo, hi) in ranges.items():  # not vacuous: the truth is feasible
        assert lo <= cube[c] <= hi


def test_fixed_cells_are_never_partners_but_enter_every_relation():
    # a and b add up to the total; n (printed by a table with the primary rule only)
    # equals b. b must not be the partner of a: it is printed as n already.
    values = {"a": 3.0, "b": 9.0, "c": 8.0, "total": 20.0, "n": 9.0}
    lines = [(["a", "b", "c"], "total"), (["n"], "b")]
    sup = protect(values, lines, threshold=THRESHOLD, fixed={"n"})
    assert "a" in sup.primary
    assert "n" not in sup.hidden and "b" not in sup.secondary
    assert "c" in sup.secondary or "total" in sup.secondary
    shown = {k: sup.label(k, THRESHOLD) or int(v) for k, v in values.items()}
    known, hidden = _reader_view(values, shown)
    ranges = _ranges(known, hidden, [[(1, "a"), (1, "b"), (1, "c"), (-1, "total")],
                                     [(1, "n"), (-1, "b")]])
    assert all(hi - lo >= 2 for lo, hi in ranges.values()), ranges


def test_a_pinned_cell_with_only_hidden_neighbours_gets_a_partner_further_out():
    # x is pinned through two hidden margins; the partner must come from the ring
    # beyond them, not from an unrelated cell
    values = {"x": 2.0, "y": 1.0, "m": 3.0, "z": 7.0, "w": 6.0, "t": 16.0, "other": 5.0,
              "other2": 6.0, "ot": 11.0}
    lines = [(["x", "y"], "m"), (["m", "z", "w"], "t"), (["other", "other2"], "ot")]
    sup = protect(values, lines, threshold=THRESHOLD)
    assert not ({"other", "other2", "ot"} & sup.hidden)
    assert {"x", "y", "m"} <= sup.hidden


# ``demo_results``: the shared demo study (tests/conftest.py)
def test_the_plan_is_one_pattern_for_every_document(demo_results):
    plan = publication_plan(demo_results)
    assert publication_plan(demo_results) is plan  # solved once per results
    flow = demo_results.frame("flow")
    # the Total row of the flow is the sum of the programmes' rows, hidden or not
    for col in ("referred", "analysed"):
        assert plan.values[("flow", ALL, col)] == int(flow[col].sum())
    # the cube's layers add up, and labels are honest
    for key, value in plan.values.items():
        shown = plan.shown(key)
        if shown == f"<{THRESHOLD}":
            assert value < THRESHOLD
        elif shown != "x":
            assert shown == value >= THRESHOLD, (key, shown, value)
    for k in CATEGORIES:
        layers = [v for (kind, p, c, k2), v in
                  ((key, v) for key, v in plan.values.items() if key[0] == "change")
                  if p != ALL and c == ALL and k2 == k]
        assert plan.values[("change", ALL, ALL, k)] == sum(layers)


def test_cells_hidden_from_the_start_are_partners_and_the_audit_still_holds():
    # the caller's own rule hides b (e.g. an at-risk count too close to the one before);
    # b is marked 'x', and the audit still protects the primary cell a
    values = {"a": 2.0, "b": 9.0, "c": 8.0, "total": 19.0}
    sup = protect(values, [(["a", "b", "c"], "total")], threshold=THRESHOLD, hide={"b"})
    assert "b" in sup.secondary and "a" in sup.primary
    shown = {k: sup.label(k, THRESHOLD) or int(v) for k, v in values.items()}
    known, hidden = _reader_view(values, shown)
    ranges = _ranges(known, hidden, [[(1, "a"), (1, "b"), (1, "c"), (-1, "total")]])
    assert all(hi - lo >= 2 for lo, hi in ranges.values()), ranges
