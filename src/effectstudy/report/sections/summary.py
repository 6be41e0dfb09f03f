"""Report section: the dossier summary in plain language (shown first)."""

from __future__ import annotations

from effectstudy.report.i18n import t
from effectstudy.report.sections.flow import flow_cell
from effectstudy.report.sections.layout import Context, Section, count_text, pretty


def summary_section(ctx: Context) -> Section:
    """Plain language, from what the dossier publishes: what changed, for how many
    clients, how certain. No number appears here that the tables do not show."""
    sec = Section("summary", t("summary.title"))
    name = ctx.programme_name(ctx.programme or "")
    referred, analysed = flow_cell(ctx, "referred"), flow_cell(ctx, "analysed")
    sec.text(t("summary.who", programme=name,
               referred=count_text(ctx, referred) if referred is not None else ctx.few(),
               analysed=count_text(ctx, analysed) if analysed is not None else ctx.few()))
    slopes = ctx.frame("slopes", own=False)
    said = False
    for construct in ctx.meta.get("slopes", {}).get("constructs", []):
        s = slopes[(slopes["construct"] == construct) & (slopes["programme"] == ctx.programme)] \
            if len(slopes) else slopes
        if s.empty:
            continue
        r = s.iloc[0]
        lo, hi = float(r["ci_lower"]), float(r["ci_upper"])
        better = "lower"  # z of problem scales: a falling slope is improvement
        key = ("summary.slope_sure_better" if hi < 0 else "summary.slope_sure_worse"
               if lo > 0 else "summary.slope_unsure")
        if better != "lower":
            key = key.replace("better", "tmp").replace("worse", "better").replace("tmp", "worse")
        sec.text(t(key, construct=pretty(construct)))
        said = True
    pp = ctx.published.get("prepost")
    if pp is not None and len(pp):
        big = pp[pp["n_shown"] & (pp["n"] >= 1)]
        clear = big[(big["d_z_ci_lower"] > 0)]
        if len(big):
            sec.text(t("summary.prepost", k=len(clear), m=len(big)))
            said = True
    if not said:
        sec.text(t("summary.little"))
    sec.text(t("summary.caveat"))
    return sec
