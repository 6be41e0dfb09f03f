"""Report section: single-case (SCED) results."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import language, num, t
from effectstudy.report.sections.layout import (
    Context,
    Section,
    ci_text,
    pretty,
    public_message,
    round_frame,
)


def single_case_section(ctx: Context) -> Section:
    meta = ctx.meta.get("single_case", {})
    sec = Section("single_case", t("single_case.title"))
    rand = ctx.frame("sced_rand")
    if rand.empty:
        sec.text(t("single_case.none"))
        return sec
    es = ctx.frame("sced_es")
    design = ctx.frame("sced_design")
    series = ctx.frame("sced_series")
    measures = meta.get("measures", [])
    labels: dict[str, str] = {}
    for _pid, g in es.groupby("programme", sort=True):
        uniq = sorted(g["case"].unique())
        labels.update({c: (t("single_case.case", k=i + 1) if ctx.public else c)
                       for i, c in enumerate(uniq)})
    if ctx.case_level:
        from effectstudy.sced.plots import multiple_baseline_plot  # draws saved series

        for pid, g in series.groupby("programme", sort=True):
            name = ctx.programme_name(pid)
            g = g.assign(case=g["client"].map(labels))
            fig = multiple_baseline_plot(g, case="case", phase="phase_ab", session="session",
                                         outcome="raw", trend=True,
                                         title=f"{name}: {meta.get('instrument', '')}",
                                         ylabel=t("single_case.ylabel"),
                                         xlabel=t("single_case.xlabel"))
            sec.figure(fig, t("single_case.mb_caption", name=name))
        sec.table(_effect_sizes_wide(ctx, es.assign(case=es["case"].map(labels))),
                  t("single_case.es_caption") + " " + (t("single_case.cases_numbered")
                                                       if ctx.public else
                                                       t("single_case.cases_pseudonyms")))
    else:
        sec.text(t("single_case.es_internal_only", measures=", ".join(measures)))
    cases = [ctx.count("cases", p, value=n) for p, n in zip(rand["programme"], rand["cases"],
                                                            strict=True)]
    hidden = [isinstance(n, str) for n in cases]
    # the number of possible assignments and the smallest p-value it allows grow with the
    # number of cases: left out where that number is hidden
    shown = pd.DataFrame({
        t("col.programme"): rand["programme"].map(ctx.programme_name),
        "cases": cases,
        t("col.statistic"): rand["statistic"].map(pretty),
        t("col.observed"): rand["observed"],
        # an exact p is at least 1 / (number of assignments), which grows with the cases
        # (Edgington 1975): even 'p < 0.05' bounds hidden cases from below for short
        # series, so no p is printed next to them
        "p_value": _unless(hidden, rand["p_value"]),
        "n_assignments": _unless(hidden, rand["n_assignments"]),
        "min_p": _unless(hidden, rand["min_p"].astype(float).round(4))})
    shown = shown.rename(columns={"cases": t("col.cases")})
    sec.table(round_frame(shown, 4), t("single_case.rand_caption"))
    warned = [f"{ctx.programme_name(p)}: {w}" for p, w in zip(rand["programme"], rand["warning"],
                                                             strict=True)
              if isinstance(w, str) and w]
    if ctx.public:
        warned = [public_message(w, ctx.threshold) for w in warned]
    if warned and language() != "en":
        # technical English of the software: counted here, written out in the English report
        sec.text(t("single_case.rand_messages_english", n=len(warned)))
    elif warned:
        sec.text(t("single_case.rand_messages") + " " + "; ".join(warned))
    if not design.empty:
        if ctx.case_level:
            d = design.assign(case=design["case"].map(
                lambda c: t("single_case.all_cases") if c == "ALL" else labels.get(c, c)))
            d = d.drop(columns=[c for c in ("phase",) if c in d])
        else:
            # study-level checks only, as ratings: per-case values would count cases
            d = design.loc[design["case"] == "ALL", ["programme", "check", "rating"]]
            if ctx.public:
                # a rating on the number of baselines (and the overall rating built on
                # it) says whether there are at least three cases: not for a programme
                # whose case count is hidden
                hidden_cases = {p for p, h in zip(rand["programme"], hidden, strict=True) if h}
                d = d[~d["programme"].isin(hidden_cases)]
        d = d.assign(programme=d["programme"].map(ctx.programme_name),
                     check=d["check"].map(pretty), rating=d["rating"].map(pretty))
        d = d.rename(columns=lambda c: t(f"col.{c}") if _has_col(c) else c)
        sec.table(d, t("single_case.design_caption") + (
            t("single_case.design_case_level") if ctx.case_level
            else t("single_case.design_study_level")))
    sec.methods.append(t("single_case.methods", instrument=meta.get("instrument", ""),
                         measures=", ".join(measures),
                         improvement=pretty(meta.get("improvement", "decrease"))))
    sec.references += [t("ref.parker"), t("ref.kratochwill"), t("ref.marascuilo")]
    return sec


def _unless(hidden: list[bool], values: pd.Series) -> list:
    """``values``, blank where ``hidden``."""
    return ["" if h else v for h, v in zip(hidden, values, strict=True)]


def _has_col(c: str) -> bool:
    from effectstudy.report.i18n import has

    return has(f"col.{c}")


def _effect_sizes_wide(ctx: Context, es: pd.DataFrame) -> pd.DataFrame:
    """One row per case, one column per effect size: ``estimate [lower; upper]``."""
    order = list(dict.fromkeys(es["measure"]))
    rows = []
    for (prog, case), g in es.groupby(["programme", "case"], sort=False):
        row = {t("col.programme"): ctx.programme_name(prog), t("col.case"): case}
        for _, r in g.iterrows():
            text = num(r["estimate"], 2)
            ci = ci_text(r.get("ci_lower"), r.get("ci_upper"))
            if ci:
                text += "\u00a0" + ci.replace(" ", "\u00a0")
            row[str(r["measure"]).replace("_", "-")] = text
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=[t("col.programme"), t("col.case"),
                                               *[m.replace("_", "-") for m in order]])
