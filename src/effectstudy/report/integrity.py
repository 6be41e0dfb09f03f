"""Render the programme-integrity section from saved study results (a pure renderer).

Reads what :mod:`effectstudy.study.integrity` saved (frames ``integrity_*`` and
``meta["integrity"]``) and computes no statistic. Audience rules of the public report:

* **Programme level only**: no client, rater or target appears; counts of prescribed
  and delivered components are never printed.
* A programme with fewer than ``threshold`` clients in its delivery log gets no
  adherence or dose numbers, only "fewer than 5 clients" (a share of so few girls pins
  counts).
* **Component x programme matrix** (heatmap and table): a cell is shown only when at
  least ``threshold`` clients were prescribed the component and both the clients who
  received it and those who did not are at least ``threshold`` (or zero when
  ``suppress_zero`` is off); otherwise the cell is hidden (hatched in the figure, ``x``
  in the table) - a share is a count once its denominator is known.
* **Drift**: a block of weeks is shown only when at least ``threshold`` clients were
  still in care in it.
* **Tailoring** (client x component associations) is internal only; the public report
  states that it was run, as exploratory, and the number of tests.
* Model results (dose-response, fidelity moderator, power) carry no group counts.
* **Dose-response curve**: drawn from the saved points only (no per-client dose), over
  the trimmed range the study layer chose (:func:`effectstudy.study.integrity.dose_curve_range`);
  the public report leaves it out when it was trimmed for a smaller threshold than its own.

A dossier shows its own programme's rows; the pooled models (dose-response, moderator)
are in the cross-programme report.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.report.i18n import dictionary_text, num, t

_K = "integrity"
HIDDEN = "x"


def _k(key: str, **fields: Any) -> str:
    return t(f"{_K}.{key}", **fields)


def _pct(v: Any) -> str:
    return "" if v is None or pd.isna(v) else num(100 * float(v), 0) + "%"


def _ci_pct(lo: Any, hi: Any) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"{num(100 * float(lo), 0)}% - {num(100 * float(hi), 0)}%"


def _ci(lo: Any, hi: Any, d: int = 2) -> str:
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return ""
    return f"{num(float(lo), d)} - {num(float(hi), d)}"


def _frame(ctx: Any, name: str, *, own: bool = True) -> pd.DataFrame:
    """A saved frame (empty when the step was not computed); a dossier gets its own rows."""
    return ctx.frame(name, own=own)


def cell_shown(prescribed: int, delivered: int, threshold: int, suppress_zero: bool) -> bool:
    """Whether a component x programme share may be published (see the module rules)."""
    if prescribed < threshold:
        return False
    for k in (delivered, prescribed - delivered):
        if (0 < k < threshold) or (k == 0 and suppress_zero):
            return False
    return True


def _adherence_table(ctx: Any, adh: pd.DataFrame, score: pd.DataFrame) -> pd.DataFrame:
    sc = score.set_index("programme") if len(score) else pd.DataFrame()
    rows = []
    for _, r in adh.iterrows():
        p = r["programme"]
        row = {t("col.programme"): ctx.programme_name(p)}
        small = ctx.public and int(r["n_clients"]) < ctx.threshold
        if not ctx.public:
            row["n"] = int(r["n_clients"])
        if small:
            row[_k("col_adherence")] = ctx.few()
            row[_k("col_ci")] = ""
            row[_k("col_sessions")] = ""
        else:
            row[_k("col_adherence")] = _pct(r["adherence"])
            row[_k("col_ci")] = _ci_pct(r["ci_lower"], r["ci_upper"])
            row[_k("col_sessions")] = (
                f"{num(r.get('sessions_mean'), 1)} ({_ci(r.get('sessions_ci_lower'), r.get('sessions_ci_upper'), 1)})"
                if "sessions_mean" in r else "")
        if p in getattr(sc, "index", []):
            s = sc.loc[p]
            row[_k("col_score")] = _pct(s["score"])
            row[_k("col_score_ci")] = _ci_pct(s["ci_lower"], s["ci_upper"])
            row[_k("col_rater_share")] = _pct(s["rater_share"])
        rows.append(row)
    return pd.DataFrame(rows)


def component_label(ctx: Any, programme: str, component: str) -> str:
    """A programme component as the dictionary names it, in the report's language
    (``meta["programmes"][programme]["components"]``; older results name the id only,
    shown marked as untranslated in a Dutch report)."""
    labels = ctx.meta.get("programmes", {}).get(programme, {}).get("components", {})
    return dictionary_text(labels.get(component) or str(component).replace("_", " "))


#: A dose group as :func:`effectstudy.fidelity.dose_response` names it ("dose 1/3").
_DOSE_GROUP = re.compile(r"dose (\d+)/(\d+)")


def _dose_group(name: Any) -> str:
    m = _DOSE_GROUP.fullmatch(str(name))
    return _k("dose_group", k=m.group(1), n=m.group(2)) if m else str(name)


def component_matrix(ctx: Any, comp: pd.DataFrame) -> pd.DataFrame:
    """Component x programme shares, hidden cells as :data:`HIDDEN` for the public."""
    out = comp.copy()
    shown = [not ctx.public or cell_shown(int(p), int(d), ctx.threshold, ctx.suppress_zero)
             for p, d in zip(out["prescribed"], out["delivered"], strict=True)]
    out["shown"] = shown
    return out


def _heatmap(ctx: Any, comp: pd.DataFrame):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    progs = sorted(comp["programme"].unique())
    comps = list(dict.fromkeys(comp["component"]))
    grid = np.full((len(comps), len(progs)), np.nan)
    hidden = np.zeros_like(grid, bool)
    for _, r in comp.iterrows():
        i, j = comps.index(r["component"]), progs.index(r["programme"])
        if r["shown"]:
            grid[i, j] = float(r["share"])
        else:
            hidden[i, j] = True
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(progs), 0.8 + 0.32 * len(comps)))
    im = ax.imshow(grid, vmin=0, vmax=1, cmap="viridis", aspect="auto")
    for i, j in zip(*np.nonzero(hidden), strict=True):
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="///",
                                   edgecolor="0.6", linewidth=0))
    ax.set_xticks(range(len(progs)), [ctx.programme_name(p) for p in progs], rotation=30,
                  ha="right", fontsize=7)
    firsts = dict(zip(comp["component"], comp["programme"], strict=True))
    ax.set_yticks(range(len(comps)), [component_label(ctx, firsts[c], c) for c in comps],
                  fontsize=7)
    fig.colorbar(im, ax=ax, label=_k("axis_share"))
    return fig


def _drift_table(ctx: Any, drift: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in drift.iterrows():
        if ctx.public and int(r["n_clients"]) < ctx.threshold:
            continue
        row = {t("col.programme"): ctx.programme_name(r["programme"]),
               _k("col_weeks"): f"{int(r['week_from'])}-{int(r['week_to'])}",
               _k("col_share"): _pct(r["share"]), _k("col_ci"): _ci_pct(r["ci_lower"],
                                                                        r["ci_upper"])}
        if not ctx.public:
            row["n"] = int(r["n_clients"])
        rows.append(row)
    return pd.DataFrame(rows)


def _dose_curve_figure(curve: pd.DataFrame, unit: str, level: str):
    """Line and band of the saved dose-response curve points (nothing is computed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 3.8))
    x = curve["dose"].to_numpy(float)
    (line,) = ax.plot(x, curve["estimate"].to_numpy(float))
    ax.fill_between(x, curve["ci_lower"].to_numpy(float), curve["ci_upper"].to_numpy(float),
                    color=line.get_color(), alpha=0.2, label=_k("dose_curve_band", level=level))
    ax.axhline(0.0, color="black", lw=0.6)
    ax.set_xlabel(_k("axis_dose", unit=unit))
    ax.set_ylabel(_k("axis_dose_difference"))
    ax.legend(fontsize=8)
    return fig


