"""One suppression pattern for everything published together.

The cross-programme report and the six programme dossiers are public documents
that a reader can lay side by side. Each document protected on its own is not
enough: a dossier's change-category counts add up, over the six dossiers, to the
cross-programme report's counts, and a dossier's assessed clients are at most its
analysed clients in the report's flow table. Solved together, such relations can
narrow a cell that every document hides on its own.

So the public counts of all documents are suppressed once, as one publication
(Hundepool A. et al. (2012). *Statistical Disclosure Control*. Wiley, chapter 5,
on linked tables: cells shared by several tables, or related across them, must be
protected with one pattern for all of them). The cells are

* the sample flow: programme (and Total) x referred, included, end of care,
  analysed; end reasons add up to referred, columns to the Total row,
  analysed <= included <= referred;
* the reliable-change counts as a cube: programme (and all programmes) x
  construct (and Total) x category (and Total), every margin an additive
  relation: the report publishes the all-programmes layer, each dossier its own
  programme's layer, and the layers add up;
* the at-risk counts of the dropout section at the landmark weeks of every
  document (falling over the weeks, at most the programme's referred clients);
* and, as *fixed* cells (printed beside statistics, so chosen as partners only as a
  last resort, but in every relation): the descriptives' n per
  occasion, the norm-referenced view's n and clinical counts, the pre-post n, the
  follow-up n and the single-case cases, each bounded by the flow count it cannot
  exceed; a construct's assessed clients are at most its measures' clients at
  each occasion, and equal to its one measure's pre-post n when the data say so.

:func:`publication_plan` solves the pattern with
:func:`~effectstudy.report.suppression.protect` (integer-programming audit: no
hidden cell keeps a feasible range narrower than 2 given every relation above)
and every public document renders its counts with :meth:`PublicationPlan.shown`,
the fixed ones too: they are partners of last resort, and a document leaves out
the statistics of a row whose ``n`` is hidden. When even hiding every related
count leaves a cell pinned (a small threshold, or zeros shown, can do that: a
``<3`` next to an ``x`` of at least 3, or four ``<5`` of at least 1 adding up to a
printed 5), no public document is written: :class:`~effectstudy.errors.DataError`
names the rule and the cells.
The plan depends only on the saved numbers and the spec's suppression rule, never
on the language or the order the documents are written in.
"""

from __future__ import annotations

import weakref
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from effectstudy.errors import DataError
from effectstudy.report.suppression import Suppression, protect

#: Stands for "all programmes", "all constructs" or "all categories" in a cell key.
ALL = "*"
#: Reliable-change categories in report order (as :mod:`effectstudy.change` names them).
CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated")
#: The flow columns; end of care is completed, absconded, transferred or unknown.
FLOW_COLUMNS = ("referred", "included", "completed", "absconded", "transferred", "unknown",
                "analysed")
_ENDS = ("completed", "absconded", "transferred", "unknown")


