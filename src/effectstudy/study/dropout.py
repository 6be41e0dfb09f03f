"""The dropout and safety section of a study run (issue 13, section 4).

Computes, once, the exact and internal results the renderer
(:mod:`effectstudy.report.dropout`) shows: time to first absconding per programme
(Kaplan-Meier with the numbers at risk, log-rank test), the cumulative incidence of
absconding with completion and transfer as competing events, absconding rates per 100
weeks in care with exact Poisson intervals, a Cox model with age and earlier
absconding, the growth result of the spec's ``multilevel`` section under multiple
imputation beside the observed-data result, and the delta-adjusted tipping point.
Every result is kept as a frame or JSON metadata of
:class:`~effectstudy.study.StudyResults`, so the renderer recomputes nothing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.errors import EffectStudyError

#: Default imputations and delta grid (small: the demo must stay quick).
DEFAULT_M = 10
DEFAULT_DELTAS = (0.0, 0.5, 1.0, 1.5)
#: Cause codes of the competing-events analysis.
CAUSES = {"absconded": 1, "completed": 2, "transferred": 3}


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return list(dict.fromkeys(str(w.message) for w in caught))


def time_to_event(clients: pd.DataFrame, events: pd.DataFrame | None, harmonised: Any,
                  event: str) -> tuple[pd.DataFrame, str]:
    """One row per client: ``programme, client, weeks, absconded, age, prior_absconding,
    end_reason``, and where it came from (``"events"`` or ``"clients"``).

    From the events table (:func:`effectstudy.harmonise.events.time_to_first_absconding`)
    when there is one with absconding episodes and the spec's event is ``absconded``;
    otherwise from the client table's end reason and weeks in care (the event being
    ``end_reason == event``, other ends censored).
    """
    have_events = (harmonised is not None and events is not None and len(events)
                   and "type" in events and (events["type"] == "absconding").any()
                   and event == "absconded")
    if have_events:
        from effectstudy.harmonise.events import time_to_first_absconding

        ttf = time_to_first_absconding(harmonised)
        ttf = ttf.merge(clients[["programme", "client", "end_reason"]],
                        on=["programme", "client"], how="left")
        source = "events"
    else:
        cols = [c for c in ("programme", "client", "weeks_in_care", "end_reason", "age")
                if c in clients]
        d = clients[cols].dropna(subset=["weeks_in_care"])
        ttf = pd.DataFrame({"programme": d["programme"], "client": d["client"],
                            "weeks": d["weeks_in_care"].astype(float),
                            "absconded": (d["end_reason"] == event).astype("int64"),
                            "age": d["age"] if "age" in d else np.nan,
                            "prior_absconding": np.nan, "end_reason": d["end_reason"]})
        source = "clients"
    ttf = ttf[ttf["weeks"] > 0].reset_index(drop=True)
    return ttf, source


def causes(ttf: pd.DataFrame) -> np.ndarray:
    """Cause codes: 1 absconding, 2 completion, 3 transfer, 0 censored (other ends)."""
    other = ttf["end_reason"].map({"completed": 2, "transferred": 3}).fillna(0)
    return np.where(ttf["absconded"] == 1, 1, other).astype(int)


def exposure_table(clients: pd.DataFrame, events: pd.DataFrame | None) -> pd.DataFrame:
    """Per client: absconding episodes that started in care and the weeks in care (> 0)."""
    base = clients[["programme", "client", "weeks_in_care"]].dropna(subset=["weeks_in_care"])
    if events is not None and len(events):
        ev = events[(events["type"] == "absconding") & (events["start_week"] >= 0)]
        counts = ev.groupby(["programme", "client"]).size().rename("episodes")
        base = base.join(counts, on=["programme", "client"])
    else:
        base = base.assign(episodes=np.nan)
    base = base.fillna({"episodes": 0})
    return base[base["weeks_in_care"] > 0].reset_index(drop=True)


def growth_table(table: pd.DataFrame, construct: str) -> pd.DataFrame:
    """The spec's growth outcome in care, one score per client and occasion.

    Rows of the construct with a z-score and a week; several scores of a client at one
    occasion label (two scales of one construct) are averaged, so that the imputation
    model sees one outcome per client x occasion.
    """
    d = table[table["session"].isna()] if "session" in table else table
    d = d[(d["construct"] == construct) & d["z"].notna() & d["week"].notna()]
    occ = "occasion_label" if "occasion_label" in d else "occasion"
    keys = ["programme", "client", occ]
    out = (d.groupby(keys, sort=True).agg(week=("week", "mean"), z=("z", "mean"))
           .reset_index())
    return out.rename(columns={occ: "occasion_label"})


def _cox(ttf: pd.DataFrame, confidence: float, frames: dict[str, pd.DataFrame],
         info: dict[str, Any]) -> None:
    from effectstudy import survival

    d = ttf.assign(age_c=ttf["age"] - 16.0)
    covariates = [c for c in ("age_c", "prior_absconding")
                  if d[c].notna().any() and d[c].dropna().nunique() > 1]
    dropped = sorted({"age_c", "prior_absconding"} - set(covariates))
    d = d.dropna(subset=covariates)
    info.update({"covariates": covariates, "dropped_covariates": dropped, "firth": False,
                 "status": "ok"})
    if not covariates or int(d["absconded"].sum()) == 0:
        info["status"] = "not_estimable"
        return
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit = survival.cox(d, time="weeks", event="absconded", covariates=covariates,
                               confidence=confidence)
            separated = any(issubclass(w.category, survival.SeparationWarning) for w in caught)
            if separated:
                fit = survival.cox(d, time="weeks", event="absconded", covariates=covariates,
                                   firth=True, confidence=confidence)
                info["firth"] = True
        except EffectStudyError as exc:
            info.update({"status": "failed", "error": str(exc)})
            info["messages"] = _messages(caught)
            return
    info["messages"] = _messages(caught)
    info["events_per_variable"] = float(fit.events_per_variable)
    info["few_events"] = any(issubclass(w.category, survival.FewEventsWarning) for w in caught)
    frames["dropout_cox"] = fit.coefficients()
    frames["dropout_cox_fit"] = fit.summary()


def _missing(table: pd.DataFrame, clients: pd.DataFrame, spec: dict[str, Any], seed: int,
             confidence: float, frames: dict[str, pd.DataFrame], info: dict[str, Any]) -> None:
    from effectstudy import missing

    ds = spec.get("dropout", {})
    ml = spec.get("multilevel", {})
    construct = ml.get("construct", "internalising")
    formula = ml.get("formula", "z ~ week + (1 + week | client)")
    ddf = ml.get("ddf", "kenward-roger")
    term = str(ds.get("term", "week"))
    m = int(ds.get("m", DEFAULT_M))
    deltas = [float(x) for x in ds.get("deltas", DEFAULT_DELTAS)]
    tab = growth_table(table, construct)
    better = str(ds.get("better", "lower"))
    info.update({"construct": construct, "formula": formula, "ddf": ddf, "term": term, "m": m,
                 "deltas": deltas, "better": better, "status": "ok"})
    analysis = missing.growth_analysis(formula, term=term, ddf=ddf)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            observed = analysis(tab)
            mi = missing.impute(tab, outcome="z", time="week", occasion="occasion_label", m=m,
                                rng=np.random.default_rng(seed),
                                burn_in=int(ds.get("burn_in", 200)), thin=int(ds.get("thin", 20)))
            pooled = missing.analyse_imputed(analysis, mi, confidence=confidence)
            tp = missing.tipping_point(tab, clients, outcome="z", time="week", deltas=deltas,
                                       analysis=analysis, term=term, occasion="occasion_label",
                                       better=better, imputed=mi, confidence=confidence)
        except EffectStudyError as exc:
            info.update({"status": "failed", "error": str(exc), "messages": _messages(caught)})
            return
    info["messages"] = _messages(caught)
    from scipy import stats

    z = float(stats.norm.ppf(0.5 + confidence / 2))
    obs = observed.iloc[0]
    df_obs = float(obs["df"])
    q = float(stats.t.ppf(0.5 + confidence / 2, df_obs)) if np.isfinite(df_obs) else z
    rows = [{"data": "observed", "term": term, "estimate": float(obs["estimate"]),
             "se": float(obs["se"]), "df": df_obs,
             "ci_lower": float(obs["estimate"]) - q * float(obs["se"]),
             "ci_upper": float(obs["estimate"]) + q * float(obs["se"]), "fmi": np.nan}]
    p = pooled.iloc[0]
    rows.append({"data": "imputed", "term": term, "estimate": float(p["estimate"]),
                 "se": float(p["se"]), "df": float(p["df"]), "ci_lower": float(p["ci_lower"]),
                 "ci_upper": float(p["ci_upper"]), "fmi": float(p["fmi"])})
    frames["dropout_mi"] = pd.DataFrame(rows)
    frames["dropout_mi_pooled"] = pooled
    frames["dropout_tipping"] = tp.to_frame()
    info.update({"n_scores": int(len(tab)),
                 "tipping_delta": tp.tipping_delta, "tipping_crossing": tp.tipping_crossing,
                 "outcome_sd": float(tp.outcome_sd), "sign": int(tp.sign),
                 "n_clients_shifted": int(tp.n_clients_shifted),
                 "n_cells_shifted": int(tp.n_cells_shifted), "summary": tp.summary()})


def dropout(table: pd.DataFrame, clients: pd.DataFrame, events: pd.DataFrame | None,
            harmonised: Any, spec: dict[str, Any], frames: dict[str, pd.DataFrame],
            meta: dict[str, Any]) -> None:
    """Fill the dropout and safety section of a study run (frames ``dropout_*``, ``meta["dropout"]``).

    Parameters
    ----------
    table, clients
        The harmonised score and client tables.
    events
        The harmonised events table, or None (then the client table's end reason and
        weeks in care give the time to the event, and ``meta["dropout"]["source"]`` says so).
    harmonised
        The :class:`~effectstudy.harmonise.Harmonised` result (None for a frame pair).
    spec
        The validated analysis spec; ``dropout`` holds ``event`` (default ``absconded``),
        ``m`` (imputations, default 10), ``deltas`` (the tipping-point grid in SD units),
        ``burn_in``, ``thin``, ``term``, ``better`` and ``confidence``.
    frames, meta
        Filled in place.

    Notes
    -----
    Kaplan-Meier with Greenwood SE (Kaplan & Meier 1958; Greenwood 1926), log-rank
    (Mantel 1966), Aalen-Johansen cumulative incidence (Aalen & Johansen 1978), exact
    Poisson rates (Garwood 1936), Cox (Cox 1972) with Firth's penalty under separation
    (Heinze & Schemper 2001), two-level multiple imputation (Schafer & Yucel 2002) pooled
    with Rubin's rules (Rubin 1987) and the delta-adjusted tipping point (Ratitch,
    O'Kelly & Tosiello 2013).
    """
    from effectstudy import survival

    ds = spec.get("dropout", {})
    event = str(ds.get("event", "absconded"))
    confidence = float(ds.get("confidence", 0.95))
    seed = int(spec.get("seed", 2026))
    ttf, source = time_to_event(clients, events, harmonised, event)
    info: dict[str, Any] = {"status": "ok", "event": event, "source": source,
                            "confidence": confidence, "module": "effectstudy.survival",
                            "messages": []}
    if source == "clients":
        info["messages"].append("no absconding episodes in an events table: the time to the "
                                "event is the weeks in care with the end reason")
    if ttf.empty:
        info["status"] = "no_times"
        meta["dropout"] = info
        return
    km = survival.kaplan_meier(ttf, time="weeks", event="absconded", by="programme",
                               confidence=confidence)
    frames["dropout_km"] = km.curve.reset_index(drop=True)
    frames["dropout_median"] = survival.median_survival(km)
    frames["dropout_n"] = (ttf.groupby("programme").agg(clients=("client", "size"),
                                                        events=("absconded", "sum"))
                           .reset_index())
    if ttf["programme"].nunique() > 1:
        lr = survival.logrank(ttf, time="weeks", event="absconded", by="programme")
        frames["dropout_logrank"] = lr.to_frame()
        frames["dropout_logrank_groups"] = lr.summary()
    ci = survival.cumulative_incidence(ttf.assign(cause=causes(ttf)), time="weeks",
                                       event="cause", event_of_interest=1, by="programme",
                                       confidence=confidence)
    frames["dropout_cif"] = ci.to_frame()
    expo = exposure_table(clients, events if source == "events" else None)
    if source == "events" and len(expo):
        rate = survival.event_rate(expo, events="episodes", exposure="weeks_in_care",
                                   by="programme", per=100, confidence=confidence)
        frames["dropout_rates"] = rate.to_frame()
    cox_info: dict[str, Any] = {}
    _cox(ttf, confidence, frames, cox_info)
    info["cox"] = cox_info
    if "multilevel" in spec and len(table):
        mi_info: dict[str, Any] = {}
        _missing(table, clients, spec, seed, confidence, frames, mi_info)
        info["missing"] = mi_info
    meta["dropout"] = info
