"""Report section: the programmes (setting, phases, reach, fidelity)."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import dictionary_text, label, t
from effectstudy.report.sections.layout import Context, Section


def programmes_section(ctx: Context) -> Section:
    sec = Section("programmes", t("programmes.title") if ctx.programme is None
                  else t("programmes.title_one"))
    fid = ctx.frame("programme_fidelity", own=False)
    fid = dict(zip(fid.get("programme", []), fid.get("fidelity", []), strict=False))
    rows = []
    for pid, prog in ctx.meta.get("programmes", {}).items():
        if not prog.get("in_data") or (ctx.programme is not None and pid != ctx.programme):
            continue
        rows.append({t("col.programme"): prog["name"], t("col.provider"): prog["provider"],
                     t("col.setting"): dictionary_text(prog.get("setting")),
                     t("col.max_weeks"): (prog["max_weeks"] if prog.get("max_weeks") is not None
                                          else t("common.not_documented")),
                     t("col.phases"): len(prog.get("phases", [])),
                     t("col.ages"): prog.get("ages") or t("common.not_documented"),
                     t("col.reach"): label("reach", prog.get("reach")),
                     t("col.fidelity"): fid.get(pid)})
    sec.table(pd.DataFrame(rows), t("programmes.caption"))
    if ctx.programme is not None:
        prog = ctx.meta["programmes"][ctx.programme]
        if prog.get("aims"):
            sec.text(t("programmes.aims", aims=dictionary_text(prog["aims"])))
        if prog.get("phases"):
            sec.text(t("programmes.phases",
                       phases=", ".join(dictionary_text(p) for p in prog["phases"])))
    return sec
