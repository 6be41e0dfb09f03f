"""Report section: recognition levels (programme dossier)."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.layout import Context, Section, pretty


def recognition_section(ctx: Context) -> Section:
    """Per recognition level of the Dutch databank of effective youth interventions:
    what this programme's data support and what is missing for the next level."""
    sec = Section("recognition", t("recognition.title"))
    nv = ctx.frame("norm_view")
    # compared with norms: a published clinical cut-off or one between the norm and the
    # clinical mean (Jacobson-Truax c); cut-off a comes from the clients themselves
    if len(nv):
        nv = nv[nv["cutoff_kind"].astype(str).str.split(" (", regex=False).str[0]
                .isin(["published", "c"])]
    norms = sorted(set(nv["construct"])) if len(nv) else []
    rand = ctx.frame("sced_rand")
    design = ctx.frame("sced_design")
    fu = ctx.frame("follow_up")
    fu_occ = sorted(set(fu.loc[fu["n"] > 0, "occasion"])) if len(fu) and "n" in fu else []
    six = [o for o in fu_occ if any(x in o for x in ("6m", "12m"))]
    rating = ""
    # a design rating says whether there are at least three cases (Kratochwill et al.
    # 2010): not printed for the public where the number of cases is hidden
    cases_hidden = any(isinstance(ctx.count("cases", p, value=n), str)
                       for p, n in zip(rand["programme"], rand["cases"], strict=True))
    if len(design) and not cases_hidden:
        r = design[(design["case"] == "ALL") & (design["check"] == "overall")]["rating"]
        rating = ", ".join(sorted({pretty(x) for x in r if isinstance(x, str)}))
    have = {
        "prepost": (t("recognition.have_prepost", constructs=", ".join(map(pretty, norms)))
                    if norms else t("recognition.no_prepost")),
        "n1": (t("recognition.have_n1", rating=rating or t("common.not_documented"))
               if len(rand) else t("recognition.no_n1")),
        "comparison": t("recognition.no_comparison"),
        "follow_up": (t("recognition.have_follow_up",
                        occasions=", ".join(map(pretty, fu_occ))) if fu_occ
                      else t("recognition.no_follow_up")),
        "integrity": t("recognition.no_integrity"),
    }
    first = bool(norms) or bool(len(rand))
    rows = [
        {t("col.level"): t("recognition.level1"), t("col.supports"): t("recognition.l1_supports"),
         t("col.missing"): t("recognition.l1_missing")},
        {t("col.level"): t("recognition.level2"),
         t("col.supports"): "; ".join([have["prepost"], have["n1"]]),
         t("col.missing"): (t("recognition.l2_missing_none") if first
                            else t("recognition.l2_missing"))},
        {t("col.level"): t("recognition.level3"),
         t("col.supports"): have["comparison"],
         t("col.missing"): t("recognition.l3_missing")},
        {t("col.level"): t("recognition.level4"),
         t("col.supports"): "; ".join([have["follow_up"], have["integrity"]]),
         t("col.missing"): t("recognition.l4_missing") + (
             "" if six else " " + t("recognition.l4_missing_fu"))},
    ]
    sec.text(t("recognition.intro"))
    sec.table(pd.DataFrame(rows), t("recognition.caption"))
    sec.text(t("recognition.verdict_first") if first else t("recognition.verdict_none"))
    sec.text(t("recognition.note"))
    sec.references += [t("ref.nji_procedure"), t("ref.nji_research"), t("ref.rivm_levels"),
                       t("ref.trimbos_levels")]
    return sec
