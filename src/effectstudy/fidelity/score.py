"""Programme fidelity score from checklist ratings, with rater variance in its uncertainty.

References
----------
Shrout, P. E. & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater
reliability. *Psychological Bulletin*, 86(2), 420-428.

Baayen, R. H., Davidson, D. J. & Bates, D. M. (2008). Mixed-effects modeling with
crossed random effects for subjects and items. *Journal of Memory and Language*, 59(4),
390-412.

Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting linear mixed-effects
models using lme4. *Journal of Statistical Software*, 67(1), 1-48.

Kenward, M. G. & Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics*, 53(3), 983-997.

Oehlert, G. W. (1992). A note on the delta method. *The American Statistician*, 46(1),
27-29.

Brown, L. D., Cai, T. T. & DasGupta, A. (2001). Interval estimation for a binomial
proportion. *Statistical Science*, 16(2), 101-133 (the logit interval, section 4.1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from effectstudy.errors import DataError, ModelError
from effectstudy.fidelity._common import integrity_dictionary, require_columns
from effectstudy.multilevel.lmm import FewClustersWarning, fit

__all__ = ["FidelityScoreResult", "fidelity_score", "logit_interval", "SCORE_COLUMNS"]

#: Columns of :attr:`FidelityScoreResult.scores`.
SCORE_COLUMNS = ("programme", "n_targets", "n_raters", "n_ratings", "score", "se", "df",
                 "ci_lower", "ci_upper", "var_target", "var_rater", "var_residual",
                 "rater_share", "incomplete_targets", "singular")


@dataclass
class FidelityScoreResult:
    """Programme fidelity scores; see :func:`fidelity_score`."""

    scores: pd.DataFrame
    confidence: float
    scale: str
    notes: list[str] = field(default_factory=list)

    def to_frame(self) -> pd.DataFrame:
        return self.scores.copy()


def logit_interval(estimate: float, se: float, df: float, *, lower: float = 0.0,
                   upper: float = 1.0, confidence: float = 0.95) -> tuple[float, float]:
    """Interval for a mean on a bounded scale, computed on the logit scale and back-transformed.

    With ``p = (estimate - lower) / (upper - lower)`` and ``s = se / (upper - lower)``,
    the delta method (Oehlert 1992) gives the standard error of ``logit(p)`` as
    ``s / (p (1 - p))``; the interval ``logit(p) -+ t(df) s / (p (1 - p))`` is mapped
    back with the inverse logit and onto ``[lower, upper]``. It is the logit interval of
    a binomial proportion (Brown, Cai & DasGupta 2001, section 4.1) with the model's
    standard error and ``df`` in place of the binomial ones. Its bounds lie strictly
    inside the scale; near the middle of the scale it is close to the symmetric
    ``estimate -+ t(df) se``, near an end it is asymmetric (short towards the end).

    Parameters
    ----------
    estimate, se, df
        Estimate, its standard error and degrees of freedom (e.g. Kenward-Roger's).
    lower, upper
        Ends of the scale (0 and 1 for a share).
    confidence
        Confidence level.

    Returns
    -------
    (float, float)
        The bounds; NaN when ``se`` or ``df`` is missing or not positive. An estimate
        on or outside an end of the scale has no logit: the symmetric ``t`` interval
        clipped to the scale is returned instead.
    """
    if not 0 < confidence < 1:
        raise DataError("confidence must lie between 0 and 1")
    if not upper > lower:
        raise DataError("the upper end of the scale must exceed the lower end")
    if not (np.isfinite(se) and se > 0 and df > 0):
        return (np.nan, np.nan)
    crit = float(stats.t.ppf(0.5 + confidence / 2, df))
    width = upper - lower
    p = (estimate - lower) / width
    if not 0 < p < 1:
        return (float(max(lower, estimate - crit * se)), float(min(upper, estimate + crit * se)))
    half = crit * (se / width) / (p * (1 - p))
    centre = np.log(p / (1 - p))
    lo, hi = (1 / (1 + np.exp(-(centre + h))) for h in (-half, half))
    return (float(lower + width * lo), float(lower + width * hi))


def fidelity_score(ratings: pd.DataFrame, dictionary: Any = None, *, confidence: float = 0.95,
                   scale: str = "share") -> FidelityScoreResult:
    """Aggregate checklist ratings to one fidelity score per programme, with its interval.

    Per programme the item scores of each target (session or team-month) x rater are
    averaged, put on the share-of-range scale ``(mean - min) / (max - min)`` of the
    programme's fidelity instrument (``scale="share"``, 0-1; ``scale="raw"`` keeps the
    item metric), and the crossed random-effects model (Baayen, Davidson & Bates 2008;
    fitted by REML as lme4 does, Bates et al. 2015)::

        score ~ 1 + (1 | target) + (1 | rater)

    is fitted. The programme's fidelity score is the intercept; its standard error and
    df are Kenward & Roger's (1997). Because the raters are a random factor, the
    interval includes the rater variance (about ``var_rater / n_raters``) besides the
    target and residual variance: with two or three raters it is wide, which is honest.
    For a balanced design the variance components equal the two-way random-effects
    ANOVA components of Shrout & Fleiss (1979): ``var_target / (var_target + var_rater
    + var_residual)`` is their ICC(2,1).

    The interval respects the scale: a fidelity score is a mean on a bounded checklist
    scale, and the symmetric KR interval ``score -+ t se`` can pass its end (a programme
    rated near the top got an upper bound above 100%). The interval is therefore
    computed on the logit scale (:func:`logit_interval`: delta method, Oehlert 1992, with
    the KR standard error and df) and transformed back, as the logit interval of a
    proportion (Brown, Cai & DasGupta 2001). The estimate, its KR standard error and df
    are unchanged; only the interval is. Chosen over a profile-likelihood interval
    (which has no small-sample df, while two to four raters make the KR df small) and a
    bootstrap (no single resampling unit in a crossed design, and a parametric bootstrap
    from the normal model would itself leave the scale); its coverage is checked by
    simulation in ``tests/fidelity/test_score_interval.py``.

    Parameters
    ----------
    ratings
        Validated ratings (:func:`effectstudy.fidelity.validate_ratings`) with columns
        ``programme, target, rater, item, score``.
    dictionary
        The integrity dictionary (for each programme's instrument and scoring range).
    confidence
        Confidence level of the intervals.
    scale
        ``"share"`` (default) or ``"raw"``.

    Returns
    -------
    FidelityScoreResult
        ``scores`` with :data:`SCORE_COLUMNS` (``se``, ``df``: Kenward-Roger;
        ``ci_lower``, ``ci_upper``: the logit-scale interval, inside the scale;
        ``rater_share``: the rater variance as a share of the total;
        ``incomplete_targets``: targets not rated by every rater).

    Raises
    ------
    DataError
        A programme rated by one rater only, or on one target only, or with constant
        ratings (no variance to estimate an uncertainty from).

    Notes
    -----
    Incomplete data are kept: a target rated by only some raters still informs the
    model (``psych::ICC`` and :func:`~effectstudy.fidelity.rater_agreement` instead drop
    such targets; the number is reported in ``incomplete_targets``).
    """
    if not 0 < confidence < 1:
        raise DataError("confidence must lie between 0 and 1")
    if scale not in ("share", "raw"):
        raise DataError(f"scale must be 'share' or 'raw', not {scale!r}")
    require_columns(ratings, ("programme", "target", "rater", "item", "score"), "fidelity ratings")
    integ = integrity_dictionary(dictionary)
    rows = []
    for prog, g in ratings.groupby("programme", sort=True):
        try:
            inst = integ.instrument_for(prog)
        except KeyError as exc:
            raise DataError("a programme has no fidelity instrument in the dictionary",
                            column="programme") from exc
        cells = g.groupby(["target", "rater"], as_index=False)["score"].mean()
        if scale == "share":
            cells["score"] = (cells["score"] - inst.score_min) / (inst.score_max - inst.score_min)
        n_t, n_r = cells["target"].nunique(), cells["rater"].nunique()
        if n_r < 2:
            raise DataError(f"fidelity ratings of {prog} have one rater: rater variance cannot be "
                            "estimated; at least two raters are needed", column="rater")
        if n_t < 2:
            raise DataError(f"fidelity ratings of {prog} cover one target only", column="target")
        if cells["score"].nunique() < 2:
            raise DataError(f"fidelity ratings of {prog} are constant: no uncertainty can be "
                            "estimated", column="score")
        per_target = cells.groupby("target")["rater"].nunique()
        incomplete = int((per_target < n_r).sum())
        frame = pd.DataFrame({"score": cells["score"].to_numpy(float),
                              "target": cells["target"].astype(str).to_numpy(),
                              "rater": cells["rater"].astype(str).to_numpy()})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewClustersWarning)
            try:
                res = fit("score ~ 1 + (1 | target) + (1 | rater)", frame)
                coef = res.coefficients(ddf="kenward-roger", confidence=confidence).iloc[0]
            except (ModelError, np.linalg.LinAlgError, ValueError) as exc:
                raise ModelError(f"the fidelity model of {prog} could not be fitted: {exc}") from exc
        vc = res.variance_components().set_index("component")["variance"]
        var_t = float(vc.get("target:(Intercept)", 0.0))
        var_r = float(vc.get("rater:(Intercept)", 0.0))
        var_e = float(vc["Residual"])
        total = var_t + var_r + var_e
        ends = (0.0, 1.0) if scale == "share" else (inst.score_min, inst.score_max)
        ci_lo, ci_hi = logit_interval(float(coef["estimate"]), float(coef["se"]),
                                      float(coef["df"]), lower=ends[0], upper=ends[1],
                                      confidence=confidence)
        rows.append({"programme": prog, "n_targets": n_t, "n_raters": n_r, "n_ratings": len(g),
                     "score": float(coef["estimate"]), "se": float(coef["se"]),
                     "df": float(coef["df"]), "ci_lower": ci_lo, "ci_upper": ci_hi,
                     "var_target": var_t, "var_rater": var_r, "var_residual": var_e,
                     "rater_share": var_r / total if total > 0 else np.nan,
                     "incomplete_targets": incomplete, "singular": bool(res.is_singular)})
    notes = [f"Fidelity score: intercept of score ~ 1 + (1 | target) + (1 | rater) per programme "
             f"(REML) with Kenward-Roger SE and df; {confidence:.0%} interval computed on the "
             "logit scale (delta method) and transformed back, so it stays within the scale; "
             "rater variance is part of the uncertainty.",
             "Targets rated by only some raters are kept (psych::ICC would drop them)."]
    if any(r["singular"] for r in rows):
        notes.append("A variance component is estimated at zero (singular fit) for at least one "
                     "programme; its interval may be too narrow.")
    return FidelityScoreResult(scores=pd.DataFrame(rows, columns=list(SCORE_COLUMNS)),
                               confidence=confidence, scale=scale, notes=notes)
