"""Fitting a linear mixed model: the optimiser over ``theta`` and its boundary checks.

:class:`LinearMixedModel` is the penalised least-squares engine
(:class:`effectstudy.multilevel._engine.PLSModel`, Bates et al. 2015) plus the
search for the optimum:

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
  deviance in ``(theta, sigma)`` (:meth:`PLSModel.derivatives`), so that the
  estimates agree with lme4 fits made with very tight tolerances. L-BFGS-B
  stops at a relative reduction of ``1e-12``: closer to the deviance's
  rounding its line search spent dozens of evaluations for nothing;
* on the ``"sparse-lu"`` path (crossed designs with two large factors) the
  derivatives are central differences, so the polish stops at a Newton
  decrement of ``1e-14`` of the deviance and no derivative-free refinement
  follows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from effectstudy.errors import ModelError
from effectstudy.multilevel._engine import PLSModel, single_thread
from effectstudy.multilevel.results import MixedModelResults

__all__ = ["LinearMixedModel", "fit"]


class LinearMixedModel(PLSModel):
    """A linear mixed model specified by an lme4 formula (not yet fitted).

    Parameters
    ----------
    formula:
        lme4-style formula, e.g. ``"outcome ~ time * programme + (1 + time | client)"``.
    data:
        One row per observation. Rows with a missing value in any model variable
        are dropped. Non-numeric columns are treated as factors with treatment
        contrasts and the first level (sorted) as reference, as R does.

    Notes
    -----
    A rank-deficient fixed-effects matrix loses its aliased columns (those in
    the span of the columns before them, in R's column order) as lme4 does: ``dropped_fixed`` names
    them and the fit's ``messages`` say so. A constant outcome raises
    :class:`~effectstudy.errors.DataError`.
    """

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
                                    options=dict(maxiter=maxiter, ftol=1e-12, gtol=1e-8,
                                                 maxls=50))
            phi = np.where(diag, np.maximum(res.x, 0.0), res.x)
            return phi * scale

        with single_thread():
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
            # "sparse-lu": derivatives by central differences, whose rounding noise
            # a derivative-free search would not improve on
            numeric = self.path == "sparse-lu"
            ptol = 1e-14 if numeric else 1e-16
            if polish:
                theta, ok = self._newton_polish(theta, reml, tol=ptol)
            if not ok and not numeric:
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
                    theta, _ = self._newton_polish(theta, reml, tol=ptol)
            doubt = self._boundary_doubt(theta, reml)
            if doubt is not None:
                messages.append(doubt)
            grad = self._gradient_check(theta, reml)
            if grad is not None:
                messages.append(grad)
        if not np.isfinite(self.deviance(theta, reml)):
            raise ModelError("the model could not be fitted (non-finite deviance)")
        if self.dropped_fixed:
            messages.insert(0, "fixed-effect model matrix is rank deficient so dropping "
                            f"{len(self.dropped_fixed)} column(s) / coefficient(s): "
                            + ", ".join(self.dropped_fixed))
        with single_thread():
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
                coefs, covs, rss_t, df_t = _per_level_ols(t.Xt, t.index, t.n_levels, r)
                if t is self.terms[0]:
                    rss_w, df_w = rss_t, df_t
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
        f = self.conditional(theta, reml)
        grad, hess = self.derivatives(theta, f["sigma"], reml, factor=f["factor"])
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

    def _newton_polish(self, theta: np.ndarray, reml: bool, steps: int = 25,
                       tol: float = 1e-16) -> tuple[np.ndarray, bool]:
        """Newton iterations on the (theta, sigma) deviance at the free parameters.

        Returns the polished ``theta`` and whether the gradient at the free
        parameters vanished (Newton decrement below ``tol`` times the deviance).
        """
        cur = self.deviance(theta, reml)
        for _ in range(steps):
            f = self.conditional(theta, reml)
            free = ~((np.isfinite(self.lower)) & (theta <= self.lower + 1e-8))
            if not free.any():
                return theta, True
            grad, hess = self.derivatives(theta, f["sigma"], reml, factor=f["factor"])
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
            if float(-g @ step) < tol * max(1.0, abs(cur)):
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
        f = self.conditional(theta, reml)
        free = ~((np.isfinite(self.lower)) & (theta <= self.lower + 1e-8))
        if not free.any():
            return None
        grad, hess = self.derivatives(theta, f["sigma"], reml, factor=f["factor"])
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


def _per_level_ols(Xt: np.ndarray, index: np.ndarray, n_levels: int, r: np.ndarray
                   ) -> tuple[list[np.ndarray], list[np.ndarray], float, int]:
    """Per-level least squares of ``r`` on ``Xt`` (levels with more rows than columns
    and a full-rank block), vectorised over levels; also the pooled residual SS and df."""
    k = Xt.shape[1]
    counts = np.bincount(index, minlength=n_levels)
    XtX = np.empty((n_levels, k, k))
    Xtr = np.empty((n_levels, k))
    for a in range(k):
        Xtr[:, a] = np.bincount(index, weights=Xt[:, a] * r, minlength=n_levels)
        for b in range(a, k):
            XtX[:, a, b] = XtX[:, b, a] = np.bincount(index, weights=Xt[:, a] * Xt[:, b],
                                                      minlength=n_levels)
    ok = counts > k
    w = np.linalg.eigvalsh(XtX)
    clear = ok & (w[:, 0] > 1e-8 * np.maximum(w[:, -1], 1e-300))
    unsure = np.flatnonzero(ok & ~clear)
    if len(unsure):  # exact rank check on the rows of doubtful levels (as matrix_rank(Xg))
        order = np.argsort(index, kind="stable")
        starts = np.r_[0, np.cumsum(counts)]
        for g in unsure:
            rows = order[starts[g]:starts[g + 1]]
            clear[g] = np.linalg.matrix_rank(Xt[rows]) == k
    good = np.flatnonzero(clear)
    if len(good) == 0:
        return [], [], 0.0, 0
    inv = np.linalg.inv(XtX[good])
    bg = np.linalg.solve(XtX[good], Xtr[good][..., None])[..., 0]
    rr = np.bincount(index, weights=r * r, minlength=n_levels)[good]
    rss = rr - 2.0 * np.sum(bg * Xtr[good], axis=1) + np.einsum("la,lab,lb->l", bg, XtX[good], bg)
    return list(bg), list(inv), float(np.sum(rss)), int(np.sum(counts[good] - k))


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
    DataError
        For a constant outcome.

    Warns
    -----
    FewClustersWarning
        If a grouping factor has <= 6 levels (e.g. programmes).

    Notes
    -----
    Bates et al. (2015) give the profiled deviance that is minimised; the
    fixed effects are the GLS estimates ``beta = (X'V^-1X)^-1 X'V^-1 y`` and
    ``vcov = sigma^2 (R_X'R_X)^-1 = (X'V^-1X)^-1``. Aliased fixed-effect
    columns are dropped with a message (lme4's "fixed-effect model matrix is
    rank deficient so dropping N columns / coefficients").
    """
    return LinearMixedModel(formula, data).fit(reml=reml)
