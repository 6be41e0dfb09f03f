"""Delivery logs: validation, adherence, dose received, fidelity profile and drift.

A delivery log has one row per client x week x prescribed component: ``programme,
client, week, phase, component, delivered (0/1), minutes``. Weeks are counted from 1
(the first week in care). The components and their phases come from the data
dictionary (``components:`` in ``programmes.yaml``, see
:func:`effectstudy.dictionary.load_integrity`).

What counts as prescribed
    A *universal* component is prescribed to every client whose log reaches its phase
    (any row in that phase; ``all``: any row at all), also when the log has no row for
    the component itself (it then counts as not delivered). A *tailored* component is
    prescribed to a client when her log has at least one row for it (the log lists her
    care plan).
Delivered in its phase
    At least one row of the component with ``delivered == 1`` in the component's phase.

References
----------
Korn, E. L. & Graubard, B. I. (1998). Confidence intervals for proportions with small
expected number of positive counts estimated from survey data. *Survey Methodology*,
24(2), 193-201.

Clopper, C. J. & Pearson, E. S. (1934). The use of confidence or fiducial limits
illustrated in the case of the binomial. *Biometrika*, 26(4), 404-413.

Carroll, C., Patterson, M., Wood, S., Booth, A., Rick, J. & Balain, S. (2007). A
conceptual framework for implementation fidelity. *Implementation Science*, 2, 40.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import DataError
from effectstudy.fidelity._common import (
    integrity_dictionary,
    prescribed_components,
    require_columns,
)

__all__ = ["LOG_INPUT_COLUMNS", "RATING_INPUT_COLUMNS", "AdherenceResult", "adherence",
           "clopper_pearson", "korn_graubard", "validate_logs", "validate_ratings",
           "fidelity_profile_plot", "drift_plot"]

#: Columns a delivery log must have.
LOG_INPUT_COLUMNS = ("programme", "client", "week", "phase", "component", "delivered", "minutes")
#: Columns fidelity ratings must have.
RATING_INPUT_COLUMNS = ("programme", "target", "rater", "item", "score")


# --------------------------------------------------------------------------- #
# Intervals
# --------------------------------------------------------------------------- #
def clopper_pearson(x: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson (1934) interval for ``x`` successes in ``n`` trials (``n`` may be
    fractional: an effective sample size)."""
    if n <= 0:
        return (np.nan, np.nan)
    a = 1 - confidence
    lo = 0.0 if x <= 0 else float(stats.beta.ppf(a / 2, x, n - x + 1))
    hi = 1.0 if x >= n else float(stats.beta.ppf(1 - a / 2, x + 1, n - x))
    return lo, hi


def korn_graubard(successes: np.ndarray, trials: np.ndarray, confidence: float = 0.95
                  ) -> tuple[float, float, float, float]:
    """Pooled proportion over clusters with the Korn & Graubard (1998) interval.

    ``p = sum(successes) / sum(trials)``; its linearised variance over the ``m``
    clusters ``v = m / (m - 1) sum_i (x_i - p n_i)^2 / N^2``; effective sample size
    ``n* = p (1 - p) / v`` (capped at ``N``), shrunk by ``(z / t_{m-1})^2`` for the few
    clusters; then the Clopper-Pearson interval of ``n* p`` successes in ``n*`` trials.

    Returns
    -------
    (estimate, ci_lower, ci_upper, effective_n)
    """
    x = np.asarray(successes, float)
    n = np.asarray(trials, float)
    keep = n > 0
    x, n = x[keep], n[keep]
    total, m = n.sum(), len(n)
    if total <= 0:
        return (np.nan, np.nan, np.nan, 0.0)
    p = x.sum() / total
    n_eff = total
    if m >= 2 and 0 < p < 1:
        v = m / (m - 1) * np.sum((x - p * n) ** 2) / total**2
        if v > 0:
            n_eff = min(total, p * (1 - p) / v)
    if m >= 2:
        z = stats.norm.ppf(0.5 + confidence / 2)
        t = stats.t.ppf(0.5 + confidence / 2, m - 1)
        n_eff = n_eff * (z / t) ** 2
    lo, hi = clopper_pearson(p * n_eff, n_eff, confidence)
    return float(p), lo, hi, float(n_eff)


