"""Design-comparable (between-case) standardised mean differences for SCEDs.

Two estimators of the between-case SMD ``delta = (treatment effect) /
sqrt(between-case variance + within-case variance)``, the effect size a
between-groups design would estimate:

``method="hps"``
    Hedges, Pustejovsky & Shadish (2012) for (AB)^k treatment-reversal designs
    and Hedges, Pustejovsky & Shadish (2013) for multiple-baseline designs: a
    moment estimator with an AR(1)-and-random-intercept working model for the
    small-sample correction and variance (scdhlm's ``effect_size_ABk`` /
    ``effect_size_MB``).
``method="reml"``
    Pustejovsky, Hedges & Shadish (2014): fit a linear mixed model by REML
    (random case effects, AR(1) errors over sessions, optional linear trends),
    then ``delta = p'beta / sqrt(r'theta)``, corrected by ``J(nu)`` with
    ``nu = 2 (r'theta)^2 / (r' I^{-1} r)`` from the *expected* information
    ``I`` of the variance components (scdhlm's ``calc_BCSMD`` / lmeInfo's
    ``g_mlm``). The mixed model is :func:`effectstudy.multilevel.ar1.fit_ar1`.

References
----------
Hedges, L. V., Pustejovsky, J. E., & Shadish, W. R. (2012). A standardized mean
difference effect size for single case designs. *Research Synthesis Methods, 3*,
224-239.
Hedges, L. V., Pustejovsky, J. E., & Shadish, W. R. (2013). A standardized mean
difference effect size for multiple baseline designs across individuals.
*Research Synthesis Methods, 4*, 324-341.
Pustejovsky, J. E., Hedges, L. V., & Shadish, W. R. (2014). Design-comparable
effect sizes in multiple baseline designs: A general modeling framework.
*Journal of Educational and Behavioral Statistics, 39*(4), 211-227.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from effectstudy._results import ResultMixin
from effectstudy.errors import DataError, ModelError
from effectstudy.sced._compat import renamed_keywords
from effectstudy.sced._scdhlm_info import J, ci_noncentral_t, ci_symmetric, g_variance
from effectstudy.sced._series import require_columns

__all__ = ["BetweenCaseSMD", "GMLMResult", "between_case_smd", "estimate_between_case_smd", "g_mlm"]

if TYPE_CHECKING:  # the mixed model (and so effectstudy.multilevel) is loaded only when fitted
    from effectstudy.multilevel.ar1 import AR1LMEResult

_DESIGNS = ("MBP", "TR", "CMB", "RMBB")


# ---------------------------------------------------------------------------
# g_mlm on a fitted model
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class GMLMResult(ResultMixin):
    """Adjusted REML effect size ``g = J(nu) p'beta / sqrt(r'theta)`` (Pustejovsky et al., 2014)."""

    p_beta: float
    r_theta: float
    delta: float
    nu: float
    J_nu: float
    kappa: float
    g: float
    se: float
    theta: pd.Series
    info_inv: np.ndarray = field(repr=False)

    _title = "Design-comparable SMD (REML, g_mlm)"

    def ci(
        self, confidence: float = 0.95, *, symmetric: bool = True, bound: float = 35.0
    ) -> tuple[float, float]:
        """Symmetric central-t CI around ``g``, or the non-central t CI for delta."""
        if symmetric:
            return ci_symmetric(self.g, self.se, self.nu, confidence)
        return ci_noncentral_t(self.delta, self.kappa, self.nu, confidence, bound)

    def to_frame(self) -> pd.DataFrame:
        lo, hi = self.ci()
        return pd.DataFrame(
            [
                {
                    "estimate": self.g,
                    "se": self.se,
                    "df": self.nu,
                    "ci_lower": lo,
                    "ci_upper": hi,
                    "delta_unadjusted": self.delta,
                    "J": self.J_nu,
                    "kappa": self.kappa,
                    "p_beta": self.p_beta,
                    "r_theta": self.r_theta,
                }
            ]
        )


def g_mlm(fit: AR1LMEResult, p_const: Sequence[float], r_const: Sequence[float]) -> GMLMResult:
    """Pustejovsky, Hedges & Shadish (2014) effect size from a fitted model.

    Parameters
    ----------
    fit
        A REML fit from :func:`effectstudy.multilevel.ar1.fit_ar1`.
    p_const
        Weights of the fixed effects (in ``fit.fixed`` order) in the numerator
        ``p'beta``.
    r_const
        Weights of the variance components in the denominator ``r'theta``, in
        lmeInfo's order (:meth:`AR1LMEResult.varcomp`): Tau elements per level
        (outer to inner, upper triangle ``var, cov, var``), ``phi``, ``sigma_sq``.

    Notes
    -----
    ``delta = p'beta / sqrt(r'theta)``, ``kappa^2 = p' V_beta p / r'theta``,
    ``nu = 2 (r'theta)^2 / (r' I_E^{-1} r)`` with ``I_E`` the expected REML
    information, ``g = J(nu) delta`` and ``V(g) = J^2 {nu kappa^2 / (nu - 2) +
    g^2 (nu / (nu - 2) - 1 / J^2)}`` (eqs. 9-13 of the paper).
    """
    beta = fit.fixed["estimate"].to_numpy(float)
    p = np.asarray(p_const, float)
    theta = fit.varcomp()
    r = np.asarray(r_const, float)
    if p.size != beta.size:
        raise ModelError(f"p_const has {p.size} elements; the model has {beta.size} fixed effects")
    if r.size != theta.size:
        raise ModelError(
            f"r_const has {r.size} elements; the model has {theta.size} variance components"
        )
    p_beta = float(p @ beta)
    r_theta = float(r @ theta.to_numpy())
    if not r_theta > 0:
        raise ModelError("r'theta (the total variance) is not positive")
    delta = p_beta / math.sqrt(r_theta)
    kappa = math.sqrt(float(p @ fit.vcov.to_numpy() @ p) / r_theta)
    info = fit.expected_information()
    try:
        info_inv = np.linalg.inv(np.linalg.cholesky(info))
        info_inv = info_inv.T @ info_inv
    except np.linalg.LinAlgError as exc:
        raise ModelError(
            "the expected information matrix is not positive definite (boundary fit?)"
        ) from exc
    nu = 2.0 * r_theta**2 / float(r @ info_inv @ r)
    j = J(nu)
    g = j * delta
    se = math.sqrt(g_variance(g, kappa, nu))
    return GMLMResult(p_beta, r_theta, delta, nu, j, kappa, g, se, theta, info_inv)


# ---------------------------------------------------------------------------
# result of the convenience function
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class BetweenCaseSMD(ResultMixin):
    """A design-comparable SMD with its small-sample quantities.

    ``components`` holds the estimator's variance components and nuisance
    estimates (REML: ``tau_sq`` per level, ``sigma_sq``, ``phi``, ``rho``; HPS:
    ``phi``, ``rho``, ``sigma_sq_w``, ``S_sq``, ``D_bar``, ``theta``).
    """

    method: str
    design: str
    estimate: float
    se: float
    df: float
    ci_lower: float
    ci_upper: float
    ci_method: str
    confidence: float
    delta_unadjusted: float
    kappa: float
    components: dict[str, float]
    A: float
    B: float
    n_cases: int
    n_obs: int
    fit: AR1LMEResult | None = field(default=None, repr=False)
    gmlm: GMLMResult | None = field(default=None, repr=False)
    warnings: tuple[str, ...] = ()

    _title = "Design-comparable between-case SMD"

    def to_frame(self) -> pd.DataFrame:
        row: dict[str, Any] = {
            "method": self.method,
            "design": self.design,
            "estimate": self.estimate,
            "se": self.se,
            "df": self.df,
            "ci_lower": self.ci_lower,
            "ci_upper": self.ci_upper,
            "ci_method": self.ci_method,
            "confidence": self.confidence,
            "delta_unadjusted": self.delta_unadjusted,
            "J": J(self.df),
            "kappa": self.kappa,
            "A": self.A,
            "B": self.B,
            "n_cases": self.n_cases,
            "n_obs": self.n_obs,
        }
        row.update(self.components)
        return pd.DataFrame([row])


# ---------------------------------------------------------------------------
# data preparation
# ---------------------------------------------------------------------------


def _prepare(
    data: pd.DataFrame,
    case: str,
    phase: str,
    session: str,
    outcome: str,
    baseline_phase: Any,
    treatment_phase: Any,
    extra: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Standardise columns to ``case, phase, session, outcome, trt`` (+ ``extra`` internal names).

    Returns the analysis rows, the rows of both phases *before* dropping missing
    outcomes (scdhlm computes its default A and B times from those), and notes.
    """
    src = {"case": case, "phase": phase, "session": session, "outcome": outcome, **extra}
    require_columns(data, src)
    d = pd.DataFrame({k: data[v].to_numpy() for k, v in src.items()})
    notes: list[str] = []
    other = ~d["phase"].isin([baseline_phase, treatment_phase])
    if other.any():
        notes.append(
            f"{int(other.sum())} rows in phases other than {baseline_phase!r}/{treatment_phase!r} dropped"
        )
        d = d[~other]
    d["outcome"] = pd.to_numeric(d["outcome"], errors="coerce")
    d["session"] = pd.to_numeric(d["session"], errors="coerce")
    d["trt"] = (d["phase"] == treatment_phase).astype(float)
    for k in ["case", *extra]:
        if k != "pair":
            d[k] = d[k].astype(str)
    full = d.dropna(subset=["session"]).reset_index(drop=True)
    n0 = len(d)
    d = d.dropna(subset=["outcome", "session"])
    if len(d) < n0:
        notes.append(f"{n0 - len(d)} rows with a missing outcome or session dropped")
    if d.empty:
        raise DataError("no observations left in the baseline and treatment phases")
    if d["case"].nunique() < 2:
        raise DataError("a between-case SMD needs at least two cases", column=case)
    for lab, sub in d.groupby("case"):
        if sub["trt"].min() == 1 or sub["trt"].max() == 0:
            raise DataError(
                f"a case has no {'baseline' if sub['trt'].min() == 1 else 'treatment'} observations",
                key=str(lab),
            )
    if np.ptp(d["outcome"].to_numpy(float)) == 0:
        raise DataError("the outcome is constant", column=outcome)
    return d.reset_index(drop=True), full, notes


