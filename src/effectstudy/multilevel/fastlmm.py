"""A small, fast REML engine for many refits of one design (power simulation, dose).

It fits the same models as :func:`effectstudy.multilevel.fit`, from the same
lme4 formula (:meth:`FastLMM.from_lme4_formula` parses it with
:func:`effectstudy.multilevel.formula.parse_formula` and builds the fixed and
random-effect model matrices with :mod:`effectstudy.multilevel.design`), but it
is built for one thing: thousands of refits of a fixed design with new responses.
The general engine stays the reference for a single analysis.

The model is the linear mixed model

.. math:: y = X\\beta + Z b + e,\\quad b \\sim N(0, \\sigma^2 \\Lambda\\Lambda'),\\quad e \\sim N(0, \\sigma^2 I)

with a handful of random-effect terms such as ``(1 | programme)`` and
``(1 + time | client)``.  The variance parameters are lme4's relative Cholesky
factors ``theta`` plus the residual SD ``sigma`` (Bates et al. 2015).

Why it is fast
--------------
* The design (X and Z) is fixed across simulation replicates, so all cross
  products ``X'X``, ``Z'X``, ``Z'Z`` are computed once; a replicate only brings
  ``Z'y``, ``X'y`` and ``y'y``.
* With nested grouping factors (clients within programmes) the matrix
  ``Lambda'Z'Z Lambda + I`` is block diagonal over programmes; its
  factorisation and solves run as a numpy batch of small (~17 x 17) blocks.
* Every quantity is evaluated in the q-dimensional random-effects space
  (q = number of random effects, ~100 for the reference designs): the REML
  criterion via the Cholesky factor of ``Lambda'Z'Z Lambda + I`` (Bates et al.
  2015), and its exact gradient and observed Hessian through the classic
  identities for a covariance linear in the parameters psi
  (``V = sum_k psi_k G_k``; Harville 1977):

  ``d l / d psi_k = -1/2 tr(P G_k) + 1/2 y'P G_k P y``,
  ``d2 l / d psi_k d psi_l = 1/2 tr(P G_k P G_l) - y'P G_k P G_l P y``,

  with ``G_k = Z E_k Z'`` so that ``tr(P G_k P G_l) = tr(E_k W E_l W)`` with
  ``W = Z'PZ``.  The residual component ``G = I`` is eliminated with the
  identity ``sum_k psi_k G_k = V`` (so ``PVP = P``, ``tr(PV) = n - p``).
* The profiled REML criterion is minimised over theta by Newton's method with
  the exact (Schur-complement) profiled Hessian, started at the true
  parameters; typically 3-6 iterations.  The criterion is even in the sign of
  each Cholesky column, so the optimisation is unconstrained and boundary
  (singular) solutions are reached smoothly; L-BFGS-B with bounds is the
  fall-back.

Denominator degrees of freedom for a single contrast ``l'beta``
---------------------------------------------------------------
The engine owns its derivatives (computed in the q-dimensional random-effects
space); the df formulas themselves are the array functions of
:mod:`effectstudy.multilevel.ddf`, shared with the general engine:

* Satterthwaite as in lmerTest (Kuznetsova, Brockhoff & Christensen 2017):
  ``df = 2 (l'C l)^2 / (g' A g)``, with ``g_i = l' (dC/dphi_i) l`` for
  ``phi = (theta, sigma)`` and ``A = 2 H^+`` where ``H`` is the Hessian of the
  REML deviance in ``phi`` (exact here, including the second-derivative term
  of the chain rule that matters at the boundary), pseudo-inverted over
  eigenvalues above 1e-8 as lmerTest does
  (:class:`effectstudy.multilevel.ddf.SatterthwaiteInfo`).
* Kenward-Roger as in pbkrtest (Kenward & Roger 1997; Halekoh & Hojsgaard
  2014): the adjusted covariance ``Phi_A`` from the expected information in
  the covariance parameterisation, and the ``Lb_ddf`` denominator df
  (:func:`effectstudy.multilevel.ddf.kr_ddf`).

References
----------
Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting linear
mixed-effects models using lme4. *Journal of Statistical Software* 67(1).

Harville, D. A. (1977). Maximum likelihood approaches to variance component
estimation and to related problems. *JASA* 72, 320-338.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import linalg, optimize
from scipy.linalg.lapack import dpotrf, dpotrs
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from effectstudy.errors import ModelError
from effectstudy.multilevel.ddf import SatterthwaiteInfo, kenward_roger_info, kr_ddf
from effectstudy.multilevel.design import design_matrix
from effectstudy.multilevel.formula import parse_formula

__all__ = ["RandomTerm", "FastLMM", "FitResult"]

_LOG2PI = np.log(2.0 * np.pi)


def _r_name(name: str) -> str:
    """Coefficient names as lme4 prints them (``(Intercept)``)."""
    return "(Intercept)" if name == "Intercept" else name


def _profile_fixed(ZVZ, ZVX, XVX, ZVy, XVy, yVy, logdetA) -> dict:
    """GLS step of ``FastLMM._core`` / ``_core_dense``: beta, pwrss, log|X'V^-1X|."""
    cX, info = dpotrf(XVX, lower=1, clean=1)
    if info != 0:
        raise linalg.LinAlgError("X'V^-1X not positive definite")
    logdetX = 2.0 * np.sum(np.log(np.diag(cX)))
    beta = dpotrs(cX, XVy, lower=1)[0]
    pwrss = yVy - beta @ XVy
    return dict(
        ZVZ=ZVZ,
        ZVX=ZVX,
        XVX=XVX,
        ZVy=ZVy,
        XVy=XVy,
        cx=(cX, True),
        beta=beta,
        pwrss=pwrss,
        logdetA=logdetA,
        logdetX=logdetX,
    )


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(cols | group)``.

    Parameters
    ----------
    name : str
        Grouping factor name (e.g. ``"client"``).
    groups : ndarray of int, shape (n,)
        Integer group code 0..G-1 of each row.
    cols : ndarray, shape (n, r)
        The term's model matrix (``1`` and e.g. ``time``).
    col_names : tuple of str
        Names of the r columns.
    """

    name: str
    groups: np.ndarray
    cols: np.ndarray
    col_names: tuple[str, ...]

    @property
    def r(self) -> int:
        return self.cols.shape[1]

    @property
    def n_groups(self) -> int:
        return int(self.groups.max()) + 1


@dataclass
class FitResult:
    """Result of one REML fit (mutable, internal)."""

    beta: np.ndarray
    vcov: np.ndarray
    theta: np.ndarray
    sigma: float
    deviance: float
    converged: bool
    singular: bool
    iterations: int
    message: str = ""
    extra: dict = field(default_factory=dict)


class FastLMM:
    """Profiled REML for ``y ~ X beta + random terms`` on a fixed design.

    Parameters
    ----------
    X : ndarray, shape (n, p)
        Fixed-effects model matrix (full column rank).
    terms : sequence of RandomTerm
        The random-effect terms.
    """

    def __init__(self, X: np.ndarray, terms: list[RandomTerm]) -> None:
        X = np.asarray(X, dtype=float)
        self.X = X
        #: the lme4 formula and coefficient names (set by :meth:`from_lme4_formula`)
        self.formula: str | None = None
        self.fixed_names: list[str] | None = None
        self.n, self.p = X.shape
        self.terms = list(terms)
        # ---- build dense Z and the index structure -------------------------
        blocks = []
        offset = 0
        self._term_idx: list[np.ndarray] = []  # (G, r) indices into q
        for t in self.terms:
            G, r = t.n_groups, t.r
            idx = offset + np.arange(G * r).reshape(G, r)
            Zt = np.zeros((self.n, G * r))
            for j in range(r):
                Zt[np.arange(self.n), idx[t.groups, j] - offset] = t.cols[:, j]
            blocks.append(Zt)
            self._term_idx.append(idx)
            offset += G * r
        self.q = offset
        self.Z = np.hstack(blocks)
        # theta layout: per term, lower triangle column-wise (lme4 order)
        self._theta_pos: list[tuple[int, int, int, int]] = []  # (term, i, j, theta index)
        k = 0
        self.theta_names: list[str] = []
        for ti, t in enumerate(self.terms):
            for j in range(t.r):
                for i in range(j, t.r):
                    self._theta_pos.append((ti, i, j, k))
                    nm = t.col_names[i] if i == j else f"{t.col_names[i]}.{t.col_names[j]}"
                    self.theta_names.append(f"{t.name}.{nm}")
                    k += 1
        self.n_theta = k
        # Lambda fill indices: rows, cols in q, theta index
        rows, cols, tix = [], [], []
        for ti, i, j, k in self._theta_pos:
            idx = self._term_idx[ti]
            rows.append(idx[:, i])
            cols.append(idx[:, j])
            tix.append(np.full(idx.shape[0], k))
        self._lam_rows = np.concatenate(rows)
        self._lam_cols = np.concatenate(cols)
        self._lam_tix = np.concatenate(tix)
        # lower bounds: diagonal elements >= 0
        self.lower = np.array([0.0 if i == j else -np.inf for (_, i, j, _) in self._theta_pos])
        self._diag_theta = np.array([i == j for (_, i, j, _) in self._theta_pos])
        # psi parameters (random covariance elements) with pattern index pairs
        self._psi: list[tuple[int, int, int]] = []  # (term, i, j) i >= j
        self._psi_a: list[np.ndarray] = []
        self._psi_b: list[np.ndarray] = []
        self.psi_names: list[str] = []
        for ti, t in enumerate(self.terms):
            idx = self._term_idx[ti]
            for j in range(t.r):
                for i in range(j, t.r):
                    self._psi.append((ti, i, j))
                    if i == j:
                        a, b = idx[:, i], idx[:, i]
                        self.psi_names.append(f"{t.name}:{t.col_names[i]}")
                    else:
                        a = np.concatenate([idx[:, i], idx[:, j]])
                        b = np.concatenate([idx[:, j], idx[:, i]])
                        self.psi_names.append(f"{t.name}:{t.col_names[j]},{t.col_names[i]}")
                    self._psi_a.append(a)
                    self._psi_b.append(b)
        self.n_psi = len(self._psi)
        # q_k(theta) = theta' M_k theta (relative covariance element)
        self._M = np.zeros((self.n_psi, self.n_theta, self.n_theta))
        pos = {(ti, i, j): k for (ti, i, j, k) in self._theta_pos}
        for kk, (ti, i, j) in enumerate(self._psi):
            for m in range(min(i, j) + 1):
                a, b = pos[(ti, i, m)], pos[(ti, j, m)]
                self._M[kk, a, b] += 0.5
                self._M[kk, b, a] += 0.5
        # ---- fixed cross products ------------------------------------------
        self.XtX = X.T @ X
        self.ZtX = self.Z.T @ X
        self.ZtZ = self.Z.T @ self.Z
        self._eye_q = np.eye(self.q)
        self._setup_blocks()

    @classmethod
    def from_lme4_formula(cls, formula: str, data: pd.DataFrame) -> FastLMM:
        """The engine for an lme4 formula on a fixed design (the rows of ``data``).

        The formula is the one :func:`effectstudy.multilevel.fit` takes, e.g.
        ``"y ~ time * treat + (1 | programme) + (1 + time | client)"``: it is
        parsed by :func:`~effectstudy.multilevel.formula.parse_formula` (never
        evaluated as code) and the fixed and random-effect model matrices are
        built by :func:`~effectstudy.multilevel.design.design_matrix`, so the
        columns and their names are those of the general engine. The response
        column need not be in ``data`` (only the design is built; responses are
        passed to :meth:`stats`). Random terms keep the formula's order.

        Raises
        ------
        ModelError
            No random term, a variable or grouping factor not in ``data``, a
            missing value in a model variable, or a rank-deficient fixed part.
        """
        parsed = parse_formula(formula)
        if not parsed.random:
            raise ModelError("the formula has no random-effect term '(... | group)'")
        if not isinstance(data, pd.DataFrame):
            raise ModelError("data must be a pandas DataFrame")
        fixed = design_matrix(parsed.fixed, data, NA_action="raise")
        X = np.asarray(fixed.matrix, dtype=float)
        if X.shape[1] == 0 or np.linalg.matrix_rank(X) < X.shape[1]:
            raise ModelError("the fixed-effects model matrix is rank deficient")
        terms = []
        for t in parsed.random:
            for g in t.group_variables:
                if g not in data.columns:
                    raise ModelError(f"grouping factor not found in data: {g!r}", column=g)
                if data[g].isna().any():
                    raise ModelError(f"grouping factor {g!r} has missing values", column=g)
            keys = data[t.group_variables[0]].astype(str).to_numpy(dtype=object)
            for v in t.group_variables[1:]:
                keys = keys + ":" + data[v].astype(str).to_numpy(dtype=object)
            codes = pd.factorize(pd.Series(keys), sort=True)[0]
            cols = design_matrix(t.expr, data, NA_action="raise")
            names = tuple(_r_name(c) for c in cols.column_names)
            terms.append(RandomTerm(t.group, np.asarray(codes),
                                    np.asarray(cols.matrix, dtype=float), names))
        model = cls(X, terms)
        model.formula = formula
        model.fixed_names = [_r_name(c) for c in fixed.column_names]
        return model

    def _setup_blocks(self) -> None:
        """Independent blocks of random effects (e.g. one per programme).

        With nested grouping factors, ``Lambda'Z'Z Lambda + I`` is block
        diagonal over the outermost factor; all q x q work is then done on a
        batch of small padded blocks (Woodbury per programme block).
        """
        pattern = (np.abs(self.ZtZ) > 0) | np.eye(self.q, dtype=bool)
        pattern[self._lam_rows, self._lam_cols] = True
        pattern[self._lam_cols, self._lam_rows] = True
        nb, lab = connected_components(csr_matrix(pattern), directed=False)
        sizes = np.bincount(lab, minlength=nb)
        loc = np.empty(self.q, dtype=int)
        for g in range(nb):
            loc[lab == g] = np.arange(sizes[g])
        self._nb, self._blab, self._bloc, self._bmax = nb, lab, loc, int(sizes.max())
        b = self._bmax
        ii, jj = np.nonzero(lab[:, None] == lab[None, :])
        self._bpair = (ii, jj, lab[ii], loc[ii], loc[jj])
        self.ZtZ_b = np.zeros((nb, b, b))
        self.ZtZ_b[lab[ii], loc[ii], loc[jj]] = self.ZtZ[ii, jj]
        self.ZtX_b = np.zeros((nb, b, self.p))
        self.ZtX_b[lab, loc] = self.ZtX
        self._lb = (lab[self._lam_rows], loc[self._lam_rows], loc[self._lam_cols], self._lam_tix)
        self._eye_b = np.broadcast_to(np.eye(b), (nb, b, b))

    # ------------------------------------------------------------------
    def stats(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        """Sufficient statistics ``(Z'y, X'y, y'y)`` of one response vector."""
        y = np.asarray(y, dtype=float)
        return self.Z.T @ y, self.X.T @ y, float(y @ y)

    def stats_batch(self, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sufficient statistics of many responses (columns of ``Y``, shape (n, m))."""
        return self.Z.T @ Y, self.X.T @ Y, np.einsum("ij,ij->j", Y, Y)

    def lam(self, theta: np.ndarray) -> np.ndarray:
        L = np.zeros((self.q, self.q))
        L[self._lam_rows, self._lam_cols] = theta[self._lam_tix]
        return L

    def theta_from_cov(self, covs: list[np.ndarray], sigma: float) -> np.ndarray:
        """lme4 theta from per-term covariance matrices and the residual SD."""
        th = np.zeros(self.n_theta)
        chols = []
        for c in covs:
            c = np.atleast_2d(np.asarray(c, dtype=float)) / sigma**2
            try:
                chols.append(np.linalg.cholesky(c))
            except np.linalg.LinAlgError:
                w, v = np.linalg.eigh(c)
                chols.append(np.linalg.cholesky(v @ np.diag(np.maximum(w, 1e-8)) @ v.T))
        for ti, i, j, k in self._theta_pos:
            th[k] = chols[ti][i, j]
        return th

    # ------------------------------------------------------------------
    def _core(self, theta, zty, xty, yty):
        """Relative (sigma-free) quantities at theta (block-batched)."""
        nb, b, p, q = self._nb, self._bmax, self.p, self.q
        lab, loc = self._blab, self._bloc
        Lb = np.zeros((nb, b, b))
        g_, r_, c_, t_ = self._lb
        Lb[g_, r_, c_] = theta[t_]
        Lt = np.swapaxes(Lb, 1, 2)
        K = Lt @ self.ZtZ_b
        A = K @ Lb + self._eye_b
        cA = np.linalg.cholesky(A)
        logdetA = 2.0 * np.sum(np.log(np.diagonal(cA, axis1=1, axis2=2)))
        ztyb = np.zeros((nb, b))
        ztyb[lab, loc] = zty
        T = Lt @ self.ZtX_b
        t = (Lt @ ztyb[..., None])[..., 0]
        rhs = np.concatenate([K, T, t[..., None]], axis=2)
        CK = np.linalg.solve(A, rhs)
        KtC = np.swapaxes(K, 1, 2) @ CK
        ii, jj, gb, li, lj = self._bpair
        ZVZ = np.zeros((q, q))
        ZVZ[ii, jj] = self.ZtZ[ii, jj] - KtC[gb, li, lj]
        ZVX = self.ZtX - KtC[lab, loc, b : b + p]
        ZVy = zty - KtC[lab, loc, b + p]
        TtC = np.swapaxes(T, 1, 2) @ CK[..., b:]
        TtC = TtC.sum(axis=0)
        XVX = self.XtX - TtC[:, :p]
        XVy = xty - TtC[:, p]
        yVy = yty - np.sum(t * CK[..., b + p])
        XVX = 0.5 * (XVX + XVX.T)
        return _profile_fixed(ZVZ, ZVX, XVX, ZVy, XVy, yVy, logdetA)

    def _core_dense(self, theta, zty, xty, yty):
        """Relative (sigma-free) quantities at theta (dense q x q; reference path)."""
        Lam = self.lam(theta)
        K = Lam.T @ self.ZtZ  # q x q
        A = K @ Lam
        A[np.diag_indices_from(A)] += 1.0
        cA, info = dpotrf(A, lower=1, clean=1, overwrite_a=1)
        if info != 0:
            raise linalg.LinAlgError("Lambda'Z'Z Lambda + I not positive definite")
        logdetA = 2.0 * np.sum(np.log(np.diag(cA)))
        T = Lam.T @ self.ZtX  # q x p
        t = Lam.T @ zty
        CK, info = dpotrs(cA, np.column_stack([K, T, t]), lower=1)
        q, p = self.q, self.p
        Ct = CK[:, q + p]
        KtC = K.T @ CK
        ZVZ = self.ZtZ - KtC[:, :q]
        ZVX = self.ZtX - KtC[:, q : q + p]
        ZVy = zty - KtC[:, q + p]
        TtC = T.T @ CK[:, q:]
        XVX = self.XtX - TtC[:, :p]
        XVy = xty - TtC[:, p]
        yVy = yty - t @ Ct
        return _profile_fixed(ZVZ, ZVX, XVX, ZVy, XVy, yVy, logdetA)

    def _evaluate(self, theta, zty, xty, yty):
        """(profiled REML criterion, core quantities) at theta; (inf, None) if invalid."""
        try:
            c = self._core(theta, zty, xty, yty)
        except (linalg.LinAlgError, ValueError):
            return np.inf, None
        np_ = self.n - self.p
        if not c["pwrss"] > 0:
            return np.inf, None
        f = c["logdetA"] + c["logdetX"] + np_ * (1.0 + _LOG2PI + np.log(c["pwrss"] / np_))
        return float(f), c

    def profiled_deviance(self, theta, zty, xty, yty) -> float:
        """lme4's REML criterion (REMLcrit) at theta with sigma profiled out."""
        return self._evaluate(theta, zty, xty, yty)[0]

    def _derivs(self, theta, sigma, c, want_kr: bool = False):
        """Gradient/Hessian of the REML log-likelihood in psi and phi=(theta, sigma)."""
        s2 = sigma**2
        n_p = self.n - self.p
        XVXi = dpotrs(c["cx"][0], np.eye(self.p), lower=1)[0]
        # absolute quantities
        M = c["ZVZ"] / s2  # Z'V^-1 Z
        B = c["ZVX"] / s2  # Z'V^-1 X
        Phi = s2 * XVXi
        W = M - B @ Phi @ B.T  # Z'PZ
        u = (c["ZVy"] - c["ZVX"] @ c["beta"]) / s2  # Z'Py
        yPy = c["pwrss"] / s2
        K = self.n_psi
        qk = (self._M @ theta) @ theta
        psi = s2 * qk
        q = self.q
        # E_k = sum_s e_{a_s} e_{b_s}'  =>  tr(E_k W E_l W) = sum W[b_k, a_l] * W[b_l, a_k]'
        Wb = [W[self._psi_b[k]] for k in range(K)]
        R = np.zeros((K, q))  # E_k u
        trPG = np.empty(K)
        TT = np.empty((K, K))
        for k in range(K):
            ak = self._psi_a[k]
            R[k, ak] = u[self._psi_b[k]]
            trPG[k] = Wb[k][np.arange(ak.size), ak].sum()
            for l_ in range(k, K):
                TT[k, l_] = TT[l_, k] = np.sum(Wb[k][:, self._psi_a[l_]] * Wb[l_][:, ak].T)
        uEu = R @ u
        UU = R @ W @ R.T  # y'P G_k P G_l P y
        # residual component via sum_k psi_k G_k + s2 I = V
        tr_res = (n_p - psi @ trPG) / s2
        q_res = (yPy - psi @ uEu) / s2
        TT_kr = (trPG - TT @ psi) / s2
        UU_kr = (uEu - UU @ psi) / s2
        TT_rr = (tr_res - TT_kr @ psi) / s2
        UU_rr = (q_res - UU_kr @ psi) / s2
        TTf = np.empty((K + 1, K + 1))
        TTf[:K, :K] = TT
        TTf[:K, K] = TTf[K, :K] = TT_kr
        TTf[K, K] = TT_rr
        UUf = np.empty((K + 1, K + 1))
        UUf[:K, :K] = UU
        UUf[:K, K] = UUf[K, :K] = UU_kr
        UUf[K, K] = UU_rr
        g_psi = -0.5 * np.append(trPG, tr_res) + 0.5 * np.append(uEu, q_res)
        H_psi = 0.5 * TTf - UUf
        # chain rule to phi = (theta, sigma)
        nt = self.n_theta
        J = np.zeros((K + 1, nt + 1))
        Mth = self._M @ theta  # K x nt
        J[:K, :nt] = 2.0 * s2 * Mth
        J[:K, nt] = 2.0 * sigma * qk
        J[K, nt] = 2.0 * sigma
        D2 = np.zeros((K + 1, nt + 1, nt + 1))
        D2[:K, :nt, :nt] = 2.0 * s2 * self._M
        D2[:K, :nt, nt] = D2[:K, nt, :nt] = 4.0 * sigma * Mth
        D2[:K, nt, nt] = 2.0 * qk
        D2[K, nt, nt] = 2.0
        g_phi = J.T @ g_psi
        H_phi = J.T @ H_psi @ J + np.tensordot(g_psi, D2, 1)
        out = dict(
            Phi=Phi,
            B=B,
            M=M,
            W=W,
            psi=psi,
            g_psi=g_psi,
            H_psi=H_psi,
            TT=TTf,
            J=J,
            g_phi=g_phi,
            H_phi=H_phi,
        )
        return out

    # ------------------------------------------------------------------
    def fit(
        self,
        stats: tuple[np.ndarray, np.ndarray, float],
        start: np.ndarray | None = None,
        *,
        tol: float = 1e-7,
        max_iter: int = 60,
    ) -> FitResult:
        """REML fit from sufficient statistics.

        Newton's method on the profiled REML criterion in theta with the exact
        profiled Hessian (Schur complement of the (theta, sigma) Hessian at
        sigma-hat), eigenvalue-modified when not positive definite, with
        backtracking.  Falls back to L-BFGS-B (bounds theta_diag >= 0).
        """
        zty, xty, yty = stats
        theta = np.where(self._diag_theta, 1.0, 0.0) if start is None else np.array(start, float)
        n_p = self.n - self.p
        f, c = self._evaluate(theta, zty, xty, yty)
        converged = False
        last = None
        it = 0
        if np.isfinite(f):
            for it in range(1, max_iter + 1):  # noqa: B007 (count used after the loop)
                sigma = np.sqrt(c["pwrss"] / n_p)
                d = self._derivs(theta, sigma, c)
                H = -2.0 * d["H_phi"]
                g = -2.0 * d["g_phi"][:-1]
                nt = self.n_theta
                Hp = H[:nt, :nt] - np.outer(H[:nt, nt], H[nt, :nt]) / H[nt, nt]
                w, v = np.linalg.eigh(Hp)
                wmax = max(abs(w).max(), 1e-12)
                w = np.maximum(np.abs(w), 1e-8 * wmax)
                step = -(v @ ((v.T @ g) / w))
                # convergence: Newton decrement
                dec = -g @ step
                if dec < tol and np.max(np.abs(step)) < 1e-5 * (1 + np.max(np.abs(theta))):
                    converged = True
                    last = (theta.copy(), c, d)
                    break
                a = 1.0
                ok = False
                for _ in range(30):
                    th_new = theta + a * step
                    f_new, c_new = self._evaluate(th_new, zty, xty, yty)
                    if f_new <= f + 1e-4 * a * (g @ step) or (f_new <= f and a < 1e-3):
                        ok = True
                        break
                    a *= 0.5
                if not ok:
                    # cannot improve: accept as converged if gradient tiny
                    converged = np.max(np.abs(g)) < 1e-3
                    break
                theta, f, c = th_new, f_new, c_new
        message = "" if converged else "newton did not converge"
        if not converged:
            theta0 = np.abs(theta) * np.where(self._diag_theta, 1, 0) + theta * (~self._diag_theta)
            fun = lambda th: self.profiled_deviance(th, zty, xty, yty)  # noqa: E731
            try:
                r = optimize.minimize(
                    fun,
                    theta0 if np.all(np.isfinite(theta0)) else np.where(self._diag_theta, 1.0, 0.0),
                    method="L-BFGS-B",
                    bounds=[(lb if np.isfinite(lb) else None, None) for lb in self.lower],
                    options=dict(maxiter=500, ftol=1e-14, gtol=1e-8),
                )
                theta, f = r.x, r.fun
                converged = bool(r.success) and np.isfinite(f)
                message = "" if converged else f"fallback failed: {r.message}"
            except Exception as exc:  # pragma: no cover - defensive
                converged, message = False, f"fallback error: {exc}"
        theta_c = self._canonical(theta)
        if last is not None and np.array_equal(theta_c, last[0]):
            c = last[1]
        else:
            last = None
            theta = theta_c
            f, c = self._evaluate(theta, zty, xty, yty)
        if c is None:
            raise linalg.LinAlgError("REML criterion not finite at the solution")
        sigma = float(np.sqrt(c["pwrss"] / n_p))
        singular = bool(np.any(theta[self._diag_theta] < 1e-4))
        Phi = sigma**2 * dpotrs(c["cx"][0], np.eye(self.p), lower=1)[0]
        res = FitResult(
            beta=c["beta"],
            vcov=Phi,
            theta=theta,
            sigma=sigma,
            deviance=f,
            converged=bool(converged),
            singular=singular,
            iterations=it,
            message=message,
        )
        res.extra["core"] = c
        if last is not None:
            res.extra["derivs"] = last[2]
        return res

    def _canonical(self, theta: np.ndarray) -> np.ndarray:
        """Flip the sign of Cholesky columns with negative diagonal (same covariance)."""
        theta = np.array(theta, dtype=float)
        for ti, t in enumerate(self.terms):
            for j in range(t.r):
                kd = [k for (tt, i, jj, k) in self._theta_pos if tt == ti and jj == j and i == j][0]
                if theta[kd] < 0:
                    for tt, _i, jj, k in self._theta_pos:
                        if tt == ti and jj == j:
                            theta[k] = -theta[k]
        return theta

    # ------------------------------------------------------------------
    def contrast_tests(
        self, fit: FitResult, L: np.ndarray, *, satterthwaite: bool = True, kr: bool = False
    ) -> dict:
        """Estimate, SE, t and df of the contrast ``L @ beta`` (L a p-vector).

        Returns keys ``estimate``, ``se``, ``df_satterthwaite``, ``se_kr``,
        ``df_kr`` (the latter two only if ``kr``).
        """
        L = np.asarray(L, dtype=float)
        c = fit.extra["core"]
        d = fit.extra.get("derivs") or self._derivs(fit.theta, fit.sigma, c)
        Phi = d["Phi"]
        est = float(L @ fit.beta)
        var = float(L @ Phi @ L)
        out: dict = {"estimate": est, "se": np.sqrt(var)}
        s2 = fit.sigma**2
        if satterthwaite or kr:
            dC = self._vcov_derivatives(d, s2)
        if satterthwaite:
            # dC/dphi by the chain rule from dC/dpsi; A = 2 H^+ over eigenvalues > 1e-8
            jac = list(np.tensordot(d["J"].T, dC, 1))
            Hdev = -2.0 * d["H_phi"]
            ev, evec = np.linalg.eigh(Hdev)
            pos = ev > 1e-8
            Ainv = 2.0 * (evec[:, pos] / ev[pos]) @ evec[:, pos].T
            info = SatterthwaiteInfo(C=Phi, A=Ainv, jac=jac, hessian=Hdev)
            with np.errstate(divide="ignore", invalid="ignore"):
                df = info.df_contrast(L)
            out["df_satterthwaite"] = df if np.isfinite(df) and df > 0 else np.inf
        if kr:
            out.update(self._kenward_roger(d, L, s2, dC))
        return out

    def _vcov_derivatives(self, d: dict, s2: float) -> np.ndarray:
        """``dC/dpsi_k = -Phi P_k Phi`` for every covariance element and the residual.

        ``P_k = -X'V^-1 G_k V^-1 X = -B_a' B_b`` (``B = Z'V^-1X``); the residual
        component follows from ``sum_k psi_k G_k + sigma^2 I = V``.
        """
        K, Phi, B, psi = self.n_psi, d["Phi"], d["B"], d["psi"]
        Pm = np.empty((K + 1, self.p, self.p))
        for k in range(K):
            Pm[k] = -(B[self._psi_a[k]].T @ B[self._psi_b[k]])
        Pm[K] = -(np.linalg.inv(Phi) + np.einsum("k,kij->ij", psi, Pm[:K])) / s2
        d["P"] = Pm
        return -np.einsum("ij,kjl,lm->kim", Phi, Pm, Phi)

    def _kenward_roger(self, d: dict, L: np.ndarray, s2: float, dC: np.ndarray) -> dict:
        """Kenward & Roger (1997) adjusted variance and df for one contrast (pbkrtest).

        The engine supplies ``P_r``, ``Q_rs`` and ``tr(V^-1 G_r V^-1 G_s)``, all
        evaluated in the random-effects space; ``Phi_A`` and the df are computed
        by the shared :func:`effectstudy.multilevel.ddf.kenward_roger_info` and
        :func:`effectstudy.multilevel.ddf.kr_ddf` (pbkrtest's ``vcovAdj`` and
        ``Lb_ddf``), as for the general engine.
        """
        K = self.n_psi
        Phi, B, M, psi, Pm = d["Phi"], d["B"], d["M"], d["psi"], d["P"]
        p = self.p
        a_, b_ = self._psi_a, self._psi_b
        # Q_kl = X'V^-1 G_k V^-1 G_l V^-1 X; G_k = Z E_k Z' with E_k = sum e_a e_b'
        Qm = np.empty((K + 1, K + 1, p, p))
        for k in range(K):
            Bk = B[a_[k]].T  # p x |a|
            for l_ in range(K):
                Qm[k, l_] = Bk @ M[np.ix_(b_[k], a_[l_])] @ B[b_[l_]]
        for k in range(K):
            Qm[k, K] = (-Pm[k] - np.einsum("l,lij->ij", psi, Qm[k, :K])) / s2
            Qm[K, k] = Qm[k, K].T
        Qm[K, K] = (-Pm[K] - np.einsum("l,lji->ij", psi, Qm[:K, K])) / s2
        # tr(V^-1 G_k V^-1 G_l) = tr(E_k M E_l M) with M = Z'V^-1 Z; the residual
        # component (G = I) from sum_k psi_k G_k + sigma^2 I = V
        Mb = [M[b_[k]] for k in range(K)]
        kt = np.empty((K + 1, K + 1))
        for k in range(K):
            for l_ in range(k, K):
                kt[k, l_] = kt[l_, k] = np.sum(Mb[k][:, a_[l_]] * Mb[l_][:, a_[k]].T)
        tr_vg = np.array([Mb[k][np.arange(a_[k].size), a_[k]].sum() for k in range(K)])
        kt[:K, K] = kt[K, :K] = (tr_vg - kt[:K, :K] @ psi) / s2
        tr_vinv = (self.n - psi @ tr_vg) / s2
        kt[K, K] = (tr_vinv - kt[:K, K] @ psi) / s2
        Q = {(r, t): Qm[r, t] for r in range(K + 1) for t in range(r, K + 1)}
        info = kenward_roger_info(Phi, list(Pm), Q, kt)
        return {"se_kr": float(np.sqrt(L @ info.vcov_adj @ L)), "df_kr": kr_ddf(info, L)}
