"""Multiple imputation of missing outcome scores of clients nested in programmes.

:func:`impute` fills the client x occasion cells the study design planned but did
not observe (a girl who absconded, was transferred or refused a questionnaire) with
``m`` draws from a two-level normal imputation model, as R's ``pan`` and ``jomo``
do, and returns the ``m`` completed long tables. :func:`analyse_imputed` runs any
analysis on each completed table and pools the results with Rubin's rules
(:func:`effectstudy.missing.pool`); :func:`growth_analysis` is a ready analysis for
:func:`effectstudy.multilevel.fit` growth models.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from numbers import Integral

import numpy as np
import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError, SpecError
from effectstudy.missing.pooling import pool

__all__ = ["ImputationResult", "analyse_imputed", "growth_analysis", "impute"]

#: Column added to every completed table: True where the outcome was imputed.
IMPUTED_COLUMN = "imputed"
#: Inverse-Wishart prior of the random-effects covariance, on the standardised scale:
#: ``nu0 = q + 1`` degrees of freedom and scale ``PSI_PRIOR_SCALE * I_q``.
PSI_PRIOR_SCALE = 0.1


# --------------------------------------------------------------------------------------
# random numbers


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """``rng`` as a :class:`numpy.random.Generator` (a Generator is used as is)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise SpecError(f"rng must be an int, a numpy.random.Generator or None, got "
                    f"{type(rng).__name__}")


# --------------------------------------------------------------------------------------
# the Gibbs sampler


@dataclass
class _Draws:
    """What :func:`_gibbs` keeps: completed outcomes per client and parameter traces."""

    y: list[list[np.ndarray]]  # per kept draw, per client: the completed outcome vector
    beta: np.ndarray  # (iterations, p)
    sigma2: np.ndarray  # (iterations,)
    psi: np.ndarray  # (iterations, q, q)


