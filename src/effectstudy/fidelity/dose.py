"""Dose-response, tailoring and fidelity as a moderator (issue 12, section 4).

All three analyses are observational: dose is not randomised (girls who stay longer or
engage more get more), tailored components go to the girls judged to need them, and
programme fidelity varies over six programmes only. The results describe associations.

References
----------
Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics*, 53(3), 983-997.

Singer, J. D. & Willett, J. B. (2003). *Applied longitudinal data analysis: modeling
change and event occurrence* (ch. 5, time-varying predictors). Oxford University Press.

Holm, S. (1979). A simple sequentially rejective multiple test procedure.
*Scandinavian Journal of Statistics*, 6(2), 65-70.

Welch, B. L. (1947). The generalization of "Student's" problem when several different
population variances are involved. *Biometrika*, 34(1-2), 28-35.

Bell, R. M. & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
regression with multi-stage samples. *Survey Methodology*, 28(2), 169-181.

Pustejovsky, J. E. & Tipton, E. (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models. *Journal of
Business & Economic Statistics*, 36(4), 672-683.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import DataError, ModelError
from effectstudy.fidelity._common import (
    integrity_dictionary,
    prescribed_components,
    require_columns,
)
from effectstudy.fidelity.delivery import validate_logs
from effectstudy.multilevel.lmm import FewClustersWarning, fit
from effectstudy.multilevel.robust import cluster_robust
from effectstudy.multilevel.trends import slopes
from effectstudy.power import GrowthDesign, simulate

__all__ = ["DoseResponseResult", "TailoringResult", "ModeratorResult", "cumulative_dose",
           "dose_response", "tailoring", "fidelity_moderator", "ADJUSTMENTS",
           "SIX_PROGRAMMES_SENTENCE"]

#: Multiplicity corrections :func:`tailoring` offers (statsmodels ``multipletests`` names).
ADJUSTMENTS = ("holm", "bonferroni", "fdr_bh", "none")

#: The sentence every fidelity-moderator result carries.
SIX_PROGRAMMES_SENTENCE = ("With {k} programmes, a programme-level fidelity effect cannot be "
                           "established: fidelity varies between {k} programmes only, so it is "
                           "confounded with everything else that differs between them, and the "
                           "moderator test has at most {df} degrees of freedom; neither a "
                           "significant nor a null result settles whether fidelity matters.")


def cumulative_dose(table: pd.DataFrame, logs: pd.DataFrame, *, time: str = "time",
                    client: str = "client", dose: str = "dose", unit: str = "sessions"
                    ) -> pd.DataFrame:
    """Add the client's cumulative received dose up to each occasion.

    ``dose`` at an occasion ``time = t`` (weeks since intake) is the number of
    delivered sessions (``unit="sessions"``) or minutes (``unit="minutes"``) in log
    weeks ``1..t`` (the log's week ``w`` is the w-th week in care). Clients without log
    rows get 0.
    """
    require_columns(table, (client, time), "outcome table")
    require_columns(logs, ("client", "week", "delivered", "minutes"), "delivery log")
    if unit not in ("sessions", "minutes"):
        raise DataError(f"unit must be 'sessions' or 'minutes', not {unit!r}")
    dl = logs[logs["delivered"] == 1]
    amount = dl.groupby(["client", "week"]).size() if unit == "sessions" \
        else dl.groupby(["client", "week"])["minutes"].sum()
    cum: dict[Any, tuple[np.ndarray, np.ndarray]] = {}
    for cl, s in amount.groupby(level=0):
        weeks = s.index.get_level_values(1).to_numpy(float)
        order = np.argsort(weeks)
        cum[cl] = (weeks[order], np.cumsum(s.to_numpy(float)[order]))
    out = table.copy()
    values = np.zeros(len(out))
    for i, (cl, t) in enumerate(zip(out[client], out[time].astype(float), strict=True)):
        if cl in cum:
            w, c = cum[cl]
            k = np.searchsorted(w, t, side="right")
            values[i] = c[k - 1] if k > 0 else 0.0
    out[dose] = values
    return out


# --------------------------------------------------------------------------- #
# Dose-response
# --------------------------------------------------------------------------- #
@dataclass
class DoseResponseResult:
    """Dose-response fit; see :func:`dose_response`."""

    formula: str
    coefficients: pd.DataFrame
    dose: pd.Series
    by_group: pd.DataFrame | None
    group_formula: str | None
    data: pd.DataFrame
    confidence: float
    dose_column: str
    notes: list[str] = field(default_factory=list)

    def curve(self, lower: float = 0.0, upper: float | None = None,
              points: int = 50) -> pd.DataFrame:
        """The dose-response line with its Kenward-Roger band on a grid of doses.

        ``estimate = b_dose x dose`` is the expected difference in the outcome between
        a client with this cumulative dose and one with none, at the same week in care
        (and programme). Its variance is ``dose**2 var(b_dose)`` with the df of
        ``b_dose``, so the Kenward & Roger (1997) interval of that difference at each dose
        is ``(b_dose -+ t se) x dose``: ``ci_lower`` and ``ci_upper``. The grid runs from
        ``lower`` to ``upper`` (default: the largest observed dose). The extremes of the
        observed range are single clients' doses: a caller who publishes the curve
        chooses a range that shows none (see :mod:`effectstudy.study.integrity`).

        Returns
        -------
        pandas.DataFrame
            ``points`` rows: ``dose, estimate, ci_lower, ci_upper``.
        """
        observed = self.data[self.dose_column].to_numpy(float)
        if upper is None:
            upper = float(np.nanmax(observed)) if len(observed) else 1.0
        if not (np.isfinite(lower) and np.isfinite(upper) and upper > lower):
            raise DataError("the dose range of the curve must run from a lower to a higher dose")
        if int(points) < 2:
            raise DataError("a dose-response curve needs at least two points")
        grid = np.linspace(float(lower), float(upper), int(points))
        b, lo, hi = (float(self.dose[k]) for k in ("estimate", "ci_lower", "ci_upper"))
        return pd.DataFrame({"dose": grid, "estimate": b * grid,
                             "ci_lower": np.minimum(lo * grid, hi * grid),
                             "ci_upper": np.maximum(lo * grid, hi * grid)})

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Expected difference in the outcome by cumulative dose (same week), with the KR band.

        The line and band of :meth:`curve` over the observed dose range (observed doses
        as a rug, so for internal use only). ``kwargs`` go to ``ax.plot``. Returns the
        Figure.
        """
        import matplotlib.pyplot as plt

        if ax is None:
            fig, ax = plt.subplots(figsize=(6.5, 4.2))
        else:
            fig = ax.figure
        observed = self.data[self.dose_column].to_numpy(float)
        cv = self.curve(points=100)
        (line,) = ax.plot(cv["dose"], cv["estimate"], **kwargs)
        ax.fill_between(cv["dose"], cv["ci_lower"], cv["ci_upper"], color=line.get_color(),
                        alpha=0.2, label=f"{self.confidence:.0%} interval (Kenward-Roger)")
        ax.plot(observed, np.full_like(observed, ax.get_ylim()[0]), "|", color="grey", alpha=0.3)
        ax.axhline(0.0, color="black", lw=0.6)
        ax.set_xlabel(f"cumulative received dose ({self.dose_column})")
        ax.set_ylabel("difference in outcome vs. no dose, same week")
        ax.set_title("Dose-response (observational, exploratory)")
        ax.legend(fontsize=8)
        return fig


def dose_response(table: pd.DataFrame, logs: pd.DataFrame | None = None, *,
                  outcome: str = "outcome", time: str = "time", client: str = "client",
                  programme: str | None = "programme", dose: str = "dose", unit: str = "sessions",
                  random_slope: bool = True, groups: int = 3, confidence: float = 0.95
                  ) -> DoseResponseResult:
    """Cumulative received dose as a time-varying predictor of the growth curve.

    The model (Singer & Willett 2003, time-varying predictors) is::

        outcome ~ time + dose [+ programme] + (1 + time | client)

    fitted by REML with :func:`effectstudy.multilevel.fit`; the dose coefficient (change
    in the outcome per unit of cumulative dose at the same week) is tested with
    Kenward & Roger (1997) df. Programmes enter as fixed intercepts when ``programme``
    is given. ``multilevel.slopes`` then gives the time slope per dose group (clients
    split into ``groups`` quantile groups of their dose rate: final dose / weeks
    observed), from ``outcome ~ time * dose_group + (1 + time | client)``.

    Parameters
    ----------
    table
        Long outcome table, one row per client x occasion.
    logs
        Delivery log; when given, ``dose`` is computed with :func:`cumulative_dose`
        (otherwise ``table`` must have the ``dose`` column).
    random_slope
        ``(1 + time | client)`` (default) or ``(1 | client)``.
    groups
        Number of dose groups for the slopes (0: skip).
    confidence
        Confidence level.

    Returns
    -------
    DoseResponseResult
        ``coefficients`` (the KR table), ``dose`` (its row), ``by_group`` (slopes per dose
        group or None), ``plot()``.
    """
    if not 0 < confidence < 1:
        raise DataError("confidence must lie between 0 and 1")
    cols = [outcome, time, client] + ([programme] if programme else [])
    require_columns(table, tuple(cols), "outcome table")
    data = cumulative_dose(table, logs, time=time, client=client, dose=dose, unit=unit) \
        if logs is not None else table.copy()
    require_columns(data, (dose,), "outcome table")
    data = data.dropna(subset=[*cols, dose]).reset_index(drop=True)
    if data[client].nunique() < 3:
        raise DataError("dose-response needs at least three clients")
    if data[dose].nunique() < 2:
        raise DataError("the received dose does not vary", column=dose)
    re = f"(1 + {time} | {client})" if random_slope else f"(1 | {client})"
    fixed = f"{time} + {dose}" + (f" + {programme}" if programme and data[programme].nunique() > 1
                                  else "")
    formula = f"{outcome} ~ {fixed} + {re}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        res = fit(formula, data)
        coefs = res.coefficients(ddf="kenward-roger", confidence=confidence)
    row = coefs.set_index("term").loc[dose]
    notes = [f"Dose: cumulative delivered {unit} up to the occasion; coefficient per unit, "
             f"{confidence:.0%} Kenward-Roger interval.",
             "Observational: dose is not randomised (who stays longer or engages more gets more); "
             "the coefficient is an association, adjusted for time in care"
             + (" and programme." if programme else ".")]
    by_group, gformula = None, None
    if groups and groups >= 2:
        last = data.sort_values(time).groupby(client).tail(1)
        rate = (last[dose] / last[time].where(last[time] > 0)).fillna(0.0)
        labels = [f"dose {k + 1}/{groups}" for k in range(groups)]
        try:
            grp = pd.qcut(rate.rank(method="first"), groups, labels=labels)
        except ValueError:
            grp = None
        if grp is not None:
            data["dose_group"] = data[client].map(dict(zip(last[client], grp.astype(str),
                                                          strict=True)))
            gformula = f"{outcome} ~ {time} * dose_group + {re}"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FewClustersWarning)
                    gfit = fit(gformula, data)
                by_group = slopes(gfit, var=time, by="dose_group", ddf="kenward-roger",
                                  confidence=confidence)
            except ModelError as exc:
                notes.append(f"Slopes by dose group could not be fitted: {exc}")
            notes.append(f"Dose groups: {groups} quantile groups of the clients' dose rate "
                         "(final cumulative dose / weeks observed).")
    return DoseResponseResult(formula=formula, coefficients=coefs, dose=row, by_group=by_group,
                              group_formula=gformula, data=data, confidence=confidence,
                              dose_column=dose, notes=notes)


