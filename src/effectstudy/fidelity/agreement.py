"""Inter-rater agreement of fidelity ratings: the six Shrout-Fleiss intraclass correlations.

:func:`rater_agreement` takes ratings in long form (one row per target x rater, a
target being e.g. a session or a team-month rated on a fidelity checklist) and
returns ICC1, ICC2, ICC3, ICC1k, ICC2k and ICC3k with their F tests and
confidence intervals, as R's ``psych::ICC(lmer = FALSE)`` reports them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from numbers import Real

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError, SpecError

__all__ = ["AGREEMENT_COLUMNS", "ICC_DESCRIPTIONS", "IncompleteRatingsWarning",
           "RaterAgreementResult", "rater_agreement"]

#: Columns of the frame :func:`rater_agreement` returns, in this order.
AGREEMENT_COLUMNS = ("type", "description", "icc", "F", "df1", "df2", "p_value", "ci_lower",
                     "ci_upper")

#: Shrout & Fleiss (1979) form -> McGraw & Wong (1996) description (their notation in the
#: comment).
ICC_DESCRIPTIONS = {
    "ICC1": "single raters, absolute agreement, one-way random",  # ICC(1)
    "ICC2": "single raters, absolute agreement, two-way random",  # ICC(A,1)
    "ICC3": "single raters, consistency, two-way mixed",  # ICC(C,1)
    "ICC1k": "average raters, absolute agreement, one-way random",  # ICC(k)
    "ICC2k": "average raters, absolute agreement, two-way random",  # ICC(A,k)
    "ICC3k": "average raters, consistency, two-way mixed",  # ICC(C,k)
}

#: pingouin's labels of the same six forms.
_PINGOUIN_TYPES = {"ICC(1,1)": "ICC1", "ICC(A,1)": "ICC2", "ICC(C,1)": "ICC3",
                   "ICC(1,k)": "ICC1k", "ICC(A,k)": "ICC2k", "ICC(C,k)": "ICC3k"}


class IncompleteRatingsWarning(UserWarning):
    """Some targets were not rated by every rater and were left out of the ICCs."""


@dataclass(frozen=True, eq=False)
class RaterAgreementResult(ResultMixin):
    """The six Shrout-Fleiss ICCs of :func:`rater_agreement`.

    Attributes
    ----------
    table : DataFrame
        Six rows (ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k) with the columns of
        :data:`AGREEMENT_COLUMNS`; see :meth:`to_frame`.
    n_targets : int
        Targets rated by every rater (the ones the ICCs are computed on).
    n_raters : int
        Raters.
    n_dropped : int
        Targets left out because not every rater rated them.
    confidence : float
        Level of the confidence intervals.
    warnings : tuple of str
        Notes on the data (dropped targets), shown with the table in notebooks.
    """

    table: pd.DataFrame = field(repr=False)
    n_targets: int
    n_raters: int
    n_dropped: int
    confidence: float
    warnings: tuple[str, ...] = ()
    _title = "Inter-rater agreement (Shrout-Fleiss intraclass correlations)"

    def to_frame(self) -> pd.DataFrame:
        """One row per ICC form: ``type, description, icc, F, df1, df2, p_value, ci_lower,
        ci_upper``."""
        return self.table.copy()

    def summary(self) -> pd.DataFrame:
        """One row: targets, raters, dropped targets, confidence level, and the two forms
        most often reported for a fidelity checklist scored by one rater (ICC2, absolute
        agreement) or averaged over the raters (ICC2k), with their intervals."""
        tab = self.table.set_index("type")
        row: dict[str, object] = {"n_targets": self.n_targets, "n_raters": self.n_raters,
                                  "n_dropped": self.n_dropped, "confidence": self.confidence}
        for typ in ("ICC2", "ICC2k"):
            for col in ("icc", "ci_lower", "ci_upper"):
                row[f"{typ}_{col}"] = float(tab.at[typ, col])
        return pd.DataFrame([row])

    def plot(self, ax=None, **kwargs):
        """The six ICCs with their confidence intervals (one line each).

        Parameters
        ----------
        ax : matplotlib Axes, optional
        **kwargs
            Passed to ``Axes.errorbar``.
        """
        import matplotlib.pyplot as plt

        from effectstudy.style import GREY, label_axes, use_style

        tab = self.table
        y = np.arange(len(tab))[::-1]
        icc = tab["icc"].to_numpy(dtype=float)
        err = [icc - tab["ci_lower"].to_numpy(dtype=float),
               tab["ci_upper"].to_numpy(dtype=float) - icc]
        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 0.45 * len(tab) + 1.4))
            ax.errorbar(icc, y, xerr=err, fmt=kwargs.pop("fmt", "o"), capsize=3, **kwargs)
            ax.axvline(0.0, color=GREY, lw=1, ls="--")
            ax.set_yticks(y, tab["type"].astype(str))
            label_axes(ax, x=f"intraclass correlation ({self.confidence:.0%} CI)")
        return ax.figure


def _wide_ratings(data: pd.DataFrame, targets: str, raters: str,
                  ratings: str) -> tuple[pd.DataFrame, int]:
    """Validate the long ratings; the complete targets x raters matrix and the number of
    incomplete targets dropped."""
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    for col in (targets, raters, ratings):
        if col not in data.columns:
            raise DataError("data has no such column", column=col)
    if len({targets, raters, ratings}) < 3:
        raise SpecError("targets, raters and ratings must name three different columns")
    df = data[[targets, raters, ratings]].reset_index(drop=True)
    for col in (targets, raters):
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise DataError("missing label", row=int(np.flatnonzero(bad)[0]), column=col)
    values = pd.to_numeric(df[ratings], errors="coerce").astype(float)
    non_numeric = values.isna().to_numpy() & df[ratings].notna().to_numpy()
    if non_numeric.any():
        # the offending value is not echoed: it may be free text
        raise DataError("non-numeric rating", row=int(np.flatnonzero(non_numeric)[0]),
                        column=ratings)
    if np.isinf(values.to_numpy()).any():
        raise DataError("infinite rating", row=int(np.flatnonzero(np.isinf(values))[0]),
                        column=ratings)
    df[ratings] = values
    dup = df.duplicated([targets, raters]).to_numpy()
    if dup.any():
        raise DataError("a target is rated twice by the same rater (aggregate first)",
                        row=int(np.flatnonzero(dup)[0]), column=raters)
    wide = df.pivot(index=targets, columns=raters, values=ratings)
    if wide.shape[1] < 2:
        raise DataError(f"inter-rater agreement needs at least 2 raters, got {wide.shape[1]}",
                        column=raters)
    complete = wide.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        warnings.warn(
            f"{n_dropped} of {len(wide)} targets not rated by all {wide.shape[1]} raters were "
            "dropped (complete targets only, as psych::ICC does)",
            IncompleteRatingsWarning, stacklevel=3)
        wide = wide.loc[complete]
    if len(wide) < 2:
        raise DataError(f"inter-rater agreement needs at least 2 targets rated by every rater, "
                        f"got {len(wide)}", column=targets)
    x = wide.to_numpy()
    if np.ptp(x) == 0:
        raise DataError("all ratings are equal: the intraclass correlation is undefined (0/0)",
                        column=ratings)
    return wide, n_dropped


def _mean_squares(x: np.ndarray) -> dict[str, float]:
    """Two-way ANOVA mean squares of an n targets x k raters matrix without replication."""
    n, k = x.shape
    grand = x.mean()
    ss_targets = k * np.sum((x.mean(axis=1) - grand) ** 2)
    ss_raters = n * np.sum((x.mean(axis=0) - grand) ** 2)
    ss_total = np.sum((x - grand) ** 2)
    ss_error = max(ss_total - ss_targets - ss_raters, 0.0)
    return {
        "msb": ss_targets / (n - 1),
        "msj": ss_raters / (k - 1),
        "mse": ss_error / ((n - 1) * (k - 1)),
        "msw": (ss_raters + ss_error) / (n * (k - 1)),
        "mst": ss_total / (n * k - 1),
    }


def _intervals(ms: dict[str, float], n: int, k: int, icc2: float,
               confidence: float) -> dict[str, tuple[float, float]]:
    """Shrout-Fleiss / McGraw-Wong confidence limits, written as psych::ICC computes them."""
    q = 0.5 + confidence / 2.0
    msb, msj, mse, msw = ms["msb"], ms["msj"], ms["mse"], ms["msw"]
    df_n, df_w, df_e = n - 1, n * (k - 1), (n - 1) * (k - 1)
    # one-way model (ICC1, ICC1k): F = MSB / MSW
    f1 = msb / msw
    f1_low = f1 / stats.f.ppf(q, df_n, df_w)
    f1_up = f1 * stats.f.ppf(q, df_w, df_n)
    # two-way consistency (ICC3, ICC3k): F = MSB / MSE
    f3 = msb / mse
    f3_low = f3 / stats.f.ppf(q, df_n, df_e)
    f3_up = f3 * stats.f.ppf(q, df_e, df_n)
    # two-way absolute agreement (ICC2): Satterthwaite-type df of McGraw & Wong (1996, table 7)
    fj = msj / mse
    a = n * (1 + (k - 1) * icc2) - k * icc2
    v = (k - 1) * (n - 1) * (k * icc2 * fj + a) ** 2 / (
        (n - 1) * k**2 * icc2**2 * fj**2 + a**2)
    f2_up = stats.f.ppf(q, n - 1, v)
    f2_low = stats.f.ppf(q, v, n - 1)
    denom = k * msj + (k * n - k - n) * mse
    l2 = n * (msb - f2_up * mse) / (f2_up * denom + n * msb)
    u2 = n * (f2_low * msb - mse) / (denom + n * f2_low * msb)
    return {
        "ICC1": ((f1_low - 1) / (f1_low + k - 1), (f1_up - 1) / (f1_up + k - 1)),
        "ICC2": (l2, u2),
        "ICC3": ((f3_low - 1) / (f3_low + k - 1), (f3_up - 1) / (f3_up + k - 1)),
        "ICC1k": (1 - 1 / f1_low, 1 - 1 / f1_up),
        "ICC2k": (l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        "ICC3k": (1 - 1 / f3_low, 1 - 1 / f3_up),
    }


def rater_agreement(
    data: pd.DataFrame,
    *,
    targets: str,
    raters: str,
    ratings: str,
    confidence: float = 0.95,
) -> RaterAgreementResult:
    r"""Six Shrout-Fleiss intraclass correlations of ratings, as ``psych::ICC`` reports them.

    With :math:`n` targets each rated by the same :math:`k` raters, the two-way ANOVA
    without replication gives the mean squares between targets (MSB), between raters
    (MSJ), residual (MSE) and within targets (MSW, raters + residual). Then

    ========  =========  =====================================================  ==========
    type      McGraw &   description                                            ICC
              Wong
    ========  =========  =====================================================  ==========
    ICC1      ICC(1)     single raters, absolute agreement, one-way random      (MSB - MSW) / (MSB + (k-1) MSW)
    ICC2      ICC(A,1)   single raters, absolute agreement, two-way random      (MSB - MSE) / (MSB + (k-1) MSE + k (MSJ - MSE) / n)
    ICC3      ICC(C,1)   single raters, consistency, two-way mixed              (MSB - MSE) / (MSB + (k-1) MSE)
    ICC1k     ICC(k)     average raters, absolute agreement, one-way random     (MSB - MSW) / MSB
    ICC2k     ICC(A,k)   average raters, absolute agreement, two-way random     (MSB - MSE) / (MSB + (MSJ - MSE) / n)
    ICC3k     ICC(C,k)   average raters, consistency, two-way mixed             (MSB - MSE) / MSB
    ========  =========  =====================================================  ==========

    The F test of "no target variance" is MSB/MSW on :math:`(n-1, n(k-1))` df for
    ICC1 and ICC1k and MSB/MSE on :math:`(n-1, (n-1)(k-1))` df for the other four
    (psych reports the same F for ICC2 as for ICC3), with its upper-tail p-value.

    ICC, F, df and p come from :func:`pingouin.intraclass_corr`, which matches
    psych. The confidence limits are computed here from the mean squares with the
    Shrout & Fleiss (1979) limits for ICC1/ICC3 (and their Spearman-Brown
    counterparts), and McGraw & Wong's (1996) approximate-df limits for ICC2 and
    ICC2k, in the form psych uses, because pingouin rounds them to two decimals and
    fixes the level at 95%.

    Parameters
    ----------
    data : pandas.DataFrame
        Long ratings: one row per target x rater.
    targets, raters, ratings : str
        Columns with the rated unit (session, team-month), the rater and the numeric
        rating.
    confidence : float, default 0.95
        Level of the confidence intervals, in (0, 1).

    Returns
    -------
    RaterAgreementResult
        ``.to_frame()``: six rows (ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k) with columns
        ``type, description, icc, F, df1, df2, p_value, ci_lower, ci_upper``;
        ``.summary()``, ``.plot()``, and ``n_targets``, ``n_raters``, ``n_dropped``.

    Raises
    ------
    DataError
        A column is absent; a target or rater label is missing; a rating is
        non-numeric or infinite; a rater rated the same target twice; fewer than two
        raters; fewer than two targets rated by every rater; all ratings equal (the
        ICC is 0/0, undefined); all targets with the same mean rating (between-target
        mean square zero: the average-rater ICCs are -inf); or the raters agree
        perfectly up to a constant (residual mean square zero: F and the intervals
        are undefined). Error
        messages give the 0-based row position, never the label or value.
    SpecError
        ``confidence`` outside (0, 1).

    Warns
    -----
    IncompleteRatingsWarning
        Targets not rated by every rater (a missing row or a NaN rating) are dropped
        and the warning says how many; psych::ICC likewise works on complete targets
        only (listwise deletion).

    References
    ----------
    Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing
    rater reliability. *Psychological Bulletin*, 86(2), 420-428.

    McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass
    correlation coefficients. *Psychological Methods*, 1(1), 30-46.

    Revelle, W. psych: Procedures for Psychological, Psychometric, and Personality
    Research (R package), function ``ICC``.

    Examples
    --------
    >>> import pandas as pd
    >>> d = pd.DataFrame({"session": ["S1", "S2", "S3", "S4"] * 2,
    ...                   "rater": ["a"] * 4 + ["b"] * 4,
    ...                   "rating": [6.0, 7.5, 5.0, 8.0, 6.5, 7.0, 5.5, 8.5]})
    >>> res = rater_agreement(d, targets="session", raters="rater", ratings="rating")
    >>> list(res.to_frame()["type"])
    ['ICC1', 'ICC2', 'ICC3', 'ICC1k', 'ICC2k', 'ICC3k']
    """
    if not isinstance(confidence, Real) or isinstance(confidence, bool) or not (
            0.0 < float(confidence) < 1.0):
        raise SpecError(f"confidence must be a number in (0, 1), got {confidence!r}")
    wide, n_dropped = _wide_ratings(data, targets, raters, ratings)
    x = wide.to_numpy()
    n, k = x.shape
    ms = _mean_squares(x)
    if ms["msb"] <= 1e-12 * ms["mst"]:
        raise DataError("every target has the same mean rating (between-target mean square "
                        "zero): the average-rater ICCs and the intervals are undefined",
                        column=targets)
    if ms["mse"] <= 1e-12 * ms["mst"]:
        raise DataError("residual mean square is zero (ratings differ between raters only by a "
                        "constant): F and the confidence intervals are undefined",
                        column=ratings)

    # pingouin on fresh, neutral labels: the complete matrix back in long form
    long = pd.DataFrame({
        "target": np.repeat(np.arange(n), k),
        "rater": np.tile(np.arange(k), n),
        "rating": x.ravel(),
    })
    with warnings.catch_warnings():
        # pingouin's internals trip pandas deprecation notices; they are not about the data
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        res = pg.intraclass_corr(long, targets="target", raters="rater", ratings="rating")
    res = res.assign(type=res["Type"].map(_PINGOUIN_TYPES)).set_index("type")
    if res.index.isna().any() or len(res) != 6:
        raise ModelError("unexpected output of pingouin.intraclass_corr (unknown ICC labels)")
    ci = _intervals(ms, n, k, float(res.at["ICC2", "ICC"]), float(confidence))

    rows = []
    for typ, description in ICC_DESCRIPTIONS.items():
        rows.append({
            "type": typ,
            "description": description,
            "icc": float(res.at[typ, "ICC"]),
            "F": float(res.at[typ, "F"]),
            "df1": int(res.at[typ, "df1"]),
            "df2": int(res.at[typ, "df2"]),
            "p_value": float(res.at[typ, "pval"]),
            "ci_lower": float(ci[typ][0]),
            "ci_upper": float(ci[typ][1]),
        })
    notes = ((f"{n_dropped} target(s) not rated by every rater were left out (complete "
              "targets only, as psych::ICC does)",) if n_dropped else ())
    return RaterAgreementResult(table=pd.DataFrame(rows, columns=list(AGREEMENT_COLUMNS)),
                                n_targets=int(n), n_raters=int(k), n_dropped=n_dropped,
                                confidence=float(confidence), warnings=notes)
