"""Lay out saved study results as report sections (a pure renderer).

Every number comes from :class:`~effectstudy.study.StudyResults`; this module
computes no statistic. What it does: choose what an audience may see (a public
report gets suppressed tables, no case-level results unless the spec opts in, no
client counts below the threshold in any text), translate (every text is a key of
the message catalogue, :mod:`effectstudy.report.i18n`), format numbers per locale
and draw figures from the saved numbers. A programme dossier
(``programme=ID``) shows that programme's results only: never another
programme's client-level results.

Long because it holds one small layout function per report section (programmes, flow,
descriptives, change, single case, slopes, growth, dropout, power, recognition, SCRIBE,
limitations) and their figures, each reading its own saved result; the sections share the
audience rules and the catalogue, so keeping them together keeps those rules in one place.
A split into one module per section is noted as open work.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.report.i18n import num, t
from effectstudy.report.suppression import protect, suppress_long, suppress_table

AUDIENCES = ("public", "internal")

#: Resolution of every report figure (the renderer shows figures at physical size).
FIGURE_DPI = 150

#: Reliable-change categories in report order (as :mod:`effectstudy.change` names them).
CATEGORIES = ("recovered", "improved", "unchanged", "deteriorated")
#: The flow columns; end of care is completed, absconded, transferred or unknown (not
#: recorded), and the four add up to the referred clients.
FLOW_COLUMNS = ("referred", "included", "completed", "absconded", "transferred", "unknown",
                "analysed")


def _pretty(value: Any) -> Any:
    """A code-style label as a reader sees it (occasion, construct, scale, category...)."""
    from effectstudy.report.i18n import has

    if not isinstance(value, str):
        return value
    for group in ("occasion", "construct", "category", "check", "rating", "statistic",
                  "direction", "scale"):
        if has(f"{group}.{value}"):
            return t(f"{group}.{value}")
    if value.endswith("_t"):
        stem = value[:-2]
        base = t(f"scale.{stem}") if has(f"scale.{stem}") else stem.replace("_", " ")
        return f"{base} {t('common.t_score')}"
    return value.replace("_", " ")


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


class Context:
    """What a section renders from: the saved results, the audience, the programme.

    ``Context(results, audience, programme)``. The older form
    ``Context(table=..., clients=..., dictionary=..., spec=..., audience=...)`` is
    still accepted: the study layer then runs on those frames when a section first
    needs results (the renderer itself still computes nothing).
    """

    def __init__(self, results: Any = None, audience: str = "public",
                 programme: str | None = None, published: dict[str, Any] | None = None, *,
                 table: pd.DataFrame | None = None, clients: pd.DataFrame | None = None,
                 dictionary: Any = None, spec: dict[str, Any] | None = None) -> None:
        if results is None and (table is None or clients is None or spec is None):
            from effectstudy.errors import SpecError

            raise SpecError("a report context needs study results (or table, clients and spec)")
        self._results = results
        self._legacy = None if results is not None else (spec, table, clients, dictionary)
        self.audience = audience
        self.programme = programme
        #: what earlier sections published, for later text (e.g. which flow counts are visible)
        self.published: dict[str, Any] = published if published is not None else {}

    @property
    def results(self) -> Any:  # effectstudy.study.StudyResults
        if self._results is None:
            from effectstudy.study import run  # the study layer computes, not the renderer

            spec, table, clients, dictionary = self._legacy
            self._results = run(spec, (table, clients), dictionary=dictionary)
        return self._results

    @property
    def spec(self) -> dict[str, Any]:
        return self._legacy[0] if self._results is None else self.results.spec

    @property
    def meta(self) -> dict[str, Any]:
        return self.results.meta

    @property
    def public(self) -> bool:
        return self.audience == "public"

    @property
    def threshold(self) -> int:
        return int(self.spec.get("suppression", {}).get("threshold", 5))

    @property
    def suppress_zero(self) -> bool:
        return bool(self.spec.get("suppression", {}).get("suppress_zero", True))

    @property
    def case_level(self) -> bool:
        return not self.public or bool(self.spec.get("public_individual_series", False))

    def programme_name(self, pid: str) -> str:
        prog = self.meta.get("programmes", {}).get(pid)
        return (prog.get("short_name") or prog.get("name")) if prog else pid

    def frame(self, name: str, *, own: bool = True) -> pd.DataFrame:
        """A saved result table; in a dossier (``own``) only this programme's rows."""
        f = self.results.frame(name)
        if own and self.programme is not None and "programme" in f:
            f = f[f["programme"] == self.programme]
        return f.reset_index(drop=True)

    def few(self) -> str:
        return t("common.fewer_than", threshold=self.threshold)


