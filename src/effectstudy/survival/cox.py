"""Cox proportional-hazards regression with Efron or Breslow ties.

Own Newton-Raphson on the partial likelihood (lifelines lacks Breslow ties and
R's cluster-robust variance), vectorised over risk sets: the data are sorted by
time once, risk-set sums are reverse cumulative sums (O(n p^2) per iteration, no
n x n matrices), and tied events are handled by expanding each tied set into its
``d`` Efron steps. Matches R's ``coxph`` (survival 3.5) in estimates, standard
errors, partial log-likelihood, concordance and the ``cluster =`` sandwich.

References
----------
Cox D.R. (1972). Regression models and life-tables. J R Stat Soc B 34:187-220.
Breslow N. (1974). Covariance analysis of censored survival data. Biometrics
    30:89-99.
Efron B. (1977). The efficiency of Cox's likelihood function for censored data.
    J Am Stat Assoc 72:557-565.
Lin D.Y. & Wei L.J. (1989). The robust inference for the Cox proportional hazards
    model. J Am Stat Assoc 84:1074-1078.
Harrell F.E., Califf R.M., Pryor D.B., Lee K.L. & Rosati R.A. (1982). Evaluating
    the yield of medical tests. JAMA 247:2543-2546.
Heinze G. & Schemper M. (2001). A solution to the problem of monotone likelihood
    in Cox regression. Biometrics 57:114-119.
Firth D. (1993). Bias reduction of maximum likelihood estimates. Biometrika
    80:27-38.
Peduzzi P., Concato J., Feinstein A.R. & Holford T.R. (1995). Importance of events
    per independent variable in proportional hazards regression analysis II.
    J Clin Epidemiol 48:1503-1510.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError
from effectstudy.survival._common import (
    ConvergenceWarning,
    FewEventsWarning,
    SeparationWarning,
    check_confidence,
    check_frame,
    event_column,
    group_column,
    numeric_column,
    time_column,
)

Ties = Literal["efron", "breslow"]
_EPV_THRESHOLD = 10.0


# --------------------------------------------------------------------------- #
# Events per variable
# --------------------------------------------------------------------------- #
def events_per_variable(data: pd.DataFrame, *, event: str, covariates: Sequence[str],
                        threshold: float = _EPV_THRESHOLD, warn: bool = True) -> float:
    """Number of events per covariate, with a warning below ``threshold``.

    With fewer than about 10 events per covariate Cox estimates are biased and
    their Wald intervals unreliable (Peduzzi et al. 1995); the Firth-penalised
    fit (``cox(..., firth=True)``, Heinze & Schemper 2001) reduces that bias.

    Parameters
    ----------
    data : DataFrame
    event : str
        Event indicator column (1 event, 0 censored).
    covariates : sequence of str
        The model's covariates.
    threshold : float
        Warn (``FewEventsWarning``) when events per covariate fall below this.
    warn : bool
        Set False to only compute the number.

    Returns
    -------
    float
        Events divided by the number of covariates.
    """
    covariates = list(covariates)
    if not covariates:
        raise DataError("events per variable needs at least one covariate")
    df = check_frame(data, [event])
    n_events = int(event_column(df, event).sum())
    epv = n_events / len(covariates)
    if warn and epv < threshold:
        warnings.warn(
            f"{n_events} events for {len(covariates)} covariate(s): {epv:.1f} events per "
            f"covariate (< {threshold:g}); estimates may be biased and unstable - consider "
            "fewer covariates or cox(..., firth=True)", FewEventsWarning, stacklevel=2)
    return float(epv)


# --------------------------------------------------------------------------- #
# Partial likelihood
# --------------------------------------------------------------------------- #
class _RiskSets:
    """Sorted data and the index structure of distinct event times."""

    def __init__(self, t: np.ndarray, e: np.ndarray, x: np.ndarray, ties: str) -> None:
        order = np.argsort(t, kind="stable")
        self.order = order
        self.t = t[order]
        self.e = e[order]
        self.x = x[order]
        n, p = self.x.shape
        self.p = p
        self.event_times = np.unique(self.t[self.e == 1])
        # first sorted row still at risk at each event time (t >= tau)
        self.start = np.searchsorted(self.t, self.event_times, side="left")
        ev = np.flatnonzero(self.e == 1)
        self.ev = ev
        self.ev_k = np.searchsorted(self.event_times, self.t[ev])
        self.d = np.bincount(self.ev_k, minlength=len(self.event_times))
        # Efron steps: for a tied set of d events, l = 0..d-1 with weight l/d
        self.step_k = np.repeat(np.arange(len(self.event_times)), self.d)
        first = np.concatenate([[0], np.cumsum(self.d)[:-1]])
        l_idx = np.arange(len(self.step_k)) - first[self.step_k]
        if ties == "efron":
            self.frac = l_idx / self.d[self.step_k]
        else:
            self.frac = np.zeros(len(self.step_k))
        self.xx = np.einsum("ni,nj->nij", self.x, self.x)

    def _sums(self, beta: np.ndarray, third: bool = False) -> dict[str, np.ndarray]:
        eta = self.x @ beta
        shift = float(eta.max())
        r = np.exp(eta - shift)
        k = len(self.event_times)

        def revcum(a: np.ndarray) -> np.ndarray:
            return np.cumsum(a[::-1], axis=0)[::-1][self.start]

        def event_sum(a: np.ndarray) -> np.ndarray:
            out = np.zeros((k,) + a.shape[1:])
            np.add.at(out, self.ev_k, a[self.ev])
            return out

        rx = r[:, None] * self.x
        rxx = r[:, None, None] * self.xx
        s0, s1, s2 = revcum(r), revcum(rx), revcum(rxx)
        e0, e1, e2 = event_sum(r), event_sum(rx), event_sum(rxx)
        kk, f = self.step_k, self.frac
        a = s0[kk] - f * e0[kk]
        b = s1[kk] - f[:, None] * e1[kk]
        c = s2[kk] - f[:, None, None] * e2[kk]
        m = b / a[:, None]
        out = {"eta": eta, "shift": np.array(shift), "r": r, "a": a, "m": m,
               "exx": c / a[:, None, None]}
        if third:
            rxxx = r[:, None, None, None] * np.einsum("nij,nk->nijk", self.xx, self.x)
            s3, e3 = revcum(rxxx), event_sum(rxxx)
            out["exxx"] = (s3[kk] - f[:, None, None, None] * e3[kk]) / a[:, None, None, None]
        return out

    def evaluate(self, beta: np.ndarray, *, firth: bool = False
                 ) -> tuple[float, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """Log partial likelihood, score, information (and the raw sums)."""
        s = self._sums(beta, third=firth)
        a, m = s["a"], s["m"]
        loglik = float(s["eta"][self.ev].sum() - np.log(a).sum() - len(a) * float(s["shift"]))
        score = self.x[self.ev].sum(axis=0) - m.sum(axis=0)
        info = (s["exx"] - np.einsum("ki,kj->kij", m, m)).sum(axis=0)
        return loglik, score, info, s

    def firth_terms(self, info: np.ndarray, s: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
        """Penalty 0.5 log det I and its gradient 0.5 tr(I^-1 dI/dbeta_r)."""
        sign, logdet = np.linalg.slogdet(info)
        if sign <= 0:
            raise ModelError("the information matrix is not positive definite; the Firth "
                             "penalty is undefined")
        m, exx, exxx = s["m"], s["exx"], s["exxx"]
        # third central moment of x under the risk-set weights, summed over steps
        m3 = (exxx
              - np.einsum("ki,kjr->kijr", m, exx)
              - np.einsum("kj,kir->kijr", m, exx)
              - np.einsum("kr,kij->kijr", m, exx)
              + 2 * np.einsum("ki,kj,kr->kijr", m, m, m)).sum(axis=0)
        inv = np.linalg.inv(info)
        grad = 0.5 * np.einsum("ij,jir->r", inv, m3)
        return 0.5 * float(logdet), grad

    def score_residuals(self, beta: np.ndarray) -> np.ndarray:
        """Per-subject score residuals (rows in sorted order), Efron-aware as in R."""
        s = self._sums(beta)
        a, m, r = s["a"], s["m"], s["r"]
        k = len(self.event_times)
        kk, f = self.step_k, self.frac
        h = np.bincount(kk, weights=1.0 / a, minlength=k)
        g = np.zeros((k, self.p))
        np.add.at(g, kk, m / a[:, None])
        hf = np.bincount(kk, weights=f / a, minlength=k)
        gf = np.zeros((k, self.p))
        np.add.at(gf, kk, (f / a)[:, None] * m)
        mbar = np.zeros((k, self.p))
        np.add.at(mbar, kk, m)
        mbar /= self.d[:, None]
        # cumulative hazard parts over event times <= each subject's time
        upto = np.searchsorted(self.event_times, self.t, side="right")
        ch = np.concatenate([[0.0], np.cumsum(h)])[upto]
        cg = np.vstack([np.zeros((1, self.p)), np.cumsum(g, axis=0)])[upto]
        resid = -r[:, None] * (self.x * ch[:, None] - cg)
        ek = self.ev_k
        xe = self.x[self.ev]
        resid[self.ev] += (xe - mbar[ek]) + r[self.ev, None] * (xe * hf[ek, None] - gf[ek])
        return resid


def _newton(rs: _RiskSets, *, firth: bool, max_iter: int, scale: np.ndarray
            ) -> tuple[np.ndarray, int, bool, list[int]]:
    """Newton-Raphson with step halving; returns beta, iterations, converged, infinite."""
    beta = np.zeros(rs.p)

    def objective(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        ll, u, info, s = rs.evaluate(b, firth=firth)
        if firth:
            pen, grad = rs.firth_terms(info, s)
            return ll + pen, u + grad, info
        return ll, u, info

    obj, u, info = objective(beta)
    converged = False
    it = 0
    while it < max_iter:
        it += 1
        try:
            step = np.linalg.solve(info, u)
        except np.linalg.LinAlgError as exc:
            raise ModelError("the Cox information matrix is singular; a covariate is "
                             "constant within the risk sets or collinear") from exc
        for _ in range(30):
            new = beta + step
            new_obj, new_u, new_info = objective(new)
            if np.isfinite(new_obj) and new_obj >= obj - 1e-12 * (1 + abs(obj)):
                break
            step = step / 2
        else:
            break
        change = new_obj - obj
        beta, obj, u, info = new, new_obj, new_u, new_info
        if abs(change) <= 1e-13 * (1 + abs(obj)):
            # the likelihood has stopped rising; whether the coefficients have stopped too
            # (or run off to infinity, monotone likelihood) is judged by the next step below
            converged = True
            break
    try:
        final = np.linalg.solve(info, u)
    except np.linalg.LinAlgError:
        final = np.full(rs.p, np.inf)
    if converged:
        # the likelihood is flat but Newton still wants to move: a coefficient diverges
        infinite = [j for j in range(rs.p) if abs(final[j]) > 1e-4 * max(1.0, abs(beta[j]))
                    or abs(beta[j]) * scale[j] > 30]
    else:
        # stopped by max_iter (or step halving): a remaining step is no sign of divergence
        infinite = [j for j in range(rs.p) if abs(beta[j]) * scale[j] > 30]
    return beta, it, converged and not infinite, infinite


# --------------------------------------------------------------------------- #
# Concordance
# --------------------------------------------------------------------------- #
def _concordance(t: np.ndarray, e: np.ndarray, lp: np.ndarray) -> float:
    """Harrell's C as R's ``concordance`` reports it for a Cox model.

    A pair is comparable when the shorter time is an event; an event and a
    censoring at the same time count as comparable (the censored client lived at
    least as long), two events at the same time do not. Higher risk with the
    shorter time is concordant; ties in the linear predictor count one half.
    """
    conc = disc = tied = 0.0
    for i in np.flatnonzero(e == 1):
        comp = (t > t[i]) | ((t == t[i]) & (e == 0))
        other = lp[comp]
        conc += float(np.sum(lp[i] > other))
        disc += float(np.sum(lp[i] < other))
        tied += float(np.sum(lp[i] == other))
    total = conc + disc + tied
    return (conc + 0.5 * tied) / total if total > 0 else float("nan")


def interval_rows(ax: object, estimate: Sequence[float], lower: Sequence[float],
                  upper: Sequence[float], labels: Sequence[str], **kwargs: object) -> None:
    """One row per estimate, top to bottom, with its interval as a horizontal error bar.

    ``fmt=`` (default ``"o"``) and the other ``kwargs`` go to ``Axes.errorbar``;
    the rows are labelled with ``labels``. Shared by the hazard-ratio forest plot
    and the event-rate plot.
    """
    est = np.asarray(estimate, dtype=float)
    y = np.arange(len(est))[::-1]
    err = [est - np.asarray(lower, dtype=float), np.asarray(upper, dtype=float) - est]
    ax.errorbar(est, y, xerr=err, fmt=kwargs.pop("fmt", "o"), capsize=3, **kwargs)
    ax.set_yticks(y, labels)


# --------------------------------------------------------------------------- #
# Result and public function
# --------------------------------------------------------------------------- #
@dataclass(frozen=True, eq=False)
class CoxResult(ResultMixin):
    """Fitted Cox model of :func:`cox`.

    Attributes
    ----------
    table : DataFrame
        Coefficient table (see :meth:`coefficients`).
    loglik, loglik_null : float
        Partial log-likelihood at the estimate and at beta = 0 (unpenalised, also
        for a Firth fit).
    penalised_loglik : float or None
        Firth fits only: loglik + 0.5 log det I(beta) at the estimate.
    concordance : float
        Harrell's C of the linear predictor (R's tie handling).
    covariance : ndarray
        Model-based covariance of the estimates, I(beta)^-1.
    robust_covariance : ndarray or None
        Grouped dfbeta sandwich when ``cluster`` was given.
    n, n_events : int
    ties : str
    cluster : str or None
    firth : bool
    events_per_variable : float
    converged : bool
    iterations : int
    confidence : float
    warnings : tuple of str
    """

    table: pd.DataFrame
    loglik: float
    loglik_null: float
    penalised_loglik: float | None
    concordance: float
    covariance: np.ndarray = field(repr=False)
    robust_covariance: np.ndarray | None = field(repr=False)
    n: int
    n_events: int
    ties: str
    cluster: str | None
    firth: bool
    events_per_variable: float
    converged: bool
    iterations: int
    confidence: float
    warnings: tuple[str, ...] = ()
    _title = "Cox proportional-hazards model"

    def coefficients(self) -> pd.DataFrame:
        """``term, estimate`` (log hazard ratio) ``, se, statistic, p_value, hazard_ratio,
        hr_ci_lower, hr_ci_upper`` and ``robust_se`` with a cluster.

        With a cluster the z statistic, p-value and interval use the robust SE, as
        R's ``summary(coxph(..., cluster = ))`` does.
        """
        return self.table.copy()

    def to_frame(self) -> pd.DataFrame:
        """The coefficient table (:meth:`coefficients`)."""
        return self.coefficients()

    def summary(self) -> pd.DataFrame:
        """One row of model fit: n, events, events per covariate, log-likelihoods,
        likelihood-ratio chi-square, its df and p-value, concordance."""
        lr = 2 * (self.loglik - self.loglik_null)
        dof = len(self.table)
        return pd.DataFrame([{
            "n": self.n, "events": self.n_events,
            "events_per_variable": self.events_per_variable, "ties": self.ties,
            "firth": self.firth, "loglik": self.loglik, "loglik_null": self.loglik_null,
            "lr_statistic": lr, "lr_df": dof, "lr_p_value": float(stats.chi2.sf(lr, dof)),
            "concordance": self.concordance, "converged": self.converged}])

    def plot(self, ax=None, **kwargs):
        """Forest plot of hazard ratios with their confidence intervals (log scale)."""
        import matplotlib.pyplot as plt

        from effectstudy.style import GREY, label_axes, use_style

        tab = self.table
        with use_style():
            if ax is None:
                _, ax = plt.subplots(figsize=(6, 0.6 * len(tab) + 1.2))
            interval_rows(ax, tab["hazard_ratio"], tab["hr_ci_lower"], tab["hr_ci_upper"],
                          tab["term"].astype(str), **kwargs)
            ax.axvline(1.0, color=GREY, lw=1, ls="--")
            ax.set_xscale("log")
            label_axes(ax, x=f"hazard ratio ({self.confidence:.0%} CI)")
        return ax.figure


def cox(data: pd.DataFrame, *, time: str, event: str, covariates: Sequence[str],
        ties: Ties = "efron", cluster: str | None = None, firth: bool = False,
        confidence: float = 0.95, max_iter: int = 100) -> CoxResult:
    """Cox proportional-hazards model fitted by Newton-Raphson on the partial likelihood.

    Tied event times are handled with Efron's (1977) approximation (the default,
    as in R) or Breslow's (1974). Standard errors come from the inverse observed
    information. With ``cluster`` the robust variance of Lin & Wei (1989) is added
    as R's ``coxph(..., cluster = )`` computes it: the score residuals times the
    inverse information (dfbeta), summed within clusters, ``D'D``.

    With ``firth=True`` the partial likelihood is penalised by Jeffreys' prior,
    ``l*(beta) = l(beta) + 0.5 log det I(beta)`` (Firth 1993; Heinze & Schemper
    2001), which gives finite, less biased estimates with few events or under
    separation (monotone likelihood). The reported SEs are then the Wald SEs from
    I(beta)^-1 at the penalised estimate; Heinze & Schemper prefer profile
    penalised-likelihood intervals, which are not computed here.

    Parameters
    ----------
    data : DataFrame
        One row per client (or episode).
    time, event : str
        Follow-up time (> 0) and event indicator (1 event, 0 censored).
    covariates : sequence of str
        Numeric covariate columns (dummy-code categorical ones first).
    ties : {"efron", "breslow"}
    cluster : str, optional
        Column of cluster labels (e.g. ``programme``) for the robust SE.
    firth : bool
        Fit the Firth-penalised partial likelihood.
    confidence : float
        Level of the hazard-ratio intervals.
    max_iter : int
        Maximum Newton-Raphson iterations.

    Returns
    -------
    CoxResult
        ``.coefficients()``, ``.loglik``, ``.concordance``, ``.summary()``, ``.plot()``.

    Warns
    -----
    FewEventsWarning
        Fewer than 10 events per covariate.
    SeparationWarning
        A coefficient diverges (monotone likelihood); refit with ``firth=True``.
    ConvergenceWarning
        ``max_iter`` iterations were not enough (``converged`` is then False).

    References
    ----------
    Cox (1972); Breslow (1974); Efron (1977); Lin & Wei (1989); Harrell et al.
    (1982); Firth (1993); Heinze & Schemper (2001); Peduzzi et al. (1995).
    """
    if ties not in ("efron", "breslow"):
        raise DataError(f"ties must be 'efron' or 'breslow', got {ties!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 1:
        raise DataError(f"max_iter must be a positive whole number, got {max_iter!r}")
    z = check_confidence(confidence)
    covariates = list(covariates)
    if not covariates:
        raise DataError("cox() needs at least one covariate")
    if len(set(covariates)) != len(covariates):
        raise DataError("a covariate is listed twice")
    if firth and cluster:
        raise DataError("the cluster-robust SE is not defined for the Firth-penalised fit; "
                        "drop cluster= or firth=True", column=cluster)
    cols = [time, event] + covariates + ([cluster] if cluster else [])
    df = check_frame(data, cols)
    t = time_column(df, time)
    e = event_column(df, event)
    x = np.column_stack([numeric_column(df, c) for c in covariates])
    clusters = group_column(df, cluster) if cluster else None
    n_events = int(e.sum())
    if n_events == 0:
        raise DataError("no events: a Cox model cannot be fitted", column=event)
    for j, c in enumerate(covariates):
        if np.ptp(x[:, j]) == 0:
            raise DataError("covariate has no variance (the same value in every row)", column=c)
    xc = x - x.mean(axis=0)
    if np.linalg.matrix_rank(xc) < len(covariates):
        raise DataError(f"covariates {covariates} are collinear; drop one")

    notes: list[str] = []
    epv = events_per_variable(df, event=event, covariates=covariates, warn=False)
    if epv < _EPV_THRESHOLD:
        msg = (f"{n_events} events for {len(covariates)} covariate(s): {epv:.1f} events per "
               f"covariate (< {_EPV_THRESHOLD:g}); estimates may be biased and unstable"
               + ("" if firth else " - consider fewer covariates or cox(..., firth=True)"))
        notes.append(msg)
        warnings.warn(msg, FewEventsWarning, stacklevel=2)

    rs = _RiskSets(t, e, xc, ties)
    beta, iters, converged, infinite = _newton(rs, firth=firth, max_iter=max_iter,
                                               scale=x.std(axis=0))
    if infinite:
        names = ", ".join(covariates[j] for j in infinite)
        msg = (f"the partial likelihood is monotone in {names}: the coefficient runs off to "
               "infinity (separation: events only in one range of the covariate)")
        msg += "; refit with cox(..., firth=True)" if not firth else ""
        notes.append(msg)
        warnings.warn(msg, SeparationWarning, stacklevel=2)
    elif not converged:
        msg = (f"the partial likelihood did not converge in {iters} iteration(s) (max_iter = "
               f"{max_iter}); the estimates and standard errors are not at the maximum - raise "
               "max_iter or check the covariates")
        notes.append(msg)
        warnings.warn(msg, ConvergenceWarning, stacklevel=2)
    loglik, score, info, _ = rs.evaluate(beta)
    loglik_null = rs.evaluate(np.zeros(rs.p))[0]
    penalised = None
    if firth:
        _, _, _, s3 = rs.evaluate(beta, firth=True)
        penalised = loglik + rs.firth_terms(info, s3)[0]
    try:
        cov = np.linalg.inv(info)
    except np.linalg.LinAlgError as exc:
        raise ModelError("the Cox information matrix is singular at the estimate") from exc
    se = np.sqrt(np.diag(cov))
    robust_cov = None
    use_se = se
    if clusters is not None:
        resid = rs.score_residuals(beta)
        dfbeta = resid @ cov
        codes = pd.factorize(clusters[rs.order])[0]
        grouped = np.zeros((codes.max() + 1, rs.p))
        np.add.at(grouped, codes, dfbeta)
        robust_cov = grouped.T @ grouped
        use_se = np.sqrt(np.diag(robust_cov))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zstat = beta / use_se
        table = pd.DataFrame({
            "term": covariates, "estimate": beta, "se": se, "statistic": zstat,
            "p_value": 2 * stats.norm.sf(np.abs(zstat)), "hazard_ratio": np.exp(beta),
            "hr_ci_lower": np.exp(beta - z * use_se), "hr_ci_upper": np.exp(beta + z * use_se)})
    if robust_cov is not None:
        table.insert(3, "robust_se", use_se)
    lp = np.empty(len(t))
    lp[rs.order] = rs.x @ beta
    return CoxResult(
        table=table, loglik=loglik, loglik_null=float(loglik_null), penalised_loglik=penalised,
        concordance=_concordance(t, e, lp), covariance=cov, robust_covariance=robust_cov,
        n=len(t), n_events=n_events, ties=ties, cluster=cluster, firth=firth,
        events_per_variable=epv, converged=converged, iterations=iters,
        confidence=float(confidence), warnings=tuple(notes))