def _dose_curve(ctx: Any, sec: Any, info: dict[str, Any], dose: dict[str, Any]) -> None:
    """The dose-response plot with its band, or why it is not shown."""
    curve = _frame(ctx, "integrity_dose_curve", own=False)
    span = dose.get("curve")
    if curve.empty or not span or (ctx.public and int(span.get("threshold", 0)) < ctx.threshold):
        sec.text(_k("dose_curve_hidden", threshold=ctx.threshold))
        return
    unit = _k(f"units_{dose.get('unit', 'sessions')}")
    level = num(100 * float(info.get("confidence", 0.95)), 0) + "%"
    sec.figure(_dose_curve_figure(curve, unit, level),
               _k("dose_curve_caption", outcome=info.get("outcome") or "", unit=unit,
                  level=level, lower=num(span["from"], 0), upper=num(span["to"], 0),
                  trim=num(100 * float(span.get("trim", 0.1)), 0),
                  threshold=int(span["threshold"])))


def _coef_row(frame: pd.DataFrame, term: str) -> pd.Series | None:
    if frame.empty or "term" not in frame:
        return None
    hit = frame[frame["term"] == term]
    return None if hit.empty else hit.iloc[0]


def integrity_section(ctx: Any) -> Any:
    """The integrity section (cross-programme report, or a dossier with ``ctx.programme``)."""
    from effectstudy.report.sections.layout import Section

    sec = Section("integrity", _k("title"))
    info = ctx.meta.get("integrity", {})
    adh = _frame(ctx, "integrity_adherence")
    if info.get("status") != "computed" or adh.empty:
        sec.text(_k("none"))
        return sec
    sec.text(_k("intro"))
    score = _frame(ctx, "integrity_score")
    sec.table(_adherence_table(ctx, adh, score), _k("adherence_caption"))
    comp = _frame(ctx, "integrity_components")
    if len(comp):
        cm = component_matrix(ctx, comp)
        if ctx.public and not cm["shown"].any():
            sec.text(_k("matrix_all_hidden", threshold=ctx.threshold))
        else:
            sec.figure(_heatmap(ctx, cm), _k("matrix_caption", threshold=ctx.threshold))
            table = pd.DataFrame({
                t("col.programme"): [ctx.programme_name(p) for p in cm["programme"]],
                _k("col_component"): [component_label(ctx, p, c) for p, c in
                                      zip(cm["programme"], cm["component"], strict=True)],
                _k("col_delivery"): [_k(f"delivery_{d}") for d in cm["delivery"]],
                _k("col_share"): [_pct(s) if ok else HIDDEN
                                  for s, ok in zip(cm["share"], cm["shown"], strict=True)]})
            if not ctx.public:
                table["n"] = cm["prescribed"].astype(int).to_numpy()
            sec.table(table, _k("matrix_table_caption", threshold=ctx.threshold))
    drift = _frame(ctx, "integrity_drift")
    if len(drift):
        dt = _drift_table(ctx, drift)
        if len(dt):
            sec.table(dt, _k("drift_caption", threshold=ctx.threshold))
    if ctx.programme is None:
        _pooled(ctx, sec, info)
    else:
        sec.text(_k("dossier_pooled"))
    sec.methods.append(_k("methods"))
    sec.references += [_k("ref_carroll"), _k("ref_korn"), _k("ref_kr"), _k("ref_shrout")]
    return sec


