"""Kaplan-Meier curves, their median and the log-rank test.

The numbers follow R's ``survival`` package (Therneau, version 3.5): the
Greenwood variance, the log-scale confidence interval (``conf.type = "log"``,
R's default), the median with the midpoint rule on flat stretches at exactly
0.5, and the log-rank chi-square of ``survdiff``.

References
----------
Kaplan E.L. & Meier P. (1958). Nonparametric estimation from incomplete
    observations. J Am Stat Assoc 53:457-481.
Greenwood M. (1926). The natural duration of cancer. Reports on Public Health and
    Medical Subjects 33. London: HMSO.
Mantel N. (1966). Evaluation of survival data and two new rank order statistics
    arising in its consideration. Cancer Chemother Rep 50:163-170.
Peto R. & Peto J. (1972). Asymptotically efficient rank invariant test procedures.
    J R Stat Soc A 135:185-207.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError
from effectstudy.survival._common import (
    check_confidence,
    check_frame,
    event_column,
    group_column,
    group_levels,
    time_column,
)

_KM_COLUMNS = ["time", "n_risk", "n_event", "survival", "se", "ci_lower", "ci_upper"]
#: Tolerance R uses to decide that a curve sits exactly at a quantile.
_QUANTILE_TOL = float(np.sqrt(np.finfo(float).eps))


def _risk_table(t: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct times with numbers at risk, events and censorings (one curve)."""
    times, inverse = np.unique(t, return_inverse=True)
    n_at = np.bincount(inverse, minlength=len(times))
    d = np.bincount(inverse, weights=e, minlength=len(times)).astype(np.int64)
    n_risk = np.cumsum(n_at[::-1])[::-1]
    return times, n_risk, d, n_at - d


