"""Linear mixed models in lme4's formulation, with small-sample inference.

The engine follows Bates, Maechler, Bolker & Walker (2015), "Fitting linear
mixed-effects models using lme4", *Journal of Statistical Software* 67(1):

* the model is ``y = X beta + Z b + e`` with ``b = Lambda(theta) u``,
  ``u ~ N(0, sigma^2 I_q)`` and ``e ~ N(0, sigma^2 I_n)``, so that
  ``V = sigma^2 (Z Lambda Lambda' Z' + I)``;
* ``Lambda(theta)`` is block diagonal, one block ``I_J (x) T_t`` per random term
  with a lower-triangular ``k x k`` factor ``T_t`` whose elements (column-major
  lower triangle) are ``theta``; diagonal elements are bounded below by zero;
* for given ``theta`` the sparse Cholesky factor ``L_theta L_theta' =
  Lambda' Z' Z Lambda + I`` (eq. 18) and the fixed-effects factor ``R_X``
  (eq. 26) give the conditional estimates and the profiled deviance
  (eq. 34 for ML, eq. 41 for REML)::

      d_ML(theta)   = log|L|^2 + n (1 + log(2 pi r^2 / n))
      d_REML(theta) = log|L|^2 + log|R_X|^2 + (n - p)(1 + log(2 pi r^2 / (n - p)))

  where ``r^2`` is the penalised residual sum of squares;
* the profiled deviance is minimised over ``theta`` by bounded L-BFGS-B with an
  analytic gradient, on ``theta`` rescaled by the spread of each random-effect
  column (time in weeks makes slope elements ~100 times smaller than intercept
  elements), from lme4's start and from a moment-based start (the better optimum
  is kept); a diagonal element that ends on its bound is restarted from inside;
* a zero Cholesky column is a trap for a gradient method: the deviance depends
  on the column only through ``T T'``, so it is even in the column and its
  gradient there is exactly zero, also when the point is a saddle. The KKT
  conditions are therefore checked at every bound, to second order (see
  :meth:`LinearMixedModel.boundary_descent_directions`); along a direction of
  descent a line search leaves the bound and the search is restarted. A fit
  that still fails the check says so in ``messages``;
* the optimum is then polished by Newton steps with the analytic Hessian of the
  deviance in ``(theta, sigma)`` (see :mod:`.ddf`), so that the estimates agree
  with lme4 fits made with very tight tolerances.

Data sizes in this package are small (a few hundred rows, at most a hundred or
so groups), so dense linear algebra is used throughout.

Small-sample inference on the fixed effects (Satterthwaite as lmerTest,
Kuznetsova, Brockhoff & Christensen 2017; Kenward & Roger 1997 as pbkrtest,
Halekoh & Hojsgaard 2014) lives in :mod:`effectstudy.multilevel.ddf`.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize, stats

from effectstudy._results import ResultMixin
from effectstudy.errors import ModelError
from effectstudy.multilevel import ddf as _ddf
from effectstudy.multilevel.design import DesignInfo, design_matrix, formula_variables
from effectstudy.multilevel.formula import ParsedFormula, RandomTerm, parse_formula

__all__ = [
    "fit",
    "compare",
    "icc",
    "kr_modcomp",
    "LinearMixedModel",
    "MixedModelResults",
    "IccResult",
    "FewClustersWarning",
    "SINGULAR_MESSAGE",
]

SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular')"
#: lme4's default tolerance of ``isSingular()``.
SINGULAR_TOL = 1e-4
#: Below this many levels a grouping factor's variance is poorly estimated.
FEW_CLUSTERS = 6


class FewClustersWarning(UserWarning):
    """A random effect is estimated from very few groups (e.g. <= 6 programmes)."""


# ---------------------------------------------------------------------------
# random-effects structure
# ---------------------------------------------------------------------------
@dataclass
class _ReTerm:
    """Design of one random-effect term ``(expr | group)``."""

    term: RandomTerm
    label: str  # name as VarCorr prints it (make.unique'd group name)
    coef_names: list[str]
    Xt: np.ndarray  # n x k raw model matrix of expr
    index: np.ndarray  # n, level index of each row
    levels: np.ndarray
    offset: int = 0  # first column in Z
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


def _prepare_data(data: pd.DataFrame, parsed: ParsedFormula
                  ) -> tuple[pd.DataFrame, np.ndarray]:
    """Select used columns, check they exist, drop incomplete rows."""
    if not isinstance(data, pd.DataFrame):
        raise ModelError("data must be a pandas DataFrame")
    # the formula is parsed (never evaluated) before any data is touched
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


def _design(formula_rhs: str, frame: pd.DataFrame) -> tuple[np.ndarray, list[str], DesignInfo]:
    """Model matrix of a right-hand side (see :mod:`effectstudy.multilevel.design`)."""
    dm = design_matrix(formula_rhs, frame, NA_action="raise")
    return np.asarray(dm.matrix, dtype=float), list(dm.column_names), dm.design_info


def _group_codes(frame: pd.DataFrame, variables: list[str]) -> tuple[np.ndarray, np.ndarray]:
    keys = frame[variables[0]].astype(str).to_numpy(dtype=object)
    for v in variables[1:]:
        keys = keys + ":" + frame[v].astype(str).to_numpy(dtype=object)
    codes, levels = pd.factorize(pd.Series(keys), sort=True)
    return np.asarray(codes), np.asarray(levels, dtype=object)


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------
class LinearMixedModel:
    """A linear mixed model specified by an lme4 formula (not yet fitted).

    Parameters
    ----------
    formula:
        lme4-style formula, e.g. ``"outcome ~ time * programme + (1 + time | client)"``.
    data:
        One row per observation. Rows with a missing value in any model variable
        are dropped. Non-numeric columns are treated as factors with treatment
        contrasts and the first level (sorted) as reference, as R does.
    """

    def __init__(self, formula: str, data: pd.DataFrame) -> None:
        self.parsed = parse_formula(formula)
        if not self.parsed.random:
            raise ModelError("the formula has no random-effect term '(... | group)'")
        self.formula = formula
        frame, keep = _prepare_data(data, self.parsed)
        #: the rows used (all columns of the input), in input order
        self.data = data.iloc[keep]
        #: rows left out for a missing value in a model variable (never silently: see messages)
        self.n_dropped = len(data) - len(self.data)
        self._frame = frame
        resp = frame[self.parsed.response]
        if not pd.api.types.is_numeric_dtype(resp):
            raise ModelError(f"the response {self.parsed.response!r} is not numeric",
                             column=self.parsed.response)
        self.y = resp.to_numpy(dtype=float)
        self.X, self.fixed_names, self.design_info = _design(self.parsed.fixed, frame)
        self.n, self.p = self.X.shape
        if np.linalg.matrix_rank(self.X) < self.p:
            raise ModelError("the fixed-effects model matrix is rank deficient")
        terms = []
        for t in self.parsed.random:
            Xt, names, _ = _design(t.expr, frame)
            idx, levels = _group_codes(frame, t.group_variables)
            terms.append(_ReTerm(t, t.group, [_r_coef_name(nm) for nm in names], Xt, idx, levels))
        # lme4 (mkReTrms): order terms by decreasing number of levels if needed
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
        # dense Z
        Z = np.zeros((self.n, self.q))
        rows = np.arange(self.n)
        for t in terms:
            for c in range(t.k):
                Z[rows, t.offset + t.index * t.k + c] = t.Xt[:, c]
        self.Z = Z
        # positions of each theta element in Lambda
        self._lam_pos: list[tuple[np.ndarray, np.ndarray]] = []
        lower = []
        for t in terms:
            base = t.offset + np.arange(t.n_levels) * t.k
            for i, j in t.tri_index():
                self._lam_pos.append((base + i, base + j))
                lower.append(0.0 if i == j else -np.inf)
        self.lower = np.array(lower)
        # cross products
        self.ZtZ = Z.T @ Z
        self.ZtX = Z.T @ self.X
        self.Zty = Z.T @ self.y
        self.XtX = self.X.T @ self.X
        self.Xty = self.X.T @ self.y
        self.yty = float(self.y @ self.y)

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
        """Scale of each theta element: ``1 / rms`` of the row's random-effect column.

        The optimiser works on ``theta / scale`` so that all parameters act on
        the data on a comparable scale.
        """
        out = []
        for t in self.terms:
            rms = np.sqrt(np.mean(t.Xt**2, axis=0))
            rms = np.where(rms > 0, rms, 1.0)
            out += [1.0 / rms[i] for i, _ in t.tri_index()]
        return np.array(out)

    def theta_start(self) -> np.ndarray:
        """lme4's starting value: identity factors (1 on diagonals, 0 elsewhere)."""
        return np.where(np.isfinite(self.lower), 1.0, 0.0)

    # -- Lambda ----------------------------------------------------------------
    def lam(self, theta: np.ndarray) -> np.ndarray:
        """The relative covariance factor ``Lambda(theta)`` (q x q, dense)."""
        L = np.zeros((self.q, self.q))
        for (r, c), th in zip(self._lam_pos, theta, strict=True):
            L[r, c] = th
        return L

    def lam_derivative(self, k: int) -> np.ndarray:
        """``d Lambda / d theta_k`` (a 0/1 indicator matrix)."""
        L = np.zeros((self.q, self.q))
        r, c = self._lam_pos[k]
        L[r, c] = 1.0
        return L

    def term_covariances(self, theta: np.ndarray, sigma: float) -> list[np.ndarray]:
        """Covariance matrix ``sigma^2 T_t T_t'`` of each term's random effects."""
        out = []
        for t in self.terms:
            T = np.zeros((t.k, t.k))
            for (i, j), th in zip(t.tri_index(),
                                  theta[t.theta_offset:t.theta_offset + t.n_theta], strict=True):
                T[i, j] = th
            out.append(sigma**2 * T @ T.T)
        return out

    # -- deviance ------------------------------------------------------------
    def _factor(self, theta: np.ndarray) -> dict[str, Any]:
        """Cholesky factors and conditional estimates at ``theta`` (lme4 paper, sec. 3)."""
        lam = self.lam(theta)
        LtZtZL = lam.T @ self.ZtZ @ lam
        M = LtZtZL + np.eye(self.q)
        Lc = linalg.cholesky(M, lower=True, check_finite=False)
        cu = linalg.solve_triangular(Lc, lam.T @ self.Zty, lower=True, check_finite=False)
        RZX = linalg.solve_triangular(Lc, lam.T @ self.ZtX, lower=True, check_finite=False)
        RXtRX = self.XtX - RZX.T @ RZX
        LX = linalg.cholesky(RXtRX, lower=True, check_finite=False)
        rhs = self.Xty - RZX.T @ cu
        cbeta = linalg.solve_triangular(LX, rhs, lower=True, check_finite=False)
        beta = linalg.solve_triangular(LX.T, cbeta, lower=False, check_finite=False)
        r2 = self.yty - cu @ cu - cbeta @ cbeta
        ldL2 = 2.0 * np.sum(np.log(np.diag(Lc)))
        ldRX2 = 2.0 * np.sum(np.log(np.diag(LX)))
        return dict(lam=lam, Lc=Lc, cu=cu, RZX=RZX, LX=LX, beta=beta, r2=r2,
                    ldL2=ldL2, ldRX2=ldRX2)

    def deviance(self, theta: np.ndarray, reml: bool = True) -> float:
        """Profiled deviance (ML, eq. 34) or REML criterion (eq. 41) at ``theta``."""
        try:
            f = self._factor(np.asarray(theta, dtype=float))
        except (linalg.LinAlgError, ValueError):
            return np.inf
        return self._dev_from(f, reml)

    def deviance_gradient(self, theta: np.ndarray, reml: bool = True
                          ) -> tuple[float, np.ndarray]:
        """Profiled deviance and its analytic gradient in ``theta``.

        By the envelope theorem the gradient of the profiled deviance equals the
        ``theta`` part of the gradient of ``-2 l(theta, sigma)`` at
        ``sigma = sigma_hat(theta)``: ``tr(P V_k) - y'P V_k P y`` (``V^-1`` in
        place of ``P`` for ML). With ``B = Z Lambda``, ``M = B'B + I``,
        ``V_k = sigma^2 (D_k B' + B D_k')`` and ``D_k = Z Lambda_k`` every term
        reduces to q-dimensional quantities (Woodbury):

        * ``tr(V^-1 V_k) = 2 tr(M^-1 Lambda' Z'Z Lambda_k)``;
        * ``tr(C X'V^-1 V_k V^-1 X) = 2 tr((R_X'R_X)^-1 (Lambda_k'Z'F)'(Lambda'Z'F))``,
          ``F = X - B M^-1 B'X``;
        * ``y'P V_k P y = 2 (Lambda_k'Z'e)'(Lambda'Z'e) / sigma^2`` with ``e`` the
          conditional residual ``y - X beta - B u``.
        """
        theta = np.asarray(theta, dtype=float)
        try:
            f = self._factor(theta)
        except (linalg.LinAlgError, ValueError):
            return np.inf, np.zeros_like(theta)
        dev = self._dev_from(f, reml)
        if not np.isfinite(dev):
            return dev, np.zeros_like(theta)
        lam, Lc = f["lam"], f["Lc"]
        cho = (Lc, True)
        W = linalg.cho_solve(cho, lam.T @ self.ZtZ, check_finite=False)  # M^-1 L'Z'Z
        u = linalg.solve_triangular(Lc.T, f["cu"] - f["RZX"] @ f["beta"], lower=False,
                                    check_finite=False)
        # Z'e with e = y - X beta - Z Lambda u
        Zte = self.Zty - self.ZtX @ f["beta"] - self.ZtZ @ (lam @ u)
        LZte = lam.T @ Zte
        denom = self.n - self.p if reml else self.n
        sigma2 = f["r2"] / denom
        if reml:
            # Z'F = Z'X - Z'Z Lambda M^-1 Lambda' Z'X
            ZtF = self.ZtX - W.T @ (lam.T @ self.ZtX)
            LZtF = lam.T @ ZtF
            RXinv = linalg.cho_solve((f["LX"], True), np.eye(self.p), check_finite=False)
        grad = np.empty_like(theta)
        for k, (r, c) in enumerate(self._lam_pos):
            g = 2.0 * np.sum(W[c, r])
            if reml:
                g -= 2.0 * np.sum(RXinv * (ZtF[r].T @ LZtF[c]))
            g -= 2.0 * float(Zte[r] @ LZte[c]) / sigma2
            grad[k] = g
        return dev, grad

    def _dev_from(self, f: dict[str, Any], reml: bool) -> float:
        n, p = self.n, self.p
        r2 = f["r2"]
        if not np.isfinite(r2) or r2 <= 0:
            return np.inf
        if reml:
            nmp = n - p
            return float(f["ldL2"] + f["ldRX2"] + nmp * (1.0 + np.log(2.0 * np.pi * r2 / nmp)))
        return float(f["ldL2"] + n * (1.0 + np.log(2.0 * np.pi * r2 / n)))

    def _conditional(self, theta: np.ndarray, reml: bool) -> dict[str, Any]:
        """All estimates at ``theta``, residuals computed directly (not by subtraction)."""
        f = self._factor(theta)
        u = linalg.solve_triangular(f["Lc"].T, f["cu"] - f["RZX"] @ f["beta"], lower=False,
                                    check_finite=False)
        b = f["lam"] @ u
        resid = self.y - self.X @ f["beta"] - self.Z @ b
        pwrss = float(resid @ resid + u @ u)
        f["r2"] = pwrss
        f["u"], f["b"], f["resid"] = u, b, resid
        denom = self.n - self.p if reml else self.n
        f["sigma"] = float(np.sqrt(pwrss / denom))
        f["deviance"] = self._dev_from(f, reml)
        return f

    # -- fitting -------------------------------------------------------------
    def fit(self, reml: bool = True, *, polish: bool = True, maxiter: int = 10000
            ) -> MixedModelResults:
        """Fit by minimising the profiled deviance over ``theta``.

        Parameters
        ----------
        reml:
            REML (default, as lmer) or maximum likelihood.
        polish:
            After the bounded quasi-Newton search, take Newton steps with the
            analytic gradient and Hessian of the deviance (only over parameters
            not at their bound) until the gradient vanishes.

        Notes
        -----
        The search runs from lme4's start and from :meth:`moment_start`; at a
        solution with diagonal elements on their bound the first- and
        second-order KKT conditions are checked
        (:meth:`boundary_descent_directions`) and a false boundary optimum is
        left along the direction of descent. If the final fit still fails the
        check, ``messages`` contains "possible false boundary optimum".
        """
        messages: list[str] = []
        scale = self.theta_scale()
        bounds = [(lo if np.isfinite(lo) else None, None) for lo in self.lower]
        fun = lambda th: self.deviance(th, reml)  # noqa: E731
        fun_s = lambda ph: self.deviance(ph * scale, reml)  # noqa: E731
        diag = np.isfinite(self.lower)

        def fun_grad(ph: np.ndarray) -> tuple[float, np.ndarray]:
            d, g = self.deviance_gradient(ph * scale, reml)
            return d, g * scale

        def search(phi0: np.ndarray) -> np.ndarray:
            res = optimize.minimize(fun_grad, phi0, jac=True, method="L-BFGS-B",
                                    bounds=bounds,
                                    options=dict(maxiter=maxiter, ftol=1e-13, gtol=1e-8,
                                                 maxls=50))
            phi = np.where(diag, np.maximum(res.x, 0.0), res.x)
            return phi * scale

        with _single_thread():
            # quasi-Newton search on scaled parameters (random-effect columns of
            # very different spread, e.g. time in weeks, make theta badly scaled),
            # from lme4's start and from a moment-based start; keep the better
            theta = search(np.where(diag, 1.0, 0.0))
            mom = self.moment_start()
            if mom is not None:
                alt = search(mom / scale)
                if fun(alt) < fun(theta):
                    theta = alt
            # a diagonal element at its bound may be a false (local) boundary
            # optimum: restart from inside and keep the better optimum
            tried = 0
            while tried < 3 and np.any(diag & (theta / scale < 1e-6)):
                tried += 1
                phi0 = theta / scale
                phi0 = np.where(diag & (phi0 < 1e-6), 0.5, phi0)
                alt = search(phi0)
                if fun(alt) < fun(theta) - 1e-9:
                    theta = alt
                else:
                    break
            # KKT check at the bound (first and second order): L-BFGS-B stops at a
            # zero Cholesky column because the deviance is even in the column's
            # sign (zero gradient there), also when it is a saddle point
            theta = self._escape_boundary(theta, reml, search)
            ok = False
            if polish:
                theta, ok = self._newton_polish(theta, reml)
            if not ok:
                # derivative-free refinement (e.g. at a boundary of the parameter space)
                res2 = optimize.minimize(fun_s, theta / scale, method="Nelder-Mead",
                                         bounds=bounds,
                                         options=dict(maxiter=maxiter, xatol=1e-10,
                                                      fatol=1e-13, maxfev=4000))
                if res2.fun <= fun(theta):
                    theta = np.asarray(res2.x, dtype=float) * scale
                theta = np.where(diag, np.maximum(theta, 0.0), theta)
                if polish:
                    theta, ok = self._newton_polish(theta, reml)
                if not ok and not res2.success:
                    messages.append(f"optimizer did not converge: {res2.message}")
            escaped = self._escape_boundary(theta, reml, search)
            if escaped is not theta:
                theta = escaped
                if polish:
                    theta, _ = self._newton_polish(theta, reml)
            doubt = self._boundary_doubt(theta, reml)
            if doubt is not None:
                messages.append(doubt)
            grad = self._gradient_check(theta, reml)
            if grad is not None:
                messages.append(grad)
        if not np.isfinite(self.deviance(theta, reml)):
            raise ModelError("the model could not be fitted (non-finite deviance)")
        with _single_thread():
            return MixedModelResults(self, theta, reml, messages)

    # -- start values and boundary (KKT) checks --------------------------------
    def moment_start(self) -> np.ndarray | None:
        """A second, data-based starting value (method of moments).

        The OLS residuals are regressed on each term's columns within every
        level of its grouping factor; the spread of these per-group coefficients,
        less their average sampling covariance, estimates the term's covariance
        relative to the within-group residual variance. Eigenvalues are kept
        away from zero (in the scaled parameterisation) so the start is interior.
        Returns ``None`` if no term has a group with enough observations.
        """
        try:
            beta = np.linalg.lstsq(self.X, self.y, rcond=None)[0]
            r = self.y - self.X @ beta
            s2 = float(r @ r) / (self.n - self.p)
            out = np.zeros(self.n_theta)
            per_term = []
            rss_w, df_w = 0.0, 0
            for t in self.terms:
                coefs, covs = [], []
                for g in range(t.n_levels):
                    rows = t.index == g
                    Xg = t.Xt[rows]
                    if Xg.shape[0] <= t.k or np.linalg.matrix_rank(Xg) < t.k:
                        continue
                    XtXg = Xg.T @ Xg
                    bg = np.linalg.solve(XtXg, Xg.T @ r[rows])
                    coefs.append(bg)
                    covs.append(np.linalg.inv(XtXg))
                    if t is self.terms[0]:
                        e = r[rows] - Xg @ bg
                        rss_w += float(e @ e)
                        df_w += Xg.shape[0] - t.k
                per_term.append((coefs, covs))
            if df_w > 0:
                s2 = rss_w / df_w
            if not (np.isfinite(s2) and s2 > 0):
                return None
            scale = self.theta_scale()
            any_ok = False
            for t, (coefs, covs) in zip(self.terms, per_term, strict=True):
                sl = slice(t.theta_offset, t.theta_offset + t.n_theta)
                rms = 1.0 / scale[sl][[t.tri_index().index((i, i)) for i in range(t.k)]]
                if len(coefs) >= 2:
                    S = np.cov(np.array(coefs).T, ddof=1).reshape(t.k, t.k)
                    S = (S - s2 * np.mean(covs, axis=0)) / s2
                    any_ok = True
                else:
                    S = np.eye(t.k) / np.outer(rms, rms)
                # scaled: D S D with D = diag(rms); floor eigenvalues at 0.05^2
                Ss = S * np.outer(rms, rms)
                w, U = np.linalg.eigh(0.5 * (Ss + Ss.T))
                w = np.clip(w, 0.0025, 100.0)
                Ss = (U * w) @ U.T
                T = np.linalg.cholesky(Ss) / rms[:, None]
                out[sl] = [T[i, j] for i, j in t.tri_index()]
            if not any_ok or not np.all(np.isfinite(out)):
                return None
            return out
        except (np.linalg.LinAlgError, ValueError):
            return None

    def boundary_descent_directions(self, theta: np.ndarray, reml: bool = True,
                                    tol: float = 1e-9
                                    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Ways down from diagonal ``theta`` elements on their bound (KKT check).

        The deviance depends on each term's factor ``T`` only through ``T T'``,
        so it is unchanged when a column of ``T`` changes sign. At
        ``theta_jj = 0`` both signs of the rest of column ``j`` are feasible,
        which makes the conditions for a (local) optimum, checked per column
        with the profiled deviance's gradient ``g`` and Hessian (Schur
        complement of the ``(theta, sigma)`` Hessian) in scaled units:

        * column ``j`` otherwise non-zero: ``g_jj = 0`` (if ``g_jj > 0``, the
          column with the other sign has ``g_jj < 0``, a way into the interior)
          and, to second order, ``H_jj >= 0``;
        * whole column zero: the deviance is even in the column, its gradient
          vanishes identically, and the Hessian over the column's elements
          must be positive semi-definite; a negative eigenvalue marks a saddle
          point, its eigenvector (diagonal component made non-negative) the way
          down.

        Returns
        -------
        list of ``(point, direction)``: ``point`` is ``theta`` or the equivalent
        ``theta`` with column ``j`` sign-flipped (same deviance), ``direction``
        (in ``theta`` units, unit length in scaled units) lowers the deviance
        from it. Empty if the KKT conditions hold.
        """
        theta = np.asarray(theta, dtype=float)
        diag = np.isfinite(self.lower)
        scale = self.theta_scale()
        phi = theta / scale
        at = diag & (phi <= 1e-6)
        if not at.any():
            return []
        f = self._conditional(theta, reml)
        grad, hess = _ddf.deviance_derivatives(self, theta, f["sigma"], reml)
        m = self.n_theta
        g = grad[:m] * scale
        Hp = hess[:m, :m] - np.outer(hess[:m, m], hess[m, :m]) / hess[m, m]
        Hs = Hp * np.outer(scale, scale)
        thr = tol * max(1.0, abs(f["deviance"]))
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for t in self.terms:
            tri = t.tri_index()
            for j in range(t.k):
                col = [t.theta_offset + pos for pos, (_, jj) in enumerate(tri) if jj == j]
                kd = col[0]  # column-major: the diagonal comes first
                if not at[kd]:
                    continue
                v = np.zeros(m)
                point = theta
                if np.all(np.abs(phi[col]) <= 1e-6):
                    w, U = np.linalg.eigh(Hs[np.ix_(col, col)])
                    if w[0] < -thr:
                        u = U[:, 0] if U[0, 0] >= 0 else -U[:, 0]
                        v[col] = u
                elif abs(g[kd]) > thr:
                    v[kd] = 1.0
                    if g[kd] > 0:  # the way in is from the sign-flipped column
                        point = theta.copy()
                        point[col[1:]] = -point[col[1:]]
                elif Hs[kd, kd] < -thr:
                    v[kd] = 1.0
                if np.any(v):
                    out.append((point, v * scale))
        return out

    def _safe_directions(self, theta: np.ndarray, reml: bool
                         ) -> list[tuple[np.ndarray, np.ndarray]]:
        try:
            return self.boundary_descent_directions(theta, reml)
        except (linalg.LinAlgError, ValueError, FloatingPointError, ZeroDivisionError):
            return []

    def _line_escape(self, theta: np.ndarray, v: np.ndarray, reml: bool,
                     d0: float | None = None) -> np.ndarray | None:
        """The best point along ``theta + s v`` (``s > 0``) if it lowers the deviance
        (below ``d0``, by default the deviance at ``theta``)."""
        if d0 is None:
            d0 = self.deviance(theta, reml)
        lo = np.isfinite(self.lower)

        def at(s: float) -> np.ndarray:
            th = theta + s * v
            return np.where(lo, np.maximum(th, self.lower), th)

        grid = 4.0 * 0.5 ** np.arange(24)
        vals = np.array([self.deviance(at(s), reml) for s in grid])
        k = int(np.argmin(vals))
        if not vals[k] < d0 - 1e-12 * max(1.0, abs(d0)):
            return None
        res = optimize.minimize_scalar(lambda s: self.deviance(at(s), reml),
                                       bounds=(grid[k] / 2, grid[k] * 2), method="bounded",
                                       options=dict(xatol=1e-10 * grid[k]))
        s = float(res.x) if res.fun < vals[k] else grid[k]
        return at(s)

    def _escape_boundary(self, theta: np.ndarray, reml: bool, search, rounds: int = 6
                         ) -> np.ndarray:
        """Leave a false boundary optimum along a way down and search again."""
        for _ in range(rounds):
            cur = self.deviance(theta, reml)
            improved = False
            for point, v in self._safe_directions(theta, reml):
                start = self._line_escape(point, v, reml, d0=cur)
                if start is None:
                    continue
                alt = search(start / self.theta_scale())
                if self.deviance(alt, reml) < cur:
                    theta, improved = alt, True
                    break
            if not improved:
                break
        return theta

    def _boundary_doubt(self, theta: np.ndarray, reml: bool) -> str | None:
        """A message if the final fit still fails the KKT check at its bounds."""
        cur = self.deviance(theta, reml)
        for point, v in self._safe_directions(theta, reml):
            if self._line_escape(point, v, reml, d0=cur) is not None:
                names = [nm for nm, vi in zip(self.theta_names, v, strict=True) if vi != 0]
                crit = "REML criterion" if reml else "deviance"
                return (f"possible false boundary optimum: the {crit} decreases away "
                        f"from the bound along {', '.join(names)}")
        return None

    def _newton_polish(self, theta: np.ndarray, reml: bool, steps: int = 25
                       ) -> tuple[np.ndarray, bool]:
        """Newton iterations on the (theta, sigma) deviance at the free parameters.

        Returns the polished ``theta`` and whether the gradient at the free
        parameters vanished (relative to the Hessian scale).
        """
        cur = self.deviance(theta, reml)
        for _ in range(steps):
            f = self._conditional(theta, reml)
            free = ~((np.isfinite(self.lower)) & (theta <= self.lower + 1e-8))
            if not free.any():
                return theta, True
            grad, hess = _ddf.deviance_derivatives(self, theta, f["sigma"], reml)
            idx = np.r_[np.flatnonzero(free), self.n_theta]
            g = grad[idx]
            H = hess[np.ix_(idx, idx)]
            try:
                if not np.all(np.linalg.eigvalsh(H) > 0):
                    return theta, False
                step = -np.linalg.solve(H, g)
            except np.linalg.LinAlgError:
                return theta, False
            # Newton decrement: converged when the predicted decrease is negligible
            if float(-g @ step) < 1e-16 * max(1.0, abs(cur)):
                return theta, True
            dtheta = np.zeros_like(theta)
            dtheta[idx[:-1]] = step[:-1]
            for scale in (1.0, 0.5, 0.25, 0.125, 0.0625, 0.03125):
                cand = theta + scale * dtheta
                cand = np.where(np.isfinite(self.lower), np.maximum(cand, self.lower), cand)
                d = self.deviance(cand, reml)
                if d <= cur + 1e-12 * max(1.0, abs(cur)):
                    break
            else:
                return theta, float(-g @ step) < 1e-10 * max(1.0, abs(cur))
            if np.max(np.abs(cand - theta)) < 1e-13:
                return cand, True
            theta, cur = cand, min(d, cur)
        return theta, False

    def _gradient_check(self, theta: np.ndarray, reml: bool) -> str | None:
        """A convergence message if the scaled gradient at free parameters is large."""
        f = self._conditional(theta, reml)
        free = ~((np.isfinite(self.lower)) & (theta <= self.lower + 1e-8))
        if not free.any():
            return None
        grad, hess = _ddf.deviance_derivatives(self, theta, f["sigma"], reml)
        idx = np.r_[np.flatnonzero(free), self.n_theta]
        g, H = grad[idx], hess[np.ix_(idx, idx)]
        try:
            scaled = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            return "Model is nearly unidentifiable: singular Hessian of the deviance"
        if np.max(np.abs(scaled)) > 2e-3:
            return (f"Model failed to converge: max|scaled grad| = "
                    f"{np.max(np.abs(scaled)):.3g}")
        return None


class _NoLimit:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _single_thread():
    """Limit BLAS to one thread: the matrices are small and threads only contend."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return _NoLimit()
    return threadpool_limits(limits=1)


# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------
_DDF_ALIASES = {
    "satterthwaite": "satterthwaite",
    "kenward-roger": "kenward-roger",
    "kenward_roger": "kenward-roger",
    "kr": "kenward-roger",
    "residual": "residual",
    "lme4": "residual",
}


def _ddf_method(ddf: str) -> str:
    key = str(ddf).lower()
    if key not in _DDF_ALIASES:
        raise ModelError(f"unknown ddf method {ddf!r}: use 'satterthwaite', "
                         "'kenward-roger' or 'residual'")
    return _DDF_ALIASES[key]


class MixedModelResults(ResultMixin):
    """A fitted linear mixed model (lme4's ``merMod`` counterpart).

    Attributes
    ----------
    theta:
        Relative Cholesky factor elements (``getME(fit, "theta")``).
    beta:
        Fixed effects (GLS estimates given ``theta``).
    sigma:
        Residual standard deviation.
    loglik, aic, bic:
        (RE)ML log-likelihood and the information criteria of ``logLik``
        (for a REML fit they use the REML criterion, as lme4 does).
    nobs, n_groups:
        Rows used; number of levels per grouping factor.
    is_singular:
        ``True`` if a diagonal element of ``theta`` is below 1e-4
        (lme4's ``isSingular``).
    messages:
        Singular-fit and convergence messages (empty if none).
    X, y, data, fixed_names:
        Model matrix, response, the rows used, and the coefficient names
        (patsy's names, e.g. ``time:programme[T.P3]``).
    """

    _title = "Linear mixed model (lme4 formulation)"

    def __init__(self, model: LinearMixedModel, theta: np.ndarray, reml: bool,
                 messages: list[str] | None = None) -> None:
        self.model = model
        self.formula = model.formula
        self.reml = bool(reml)
        self.theta = np.asarray(theta, dtype=float)
        f = model._conditional(self.theta, self.reml)
        self._f = f
        self.beta = f["beta"]
        self.sigma = f["sigma"]
        self.deviance = f["deviance"]
        self.loglik = -0.5 * self.deviance
        self.n_parameters = model.p + model.n_theta + 1
        self.nobs = model.n
        self.aic = self.deviance + 2.0 * self.n_parameters
        self.bic = self.deviance + np.log(self.nobs) * self.n_parameters
        self.X = model.X
        self.y = model.y
        self.data = model.data
        self.fixed_names = list(model.fixed_names)
        self.theta_names = model.theta_names
        ng: dict[str, int] = {}
        for t in model.terms:
            ng[t.term.group] = t.n_levels
        self.n_groups = ng
        fin = np.isfinite(model.lower)
        self.is_singular = bool(np.any(self.theta[fin] < SINGULAR_TOL))
        self.messages: list[str] = list(messages or [])
        if self.is_singular:
            self.messages.insert(0, SINGULAR_MESSAGE)
        if getattr(model, "n_dropped", 0):
            self.messages.append(f"{model.n_dropped} row(s) with a missing value in a model "
                                 "variable were left out (complete cases)")
        self.warnings: list[str] = list(self.messages)
        few = {g: n for g, n in ng.items() if n <= FEW_CLUSTERS}
        if few:
            txt = ", ".join(f"{g} ({n} levels)" for g, n in few.items())
            note = (f"random effects of {txt} are estimated from very few groups: their "
                    "variance is poorly estimated (and often singular). Consider treating "
                    "these groups as fixed effects (e.g. 'outcome ~ ... + programme') with "
                    "cluster-robust (CR2) standard errors instead.")
            self.warnings.append(note)
            warnings.warn(note, FewClustersWarning, stacklevel=4)
        self._cache: dict[str, Any] = {}

    # -- covariance ----------------------------------------------------------
    @property
    def sigma2(self) -> float:
        return self.sigma**2

    @property
    def reml_criterion(self) -> float:
        """``REMLcrit`` (REML fits) or the ML deviance."""
        return self.deviance

    def vcov(self) -> np.ndarray:
        """Model-based covariance of the fixed effects, ``sigma^2 (R_X' R_X)^{-1}``
        ``= (X' V^{-1} X)^{-1}``."""
        LX = self._f["LX"]
        Linv = linalg.solve_triangular(LX, np.eye(self.model.p), lower=True)
        return self.sigma2 * (Linv.T @ Linv)

    def marginal_covariance(self) -> np.ndarray:
        """Marginal covariance of ``y``, ``V = sigma^2 (Z Lambda Lambda' Z' + I)`` (n x n)."""
        B = self.model.Z @ self._f["lam"]
        return self.sigma2 * (B @ B.T + np.eye(self.model.n))

    def random_effects(self) -> pd.DataFrame:
        """Conditional modes of the random effects (``ranef``), one row per level."""
        rows = []
        b = self._f["b"]
        for t in self.model.terms:
            vals = b[t.offset:t.offset + t.q].reshape(t.n_levels, t.k)
            df = pd.DataFrame(vals, columns=t.coef_names)
            df.insert(0, "level", t.levels)
            df.insert(0, "group", t.label)
            rows.append(df)
        return pd.concat(rows, ignore_index=True)

    def variance_components(self) -> pd.DataFrame:
        """Random-effect SDs and correlations, named as lme4's ``VarCorr`` prints them.

        Returns
        -------
        DataFrame with columns ``component`` (``client:(Intercept)``,
        ``client:(Intercept),time``, ``Residual``), ``kind`` (``'sd'`` or ``'cor'``),
        ``estimate``, ``variance`` (variance or covariance).
        """
        rows = []
        covs = self.model.term_covariances(self.theta, self.sigma)
        for t, S in zip(self.model.terms, covs, strict=True):
            sd = np.sqrt(np.diag(S))
            for i in range(t.k):
                rows.append((f"{t.label}:{t.coef_names[i]}", "sd", sd[i], S[i, i]))
            for j in range(t.k):
                for i in range(j + 1, t.k):
                    cor = S[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                    rows.append((f"{t.label}:{t.coef_names[j]},{t.coef_names[i]}", "cor",
                                 cor, S[i, j]))
        rows.append(("Residual", "sd", self.sigma, self.sigma2))
        return pd.DataFrame(rows, columns=["component", "kind", "estimate", "variance"])

    def theta_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"name": self.theta_names, "theta": self.theta})

    # -- inference -------------------------------------------------------------
    @cached_property
    def _sat(self) -> _ddf.SatterthwaiteInfo:
        with _single_thread():
            return _ddf.satterthwaite_info(self)

    @cached_property
    def _kr(self) -> _ddf.KenwardRogerInfo:
        if not self.reml:
            raise ModelError("Kenward-Roger needs a REML fit (refit with reml=True)")
        with _single_thread():
            return _ddf.kenward_roger_info(self)

    def vcov_kr(self) -> np.ndarray:
        """Kenward-Roger adjusted covariance ``Phi_A`` (pbkrtest ``vcovAdj``)."""
        return self._kr.vcov_adj.copy()

    def coefficients(self, ddf: str = "satterthwaite", alpha: float = 0.05) -> pd.DataFrame:
        """Fixed-effects table with small-sample t-tests.

        Parameters
        ----------
        ddf:
            ``"satterthwaite"`` (lmerTest; Satterthwaite 1946, Kuznetsova et al. 2017),
            ``"kenward-roger"`` (Kenward & Roger 1997: the SE is the KR-adjusted SE
            from ``Phi_A``, the df from pbkrtest's ``Lb_ddf``) or ``"residual"``
            (n - p df).
        alpha:
            1 - confidence level of the intervals.

        Returns
        -------
        DataFrame with ``term, estimate, se, df, statistic, p_value, ci_lower, ci_upper``.
        """
        method = _ddf_method(ddf)
        p = self.model.p
        if method == "kenward-roger":
            V = self._kr.vcov_adj
        else:
            V = self.vcov()
        se = np.sqrt(np.diag(V))
        dfs = np.empty(p)
        for i in range(p):
            L = np.zeros((1, p))
            L[0, i] = 1.0
            if method == "satterthwaite":
                dfs[i] = self._sat.df_contrast(L[0])
            elif method == "kenward-roger":
                dfs[i] = _ddf.kr_ddf(self._kr, L)
            else:
                dfs[i] = self.nobs - p
        tval = self.beta / se
        pval = 2.0 * stats.t.sf(np.abs(tval), dfs)
        crit = stats.t.ppf(1 - alpha / 2, dfs)
        return pd.DataFrame({
            "term": self.fixed_names, "estimate": self.beta, "se": se, "df": dfs,
            "statistic": tval, "p_value": pval,
            "ci_lower": self.beta - crit * se, "ci_upper": self.beta + crit * se,
        })

    def _as_L(self, L: Any) -> np.ndarray:
        if isinstance(L, pd.DataFrame):
            L = L.reindex(columns=self.fixed_names, fill_value=0.0).to_numpy(dtype=float)
        elif isinstance(L, (list, tuple)) and L and all(isinstance(s, str) for s in L):
            names = list(L)
            unknown = [s for s in names if s not in self.fixed_names]
            if unknown:
                raise ModelError(f"unknown coefficient(s): {unknown}")
            M = np.zeros((len(names), self.model.p))
            for r, s in enumerate(names):
                M[r, self.fixed_names.index(s)] = 1.0
            L = M
        L = np.atleast_2d(np.asarray(L, dtype=float))
        if L.shape[1] != self.model.p:
            raise ModelError(f"L must have {self.model.p} columns (one per coefficient)")
        return L

    def contrast(self, L: Any, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Joint F-test of ``L beta = 0``.

        Parameters
        ----------
        L:
            ``(r x p)`` matrix, a list of coefficient names (one row per name),
            or a DataFrame with coefficient-named columns.
        ddf:
            ``"satterthwaite"``: lmerTest's ``contest(joint=TRUE)`` (eigen-decomposition
            of ``L C L'``, one Satterthwaite df per component, combined as in
            Fai & Cornelius 1996). ``"kenward-roger"``: pbkrtest ``KRmodcomp``; two rows,
            ``Ftest`` (scaled F, the one lmerTest reports) and ``FtestU``.
            ``"residual"``: n - p denominator df.

        Returns
        -------
        DataFrame with ``test, F, num_df, den_df, p_value, F_scaling``.
        """
        method = _ddf_method(ddf)
        L = self._as_L(L)
        if method == "satterthwaite":
            F, ndf, ddf_ = self._sat.contest(L, self.beta)
            return pd.DataFrame([dict(test="Satterthwaite", F=F, num_df=ndf, den_df=ddf_,
                                      p_value=stats.f.sf(F, ndf, ddf_), F_scaling=1.0)])
        if method == "kenward-roger":
            r = _ddf.kr_test(self._kr, L, self.beta)
            return pd.DataFrame([
                dict(test="Ftest", F=r["F"], num_df=r["ndf"], den_df=r["ddf"],
                     p_value=r["p"], F_scaling=r["scaling"]),
                dict(test="FtestU", F=r["FU"], num_df=r["ndf"], den_df=r["ddf"],
                     p_value=r["pU"], F_scaling=r["scaling"]),
            ])
        C = self.vcov()
        Lb = L @ self.beta
        q = np.linalg.matrix_rank(L)
        F = float(Lb @ np.linalg.pinv(L @ C @ L.T) @ Lb) / q
        ddf_ = self.nobs - self.model.p
        return pd.DataFrame([dict(test="Wald", F=F, num_df=q, den_df=ddf_,
                                  p_value=stats.f.sf(F, q, ddf_), F_scaling=1.0)])

    def type3_contrasts(self) -> dict[str, np.ndarray]:
        """Type-III hypothesis matrices per model term (as ``anova(type=3)``)."""
        return _type3_contrasts(self.model)

    def anova(self, ddf: str = "satterthwaite") -> pd.DataFrame:
        """Type-III F-tests of the model terms (lmerTest ``anova(fit, type=3)``).

        The hypothesis of a term averages over the levels of factors in
        higher-order terms that contain it and sets numeric covariates to zero
        (SAS/lmerTest type-III convention with treatment contrasts).
        With ``ddf="kenward-roger"`` the F is pbkrtest's scaled ``Ftest``.

        Returns
        -------
        DataFrame with ``term, num_df, den_df, F, p_value``.
        """
        rows = []
        for term, L in self.type3_contrasts().items():
            r = self.contrast(L, ddf=ddf).iloc[0]
            rows.append(dict(term=term, num_df=r["num_df"], den_df=r["den_df"], F=r["F"],
                             p_value=r["p_value"]))
        return pd.DataFrame(rows, columns=["term", "num_df", "den_df", "F", "p_value"])

    # -- display ---------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The fixed-effects table with Satterthwaite df."""
        return self.coefficients("satterthwaite")

    def summary_frame(self) -> pd.DataFrame:
        """Model-level quantities as a small frame."""
        crit = "REMLcrit" if self.reml else "deviance"
        vals = {"nobs": self.nobs, "logLik": self.loglik, crit: self.deviance,
                "AIC": self.aic, "BIC": self.bic, "sigma": self.sigma,
                "is_singular": self.is_singular}
        return pd.DataFrame({"quantity": list(vals), "value": list(vals.values())})

    def __repr__(self) -> str:
        kind = "REML" if self.reml else "ML"
        return (f"<MixedModelResults {self.formula!r} ({kind}), nobs={self.nobs}, "
                f"logLik={self.loglik:.4f}{', singular' if self.is_singular else ''}>")


