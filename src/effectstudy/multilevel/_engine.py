"""Penalised least-squares engine of the linear mixed model (lme4's formulation).

Bates, Maechler, Bolker & Walker (2015), "Fitting linear mixed-effects models
using lme4", *Journal of Statistical Software* 67(1), sections 3.2-3.6:

* ``y = X beta + Z b + e``, ``b = Lambda(theta) u``, ``u ~ N(0, sigma^2 I_q)``,
  ``e ~ N(0, sigma^2 I_n)``, so ``V = sigma^2 (B B' + I)`` with ``B = Z Lambda``;
* ``Lambda(theta)`` is block diagonal, one lower-triangular ``k x k`` factor
  ``T_t`` per random term and level (``theta`` = its column-major lower
  triangle; diagonal elements bounded below by 0);
* for given ``theta`` the system ``M = L L' = Lambda'Z'Z Lambda + I`` (eq. 18),
  ``R_ZX``, ``R_X`` (eq. 26) give ``beta``, ``u`` and the profiled deviance
  (eq. 34 ML, eq. 41 REML) from ``log|L|^2``, ``log|R_X|^2`` and the penalised
  residual sum of squares ``r^2``.

Sparse structure, never an ``n x n`` matrix
-------------------------------------------
``Z`` is a ``scipy.sparse`` CSC matrix. The columns of ``M`` are ordered so
that the random terms of the grouping factor with the most levels (usually the
client) come first, level by level; that part of ``M`` is block diagonal with
one small ``k x k`` block per level. With the remaining ``q2`` columns (e.g.
the programme level of a three-level model, or a small crossed factor) ``M``
is factored by exact block elimination::

    M = [[A11, A12], [A21, A22]],   S = A22 - A21 A11^-1 A12   (q2 x q2, dense)
    log|M| = log|A11| + log|S|
    M^-1 = D + U S^-1 U',  D = diag(A11^-1, 0),  U = [-A11^-1 A12; I]

so that ``M^-1`` is "block diagonal plus rank ``q2``". Every quantity of the
derivatives is reduced, through Woodbury's identity
``V^-1 = sigma^-2 (I - B M^-1 B')``, to products of sparse ``n x J`` indicator
matrices (one column per level of a grouping factor) and thin dense matrices
(``n x p``, ``J x q2``). Cost and memory are linear in ``n`` for a fixed ``q2``.

Paths (:attr:`PLSModel.path`): ``"dense"`` (``q2 <= MAX_SCHUR``) forms ``M``, the
deviance and its gradient from dense cross-products (``CrossProducts``; no
``n``-vector, no ``scipy.sparse`` call per evaluation) with a dense ``S``;
``"sparse-lu"`` (crossed designs with two large factors) keeps ``S`` sparse
(SuperLU, ``log|S|`` from the factor's diagonal), differences ``log|L|^2`` and
``r^2`` centrally for the derivatives (as lmerTest does the deviance), and
refuses what needs ``S^-1`` (Kenward-Roger, conditional variances).

The optimiser (bounded L-BFGS-B from two starts, the second-order KKT check
at the bounds, Newton polish) is :class:`effectstudy.multilevel.fitting.LinearMixedModel`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, sparse

from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel._sparse_algebra import (
    CrossProducts,
    PLSFactor,
    Woodbury,
    profiled_parts_derivatives,
    schur_lu,
    spd_blocks,
    trace_product,
)
from effectstudy.multilevel.design import DesignInfo, design_matrix, formula_variables
from effectstudy.multilevel.formula import ParsedFormula, RandomTerm, parse_formula

__all__ = ["PLSModel", "ReTerm", "SINGULAR_MESSAGE", "SINGULAR_TOL",
           "FEW_CLUSTERS", "FewClustersWarning", "MAX_SCHUR", "RANK_TOL", "single_thread"]

SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
#: lme4's default tolerance of ``isSingular()``.
SINGULAR_TOL = 1e-4
#: Below this many levels a grouping factor's variance is poorly estimated.
FEW_CLUSTERS = 6
#: Largest number of random-effect columns outside the block-diagonal part with a dense
#: Schur complement; above it the complement is sparse (SuperLU, :meth:`PLSModel.factor`).
MAX_SCHUR = 3000
#: Also sparse above ``DENSE_Q2`` columns if the dense one costs over ``DENSE_WORK`` flops
#: (``q1 q2^2``) per evaluation (measured: benchmarks/lmm_scaling.py ``--crossed``).
DENSE_Q2, DENSE_WORK = 300, 5e7
#: Relative tolerance of the rank check of the fixed-effects matrix (lme4's
#: ``chkRank.drop.cols``).
RANK_TOL = 1e-7


class FewClustersWarning(UserWarning):
    """A random effect is estimated from very few groups (e.g. <= 6 programmes)."""


# ---------------------------------------------------------------------------
# random-effects structure
# ---------------------------------------------------------------------------
@dataclass
class ReTerm:
    """Design of one random-effect term ``(expr | group)``."""

    term: RandomTerm
    label: str  # name as VarCorr prints it (make.unique'd group name)
    coef_names: list[str]
    Xt: np.ndarray  # n x k raw model matrix of expr
    index: np.ndarray  # n, level index of each row
    levels: np.ndarray
    offset: int = 0  # first column in Z (lme4's order)
    theta_offset: int = 0

    @property
    def k(self) -> int:
        return self.Xt.shape[1]

    @property
    def n_levels(self) -> int:
        return len(self.levels)

    @property
    def q(self) -> int:
        return self.k * self.n_levels

    @property
    def n_theta(self) -> int:
        return self.k * (self.k + 1) // 2

    def tri_index(self) -> list[tuple[int, int]]:
        """Lower-triangle positions (i, j), column-major, as lme4 orders theta."""
        return [(i, j) for j in range(self.k) for i in range(j, self.k)]


def _r_coef_name(name: str) -> str:
    return "(Intercept)" if name == "Intercept" else name


def _make_unique(names: list[str]) -> list[str]:
    """R's ``make.unique``: second 'a' becomes 'a.1', etc."""
    seen: dict[str, int] = {}
    out = []
    for nm in names:
        if nm in seen:
            seen[nm] += 1
            out.append(f"{nm}.{seen[nm]}")
        else:
            seen[nm] = 0
            out.append(nm)
    return out