# --------------------------------------------------------------------------- #
# Tailoring
# --------------------------------------------------------------------------- #
@dataclass
class TailoringResult:
    """Tailored components received and their association with change; see :func:`tailoring`."""

    matrix: pd.DataFrame
    summary: pd.DataFrame
    tests: pd.DataFrame
    n_tests: int
    adjustment: str
    notes: list[str] = field(default_factory=list)


def _client_change(table: pd.DataFrame, outcome: str, time: str, client: str) -> pd.Series:
    """Per client the OLS slope of the outcome on time (per week); None below two times."""
    out = {}
    for cl, g in table.groupby(client, sort=False):
        t = g[time].to_numpy(float)
        y = g[outcome].to_numpy(float)
        ok = ~(np.isnan(t) | np.isnan(y))
        t, y = t[ok], y[ok]
        if len(np.unique(t)) >= 2:
            out[cl] = float(np.polyfit(t, y, 1)[0])
    return pd.Series(out, name="change", dtype=float)


def tailoring(logs: pd.DataFrame, table: pd.DataFrame, dictionary: Any = None, *,
              outcome: str = "outcome", time: str = "time", client: str = "client",
              adjust: str = "holm", confidence: float = 0.95, min_group: int = 2
              ) -> TailoringResult:
    """The client x tailored-component matrix and its (exploratory) association with change.

    ``matrix``: one row per client, one 0/1 column per tailored component of her
    programme (1: the component was delivered at least once in its phase; 0: not
    prescribed or not delivered; NaN: the programme has no such component).
    ``summary``: per programme and tailored component the number of clients, of clients
    prescribed it and of clients who received it. ``tests``: per programme and tailored
    component with at least ``min_group`` clients in both groups, the difference in mean
    change (OLS slope of the outcome per week, per client) between clients who received
    it and clients who did not, with Welch's (1947) t-test and interval; ``p_adjusted``
    applies ``adjust`` (Holm 1979 by default) across all tests.

    These are exploratory: tailored components go to the girls judged to need them
    (confounding by indication), the groups are tiny and many tests are run; the number
    of tests is stated in ``n_tests`` and in the notes.
    """
    if adjust not in ADJUSTMENTS:
        raise DataError(f"adjust must be one of {list(ADJUSTMENTS)}, not {adjust!r}")
    require_columns(table, (client, time, outcome), "outcome table")
    integ = integrity_dictionary(dictionary)
    clean, rejected = validate_logs(logs, integ)
    if len(rejected):
        raise DataError(f"the delivery log has {len(rejected)} invalid row(s); run validate_logs first")
    pres = prescribed_components(clean, integ)
    tail = pres[pres["delivery"] == "tailored"]
    clients = clean.groupby("client")["programme"].first()
    comps = sorted({c.id for cs in integ.components.values() for c in cs if c.delivery == "tailored"})
    matrix = pd.DataFrame(index=clients.index, columns=comps, dtype=float)
    for cl, prog in clients.items():
        own = {c.id for c in integ.components.get(prog, ()) if c.delivery == "tailored"}
        for comp in own:
            matrix.loc[cl, comp] = 0.0
    for r in tail.itertuples(index=False):
        matrix.loc[r.client, r.component] = float(r.delivered)
    matrix.insert(0, "programme", clients)
    matrix.index.name = "client"
    rows = []
    for prog, cs in integ.components.items():
        members = matrix[matrix["programme"] == prog]
        if members.empty:
            continue
        for c in cs:
            if c.delivery != "tailored":
                continue
            n_pres = int(((tail["programme"] == prog) & (tail["component"] == c.id)).sum())
            rows.append({"programme": prog, "component": c.id, "n_clients": len(members),
                         "prescribed": n_pres, "received": int(members[c.id].sum()),
                         "share_received": float(members[c.id].mean())})
    summary = pd.DataFrame(rows, columns=["programme", "component", "n_clients", "prescribed",
                                          "received", "share_received"])
    change = _client_change(table, outcome, time, client)
    tests = []
    for r in summary.itertuples(index=False):
        members = matrix[matrix["programme"] == r.programme]
        got = change.reindex(members.index[members[r.component] == 1]).dropna()
        not_got = change.reindex(members.index[members[r.component] == 0]).dropna()
        if len(got) < min_group or len(not_got) < min_group:
            continue
        diff = got.mean() - not_got.mean()
        va, vb = got.var(ddof=1) / len(got), not_got.var(ddof=1) / len(not_got)
        se = float(np.sqrt(va + vb))
        if se == 0:
            continue
        df = (va + vb) ** 2 / (va**2 / (len(got) - 1) + vb**2 / (len(not_got) - 1))
        tval = diff / se
        crit = stats.t.ppf(0.5 + confidence / 2, df)
        tests.append({"programme": r.programme, "component": r.component, "n_received": len(got),
                      "n_not": len(not_got), "difference": diff, "se": se, "df": df,
                      "statistic": tval, "p_value": float(2 * stats.t.sf(abs(tval), df)),
                      "ci_lower": diff - crit * se, "ci_upper": diff + crit * se})
    tests_df = pd.DataFrame(tests, columns=["programme", "component", "n_received", "n_not",
                                            "difference", "se", "df", "statistic", "p_value",
                                            "ci_lower", "ci_upper"])
    n_tests = len(tests_df)
    if n_tests and adjust != "none":
        from statsmodels.stats.multitest import multipletests

        tests_df["p_adjusted"] = multipletests(tests_df["p_value"].to_numpy(), method=adjust)[1]
    else:
        tests_df["p_adjusted"] = tests_df["p_value"]
    tests_df["adjustment"] = adjust
    notes = [f"Exploratory: {n_tests} tests (one per programme and tailored component with at "
             f"least {min_group} clients in both groups); p-values adjusted with {adjust} across "
             "all of them. Tailored components go to the girls judged to need them, so a "
             "difference is not an effect of the component.",
             "Change: each client's OLS slope of the outcome per week."]
    return TailoringResult(matrix=matrix.reset_index(), summary=summary, tests=tests_df,
                           n_tests=n_tests, adjustment=adjust, notes=notes)


