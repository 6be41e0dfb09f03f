"""Report section: the sample flow (referred, included, end of care, analysed)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.layout import FLOW_COLUMNS, Context, Section, pretty
from effectstudy.report.suppression import protect


def _flow_labels(ctx: Context) -> dict[str, str]:
    ch = ctx.meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    return {c: t(f"flow.{c}", pre=pretty(pre), post=pretty(post)) for c in FLOW_COLUMNS}


def sample_flow(ctx: Context) -> Section:
    sec = Section("flow", t("flow.title") if ctx.programme is None else t("flow.title_one"))
    flow = ctx.frame("flow")
    labels = _flow_labels(ctx)
    counts = pd.DataFrame({labels[c]: flow[c].astype(int).to_numpy() for c in FLOW_COLUMNS},
                          index=[ctx.programme_name(p) for p in flow["programme"]])
    total = t("common.total")
    table = counts.copy()
    if ctx.programme is None:
        table.loc[total] = counts.sum()
    if ctx.public:
        table = _suppress_flow(table, ctx.threshold, ctx.suppress_zero, total)
        if ctx.programme is not None:
            table = _as_in_the_joint_flow(ctx, table, labels, total)
    ctx.published["flow"] = table.copy()
    table.index.name = t("col.programme")
    sec.table(table.reset_index(), t("flow.caption") + " " + (
        t("common.suppression_note", threshold=ctx.threshold) if ctx.public
        else t("common.exact_counts")))
    totals = ({c: table.loc[total, c] for c in table.columns} if ctx.programme is None
              else {c: table.iloc[0][c] for c in table.columns})
    sec.figure(_flow_figure(totals), t("flow.figure") if ctx.programme is None
               else t("flow.figure_one"))
    sec.methods.append(t("flow.methods"))
    return sec


def _as_in_the_joint_flow(ctx: Context, row: pd.DataFrame, labels: dict[str, str],
                          total: str) -> pd.DataFrame:
    """A dossier's flow row, hiding every cell the cross-programme report hides too.

    The dossiers and the cross-programme report are published together: a cell the
    report hides (``<5``, or ``x`` as a partner) but a dossier printed would let a reader
    subtract it from the report's totals. So the suppression pattern of the full table
    (every programme and the Total row) is computed here exactly as the report computes
    it, and the dossier hides the union of that pattern and its own.
    """
    full = ctx.frame("flow", own=False)
    counts = pd.DataFrame({labels[c]: full[c].astype(int).to_numpy() for c in FLOW_COLUMNS},
                          index=[ctx.programme_name(p) for p in full["programme"]])
    counts.loc[total] = counts.sum()
    joint = _suppress_flow(counts, ctx.threshold, ctx.suppress_zero, total)
    name = ctx.programme_name(ctx.programme)
    out = row.astype(object).copy()
    for col in out.columns:
        mark = joint.loc[name, col]
        if isinstance(mark, str) and not isinstance(out.loc[name, col], str):
            out.loc[name, col] = mark
    return out


def _suppress_flow(table: pd.DataFrame, threshold: int, suppress_zero: bool,
                   total: str) -> pd.DataFrame:
    """Suppress the flow table with its real additive relations and bounds.

    Per programme, completed + absconded + transferred + unknown = referred, and analysed <=
    included <= referred; every column adds up to the Total row (when there is
    one). The pattern is audited by integer programming
    (:func:`~effectstudy.report.suppression.protect`): no hidden cell is left with
    fewer than three possible values. A cell below the threshold is shown as
    ``<5``, a partner hidden to protect it as ``x``.
    """
    progs = [p for p in table.index if p != total]
    cols = list(table.columns)
    values = {(r, c): float(table.loc[r, c]) for r in table.index for c in cols}
    ends = cols[2:6]
    rows = list(table.index)
    lines = [([(r, c) for c in ends], (r, cols[0])) for r in rows
             if sum(values[(r, c)] for c in ends) == values[(r, cols[0])]]
    if total in table.index:
        lines += [([(r, c) for r in progs], (total, c)) for c in cols]
    leq = [((r, cols[1]), (r, cols[0])) for r in rows]
    leq += [((r, cols[6]), (r, cols[1])) for r in rows]
    leq = [(a, b) for a, b in leq if values[a] <= values[b]]
    sup = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero, leq=leq)
    out = table.astype(object)
    for r, c in sup.hidden:
        out.loc[r, c] = sup.label((r, c), threshold)
    return out


def _flow_figure(totals: dict[str, Any]):
    """CONSORT-like flow: export -> included -> analysed, end of care as a side branch."""
    import matplotlib.pyplot as plt

    from effectstudy.style import GREY, use_style

    keys = list(totals)
    box = dict(boxstyle="round,pad=0.55", fc="#f2f2f2", ec=GREY)
    with use_style():
        fig, ax = plt.subplots(figsize=(7, 3.6))
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.axis("off")
        x = 0.3
        for y, k in ((0.88, keys[0]), (0.58, keys[1]), (0.1, keys[6])):
            ax.text(x, y, f"{k}\nn = {totals[k]}", ha="center", va="center", bbox=box)
        head = t("flow.end_of_care").replace(" ", r"\ ")
        side = rf"$\bf{{{head}}}$" + "\n" + "\n".join(f"{k}: n = {totals[k]}" for k in keys[2:6])
        ax.text(0.66, 0.34, side, ha="left", va="center", bbox=box, linespacing=1.5)
        arrow = dict(arrowstyle="-|>", color=GREY, lw=1.2, shrinkA=0, shrinkB=0)
        ax.annotate("", xy=(x, 0.69), xytext=(x, 0.77), arrowprops=arrow)
        ax.annotate("", xy=(x, 0.21), xytext=(x, 0.47), arrowprops=arrow)
        ax.annotate("", xy=(0.645, 0.34), xytext=(x, 0.34), arrowprops=arrow)
    return fig