# ---------------------------------------------------------------------------
# type-III contrasts
# ---------------------------------------------------------------------------
def _type3_contrasts(model: LinearMixedModel) -> dict[str, np.ndarray]:
    """Type-III hypothesis matrix of every fixed term (treatment contrasts).

    Row ``r`` of a term's matrix is that term's coefficient ``r`` plus, for each
    higher-order term containing it whose extra factors are all categorical,
    the matching coefficients divided by the number of cells of the extra
    factors (i.e. the effect averaged over their levels). Higher-order terms
    with an extra numeric factor contribute nothing (the covariate is at 0).
    For ``time * programme`` this tests the slope averaged over programmes and
    the programme differences at ``time = 0``, as lmerTest's ``anova(type=3)``.
    """
    info = model.design_info
    p = model.p
    out: dict[str, np.ndarray] = {}

    def factor_names(term) -> list[str]:
        return [f.name() for f in term.factors]

    def is_categorical(fname: str) -> bool:
        return _is_cat(info, fname)

    terms = [t for t in info.terms if len(t.factors) > 0]
    for term in terms:
        sl = info.term_slices[term]
        cols = list(range(sl.start, sl.stop))
        L = np.zeros((len(cols), p))
        for r, c in enumerate(cols):
            L[r, c] = 1.0
        fn = set(factor_names(term))
        for other in terms:
            ofn = set(factor_names(other))
            if other is term or not fn < ofn:
                continue
            extra = ofn - fn
            if not all(is_categorical(e) for e in extra):
                continue  # numeric covariates in the higher term are set to 0
            nlev = 1
            for e in extra:
                nlev *= len(_levels(info, e))
            osl = info.term_slices[other]
            for oc in range(osl.start, osl.stop):
                parts = model.fixed_names[oc].split(":")
                kept = [pp for pp in parts if _part_factor(pp) not in extra]
                key = ":".join(kept)
                for r, c in enumerate(cols):
                    if _canon(model.fixed_names[c]) == _canon(key):
                        L[r, oc] += 1.0 / nlev
        out[term.name()] = L
    return out


