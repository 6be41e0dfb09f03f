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
  (pseudo-)inverse square root (eigenvalues <= 1e-12 are set to 0).
* ``V^CR2 = M [sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j] M``.
* With ``g_j = (I - H)_j' A_j W_j X_j M c`` (an ``N``-vector) for a contrast ``c``:
  ``df = (sum_j g_j' Phi g_j)^2 / sum_j sum_k (g_j' Phi g_k)^2``.
* HTZ for ``q`` constraints ``C beta = 0``: ``Q = (C b)' (C V^CR2 C')^{-1} (C b)``;
  ``Omega = sum_j G_j Phi G_j'`` (the expectation of ``C V^CR2 C'`` under the
  working model, ``G_j = C M X_j' W_j A_j (I - H)_j``) and, with
  ``P_jk = Omega^{-1/2} G_j Phi G_k' Omega^{-1/2}``,
  ``eta = q (q + 1) / sum_{s,t} sum_{j,k} (P_jk[s,t] P_jk[t,s] + P_jk[s,s] P_jk[t,t])``;
  then ``delta = (eta - q + 1) / eta``, ``F = delta Q / q`` on
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

__all__ = [
    "ClusterRobustResult",
    "WaldTestResult",
    "cluster_robust",
    "cr2_from_arrays",
]

#: eigenvalues of B_j at or below this are treated as zero (clubSandwich uses 1e-12)
_EIG_TOL = 1e-12


# ---------------------------------------------------------------------------
# linear algebra helpers
# ---------------------------------------------------------------------------


def _sym_power(a: np.ndarray, power: float, tol: float = _EIG_TOL) -> np.ndarray:
    """Symmetric matrix power via the eigendecomposition; eigenvalues <= tol -> 0."""
    a = (a + a.T) / 2.0
    vals, vecs = np.linalg.eigh(a)
    keep = vals > tol
    powered = np.zeros_like(vals)
    powered[keep] = vals[keep] ** power
    return (vecs * powered) @ vecs.T