def _pooled(ctx: Any, sec: Any, info: dict[str, Any]) -> None:
    dose = info.get("dose")
    row = _coef_row(_frame(ctx, "integrity_dose", own=False), (dose or {}).get("term", "dose"))
    if dose and row is not None:
        sec.text(_k("dose_text", estimate=num(row["estimate"], 3),
                    ci=_ci(row["ci_lower"], row["ci_upper"], 3), df=num(row["df"], 1),
                    p=num(row["p_value"], 3), unit=_k(f"unit_{dose.get('unit', 'sessions')}"),
                    outcome=info.get("outcome") or ""))
        _dose_curve(ctx, sec, info, dose)
        groups = _frame(ctx, "integrity_dose_groups", own=False)
        if len(groups) and "dose_group" in groups:
            sec.table(pd.DataFrame({
                _k("col_dose_group"): [_dose_group(g) for g in groups["dose_group"]],
                _k("col_slope"): [num(v, 3) for v in groups["estimate"]],
                _k("col_ci"): [_ci(a, b, 3) for a, b in zip(groups["ci_lower"],
                                                            groups["ci_upper"], strict=True)]}),
                _k("dose_groups_caption"))
    tl = info.get("tailoring")
    if tl:
        sec.text(_k("tailoring_text", n_tests=int(tl.get("n_tests", 0)),
                    adjustment=str(tl.get("adjustment", ""))))
        tests = _frame(ctx, "integrity_tailoring_tests", own=False)
        if not ctx.public and len(tests):
            sec.table(pd.DataFrame({
                t("col.programme"): [ctx.programme_name(p) for p in tests["programme"]],
                _k("col_component"): [component_label(ctx, p, c) for p, c in
                                      zip(tests["programme"], tests["component"], strict=True)],
                _k("col_received"): tests["n_received"].astype(int),
                _k("col_not"): tests["n_not"].astype(int),
                _k("col_difference"): [num(v, 3) for v in tests["difference"]],
                _k("col_ci"): [_ci(a, b, 3) for a, b in zip(tests["ci_lower"],
                                                            tests["ci_upper"], strict=True)],
                _k("col_p_adjusted"): [num(v, 3) for v in tests["p_adjusted"]]}),
                _k("tailoring_caption"))
    mod = info.get("moderator")
    mrow = _coef_row(_frame(ctx, "integrity_moderator", own=False), "time:fidelity")
    if mod and mrow is not None:
        crow = _coef_row(_frame(ctx, "integrity_moderator_cr2", own=False), "time:fidelity")
        sec.text(_k("moderator_text", estimate=num(mrow["estimate"], 3),
                    ci=_ci(mrow["ci_lower"], mrow["ci_upper"], 3), df=num(mrow["df"], 2),
                    p=num(mrow["p_value"], 3),
                    cr2_p="" if crow is None else num(crow["p_value"], 3),
                    cr2_df="" if crow is None else num(crow["df"], 2)))
        sec.text(_k("six_programmes", k=int(mod.get("n_programmes", 0))))
        power = _frame(ctx, "integrity_moderator_power", own=False)
        if len(power):
            sec.table(pd.DataFrame({
                _k("col_programmes"): power["programmes"].astype(int),
                _k("col_power"): [_pct(v) for v in power["power"]],
                _k("col_ci"): [_ci_pct(a, b) for a, b in zip(power["ci_lower"],
                                                             power["ci_upper"], strict=True)]}),
                _k("power_caption", nsim=int(mod.get("nsim", 0))))
        need = mod.get("programmes_for_80")
        sec.text(_k("power_needed", k=int(need)) if need else
                 _k("power_none", most=int(power["programmes"].max()) if len(power) else 0))
