"""Effect sizes, predicted means, R² and convergence summaries of mixed-model fits.

Built on :func:`effectstudy.multilevel.fit` (:class:`~effectstudy.multilevel.lmm.MixedModelResults`):

* :func:`growth_d` -- the model-based standardised mean difference for growth
  models (Feingold 2009; CI as Feingold 2015);
* :func:`predicted_means` -- population-level (fixed-effects-only) predictions
  with small-sample (Kenward-Roger or Satterthwaite) t-intervals;
* :func:`variance_explained` -- marginal and conditional R² for random-slope
  models (Nakagawa & Schielzeth 2013; Johnson 2014) and the proportional
  reduction in variance components (Raudenbush & Bryk 2002);
* :func:`blup_intervals` -- BLUPs (conditional modes) with their conditional
  standard deviations, as lme4's ``ranef(fit, condVar=TRUE)``;
* :func:`convergence_report` -- singular fit, boundary estimates, gradient,
  Hessian and optimizer messages as a table that always has a row per check.

References
----------
Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting linear
mixed-effects models using lme4. *Journal of Statistical Software*, 67(1).

Feingold, A. (2009). Effect sizes for growth-modeling analysis for controlled
clinical trials in the same metric as for classical analysis.
*Psychological Methods*, 14(1), 43-53.

Feingold, A. (2015). Confidence interval estimation for standardized effect
sizes in multilevel and latent growth modeling. *Journal of Consulting and
Clinical Psychology*, 83(1), 157-168.

Johnson, P. C. D. (2014). Extension of Nakagawa & Schielzeth's R²_GLMM to
random slopes models. *Methods in Ecology and Evolution*, 5(9), 944-946.

Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects
from restricted maximum likelihood. *Biometrics*, 53(3), 983-997.

Nakagawa, S. & Schielzeth, H. (2013). A general and simple method for obtaining
R² from generalized linear mixed-effects models. *Methods in Ecology and
Evolution*, 4(2), 133-142.

Raudenbush, S. W. & Bryk, A. S. (2002). *Hierarchical linear models:
Applications and data analysis methods* (2nd ed.). Sage. (Ch. 4: proportion
of variance explained, "proportional reduction in variance".)
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import ModelError
from effectstudy.multilevel._engine import SINGULAR_TOL
from effectstudy.multilevel.common import (
    check_fit,
    fixed_model_matrix,
    vcov_and_df,
)
from effectstudy.multilevel.ddf import ddf_method
from effectstudy.multilevel.results import MixedModelResults

__all__ = [
    "GrowthD",
    "VarianceExplained",
    "blup_intervals",
    "convergence_report",
    "growth_d",
    "predicted_means",
    "variance_explained",
]


#: lme4's default tolerance of the absolute gradient check (``check.conv.grad``).
GRADIENT_TOL = 2e-3
#: A correlation this close to +-1 is reported as a boundary estimate.
COR_BOUNDARY = 1e-6


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _r_style(name: str) -> str:
    """Coefficient ``programme[T.P2]`` -> R's ``programmeP2``; ``Intercept`` -> ``(Intercept)``."""
    if name == "Intercept":
        return "(Intercept)"
    return re.sub(r"([A-Za-z_.][A-Za-z0-9_.]*)\[T\.([^\]]*)\]", r"\1\2", name)


def _canon(name: str) -> str:
    return ":".join(sorted(name.split(":")))


def _resolve_term(fit: MixedModelResults, term: str) -> str:
    """A fixed-effect name as the fit spells it; R-style names are accepted too."""
    names = list(fit.fixed_names)
    if term in names:
        return term
    lookup: dict[str, str] = {}
    for n in names:
        for key in (n, _r_style(n)):
            lookup.setdefault(key, n)
            lookup.setdefault(_canon(key), n)
    for key in (term, _canon(term)):
        if key in lookup:
            return lookup[key]
    raise ModelError(f"unknown fixed effect {term!r}; the model has {names}")


