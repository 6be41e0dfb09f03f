"""Small-cell suppression for tables that leave the team.

Primary suppression hides every count below a threshold (default 5, zero included
unless asked otherwise). Secondary suppression then hides further cells until no
hidden count can be worked out from what is published: every additive relation
of the table (each row adds up to its total, each column to its total, ...) and
every known bound (a primary-suppressed count lies between 0 and threshold - 1,
a secondary one is at least the threshold) is set up as an integer program, and
each hidden cell is minimised and maximised over it - the "audit" of a
suppression pattern (Hundepool et al. 2012, *Statistical Disclosure Control*,
Wiley, chapters 4 and 5, on secondary cell suppression and the feasibility
interval of a suppressed cell). While a hidden cell is pinned to an
interval narrower than ``min_width`` (2 by default, so never to a single value
or to two neighbouring values), a partner is added: a near visible cell whose
hiding widens the pinned one (the smallest first). When no pattern can protect
a small count, :func:`protect` raises instead of returning a leaking one. The
usual shortcut (give every lone hidden cell in a row a partner) is applied
first, but it is not enough on its own: two hidden cells in one row whose
columns also hold only them are pinned as well.

Shown values: a primary-suppressed cell is ``"<5"`` (``"<{threshold}"``), a cell
hidden only to protect another one is ``"x"`` (it may be 5 or more); captions
explain both marks (:func:`suppression_note`).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from effectstudy.errors import DataError

#: Candidate partners tried for whether they widen a pinned cell before the best is taken.
_WIDEN_TRIALS = 12
#: Mark of a cell hidden only as a secondary partner (its count may be above the threshold).
SECONDARY_LABEL = "x"

Cell = Hashable
Line = tuple[Sequence[Cell], Cell | None]
SumLeq = tuple[Sequence[Cell], Sequence[Cell]]


def primary_label(threshold: int) -> str:
    """Mark of a cell hidden because its count is below ``threshold``."""
    return f"<{threshold}"


def suppression_note(threshold: int) -> str:
    """Caption sentence explaining the two marks of a suppressed table."""
    return (f"'<{threshold}': fewer than {threshold} clients; '{SECONDARY_LABEL}': hidden so that "
            f"no '<{threshold}' cell can be worked out from the totals (this count may be "
            f"{threshold} or more).")


@dataclass(frozen=True)
class Suppression:
    """Outcome of :func:`protect`: which cells are hidden and why."""

    primary: frozenset
    secondary: frozenset

    @property
    def hidden(self) -> frozenset:
        return self.primary | self.secondary

    def label(self, cell: Cell, threshold: int) -> str | None:
        """The mark to show for ``cell`` (None: show its value)."""
        if cell in self.primary:
            return primary_label(threshold)
        if cell in self.secondary:
            return SECONDARY_LABEL
        return None


def feasible_ranges(values: dict, lines: Sequence[Line], hidden: set, bounds: dict,
                    leq: Sequence[tuple[Cell, Cell]] = (), *,
                    stop_below: float | dict | None = None,
                    order: Sequence[Cell] = (), skip: set | frozenset = frozenset(),
                    sum_leq: Sequence[SumLeq] = ()) -> dict:
    """Smallest and largest integer value of each hidden cell given everything published.

    Parameters
    ----------
    values
        Cell -> true count; only the values of visible cells enter the program.
    lines
        Additive relations ``(members, total)``; ``total`` None means the sum of the
        members is published elsewhere (so it is a known constant).
    hidden
        Cells whose values are unknown to the reader.
    bounds
        Hidden cell -> ``(low, high)`` known to the reader (``high`` may be ``inf``).
    leq
        Pairs ``(a, b)`` known to satisfy ``a <= b``.
    sum_leq
        Pairs of cell lists ``(left, right)`` known to satisfy
        ``sum(left) <= sum(right)``.
    stop_below, order, skip
        Stop at the first cell (cells of ``order`` first) whose range is narrower
        than ``stop_below`` (a number, or a width per cell; the search for a pinned
        cell needs no more); leave out the cells in ``skip`` (known to be wide).

    Returns
    -------
    dict
        Hidden cell -> ``(min, max)`` (``max`` is ``inf`` when unbounded). With
        ``stop_below`` a cell may get an inner range instead (the values seen in
        the solutions found, already at least ``stop_below`` apart).
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    cells = sorted(hidden, key=str)
    if not cells:
        return {}
    index = {c: k for k, c in enumerate(cells)}
    rows, rhs_lo, rhs_hi = [], [], []

    def add(coef: dict, lo: float, hi: float) -> None:
        row = np.zeros(len(cells))
        const = 0.0
        for c, a in coef.items():
            if c in index:
                row[index[c]] += a
            else:
                const += a * float(values[c])
        if np.any(row):
            rows.append(row)
            rhs_lo.append(lo - const)
            rhs_hi.append(hi - const)

    for members, total in lines:
        coef = {c: 1.0 for c in members}
        if total is None:
            known = float(sum(values[c] for c in members))
            add(coef, known, known)
        else:
            coef[total] = coef.get(total, 0.0) - 1.0
            add(coef, 0.0, 0.0)
    for a, b in leq:
        add({a: 1.0, b: -1.0}, -np.inf, 0.0)
    for left, right in sum_leq:
        coef = {}
        for c in left:
            coef[c] = coef.get(c, 0.0) + 1.0
        for c in right:
            coef[c] = coef.get(c, 0.0) - 1.0
        add(coef, -np.inf, 0.0)
    lo = np.array([bounds[c][0] for c in cells], dtype=float)
    hi = np.array([bounds[c][1] for c in cells], dtype=float)
    constraints = [LinearConstraint(np.array(rows), rhs_lo, rhs_hi)] if rows else []
    integrality = np.ones(len(cells))
    # Check mode: every solution found is a table the reader cannot rule out; a cell
    # whose values over the solutions seen so far (the true table first) already
    # differ by ``stop_below`` needs no solve of its own.
    seen_lo = np.array([float(values[c]) for c in cells])
    seen_hi = seen_lo.copy()
    def need(c: Cell) -> float:
        return stop_below.get(c, 0.0) if isinstance(stop_below, dict) else float(stop_below)

    out = {}
    first = [c for c in order if c in index and c not in skip]
    for c in first + [c for c in cells if c not in set(first) and c not in skip]:
        k = index[c]
        if stop_below is not None and seen_hi[k] - seen_lo[k] >= need(c):
            out[c] = (float(seen_lo[k]), float(seen_hi[k]))
            continue
        obj = np.zeros(len(cells))
        obj[k] = 1.0
        low = milp(obj, constraints=constraints, integrality=integrality, bounds=Bounds(lo, hi))
        if low.status != 0:
            raise DataError("suppression audit: the published relations have no solution "
                            f"({low.message})")
        high = milp(-obj, constraints=constraints, integrality=integrality, bounds=Bounds(lo, hi))
        top = float(round(-high.fun)) if high.status == 0 else np.inf  # not optimal: unbounded
        for res in (low, high):
            if res.x is not None:
                seen_lo = np.minimum(seen_lo, np.round(res.x))
                seen_hi = np.maximum(seen_hi, np.round(res.x))
        out[c] = (float(round(low.fun)), top)
        if stop_below is not None and top - out[c][0] < need(c):
            break
    return out