def _mean_ci(values: pd.Series, confidence: float) -> tuple[float, float, float]:
    v = values.dropna().to_numpy(float)
    if len(v) == 0:
        return (np.nan, np.nan, np.nan)
    mean = float(v.mean())
    if len(v) < 2:
        return (mean, np.nan, np.nan)
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return mean, mean - half, mean + half


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
def _reject(rows: list, programme: Any, file: str, row: int, column: str, kind: str, reason: str,
            value: Any = None) -> None:
    rows.append({"programme": None if pd.isna(programme) else str(programme), "file": file,
                 "row": row, "column": column, "kind": kind, "reason": reason,
                 "value": value, "scores": 1})


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if np.isnan(out) else out


def _log_frame(rows: list) -> pd.DataFrame:
    from effectstudy.harmonise.log import LOG_COLUMNS  # lazy: harmonise may import this module

    df = pd.DataFrame(rows, columns=list(LOG_COLUMNS))
    df["row"] = pd.array(df["row"].tolist(), dtype="Int64")
    df["scores"] = df["scores"].astype("int64")
    return df


def validate_logs(logs: pd.DataFrame, dictionary: Any = None, *, clients: pd.DataFrame | None = None,
                  file: str = "delivery_log", first_row: int = 2
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check a delivery log against the dictionary; bad rows go to a rejection log.

    Parameters
    ----------
    logs
        Columns :data:`LOG_INPUT_COLUMNS` (``client`` is the pseudonym).
    dictionary
        :class:`~effectstudy.dictionary.IntegrityDictionary`, :class:`Dictionary`,
        a folder, or None for the shipped dictionary.
    clients
        Optional ``client, weeks_in_care``: a week after the client's last week in care
        is rejected.
    file
        Name written in the ``file`` column of the rejection log.
    first_row
        Row number of the log's first data row (2: a CSV with a header row).

    Returns
    -------
    (clean, rejected)
        ``clean``: the valid rows (``week`` int, ``delivered`` int 0/1, ``minutes``
        float), original order. ``rejected``: one row per rejected log row in the
        columns of :data:`effectstudy.harmonise.log.LOG_COLUMNS` with kinds
        ``integrity_unknown_programme``, ``component_not_in_programme``,
        ``unknown_phase``, ``missing_client_id``, ``non_numeric``,
        ``delivery_out_of_range`` (negative minutes, ``delivered`` not 0/1, week below
        1) and ``delivery_outside_care`` (week after the client's time in care); the
        integrity kinds are :data:`effectstudy.harmonise.log.INTEGRITY_KINDS`. A reason
        never repeats the cell's text; only numbers are shown in ``value``.
    """
    require_columns(logs, LOG_INPUT_COLUMNS, "delivery log")
    integ = integrity_dictionary(dictionary)
    progs = integ.dictionary.programmes
    care: dict[str, float] = {}
    if clients is not None:
        require_columns(clients, ("client", "weeks_in_care"), "clients")
        care = dict(zip(clients["client"].astype(str), clients["weeks_in_care"].astype(float),
                        strict=True))
    comp_sets = {pid: {c.id for c in integ.components.get(pid, ())} for pid in progs}
    phase_sets = {pid: {ph.id for ph in prog.phases} for pid, prog in progs.items()}
    rejected: list = []
    keep = np.zeros(len(logs), bool)
    weeks = np.zeros(len(logs))
    minutes = np.zeros(len(logs))
    delivered = np.zeros(len(logs), int)
    for i, rec in enumerate(logs[list(LOG_INPUT_COLUMNS)].itertuples(index=False, name=None)):
        prog, client, week, phase, comp, dv, mins = rec
        row = first_row + i
        if prog not in progs:
            _reject(rejected, None, file, row, "programme", "integrity_unknown_programme",
                    "programme is not in the data dictionary")
            continue
        if client is None or pd.isna(client) or not str(client).strip():
            _reject(rejected, prog, file, row, "client", "missing_client_id", "no client id")
            continue
        if comp not in comp_sets[prog]:
            _reject(rejected, prog, file, row, "component", "component_not_in_programme",
                    "component is not listed for this programme in the data dictionary")
            continue
        if phase not in phase_sets[prog]:
            _reject(rejected, prog, file, row, "phase", "unknown_phase",
                    "phase is not a phase of this programme")
            continue
        w, m, d = _as_number(week), _as_number(mins), _as_number(dv)
        bad = next((c for c, v in (("week", w), ("minutes", m), ("delivered", d)) if v is None), None)
        if bad is not None:
            _reject(rejected, prog, file, row, bad, "non_numeric", f"{bad} is not a number")
            continue
        if m < 0:
            _reject(rejected, prog, file, row, "minutes", "delivery_out_of_range",
                    "negative minutes", f"{m:g}")
            continue
        if d not in (0.0, 1.0):
            _reject(rejected, prog, file, row, "delivered", "delivery_out_of_range",
                    "delivered is not 0 or 1", f"{d:g}")
            continue
        if w < 1 or w != int(w):
            _reject(rejected, prog, file, row, "week", "delivery_out_of_range",
                    "week is not a whole number from 1", f"{w:g}")
            continue
        limit = care.get(str(client))
        if clients is not None and (limit is None or w > limit):
            reason = ("week after the client's time in care" if limit is not None
                      else "client has no recorded time in care")
            _reject(rejected, prog, file, row, "week", "delivery_outside_care", reason, f"{w:g}")
            continue
        keep[i], weeks[i], minutes[i], delivered[i] = True, w, m, int(d)
    clean = logs.loc[keep].copy()
    clean["week"] = weeks[keep].astype(int)
    clean["minutes"] = minutes[keep]
    clean["delivered"] = delivered[keep]
    return clean, _log_frame(rejected)


def validate_ratings(ratings: pd.DataFrame, dictionary: Any = None, *, file: str = "fidelity_ratings",
                     first_row: int = 2) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Check fidelity ratings against the programme's fidelity instrument.

    Rejected (one rejection-log row each, columns of ``LOG_COLUMNS``): a programme
    without a fidelity instrument (``integrity_unknown_programme``), an item that is not
    on the programme's checklist (``item_not_on_checklist``), a missing target or rater
    (``rating_missing_id``), a score that is not a number (``non_numeric``) or outside
    the instrument's scoring range (``rating_out_of_range``), and a second rating of the
    same target, rater and item (``duplicate``; the first is kept). The integrity kinds
    are :data:`effectstudy.harmonise.log.INTEGRITY_KINDS`.
    """
    require_columns(ratings, RATING_INPUT_COLUMNS, "fidelity ratings")
    integ = integrity_dictionary(dictionary)
    rejected: list = []
    keep = np.zeros(len(ratings), bool)
    scores = np.zeros(len(ratings))
    seen: set = set()
    for i, rec in enumerate(ratings[list(RATING_INPUT_COLUMNS)].itertuples(index=False, name=None)):
        prog, target, rater, item, score = rec
        row = first_row + i
        try:
            inst = integ.instrument_for(prog)
        except KeyError:
            _reject(rejected, None, file, row, "programme", "integrity_unknown_programme",
                    "programme has no fidelity instrument in the data dictionary")
            continue
        if item not in {it.id for it in inst.items}:
            _reject(rejected, prog, file, row, "item", "item_not_on_checklist",
                    "item is not on the programme's fidelity checklist")
            continue
        bad = next((c for c, v in (("target", target), ("rater", rater)) if v is None or pd.isna(v)), None)
        if bad is not None:
            _reject(rejected, prog, file, row, bad, "rating_missing_id", f"no {bad}")
            continue
        s = _as_number(score)
        if s is None:
            _reject(rejected, prog, file, row, "score", "non_numeric", "score is not a number")
            continue
        if not inst.score_min <= s <= inst.score_max:
            _reject(rejected, prog, file, row, "score", "rating_out_of_range",
                    f"score outside {inst.score_min:g}-{inst.score_max:g}", f"{s:g}")
            continue
        k = (prog, target, rater, item)
        if k in seen:
            _reject(rejected, prog, file, row, "score", "duplicate",
                    "second rating of the same target, rater and item")
            continue
        seen.add(k)
        keep[i], scores[i] = True, s
    clean = ratings.loc[keep].copy()
    clean["score"] = scores[keep]
    return clean, _log_frame(rejected)


# --------------------------------------------------------------------------- #
# Adherence
# --------------------------------------------------------------------------- #
@dataclass
class AdherenceResult:
    """Adherence and dose received; see :func:`adherence`.

    Attributes
    ----------
    clients
        Per client: ``programme, client, prescribed, delivered, adherence, ci_lower,
        ci_upper, sessions, minutes, weeks_exposed, weeks_logged``.
    programmes
        Per level of ``by``: ``n_clients, prescribed, delivered, adherence, ci_lower,
        ci_upper, effective_n`` and, for ``sessions``, ``minutes`` and
        ``weeks_exposed``, the client mean with a t interval (``<dose>_mean,
        <dose>_ci_lower, <dose>_ci_upper``).
    components
        Per programme and component: ``delivery, prescribed, delivered, share``
        (clients with the component delivered in its phase / clients prescribed it).
    drift
        Per programme and block of weeks in care: ``programme, block, week_from,
        week_to, n_clients, rows, delivered, share, ci_lower, ci_upper`` (share of
        logged component-weeks delivered, Korn-Graubard interval over clients).
    """

    clients: pd.DataFrame
    programmes: pd.DataFrame
    components: pd.DataFrame
    drift: pd.DataFrame
    confidence: float
    notes: list[str] = field(default_factory=list)

    def profile_plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Component x programme heatmap (see :func:`fidelity_profile_plot`)."""
        return fidelity_profile_plot(self, ax=ax, **kwargs)

    def drift_plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Adherence over weeks in care per programme (see :func:`drift_plot`)."""
        return drift_plot(self, ax=ax, **kwargs)


def adherence(logs: pd.DataFrame, dictionary: Any = None, *, by: str = "programme",
              confidence: float = 0.95, block: int = 4) -> AdherenceResult:
    """Share of prescribed components delivered in their phase, and the dose received.

    Parameters
    ----------
    logs
        A validated delivery log (see :func:`validate_logs`; run it first: this function
        raises :class:`DataError` on rows it would reject).
    dictionary
        The integrity dictionary (or a :class:`Dictionary`/folder/None).
    by
        Column of the aggregate level (default ``programme``; any client-level column of
        ``logs``, e.g. a provider location).
    confidence
        Confidence level of the intervals.
    block
        Width in weeks of the blocks of the drift table.

    Returns
    -------
    AdherenceResult

    Notes
    -----
    Per client the adherence is ``delivered / prescribed`` components with a
    Clopper-Pearson (1934) interval (the components of one client are treated as
    independent trials). Per programme it is the pooled share
    ``sum delivered / sum prescribed`` over its clients. Components of one client are
    not independent (some girls receive more of everything), so the interval is the
    Korn & Graubard (1998) interval: a Clopper-Pearson interval on the effective
    sample size implied by the cluster-robust (clients as clusters) variance of the
    pooled share, with the ``t_{m-1}`` correction for ``m`` clients. Unlike a Wilson
    interval on all components it does not pretend the components are independent,
    and unlike a cluster bootstrap it needs no random numbers and does not undercover
    with 4-12 clients. The dose received (delivered sessions, minutes and distinct
    weeks with any delivery) is summarised per programme by its client mean with a
    t interval. Adherence is one of the fidelity dimensions of Carroll et al. (2007)
    (content and dose).
    """
    if not 0 < confidence < 1:
        raise DataError("confidence must lie between 0 and 1")
    require_columns(logs, LOG_INPUT_COLUMNS, "delivery log")
    integ = integrity_dictionary(dictionary)
    clean, rejected = validate_logs(logs, integ)
    if len(rejected):
        first = rejected.iloc[0]
        raise DataError(f"the delivery log has {len(rejected)} invalid row(s) "
                        f"(first: {first['kind']}); run validate_logs first",
                        row=int(first["row"]), column=str(first["column"]))
    if clean.empty:
        raise DataError("the delivery log is empty")
    if by not in clean.columns:
        raise DataError(f"delivery log lacks the column {by!r} given as by", column=by)
    if clean.groupby("client")[by].nunique().max() > 1:
        raise DataError(f"a client belongs to more than one {by!r}", column=by)
    pres = prescribed_components(clean, integ)
    counts = pres.groupby(["programme", "client"]).agg(prescribed=("delivered", "size"),
                                                       delivered=("delivered", "sum"))
    dlv = clean[clean["delivered"] == 1]
    dose = pd.DataFrame({
        "sessions": dlv.groupby(["programme", "client"]).size(),
        "minutes": dlv.groupby(["programme", "client"])["minutes"].sum(),
        "weeks_exposed": dlv.groupby(["programme", "client"])["week"].nunique(),
    })
    logged = clean.groupby(["programme", "client"])["week"].nunique().rename("weeks_logged")
    cl = counts.join(dose, how="outer").join(logged, how="outer").reset_index()
    cl[["prescribed", "delivered", "sessions", "minutes", "weeks_exposed"]] = cl[
        ["prescribed", "delivered", "sessions", "minutes", "weeks_exposed"]].fillna(0)
    cl["adherence"] = np.where(cl["prescribed"] > 0, cl["delivered"] / cl["prescribed"].where(
        cl["prescribed"] > 0), np.nan)
    ci = [clopper_pearson(x, n, confidence) for x, n in zip(cl["delivered"], cl["prescribed"],
                                                           strict=True)]
    cl["ci_lower"] = [c[0] for c in ci]
    cl["ci_upper"] = [c[1] for c in ci]
    groups = clean.groupby("client")[by].first()
    cl[by] = cl["client"].map(groups)
    cl = cl[["programme", "client"] + ([by] if by != "programme" else [])
            + ["prescribed", "delivered", "adherence", "ci_lower", "ci_upper", "sessions",
               "minutes", "weeks_exposed", "weeks_logged"]]
    prog_rows = []
    for level, g in cl.groupby(by, sort=True):
        est, lo, hi, neff = korn_graubard(g["delivered"].to_numpy(), g["prescribed"].to_numpy(),
                                          confidence)
        row: dict[str, Any] = {by: level, "n_clients": len(g), "prescribed": int(g["prescribed"].sum()),
                               "delivered": int(g["delivered"].sum()), "adherence": est,
                               "ci_lower": lo, "ci_upper": hi, "effective_n": neff}
        for col in ("sessions", "minutes", "weeks_exposed"):
            m, mlo, mhi = _mean_ci(g[col], confidence)
            row |= {f"{col}_mean": m, f"{col}_ci_lower": mlo, f"{col}_ci_upper": mhi}
        prog_rows.append(row)
    comp = (pres.groupby(["programme", "component", "delivery"], sort=False)["delivered"]
            .agg(prescribed="size", delivered="sum").reset_index())
    comp["share"] = comp["delivered"] / comp["prescribed"]
    drift_rows = []
    clean = clean.assign(_block=(clean["week"] - 1) // block)
    for (prog, b), g in clean.groupby(["programme", "_block"], sort=True):
        per = g.groupby("client")["delivered"].agg(["sum", "size"])
        est, lo, hi, _ = korn_graubard(per["sum"].to_numpy(), per["size"].to_numpy(), confidence)
        drift_rows.append({"programme": prog, "block": int(b), "week_from": int(b * block + 1),
                           "week_to": int((b + 1) * block), "n_clients": len(per),
                           "rows": int(per["size"].sum()), "delivered": int(per["sum"].sum()),
                           "share": est, "ci_lower": lo, "ci_upper": hi})
    notes = [f"Programme adherence: pooled share of prescribed components delivered in their phase, "
             f"{confidence:.0%} Korn-Graubard interval with clients as clusters; client adherence: "
             "Clopper-Pearson interval.",
             "Drift: share of logged component-weeks delivered per block of weeks in care; later "
             "blocks hold only the clients still in care."]
    return AdherenceResult(clients=cl, programmes=pd.DataFrame(prog_rows), components=comp,
                           drift=pd.DataFrame(drift_rows), confidence=confidence, notes=notes)


# --------------------------------------------------------------------------- #
# Plots
# --------------------------------------------------------------------------- #
def _axes(ax: Any, figsize: tuple[float, float]) -> tuple[Any, Any]:
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def fidelity_profile_plot(result: AdherenceResult, ax: Any = None, **kwargs: Any) -> Any:
    """Heatmap of the share of clients whose prescribed component was delivered.

    Rows are components, columns programmes (blank where a programme has no such
    component); each cell shows the share and the number of clients prescribed it.
    ``kwargs`` go to ``ax.imshow`` (e.g. ``cmap``). Returns the Figure.
    """
    comp = result.components
    if comp.empty:
        raise DataError("no prescribed components to plot")
    table = comp.pivot_table(index="component", columns="programme", values="share", aggfunc="first")
    counts = comp.pivot_table(index="component", columns="programme", values="prescribed",
                              aggfunc="first")
    fig, ax = _axes(ax, (1.4 * table.shape[1] + 3, 0.45 * table.shape[0] + 1.8))
    kwargs.setdefault("cmap", "viridis")
    kwargs.setdefault("vmin", 0.0)
    kwargs.setdefault("vmax", 1.0)
    image = ax.imshow(np.ma.masked_invalid(table.to_numpy(float)), aspect="auto", **kwargs)
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=30, ha="right")
    ax.set_yticks(range(table.shape[0]), table.index)
    for i in range(table.shape[0]):
        for j in range(table.shape[1]):
            v = table.iat[i, j]
            if not np.isnan(v):
                ax.text(j, i, f"{v:.0%}\nn={int(counts.iat[i, j])}", ha="center", va="center",
                        fontsize=7, color="white" if v < 0.6 else "black")
    fig.colorbar(image, ax=ax, label="share delivered in its phase")
    ax.set_title("Programme fidelity profile (component delivered / prescribed)")
    return fig


def drift_plot(result: AdherenceResult, ax: Any = None, **kwargs: Any) -> Any:
    """Share of logged component-weeks delivered per block of weeks in care, one line and
    interval band per programme. ``kwargs`` go to ``ax.plot``. Returns the Figure."""
    drift = result.drift
    if drift.empty:
        raise DataError("no drift table to plot")
    fig, ax = _axes(ax, (7.5, 4.2))
    for prog, g in drift.groupby("programme", sort=True):
        mid = (g["week_from"] + g["week_to"]) / 2
        (line,) = ax.plot(mid, g["share"], marker="o", label=str(prog), **kwargs)
        ax.fill_between(mid, g["ci_lower"], g["ci_upper"], color=line.get_color(), alpha=0.12)
    ax.set_ylim(0, 1)
    ax.set_xlabel("weeks in care")
    ax.set_ylabel("share of component-weeks delivered")
    ax.set_title(f"Fidelity over time ({result.confidence:.0%} intervals)")
    ax.legend(fontsize=7, ncol=2)
    return fig
