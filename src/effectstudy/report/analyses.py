"""Run the analyses a spec asks for and collect their results for the report.

This is the only part of the report package that calls statistical code; the
renderer (:mod:`effectstudy.report.build`) lays out what is collected here and
computes nothing. Audience rules are applied here, once: a public report gets
suppressed tables and no case-level figures (unless the spec opts in), an internal
one gets pseudonymised case-level detail.
"""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from effectstudy import change
from effectstudy.dictionary import Dictionary
from effectstudy.report.suppression import protect, suppress_long, suppress_table, suppression_note

AUDIENCES = ("public", "internal")

#: Resolution of every report figure (the renderer shows figures at physical size).
FIGURE_DPI = 150


def _pretty(label: Any) -> Any:
    """A code-style label as a reader sees it: ``follow_up_6m`` -> ``follow-up 6m``."""
    if not isinstance(label, str):
        return label
    text = label.replace("follow_up_", "follow-up ")
    if text.endswith("_t"):
        text = text[:-2] + " (T-score)"
    return text.replace("_", " ")


@dataclass
class Block:
    """One element of a section: prose, a table or a figure (PNG bytes)."""

    kind: str  # "text" | "table" | "figure"
    content: Any
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)     # sentences for the methods text
    references: list[str] = field(default_factory=list)  # citations used

    def text(self, content: str) -> None:
        self.blocks.append(Block("text", content))

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(Block("table", frame, caption))

    def figure(self, fig, caption: str = "") -> None:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        plt.close(fig)
        self.blocks.append(Block("figure", buf.getvalue(), caption))


@dataclass
class Context:
    table: pd.DataFrame
    clients: pd.DataFrame
    dictionary: Dictionary
    spec: dict[str, Any]
    audience: str
    #: what earlier sections published, for later text (e.g. which flow counts are visible)
    published: dict[str, Any] = field(default_factory=dict)

    @property
    def public(self) -> bool:
        return self.audience == "public"

    @property
    def threshold(self) -> int:
        return int(self.spec.get("suppression", {}).get("threshold", 5))

    @property
    def suppress_zero(self) -> bool:
        return bool(self.spec.get("suppression", {}).get("suppress_zero", True))

    def programme_name(self, pid: str) -> str:
        prog = self.dictionary.programmes.get(pid)
        return (prog.short_name or prog.name) if prog else pid


def _round(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


# --------------------------------------------------------------------------- #
# Sample flow
# --------------------------------------------------------------------------- #
def sample_flow(ctx: Context) -> Section:
    sec = Section("flow", "Sample flow per programme")
    clients, table = ctx.clients, ctx.table
    outcome = table[table["session"].isna()] if "session" in table else table
    pre, post = ctx.spec.get("change", {}).get("pre", "intake"), ctx.spec.get("change", {}).get(
        "post", "discharge")
    analysed = (outcome[outcome["occasion"].isin([pre, post])]
                .groupby(["programme", "client"])["occasion"].nunique())
    analysed = analysed[analysed == 2].reset_index().groupby("programme")["client"].nunique()
    rows = {}
    for pid, grp in clients.groupby("programme", sort=True):
        ends = grp["end_reason"].value_counts()
        with_outcome = outcome.loc[outcome["programme"] == pid, "client"].nunique()
        rows[ctx.programme_name(pid)] = {
            "referred (in export)": len(grp),
            "included (any outcome score)": with_outcome,
            "completed care": int(ends.get("completed", 0)),
            "absconded": int(ends.get("absconded", 0)),
            "transferred": int(ends.get("transferred", 0)),
            f"analysed ({pre} and {post})": int(analysed.get(pid, 0)),
        }
    counts = pd.DataFrame(rows).T
    totals_row = counts.sum()
    flow_table = counts.copy()
    flow_table.loc["Total"] = totals_row
    if ctx.public:
        flow_table = _suppress_flow(flow_table, ctx.threshold, ctx.suppress_zero)
    ctx.published["flow"] = flow_table.copy()
    flow_table.index.name = "programme"
    sec.table(flow_table.reset_index(), "Clients per programme from export to analysis. "
              + (suppression_note(ctx.threshold) if ctx.public
                 else "Internal report: exact counts."))
    totals = {c: flow_table.loc["Total", c] for c in counts.columns}
    sec.figure(_flow_figure(totals), "Flow of clients across all programmes (CONSORT-like).")
    sec.methods.append(
        "Clients were counted from the harmonised exports; the end of care was coded as completed, "
        "absconded or transferred from each programme's registration.")
    return sec


def _suppress_flow(table: pd.DataFrame, threshold: int, suppress_zero: bool) -> pd.DataFrame:
    """Suppress the flow table with its real additive relations and bounds.

    Per programme, completed + absconded + transferred = referred, and analysed <=
    included <= referred; every column adds up to the Total row. The pattern is
    audited by integer programming (:func:`~effectstudy.report.suppression.protect`):
    no hidden cell is left with fewer than three possible values. A cell below the
    threshold is shown as ``<5``, a partner hidden to protect it as ``x``.
    """
    progs = [p for p in table.index if p != "Total"]
    cols = list(table.columns)
    values = {(r, c): float(table.loc[r, c]) for r in table.index for c in cols}
    ends = ["completed care", "absconded", "transferred"]
    rows = progs + ["Total"]
    lines = [([(r, c) for c in ends], (r, cols[0])) for r in rows
             if sum(values[(r, c)] for c in ends) == values[(r, cols[0])]]
    lines += [([(r, c) for r in progs], ("Total", c)) for c in cols]
    leq = [((r, cols[1]), (r, cols[0])) for r in rows]
    leq += [((r, cols[5]), (r, cols[1])) for r in rows]
    leq = [(a, b) for a, b in leq if values[a] <= values[b]]
    sup = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero, leq=leq)
    out = table.astype(object)
    for r, c in sup.hidden:
        out.loc[r, c] = sup.label((r, c), threshold)
    return out