def landmark_weeks(max_time: float) -> list[int]:
    """Landmark weeks of an at-risk table: a round step, at most eight columns."""
    for step in (4, 8, 13, 26, 52):
        if max_time / step <= 8:
            break
    return [step * i for i in range(0, int(max_time // step) + 1)]


def at_risk(curve: pd.DataFrame, week: float) -> int:
    """Number still at risk at ``week`` from a saved Kaplan-Meier curve."""
    later = curve[curve["time"] >= week]
    return int(later["n_risk"].iloc[0]) if len(later) else 0


@dataclass(frozen=True)
class PublicationPlan:
    """The public counts of every document and which of them are hidden.

    ``values`` maps a cell key to its true count (keys: ``("flow", programme,
    column)``, ``("change", programme, construct, category)``, ``("at_risk",
    programme, week)``, ``("descriptives", programme, instrument, scale,
    occasion)``, ``("norm", programme, instrument, scale, column)``, ``("prepost",
    programme, instrument, scale)``, ``("follow_up", programme, instrument, scale,
    occasion)``, ``("cases", programme)``; :data:`ALL` for a margin).
    """

    values: dict[Hashable, int]
    suppression: Suppression
    threshold: int
    landmarks: dict[str, tuple[int, ...]]

    def hidden(self, cell: Hashable) -> bool:
        return cell in self.suppression.hidden

    def shown(self, cell: Hashable) -> int | str:
        """What a public document prints for ``cell``: its count, ``<5`` or ``x``."""
        if cell not in self.values:
            raise KeyError(f"{cell!r} is not a cell of the publication")
        mark = self.suppression.label(cell, self.threshold)
        return mark if mark is not None else int(self.values[cell])

    def weeks(self, programme: str | None) -> list[int]:
        """The landmark weeks of the at-risk table in one document (None: the report)."""
        return list(self.landmarks.get(ALL if programme is None else programme, ()))


#: Plans by ``id`` of their results, with a weak reference that proves the id is not reused
#: (results are unhashable dataclasses, so a WeakKeyDictionary cannot hold them).
_CACHE: dict[int, tuple[weakref.ref, PublicationPlan]] = {}


def publication_plan(results: Any) -> PublicationPlan:
    """The one suppression pattern of the public report and every public dossier.

    Computed once per :class:`~effectstudy.study.StudyResults` (cached) from the
    saved frames and the spec's ``suppression:`` rule (``threshold``,
    ``suppress_zero``).
    """
    hit = _CACHE.get(id(results))
    if hit is not None and hit[0]() is results:
        return hit[1]
    plan = _solve(results)
    for key in [k for k, (ref, _) in _CACHE.items() if ref() is None]:
        del _CACHE[key]
    _CACHE[id(results)] = (weakref.ref(results), plan)
    return plan


class _Builder:
    """Cells and relations of the publication, collected section by section."""

    def __init__(self) -> None:
        self.values: dict[Hashable, int] = {}
        self.lines: list[tuple[list, Hashable | None]] = []
        self.leq: list[tuple[Hashable, Hashable]] = []
        self.sum_leq: list[tuple[list, list]] = []
        self.fixed: set[Hashable] = set()
        self.hide: set[Hashable] = set()

    def cell(self, key: Hashable, value: Any, *, fixed: bool = False) -> Hashable:
        self.values[key] = int(value)
        if fixed:
            self.fixed.add(key)
        return key

    def at_most(self, a: Hashable, b: Hashable) -> None:
        """``a <= b`` when it holds in the data (a reader may know it)."""
        if a in self.values and b in self.values and self.values[a] <= self.values[b]:
            self.leq.append((a, b))

    def sum_at_most(self, left: list, right: list) -> None:
        left = [c for c in left if c in self.values]
        right = [c for c in right if c in self.values]
        if left and right and (sum(self.values[c] for c in left)
                               <= sum(self.values[c] for c in right)):
            self.sum_leq.append((left, right))

    def add_up(self, members: list, total: Hashable) -> bool:
        """``sum(members) == total`` when it holds in the data (returns whether it does)."""
        members = [c for c in members if c in self.values]
        if members and total in self.values and (
                sum(self.values[c] for c in members) == self.values[total]):
            self.lines.append((members, total))
            return True
        return False


def _frame(results: Any, name: str) -> pd.DataFrame:
    f = results.frame(name)
    return f if isinstance(f, pd.DataFrame) else pd.DataFrame()


def _solve(results: Any) -> PublicationPlan:
    rule = (results.spec or {}).get("suppression", {}) or {}
    threshold = int(rule.get("threshold", 5))
    suppress_zero = bool(rule.get("suppress_zero", True))
    b = _Builder()
    progs = _flow_cells(b, _frame(results, "flow"))
    _change_cells(b, _frame(results, "rc"), progs)
    _fixed_cells(b, results, progs, threshold)
    weeks = _at_risk_cells(b, results, threshold, suppress_zero)
    try:
        sup = protect(b.values, b.lines, threshold=threshold, suppress_zero=suppress_zero,
                      leq=b.leq, sum_leq=b.sum_leq, fixed=b.fixed, hide=b.hide)
    except DataError as err:
        rule = f"threshold {threshold}, " + ("zeros hidden" if suppress_zero else "zeros shown")
        raise DataError(
            f"the public documents of this study cannot be published under the suppression "
            f"rule ({rule}): {err}. Use a larger threshold"
            + ("" if suppress_zero else " or hide zeros (suppress_zero: true)")
            + "; the internal audience is not suppressed") from err
    return PublicationPlan(b.values, sup, threshold,
                           {k: tuple(v) for k, v in weeks.items()})


def _flow_cells(b: _Builder, flow: pd.DataFrame) -> list[str]:
    if flow.empty:
        return []
    progs = [str(p) for p in flow["programme"]]
    for _, r in flow.iterrows():
        for col in FLOW_COLUMNS:
            b.cell(("flow", str(r["programme"]), col), r[col])
    for col in FLOW_COLUMNS:
        b.cell(("flow", ALL, col), sum(b.values[("flow", p, col)] for p in progs))
        b.add_up([("flow", p, col) for p in progs], ("flow", ALL, col))
    for p in progs + [ALL]:
        b.add_up([("flow", p, c) for c in _ENDS], ("flow", p, "referred"))
        b.at_most(("flow", p, "included"), ("flow", p, "referred"))
        b.at_most(("flow", p, "analysed"), ("flow", p, "included"))
    return progs


def change_counts(rc: pd.DataFrame) -> pd.DataFrame:
    """Clients per programme x construct x category (assessable rows only), long."""
    if rc.empty:
        return pd.DataFrame(columns=["programme", "construct", "category", "clients"])
    assessed = rc[rc["category"].isin(CATEGORIES)]
    return (assessed.groupby(["programme", "construct", "category"])["client"].nunique()
            .rename("clients").reset_index())


def _change_cells(b: _Builder, rc: pd.DataFrame, progs: list[str]) -> None:
    counts = change_counts(rc)
    if counts.empty:
        return
    cats = list(CATEGORIES) + [ALL]
    layers: dict[str, list[str]] = {}
    for p, g in counts.groupby("programme", sort=True):
        layers[str(p)] = sorted(str(c) for c in g["construct"].unique())
    constructs = sorted({c for cs in layers.values() for c in cs})
    lookup = {(str(p), str(c), str(k)): int(n) for p, c, k, n in counts.itertuples(index=False)}
    for p, cs in layers.items():
        for c in cs:
            for k in CATEGORIES:
                b.cell(("change", p, c, k), lookup.get((p, c, k), 0))
    for p in list(layers) + [ALL]:
        cs = constructs if p == ALL else layers[p]
        for c in cs:
            for k in CATEGORIES:
                if p == ALL:
                    b.cell(("change", ALL, c, k), sum(b.values.get(("change", q, c, k), 0)
                                                     for q in layers))
            b.cell(("change", p, c, ALL), sum(b.values[("change", p, c, k)] for k in CATEGORIES))
        for k in cats:
            b.cell(("change", p, ALL, k), sum(b.values[("change", p, c, k)] for c in cs))
    for p in list(layers) + [ALL]:
        cs = constructs if p == ALL else layers[p]
        for c in cs + [ALL]:
            b.add_up([("change", p, c, k) for k in CATEGORIES], ("change", p, c, ALL))
        for k in cats:
            b.add_up([("change", p, c, k) for c in cs], ("change", p, ALL, k))
        for c in cs:  # a construct's assessed clients were analysed (intake and discharge)
            b.at_most(("change", p, c, ALL), ("flow", p, "analysed"))
    for c in constructs + [ALL]:
        for k in cats:
            b.add_up([("change", p, c, k) for p in layers], ("change", ALL, c, k))


def _fixed_cells(b: _Builder, results: Any, progs: list[str], threshold: int) -> None:
    """Counts printed under the primary rule only, with what bounds them."""
    desc = _frame(results, "descriptives")
    meta = results.meta or {}
    ch = meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    by_occasion: dict[tuple[str, str, str], list] = {}
    for r in desc.itertuples(index=False):
        p = str(r.programme)
        key = b.cell(("descriptives", p, str(r.instrument), str(r.scale), str(r.occasion)),
                     r.n, fixed=True)
        b.at_most(key, ("flow", p, "included"))
        by_occasion.setdefault((p, str(r.construct), str(r.occasion)), []).append(key)
    constructs = {k[2] for k in b.values if k[0] == "change" and k[2] != ALL}
    for c in constructs:
        for occ in (pre, post):
            for p in progs:
                b.sum_at_most([("change", p, c, ALL)], by_occasion.get((p, c, occ), []))
            b.sum_at_most([("change", ALL, c, ALL)],
                          [k for p in progs for k in by_occasion.get((p, c, occ), [])])
    # one measure per construct and programme: its pre-post n may equal the assessed
    measures: dict[tuple[str, str], list[tuple[str, str]]] = {}
    norm_of: dict[tuple[str, str], dict[str, list]] = {}
    for name in ("norm_view", "prepost"):
        f = _frame(results, name)
        for r in f.itertuples(index=False):
            p, m = str(r.programme), (str(r.instrument), str(r.scale))
            if name == "norm_view":
                n = b.cell(("norm", p, *m, "n"), r.n, fixed=True)
                cells = norm_of.setdefault((p, str(r.construct)),
                                           {"n": [], "clinical_pre": [], "clinical_post": []})
                cells["n"].append(n)
                for col in ("clinical_pre", "clinical_post"):
                    cells[col].append(b.cell(("norm", p, *m, col), getattr(r, col), fixed=True))
                    b.at_most(cells[col][-1], n)
            else:
                n = b.cell(("prepost", p, *m), r.n, fixed=True)
                measures.setdefault((p, str(r.construct)), []).append(m)
            b.at_most(n, ("flow", p, "analysed"))
            total = ("change", p, str(r.construct), ALL)
            if b.add_up([n], total) and b.values[n] >= threshold:
                b.fixed.add(total)  # printed as this n already: hiding it protects nothing
    # a recovered client was in the clinical range at intake and out of it at discharge
    # (Jacobson & Truax 1991) on one of the construct's measures of the norm view
    for (p, c), cells in norm_of.items():
        rec = ("change", p, c, "recovered")
        b.sum_at_most([rec], cells["clinical_pre"])
        b.sum_at_most([rec] + cells["clinical_post"], cells["n"])
    for r in _frame(results, "follow_up").itertuples(index=False):
        p = str(r.programme)
        key = b.cell(("follow_up", p, str(r.instrument), str(r.scale), str(r.occasion)),
                     r.n, fixed=True)
        b.at_most(key, ("flow", p, "included"))
    for r in _frame(results, "sced_rand").itertuples(index=False):
        key = b.cell(("cases", str(r.programme)), r.cases, fixed=True)
        b.at_most(key, ("flow", str(r.programme), "referred"))


def _at_risk_cells(b: _Builder, results: Any, threshold: int,
                   suppress_zero: bool) -> dict[str, list[int]]:
    """At-risk counts of the report (drawn programmes) and of each dossier.

    Two printed counts of a programme (the referred clients counted as the first) give
    the girls who left in between: a count is hidden (``x``) when it is fewer than the
    threshold below the last count left printed.
    """
    km = _frame(results, "dropout_km")
    counts = _frame(results, "dropout_n")
    if km.empty or counts.empty:
        return {}
    drawn = [str(p) for p, n in zip(counts["programme"], counts["clients"], strict=True)
             if n >= threshold]
    weeks: dict[str, list[int]] = {}
    report = [w for w in landmark_weeks(float(km["time"].max())) if w > 0]
    weeks[ALL] = report
    for p in drawn:
        own = km[km["programme"].astype(str) == p]
        weeks[p] = [w for w in landmark_weeks(float(own["time"].max()) if len(own) else 0.0)
                    if w > 0]
    for p in drawn:
        curve = km[km["programme"].astype(str) == p]
        ws = sorted(set(report) | set(weeks[p]))
        for w in ws:
            b.cell(("at_risk", p, w), at_risk(curve, w))
            b.at_most(("at_risk", p, w), ("flow", p, "referred"))
        for w0, w1 in zip(ws, ws[1:], strict=False):
            b.at_most(("at_risk", p, w1), ("at_risk", p, w0))
        last = b.values[("flow", p, "referred")]
        for w in ws:
            count = b.values[("at_risk", p, w)]
            if count < threshold:
                continue  # hidden as '<5' anyway
            gap = last - count
            if gap < threshold and (gap > 0 or suppress_zero):
                b.hide.add(("at_risk", p, w))
            else:
                last = count
    return weeks


def shown_cube(plan: PublicationPlan, programme: str | None,
               constructs: list[str]) -> pd.DataFrame:
    """The change counts of one document as a table: construct x category, with totals.

    ``programme`` None is the cross-programme layer. Rows are ``constructs`` and
    ``"Total"``, columns the categories and ``"Total"`` (the renderer translates).
    """
    p = ALL if programme is None else programme
    rows = {}
    for c in list(constructs) + [ALL]:
        rows["Total" if c == ALL else c] = [plan.shown(("change", p, c, k))
                                            for k in list(CATEGORIES) + [ALL]]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=[*CATEGORIES, "Total"],
                                 dtype=object)
    return out