def _round(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


def _count_text(ctx: Context, value: Any) -> str:
    """A published count as text: the number, or 'fewer than 5' / '5 or more'."""
    if _is_count(value):
        return str(int(value))
    if isinstance(value, str) and value.startswith("<"):
        return ctx.few()
    return t("common.or_more", threshold=ctx.threshold)


# --------------------------------------------------------------------------- #
# Programmes
# --------------------------------------------------------------------------- #
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
                     t("col.setting"): prog["setting"],
                     t("col.max_weeks"): (prog["max_weeks"] if prog.get("max_weeks") is not None
                                          else t("common.not_documented")),
                     t("col.phases"): len(prog.get("phases", [])),
                     t("col.ages"): prog.get("ages") or t("common.not_documented"),
                     t("col.reach"): prog.get("reach"),
                     t("col.fidelity"): fid.get(pid)})
    sec.table(pd.DataFrame(rows), t("programmes.caption"))
    if ctx.programme is not None:
        prog = ctx.meta["programmes"][ctx.programme]
        if prog.get("aims"):
            sec.text(t("programmes.aims", aims=prog["aims"]))
        if prog.get("phases"):
            sec.text(t("programmes.phases", phases=", ".join(prog["phases"])))
    return sec


# --------------------------------------------------------------------------- #
# Sample flow
# --------------------------------------------------------------------------- #
def _flow_labels(ctx: Context) -> dict[str, str]:
    ch = ctx.meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    return {c: t(f"flow.{c}", pre=_pretty(pre), post=_pretty(post)) for c in FLOW_COLUMNS}


def sample_flow(ctx: Context) -> Section:
    sec = Section("flow", t("flow.title") if ctx.programme is None else t("flow.title_one"))
    flow = ctx.frame("flow")
    labels = _flow_labels(ctx)
    counts = pd.DataFrame({labels[c]: flow[c].astype(int).to_numpy() for c in FLOW_COLUMNS},
                          index=[ctx.programme_name(p) for p in flow["programme"]])
    total = t("common.total")
    table = counts.copy()
    if ctx.programme is None:
        table.loc[total] = counts.sum()
    if ctx.public:
        table = _suppress_flow(table, ctx.threshold, ctx.suppress_zero, total)
        if ctx.programme is not None:
            table = _as_in_the_joint_flow(ctx, table, labels, total)
    ctx.published["flow"] = table.copy()
    table.index.name = t("col.programme")
    sec.table(table.reset_index(), t("flow.caption") + " " + (
        t("common.suppression_note", threshold=ctx.threshold) if ctx.public
        else t("common.exact_counts")))
    totals = ({c: table.loc[total, c] for c in table.columns} if ctx.programme is None
              else {c: table.iloc[0][c] for c in table.columns})
    sec.figure(_flow_figure(totals), t("flow.figure") if ctx.programme is None
               else t("flow.figure_one"))
    sec.methods.append(t("flow.methods"))
    return sec


def _as_in_the_joint_flow(ctx: Context, row: pd.DataFrame, labels: dict[str, str],
                          total: str) -> pd.DataFrame:
    """A dossier's flow row, hiding every cell the cross-programme report hides too.

    The dossiers and the cross-programme report are published together: a cell the
    report hides (``<5``, or ``x`` as a partner) but a dossier printed would let a reader
    subtract it from the report's totals. So the suppression pattern of the full table
    (every programme and the Total row) is computed here exactly as the report computes
    it, and the dossier hides the union of that pattern and its own.
    """
    full = ctx.frame("flow", own=False)
    counts = pd.DataFrame({labels[c]: full[c].astype(int).to_numpy() for c in FLOW_COLUMNS},
                          index=[ctx.programme_name(p) for p in full["programme"]])
    counts.loc[total] = counts.sum()
    joint = _suppress_flow(counts, ctx.threshold, ctx.suppress_zero, total)
    name = ctx.programme_name(ctx.programme)
    out = row.astype(object).copy()
    for col in out.columns:
        mark = joint.loc[name, col]
        if isinstance(mark, str) and not isinstance(out.loc[name, col], str):
            out.loc[name, col] = mark
    return out


