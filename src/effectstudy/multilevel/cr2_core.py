"""The CR2 computation on arrays, one cluster block at a time.

Split from :mod:`effectstudy.multilevel.robust` (results, formula and fit
handling live there; the formulas are in its docstring).  Bell & McCaffrey
(2002); Pustejovsky & Tipton (2018); Tipton & Pustejovsky (2015).  Nothing of
size ``N x N`` or ``m p x m p`` is formed: per cluster the ``n_j x n_j`` block
(and, for OLS, not even that), and ``p x p`` pieces for the df and HTZ tests.

A mixed-model working covariance ``Phi_j = sigma^2 I + F_j F_j'`` (random effects
nested in the cluster) can be given as :class:`LowRankCovariance`; the cluster is
then reduced to a ``k x k`` problem with ``k <= p + r`` (see
:func:`project_lowrank`), so a cluster of 833 rows costs a ``k x k``
eigendecomposition instead of an ``833 x 833`` one.  Any other working covariance
(e.g. AR(1)) takes the exact path on the ``n_j x n_j`` block.

The full references are in the docstring of
:mod:`effectstudy.multilevel.robust`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse, stats
from scipy.sparse.csgraph import connected_components

from effectstudy.errors import ModelError

__all__ = [
    "EIG_TOL",
    "LOWRANK_FRACTION",
    "LOWRANK_MIN_ROWS",
    "CR2Pieces",
    "LowRankCovariance",
    "cr2_core",
    "diagonal_blocks",
    "hotelling",
    "project_lowrank",
    "psd_root",
    "sym_power",
]

#: eigenvalues of B_j at or below this are treated as zero (clubSandwich uses 1e-12);
#: for a mixed-model B_j, at or below ``EIG_TOL * max(1, largest eigenvalue)``: B_j
#: scales with the square of the working variance, and an exact zero (a column of
#: X that is nonzero in one cluster only) comes out of round-off at ~1e-15 times the
#: largest eigenvalue, above 1e-12 once the variances are in the tens
EIG_TOL = 1e-12

#: ``method="auto"`` reduces a :class:`LowRankCovariance` cluster when
#: ``p + r <= LOWRANK_FRACTION * n_j`` and ``n_j >= LOWRANK_MIN_ROWS`` (else the
#: dense block is cheaper: measured break-even near 130 rows of 5-row clients)
LOWRANK_FRACTION = 0.75
LOWRANK_MIN_ROWS = 128


# ---------------------------------------------------------------------------
# linear algebra helpers
# ---------------------------------------------------------------------------


def sym_power(a: np.ndarray, power: float, tol: float = EIG_TOL) -> np.ndarray:
    """Symmetric matrix power via the eigendecomposition; eigenvalues <= tol -> 0."""
    a = (a + a.T) / 2.0
    vals, vecs = np.linalg.eigh(a)
    keep = vals > tol
    powered = np.zeros_like(vals)
    powered[keep] = vals[keep] ** power
    return (vecs * powered) @ vecs.T


def psd_root(T: np.ndarray) -> np.ndarray:
    """``L`` (``q x r``) with ``L L' = T`` for a symmetric positive semi-definite ``T``.

    From the eigendecomposition; eigenvalues at or below ``EIG_TOL`` times the
    largest (zero or round-off negative) are left out, so ``r <= q``.
    """
    vals, vecs = np.linalg.eigh((T + T.T) / 2.0)
    keep = vals > EIG_TOL * max(float(np.abs(vals).max(initial=0.0)), 1e-300)
    return vecs[:, keep] * np.sqrt(vals[keep])


def lower_chol(a: np.ndarray) -> np.ndarray:
    """Lower-triangular ``L`` with ``L L' = a`` (so ``D = L'`` is R's ``chol``)."""
    try:
        return np.linalg.cholesky(a)
    except np.linalg.LinAlgError as exc:
        raise ModelError("a working covariance block is not positive definite") from exc