def _is_cat(info, fname: str) -> bool:
    for f, fi in info.factor_infos.items():
        if f.name() == fname:
            return fi.type == "categorical"
    return False


def _levels(info, fname: str) -> list:
    for f, fi in info.factor_infos.items():
        if f.name() == fname:
            return list(fi.categories)
    return []


def _part_factor(part: str) -> str:
    return part.split("[", 1)[0]


def _canon(name: str) -> str:
    return ":".join(sorted(name.split(":")))


# ---------------------------------------------------------------------------
# public functions
# ---------------------------------------------------------------------------
def fit(formula: str, data: pd.DataFrame, reml: bool = True) -> MixedModelResults:
    """Fit a linear mixed model given by an lme4 formula.

    Parameters
    ----------
    formula:
        e.g. ``"outcome ~ time * fidelity + age + (1 | programme) + (1 + time | client)"``.
        See :mod:`effectstudy.multilevel.formula` for the random-term syntax.
    data:
        Long-format data, one row per observation.
    reml:
        Restricted maximum likelihood (default) or maximum likelihood.

    Returns
    -------
    MixedModelResults

    Raises
    ------
    ModelError
        For a malformed formula, unknown columns or an unfittable model.

    Warns
    -----
    FewClustersWarning
        If a grouping factor has <= 6 levels (e.g. programmes).

    Notes
    -----
    Bates et al. (2015) give the profiled deviance that is minimised; the
    fixed effects are the GLS estimates ``beta = (X'V^-1X)^-1 X'V^-1 y`` and
    ``vcov = sigma^2 (R_X'R_X)^-1 = (X'V^-1X)^-1``.
    """
    return LinearMixedModel(formula, data).fit(reml=reml)