def protect(values: dict, lines: Sequence[Line], *, threshold: int = 5,
            suppress_zero: bool = True, leq: Sequence[tuple[Cell, Cell]] = (),
            min_width: int = 2, sum_leq: Sequence[SumLeq] = (),
            fixed: Collection[Cell] = (), hide: Collection[Cell] = ()) -> Suppression:
    """Primary and secondary suppression, audited by integer programming.

    Parameters
    ----------
    values
        Cell -> count, for every cell of the publication (members and totals).
    lines
        Additive relations ``(members, total)``: the members add up to ``total``,
        a key of ``values`` or ``None`` when the total is published elsewhere (and
        so always known).
    threshold, suppress_zero
        Primary rule: hide counts below ``threshold`` (and zeros if asked).
    leq
        Published inequalities ``(a, b)``: ``a <= b`` (e.g. analysed <= referred).
    sum_leq
        Published inequalities between sums, ``(left, right)``:
        ``sum(left) <= sum(right)``.
    fixed
        Cells chosen as secondary partners only as a last resort (counts such as an
        ``n`` column, printed beside statistics that are blanked with them), as are
        the cells their printed values determine through a relation; they are
        hidden when below the threshold and enter every relation either way.
    hide
        Cells hidden from the start as partners (``x``), for a rule of the caller
        that the audit cannot express (e.g. no two printed at-risk counts may differ
        by fewer than the threshold).
    min_width
        Every hidden cell must keep a feasible range ``max - min >= min_width``
        (or as wide as its own bounds allow, when they are narrower).

    Returns
    -------
    Suppression
        The primary and the secondary cells. Afterwards, for a reader who knows
        every visible count, every relation, and that a ``<threshold`` cell lies in
        ``[0 or 1, threshold - 1]`` and an ``x`` cell is at least ``threshold``,
        each hidden cell can still take integer values at least ``min_width``
        apart (checked with :func:`feasible_ranges`).

    Raises
    ------
    DataError
        When a hidden cell stays pinned even with every cell related to it hidden:
        no pattern of these tables protects it, and a pattern known to leak is never
        returned.

    Notes
    -----
    Auditing a pattern by solving for the bounds of every suppressed cell follows
    Hundepool A. et al. (2012). *Statistical Disclosure Control*. Wiley, chapters 4
    and 5. Partners are chosen greedily (smallest visible neighbour first, counts
    determined by printed ones last), which protects but does not minimise the
    information lost. When the greedy search ends with a partner pinned at its own
    bound, it starts again without that partner; when it ends with nothing left to
    hide around a pinned cell, every cell related to it is hidden and audited once
    more, which either protects or proves that nothing can.
    """
    primary = {c for c, v in values.items() if v < threshold and (suppress_zero or v != 0)}
    neighbours: dict = {c: set() for c in values}
    for members, total in lines:
        cells = list(members) + ([total] if total is not None else [])
        for c in cells:
            neighbours[c].update(cells)
    for a, b in leq:
        neighbours[a].add(b)
        neighbours[b].add(a)
    for left, right in sum_leq:
        cells = list(left) + list(right)
        for c in cells:
            neighbours[c].update(cells)
    # hiding more only widens every range: when even every count hidden (a printed zero
    # stays printed) leaves a cell that must be hidden pinned, no pattern protects it -
    # say so at once (a partner pinned there need not have been hidden at all)
    sensitive = primary | set(hide)
    everything = {c for c, v in values.items() if c in primary or v >= threshold} | set(hide)
    bounds = _bounds(values, everything, primary, threshold, suppress_zero)
    want = {c: min(min_width, bounds[c][1] - bounds[c][0]) if c in sensitive else 0
            for c in everything}
    ranges = feasible_ranges(values, lines, everything, bounds, leq, stop_below=want,
                             sum_leq=sum_leq)
    hopeless = sorted((c for c, (lo, hi) in ranges.items() if hi - lo < want[c]), key=str)
    if hopeless:
        raise _unprotectable(hopeless)
    banned: set = set()
    while True:
        hidden, pinned = _greedy(values, lines, leq, sum_leq, neighbours, primary, set(hide),
                                 frozenset(fixed), banned, threshold=threshold,
                                 suppress_zero=suppress_zero, min_width=min_width)
        if not pinned:
            return Suppression(frozenset(primary), frozenset(hidden - primary))
        # a partner at its own bound (an 'x' of exactly the threshold, say) can be pinned
        # itself, with every cell around it hidden: start again without it as a partner
        culprits = set(pinned) - primary - set(hide) - banned
        if culprits:
            banned |= culprits
            continue
        # the greedy search is stuck: hide every cell related to a pinned one, directly
        # or through other cells (a printed zero under ``suppress_zero=False`` stays
        # printed: an 'x' is then known to be at least the threshold)
        related = _component(pinned, neighbours)
        everything = hidden | {c for c in related if values[c] >= threshold or c in primary}
        while True:
            still = _audit(values, lines, leq, sum_leq, everything, primary,
                           threshold=threshold, suppress_zero=suppress_zero,
                           min_width=min_width)
            if not still:
                return Suppression(frozenset(primary), frozenset(everything - primary))
            if set(still) & sensitive:
                raise _unprotectable(sorted(set(still) & sensitive, key=str))
            everything -= set(still)  # partners pinned at their bound: shown after all


