"""Cluster-robust (sandwich) inference for few clusters: CR2, Satterthwaite and HTZ.

With six programmes, the usual cluster-robust sandwich (CR0/CR1) is badly biased
downward and its Wald tests reject far too often.  This module implements the
bias-reduced linearisation estimator ``CR2`` of Bell & McCaffrey (2002), in the
general weighted form of Pustejovsky & Tipton (2018), together with

* Satterthwaite degrees of freedom for single coefficients (Bell & McCaffrey 2002;
  Pustejovsky & Tipton 2018, section 3.1), and
* the approximate Hotelling's T-squared test ``HTZ`` for several constraints
  (Tipton & Pustejovsky 2015; Pustejovsky & Tipton 2018, section 3.2),

as computed by the R package clubSandwich 0.5.8 (``vcovCR(type = "CR2")``,
``coef_test(test = "Satterthwaite")``, ``Wald_test(test = "HTZ")``).

Notation (Pustejovsky & Tipton 2018).  Observations ``i = 1..N`` fall in clusters
``j = 1..m``; ``X`` is the ``N x p`` fixed-effects design, ``W`` the (block-diagonal)
weight matrix, ``Phi`` the working ("target") covariance, ``M = (X' W X)^{-1}``,
``e = y - X beta`` and ``(I - H)_j`` the rows of ``I - X M X' W`` for cluster ``j``.
For OLS ``W = Phi = I``; for a linear mixed model the working model is the fitted
marginal covariance, ``Phi = V`` and ``W = V^{-1}`` (computed per cluster).

* CR2 adjustment: ``A_j = D_j' B_j^{-1/2} D_j`` with ``D_j`` the upper Cholesky
  factor of ``Phi_j`` (``D_j' D_j = Phi_j``) and
  ``B_j = D_j (I - H)_j Phi (I - H)_j' D_j'``; ``B^{-1/2}`` is the symmetric
  (pseudo-)inverse square root (eigenvalues <= 1e-12 are set to 0; for a
  mixed-model working covariance <= 1e-12 times the largest eigenvalue when that
  exceeds 1, so exact zeros are found whatever the units of the outcome).  Because the
  working model is inverse-variance (``W_j Phi_j = I``), the cluster's block is
  ``(I - H)_j Phi (I - H)_j' = Phi_j - X_j M X_j'``: only cluster ``j``'s rows.
* ``V^CR2 = M [sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j] M``.
* With ``g_j = (I - H)_j' A_j W_j X_j M c`` (an ``N``-vector) for a contrast ``c``:
  ``df = (sum_j g_j' Phi g_j)^2 / sum_j sum_k (g_j' Phi g_k)^2``.
* With ``E_j = M X_j' W_j A_j``, ``U_j = E_j X_j`` and ``S_j = E_j Phi_j E_j'``
  (``p x p`` each), ``G_j Phi G_k' = [j = k] S_j - U_j M U_k'``: the df and the
  HTZ test are sums over these small matrices, so nothing of size ``N x N`` (or
  ``m p x m p``) is ever formed.  Memory is ``O(N p + sum_j n_j^2)``.
* HTZ for ``q`` constraints ``C beta = 0``: ``Q = (C b)' (C V^CR2 C')^{-1} (C b)``;
  ``Omega = sum_j G_j Phi G_j'`` (the expectation of ``C V^CR2 C'`` under the
  working model, ``G_j = C M X_j' W_j A_j (I - H)_j``) and, with
  ``P_jk = Omega^{-1/2} G_j Phi G_k' Omega^{-1/2}``,
  ``eta = q (q + 1) / sum_{s,t} sum_{j,k} (P_jk[s,t] P_jk[t,s] + P_jk[s,s] P_jk[t,t])``;
  then ``delta = max((eta - q + 1) / eta, 0)`` (clamped at 0 as clubSandwich
  does), ``F = delta Q / q`` on
  ``(q, eta - q + 1)`` degrees of freedom.

References
----------
Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for linear
regression with multi-stage samples. *Survey Methodology*, 28(2), 169-181.

Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for cluster-robust
variance estimation and hypothesis testing in fixed effects models. *Journal of
Business & Economic Statistics*, 36(4), 672-683.

Tipton, E., & Pustejovsky, J. E. (2015). Small-sample adjustments for tests of
moderators and model fit using robust variance estimation in meta-regression.
*Journal of Educational and Behavioral Statistics*, 40(6), 604-634.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel.cr2_core import (
    CR2Pieces,
    LowRankCovariance,
    cr2_core,
    hotelling,
    psd_root,
)
from effectstudy.multilevel.design import design_matrices, design_matrix, formula_variables
from effectstudy.multilevel.formula import parse_formula
from effectstudy.multilevel.lmm import fit as fit_lmm

__all__ = [
    "ClusterRobustResult",
    "WaldTestResult",
    "cluster_robust",
    "cr2_from_arrays",
]

# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class WaldTestResult(ResultMixin):
    """HTZ Wald test of ``C beta = 0`` (Pustejovsky & Tipton 2018).

    Attributes
    ----------
    terms : tuple of str
        The constrained coefficients (one row of ``C`` each), or contrast labels.
    Q : float
        The Wald statistic ``(C b)' (C V C')^{-1} (C b)``.
    F : float
        ``delta * Q / q``.
    delta : float
        Hotelling scaling ``max((eta - q + 1) / eta, 0)``: clamped at 0 as
        clubSandwich does, so ``F`` is never negative.
    df_num, df_denom : float
        ``q`` and ``eta - q + 1`` (``p_value`` is ``nan`` when ``df_denom <= 0``).
    p_value : float
        Upper tail of ``F(df_num, df_denom)`` at ``F``.
    eta : float
        The HTZ degrees of freedom of the Hotelling's T-squared approximation.
    """

    terms: tuple[str, ...]
    Q: float
    F: float
    delta: float
    df_num: float
    df_denom: float
    p_value: float
    eta: float
    test: str = "HTZ"
    _title = "Cluster-robust Wald test (CR2, HTZ)"

    def to_frame(self) -> pd.DataFrame:
        """One-row frame: hypothesis, test, Q, F, delta, df_num, df_denom, p_value."""
        return pd.DataFrame(
            {
                "hypothesis": [" & ".join(f"{t} = 0" for t in self.terms)],
                "test": [self.test],
                "Q": [self.Q],
                "F": [self.F],
                "delta": [self.delta],
                "df_num": [self.df_num],
                "df_denom": [self.df_denom],
                "p_value": [self.p_value],
            }
        )


@dataclass(frozen=True, eq=False)
class ClusterRobustResult(ResultMixin):
    """CR2 cluster-robust inference for the fixed effects of a linear (mixed) model.

    Use :func:`cluster_robust` to create one.

    Attributes
    ----------
    terms : tuple of str
        Coefficient names (patsy names for formula fits).
    estimate : ndarray
        Fixed-effect estimates ``b``.
    vcov : DataFrame
        The CR2 covariance matrix, rows and columns named by ``terms``.
    cluster_name : str
        Name of the clustering variable.
    n_clusters : int
        Number of clusters ``m``.
    nobs : int
        Number of observations used.
    model : str
        ``"OLS"`` or ``"LMM"`` (working covariance from a mixed model).
    messages : tuple of str
        What was changed on the way (e.g. factor levels without complete rows
        that were dropped); also shown in ``warnings``.
    """

    terms: tuple[str, ...]
    estimate: np.ndarray
    vcov: pd.DataFrame
    cluster_name: str
    n_clusters: int
    nobs: int
    model: str
    vcov_type: str = "CR2"
    _pieces: CR2Pieces = field(default=None, repr=False)  # type: ignore[assignment]
    warnings: tuple[str, ...] = ()
    messages: tuple[str, ...] = ()
    _title = "Cluster-robust coefficients (CR2, Satterthwaite df)"

    # -- helpers ----------------------------------------------------------
    @property
    def se(self) -> np.ndarray:
        """CR2 standard errors."""
        return np.sqrt(np.diag(self.vcov.to_numpy()))

    def _constraint_matrix(
        self, terms: Sequence[str] | str | np.ndarray
    ) -> tuple[np.ndarray, tuple[str, ...]]:
        if isinstance(terms, np.ndarray) and terms.ndim == 2:
            C = np.asarray(terms, dtype=float)
            if C.shape[1] != len(self.terms):
                raise ModelError(f"constraint matrix needs {len(self.terms)} columns")
            return C, tuple(f"row{i + 1}" for i in range(C.shape[0]))
        if isinstance(terms, str):
            terms = [terms]
        terms = list(terms)
        if not terms:
            raise ModelError("give at least one term to test")
        unknown = [t for t in terms if t not in self.terms]
        if unknown:
            raise ModelError(f"terms not in the model: {unknown}; known terms: {list(self.terms)}")
        # rows in model order, as clubSandwich's constrain_zero() does
        idx = [i for i, t in enumerate(self.terms) if t in terms]
        C = np.zeros((len(idx), len(self.terms)))
        C[np.arange(len(idx)), idx] = 1.0
        return C, tuple(self.terms[i] for i in idx)

    # -- public -----------------------------------------------------------
    def satterthwaite_df(self, contrast: np.ndarray | None = None) -> np.ndarray | float:
        """Satterthwaite df of single coefficients (or of one contrast vector).

        ``df = (sum_j g_j' Phi g_j)^2 / sum_{j,k} (g_j' Phi g_k)^2``
        (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018, eq. 8).
        """
        if contrast is not None:
            c = np.asarray(contrast, dtype=float).reshape(1, -1)
            return self._pieces.eta(c)
        p = len(self.terms)
        return np.array([self._pieces.eta(np.eye(p)[[s]]) for s in range(p)])

    def coefficients(self) -> pd.DataFrame:
        """Tidy frame: term, estimate, se, df, statistic, p_value (two-sided t on df)."""
        return self._coefficients.copy()

    @cached_property
    def _coefficients(self) -> pd.DataFrame:
        se = self.se
        df = self.satterthwaite_df()
        t = self.estimate / se
        p = 2.0 * stats.t.sf(np.abs(t), df)
        return pd.DataFrame(
            {
                "term": list(self.terms),
                "estimate": self.estimate,
                "se": se,
                "df": df,
                "statistic": t,
                "p_value": p,
            }
        )

    def conf_int(self, confidence: float = 0.95) -> pd.DataFrame:
        """Coefficients with t intervals on the Satterthwaite df: adds ci_lower, ci_upper."""
        if not 0.0 < confidence < 1.0:
            raise ModelError(f"confidence must lie strictly between 0 and 1, not {confidence!r}")
        frame = self.coefficients()
        crit = stats.t.ppf(1.0 - (1.0 - confidence) / 2.0, frame["df"].to_numpy())
        frame["ci_lower"] = frame["estimate"] - crit * frame["se"]
        frame["ci_upper"] = frame["estimate"] + crit * frame["se"]
        return frame

    def to_frame(self) -> pd.DataFrame:
        """Same as :meth:`coefficients`."""
        return self.coefficients()

    def wald_test(self, terms: Sequence[str] | str | np.ndarray) -> WaldTestResult:
        """HTZ test that the listed coefficients are all zero.

        Parameters
        ----------
        terms : sequence of str, str or ndarray
            Coefficient names (``constrain_zero``) or a ``q x p`` contrast matrix ``C``.

        Returns
        -------
        WaldTestResult
            ``F``, ``delta``, ``df_num``, ``df_denom``, ``p_value`` (Tipton &
            Pustejovsky 2015; Pustejovsky & Tipton 2018, section 3.2).
        """
        C, labels = self._constraint_matrix(terms)
        q = C.shape[0]
        Cb = C @ self.estimate
        CVC = C @ self.vcov.to_numpy() @ C.T
        try:
            L = np.linalg.cholesky(CVC)
        except np.linalg.LinAlgError as exc:
            raise ModelError(
                "the CR2 covariance of the contrasts is not positive definite"
            ) from exc
        z = np.linalg.solve(L, Cb)
        Q = float(z @ z)
        eta = self._pieces.eta(C)
        F, delta, df_denom, p = hotelling(Q, q, eta)
        return WaldTestResult(
            terms=labels,
            Q=Q,
            F=F,
            delta=delta,
            df_num=float(q),
            df_denom=df_denom,
            p_value=p,
            eta=eta,
        )


# ---------------------------------------------------------------------------
# core on arrays
# ---------------------------------------------------------------------------


def _cluster_codes(cluster: Any, N: int, cluster_name: str) -> tuple[np.ndarray, int]:
    cl = pd.Series(np.asarray(cluster, dtype=object))
    if len(cl) != N:
        raise DataError(
            f"cluster has {len(cl)} values but the model has {N} observations",
            column=cluster_name,
        )
    if cl.isna().any():
        raise DataError("cluster has missing values", column=cluster_name)
    codes, levels = pd.factorize(cl, sort=True)
    if len(levels) < 2:
        raise DataError("cluster-robust inference needs at least two clusters", column=cluster_name)
    return np.asarray(codes), len(levels)


def _cluster_rows(codes: np.ndarray, m: int) -> list[np.ndarray]:
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(m + 1))
    return [order[bounds[j] : bounds[j + 1]] for j in range(m)]


def _blocks_of_full(V: np.ndarray, idx: list[np.ndarray]) -> list[np.ndarray]:
    """Diagonal blocks of a full ``V`` after checking it has nothing between clusters."""
    N = V.shape[0]
    scale = float(np.abs(np.diagonal(V)).max()) if N else 0.0
    blocks = []
    for ix in idx:
        rows = np.abs(V[ix])
        rows[:, ix] = 0.0
        if rows.size and rows.max() > 1e-10 * scale:
            raise ModelError(
                "the working covariance links observations in different clusters: the random "
                "effects are not nested within the clustering variable"
            )
        blocks.append(V[np.ix_(ix, ix)])
    return blocks


def cr2_from_arrays(
    X: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    cluster: Sequence[Any] | np.ndarray,
    *,
    V: np.ndarray | None = None,
    V_blocks: Sequence[np.ndarray | LowRankCovariance] | None = None,
    terms: Sequence[str] | None = None,
    cluster_name: str = "cluster",
    messages: Sequence[str] = (),
) -> ClusterRobustResult:
    """CR2 covariance with the arrays of a fitted linear model.

    Parameters
    ----------
    X : ndarray, shape (N, p)
        Fixed-effects design.
    y : ndarray, shape (N,)
        Outcome.
    beta : ndarray, shape (p,)
        Estimated coefficients (OLS, or GLS/REML from a mixed model).
    cluster : array-like, length N
        Cluster labels.
    V : ndarray, shape (N, N), optional
        Working marginal covariance (any positive scale).  ``None`` (and no
        ``V_blocks``) means OLS: ``W = Phi = I``.  Otherwise ``Phi_j = V_jj`` and
        ``W_j = V_jj^{-1}`` per cluster, as clubSandwich does for ``lmerMod``
        fits; the random effects must be nested within the clusters (no
        covariance between clusters).  Prefer ``V_blocks`` for large data.
    V_blocks : sequence of ndarray or LowRankCovariance, optional
        The working covariance given per cluster instead of ``V``: one
        ``n_j x n_j`` block per cluster, clusters in sorted label order, rows in
        data order within the cluster.  Nothing of size ``N x N`` is formed.  A
        :class:`~effectstudy.multilevel.cr2_core.LowRankCovariance`
        (``sigma^2 I + F F'``, a mixed model's random effects nested in the
        cluster) is reduced to a ``(p + r)``-dimensional problem, exactly
        (:func:`~effectstudy.multilevel.cr2_core.project_lowrank`).
    terms : sequence of str, optional
        Coefficient names.
    cluster_name : str
        Label of the clustering variable.
    messages : sequence of str
        Notes to carry into the result (e.g. dropped factor levels).

    Returns
    -------
    ClusterRobustResult
    """
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float).ravel()
    beta = np.asarray(beta, dtype=float).ravel()
    N, p = X.shape
    if y.shape[0] != N or beta.shape[0] != p:
        raise DataError("X, y and beta do not conform")
    codes, m = _cluster_codes(cluster, N, cluster_name)
    if terms is None:
        terms = [f"x{i}" for i in range(p)]
    terms = tuple(terms)
    idx = _cluster_rows(codes, m)
    if V is not None and V_blocks is not None:
        raise ModelError("give V or V_blocks, not both")
    blocks: Sequence[np.ndarray] | None = None
    model = "OLS"
    if V is not None:
        V = np.asarray(V, dtype=float)
        if V.shape != (N, N):
            raise DataError("V must be N x N")
        blocks = _blocks_of_full(V, idx)
        model = "LMM"
    elif V_blocks is not None:
        blocks = list(V_blocks)
        if len(blocks) != m or any(
            np.shape(b) != (ix.size, ix.size) for b, ix in zip(blocks, idx, strict=True)
        ):
            raise DataError("V_blocks must hold one n_j x n_j block per cluster (sorted labels)")
        model = "LMM"
    vc, pieces = cr2_core(X, y, beta, idx, blocks)
    vcov = pd.DataFrame(vc, index=list(terms), columns=list(terms))
    notes = tuple(messages)
    return ClusterRobustResult(
        terms=terms,
        estimate=beta,
        vcov=vcov,
        cluster_name=cluster_name,
        n_clusters=m,
        nobs=N,
        model=model,
        _pieces=pieces,
        warnings=notes,
        messages=notes,
    )


# ---------------------------------------------------------------------------
# front end
# ---------------------------------------------------------------------------


def _cluster_values(
    cluster: Any, data: pd.DataFrame | None, rows: np.ndarray | None
) -> tuple[np.ndarray, str]:
    """Cluster labels of the rows used (``rows``: positions in ``data``)."""
    if isinstance(cluster, str):
        if data is None or cluster not in data.columns:
            raise DataError(f"cluster column {cluster!r} not in the data", column=cluster)
        col = data[cluster].to_numpy(dtype=object)
        return (col if rows is None else col[rows]), cluster
    values = (
        cluster if isinstance(cluster, pd.Series) else pd.Series(np.asarray(cluster, dtype=object))
    )
    name = str(values.name) if values.name is not None else "cluster"
    arr = values.to_numpy(dtype=object)
    if rows is not None and data is not None and len(arr) == len(data) and len(rows) != len(data):
        # the formula dropped incomplete rows: keep the cluster labels of the rows used
        arr = arr[rows]
    return arr, name


#: a factor with more levels than this may be an identifier: its dropped levels are
#: counted, not named (no client identifier ever goes into a message)
_NAME_LEVELS_UP_TO = 20


def _drop_empty_levels(
    formula: str, data: pd.DataFrame, cluster: Any = None
) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Complete rows of the formula's variables, factors without their unused levels.

    A factor level with no complete row (a programme whose outcomes are all
    missing, an unused category of a ``Categorical``) would give an all-zero
    dummy column; R's ``lm`` drops such levels with the incomplete rows
    (``droplevels``), and so does this.  Returns the rows and one message per
    factor that lost levels (and the positions of the rows); the levels are named only for a factor with at most
    20 levels that is not the clustering column (a programme, not a client id).
    """
    used = [c for c in formula_variables(formula) if c in data.columns]
    complete = np.flatnonzero(data[used].notna().all(axis=1).to_numpy())
    frame = data.iloc[complete]
    notes: list[str] = []
    for col in used:
        s = data[col]
        if pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if isinstance(s.dtype, pd.CategoricalDtype):
            all_levels = list(s.cat.categories)
        else:
            all_levels = sorted(pd.unique(s.dropna().astype(object)), key=str)
        present = set(pd.unique(frame[col].astype(object)))
        gone = [lv for lv in all_levels if lv not in present]
        if not gone:
            continue
        kept = [lv for lv in all_levels if lv in present]
        frame = frame.assign(**{col: pd.Categorical(frame[col].astype(object), categories=kept)})
        if len(all_levels) <= _NAME_LEVELS_UP_TO and not (
            isinstance(cluster, str) and cluster == col
        ):
            which = f"level(s) {', '.join(map(str, gone))}"
        else:
            which = f"{len(gone)} level(s)"
        notes.append(f"factor {col!r}: {which} without complete rows dropped")
    return frame, complete, notes


