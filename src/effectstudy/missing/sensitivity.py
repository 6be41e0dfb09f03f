"""Delta-adjusted (pattern-mixture) sensitivity analysis for outcomes missing after absconding.

Multiple imputation assumes the scores of a girl after she absconded resemble those
of girls with the same history who stayed (missing at random). A girl who runs back
to her exploiter is unlikely to be doing as well. :func:`tipping_point` makes her
imputed scores worse by ``delta`` standard deviations, over a grid of deltas, and
reports how large ``delta`` must be before the study's conclusion changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, SpecError
from effectstudy.missing.impute import (
    IMPUTED_COLUMN,
    ImputationResult,
    impute,
    run_analysis,
)
from effectstudy.missing.pooling import pool

__all__ = ["ABSCONDED", "TippingPointResult", "tipping_point"]

#: The ``end_reason`` of a client who absconded (see ``effectstudy.dictionary.END_REASONS``).
ABSCONDED = "absconded"

_FRAME_COLUMNS = ("delta", "shift", "estimate", "se", "df", "statistic", "p_value",
                  "ci_lower", "ci_upper", "significant")


def _fmt(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else str(x)


@dataclass(frozen=True, eq=False)
class TippingPointResult(ResultMixin):
    """Result of :func:`tipping_point`.

    Attributes
    ----------
    term : str
        The analysed term.
    table : pandas.DataFrame
        One row per delta: ``delta, shift`` (in outcome units), the pooled
        ``estimate, se, df, statistic, p_value, ci_lower, ci_upper`` and
        ``significant`` (the interval excludes 0).
    tipping_delta : float or None
        The smallest delta of the grid at which the conclusion differs from the one at
        ``delta = 0`` (significance, or the sign of a significant estimate);
        ``None`` when it does not change within the grid.
    tipping_crossing : float or None
        Where, between the last unchanged and the tipping grid delta, the interval
        bound crosses 0 (linear interpolation); ``None`` as ``tipping_delta``.
    outcome_sd : float
        The SD of the observed outcome, the unit of delta.
    sign : int
        +1 if a worse outcome is a higher score, -1 if lower: ``shift = sign * delta * sd``.
    n_clients_shifted, n_cells_shifted : int
        Absconded clients with imputed cells after they left, and those cells.
    confidence : float
        Level of the intervals.
    """

    term: str
    table: pd.DataFrame
    tipping_delta: float | None
    tipping_crossing: float | None
    outcome_sd: float
    sign: int
    n_clients_shifted: int
    n_cells_shifted: int
    confidence: float
    m: int
    _title = "Tipping-point analysis (delta-adjusted multiple imputation)"

    def to_frame(self) -> pd.DataFrame:
        """The per-delta table (a copy)."""
        return self.table.copy()

    def summary(self) -> str:
        """The result in plain words."""
        base = self.table.iloc[0]
        level = f"{100 * self.confidence:g}%"
        worse = "higher" if self.sign > 0 else "lower"
        text = [
            f"Term {self.term!r}, multiple imputation with m = {self.m}. Assuming that "
            f"girls who absconded would have scored like comparable girls who stayed "
            f"(delta = 0), the estimate is {_fmt(base['estimate'])} ({level} CI "
            f"{_fmt(base['ci_lower'])} to {_fmt(base['ci_upper'])}, p = {_fmt(base['p_value'])}).",
            f"The sensitivity analysis made the imputed scores after absconding worse "
            f"({worse}) by delta standard deviations (1 SD = {_fmt(self.outcome_sd)} points), "
            f"for {self.n_cells_shifted} imputed scores of {self.n_clients_shifted} clients.",
        ]
        if self.tipping_delta is None:
            top = self.table.iloc[-1]
            text.append(f"The conclusion does not change up to delta = {_fmt(top['delta'])} "
                        f"(estimate {_fmt(top['estimate'])}, {level} CI "
                        f"{_fmt(top['ci_lower'])} to {_fmt(top['ci_upper'])}).")
        else:
            row = self.table.loc[self.table["delta"] == self.tipping_delta].iloc[0]
            change = ("is no longer statistically significant" if bool(base["significant"])
                      else "becomes statistically significant")
            if bool(base["significant"]) and bool(row["significant"]):
                change = "reverses its sign"
            text.append(f"The result {change} from delta = {_fmt(self.tipping_delta)} "
                        f"(a shift of {_fmt(abs(row['shift']))} points; estimate "
                        f"{_fmt(row['estimate'])}, {level} CI {_fmt(row['ci_lower'])} to "
                        f"{_fmt(row['ci_upper'])}); the interval crosses 0 at about "
                        f"delta = {_fmt(self.tipping_crossing)}.")
        return " ".join(text)

    def plot(self, ax=None, **kwargs):
        """Pooled estimate and interval against delta, with the tipping point marked.

        ``kwargs`` go to the estimate line (``Axes.plot``). Returns the figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        t = self.table
        kwargs.setdefault("marker", "o")
        kwargs.setdefault("label", "pooled estimate")
        line = ax.plot(t["delta"], t["estimate"], **kwargs)[0]
        ax.fill_between(t["delta"], t["ci_lower"], t["ci_upper"], alpha=0.25,
                        color=line.get_color(),
                        label=f"{100 * self.confidence:g}% interval")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        if self.tipping_delta is not None:
            ax.axvline(self.tipping_delta, color="firebrick", linestyle="--",
                       label=f"tipping point (delta = {_fmt(self.tipping_delta)})")
        ax.set_xlabel("delta (SD of the outcome, in the worse direction)")
        ax.set_ylabel(f"estimate of {self.term}")
        ax.legend(loc="best", fontsize="small")
        return ax.figure