def _unprotectable(cells: list) -> DataError:
    return DataError(
        "suppression: a hidden count can be worked out from the published relations even "
        "with every related count hidden, so no pattern of these tables protects it (cells "
        + ", ".join(map(str, cells[:3])) + (", ..." if len(cells) > 3 else "") + ")")


def _greedy(values: dict, lines: Sequence[Line], leq: Sequence[tuple[Cell, Cell]],
            sum_leq: Sequence[SumLeq], neighbours: dict, primary: set, hidden: set,
            fixed_cells: frozenset, banned: set, *, threshold: int, suppress_zero: bool,
            min_width: int) -> tuple[set, list]:
    """One greedy pass of :func:`protect`: the hidden cells, and the cells still pinned
    when no partner is left (empty when the pattern is safe)."""
    hidden |= primary
    fixed = _published_closure(values, lines, fixed_cells, primary)

    def eligible(c: Cell, tier: int = 1) -> bool:
        """Tier 1: cells no printed count determines; tier 2: those too (last resort)."""
        # a partner is at least the threshold: a printed zero (``suppress_zero=False``)
        # hidden as 'x' would make an 'x' either 0 or at least the threshold, which the
        # audit's interval bounds cannot express
        return (c not in hidden and c not in banned and values[c] >= threshold
                and (tier == 2 or c not in fixed))

    def cheapest(candidates) -> Cell | None:
        pool = [c for c in candidates if eligible(c)]
        return min(pool, key=lambda c: (values[c], str(c))) if pool else None

    def candidates(cell: Cell):
        """Visible cells to hide for ``cell``, best first: near ones (two steps in the
        graph of relations) before far ones, cells no printed count determines before
        the others, and the cheapest first within one ring of neighbours."""
        given: set = set()
        for depth, tier in ((2, 1), (2, 2), (None, 1), (None, 2)):
            seen = {cell}
            frontier = {cell}
            steps = 0
            while frontier and (depth is None or steps < depth):
                steps += 1
                ring = set().union(*(neighbours[c] for c in frontier)) - seen
                pool = [c for c in ring if c not in given and eligible(c, tier)]
                for c in sorted(pool, key=lambda c: (values[c], str(c))):
                    given.add(c)
                    yield c
                seen |= ring
                frontier = ring

    def widens(cell: Cell, partner: Cell, width: float) -> bool:
        """Whether hiding ``partner`` too leaves ``cell`` a wider range than ``width``."""
        trial = hidden | {partner}
        bounds = _bounds(values, trial, primary, threshold, suppress_zero)
        lo, hi = feasible_ranges(values, lines, trial, bounds, leq, sum_leq=sum_leq,
                                 skip=trial - {cell})[cell]
        return hi - lo > width

    def choose(pinned: list, ranges: dict) -> Cell | None:
        """A partner for the first pinned cell that has one: the first candidate that
        widens its range (of the first few), else the best candidate."""
        for cell in pinned:
            first = None
            for k, cand in enumerate(candidates(cell)):
                first = cand if first is None else first
                if k >= _WIDEN_TRIALS:
                    break
                if widens(cell, cand, ranges[cell][1] - ranges[cell][0]):
                    return cand
            if first is not None:
                return first
        return None

    # shortcut: a lone hidden cell in a relation always needs a partner
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            cells = list(members) + ([total] if total is not None else [])
            if sum(c in hidden for c in cells) == 1:
                partner = cheapest(cells)
                if partner is not None:
                    hidden.add(partner)
                    changed = True
    last: list = []
    wide: set = set()
    while True:
        bounds = _bounds(values, hidden, primary, threshold, suppress_zero)
        # a cell can never be wider than its own bounds (threshold 2: [0, 1]); hiding one
        # more cell only widens the feasible set (its bounds hold its true value), so a
        # cell found wide stays wide and need not be solved again
        want = {c: min(min_width, bounds[c][1] - bounds[c][0]) for c in hidden}
        ranges = feasible_ranges(values, lines, hidden, bounds, leq, stop_below=want,
                                 order=last, skip=wide, sum_leq=sum_leq)
        pinned = sorted((c for c, (lo, hi) in ranges.items() if hi - lo < want[c]), key=str)
        wide.update(c for c, (lo, hi) in ranges.items() if hi - lo >= want[c])
        if not pinned:
            return hidden, []
        partner = choose(pinned, ranges)
        if partner is None:  # every cell related to a pinned one is hidden
            return hidden, _audit(values, lines, leq, sum_leq, hidden, primary,
                                  threshold=threshold, suppress_zero=suppress_zero,
                                  min_width=min_width)
        hidden.add(partner)
        if partner in fixed:
            # a printed count hidden as a last resort: what it determined is free again
            fixed = _published_closure(values, lines, fixed_cells - hidden, primary)
        last = pinned


