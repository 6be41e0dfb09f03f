"""Small-cell suppression: primary, secondary, and that hidden cells cannot be recovered."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError
from effectstudy.report.suppression import suppress_long, suppress_table, suppression_mask


def _recoverable(counts: pd.DataFrame, mask: pd.DataFrame) -> bool:
    """True if some hidden cell follows from the margins and the visible cells."""
    v, h = counts.to_numpy(float), mask.to_numpy()
    for i in range(v.shape[0]):
        if h[i].sum() == 1:
            return True
    for j in range(v.shape[1]):
        if h[:, j].sum() == 1:
            return True
    return False


def test_primary_and_secondary():
    counts = pd.DataFrame([[12, 3, 9], [7, 8, 10]], index=["a", "b"], columns=["x", "y", "z"])
    mask = suppression_mask(counts)
    assert mask.loc["a", "y"]  # primary
    assert mask.to_numpy().sum() >= 4  # lone cells in row a, column y get partners, and so on
    assert not _recoverable(counts, mask)
    shown = suppress_table(counts)
    assert shown.loc["a", "y"] == "<5"


def _narrowest_with_margins(counts: pd.DataFrame, hidden: np.ndarray, threshold: int = 5) -> int:
    """The narrowest feasible range of a hidden cell (max - min), for a reader who knows the
    visible cells, every row and column total, that a hidden count below ``threshold`` lies
    in [0, threshold - 1] and that any other hidden count is at least ``threshold``.

    An integer program written here on its own (not the package's audit): one variable per
    hidden cell, each minimised and maximised.
    """
    from scipy.optimize import Bounds, LinearConstraint, milp

    v = counts.to_numpy(float)
    cells = list(zip(*np.where(hidden), strict=True))
    index = {c: k for k, c in enumerate(cells)}
    rows, lo, hi = [], [], []
    for axis in (0, 1):
        for k in range(v.shape[axis]):
            line = [(k, j) for j in range(v.shape[1])] if axis == 0 else \
                [(i, k) for i in range(v.shape[0])]
            row = np.zeros(len(cells))
            known = 0.0
            for c in line:
                if c in index:
                    row[index[c]] = 1.0
                else:
                    known += v[c]
            total = v[k].sum() if axis == 0 else v[:, k].sum()
            rows.append(row)
            lo.append(total - known)
            hi.append(total - known)
    low = np.array([0.0 if v[c] < threshold else threshold for c in cells])
    high = np.array([threshold - 1.0 if v[c] < threshold else np.inf for c in cells])
    narrowest = np.inf
    for k in range(len(cells)):
        obj = np.zeros(len(cells))
        obj[k] = 1.0
        ends = []
        for sign in (1.0, -1.0):
            res = milp(sign * obj, constraints=[LinearConstraint(np.array(rows), lo, hi)],
                       integrality=np.ones(len(cells)), bounds=Bounds(low, high))
            ends.append(sign * res.fun if res.status == 0 else np.inf)
        narrowest = min(narrowest, ends[1] - ends[0])
    return narrowest


def test_no_visible_count_below_threshold_on_random_tables():
    rng = np.random.default_rng(3)
    refused = 0
    for _ in range(200):
        counts = pd.DataFrame(rng.integers(0, 15, size=(rng.integers(2, 6), rng.integers(2, 5))))
        table = suppress_table(counts)
        for v in table.to_numpy().ravel():
            if not isinstance(v, str):
                assert v >= 5
        try:
            mask = suppression_mask(counts)
        except DataError:
            # refused only when no pattern protects: even with every cell hidden, the
            # published margins and the marks pin a cell (hiding more only widens ranges)
            all_hidden = counts.to_numpy() >= 0
            assert _narrowest_with_margins(counts, all_hidden) < 2, counts.to_numpy().tolist()
            refused += 1
            continue
        assert not _recoverable(counts, mask)
        hidden = mask.to_numpy()
        small = counts.to_numpy() < 5
        assert hidden[small].all()
        # every hidden cell keeps at least three values (or as many as '<5' allows)
        assert _narrowest_with_margins(counts, hidden) >= 2, counts.to_numpy().tolist()
    assert refused < 40  # most tables can be protected


def _exhaustive(v: np.ndarray, hidden: list, marks: bool) -> list[tuple]:
    """Every table of integers 0..13 in the hidden cells that agrees with the visible
    cells and the margins (and, with ``marks``, with what '<5' and 'x' say)."""
    rows, cols = v.sum(1), v.sum(0)
    out = []
    for combo in itertools.product(range(0, 14), repeat=len(hidden)):
        if marks and any((val < 5) != (v[c] < 5) for c, val in zip(hidden, combo, strict=True)):
            continue
        t = v.copy()
        for (i, j), val in zip(hidden, combo, strict=True):
            t[i, j] = val
        if (t.sum(1) == rows).all() and (t.sum(0) == cols).all():
            out.append(combo)
    return out


def test_hidden_cell_not_derivable_by_exhaustive_search():
    counts = pd.DataFrame([[6, 2, 9], [5, 7, 8]])
    mask = suppression_mask(counts)
    # With row and column totals published, every table that agrees with the visible
    # cells, the margins and the marks ('<5' below 5, 'x' 5 or more) must allow at least
    # three values for each hidden cell.
    v = counts.to_numpy()
    hidden = list(zip(*np.where(mask.to_numpy()), strict=True))
    assert len(hidden) >= 4 and (0, 1) in hidden
    solutions = _exhaustive(v, hidden, marks=True)
    assert (tuple(int(v[c]) for c in hidden)) in solutions
    for k, cell in enumerate(hidden):
        assert len({sol[k] for sol in solutions}) >= 3, f"hidden cell {cell} is pinned"


def test_a_table_no_pattern_protects_is_refused():
    # 2 x 2 with the margins published: with every cell hidden, 'x' (5 or more) on the
    # 6 and the 5 leaves the 2 only 2 or 3 (found by enumeration, not by the audit)
    counts = pd.DataFrame([[6, 2], [5, 7]])
    v = counts.to_numpy()
    every = [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert {sol[1] for sol in _exhaustive(v, every, marks=True)} == {2, 3}
    with pytest.raises(DataError, match="even with every related count hidden"):
        suppression_mask(counts)


def _determined_by_margins(shown: pd.DataFrame, counts: pd.DataFrame) -> list:
    """Hidden entries of a published table (cells and totals) that follow by subtraction
    from one published line: a row, a column, the Total column or the Total row."""
    full = counts.astype(float).copy()
    full["Total"] = full.sum(axis=1)
    full.loc["Total"] = full.sum(axis=0)
    hidden = shown.map(lambda v: isinstance(v, str))
    lines = [list(zip([r] * len(full.columns), full.columns, strict=True)) for r in full.index]
    lines += [list(zip(full.index, [c] * len(full.index), strict=True)) for c in full.columns]
    found = []
    for line in lines:
        h = [cell for cell in line if hidden.loc[cell]]
        if len(h) == 1:
            found.append(h[0])
    return found


def test_suppressed_table_hides_no_total_recoverable_from_the_grand_total():
    counts = pd.DataFrame([[2, 1], [10, 12], [8, 9]], index=["a", "b", "c"], columns=["x", "y"])
    shown = suppress_table(counts)
    assert shown.loc["a", "Total"] == "<5"
    # 42 - 22 - 17 = 3: the hidden total of row a must not be derivable
    assert _determined_by_margins(shown, counts) == []


def test_long_table_hides_statistics_with_the_count():
    frame = pd.DataFrame({"group": ["a", "b"], "n": [3, 9], "mean": [1.5, 2.5]})
    out = suppress_long(frame, count="n", statistics=["mean"])
    assert out.loc[0, "n"] == "<5" and out.loc[0, "mean"] == ""
    assert out.loc[1, "n"] == 9 and out.loc[1, "mean"] == 2.5


def test_a_printed_count_is_hidden_when_nothing_else_protects():
    # a (3) + b (7) = T (10), with b and T printed beside statistics (fixed): the only
    # way to keep a from following by subtraction is to hide b (the cheaper of the two)
    from effectstudy.report.suppression import protect

    values = {"a": 3, "b": 7, "T": 10}
    sup = protect(values, [(["a", "b"], "T")], fixed={"b", "T"})
    assert sup.primary == {"a"} and sup.secondary == {"b"}
    # by hand: b = 10 - a and b >= 5 leave a every value of '<5' (0 to 4)
    assert [a for a in range(5) if 10 - a >= 5] == [0, 1, 2, 3, 4]

