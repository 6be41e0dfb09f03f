"""Synthetic events with ground truth: absconding, safety reports, end of care.

Called from :func:`effectstudy.synth.generate` (one hook per outcome file); writes the
events into the programmes' outcome exports as the extra columns their sources declare
under ``events:`` (``weglopen_start_{n}``/``weglopen_terug_{n}``, ``contact_uitbuiter_{n}``,
``aangifte_{n}``, ``melding_comensha_{n}``, ``einddatum``) and returns the truth.

Data-generating model
---------------------
*Absconding in care* is a proportional-hazards process on the weeks since intake with a
constant, programme-specific baseline hazard (:data:`BASELINE_HAZARD`, per week)::

    h(t) = h0[programme] * exp(LOG_HR_AGE * (age at intake - 16)
                               + LOG_HR_PRIOR * prior)

where ``prior`` = 1 for a client who absconded before the intake (probability
:data:`P_PRIOR`; written as an episode dated before the intake) or, for later episodes,
who absconded earlier in care. Episodes last 1-21 days (never zero). The process runs
from the intake to the end of care (``weeks_in_care``) or the export date; the times are
exponential draws (Cox 1972's model with a constant baseline, so the exponential rate of
:func:`effectstudy.survival.event_rates` and the log hazard ratios of
:func:`effectstudy.survival.cox` estimate the truth). A client whose care ended by
absconding (``end_reason = absconded``) gets a *terminal* episode starting on her last day
of care without a return (censored); it is not part of the hazard process (marked
``terminal`` in the truth).

During an episode renewed contact with the exploiter is recorded with probability
:data:`P_CONTACT`; after such contact a police report (aangifte) with probability
:data:`P_POLICE` and a report to CoMensha with probability :data:`P_COMENSHA`.

*Informative missingness* (missing not at random): every score measured after the start
of a client's first in-care absconding episode is dropped from the export with probability
``expit(MNAR_INTERCEPT + MNAR_SLOPE * severity)``, where ``severity`` is the latent,
unobserved outcome at that measurement (positive = worse): the worse a girl is doing, the
likelier her scores go missing. The dropped scores with their unobserved values are in
:attr:`EventState.dropped`.

The events use their own random stream (``seed``, programme, ``"events"``), so the other
content of the exports keeps its values; only the scores dropped after absconding change.
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.dictionary import ABSCONDING, END_OF_CARE, EVENT_NUMBER, Dictionary, SourceFile

#: True baseline hazard of absconding per week in care, per programme (age 16, no prior).
BASELINE_HAZARD: dict[str, float] = {
    "egoversterkend": 0.010,
    "hoenderloo": 0.018,
    "intermetzo": 0.012,
    "pinq_crisis": 0.035,
    "pinq_gesloten": 0.015,
    "veilig_lima": 0.020,
}
#: Baseline hazard of a programme not listed above.
DEFAULT_HAZARD = 0.015
#: True log hazard ratio per year of age at intake (centred at 16).
LOG_HR_AGE = 0.15
#: True log hazard ratio of earlier absconding (before intake or earlier in care).
LOG_HR_PRIOR = math.log(2.0)
#: Probability of absconding before the intake.
P_PRIOR = 0.35
#: Renewed contact with the exploiter during an episode.
P_CONTACT = 0.45
#: A police report after renewed contact.
P_POLICE = 0.30
#: A report to CoMensha after renewed contact.
P_COMENSHA = 0.35
#: Informative missingness after absconding: logit P(score dropped) = a + b * severity.
MNAR_INTERCEPT = -0.8
MNAR_SLOPE = 1.5
#: Age at which the age effect is zero.
AGE_CENTRE = 16.0
_EVENTS_STREAM = "events"


def _expit(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def simulate_client_events(programme: str, age: float, weeks: float, end_reason: str,
                           rng: np.random.Generator, *, hazard: float | None = None,
                           prior: bool | None = None) -> list[dict[str, Any]]:
    """Events of one client, in days since intake (see the module's model).

    Parameters
    ----------
    programme
        Programme id (baseline hazard from :data:`BASELINE_HAZARD`).
    age
        Age at intake in years.
    weeks
        Follow-up in care (weeks since intake to the end of care or the export date).
    end_reason
        ``absconded`` adds the terminal episode on the last day of care.
    rng
        The random generator (explicit; no global state).
    hazard, prior
        Override the baseline hazard / the prior-absconding draw (for tests).

    Returns
    -------
    list of dict
        ``type, start_day, end_day (None = no return), terminal, prior`` per event.
    """
    h0 = BASELINE_HAZARD.get(programme, DEFAULT_HAZARD) if hazard is None else hazard
    had_prior = bool(rng.random() < P_PRIOR) if prior is None else bool(prior)
    out: list[dict[str, Any]] = []
    if had_prior:
        start = -int(rng.integers(20, 400))
        out.append({"type": ABSCONDING, "start_day": start,
                    "end_day": start + int(rng.integers(1, 22)), "terminal": False,
                    "prior": True, "in_care": False})
    end_day = int(round(weeks * 7))
    t = 0.0  # days
    earlier = had_prior
    while True:
        rate = h0 * math.exp(LOG_HR_AGE * (age - AGE_CENTRE) + LOG_HR_PRIOR * earlier) / 7.0
        t += float(rng.exponential(1.0 / rate))
        start = int(math.ceil(t))
        if start >= end_day - 1:
            break
        ret = min(start + int(rng.integers(1, 22)), end_day - 1)
        if ret <= start:
            break
        out.append({"type": ABSCONDING, "start_day": start, "end_day": ret, "terminal": False,
                    "prior": earlier, "in_care": True, "exact_start": t})
        if rng.random() < P_CONTACT:
            contact = start + int(rng.integers(0, ret - start))
            out.append({"type": "exploiter_contact", "start_day": contact, "end_day": None,
                        "terminal": False, "prior": earlier, "in_care": True})
            if rng.random() < P_POLICE:
                out.append({"type": "police_report", "start_day": min(ret + 1, end_day),
                            "end_day": None, "terminal": False, "prior": earlier,
                            "in_care": True})
            if rng.random() < P_COMENSHA:
                out.append({"type": "comensha_report", "start_day": min(ret + 2, end_day),
                            "end_day": None, "terminal": False, "prior": earlier,
                            "in_care": True})
        earlier = True
        t = float(ret)
    if end_reason == "absconded" and end_day >= 1:
        out.append({"type": ABSCONDING, "start_day": end_day, "end_day": None,
                    "terminal": True, "prior": earlier, "in_care": True})
    return out


@dataclass
class EventState:
    """Events of every programme of one :func:`~effectstudy.synth.generate` run."""

    seed: int
    export_date: dt.date
    events: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    _done: set[str] = field(default_factory=set)

    def apply(self, d: Dictionary, file: SourceFile, table: Any, ftruth: list[dict[str, Any]],
              clients: list[Any]) -> list[dict[str, Any]]:
        """Write the events of the file's programme into ``table`` (once per programme).

        Adds the declared event columns to ``table`` (in place), drops the scores measured
        after absconding with the informative-missingness model, and returns the truth
        rows that remain.
        """
        if file.events is None or file.programme in self._done or file.layout == "series":
            return ftruth
        self._done.add(file.programme)
        # an own stream (seed, crc32 of programme and "events"): the other content keeps its
        # random numbers
        rng = np.random.default_rng([int(self.seed), zlib.crc32(file.programme.encode()),
                                     zlib.crc32(_EVENTS_STREAM.encode())])
        per_client: dict[str, list[dict[str, Any]]] = {}
        first_start: dict[str, dt.date] = {}
        for c in clients:
            cut = min(c.weeks * 7, (self.export_date - c.intake).days)
            evs = simulate_client_events(file.programme, c.age, max(cut, 0) / 7.0,
                                         c.end_reason if cut == c.weeks * 7 else "in_care", rng)
            rows = []
            for e in evs:
                start = c.intake + dt.timedelta(days=int(e["start_day"]))
                end = (None if e["end_day"] is None
                       else c.intake + dt.timedelta(days=int(e["end_day"])))
                rows.append({"programme": file.programme, "client_id": c.client_id,
                             "type": e["type"], "start_date": start, "end_date": end,
                             "start_week": e["start_day"] / 7.0,
                             "end_week": None if e["end_day"] is None else e["end_day"] / 7.0,
                             "terminal": e["terminal"], "prior": e["prior"],
                             "in_care": e["in_care"], "age": c.age,
                             "weeks_in_care": c.weeks, "followed_weeks": max(cut, 0) / 7.0,
                             "end_reason": c.end_reason,
                             "hazard": BASELINE_HAZARD.get(file.programme, DEFAULT_HAZARD)})
            if cut == c.weeks * 7 and c.intake + dt.timedelta(days=c.weeks * 7) <= self.export_date:
                rows.append({"programme": file.programme, "client_id": c.client_id,
                             "type": END_OF_CARE,
                             "start_date": c.intake + dt.timedelta(days=c.weeks * 7),
                             "end_date": None, "start_week": float(c.weeks), "end_week": None,
                             "terminal": False, "prior": False, "in_care": True, "age": c.age,
                             "weeks_in_care": c.weeks, "followed_weeks": float(c.weeks),
                             "end_reason": c.end_reason,
                             "hazard": BASELINE_HAZARD.get(file.programme, DEFAULT_HAZARD)})
            per_client[c.client_id] = rows
            starts = [r["start_date"] for r in rows
                      if r["type"] == ABSCONDING and r["in_care"] and not r["terminal"]]
            if starts:
                first_start[c.client_id] = min(starts)
            self.events += rows
        self._write(file, table, per_client)
        return self._drop_after_absconding(file, table, ftruth, first_start, rng)

    # -- writing --------------------------------------------------------------
    def _write(self, file: SourceFile, table: Any, per_client: dict[str, list[dict]]) -> None:
        specs = {s.type: s for s in file.events.columns}
        counts: dict[str, int] = {}
        for rows in per_client.values():
            for t in specs:
                counts[t] = max(counts.get(t, 0), sum(r["type"] == t for r in rows))
        new_cols: list[tuple[str, str]] = []
        for t, spec in specs.items():
            k = counts.get(t, 0)
            if spec.start.find(EVENT_NUMBER) < 0:
                if k:
                    new_cols.append((spec.start, "date"))
                continue
            for i in range(1, max(k, 1) + 1):
                new_cols.append((spec.start.replace(EVENT_NUMBER, str(i)), "date"))
                if spec.end:
                    new_cols.append((spec.end.replace(EVENT_NUMBER, str(i)), "date"))
        for col, kind in new_cols:
            if col not in table.columns:
                table.columns.append(col)
            table.kinds[col] = kind
        for row in table.rows:
            cid = str(row.get(file.client_id))
            rows = sorted(per_client.get(cid, []), key=lambda r: r["start_date"])
            n_of: dict[str, int] = {}
            for r in rows:
                spec = specs.get(r["type"])
                if spec is None:
                    continue
                n_of[r["type"]] = n_of.get(r["type"], 0) + 1
                n = str(n_of[r["type"]])
                row[spec.start.replace(EVENT_NUMBER, n)] = r["start_date"]
                if spec.end and r["end_date"] is not None:
                    row[spec.end.replace(EVENT_NUMBER, n)] = r["end_date"]

    # -- informative missingness ----------------------------------------------
    def _drop_after_absconding(self, file: SourceFile, table: Any, ftruth: list[dict[str, Any]],
                               first_start: dict[str, dt.date], rng: np.random.Generator
                               ) -> list[dict[str, Any]]:
        keep: list[dict[str, Any]] = []
        drop_cells: dict[int, list[str]] = {}
        for t in ftruth:
            start = first_start.get(t["client_id"])
            if start is None or t["occasion"] == "intake" or t["date"].date() <= start:
                keep.append(t)
                continue
            p = _expit(MNAR_INTERCEPT + MNAR_SLOPE * float(t["severity"]))
            if rng.random() < p:
                self.dropped.append({k: t[k] for k in (
                    "programme", "client_id", "occasion_label", "occasion", "date", "week",
                    "instrument", "scale", "construct", "severity", "raw", "true_z")}
                    | {"p_drop": p})
                drop_cells.setdefault(t["_key"], []).append(t["column"])
            else:
                keep.append(t)
        if not drop_cells:
            return keep
        if file.layout == "long":
            pairs = [(r, k) for r, k in zip(table.rows, table.keys, strict=True)
                     if k not in drop_cells]
            table.rows[:] = [r for r, _ in pairs]
            table.keys[:] = [k for _, k in pairs]
            return keep
        kept_rows, kept_keys = [], []
        for row, k in zip(table.rows, table.keys, strict=True):
            for col in drop_cells.get(k, ()):
                row[col] = None
            if k in drop_cells and file.layout == "occasion_rows" and all(
                    row.get(m.column) is None for m in file.measures):
                continue  # a missed occasion is an absent row
            if k in drop_cells and file.layout == "wide":
                for lab in file.occasions:  # a missed occasion is blank, date and phase too
                    if all(row.get(m.column.replace("{occasion}", lab)) is None
                           for m in file.measures):
                        for tpl in (file.date_column, file.phase_column):
                            if tpl:
                                row[tpl.replace("{occasion}", lab)] = None
            kept_rows.append(row)
            kept_keys.append(k)
        table.rows[:] = kept_rows
        table.keys[:] = kept_keys
        return keep

    # -- results ----------------------------------------------------------------
    def events_frame(self) -> pd.DataFrame:
        """Every generated event (truth), in days converted to dates and weeks."""
        cols = ["programme", "client_id", "type", "start_date", "end_date", "start_week",
                "end_week", "terminal", "prior", "in_care", "age", "weeks_in_care",
                "followed_weeks", "end_reason", "hazard"]
        return pd.DataFrame(self.events, columns=cols)

    def dropped_frame(self) -> pd.DataFrame:
        """Scores dropped after absconding, with their unobserved values."""
        cols = ["programme", "client_id", "occasion_label", "occasion", "date", "week",
                "instrument", "scale", "construct", "severity", "raw", "true_z", "p_drop"]
        return pd.DataFrame(self.dropped, columns=cols)

    @staticmethod
    def hazards() -> dict[str, Any]:
        """The true parameters of the absconding process."""
        return {"baseline_hazard_per_week": dict(BASELINE_HAZARD),
                "log_hr_age_per_year": LOG_HR_AGE, "age_centre": AGE_CENTRE,
                "log_hr_prior": LOG_HR_PRIOR, "p_prior": P_PRIOR,
                "mnar_intercept": MNAR_INTERCEPT, "mnar_slope": MNAR_SLOPE}


__all__ = ["BASELINE_HAZARD", "EventState", "LOG_HR_AGE", "LOG_HR_PRIOR", "simulate_client_events"]