# --------------------------------------------------------------------------- #
# Fidelity as moderator
# --------------------------------------------------------------------------- #
@dataclass
class ModeratorResult:
    """Programme fidelity as a moderator of the programme slopes; see :func:`fidelity_moderator`."""

    formula: str
    coefficients: pd.DataFrame
    moderator: pd.Series
    cr2: pd.DataFrame | None
    power: pd.DataFrame | None
    programmes_for_80: int | None
    n_programmes: int
    sentence: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class _ProgrammeSlopeDesign(GrowthDesign):
    """GrowthDesign plus an uncorrelated programme random slope (``(0 + time | programme)``).

    A moderator of the programme slopes is tested against the between-programme slope
    variance; a design without it would overstate the power.
    """

    sd_programme_slope: float = 0.0

    def analysis_formula(self) -> str:
        formula = super().analysis_formula()
        if self.sd_programme_slope > 0:
            formula += f" + (0 + {self.time} | {self.programme})"
        return formula

    def true_covariances(self) -> list[np.ndarray]:
        """One covariance per random term, in the order the analysis model builds them."""
        c = self.cor_intercept_slope * self.sd_intercept * self.sd_slope
        out = []
        for term in self.model().terms:
            names = tuple(term.col_names)
            if term.name == self.programme:
                sd = self.sd_programme if names == ("(Intercept)",) else self.sd_programme_slope
                out.append(np.array([[sd**2]]))
            elif len(names) == 2:
                out.append(np.array([[self.sd_intercept**2, c], [c, self.sd_slope**2]]))
            else:
                out.append(np.array([[self.sd_intercept**2]]))
        return out


