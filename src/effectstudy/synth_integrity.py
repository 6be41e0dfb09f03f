"""Synthetic programme-integrity data with a known truth (issue 12, section 2).

:func:`generate_integrity` simulates, per programme of the dictionary, what the
integrity tools in :mod:`effectstudy.fidelity` analyse, from parameters it returns:

* **delivery logs**, one row per client x week x prescribed component
  (``delivered`` 0/1 and ``minutes``). Every universal component of a phase the client
  reaches is prescribed; each tailored component is prescribed to a client with
  probability ``tailored_share``. Client ``i`` of programme ``p`` has her own delivery
  probability ``pi_i ~ Beta(a_p kappa, (1 - a_p) kappa)`` (mean ``a_p``, the programme's
  true adherence); a prescribed component is delivered in its phase with probability
  ``pi_i`` (at least one session in one of its weeks; further weeks at the rate that
  gives the intended dose). The expected share of prescribed components delivered in
  their phase is therefore exactly ``a_p``.
* **fidelity ratings**, targets (team-months or sessions) x raters x checklist items
  of the programme's fidelity instrument: the item score is
  ``clip(round(min + (max - min) (f_p + t_target + b_rater + e)))`` with target effects
  ``t ~ N(0, target_sd^2)``, rater biases ``b ~ N(0, rater_sd^2)`` (returned) and noise
  ``e ~ N(0, noise_sd^2)``; the latent fidelity ``f_p`` equals the programme's adherence.
  ``truth.fidelity_expected`` is the exact expectation of the observed item score
  (rounding and clipping included) as a share of the scale range.
* a **growth outcome** with a dose-response effect: occasions every ``every`` weeks,
  ``y = 50 + v_p + u0_i + (time_slope + u1_i) week + dose_slope dose_i(week) + e`` where
  ``dose_i(week)`` is the client's cumulative number of delivered sessions up to that
  week (a time-varying predictor).

Raw logs carry raw client ids (as the other synthetic exports); the harmonised form has
keyed pseudonyms (:func:`effectstudy.harmonise.pseudonym.pseudonymise` with the
synthetic :func:`~effectstudy.harmonise.pseudonym.demo_key`), never the raw id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._io import atomic_write_bytes, csv_bytes
from effectstudy.dictionary import Dictionary, IntegrityDictionary, load_integrity
from effectstudy.errors import SpecError
from effectstudy.harmonise.pseudonym import demo_key, programme_code, pseudonymise

__all__ = ["IntegritySynth", "generate_integrity", "LOG_FIELDS", "RATING_FIELDS", "OUTCOME_FIELDS"]

#: Columns of the harmonised delivery log.
LOG_FIELDS = ("programme", "client", "week", "phase", "component", "delivered", "minutes")
#: Columns of the harmonised fidelity ratings.
RATING_FIELDS = ("programme", "instrument", "target", "rater", "rater_role", "item", "score")
#: Columns of the growth outcome.
OUTCOME_FIELDS = ("programme", "client", "time", "dose", "outcome")


@dataclass
class IntegritySynth:
    """What :func:`generate_integrity` simulated, and the truth behind it.

    Attributes
    ----------
    logs_raw, logs
        Delivery logs with raw ids (``client_id``) and harmonised (``client`` pseudonym),
        columns :data:`LOG_FIELDS` (``client_id`` instead of ``client`` in the raw form).
    ratings
        Fidelity ratings, columns :data:`RATING_FIELDS`.
    outcomes
        The growth outcome, columns :data:`OUTCOME_FIELDS` (``dose``: cumulative
        delivered sessions up to ``time`` weeks).
    clients
        ``programme, client_id, client, weeks_in_care, completed, adherence_client``
        (``adherence_client`` is the client's delivery probability ``pi_i``).
    truth
        One row per programme: ``programme, adherence, fidelity_latent,
        fidelity_expected, programme_effect``.
    rater_bias
        ``programme, rater, rater_role, bias`` (share-of-range units).
    params
        The generator's parameters (``dose_slope``, ``time_slope``, SDs ...).
    """

    logs_raw: pd.DataFrame
    logs: pd.DataFrame
    ratings: pd.DataFrame
    outcomes: pd.DataFrame
    clients: pd.DataFrame
    truth: pd.DataFrame
    rater_bias: pd.DataFrame
    params: dict

    def write(self, out_dir: str | Path) -> list[Path]:
        """Write the raw logs and the ratings as CSV (atomic, 0600, formula cells escaped)."""
        out = Path(out_dir)
        files = []
        for prog, part in self.logs_raw.groupby("programme", sort=True):
            files.append(atomic_write_bytes(out / f"{prog}_delivery_log.csv", csv_bytes(part)))
        for prog, part in self.ratings.groupby("programme", sort=True):
            files.append(atomic_write_bytes(out / f"{prog}_fidelity_ratings.csv", csv_bytes(part)))
        return files


def _phase_weeks(prog, planned: int) -> list[tuple[str, int, int]]:
    """(phase id, first week, last week) of a planned stay; phases scaled to ``planned`` weeks."""
    typical = np.array([p.typical_weeks.value or 1.0 for p in prog.phases], float)
    bounds = np.rint(np.cumsum(typical) / typical.sum() * planned).astype(int)
    out, start = [], 1
    for p, end in zip(prog.phases, bounds, strict=True):
        end = max(end, start)  # every phase at least one week
        out.append((p.id, start, int(end)))
        start = int(end) + 1
    return out


def _expected_share(level: float, sd: float, lo: float, hi: float) -> float:
    """E[clip(round(lo + (hi - lo) X))] as a share of ``hi - lo`` for X ~ N(level, sd^2)."""
    width = hi - lo
    ks = np.arange(int(lo), int(hi) + 1)
    mu, s = lo + width * level, width * sd
    upper = np.where(ks == hi, np.inf, ks + 0.5)
    lower = np.where(ks == lo, -np.inf, ks - 0.5)
    p = stats.norm.cdf(upper, mu, s) - stats.norm.cdf(lower, mu, s)
    return float(((ks - lo) * p).sum() / width)


def generate_integrity(
    dictionary: Dictionary | IntegrityDictionary | str | Path | None = None,
    *,
    seed: int = 2026,
    n_clients: int | Mapping[str, int] = 12,
    adherence: Mapping[str, float] | None = None,
    kappa: float = 20.0,
    tailored_share: float = 0.5,
    dropout: float = 0.25,
    dose_slope: float = -0.15,
    time_slope: float = -0.10,
    every: int = 4,
    targets: int = 8,
    raters: tuple[str, ...] = ("team", "team", "external"),
    target_sd: float = 0.06,
    rater_sd: float = 0.05,
    noise_sd: float = 0.08,
    sd_programme: float = 2.0,
    sd_intercept: float = 6.0,
    sd_slope: float = 0.08,
    sd_residual: float = 3.0,
) -> IntegritySynth:
    """Simulate delivery logs, fidelity ratings and a dose-dependent growth outcome.

    Parameters
    ----------
    dictionary
        A loaded :class:`IntegrityDictionary` or :class:`Dictionary`, a folder, or None
        for the shipped dictionary.
    seed
        Seed of all randomness (``numpy.random.default_rng``); same seed, same frames.
    n_clients
        Clients per programme (one number, or per programme id).
    adherence
        True adherence per programme; default: drawn from U(0.55, 0.92).
    kappa
        Concentration of the clients' delivery probabilities around the programme's
        adherence (Beta with mean ``a_p`` and variance ``a_p(1-a_p)/(kappa+1)``).
    tailored_share
        Probability that a tailored component is prescribed to a client.
    dropout
        Share of clients who leave early (after 30-80% of the planned stay).
    dose_slope, time_slope
        Fixed effects of the growth outcome per cumulative delivered session and per week.
    every
        Weeks between outcome occasions (from week 0 to the last week in care).
    targets, raters
        Rated targets per programme, and the role of each rater (``team``/``external``).
    target_sd, rater_sd, noise_sd
        SDs of target effects, rater biases and rating noise, as shares of the scale range.
    sd_programme, sd_intercept, sd_slope, sd_residual
        SDs of the outcome's programme and client intercepts, client time slopes and
        residuals.

    Returns
    -------
    IntegritySynth
    """
    integ = dictionary if isinstance(dictionary, IntegrityDictionary) else load_integrity(dictionary)
    d = integ.dictionary
    if not 0 <= tailored_share <= 1 or not 0 <= dropout < 1:
        raise SpecError("tailored_share and dropout must be shares")
    if kappa <= 0 or every < 1 or targets < 2 or len(raters) < 2:
        raise SpecError("kappa > 0, every >= 1, targets >= 2 and at least two raters are needed")
    rng = np.random.default_rng(seed)
    key = demo_key(seed)
    programmes = [p for p in sorted(d.programmes) if integ.components.get(p)]
    log_rows, rating_rows, outcome_rows, client_rows, truth_rows, bias_rows = [], [], [], [], [], []
    for prog_id in programmes:
        prog = d.programmes[prog_id]
        comps = integ.components[prog_id]
        a_p = float(adherence[prog_id]) if adherence and prog_id in adherence \
            else float(rng.uniform(0.55, 0.92))
        if not 0 < a_p < 1:
            raise SpecError(f"adherence of {prog_id} must lie strictly between 0 and 1")
        n = int(n_clients[prog_id]) if isinstance(n_clients, Mapping) else int(n_clients)
        typical = prog.typical_weeks.value or 26.0
        maximum = prog.maximum_weeks.value or 1.5 * typical
        v_p = float(rng.normal(0.0, sd_programme))
        used: set[int] = set()
        for _ in range(n):
            while True:
                raw = int(rng.integers(100_000, 999_999))
                if raw not in used:
                    used.add(raw)
                    break
            client = pseudonymise(prog_id, raw, key)
            planned = int(np.clip(round(typical * rng.lognormal(0.0, 0.15)), max(2, typical // 2),
                                  max(maximum, 2)))
            completed = bool(rng.random() >= dropout)
            weeks = planned if completed else max(1, int(round(planned * rng.uniform(0.3, 0.8))))
            schedule = [(ph, s, min(e, weeks)) for ph, s, e in _phase_weeks(prog, planned) if s <= weeks]
            pi = float(rng.beta(a_p * kappa, (1 - a_p) * kappa))
            sessions = np.zeros(weeks + 1)  # delivered sessions per week (index = week)
            for comp in comps:
                if comp.delivery == "tailored" and rng.random() >= tailored_share:
                    continue
                cweeks = [(ph, w) for ph, s, e in schedule if comp.applies_in(ph)
                          for w in range(s, e + 1)]
                if not cweeks:
                    continue
                delivered = np.zeros(len(cweeks), int)
                if rng.random() < pi:
                    dose = comp.dose.value or len(cweeks)
                    rate = 0.9 if comp.dose.unit == "weeks" else min(1.0, dose / len(cweeks))
                    delivered = (rng.random(len(cweeks)) < rate).astype(int)
                    delivered[int(rng.integers(len(cweeks)))] = 1
                per_session = 240.0 if comp.dose.unit == "weeks" else 60.0
                for (ph, w), dv in zip(cweeks, delivered, strict=True):
                    minutes = float(np.clip(round(rng.normal(per_session, per_session / 4)), 10,
                                            3 * per_session)) if dv else 0.0
                    sessions[w] += dv
                    log_rows.append({"programme": prog_id, "client_id": raw, "client": client,
                                     "week": w, "phase": ph, "component": comp.id,
                                     "delivered": int(dv), "minutes": minutes})
            cum = np.cumsum(sessions)
            u0, u1 = rng.normal(0.0, sd_intercept), rng.normal(0.0, sd_slope)
            for t in range(0, weeks + 1, every):
                y = 50.0 + v_p + u0 + (time_slope + u1) * t + dose_slope * cum[t] \
                    + rng.normal(0.0, sd_residual)
                outcome_rows.append({"programme": prog_id, "client": client, "time": float(t),
                                     "dose": float(cum[t]), "outcome": float(y)})
            client_rows.append({"programme": prog_id, "client_id": raw, "client": client,
                                "weeks_in_care": weeks, "completed": completed,
                                "adherence_client": pi})
        # fidelity ratings
        try:
            inst = integ.instrument_for(prog_id)
        except KeyError:
            inst = None
        expected = np.nan
        if inst is not None:
            lo, hi = inst.score_min, inst.score_max
            code = programme_code(prog_id)
            biases = rng.normal(0.0, rater_sd, len(raters))
            rater_ids = [f"{code}-rater{k + 1}" for k in range(len(raters))]
            for rid, role, b in zip(rater_ids, raters, biases, strict=True):
                bias_rows.append({"programme": prog_id, "rater": rid, "rater_role": role, "bias": float(b)})
            label = "session" if inst.target == "session" else "month"
            for t in range(targets):
                te = rng.normal(0.0, target_sd)
                for rid, role, b in zip(rater_ids, raters, biases, strict=True):
                    for item in inst.items:
                        x = a_p + te + b + rng.normal(0.0, noise_sd)
                        score = float(np.clip(np.rint(lo + (hi - lo) * x), lo, hi))
                        rating_rows.append({"programme": prog_id, "instrument": inst.id,
                                            "target": f"{code}-{label}{t + 1:02d}", "rater": rid,
                                            "rater_role": role, "item": item.id, "score": score})
            expected = _expected_share(a_p, float(np.sqrt(target_sd**2 + rater_sd**2 + noise_sd**2)),
                                       lo, hi)
        truth_rows.append({"programme": prog_id, "adherence": a_p, "fidelity_latent": a_p,
                           "fidelity_expected": expected, "programme_effect": v_p})
    logs_all = pd.DataFrame(log_rows)
    logs_raw = logs_all[["programme", "client_id", "week", "phase", "component", "delivered",
                         "minutes"]].reset_index(drop=True)
    logs = logs_all[list(LOG_FIELDS)].reset_index(drop=True)
    params = dict(seed=seed, kappa=kappa, tailored_share=tailored_share, dropout=dropout,
                  dose_slope=dose_slope, time_slope=time_slope, every=every, targets=targets,
                  raters=tuple(raters), target_sd=target_sd, rater_sd=rater_sd, noise_sd=noise_sd,
                  sd_programme=sd_programme, sd_intercept=sd_intercept, sd_slope=sd_slope,
                  sd_residual=sd_residual)
    return IntegritySynth(logs_raw=logs_raw, logs=logs,
                          ratings=pd.DataFrame(rating_rows, columns=list(RATING_FIELDS)),
                          outcomes=pd.DataFrame(outcome_rows, columns=list(OUTCOME_FIELDS)),
                          clients=pd.DataFrame(client_rows), truth=pd.DataFrame(truth_rows),
                          rater_bias=pd.DataFrame(bias_rows), params=params)