def _bounds(values: dict, hidden: set, primary: set, threshold: int,
            suppress_zero: bool) -> dict:
    """What a reader knows of each hidden cell: ``<threshold`` lies in [0 (1 when zeros are
    printed), threshold - 1], ``x`` is at least the threshold (when every ``x`` is)."""
    low_primary = 0 if suppress_zero else 1
    secondary = hidden - primary
    low_secondary = threshold if all(values[c] >= threshold for c in secondary) else 0
    return {c: (low_primary, threshold - 1) if c in primary else (low_secondary, np.inf)
            for c in hidden}


def _audit(values: dict, lines: Sequence[Line], leq: Sequence[tuple[Cell, Cell]],
           sum_leq: Sequence[SumLeq], hidden: set, primary: set, *, threshold: int,
           suppress_zero: bool, min_width: int) -> list:
    """Every hidden cell narrower than it must be (a full audit, no early stop)."""
    bounds = _bounds(values, hidden, primary, threshold, suppress_zero)
    want = {c: min(min_width, bounds[c][1] - bounds[c][0]) for c in hidden}
    ranges = feasible_ranges(values, lines, hidden, bounds, leq, sum_leq=sum_leq)
    return sorted((c for c, (lo, hi) in ranges.items() if hi - lo < want[c]), key=str)