def _prepare_data(data: pd.DataFrame, parsed: ParsedFormula) -> tuple[pd.DataFrame, np.ndarray]:
    """Select used columns, check they exist, drop incomplete rows."""
    if not isinstance(data, pd.DataFrame):
        raise ModelError("data must be a pandas DataFrame")
    idents = {parsed.response, *formula_variables(parsed.fixed)}
    for t in parsed.random:
        idents |= set(formula_variables(t.expr)) | set(t.group_variables)
    used = [c for c in data.columns if c in idents]
    if parsed.response not in data.columns:
        raise ModelError(f"response column not found in data: {parsed.response!r}",
                         column=parsed.response)
    for t in parsed.random:
        for g in t.group_variables:
            if g not in data.columns:
                raise ModelError(f"grouping factor not found in data: {g!r}", column=g)
    keep = np.flatnonzero(data.loc[:, used].notna().all(axis=1).to_numpy())
    frame = data.iloc[keep][used].copy()
    if len(frame) == 0:
        raise ModelError("no complete rows for the model variables")
    for c in frame.columns:
        s = frame[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            if not isinstance(s.dtype, pd.CategoricalDtype):
                cats = sorted(pd.unique(s.astype(object)), key=str)
                frame[c] = pd.Categorical(s.astype(object), categories=cats)
    return frame, keep


def _design(rhs: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], DesignInfo]:
    dm = design_matrix(rhs, frame, NA_action="raise")
    return np.asarray(dm.matrix, dtype=float), list(dm.column_names), dm.design_info


def _group_codes(frame: pd.DataFrame, variables: list[str]) -> tuple[np.ndarray, np.ndarray]:
    keys = frame[variables[0]].astype(str).to_numpy(dtype=object)
    for v in variables[1:]:
        keys = keys + ":" + frame[v].astype(str).to_numpy(dtype=object)
    codes, levels = pd.factorize(pd.Series(keys), sort=True)
    return np.asarray(codes), np.asarray(levels, dtype=object)


def independent_columns(X: np.ndarray, tol: float = RANK_TOL) -> np.ndarray:
    """Indices of the columns of ``X`` kept in order, each dropped if it lies in
    the span of the columns kept before it (relative residual norm below ``tol``).

    This is R's ``qr(X, tol, LAPACK = FALSE)`` (LINPACK ``dqrdc2``, limited pivoting),
    whose ``pivot[seq_len(rank)]`` lme4's ``chkRank.drop.cols`` keeps as fixed effects.
    """
    keep: list[int] = []
    Q = np.zeros((X.shape[0], 0))
    for j in range(X.shape[1]):
        x = X[:, j]
        nx = float(np.linalg.norm(x))
        r = x - Q @ (Q.T @ x)
        r = r - Q @ (Q.T @ r)  # re-orthogonalise
        nr = float(np.linalg.norm(r))
        if nx > 0 and nr >= tol * nx:  # dqrdc2 keeps a norm >= tol * original
            keep.append(j)
            Q = np.column_stack([Q, r / nr])
    return np.array(keep, dtype=int)


