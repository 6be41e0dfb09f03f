"""Run every analysis of a spec once and keep the exact results (:func:`run`).

This is where the statistics are computed; the report package only renders what is
kept here. No audience rule is applied: the results are exact and internal (client
pseudonyms included), like the harmonised folder they come from; suppression and
case numbering happen in the renderer.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as md
import platform
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

import effectstudy
from effectstudy.dictionary import Dictionary, Texts, load_dictionary, load_integrity
from effectstudy.errors import SpecError
from effectstudy.study.results import StudyResults
from effectstudy.study.spec import load_spec, validate_spec

_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "pingouin", "matplotlib", "jinja2",
             "pandera")

#: Columns of the per-programme flow counts (code names; the renderer labels them).
#: The flow columns; end of care is completed, absconded, transferred or unknown (not
#: recorded), and the four add up to the referred clients.
FLOW_COLUMNS = ("referred", "included", "completed", "absconded", "transferred", "unknown",
                "analysed")


def _messages(caught: list[warnings.WarningMessage]) -> list[str]:
    return list(dict.fromkeys(str(w.message) for w in caught))


def data_hash(table: pd.DataFrame, clients: pd.DataFrame) -> str:
    """SHA-256 of the harmonised table and client table (order-independent)."""
    h = hashlib.sha256()
    for frame in (table, clients):
        canon = frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)
        h.update(canon.to_csv(index=False).encode("utf-8"))
    return h.hexdigest()


def provenance(table: pd.DataFrame, clients: pd.DataFrame, dictionary: Dictionary,
               spec: dict[str, Any], upstream: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything needed to reproduce the results (no audience: results are exact)."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    prov: dict[str, Any] = {
        "effectstudy_version": effectstudy.__version__,
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "seed": spec.get("seed"),
        "dictionary_sha256": dictionary.sha256,
        "data_sha256": data_hash(table, clients),
        "packages": versions,
        "packages_text": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "spec": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
    }
    if upstream:
        prov["harmonised_at"] = upstream.get("date") or upstream.get("created")
    return prov


# --------------------------------------------------------------------------- #
# The programmes as the dictionary describes them
# --------------------------------------------------------------------------- #
def _texts(record: Texts, name: str) -> dict[str, str] | None:
    """A dictionary text in every language it has (``{"en": ..., "nl": ...}``), or None.

    Saved results keep both languages; the renderer picks the report's language (older
    results hold a plain string: English only).
    """
    return record.texts(name) or None


def _programmes(dd: Dictionary, present: set[str]) -> dict[str, dict[str, Any]]:
    components = load_integrity(dd).components
    out = {}
    for pid, prog in dd.programmes.items():
        out[pid] = {
            "id": pid, "name": prog.name, "short_name": prog.short_name or prog.name,
            "provider": prog.provider, "setting": _texts(prog, "setting"),
            "security": _texts(prog, "security"), "group": _texts(prog, "group"),
            "reach": prog.reach, "aims": _texts(prog, "aims"),
            "max_weeks": (prog.maximum_weeks.value if prog.maximum_weeks.verified else None),
            "typical_weeks": (prog.typical_weeks.value if prog.typical_weeks.verified else None),
            "phases": [_texts(p, "label") for p in prog.phases],
            "phase_ids": [p.id for p in prog.phases],
            "components": {c.id: _texts(c, "label") for c in components.get(pid, ())},
            "ages": (f"{prog.age_min:g}-{prog.age_max:g}"
                     if prog.age_min is not None and prog.age_max is not None
                     and prog.age_source != "UNVERIFIED" else None),
            "in_data": pid in present,
        }
    return out


# --------------------------------------------------------------------------- #
# The analyses
# --------------------------------------------------------------------------- #
def _outcome(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["session"].isna()] if "session" in table else table


def flow_counts(table: pd.DataFrame, clients: pd.DataFrame, pre: str, post: str) -> pd.DataFrame:
    """Exact clients per programme from export to analysis (one row per programme)."""
    outcome = _outcome(table)
    both = (outcome[outcome["occasion"].isin([pre, post])]
            .groupby(["programme", "client"])["occasion"].nunique()
            if len(outcome) and "occasion" in outcome else None)
    rows = []
    for pid, grp in clients.groupby("programme", sort=True):
        ends = grp["end_reason"].value_counts() if "end_reason" in grp else pd.Series(dtype=int)
        analysed = 0
        if both is not None and pid in both.index.get_level_values(0):
            analysed = int((both.loc[pid] == 2).sum())
        included = (outcome.loc[outcome["programme"] == pid, "client"].nunique()
                    if len(outcome) else 0)
        rows.append({"programme": pid, "referred": len(grp), "included": int(included),
                     "completed": int(ends.get("completed", 0)),
                     "absconded": int(ends.get("absconded", 0)),
                     "transferred": int(ends.get("transferred", 0)),
                     "unknown": int(len(grp) - ends.reindex(
                         ["completed", "absconded", "transferred"]).fillna(0).sum()),
                     "analysed": analysed})
    return pd.DataFrame(rows, columns=["programme", *FLOW_COLUMNS])


def client_descriptives(scores: pd.DataFrame) -> pd.DataFrame:
    """n, mean, SD, min and max of raw scores per construct, scale, programme and occasion.

    Several occasion labels of an export can map to one canonical occasion (two
    measurements ``during`` treatment, say); each client is first reduced to the
    mean of her scores at that occasion, so ``n`` is the number of distinct clients
    and the statistics are over clients, never over repeated scores of one girl.
    """
    keys = ["construct", "instrument", "scale", "programme", "occasion"]
    if scores.empty or not set(keys + ["client", "raw"]) <= set(scores.columns):
        return pd.DataFrame(columns=keys + ["n", "mean", "sd", "min", "max"])
    per_client = (scores.dropna(subset=["raw"]).groupby(keys + ["client"], sort=True)["raw"]
                  .mean().reset_index())
    return (per_client.groupby(keys, sort=True)["raw"]
            .agg(n="count", mean="mean", sd="std", min="min", max="max").reset_index())


def norm_view(rc: pd.DataFrame) -> pd.DataFrame:
    """Clients in the clinical range at intake and at discharge, per programme and scale.

    The clinical range is the dysfunctional side of the scale's cut-off (the published
    clinical cut-off, else Jacobson-Truax c or a, as :func:`effectstudy.change.reliable_change`
    chose it): above it where lower scores are better, below it otherwise.
    """
    cols = ["programme", "construct", "instrument", "scale", "n", "clinical_pre",
            "clinical_post", "cutoff", "cutoff_kind"]
    d = rc[rc["cutoff"].notna()] if len(rc) else rc
    rows = []
    for (prog, construct, inst, scale), g in d.groupby(
            ["programme", "construct", "instrument", "scale"], sort=True):
        cut = float(g["cutoff"].iloc[0])
        lower_better = str(g["better"].iloc[0]) == "lower"

        def clinical(x: pd.Series, cut: float = cut, lower_better: bool = lower_better) -> int:
            return int((x > cut).sum() if lower_better else (x < cut).sum())

        rows.append({"programme": prog, "construct": construct, "instrument": inst,
                     "scale": scale, "n": len(g), "clinical_pre": clinical(g["pre"]),
                     "clinical_post": clinical(g["post"]), "cutoff": cut,
                     "cutoff_kind": str(g["cutoff_kind"].iloc[0])})
    return pd.DataFrame(rows, columns=cols)


def _change(table: pd.DataFrame, dd: Dictionary, spec: dict[str, Any],
            frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    from effectstudy import change

    cs = spec.get("change", {})
    pre, post = cs.get("pre", "intake"), cs.get("post", "discharge")
    method = cs.get("method", "jacobson-truax")
    rc = change.reliable_change(table, pre=pre, post=post, method=method,
                                constructs=cs.get("constructs"), dictionary=dd)
    rc = rc.copy()
    rc["reliability_source_key"] = rc["reliability_source"]
    rc["reliability_source"] = rc["reliability_source"].map(
        lambda k: dd.citation(k) if isinstance(k, str) and k else k)
    frames["rc"] = rc
    frames["rc_summary"] = change.summary(rc, by="programme") if len(rc) else pd.DataFrame(
        columns=["programme", "construct", "category", "n", "n_assessed", "n_not_assessable",
                 "proportion", "ci_lower", "ci_upper"])
    frames["norm_view"] = norm_view(rc)
    outcome = _outcome(table)
    if cs.get("constructs"):
        outcome = outcome[outcome["construct"].isin(cs["constructs"])]
    if "better" not in outcome and len(rc):
        # the direction of improvement per scale, as the dictionary gave it to reliable_change
        better = rc.drop_duplicates(["instrument", "scale"]).set_index(["instrument", "scale"])
        outcome = outcome.join(better["better"], on=["instrument", "scale"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp = change.prepost(outcome, pre=pre, post=post, by=("programme", "construct"))
    frames["prepost"] = pp.drop(columns=[c for c in ("warning",) if c in pp])
    meta["change"] = {"pre": pre, "post": post, "method": method,
                      "categories": list(change.CATEGORIES)}
    # the norm groups' descriptions in every language (rc names them in English)
    meta["norm_groups"] = {n.group: _texts(n, "group") for inst in dd.instruments.values()
                           for sc in inst.scales.values() for n in sc.norms}
    fu = []
    occasions = spec.get("follow_up", {}).get("occasions", [])
    for occ in occasions:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            part = change.prepost(outcome, pre=pre, post=occ, by=("programme", "construct"))
        if len(part):
            fu.append(part.drop(columns=[c for c in ("warning",) if c in part])
                      .assign(occasion=occ))
    frames["follow_up"] = (pd.concat(fu, ignore_index=True) if fu
                           else pd.DataFrame(columns=["programme", "construct", "occasion", "n"]))
    meta["follow_up"] = {"occasions": list(occasions)}


def _single_case(table: pd.DataFrame, spec: dict[str, Any], seed: int,
                 frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    from effectstudy import sced

    sc = spec.get("single_case", {})
    series = table[table["occasion"] == "session"]
    if sc.get("instrument"):
        series = series[series["instrument"] == sc["instrument"]]
    if sc.get("construct"):
        series = series[series["construct"] == sc["construct"]]
    if sc.get("programmes"):
        series = series[series["programme"].isin(sc["programmes"])]
    improvement = sc.get("improvement", "decrease")
    measures = list(sc.get("measures", ["NAP", "Tau_U", "PND"]))
    rand = sc.get("randomization", {})
    series = series.rename(columns={"sced_phase": "phase_ab"})
    es_all, rand_rows, checks = [], [], []
    for pid, g in series.groupby("programme", sort=True):
        g = g.assign(case=g["client"])
        es = sced.effect_sizes(g, case="case", phase="phase_ab", session="session", outcome="raw",
                               improvement=improvement, measures=measures)
        es.insert(0, "programme", pid)
        es_all.append(es)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            rt = sced.randomization_test(
                g, case="case", phase="phase_ab", session="session", outcome="raw", design="MB",
                statistic=rand.get("statistic", "mean_difference"),
                min_phase_length=rand.get("min_phase_length", 3),
                n_samples=rand.get("n_samples"), rng=np.random.default_rng(seed),
                improvement=improvement)
        rand_rows.append({"programme": pid, "cases": int(g["case"].nunique()),
                          "statistic": rand.get("statistic", "mean_difference"),
                          "observed": rt.observed, "p_value": rt.p_value,
                          "n_assignments": rt.n_assignments, "min_p": rt.min_p,
                          "warning": "; ".join(_messages(caught))})
        check = sced.design_check(g, case="case", phase="phase_ab", session="session", design="MB")
        check.insert(0, "programme", pid)
        checks.append(check)
    frames["sced_es"] = pd.concat(es_all, ignore_index=True) if es_all else pd.DataFrame(
        columns=["programme", "case", "measure", "estimate"])
    frames["sced_rand"] = pd.DataFrame(rand_rows, columns=[
        "programme", "cases", "statistic", "observed", "p_value", "n_assignments", "min_p",
        "warning"])
    design = pd.concat(checks, ignore_index=True) if checks else pd.DataFrame(
        columns=["programme", "case", "check", "rating"])
    for col in design.columns:
        if design[col].dtype == object:
            design[col] = design[col].map(lambda v: v if v is None or isinstance(v, str)
                                          or pd.isna(v) else str(v))
    frames["sced_design"] = design
    frames["sced_series"] = series[["programme", "client", "session", "phase_ab", "raw"]].reset_index(
        drop=True)
    meta["single_case"] = {"instrument": sc.get("instrument", ""), "improvement": improvement,
                           "measures": measures,
                           "statistic": rand.get("statistic", "mean_difference")}


def _multilevel(table: pd.DataFrame, clients: pd.DataFrame, spec: dict[str, Any],
                frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    from effectstudy import multilevel

    ml = spec.get("multilevel", {})
    construct = ml.get("construct", "internalising")
    formula = ml.get("formula", "z ~ week + (1 + week | client)")
    ddf = ml.get("ddf", "kenward-roger")
    scores = _outcome(table)
    scores = scores[scores["construct"] == construct]
    d = scores[scores["z"].notna()].copy()
    extra = [c for c in ("age", "fidelity") if c in clients]
    d = d.merge(clients[["programme", "client", *extra]], on=["programme", "client"], how="left")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = multilevel.fit(formula, d, reml=ml.get("reml", True))
        coefs = fit.coefficients(ddf=ddf)
        pred = None
        if set(fit.fixed_names) <= {"Intercept", "week"} and "week" in fit.fixed_names and len(d):
            grid = np.linspace(0.0, float(np.nanmax(d["week"])), 40)
            pred = multilevel.predicted_means(fit, {"week": list(grid)}, ddf=ddf)
    frames["ml_coefs"] = coefs
    frames["ml_varcomp"] = fit.variance_components()
    frames["ml_pred"] = pred if pred is not None else pd.DataFrame(
        columns=["week", "estimate", "ci_lower", "ci_upper"])
    frames["ml_means"] = (d.groupby(["programme", "occasion"])
                          .agg(week=("week", "median"), z=("z", "mean"), n=("client", "nunique"))
                          .reset_index())
    msgs = list(getattr(fit, "messages", []) or []) + _messages(caught)
    meta["multilevel"] = {"construct": construct, "formula": formula, "ddf": ddf,
                          "n_scores": int(len(d)), "n_no_norm": int(len(scores) - len(d)),
                          "n_scores_all": int(len(scores)),
                          "max_week": float(np.nanmax(d["week"])) if len(d) else 1.0,
                          "messages": list(dict.fromkeys(str(m) for m in msgs))}


def _slopes(table: pd.DataFrame, spec: dict[str, Any], frames: dict[str, pd.DataFrame],
            meta: dict[str, Any]) -> None:
    """Per-programme growth slopes per construct from one joint model, KR intervals,
    each slope against the mean of all (no multiplicity adjustment) and the CR2 check."""
    from effectstudy import multilevel

    sp = spec.get("slopes", {})
    formula = sp.get("formula", "z ~ week * programme + (1 + week | client)")
    ddf = sp.get("ddf", "kenward-roger")
    confidence = float(sp.get("confidence", 0.95))
    scores = _outcome(table)
    scores = scores[scores["z"].notna()]
    constructs = sp.get("constructs") or sorted(scores["construct"].unique())
    slope_rows, vs_rows, cr_rows, het_rows, n_rows = [], [], [], [], []
    info: dict[str, Any] = {}
    for construct in constructs:
        d = scores[scores["construct"] == construct]
        for pid, g in d.groupby("programme", sort=True):
            n_rows.append({"construct": construct, "programme": pid,
                           "clients": int(g["client"].nunique()), "scores": int(len(g))})
        if d["programme"].nunique() < 2:
            info[construct] = {"status": "fewer_than_two_programmes",
                               "programmes": sorted(d["programme"].unique())}
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                fit = multilevel.fit(formula, d)
                sl = multilevel.slopes(fit, var="week", by="programme", ddf=ddf,
                                       confidence=confidence)
                vm = multilevel.slopes(fit, var="week", by="programme", ddf=ddf,
                                       contrast="vs_mean", confidence=confidence)
            except effectstudy.errors.EffectStudyError as exc:
                info[construct] = {"status": "model_failed", "error": str(exc)}
                continue
            het = None
            try:
                an = fit.anova(ddf=ddf)
                row = an[an.iloc[:, 0].astype(str).str.contains("week:programme")] if len(an) else an
                if len(row):
                    het = {k: (float(v) if isinstance(v, int | float | np.floating) else str(v))
                           for k, v in row.iloc[0].to_dict().items()}
            except Exception:  # noqa: BLE001 - the F-test is reported when it can be made
                het = None
            cr_coefs, cr_wald = None, None
            try:
                cr = multilevel.cluster_robust(fit, cluster="programme")
                cr_coefs = cr.coefficients()
                terms = [t for t in cr_coefs["term"] if str(t).startswith("week:programme")]
                try:
                    w = cr.wald_test(terms)
                    ok = (np.isfinite(w.F) and w.F >= 0 and np.isfinite(w.df_denom)
                          and w.df_denom > 0 and np.isfinite(w.p_value))
                    # with as many contrasts as clusters allow, the HTZ test has no valid
                    # df: recorded as not estimable rather than as a number
                    cr_wald = ({"F": float(w.F), "df_num": float(w.df_num),
                                "df_denom": float(w.df_denom), "p_value": float(w.p_value)}
                               if ok else {"not_estimable": True})
                except Exception:  # noqa: BLE001 - HTZ test impossible with these clusters
                    cr_wald = None
            except effectstudy.errors.EffectStudyError:
                cr_coefs = None
        slope_rows.append(sl.assign(construct=construct))
        vs_rows.append(vm.assign(construct=construct))
        if cr_coefs is not None:
            cr_rows.append(cr_coefs[cr_coefs["term"].astype(str).str.startswith("week:programme")]
                           .assign(construct=construct))
        if het is not None:
            het_rows.append({"construct": construct, **{k: v for k, v in het.items()
                                                         if k in ("F", "num_df", "den_df",
                                                                  "p_value")}})
        info[construct] = {"status": "ok", "n_programmes": int(d["programme"].nunique()),
                           "reference": str(sorted(d["programme"].unique())[0]),
                           "cr2_wald": cr_wald, "messages": _messages(caught)}
    frames["slopes"] = (pd.concat(slope_rows, ignore_index=True) if slope_rows else
                        pd.DataFrame(columns=["programme", "estimate", "se", "df", "ci_lower",
                                              "ci_upper", "statistic", "p_value", "construct"]))
    frames["slopes_vs_mean"] = (pd.concat(vs_rows, ignore_index=True) if vs_rows else
                                pd.DataFrame(columns=list(frames["slopes"].columns)))
    frames["slopes_cr2"] = (pd.concat(cr_rows, ignore_index=True) if cr_rows else
                            pd.DataFrame(columns=["term", "estimate", "se", "df", "p_value",
                                                  "construct"]))
    frames["slopes_n"] = pd.DataFrame(n_rows, columns=["construct", "programme", "clients",
                                                       "scores"])
    frames["slopes_heterogeneity"] = pd.DataFrame(het_rows)
    meta["slopes"] = {"formula": formula, "ddf": ddf, "confidence": confidence,
                      "constructs": list(constructs), "per_construct": info}


def _power(spec: dict[str, Any], frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    from effectstudy import power

    ps = spec.get("power", {})
    des = dict(ps.get("design", {}))
    layout_keys = {"programmes", "clients_per_programme", "weeks", "dropout"}
    planned = {k: des.pop(k) for k in list(des) if k in layout_keys}
    seed = spec.get("seed", 2026)
    design = power.GrowthDesign.planned(**planned, rng=np.random.default_rng(seed), **des)
    res = power.simulate(design, nsim=int(ps.get("nsim", 200)), rng=np.random.default_rng(seed),
                         n_jobs=int(ps.get("n_jobs", 1)), alpha=float(ps.get("alpha", 0.05)),
                         progress=False)
    frames["power"] = res.to_frame()
    meta["power"] = {"nsim": int(res.nsim), "programmes": planned.get("programmes"),
                     "clients_per_programme": planned.get("clients_per_programme"),
                     "weeks": list(planned.get("weeks", [])),
                     "dropout": float(planned.get("dropout", 0)),
                     "test_term": des.get("test_term", "time"),
                     "ddf": des.get("ddf", "satterthwaite"), "alpha": ps.get("alpha", 0.05),
                     "test": design.test_code()}


def _dropout(table: pd.DataFrame, clients: pd.DataFrame, data: Any, spec: dict[str, Any],
             frames: dict[str, pd.DataFrame], meta: dict[str, Any]) -> None:
    """Dropout and safety (issue 13): see :func:`effectstudy.study.dropout.dropout`."""
    from effectstudy.study.dropout import dropout

    dropout(table, clients, getattr(data, "events", None),
            data if hasattr(data, "events") else None, spec, frames, meta)


def _integrity(table: pd.DataFrame, data: Any, dd: Dictionary, spec: dict[str, Any],
               frames: dict[str, pd.DataFrame], meta: dict[str, Any], seed: int) -> None:
    """Programme integrity (issue 12): see :func:`effectstudy.study.integrity.integrity`."""
    from effectstudy.study.integrity import integrity

    integrity(getattr(data, "delivery", None), getattr(data, "fidelity_ratings", None), table,
              dd, spec, frames, meta, seed=seed)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #
def _load_data(data: Any, dd: Dictionary) -> tuple[pd.DataFrame, pd.DataFrame, dict | None]:
    if isinstance(data, str | Path):
        from effectstudy.harmonise import read_harmonised

        data = read_harmonised(data, dd)
    if isinstance(data, tuple) and len(data) == 2:
        return data[0], data[1], None
    if hasattr(data, "table") and hasattr(data, "clients"):
        return data.table, data.clients, getattr(data, "provenance", None)
    raise SpecError("data must be a harmonised folder, a Harmonised result or a "
                    "(table, clients) pair")


def run(spec: str | Path | dict[str, Any] | None, data: Any, *,
        dictionary: Dictionary | None = None) -> StudyResults:
    """Run every analysis the spec asks for, once, and keep the exact results.

    Parameters
    ----------
    spec
        Path of an ``ANALYSIS.yaml``, a dict (validated by
        :func:`effectstudy.study.spec.validate_spec`) or None for the demo spec.
    data
        A harmonised folder, a :class:`~effectstudy.harmonise.Harmonised` result or a
        ``(table, clients)`` pair of frames.
    dictionary
        Data dictionary (default: the shipped one, or env ``EFFECTSTUDY_DICTIONARY``).

    Returns
    -------
    StudyResults
        Exact results of: sample flow, descriptives, reliable and clinically
        significant change (Jacobson & Truax 1991) with its norm-referenced view and
        pre-post effect sizes (Lakens 2013), follow-up, single-case effect sizes,
        randomization tests and WWC design checks (Kratochwill et al. 2010) per
        programme, the growth model (Kenward & Roger 1997), per-programme slopes per
        construct with KR intervals and their CR2 check (Pustejovsky & Tipton 2018),
        simulated power and, when the spec asks for ``dropout``, the dropout and safety
        section (:func:`effectstudy.study.dropout.dropout`: time to first absconding,
        competing events, absconding rates, Cox, the growth result under multiple
        imputation and the tipping point). ``save``/``load`` keep
        them without recomputing. With ``integrity`` in the spec: adherence, dose,
        fidelity score, dose-response, tailoring and the fidelity moderator
        (:mod:`effectstudy.study.integrity`).

    References
    ----------
    Jacobson & Truax (1991), J Consult Clin Psychol 59:12-19; Lakens (2013), Front
    Psychol 4:863; Kratochwill et al. (2010), What Works Clearinghouse SCD technical
    documentation; Kenward & Roger (1997), Biometrics 53:983-997; Pustejovsky &
    Tipton (2018), J Bus Econ Stat 36:672-683.
    """
    dd = dictionary if dictionary is not None else load_dictionary()
    spec_dict = validate_spec(spec) if isinstance(spec, dict) else load_spec(spec)
    if isinstance(data, str | Path):  # read once: the dropout section needs its events too
        from effectstudy.harmonise import read_harmonised

        data = read_harmonised(data, dd)
    table, clients, upstream = _load_data(data, dd)
    seed = int(spec_dict.get("seed", 2026))
    cs = spec_dict.get("change", {})
    pre, post = cs.get("pre", "intake"), cs.get("post", "discharge")
    frames: dict[str, pd.DataFrame] = {}
    meta: dict[str, Any] = {"sections": []}
    present = set(clients["programme"]) if "programme" in clients else set()
    meta["programmes"] = _programmes(dd, present)
    meta["occasion_order"] = {o: dd.occasions[o].order for o in dd.occasions}
    meta["provenance"] = provenance(table, clients, dd, spec_dict, upstream)
    frames["flow"] = flow_counts(table, clients, pre, post)
    frames["clients_per_programme"] = (clients.groupby("programme").size()
                                       .rename("clients").reset_index())
    fid = (clients.groupby("programme")["fidelity"].first().rename("fidelity").reset_index()
           if "fidelity" in clients else pd.DataFrame(columns=["programme", "fidelity"]))
    frames["programme_fidelity"] = fid
    out = _outcome(table)
    wanted = spec_dict.get("descriptives", {}).get("constructs")
    if wanted:
        out = out[out["construct"].isin(wanted)]
    frames["descriptives"] = client_descriptives(out)
    coverage = (_outcome(table).groupby(["programme", "construct"])["client"].nunique()
                .rename("clients").reset_index()) if len(table) else pd.DataFrame(
        columns=["programme", "construct", "clients"])
    frames["coverage"] = coverage
    meta["sections"] += ["programmes", "flow", "descriptives"]
    if table.empty:  # no scores: the flow and nothing else
        return StudyResults(spec=spec_dict, frames=frames, meta=meta)
    if "change" in spec_dict:
        _change(table, dd, spec_dict, frames, meta)
        meta["sections"].append("change")
    if "single_case" in spec_dict:
        _single_case(table, spec_dict, seed, frames, meta)
        meta["sections"].append("single_case")
    if "multilevel" in spec_dict:
        _multilevel(table, clients, spec_dict, frames, meta)
        meta["sections"].append("multilevel")
    if "slopes" in spec_dict:
        _slopes(table, spec_dict, frames, meta)
        meta["sections"].append("slopes")
    if "power" in spec_dict:
        _power(spec_dict, frames, meta)
        meta["sections"].append("power")
    if "dropout" in spec_dict and {"weeks_in_care", "end_reason"} <= set(clients.columns):
        _dropout(table, clients, data, spec_dict, frames, meta)
        meta["sections"].append("dropout")
    if "integrity" in spec_dict:
        _integrity(table, data, dd, spec_dict, frames, meta, seed)
        meta["sections"].append("integrity")
    return StudyResults(spec=spec_dict, frames=frames, meta=meta)
