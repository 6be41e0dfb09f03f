"""Hypothesis tests of fitted mixed models: type-III contrasts, likelihood-ratio and
Kenward-Roger model comparisons.

Type-III hypotheses follow lmerTest's ``anova(type = 3)`` (Kuznetsova,
Brockhoff & Christensen 2017, *J. Stat. Softw.* 82(13)); the likelihood-ratio
test is lme4's ``anova(m0, m1)`` (Bates et al. 2015, *J. Stat. Softw.* 67(1));
:func:`kr_modcomp` is pbkrtest's ``KRmodcomp`` (Halekoh & Hojsgaard 2014,
*J. Stat. Softw.* 59(9)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy._results import ResultMixin
from effectstudy.errors import ModelError

if TYPE_CHECKING:  # pragma: no cover
    from effectstudy.multilevel._engine import PLSModel
    from effectstudy.multilevel.results import MixedModelResults

__all__ = ["type3_contrasts", "LRTResult", "compare", "kr_modcomp"]


def type3_contrasts(model: PLSModel) -> dict[str, np.ndarray]:
    """Type-III hypothesis matrix of every fixed term (see :func:`_type3_full`).

    With aliased (dropped) fixed-effect columns the hypotheses are formed on the
    full design and restricted to the kept columns; rows that vanish are left
    out and a term with no row left is not tested.
    """
    full = _type3_full(model)
    cols = np.asarray(model.fixed_columns)
    out = {}
    for term, L in full.items():
        Lk = L[:, cols]
        Lk = Lk[np.any(Lk != 0.0, axis=1)]
        if len(Lk):
            out[term] = Lk
    return out


def _type3_full(model: PLSModel) -> dict[str, np.ndarray]:
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
    names = model.all_fixed_names
    p = len(names)
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
                parts = names[oc].split(":")
                kept = [pp for pp in parts if _part_factor(pp) not in extra]
                key = ":".join(kept)
                for r, c in enumerate(cols):
                    if _canon(names[c]) == _canon(key):
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