def ols_inv_sqrt_times(Xj: np.ndarray, R: np.ndarray) -> np.ndarray:
    """``(I - X_j M X_j')^{-1/2} X_j`` for ``M = R R'`` without forming ``n_j x n_j``.

    ``I - Y Y'`` (``Y = X_j R``) has eigenvalue ``1 - lambda_k`` on the unit vectors
    ``Y q_k / sqrt(lambda_k)`` (``Y'Y = Q diag(lambda) Q'``) and 1 elsewhere, so its
    pseudo-inverse square root is ``I + sum_k c_k u_k u_k'`` with
    ``c_k = (1 - lambda_k)^{-1/2} - 1`` (``-1`` where ``1 - lambda_k <= 1e-12``).
    """
    Y = Xj @ R
    lam, Q = np.linalg.eigh(Y.T @ Y)
    keep = lam > 1e-10
    if not keep.any():
        return Xj.copy()
    lam, Q = lam[keep], Q[:, keep]
    Uk = (Y @ Q) / np.sqrt(lam)
    rest = 1.0 - lam
    coef = np.where(rest > EIG_TOL, 1.0 / np.sqrt(np.maximum(rest, EIG_TOL)), 0.0) - 1.0
    return Xj + Uk @ (coef[:, None] * (Uk.T @ Xj))


@dataclass(frozen=True, eq=False)
class CR2Pieces:
    """Per-cluster ``p x p`` pieces: ``G_j Phi G_k' = [j = k] S_j - U_j M U_k'``."""

    S: np.ndarray  # (m, p, p)
    U: np.ndarray  # (m, p, p)
    M: np.ndarray  # (p, p)

    def omega(self, C: np.ndarray) -> np.ndarray:
        """``sum_j C G_j Phi G_j' C'``."""
        CS = np.einsum("sa,jab,tb->st", C, self.S, C, optimize=True)
        CU = np.einsum("sa,jab->jsb", C, self.U, optimize=True)
        return CS - np.einsum("jsa,ab,jtb->st", CU, self.M, CU, optimize=True)

    def eta(self, C: np.ndarray) -> float:
        """HTZ ``eta`` for the ``q x p`` constraint matrix ``C`` (see the module notes).

        With ``B_jk = Omega^{-1/2} C G_j Phi G_k' C' Omega^{-1/2} = [j = k] S~_j +
        U~_j K U~_k'`` (``K = -M``), both sums over all ``(j, k)`` pairs reduce to
        contractions of ``T[s, t, a, c] = sum_j U~_j[s, a] U~_j[t, c]``.
        """
        q = C.shape[0]
        omega_ns = sym_power(self.omega(C), -0.5)
        Ct = omega_ns @ C
        S = np.einsum("sa,jab,tb->jst", Ct, self.S, Ct, optimize=True)
        U = np.einsum("sa,jab->jsb", Ct, self.U, optimize=True)
        K = -self.M
        UK = np.einsum("jsa,ab,jtb->jst", U, K, U, optimize=True)  # U_j K U_j'
        T = np.einsum("jsa,jtc->stac", U, U, optimize=True)
        tr_sq = (
            np.einsum("jst,jts->", S, S)
            + 2.0 * np.einsum("jst,jts->", S, UK)
            + np.einsum("stac,ab,cd,tsbd->", T, K, K, T, optimize=True)
        )
        trS = np.einsum("jss->j", S)
        trUK = np.einsum("jss->j", UK)
        sq_tr = (
            float(trS @ trS)
            + 2.0 * float(trS @ trUK)
            + np.einsum("stac,ab,cd,stbd->", T, K, K, T, optimize=True)
        )
        return q * (q + 1) / float(tr_sq + sq_tr)


def hotelling(Q: float, q: int, eta: float) -> tuple[float, float, float, float]:
    """``(F, delta, df_denom, p)`` of the Hotelling's T-squared approximation.

    ``delta = max((eta - q + 1) / eta, 0)`` as clubSandwich's ``Hotelling_Tsq``
    (Tipton & Pustejovsky 2015, eq. 14); ``p`` is ``nan`` when ``eta - q + 1 <= 0``.
    """
    df_denom = eta - q + 1
    delta = max(df_denom / eta, 0.0) if eta != 0 else 0.0
    F = delta * Q / q
    p = float(stats.f.sf(F, q, df_denom)) if df_denom > 0 else float("nan")
    return F, delta, df_denom, p


