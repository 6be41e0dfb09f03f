"""Report section: the multilevel growth model (cross-programme report)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from effectstudy.report.i18n import language, t
from effectstudy.report.sections.layout import (
    Context,
    Section,
    locale_axes,
    pretty,
    public_message,
    round_frame,
)


def multilevel_section(ctx: Context) -> Section:
    meta = ctx.meta.get("multilevel", {})
    construct = meta.get("construct", "")
    ddf = meta.get("ddf", "kenward-roger")
    sec = Section("multilevel", t("multilevel.title", construct=pretty(construct)))
    n_no = int(meta.get("n_no_norm", 0))
    if n_no:
        few = ctx.public and n_no < ctx.threshold
        count_text = (t("multilevel.few_scores", threshold=ctx.threshold) if few
                      else t("multilevel.some_scores", k=n_no, n=meta.get("n_scores_all")))
        sec.text(t("multilevel.no_norm", count=count_text))
    coefs = ctx.frame("ml_coefs", own=False)
    ddf_name = "-".join(w.capitalize() for w in str(ddf).split("-"))
    sec.table(round_frame(coefs, 4), t("multilevel.coef_caption", ddf=ddf_name,
                                  n=meta.get("n_scores")))
    sec.table(round_frame(ctx.frame("ml_varcomp", own=False), 4), t("multilevel.varcomp_caption"))
    msgs = list(meta.get("messages", []))
    if ctx.public:
        msgs = [public_message(m, ctx.threshold) for m in msgs]
    if msgs and language() != "en":
        # technical English of the software: counted here, written out in the English report
        sec.text(t("multilevel.messages_english", n=len(dict.fromkeys(msgs))))
    elif msgs:
        sec.text(t("multilevel.messages") + " " + "; ".join(dict.fromkeys(msgs)))
    pred = ctx.frame("ml_pred", own=False)
    band = t("multilevel.band", ddf=ddf) if len(pred) else ""
    sec.figure(_trajectory_figure(ctx, coefs, pred if len(pred) else None),
               t("multilevel.figure", construct=pretty(construct), band=band) + (
                   " " + t("multilevel.figure_public", threshold=ctx.threshold)
                   if ctx.public else ""))
    sec.methods.append(t("multilevel.methods", construct=pretty(construct),
                         formula=meta.get("formula", ""), ddf=ddf_name))
    sec.references += [t("ref.kenward"), t("ref.kuznetsova")]
    return sec


def _trajectory_figure(ctx: Context, coefs: pd.DataFrame, pred: pd.DataFrame | None):
    import matplotlib.pyplot as plt

    from effectstudy.style import color, use_style

    est = coefs.set_index("term")["estimate"] if len(coefs) else pd.Series(dtype=float)
    time_terms = [x for x in est.index if x != "Intercept"]
    order = sorted(ctx.meta.get("programmes", {}))
    means = ctx.frame("ml_means", own=False)
    if ctx.public:
        means = means[means["n"] >= ctx.threshold]
    with use_style():
        fig, ax = plt.subplots(figsize=(6.6, 4.0))
        for pid, g in means.groupby("programme"):
            g = g.sort_values("week")
            i = order.index(pid) if pid in order else len(order)
            ax.plot(g["week"], g["z"], "o", color=color(i), label=ctx.programme_name(pid),
                    ms=6, markeredgecolor="white", markeredgewidth=0.6)
        weeks = np.linspace(0, float(ctx.meta.get("multilevel", {}).get("max_week", 1.0)), 50)
        if pred is not None:
            ax.fill_between(pred["week"], pred["ci_lower"], pred["ci_upper"], color="0.8",
                            alpha=0.7, lw=0, label=t("multilevel.legend_band"))
            ax.plot(pred["week"], pred["estimate"], color="black", lw=2,
                    label=t("multilevel.legend_mean"))
        elif time_terms:
            ax.plot(weeks, est["Intercept"] + est[time_terms[0]] * weeks, color="black", lw=2,
                    label=t("multilevel.legend_mean"))
        ax.axhline(0, color="0.6", lw=0.8, ls=":", zorder=0)
        ax.set_xlabel(t("axis.weeks"))
        ax.set_ylabel(t("axis.z"))
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, borderaxespad=0)
        locale_axes(ax)
    return fig
