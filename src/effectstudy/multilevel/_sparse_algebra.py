"""Block-sparse linear algebra of the mixed-model engine.

``M = Lambda'Z'Z Lambda + I`` is factored by block elimination (one small
block per level of the largest grouping factor, a dense Schur complement for
the rest), so that ``M^-1 = D + U S^-1 U'`` with ``D`` block diagonal and ``U``
thin (see :mod:`effectstudy.multilevel._engine`). :class:`Woodbury` applies
``R = sigma^2 V^-1 = I - B M^-1 B'`` (Woodbury's identity, ``B = Z Lambda``)
to thin dense matrices and forms ``b' R c`` of sparse ``n x J`` indicator
matrices as "sparse minus low rank" (:class:`LowRank`), whose trace products
(:func:`trace_product`) give every trace of the REML derivatives and of the
Kenward-Roger information without an ``n x n`` or dense ``q x q`` matrix.
Bates, Maechler, Bolker & Walker (2015), *J. Stat. Softw.* 67(1), sec. 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, sparse

__all__ = ["PLSFactor", "LowRank", "Woodbury", "spd_blocks", "trace_product"]


def spd_blocks(A: np.ndarray) -> tuple[float, np.ndarray]:
    """``sum log|A_l|`` and the inverses of a stack of small SPD blocks ``(J, k, k)``.

    Closed forms for ``k <= 2``, batched Cholesky otherwise; raises
    :class:`numpy.linalg.LinAlgError` if a block is not positive definite.
    """
    k = A.shape[1]
    if k == 1:
        a = A[:, 0, 0]
        if np.any(~(a > 0)):
            raise np.linalg.LinAlgError("block not positive definite")
        return float(np.sum(np.log(a))), (1.0 / a)[:, None, None]
    if k == 2:
        a, b, d = A[:, 0, 0], A[:, 0, 1], A[:, 1, 1]
        det = a * d - b * b
        if np.any(~(a > 0)) or np.any(~(det > 0)):
            raise np.linalg.LinAlgError("block not positive definite")
        inv = np.empty_like(A)
        inv[:, 0, 0] = d / det
        inv[:, 1, 1] = a / det
        inv[:, 0, 1] = inv[:, 1, 0] = -b / det
        return float(np.sum(np.log(det))), inv
    L = np.linalg.cholesky(A)
    ld = 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
    return ld, np.linalg.inv(A)


# ---------------------------------------------------------------------------
# factor of M = Lambda'Z'Z Lambda + I and the "sparse + low rank" algebra
# ---------------------------------------------------------------------------
@dataclass
class PLSFactor:
    """Factor of ``M`` at one ``theta`` with the conditional estimates (internal order).

    ``A11inv`` holds the inverse blocks of the block-diagonal part, ``Y =
    A11^-1 A12`` and ``S_cho`` the Cholesky factor of the Schur complement;
    ``LX`` is the lower Cholesky factor of ``R_X' R_X``.
    """

    theta: np.ndarray
    lam: sparse.csc_matrix  # Lambda (internal order)
    B: sparse.csc_matrix  # Z Lambda (n x q, internal order)
    A11inv: np.ndarray  # (J1, kb, kb)
    Y: np.ndarray  # (q1, q2)
    S_cho: tuple[np.ndarray, bool] | None
    S_inv: np.ndarray  # (q2, q2)
    ldL2: float
    RZX_cross: np.ndarray  # (Lambda'Z'X)' M^-1 (Lambda'Z'X)
    LX: np.ndarray
    beta: np.ndarray
    r2: float
    ldRX2: float
    q1: int
    kb: int

    def solve(self, r: np.ndarray) -> np.ndarray:
        """``M^-1 r`` for a dense ``q`` or ``q x m`` array."""
        r = np.asarray(r, dtype=float)
        vec = r.ndim == 1
        r2d = r[:, None] if vec else r
        q1, kb = self.q1, self.kb
        m = r2d.shape[1]
        top = r2d[:q1]
        x1 = np.matmul(self.A11inv, top.reshape(-1, kb, m)).reshape(q1, m)
        if self.S_cho is not None:
            x2 = linalg.cho_solve(self.S_cho, r2d[q1:] - self.Y.T @ top, check_finite=False)
            x1 = x1 - self.Y @ x2
            out = np.vstack([x1, x2])
        else:
            out = x1
        return out[:, 0] if vec else out

    @property
    def q2(self) -> int:
        return self.Y.shape[1]

    def D_sparse(self) -> sparse.csr_matrix:
        """``D = diag(A11^-1, 0)`` as a sparse ``q x q`` matrix."""
        J1, kb, _ = self.A11inv.shape
        base = np.arange(J1)[:, None, None] * kb
        rows = np.broadcast_to(base + np.arange(kb)[None, :, None], self.A11inv.shape)
        cols = np.broadcast_to(base + np.arange(kb)[None, None, :], self.A11inv.shape)
        q = self.q1 + self.q2
        return sparse.csr_matrix((self.A11inv.ravel(), (rows.ravel(), cols.ravel())),
                                 shape=(q, q))


@dataclass
class LowRank:
    """A ``J_b x J_c`` matrix ``S - L R'`` with ``S`` sparse and ``L, R`` thin dense."""

    S: sparse.csr_matrix
    L: np.ndarray
    R: np.ndarray

    def trace(self) -> float:
        return float(self.S.diagonal().sum() - np.sum(self.L * self.R))