def _expand_grid(newdata: Mapping[str, Any]) -> pd.DataFrame:
    keys = list(newdata)
    values = [np.atleast_1d(np.asarray(newdata[k], dtype=object)).tolist() for k in keys]
    rows = list(itertools.product(*values))
    frame = pd.DataFrame(rows, columns=keys)
    for k in keys:  # restore numeric dtypes lost through object arrays
        try:
            frame[k] = pd.to_numeric(frame[k])
        except (TypeError, ValueError):
            pass
    return frame


# ---------------------------------------------------------------------------
# growth d (Feingold 2009, 2015)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class GrowthD(ResultMixin):
    """Model-based d for growth models (Feingold 2009) with its CI (Feingold 2015).

    Attributes
    ----------
    term:
        The fixed effect (a slope or slope difference), as the fit names it.
    coefficient, coefficient_se, df:
        The coefficient, its SE (KR-adjusted when ``ddf='kenward-roger'``) and the
        small-sample df used for the interval.
    duration:
        Length of the period in units of the time variable (e.g. 24 weeks).
    sd_raw, sd_source:
        The standardiser and where it came from.
    d, se_d, ci_lower, ci_upper:
        ``d = coefficient * duration / sd_raw``, its SE and confidence limits,
        the coefficient's t-interval scaled by ``duration / sd_raw``.
    """

    term: str
    coefficient: float
    coefficient_se: float
    df: float
    duration: float
    sd_raw: float
    sd_source: str
    d: float
    se_d: float
    ci_lower: float
    ci_upper: float
    confidence: float
    ddf: str
    warnings: tuple[str, ...] = ()
    _title = "Model-based d for growth (Feingold 2009)"

    def to_frame(self) -> pd.DataFrame:
        """One row: ``term, estimate`` (= d), ``se, ci_lower, ci_upper`` and the ingredients."""
        return pd.DataFrame([{
            "term": self.term, "estimate": self.d, "se": self.se_d,
            "ci_lower": self.ci_lower, "ci_upper": self.ci_upper,
            "confidence": self.confidence, "coefficient": self.coefficient,
            "coefficient_se": self.coefficient_se, "df": self.df, "ddf": self.ddf,
            "duration": self.duration, "sd_raw": self.sd_raw, "sd_source": self.sd_source,
        }])


def _baseline_total_sd(fit: MixedModelResults) -> tuple[float, str, list[str]]:
    vc = fit.variance_components()
    sel = vc[(vc["kind"] == "sd") & vc["component"].str.endswith(":(Intercept)")]
    notes = []
    if len(sel) == 0:
        notes.append("the model has no random intercept: the baseline SD is the residual SD only")
    var = float(sel["variance"].sum()) + fit.sigma2
    comps = " + ".join([*sel["component"].tolist(), "Residual"])
    return float(np.sqrt(var)), f"baseline_total: sqrt({comps} variances)", notes