def _moderator_power(n_programmes: tuple[int, ...], effect: float, *,
                     clients_per_programme: int, weeks: tuple[float, ...], nsim: int, root: int,
                     n_jobs: int, sd_programme: float, sd_programme_slope: float,
                     sd_intercept: float, sd_slope: float, sd_residual: float) -> pd.DataFrame:
    design_cls = _ProgrammeSlopeDesign
    rows = []
    for k in n_programmes:
        base = design_cls.planned(programmes=k, clients_per_programme=clients_per_programme,
                                  weeks=list(weeks), dropout=0.25, rng=root)
        layout = base.layout.copy()
        # fidelity spread evenly over the programmes, standardised (mean 0, SD 1)
        levels = np.linspace(-1.0, 1.0, k)
        levels = levels / levels.std(ddof=1)
        layout["fidelity"] = layout["programme"].map({f"P{i + 1}": levels[i] for i in range(k)})
        design = design_cls(layout=layout, formula="y ~ time * fidelity",
                            fixed={"Intercept": 50.0, "time": -0.1, "time:fidelity": effect},
                            sd_programme=sd_programme, sd_programme_slope=sd_programme_slope,
                            sd_intercept=sd_intercept, sd_slope=sd_slope, cor_intercept_slope=0.0,
                            sd_residual=sd_residual, test_term="time:fidelity",
                            ddf="kenward-roger", name=f"{k} programmes")
        res = simulate(design, nsim=nsim, rng=root, n_jobs=n_jobs, progress=False)
        rows.append({"programmes": k, "power": res.power, "ci_lower": res.ci_lower,
                     "ci_upper": res.ci_upper, "nsim": nsim})
    return pd.DataFrame(rows)