@dataclass
class LRTResult(ResultMixin):
    """Likelihood-ratio test of two nested models (ML refits, as ``anova(m0, m1)``)."""

    models: list[str]
    n_parameters: list[int]
    aic: list[float]
    bic: list[float]
    loglik: list[float]
    deviance: list[float]
    chisq: float
    df: int
    p_value: float
    refitted: bool
    warnings: list[str] = field(default_factory=list)
    _title = "Likelihood-ratio test (ML)"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({
            "model": self.models, "n_parameters": self.n_parameters, "AIC": self.aic,
            "BIC": self.bic, "logLik": self.loglik, "deviance": self.deviance,
            "chisq": [np.nan, self.chisq], "df": [np.nan, self.df],
            "p_value": [np.nan, self.p_value],
        })


def compare(fit_a: MixedModelResults, fit_b: MixedModelResults, refit: bool = True
            ) -> LRTResult:
    """Likelihood-ratio test of nested mixed models, as lme4's ``anova(m0, m1)``.

    REML fits are refitted by ML first (``refit=True``, lme4's default), since
    REML likelihoods of models with different fixed effects are not comparable.
    The model with fewer parameters is the null model;
    ``chisq = 2 (logLik_1 - logLik_0)`` on ``npar_1 - npar_0`` df.
    """
    fits = []
    refitted = False
    for f in (fit_a, fit_b):
        if f.reml and refit:
            f = f.model.fit(reml=False)
            refitted = True
        fits.append(f)
    if len(fits[0].y) != len(fits[1].y) or not np.allclose(fits[0].y, fits[1].y):
        raise ModelError("the models were not fitted to the same observations")
    fits.sort(key=lambda f: f.n_parameters)
    small, big = fits
    dfd = big.n_parameters - small.n_parameters
    chisq = max(0.0, 2.0 * (big.loglik - small.loglik))
    notes = []
    if dfd <= 0:
        notes.append("models have the same number of parameters: no test")
    if not refit and (small.reml or big.reml):
        notes.append("REML likelihoods compared: only valid for equal fixed effects")
    p = float(stats.chi2.sf(chisq, dfd)) if dfd > 0 else np.nan
    return LRTResult(
        models=[small.formula, big.formula],
        n_parameters=[small.n_parameters, big.n_parameters],
        aic=[small.aic, big.aic], bic=[small.bic, big.bic],
        loglik=[small.loglik, big.loglik], deviance=[small.deviance, big.deviance],
        chisq=chisq, df=dfd, p_value=p, refitted=refitted, warnings=notes)