def _sup(value: float, threshold: int) -> Any:
    return f"<{threshold}" if value < threshold else int(value)


def _flow_figure(totals: dict[str, Any]):
    """CONSORT-like flow: export -> included -> analysed, end of care as a side branch.

    The analysed clients are those with both scores (not a subset of one end-of-care
    group), so the end-of-care counts branch off the main line instead of feeding it.
    """
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
        for y, k in ((0.88, keys[0]), (0.58, keys[1]), (0.1, keys[5])):
            ax.text(x, y, f"{k}\nn = {totals[k]}", ha="center", va="center", bbox=box)
        side = r"$\bf{end\ of\ care}$" + "\n" + "\n".join(f"{k}: n = {totals[k]}" for k in keys[2:5])
        ax.text(0.66, 0.34, side, ha="left", va="center", bbox=box, linespacing=1.5)
        arrow = dict(arrowstyle="-|>", color=GREY, lw=1.2, shrinkA=0, shrinkB=0)
        ax.annotate("", xy=(x, 0.69), xytext=(x, 0.77), arrowprops=arrow)
        ax.annotate("", xy=(x, 0.21), xytext=(x, 0.47), arrowprops=arrow)
        ax.annotate("", xy=(0.645, 0.34), xytext=(x, 0.34), arrowprops=arrow)
    return fig


# --------------------------------------------------------------------------- #
# Descriptives
# --------------------------------------------------------------------------- #
def descriptives(ctx: Context) -> Section:
    sec = Section("descriptives", "Descriptives per construct, occasion and programme")
    t = ctx.table
    t = t[t["session"].isna()] if "session" in t else t
    wanted = ctx.spec.get("descriptives", {}).get("constructs")
    if wanted:
        t = t[t["construct"].isin(wanted)]
    occ_order = {o: ctx.dictionary.occasions[o].order for o in ctx.dictionary.occasions}
    desc = client_descriptives(t)
    desc["programme"] = desc["programme"].map(ctx.programme_name)
    desc["_o"] = desc["occasion"].map(occ_order)
    desc = desc.sort_values(["construct", "instrument", "scale", "programme", "_o"]).drop(columns="_o")
    desc = _round(desc, 2)
    desc.insert(1, "measure", desc["instrument"] + " " + desc["scale"])
    desc = desc.drop(columns=["instrument", "scale"])
    if ctx.public:
        desc = suppress_long(desc, count="n", statistics=["mean", "sd", "min", "max"],
                             threshold=ctx.threshold, suppress_zero=ctx.suppress_zero)
        # a minimum or maximum is one client's score: not for publication
        desc = desc.drop(columns=["min", "max"])
    note = (f" Cells with fewer than {ctx.threshold} clients are suppressed." if ctx.public else "")
    desc["measure"] = desc["measure"].map(_pretty)
    desc["occasion"] = desc["occasion"].map(_pretty)
    for construct, part in desc.groupby("construct", sort=True):
        sec.table(part.drop(columns="construct"),
                  f"{_pretty(construct).capitalize()}: raw scores per instrument scale. Programmes "
                  "measure the same construct with different instruments; compare within an "
                  "instrument." + note)
    sec.methods.append(
        "Descriptives are raw scale scores per programme and canonical occasion, over clients: a "
        "client with more than one score at an occasion (e.g. two measurements during treatment) "
        "enters with the mean of her scores there, so n counts clients and the mean and SD are "
        "taken over clients.")
    return sec