def diagonal_blocks(P: np.ndarray, min_size: int = 128) -> list[np.ndarray]:
    """Diagonal blocks of ``P`` (e.g. one per client in a programme), equal sizes stacked.

    Returns index arrays of shape ``(k, s)``: ``k`` blocks of ``s`` rows each.  Blocks
    smaller than ``min_size`` rows in all are not split (dense work is cheap there).
    """
    n = P.shape[0]
    if n < min_size:
        return [np.arange(n)[None, :]]
    nonzero = P != 0.0
    if nonzero.all():  # e.g. a reduced problem (project_lowrank): one block
        return [np.arange(n)[None, :]]
    ncomp, lab = connected_components(sparse.csr_matrix(nonzero), directed=False)
    if ncomp == 1:
        return [np.arange(n)[None, :]]
    order = np.argsort(lab, kind="stable")
    bounds = np.searchsorted(lab[order], np.arange(ncomp + 1))
    sizes = np.diff(bounds)
    out = []
    for size in np.unique(sizes):
        starts = bounds[:-1][sizes == size]
        out.append(order[starts[:, None] + np.arange(size)[None, :]])
    return out


def lmm_cluster(
    P: np.ndarray, Xj: np.ndarray, ej: np.ndarray, M: np.ndarray, scale: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E_j e_j``, ``U_j = E_j X_j`` and ``S_j = E_j Phi_j E_j'`` for one cluster.

    ``D = L'`` with ``L L' = Phi_j``; ``B = D Phi_j D' - D X_j M X_j' D'`` and
    ``E_j = M X_j' W_j A_j = M (B^{-1/2} L^{-1} X_j)' L'``.  ``L`` and ``D Phi D'``
    are built per diagonal block of ``Phi_j`` (one per client when clients are
    nested in the cluster); the symmetric ``B^{-1/2}`` is applied to the ``p``
    columns through the eigendecomposition of ``B`` without being formed;
    eigenvalues at or below ``EIG_TOL * max(1, largest, scale)`` count as zero
    (``scale``: the largest eigenvalue of the full ``B`` when this is a reduced
    problem, see :func:`project_lowrank`).
    """
    n, p = Xj.shape
    T = np.zeros((n, n))
    LX = np.empty((n, p))
    Xw = np.empty((n, p))
    Le = np.empty(n)
    for ix in diagonal_blocks(P):  # ix: (k, s) rows of k blocks of equal size s
        L = lower_chol(P[ix[:, :, None], ix[:, None, :]])  # (k, s, s)
        Lt = L.transpose(0, 2, 1)
        Sc = Lt @ L
        T[ix[:, :, None], ix[:, None, :]] = Sc @ Sc  # D Phi D' = L' L L' L
        LX[ix] = Lt @ Xj[ix]
        Le[ix] = (Lt @ ej[ix][:, :, None])[:, :, 0]
        Xw[ix] = np.linalg.solve(L, Xj[ix])
    B = T - LX @ M @ LX.T
    vals, vecs = np.linalg.eigh((B + B.T) / 2.0)
    keep = vals > EIG_TOL * max(1.0, float(vals[-1]) if vals.size else 0.0, scale)
    f = np.zeros_like(vals)
    f[keep] = vals[keep] ** -0.5
    Yb = vecs @ (f[:, None] * (vecs.T @ Xw))  # B^{-1/2} L^{-1} X_j
    return M @ (Yb.T @ Le), M @ (Yb.T @ LX), M @ (Yb.T @ T @ Yb) @ M


@dataclass(frozen=True, eq=False)
class LowRankCovariance:
    """Working covariance ``sigma2 * I + F F'`` of one cluster (``n x n``, never formed).

    A linear mixed model whose random effects are nested in the cluster has
    ``V_j = sigma^2 I + Z_j T_j Z_j'`` (``T_j``: the random-effect covariance of
    the cluster's groups); ``F_j = Z_j T_j^{1/2}`` (:meth:`from_components`).

    Attributes
    ----------
    sigma2 : float
        Residual variance (``> 0``).
    F : ndarray, shape (n, r)
        Low-rank factor; ``r`` may be 0.
    """

    sigma2: float
    F: np.ndarray

    def __post_init__(self) -> None:
        F = np.asarray(self.F, dtype=float)
        if F.ndim != 2 or not np.all(np.isfinite(F)):
            raise ModelError("the low-rank factor of a working covariance block must be a "
                             "finite 2-D array")
        if not (np.isfinite(self.sigma2) and self.sigma2 > 0.0):
            raise ModelError("a working covariance block needs a positive residual variance")
        object.__setattr__(self, "F", F)
        object.__setattr__(self, "sigma2", float(self.sigma2))

    @classmethod
    def from_components(cls, sigma2: float, Z: np.ndarray, T: np.ndarray) -> LowRankCovariance:
        """``sigma2 I + Z T Z'`` with ``T`` symmetric positive semi-definite.

        ``F = Z T^{1/2}`` from the eigendecomposition of ``T``; directions with a
        zero (or round-off negative) eigenvalue are left out, so a boundary fit
        gives a smaller ``r``.
        """
        Z = np.asarray(Z, dtype=float)
        T = np.asarray(T, dtype=float)
        if Z.ndim != 2 or T.shape != (Z.shape[1], Z.shape[1]):
            raise ModelError("Z and T of a working covariance block do not conform")
        return cls(sigma2, Z @ psd_root(T))

    @property
    def shape(self) -> tuple[int, int]:
        n = self.F.shape[0]
        return (n, n)

    @property
    def rank(self) -> int:
        """Number of columns of ``F``."""
        return self.F.shape[1]

    def dense(self) -> np.ndarray:
        """The ``n x n`` matrix (for the exact path and for checks)."""
        out = self.F @ self.F.T
        out[np.diag_indices_from(out)] += self.sigma2
        return out


def project_lowrank(
    block: LowRankCovariance, Xj: np.ndarray, ej: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cluster's CR2 problem reduced to ``k <= p + r`` dimensions: ``(Phi_s, X_s, e_s)``.

    Derivation (notation of :mod:`effectstudy.multilevel.robust`; Bell & McCaffrey,
    2002; Pustejovsky & Tipton, 2018, sec. 2).  With inverse-variance weights the
    cluster's block is ``C = Phi - X M X'`` (``Phi = Phi_j = s I + F F'``,
    ``X = X_j``, ``s = sigma2``) and the CR2 adjustment is
    ``A = D' B^{-1/2} D`` with ``B = D C D'`` and ``D' D = Phi`` (clubSandwich
    takes ``D`` upper Cholesky; ``B^{-1/2}`` is the pseudo-inverse square root,
    eigenvalues at or below the ``EIG_TOL`` threshold count as zero).

    1. ``A`` does not depend on the factor: any other ``D2`` with ``D2' D2 = Phi``
       is ``O D`` with ``O = D2 D^{-1}`` orthogonal, so ``B2 = O B O'`` has the
       same eigenvalues (the same ones are zeroed), ``B2^{-1/2} = O B^{-1/2} O'``
       and ``D2' B2^{-1/2} D2 = A``.
    2. Let ``Q`` (``n x k``, orthonormal columns) span ``[X, F]`` (QR).  Then
       ``Phi Q = Q Phi_s`` with ``Phi_s = Q' Phi Q = s I_k + F_s F_s'``,
       ``F_s = Q' F``, and ``X = Q X_s`` with ``X_s = Q' X``, so
       ``C Q = Q C_s`` with ``C_s = Phi_s - X_s M X_s'``; on the orthogonal
       complement ``Phi = C = s I``.  Take the symmetric factor
       ``D = Phi^{1/2} = Q Phi_s^{1/2} Q' + s^{1/2} (I - Q Q')``: then
       ``B = Q B_s Q' + s^2 (I - Q Q')`` with ``B_s = Phi_s^{1/2} C_s Phi_s^{1/2}``,
       so (by 1.) ``A = Q A_s Q' + c (I - Q Q')`` where
       ``A_s = D_s' B_s^{-1/2} D_s`` is the CR2 adjustment of the ``k``-dimensional
       problem (any factor ``D_s' D_s = Phi_s``) and ``c = 1`` (``0`` if
       ``s^2`` counts as zero).  The eigenvalues of ``B`` are those of ``B_s``
       and ``s^2``, so the zero threshold (relative to the largest, see
       ``EIG_TOL``) is taken with ``s^2`` in the maximum.  In the whitened
       metric the adjustment is the identity plus a correction of rank
       ``<= k``, found from one ``k x k`` eigenproblem; ``Phi_s`` is factored
       by a ``k x k`` Cholesky.  (A ``p``-dimensional eigenproblem would give
       the whitened-OLS adjustment ``K^{-1/2}``,
       ``K = I - Phi^{-1/2} X M X' Phi^{-1/2}``, i.e.
       ``A = Phi^{1/2} K^{-1/2} Phi^{-1/2}``; clubSandwich's is
       ``A = Phi^{1/2} (Phi K Phi)^{-1/2} Phi^{1/2}``, the same only when
       ``Phi`` and ``K`` commute, so the ``r`` directions of ``F`` are needed.)
    3. Everything CR2 takes from the cluster passes through
       ``E_j = M X' W A`` with ``W = Phi^{-1} = Q Phi_s^{-1} Q' + s^{-1} (I - Q Q')``:
       ``X' W = X_s' Phi_s^{-1} Q'``, hence ``E_j = M X_s' Phi_s^{-1} A_s Q'``
       and the complement drops out.  So ``E_j e_j = E_s e_s`` (``e_s = Q' e_j``),
       ``U_j = E_j X_j = E_s X_s``, ``S_j = E_j Phi E_j' = E_s Phi_s E_s'`` and
       ``X_j' W_j X_j = X_s' Phi_s^{-1} X_s``: the cluster's ``(Phi_j, X_j, e_j)``
       may be replaced by ``(Phi_s, X_s, e_s)`` in every CR2, Satterthwaite and
       HTZ formula, exactly (not an approximation).

    Cost ``O(n k^2 + k^3)`` instead of ``O(n^3)``.  ``Q`` may contain directions
    beyond ``span([X, F])`` (a rank-deficient ``[X, F]``): any subspace that
    contains ``span(F)`` is invariant under ``Phi``, so that is harmless.  When
    ``F`` falls apart into independent blocks (random effects per client, no
    random effect of the whole cluster), ``Q = [Q_F, Q_X]``: one small QR per
    block of ``F`` and the part of ``span(X)`` outside it (directions of ``X``
    below 1e-11 of its unit-scaled columns are dropped there), so the basis costs
    ``O(n (p + r_c)^2)`` instead of ``O(n k^2)``.

    Parameters
    ----------
    block : LowRankCovariance
        ``Phi_j = sigma2 I + F F'``.
    Xj : ndarray, shape (n, p)
        The cluster's rows of the fixed-effects design.
    ej : ndarray, shape (n,)
        The cluster's residuals.

    Returns
    -------
    Phi_s : ndarray, shape (k, k)
    X_s : ndarray, shape (k, p)
    e_s : ndarray, shape (k,)

    References
    ----------
    Bell, R. M., & McCaffrey, D. F. (2002). Bias reduction in standard errors for
    linear regression with multi-stage samples. *Survey Methodology*, 28(2), 169-181.

    Pustejovsky, J. E., & Tipton, E. (2018). Small-sample methods for
    cluster-robust variance estimation and hypothesis testing in fixed effects
    models. *Journal of Business & Economic Statistics*, 36(4), 672-683.
    """
    F = block.F
    if F.shape[0] != Xj.shape[0]:
        raise ModelError("a working covariance block does not match its cluster's rows")
    parts = _independent_parts(F)
    if parts is None:
        cols = _unit_columns(np.hstack([Xj, F]))
        Q, _ = np.linalg.qr(cols)  # orthonormal even where [X, F] is rank deficient
        Fs = Q.T @ F
        Ps = Fs @ Fs.T
        Xs, es = Q.T @ Xj, Q.T @ ej
    else:
        Fs_blocks, Xs, es, QF = _blockwise_basis(F, parts, Xj, ej)
        QX = _complement_basis(_unit_columns(Xj), QF)
        Fs = sparse.vstack([Fs_blocks, sparse.csr_matrix(QX.T @ F)]).tocsr()
        Ps = np.asarray((Fs @ Fs.T).todense())
        Xs = np.vstack([Xs, QX.T @ Xj])
        es = np.concatenate([es, QX.T @ ej])
    Ps[np.diag_indices_from(Ps)] += block.sigma2
    return Ps, Xs, es


def _unit_columns(a: np.ndarray) -> np.ndarray:
    norms = np.sqrt(np.einsum("ij,ij->j", a, a))
    return a / np.where(norms > 0.0, norms, 1.0)


def _independent_parts(F: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]] | None:
    """Row and column sets of the independent blocks of ``F`` (one per client when the
    random effects are per client), or ``None`` when one block holds most rows."""
    n, r = F.shape
    if r == 0:
        return None
    rows, cols = np.nonzero(F)
    graph = sparse.coo_matrix((np.ones(rows.size), (rows, n + cols)), shape=(n + r, n + r))
    ncomp, lab = connected_components(graph, directed=False)
    rlab, clab = lab[:n], lab[n:]
    counts = np.bincount(rlab, minlength=ncomp)
    if counts.max(initial=0) > n // 2:
        return None
    rorder = np.argsort(rlab, kind="stable")
    corder = np.argsort(clab, kind="stable")
    rb = np.searchsorted(rlab[rorder], np.arange(ncomp + 1))
    cb = np.searchsorted(clab[corder], np.arange(ncomp + 1))
    return [
        (rorder[rb[c] : rb[c + 1]], corder[cb[c] : cb[c + 1]])
        for c in range(ncomp)
        if rb[c + 1] > rb[c] and cb[c + 1] > cb[c]
    ]