def _component(cells: Collection[Cell], neighbours: dict) -> set:
    """``cells`` and every cell connected to them through relations."""
    seen = set(cells)
    frontier = set(cells)
    while frontier:
        frontier = set().union(*(neighbours[c] for c in frontier)) - seen
        seen |= frontier
    return seen


def _published_closure(values: dict, lines: Sequence[Line], fixed: frozenset,
                       primary: set) -> frozenset:
    """The fixed cells plus every cell their printed values determine through a relation.

    A fixed cell at or above the threshold is printed. A relation whose cells are all
    printed or determined but one determines that one too: hiding it would protect
    nothing, so it is never chosen as a partner either.
    """
    known = {c for c in fixed if c not in primary}
    out = set(fixed)
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            cells = list(members) + ([total] if total is not None else [])
            unknown = [c for c in cells if c not in known]
            if len(unknown) == 1 and (total is not None or len(cells) > 1):
                known.add(unknown[0])
                out.add(unknown[0])
                changed = True
    return frozenset(out)


def suppress_cells(values: dict, lines: Sequence[Line], *, threshold: int = 5,
                   suppress_zero: bool = True) -> set:
    """The cells to hide (primary and secondary together); see :func:`protect`."""
    return set(protect(values, lines, threshold=threshold, suppress_zero=suppress_zero).hidden)