def client_descriptives(scores: pd.DataFrame) -> pd.DataFrame:
    """n, mean, SD, min and max of raw scores per construct, scale, programme and occasion.

    Several occasion labels of an export can map to one canonical occasion (two
    measurements ``during`` treatment, say); each client is first reduced to the
    mean of her scores at that occasion, so ``n`` is the number of distinct clients
    and the statistics are over clients, never over repeated scores of one girl.
    """
    keys = ["construct", "instrument", "scale", "programme", "occasion"]
    per_client = (scores.dropna(subset=["raw"]).groupby(keys + ["client"], sort=True)["raw"]
                  .mean().reset_index())
    return (per_client.groupby(keys, sort=True)["raw"]
            .agg(n="count", mean="mean", sd="std", min="min", max="max").reset_index())


# --------------------------------------------------------------------------- #
# Reliable change
# --------------------------------------------------------------------------- #
def reliable_change_section(ctx: Context) -> Section:
    spec = ctx.spec.get("change", {})
    pre, post = spec.get("pre", "intake"), spec.get("post", "discharge")
    method = spec.get("method", "jacobson-truax")
    sec = Section("change", f"Reliable and clinically significant change ({pre} to {post})")
    rc = change.reliable_change(ctx.table, pre=pre, post=post, method=method,
                                constructs=spec.get("constructs"), dictionary=ctx.dictionary)
    assessed = rc[rc["category"] != "not assessable"]
    if ctx.public:
        # Distinct clients per construct and category (a client counts once per
        # construct), so the threshold applies to girls, not to client-construct pairs.
        counts = (assessed.assign(construct=assessed["construct"].map(_pretty))
                  .groupby(["construct", "category"])["client"].nunique().unstack(fill_value=0)
                  .reindex(columns=list(change.CATEGORIES), fill_value=0))
        shown = suppress_table(counts, threshold=ctx.threshold, suppress_zero=ctx.suppress_zero)
        shown.columns.name = None
        sec.table(shown.reset_index(),
                  "Number of clients per change category and construct, all programmes "
                  "together (programme-level counts are too small to publish). The Total row adds "
                  "up client-construct pairs. " + suppression_note(ctx.threshold))
    else:
        summ = change.summary(rc, by="programme")
        summ["programme"] = summ["programme"].map(ctx.programme_name)
        sec.table(_summary_wide(summ), "Per programme and construct: clients per category as "
                  "n (proportion of the assessed clients, exact Clopper-Pearson 95% CI). "
                  "Programme-construct pairs without any assessable client (no published "
                  "reliability) are left out; see the per-client table.")
        cols = ["programme", "client", "construct", "instrument", "pre", "post", "rci", "category"]
        cut = [f"{_num(c, 2)} ({str(k).split(' (')[0]})" if _num(c, 2) else ""
               for c, k in zip(rc["cutoff"], rc["cutoff_kind"], strict=True)]
        per_client = (_round(rc[cols], 2)
                      .assign(programme=rc["programme"].map(ctx.programme_name),
                              construct=rc["construct"].map(_pretty), cutoff=cut)
                      .sort_values(["programme", "construct", "client"], kind="stable"))
        sec.table(per_client.rename(columns={"rci": "RCI", "cutoff": "cut-off (kind)"}),
                  "Per client (pseudonyms). RCI: reliable change index; empty where the scale has "
                  "no published reliability.")
        for construct in sorted(assessed["construct"].unique())[:3]:
            sec.figure(change.jacobson_plot(rc, construct=construct),
                       f"Jacobson plot for {_pretty(construct)}: intake (x) against discharge (y) "
                       "score per client. Grey band: no reliable change; dashed lines: clinical "
                       "cut-off.")
    prov = (rc[["instrument", "scale", "reliability", "reliability_type", "reliability_source",
                "sd_source", "cutoff", "cutoff_kind", "cutoff_source", "note"]]
            .drop_duplicates(["instrument", "scale"]).reset_index(drop=True))
    prov["reliability_source"] = prov["reliability_source"].map(ctx.dictionary.citation)
    if ctx.public:
        prov["sd_source"] = prov["sd_source"].map(_public_text)
        prov["note"] = prov["note"].map(_public_note)
    for table, caption in _provenance_tables(prov):
        sec.table(table, caption)
    sec.methods.append(
        f"Reliable change was assessed with the {method} index (|RCI| > 1.96) from {pre} to {post}, "
        "with reliabilities and norms taken from the data dictionary (sources listed); clinically "
        "significant change used the instrument's published clinical cut-off where available, "
        "otherwise cut-off c or a (Jacobson & Truax 1991). Scales without a published "
        "reliability were not classified.")
    sec.references.append("Jacobson N.S. & Truax P. (1991). Clinical significance: a statistical "
                          "approach to defining meaningful change in psychotherapy research. J "
                          "Consult Clin Psychol 59:12-19.")
    return sec


#: A client count written into a text: "(n=3)", "n = 3", "3 clients".
_COUNT_IN_TEXT = re.compile(r"\s*\(\s*n\s*=\s*[\d,.]+\s*\)|\bn\s*=\s*[\d,.]+")


