"""The integrity section of a study run (issue 12): adherence, dose, fidelity, moderators.

Called by :func:`effectstudy.study.run.run` when the spec has an ``integrity:`` block and
the harmonised data carry delivery logs and fidelity ratings
(:mod:`effectstudy.harmonise.integrity`). Every number comes from
:mod:`effectstudy.fidelity`; this module only chooses the data and keeps the results as
frames and JSON metadata of :class:`~effectstudy.study.results.StudyResults` (exact and
internal; the renderer applies the audience rules).

Spec keys (all optional)::

    integrity:
      construct: trauma_symptoms   # outcome of dose-response, tailoring, moderator
      confidence: 0.95
      block: 4                     # weeks per block of the drift table
      dose_unit: sessions          # or minutes
      dose_groups: 3               # slopes per dose group (0: skip)
      power_programmes: [6, 12]    # programmes to simulate the moderator's power for
      power_nsim: 20               # simulations per number of programmes ([] or 0: skip)

The outcome is the raw score of the construct's most-used instrument scale (one metric;
``z`` needs a verified norm that many scales lack), at ``week`` since intake.

The dose-response curve (frame ``integrity_dose_curve``: ``dose, estimate, ci_lower,
ci_upper``, :data:`DOSE_CURVE_POINTS` points of
:meth:`~effectstudy.fidelity.DoseResponseResult.curve`) is saved only over a range that
shows no single girl's dose (:func:`dose_curve_range`): the ends of the observed range
are one girl's values, so the range is trimmed to the 10th-90th percentile of the girls'
doses, narrowed until at least ``suppression.threshold`` girls lie at or beyond each
end, and rounded inwards. No per-client dose is saved with it.

References
----------
Carroll, C. et al. (2007). A conceptual framework for implementation fidelity.
*Implementation Science*, 2, 40. Korn, E. L. & Graubard, B. I. (1998). *Survey
Methodology*, 24(2), 193-201. Kenward, M. G. & Roger, J. H. (1997). *Biometrics*, 53,
983-997. Shrout, P. E. & Fleiss, J. L. (1979). *Psychological Bulletin*, 86, 420-428.
Pustejovsky, J. E. & Tipton, E. (2018). *J Bus Econ Stat*, 36, 672-683. Holm, S. (1979).
*Scand J Stat*, 6, 65-70.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.dictionary import Dictionary, load_integrity
from effectstudy.errors import EffectStudyError

__all__ = ["integrity", "outcome_table", "dose_curve_range", "INTEGRITY_DEFAULTS",
           "DOSE_CURVE_TRIM", "DOSE_CURVE_POINTS"]

#: Defaults of the ``integrity:`` spec block.
INTEGRITY_DEFAULTS: dict[str, Any] = {
    "construct": "trauma_symptoms", "confidence": 0.95, "block": 4, "dose_unit": "sessions",
    "dose_groups": 3, "power_programmes": [6, 12], "power_nsim": 20,
}


def outcome_table(table: pd.DataFrame, construct: str) -> tuple[pd.DataFrame, str | None]:
    """``programme, client, time, outcome`` of one construct (raw scores of its most-used
    instrument scale, ``time`` = week since intake), and that ``instrument/scale``."""
    t = table[(table["construct"] == construct) & table["raw"].notna() & table["week"].notna()]
    t = t[t["session"].isna()] if "session" in t else t  # measurements, not series sessions
    if t.empty:
        return pd.DataFrame(columns=["programme", "client", "time", "outcome"]), None
    inst, scale = (t.groupby(["instrument", "scale"]).size().sort_values(ascending=False,
                                                                         kind="stable").index[0])
    t = t[(t["instrument"] == inst) & (t["scale"] == scale)]
    out = pd.DataFrame({"programme": t["programme"].astype(str).to_numpy(),
                        "client": t["client"].astype(str).to_numpy(),
                        "time": t["week"].astype(float).to_numpy(),
                        "outcome": t["raw"].astype(float).to_numpy()})
    return out, f"{inst}/{scale}"


#: Share of the girls trimmed from each end of the dose range of the saved curve.
DOSE_CURVE_TRIM = 0.10
#: Points of the saved dose-response curve.
DOSE_CURVE_POINTS = 41


def dose_curve_range(data: pd.DataFrame, threshold: int, *, dose: str = "dose",
                     client: str = "client", trim: float = DOSE_CURVE_TRIM
                     ) -> tuple[float, float] | None:
    """A dose range to publish the dose-response curve over, revealing no single girl.

    With each girl's lowest and highest cumulative dose over her occasions, the range
    runs from the ``trim`` quantile of the lowest doses to the ``1 - trim`` quantile of
    the highest, narrowed so that at least ``threshold`` girls have a dose at or below
    its lower end and at or above its upper end, then rounded inwards to a whole number
    of units (to two significant digits above 100: 1234 minutes -> 1200). None when
    fewer than ``2 * threshold`` girls remain or the range is empty.
    """
    per = data.groupby(client)[dose].agg(["min", "max"]).dropna()
    k = max(int(threshold), 1)
    if len(per) < 2 * k:
        return None
    low = np.sort(per["min"].to_numpy(float))
    high = np.sort(per["max"].to_numpy(float))[::-1]
    lower = max(float(np.quantile(low, trim)), float(low[k - 1]))
    upper = min(float(np.quantile(high, 1 - trim)), float(high[k - 1]))
    if upper <= 0:
        return None
    step = max(1.0, 10.0 ** (np.floor(np.log10(upper)) - 1))
    lower, upper = step * np.ceil(lower / step), step * np.floor(upper / step)
    return (float(lower), float(upper)) if upper > lower else None


def _frame(df: pd.DataFrame | None) -> pd.DataFrame:
    if df is None:
        return pd.DataFrame()
    return df.reset_index() if df.index.name is not None else df.reset_index(drop=True)


def integrity(delivery: pd.DataFrame | None, ratings: pd.DataFrame | None,
              table: pd.DataFrame, dictionary: Dictionary, spec: dict[str, Any],
              frames: dict[str, pd.DataFrame], meta: dict[str, Any], *, seed: int = 2026
              ) -> None:
    """Compute the integrity section into ``frames`` (``integrity_*``) and ``meta["integrity"]``.

    Per programme: adherence (share of prescribed components delivered in their phase)
    with its Korn-Graubard interval and the dose received
    (:func:`effectstudy.fidelity.adherence`), the component x programme matrix with its
    n (clients prescribed) and the drift over weeks in care; the fidelity score with its
    Kenward-Roger interval and rater share (:func:`~effectstudy.fidelity.fidelity_score`);
    then the dose-response coefficient with KR inference
    (:func:`~effectstudy.fidelity.dose_response`) and its curve with the KR band over a
    trimmed dose range (:func:`dose_curve_range`), tailoring (exploratory, with the
    number of tests; :func:`~effectstudy.fidelity.tailoring`) and programme fidelity as
    a moderator of the programme slopes (KR, CR2, simulated power and the
    six-programmes sentence; :func:`~effectstudy.fidelity.fidelity_moderator`).

    A step that cannot be computed on these data (too few clients, no ratings ...) is
    recorded in ``meta["integrity"]["notes"]`` and the run goes on.
    """
    from effectstudy import fidelity

    opts = {**INTEGRITY_DEFAULTS, **(spec.get("integrity") or {})}
    conf = float(opts["confidence"])
    info: dict[str, Any] = {"status": "computed", "confidence": conf, "notes": [],
                            "construct": opts["construct"]}
    meta["integrity"] = info
    if delivery is None or len(delivery) == 0:
        info["status"] = "no_data"
        info["notes"].append("the harmonised data hold no delivery logs")
        return
    integ = load_integrity(dictionary)
    logs = delivery[list(fidelity.delivery.LOG_INPUT_COLUMNS)].reset_index(drop=True)
    adh = fidelity.adherence(logs, integ, confidence=conf, block=int(opts["block"]))
    frames["integrity_adherence"] = _frame(adh.programmes)
    frames["integrity_components"] = _frame(adh.components)
    frames["integrity_drift"] = _frame(adh.drift)
    info["adherence_notes"] = list(adh.notes)
    score = None
    if ratings is not None and len(ratings):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                score = fidelity.fidelity_score(ratings, integ, confidence=conf)
            frames["integrity_score"] = _frame(score.scores)
            info["score_scale"] = score.scale
        except EffectStudyError as exc:
            info["notes"].append(f"fidelity score: {exc}")
    else:
        info["notes"].append("the harmonised data hold no fidelity ratings")
    ot, measure = outcome_table(table, str(opts["construct"]))
    info["outcome"] = measure
    if measure is None:
        info["notes"].append("no scores of the construct: dose, tailoring and moderator skipped")
        return
    try:
        dr = fidelity.dose_response(ot, logs, unit=str(opts["dose_unit"]),
                                    groups=int(opts["dose_groups"]), confidence=conf)
        frames["integrity_dose"] = _frame(dr.coefficients)
        frames["integrity_dose_groups"] = _frame(dr.by_group)
        info["dose"] = {"formula": dr.formula, "term": dr.dose_column,
                        "unit": str(opts["dose_unit"]),
                        "group_formula": dr.group_formula, "notes": list(dr.notes),
                        "n_clients": int(dr.data["client"].nunique())}
        threshold = int((spec.get("suppression") or {}).get("threshold", 5))
        span = dose_curve_range(dr.data, threshold, dose=dr.dose_column)
        if span is None:
            info["dose"]["curve"] = None
            info["notes"].append("dose-response curve: too few girls for a dose range that "
                                 "shows no single girl's dose; not saved")
        else:
            frames["integrity_dose_curve"] = dr.curve(*span, points=DOSE_CURVE_POINTS)
            info["dose"]["curve"] = {"from": span[0], "to": span[1], "trim": DOSE_CURVE_TRIM,
                                     "threshold": threshold, "points": DOSE_CURVE_POINTS}
    except EffectStudyError as exc:
        info["notes"].append(f"dose-response: {exc}")
    try:
        tl = fidelity.tailoring(logs, ot, integ, confidence=conf)
        frames["integrity_tailoring"] = _frame(tl.summary)
        frames["integrity_tailoring_tests"] = _frame(tl.tests)
        info["tailoring"] = {"n_tests": int(tl.n_tests), "adjustment": tl.adjustment,
                             "notes": list(tl.notes)}
    except EffectStudyError as exc:
        info["notes"].append(f"tailoring: {exc}")
    if score is None:
        return
    nsim = int(opts["power_nsim"] or 0)
    progs = tuple(int(k) for k in (opts["power_programmes"] or ()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = fidelity.fidelity_moderator(
                ot, score.scores, confidence=conf,
                power_programmes=progs if (progs and nsim) else None,
                nsim=max(nsim, 1), rng=seed)
        frames["integrity_moderator"] = _frame(mod.coefficients)
        frames["integrity_moderator_cr2"] = _frame(mod.cr2)
        frames["integrity_moderator_power"] = _frame(mod.power)
        info["moderator"] = {"formula": mod.formula, "n_programmes": int(mod.n_programmes),
                             "programmes_for_80": mod.programmes_for_80,
                             "sentence": mod.sentence, "notes": list(mod.notes),
                             "nsim": nsim}
    except EffectStudyError as exc:
        info["notes"].append(f"fidelity moderator: {exc}")
