"""Report section: limitations (programme sizes as the audience may read them)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.flow import flow_cell
from effectstudy.report.sections.layout import Context, Section, count_text, is_count


def limitations_section(ctx: Context) -> Section:
    sec = Section("limitations", t("limitations.title"))
    cpp = ctx.frame("clients_per_programme", own=False)
    n_by = pd.Series(cpp["clients"].to_numpy(), index=cpp["programme"]) if len(cpp) else \
        pd.Series(dtype=int)
    if ctx.programme is not None:
        referred, analysed = flow_cell(ctx, "referred"), flow_cell(ctx, "analysed")
        size = count_text(ctx, referred) if referred is not None else ctx.few()
        analysed = count_text(ctx, analysed) if analysed is not None else ctx.few()
        sec.text(t("limitations.dossier", size=size, analysed=analysed,
                   programme=ctx.programme_name(ctx.programme)))
        return sec
    if ctx.public:
        sizes = public_size_range(n_by, ctx.threshold, ctx.published.get("flow"),
                                  {p: ctx.programme_name(p) for p in n_by.index})
    else:
        sizes = ", ".join(f"{ctx.programme_name(p)} {n}" for p, n in n_by.items())
        sizes += " " + t("limitations.in_all", n=int(n_by.sum()), k=len(n_by))
    sec.text(t("limitations.text", sizes=sizes))
    return sec


def public_size_range(n_by: pd.Series, threshold: int, flow: pd.DataFrame | None = None,
                      names: dict | None = None) -> str:
    """The range of programme sizes as the public may read it.

    A list of per-programme counts next to the total would undo the suppression of
    the flow table, so only the range is given, and only with numbers that are
    already public: a smallest or largest size below ``threshold`` is never printed
    ("fewer than 5"), nor one that the flow table hides (then "5 or more"). With
    every programme below the threshold: "fewer than 5 clients per programme".
    """
    k = len(n_by)
    if k == 0 or int(n_by.max()) < threshold:
        return t("limitations.all_small", threshold=threshold, k=k)
    names = names or {}

    def shown(pid: Any) -> str:
        value = int(n_by[pid])
        if value < threshold:
            return t("common.fewer_than", threshold=threshold)
        if flow is not None:
            row = names.get(pid, pid)
            cell = flow.loc[row, flow.columns[0]] if row in flow.index else None
            if not is_count(cell) or int(cell) != value:
                return t("common.or_more", threshold=threshold)
        return str(value)

    low, high = shown(n_by.idxmin()), shown(n_by.idxmax())
    span = (t("limitations.span_one", high=high) if low == high
            else t("limitations.span", low=low, high=high))
    return t("limitations.range", span=span, k=k)