def _public_text(text: Any) -> Any:
    """A provenance text without any client count in it (``(n=3)`` and the like)."""
    if not isinstance(text, str):
        return text
    return _COUNT_IN_TEXT.sub("", text).strip()


#: "client (3 levels)" in a model message: the number of clients in the model.
_LEVELS = re.compile(r"\((\d+) levels?\)")


def _public_message(text: str, threshold: int) -> str:
    """A model or test message for the public: group counts below the threshold and
    ``n=`` counts are left out ("client (3 levels)" -> "client (few levels)")."""
    text = _LEVELS.sub(lambda m: "(few levels)" if int(m.group(1)) < threshold else m.group(0),
                       str(text))
    return _public_text(text)


def _public_note(note: Any) -> Any:
    """A reliable-change note for the public: reasons that hint at a group's size
    ('fewer than 2 clients', 'needs at least 3 clients') become a neutral reason."""
    if not isinstance(note, str) or not note:
        return note
    parts = []
    for part in note.split("; "):
        if "no usable SD" in part or "needs at least" in part:
            part = "no usable sample SD in some programmes: RCI not computed there"
        else:
            part = _public_text(part)
        parts.append(part)
    return "; ".join(dict.fromkeys(parts))


def _num(v: Any, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return ""
    return f"{float(v):.{digits}f}".rstrip("0").rstrip(".")


def _summary_wide(summ: pd.DataFrame) -> pd.DataFrame:
    """Internal change summary, one row per programme and construct (presentation only)."""
    rows = []
    for (prog, construct), g in summ.groupby(["programme", "construct"], sort=True):
        assessed = int(g["n_assessed"].iloc[0])
        if assessed == 0:
            continue
        row = {"programme": prog, "construct": _pretty(construct), "assessed": assessed,
               "not assessable": int(g["n_not_assessable"].iloc[0])}
        for _, r in g.iterrows():
            # non-breaking spaces keep "n (p%, lower-upper%)" on one line
            row[r["category"]] = (f"{int(r['n'])}\u00a0({100 * r['proportion']:.0f}%,\u00a0"
                                  f"{100 * r['ci_lower']:.0f}-{100 * r['ci_upper']:.0f}%)")
        rows.append(row)
    cols = ["programme", "construct", "assessed", "not assessable",
            *[c for c in change.CATEGORIES if c in summ["category"].unique()]]
    return pd.DataFrame(rows).reindex(columns=cols)


def _provenance_tables(prov: pd.DataFrame) -> list[tuple[pd.DataFrame, str]]:
    """Split the reliable-change provenance into a compact table and a sources table."""
    measure = prov["instrument"] + " " + prov["scale"].map(_pretty)
    rel = [f"{_num(r, 2)} ({t})" if _num(r, 2) else "none published"
           for r, t in zip(prov["reliability"], prov["reliability_type"], strict=True)]
    cut = [f"{_num(c, 2)} ({str(k).split(' (')[0]})" if _num(c, 2) else ""
           for c, k in zip(prov["cutoff"], prov["cutoff_kind"], strict=True)]
    compact = pd.DataFrame({"measure": measure, "reliability": rel, "cut-off (kind)": cut,
                            "note": prov["note"].fillna("")})
    sources = pd.DataFrame({"measure": measure, "reliability source": prov["reliability_source"],
                            "SD source": prov["sd_source"], "cut-off source": prov["cutoff_source"]})
    return [
        (compact, "Reliability and clinical cut-off per instrument scale (data dictionary). "
                  "Cut-off kinds (Jacobson & Truax 1991): a = two SDs beyond the mean of the "
                  "clinical sample; c = between the clinical and the norm mean; published = the "
                  "instrument's published clinical cut-off."),
        (sources, "Where every number comes from: the source of each reliability, SD and cut-off."),
    ]


# --------------------------------------------------------------------------- #
# Single case
# --------------------------------------------------------------------------- #
def single_case_section(ctx: Context) -> Section:
    from effectstudy import sced

    spec = ctx.spec.get("single_case", {})
    sec = Section("single_case", "Single-case results (multiple baseline)")
    t = ctx.table
    series = t[t["occasion"] == "session"]
    if spec.get("instrument"):
        series = series[series["instrument"] == spec["instrument"]]
    if spec.get("construct"):
        series = series[series["construct"] == spec["construct"]]
    if spec.get("programmes"):
        series = series[series["programme"].isin(spec["programmes"])]
    if series.empty:
        sec.text("No single-case series in the data.")
        return sec
    improvement = spec.get("improvement", "decrease")
    measures = spec.get("measures", ["NAP", "Tau_U", "PND"])
    rand_spec = spec.get("randomization", {})
    series = series.rename(columns={"sced_phase": "phase_ab"})
    es_all, rand_rows, checks = [], [], []
    for pid, grp in series.groupby("programme", sort=True):
        name = ctx.programme_name(pid)
        labels = _case_labels(grp["client"], ctx.public)
        g = grp.assign(case=grp["client"].map(labels))
        es = sced.effect_sizes(g, case="case", phase="phase_ab", session="session", outcome="raw",
                               improvement=improvement, measures=measures)
        es.insert(0, "programme", name)
        es_all.append(es)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rt = sced.randomization_test(
                g, case="case", phase="phase_ab", session="session", outcome="raw", design="MB",
                statistic=rand_spec.get("statistic", "mean_difference"),
                min_phase_length=rand_spec.get("min_phase_length", 3),
                n_samples=rand_spec.get("n_samples"),
                rng=np.random.default_rng(ctx.spec.get("seed", 2026)),
                improvement=improvement)
        n_cases = g["case"].nunique()
        rand_rows.append({"programme": name,
                          "cases": _sup(n_cases, ctx.threshold) if ctx.public else n_cases,
                          "statistic": rand_spec.get("statistic", "mean_difference"),
                          "observed": rt.observed, "p_value": rt.p_value,
                          "n_assignments": rt.n_assignments, "min_p": rt.min_p,
                          "warning": "; ".join(str(w.message) for w in caught)})
        check = sced.design_check(g, case="case", phase="phase_ab", session="session", design="MB")
        check.insert(0, "programme", name)
        checks.append(check)
        if not ctx.public or ctx.spec.get("public_individual_series", False):
            fig = sced.multiple_baseline_plot(g, case="case", phase="phase_ab", session="session",
                                              outcome="raw", trend=True,
                                              title=f"{name}: {spec.get('instrument', '')}",
                                              ylabel="weekly rating")
            sec.figure(fig, f"Multiple-baseline graph, {name}: one panel per case, ordered by "
                       "the start of the intervention. Dashed line: phase change; dotted lines: "
                       "least-squares trend per phase.")
    case_level = not ctx.public or ctx.spec.get("public_individual_series", False)
    es_table = pd.concat(es_all, ignore_index=True)
    if case_level:
        sec.table(_effect_sizes_wide(es_table), "Effect sizes per case: estimate [95% CI] where a "
                  "CI is available. NAP and PND are proportions (1 = no overlap between phases); "
                  "SMD is in baseline SDs; LRRd is the log response ratio (negative = decrease); "
                  "Tau-U (Parker et al. 2011) corrects for baseline trend and is not bounded by 1"
                  + (". Cases are numbered, not named." if ctx.public else "; cases are pseudonyms."))
    else:
        sec.text("Effect sizes per case (" + ", ".join(measures) + ") are case-level results and "
                 "appear only in the internal report (or when the analysis spec sets "
                 "public_individual_series). The randomization tests below use all cases of a "
                 "programme together.")
    rand = pd.DataFrame(rand_rows)
    rand["statistic"] = rand["statistic"].map(_pretty)
    warned = [f"{r['programme']}: {r['warning']}" for r in rand_rows if r["warning"]]
    if ctx.public:
        warned = [_public_message(w, ctx.threshold) for w in warned]
    rand = rand.drop(columns="warning")
    sec.table(_round(rand, 4),
              "Randomization tests over the possible staggered start points: observed statistic, "
              "p-value, number of possible assignments and the smallest attainable p-value.")
    if warned:
        sec.text("Randomization test messages: " + "; ".join(warned))
    design = pd.concat(checks, ignore_index=True)
    if not case_level:
        # Study-level checks only, as ratings: the values (points per case, number of
        # baselines) would count cases.
        design = design.loc[design["case"] == "ALL", ["programme", "check", "rating"]]
    design["check"] = design["check"].map(_pretty)
    if "case" in design:
        design["case"] = design["case"].replace({"ALL": "all cases"})
    sec.table(design, "What Works Clearinghouse design checks (Kratochwill et al. 2010, 2013)"
              + (": the value found, the value that meets the standards and the value that meets "
                 "them with reservations." if case_level else
                 ": study-level ratings only (per-case values are in the internal report)."))
    sec.methods.append(
        f"Single-case series ({spec.get('instrument', 'weekly ratings')}) were analysed per case "
        f"with {', '.join(measures)} (improvement = {improvement}) and per programme with a "
        "multiple-baseline randomization test that permutes the start points, never the "
        "observations.")
    sec.references += [
        "Parker R.I., Vannest K.J., Davis J.L. & Sauber S.B. (2011). Combining nonoverlap and trend "
        "for single-case research: Tau-U. Behav Ther 42:284-299.",
        "Kratochwill T.R. et al. (2010). Single-case designs technical documentation. What Works "
        "Clearinghouse.",
        "Marascuilo L.A. & Busk P.L. (1988). Combining statistics for multiple-baseline AB and "
        "replicated ABAB designs across subjects. Behav Assess 10:1-28.",
    ]
    return sec


def _effect_sizes_wide(es: pd.DataFrame) -> pd.DataFrame:
    """One row per case, one column per effect size: ``estimate [lower, upper]``."""
    order = list(dict.fromkeys(es["measure"]))
    rows = []
    for (prog, case), g in es.groupby(["programme", "case"], sort=False):
        row = {"programme": prog, "case": case}
        for _, r in g.iterrows():
            def two(v):
                return f"{float(v):.2f}" if _num(v) else ""

            text = two(r["estimate"])
            if two(r.get("ci_lower")) and two(r.get("ci_upper")):
                text += f"\u00a0[{two(r['ci_lower'])},\u00a0{two(r['ci_upper'])}]"
            row[str(r["measure"]).replace("_", "-")] = text
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=["programme", "case",
                                               *[m.replace("_", "-") for m in order]])