def _fit_ols(
    formula: str, data: pd.DataFrame, cluster: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    # parsed by the package's own formula grammar, never evaluated as code
    frame, complete, notes = _drop_empty_levels(formula, data, cluster)
    yv, _, Xd = design_matrices(formula, frame, NA_action="drop")
    X = np.asarray(Xd.matrix, dtype=float)
    y = np.asarray(yv, dtype=float).ravel()
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ModelError(f"the design of {formula!r} is rank deficient")
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return X, y, beta, list(Xd.column_names), complete[np.asarray(Xd.rows)], notes


# -- working covariance of a mixed-model fit, per cluster -------------------


def _r_coef(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def _term_covariance(
    vc: pd.DataFrame, group: str, coefs: list[str], taken: set[str]
) -> tuple[str, np.ndarray]:
    """The covariance matrix of one random term from ``variance_components()``.

    The term's label is its grouping factor, made unique as R's ``make.unique``
    does for repeated factors (``programme``, ``programme.1``); the first free
    label whose rows name exactly these coefficients is the term's.
    """
    var = dict(zip(vc["component"], vc["variance"], strict=True))
    for k in range(len(vc) + 1):
        label = group if k == 0 else f"{group}.{k}"
        if label in taken or f"{label}:{coefs[0]}" not in var:
            continue
        if not all(f"{label}:{c}" in var for c in coefs):
            continue
        S = np.empty((len(coefs), len(coefs)))
        for i, ci in enumerate(coefs):
            S[i, i] = var[f"{label}:{ci}"]
            for j in range(i):
                S[i, j] = S[j, i] = var[f"{label}:{coefs[j]},{ci}"]
        taken.add(label)
        return label, S
    raise ModelError(f"the fit reports no variance components for ({' + '.join(coefs)} | {group})")


def _fit_blocks(
    fit: Any, idx: list[np.ndarray], codes: np.ndarray
) -> list[LowRankCovariance]:
    """``V_jj = sigma^2 I + sum_t Z_tj T_t Z_tj'`` per cluster from the fit's public results.

    Uses only ``fit.formula``, ``fit.data`` (rows used), ``fit.sigma`` and
    ``fit.variance_components()``; nothing of size ``N x N`` is formed.  Each
    block is ``sigma^2 I + F_j F_j'`` with one group of columns ``Z_tj T_t^{1/2}``
    per group of term ``t`` in the cluster (rows of other groups zero).
    """
    parsed = parse_formula(fit.formula)
    frame = fit.data
    vc = fit.variance_components()
    sigma2 = float(fit.sigma) ** 2
    N = len(frame)
    taken: set[str] = set()
    parts = []
    for term in parsed.random:
        cols = [c for c in formula_variables(f"~ {term.expr}") if c in frame.columns]
        sub = frame[cols].copy()
        for c in cols:
            if not (pd.api.types.is_numeric_dtype(sub[c]) or pd.api.types.is_bool_dtype(sub[c])):
                if not isinstance(sub[c].dtype, pd.CategoricalDtype):
                    cats = sorted(pd.unique(sub[c].astype(object)), key=str)
                    sub[c] = pd.Categorical(sub[c].astype(object), categories=cats)
        dm = design_matrix(term.expr, sub if cols else pd.DataFrame(index=frame.index),
                           NA_action="raise")
        Zt = np.asarray(dm.matrix, dtype=float)
        if Zt.shape[0] != N:  # an intercept-only term on a frame without columns
            Zt = np.ones((N, 1))
        coefs = [_r_coef(c) for c in dm.column_names]
        _, S = _term_covariance(vc, term.group, coefs, taken)
        keys = frame[term.group_variables[0]].astype(str).to_numpy(dtype=object)
        for v in term.group_variables[1:]:
            keys = keys + ":" + frame[v].astype(str).to_numpy(dtype=object)
        lev = pd.factorize(pd.Series(keys))[0]
        if np.abs(S).max(initial=0.0) > 1e-10 * max(sigma2, 1e-300):
            spans = pd.Series(codes).groupby(lev).nunique().to_numpy()
            if spans.max(initial=1) > 1:
                raise ModelError(
                    "the working covariance links observations in different clusters: the "
                    f"random effects of {term.group!r} are not nested within the clustering "
                    "variable"
                )
        parts.append((Zt, S, lev))
    roots = [(Zt @ psd_root(S), lev) for Zt, S, lev in parts]  # Z_t T_t^{1/2}
    blocks = []
    for ix in idx:
        cols = []
        for ZL, lev in roots:
            r = ZL.shape[1]
            _, inv = np.unique(lev[ix], return_inverse=True)
            Fj = np.zeros((ix.size, (int(inv.max()) + 1) * r))
            Fj[np.arange(ix.size)[:, None], inv[:, None] * r + np.arange(r)] = ZL[ix]
            cols.append(Fj)
        F = np.hstack(cols) if cols else np.zeros((ix.size, 0))
        blocks.append(LowRankCovariance(sigma2, F))
    return blocks


def _from_fit(fit: Any, cluster: Any, data: pd.DataFrame | None) -> ClusterRobustResult:
    """CR2 for a fitted mixed model (:func:`effectstudy.multilevel.fit` or duck-typed)."""
    missing = [a for a in ("X", "y", "beta") if not hasattr(fit, a)]
    if missing:
        raise ModelError(f"fit object lacks {missing}; expected an effectstudy.multilevel fit")
    X = np.asarray(fit.X, dtype=float)
    y = np.asarray(fit.y, dtype=float).ravel()
    beta = np.asarray(fit.beta, dtype=float).ravel()
    names = list(getattr(fit, "fixed_names", None) or [f"x{i}" for i in range(X.shape[1])])
    fdata = getattr(fit, "data", None)
    if isinstance(cluster, str):
        source = fdata if fdata is not None and cluster in getattr(fdata, "columns", ()) else data
        if source is None or cluster not in source.columns:
            raise DataError(f"cluster column {cluster!r} not in the fit's data", column=cluster)
        cl = source[cluster].to_numpy(dtype=object)
        name = cluster
    else:
        cl, name = _cluster_values(cluster, None, None)
    if len(cl) != X.shape[0]:
        raise DataError(
            f"cluster has {len(cl)} values but the fit has {X.shape[0]} rows", column=name
        )
    codes, m = _cluster_codes(cl, X.shape[0], name)
    idx = _cluster_rows(codes, m)
    blockwise = all(hasattr(fit, a) for a in ("formula", "data", "sigma", "variance_components"))
    if blockwise:
        blocks = _fit_blocks(fit, idx, codes)
    elif hasattr(fit, "marginal_covariance"):
        # a duck-typed fit that only offers its full marginal covariance
        blocks = _blocks_of_full(np.asarray(fit.marginal_covariance(), dtype=float), idx)
    else:
        raise ModelError("fit object lacks variance_components() and marginal_covariance()")
    return cr2_from_arrays(X, y, beta, cl, V_blocks=blocks, terms=names, cluster_name=name)


def cluster_robust(
    fit_or_formula: Any,
    data: pd.DataFrame | None = None,
    *,
    cluster: str | Sequence[Any] | np.ndarray,
    vcov: str = "CR2",
) -> ClusterRobustResult:
    """CR2 cluster-robust coefficients, Satterthwaite df and HTZ Wald tests.

    Reproduces clubSandwich 0.5.8: ``vcovCR(fit, cluster, type = "CR2")``,
    ``coef_test(..., test = "Satterthwaite")`` and ``Wald_test(..., test = "HTZ")``
    (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018).  Works one cluster at a
    time: memory grows with ``N`` and the largest cluster, never with ``N^2``.

    Parameters
    ----------
    fit_or_formula : str or fit object
        A formula without random effects (grammar of
        :mod:`effectstudy.multilevel.design`; fitted by OLS; coefficients are
        named as patsy names them, e.g. ``Intercept``, ``programme[T.P2]``);
        factor levels without complete rows are dropped (see ``messages``), as
        R's ``lm`` does.  Or a fit of :func:`effectstudy.multilevel.fit`: the
        working model is its marginal covariance, ``Phi = V`` and
        ``W = V^{-1}``, built per cluster from ``variance_components()``.  A
        duck-typed fit with ``X``, ``y``, ``beta``, ``fixed_names``, ``data``
        and ``marginal_covariance()`` (N x N) is accepted too.  A formula with
        ``|`` is passed to :func:`effectstudy.multilevel.fit` (REML).
    data : DataFrame, optional
        The data (required for a formula).
    cluster : str or array-like
        Column name or labels of the clusters, e.g. ``"programme"`` or ``"client"``.
        For mixed models the random-effect groups must be nested in the clusters.
    vcov : {"CR2"}
        Only CR2 is implemented.

    Returns
    -------
    ClusterRobustResult
        ``.coefficients()``, ``.wald_test(terms)``, ``.vcov``, ``.messages``.

    Raises
    ------
    DataError
        No data, a missing cluster column, missing cluster labels, fewer than two
        clusters.
    ModelError
        A rank-deficient design, random effects not nested in the clusters.
    """
    if vcov != "CR2":
        raise ModelError(f"vcov={vcov!r} is not supported; use 'CR2'")
    if isinstance(fit_or_formula, str):
        if data is None:
            raise DataError("a formula needs data")
        if "|" in fit_or_formula:
            return _from_fit(fit_lmm(fit_or_formula, data), cluster, data)
        X, y, beta, names, rows, notes = _fit_ols(fit_or_formula, data, cluster)
        cl, name = _cluster_values(cluster, data, rows)
        return cr2_from_arrays(
            X, y, beta, cl, V=None, terms=names, cluster_name=name, messages=notes
        )
    return _from_fit(fit_or_formula, cluster, data)