def growth_d(fit: MixedModelResults, term: str, *, duration: float,
             sd: str | float = "baseline_total", ddf: str = "kenward-roger",
             confidence: float = 0.95) -> GrowthD:
    """Model-based effect size d for growth (Feingold 2009) with a CI (Feingold 2015).

    ``d = (b * duration) / SD_raw`` where ``b`` is a slope or, for the comparison
    of programmes or arms, a slope difference (e.g. the ``time:programmeP2``
    interaction), ``duration`` is the length of the period in the units of the
    time variable, and ``SD_raw`` is the raw-score SD of the outcome at baseline,
    so that d is in the metric of a classical Cohen's d (Feingold 2009, eq. 4).

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.
    term:
        The coefficient, as the fit names it (``time:programme[T.P2]``) or as R
        does (``time:programmeP2``).
    duration:
        The period over which the growth is compared (> 0), e.g. 24 for 24 weeks.
    sd:
        ``"baseline_total"`` (default): the model-implied total SD at intake,
        ``sqrt(sum of random-intercept variances + residual variance)``. This is
        the baseline SD only when time is coded 0 at intake (the intercept
        variance of a random-slope model is the variance at time 0). A number:
        a user-given SD_raw, e.g. the observed intake SD or a norm-group SD.
    ddf:
        Degrees of freedom of the coefficient's t-interval: ``"kenward-roger"``
        (default; KR-adjusted SE and df, REML fits only), ``"satterthwaite"``
        (model-based SE) or ``"residual"`` (n - p).
    confidence:
        Confidence level of the interval.

    Returns
    -------
    GrowthD
        ``d``, ``se_d`` and the interval ``[ci_lower, ci_upper]``.

    Notes
    -----
    The interval is the coefficient's small-sample t-interval multiplied by
    ``duration / SD_raw`` (Feingold 2015): it treats SD_raw as known and so
    ignores its sampling error, which is small relative to that of the slope.
    A negative d means a decrease of the outcome (for problem scores, improvement)
    relative to the comparison. The sign follows the coefficient.

    References
    ----------
    Feingold (2009), Psychological Methods 14(1), 43-53; Feingold (2015),
    Journal of Consulting and Clinical Psychology 83(1), 157-168.
    """
    fit = check_fit(fit)
    method = ddf_method(ddf)
    if not (0 < confidence < 1):
        raise ModelError("confidence must lie in (0, 1)")
    duration = float(duration)
    if not np.isfinite(duration) or duration <= 0:
        raise ModelError("duration must be a positive number (in units of the time variable)")
    name = _resolve_term(fit, term)
    notes: list[str] = []
    if isinstance(sd, str):
        if sd != "baseline_total":
            raise ModelError(f"sd must be 'baseline_total' or a positive number, not {sd!r}")
        sd_raw, source, more = _baseline_total_sd(fit)
        notes += more
    else:
        sd_raw = float(sd)
        source = "user-given"
        if not np.isfinite(sd_raw) or sd_raw <= 0:
            raise ModelError("sd must be a positive number")
    tab = fit.coefficients(method, confidence=confidence).set_index("term")
    row = tab.loc[name]
    scale = duration / sd_raw
    notes += list(fit.warnings)
    return GrowthD(
        term=name, coefficient=float(row["estimate"]), coefficient_se=float(row["se"]),
        df=float(row["df"]), duration=duration, sd_raw=sd_raw, sd_source=source,
        d=float(row["estimate"]) * scale, se_d=float(row["se"]) * scale,
        ci_lower=float(row["ci_lower"]) * scale, ci_upper=float(row["ci_upper"]) * scale,
        confidence=float(confidence), ddf=method, warnings=tuple(notes))