def _case_labels(clients: pd.Series, public: bool) -> dict[str, str]:
    uniq = sorted(clients.unique())
    if public:
        return {c: f"case {i + 1}" for i, c in enumerate(uniq)}
    return {c: c for c in uniq}


# --------------------------------------------------------------------------- #
# Multilevel
# --------------------------------------------------------------------------- #
def multilevel_section(ctx: Context) -> Section:
    from effectstudy import multilevel

    spec = ctx.spec.get("multilevel", {})
    construct = spec.get("construct", "internalising")
    formula = spec.get("formula", "z ~ week + (1 + week | client)")
    ddf = spec.get("ddf", "kenward-roger")
    sec = Section("multilevel", f"Multilevel growth model: {construct}")
    t = ctx.table
    scores = t[(t["construct"] == construct) & t["session"].isna()]
    d = scores[scores["z"].notna()].copy()
    n_no_norm = len(scores) - len(d)
    if n_no_norm:
        few = ctx.public and n_no_norm < ctx.threshold
        count_text = (f"A few (fewer than {ctx.threshold}) scores" if few
                      else f"{n_no_norm} of {len(scores)} scores")
        sec.text(f"{count_text} of this construct have no applicable "
                 "published norm (instrument without a verified norm, or a client outside the "
                 "norm group's ages) and so no z; they are not in this model. Their omission is "
                 "not random: it concerns whole instruments and the oldest clients.")
    d = d.merge(ctx.clients[["programme", "client", "age", "fidelity"]], on=["programme", "client"],
                how="left")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = multilevel.fit(formula, d, reml=spec.get("reml", True))
        coefs = fit.coefficients(ddf=ddf)
    ddf_name = "-".join(w.capitalize() for w in str(ddf).split("-"))
    sec.table(_round(coefs, 4), f"Fixed effects with {ddf_name} small-sample degrees of freedom "
              f"(n = {len(d)} scores).")
    sec.table(_round(fit.variance_components(), 4), "Variance components (SD and correlation).")
    msgs = list(getattr(fit, "messages", []) or []) + [str(w.message) for w in caught]
    if ctx.public:
        msgs = [_public_message(m, ctx.threshold) for m in msgs]
    if msgs:
        sec.text("Model messages: " + "; ".join(dict.fromkeys(msgs)))
    pred = None
    if set(fit.fixed_names) <= {"Intercept", "week"} and "week" in fit.fixed_names and len(d):
        grid = np.linspace(0.0, float(np.nanmax(d["week"])), 40)
        pred = multilevel.predicted_means(fit, {"week": list(grid)}, ddf=ddf)
    band = (f" with its 95% confidence band ({ddf} df)" if pred is not None else "")
    sec.figure(_trajectory_figure(d, coefs, ctx, pred), f"Model-implied mean trajectory of "
               f"{construct} (fixed effects only, black line){band}; points are programme means "
               "per occasion"
               + (f" (means of fewer than {ctx.threshold} clients left out)." if ctx.public
                  else "."))
    sec.methods.append(
        f"Growth in {construct} (norm-referenced z) was modelled with a linear mixed model "
        f"({formula}) fitted by REML; tests use {ddf_name} denominator degrees of freedom, which stay "
        "honest with few clients (Kenward & Roger 1997; Kuznetsova et al. 2017).")
    sec.references += [
        "Kenward M.G. & Roger J.H. (1997). Small sample inference for fixed effects from restricted "
        "maximum likelihood. Biometrics 53:983-997.",
        "Kuznetsova A., Brockhoff P.B. & Christensen R.H.B. (2017). lmerTest package: tests in "
        "linear mixed effects models. J Stat Softw 82(13).",
    ]
    return sec


