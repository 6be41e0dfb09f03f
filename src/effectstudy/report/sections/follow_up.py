"""Report section: follow-up (programme dossier)."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import num, t
from effectstudy.report.sections.layout import Context, Section, ci_text, pretty, pretty_measure


def follow_up_section(ctx: Context) -> Section:
    sec = Section("follow_up", t("follow_up.title"))
    fu = ctx.frame("follow_up")
    if fu.empty or "n" not in fu or not (fu["n"] > 0).any():
        sec.text(t("follow_up.none"))
        return sec
    pre = ctx.meta.get("change", {}).get("pre", "intake")
    order = ctx.meta.get("occasion_order", {})
    rows = []
    for _, r in fu.assign(_o=fu["occasion"].map(order)).sort_values(
            ["construct", "instrument", "scale", "_o"]).iterrows():
        n = ctx.count("follow_up", r["programme"], r["instrument"], r["scale"], r["occasion"],
                      value=r["n"])
        row = {t("col.construct"): pretty(r["construct"]),
               t("col.measure"): pretty_measure(f"{r['instrument']} {r['scale']}"),
               t("col.occasion"): pretty(r["occasion"])}
        if isinstance(n, str):
            row.update({"n": n, "d_z": "", t("col.ci"): ""})
        else:
            row.update({"n": n, "d_z": num(r.get("d_z"), 2),
                        t("col.ci"): ci_text(r.get("d_z_ci_lower"), r.get("d_z_ci_upper"))})
        rows.append(row)
    sec.table(pd.DataFrame(rows), t("follow_up.caption", pre=pretty(pre)))
    return sec
