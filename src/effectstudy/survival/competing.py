"""Competing events and recurrent events.

* :func:`cumulative_incidence`: the Aalen-Johansen estimate of the cumulative
  incidence of one type of event (absconding) when other events (completion,
  transfer) end the follow-up in a way that censoring does not.
* :func:`event_rate`: the rate of recurrent events (absconding episodes) per
  ``per`` units of exposure (weeks in care) with the exact Poisson interval.

References
----------
Aalen O.O. & Johansen S. (1978). An empirical transition matrix for
    non-homogeneous Markov chains based on censored observations. Scand J Stat
    5:141-150.
Kalbfleisch J.D. & Prentice R.L. (1980). The Statistical Analysis of Failure Time
    Data. New York: Wiley (cumulative incidence with competing risks).
Marubini E. & Valsecchi M.G. (1995). Analysing Survival Data from Clinical Trials
    and Observational Studies. Chichester: Wiley (delta-method variance of the
    cumulative incidence).
Choudhury J.B. (2002). Non-parametric confidence interval estimation for
    competing risks analysis: application to contraceptive data. Stat Med
    21:1129-1144.
Garwood F. (1936). Fiducial limits for the Poisson distribution. Biometrika
    28:437-442.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError
from effectstudy.survival._common import (
    cause_column,
    check_confidence,
    check_frame,
    first_row,
    group_column,
    group_levels,
    numeric_column,
    time_column,
)
from effectstudy.survival.cox import interval_rows
from effectstudy.survival.kaplan_meier import step_curves

_CIF_COLUMNS = ["time", "n_risk", "n_event", "n_competing", "cif", "se", "ci_lower", "ci_upper"]


def _whole_number(x: object) -> bool:
    """A real number with no fractional part (booleans and text are not)."""
    return (not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))
            and float(x).is_integer())


def _cif_curve(t: np.ndarray, cause: np.ndarray, k: int, z: float) -> pd.DataFrame:
    times, inverse = np.unique(t, return_inverse=True)
    n_at = np.bincount(inverse, minlength=len(times))
    d_all = np.bincount(inverse, weights=(cause > 0).astype(float), minlength=len(times))
    d_c = np.bincount(inverse, weights=(cause == k).astype(float), minlength=len(times))
    n = np.cumsum(n_at[::-1])[::-1].astype(float)
    surv = np.cumprod(1.0 - d_all / n)
    s_prev = np.concatenate([[1.0], surv[:-1]])
    cif = np.cumsum(s_prev * d_c / n)
    # delta-method variance: F(t) = sum_j S(t_j-) h_cj, multinomial (h_cj, h_j) per time
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(n > d_all, d_all / (n * (n - d_all)), 0.0)
    b = s_prev**2 * d_c * (n - d_c) / n**3
    c = s_prev * d_c / n**2
    f = cif
    var = (f**2 * np.cumsum(a) - 2 * f * np.cumsum(f * a) + np.cumsum(f**2 * a)
           + np.cumsum(b) - 2 * f * np.cumsum(c) + 2 * np.cumsum(f * c))
    se = np.sqrt(np.maximum(var, 0.0))
    inner = (f > 0) & (f < 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(inner, z * se / (f * np.abs(np.log(np.where(inner, f, 0.5)))), 0.0)
        lower = np.where(inner, f ** np.exp(w), f)
        upper = np.where(inner, f ** np.exp(-w), f)
    return pd.DataFrame({"time": times, "n_risk": n.astype(np.int64),
                         "n_event": d_c.astype(np.int64),
                         "n_competing": (d_all - d_c).astype(np.int64),
                         "n_censor": (n_at - d_all).astype(np.int64),
                         "cif": cif, "se": se, "ci_lower": lower, "ci_upper": upper})


@dataclass(frozen=True, eq=False)
class CumulativeIncidenceResult(ResultMixin):
    """Aalen-Johansen cumulative incidence of :func:`cumulative_incidence`.

    Attributes
    ----------
    curve : DataFrame
        Every distinct time per group: ``n_risk, n_event`` (events of interest),
        ``n_competing, n_censor, cif, se, ci_lower, ci_upper``.
    by : str or None
    event_of_interest : int
        The cause code whose incidence is estimated.
    confidence : float
    """

    curve: pd.DataFrame = field(repr=False)
    by: str | None
    event_of_interest: int
    confidence: float
    _title = "Cumulative incidence (Aalen-Johansen)"

    def to_frame(self) -> pd.DataFrame:
        """One row per group and event time (any cause): ``<by>, time, n_risk, n_event,
        n_competing, cif, se, ci_lower, ci_upper``."""
        cols = ([self.by] if self.by else []) + _CIF_COLUMNS
        keep = (self.curve["n_event"] + self.curve["n_competing"]) > 0
        return self.curve.loc[keep, cols].reset_index(drop=True)

    def groups(self) -> list[object]:
        """Group levels (``[None]`` without groups)."""
        return [None] if self.by is None else list(pd.unique(self.curve[self.by]))

    def _group_curve(self, group: object) -> pd.DataFrame:
        return self.curve if self.by is None else self.curve[self.curve[self.by] == group]

    def summary(self) -> pd.DataFrame:
        """Per group: clients, events of interest, competing events, final incidence."""
        rows = []
        for g in self.groups():
            cur = self._group_curve(g)
            rows.append({**({self.by: g} if self.by else {}),
                         "n": int(cur["n_risk"].iloc[0]), "events": int(cur["n_event"].sum()),
                         "competing": int(cur["n_competing"].sum()),
                         "cif_end": float(cur["cif"].iloc[-1]),
                         "ci_lower_end": float(cur["ci_lower"].iloc[-1]),
                         "ci_upper_end": float(cur["ci_upper"].iloc[-1])})
        return pd.DataFrame(rows)

    def plot(self, ax=None, *, ci: bool = True, **kwargs):
        """Step curves of the cumulative incidence per group."""
        import matplotlib.pyplot as plt

        from effectstudy.style import label_axes, use_style

        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6.5, 4))
            step_curves(ax, [(g, self._group_curve(g)) for g in self.groups()], "cif", 0.0,
                        ci=ci, **kwargs)
            ax.set_ylim(0, 1)
            label_axes(ax, x="time", y="cumulative incidence", legend=self.by is not None)
        return ax.figure


def cumulative_incidence(data: pd.DataFrame, *, time: str, event: str, event_of_interest: int,
                         by: str | None = None,
                         confidence: float = 0.95) -> CumulativeIncidenceResult:
    """Cumulative incidence of one event type with competing events (Aalen-Johansen).

    ``F_c(t) = sum_{t_j <= t} S(t_j-) d_cj / n_j``, where ``S`` is the Kaplan-Meier
    estimate of being free of any event, ``d_cj`` the events of type c at t_j and
    ``n_j`` the number at risk (Aalen & Johansen 1978; Kalbfleisch & Prentice
    1980). Unlike ``1 - KM`` with competing events censored, it does not pretend
    that a girl who completed care or was transferred could still abscond. With a
    single cause it equals ``1 - KM``.

    The variance is the delta-method (Greenwood-type) estimator obtained by
    treating each time's events as multinomial (Marubini & Valsecchi 1995):
    ``sum_j (F(t) - F(t_j))^2 d_j / (n_j (n_j - d_j)) + S(t_j-)^2 d_cj (n_j - d_cj) /
    n_j^3 - 2 (F(t) - F(t_j)) S(t_j-) d_cj / n_j^2``; with a single cause it
    reduces to Greenwood's. Pointwise intervals use the log(-log) transform
    (Choudhury 2002), which keeps them inside (0, 1).

    Parameters
    ----------
    data : DataFrame
    time : str
        Follow-up time (> 0).
    event : str
        Cause code: 0 = censored, 1, 2, ... = type of event that ended follow-up.
    event_of_interest : int
        The cause code whose incidence is estimated (not 0).
    by : str, optional
        Grouping column.
    confidence : float

    Returns
    -------
    CumulativeIncidenceResult
    """
    z = check_confidence(confidence)
    if not _whole_number(event_of_interest) or int(event_of_interest) <= 0:
        raise DataError("event_of_interest must be a positive cause code (0 means censored)",
                        column=event)
    k = int(event_of_interest)
    df = check_frame(data, [time, event] + ([by] if by else []))
    t = time_column(df, time)
    cause = cause_column(df, event)
    if by is None:
        curve = _cif_curve(t, cause, k, z)
    else:
        g = group_column(df, by)
        parts = []
        for level in group_levels(g):
            sel = g == level
            part = _cif_curve(t[sel], cause[sel], k, z)
            part.insert(0, by, level)
            parts.append(part)
        curve = pd.concat(parts, ignore_index=True)
    return CumulativeIncidenceResult(curve=curve, by=by, event_of_interest=k,
                                     confidence=float(confidence))


def poisson_ci(count: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood 1936) confidence limits for a Poisson mean given ``count`` events.

    ``lower = chi2_{a/2}(2k) / 2`` (0 when k = 0) and
    ``upper = chi2_{1-a/2}(2k + 2) / 2``.

    Parameters
    ----------
    count : int
        Observed number of events (non-negative).
    confidence : float
        Level of the two-sided interval.

    Returns
    -------
    (float, float)
        Lower and upper limit for the Poisson mean.

    References
    ----------
    Garwood (1936).
    """
    check_confidence(confidence)
    if not _whole_number(count) or count < 0:
        raise DataError(f"count must be a non-negative whole number, got {count!r}")
    count = int(count)
    alpha = 1 - confidence
    lower = 0.0 if count == 0 else float(stats.chi2.ppf(alpha / 2, 2 * count)) / 2
    upper = float(stats.chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return lower, upper


@dataclass(frozen=True, eq=False)
class EventRateResult(ResultMixin):
    """Event rates of :func:`event_rate` (``table``: see :meth:`to_frame`)."""

    table: pd.DataFrame
    by: str | None
    per: float
    confidence: float
    _title = "Event rate (exact Poisson interval)"

    def to_frame(self) -> pd.DataFrame:
        """``<by>, events, exposure, rate, ci_lower, ci_upper`` (rate per ``per`` units)."""
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """Same as :meth:`to_frame`."""
        return self.to_frame()

    def plot(self, ax=None, **kwargs):
        """Rates with their exact intervals, one line per group."""
        import matplotlib.pyplot as plt

        from effectstudy.style import label_axes, use_style

        tab = self.table
        labels = tab[self.by].astype(str) if self.by else pd.Series(["all"])
        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 0.5 * len(tab) + 1.2))
            interval_rows(ax, tab["rate"], tab["ci_lower"], tab["ci_upper"], labels, **kwargs)
            ax.set_xlim(left=0)
            label_axes(ax, x=f"events per {self.per:g} units of exposure "
                             f"({self.confidence:.0%} CI)")
        return ax.figure