def _trajectory_figure(d: pd.DataFrame, coefs: pd.DataFrame, ctx: Context,
                       pred: pd.DataFrame | None = None):
    import matplotlib.pyplot as plt

    from effectstudy.style import color, use_style

    est = coefs.set_index("term")["estimate"]
    time_terms = [t for t in est.index if t != "Intercept"]
    slope_term = time_terms[0] if time_terms else None
    # one fixed colour per programme (dictionary order), whichever programmes are shown
    order = sorted(ctx.dictionary.programmes)
    with use_style():
        fig, ax = plt.subplots(figsize=(6.6, 4.0))
        means = (d.groupby(["programme", "occasion"]).agg(week=("week", "median"), z=("z", "mean"),
                                                          n=("client", "nunique")).reset_index())
        if ctx.public:
            means = means[means["n"] >= ctx.threshold]
        for pid, g in means.groupby("programme"):
            g = g.sort_values("week")
            i = order.index(pid) if pid in order else len(order)
            ax.plot(g["week"], g["z"], "o", color=color(i), label=ctx.programme_name(pid),
                    ms=6, markeredgecolor="white", markeredgewidth=0.6)
        weeks = np.linspace(0, float(np.nanmax(d["week"])) if len(d) else 1, 50)
        if pred is not None:
            ax.fill_between(pred["week"], pred["ci_lower"], pred["ci_upper"], color="0.8",
                            alpha=0.7, lw=0, label="95% confidence band")
            ax.plot(pred["week"], pred["estimate"], color="black", lw=2,
                    label="model-implied mean")
        elif slope_term is not None:
            line = est["Intercept"] + est[slope_term] * weeks
            ax.plot(weeks, line, color="black", lw=2, label="model-implied mean")
        ax.axhline(0, color="0.6", lw=0.8, ls=":", zorder=0)
        ax.set_xlabel("weeks since intake")
        ax.set_ylabel("z-score (0 = norm mean)")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3, borderaxespad=0)
    return fig