def _blockwise_basis(
    F: np.ndarray,
    parts: list[tuple[np.ndarray, np.ndarray]],
    Xj: np.ndarray,
    ej: np.ndarray,
) -> tuple[sparse.csr_matrix, np.ndarray, np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """``Q_F' F`` (sparse), ``Q_F' X``, ``Q_F' e`` and ``Q_F`` for the orthonormal basis
    ``Q_F`` of ``span(F)`` made of one QR per independent block (blocks of equal shape
    batched); ``Q_F`` is returned as ``(rows, Q)`` pairs, ``Q`` of shape ``(m, n_c, k_c)``."""
    r = F.shape[1]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (ri, ci) in enumerate(parts):
        groups.setdefault((ri.size, ci.size), []).append(i)
    fs_rows, xs, es, QF = [], [], [], []
    for members in groups.values():
        R_ix = np.stack([parts[i][0] for i in members])  # (m, n_c)
        C_ix = np.stack([parts[i][1] for i in members])  # (m, r_c)
        Q, Rf = np.linalg.qr(F[R_ix[:, :, None], C_ix[:, None, :]])  # F_c = Q R
        m, k = Q.shape[0], Q.shape[2]
        Qt = Q.transpose(0, 2, 1)
        xs.append((Qt @ Xj[R_ix]).reshape(m * k, -1))
        es.append((Qt @ ej[R_ix][:, :, None]).reshape(m * k))
        block = sparse.coo_matrix(
            (Rf.ravel(), (np.repeat(np.arange(m * k), C_ix.shape[1]),
                          np.repeat(C_ix, k, axis=0).ravel())),
            shape=(m * k, r),
        )
        fs_rows.append(block)
        QF.append((R_ix, Q))
    return sparse.vstack(fs_rows).tocsr(), np.vstack(xs), np.concatenate(es), QF


def _complement_basis(
    X: np.ndarray, QF: list[tuple[np.ndarray, np.ndarray]], tol: float = 1e-11
) -> np.ndarray:
    """Orthonormal basis of the part of ``span(X)`` outside ``span(Q_F)``.

    ``X`` is projected off ``Q_F`` twice (re-orthogonalisation); directions whose
    singular value is at or below ``tol`` (``X`` with unit columns) are dropped, so
    ``X`` lies in ``span([Q_F, Q_X])`` up to ``tol`` in norm; the kept ones are
    projected off ``Q_F`` once more before the final QR, so the joined basis is
    orthonormal to round-off.
    """

    def off(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        for R_ix, Q in QF:
            a[R_ix] -= Q @ (Q.transpose(0, 2, 1) @ a[R_ix])
        return a

    U, sv, _ = np.linalg.svd(off(off(X)), full_matrices=False)
    U = U[:, sv > tol]
    Q, _ = np.linalg.qr(off(U))
    return Q


def _cluster_problem(
    block: np.ndarray | LowRankCovariance, Xj: np.ndarray, ej: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(Phi, X, e, scale)`` of one cluster: reduced (low-rank block) or as given.

    ``scale`` is the eigenvalue of ``B`` left out by the reduction (``s^2``), 0 else.
    """
    if isinstance(block, LowRankCovariance):
        n, p = Xj.shape
        pays = n >= LOWRANK_MIN_ROWS and p + block.rank <= LOWRANK_FRACTION * n
        if method == "lowrank" or (method == "auto" and pays):
            return (*project_lowrank(block, Xj, ej), block.sigma2**2)
        return block.dense(), Xj, ej, 0.0
    return np.asarray(block, dtype=float), Xj, ej, 0.0


def cr2_core(
    X: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    idx: list[np.ndarray],
    phi_blocks: Sequence[np.ndarray | LowRankCovariance] | None,
    *,
    method: str = "auto",
) -> tuple[np.ndarray, CR2Pieces]:
    """CR2 covariance and the df pieces, one cluster block at a time.

    ``phi_blocks`` holds one working-covariance block per cluster: an
    ``n_j x n_j`` array (exact path) or a :class:`LowRankCovariance`.  ``method``
    chooses for the latter: ``"auto"`` (reduce when ``n_j >= 128`` and
    ``p + r <= 0.75 n_j``),
    ``"lowrank"`` (always reduce, :func:`project_lowrank`) or ``"exact"`` (the
    dense ``n_j x n_j`` block); all three give the same values up to round-off.
    """
    if method not in ("auto", "lowrank", "exact"):
        raise ModelError(f"method must be 'auto', 'lowrank' or 'exact', not {method!r}")
    p = X.shape[1]
    m = len(idx)
    e = y - X @ beta
    work: list[tuple[np.ndarray, np.ndarray, np.ndarray, float]] = []
    if phi_blocks is None:
        XtWX = X.T @ X
    else:
        XtWX = np.zeros((p, p))
        for ix, block in zip(idx, phi_blocks, strict=True):
            Pj, Xj, ej, scale = _cluster_problem(block, X[ix], e[ix], method)
            work.append((Pj, Xj, ej, scale))
            for cx in diagonal_blocks(Pj):
                L = lower_chol(Pj[cx[:, :, None], cx[:, None, :]])
                Xw = np.linalg.solve(L, Xj[cx])
                XtWX += np.einsum("kni,knj->ij", Xw, Xw)
    XtWX = (XtWX + XtWX.T) / 2.0
    try:
        R = np.linalg.cholesky(np.linalg.inv(XtWX))
        M = R @ R.T
    except np.linalg.LinAlgError as exc:
        raise ModelError("the design matrix is rank deficient") from exc
    meat = np.empty((p, m))
    S = np.empty((m, p, p))
    U = np.empty((m, p, p))
    for j, ix in enumerate(idx):
        if phi_blocks is None:
            Xj = X[ix]
            # Phi_j = I, D_j = I: B_j = I - X_j M X_j'
            Yb = ols_inv_sqrt_times(Xj, R)  # B^{-1/2} X_j
            Ep = M @ Yb.T  # E_j = M X_j' A_j  (p x n_j)
            meat[:, j] = Ep @ e[ix]
            U[j] = Ep @ Xj
            S[j] = Ep @ Ep.T
        else:
            Pj, Xj, ej, scale = work[j]
            meat[:, j], U[j], S[j] = lmm_cluster(Pj, Xj, ej, M, scale)
    vc = meat @ meat.T
    return (vc + vc.T) / 2.0, CR2Pieces(S=S, U=U, M=M)
