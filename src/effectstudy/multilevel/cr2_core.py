"""The CR2 computation on arrays, one cluster block at a time.

Split from :mod:`effectstudy.multilevel.robust` (results, formula and fit
handling live there; the formulas are in its docstring).  Bell & McCaffrey
(2002); Pustejovsky & Tipton (2018); Tipton & Pustejovsky (2015).  Nothing of
size ``N x N`` or ``m p x m p`` is formed: per cluster the ``n_j x n_j`` block
(and, for OLS, not even that), and ``p x p`` pieces for the df and HTZ tests.

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
    "CR2Pieces",
    "cr2_core",
    "diagonal_blocks",
    "hotelling",
    "sym_power",
]

#: eigenvalues of B_j at or below this are treated as zero (clubSandwich uses 1e-12)
EIG_TOL = 1e-12


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
    ncomp, lab = connected_components(sparse.csr_matrix(P != 0.0), directed=False)
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
    P: np.ndarray, Xj: np.ndarray, ej: np.ndarray, M: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E_j e_j``, ``U_j = E_j X_j`` and ``S_j = E_j Phi_j E_j'`` for one cluster.

    ``D = L'`` with ``L L' = Phi_j``; ``B = D Phi_j D' - D X_j M X_j' D'`` and
    ``E_j = M X_j' W_j A_j = M (B^{-1/2} L^{-1} X_j)' L'``.  ``L`` and ``D Phi D'``
    are built per diagonal block of ``Phi_j`` (one per client when clients are
    nested in the cluster); the symmetric ``B^{-1/2}`` is applied to the ``p``
    columns through the eigendecomposition of ``B`` without being formed.
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
    keep = vals > EIG_TOL
    f = np.zeros_like(vals)
    f[keep] = vals[keep] ** -0.5
    Yb = vecs @ (f[:, None] * (vecs.T @ Xw))  # B^{-1/2} L^{-1} X_j
    return M @ (Yb.T @ Le), M @ (Yb.T @ LX), M @ (Yb.T @ T @ Yb) @ M


def cr2_core(
    X: np.ndarray,
    y: np.ndarray,
    beta: np.ndarray,
    idx: list[np.ndarray],
    phi_blocks: Sequence[np.ndarray] | None,
) -> tuple[np.ndarray, CR2Pieces]:
    """CR2 covariance and the df pieces, one cluster block at a time."""
    p = X.shape[1]
    m = len(idx)
    if phi_blocks is None:
        XtWX = X.T @ X
    else:
        XtWX = np.zeros((p, p))
        for ix, Pj in zip(idx, phi_blocks, strict=True):
            Pj = np.asarray(Pj, dtype=float)
            for cx in diagonal_blocks(Pj):
                L = lower_chol(Pj[cx[:, :, None], cx[:, None, :]])
                Xw = np.linalg.solve(L, X[ix[cx]])
                XtWX += np.einsum("kni,knj->ij", Xw, Xw)
    XtWX = (XtWX + XtWX.T) / 2.0
    try:
        R = np.linalg.cholesky(np.linalg.inv(XtWX))
        M = R @ R.T
    except np.linalg.LinAlgError as exc:
        raise ModelError("the design matrix is rank deficient") from exc
    e = y - X @ beta
    meat = np.empty((p, m))
    S = np.empty((m, p, p))
    U = np.empty((m, p, p))
    for j, ix in enumerate(idx):
        Xj = X[ix]
        if phi_blocks is None:
            # Phi_j = I, D_j = I: B_j = I - X_j M X_j'
            Yb = ols_inv_sqrt_times(Xj, R)  # B^{-1/2} X_j
            Ep = M @ Yb.T  # E_j = M X_j' A_j  (p x n_j)
            meat[:, j] = Ep @ e[ix]
            U[j] = Ep @ Xj
            S[j] = Ep @ Ep.T
        else:
            Pj = np.asarray(phi_blocks[j], dtype=float)
            meat[:, j], U[j], S[j] = lmm_cluster(Pj, Xj, e[ix], M)
    vc = meat @ meat.T
    return (vc + vc.T) / 2.0, CR2Pieces(S=S, U=U, M=M)
