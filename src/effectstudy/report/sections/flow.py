"""Report section: the sample flow (referred, included, end of care, analysed)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.publication import ALL, FLOW_COLUMNS
from effectstudy.report.sections.layout import Context, Section, pretty


def _flow_labels(ctx: Context) -> dict[str, str]:
    ch = ctx.meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    return {c: t(f"flow.{c}", pre=pretty(pre), post=pretty(post)) for c in FLOW_COLUMNS}


def sample_flow(ctx: Context) -> Section:
    sec = Section("flow", t("flow.title") if ctx.programme is None else t("flow.title_one"))
    flow = ctx.frame("flow")
    labels = _flow_labels(ctx)
    ids = [str(p) for p in flow["programme"]]
    total = t("common.total")
    rows = ids + ([ALL] if ctx.programme is None else [])
    names = [ctx.programme_name(p) for p in ids] + ([total] if ctx.programme is None else [])
    if ctx.public:
        # one pattern for the report and every dossier (report.publication)
        plan = ctx.plan
        cells = [[plan.shown(("flow", r, c)) for c in FLOW_COLUMNS] for r in rows]
    else:
        exact = {str(r["programme"]): [int(r[c]) for c in FLOW_COLUMNS] for _, r in flow.iterrows()}
        if ctx.programme is None:
            exact[ALL] = [int(flow[c].sum()) for c in FLOW_COLUMNS]
        cells = [exact[r] for r in rows]
    table = pd.DataFrame(cells, index=names, columns=[labels[c] for c in FLOW_COLUMNS],
                         dtype=object)
    ctx.published["flow"] = table.copy()
    table.index.name = t("col.programme")
    sec.table(table.reset_index(), t("flow.caption") + " " + (
        t("common.suppression_note", threshold=ctx.threshold) if ctx.public
        else t("common.exact_counts")))
    totals = {c: table.iloc[-1][c] for c in table.columns}
    sec.figure(_flow_figure(totals), t("flow.figure") if ctx.programme is None
               else t("flow.figure_one"))
    sec.methods.append(t("flow.methods"))
    return sec


def flow_cell(ctx: Context, column: str) -> Any:
    """A published flow count of this document's last row (the Total row of the
    report, the programme's row of a dossier): its number, ``<5`` or ``x``."""
    flow = ctx.published.get("flow")
    if flow is None or not len(flow):
        return None
    return flow.iloc[-1][_flow_labels(ctx)[column]]


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