# ---------------------------------------------------------------------------
# predicted means
# ---------------------------------------------------------------------------
def predicted_means(fit: MixedModelResults, newdata: pd.DataFrame | Mapping[str, Any], *,
                    ddf: str = "kenward-roger", confidence: float = 0.95) -> pd.DataFrame:
    """Population-level predictions (fixed effects only) with small-sample intervals.

    For each row ``x0`` of the fixed-effects model matrix of ``newdata`` the
    prediction is ``x0' beta`` with ``SE = sqrt(x0' V_beta x0)`` and a t-interval
    on the df of the contrast ``L = x0'``.

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.
    newdata:
        A DataFrame with every column the fixed effects use (e.g. ``programme``
        and ``time``; the outcome, client and other grouping columns are not
        needed), or a mapping ``{column: values}`` that is expanded to all
        combinations (e.g. ``{"programme": ["P1", "P2"], "time": [0, 12, 24]}``).
        Factor levels must occur in the fitted data.
    ddf:
        ``"kenward-roger"`` (default): ``V_beta`` is the KR-adjusted covariance
        (Kenward & Roger 1997, pbkrtest ``vcovAdj``) and the df of each row is
        pbkrtest's ``Lb_ddf`` for ``L = x0'``; REML fits only.
        ``"satterthwaite"``: model-based ``V_beta = (X'V^-1X)^-1`` and the
        Satterthwaite df of ``x0' beta`` (lmerTest ``contest``).
        ``"residual"``: model-based ``V_beta`` and n - p df.
    confidence:
        Confidence level of the intervals.

    Returns
    -------
    DataFrame
        The ``newdata`` columns followed by ``estimate, se, df, ci_lower, ci_upper``.
        ``frame.attrs`` records ``ddf`` and ``confidence``.

    Notes
    -----
    The df come from the fit's own contrast machinery
    (:meth:`MixedModelResults.contrast` with a one-row ``L``), so an intercept-only
    row reproduces the coefficient table exactly. These are predictions of the
    population-average trajectory (random effects at zero), as
    ``predict(fit, re.form = NA)`` in lme4; they are not client predictions.
    """
    fit = check_fit(fit)
    method = ddf_method(ddf)
    if not (0 < confidence < 1):
        raise ModelError("confidence must lie in (0, 1)")
    if isinstance(newdata, pd.DataFrame):
        frame = newdata.reset_index(drop=True).copy()
    elif isinstance(newdata, Mapping):
        frame = _expand_grid(newdata)
    else:
        raise ModelError("newdata must be a DataFrame or a mapping of column -> values")
    if len(frame) == 0:
        raise ModelError("newdata has no rows")
    X0 = fixed_model_matrix(fit, frame)
    V, df_of = vcov_and_df(fit, method)
    est = X0 @ fit.beta
    var = np.einsum("ij,jk,ik->i", X0, V, X0)
    se = np.sqrt(np.maximum(var, 0.0))
    cache: dict[bytes, float] = {}
    dfs = np.empty(len(X0))
    for i, x0 in enumerate(X0):
        key = x0.tobytes()
        if key not in cache:
            cache[key] = df_of(x0)
        dfs[i] = cache[key]
    crit = stats.t.ppf(0.5 + confidence / 2.0, dfs)
    out = frame.copy()
    out["estimate"] = est
    out["se"] = se
    out["df"] = dfs
    out["ci_lower"] = est - crit * se
    out["ci_upper"] = est + crit * se
    out.attrs.update(ddf=method, confidence=float(confidence))
    return out


# ---------------------------------------------------------------------------
# R² (Nakagawa & Schielzeth 2013; Johnson 2014) and PRV (Raudenbush & Bryk 2002)
# ---------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class VarianceExplained(ResultMixin):
    """Marginal/conditional R² and, optionally, the proportional reduction in variance.

    Attributes
    ----------
    r2_marginal, r2_conditional:
        ``var_fixed / total`` and ``(var_fixed + var_random) / total`` with
        ``total = var_fixed + var_random + var_residual``.
    var_fixed:
        Sample variance (``ddof``) of the fixed-effect predictions ``X beta``.
    var_random:
        Sum over random terms of the mean over observations of ``z_i' Sigma_t z_i``
        (= mean of ``diag(Z G Z')``; Johnson 2014).
    var_random_by_term:
        ``(term label, variance)`` pairs.
    var_residual:
        ``sigma^2``.
    reduction:
        With a null model: one row per variance component, ``variance_null``,
        ``variance_model`` and ``proportional_reduction``; ``None`` otherwise.
    """

    r2_marginal: float
    r2_conditional: float
    var_fixed: float
    var_random: float
    var_residual: float
    var_random_by_term: tuple[tuple[str, float], ...]
    ddof: int
    reduction: pd.DataFrame | None = None
    warnings: tuple[str, ...] = ()
    _title = "Variance explained (Nakagawa & Schielzeth 2013; Johnson 2014)"

    def to_frame(self) -> pd.DataFrame:
        """Rows ``(quantity, value)``; PRV rows are named ``PRV:<component>``."""
        rows = [("var_fixed", self.var_fixed)]
        rows += [(f"var_random:{lab}", v) for lab, v in self.var_random_by_term]
        rows += [("var_random", self.var_random), ("var_residual", self.var_residual),
                 ("R2_marginal", self.r2_marginal), ("R2_conditional", self.r2_conditional)]
        if self.reduction is not None:
            rows += [(f"PRV:{r.component}", r.proportional_reduction)
                     for r in self.reduction.itertuples()]
        return pd.DataFrame(rows, columns=["quantity", "value"])


