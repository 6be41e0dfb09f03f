"""Report section: reliable change, the norm-referenced view and pre-post effect sizes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from effectstudy.dictionary import UNVERIFIED
from effectstudy.report.i18n import dictionary_text, label, message, num, t
from effectstudy.report.publication import CATEGORIES, shown_cube
from effectstudy.report.sections.layout import (
    Context,
    Section,
    ci_text,
    pretty,
    pretty_measure,
    public_note,
    public_text,
    round_frame,
)
from effectstudy.report.suppression import SECONDARY_LABEL


def reliable_change_section(ctx: Context) -> Section:
    ch = ctx.meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    method = ch.get("method", "jacobson-truax")
    sec = Section("change", t("change.title", pre=pretty(pre), post=pretty(post)))
    rc = ctx.frame("rc")
    if rc.empty:
        sec.text(t("change.none"))
        return sec
    assessed = rc[rc["category"] != "not assessable"]
    if ctx.programme is not None:
        _dossier_change(ctx, sec, rc, assessed)
    elif ctx.public:
        shown = _translate_table(_public_counts(ctx, assessed))
        sec.table(shown.reset_index(), t("change.caption_public") + " "
                  + t("common.suppression_note", threshold=ctx.threshold))
    else:
        summ = ctx.frame("rc_summary")
        summ = summ.assign(programme=summ["programme"].map(ctx.programme_name))
        sec.table(_summary_wide(summ), t("change.caption_internal"))
    if not ctx.public:
        _per_client(ctx, sec, rc, assessed)
    prov = _provenance_texts(ctx, rc.drop_duplicates(["instrument", "scale"])
                             .reset_index(drop=True), pre)
    for table, caption in _provenance_tables(prov):
        sec.table(table, caption)
    sec.methods.append(t("change.methods", method=method, pre=pretty(pre), post=pretty(post)))
    sec.references.append(t("ref.jacobson"))
    return sec


def _translate_table(shown: pd.DataFrame) -> pd.DataFrame:
    shown = shown.rename(columns=lambda c: t("common.total") if c == "Total" else pretty(c),
                         index=lambda r: t("common.total") if r == "Total" else r)
    shown.columns.name = None
    shown.index.name = t("col.construct")
    return shown


def _per_client(ctx: Context, sec: Section, rc: pd.DataFrame, assessed: pd.DataFrame) -> None:
    from effectstudy.change import jacobson_plot  # draws saved numbers, computes nothing

    cols = ["programme", "client", "construct", "instrument", "pre", "post", "rci", "category"]
    cut = [f"{_num(c, 2)} ({_kind(k)})" if _num(c, 2) else ""
           for c, k in zip(rc["cutoff"], rc["cutoff_kind"], strict=True)]
    per_client = (round_frame(rc[cols], 2)
                  .assign(programme=rc["programme"].map(ctx.programme_name),
                          construct=rc["construct"].map(pretty),
                          category=rc["category"].map(pretty), cutoff=cut)
                  .sort_values(["programme", "construct", "client"], kind="stable"))
    sec.table(per_client.rename(columns={"rci": "RCI", "cutoff": t("col.cutoff_kind")}),
              t("change.caption_per_client"))
    for construct in sorted(assessed["construct"].unique())[:3]:
        sec.figure(jacobson_plot(rc, construct=construct),
                   t("change.jacobson", construct=pretty(construct)))


def _dossier_change(ctx: Context, sec: Section, rc: pd.DataFrame,
                    assessed: pd.DataFrame) -> None:
    """One programme: per construct the norm-referenced view, the standardised change
    with its CI, and reliable and clinically significant change."""
    th = ctx.threshold
    published: dict[str, Any] = {}
    # norm-referenced view: clients in the clinical range at intake and at discharge
    nv = ctx.frame("norm_view")
    if nv.empty:
        sec.text(t("change.no_norm_view"))
    else:
        rows = []
        for _, r in nv.sort_values(["construct", "instrument", "scale"]).iterrows():
            n, k0, k1 = int(r["n"]), int(r["clinical_pre"]), int(r["clinical_post"])
            row = {t("col.construct"): pretty(r["construct"]),
                   t("col.measure"): pretty_measure(f"{r['instrument']} {r['scale']}"),
                   t("col.cutoff_kind"): f"{_num(r['cutoff'], 2)} ({_kind(r['cutoff_kind'])})"}
            cell = (r["programme"], r["instrument"], r["scale"])
            shown_n = ctx.count("norm", *cell, "n", value=n)
            if ctx.public and isinstance(shown_n, str):
                row.update({"n": shown_n, t("col.clinical_pre"): "",
                            t("col.clinical_post"): ""})
            elif ctx.public and n < th + 2:
                # a hidden k would lie in [threshold, n]: fewer than three values, so no
                # share of this row is printed (a rule on the printed n alone)
                row.update({"n": n, t("col.clinical_pre"): "", t("col.clinical_post"): ""})
            elif ctx.public:
                marks = [ctx.count("norm", *cell, col, value=k)
                         for col, k in (("clinical_pre", k0), ("clinical_post", k1))]
                row.update({"n": n, t("col.clinical_pre"): _share(k0, n, th, marks[0]),
                            t("col.clinical_post"): _share(k1, n, th, marks[1])})
            else:
                row.update({"n": n, t("col.clinical_pre"): _share(k0, n, 0),
                            t("col.clinical_post"): _share(k1, n, 0)})
            rows.append(row)
        sec.table(pd.DataFrame(rows), t("change.norm_caption") + (
            " " + t("common.suppression_note", threshold=th) if ctx.public else ""))
    # standardised change with its CI
    pp = ctx.frame("prepost")
    if not pp.empty:
        rows = []
        pp = pp.sort_values(["construct", "instrument", "scale"])
        for _, r in pp.iterrows():
            n = ctx.count("prepost", r["programme"], r["instrument"], r["scale"], value=r["n"])
            row = {t("col.construct"): pretty(r["construct"]),
                   t("col.measure"): pretty_measure(f"{r['instrument']} {r['scale']}")}
            if isinstance(n, str):
                row.update({"n": n, "d_z": "", t("col.ci"): ""})
            else:
                row.update({"n": n, "d_z": num(r.get("d_z"), 2),
                            t("col.ci"): ci_text(r.get("d_z_ci_lower"), r.get("d_z_ci_upper"))})
            rows.append(row)
        sec.table(pd.DataFrame(rows), t("change.prepost_caption"))
        # the summary speaks of the rows whose n is printed only
        published["prepost"] = pp.assign(n_shown=[not isinstance(row["n"], str)
                                                  for row in rows])
    # reliable and clinically significant change: clients per category and construct
    heading = t("change.rc_heading")
    sec.text(heading)
    if assessed.empty:
        sec.text(t("change.none_assessable"))
    else:
        if ctx.public:
            shown = _public_counts(ctx, assessed)
        else:
            counts = (assessed.assign(construct=assessed["construct"].map(pretty))
                      .groupby(["construct", "category"])["client"].nunique()
                      .unstack(fill_value=0).reindex(columns=list(CATEGORIES), fill_value=0))
            shown = counts.copy()
            shown["Total"] = counts.sum(axis=1)
            shown.loc["Total"] = shown.sum(axis=0)
            shown = shown.astype(object)
        shown = _translate_table(shown)
        published["change"] = shown
        sec.table(shown.reset_index(), t("change.caption_programme") + (
            " " + t("common.suppression_note", threshold=th) if ctx.public else ""))
    ctx.published.update(published)


def _public_counts(ctx: Context, assessed: pd.DataFrame) -> pd.DataFrame:
    """Clients per construct and change category as a public document prints them.

    The cells come from the one suppression pattern of all public documents
    (:mod:`effectstudy.report.publication`): the report's table is the sum of the
    dossiers' tables, so they are protected together.
    """
    constructs = sorted((str(c) for c in assessed["construct"].unique()),
                        key=lambda c: str(pretty(c)))
    shown = shown_cube(ctx.plan, ctx.programme, constructs)
    return shown.rename(index=lambda c: c if c == "Total" else pretty(c))


def _share(k: int, n: int, threshold: int, mark: int | str | None = None) -> str:
    """'k (p%)'; for the public, '<5' for a count below the threshold (no percentage:
    it would give k) and 'x' when the clients outside the range, ``n - k``, are fewer
    than the threshold (k next to n would print that count too). ``mark`` is how the
    one suppression pattern shows ``k`` (a string when it is hidden)."""
    if isinstance(mark, str):
        return mark
    if threshold and k < threshold:
        return f"<{threshold}"
    if threshold and n - k < threshold:
        # an 'x' is at least the threshold and at most n: fewer than three values when
        # n < threshold + 2, so the norm view prints no share of such a row at all
        return SECONDARY_LABEL
    return f"{k} ({num(100 * k / n, 0)}%)" if n else ""


def _num(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return num(v, digits).rstrip("0").rstrip(".,") if num(v, digits) else ""


def _summary_wide(summ: pd.DataFrame) -> pd.DataFrame:
    """Internal change summary, one row per programme and construct (presentation only)."""
    rows = []
    for (prog, construct), g in summ.groupby(["programme", "construct"], sort=True):
        assessed = int(g["n_assessed"].iloc[0])
        if assessed == 0:
            continue
        row = {t("col.programme"): prog, t("col.construct"): pretty(construct),
               t("col.assessed"): assessed,
               t("col.not_assessable"): int(g["n_not_assessable"].iloc[0])}
        for _, r in g.iterrows():
            # non-breaking spaces keep "n (p%, lower-upper%)" on one line
            row[pretty(r["category"])] = (
                f"{int(r['n'])}\u00a0({num(100 * r['proportion'], 0)}%,\u00a0"
                f"{num(100 * r['ci_lower'], 0)}-{num(100 * r['ci_upper'], 0)}%)")
        rows.append(row)
    return pd.DataFrame(rows)


def _kind(kind: Any) -> str:
    """A cut-off kind ('published', 'a', 'c') in the report's language."""
    from effectstudy.report.i18n import has

    k = str(kind).split(" (")[0]
    return t(f"cutoff_kind.{k}") if has(f"cutoff_kind.{k}") else k