def _km_curve(t: np.ndarray, e: np.ndarray, z: float) -> pd.DataFrame:
    """Kaplan-Meier estimate at every distinct time (event and censoring times)."""
    times, n_risk, d, c = _risk_table(t, e)
    n = n_risk.astype(float)
    surv = np.cumprod(1.0 - d / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        # Greenwood: var(log S) = sum d / (n (n - d)); infinite once S reaches 0.
        term = np.where(d > 0, d / (n * (n - d)), 0.0)
        var_log = np.cumsum(term)
        se_log = np.sqrt(var_log)
        finite = np.isfinite(se_log) & (surv > 0)
        se = np.where(finite, surv * se_log, np.nan)
        lower = np.where(finite, surv * np.exp(-z * se_log), np.nan)
        upper = np.where(finite, np.minimum(1.0, surv * np.exp(z * se_log)), np.nan)
    return pd.DataFrame({"time": times, "n_risk": n_risk, "n_event": d, "n_censor": c,
                         "survival": surv, "se": se, "ci_lower": lower, "ci_upper": upper})



def step_curves(ax: object, curves: list[tuple[object, pd.DataFrame]], column: str, start: float,
                *, ci: bool = True, **kwargs: object) -> list[object]:
    """Draw one right-continuous step curve per group and return the colours used.

    Each curve runs from ``(0, start)`` through ``(time, column)`` of its frame;
    with ``ci`` its pointwise band (``ci_lower``, ``ci_upper``, also from
    ``start``) is shaded. ``curves`` holds ``(group level or None, rows)``;
    ``color=`` in ``kwargs`` fixes one colour for all, the other ``kwargs`` go to
    ``Axes.step``. Shared by the Kaplan-Meier and cumulative-incidence plots.
    """
    from effectstudy.style import color

    fixed = kwargs.pop("color", None)
    used = []
    for i, (group, cur) in enumerate(curves):
        x = np.concatenate([[0.0], cur["time"].to_numpy(dtype=float)])
        y = np.concatenate([[start], cur[column].to_numpy(dtype=float)])
        col = fixed or color(i)
        ax.step(x, y, where="post", color=col, label=None if group is None else str(group),
                **kwargs)
        if ci:
            lo = np.concatenate([[start], cur["ci_lower"].to_numpy(dtype=float)])
            hi = np.concatenate([[start], cur["ci_upper"].to_numpy(dtype=float)])
            ax.fill_between(x, lo, hi, step="post", color=col, alpha=0.15, lw=0)
        used.append(col)
    return used


@dataclass(frozen=True, eq=False)
class KaplanMeierResult(ResultMixin):
    """Kaplan-Meier estimates of :func:`kaplan_meier`.

    Attributes
    ----------
    curve : DataFrame
        Every distinct time (event and censoring times) per group with
        ``n_risk, n_event, n_censor, survival, se, ci_lower, ci_upper``.
    by : str or None
        The grouping column (``None`` for one curve over all rows).
    confidence : float
        Confidence level of the pointwise intervals.
    """

    curve: pd.DataFrame = field(repr=False)
    by: str | None
    confidence: float
    _title = "Kaplan-Meier estimate"

    def to_frame(self) -> pd.DataFrame:
        """One row per group and event time: ``<by>, time, n_risk, n_event, survival, se,
        ci_lower, ci_upper`` (censoring times omitted, as R's
        ``summary(fit, censored = FALSE)`` lists them)."""
        cols = ([self.by] if self.by else []) + _KM_COLUMNS
        out = self.curve.loc[self.curve["n_event"] > 0, cols]
        return out.reset_index(drop=True)

    def groups(self) -> list[object]:
        """Group levels in the order of the curve (``[None]`` without groups)."""
        if self.by is None:
            return [None]
        return list(pd.unique(self.curve[self.by]))

    def _group_curve(self, group: object) -> pd.DataFrame:
        if self.by is None:
            return self.curve
        return self.curve[self.curve[self.by] == group]

    def summary(self) -> pd.DataFrame:
        """Per group: clients, events and median time to event (``NaN`` if not reached)."""
        med = median_survival(self)
        rows = []
        for g in self.groups():
            cur = self._group_curve(g)
            rows.append({"n": int(cur["n_risk"].iloc[0]), "events": int(cur["n_event"].sum())})
        out = pd.DataFrame(rows)
        out["median"] = med["median"].to_numpy()
        if self.by is not None:
            out.insert(0, self.by, self.groups())
        return out

    def plot(self, ax=None, *, ci: bool = True, censor_marks: bool = True, **kwargs):
        """Step curves of the survival estimate per group, with pointwise CI bands.

        Parameters
        ----------
        ax : matplotlib Axes, optional
        ci : bool
            Shade the pointwise confidence band.
        censor_marks : bool
            Mark censoring times with a small vertical tick.
        **kwargs
            Passed to ``Axes.step`` for every curve.
        """
        import matplotlib.pyplot as plt

        from effectstudy.style import label_axes, use_style

        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6.5, 4))
            curves = [(g, self._group_curve(g)) for g in self.groups()]
            colors = step_curves(ax, curves, "survival", 1.0, ci=ci, **kwargs)
            if censor_marks:
                for (_, cur), col in zip(curves, colors, strict=True):
                    cens = cur[cur["n_censor"] > 0]
                    ax.plot(cens["time"], cens["survival"], "|", color=col, ms=7)
            ax.set_ylim(0, 1.02)
            label_axes(ax, x="time", y="survival", legend=self.by is not None)
        return ax.figure