def fidelity_moderator(table: pd.DataFrame, fidelity: pd.DataFrame | pd.Series, *,
                       outcome: str = "outcome", time: str = "time", client: str = "client",
                       programme: str = "programme", score: str = "score",
                       confidence: float = 0.95, cr2: bool = True,
                       power_programmes: tuple[int, ...] | None = (6, 12, 24, 48),
                       power_effect: float | None = None, nsim: int = 200,
                       rng: int | np.random.Generator = 1,
                       n_jobs: int = 1) -> ModeratorResult:
    """Programme-level fidelity as a moderator of the programme's time slope.

    Model (REML, :func:`effectstudy.multilevel.fit`)::

        outcome ~ time * fidelity + (1 + time || programme) + (1 + time | client)

    with ``fidelity`` the programme's score, centred. The programme random slope makes
    ``time:fidelity`` a programme-level test: with Kenward & Roger (1997) df it has at
    most ``k - 2`` (four with six programmes), as it should. As a check the same fit's
    CR2 cluster-robust test with programmes as clusters is given (Bell & McCaffrey 2002;
    Pustejovsky & Tipton 2018; :func:`effectstudy.multilevel.cluster_robust`). The power
    for such a moderator is simulated with :func:`effectstudy.power.simulate` (a
    ``GrowthDesign`` extended with the programme random slope, KR test of
    ``time:fidelity``) for ``power_programmes`` programmes of the table's median size,
    with the variance components of the fit (programme slope SD ``tau`` at least a
    quarter of the average slope, as a singular fit gives 0), at ``power_effect`` slope
    units per unit of fidelity (default: ``tau / 2`` per SD of the programmes' fidelity,
    i.e. fidelity explaining a fifth of the between-programme slope variance). ``programmes_for_80`` is the smallest simulated number of programmes that
    reaches 80% power (None if none does). The power is planning information, never
    "observed power" for the study at hand.

    Parameters
    ----------
    fidelity
        One score per programme: a Series indexed by programme, or a frame with
        ``programme`` and ``score`` columns (e.g. :func:`fidelity_score`'s ``scores``).
    power_programmes
        Numbers of programmes to simulate power for; None skips the simulation.
    nsim, rng, n_jobs
        Replicates, randomness (an int root seed or a ``numpy.random.Generator`` from
        which one is drawn; the same root is used for every number of programmes) and
        processes of the power simulation.

    Returns
    -------
    ModeratorResult
        Including ``sentence``: six (or however few) programmes cannot establish a
        fidelity effect.
    """
    if not 0 < confidence < 1:
        raise DataError("confidence must lie between 0 and 1")
    require_columns(table, (outcome, time, client, programme), "outcome table")
    if isinstance(fidelity, pd.DataFrame):
        require_columns(fidelity, (programme, score), "fidelity scores")
        fid = fidelity.set_index(programme)[score]
    else:
        fid = fidelity
    fid = fid.astype(float)
    data = table.dropna(subset=[outcome, time, client, programme]).copy()
    missing = sorted(set(data[programme]) - set(fid.dropna().index))
    if missing:
        raise DataError(f"no fidelity score for programme {missing[0]!r}", column=programme)
    k = int(data[programme].nunique())
    if k < 3:
        raise DataError("a fidelity moderator needs at least three programmes")
    sd_f = float(fid.loc[sorted(set(data[programme]))].std(ddof=1))
    if not sd_f > 0:
        raise DataError("the programmes' fidelity scores do not vary", column=score)
    centre = float(fid.loc[sorted(set(data[programme]))].mean())
    data["fidelity"] = data[programme].map(fid) - centre
    formula = (f"{outcome} ~ {time} * fidelity + (1 + {time} || {programme}) "
               f"+ (1 + {time} | {client})")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        res = fit(formula, data)
        coefs = res.coefficients(ddf="kenward-roger", confidence=confidence)
    term = f"{time}:fidelity"
    row = coefs.set_index("term").loc[term]
    notes = [f"{term}: change in the time slope per unit of programme fidelity (centred at "
             f"{centre:.3g}); Kenward-Roger df = {row['df']:.2f} with {k} programmes."]
    cr2_frame = None
    if cr2:
        try:
            rob = cluster_robust(res, cluster=programme)
            cr2_frame = rob.coefficients()
            notes.append("CR2 check: cluster-robust (programmes as clusters) Satterthwaite test of "
                         "the same fit; with so few clusters its df are very small.")
        except Exception as exc:  # noqa: BLE001 - the check is optional; say why it is missing
            notes.append(f"CR2 check not available: {type(exc).__name__}")
    power, needed = None, None
    vc = res.variance_components().set_index("component")

    def _sd(name: str, default: float) -> float:
        return float(vc.loc[name, "estimate"]) if name in vc.index else default

    time_slope = float(coefs.set_index("term").loc[time, "estimate"])
    tau = max(_sd(f"{programme}:{time}", 0.0), 0.25 * abs(time_slope))
    effect = power_effect if power_effect is not None else 0.5 * tau / sd_f
    if power_programmes:
        root = int(rng.integers(0, 2**63)) if isinstance(rng, np.random.Generator) else int(rng)
        sizes = data.groupby(programme)[client].nunique()
        occ = sorted(data[time].unique())
        weeks = tuple(float(w) for w in np.linspace(min(occ), max(occ), min(len(occ), 6)))
        # per SD of fidelity in the simulated design (its fidelity is standardised)
        power = _moderator_power(
            tuple(sorted(power_programmes)), effect * sd_f,
            clients_per_programme=max(2, int(sizes.median())), weeks=weeks, nsim=nsim, root=root,
            n_jobs=n_jobs, sd_programme=max(_sd(f"{programme}:(Intercept)", 1.0), 1e-3),
            sd_programme_slope=tau,
            sd_intercept=max(_sd(f"{client}:(Intercept)", 1.0), 1e-3),
            sd_slope=_sd(f"{client}:{time}", 0.0), sd_residual=max(_sd("Residual", 1.0), 1e-3))
        reached = power[power["power"] >= 0.8]
        needed = int(reached["programmes"].min()) if len(reached) else None
        notes.append(f"Power: {nsim} simulated studies per number of programmes (effectstudy.power "
                     f"GrowthDesign with a programme random slope), effect {effect * sd_f:.3g} "
                     "slope units per SD of fidelity (half the SD of the programme slopes), KR test at "
                     "alpha 0.05; "
                     + (f"{needed} programmes reach 80%." if needed else
                        f"none of {list(power['programmes'])} programmes reaches 80%."))
    return ModeratorResult(formula=formula, coefficients=coefs, moderator=row, cr2=cr2_frame,
                           power=power, programmes_for_80=needed, n_programmes=k,
                           sentence=SIX_PROGRAMMES_SENTENCE.format(k=k, df=k - 2), notes=notes)