# --------------------------------------------------------------------------- #
# Power
# --------------------------------------------------------------------------- #
def power_section(ctx: Context) -> Section:
    from effectstudy import power

    spec = ctx.spec.get("power", {})
    sec = Section("power", "Power of a planned growth-model study")
    des = dict(spec.get("design", {}))
    layout_keys = {"programmes", "clients_per_programme", "weeks", "dropout"}
    planned = {k: des.pop(k) for k in list(des) if k in layout_keys}
    design = power.GrowthDesign.planned(**planned, seed=ctx.spec.get("seed", 2026), **des)
    res = power.simulate(design, nsim=int(spec.get("nsim", 200)), seed=ctx.spec.get("seed", 2026),
                         n_jobs=int(spec.get("n_jobs", 1)), alpha=float(spec.get("alpha", 0.05)),
                         progress=False)
    frame = res.to_frame()
    shown = [c for c in ("test", "power", "ci_lower", "ci_upper", "nsim", "successes", "n_failed",
                         "n_singular", "alpha") if c in frame.columns]
    sec.table(_round(frame[shown], 3), "Simulated power with its Monte Carlo 95% CI; failed and "
              "singular replicates are counted, never dropped.")
    sec.methods.append(
        f"Power was simulated ({res.nsim} replicates) for a planned growth study of "
        f"{planned.get('programmes', '?')} programmes with {planned.get('clients_per_programme', '?')}"
        f" clients each, measured at weeks {', '.join(map(str, planned.get('weeks', [])))}, "
        f"with {100 * float(planned.get('dropout', 0)):.0f}% dropout; the {des.get('test_term', 'time')}"
        f" effect was tested with {des.get('ddf', 'satterthwaite')} degrees of freedom at alpha "
        f"{spec.get('alpha', 0.05)}. Effects were entered by the planner, not taken from the data.")
    return sec


# --------------------------------------------------------------------------- #
# Methods, limitations, SCRIBE
# --------------------------------------------------------------------------- #
SCRIBE_ITEMS = [
    (1, "Title"), (2, "Abstract"), (3, "Scientific background"), (4, "Aims"), (5, "Design"),
    (6, "Procedural changes"), (7, "Replication"), (8, "Randomization"), (9, "Blinding"),
    (10, "Selection criteria"), (11, "Participant characteristics"), (12, "Setting"),
    (13, "Ethics"), (14, "Measures"), (15, "Equipment"), (16, "Intervention"),
    (17, "Procedural fidelity"), (18, "Analyses"), (19, "Sequence completed"),
    (20, "Outcomes and estimation"), (21, "Adverse events"), (22, "Interpretation"),
    (23, "Limitations"), (24, "Applicability"), (25, "Protocol"), (26, "Funding"),
]

_SCRIBE_COVERED = {
    1: "report title", 5: "Single-case results: design checks", 7: "Single-case results: cases "
    "per programme (design checks)", 8: "Single-case results: randomization tests",
    11: "partly: Programmes (ages served), Sample flow (end of care); individual characteristics "
    "to be written by the authors", 12: "Programmes (setting, duration)",
    14: "Descriptives; reliable change provenance (instruments and their sources)",
    17: "Programmes (fidelity score per programme)", 18: "Methods", 19: "Single-case results: "
    "points per phase (design checks)", 20: "Single-case results: effect sizes with CIs",
    23: "Limitations",
}


