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
from scipy.sparse.linalg import splu

__all__ = ["block_diagonal", "central_differences", "profiled_parts_derivatives", "schur_lu",
           "CrossProducts", "PLSFactor", "LowRank", "Woodbury", "spd_blocks", "trace_product"]


def bmm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched product ``A_j B_j`` of small blocks: ``A`` ``(J, a, k)`` or one ``(a, k)``
    block for all, ``B`` ``(J, k, m)``. For small ``k`` a sum of ``k`` broadcast
    products, which is many times faster than ``np.matmul`` on tiny matrices."""
    k = B.shape[1]
    if k > 6:
        return np.matmul(A, B)
    A3 = A[None] if A.ndim == 2 else A
    out = A3[:, :, 0, None] * B[:, None, 0, :]
    for b in range(1, k):
        out += A3[:, :, b, None] * B[:, None, b, :]
    return out


def block_diagonal(blocks: np.ndarray, size: int | None = None) -> sparse.csr_matrix:
    """The ``(J, k, k)`` stack as a sparse block-diagonal matrix (padded with zero
    rows and columns to ``size``)."""
    J, k, _ = blocks.shape
    base = np.arange(J)[:, None, None] * k
    rows = np.broadcast_to(base + np.arange(k)[None, :, None], blocks.shape)
    cols = np.broadcast_to(base + np.arange(k)[None, None, :], blocks.shape)
    n = J * k if size is None else size
    return sparse.csr_matrix((blocks.ravel(), (rows.ravel(), cols.ravel())), shape=(n, n))


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
    lam: sparse.csc_matrix | None  # Lambda (internal order; None: not formed)
    B: sparse.csc_matrix | None  # Z Lambda (n x q, internal order; None: not formed)
    A11inv: np.ndarray  # (J1, kb, kb)
    Y: np.ndarray  # (q1, q2)
    S_cho: tuple[np.ndarray, bool] | None
    S_inv: np.ndarray | None  # (q2, q2); None on the "sparse-lu" path
    ldL2: float
    RZX_cross: np.ndarray  # (Lambda'Z'X)' M^-1 (Lambda'Z'X)
    LX: np.ndarray
    beta: np.ndarray
    r2: float
    ldRX2: float
    q1: int
    kb: int
    Tb: np.ndarray | None = None  # dense path: Lambda of one level of the block part
    L2: Any = None  # dense path: Lambda of the second part (q2 x q2; sparse if q2 > 64)
    MiX: np.ndarray | None = None  # M^-1 Lambda'Z'X
    Miy: np.ndarray | None = None  # M^-1 Lambda'Z'y
    S_lu: Any = None  # "sparse-lu" path: SuperLU factor of S (then Y is sparse, S_inv None)

    def solve(self, r: np.ndarray) -> np.ndarray:
        """``M^-1 r`` for a dense ``q`` or ``q x m`` array."""
        r = np.asarray(r, dtype=float)
        vec = r.ndim == 1
        r2d = r[:, None] if vec else r
        q1, kb = self.q1, self.kb
        m = r2d.shape[1]
        top = r2d[:q1]
        x1 = bmm(self.A11inv, top.reshape(-1, kb, m)).reshape(q1, m)
        if self.S_cho is not None:
            x2 = linalg.cho_solve(self.S_cho, r2d[q1:] - self.Y.T @ top, check_finite=False)
            x1 = x1 - self.Y @ x2
            out = np.vstack([x1, x2])
        elif self.S_lu is not None:
            x2 = self.S_lu.solve(np.asarray(r2d[q1:] - self.Y.T @ top))
            out = np.vstack([x1 - np.asarray(self.Y @ x2), x2])
        else:
            out = x1
        return out[:, 0] if vec else out

    @property
    def q2(self) -> int:
        return self.Y.shape[1]

    def D_sparse(self) -> sparse.csr_matrix:
        """``D = diag(A11^-1, 0)`` as a sparse ``q x q`` matrix."""
        return block_diagonal(self.A11inv, self.q1 + self.q2)


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


# ---------------------------------------------------------------------------
# the same algebra in "q-space": cross-products only, dense and batched per level
# ---------------------------------------------------------------------------
@dataclass
class CrossProducts:
    """``Z'Z``, ``Z'X`` and ``Z'y`` in the internal column order of ``M``, dense.

    ``Z'Z`` of the block part is block diagonal (every row has one level of
    the largest grouping factor), so it is kept as ``G1`` (one ``kb x kb``
    block per level); ``C12 = Z_1'Z_2`` and ``C22 = Z_2'Z_2`` are dense (the
    second part has at most a few thousand columns). With these, ``M``,
    ``Lambda'Z'X``, ``Lambda'Z'y`` and every product the deviance and its
    gradient need cost ``O(q1 kb^2 + q1 q2^2 + q2^3)``: no product with an
    ``n``-vector and no ``scipy.sparse`` call per evaluation (for a large second
    part ``Lambda_2`` is a sparse block-diagonal matrix). This is the
    penalised least-squares system of Bates et al. (2015, sec. 3) written in
    cross-products only.
    """

    G1: np.ndarray  # (J1, kb, kb)
    C12: np.ndarray  # (J1, kb, q2)
    C22: np.ndarray  # (q2, q2)
    ZtX: np.ndarray  # (q, p)
    Zty: np.ndarray  # (q,)
    tb_pos: tuple[np.ndarray, np.ndarray, np.ndarray]  # (row, col, theta) in one level's T_b
    l2_pos: tuple[np.ndarray, np.ndarray, np.ndarray]  # the same in Lambda_2 (local)
    lam_pos: tuple[np.ndarray, np.ndarray, np.ndarray]  # the same in Lambda (all levels)
    n_theta: int

    @property
    def kb(self) -> int:
        return self.G1.shape[1]

    @property
    def q1(self) -> int:
        return self.G1.shape[0] * self.G1.shape[1]

    @property
    def q2(self) -> int:
        return self.C22.shape[0]

    def lambdas(self, theta: np.ndarray) -> tuple[np.ndarray, Any]:
        """``T_b`` (``Lambda`` of one level of the block part) and ``Lambda_2``."""
        Tb = np.zeros((self.kb, self.kb))
        r, c, o = self.tb_pos
        Tb[r, c] = theta[o]
        q2 = self.q2
        r, c, o = self.l2_pos
        if q2 > 64:  # block diagonal: a dense product with it would cost q2^3
            return Tb, sparse.csr_matrix((theta[o], (r, c)), shape=(q2, q2))
        L2 = np.zeros((q2, q2))
        L2[r, c] = theta[o]
        return Tb, L2

    def factor(self, theta: np.ndarray) -> PLSFactor:
        """The factor of ``M`` at ``theta`` (without ``Lambda``, ``B`` and ``beta``)."""
        Tb, L2 = self.lambdas(theta)
        ld, A11inv, Y, S_cho = self.blocks(Tb, L2)
        S_inv = (linalg.cho_solve(S_cho, np.eye(self.q2), check_finite=False)
                 if S_cho is not None else np.zeros((0, 0)))
        return PLSFactor(theta=theta, lam=None, B=None, A11inv=A11inv, Y=Y, S_cho=S_cho,
                         S_inv=S_inv, ldL2=ld, RZX_cross=np.empty(0), LX=np.empty(0),
                         beta=np.empty(0), r2=np.nan, ldRX2=np.nan, q1=self.q1, kb=self.kb,
                         Tb=Tb, L2=L2)

    def lam_t(self, Tb: np.ndarray, L2: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``Lambda' v`` for a dense ``q x m`` array."""
        q1, kb = self.q1, self.kb
        m = v.shape[1]
        top = bmm(Tb.T, v[:q1].reshape(-1, kb, m)).reshape(q1, m)
        return np.vstack([top, np.asarray(L2.T @ v[q1:])]) if self.q2 else top

    def ztz_lam(self, Tb: np.ndarray, L2: np.ndarray, v: np.ndarray) -> np.ndarray:
        """``Z'Z Lambda v`` for a dense ``q x m`` array."""
        q1, kb = self.q1, self.kb
        m = v.shape[1]
        w1 = bmm(Tb, v[:q1].reshape(-1, kb, m))
        top = bmm(self.G1, w1)
        if not self.q2:
            return top.reshape(q1, m)
        w2 = np.asarray(L2 @ v[q1:])
        top = top.reshape(q1, m) + self.C12.reshape(q1, -1) @ w2
        bot = self.C12.reshape(q1, -1).T @ w1.reshape(q1, m) + self.C22 @ w2
        return np.vstack([top, bot])

    def blocks(self, Tb: np.ndarray, L2: np.ndarray
               ) -> tuple[float, np.ndarray, np.ndarray, tuple[np.ndarray, bool] | None]:
        """Block elimination of ``M``: ``log|M|``, ``A11^-1`` blocks, ``Y = A11^-1 A12``
        (``q1 x q2``) and the Cholesky factor of the Schur complement."""
        kb, q2 = self.kb, self.q2
        A11 = (bmm(Tb.T, self.G1).reshape(-1, kb) @ Tb).reshape(-1, kb, kb) + np.eye(kb)
        ld, A11inv = spd_blocks(A11)
        if not q2:
            return ld, A11inv, np.zeros((self.q1, 0)), None
        A12 = np.asarray(bmm(Tb.T, self.C12).reshape(self.q1, q2) @ L2)
        A22 = np.asarray(L2.T @ np.asarray(self.C22 @ L2)) + np.eye(q2)
        Y = bmm(A11inv, A12.reshape(-1, kb, q2)).reshape(self.q1, q2)
        S = A22 - A12.T @ Y
        S_cho = linalg.cho_factor(0.5 * (S + S.T), lower=True, check_finite=False)
        ld += 2.0 * float(np.sum(np.log(np.diag(S_cho[0]))))
        return ld, A11inv, Y, S_cho

    def trace_terms(self, f: PLSFactor, Tb: np.ndarray, L2: np.ndarray,
                    block_pos: tuple[np.ndarray, np.ndarray],
                    rest_pos: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """``(M^-1 Lambda'Z'Z)[c, r]`` at the positions ``(r, c)`` of ``theta`` in ``Lambda``.

        ``block_pos`` are positions within one level of the block part (every
        level has the same ones; the sum over levels is returned), ``rest_pos``
        positions in the second part (local to it). With ``M^-1 = D + U S^-1 U'``
        and ``F = Lambda'Z'Z``: ``(D F)_j = A11_j^-1 T' G1_j`` and the low-rank
        part ``U S^-1 (F'U)'`` with ``F'U = Z'Z Lambda U``.
        """
        rb, cb = block_pos
        DF = bmm(f.A11inv, bmm(Tb.T, self.G1)).sum(axis=0)  # sum_j (D F)_j
        tb = DF[cb, rb]
        if not self.q2:
            return tb, np.zeros(0)
        q1, kb, q2 = self.q1, self.kb, self.q2
        U = np.vstack([-f.Y, np.eye(q2)])
        FU = self.ztz_lam(Tb, L2, U)
        YS = f.Y @ f.S_inv
        K = np.einsum("jcs,jrs->cr", YS.reshape(-1, kb, q2), FU[:q1].reshape(-1, kb, q2),
                      optimize=True)
        tb = tb - K[cb, rb]
        r2, c2 = rest_pos
        tr2 = np.sum(f.S_inv[c2] * FU[q1:][r2], axis=1)
        return tb, tr2

    def profiled_gradient(self, f: PLSFactor, sigma2: float, reml: bool) -> np.ndarray:
        """Gradient of the profiled deviance in ``theta``: ``tr(T V_k) - y'P V_k P y``.

        With the positions ``(r_l, c_l)`` of ``theta_k`` in ``Lambda`` and ``F =
        Lambda'Z'Z``: ``tr(V^-1 V_k) = 2 sum_l (M^-1 F)[c_l, r_l]``
        (:meth:`trace_terms`), ``y'P V_k P y = 2 sum_l (Z'e)[r_l] (Lambda'Z'e)[c_l] /
        sigma^2`` and the REML term ``2 sum_l (Z'RX)[r_l] C_r (Lambda'Z'RX)[c_l]'``, with
        ``Z'e`` and ``Z'RX`` from cross-products (``R = I - B M^-1 B'``).
        """
        Tb, L2, m = f.Tb, f.L2, self.n_theta
        tb, tr2 = self.trace_terms(f, Tb, L2, self.tb_pos[:2], self.l2_pos[:2])
        g = 2.0 * (np.bincount(self.tb_pos[2], weights=tb, minlength=m)
                   + np.bincount(self.l2_pos[2], weights=tr2, minlength=m))
        r, c, owner = self.lam_pos
        # Z'e = Z'r0 - Z'Z Lambda M^-1 Lambda'Z'r0, r0 = y - X beta
        Ztr0 = self.Zty - self.ZtX @ f.beta
        Zte = Ztr0 - self.ztz_lam(Tb, L2, (f.Miy - f.MiX @ f.beta)[:, None])[:, 0]
        LZte = self.lam_t(Tb, L2, Zte[:, None])[:, 0]
        g -= 2.0 * np.bincount(owner, weights=Zte[r] * LZte[c], minlength=m) / sigma2
        if reml:
            p = f.LX.shape[0]
            Cr = linalg.cho_solve((f.LX, True), np.eye(p), check_finite=False)
            ZR = self.ZtX - self.ztz_lam(Tb, L2, f.MiX)  # Z'R X
            LZR = self.lam_t(Tb, L2, ZR)
            g -= 2.0 * np.bincount(owner, weights=np.sum((ZR[r] @ Cr) * LZR[c], axis=1),
                                   minlength=m)
        return g


# ---------------------------------------------------------------------------
# the "sparse-lu" path: a large second part (e.g. crossed clients x raters)
# ---------------------------------------------------------------------------
def schur_lu(B: sparse.csc_matrix, q1: int, A11inv: np.ndarray) -> tuple[sparse.csr_matrix, Any,
                                                                           float]:
    """Sparse ``Y = A11^-1 A12``, the SuperLU factor of ``S = A22 - A12' Y`` and ``log|S|``.

    ``B = Z Lambda`` (sparse, internal order). SuperLU (Li 2005, "An overview of
    SuperLU", *ACM TOMS* 31(3)) with the symmetric minimum-degree ordering of
    ``S + S'`` and no pivoting off the diagonal factors the symmetric positive
    definite ``S`` as ``P S P' = L U`` with unit ``L``; then ``log|S| = sum(log
    U_ii)``, and a non-positive pivot means ``S`` is not positive definite. No
    dense ``q2 x q2`` or ``q1 x q2`` matrix is formed.
    """
    B1, B2 = B[:, :q1], B[:, q1:]
    q2 = B2.shape[1]
    A12 = sparse.csr_matrix(B1.T @ B2)
    Y = sparse.csr_matrix(block_diagonal(A11inv) @ A12)
    S = sparse.csc_matrix(B2.T @ B2 + sparse.identity(q2) - A12.T @ Y)
    lu = splu(sparse.csc_matrix(0.5 * (S + S.T)), permc_spec="MMD_AT_PLUS_A",
              diag_pivot_thresh=0.0, options=dict(SymmetricMode=True))
    piv = lu.U.diagonal()
    if not np.all(piv > 0):
        raise np.linalg.LinAlgError("Schur complement not positive definite")
    return Y, lu, float(np.sum(np.log(piv)))


def central_differences(fun: Any, x: np.ndarray, h: np.ndarray, hessian: bool = True,
                        f0: np.ndarray | None = None
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Value, gradient ``(m, d)`` and Hessian ``(m, m, d)`` of a vector function by
    central differences with steps ``h`` (error ``O(h^2)``); ``f0`` is ``fun(x)``
    if known."""
    m = len(x)

    def at(*steps: tuple[int, float]) -> np.ndarray:
        y = np.array(x, dtype=float)
        for i, sgn in steps:
            y[i] += sgn * h[i]
        return np.asarray(fun(y), dtype=float)

    f0 = at() if f0 is None else np.asarray(f0, dtype=float)
    up = [at((i, 1.0)) for i in range(m)]
    dn = [at((i, -1.0)) for i in range(m)]
    g = np.array([(up[i] - dn[i]) / (2.0 * h[i]) for i in range(m)])
    if not hessian:
        return f0, g, None
    H = np.empty((m, m) + f0.shape)
    for i in range(m):
        H[i, i] = (up[i] - 2.0 * f0 + dn[i]) / h[i] ** 2
        for j in range(i + 1, m):
            H[i, j] = H[j, i] = (at((i, 1), (j, 1)) - at((i, 1), (j, -1)) - at((i, -1), (j, 1))
                                 + at((i, -1), (j, -1))) / (4.0 * h[i] * h[j])
    return f0, g, H


def profiled_parts_derivatives(parts: Any, theta: np.ndarray, scale: np.ndarray, sigma: float,
                               nr: int, hessian: bool = True, f0: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradient and Hessian of the deviance in ``(theta, sigma)`` by central differences
    in ``theta`` (``sigma`` analytic), for the ``"sparse-lu"`` path.

    The deviance is ``d(theta) + nr log(2 pi sigma^2) + r2(theta) / sigma^2`` with
    ``(d, r2) = parts(theta)`` (``d = log|L|^2``, plus ``log|R_X|^2`` for REML;
    ``nr = n`` or ``n - p``; ``f0 = parts(theta)`` if known), so only ``d`` and ``r2``
    are differenced, as lmerTest
    differences the deviance (Kuznetsova, Brockhoff & Christensen 2017, *J. Stat.
    Softw.* 82(13)). Steps are fractions of ``|theta|``, at least of ``scale`` (the
    size of a unit of ``theta``), chosen by measurement: the rounding of ``r2`` (a
    difference of sums of squares) dominates below ``1e-5`` of it (gradient) and
    ``1e-3`` (Hessian; at least ``5e-4 scale``, for ``theta`` on its bound).
    """
    m = len(theta)
    f0, g, _ = central_differences(parts, theta, 1e-5 * np.maximum(np.abs(theta), 0.05 * scale),
                                   hessian=False, f0=f0)
    s2 = sigma**2
    grad = np.r_[g[:, 0] + g[:, 1] / s2, 2.0 * nr / sigma - 2.0 * f0[1] / sigma**3]
    if not hessian:
        return grad, None
    H = central_differences(parts, theta, 1e-3 * np.maximum(np.abs(theta), 0.5 * scale))[2]
    hess = np.empty((m + 1, m + 1))
    hess[:m, :m] = H[:, :, 0] + H[:, :, 1] / s2
    hess[:m, m] = hess[m, :m] = -2.0 * g[:, 1] / sigma**3
    hess[m, m] = -2.0 * nr / s2 + 6.0 * f0[1] / s2**2
    return grad, hess
