"""Report section: per-programme slopes (forest plots, heterogeneity, CR2 check)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from effectstudy.report.i18n import dictionary_text, num, t
from effectstudy.report.sections.layout import Context, Section, ci_text, locale_axes, pretty


def slopes_section(ctx: Context) -> Section:
    meta = ctx.meta.get("slopes", {})
    sec = Section("slopes", t("slopes.title") if ctx.programme is None else t("slopes.title_one"))
    slopes = ctx.frame("slopes", own=False)
    vs = ctx.frame("slopes_vs_mean", own=False)
    conf = float(meta.get("confidence", 0.95))
    pct = num(100 * conf, 0)
    for construct in meta.get("constructs", []):
        info = meta.get("per_construct", {}).get(construct, {})
        part = slopes[slopes["construct"] == construct] if len(slopes) else slopes
        name = pretty(construct)
        if info.get("status") != "ok" or part.empty:
            sec.text(t("slopes.not_estimable", construct=name))
            continue
        if ctx.programme is not None and ctx.programme not in set(part["programme"]):
            sec.text(t("slopes.no_data_programme", construct=name,
                       programme=ctx.programme_name(ctx.programme)))
            continue
        shown = part if ctx.programme is None else part[part["programme"] == ctx.programme]
        vpart = vs[vs["construct"] == construct]
        if ctx.programme is not None:
            vpart = vpart[vpart["programme"] == ctx.programme]
        rows = []
        for _, r in shown.iterrows():
            v = vpart[vpart["programme"] == r["programme"]]
            rows.append({t("col.programme"): ctx.programme_name(r["programme"]),
                         t("col.slope"): num(r["estimate"], 4),
                         t("col.ci_pct", pct=pct): ci_text(r["ci_lower"], r["ci_upper"], 4),
                         "df": num(r["df"], 1), "p": _p(r["p_value"]),
                         t("col.vs_mean"): num(v["estimate"].iloc[0], 4) if len(v) else "",
                         t("col.vs_mean_p"): _p(v["p_value"].iloc[0]) if len(v) else ""})
        sec.table(pd.DataFrame(rows), t("slopes.caption", construct=name, pct=pct))
        sec.figure(_forest_figure(ctx, part, construct),
                   t("slopes.forest_caption", construct=name, pct=pct))
        if ctx.programme is not None:
            r = shown.iloc[0]
            sec.text(t("slopes.place", programme=ctx.programme_name(ctx.programme),
                       rank=int((part["estimate"] < r["estimate"]).sum()) + 1,
                       k=len(part), construct=name))
        else:
            het = ctx.frame("slopes_heterogeneity", own=False)
            h = het[het["construct"] == construct] if len(het) else het
            if len(h) and "F" in h:
                hr = h.iloc[0]
                sec.text(t("slopes.heterogeneity", construct=name, F=num(hr["F"], 2),
                           df1=num(hr.get("num_df"), 0), df2=num(hr.get("den_df"), 1),
                           p=_p(hr.get("p_value")), k=int(info.get("n_programmes", 0))))
            cr = ctx.frame("slopes_cr2", own=False)
            c = cr[cr["construct"] == construct] if len(cr) else cr
            if len(c):
                ref = ctx.programme_name(info.get("reference", ""))
                tab = pd.DataFrame({
                    t("col.contrast"): [t("slopes.contrast_vs", programme=ctx.programme_name(
                        str(x).split("[T.")[-1].rstrip("]")), reference=ref) for x in c["term"]],
                    t("col.estimate"): [num(x, 4) for x in c["estimate"]],
                    t("col.se_cr2"): [num(x, 4) for x in c["se"]],
                    "df": [num(x, 2) for x in c["df"]],
                    "p": [_p(x) for x in c["p_value"]]})
                sec.table(tab, t("slopes.cr2_caption", construct=name))
                wald = info.get("cr2_wald") or {}
                sec.text(t("slopes.cr2_wald", F=num(wald["F"], 2), df1=num(wald["df_num"], 0),
                           df2=num(wald["df_denom"], 2), p=_p(wald["p_value"]))
                         if "F" in wald else t("slopes.cr2_wald_none"))
    if ctx.programme is None:
        sec.table(_characteristics(ctx, slopes), t("slopes.characteristics_caption"))
    sec.text(t("slopes.no_adjustment"))
    sec.methods.append(t("slopes.methods", formula=meta.get("formula", ""), pct=pct))
    sec.references += [t("ref.kenward"), t("ref.lenth"), t("ref.pustejovsky"),
                       t("ref.bell")]
    return sec


def _p(value: Any) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    v = float(value)
    return "<" + num(0.001, 3) if v < 0.001 else num(v, 3)


def _characteristics(ctx: Context, slopes: pd.DataFrame) -> pd.DataFrame:
    """Programme characteristics beside the slopes (one column per construct)."""
    fid = ctx.frame("programme_fidelity", own=False)
    fid = dict(zip(fid.get("programme", []), fid.get("fidelity", []), strict=False))
    rows = []
    for pid, prog in ctx.meta.get("programmes", {}).items():
        if not prog.get("in_data"):
            continue
        row = {t("col.programme"): ctx.programme_name(pid),
               t("col.setting"): dictionary_text(prog.get("setting")),
               t("col.max_weeks"): prog.get("max_weeks") or t("common.not_documented"),
               t("col.fidelity"): fid.get(pid)}
        for construct in ctx.meta.get("slopes", {}).get("constructs", []):
            s = slopes[(slopes["construct"] == construct) & (slopes["programme"] == pid)] \
                if len(slopes) else slopes
            row[t("col.slope_of", construct=pretty(construct))] = (
                num(s["estimate"].iloc[0], 4) if len(s) else "")
        rows.append(row)
    return pd.DataFrame(rows)


def _forest_figure(ctx: Context, part: pd.DataFrame, construct: str):
    """Forest plot of the programme slopes with their KR intervals (saved numbers)."""
    import matplotlib.pyplot as plt

    from effectstudy.style import GREY, color, use_style

    part = part.sort_values("estimate").reset_index(drop=True)
    with use_style():
        fig, ax = plt.subplots(figsize=(6.4, 0.45 * len(part) + 1.3))
        for i, r in part.iterrows():
            own = ctx.programme is not None and r["programme"] == ctx.programme
            c = color(0) if own or ctx.programme is None else GREY
            ax.plot([r["ci_lower"], r["ci_upper"]], [i, i], color=c, lw=2.4 if own else 1.6)
            ax.plot(r["estimate"], i, "o", color=c, ms=8 if own else 6)
        ax.axvline(0, color="0.5", lw=0.8, ls=":")
        ax.set_yticks(range(len(part)))
        ax.set_yticklabels([ctx.programme_name(p) for p in part["programme"]])
        ax.set_xlabel(t("axis.slope", construct=pretty(construct)))
        locale_axes(ax)
    return fig