def scribe_checklist() -> Section:
    sec = Section("scribe", "SCRIBE 2016 checklist (single-case parts)")
    rows = [{"item": n, "topic": topic,
             "covered": "yes" if n in _SCRIBE_COVERED else "to be written by the authors",
             "where": _SCRIBE_COVERED.get(n, "")} for n, topic in SCRIBE_ITEMS]
    sec.table(pd.DataFrame(rows), "Which of the 26 SCRIBE items this generated report covers "
              "(Tate et al. 2016).")
    sec.references.append("Tate R.L. et al. (2016). The Single-Case Reporting Guideline In "
                          "BEhavioural Interventions (SCRIBE) 2016 statement. Phys Ther 96:e1-e10.")
    return sec


def programmes_section(ctx: Context) -> Section:
    sec = Section("programmes", "Programmes")
    fid = ctx.clients.groupby("programme")["fidelity"].first()
    rows = []
    for pid, prog in ctx.dictionary.programmes.items():
        if pid not in set(ctx.clients["programme"]):
            continue
        rows.append({"programme": prog.name, "provider": prog.provider, "setting": prog.setting,
                     "max weeks": (prog.maximum_weeks.value if prog.maximum_weeks.verified
                                   else "not documented"),
                     "phases": len(prog.phases),
                     "ages": (f"{prog.age_min:g}-{prog.age_max:g}"
                              if prog.age_min is not None and prog.age_source != "UNVERIFIED"
                              else "not documented"),
                     "reach": prog.reach, "fidelity (0-10)": fid.get(pid)})
    sec.table(pd.DataFrame(rows), "The programmes as described in the data dictionary; the "
              "fidelity score is programme-level (programme integrity is not yet established). "
              "Empty cells: not stated in the programme description.")
    return sec


def limitations_section(ctx: Context) -> Section:
    sec = Section("limitations", "Limitations")
    n_by = ctx.clients.groupby("programme").size()
    if ctx.public:
        sizes = public_size_range(n_by, ctx.threshold, ctx.published.get("flow"),
                                  {p: ctx.programme_name(p) for p in n_by.index})
    else:
        sizes = ", ".join(f"{ctx.programme_name(p)} {n}" for p, n in n_by.items())
        sizes += f" clients in the exports; {len(ctx.clients)} in all across {len(n_by)} programmes"
    sec.text(
        f"The groups are small ({sizes}). Estimates per programme are imprecise and tests have "
        "little power; single-case designs and small-sample corrections were used where they "
        "help, but they do not create information the data lack. Programmes differ in setting, "
        "duration, phases and instruments: comparisons between programmes are descriptive, not "
        "causal. Dropout is high and not at random (girls abscond or are transferred); analyses "
        "of completers and mixed models under missing-at-random may both be biased. Programme "
        "integrity is not yet established, and care was tailored per client. Norms and "
        "reliabilities without a published source were not used (see the data dictionary).")
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
        return f"fewer than {threshold} clients per programme in the exports, {k} programmes"
    names = names or {}

    def shown(pid: Any) -> str:
        value = int(n_by[pid])
        if value < threshold:
            return f"fewer than {threshold}"
        if flow is not None:
            row = names.get(pid, pid)
            cell = flow.loc[row, flow.columns[0]] if row in flow.index else None
            if not _is_count(cell) or int(cell) != value:
                return f"{threshold} or more"
        return str(value)

    low, high = shown(n_by.idxmin()), shown(n_by.idxmax())
    span = f"{high} clients" if low == high else f"from {low} to {high} clients"
    return f"{span} per programme in the exports, {k} programmes"


def _is_count(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #
def run_sections(table: pd.DataFrame, clients: pd.DataFrame, dictionary: Dictionary,
                 spec: dict[str, Any], audience: str) -> list[Section]:
    """Compute every section the spec asks for, in report order."""
    if audience not in AUDIENCES:
        from effectstudy.errors import SpecError

        raise SpecError(f"audience must be one of {AUDIENCES}, got {audience!r}")
    ctx = Context(table, clients, dictionary, spec, audience)
    sections = [programmes_section(ctx), sample_flow(ctx), descriptives(ctx)]
    if "change" in spec:
        sections.append(reliable_change_section(ctx))
    if "single_case" in spec:
        sections.append(single_case_section(ctx))
    if "multilevel" in spec:
        sections.append(multilevel_section(ctx))
    if "power" in spec:
        sections.append(power_section(ctx))
    sections.append(scribe_checklist())
    sections.append(limitations_section(ctx))
    return sections