def _deltas(deltas: Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(list(deltas), dtype=float)
    except (TypeError, ValueError) as exc:
        raise SpecError("deltas must be a sequence of numbers") from exc
    if values.ndim != 1 or values.size == 0:
        raise SpecError("deltas must be a non-empty sequence of numbers")
    if not np.isfinite(values).all() or (values < 0).any():
        raise SpecError("deltas must be finite and >= 0 (the direction is set by "
                        "`direction` and `better`)")
    return np.unique(np.concatenate([[0.0], values]))


def _conclusion(row: pd.Series) -> tuple[bool, int]:
    sig = bool(row["significant"])
    return sig, (int(np.sign(row["estimate"])) if sig else 0)


def tipping_point(
    table: pd.DataFrame,
    clients: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    deltas: Sequence[float],
    analysis: Callable[[pd.DataFrame], pd.DataFrame],
    term: str,
    m: int = 20,
    rng: int | np.random.Generator | None = None,
    direction: str = "worse",
    better: str | None = None,
    client: str = "client",
    programme: str = "programme",
    occasion: str | None = "occasion",
    covariates: Sequence[str] = (),
    burn_in: int = 500,
    thin: int = 50,
    confidence: float = 0.95,
    df_complete: float | Mapping[str, float] | pd.Series | None = None,
    sd: float | None = None,
    imputed: ImputationResult | None = None,
) -> TippingPointResult:
    r"""Delta-adjusted tipping-point analysis for outcomes missing after absconding.

    The outcomes are multiply imputed under MAR once (:func:`impute`); then, for each
    ``delta`` of the grid, the imputed outcomes of every client whose ``end_reason``
    is ``"absconded"`` at the planned occasions after she left (week greater than her
    ``weeks_in_care``) are shifted by ``delta`` standard deviations of the observed
    outcome in the worse direction, the ``analysis`` is run on each shifted table and
    the results are pooled with Rubin's rules. Observed scores and the imputed
    scores of the other clients are not changed. The same ``m`` imputations are used
    for every delta, so the curve is smooth in delta. This is the delta-adjustment
    form of a pattern-mixture model (Carpenter & Kenward 2013; Ratitch,
    O'Kelly & Tosiello 2013; van Buuren 2018, section 3.8): delta = 0 is MAR.

    The conclusion at a delta is whether the interval excludes 0 and, if so, the
    sign of the estimate; the *tipping point* is the smallest delta of the grid at
    which it differs from the conclusion at delta = 0.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table as for :func:`impute` (one outcome per client x occasion).
    clients : pandas.DataFrame
        One row per client with the columns ``client`` (as named by ``client``),
        ``end_reason`` and ``weeks_in_care`` (the harmonised client table). Every
        client of ``table`` must have a row; ``weeks_in_care`` must be given for
        clients who absconded.
    outcome, time : str
        Outcome and week columns of ``table``.
    deltas : sequence of float
        Shifts in SD units, >= 0; 0 is added when absent.
    analysis : callable
        ``analysis(table) -> DataFrame`` with ``term, estimate, se``, e.g.
        :func:`effectstudy.missing.growth_analysis`.
    term : str
        The term whose conclusion is examined.
    m : int, default 20
        Number of imputations.
    rng : int, numpy.random.Generator or None
        Passed to :func:`impute` (so the completed tables are those of
        ``impute(..., rng=rng)``).
    direction : {"worse", "better"}
        Shift the imputed scores in the worse (default) or better direction.
    better : {"higher", "lower"} or None
        Which scores are better. ``None`` takes the single value of a ``better``
        column of ``table`` (as the harmonised table has).
    client, programme, occasion, covariates, burn_in, thin
        Passed to :func:`impute`.
    confidence : float, default 0.95
        Level of the pooled intervals; significance means the interval excludes 0.
    df_complete : optional
        Passed to :func:`effectstudy.missing.pool`.
    sd : float, optional
        The SD unit of delta; default the SD of the observed outcomes in ``table``.
    imputed : ImputationResult, optional
        Completed tables already made by :func:`impute` with the same columns
        (then ``m``, ``rng``, ``burn_in``, ``thin`` are not used).

    Returns
    -------
    TippingPointResult
        ``.to_frame()``, ``.summary()``, ``.plot()``, ``.tipping_delta``.

    Raises
    ------
    DataError
        Missing columns, a client of ``table`` without a row in ``clients``, an
        absconded client without ``weeks_in_care``, no variance in the outcome, or
        an analysis that does not report ``term``. No client label is shown.
    SpecError
        Invalid ``deltas``, ``direction``, ``better`` or ``confidence``.

    References
    ----------
    Carpenter, J. R., & Kenward, M. G. (2013). *Multiple Imputation and its
    Application*. Wiley.

    Ratitch, B., O'Kelly, M., & Tosiello, R. (2013). Missing data in clinical trials:
    from clinical assumptions to statistical analysis using pattern mixture models.
    *Pharmaceutical Statistics*, 12(6), 337-347.

    Rubin, D. B. (1987). *Multiple Imputation for Nonresponse in Surveys*. Wiley.

    van Buuren, S. (2018). *Flexible Imputation of Missing Data* (2nd ed.), section 3.8
    "Nonignorable missing data". Chapman & Hall/CRC.
    """
    grid = _deltas(deltas)
    if direction not in ("worse", "better"):
        raise SpecError(f"direction must be 'worse' or 'better', got {direction!r}")
    if not isinstance(confidence, Real) or not 0.0 < float(confidence) < 1.0:
        raise SpecError(f"confidence must be a number in (0, 1), got {confidence!r}")
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    if better is None:
        if "better" not in table.columns:
            raise SpecError("give better='higher' or 'lower' (table has no 'better' column)")
        vals = pd.unique(table["better"].dropna())
        if len(vals) != 1:
            raise SpecError("table's 'better' column is not one value: give better= explicitly")
        better = str(vals[0])
    if better not in ("higher", "lower"):
        raise SpecError(f"better must be 'higher' or 'lower', got {better!r}")
    worse_sign = -1 if better == "higher" else 1
    sign = worse_sign if direction == "worse" else -worse_sign

    if not isinstance(clients, pd.DataFrame):
        raise DataError(f"clients must be a pandas DataFrame, got {type(clients).__name__}")
    for col in (client, "end_reason", "weeks_in_care"):
        if col not in clients.columns:
            raise DataError("clients has no such column", column=col)
    cl = clients.reset_index(drop=True)
    dup = cl.duplicated(client).to_numpy()
    if dup.any():
        raise DataError("two rows for one client", row=int(np.flatnonzero(dup)[0]),
                        column=client)
    if client not in table.columns:
        raise DataError("table has no such column", column=client)
    absent = ~pd.Series(pd.unique(table[client])).isin(cl[client])
    if absent.any():
        raise DataError(f"{int(absent.sum())} client(s) of the table have no row in clients",
                        column=client)
    absc = (cl["end_reason"] == ABSCONDED).to_numpy()
    weeks = pd.to_numeric(cl["weeks_in_care"], errors="coerce").to_numpy(dtype=float)
    no_weeks = absc & np.isnan(weeks)
    if no_weeks.any():
        raise DataError("a client who absconded has no weeks_in_care: the occasions after "
                        "she left cannot be found", row=int(np.flatnonzero(no_weeks)[0]),
                        column="weeks_in_care")
    left_at = dict(zip(cl.loc[absc, client], weeks[absc], strict=True))

    if outcome not in table.columns:
        raise DataError("table has no such column", column=outcome)
    if sd is None:
        obs = pd.to_numeric(table[outcome], errors="coerce").dropna()
        sd = float(obs.std(ddof=1)) if len(obs) > 1 else float("nan")
    if not isinstance(sd, Real) or not math.isfinite(float(sd)) or float(sd) <= 0:
        raise DataError("the observed outcome has no usable SD (the unit of delta)",
                        column=outcome)
    sd = float(sd)

    if imputed is None:
        imputed = impute(table, outcome=outcome, time=time, client=client,
                         programme=programme, occasion=occasion, covariates=covariates,
                         m=m, rng=rng, burn_in=burn_in, thin=thin)
    tables = list(imputed)
    if len(tables) < 2:
        raise DataError(f"pooling needs at least two completed tables, got {len(tables)}")
    first = tables[0]
    for col in (client, time, outcome, IMPUTED_COLUMN):
        if col not in first.columns:
            raise DataError("completed table has no such column", column=col)
    after = first[client].map(left_at).to_numpy(dtype=float)
    shift_mask = (first[IMPUTED_COLUMN].to_numpy(dtype=bool)
                  & ~np.isnan(after) & (first[time].to_numpy(dtype=float) > after))
    n_cells = int(shift_mask.sum())
    n_clients = int(first.loc[shift_mask, client].nunique())

    rows = []
    for delta in grid:
        shift = sign * delta * sd
        shifted = []
        for tab in tables:
            if len(tab) != len(first) or not np.array_equal(
                    tab[IMPUTED_COLUMN].to_numpy(dtype=bool), first[IMPUTED_COLUMN].to_numpy(
                        dtype=bool)):
                raise DataError("the completed tables do not share one planned grid")
            t = tab.copy()
            y = t[outcome].to_numpy(dtype=float).copy()
            y[shift_mask] += shift
            t[outcome] = y
            shifted.append(t)
        pooled = pool(run_analysis(analysis, shifted), df_complete=df_complete,
                      confidence=confidence)
        hit = pooled.loc[pooled["term"] == term]
        if hit.empty:
            raise DataError(f"the analysis reports no term {term!r}; it reports "
                            f"{list(pooled['term'])!r}")
        r = hit.iloc[0]
        rows.append({"delta": float(delta), "shift": shift, "estimate": r["estimate"],
                     "se": r["se"], "df": r["df"], "statistic": r["statistic"],
                     "p_value": r["p_value"], "ci_lower": r["ci_lower"],
                     "ci_upper": r["ci_upper"],
                     "significant": bool(r["ci_lower"] > 0 or r["ci_upper"] < 0)})
    frame = pd.DataFrame(rows, columns=list(_FRAME_COLUMNS))
    base = _conclusion(frame.iloc[0])
    tip = crossing = None
    for k in range(1, len(frame)):
        if _conclusion(frame.iloc[k]) != base:
            tip = float(frame["delta"].iloc[k])
            crossing = _crossing(frame.iloc[k - 1], frame.iloc[k])
            break
    return TippingPointResult(term=term, table=frame, tipping_delta=tip,
                              tipping_crossing=crossing, outcome_sd=sd, sign=sign,
                              n_clients_shifted=n_clients, n_cells_shifted=n_cells,
                              confidence=float(confidence), m=len(tables))


def _crossing(prev: pd.Series, cur: pd.Series) -> float:
    """Delta where an interval bound crosses 0 between two grid rows (linear)."""
    d0, d1 = float(prev["delta"]), float(cur["delta"])
    for col in ("ci_lower", "ci_upper"):
        a, b = float(prev[col]), float(cur[col])
        if (a > 0) != (b > 0) and a != b:
            return d0 + (d1 - d0) * a / (a - b)
    return d1