def _table_lines(counts: pd.DataFrame, has_row_totals: bool, has_col_totals: bool) -> tuple:
    values = {(i, j): float(counts.iat[i, j]) for i in range(counts.shape[0])
              for j in range(counts.shape[1]) if not pd.isna(counts.iat[i, j])}
    lines: list[Line] = []
    if has_row_totals:
        lines += [([(i, j) for j in range(counts.shape[1]) if (i, j) in values], None)
                  for i in range(counts.shape[0])]
    if has_col_totals:
        lines += [([(i, j) for i in range(counts.shape[0]) if (i, j) in values], None)
                  for j in range(counts.shape[1])]
    return values, lines


def suppression_mask(counts: pd.DataFrame, *, threshold: int = 5, suppress_zero: bool = True,
                     has_row_totals: bool = True, has_col_totals: bool = True) -> pd.DataFrame:
    """Which cells of a two-way table of counts to hide (True = hide).

    Parameters
    ----------
    counts
        Table of counts (rows x columns), without margins: the margins are assumed
        to be published (or derivable) separately, which is what makes secondary
        suppression necessary.
    threshold
        Counts below this are hidden.
    suppress_zero
        Also hide zeros (a zero can itself disclose, e.g. 'none of the girls ...').
    has_row_totals, has_col_totals
        Whether row / column totals are published.
    """
    values, lines = _table_lines(counts, has_row_totals, has_col_totals)
    hidden = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero).hidden
    mask = np.zeros(counts.shape, dtype=bool)
    for i, j in hidden:
        mask[i, j] = True
    return pd.DataFrame(mask, index=counts.index, columns=counts.columns)


def suppress_table(counts: pd.DataFrame, *, threshold: int = 5, suppress_zero: bool = True,
                   totals: bool = True) -> pd.DataFrame:
    """A two-way count table ready to publish: ``"<5"`` for small counts, ``"x"`` for partners.

    With ``totals=True`` the row totals, column totals and grand total are published
    too, and suppression runs once over every additive relation of the table with
    its margins (each row adds up to its total, each column to its total, the row
    totals and the column totals to the grand total), audited so that no hidden
    cell or hidden total is pinned to fewer than three values (:func:`protect`).
    """
    if not totals:
        values, lines = _table_lines(counts, False, False)
        sup = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero)
        out = counts.astype(object).copy()
        for i, j in sup.hidden:
            out.iat[i, j] = sup.label((i, j), threshold)
        return out
    full = counts.copy()
    full["Total"] = counts.sum(axis=1)
    full.loc["Total"] = full.sum(axis=0)
    rows, cols = list(counts.index), list(counts.columns)
    values = {(r, c): float(full.loc[r, c]) for r in full.index for c in full.columns}
    lines: list[Line] = [([(r, c) for c in cols], (r, "Total")) for r in rows]
    lines += [([(r, c) for r in rows], ("Total", c)) for c in cols]
    lines.append(([(r, "Total") for r in rows], ("Total", "Total")))
    lines.append(([("Total", c) for c in cols], ("Total", "Total")))
    sup = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero)
    out = full.astype(object)
    for r in full.index:
        for c in full.columns:
            mark = sup.label((r, c), threshold)
            out.loc[r, c] = mark if mark is not None else int(full.loc[r, c])
    return out


def suppress_long(frame: pd.DataFrame, *, count: str, statistics: Sequence[str] = (),
                  threshold: int = 5, suppress_zero: bool = True) -> pd.DataFrame:
    """Hide the counts below the threshold in a long table, and the statistics built on them.

    For tables without a structure of totals (descriptives per programme x construct
    x occasion, say): each row's statistics (mean, SD, proportion, CI ...) rest on
    ``count`` clients, and are hidden when that count is hidden.
    """
    out = frame.copy()
    n = out[count].astype(float)
    hide = n < threshold
    if not suppress_zero:
        hide &= n != 0
    label = primary_label(threshold)
    out[count] = out[count].astype(object).where(~hide, label)
    for col in statistics:
        out[col] = out[col].astype(object).where(~hide, "")
    return out


def visible_counts(frame: pd.DataFrame) -> list[float]:
    """Every number shown in a published table (used by tests and the report's own check)."""
    vals = []
    for v in frame.to_numpy().ravel():
        if isinstance(v, int | float | np.integer | np.floating) and not pd.isna(v):
            vals.append(float(v))
    return vals