def _suppress_flow(table: pd.DataFrame, threshold: int, suppress_zero: bool,
                   total: str) -> pd.DataFrame:
    """Suppress the flow table with its real additive relations and bounds.

    Per programme, completed + absconded + transferred + unknown = referred, and analysed <=
    included <= referred; every column adds up to the Total row (when there is
    one). The pattern is audited by integer programming
    (:func:`~effectstudy.report.suppression.protect`): no hidden cell is left with
    fewer than three possible values. A cell below the threshold is shown as
    ``<5``, a partner hidden to protect it as ``x``.
    """
    progs = [p for p in table.index if p != total]
    cols = list(table.columns)
    values = {(r, c): float(table.loc[r, c]) for r in table.index for c in cols}
    ends = cols[2:6]
    rows = list(table.index)
    lines = [([(r, c) for c in ends], (r, cols[0])) for r in rows
             if sum(values[(r, c)] for c in ends) == values[(r, cols[0])]]
    if total in table.index:
        lines += [([(r, c) for r in progs], (total, c)) for c in cols]
    leq = [((r, cols[1]), (r, cols[0])) for r in rows]
    leq += [((r, cols[6]), (r, cols[1])) for r in rows]
    leq = [(a, b) for a, b in leq if values[a] <= values[b]]
    sup = protect(values, lines, threshold=threshold, suppress_zero=suppress_zero, leq=leq)
    out = table.astype(object)
    for r, c in sup.hidden:
        out.loc[r, c] = sup.label((r, c), threshold)
    return out


def _sup(value: float, threshold: int) -> Any:
    return f"<{threshold}" if value < threshold else int(value)


def _flow_figure(totals: dict[str, Any]):
    """CONSORT-like flow: export -> included -> analysed, end of care as a side branch."""
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
        for y, k in ((0.88, keys[0]), (0.58, keys[1]), (0.1, keys[6])):
            ax.text(x, y, f"{k}\nn = {totals[k]}", ha="center", va="center", bbox=box)
        head = t("flow.end_of_care").replace(" ", r"\ ")
        side = rf"$\bf{{{head}}}$" + "\n" + "\n".join(f"{k}: n = {totals[k]}" for k in keys[2:6])
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
    sec = Section("descriptives", t("descriptives.title"))
    desc = ctx.frame("descriptives")
    if desc.empty:
        sec.text(t("common.no_data"))
        return sec
    order = ctx.meta.get("occasion_order", {})
    desc = desc.assign(programme=desc["programme"].map(ctx.programme_name),
                       _o=desc["occasion"].map(order))
    desc = desc.sort_values(["construct", "instrument", "scale", "programme", "_o"]).drop(
        columns="_o")
    desc = _round(desc, 2)
    desc.insert(1, "measure", desc["instrument"] + " " + desc["scale"])
    desc = desc.drop(columns=["instrument", "scale"])
    if ctx.public:
        desc = suppress_long(desc, count="n", statistics=["mean", "sd", "min", "max"],
                             threshold=ctx.threshold, suppress_zero=ctx.suppress_zero)
        # a minimum or maximum is one client's score: not for publication
        desc = desc.drop(columns=["min", "max"])
    note = (" " + t("descriptives.note_public", threshold=ctx.threshold) if ctx.public else "")
    desc["measure"] = desc["measure"].map(_pretty_measure)
    desc["occasion"] = desc["occasion"].map(_pretty)
    for construct, part in desc.groupby("construct", sort=True):
        sec.table(part.drop(columns="construct"),
                  t("descriptives.caption", construct=_cap(_pretty(construct))) + note)
    sec.methods.append(t("descriptives.methods"))
    return sec


def _cap(text: Any) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]