def _upper_chol(a: np.ndarray) -> np.ndarray:
    """Upper-triangular ``D`` with ``D' D = a`` (R's ``chol``)."""
    try:
        return np.linalg.cholesky(a).T
    except np.linalg.LinAlgError as exc:  # pragma: no cover - defensive
        raise ModelError("working covariance block is not positive definite") from exc


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
        Hotelling scaling ``(eta - q + 1) / eta``.
    df_num, df_denom : float
        ``q`` and ``eta - q + 1``.
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
    """

    terms: tuple[str, ...]
    estimate: np.ndarray
    vcov: pd.DataFrame
    cluster_name: str
    n_clusters: int
    nobs: int
    model: str
    vcov_type: str = "CR2"
    #: stacked (m*p x m*p) matrix of G_j Phi G_k' blocks, for df and HTZ
    _GPG: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    warnings: tuple[str, ...] = ()
    _title = "Cluster-robust coefficients (CR2, Satterthwaite df)"

    # -- helpers ----------------------------------------------------------
    @property
    def se(self) -> np.ndarray:
        """CR2 standard errors."""
        return np.sqrt(np.diag(self.vcov.to_numpy()))

    def _blocks(self, C: np.ndarray) -> np.ndarray:
        """Array ``[j, k, s, t]`` of ``C G_j Phi G_k' C'`` (``m x m x q x q``)."""
        m, p = self.n_clusters, len(self.terms)
        blocks = self._GPG.reshape(m, p, m, p)
        return np.einsum("sa,jakb,tb->jkst", C, blocks, C, optimize=True)

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
            P = self._blocks(c)[:, :, 0, 0]
            return float(np.trace(P) ** 2 / np.sum(P**2))
        p = len(self.terms)
        P = self._blocks(np.eye(p))  # j, k, s, t
        diag = np.einsum("jkss->jks", P)  # j, k, s
        E = np.einsum("jjs->s", diag)
        V = np.sum(diag**2, axis=(0, 1))
        return E**2 / V

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

    def conf_int(self, level: float = 0.95) -> pd.DataFrame:
        """Coefficients with t intervals on the Satterthwaite df: adds ci_lower, ci_upper."""
        frame = self.coefficients()
        crit = stats.t.ppf(1.0 - (1.0 - level) / 2.0, frame["df"].to_numpy())
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
        P = self._blocks(C)  # j, k, s, t
        omega = np.einsum("jjst->st", P)
        omega_ns = _sym_power(omega, -0.5)
        B = np.einsum("sa,jkab,tb->jkst", omega_ns, P, omega_ns, optimize=True)
        var_mat = np.einsum("jkst,jkts->st", B, B) + np.einsum("jkss,jktt->st", B, B)
        eta = q * (q + 1) / float(np.sum(var_mat))
        delta = (eta - q + 1) / eta
        df_denom = eta - q + 1
        F = delta * Q / q
        p = float(stats.f.sf(F, q, df_denom)) if df_denom > 0 else float("nan")
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


def cr2_from_arrays(
    X: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    cluster: Sequence[Any] | np.ndarray,
    *,
    V: np.ndarray | None = None,
    terms: Sequence[str] | None = None,
    cluster_name: str = "cluster",
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
        Working marginal covariance (any positive scale).  ``None`` means OLS:
        ``W = Phi = I``.  Otherwise ``Phi_j = V_jj`` and ``W_j = V_jj^{-1}`` per
        cluster, as clubSandwich does for ``lmerMod`` fits; the random effects
        must be nested within the clusters (no covariance between clusters).
    terms : sequence of str, optional
        Coefficient names.
    cluster_name : str
        Label of the clustering variable.

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
    cl = pd.Series(np.asarray(cluster, dtype=object))
    if len(cl) != N:
        raise DataError(f"cluster has {len(cl)} values but the model has {N} observations")
    if cl.isna().any():
        raise DataError("cluster has missing values", column=cluster_name)
    codes, levels = pd.factorize(cl, sort=True)
    m = len(levels)
    if m < 2:
        raise DataError("cluster-robust inference needs at least two clusters", column=cluster_name)
    if terms is None:
        terms = [f"x{i}" for i in range(p)]
    terms = tuple(terms)

    idx = [np.flatnonzero(codes == j) for j in range(m)]
    warn: list[str] = []
    if V is None:
        Phi = np.eye(N)
        W = np.eye(N)
        model = "OLS"
    else:
        V = np.asarray(V, dtype=float)
        if V.shape != (N, N):
            raise DataError("V must be N x N")
        same = codes[:, None] == codes[None, :]
        off = np.abs(V[~same])
        if off.size and off.max() > 1e-10 * np.abs(np.diag(V)).max():
            raise ModelError(
                "the working covariance links observations in different clusters: the random "
                "effects are not nested within the clustering variable"
            )
        Phi = np.where(same, V, 0.0)
        W = np.zeros_like(Phi)
        for ix in idx:
            W[np.ix_(ix, ix)] = np.linalg.inv(Phi[np.ix_(ix, ix)])
        model = "LMM"

    XtW = X.T @ W
    try:
        M = np.linalg.inv(XtW @ X)
    except np.linalg.LinAlgError as exc:
        raise ModelError("the design matrix is rank deficient") from exc
    e = y - X @ beta
    IH = np.eye(N) - X @ M @ XtW  # (I - H)
    IHPhi = IH @ Phi

    meat_vecs = np.empty((p, m))
    G_all = np.empty((m * p, N))
    for j, ix in enumerate(idx):
        Phi_j = Phi[np.ix_(ix, ix)]
        D = _upper_chol(Phi_j)
        Bj = D @ (IHPhi[ix] @ IH[ix].T) @ D.T
        A = D.T @ _sym_power(Bj, -0.5) @ D
        E = M @ XtW[:, ix] @ A  # p x n_j
        meat_vecs[:, j] = E @ e[ix]
        G_all[j * p : (j + 1) * p] = E @ IH[ix]
    vc = meat_vecs @ meat_vecs.T
    GPG = G_all @ Phi @ G_all.T
    vcov = pd.DataFrame(vc, index=list(terms), columns=list(terms))
    return ClusterRobustResult(
        terms=terms,
        estimate=beta,
        vcov=vcov,
        cluster_name=cluster_name,
        n_clusters=m,
        nobs=N,
        model=model,
        _GPG=GPG,
        warnings=tuple(warn),
    )


# ---------------------------------------------------------------------------
# front end
# ---------------------------------------------------------------------------


def _cluster_values(
    cluster: Any, data: pd.DataFrame | None, index: pd.Index | None
) -> tuple[np.ndarray, str]:
    if isinstance(cluster, str):
        if data is None or cluster not in data.columns:
            raise DataError(f"cluster column {cluster!r} not in the data", column=cluster)
        col = data[cluster]
        if index is not None:
            col = col.loc[index]
        return col.to_numpy(dtype=object), cluster
    values = (
        cluster if isinstance(cluster, pd.Series) else pd.Series(np.asarray(cluster, dtype=object))
    )
    name = str(values.name) if values.name is not None else "cluster"
    arr = values.to_numpy(dtype=object)
    if index is not None and data is not None and len(arr) == len(data) and len(index) != len(data):
        # the formula dropped incomplete rows: keep the cluster labels of the rows used
        arr = arr[data.index.get_indexer(index)]
    return arr, name


def _fit_ols(
    formula: str, data: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], pd.Index]:
    from effectstudy.multilevel.design import design_matrices

    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    # parsed by the package's own formula grammar, never evaluated as code
    yv, _, Xd = design_matrices(formula, data, NA_action="drop")
    X = np.asarray(Xd.matrix, dtype=float)
    y = np.asarray(yv, dtype=float).ravel()
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise ModelError(f"the design of {formula!r} is rank deficient")
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    return X, y, beta, list(Xd.column_names), data.index[Xd.rows]


def _from_fit(fit: Any, cluster: Any, data: pd.DataFrame | None) -> ClusterRobustResult:
    """Adapter for a mixed-model fit exposing ``X, y, beta, fixed_names, data, marginal_covariance()``."""
    missing = [a for a in ("X", "y", "beta", "marginal_covariance") if not hasattr(fit, a)]
    if missing:
        raise ModelError(f"fit object lacks {missing}; expected an effectstudy.multilevel fit")
    X = np.asarray(fit.X, dtype=float)
    y = np.asarray(fit.y, dtype=float).ravel()
    beta = np.asarray(fit.beta, dtype=float).ravel()
    names = list(getattr(fit, "fixed_names", None) or [f"x{i}" for i in range(X.shape[1])])
    V = np.asarray(fit.marginal_covariance(), dtype=float)
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
    return cr2_from_arrays(X, y, beta, cl, V=V, terms=names, cluster_name=name)


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
    (Bell & McCaffrey 2002; Pustejovsky & Tipton 2018).

    Parameters
    ----------
    fit_or_formula : str or fit object
        A formula without random effects (grammar of
        :mod:`effectstudy.multilevel.design`; fitted by OLS; coefficients are
        named as patsy names them, e.g. ``Intercept``, ``programme[T.P2]``), or a
        fitted linear mixed model with attributes ``X`` (N x p), ``y``, ``beta``,
        ``fixed_names``, ``data`` (row-aligned with ``X``) and a method
        ``marginal_covariance()`` returning the N x N marginal covariance ``V``.
        For mixed models the working model is ``Phi = V``, ``W = V^{-1}``.
        A formula with ``|`` is passed to :func:`effectstudy.multilevel.fit` (REML).
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
        ``.coefficients()``, ``.wald_test(terms)``, ``.vcov``.
    """
    if vcov != "CR2":
        raise ModelError(f"vcov={vcov!r} is not supported; use 'CR2'")
    if isinstance(fit_or_formula, str):
        if data is None:
            raise DataError("a formula needs data")
        if "|" in fit_or_formula:
            try:
                from effectstudy.multilevel.lmm import fit as lmm_fit
            except ImportError as exc:  # pragma: no cover - depends on the lmm engine
                raise ModelError(
                    "mixed-model formulas need effectstudy.multilevel.lmm.fit"
                ) from exc
            return _from_fit(lmm_fit(fit_or_formula, data), cluster, data)
        X, y, beta, names, index = _fit_ols(fit_or_formula, data)
        cl, name = _cluster_values(cluster, data, index)
        return cr2_from_arrays(X, y, beta, cl, V=None, terms=names, cluster_name=name)
    return _from_fit(fit_or_formula, cluster, data)