def kr_modcomp(full: MixedModelResults, reduced: MixedModelResults) -> pd.DataFrame:
    """Kenward-Roger F-test of a reduced model against a full one (``KRmodcomp(full, reduced)``).

    The restriction matrix ``L`` spans the part of the full model's column space
    orthogonal to the reduced model's (pbkrtest ``make_restriction_matrix``);
    the test is then ``full.contrast(L, ddf="kenward-roger")``.
    """
    X, X0 = full.X, reduced.X
    if X.shape[0] != X0.shape[0]:
        raise ModelError("the models were not fitted to the same observations")
    Q0, _ = np.linalg.qr(X0)
    R = X - Q0 @ (Q0.T @ X)
    # coefficient directions that move X beta outside span(X0)
    M = R.T @ R
    w, v = np.linalg.eigh(M)
    keep = w > 1e-10 * max(w.max(), 1.0)
    L = v[:, keep].T
    if L.shape[0] != X.shape[1] - np.linalg.matrix_rank(X0):
        raise ModelError("the reduced model is not nested in the full model")
    return full.contrast(L, ddf="kenward-roger")


# ---------------------------------------------------------------------------
# ICC
# ---------------------------------------------------------------------------
@dataclass
class IccResult(ResultMixin):
    """Intraclass correlations from a random-intercept model (REML)."""

    formula: str
    table: pd.DataFrame
    fit: MixedModelResults
    warnings: list[str] = field(default_factory=list)
    _title = "Intraclass correlation"

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def value(self, level: str, quantity: str) -> float:
        sel = self.table[(self.table["level"] == level) & (self.table["quantity"] == quantity)]
        if len(sel) != 1:
            raise KeyError((level, quantity))
        return float(sel["value"].iloc[0])


