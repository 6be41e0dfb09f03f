"""Rubin's rules: combine one analysis run on each of ``m`` multiply imputed data sets.

:func:`pool` takes the per-imputation estimates and standard errors in long form
(one row per imputation x term) and returns the pooled estimate, its total
standard error, degrees of freedom, t statistic, p-value, confidence interval and
the missing-information diagnostics, as R's ``mice::pool`` (with a complete-data
df) or ``mitml::testEstimates`` (without one) report them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Real

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import DataError, SpecError

__all__ = ["POOL_COLUMNS", "pool"]

#: Columns of the frame :func:`pool` returns, in this order.
POOL_COLUMNS = ("term", "estimate", "se", "df", "statistic", "p_value", "ci_lower", "ci_upper",
                "riv", "lambda", "fmi", "m")

#: mice's ``barnard.rubin`` floors lambda at this value before computing the df.
_LAMBDA_FLOOR = 1e-4


def _first_bad_row(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _check_input(estimates: pd.DataFrame, estimate: str, se: str, term: str,
                 imputation: str) -> pd.DataFrame:
    if not isinstance(estimates, pd.DataFrame):
        raise DataError(f"estimates must be a pandas DataFrame, got {type(estimates).__name__}")
    for col in (imputation, term, estimate, se):
        if col not in estimates.columns:
            raise DataError("estimates has no such column", column=col)
    if len(estimates) == 0:
        raise DataError("estimates is empty: nothing to pool")
    df = estimates[[imputation, term, estimate, se]].reset_index(drop=True)
    for col in (imputation, term):
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise DataError("missing value (NaN) in the label column",
                            row=_first_bad_row(bad), column=col)
    for col in (estimate, se):
        values = pd.to_numeric(df[col], errors="coerce").astype(float)
        non_numeric = values.isna().to_numpy() & df[col].notna().to_numpy()
        if non_numeric.any():
            raise DataError("non-numeric value", row=_first_bad_row(non_numeric), column=col)
        missing = values.isna().to_numpy()
        if missing.any():
            raise DataError("missing value (NaN): every imputation x term needs an estimate "
                            "and a standard error", row=_first_bad_row(missing), column=col)
        infinite = ~np.isfinite(values.to_numpy())
        if infinite.any():
            raise DataError("infinite value", row=_first_bad_row(infinite), column=col)
        df[col] = values
    nonpos = (df[se].to_numpy() <= 0)
    if nonpos.any():
        raise DataError("standard error must be > 0", row=_first_bad_row(nonpos), column=se)
    dup = df.duplicated([imputation, term]).to_numpy()
    if dup.any():
        raise DataError(f"term {df[term].iloc[_first_bad_row(dup)]!r} appears twice in the same "
                        "imputation", row=_first_bad_row(dup), column=term)
    imps = pd.unique(df[imputation])
    if len(imps) < 2:
        raise DataError(f"Rubin's rules need at least m = 2 imputations, got m = {len(imps)}",
                        column=imputation)
    terms = list(pd.unique(df[term]))
    for imp in imps:
        present = set(df.loc[df[imputation] == imp, term])
        missing_terms = [t for t in terms if t not in present]
        if missing_terms:
            raise DataError(f"imputation {imp!r} lacks term(s) {missing_terms!r}: every "
                            "imputation must report the same terms", column=term)
    return df


def _df_complete_per_term(df_complete: float | Mapping[str, float] | pd.Series | None,
                          terms: list) -> np.ndarray | None:
    if df_complete is None:
        return None
    if isinstance(df_complete, Real) and not isinstance(df_complete, bool):
        values = np.full(len(terms), float(df_complete))
    elif isinstance(df_complete, (Mapping, pd.Series)):
        mapping = dict(df_complete.items())
        absent = [t for t in terms if t not in mapping]
        if absent:
            raise SpecError(f"df_complete gives no value for term(s) {absent!r}")
        try:
            values = np.array([float(mapping[t]) for t in terms])
        except (TypeError, ValueError) as exc:
            raise SpecError("df_complete values must be numbers") from exc
    else:
        raise SpecError("df_complete must be None, a number, or a per-term dict/Series, got "
                        f"{type(df_complete).__name__}")
    if np.isnan(values).any() or (values <= 0).any():
        raise SpecError("df_complete must be > 0 (math.inf for a large-sample analysis)")
    return values


def pool(
    estimates: pd.DataFrame,
    *,
    df_complete: float | Mapping[str, float] | pd.Series | None = None,
    confidence: float = 0.95,
    estimate: str = "estimate",
    se: str = "se",
    term: str = "term",
    imputation: str = "imputation",
) -> pd.DataFrame:
    r"""Pool per-imputation estimates with Rubin's rules.

    For each term with estimates :math:`\hat Q_l` and standard errors :math:`\sqrt{U_l}`
    from imputations :math:`l = 1, \dots, m` (van Buuren 2018, section 2.3.2):

    * pooled estimate :math:`\bar Q = \frac1m \sum_l \hat Q_l`;
    * within variance :math:`\bar U = \frac1m \sum_l U_l`;
    * between variance :math:`B = \frac1{m-1} \sum_l (\hat Q_l - \bar Q)^2`;
    * total variance :math:`T = \bar U + (1 + 1/m) B`, reported as ``se`` = :math:`\sqrt T`;
    * relative increase in variance ``riv`` :math:`r = (1 + 1/m) B / \bar U`;
    * proportion of the total variance due to missingness ``lambda``
      :math:`\lambda = (1 + 1/m) B / T = r / (1 + r)`.

    Degrees of freedom:

    * ``df_complete=None``: Rubin (1987) large-sample df
      :math:`\nu_{old} = (m - 1)(1 + 1/r)^2 = (m - 1)/\lambda^2`, as
      ``mitml::testEstimates(df.com = NULL)`` (infinite when :math:`B = 0`).
    * ``df_complete`` given (the df of the complete-data analysis, e.g. ``n - p`` for a
      linear model): Barnard & Rubin (1999) small-sample df
      :math:`\nu = \nu_{old}\nu_{obs}/(\nu_{old} + \nu_{obs})` with
      :math:`\nu_{obs} = \frac{\nu_{com} + 1}{\nu_{com} + 3}\nu_{com}(1 - \lambda)`,
      as ``mice::pool`` (van Buuren 2018, eq. 2.30-2.32). Like mice's ``barnard.rubin``,
      :math:`\lambda` is floored at 1e-4 inside this formula only (so that
      :math:`B = 0` gives a finite df); the ``lambda`` column is not floored.
      ``df_complete=math.inf`` gives :math:`\nu_{old}`.

    Fraction of missing information ``fmi``
    :math:`\gamma = (r + 2/(\nu + 3))/(r + 1)` (van Buuren 2018, eq. 2.25). Both R
    packages of the reference use this same expression but plug in their own df:
    ``mice::pool`` the Barnard-Rubin :math:`\nu`, ``mitml::testEstimates`` (no
    ``df.com``) Rubin's :math:`\nu_{old}`. So ``fmi`` here follows whichever df this
    call uses, and reproduces mice's with ``df_complete`` and mitml's without it.
    ``lambda`` (eq. 2.24) is the large-sample fraction of missing information that
    some texts also call fmi; mitml does not report it.

    The test statistic is :math:`t = \bar Q/\sqrt T` on :math:`\nu` df, two-sided
    p-value, and the interval :math:`\bar Q \pm t_{\nu, (1+c)/2}\sqrt T`.

    Parameters
    ----------
    estimates : pandas.DataFrame
        Long frame, one row per imputation x term, with the columns named by
        ``imputation``, ``term``, ``estimate`` and ``se``.
    df_complete : float, dict or pandas.Series, optional
        Complete-data degrees of freedom, one number for all terms or one per term
        (keys: term labels). ``None`` (default) uses Rubin's (1987) df.
    confidence : float, default 0.95
        Confidence level of the interval, in (0, 1).
    estimate, se, term, imputation : str
        Column names in ``estimates``.

    Returns
    -------
    pandas.DataFrame
        One row per term, in the order terms first appear in ``estimates``, columns
        ``term, estimate, se, df, statistic, p_value, ci_lower, ci_upper, riv, lambda,
        fmi, m``.

    Raises
    ------
    DataError
        A column is absent; a label, estimate or SE is missing (NaN), non-numeric or
        infinite; an SE is not positive; a term appears twice in one imputation;
        fewer than two imputations; or the imputations do not all report the same
        terms. ``row`` in the error is the 0-based row position in ``estimates``.
    SpecError
        ``confidence`` outside (0, 1) or an invalid ``df_complete``.

    References
    ----------
    Rubin, D. B. (1987). *Multiple Imputation for Nonresponse in Surveys*. Wiley.

    Barnard, J., & Rubin, D. B. (1999). Small-sample degrees of freedom with multiple
    imputation. *Biometrika*, 86(4), 948-955.

    van Buuren, S. (2018). *Flexible Imputation of Missing Data* (2nd ed.), section
    2.3, "Statistical intervals and tests". Chapman & Hall/CRC.

    Examples
    --------
    >>> import pandas as pd
    >>> est = pd.DataFrame({"imputation": [1, 2, 3], "term": "time",
    ...                     "estimate": [0.50, 0.55, 0.45], "se": [0.1, 0.1, 0.1]})
    >>> out = pool(est, df_complete=50)
    >>> round(float(out["estimate"].iloc[0]), 3), round(float(out["riv"].iloc[0]), 3)
    (0.5, 0.333)
    """
    if not isinstance(confidence, Real) or isinstance(confidence, bool) or not (
            0.0 < float(confidence) < 1.0):
        raise SpecError(f"confidence must be a number in (0, 1), got {confidence!r}")
    df = _check_input(estimates, estimate, se, term, imputation)
    terms = list(pd.unique(df[term]))
    imps = list(pd.unique(df[imputation]))
    m = len(imps)
    q = df.pivot(index=imputation, columns=term, values=estimate).loc[imps, terms].to_numpy()
    u = df.pivot(index=imputation, columns=term, values=se).loc[imps, terms].to_numpy() ** 2
    dfcom = _df_complete_per_term(df_complete, terms)

    qbar = q.mean(axis=0)
    ubar = u.mean(axis=0)
    b = q.var(axis=0, ddof=1)
    t_var = ubar + (1.0 + 1.0 / m) * b
    riv = (1.0 + 1.0 / m) * b / ubar
    lam = (1.0 + 1.0 / m) * b / t_var
    with np.errstate(divide="ignore"):
        df_old = np.where(lam > 0, (m - 1) / np.square(lam), np.inf)
    if dfcom is None:
        nu = df_old
    else:
        lam_f = np.maximum(lam, _LAMBDA_FLOOR)
        dfold_f = (m - 1) / np.square(lam_f)
        nu = np.empty(len(terms))
        for i, com in enumerate(dfcom):
            if math.isinf(com):
                nu[i] = dfold_f[i]
            else:
                dfobs = (com + 1.0) / (com + 3.0) * com * (1.0 - lam_f[i])
                nu[i] = dfold_f[i] * dfobs / (dfold_f[i] + dfobs)
    with np.errstate(divide="ignore"):
        fmi = (riv + np.where(np.isinf(nu), 0.0, 2.0 / (nu + 3.0))) / (riv + 1.0)
    se_tot = np.sqrt(t_var)
    stat = qbar / se_tot
    p = 2.0 * stats.t.sf(np.abs(stat), nu)
    crit = stats.t.ppf(0.5 + float(confidence) / 2.0, nu)
    return pd.DataFrame({
        "term": terms,
        "estimate": qbar,
        "se": se_tot,
        "df": nu,
        "statistic": stat,
        "p_value": p,
        "ci_lower": qbar - crit * se_tot,
        "ci_upper": qbar + crit * se_tot,
        "riv": riv,
        "lambda": lam,
        "fmi": fmi,
        "m": m,
    }, columns=list(POOL_COLUMNS))