def _phase_pairs(ph: np.ndarray) -> np.ndarray:
    """Phase-pair number along a case's series: a new pair starts at each B -> A switch."""
    out = np.ones(ph.size, int)
    for i in range(1, ph.size):
        out[i] = out[i - 1] + int(ph[i - 1] == 1 and ph[i] == 0)
    return out


def _ar1_block(idx_groups: np.ndarray, t: np.ndarray, rho: float, phi: float) -> np.ndarray:
    """``rho + (1 - rho) phi^|t_i - t_j|`` within groups, 0 across groups."""
    same = idx_groups[:, None] == idx_groups[None, :]
    dist = np.abs(t[:, None] - t[None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        C = rho + (1 - rho) * np.power(phi, dist)
    return np.where(same, C, 0.0)


def _auto_ss(x: np.ndarray) -> tuple[float, float]:
    if x.size < 2:
        return float("nan"), float("nan")
    e = x - x.mean()
    return float(e @ e), float(e[:-1] @ e[1:])


def _cell_projection_resid(cells: np.ndarray) -> np.ndarray:
    """``A = I - H`` for the cell-means (one-way) projection ``H``."""
    codes, _ = pd.factorize(
        pd.Series(list(map(tuple, cells))) if cells.ndim > 1 else pd.Series(cells)
    )
    n = codes.size
    H = np.zeros((n, n))
    for c in np.unique(codes):
        ix = np.flatnonzero(codes == c)
        H[np.ix_(ix, ix)] = 1.0 / ix.size
    return np.eye(n) - H


# ---------------------------------------------------------------------------
# HPS estimators
# ---------------------------------------------------------------------------


def _hps_result(
    delta_unadj: float,
    theta: float,
    nu: float,
    phi: float,
    rho: float,
    sigma_sq_w: float,
    S_sq: float,
    D_bar: float,
    count: tuple[str, float],
    m: int,
    n: int,
) -> dict[str, float]:
    """Small-sample corrected g, its variance and the nuisance estimates of an HPS estimator.

    ``count`` is the design's denominator count (``K`` cells for MB, ``M_dot``
    points for (AB)^k), reported between ``D_bar`` and ``n_cases``.
    """
    g = J(nu) * delta_unadj
    return {
        "estimate": g,
        "var": g_variance(g, theta, nu),
        "df": nu,
        "delta_unadjusted": delta_unadj,
        "kappa": theta,
        "phi": phi,
        "rho": rho,
        "sigma_sq_w": sigma_sq_w,
        "S_sq": S_sq,
        "D_bar": D_bar,
        count[0]: count[1],
        "n_cases": m,
        "n_obs": n,
    }


def _hps_mb(d: pd.DataFrame) -> dict[str, float]:
    """Hedges, Pustejovsky & Shadish (2013), as scdhlm ``effect_size_MB``."""
    d = d.sort_values(["case", "session"], kind="stable").reset_index(drop=True)
    y = d["outcome"].to_numpy(float)
    t = d["session"].to_numpy(float)
    trt = d["trt"].to_numpy(float)
    cases, cid = np.unique(d["case"].to_numpy(), return_inverse=True)
    m = cases.size
    n = y.size
    # case-by-phase fixed-effects regression: X = [case dummies, case dummies * trt]
    Dm = np.zeros((n, m))
    Dm[np.arange(n), cid] = 1.0
    X = np.hstack([Dm, Dm * trt[:, None]])
    XtX_inv = np.linalg.inv(X.T @ X)
    coef = XtX_inv @ X.T @ y
    D_bar = float(coef[m:].mean())  # eq. (2)
    resid = y - X @ coef
    # time-by-treatment cell means: pooled S^2 (eq. 3)
    cells = np.column_stack([t, trt])
    A_mat = _cell_projection_resid(cells)
    K = len({(a, b) for a, b in cells})
    S_sq = float(y @ A_mat @ y) / (n - K)
    delta_unadj = D_bar / math.sqrt(S_sq)  # eq. (4)
    # nuisance parameters (appendix): Yule-Walker autocorrelation + bias correction
    acv = np.array([_auto_ss(resid[cid == i]) for i in range(m)])
    h = np.array([[np.sum((cid == i) & (trt == k)) for k in (0, 1)] for i in range(m)], float)
    phi = np.nansum(acv[:, 1]) / np.nansum(acv[:, 0]) + np.sum((h - 1) / h) / (n - 2 * m)
    R = _ar1_block(cid, t, 0.0, phi)
    sigma_sq_w = np.nansum(acv[:, 0]) / (n - float(np.sum(XtX_inv * (X.T @ R @ X))))
    rho = max(0.0, 1.0 - sigma_sq_w / S_sq)
    V = _ar1_block(cid, t, rho, phi)
    AV = A_mat @ V
    nu = (n - K) ** 2 / float(np.sum(AV * AV.T))  # eq. (11)
    Mv = XtX_inv @ X.T @ V @ X @ XtX_inv
    theta = math.sqrt(float(np.sum(np.diag(Mv)[m:]))) / m  # eq. (10)
    return _hps_result(
        delta_unadj, theta, nu, phi, rho, sigma_sq_w, S_sq, D_bar, ("K", float(K)), m, n
    )


def _hps_abk(d: pd.DataFrame) -> dict[str, float]:
    """Hedges, Pustejovsky & Shadish (2012), as scdhlm ``effect_size_ABk``."""
    d = d.sort_values(["case", "pair", "trt", "session"], kind="stable").reset_index(drop=True)
    y = d["outcome"].to_numpy(float)
    t = d["session"].to_numpy(float)
    trt = d["trt"].to_numpy(float)
    pair = d["pair"].to_numpy()
    cases, cid = np.unique(d["case"].to_numpy(), return_inverse=True)
    m = cases.size
    n = y.size
    point = d.groupby(["case", "pair", "trt"], sort=False).cumcount().to_numpy() + 1  # phase_point
    key = pd.Series(list(zip(pair, trt, point, strict=True)))
    counts = key.map(key.value_counts())
    include = (counts == m).to_numpy()
    M_dot = int(key[include].nunique())
    # case-by-pair-by-treatment fixed effects
    cp, cp_id = np.unique(
        np.column_stack([cid, pd.factorize(pair)[0]]), axis=0, return_inverse=True
    )
    cp_id = cp_id.ravel()
    k = cp.shape[0]
    Dm = np.zeros((n, k))
    Dm[np.arange(n), cp_id] = 1.0
    X = np.hstack([Dm, Dm * trt[:, None]])
    XtX_inv = np.linalg.inv(X.T @ X)
    coef = XtX_inv @ X.T @ y
    D_bar = float(coef[k:].mean())  # formula (19)
    yi = y[include]
    cells = np.column_stack([point[include], trt[include], pd.factorize(pair)[0][include]])
    A_mat = _cell_projection_resid(cells)
    S_sq = float(yi @ A_mat @ yi) / (M_dot * (m - 1))  # formula (18)
    delta_unadj = D_bar / math.sqrt(S_sq)
    # Yule-Walker on the raw outcomes by case x pair x treatment (p. 238)
    g0 = g1 = 0.0
    corr_num = corr_den = 0.0
    for _, sub in d.groupby(["case", "pair", "trt"], sort=False):
        a0, a1 = _auto_ss(sub["outcome"].to_numpy(float))
        if not math.isnan(a0):
            g0 += a0
            g1 += a1
        nn = len(sub)
        corr_num += 1 - 1 / nn
        corr_den += nn - 1
    phi = g1 / g0 + corr_num / corr_den
    R = _ar1_block(cid, point.astype(float), 0.0, phi)
    sigma_sq_w = g0 / (n - float(np.sum(XtX_inv * (X.T @ R @ X))))
    rho = max(0.0, 1.0 - sigma_sq_w / S_sq)
    V = _ar1_block(cid, t, rho, phi)
    AV = A_mat @ V[np.ix_(include, include)]
    nu = (M_dot * (m - 1)) ** 2 / float(np.sum(AV * AV.T))  # formula (28)
    Mv = XtX_inv @ X.T @ V @ X @ XtX_inv
    theta = math.sqrt(float(np.sum(Mv[k:, k:]))) / k  # formula (27)
    return _hps_result(
        delta_unadj, theta, nu, phi, rho, sigma_sq_w, S_sq, D_bar, ("M_dot", float(M_dot)), m, n
    )


# ---------------------------------------------------------------------------
# REML (calc_BCSMD)
# ---------------------------------------------------------------------------


def _default_times(d: pd.DataFrame, index_cols: list[str]) -> tuple[float, float]:
    """scdhlm ``default_times``: A = earliest last-baseline session; B = A + shortest treatment span of those series."""
    idx = d[index_cols].astype(str).agg("\x1f".join, axis=1)
    base_last = d[d.trt == 0].groupby(idx[d.trt == 0])["session_raw"].max()
    trt_rng = (
        d[d.trt == 1].groupby(idx[d.trt == 1])["session_raw"].agg(lambda s: s.max() - s.min() + 1)
    )
    A = float(base_last.min())
    which = base_last.index[base_last == base_last.min()]
    B = A + float(trt_rng.reindex(which).min())
    return A, B


def _reml(
    d: pd.DataFrame,
    full: pd.DataFrame,
    design: str,
    levels: list[str],
    FE_base: Sequence[int],
    RE_base: Sequence[int],
    RE_base_2: Sequence[int],
    FE_trt: Sequence[int],
    A: float | None,
    B: float | None,
    center: float,
) -> tuple[AR1LMEResult, GMLMResult, float, float]:
    d = d.copy()
    d["session_raw"] = d["session"]
    d["session"] = np.round(d["session"].to_numpy(float))  # round_session = TRUE
    inner = d[levels].astype(str).agg("\x1f".join, axis=1)
    if design == "TR":
        if any(x != 0 for x in (*FE_base, *RE_base, *FE_trt)):
            raise ModelError(
                "the treatment-reversal design uses level-only models (FE_base = RE_base = FE_trt = 0)"
            )
        A_ = B_ = float("nan")
    else:
        A_, B_ = _default_times(full.assign(session_raw=full["session"]), levels)
        A_ = A_ if A is None else float(A)
        B_ = B_ if B is None else float(B)
    first_trt = d[d.trt == 1].groupby(inner[d.trt == 1])["session"].min()
    # scdhlm >= 0.7: session_trt counts 1 at the first treatment session
    d["session_trt"] = np.maximum(0.0, d["session"] - inner.map(first_trt).to_numpy(float) + 1.0)
    d["session_c"] = d["session"] - center

    terms = []
    cols: dict[str, np.ndarray] = {}
    for k in FE_base:
        if k == 0:
            continue
        cols[f"s{k}"] = d["session_c"].to_numpy(float) ** k
        terms.append(f"s{k}")
    cols["trt"] = d["trt"].to_numpy(float)
    fe_trt_terms = []
    for k in FE_trt:
        name = "trt" if k == 0 else f"st{k}"
        if k != 0:
            cols[name] = d["session_trt"].to_numpy(float) ** k
        fe_trt_terms.append(name)
    rhs = ("1" if 0 in FE_base else "0") + "".join(f" + {c}" for c in terms + fe_trt_terms)
    md = pd.DataFrame(cols)
    md["outcome"] = d["outcome"].to_numpy(float)
    md["session"] = d["session"].to_numpy(float)
    for lv in levels:
        md[lv] = d[lv].to_numpy()

    def re_spec(powers: Sequence[int]) -> str:
        parts = ["1" if 0 in powers else "0"]
        for k in powers:
            if k != 0:
                cname = f"s{k}"
                if cname not in md:
                    md[cname] = d["session_c"].to_numpy(float) ** k
                parts.append(cname)
        return " + ".join(parts)

    if len(levels) == 1:
        random: Any = re_spec(RE_base)
    else:
        random = {levels[0]: re_spec(RE_base_2), levels[1]: re_spec(RE_base)}
    from effectstudy.multilevel.ar1 import fit_ar1

    fit = fit_ar1(
        f"outcome ~ {rhs}",
        md,
        group=levels if len(levels) > 1 else levels[0],
        random=random,
        correlation="AR1",
        index="session",
        method="REML",
        lrt=False,
    )

    # p_const: 0 for baseline terms, (B - A)^k for the treatment terms
    n_base = len(FE_base)
    gap = (B_ - A_) if design != "TR" else 1.0
    p_const = [0.0] * n_base + [gap**k for k in FE_trt]
    if len(p_const) != len(fit.fixed):
        raise ModelError("internal: p_const does not match the fixed effects")  # pragma: no cover

    def r_block(powers: Sequence[int]) -> list[float]:
        bc = np.array([(B_ - center) ** k if design != "TR" else float(k == 0) for k in powers])
        mat = 2 * np.outer(bc, bc) - np.diag(bc**2)
        q = len(powers)
        return [float(mat[i, j]) for j in range(q) for i in range(j + 1)]

    r_const: list[float] = []
    if len(levels) == 2:
        r_const += r_block(RE_base_2)
    r_const += r_block(RE_base)
    r_const += [0.0, 1.0]  # phi, sigma_sq
    res = g_mlm(fit, p_const, r_const)
    return fit, res, A_, B_


# ---------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------


@renamed_keywords("between_case_smd", {"cover": "confidence"})
def between_case_smd(
    data: pd.DataFrame,
    *,
    outcome: str,
    session: str,
    phase: str,
    case: str | None = None,
    baseline_phase: Any = "A",
    treatment_phase: Any = "B",
    method: str = "reml",
    design: str = "MBP",
    cluster: str | None = None,
    series: str | None = None,
    phase_pair: str | None = None,
    FE_base: Sequence[int] = (0,),
    RE_base: Sequence[int] = (0,),
    RE_base_2: Sequence[int] = (0,),
    FE_trt: Sequence[int] = (0,),
    A: float | None = None,
    B: float | None = None,
    center: float = 0.0,
    confidence: float = 0.95,
    symmetric: bool = True,
    bound: float = 35.0,
) -> BetweenCaseSMD:
    """Design-comparable between-case SMD for a single-case study.

    Parameters
    ----------
    data
        Long data: one row per case (and series) and session.
    outcome, session, phase
        Column names. Rows in phases other than ``baseline_phase`` and
        ``treatment_phase`` (follow-up, generalisation, ...) are dropped.
    case
        Case column (required: a between-case SMD needs at least two cases).
    baseline_phase, treatment_phase
        Phase labels of the baseline and treatment conditions.
    method
        ``"reml"`` (Pustejovsky, Hedges & Shadish, 2014; scdhlm ``calc_BCSMD``)
        or ``"hps"`` (Hedges, Pustejovsky & Shadish, 2012/2013; scdhlm
        ``effect_size_ABk`` / ``effect_size_MB``).
    design
        ``"MBP"`` multiple baseline/probe across participants, ``"TR"``
        treatment reversal ((AB)^k), ``"CMB"`` clustered multiple baseline
        (needs ``cluster``), ``"RMBB"`` replicated multiple baseline across
        behaviours (needs ``series``).
    cluster, series
        Grouping columns for CMB and RMBB designs (REML only).
    phase_pair
        TR designs with ``method="hps"``: column numbering the AB pairs within a
        case; computed from the phase sequence when omitted.
    FE_base, RE_base, RE_base_2, FE_trt
        REML model as in ``calc_BCSMD``: powers of session in the baseline fixed
        and random effects, and of the session-since-treatment-start in the
        treatment effect. ``(0,)`` = level only; ``(0, 1)`` adds a linear trend.
        ``RE_base_2`` is the outer level (cluster in CMB, case in RMBB).
    A, B
        Times defining the between-groups comparison (effect at time B of a
        treatment starting after A); defaults as scdhlm's ``default_times``:
        ``A`` = the earliest last baseline session, ``B = A +`` the shortest
        treatment span among the series with that last baseline session.
    center
        Centring value of session for the trend terms.
    confidence
        Confidence level of the interval (0-1; formerly ``cover``).
    symmetric
        ``True``: ``g -/+ t * se``; ``False``: non-central t interval.
    bound
        Bound on the non-centrality parameter in the non-central t interval.

    Returns
    -------
    BetweenCaseSMD
        ``.to_frame()`` gives one row: ``method, design, estimate (g), se, df
        (nu), ci_lower, ci_upper, ci_method, confidence, delta_unadjusted, J,
        kappa, A, B, n_cases, n_obs`` and the variance components (REML:
        ``tau_sq_<level>``, ``sigma_sq``, ``phi``, ``rho`` or ``rho_level2/3``,
        ``p_beta``, ``r_theta``, ``logLik``; HPS: ``phi``, ``rho``,
        ``sigma_sq_w``, ``S_sq``, ``D_bar``).

    Raises
    ------
    DataError
        Missing columns, fewer than two cases, a case without a baseline or
        treatment observation, a constant outcome.
    ModelError
        Unknown design/method, HPS for CMB/RMBB, or a failed model fit.
    """
    method = method.lower()
    design = design.upper()
    if design == "MB":
        design = "MBP"
    if design not in _DESIGNS:
        raise ModelError(f"design must be one of {_DESIGNS}, not {design!r}")
    if method not in ("reml", "hps"):
        raise ModelError(f"method must be 'reml' or 'hps', not {method!r}")
    if not 0 < confidence < 1:
        raise ModelError("confidence must lie in (0, 1)")
    if case is None:
        raise DataError("a between-case SMD needs a case column (case=) with at least two cases")
    extra: dict[str, str] = {}
    if design == "CMB":
        if cluster is None:
            raise ModelError("design='CMB' needs a cluster column")
        extra["cluster"] = cluster
    if design == "RMBB":
        if series is None:
            raise ModelError("design='RMBB' needs a series column")
        extra["series"] = series
    if design == "TR" and method == "hps" and phase_pair is not None:
        extra["pair"] = phase_pair
    d, full, notes = _prepare(
        data, case, phase, session, outcome, baseline_phase, treatment_phase, extra
    )
    levels = {"CMB": ["cluster", "case"], "RMBB": ["case", "series"]}.get(design, ["case"])
    n_cases = int(d["case"].nunique())
    ci_method = "symmetric" if symmetric else "noncentral_t"

    if method == "hps":
        if design in ("CMB", "RMBB"):
            raise ModelError("the HPS estimator is defined for MBP and TR ((AB)^k) designs only")
        if design == "MBP":
            est = _hps_mb(d)
        else:
            if phase_pair is None:
                d = d.sort_values(["case", "session"], kind="stable")
                d["pair"] = np.concatenate(
                    [_phase_pairs(g["trt"].to_numpy()) for _, g in d.groupby("case", sort=False)]
                )
            est = _hps_abk(d)
        g, se, nu = est["estimate"], math.sqrt(est["var"]), est["df"]
        if symmetric:
            lo, hi = ci_symmetric(g, se, nu, confidence)
        else:
            lo, hi = ci_noncentral_t(est["delta_unadjusted"], est["kappa"], nu, confidence, bound)
        comps = {
            k: v
            for k, v in est.items()
            if k not in ("estimate", "var", "df", "delta_unadjusted", "kappa", "n_cases", "n_obs")
        }
        return BetweenCaseSMD(
            method="hps", design=design, estimate=g, se=se, df=nu, ci_lower=lo, ci_upper=hi,
            ci_method=ci_method, confidence=confidence,
            delta_unadjusted=est["delta_unadjusted"], kappa=est["kappa"], components=comps,
            A=float("nan"), B=float("nan"), n_cases=n_cases, n_obs=int(est["n_obs"]),
            warnings=tuple(notes),
        )

    fit, res, A_, B_ = _reml(
        d, full, design, levels, list(FE_base), list(RE_base), list(RE_base_2), list(FE_trt),
        A, B, center,
    )
    lo, hi = res.ci(confidence, symmetric=symmetric, bound=bound)
    tau = fit.tau()
    s2 = fit.sigma2
    comps: dict[str, float] = {}
    for lv, T in tau.items():
        comps[f"tau_sq_{lv}"] = float(T[0, 0])
    comps["sigma_sq"] = s2
    comps["phi"] = fit.phi
    if len(levels) == 1:
        comps["rho"] = float(tau[levels[0]][0, 0] / (tau[levels[0]][0, 0] + s2))
    else:
        t3, t2 = float(tau[levels[0]][0, 0]), float(tau[levels[1]][0, 0])
        comps["rho_level2"] = (t3 + t2) / (t3 + t2 + s2)
        comps["rho_level3"] = t3 / (t3 + t2 + s2)
    comps["p_beta"] = res.p_beta
    comps["r_theta"] = res.r_theta
    comps["logLik"] = fit.loglik
    return BetweenCaseSMD(
        method="reml", design=design, estimate=res.g, se=res.se, df=res.nu, ci_lower=lo,
        ci_upper=hi, ci_method=ci_method, confidence=confidence, delta_unadjusted=res.delta,
        kappa=res.kappa, components=comps, A=A_, B=B_, n_cases=n_cases, n_obs=fit.nobs, fit=fit,
        gmlm=res, warnings=tuple(notes) + tuple(fit.warnings),
    )


def estimate_between_case_smd(data: pd.DataFrame, **kwargs: Any) -> BetweenCaseSMD:
    """Deprecated alias of :func:`between_case_smd` (removed in the next release)."""
    warnings.warn(
        "estimate_between_case_smd() is deprecated and will be removed in the next release; "
        "use between_case_smd(), which now returns the same BetweenCaseSMD result "
        "(.to_frame() for the one-row table)",
        FutureWarning, stacklevel=2,
    )
    return between_case_smd(data, **kwargs)
