"""Time-to-event analyses: absconding, dropout and safety events.

Kaplan-Meier curves with Greenwood intervals, the log-rank test, Cox regression
(Efron or Breslow ties, cluster-robust SE, Firth penalty for few events),
cumulative incidence with competing events (Aalen-Johansen) and event rates
with exact Poisson intervals. Checked against R's ``survival`` package 3.5
(reference values in ``shared/reference/study``).

Functions take a DataFrame and column names; results are tidy DataFrames or
small frozen result objects with ``to_frame()``, ``summary()`` and ``plot()``.
Bad input raises :class:`effectstudy.errors.DataError` naming the column and the
number of bad rows, never a value.
"""

from __future__ import annotations

from effectstudy.survival._common import ConvergenceWarning, FewEventsWarning, SeparationWarning
from effectstudy.survival.competing import (
    CumulativeIncidenceResult,
    EventRateResult,
    cumulative_incidence,
    event_rate,
)
from effectstudy.survival.cox import CoxResult, cox, events_per_variable
from effectstudy.survival.kaplan_meier import (
    KaplanMeierResult,
    LogrankResult,
    kaplan_meier,
    logrank,
    median_survival,
)

__all__ = [
    "ConvergenceWarning",
    "CoxResult",
    "CumulativeIncidenceResult",
    "EventRateResult",
    "FewEventsWarning",
    "KaplanMeierResult",
    "LogrankResult",
    "SeparationWarning",
    "cox",
    "cumulative_incidence",
    "event_rate",
    "events_per_variable",
    "kaplan_meier",
    "logrank",
    "median_survival",
]