def _random_variance_by_term(fit: MixedModelResults) -> list[tuple[str, float]]:
    out = []
    covs = fit.model.term_covariances(fit.theta, fit.sigma)
    for t, S in zip(fit.model.terms, covs, strict=True):
        quad = np.einsum("ij,jk,ik->i", t.Xt, S, t.Xt)
        out.append((f"{t.label}:{','.join(t.coef_names)}", float(np.mean(quad))))
    return out


def variance_explained(fit: MixedModelResults, *, null_fit: MixedModelResults | None = None,
                       ddof: int = 1) -> VarianceExplained:
    """Marginal and conditional R² for (random-slope) mixed models, and PRV.

    Marginal R² (Nakagawa & Schielzeth 2013) is the share of the total variance
    explained by the fixed effects, conditional R² the share explained by fixed
    and random effects::

        R2_m = s2_f / (s2_f + s2_l + s2_e),  R2_c = (s2_f + s2_l) / (s2_f + s2_l + s2_e)

    with ``s2_f = var(X beta)``, ``s2_e = sigma^2`` and, for random-slope models,
    ``s2_l`` the random-effect variance averaged over the observed covariate
    values (Johnson 2014): ``mean_i z_i' Sigma z_i``, i.e. the mean of
    ``diag(Z G Z')``, summed over random terms.

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.
    null_fit:
        Optional comparison model fitted to the same observations (e.g. the
        unconditional growth model). The proportional reduction in each variance
        component present in both, ``(v_null - v_model) / v_null`` (Raudenbush &
        Bryk 2002, ch. 4), is then reported in ``reduction``.
    ddof:
        Delta degrees of freedom of ``var(X beta)``; 1 (default) as R's ``var``,
        which MuMIn's ``r.squaredGLMM`` uses.

    Returns
    -------
    VarianceExplained

    Notes
    -----
    The random-slope variance, and thus ``s2_l`` and the PRV of the intercept
    variance, depend on where time is centred. PRVs can be negative (a component
    may grow when predictors are added), and comparing fits that differ in
    their random part is not meaningful; both situations are noted in
    ``warnings``.

    References
    ----------
    Nakagawa & Schielzeth (2013), Methods Ecol Evol 4, 133-142; Johnson (2014),
    Methods Ecol Evol 5, 944-946; Raudenbush & Bryk (2002), ch. 4.
    """
    fit = check_fit(fit)
    fitted_fixed = fit.X @ fit.beta
    var_f = float(np.var(fitted_fixed, ddof=ddof)) if len(fitted_fixed) > ddof else 0.0
    by_term = _random_variance_by_term(fit)
    var_l = float(sum(v for _, v in by_term))
    var_e = float(fit.sigma2)
    total = var_f + var_l + var_e
    notes: list[str] = []
    if fit.is_singular:
        notes.append("singular fit: a variance component is estimated at (or near) zero")
    reduction = None
    if null_fit is not None:
        null_fit = check_fit(null_fit)
        if null_fit.nobs != fit.nobs or not np.allclose(null_fit.y, fit.y):
            raise ModelError("null_fit was not fitted to the same observations")
        vc_m = fit.variance_components()
        vc_0 = null_fit.variance_components()
        vm = vc_m[vc_m["kind"] == "sd"].set_index("component")["variance"]
        v0 = vc_0[vc_0["kind"] == "sd"].set_index("component")["variance"]
        comps = list(dict.fromkeys([*v0.index, *vm.index]))
        rows = []
        for c in comps:
            a = float(v0[c]) if c in v0.index else np.nan
            b = float(vm[c]) if c in vm.index else np.nan
            prv = (a - b) / a if np.isfinite(a) and np.isfinite(b) and a > 0 else np.nan
            rows.append((c, a, b, prv))
        reduction = pd.DataFrame(rows, columns=["component", "variance_null", "variance_model",
                                                "proportional_reduction"])
        only = [c for c in comps if c not in v0.index or c not in vm.index]
        if only:
            notes.append(f"component(s) {only} are not in both models: no PRV")
        if (reduction["proportional_reduction"] < 0).any():
            notes.append("a negative PRV: the component is larger in the model than in the "
                         "null model (possible when predictors are added; Raudenbush & Bryk "
                         "2002, ch. 4)")
    return VarianceExplained(
        r2_marginal=var_f / total, r2_conditional=(var_f + var_l) / total, var_fixed=var_f,
        var_random=var_l, var_residual=var_e, var_random_by_term=tuple(by_term), ddof=ddof,
        reduction=reduction, warnings=tuple(notes))