def event_rate(data: pd.DataFrame, *, events: str, exposure: str, by: str | None = None,
               per: float = 100, confidence: float = 0.95) -> EventRateResult:
    """Rate of recurrent events per ``per`` units of exposure with an exact Poisson CI.

    For a group with ``k`` events over total exposure ``T`` the rate is
    ``per * k / T``; its interval scales Garwood's (1936) exact limits for a Poisson
    count, ``chi2_{a/2}(2k) / 2`` and ``chi2_{1-a/2}(2k + 2) / 2``, by ``per / T``.
    The interval assumes the events follow a Poisson process; recurrent absconding
    clusters within girls, so read it as a lower bound on the uncertainty.

    Parameters
    ----------
    data : DataFrame
        One row per client (or per stay): number of events and exposure.
    events : str
        Column of event counts (non-negative integers).
    exposure : str
        Column of exposure (e.g. weeks in care, > 0).
    by : str, optional
        Grouping column (e.g. ``programme``).
    per : float
        Rate per this many units of exposure (default 100 weeks).
    confidence : float

    Returns
    -------
    EventRateResult
        ``<by>, events, exposure, rate, ci_lower, ci_upper``.
    """
    check_confidence(confidence)
    if not isinstance(per, (int, float)) or not per > 0:
        raise DataError(f"per must be a positive number, got {per!r}")
    df = check_frame(data, [events, exposure] + ([by] if by else []))
    k = numeric_column(df, events)
    bad = (k < 0) | (k != np.round(k))
    if bad.any():
        raise DataError(f"{int(bad.sum())} row(s) are not a count of events (a non-negative "
                        "integer)", row=first_row(bad), column=events)
    expo = numeric_column(df, exposure)
    bad = expo <= 0
    if bad.any():
        raise DataError(f"{int(bad.sum())} row(s) have zero or negative exposure",
                        row=first_row(bad), column=exposure)
    rows = []
    if by is None:
        parts = [(None, np.ones(len(df), dtype=bool))]
    else:
        g = group_column(df, by)
        parts = [(level, g == level) for level in group_levels(g)]
    for level, sel in parts:
        count = int(k[sel].sum())
        total = float(expo[sel].sum())
        lo, hi = poisson_ci(count, confidence)
        row = {"events": count, "exposure": total, "rate": per * count / total,
               "ci_lower": per * lo / total, "ci_upper": per * hi / total}
        rows.append(({by: level} if by else {}) | row)
    return EventRateResult(table=pd.DataFrame(rows), by=by, per=float(per),
                           confidence=float(confidence))