#: Reasons of a note that hint at a group's size; the public sees a neutral one instead.
_SIZE_NOTES = ("no_usable_sd", "needs_three")


def _provenance_texts(ctx: Context, prov: pd.DataFrame, pre: str) -> pd.DataFrame:
    """The notes and sources of the reliable-change provenance in the report's language.

    They are rendered from the codes :func:`effectstudy.change.reliable_change` records
    (``note_codes``, ``sd_source_code``, ...) and the dictionary's texts of the norm groups
    (``meta["norm_groups"]``). Results saved before the codes hold the English texts only:
    those are shown marked as untranslated in a Dutch report (never passed off as Dutch).
    """
    prov = prov.copy()
    if "note_codes" not in prov:
        if ctx.public:
            prov["sd_source"] = prov["sd_source"].map(public_text)
            prov["note"] = prov["note"].map(public_note)
        for col in ("note", "sd_source", "cutoff_source"):
            prov[col] = prov[col].map(lambda v: dictionary_text(v) if _text(v) and " " in v else v)
        return prov
    occasion = pretty(pre)
    groups = ctx.meta.get("norm_groups", {})

    def group(name: Any) -> str:
        return dictionary_text(groups.get(name) or name) if _text(name) else ""

    notes, sd, cut, rel = [], [], [], []
    for _, r in prov.iterrows():
        codes = r["note_codes"].split(";") if _text(r["note_codes"]) else []
        if ctx.public:
            codes = ["some_programmes_no_sd" if c in _SIZE_NOTES else c for c in codes]
        notes.append(message("change.notes", codes, method=r.get("method", ""),
                             measure=f"{r['instrument']} {pretty(r['scale'])}"))
        sd.append(t("change.sd_source_norm", source=r["sd_source_key"], group=group(r["norm_used"]))
                  if r["sd_source_code"] == "norm"
                  else t("change.sd_source_sample", occasion=occasion))
        code = r["cutoff_source_code"]
        cut.append(r["cutoff_source_key"] if code == "published"
                   else t("change.cutoff_source_norm_sample", source=r["cutoff_source_key"],
                          group=group(r["norm_used"]), occasion=occasion)
                   if code == "norm_sample"
                   else t("change.cutoff_source_sample", occasion=occasion) if code == "sample"
                   else "")
        rel.append(t("change.unverified_source") if r.get("reliability_source_key") == UNVERIFIED
                   else r["reliability_source"])
    return prov.assign(note=notes, sd_source=sd, cutoff_source=cut, reliability_source=rel)


def _text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _provenance_tables(prov: pd.DataFrame) -> list[tuple[pd.DataFrame, str]]:
    """Split the reliable-change provenance into a compact table and a sources table."""
    measure = prov["instrument"] + " " + prov["scale"].map(pretty)
    rel = [f"{_num(r, 2)} ({label('reliability_type', ty)})" if _num(r, 2)
           else t("change.none_published")
           for r, ty in zip(prov["reliability"], prov["reliability_type"], strict=True)]
    cut = [f"{_num(c, 2)} ({_kind(k)})" if _num(c, 2) else ""
           for c, k in zip(prov["cutoff"], prov["cutoff_kind"], strict=True)]
    compact = pd.DataFrame({t("col.measure"): measure, t("col.reliability"): rel,
                            t("col.cutoff_kind"): cut, t("col.note"): prov["note"].fillna("")})
    sources = pd.DataFrame({t("col.measure"): measure,
                            t("col.reliability_source"): prov["reliability_source"],
                            t("col.sd_source"): prov["sd_source"],
                            t("col.cutoff_source"): prov["cutoff_source"]})
    return [(compact, t("change.provenance_caption")), (sources, t("change.sources_caption"))]
