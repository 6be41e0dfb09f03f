"""Small-cell suppression for tables that leave the team.

Primary suppression hides every count below a threshold (default 5, zero included
unless asked otherwise). Secondary suppression then hides further cells so that a
hidden count cannot be recovered by subtraction from a row or column total: in
every row and every column that has a total (or whose cells add up to a published
margin), a lone hidden cell gets a partner - the smallest other visible cell
(Statistics Netherlands' and Eurostat's usual rule; Hundepool et al. 2012,
*Statistical Disclosure Control*, chapter 5). Statistics computed on few clients
(means, SDs, proportions) are hidden with their count.

All functions return new frames; shown values become the text ``"<5"`` (or
``"<{threshold}"``) so the reader sees that something was suppressed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def suppress_cells(values: dict, lines: Sequence[tuple[Sequence, object]], *, threshold: int = 5,
                   suppress_zero: bool = True) -> set:
    """Primary and secondary suppression over arbitrary additive relations.

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

    Returns
    -------
    set
        The cells to hide. Afterwards no relation has exactly one hidden cell
        among its members and total together, so no hidden count follows by
        addition or subtraction from a single relation.
    """
    hidden = {c for c, v in values.items()
              if v < threshold and (suppress_zero or v != 0)}
    changed = True
    while changed:
        changed = False
        for members, total in lines:
            cells = list(members) + ([total] if total is not None else [])
            n_hidden = sum(c in hidden for c in cells)
            if n_hidden != 1:
                continue
            visible = [c for c in cells if c not in hidden]
            if not visible:
                continue
            partner = min(visible, key=lambda c: (values[c], str(c)))
            hidden.add(partner)
            changed = True
    return hidden


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
    values = {(i, j): float(counts.iat[i, j]) for i in range(counts.shape[0])
              for j in range(counts.shape[1]) if not pd.isna(counts.iat[i, j])}
    lines = []
    if has_row_totals:
        lines += [([(i, j) for j in range(counts.shape[1]) if (i, j) in values], None)
                  for i in range(counts.shape[0])]
    if has_col_totals:
        lines += [([(i, j) for i in range(counts.shape[0]) if (i, j) in values], None)
                  for j in range(counts.shape[1])]
    hidden = suppress_cells(values, lines, threshold=threshold, suppress_zero=suppress_zero)
    mask = np.zeros(counts.shape, dtype=bool)
    for i, j in hidden:
        mask[i, j] = True
    return pd.DataFrame(mask, index=counts.index, columns=counts.columns)


def suppress_table(counts: pd.DataFrame, *, threshold: int = 5, suppress_zero: bool = True,
                   totals: bool = True) -> pd.DataFrame:
    """A two-way count table ready to publish: hidden cells shown as ``"<5"``.

    With ``totals=True`` the row totals, column totals and grand total are published
    too, and suppression runs once over every additive relation of the table with
    its margins (each row adds up to its total, each column to its total, the row
    totals and the column totals to the grand total), so no hidden cell or hidden
    total follows from the others.
    """
    label = f"<{threshold}"
    if not totals:
        mask = suppression_mask(counts, threshold=threshold, suppress_zero=suppress_zero,
                                has_row_totals=False, has_col_totals=False)
        return counts.astype(object).where(~mask, label)
    full = counts.copy()
    full["Total"] = counts.sum(axis=1)
    full.loc["Total"] = full.sum(axis=0)
    rows, cols = list(counts.index), list(counts.columns)
    values = {(r, c): float(full.loc[r, c]) for r in full.index for c in full.columns}
    lines = [([(r, c) for c in cols], (r, "Total")) for r in rows]
    lines += [([(r, c) for r in rows], ("Total", c)) for c in cols]
    lines.append(([(r, "Total") for r in rows], ("Total", "Total")))
    lines.append(([("Total", c) for c in cols], ("Total", "Total")))
    hidden = suppress_cells(values, lines, threshold=threshold, suppress_zero=suppress_zero)
    out = full.astype(object)
    for r in full.index:
        for c in full.columns:
            out.loc[r, c] = label if (r, c) in hidden else int(full.loc[r, c])
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
    label = f"<{threshold}"
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