def icc(data: pd.DataFrame, outcome: str, groups: list[str] | str,
        covariates: list[str] | str | None = None) -> IccResult:
    """Intraclass correlations of a 2- or 3-level random-intercept model.

    Parameters
    ----------
    data:
        Long data.
    outcome:
        The response column.
    groups:
        One grouping factor (2-level: ``outcome ~ 1 + (1|client)``) or two,
        outer first (3-level: ``outcome ~ 1 + (1|programme) + (1|client)``; the
        client ids must be unique across programmes).
    covariates:
        Fixed effects to condition on (e.g. ``"time"``): the ICC is then the
        residual (conditional) ICC.

    Returns
    -------
    IccResult
        ``to_frame()`` has rows ``(level, quantity, value)``: the ``variance`` of
        every level and of ``Residual``; for 2 levels ``icc = v_g / (v_g + s^2)``;
        for 3 levels ``icc = v_outer / total`` (outer level),
        ``icc_client_level_share = v_inner / total`` and
        ``icc_same_client = (v_outer + v_inner) / total`` (the correlation of two
        observations of the same inner unit) on the inner level.
    """
    if isinstance(groups, str):
        groups = [groups]
    groups = list(groups)
    if len(groups) not in (1, 2):
        raise ModelError("icc() supports one (2-level) or two (3-level) grouping factors")
    if covariates is None:
        covariates = []
    elif isinstance(covariates, str):
        covariates = [covariates]
    fixed = " + ".join(["1", *covariates])
    rand = " + ".join(f"(1 | {g})" for g in groups)
    formula = f"{outcome} ~ {fixed} + {rand}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(formula, data, reml=True)
    for w in caught:
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    vc = res.variance_components().set_index("component")
    var = {g: float(vc.loc[f"{g}:(Intercept)", "variance"]) for g in groups}
    s2 = res.sigma2
    rows = [(g, "variance", var[g]) for g in groups] + [("Residual", "variance", s2)]
    if len(groups) == 1:
        g = groups[0]
        rows.append((g, "icc", var[g] / (var[g] + s2)))
    else:
        outer, inner = groups
        total = var[outer] + var[inner] + s2
        rows += [(outer, "icc", var[outer] / total),
                 (inner, "icc_client_level_share", var[inner] / total),
                 (inner, "icc_same_client", (var[outer] + var[inner]) / total)]
    table = pd.DataFrame(rows, columns=["level", "quantity", "value"])
    return IccResult(formula=formula, table=table, fit=res, warnings=list(res.warnings))