# ---------------------------------------------------------------------------
# BLUPs with conditional variances
# ---------------------------------------------------------------------------
def _conditional_variances(fit: MixedModelResults) -> np.ndarray:
    """Diagonal of ``Var(b | y) = sigma^2 Lambda (Lambda'Z'Z Lambda + I)^-1 Lambda'``.

    This is lme4's ``condVar`` (Bates et al. 2015, sec. 3-5): the conditional
    covariance of the spherical effects is ``sigma^2 (L L')^-1`` with
    ``L L' = Lambda'Z'Z Lambda + I``, mapped back by ``b = Lambda u``. It is
    also defined for singular fits. Like lme4 it treats beta and theta as
    known. Computed from the block-sparse factor of the engine.
    """
    return fit.conditional_variances()


def blup_intervals(fit: MixedModelResults, group: str | None = None, *,
                   confidence: float = 0.95) -> pd.DataFrame:
    """BLUPs (conditional modes) with conditional SDs and approximate intervals.

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.
    group:
        A grouping factor (e.g. ``"client"``); all terms of that factor are
        returned (``(1|g) + (0+time|g)`` too). ``None``: every grouping factor.
    confidence:
        Level of the normal-theory intervals ``b +- z * sd_cond``.

    Returns
    -------
    DataFrame with ``group, level, term, estimate, se, ci_lower, ci_upper``
    (``se`` is the conditional SD, as ``attr(ranef(fit, condVar=TRUE), "postVar")``).

    Notes
    -----
    The conditional variance is lme4's: it ignores the uncertainty of beta and of
    the variance parameters, so intervals are approximate (and narrow when there
    are few groups); see :func:`_conditional_variances`.
    """
    fit = check_fit(fit)
    if not (0 < confidence < 1):
        raise ModelError("confidence must lie in (0, 1)")
    cv = _conditional_variances(fit)
    re_tab = fit.random_effects()
    terms = [t for t in fit.model.terms
             if group is None or group in (t.label, t.term.group)]
    if not terms:
        known = sorted({t.term.group for t in fit.model.terms})
        raise ModelError(f"unknown grouping factor {group!r}; the model has {known}")
    z = stats.norm.ppf(0.5 + confidence / 2.0)
    rows = []
    for t in terms:
        block = re_tab[re_tab["group"] == t.label]
        for c, coef in enumerate(t.coef_names):
            pos = t.offset + np.arange(t.n_levels) * t.k + c
            est = block[coef].to_numpy(dtype=float)
            se = np.sqrt(np.maximum(cv[pos], 0.0))
            rows.append(pd.DataFrame({
                "group": t.term.group, "level": t.levels, "term": coef, "estimate": est,
                "se": se, "ci_lower": est - z * se, "ci_upper": est + z * se}))
    out = pd.concat(rows, ignore_index=True)
    out.attrs.update(confidence=float(confidence))
    return out


