"""Results of a fitted linear mixed model (lme4's ``merMod`` counterpart).

Small-sample inference on the fixed effects: Satterthwaite df as lmerTest
(Kuznetsova, Brockhoff & Christensen 2017, *J. Stat. Softw.* 82(13)) and
Kenward & Roger (1997, *Biometrics* 53) as pbkrtest (Halekoh & Hojsgaard 2014,
*J. Stat. Softw.* 59(9)); the engine computes the derivatives
(:mod:`effectstudy.multilevel._engine`), :mod:`effectstudy.multilevel.ddf`
combines them.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import linalg, stats

from effectstudy._compat import confidence_from_alpha, renamed_keywords
from effectstudy._results import ResultMixin
from effectstudy._validate import check_confidence
from effectstudy.errors import ModelError
from effectstudy.multilevel._engine import (
    FEW_CLUSTERS,
    SINGULAR_MESSAGE,
    SINGULAR_TOL,
    FewClustersWarning,
    single_thread,
)
from effectstudy.multilevel.anova import type3_contrasts
from effectstudy.multilevel.ddf import (
    KenwardRogerInfo,
    SatterthwaiteInfo,
    ddf_method,
    kenward_roger_info,
    kr_ddf,
    kr_test,
    satterthwaite_info,
)

if TYPE_CHECKING:  # pragma: no cover
    from effectstudy.multilevel._engine import PLSModel

__all__ = ["MixedModelResults"]


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
        Singular-fit, rank-deficiency (aliased fixed effects dropped, as lme4)
        and convergence messages (empty if none).
    X, y, data, fixed_names:
        Model matrix, response, the rows used, and the coefficient names
        (patsy's names, e.g. ``time:programme[T.P3]``).
    """

    _title = "Linear mixed model (lme4 formulation)"

    def __init__(self, model: PLSModel, theta: np.ndarray, reml: bool,
                 messages: list[str] | None = None) -> None:
        self.model = model
        self.formula = model.formula
        self.reml = bool(reml)
        self.theta = np.asarray(theta, dtype=float)
        f = model.conditional(self.theta, self.reml)
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
        LX = self._f["factor"].LX
        Linv = linalg.solve_triangular(LX, np.eye(self.model.p), lower=True)
        return self.sigma2 * (Linv.T @ Linv)

    def marginal_covariance(self) -> np.ndarray:
        """Marginal covariance of ``y``, ``V = sigma^2 (Z Lambda Lambda' Z' + I)`` (n x n).

        Dense ``n x n``: for small data only; :meth:`marginal_covariance_block`
        gives the block of some rows (e.g. one cluster's).
        """
        B = self._f["factor"].B
        return self.sigma2 * (np.asarray((B @ B.T).toarray()) + np.eye(self.model.n))

    def marginal_covariance_block(self, rows: np.ndarray) -> np.ndarray:
        """The block ``V[rows][:, rows]`` of the marginal covariance (rows as positions)."""
        return self.model.marginal_covariance_rows(self.theta, self.sigma, np.asarray(rows))

    def conditional_variances(self) -> np.ndarray:
        """Diagonal of ``Var(b | y)`` in the order of :meth:`random_effects` (lme4 ``condVar``)."""
        return self.model.conditional_variances(self.theta, self.sigma)

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
    def deviance_derivatives(self) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and Hessian of the (RE)ML deviance in ``(theta, sigma)`` at the fit."""
        grad, hess = self.model.derivatives(self.theta, self.sigma, self.reml,
                                            factor=self._f["factor"])
        assert hess is not None
        return grad, hess

    @cached_property
    def satterthwaite(self) -> SatterthwaiteInfo:
        """Pieces of the Satterthwaite df (lmerTest): vcov, its Jacobian, ``A = 2 H^-1``."""
        with single_thread():
            C, jac = self.model.vcov_jacobian(self.theta, self.sigma)
            _, H = self.deviance_derivatives()
            return satterthwaite_info(C, jac, H)

    @cached_property
    def kenward_roger(self) -> KenwardRogerInfo:
        """Pieces of the Kenward-Roger adjustment (pbkrtest ``vcovAdj``)."""
        if not self.reml:
            raise ModelError("Kenward-Roger needs a REML fit (refit with reml=True)")
        with single_thread():
            P, Q, K = self.model.kenward_roger_terms(self.theta, self.sigma)
            return kenward_roger_info(self.vcov(), P, Q, K)

    @property
    def _sat(self) -> SatterthwaiteInfo:  # old name
        return self.satterthwaite

    @property
    def _kr(self) -> KenwardRogerInfo:  # old name
        return self.kenward_roger

    def vcov_kr(self) -> np.ndarray:
        """Kenward-Roger adjusted covariance ``Phi_A`` (pbkrtest ``vcovAdj``)."""
        return self._kr.vcov_adj.copy()

    @renamed_keywords("MixedModelResults.coefficients", {"alpha": confidence_from_alpha})
    def coefficients(self, ddf: str = "satterthwaite", *,
                     confidence: float = 0.95) -> pd.DataFrame:
        """Fixed-effects table with small-sample t-tests.

        Parameters
        ----------
        ddf:
            ``"satterthwaite"`` (lmerTest; Satterthwaite 1946, Kuznetsova et al. 2017),
            ``"kenward-roger"`` (Kenward & Roger 1997: the SE is the KR-adjusted SE
            from ``Phi_A``, the df from pbkrtest's ``Lb_ddf``) or ``"residual"``
            (n - p df).
        confidence:
            Confidence level of the intervals. Keyword only, so that an old
            positional ``alpha`` fails instead of being read as a confidence level;
            ``alpha=`` (one minus it) still works, with a warning, for one release.

        Returns
        -------
        DataFrame with ``term, estimate, se, df, statistic, p_value, ci_lower, ci_upper``.
        """
        method = ddf_method(ddf)
        alpha = 1.0 - check_confidence(confidence)
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
                dfs[i] = kr_ddf(self._kr, L)
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
        method = ddf_method(ddf)
        L = self._as_L(L)
        if method == "satterthwaite":
            F, ndf, ddf_ = self._sat.contest(L, self.beta)
            return pd.DataFrame([dict(test="Satterthwaite", F=F, num_df=ndf, den_df=ddf_,
                                      p_value=stats.f.sf(F, ndf, ddf_), F_scaling=1.0)])
        if method == "kenward-roger":
            r = kr_test(self._kr, L, self.beta)
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
        return type3_contrasts(self.model)

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
