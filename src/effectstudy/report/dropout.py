"""Render the dropout and safety section from saved study results (a pure renderer).

Reads what :mod:`effectstudy.study.dropout` saved (frames ``dropout_*`` and
``meta["dropout"]``) and computes no statistic. Audience rules of the public report:

* **Curves** (Kaplan-Meier and cumulative incidence) are drawn only for programmes with
  at least ``threshold`` clients, over the times at which at least ``threshold`` girls
  were still at risk, and in coarse steps: each drawn step groups at least ``threshold``
  events, as a life table groups the events of an interval (Cutler & Ederer 1958). A
  step of the product-limit curve (Kaplan & Meier 1958) of a single week is a drop of
  d/n girls, and the at-risk table below the figure bounds n, so such a step would
  give the number d of girls who absconded in that week; a step of at least
  ``threshold`` events gives no count below the threshold. The events after the last
  drawn step (fewer than ``threshold``) are not drawn: the line ends there, as a flat
  line onward would claim that nobody absconded. Times are shown in whole weeks
  (rounded up), never the day of an event. The steps are thinned against the printed
  at-risk counts: a step says that at least ``threshold`` girls absconded, and the
  difference of two printed counts is the abscondings plus the other ends of care, so
  a step is left out while a reader could pin those other ends (:func:`_thinned`).
  Only the survival curve is drawn: beside it the cumulative incidence of absconding
  would give the other ends of care (1 - S and the incidence differ only by them), so
  the incidence is internal. The programmes not drawn are named with
  "fewer than 5 clients": the same information a ``<5`` cell gives, no count. The
  internal report draws every step.
* **At risk** below the curves: counts at landmark weeks after the intake (the column
  at week 0 would repeat the sample-flow count and is left out), counts below the
  threshold shown as ``<5``, partners as ``x``, from the one suppression pattern of all
  public documents (:mod:`effectstudy.report.publication`: a later count is at most an
  earlier one, and at most the programme's referred clients in the flow).
* **Absconding rates** are shown per programme only where the programme has at least
  ``threshold`` clients *and* at least ``threshold`` episodes; neither the episodes nor
  the weeks of exposure are printed. The exact Poisson interval is a function of the
  count (its width pins the number of episodes), so a rate of fewer than ``threshold``
  episodes is never shown, not even its interval.
* Cross-programme models (log-rank, Cox, the growth result under multiple imputation,
  the tipping point) carry no group counts; the events per covariate are printed only
  when the total number of events is at least ``threshold``. Model messages are internal.

A dossier shows its own programme's curves and rate only; the pooled models are part
of the cross-programme report.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.report.i18n import label, num, t
from effectstudy.report.publication import at_risk, landmark_weeks

_K = "dropout_safety"


def _k(key: str, **fields: Any) -> str:
    return t(f"{_K}.{key}", **fields)


def at_risk_table(ctx: Any, km: pd.DataFrame, programmes: list[str]) -> tuple[pd.DataFrame, bool]:
    """At-risk counts per drawn programme at landmark weeks, suppressed for the public.

    A public document takes its weeks and its marks from the one suppression pattern of
    all public documents (:mod:`effectstudy.report.publication`): the at-risk counts
    bound the flow counts (no more girls at risk than referred), so they are protected
    together with the flow of the report and of every dossier.
    """
    if ctx.public:
        plan = ctx.plan
        weeks = plan.weeks(ctx.programme)
        cells = {(p, w): plan.shown(("at_risk", p, w)) for p in programmes for w in weeks}
    else:
        weeks = landmark_weeks(float(km["time"].max()) if len(km) else 0.0)
        cells = {(p, w): at_risk(km[km["programme"] == p], w) for p in programmes for w in weeks}
    rows = []
    for p in programmes:
        row = {t("col.programme"): ctx.programme_name(p)}
        for w in weeks:
            row[_k("week_col", week=w)] = str(cells[(p, w)])
        rows.append(row)
    hidden = any(isinstance(v, str) for v in cells.values())
    return pd.DataFrame(rows), hidden


def _public_steps(g: pd.DataFrame, value: str, threshold: int) -> pd.DataFrame:
    """The steps of one saved curve that a public reader may see.

    Parameters
    ----------
    g
        One programme's saved curve: ``time, n_risk, n_event`` and ``value``, one row per
        time (the frames ``dropout_km`` and ``dropout_cif`` of
        :mod:`effectstudy.study.dropout`).
    value
        The curve's column: ``"survival"`` (Kaplan-Meier) or ``"cif"`` (cumulative
        incidence).
    threshold
        The smallest count a public document may show.

    Returns
    -------
    DataFrame
        ``time, <value>``: one row per drawn step, the time rounded up to whole weeks.

    Notes
    -----
    The rows with at least ``threshold`` girls at risk are walked in time order and
    their events added up; a step is drawn only when the sum reaches ``threshold``, at
    the curve's saved value at that time, and the sum starts again from zero. So each
    drawn step groups at least ``threshold`` events, as the intervals of a life table
    group events (Cutler & Ederer 1958; Kalbfleisch & Prentice 2002), while
    the value at a drawn step is still the product-limit estimate (Kaplan & Meier 1958)
    or the Aalen-Johansen incidence (Aalen & Johansen 1978) at that time, not a
    life-table estimate. The events after the last drawn step (fewer than ``threshold``)
    are left out and the curve ends at its last step. Two steps that fall in the same
    whole week are drawn as one (the later value), which still groups at least
    ``threshold`` events. Values are rounded to two decimals: the exact product of a
    step's factors (1 - d_i/n_i) could otherwise be factored into its risk-set sizes.

    ``n_event`` counts the events of the curve's own cause. For the Kaplan-Meier curve
    these are the girls' first absconding in care (completion and transfer are
    censored); for the cumulative incidence of absconding too, because the saved frame
    keeps the competing ends (completion, transfer) apart in ``n_competing``: they do
    not raise the curve at their own times and are not counted toward a step.
    """
    g = g.sort_values("time", kind="stable")
    g = g[g["n_risk"] >= threshold]
    times: list[float] = []
    values: list[float] = []
    pending = 0
    for time, events, level in zip(g["time"], g["n_event"], g[value], strict=True):
        pending += int(events)
        if pending >= threshold:
            times.append(float(math.ceil(float(time))))
            values.append(round(float(level), 2))
            pending = 0
    steps = pd.DataFrame({"time": np.asarray(times, dtype=float),
                          value: np.asarray(values, dtype=float)})
    return steps.groupby("time", sort=True)[value].last().reset_index()


def _anchors(ctx: Any, pid: str) -> dict[int, int]:
    """Week -> girls at risk, as any public document prints them for programme ``pid``
    (week 0: its referred girls in the flow), from the one suppression pattern."""
    plan = ctx.plan
    out = {}
    referred = plan.shown(("flow", pid, "referred"))
    if not isinstance(referred, str):
        out[0] = int(referred)
    for key in plan.values:
        if key[0] == "at_risk" and key[1] == pid:
            shown = plan.shown(key)
            if not isinstance(shown, str):
                out[int(key[2])] = int(shown)
    return out


def _thinned(steps: pd.DataFrame, anchors: dict[int, int], threshold: int,
             min_width: int = 2) -> pd.DataFrame:
    """Drop public steps until no printed at-risk count, read with them, pins the girls
    whose care ended otherwise (completion, transfer).

    A drawn step groups at least ``threshold`` first abscondings since the step before
    it (:func:`_public_steps`). Between two printed counts at weeks ``u < w`` (week 0:
    the referred girls) ``n(u) - n(w)`` girls left: the abscondings, at least
    ``threshold`` per step group that lies wholly between them, and the other ends. A
    reader so bounds the other ends to ``[0, n(u) - n(w) - threshold * groups]``; while
    that slack is below ``min_width`` for some pair, the last step before ``w`` is left
    out (its events join the next drawn step, which still holds at least ``threshold``).
    """
    times = [float(x) for x in steps["time"]]
    weeks = sorted(anchors)

    def violated() -> float | None:
        for i, u in enumerate(weeks):
            for w in weeks[i + 1:]:
                # groups wholly in [u, w): the group of a step opens after the step
                # before it (the first after the start of care)
                edges = [0.0, *times]
                groups = sum(1 for a, b in zip(edges, edges[1:], strict=False)
                             if a >= u and b <= w)  # b == w counted too: stricter
                if anchors[u] - anchors[w] - threshold * groups < min_width and groups:
                    return float(w)
        return None

    while (w := violated()) is not None:
        before = [t for t in times if t <= w]
        times.remove(before[-1])
    return steps[steps["time"].isin(times)].reset_index(drop=True)


def _curves_figure(ctx: Any, frame: pd.DataFrame, programmes: list[str], value: str,
                   start: float, ylabel: str):
    import matplotlib.pyplot as plt

    from effectstudy.report.sections.layout import locale_axes
    from effectstudy.style import color, use_style

    order = sorted(ctx.meta.get("programmes", {}))
    with use_style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for pid in programmes:
            g = frame[frame["programme"] == pid].sort_values("time")
            if ctx.public:
                g = _public_steps(g, value, ctx.threshold)
                g = _thinned(g, _anchors(ctx, pid), ctx.threshold)
            else:
                g = g[g["n_event"] > 0] if value == "survival" else g
            x = [0.0, *g["time"].astype(float)]
            y = [start, *g[value].astype(float)]
            i = order.index(pid) if pid in order else len(order)
            ax.step(x, y, where="post", color=color(i), label=ctx.programme_name(pid))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(_k("axis_weeks"))
        ax.set_ylabel(ylabel)
        ax.legend(loc="best", fontsize=8)
        locale_axes(ax)
    return fig


def _ci(lo: Any, hi: Any, decimals: int = 2) -> str:
    return f"{num(lo, decimals)} {_k('to')} {num(hi, decimals)}"


def _p(value: Any) -> str:
    v = float(value)
    return "< 0" + num(0.001, 3)[1:] if v < 0.001 else num(v, 3)


def _curves(ctx: Any, sec: Any) -> None:
    counts = ctx.frame("dropout_n")
    km = ctx.frame("dropout_km")
    th = ctx.threshold
    ids = [str(p) for p in counts["programme"]]
    small = ([str(p) for p, n in zip(counts["programme"], counts["clients"], strict=True)
              if n < th] if ctx.public else [])
    drawn = [p for p in ids if p not in small]
    if small:
        names = ", ".join(ctx.programme_name(p) for p in small)
        sec.text(_k("not_drawn", names=names, threshold=th) if ctx.programme is None
                 else _k("not_drawn_dossier", threshold=th))
    if not drawn:
        return
    sec.figure(_curves_figure(ctx, km, drawn, "survival", 1.0, _k("axis_km")),
               _k("km_figure") + (" " + _k("figure_public", threshold=th) if ctx.public else ""))
    table, hidden = at_risk_table(ctx, km, drawn)
    if len(table.columns) > 1:
        sec.table(table, _k("at_risk_caption") + (
            " " + t("common.suppression_note", threshold=th) if hidden else ""))
    cif = ctx.frame("dropout_cif")
    if ctx.public and len(cif):
        # drawn next to the survival curve from the same referred girls, the incidence
        # gives the girls whose care ended otherwise before a step (1 - S and the
        # incidence differ only by them): the public documents draw one curve
        sec.text(_k("cif_internal_only"))
    elif len(cif):
        sec.figure(_curves_figure(ctx, cif, drawn, "cif", 0.0, _k("axis_cif")),
                   _k("cif_figure") + (" " + _k("figure_public", threshold=th)
                                       if ctx.public else ""))
    if not ctx.public:
        med = ctx.frame("dropout_median")
        if len(med):
            sec.table(pd.DataFrame({
                t("col.programme"): med["programme"].map(ctx.programme_name),
                _k("median_col"): [num(m, 1) if m == m else _k("not_reached")
                                   for m in med["median"]]}), _k("median_caption"))


def _rates(ctx: Any, sec: Any) -> None:
    rates = ctx.frame("dropout_rates")
    if rates.empty:
        sec.text(_k("no_rates"))
        return
    counts = ctx.frame("dropout_n").set_index("programme")["clients"]
    th = ctx.threshold
    rows = []
    for r in rates.itertuples(index=False):
        show = (not ctx.public) or (int(counts.get(r.programme, 0)) >= th and int(r.events) >= th)
        row = {t("col.programme"): ctx.programme_name(r.programme)}
        if not ctx.public:
            row[_k("episodes_col")] = str(int(r.events))
            row[_k("exposure_col")] = num(r.exposure, 0)
        row[_k("rate_col")] = num(r.rate, 2) if show else _k("not_shown", threshold=th)
        row[_k("rate_ci_col")] = _ci(r.ci_lower, r.ci_upper) if show else ""
        rows.append(row)
    sec.table(pd.DataFrame(rows), _k("rates_caption") + (
        " " + _k("rates_public", threshold=th) if ctx.public else ""))


def _logrank(ctx: Any, sec: Any) -> None:
    lr = ctx.frame("dropout_logrank")
    if lr.empty:
        return
    r = lr.iloc[0]
    sec.text(_k("logrank", statistic=num(r["statistic"], 2), df=int(r["df"]), p=_p(r["p_value"])))


def _cox(ctx: Any, sec: Any, info: dict[str, Any]) -> None:
    coefs = ctx.frame("dropout_cox")
    if info.get("status") != "ok" or coefs.empty:
        sec.text(_k("cox_none"))
        return
    shown = pd.DataFrame({
        _k("term_col"): [_k(f"term_{c}") for c in coefs["term"]],
        _k("hr_col"): [num(v, 2) for v in coefs["hazard_ratio"]],
        _k("hr_ci_col"): [_ci(a, b) for a, b in zip(coefs["hr_ci_lower"], coefs["hr_ci_upper"],
                                                    strict=True)],
        _k("p_col"): [_p(v) for v in coefs["p_value"]]})
    sec.table(shown, _k("cox_caption") + (" " + _k("cox_firth") if info.get("firth") else ""))
    fit = ctx.frame("dropout_cox_fit")
    events = int(fit["events"].iloc[0]) if len(fit) else 0
    if events >= ctx.threshold or not ctx.public:
        sec.text(_k("cox_epv", epv=num(info.get("events_per_variable"), 1)))
    if info.get("few_events"):
        sec.text(_k("cox_few"))
    if info.get("dropped_covariates"):
        sec.text(_k("cox_dropped", terms=", ".join(_k(f"term_{c}")
                                                  for c in info["dropped_covariates"])))
    if not ctx.public and info.get("messages"):
        # model warnings are English text of the statistics package: shown as written in
        # the English internal report, pointed to in the Dutch one
        from effectstudy.report.i18n import language

        if language() == "en":
            for msg in info["messages"]:
                sec.text(str(msg))
        else:
            sec.text(_k("messages_elsewhere"))


def _tipping_sentence(ctx: Any, info: dict[str, Any], tp: pd.DataFrame) -> str:
    worse = _k("higher") if int(info.get("sign", 1)) > 0 else _k("lower")
    sd = num(info.get("outcome_sd"), 2)
    base = tp.iloc[0]
    significant = bool(base["significant"])
    delta = info.get("tipping_delta")
    if delta is None or (isinstance(delta, float) and math.isnan(delta)):
        return _k("tipping_none", worse=worse, sd=sd, top=num(tp["delta"].max(), 2),
                  conclusion=_k("sig" if significant else "not_sig"))
    return _k("tipping_at", worse=worse, sd=sd, delta=num(delta, 2),
              crossing=num(info.get("tipping_crossing"), 2),
              conclusion=_k("sig" if significant else "not_sig"))


def _tipping_figure(tp: pd.DataFrame):
    import matplotlib.pyplot as plt

    from effectstudy.report.sections.layout import locale_axes
    from effectstudy.style import GREY, use_style

    with use_style():
        fig, ax = plt.subplots(figsize=(5.6, 3.4))
        d = tp["delta"].astype(float)
        est = tp["estimate"].astype(float)
        ax.errorbar(d, est, yerr=[est - tp["ci_lower"].astype(float),
                                  tp["ci_upper"].astype(float) - est], fmt="o-", capsize=3)
        ax.axhline(0.0, color=GREY, lw=1, ls="--")
        ax.set_xlabel(_k("axis_delta"))
        ax.set_ylabel(_k("axis_estimate"))
        locale_axes(ax)
    return fig


def _missing(ctx: Any, sec: Any, info: dict[str, Any]) -> None:
    if info.get("status") != "ok":
        sec.text(_k("mi_none"))
        return
    mi = ctx.frame("dropout_mi")
    shown = pd.DataFrame({
        _k("data_col"): [_k(f"data_{d}") for d in mi["data"]],
        _k("estimate_col"): [num(v, 4) for v in mi["estimate"]],
        _k("ci_col"): [_ci(a, b, 4) for a, b in zip(mi["ci_lower"], mi["ci_upper"], strict=True)],
        _k("fmi_col"): [num(v, 2) for v in mi["fmi"]]})
    sec.table(shown, _k("mi_caption", construct=label("construct", info.get("construct", "")),
                        formula=info.get("formula", ""), m=info.get("m", "")))
    tp = ctx.frame("dropout_tipping")
    if len(tp):
        sec.text(_tipping_sentence(ctx, info, tp))
        if not ctx.public:
            sec.text(_k("tipping_shifted", cells=info.get("n_cells_shifted"),
                        clients=info.get("n_clients_shifted")))
        sec.figure(_tipping_figure(tp), _k("tipping_figure"))


def dropout_section(ctx: Any) -> Any:
    """The dropout and safety section of a report or a dossier (``ctx``: a report Context)."""
    from effectstudy.report.sections.layout import Section

    info = ctx.meta.get("dropout", {})
    sec = Section("dropout", _k("title"))
    if info.get("status") != "ok" or ctx.frame("dropout_n").empty:
        sec.text(_k("none"))
        return sec
    sec.text(_k("intro"))
    if info.get("source") == "clients":
        sec.text(_k("source_clients"))
    _curves(ctx, sec)
    if ctx.programme is None:
        _logrank(ctx, sec)
    _rates(ctx, sec)
    if ctx.programme is None:
        _cox(ctx, sec, info.get("cox", {}))
        if "missing" in info:
            _missing(ctx, sec, info["missing"])
    else:
        sec.text(_k("dossier_pooled"))
    sec.methods.append(_k("methods"))
    sec.references += [_k("ref_km"), _k("ref_aj"), _k("ref_garwood"), _k("ref_heinze"),
                       _k("ref_rubin"), _k("ref_ratitch")]
    return sec