class single_thread:  # noqa: N801 - used as a context manager, like threadpool_limits
    """Limit BLAS to one thread: the dense blocks are small and threads only contend."""

    _controller: Any = None

    def __enter__(self) -> single_thread:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover
            self._ctx = None
            return self
        # finding the loaded BLAS libraries costs milliseconds: do it once
        if single_thread._controller is None:
            single_thread._controller = ThreadpoolController()
        self._ctx = single_thread._controller.limit(limits=1)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc: Any) -> bool:
        if self._ctx is not None:
            self._ctx.__exit__(*exc)
        return False


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
class PLSModel:
    """The penalised least-squares engine of a linear mixed model (not yet fitted).

    The parameters (``formula``, ``data``) and the handling of missing values,
    factors and aliased columns are documented on its public subclass,
    :class:`effectstudy.multilevel.fitting.LinearMixedModel`.
    """

    def __init__(self, formula: str, data: pd.DataFrame) -> None:
        self.parsed = parse_formula(formula)
        if not self.parsed.random:
            raise ModelError("the formula has no random-effect term '(... | group)'")
        self.formula = formula
        frame, keep = _prepare_data(data, self.parsed)
        #: the rows used (all columns of the input), in input order
        self.data = data.iloc[keep]
        #: rows left out for a missing value in a model variable
        self.n_dropped = len(data) - len(self.data)
        resp = frame[self.parsed.response]
        if not pd.api.types.is_numeric_dtype(resp):
            raise ModelError(f"the response {self.parsed.response!r} is not numeric",
                             column=self.parsed.response)
        self.y = resp.to_numpy(dtype=float)
        if len(self.y) > 1 and np.all(self.y == self.y[0]):
            raise DataError("the outcome is constant; no variance to model",
                            column=self.parsed.response)
        Xfull, names, self.design_info = _design(self.parsed.fixed, frame)
        #: all columns of the fixed-effects design (before aliased ones are dropped)
        self.all_fixed_names = list(names)
        #: indices (into ``all_fixed_names``) of the columns kept
        self.fixed_columns = independent_columns(Xfull)
        self.dropped_fixed = [names[j] for j in range(len(names))
                              if j not in set(self.fixed_columns.tolist())]
        self.X = np.ascontiguousarray(Xfull[:, self.fixed_columns])
        self.fixed_names = [names[j] for j in self.fixed_columns]
        self.n, self.p = self.X.shape
        terms = []
        for t in self.parsed.random:
            Xt, tnames, _ = _design(t.expr, frame)
            idx, levels = _group_codes(frame, t.group_variables)
            terms.append(ReTerm(t, t.group, [_r_coef_name(nm) for nm in tnames], Xt, idx, levels))
        nl = [t.n_levels for t in terms]
        if any(nl[i + 1] > nl[i] for i in range(len(nl) - 1)):
            order = list(reversed(sorted(range(len(nl)), key=lambda i: nl[i])))
            terms = [terms[i] for i in order]
        labels = _make_unique([t.term.group for t in terms])
        off = toff = 0
        for t, lab in zip(terms, labels, strict=True):
            t.label = lab
            t.offset, t.theta_offset = off, toff
            off += t.q
            toff += t.n_theta
        self.terms = terms
        self.q = off
        self.n_theta = toff
        if self.n <= self.p:
            raise ModelError("fewer observations than fixed effects")
        for t in terms:
            if t.q >= self.n:
                raise ModelError(
                    f"the number of random effects for {t.term} ({t.q}) is not smaller "
                    f"than the number of observations ({self.n})")
        self._derivative_cache: tuple[Any, np.ndarray, np.ndarray | None] | None = None
        self._build_structure()

    # -- structure -------------------------------------------------------------
    def _build_structure(self) -> None:
        terms = self.terms
        t0 = terms[0]
        block = [i for i, t in enumerate(terms)
                 if t.n_levels == t0.n_levels and np.array_equal(t.index, t0.index)]
        rest = [i for i in range(len(terms)) if i not in block]
        J1 = t0.n_levels
        kb = sum(terms[i].k for i in block)
        cols = [terms[i].offset + np.arange(J1)[:, None] * terms[i].k
                + np.arange(terms[i].k)[None, :] for i in block]
        perm = [np.hstack(cols).ravel()]
        perm += [np.arange(terms[i].offset, terms[i].offset + terms[i].q) for i in rest]
        perm_arr = np.concatenate(perm)
        inv = np.empty(self.q, dtype=int)
        inv[perm_arr] = np.arange(self.q)
        #: internal column order of Z and Lambda: ``internal[i] = lme4 column perm[i]``
        self.column_order = perm_arr
        self.q1 = J1 * kb
        self.kb = kb
        self.block_terms = block
        n = self.n
        rows = np.arange(n)
        zr, zc, zv = [], [], []
        for t in terms:
            for c in range(t.k):
                zr.append(rows)
                zc.append(inv[t.offset + t.index * t.k + c])
                zv.append(t.Xt[:, c])
        self.Z = sparse.csc_matrix((np.concatenate(zv), (np.concatenate(zr), np.concatenate(zc))),
                                   shape=(n, self.q))
        # theta positions in Lambda (internal order), one array pair per theta element
        lam_pos: list[tuple[np.ndarray, np.ndarray]] = []
        lower = []
        #: per theta element: (term index, row i, column j) of its factor T_t
        self.theta_elements: list[tuple[int, int, int]] = []
        for ti, t in enumerate(terms):
            base = t.offset + np.arange(t.n_levels) * t.k
            for i, j in t.tri_index():
                lam_pos.append((inv[base + i], inv[base + j]))
                lower.append(0.0 if i == j else -np.inf)
                self.theta_elements.append((ti, i, j))
        self.lambda_positions = lam_pos
        self._lam_rows = np.concatenate([r for r, _ in lam_pos])
        self._lam_cols = np.concatenate([c for _, c in lam_pos])
        self._lam_owner = np.concatenate([np.full(len(r), k) for k, (r, _) in enumerate(lam_pos)])
        self.lower = np.array(lower)
        # indicator ("family") matrices Z_{t,i}: n x J_t, value Xt[:, i] at the row's level
        self.families = {}
        for ti, t in enumerate(terms):
            for i in range(t.k):
                self.families[(ti, i)] = sparse.csc_matrix(
                    (t.Xt[:, i], (rows, t.index)), shape=(n, t.n_levels))
        # per-level Gram matrices of the block part
        idx0 = t0.index
        Xb = np.hstack([terms[i].Xt for i in block])
        G1 = np.empty((J1, kb, kb))
        for a in range(kb):
            for b in range(a, kb):
                G1[:, a, b] = G1[:, b, a] = np.bincount(idx0, weights=Xb[:, a] * Xb[:, b],
                                                        minlength=J1)
        self._G1 = G1
        self.ZtZ = sparse.csr_matrix(self.Z.T @ self.Z)
        self.ZtX = np.asarray(self.Z.T @ self.X)
        self.Zty = np.asarray(self.Z.T @ self.y)
        self.XtX = self.X.T @ self.X
        self.Xty = self.X.T @ self.y
        self.yty = float(self.y @ self.y)
        # theta -> Lambda of one level of the block part, and of the second part (local)
        r, c, o = self._lam_rows, self._lam_cols, self._lam_owner
        one = r < kb
        self._tb_pos = (r[one], c[one], o[one])
        two = r >= self.q1
        self._l2_pos = (r[two] - self.q1, c[two] - self.q1, o[two])
        q2 = self.q - self.q1
        #: ``"dense"``: ``M``, deviance and gradient from dense cross-products
        #: (:class:`CrossProducts`); ``"sparse-lu"``: sparse Schur complement (SuperLU)
        big = q2 > MAX_SCHUR or (q2 > DENSE_Q2 and self.q1 * q2**2 > DENSE_WORK)
        self.path = "sparse-lu" if big else "dense"
        self._cp = None
        if self.path == "dense":
            self._cp = CrossProducts(
                G1=G1, C12=self.ZtZ[: self.q1, self.q1:].toarray().reshape(J1, kb, q2),
                C22=self.ZtZ[self.q1:, self.q1:].toarray(), ZtX=self.ZtX, Zty=self.Zty,
                tb_pos=self._tb_pos, l2_pos=self._l2_pos, lam_pos=(r, c, o), n_theta=self.n_theta)

    # -- names ---------------------------------------------------------------
    @property
    def theta_names(self) -> list[str]:
        """Names as ``getME(fit, "theta")`` gives them: ``group.coef`` / ``group.row.col``."""
        out = []
        for t in self.terms:
            g = t.term.group
            for i, j in t.tri_index():
                out.append(f"{g}.{t.coef_names[i]}" if i == j
                           else f"{g}.{t.coef_names[i]}.{t.coef_names[j]}")
        return out

    def theta_scale(self) -> np.ndarray:
        """Scale of each theta element: ``1 / rms`` of the row's random-effect column."""
        out = []
        for t in self.terms:
            rms = np.sqrt(np.mean(t.Xt**2, axis=0))
            rms = np.where(rms > 0, rms, 1.0)
            out += [1.0 / rms[i] for i, _ in t.tri_index()]
        return np.array(out)

    def theta_start(self) -> np.ndarray:
        """lme4's starting value: identity factors (1 on diagonals, 0 elsewhere)."""
        return np.where(np.isfinite(self.lower), 1.0, 0.0)

    def term_factors(self, theta: np.ndarray) -> list[np.ndarray]:
        """The lower-triangular factor ``T_t`` of every term."""
        out = []
        for t in self.terms:
            T = np.zeros((t.k, t.k))
            for (i, j), th in zip(t.tri_index(),
                                  theta[t.theta_offset:t.theta_offset + t.n_theta], strict=True):
                T[i, j] = th
            out.append(T)
        return out

    def term_covariances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Covariance matrix ``sigma^2 T_t T_t'`` of each term's random effects."""
        return [sigma**2 * T @ T.T for T in self.term_factors(np.asarray(theta, dtype=float))]

    def lam_sparse(self, theta: np.ndarray) -> sparse.csc_matrix:
        """``Lambda(theta)`` in the internal column order (sparse q x q)."""
        theta = np.asarray(theta, dtype=float)
        return sparse.csc_matrix((theta[self._lam_owner], (self._lam_rows, self._lam_cols)),
                                 shape=(self.q, self.q))

    def lam(self, theta: np.ndarray) -> np.ndarray:
        """``Lambda(theta)`` in lme4's column order (dense q x q; small models only)."""
        L = self.lam_sparse(theta).toarray()
        out = np.empty_like(L)
        out[np.ix_(self.column_order, self.column_order)] = L
        return out

    # -- factorisation and deviance ---------------------------------------------
    def factor(self, theta: np.ndarray, full: bool = True) -> PLSFactor:
        """Factor ``M`` at ``theta`` and solve for ``beta`` (Bates et al. 2015, eqs. 18-30)
        on :attr:`path`; ``full=False`` may leave out ``Lambda`` and ``B = Z Lambda``."""
        theta = np.asarray(theta, dtype=float)
        if self.path == "dense":
            return self._factor_dense(theta, full)
        return self._factor_lu(theta)

    def _factor_lu(self, theta: np.ndarray) -> PLSFactor:
        """:meth:`factor` for a large second part: ``S`` sparse, by SuperLU (:func:`schur_lu`)."""
        lam = self.lam_sparse(theta)
        B = sparse.csc_matrix(self.Z @ lam)
        Tb = np.zeros((self.kb, self.kb))
        Tb[self._tb_pos[0], self._tb_pos[1]] = theta[self._tb_pos[2]]
        ld, A11inv = spd_blocks(np.matmul(np.matmul(Tb.T, self._G1), Tb) + np.eye(self.kb))
        Y, S_lu, ldS = schur_lu(B, self.q1, A11inv)
        ld += ldS
        f = PLSFactor(theta=theta, lam=lam, B=B, A11inv=A11inv, Y=Y, S_cho=None, S_inv=None,
                      ldL2=ld, RZX_cross=np.empty(0), LX=np.empty(0), beta=np.empty(0),
                      r2=np.nan, ldRX2=np.nan, q1=self.q1, kb=self.kb, S_lu=S_lu)
        f = self._solve_fixed(f, np.asarray(lam.T @ self.ZtX), np.asarray(lam.T @ self.Zty))
        # r^2 from the residuals, not by subtraction: less rounding for the differences
        u = f.Miy - f.MiX @ f.beta
        res = self.y - self.X @ f.beta - B @ u
        f.r2 = float(res @ res + u @ u)
        return f

    def _factor_dense(self, theta: np.ndarray, full: bool) -> PLSFactor:
        """:meth:`factor` from the cross-products: the same algebra, numpy only."""
        f = self._cp.factor(theta)
        if full:
            f.lam = self.lam_sparse(theta)
            f.B = sparse.csc_matrix(self.Z @ f.lam)
        return self._solve_fixed(f, self._cp.lam_t(f.Tb, f.L2, self.ZtX),
                                 self._cp.lam_t(f.Tb, f.L2, self.Zty[:, None])[:, 0])

    def _solve_fixed(self, f: PLSFactor, LZX: np.ndarray, LZy: np.ndarray) -> PLSFactor:
        """``R_X``, ``beta`` and ``r^2`` (eqs. 26-30) given the factor of ``M``."""
        MiX = f.solve(LZX)
        Miy = f.solve(LZy)
        RXtRX = self.XtX - LZX.T @ MiX
        LX = linalg.cholesky(0.5 * (RXtRX + RXtRX.T), lower=True, check_finite=False)
        rhs = self.Xty - MiX.T @ LZy
        cbeta = linalg.solve_triangular(LX, rhs, lower=True, check_finite=False)
        f.beta = linalg.solve_triangular(LX.T, cbeta, lower=False, check_finite=False)
        f.r2 = float(self.yty - LZy @ Miy - cbeta @ cbeta)
        f.LX = LX
        f.ldRX2 = 2.0 * float(np.sum(np.log(np.diag(LX))))
        f.MiX, f.Miy = MiX, Miy
        return f

    def deviance_from(self, f: PLSFactor, reml: bool, r2: float | None = None) -> float:
        n, p = self.n, self.p
        r2 = f.r2 if r2 is None else r2
        if not np.isfinite(r2) or r2 <= 0:
            return np.inf
        if reml:
            nmp = n - p
            return float(f.ldL2 + f.ldRX2 + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp)))
        return float(f.ldL2 + n * (1.0 + np.log(2.0 * np.pi * r2 / n)))

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (ML, eq. 34) or REML criterion (eq. 41) at ``theta``."""
        try:
            f = self.factor(theta, full=False)
        except (linalg.LinAlgError, np.linalg.LinAlgError, ValueError):
            return np.inf
        return self.deviance_from(f, reml)

    def conditional(self, theta: np.ndarray, reml: bool) -> dict[str, Any]:
        """All estimates at ``theta``; residuals computed directly (not by subtraction).

        Returns a dict with ``factor``, ``beta``, ``u`` and ``b`` (lme4's column
        order), ``resid`` (conditional residuals), ``pwrss``, ``sigma``, ``deviance``.
        """
        f = self.factor(theta)
        r0 = self.y - self.X @ f.beta
        u_int = f.solve(np.asarray(f.B.T @ r0))
        resid = r0 - f.B @ u_int
        pwrss = float(resid @ resid + u_int @ u_int)
        denom = self.n - self.p if reml else self.n
        b_int = f.lam @ u_int
        u = np.empty(self.q)
        b = np.empty(self.q)
        u[self.column_order] = u_int
        b[self.column_order] = b_int
        return dict(factor=f, beta=f.beta, u=u, b=b, resid=resid, pwrss=pwrss,
                    sigma=float(np.sqrt(pwrss / denom)),
                    deviance=self.deviance_from(f, reml, pwrss), u_internal=u_int)

    def conditional_variances(self, theta: np.ndarray, sigma: float) -> np.ndarray:
        """Diagonal of ``Var(b | y) = sigma^2 Lambda M^-1 Lambda'`` (lme4's ``condVar``),
        in lme4's column order; ``O(q q2)``."""
        self._needs_dense_schur("conditional variances")
        f = self.factor(theta)
        lam = f.lam.tocsr()
        D = f.D_sparse()
        d = np.asarray((lam @ D).multiply(lam).sum(axis=1)).ravel()
        if f.q2:
            LU = np.asarray(lam[:, f.q1:].toarray()) - np.asarray(lam[:, : f.q1] @ f.Y)
            d = d + np.sum((LU @ f.S_inv) * LU, axis=1)
        out = np.empty(self.q)
        out[self.column_order] = sigma**2 * d
        return out

    def _needs_dense_schur(self, what: str) -> None:
        if self.path == "sparse-lu":
            raise ModelError(
                f"{what} needs the inverse of the Schur complement, which the sparse path for "
                f"{self.q - self.q1} random-effect columns outside the largest grouping factor "
                "does not form; Satterthwaite df are available")

    # -- derivatives -------------------------------------------------------------
    def _theta_operands(self, f: PLSFactor) -> list[tuple[Any, Any, Any, Any]]:
        """Per theta element ``(key_D, D_k, key_B, B_k)``: ``Z Lambda_k`` and the matching
        columns of ``B`` as n x J indicator matrices, so that ``V_k = s2 (D_k B_k' + B_k D_k')``."""
        Ts = self.term_factors(f.theta)
        Bfam: dict[tuple[int, int], sparse.csc_matrix] = {}
        out = []
        for ti, i, j in self.theta_elements:
            if (ti, j) not in Bfam:
                t = self.terms[ti]
                acc = None
                for r in range(j, t.k):
                    if Ts[ti][r, j] != 0.0:
                        term = self.families[(ti, r)] * Ts[ti][r, j]
                        acc = term if acc is None else acc + term
                if acc is None:
                    acc = sparse.csc_matrix((self.n, t.n_levels))
                Bfam[(ti, j)] = sparse.csc_matrix(acc)
            out.append((("Z", ti, i), self.families[(ti, i)], ("B", ti, j), Bfam[(ti, j)]))
        return out

    def derivatives(self, theta: np.ndarray, sigma: float, reml: bool = True,
                    hessian: bool = True, factor: PLSFactor | None = None
                    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Gradient and Hessian of ``-2 log L`` (REML or ML, beta profiled) in ``(theta, sigma)``.

        With ``T = P`` (REML) or ``V^-1`` (ML)::

            g_i  = tr(T V_i) - y'P V_i P y
            h_ij = tr(T V_ij) - tr(T V_i T V_j) + 2 y'P V_i P V_j P y - y'P V_ij P y

        (Harville 1977), where ``V_k = sigma^2 (D_k B_k' + B_k D_k')`` for a theta
        element and ``V_sigma = 2 V / sigma``. Every trace is reduced with
        ``R = sigma^2 V^-1 = I - B M^-1 B'`` to ``tr((b'Rc)(d'Ra))`` of sparse
        ``n x J`` indicator matrices (see :class:`Woodbury`) and thin ``n x p``
        products; cost linear in ``n``.
        """
        theta = np.asarray(theta, dtype=float)
        key = (theta.tobytes(), float(sigma), bool(reml), bool(hessian))
        hit = self._derivative_cache
        if hit is not None and hit[0] == key:  # the polish, the checks and the table share it
            return hit[1].copy(), None if hit[2] is None else hit[2].copy()
        grad, hess = self._derivatives(theta, sigma, reml, hessian, factor)
        self._derivative_cache = (key, grad.copy(), None if hess is None else hess.copy())
        return grad, hess

    def _numeric_derivatives(self, theta: np.ndarray, sigma: float, reml: bool, hessian: bool,
                             f: PLSFactor | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`derivatives` by central differences (``"sparse-lu"``: the traces would need
        ``S^-1``); see :func:`profiled_parts_derivatives`."""

        def parts(th: np.ndarray, f: PLSFactor | None = None) -> np.ndarray:
            f = self.factor(th, full=False) if f is None else f
            return np.array([f.ldL2 + (f.ldRX2 if reml else 0.0), f.r2])

        return profiled_parts_derivatives(parts, theta, self.theta_scale(), sigma,
                                          self.n - (self.p if reml else 0), hessian,
                                          None if f is None else parts(theta, f))

    def _derivatives(self, theta: np.ndarray, sigma: float, reml: bool, hessian: bool,
                     factor: PLSFactor | None) -> tuple[np.ndarray, np.ndarray | None]:
        if self.path == "sparse-lu":
            return self._numeric_derivatives(theta, sigma, reml, hessian)
        f = factor if factor is not None and factor.B is not None else self.factor(theta)
        W = Woodbury(f)
        m = self.n_theta
        k = m + 1
        s2 = sigma**2
        X = self.X
        r0 = self.y - X @ f.beta
        e = W.apply(r0[:, None])[:, 0]  # conditional residual = R r0
        pwrss = float(r0 @ e)
        Rx = W.apply(X)  # R X
        Cr = linalg.cho_solve((f.LX, True), np.eye(self.p), check_finite=False)  # (X'RX)^-1
        ops = self._theta_operands(f)
        rp = self.p if reml else 0
        DRx = [Dk.T @ Rx for _, Dk, _, _ in ops]
        BRx = [Bk.T @ Rx for _, _, _, Bk in ops]
        De = [Dk.T @ e for _, Dk, _, _ in ops]
        Be = [Bk.T @ e for _, _, _, Bk in ops]
        N = [DRx[i].T @ BRx[i] + BRx[i].T @ DRx[i] for i in range(m)]
        tk = np.empty(m)
        qk = np.empty(m)
        for i, (kd, Dk, kb_, Bk) in enumerate(ops):
            tk[i] = 2.0 * W.cross(kb_, Bk, kd, Dk).trace()
            if reml:
                tk[i] -= float(np.sum(Cr * N[i]))
            qk[i] = 2.0 * float(De[i] @ Be[i]) / s2
        grad = np.empty(k)
        grad[:m] = tk - qk
        grad[m] = (2.0 / sigma) * (self.n - rp) - (2.0 / sigma**3) * pwrss
        if not hessian:
            return grad, None
        # a_i = V_i P y (n-vectors); P v = s2^-1 (R v - Rx Cr Rx'v)
        a = [ops[i][1] @ Be[i] + ops[i][3] @ De[i] for i in range(m)]
        a.append((2.0 / sigma) * r0)
        A = np.column_stack(a)
        RA = W.apply(A)
        PA = (RA - Rx @ (Cr @ (Rx.T @ A))) / s2
        yPVPVPy = A.T @ PA
        E = [ops[i][1] @ BRx[i] + ops[i][3] @ DRx[i] for i in range(m)]  # (D B' + B D') R X
        RE = [W.apply(Ei) for Ei in E]
        hess = np.empty((k, k))
        for i in range(m):
            kdi, Di, kbi, Bi = ops[i]
            ti, _, ji = self.theta_elements[i]
            for j in range(i, m):
                kdj, Dj, kbj, Bj = ops[j]
                tj, _, jj = self.theta_elements[j]
                # tr(V^-1 V_i V^-1 V_j), sigma-free
                trVV = 2.0 * (trace_product(W.cross(kbi, Bi, kdj, Dj), W.cross(kbj, Bj, kdi, Di))
                              + trace_product(W.cross(kbi, Bi, kbj, Bj),
                                              W.cross(kdj, Dj, kdi, Di)))
                if reml:
                    trVV += (-2.0 * float(np.sum(Cr * (E[i].T @ RE[j])))
                             + float(np.sum((Cr @ N[i]) * (Cr @ N[j]).T)))
                trVij = qVij = 0.0
                if ti == tj and ji == jj:  # V_ij = s2 (D_i D_j' + D_j D_i') != 0
                    trVij = 2.0 * W.cross(kdj, Dj, kdi, Di).trace()
                    if reml:
                        trVij -= 2.0 * float(np.sum(Cr * (DRx[i].T @ DRx[j])))
                    qVij = 2.0 * float(De[i] @ De[j]) / s2
                h = trVij - trVV + 2.0 * yPVPVPy[i, j] - qVij
                hess[i, j] = hess[j, i] = h
            # theta_i, sigma
            h = (2.0 / sigma) * tk[i] - (2.0 / sigma) * tk[i] + 2.0 * yPVPVPy[i, m] \
                - (2.0 / sigma) * qk[i]
            hess[i, m] = hess[m, i] = h
        nr = self.n - rp
        hess[m, m] = (2.0 / s2) * nr - (4.0 / s2) * nr + 2.0 * yPVPVPy[m, m] \
            - (2.0 / s2) * pwrss / s2
        return grad, hess

    def deviance_gradient(self, theta: np.ndarray, reml: bool = True
                          ) -> tuple[float, np.ndarray]:
        """Profiled deviance and its analytic gradient in ``theta``.

        By the envelope theorem the gradient of the profiled deviance is the
        ``theta`` part of :meth:`derivatives` at ``sigma = sigma_hat(theta)``.
        """
        theta = np.asarray(theta, dtype=float)
        try:
            f = self.factor(theta, full=False)
        except (linalg.LinAlgError, np.linalg.LinAlgError, ValueError):
            return np.inf, np.zeros_like(theta)
        dev = self.deviance_from(f, reml)
        if not np.isfinite(dev):
            return dev, np.zeros_like(theta)
        sigma2 = f.r2 / (self.n - self.p if reml else self.n)
        if self.path == "dense":
            return dev, self._cp.profiled_gradient(f, sigma2, reml)
        return dev, self._numeric_derivatives(theta, np.sqrt(sigma2), reml, False, f)[0][:-1]

    # -- covariance blocks -----------------------------------------------------
    def marginal_covariance_rows(self, theta: np.ndarray, sigma: float,
                                 rows: np.ndarray) -> np.ndarray:
        """The block ``V[rows][:, rows]`` of ``V = sigma^2 (Z Lambda Lambda' Z' + I)``."""
        rows = np.asarray(rows)
        Br = (self.Z[rows] @ self.lam_sparse(theta)).toarray()
        return sigma**2 * (Br @ Br.T + np.eye(len(rows)))

    # -- small-sample inference pieces ---------------------------------------------
    def vcov_jacobian(self, theta: np.ndarray, sigma: float
                      ) -> tuple[np.ndarray, list[np.ndarray]]:
        """``C = (X'V^-1X)^-1`` and its derivatives ``dC/dphi_i = C X'V^-1 V_i V^-1 X C``
        in ``phi = (theta, sigma)`` (thin ``n x p`` products; lmerTest's ``Jac_list``)."""
        f = self.factor(theta)
        W = Woodbury(f)
        Rx = W.apply(self.X)
        Cr = linalg.cho_solve((f.LX, True), np.eye(self.p), check_finite=False)
        C = sigma**2 * Cr
        jac = []
        for _, Dk, _, Bk in self._theta_operands(f):
            DR, BR = Dk.T @ Rx, Bk.T @ Rx
            J = sigma**2 * Cr @ (DR.T @ BR + BR.T @ DR) @ Cr
            jac.append(0.5 * (J + J.T))
        jac.append((2.0 / sigma) * C)
        return 0.5 * (C + C.T), jac

    def kenward_roger_terms(self, theta: np.ndarray, sigma: float
                            ) -> tuple[list[np.ndarray], dict[tuple[int, int], np.ndarray],
                                       np.ndarray]:
        """pbkrtest's ``P_r``, ``Q_rs`` and ``tr(V^-1 G_r V^-1 G_s)`` without any n x n matrix.

        The covariance parameters are the variances and covariances of every
        term plus the residual variance: ``V = sum_r gamma_r G_r`` with
        ``G_r = Z_i Z_j' + Z_j Z_i'`` (``Z_i Z_i'`` on the diagonal; ``Z_i`` the
        ``n x J`` indicator matrix of column ``i`` of the term) and ``G = I``
        for the residual. ``P_r = -X'V^-1 G_r V^-1 X`` and ``Q_rs =
        (G_r V^-1 X)' V^-1 (G_s V^-1 X)`` are thin products; the traces use
        ``tr(R a b' R c d') = tr((b'Rc)(d'Ra))`` (:func:`trace_product`) and, for
        the residual, ``R^2 = R - B M^-2 B'``. Cost linear in ``n`` (and cubic
        in the number of columns outside the largest grouping factor).
        """
        self._needs_dense_schur("Kenward-Roger")
        f = self.factor(theta)
        W = Woodbury(f)
        s2 = sigma**2
        Rx = W.apply(self.X)
        G: list[list[tuple[Any, Any, Any, Any]] | None] = []
        for ti, t in enumerate(self.terms):
            for i, j in t.tri_index():
                a, b = self.families[(ti, i)], self.families[(ti, j)]
                ka, kb_ = ("Z", ti, i), ("Z", ti, j)
                G.append([(ka, a, kb_, b)] if i == j else [(ka, a, kb_, b), (kb_, b, ka, a)])
        G.append(None)
        ng = len(G)
        PP, GRx = [], []
        for Gr in G:
            if Gr is None:
                PP.append(-(Rx.T @ Rx) / s2**2)
                GRx.append(Rx)
                continue
            acc_P = np.zeros((self.p, self.p))
            acc_G = np.zeros_like(Rx)
            for _, a, _, b in Gr:
                aR, bR = a.T @ Rx, b.T @ Rx
                acc_P += aR.T @ bR
                acc_G += a @ bR
            PP.append(-acc_P / s2**2)
            GRx.append(acc_G)
        RG = [W.apply(M) for M in GRx]
        QQ = {(r, s): (GRx[r].T @ RG[s]) / s2**3 for r in range(ng) for s in range(r, ng)}
        K = np.empty((ng, ng))
        for r in range(ng):
            for s in range(r, ng):
                Gr, Gs = G[r], G[s]
                if Gr is None and Gs is None:
                    t = self.n - self.q + W.trace_Minv2_total()
                elif Gr is None or Gs is None:
                    Gx = Gs if Gr is None else Gr
                    t = 0.0
                    for ka, a, kb_, b in Gx:  # tr(R a b' R) = tr(b' R^2 a)
                        t += W.cross(kb_, b, ka, a).trace() - W.trace_Minv2(kb_, b, ka, a)
                else:
                    t = 0.0
                    for ka, a, kb_, b in Gr:
                        for kc, c, kd, d in Gs:
                            t += trace_product(W.cross(kb_, b, kc, c), W.cross(kd, d, ka, a))
                K[r, s] = K[s, r] = t / s2**2
        return PP, QQ, K