def _draw_inverse_wishart(df: float, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One draw of an inverse-Wishart(df, scale) matrix (mean ``scale / (df - q - 1)``)."""
    # W ~ Wishart(df, scale^-1)  =>  W^-1 ~ inverse-Wishart(df, scale)
    q = scale.shape[0]
    chol = np.linalg.cholesky(np.linalg.inv(scale))
    # Bartlett decomposition: W = L A A' L', A lower triangular.
    a = np.zeros((q, q))
    for i in range(q):
        a[i, i] = math.sqrt(rng.chisquare(df - i))
        a[i, :i] = rng.standard_normal(i)
    la = chol @ a
    return np.linalg.inv(la @ la.T)


def _gibbs(
    X: Sequence[np.ndarray],
    Z: Sequence[np.ndarray],
    y: Sequence[np.ndarray],
    *,
    n_iter: int,
    keep: Sequence[int],
    rng: np.random.Generator,
    psi_prior: tuple[float, np.ndarray] | None = None,
    fix_psi: np.ndarray | None = None,
    fix_sigma2: float | None = None,
) -> _Draws:
    """Data-augmentation Gibbs sampler of ``y_i = X_i beta + Z_i b_i + e_i``.

    ``b_i ~ N(0, Psi)``, ``e_i ~ N(0, sigma2 I)``; flat prior on ``beta``,
    ``p(sigma2) ∝ 1/sigma2``, ``Psi ~ inverse-Wishart(nu0, S0)``. ``y_i`` holds NaN
    where missing. One iteration draws, in turn (Schafer & Yucel 2002):

    1. ``beta | y, Psi, sigma2`` with ``b`` integrated out: normal with mean
       ``(sum X'V^-1X)^-1 sum X'V^-1 y`` and covariance ``(sum X'V^-1X)^-1``,
       ``V_i = Z_i Psi Z_i' + sigma2 I`` (collapsing ``b`` speeds up mixing);
    2. ``b_i | beta, y, Psi, sigma2``: normal with covariance
       ``C_i = (Psi^-1 + Z_i'Z_i/sigma2)^-1`` and mean ``C_i Z_i'(y_i - X_i beta)/sigma2``;
    3. ``Psi | b ~ inverse-Wishart(nu0 + n, S0 + sum b_i b_i')``;
    4. ``sigma2 | beta, b, y ~ RSS / chi2(N)``;
    5. the missing ``y_ij | beta, b_i, sigma2 ~ N(x_ij beta + z_ij b_i, sigma2)``.

    ``fix_psi`` / ``fix_sigma2`` hold those parameters fixed (steps 3 / 4 skipped):
    used by the tests, where the posterior of ``beta`` and the predictive
    distribution of a missing ``y`` are then normal in closed form.
    ``keep``: iteration numbers (0-based) after which the completed ``y`` are kept.
    """
    n_clients = len(y)
    p = X[0].shape[1]
    q = Z[0].shape[1]
    if psi_prior is None:
        psi_prior = (q + 1.0, PSI_PRIOR_SCALE * np.eye(q))
    nu0, s0 = psi_prior
    # Batch the clients by their number of planned cells (vectorised linear algebra).
    lengths = np.array([len(v) for v in y])
    groups = []
    for n in np.unique(lengths):
        idx = np.flatnonzero(lengths == n)
        yy = np.stack([np.asarray(y[i], dtype=float) for i in idx])
        groups.append({
            "idx": idx,
            "X": np.stack([X[i] for i in idx]),
            "Z": np.stack([Z[i] for i in idx]),
            "y": yy,
            "miss": np.isnan(yy),
        })
    n_total = int(lengths.sum())
    # Starting values: OLS on the observed cells.
    x_obs = np.vstack([g["X"][~g["miss"]] for g in groups])
    y_obs = np.concatenate([g["y"][~g["miss"]] for g in groups])
    beta, *_ = np.linalg.lstsq(x_obs, y_obs, rcond=None)
    resid = y_obs - x_obs @ beta
    sigma2 = float(fix_sigma2) if fix_sigma2 is not None else max(float(resid.var()), 1e-8)
    psi = (np.array(fix_psi, dtype=float) if fix_psi is not None
           else np.eye(q) * 0.5 * sigma2)
    for g in groups:
        fill = np.einsum("knp,p->kn", g["X"], beta)
        g["y"][g["miss"]] = fill[g["miss"]]
        g["b"] = np.zeros((len(g["idx"]), q))
    keep_set = {int(k) for k in keep}
    kept: list[list[np.ndarray]] = []
    betas = np.empty((n_iter, p))
    sig = np.empty(n_iter)
    psis = np.empty((n_iter, q, q))
    for it in range(n_iter):
        # 1. beta | y, Psi, sigma2 (b integrated out)
        a = np.zeros((p, p))
        c = np.zeros(p)
        for g in groups:
            zt = np.swapaxes(g["Z"], 1, 2)
            v = g["Z"] @ psi @ zt + sigma2 * np.eye(g["y"].shape[1])
            vinv = np.linalg.inv(v)
            xv = np.swapaxes(g["X"], 1, 2) @ vinv  # (k, p, n)
            a += np.einsum("kpn,knr->pr", xv, g["X"])
            c += np.einsum("kpn,kn->p", xv, g["y"])
        a = (a + a.T) / 2.0
        la = np.linalg.cholesky(a)
        mean = np.linalg.solve(a, c)
        beta = mean + np.linalg.solve(la.T, rng.standard_normal(p))
        # 2. b_i | beta, y, Psi, sigma2
        psi_inv = np.linalg.inv(psi)
        ssb = np.zeros((q, q))
        rss = 0.0
        for g in groups:
            r = g["y"] - np.einsum("knp,p->kn", g["X"], beta)
            zt = np.swapaxes(g["Z"], 1, 2)
            prec = psi_inv + (zt @ g["Z"]) / sigma2  # (k, q, q)
            cov = np.linalg.inv(prec)
            cov = (cov + np.swapaxes(cov, 1, 2)) / 2.0
            mb = np.einsum("kqr,kr->kq", cov, np.einsum("kqn,kn->kq", zt, r)) / sigma2
            lc = np.linalg.cholesky(cov)
            g["b"] = mb + np.einsum("kqr,kr->kq", lc, rng.standard_normal(mb.shape))
            ssb += g["b"].T @ g["b"]
            e = r - np.einsum("knq,kq->kn", g["Z"], g["b"])
            rss += float(np.sum(e * e))
        # 3. Psi | b
        if fix_psi is None:
            psi = _draw_inverse_wishart(nu0 + n_clients, s0 + ssb, rng)
        # 4. sigma2 | beta, b, y
        if fix_sigma2 is None:
            sigma2 = rss / rng.chisquare(n_total)
        # 5. missing y | beta, b, sigma2
        for g in groups:
            if not g["miss"].any():
                continue
            mu = np.einsum("knp,p->kn", g["X"], beta) + np.einsum("knq,kq->kn", g["Z"], g["b"])
            draw = mu + math.sqrt(sigma2) * rng.standard_normal(mu.shape)
            g["y"][g["miss"]] = draw[g["miss"]]
        betas[it] = beta
        sig[it] = sigma2
        psis[it] = psi
        if it in keep_set:
            per_client: list[np.ndarray] = [np.empty(0)] * n_clients
            for g in groups:
                for row, i in enumerate(g["idx"]):
                    per_client[i] = g["y"][row].copy()
            kept.append(per_client)
    return _Draws(y=kept, beta=betas, sigma2=sig, psi=psis)


# --------------------------------------------------------------------------------------
# the planned grid


def _check_columns(table: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(table, pd.DataFrame):
        raise DataError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    for col in columns:
        if col not in table.columns:
            raise DataError("table has no such column", column=col)


def _numeric(table: pd.DataFrame, col: str, *, allow_nan: bool) -> np.ndarray:
    values = pd.to_numeric(table[col], errors="coerce").astype(float).to_numpy()
    bad = np.isnan(values) & table[col].notna().to_numpy()
    if bad.any():
        raise DataError("non-numeric value", row=int(np.flatnonzero(bad)[0]), column=col)
    if np.isinf(values).any():
        raise DataError("infinite value", row=int(np.flatnonzero(np.isinf(values))[0]),
                        column=col)
    if not allow_nan and np.isnan(values).any():
        raise DataError("missing value (NaN)", row=int(np.flatnonzero(np.isnan(values))[0]),
                        column=col)
    return values


def planned_grid(
    table: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    client: str = "client",
    programme: str = "programme",
    occasion: str | None = "occasion",
    covariates: Sequence[str] = (),
) -> pd.DataFrame:
    """The complete client x occasion grid the design planned, with the outcome where observed.

    Rule: each client's planned occasions are the union of the occasions that occur
    in her programme (in any client's row, with or without a score). A planned cell
    takes the client's own week (``time``) when her row for that occasion has one, and
    otherwise the programme's median week of that occasion over the rows that have
    one. Without an ``occasion`` column (``occasion=None``) the distinct ``time``
    values of the programme are the occasions. Client-level ``covariates`` are copied
    to the added cells. Rows keep the outcome they had (NaN = planned, not observed);
    added cells have a NaN outcome. Returned columns: ``programme, client, [occasion,]
    time, outcome, covariates..., in_table`` (``in_table`` False for added cells),
    sorted by programme, client and time.

    Raises
    ------
    DataError
        A column is absent; a programme, client or occasion label is missing; an
        outcome, time or covariate is non-numeric; a covariate is missing or not
        constant within a client; a client appears in two programmes; a client has two
        rows for one occasion; or no row of a programme gives a week for one of its
        occasions. ``row`` is the 0-based position in ``table``; no client label is
        ever shown.
    """
    covariates = list(covariates)
    cols = [client, programme, time, outcome] + ([occasion] if occasion else []) + covariates
    _check_columns(table, cols)
    if len(set(cols)) != len(cols):
        raise SpecError("client, programme, time, outcome, occasion and covariates must be "
                        "distinct columns")
    df = table.reset_index(drop=True)
    for col in [client, programme] + ([occasion] if occasion else []):
        bad = df[col].isna().to_numpy()
        if bad.any():
            raise DataError("missing label", row=int(np.flatnonzero(bad)[0]), column=col)
    y = _numeric(df, outcome, allow_nan=True)
    t = _numeric(df, time, allow_nan=occasion is not None)
    cov = {c: _numeric(df, c, allow_nan=False) for c in covariates}
    work = pd.DataFrame({
        "programme": df[programme].astype(str).to_numpy(),
        "client": df[client].to_numpy(),
        "time": t,
        "outcome": y,
        **{f"cov:{c}": v for c, v in cov.items()},
    })
    work["occasion"] = df[occasion].to_numpy() if occasion else t
    prog_per_client = work.groupby("client", sort=False)["programme"].nunique()
    if (prog_per_client > 1).any():
        two = work["client"].isin(prog_per_client.index[prog_per_client > 1]).to_numpy()
        raise DataError("a client appears in more than one programme",
                        row=int(np.flatnonzero(two)[0]), column=programme)
    dup = work.duplicated(["client", "occasion"]).to_numpy()
    if dup.any():
        raise DataError("two rows for the same client and occasion: give one outcome per "
                        "client x occasion (select one instrument and scale first)",
                        row=int(np.flatnonzero(dup)[0]), column=occasion or time)
    for c in covariates:
        varies = work.groupby("client", sort=False)[f"cov:{c}"].transform("nunique") > 1
        if varies.any():
            raise DataError("covariate is not constant within a client (impute uses "
                            "client-level covariates only)",
                            row=int(np.flatnonzero(varies.to_numpy())[0]), column=c)
    occ_weeks = (work.groupby(["programme", "occasion"], sort=False)["time"].median()
                 .rename("median_week").reset_index())
    no_week = occ_weeks["median_week"].isna().to_numpy()
    if no_week.any():
        bad = occ_weeks.iloc[int(np.flatnonzero(no_week)[0])]
        raise DataError(f"programme {bad['programme']!r}: no row gives a week for occasion "
                        f"{bad['occasion']!r}", column=time)
    per_client = work.drop_duplicates("client")[
        ["programme", "client"] + [f"cov:{c}" for c in covariates]]
    # Every client x every occasion of her programme; then her own rows where present.
    grid = per_client.merge(occ_weeks, on="programme", how="inner")
    own = work[["client", "occasion", "time", "outcome"]]
    out = grid.merge(own, on=["client", "occasion"], how="left", indicator=True)
    out["in_table"] = (out.pop("_merge") == "both").to_numpy()
    out["time"] = out["time"].fillna(out.pop("median_week"))
    out = out.sort_values(["programme", "client", "time"], kind="stable").reset_index(drop=True)
    names = {"programme": programme, "client": client, "time": time, "outcome": outcome,
             **{f"cov:{c}": c for c in covariates}}
    order = ["programme", "client"] + (["occasion"] if occasion else []) + [
        "time", "outcome"] + [f"cov:{c}" for c in covariates] + ["in_table"]
    out = out[order].rename(columns={**names, **({"occasion": occasion} if occasion else {})})
    return out


# --------------------------------------------------------------------------------------
# result


@dataclass(frozen=True, eq=False)
class ImputationResult(ResultMixin):
    """The ``m`` completed tables of :func:`impute` and what produced them.

    Iterate over it, index it or take ``len`` as over a list of completed tables.
    ``completed[l]`` holds ``programme, client, [occasion,] time, outcome,
    covariates..., imputed`` for every planned client x occasion cell.
    ``trace`` holds the sampler's parameter draws per iteration on the standardised
    scale (``sigma2``, ``psi_*``, ``beta_*``) for convergence checks (e.g. plot them).
    """

    completed: tuple[pd.DataFrame, ...] = field(repr=False)
    outcome: str
    time: str
    client: str
    programme: str
    occasion: str | None
    covariates: tuple[str, ...]
    burn_in: int
    thin: int
    trace: pd.DataFrame = field(repr=False)
    _title = "Multiple imputation: planned, observed and imputed cells"

    @property
    def m(self) -> int:
        return len(self.completed)

    def __len__(self) -> int:
        return len(self.completed)

    def __iter__(self) -> Iterator[pd.DataFrame]:
        return iter(self.completed)

    def __getitem__(self, i: int) -> pd.DataFrame:
        return self.completed[i]

    def to_frame(self) -> pd.DataFrame:
        """Per programme: clients, planned cells, observed and imputed cells, % imputed."""
        first = self.completed[0]
        g = first.groupby(self.programme, sort=True)
        out = pd.DataFrame({
            "clients": g[self.client].nunique(),
            "planned": g.size(),
            "observed": g[IMPUTED_COLUMN].apply(lambda s: int((~s).sum())),
            "imputed": g[IMPUTED_COLUMN].sum().astype(int),
        })
        out["percent_imputed"] = 100.0 * out["imputed"] / out["planned"]
        out["m"] = self.m
        return out.reset_index().rename(columns={self.programme: "programme"})

    def long(self) -> pd.DataFrame:
        """All completed tables stacked, with an ``imputation`` column (1..m)."""
        return pd.concat([t.assign(imputation=i + 1) for i, t in enumerate(self.completed)],
                         ignore_index=True)


# --------------------------------------------------------------------------------------
# impute


def _positive_int(value: object, name: str, minimum: int) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool) or int(value) < minimum:
        raise SpecError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def impute(
    table: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    client: str = "client",
    programme: str = "programme",
    occasion: str | None = "occasion",
    covariates: Sequence[str] = (),
    m: int = 20,
    rng: int | np.random.Generator | None = None,
    burn_in: int = 500,
    thin: int = 50,
    random_slope: bool = True,
) -> ImputationResult:
    r"""Multiply impute the missing outcomes of a long growth table, clients within programmes.

    **Which cells.** The missing cells are the client x occasion cells the design
    planned but did not observe: see :func:`planned_grid` (each client's planned
    occasions are the union of the occasions in her programme; a cell's week is her
    own week when her row has one, otherwise the programme's median week of that
    occasion). Rows with a NaN outcome are planned, unobserved cells too.

    **Model.** Two-level normal imputation as R's ``pan`` (Schafer & Yucel 2002) and
    ``jomo`` do:

    .. math:: y_{ij} = x_{ij}'\beta + z_{ij}'b_i + e_{ij}, \quad
              b_i \sim N(0, \Psi), \quad e_{ij} \sim N(0, \sigma^2)

    with fixed effects :math:`x_{ij}` = intercept, time, programme, programme x time
    and the client-level ``covariates``, and a random intercept and time slope
    :math:`z_{ij} = (1, t_{ij})` per client (intercept only with
    ``random_slope=False``). Each programme thus keeps its own mean trajectory and
    each client her own level and slope, so the imputations respect the nesting of
    occasions in clients in programmes and remain congenial with the growth models
    of :mod:`effectstudy.multilevel` (``outcome ~ time * programme + (1 + time |
    client)``): an analysis must not use a variable that is not in the imputation
    model (list it in ``covariates``). Programme is a fixed effect, not a third
    level: with six programmes a programme variance is barely estimable (its
    posterior would be driven by the prior), and a random programme effect would
    shrink small programmes towards the others, imputing their girls from other
    programmes' trajectories; six fixed programme means and slopes cost only ten
    extra parameters. Chained equations with cluster means were not chosen because
    they carry no random slope, and a girl's own rate of change is what the growth
    analyses estimate.

    **Sampler.** A data-augmentation Gibbs sampler with flat prior on
    :math:`\beta`, :math:`p(\sigma^2) \propto 1/\sigma^2` and an inverse-Wishart
    prior on :math:`\Psi` (``q + 1`` df, scale ``0.1 I``) on the standardised scale
    (outcome, time and covariates centred and divided by their SD, so the prior
    means the same for every instrument). Each iteration draws :math:`\beta` given
    :math:`\Psi, \sigma^2` with the random effects integrated out, then the
    :math:`b_i`, :math:`\Psi`, :math:`\sigma^2`, and the missing outcomes from their
    full conditionals (Schafer & Yucel 2002, section 3). After ``burn_in``
    iterations one completed table is kept every ``thin`` iterations (a single
    chain, as ``jomo``); inspect ``result.trace`` to judge convergence.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per client x occasion with a single outcome (filter the
        harmonised table to one instrument and scale first).
    outcome, time, client, programme : str
        Column names: outcome score (NaN = missing), week of the occasion, client and
        programme.
    occasion : str or None, default "occasion"
        Column of the occasion label, the unit of the design's plan; ``None`` uses
        the distinct ``time`` values as occasions.
    covariates : sequence of str
        Numeric client-level covariates (constant within a client, no NaN), used as
        fixed effects and copied to the completed tables.
    m : int, default 20
        Number of completed tables.
    rng : int, numpy.random.Generator or None
        Seed or generator; a Generator is used as is (and advanced). ``None`` draws
        fresh entropy. The global NumPy random state is never used.
    burn_in : int, default 500
        Iterations before the first kept table.
    thin : int, default 50
        Iterations between kept tables.
    random_slope : bool, default True
        Random time slope per client besides the random intercept.

    Returns
    -------
    ImputationResult
        Behaves as a list of the ``m`` completed tables (columns ``programme,
        client, [occasion,] time, outcome, covariates..., imputed``); ``to_frame()``
        counts planned, observed and imputed cells per programme.

    Raises
    ------
    DataError
        Bad columns or values (see :func:`planned_grid`); a programme with fewer than
        two clients or fewer than two distinct observed weeks (its own trajectory
        cannot be estimated); a client without any observed score when there are no
        covariates; no observed outcome at all. Errors name the programme, never a
        client.
    SpecError
        Invalid ``m``, ``burn_in``, ``thin`` or ``rng``.

    References
    ----------
    Schafer, J. L., & Yucel, R. M. (2002). Computational strategies for multivariate
    linear mixed-effects models with missing values. *Journal of Computational and
    Graphical Statistics*, 11(2), 437-457.

    Rubin, D. B. (1987). *Multiple Imputation for Nonresponse in Surveys*. Wiley.

    van Buuren, S. (2018). *Flexible Imputation of Missing Data* (2nd ed.), chapter 7
    "Multilevel multiple imputation". Chapman & Hall/CRC.

    Quartagno, M., Grund, S., & Carpenter, J. (2019). jomo: a flexible package for
    two-level joint modelling multiple imputation. *The R Journal*, 11(2), 205-228.
    """
    m = _positive_int(m, "m", 1)
    burn_in = _positive_int(burn_in, "burn_in", 0)
    thin = _positive_int(thin, "thin", 1)
    gen = as_generator(rng)
    covariates = tuple(covariates)
    grid = planned_grid(table, outcome=outcome, time=time, client=client,
                        programme=programme, occasion=occasion, covariates=covariates)
    y = grid[outcome].to_numpy(dtype=float)
    observed = ~np.isnan(y)
    if not observed.any():
        raise DataError("no observed outcome: nothing to impute from", column=outcome)
    progs = sorted(pd.unique(grid[programme]))
    for prog in progs:
        in_prog = (grid[programme] == prog).to_numpy()
        n_cl = grid.loc[in_prog, client].nunique()
        if n_cl < 2:
            raise DataError(f"programme {prog!r} has {n_cl} client: the imputation model "
                            "needs at least two clients per programme to estimate its "
                            "trajectory", column=programme)
        n_weeks = np.unique(grid[time].to_numpy()[in_prog & observed]).size
        if n_weeks < 2:
            raise DataError(f"programme {prog!r} has observed outcomes at {n_weeks} distinct "
                            "week(s): its growth slope cannot be estimated", column=time)
    obs_per_client = pd.Series(observed).groupby(grid[client].to_numpy()).sum()
    if not covariates and (obs_per_client == 0).any():
        empty = obs_per_client.index[obs_per_client == 0]
        prog = grid.loc[grid[client].isin(empty), programme].iloc[0]
        raise DataError(f"programme {prog!r}: a client has no observed score and there are "
                        "no covariates to impute her scores from (drop her or give "
                        "covariates)", column=outcome)

    # Standardise (priors then mean the same for every scale).
    y_mean, y_sd = float(np.mean(y[observed])), float(np.std(y[observed], ddof=1))
    if not np.isfinite(y_sd) or y_sd <= 0:
        raise DataError("the observed outcome has no variance", column=outcome)
    t = grid[time].to_numpy(dtype=float)
    t_mean, t_sd = float(t.mean()), float(t.std(ddof=1))
    t_s = (t - t_mean) / t_sd
    cols = [np.ones_like(t_s), t_s]
    names = ["Intercept", time]
    for prog in progs[1:]:
        d = (grid[programme] == prog).to_numpy(dtype=float)
        cols += [d, d * t_s]
        names += [f"{programme}[{prog}]", f"{programme}[{prog}]:{time}"]
    for c in covariates:
        v = grid[c].to_numpy(dtype=float)
        sd = float(v.std(ddof=1))
        if not np.isfinite(sd) or sd <= 0:
            raise DataError("covariate has no variance", column=c)
        cols.append((v - v.mean()) / sd)
        names.append(c)
    x_all = np.column_stack(cols)
    if np.linalg.matrix_rank(x_all[observed]) < x_all.shape[1]:
        raise DataError("the imputation model cannot be fitted to the observed cells: its "
                        "fixed effects are not identified (collinear covariates?)",
                        column=outcome)
    z_all = np.column_stack([np.ones_like(t_s), t_s]) if random_slope else np.ones((len(t), 1))
    y_s = (y - y_mean) / y_sd
    codes, uniques = pd.factorize(grid[client], sort=False)
    rows_of = [np.flatnonzero(codes == k) for k in range(len(uniques))]
    X = [x_all[r] for r in rows_of]
    Z = [z_all[r] for r in rows_of]
    Y = [y_s[r] for r in rows_of]
    keep = [burn_in + (k + 1) * thin - 1 for k in range(m)]
    n_iter = keep[-1] + 1
    try:
        draws = _gibbs(X, Z, Y, n_iter=n_iter, keep=keep, rng=gen)
    except np.linalg.LinAlgError as exc:
        raise ModelError("the imputation sampler failed (a covariance matrix became "
                         "singular); check the data for constant or collinear columns") from exc
    completed = []
    miss = ~observed
    base = grid.drop(columns="in_table")
    for per_client in draws.y:
        filled = np.empty(len(y))
        for r, vals in zip(rows_of, per_client, strict=True):
            filled[r] = vals
        out = base.copy()
        col = out[outcome].to_numpy(dtype=float).copy()
        col[miss] = y_mean + y_sd * filled[miss]
        out[outcome] = col
        out[IMPUTED_COLUMN] = miss
        completed.append(out)
    q = z_all.shape[1]
    trace = pd.DataFrame({"iteration": np.arange(1, n_iter + 1), "sigma2": draws.sigma2})
    for i in range(q):
        for j in range(i, q):
            trace[f"psi_{i}{j}"] = draws.psi[:, i, j]
    for k, nm in enumerate(names):
        trace[f"beta_{nm}"] = draws.beta[:, k]
    return ImputationResult(completed=tuple(completed), outcome=outcome, time=time,
                            client=client, programme=programme, occasion=occasion,
                            covariates=covariates, burn_in=burn_in, thin=thin, trace=trace)


# --------------------------------------------------------------------------------------
# analyse and pool


def _tables(completed: ImputationResult | Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    tables = list(completed)
    if len(tables) < 2:
        raise DataError(f"pooling needs at least two completed tables, got {len(tables)}")
    for t in tables:
        if not isinstance(t, pd.DataFrame):
            raise DataError(f"completed tables must be DataFrames, got {type(t).__name__}")
    return tables


def run_analysis(analysis: Callable[[pd.DataFrame], pd.DataFrame],
                 tables: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """``analysis`` on each table; long frame ``imputation, term, estimate, se``."""
    rows = []
    for i, tab in enumerate(tables, start=1):
        res = analysis(tab)
        if not isinstance(res, pd.DataFrame):
            raise DataError(f"the analysis must return a DataFrame, got {type(res).__name__}")
        for col in ("term", "estimate", "se"):
            if col not in res.columns:
                raise DataError("the analysis result lacks a column", column=col)
        rows.append(res[["term", "estimate", "se"]].assign(imputation=i))
    return pd.concat(rows, ignore_index=True)[["imputation", "term", "estimate", "se"]]


def analyse_imputed(
    analysis: Callable[[pd.DataFrame], pd.DataFrame],
    completed: ImputationResult | Sequence[pd.DataFrame],
    *,
    df_complete: float | Mapping[str, float] | pd.Series | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Run an analysis on each completed table and pool the results with Rubin's rules.

    Parameters
    ----------
    analysis : callable
        ``analysis(table) -> DataFrame`` with at least the columns ``term, estimate,
        se`` (one row per term; the same terms for every table). For an
        :func:`effectstudy.multilevel.fit` growth model use :func:`growth_analysis`,
        or wrap it yourself::

            def analysis(table):
                res = fit("outcome ~ time * programme + (1 + time | client)", table)
                return res.coefficients(ddf="kenward-roger")[["term", "estimate", "se"]]

    completed : ImputationResult or sequence of DataFrame
        The completed tables (at least two), e.g. from :func:`impute`.
    df_complete : float, dict or Series, optional
        Complete-data df for the Barnard & Rubin (1999) small-sample df (e.g.
        ``n - p`` of a linear model). Leave ``None`` for mixed models (Rubin's 1987
        df, as ``mitml::testEstimates``).
    confidence : float, default 0.95
        Level of the pooled intervals.

    Returns
    -------
    pandas.DataFrame
        :func:`effectstudy.missing.pool`'s frame: ``term, estimate, se, df,
        statistic, p_value, ci_lower, ci_upper, riv, lambda, fmi, m``.

    References
    ----------
    Rubin, D. B. (1987). *Multiple Imputation for Nonresponse in Surveys*. Wiley.
    """
    tables = _tables(completed)
    return pool(run_analysis(analysis, tables), df_complete=df_complete,
                confidence=confidence)


def growth_analysis(
    formula: str,
    *,
    term: str | Sequence[str] | None = None,
    ddf: str = "satterthwaite",
    reml: bool = True,
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """An analysis for :func:`analyse_imputed`: an :func:`effectstudy.multilevel.fit` model.

    Parameters
    ----------
    formula : str
        lme4-style formula, e.g. ``"outcome ~ time * programme + (1 + time | client)"``.
    term : str, sequence of str or None
        Fixed-effect term(s) to return (``None``: all).
    ddf : str, default "satterthwaite"
        Passed to ``coefficients(ddf=...)``: ``"kenward-roger"`` takes the KR-adjusted SE.
    reml : bool, default True
        REML or ML fit.

    Returns
    -------
    callable
        ``f(table) -> DataFrame`` with ``term, estimate, se, df`` (the complete-data
        df is returned for information; pooling uses Rubin's df unless
        ``df_complete`` is given).

    References
    ----------
    Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects
    models using lme4. *Journal of Statistical Software*, 67(1), 1-48.
    """
    from effectstudy.multilevel import fit

    if not isinstance(formula, str) or "~" not in formula:
        raise SpecError(f"formula must be a model formula string, got {formula!r}")
    terms = None if term is None else ([term] if isinstance(term, str) else list(term))

    def analysis(table: pd.DataFrame) -> pd.DataFrame:
        coefs = fit(formula, table, reml=reml).coefficients(ddf=ddf)
        if terms is not None:
            unknown = [t for t in terms if t not in set(coefs["term"])]
            if unknown:
                raise ModelError(f"the model has no term(s) {unknown!r}; its terms are "
                                 f"{list(coefs['term'])!r}")
            coefs = coefs.set_index("term").loc[terms].reset_index()
        return coefs[["term", "estimate", "se", "df"]].reset_index(drop=True)

    return analysis

