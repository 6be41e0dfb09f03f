"""Small-cell suppression: primary, secondary, and that hidden cells cannot be recovered."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

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


def test_no_visible_count_below_threshold_on_random_tables():
    rng = np.random.default_rng(3)
    for _ in range(200):
        counts = pd.DataFrame(rng.integers(0, 15, size=(rng.integers(2, 6), rng.integers(2, 5))))
        table = suppress_table(counts)
        for v in table.to_numpy().ravel():
            if not isinstance(v, str):
                assert v >= 5
        assert not _recoverable(counts, suppression_mask(counts))


def test_hidden_cell_not_derivable_by_exhaustive_search():
    counts = pd.DataFrame([[6, 2], [5, 7]])
    mask = suppression_mask(counts)
    # With row and column totals published, every table of non-negative integers that
    # agrees with the visible cells and the margins must allow more than one value for
    # each hidden cell.
    h = mask.to_numpy()
    v = counts.to_numpy()
    rows, cols = v.sum(1), v.sum(0)
    hidden = list(zip(*np.where(h), strict=True))
    solutions = []
    for combo in itertools.product(range(0, 14), repeat=len(hidden)):
        t = v.copy()
        for (i, j), val in zip(hidden, combo, strict=True):
            t[i, j] = val
        if (t.sum(1) == rows).all() and (t.sum(0) == cols).all():
            solutions.append(combo)
    assert len(solutions) > 1
    assert len(hidden) >= 2
    for k, cell in enumerate(hidden):
        assert len({sol[k] for sol in solutions}) > 1, f"hidden cell {cell} is determined"


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