# ---------------------------------------------------------------------------
# convergence report
# ---------------------------------------------------------------------------
def convergence_report(fit: MixedModelResults) -> pd.DataFrame:
    """A plain table of convergence and boundary checks of a fit; never empty.

    One row per check, each with ``status`` ``"ok"``, ``"warning"``,
    ``"boundary"``, ``"note"`` or ``"not available"``:

    * ``optimizer`` -- messages the fit recorded (e.g. a Hessian that is not
      positive definite at the Newton polish), or "none";
    * ``singular fit`` -- lme4's ``isSingular``: a diagonal element of theta
      below 1e-4 (the ``theta`` elements concerned are named);
    * ``boundary: <component>`` -- one row per random-effect SD (zero or near
      zero) and correlation (within 1e-6 of +-1);
    * ``gradient`` -- max |gradient| of the (RE)ML deviance over the free
      ``(theta, sigma)`` (analytic derivatives of :mod:`.ddf`); lme4 warns above
      0.002 (``check.conv.grad``; lme4 scales the gradient by the Hessian
      first, this value is unscaled);
    * ``Hessian`` -- smallest eigenvalue of the deviance Hessian over the free
      parameters (must be > 0 at a proper optimum);
    * ``warning`` -- every other warning the fit carries (e.g. few groups).

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.

    Returns
    -------
    DataFrame with ``check, status, value, detail``.
    """
    fit = check_fit(fit)
    rows: list[tuple[str, str, float, str]] = []
    model = fit.model
    singular_msgs = [m for m in fit.messages if m.startswith("boundary (singular)")]
    other_msgs = [m for m in fit.messages if m not in singular_msgs]
    rows.append(("optimizer", "warning" if other_msgs else "ok", float(len(other_msgs)),
                 "; ".join(other_msgs) if other_msgs else "no optimizer messages"))
    fin = np.isfinite(model.lower)
    small = [(n, th) for n, th, f in zip(fit.theta_names, fit.theta, fin, strict=True)
             if f and th < SINGULAR_TOL]
    rows.append(("singular fit", "warning" if fit.is_singular else "ok",
                 float(min((th for _, th in small), default=np.nan)),
                 ("theta at or near its bound 0: " + ", ".join(f"{n}={th:.3g}" for n, th in small))
                 if small else f"no diagonal theta below {SINGULAR_TOL:g}"))
    vc = fit.variance_components()
    for r in vc.itertuples():
        if r.component == "Residual":
            continue
        if r.kind == "sd":
            at = not np.isfinite(r.estimate) or r.estimate < SINGULAR_TOL * fit.sigma
            rows.append((f"boundary: {r.component}", "boundary" if at else "ok", float(r.estimate),
                         "SD estimated at (or near) zero" if at else "SD away from zero"))
        else:
            at = not np.isfinite(r.estimate) or abs(r.estimate) > 1.0 - COR_BOUNDARY
            rows.append((f"boundary: {r.component}", "boundary" if at else "ok", float(r.estimate),
                         "correlation at +-1 (or undefined)" if at else "correlation inside (-1, 1)"))
    try:
        grad, hess = fit.deviance_derivatives()
        free = ~(fin & (fit.theta <= model.lower + 1e-7))
        idx = np.r_[np.flatnonzero(free), model.n_theta]
        g = np.asarray(grad)[idx]
        gmax = float(np.max(np.abs(g)))
        rows.append(("gradient", "warning" if gmax > GRADIENT_TOL else "ok", gmax,
                     f"max |d deviance / d(theta, sigma)| over {len(idx)} free parameters "
                     f"(unscaled; lme4 tolerance {GRADIENT_TOL:g})"))
        H = np.asarray(hess)[np.ix_(idx, idx)]
        emin = float(np.min(np.linalg.eigvalsh(0.5 * (H + H.T))))
        rows.append(("Hessian", "ok" if emin > 0 else "warning", emin,
                     "smallest eigenvalue of the deviance Hessian over the free parameters"
                     + ("" if emin > 0 else ": not positive definite")))
    except Exception as exc:  # report, never hide
        rows.append(("gradient", "not available", np.nan, f"could not be computed: {exc}"))
        rows.append(("Hessian", "not available", np.nan, f"could not be computed: {exc}"))
    extra = [w for w in fit.warnings if w not in fit.messages]
    if extra:
        for w in extra:
            rows.append(("warning", "note", np.nan, w))
    else:
        rows.append(("warning", "ok", np.nan, "no other warnings"))
    return pd.DataFrame(rows, columns=["check", "status", "value", "detail"])