def trace_product(X1: LowRank, X2: LowRank) -> float:
    """``tr(X1 X2)`` of two :class:`LowRank` matrices without forming them."""
    t = float(X1.S.multiply(X2.S.T).sum())
    t -= float(np.sum((X1.S @ X2.L) * X2.R))
    t -= float(np.sum(X1.R * (X2.S @ X1.L)))
    t += float(np.sum((X1.R.T @ X2.L) * (X2.R.T @ X1.L).T))
    return t


class Woodbury:
    """Products with ``R = sigma^2 V^-1 = I - B M^-1 B'`` at one factor.

    Operands are dense thin ``n x m`` arrays (:meth:`apply`) or sparse ``n x J``
    indicator matrices (one column per level; :meth:`cross` gives ``b' R c`` as
    :class:`LowRank`). Results for a sparse operand are cached by key.
    """

    def __init__(self, factor: PLSFactor) -> None:
        self.f = factor
        self.D = factor.D_sparse()
        self._h: dict[Any, tuple[Any, Any, np.ndarray, np.ndarray]] = {}
        self._x: dict[tuple[Any, Any], LowRank] = {}

    def apply(self, A: np.ndarray) -> np.ndarray:
        B = self.f.B
        return A - B @ self.f.solve(np.asarray(B.T @ A))

    def _pieces(self, key: Any, b: sparse.spmatrix):
        if key not in self._h:
            f = self.f
            H = sparse.csc_matrix(f.B.T @ b)  # q x J
            DH = sparse.csr_matrix(self.D @ H)
            if f.q2:
                UH = np.asarray(H[f.q1:].T.toarray()) - np.asarray(H[: f.q1].T @ f.Y)  # J x q2
            else:
                UH = np.zeros((b.shape[1], 0))
            self._h[key] = (b, H, DH, UH)
        return self._h[key]

    def cross(self, kb: Any, b: sparse.spmatrix, kc: Any, c: sparse.spmatrix) -> LowRank:
        """``b' R c = b'c - H_b' M^-1 H_c`` with ``H = B'b`` (cached by the keys)."""
        if (kb, kc) in self._x:
            return self._x[(kb, kc)]
        b_, Hb, _, UHb = self._pieces(kb, b)
        c_, Hc, DHc, UHc = self._pieces(kc, c)
        S = sparse.csr_matrix(b_.T @ c_ - Hb.T @ DHc)
        out = LowRank(S, UHb, UHc @ self.f.S_inv)
        self._x[(kb, kc)] = out
        return out

    def trace_Minv2(self, kb: Any, b: sparse.spmatrix, kc: Any, c: sparse.spmatrix) -> float:
        """``tr(H_b' M^-2 H_c)`` (for traces with ``R^2 = R - B M^-2 B'``)."""
        f = self.f
        _, _, DHb, UHb = self._pieces(kb, b)
        _, _, DHc, UHc = self._pieces(kc, c)
        Wb, Wc = UHb @ f.S_inv, UHc @ f.S_inv  # J x q2
        t = float(DHb.multiply(DHc).sum())
        if f.q2:
            DUb = -np.asarray(DHb[: f.q1].T @ f.Y)  # (D H_b)' U
            DUc = -np.asarray(DHc[: f.q1].T @ f.Y)
            UtU = f.Y.T @ f.Y + np.eye(f.q2)
            t += float(np.sum(DUb * Wc) + np.sum(DUc * Wb) + np.sum((Wc @ UtU) * Wb))
        return t

    def trace_Minv2_total(self) -> float:
        """``tr(M^-2) = ||M^-1||_F^2``."""
        f = self.f
        t = float(np.sum(f.A11inv**2))
        if f.q2:
            DY = np.matmul(f.A11inv, f.Y.reshape(-1, f.kb, f.q2)).reshape(f.q1, f.q2)
            t += 2.0 * float(np.sum(DY * (f.Y @ f.S_inv)))
            UtU = f.Y.T @ f.Y + np.eye(f.q2)
            K = UtU @ f.S_inv
            t += float(np.sum(K * K.T))
        return t