def _pretty_measure(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    inst, _, scale = text.partition(" ")
    return f"{inst} {_pretty(scale)}".strip()


# --------------------------------------------------------------------------- #
# Reliable change, norm-referenced view, pre-post effect sizes
# --------------------------------------------------------------------------- #
def reliable_change_section(ctx: Context) -> Section:
    ch = ctx.meta.get("change", {})
    pre, post = ch.get("pre", "intake"), ch.get("post", "discharge")
    method = ch.get("method", "jacobson-truax")
    sec = Section("change", t("change.title", pre=_pretty(pre), post=_pretty(post)))
    rc = ctx.frame("rc")
    if rc.empty:
        sec.text(t("change.none"))
        return sec
    assessed = rc[rc["category"] != "not assessable"]
    if ctx.programme is not None:
        _dossier_change(ctx, sec, rc, assessed)
    elif ctx.public:
        counts = (assessed.assign(construct=assessed["construct"].map(_pretty))
                  .groupby(["construct", "category"])["client"].nunique().unstack(fill_value=0)
                  .reindex(columns=list(CATEGORIES), fill_value=0))
        shown = suppress_table(counts, threshold=ctx.threshold, suppress_zero=ctx.suppress_zero)
        shown = _translate_table(shown)
        sec.table(shown.reset_index(), t("change.caption_public") + " "
                  + t("common.suppression_note", threshold=ctx.threshold))
    else:
        summ = ctx.frame("rc_summary")
        summ = summ.assign(programme=summ["programme"].map(ctx.programme_name))
        sec.table(_summary_wide(summ), t("change.caption_internal"))
    if not ctx.public:
        _per_client(ctx, sec, rc, assessed)
    prov = (rc[["instrument", "scale", "reliability", "reliability_type", "reliability_source",
                "sd_source", "cutoff", "cutoff_kind", "cutoff_source", "note"]]
            .drop_duplicates(["instrument", "scale"]).reset_index(drop=True))
    if ctx.public:
        prov["sd_source"] = prov["sd_source"].map(_public_text)
        prov["note"] = prov["note"].map(_public_note)
    for table, caption in _provenance_tables(prov):
        sec.table(table, caption)
    sec.methods.append(t("change.methods", method=method, pre=_pretty(pre), post=_pretty(post)))
    sec.references.append(t("ref.jacobson"))
    return sec


def _translate_table(shown: pd.DataFrame) -> pd.DataFrame:
    shown = shown.rename(columns=lambda c: t("common.total") if c == "Total" else _pretty(c),
                         index=lambda r: t("common.total") if r == "Total" else r)
    shown.columns.name = None
    shown.index.name = t("col.construct")
    return shown


def _per_client(ctx: Context, sec: Section, rc: pd.DataFrame, assessed: pd.DataFrame) -> None:
    from effectstudy.change import jacobson_plot  # draws saved numbers, computes nothing

    cols = ["programme", "client", "construct", "instrument", "pre", "post", "rci", "category"]
    cut = [f"{_num(c, 2)} ({_kind(k)})" if _num(c, 2) else ""
           for c, k in zip(rc["cutoff"], rc["cutoff_kind"], strict=True)]
    per_client = (_round(rc[cols], 2)
                  .assign(programme=rc["programme"].map(ctx.programme_name),
                          construct=rc["construct"].map(_pretty),
                          category=rc["category"].map(_pretty), cutoff=cut)
                  .sort_values(["programme", "construct", "client"], kind="stable"))
    sec.table(per_client.rename(columns={"rci": "RCI", "cutoff": t("col.cutoff_kind")}),
              t("change.caption_per_client"))
    for construct in sorted(assessed["construct"].unique())[:3]:
        sec.figure(jacobson_plot(rc, construct=construct),
                   t("change.jacobson", construct=_pretty(construct)))


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
            row = {t("col.construct"): _pretty(r["construct"]),
                   t("col.measure"): _pretty_measure(f"{r['instrument']} {r['scale']}"),
                   t("col.cutoff_kind"): f"{_num(r['cutoff'], 2)} ({_kind(r['cutoff_kind'])})"}
            if ctx.public and n < th:
                row.update({"n": f"<{th}", t("col.clinical_pre"): "", t("col.clinical_post"): ""})
            elif ctx.public:
                row.update({"n": n, t("col.clinical_pre"): _share(k0, n, th),
                            t("col.clinical_post"): _share(k1, n, th)})
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
        for _, r in pp.sort_values(["construct", "instrument", "scale"]).iterrows():
            n = int(r["n"])
            row = {t("col.construct"): _pretty(r["construct"]),
                   t("col.measure"): _pretty_measure(f"{r['instrument']} {r['scale']}")}
            if ctx.public and n < th:
                row.update({"n": f"<{th}", "d_z": "", t("col.ci"): ""})
            else:
                row.update({"n": n, "d_z": num(r.get("d_z"), 2),
                            t("col.ci"): _ci(r.get("d_z_ci_lower"), r.get("d_z_ci_upper"))})
            rows.append(row)
        sec.table(pd.DataFrame(rows), t("change.prepost_caption"))
        published["prepost"] = pp
    # reliable and clinically significant change: clients per category and construct
    heading = t("change.rc_heading")
    sec.text(heading)
    if assessed.empty:
        sec.text(t("change.none_assessable"))
    else:
        counts = (assessed.assign(construct=assessed["construct"].map(_pretty))
                  .groupby(["construct", "category"])["client"].nunique().unstack(fill_value=0)
                  .reindex(columns=list(CATEGORIES), fill_value=0))
        if ctx.public:
            shown = suppress_table(counts, threshold=th, suppress_zero=ctx.suppress_zero)
        else:
            shown = counts.copy()
            shown["Total"] = counts.sum(axis=1)
            shown.loc["Total"] = shown.sum(axis=0)
            shown = shown.astype(object)
        shown = _translate_table(shown)
        published["change"] = shown
        sec.table(shown.reset_index(), t("change.caption_programme") + (
            " " + t("common.suppression_note", threshold=th) if ctx.public else ""))
    ctx.published.update(published)


def _share(k: int, n: int, threshold: int) -> str:
    """'k (p%)' or, for a count below the threshold, '<5' (no percentage: it would give k)."""
    if threshold and k < threshold:
        return f"<{threshold}"
    return f"{k} ({num(100 * k / n, 0)}%)" if n else ""


def _ci(lo: Any, hi: Any, decimals: int = 2) -> str:
    if lo is None or hi is None or not (np.isfinite(float(lo)) and np.isfinite(float(hi))):
        return ""
    return f"[{num(lo, decimals)}; {num(hi, decimals)}]"


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
    return num(v, digits).rstrip("0").rstrip(".,") if num(v, digits) else ""


def _summary_wide(summ: pd.DataFrame) -> pd.DataFrame:
    """Internal change summary, one row per programme and construct (presentation only)."""
    rows = []
    for (prog, construct), g in summ.groupby(["programme", "construct"], sort=True):
        assessed = int(g["n_assessed"].iloc[0])
        if assessed == 0:
            continue
        row = {t("col.programme"): prog, t("col.construct"): _pretty(construct),
               t("col.assessed"): assessed,
               t("col.not_assessable"): int(g["n_not_assessable"].iloc[0])}
        for _, r in g.iterrows():
            # non-breaking spaces keep "n (p%, lower-upper%)" on one line
            row[_pretty(r["category"])] = (
                f"{int(r['n'])}\u00a0({num(100 * r['proportion'], 0)}%,\u00a0"
                f"{num(100 * r['ci_lower'], 0)}-{num(100 * r['ci_upper'], 0)}%)")
        rows.append(row)
    return pd.DataFrame(rows)


def _kind(kind: Any) -> str:
    """A cut-off kind ('published', 'a', 'c') in the report's language."""
    from effectstudy.report.i18n import has

    k = str(kind).split(" (")[0]
    return t(f"cutoff_kind.{k}") if has(f"cutoff_kind.{k}") else k


def _provenance_tables(prov: pd.DataFrame) -> list[tuple[pd.DataFrame, str]]:
    """Split the reliable-change provenance into a compact table and a sources table."""
    measure = prov["instrument"] + " " + prov["scale"].map(_pretty)
    rel = [f"{_num(r, 2)} ({ty})" if _num(r, 2) else t("change.none_published")
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


# --------------------------------------------------------------------------- #
# Single case
# --------------------------------------------------------------------------- #
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
    shown = pd.DataFrame({
        t("col.programme"): rand["programme"].map(ctx.programme_name),
        "cases": [(_sup(n, ctx.threshold) if ctx.public else int(n)) for n in rand["cases"]],
        t("col.statistic"): rand["statistic"].map(_pretty),
        t("col.observed"): rand["observed"], "p_value": rand["p_value"],
        "n_assignments": rand["n_assignments"], "min_p": rand["min_p"]})
    shown = shown.rename(columns={"cases": t("col.cases")})
    sec.table(_round(shown, 4), t("single_case.rand_caption"))
    warned = [f"{ctx.programme_name(p)}: {w}" for p, w in zip(rand["programme"], rand["warning"],
                                                             strict=True)
              if isinstance(w, str) and w]
    if ctx.public:
        warned = [_public_message(w, ctx.threshold) for w in warned]
    if warned:
        sec.text(t("single_case.rand_messages") + " " + "; ".join(warned))
    if not design.empty:
        if ctx.case_level:
            d = design.assign(case=design["case"].map(
                lambda c: t("single_case.all_cases") if c == "ALL" else labels.get(c, c)))
            d = d.drop(columns=[c for c in ("phase",) if c in d])
        else:
            # study-level checks only, as ratings: per-case values would count cases
            d = design.loc[design["case"] == "ALL", ["programme", "check", "rating"]]
        d = d.assign(programme=d["programme"].map(ctx.programme_name),
                     check=d["check"].map(_pretty), rating=d["rating"].map(_pretty))
        d = d.rename(columns=lambda c: t(f"col.{c}") if _has_col(c) else c)
        sec.table(d, t("single_case.design_caption") + (
            t("single_case.design_case_level") if ctx.case_level
            else t("single_case.design_study_level")))
    sec.methods.append(t("single_case.methods", instrument=meta.get("instrument", ""),
                         measures=", ".join(measures),
                         improvement=_pretty(meta.get("improvement", "decrease"))))
    sec.references += [t("ref.parker"), t("ref.kratochwill"), t("ref.marascuilo")]
    return sec


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
            ci = _ci(r.get("ci_lower"), r.get("ci_upper"))
            if ci:
                text += "\u00a0" + ci.replace(" ", "\u00a0")
            row[str(r["measure"]).replace("_", "-")] = text
        rows.append(row)
    return pd.DataFrame(rows).reindex(columns=[t("col.programme"), t("col.case"),
                                               *[m.replace("_", "-") for m in order]])


# --------------------------------------------------------------------------- #
# Multilevel growth model (cross-programme report)
# --------------------------------------------------------------------------- #
def multilevel_section(ctx: Context) -> Section:
    meta = ctx.meta.get("multilevel", {})
    construct = meta.get("construct", "")
    ddf = meta.get("ddf", "kenward-roger")
    sec = Section("multilevel", t("multilevel.title", construct=_pretty(construct)))
    n_no = int(meta.get("n_no_norm", 0))
    if n_no:
        few = ctx.public and n_no < ctx.threshold
        count_text = (t("multilevel.few_scores", threshold=ctx.threshold) if few
                      else t("multilevel.some_scores", k=n_no, n=meta.get("n_scores_all")))
        sec.text(t("multilevel.no_norm", count=count_text))
    coefs = ctx.frame("ml_coefs", own=False)
    ddf_name = "-".join(w.capitalize() for w in str(ddf).split("-"))
    sec.table(_round(coefs, 4), t("multilevel.coef_caption", ddf=ddf_name,
                                  n=meta.get("n_scores")))
    sec.table(_round(ctx.frame("ml_varcomp", own=False), 4), t("multilevel.varcomp_caption"))
    msgs = list(meta.get("messages", []))
    if ctx.public:
        msgs = [_public_message(m, ctx.threshold) for m in msgs]
    if msgs:
        sec.text(t("multilevel.messages") + " " + "; ".join(dict.fromkeys(msgs)))
    pred = ctx.frame("ml_pred", own=False)
    band = t("multilevel.band", ddf=ddf) if len(pred) else ""
    sec.figure(_trajectory_figure(ctx, coefs, pred if len(pred) else None),
               t("multilevel.figure", construct=_pretty(construct), band=band) + (
                   " " + t("multilevel.figure_public", threshold=ctx.threshold)
                   if ctx.public else ""))
    sec.methods.append(t("multilevel.methods", construct=_pretty(construct),
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


# --------------------------------------------------------------------------- #
# Per-programme slopes: forest plots, heterogeneity, CR2 check
# --------------------------------------------------------------------------- #
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
        name = _pretty(construct)
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
                         t("col.ci_pct", pct=pct): _ci(r["ci_lower"], r["ci_upper"], 4),
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
        row = {t("col.programme"): ctx.programme_name(pid), t("col.setting"): prog["setting"],
               t("col.max_weeks"): prog.get("max_weeks") or t("common.not_documented"),
               t("col.fidelity"): fid.get(pid)}
        for construct in ctx.meta.get("slopes", {}).get("constructs", []):
            s = slopes[(slopes["construct"] == construct) & (slopes["programme"] == pid)] \
                if len(slopes) else slopes
            row[t("col.slope_of", construct=_pretty(construct))] = (
                num(s["estimate"].iloc[0], 4) if len(s) else "")
        rows.append(row)
    return pd.DataFrame(rows)


def locale_axes(ax) -> None:
    """Numeric tick labels with the report's decimal separator (a comma in Dutch);
    axes with their own labels (programme names) are left alone."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    from effectstudy.report.i18n import decimal_point

    if decimal_point() == ".":
        return
    for axis in (ax.xaxis, ax.yaxis):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.set_major_formatter(FuncFormatter(
                lambda v, _pos: f"{v:g}".replace("-", "\u2212").replace(".", ",")))


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
        ax.set_xlabel(t("axis.slope", construct=_pretty(construct)))
        locale_axes(ax)
    return fig


# --------------------------------------------------------------------------- #
# Follow-up (dossier)
# --------------------------------------------------------------------------- #
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
        n = int(r["n"])
        row = {t("col.construct"): _pretty(r["construct"]),
               t("col.measure"): _pretty_measure(f"{r['instrument']} {r['scale']}"),
               t("col.occasion"): _pretty(r["occasion"])}
        if ctx.public and n < ctx.threshold:
            row.update({"n": f"<{ctx.threshold}", "d_z": "", t("col.ci"): ""})
        else:
            row.update({"n": n, "d_z": num(r.get("d_z"), 2),
                        t("col.ci"): _ci(r.get("d_z_ci_lower"), r.get("d_z_ci_upper"))})
        rows.append(row)
    sec.table(pd.DataFrame(rows), t("follow_up.caption", pre=_pretty(pre)))
    return sec


# --------------------------------------------------------------------------- #
# Dropout (time to the end reason the spec names)
# --------------------------------------------------------------------------- #
def dropout_section(ctx: Context) -> Section:
    """Dropout and safety (issue 13): rendered by :mod:`effectstudy.report.dropout`."""
    from effectstudy.report.dropout import dropout_section as render

    return render(ctx)


def integrity_section(ctx: Context) -> Section:
    """Programme integrity (issue 12): rendered by :mod:`effectstudy.report.integrity`."""
    from effectstudy.report.integrity import integrity_section as render

    return render(ctx)


def _pretty_end(reason: str) -> str:
    return t(f"flow.{reason}") if reason in FLOW_COLUMNS else str(reason).replace("_", " ")


def _km_figure(ctx: Context, km: pd.DataFrame):
    """Kaplan-Meier curves drawn from the saved steps (time, survival)."""
    import matplotlib.pyplot as plt

    from effectstudy.style import color, use_style

    order = sorted(ctx.meta.get("programmes", {}))
    with use_style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for pid, g in km.groupby("programme", sort=True):
            g = g.sort_values("time")
            x = [0.0, *g["time"].astype(float)]
            y = [1.0, *g["survival"].astype(float)]
            i = order.index(pid) if pid in order else len(order)
            ax.step(x, y, where="post", color=color(i), label=ctx.programme_name(pid))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(t("axis.weeks_in_care"))
        ax.set_ylabel(t("axis.still_in_care"))
        ax.legend(loc="lower left", fontsize=8)
        locale_axes(ax)
    return fig


# --------------------------------------------------------------------------- #
# Power
# --------------------------------------------------------------------------- #
def power_section(ctx: Context) -> Section:
    meta = ctx.meta.get("power", {})
    sec = Section("power", t("power.title"))
    frame = ctx.frame("power", own=False)
    shown = [c for c in ("test", "power", "ci_lower", "ci_upper", "nsim", "successes", "n_failed",
                         "n_singular", "alpha") if c in frame.columns]
    sec.table(_round(frame[shown], 3), t("power.caption"))
    sec.methods.append(t("power.methods", nsim=meta.get("nsim"),
                         programmes=meta.get("programmes"),
                         clients=meta.get("clients_per_programme"),
                         weeks=", ".join(map(str, meta.get("weeks", []))),
                         dropout=num(100 * float(meta.get("dropout", 0)), 0),
                         term=meta.get("test_term"), ddf=meta.get("ddf"),
                         alpha=num(meta.get("alpha", 0.05), 2)))
    return sec


# --------------------------------------------------------------------------- #
# SCRIBE, limitations
# --------------------------------------------------------------------------- #
SCRIBE_ITEMS = list(range(1, 27))
_SCRIBE_COVERED = (1, 5, 7, 8, 11, 12, 14, 17, 18, 19, 20, 23)


def scribe_checklist() -> Section:
    sec = Section("scribe", t("scribe.title"))
    rows = [{t("col.item"): n, t("col.topic"): t(f"scribe.item{n}"),
             t("col.covered"): t("common.yes") if n in _SCRIBE_COVERED
             else t("scribe.to_write"),
             t("col.where"): t(f"scribe.where{n}") if n in _SCRIBE_COVERED else ""}
            for n in SCRIBE_ITEMS]
    sec.table(pd.DataFrame(rows), t("scribe.caption"))
    sec.references.append(t("ref.tate"))
    return sec


def limitations_section(ctx: Context) -> Section:
    sec = Section("limitations", t("limitations.title"))
    cpp = ctx.frame("clients_per_programme", own=False)
    n_by = pd.Series(cpp["clients"].to_numpy(), index=cpp["programme"]) if len(cpp) else \
        pd.Series(dtype=int)
    if ctx.programme is not None:
        flow = ctx.published.get("flow")
        row = flow.iloc[0] if flow is not None and len(flow) else None
        size = _count_text(ctx, row.iloc[0]) if row is not None else ctx.few()
        analysed = _count_text(ctx, row.iloc[5]) if row is not None else ctx.few()
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
            if not _is_count(cell) or int(cell) != value:
                return t("common.or_more", threshold=threshold)
        return str(value)

    low, high = shown(n_by.idxmin()), shown(n_by.idxmax())
    span = (t("limitations.span_one", high=high) if low == high
            else t("limitations.span", low=low, high=high))
    return t("limitations.range", span=span, k=k)


def _is_count(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


# --------------------------------------------------------------------------- #
# Dossier: summary first, recognition
# --------------------------------------------------------------------------- #
def summary_section(ctx: Context) -> Section:
    """Plain language, from what the dossier publishes: what changed, for how many
    clients, how certain. No number appears here that the tables do not show."""
    sec = Section("summary", t("summary.title"))
    name = ctx.programme_name(ctx.programme or "")
    flow = ctx.published.get("flow")
    row = flow.iloc[0] if flow is not None and len(flow) else None
    sec.text(t("summary.who", programme=name,
               referred=_count_text(ctx, row.iloc[0]) if row is not None else ctx.few(),
               analysed=_count_text(ctx, row.iloc[5]) if row is not None else ctx.few()))
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
        sec.text(t(key, construct=_pretty(construct)))
        said = True
    pp = ctx.published.get("prepost")
    if pp is not None and len(pp):
        big = pp[pp["n"] >= (ctx.threshold if ctx.public else 1)]
        clear = big[(big["d_z_ci_lower"] > 0)]
        if len(big):
            sec.text(t("summary.prepost", k=len(clear), m=len(big)))
            said = True
    if not said:
        sec.text(t("summary.little"))
    sec.text(t("summary.caveat"))
    return sec


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
    if len(design):
        r = design[(design["case"] == "ALL") & (design["check"] == "overall")]["rating"]
        rating = ", ".join(sorted({_pretty(x) for x in r if isinstance(x, str)}))
    have = {
        "prepost": (t("recognition.have_prepost", constructs=", ".join(map(_pretty, norms)))
                    if norms else t("recognition.no_prepost")),
        "n1": (t("recognition.have_n1", rating=rating or t("common.not_documented"))
               if len(rand) else t("recognition.no_n1")),
        "comparison": t("recognition.no_comparison"),
        "follow_up": (t("recognition.have_follow_up",
                        occasions=", ".join(map(_pretty, fu_occ))) if fu_occ
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


# --------------------------------------------------------------------------- #
# Driver
# --------------------------------------------------------------------------- #
def run_sections(results: Any, audience: str, programme: str | None = None) -> list[Section]:
    """Lay out every section the results hold, in report order."""
    from effectstudy.errors import SpecError

    if audience not in AUDIENCES:
        raise SpecError(f"audience must be one of {AUDIENCES}, got {audience!r}")
    ctx = Context(results, audience, programme)
    have = set(results.sections)
    if programme is None:
        sections = [programmes_section(ctx), sample_flow(ctx), descriptives(ctx)]
        if "change" in have:
            sections.append(reliable_change_section(ctx))
        if "single_case" in have:
            sections.append(single_case_section(ctx))
        if "multilevel" in have:
            sections.append(multilevel_section(ctx))
        if "slopes" in have:
            sections.append(slopes_section(ctx))
        if "dropout" in have:
            sections.append(dropout_section(ctx))
        if "integrity" in have:
            sections.append(integrity_section(ctx))
        if "power" in have:
            sections.append(power_section(ctx))
        sections.append(scribe_checklist())
        sections.append(limitations_section(ctx))
        return sections
    sections = [programmes_section(ctx), sample_flow(ctx)]
    if "change" in have:
        sections.append(reliable_change_section(ctx))
    if "single_case" in have:
        sections.append(single_case_section(ctx))
    if "slopes" in have:
        sections.append(slopes_section(ctx))
    if "change" in have:
        sections.append(follow_up_section(ctx))
    if "dropout" in have:
        sections.append(dropout_section(ctx))
    if "integrity" in have:
        sections.append(integrity_section(ctx))
    sections.append(recognition_section(ctx))
    sections.append(scribe_checklist())
    sections.append(limitations_section(ctx))
    return [summary_section(ctx), *sections]