def kaplan_meier(data: pd.DataFrame, *, time: str, event: str, by: str | None = None,
                 confidence: float = 0.95) -> KaplanMeierResult:
    """Kaplan-Meier estimate of the survival function, per group.

    ``S(t) = prod_{t_j <= t} (1 - d_j / n_j)`` over the distinct event times
    (Kaplan & Meier 1958). The standard error is Greenwood's (1926):
    ``se(S) = S * sqrt(sum d_j / (n_j (n_j - d_j)))``, on the scale of S itself, as
    R's ``summary.survfit`` reports ``std.err``. The pointwise interval is built on
    the log scale, ``S * exp(+/- z se(log S))``, with the upper limit cut at 1 (R's
    default ``conf.type = "log"``).

    Parameters
    ----------
    data : DataFrame
        One row per client (or per episode).
    time : str
        Column of follow-up times (strictly positive).
    event : str
        Column with 1 = event observed, 0 = censored.
    by : str, optional
        Grouping column (e.g. ``programme``): one curve per level.
    confidence : float
        Level of the pointwise intervals.

    Returns
    -------
    KaplanMeierResult
        ``to_frame()`` gives one row per group and event time with ``<by>, time,
        n_risk, n_event, survival, se, ci_lower, ci_upper``; once S reaches 0 the
        se and interval are NaN. ``curve`` also holds the censoring times.

    References
    ----------
    Kaplan & Meier (1958); Greenwood (1926).
    """
    z = check_confidence(confidence)
    df = check_frame(data, [time, event] + ([by] if by else []))
    t = time_column(df, time)
    e = event_column(df, event)
    if by is None:
        curve = _km_curve(t, e, z)
    else:
        g = group_column(df, by)
        parts = []
        for level in group_levels(g):
            sel = g == level
            part = _km_curve(t[sel], e[sel], z)
            part.insert(0, by, level)
            parts.append(part)
        curve = pd.concat(parts, ignore_index=True)
    return KaplanMeierResult(curve=curve, by=by, confidence=float(confidence))


def _median_one(curve: pd.DataFrame) -> float:
    """Median of one curve with R's rule (``quantile.survfit``, survival 3.x).

    The median is the first time at which S drops to 0.5 or below. When S sits at
    exactly 0.5 (within sqrt(machine epsilon)) on a flat stretch, the median is
    the midpoint of that stretch: halfway to the next event time, or to the last
    follow-up time when the curve ends on the flat.
    """
    jumps = curve[curve["n_event"] > 0]
    surv = jumps["survival"].to_numpy(dtype=float)
    times = jumps["time"].to_numpy(dtype=float)
    hit = np.flatnonzero(surv <= 0.5 + _QUANTILE_TOL)
    if len(hit) == 0:
        return float("nan")
    i = int(hit[0])
    if abs(surv[i] - 0.5) >= _QUANTILE_TOL:
        return float(times[i])
    below = np.flatnonzero(surv < 0.5 - _QUANTILE_TOL)
    if len(below):
        return float((times[i] + times[int(below[0])]) / 2)
    return float((times[i] + float(curve["time"].max())) / 2)


def median_survival(result: KaplanMeierResult) -> pd.DataFrame:
    """Median survival time per group of a Kaplan-Meier result.

    The median is the smallest time at which the Kaplan-Meier estimate is 0.5 or
    less; ``NaN`` when survival never falls to 0.5. When the curve is exactly 0.5
    on a flat stretch, R's convention is followed: the midpoint of that stretch
    (up to the next event time, or up to the last follow-up time if the curve
    ends there).

    Parameters
    ----------
    result : KaplanMeierResult
        Output of :func:`kaplan_meier`.

    Returns
    -------
    DataFrame
        ``<by>, median`` (one row; only ``median`` without groups).

    References
    ----------
    Kaplan & Meier (1958); Therneau T.M., survival: A Package for Survival Analysis in
    R, version 3.5, ``quantile.survfit`` (the midpoint rule on a flat stretch at 0.5).
    """
    if not isinstance(result, KaplanMeierResult):
        raise DataError("median_survival needs the result of kaplan_meier(), got "
                        f"{type(result).__name__}")
    groups = result.groups()
    out = pd.DataFrame({"median": [_median_one(result._group_curve(g)) for g in groups]})
    if result.by is not None:
        out.insert(0, result.by, groups)
    return out


