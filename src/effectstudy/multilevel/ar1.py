"""Linear mixed models with AR(1) / CAR(1) residual correlation, as ``nlme::lme``.

The model (Pinheiro & Bates, 2000, ch. 5) for the observations of the outermost
group ``b`` is

.. math::

    y_b = X_b \\beta + \\sum_l Z_{lb} u_{lb} + \\varepsilon_b, \\qquad
    u_{lb} \\sim N(0, I \\otimes T_l), \\qquad
    \\varepsilon_b \\sim N(0, \\sigma^2 R_b(\\phi)),

with random effects at one or more nested grouping levels ``l`` (outer to
inner) and, within each innermost group, residual correlation
``corr(e_i, e_j) = phi^|s_i - s_j|``. For ``corAR1`` the covariate ``s`` is an
integer index (gaps count, as in ``corAR1(form = ~ index | group)``); for
``corCAR1`` it is continuous time (Jones, 1993). The marginal covariance
``V_b = sigma^2 W_b`` is never formed for more than one client: the likelihood
is accumulated per innermost group (client), with the random effects of outer
levels added by the Woodbury identity (:mod:`effectstudy.multilevel.ar1_core`),
so time and memory grow linearly in the number of clients.  The exact
(restricted) likelihood is maximised with ``sigma^2`` profiled out (Harville,
1977):

.. math::

    -2\\ell_R = (N - p)\\{1 + \\log(2\\pi\\hat\\sigma^2)\\} + \\sum_b \\log|W_b|
                + \\log|X'W^{-1}X|, \\qquad
    \\hat\\sigma^2 = r'W^{-1}r / (N - p).

For ML, ``N`` replaces ``N - p`` and the ``log|X'W^{-1}X|`` term is dropped.
This is exactly the criterion nlme reports as ``logLik`` (nlme 3.1: its REML
log-likelihood has no ``log|X'X|`` constant, so it equals lme4's REML
criterion / -2 for the same model); AIC and BIC count the fixed effects, the
random-effect covariance parameters, ``phi`` and ``sigma``, and BIC uses
``log(N - p)`` under REML as nlme does.

Denominator degrees of freedom are nlme's "containment" (between/within)
degrees of freedom (Pinheiro & Bates, 2000, sec. 2.4.2).

A boundary fit (a random-effect variance of 0 or a correlation of +-1) is
reported as lme4 and :func:`effectstudy.multilevel.fit` report it: ``is_singular``
and the message ``boundary (singular) fit: see help('isSingular')`` (Bates,
Maechler, Bolker & Walker, 2015, *J. Stat. Softw.* 67(1), sec. 3.2).

:meth:`AR1LMEResult.expected_information` (used for single-case designs) is
accumulated per client in the same way: nothing larger than a client's block.

References
----------
Pinheiro, J. C., & Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*.
Springer.
Harville, D. A. (1977). Maximum likelihood approaches to variance component
estimation and to related problems. *JASA, 72*(358), 320-338.
Jones, R. H. (1993). *Longitudinal Data with Serial Correlation: A State-Space
Approach*. Chapman & Hall.
Pustejovsky, J. E., Hedges, L. V., & Shadish, W. R. (2014). Design-comparable
effect sizes in multiple baseline designs: A general modeling framework. *Journal
of Educational and Behavioral Statistics, 39*(5), 368-393.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel.ar1_core import (
    AR1Problem,
    Block,
    OuterLevels,
    containment_df,
    minimise,
)
from effectstudy.multilevel.design import design_matrices, formula_variables

__all__ = ["AR1LMEResult", "SINGULAR_MESSAGE", "SINGULAR_TOL", "fit_ar1"]

#: lme4's ``isSingular()`` tolerance on the diagonal of the relative Cholesky factor.
SINGULAR_TOL = 1e-4
#: The message lme4 (and :func:`effectstudy.multilevel.fit`) gives for a boundary fit.
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"


# ---------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class AR1LMEResult(ResultMixin):
    """Fit of ``lme(fixed, random, correlation = corAR1/corCAR1)``.

    Attributes
    ----------
    fixed : DataFrame
        ``term, estimate, se, df, t, p`` (df = nlme containment df).
    phi : float
        Autocorrelation per unit of the index (AR1) or of time (CAR1); ``nan``
        without a correlation structure.
    random : DataFrame
        ``level, term, sd`` and, for random slopes, ``cor`` rows (term
        ``"a,b"``).
    sigma : float
        Residual SD.
    loglik, aic, bic : float
        As nlme's ``logLik``, ``AIC`` and ``BIC`` for the estimation method.
    lrt, lrt_p : float
        ``2 (logLik - logLik_independent)`` against the same model without the
        correlation structure (same method), and its chi-square(1) p-value.
    is_singular : bool
        ``True`` at a boundary fit: a diagonal element of a level's relative
        Cholesky factor (lme4's ``theta``) is at or below 1e-4, e.g. a random
        intercept-slope correlation of +-1 or a zero variance (lme4's
        ``isSingular``).
    messages : tuple of str
        The boundary message (lme4's text) and which variance components are at
        the boundary, and convergence notes; ``warnings`` holds these and the
        data notes (dropped rows).
    """

    formula: str
    method: str
    correlation: str | None
    fixed: pd.DataFrame
    phi: float
    random: pd.DataFrame
    sigma: float
    loglik: float
    aic: float
    bic: float
    lrt: float
    lrt_p: float
    nobs: int
    n_groups: dict[str, int]
    n_parameters: int
    vcov: pd.DataFrame
    converged: bool
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    is_singular: bool = False
    _problem: Any = field(default=None, repr=False)
    _psis: Any = field(default=None, repr=False)
    _level_terms: Any = field(default=None, repr=False)
    _levels: Any = field(default=None, repr=False)

    _title = "Linear mixed model with AR(1) errors (nlme-compatible)"

    @property
    def params(self) -> pd.Series:
        return self.fixed.set_index("term")["estimate"]

    @property
    def sigma2(self) -> float:
        return self.sigma**2

    def tau(self) -> dict[str, np.ndarray]:
        """Random-effect covariance matrices (absolute scale) per level."""
        return {lv: self.sigma2 * psi for lv, psi in zip(self._levels, self._psis, strict=True)}

    def varcomp(self) -> pd.Series:
        """Variance components on the natural scale, in lmeInfo's order.

        Tau elements per level (outer to inner; upper triangle column-major:
        ``var(a), cov(a,b), var(b)``), then ``phi`` (if any), then ``sigma_sq``.
        """
        names, vals = [], []
        for lv, terms, T in zip(self._levels, self._level_terms, self.tau().values(), strict=True):
            q = T.shape[0]
            for j in range(q):
                for i in range(j + 1):
                    names.append(
                        f"Tau.{lv}.{'var' if i == j else 'cov'}({terms[i]}{'' if i == j else ',' + terms[j]})"
                    )
                    vals.append(T[i, j])
        if self.correlation:
            names.append("phi")
            vals.append(self.phi)
        names.append("sigma_sq")
        vals.append(self.sigma2)
        return pd.Series(vals, index=names, dtype=float)

    def expected_information(self) -> np.ndarray:
        """Expected (Fisher) information of :meth:`varcomp` parameters.

        ``I_ij = tr(P dV_i P dV_j) / 2`` with ``P = V^-1 - V^-1 X (X'V^-1X)^-1 X'V^-1``
        under REML (``P = V^-1`` under ML), as ``lmeInfo::Fisher_info(type =
        "expected")`` (Pustejovsky, Hedges & Shadish, 2014, appendix).  Accumulated
        one client at a time, outer levels through the Woodbury identity
        (:meth:`effectstudy.multilevel.ar1_core.AR1Problem.expected_information`):
        no matrix larger than one client's block is formed.
        """
        prob: AR1Problem = self._problem
        phi = self.phi if self.correlation else 0.0
        return prob.expected_information(self._psis, phi, self.sigma2, self.method == "REML")

    def to_frame(self) -> pd.DataFrame:
        rows = [
            {
                "component": "fixed",
                "term": r.term,
                "estimate": r.estimate,
                "se": r.se,
                "df": r.df,
                "t": r.t,
                "p": r.p,
            }
            for r in self.fixed.itertuples()
        ]
        for r in self.random.itertuples():
            rows.append(
                {
                    "component": f"random:{r.level}",
                    "term": r.term,
                    "estimate": r.value,
                    "quantity": r.quantity,
                }
            )
        if self.correlation:
            rows.append({"component": "correlation", "term": "phi", "estimate": self.phi})
        rows.append({"component": "residual", "term": "sigma", "estimate": self.sigma})
        for name, val in [("logLik", self.loglik), ("AIC", self.aic), ("BIC", self.bic)]:
            rows.append({"component": "fit", "term": name, "estimate": val})
        if self.correlation:
            rows.append(
                {
                    "component": "fit",
                    "term": "LRT_vs_no_corr",
                    "estimate": self.lrt,
                    "p": self.lrt_p,
                    "df": 1.0,
                }
            )
        return pd.DataFrame(rows)


# ---------------------------------------------------------------------------
# public function
# ---------------------------------------------------------------------------


def _random_terms(spec: str) -> list[str]:
    s = spec.strip()
    s = s.lstrip("~").strip()
    parts = [t.strip() for t in s.split("+") if t.strip()]
    terms: list[str] = []
    intercept = True
    for t in parts:
        if t == "1":
            continue
        if t in ("0", "-1"):
            intercept = False
            continue
        terms.append(t)
    return (["(Intercept)"] if intercept else []) + terms


def fit_ar1(
    formula: str,
    data: pd.DataFrame,
    *,
    group: str | Sequence[str],
    random: str | Mapping[str, str] = "1",
    correlation: str | None = "AR1",
    index: str | None = None,
    method: str = "REML",
    lrt: bool = True,
) -> AR1LMEResult:
    """Fit ``nlme::lme`` with random effects and AR(1)/CAR(1) within-group errors.

    Equivalent R call (one grouping level)::

        lme(formula, random = ~ <random> | group,
            correlation = corAR1(form = ~ index | group),   # or corCAR1
            method = method)

    Parameters
    ----------
    formula
        Fixed-effects formula, e.g. ``"outcome ~ time * programme"``, in the grammar of
        :mod:`effectstudy.multilevel.design` (parsed, never evaluated). Coefficients
        keep patsy's names (``Intercept``, ``programme[T.P2]``).
    data
        Long data frame. Rows with a missing value in any used column are dropped
        (noted in ``warnings``).
    group
        Grouping column, or a sequence of nested grouping columns from outer to
        inner (``~ 1 | cluster/case`` is ``group=["cluster", "case"]``).
    random
        Random-effects terms per group: ``"1"`` (random intercept), ``"1 + x"``
        (random intercept and slope on the numeric column ``x``), ``"0 + x"``; one
        string for all levels or a mapping level -> string.
    correlation
        ``"AR1"`` (``corAR1``: ``phi^|i - j|`` over the integer ``index``),
        ``"CAR1"`` (``corCAR1``: ``phi^|t - t'|`` over continuous ``index``) or
        ``None`` (independent errors). The correlation acts within the innermost
        group.
    index
        Column with the position (AR1, integer; gaps count) or time (CAR1). Default:
        the row order within the innermost group (1, 2, ...), as ``corAR1(form = ~ 1 | g)``.
    method
        ``"REML"`` (default) or ``"ML"``.
    lrt
        Also fit the model without correlation and report the likelihood-ratio
        statistic ``2 (logLik - logLik_0)`` (1 df).

    Returns
    -------
    AR1LMEResult

    Raises
    ------
    DataError
        Missing columns, fewer than two groups, a constant outcome, duplicate or
        non-integer AR(1) indices within a group.
    ModelError
        Unknown options, rank-deficient fixed effects, or a failed fit.

    Notes
    -----
    Estimates agree with nlme 3.1-162 to about 1e-6 relative on the reference
    models (see ``tests/multilevel/test_nlme_ar1_reference.py``).
    """
    method = method.upper()
    if method not in ("REML", "ML"):
        raise ModelError(f"method must be 'REML' or 'ML', not {method!r}")
    if correlation is not None:
        correlation = correlation.upper()
        if correlation not in ("AR1", "CAR1"):
            raise ModelError(f"correlation must be 'AR1', 'CAR1' or None, not {correlation!r}")
    levels = [group] if isinstance(group, str) else list(group)
    if not levels:
        raise ModelError("at least one grouping column is needed")
    if isinstance(random, str):
        rspec = {lv: random for lv in levels}
    else:
        rspec = {lv: random.get(lv, "1") for lv in levels}
    level_terms = [_random_terms(rspec[lv]) for lv in levels]
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")

    lhs, rhs = (formula.split("~", 1) + [""])[:2] if "~" in formula else (None, None)
    if lhs is None:
        raise ModelError(f"formula {formula!r} has no '~'")
    needed = set(levels) | ({index} if index else set())
    for terms in level_terms:
        needed |= {t for t in terms if t != "(Intercept)"}
    missing = [c for c in needed if c not in data.columns]
    if missing:
        raise DataError(f"columns not found in data: {sorted(missing)}")
    # variables named in the formula (for NA handling); parsed, never evaluated
    tokens = set(formula_variables(formula))
    used = [c for c in data.columns if c in tokens or c in needed]
    d = data[used].copy()
    n0 = len(d)
    d = d.dropna()
    notes: list[str] = []
    if len(d) < n0:
        notes.append(f"{n0 - len(d)} rows with missing values dropped")
    d = d.reset_index(drop=True)

    y, yname, Xd = design_matrices(formula, d, NA_action="raise")
    y = np.asarray(y, dtype=float)
    X = np.asarray(Xd.matrix, dtype=float)
    names = list(Xd.column_names)
    N, p = X.shape
    if np.linalg.matrix_rank(X) < p:
        raise ModelError("the fixed-effects design matrix is rank deficient")
    if np.ptp(y) == 0:
        raise DataError("the outcome is constant; no variance to model", column=yname)

    # nested group labels: inner labels are made unique within outer ones (a/b)
    labels = []
    acc = None
    for lv in levels:
        lab = d[lv].astype(str)
        acc = lab if acc is None else acc + "\x1f" + lab
        labels.append(acc.to_numpy())
    codes = [pd.factorize(lab, sort=True)[0] for lab in labels]
    n_groups = {lv: int(c.max() + 1) for lv, c in zip(levels, codes, strict=True)}
    if n_groups[levels[0]] < 2:
        raise DataError(f"need at least two groups of {levels[0]!r}", column=levels[0])

    inner = codes[-1]
    if index is None:
        s = pd.Series(np.ones(N)).groupby(inner).cumsum().to_numpy()
    else:
        s = pd.to_numeric(d[index], errors="coerce").to_numpy(float)
        if np.isnan(s).any():
            raise DataError("index column is not numeric", column=index)
    if correlation == "AR1" and np.any(s != np.round(s)):
        raise DataError(
            "corAR1 needs an integer index (use correlation='CAR1' for continuous time)",
            column=index,
        )
    if correlation is not None:
        dup = pd.DataFrame({"g": inner, "s": s}).duplicated().any()
        if dup:
            raise DataError("index values must be unique within each innermost group", column=index)

    Zcols = []
    for terms in level_terms:
        cols = []
        for t in terms:
            if t == "(Intercept)":
                cols.append(np.ones(N))
            else:
                cols.append(pd.to_numeric(d[t], errors="coerce").to_numpy(float))
        Zcols.append(np.column_stack(cols) if cols else np.zeros((N, 0)))
    q = [z.shape[1] for z in Zcols]

    outer = codes[0]

    # one block per innermost group (client), rows by index: the likelihood's unit
    n_inner = int(inner.max() + 1)
    order = np.lexsort((s, inner))
    starts = np.searchsorted(inner[order], np.arange(n_inner + 1))
    blocks = []
    q_in = q[-1]
    for c in range(n_inner):
        idx = order[starts[c] : starts[c + 1]]
        sb = s[idx]
        blocks.append(
            Block(
                y=y[idx],
                X=X[idx],
                Z=[Zcols[-1][idx]],
                n_re=[1 if q_in else 0],
                absdiff=np.abs(sb[:, None] - sb[None, :]),
                same_inner=np.ones((idx.size, idx.size), dtype=bool),
            )
        )
    outer_info: OuterLevels | None = None
    outer_Z: list[np.ndarray] | None = None
    if len(levels) > 1:
        # outer levels: raw covariates per innermost group and their column positions
        first = order[starts[:-1]]  # one row of each innermost group
        block_of = outer[first]
        n_blocks = n_groups[levels[0]]
        width = np.zeros(n_blocks, dtype=int)
        pos_cols, lpos = [], []
        for lvl in range(len(levels) - 1):
            qq = q[lvl]
            gcode = codes[lvl][first]
            # local index of each group of this level within its outermost group
            pairs = pd.DataFrame({"b": block_of, "g": gcode}).drop_duplicates()
            pairs = pairs.sort_values(["b", "g"])
            pairs["k"] = pairs.groupby("b").cumcount()
            local = pd.Series(pairs["k"].to_numpy(), index=pairs["g"].to_numpy())
            start_of_group = width[pairs["b"].to_numpy()] + qq * pairs["k"].to_numpy()
            lpos.append((pairs["b"].to_numpy(), start_of_group))
            base = width[block_of] + qq * local.loc[gcode].to_numpy()
            pos_cols += [base + j for j in range(qq)]
            width = width + qq * pairs.groupby("b").size().reindex(range(n_blocks), fill_value=0).to_numpy()
        r_raw = sum(q[:-1])
        pos = np.column_stack(pos_cols) if pos_cols else np.zeros((n_inner, 0), dtype=int)
        outer_info = OuterLevels(
            block=block_of, pos=pos.astype(int), lpos=lpos, n_blocks=n_blocks,
            r_max=max(int(width.max()), 1),
        )
        Zraw = np.column_stack([Zcols[lvl] for lvl in range(len(levels) - 1)]) if r_raw else (
            np.zeros((N, 0)))
        outer_Z = [Zraw[order[starts[c] : starts[c + 1]]] for c in range(n_inner)]

    reml = method == "REML"
    shared: dict[str, Any] = {}

    def fit_one(corr: str | None):
        prob = AR1Problem(
            blocks=blocks, q=q, p=p, N=N, correlation=corr, _batches=shared.get("b"),
            outer=outer_info, outer_Z=outer_Z,
        )
        shared["b"] = prob.batches()
        # start: OLS residual variance split evenly; phi 0.2
        x0 = []
        for qq in q:
            x0 += [0.0] * qq + [0.0] * (qq * (qq - 1) // 2)
        if corr == "AR1":
            x0.append(math.atanh(0.2))
        elif corr == "CAR1":
            x0.append(math.log(0.2 / 0.8))
        x0 = np.array(x0, float)
        if x0.size == 0:
            return prob, x0, prob.deviance(x0, reml), True
        # scale the start of random slopes by the column spread
        k = 0
        for lvl, qq in enumerate(q):
            for j in range(qq):
                sd = np.std(Zcols[lvl][:, j])
                if sd > 0 and not np.allclose(Zcols[lvl][:, j], 1.0):
                    x0[k + j] = -math.log(sd) - 1.0
            k += qq + qq * (qq - 1) // 2
        f = lambda v: prob.deviance(v, reml)  # noqa: E731
        xopt, fopt, conv = minimise(f, x0)
        if not np.isfinite(fopt) or fopt >= 1e299:
            raise ModelError("the likelihood could not be evaluated at any parameter value")
        return prob, xopt, fopt, conv

    prob, xopt, fopt, conv = fit_one(correlation)
    sol = prob.solve(xopt, reml)
    loglik = -fopt / 2.0
    n_var = sum(prob.n_chol) + (1 if correlation else 0) + 1
    npar = p + n_var
    aic = -2 * loglik + 2 * npar
    bic = -2 * loglik + npar * math.log(N - p if reml else N)

    lrt_val = lrt_p = float("nan")
    if lrt and correlation is not None:
        _, _, f0, _ = fit_one(None)
        lrt_val = f0 - fopt
        lrt_p = float(stats.chi2.sf(max(lrt_val, 0.0), 1))

    beta = sol["beta"]
    se = np.sqrt(np.diag(sol["vcov"]))
    dfs = containment_df(X, codes)
    tval = beta / se
    pval = 2 * stats.t.sf(np.abs(tval), dfs)
    fixed = pd.DataFrame(
        {"term": names, "estimate": beta, "se": se, "df": dfs, "t": tval, "p": pval}
    )

    sigma = math.sqrt(sol["sigma2"])
    rrows = []
    for lv, terms, psi in zip(levels, level_terms, sol["psis"], strict=True):
        T = sol["sigma2"] * psi
        sds = np.sqrt(np.diag(T))
        for i, t in enumerate(terms):
            rrows.append({"level": lv, "term": t, "quantity": "sd", "value": sds[i]})
        for i in range(len(terms)):
            for j in range(i):
                rrows.append(
                    {
                        "level": lv,
                        "term": f"{terms[j]},{terms[i]}",
                        "quantity": "cor",
                        "value": T[i, j] / (sds[i] * sds[j]),
                    }
                )
    random_df = pd.DataFrame(rrows, columns=["level", "term", "quantity", "value"])
    # boundary (singular) fit, as lme4's isSingular(): a relative Cholesky diagonal <= 1e-4
    messages: list[str] = []
    singular_levels = []
    for lvl, (lv, diag) in enumerate(zip(levels, prob.chol_diagonals(xopt), strict=True)):
        if diag.size and np.any(diag < SINGULAR_TOL):
            singular_levels.append(lvl)
            rows = random_df[random_df["level"] == lv]
            what = [
                f"SD of {r.term} is 0"
                for r in rows.itertuples()
                if r.quantity == "sd" and r.value < SINGULAR_TOL * sigma
            ] + [
                f"correlation of {r.term.replace(',', ' and ')} is {r.value:+.4f}"
                for r in rows.itertuples()
                if r.quantity == "cor" and abs(r.value) > 0.99
            ]
            detail = "; ".join(what) if what else "its covariance matrix is singular"
            messages.append(f"random effects of {lv!r} are at the boundary: {detail}")
    is_singular = bool(singular_levels)
    if is_singular:
        messages.insert(0, SINGULAR_MESSAGE)
    if not conv and not is_singular:
        # at a boundary the log-Cholesky parameters run off to -inf and the gradient
        # test is not meaningful; lme4 reports such fits as singular, not unconverged
        messages.append("optimizer did not report convergence")
    notes = messages + notes

    return AR1LMEResult(
        formula=formula,
        method=method,
        correlation=correlation,
        fixed=fixed,
        phi=float(sol["phi"]) if correlation else float("nan"),
        random=random_df,
        sigma=sigma,
        loglik=loglik,
        aic=aic,
        bic=bic,
        lrt=float(lrt_val),
        lrt_p=lrt_p,
        nobs=N,
        n_groups=n_groups,
        n_parameters=npar,
        vcov=pd.DataFrame(sol["vcov"], index=names, columns=names),
        converged=conv,
        warnings=tuple(notes),
        messages=tuple(messages),
        is_singular=is_singular,
        _problem=prob,
        _psis=sol["psis"],
        _level_terms=level_terms,
        _levels=levels,
    )