@dataclass(frozen=True, eq=False)
class LogrankResult(ResultMixin):
    """Log-rank test of :func:`logrank`.

    Attributes
    ----------
    statistic, df, p_value : float
        Chi-square statistic, its degrees of freedom and p-value.
    groups : DataFrame
        Per group: ``n``, ``observed`` and ``expected`` events.
    """

    statistic: float
    df: int
    p_value: float
    groups: pd.DataFrame = field(repr=False)
    _title = "Log-rank test"

    def to_frame(self) -> pd.DataFrame:
        """One row: ``statistic, df, p_value``."""
        return pd.DataFrame({"statistic": [self.statistic], "df": [self.df],
                             "p_value": [self.p_value]})

    def summary(self) -> pd.DataFrame:
        """Observed and expected events per group."""
        return self.groups.copy()

    def plot(self, ax=None, **kwargs):
        """Observed against expected events per group."""
        import matplotlib.pyplot as plt

        from effectstudy.style import GREY, label_axes, use_style

        g = self.groups
        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(5, 4))
            ax.scatter(g["expected"], g["observed"], **kwargs)
            for _, row in g.iterrows():
                ax.annotate(str(row.iloc[0]), (row["expected"], row["observed"]),
                            textcoords="offset points", xytext=(4, 4))
            top = float(max(g["expected"].max(), g["observed"].max())) * 1.1 + 0.5
            ax.plot([0, top], [0, top], color=GREY, lw=1)
            label_axes(ax, x="expected events", y="observed events",
                       title=f"log-rank chi2 = {self.statistic:.2f}, df = {self.df}, "
                             f"p = {self.p_value:.3g}")
        return ax.figure


def logrank(data: pd.DataFrame, *, time: str, event: str, by: str) -> LogrankResult:
    """Log-rank test of equal survival across groups (Mantel 1966; Peto & Peto 1972).

    At every distinct event time the observed events of each group are compared
    with those expected if the hazard were common, ``E_g = d n_g / n``, with the
    hypergeometric covariance ``d (n - d) / (n - 1) * (n_g / n) (delta_gh - n_h / n)``.
    The statistic is ``(O - E)' V^- (O - E)`` over all groups but the first, as R's
    ``survdiff`` computes it (``rho = 0``); under the null it is chi-square with
    (number of groups - 1) degrees of freedom.

    Parameters
    ----------
    data : DataFrame
    time, event : str
        Follow-up time (> 0) and event indicator (1 event, 0 censored).
    by : str
        Grouping column; needs at least two levels.

    Returns
    -------
    LogrankResult
        ``statistic, df, p_value``; per group ``n, observed, expected`` in ``groups``.
    """
    df = check_frame(data, [time, event, by])
    t = time_column(df, time)
    e = event_column(df, event)
    g = group_column(df, by)
    levels = group_levels(g)
    if len(levels) < 2:
        raise DataError("the log-rank test needs at least two groups", column=by)
    position = {level: i for i, level in enumerate(levels)}
    gi = np.array([position[v] for v in g], dtype=np.int64)
    times, inverse = np.unique(t, return_inverse=True)
    k = len(levels)
    at = np.zeros((len(times), k))
    dead = np.zeros((len(times), k))
    np.add.at(at, (inverse, gi), 1.0)
    np.add.at(dead, (inverse, gi), e.astype(float))
    n_g = np.cumsum(at[::-1], axis=0)[::-1]
    keep = dead.sum(axis=1) > 0
    n_g, dead = n_g[keep], dead[keep]
    n = n_g.sum(axis=1)
    d = dead.sum(axis=1)
    frac = n_g / n[:, None]
    expected = (d[:, None] * frac).sum(axis=0)
    observed = dead.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(n > 1, d * (n - d) / (n - 1), 0.0)
    var = np.einsum("t,tg,gh->gh", factor, frac, np.eye(k)) - \
        np.einsum("t,tg,th->gh", factor, frac, frac)
    diff = (observed - expected)[1:]
    v = var[1:, 1:]
    dof = int(np.linalg.matrix_rank(v))
    statistic = float(diff @ np.linalg.pinv(v) @ diff)
    p = float(stats.chi2.sf(statistic, dof)) if dof > 0 else float("nan")
    groups = pd.DataFrame({by: levels, "n": at.sum(axis=0).astype(int), "observed": observed,
                           "expected": expected})
    return LogrankResult(statistic=statistic, df=dof, p_value=p, groups=groups)

