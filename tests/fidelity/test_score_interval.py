"""The fidelity score's interval stays on its 0-100% scale (issue 12 leftover 1).

The interval is the logit-scale delta-method interval with the Kenward-Roger SE and df
(:func:`effectstudy.fidelity.score.logit_interval`). Expected values are computed here:
the SE and df of a balanced crossed design by two-way ANOVA with Satterthwaite's df
(``test_integrity.anova_se_df``), the interval by the closed form
``expit(logit(p) -+ t se / (p (1 - p)))``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_integrity import anova_se_df

from effectstudy.dictionary import load_integrity
from effectstudy.errors import DataError
from effectstudy.fidelity import fidelity_score
from effectstudy.fidelity.score import logit_interval

PROG = "veilig_lima"


@pytest.fixture(scope="module")
def integ():
    return load_integrity()


def _ratings(y: np.ndarray, item: str, top: float) -> pd.DataFrame:
    """A target x rater matrix of shares as ratings on the instrument's 0..top scale."""
    n_t, n_r = y.shape
    return pd.DataFrame({"programme": PROG,
                         "target": np.repeat([f"T{i}" for i in range(n_t)], n_r),
                         "rater": np.tile([f"R{j}" for j in range(n_r)], n_t),
                         "item": item, "score": top * y.ravel()})


def _instrument(integ):
    inst = integ.instrument_for(PROG)
    assert inst.score_min == 0  # the shares below are ratings / score_max
    return inst


def test_near_the_top_the_upper_bound_stays_below_100_percent(integ):
    inst = _instrument(integ)
    # ten sessions rated by three raters, almost all at the top of the scale; rater
    # effects chosen so that every variance component is positive (a regular fit)
    y = np.array([[0.97, 1.00, 0.93], [1.00, 0.99, 0.96], [0.99, 1.00, 0.92],
                  [0.96, 0.98, 0.95], [1.00, 1.00, 0.97], [0.98, 0.97, 0.90],
                  [0.97, 0.99, 0.94], [1.00, 1.00, 0.95], [0.95, 0.98, 0.91],
                  [0.99, 1.00, 0.96]])
    ratings = _ratings(y, inst.items[0].id, inst.score_max)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = fidelity_score(ratings, integ).scores.iloc[0]
    se, df = anova_se_df(y)
    assert s["score"] == pytest.approx(y.mean(), abs=1e-9)
    assert s["se"] == pytest.approx(se, rel=1e-4) and s["df"] == pytest.approx(df, rel=1e-3)
    crit = stats.t.ppf(0.975, df)
    # the symmetric KR interval would pass 100% here ...
    assert y.mean() + crit * se > 1.0
    # ... the reported one does not, and it is the logit interval in closed form
    assert 0.0 < s["ci_lower"] < s["score"] < s["ci_upper"] < 1.0
    p = y.mean()
    half = crit * se / (p * (1 - p))
    logit = np.log(p / (1 - p))
    assert s["ci_lower"] == pytest.approx(1 / (1 + np.exp(-(logit - half))), rel=1e-4)
    assert s["ci_upper"] == pytest.approx(1 / (1 + np.exp(-(logit + half))), rel=1e-4)
    # asymmetric: shorter towards the end of the scale
    assert s["ci_upper"] - s["score"] < s["score"] - s["ci_lower"]
    # on the raw 0-10 metric the same interval, scaled, below 10
    raw = fidelity_score(ratings, integ, scale="raw").scores.iloc[0]
    assert raw["ci_upper"] < inst.score_max
    assert raw["ci_upper"] == pytest.approx(inst.score_max * s["ci_upper"], rel=1e-6)
    assert raw["ci_lower"] == pytest.approx(inst.score_max * s["ci_lower"], rel=1e-6)


def test_logit_interval_closed_form_and_edges():
    # mid-scale it is close to the symmetric t interval
    lo, hi = logit_interval(0.5, 0.01, 20.0)
    crit = stats.t.ppf(0.975, 20.0)
    assert lo == pytest.approx(0.5 - crit * 0.01, abs=1e-4)
    assert hi == pytest.approx(0.5 + crit * 0.01, abs=1e-4)
    # a scale of 2..12 is the share scale shifted and stretched
    slo, shi = logit_interval(0.9, 0.04, 5.0, confidence=0.9)
    rlo, rhi = logit_interval(2 + 10 * 0.9, 0.4, 5.0, lower=2.0, upper=12.0, confidence=0.9)
    assert (rlo, rhi) == pytest.approx((2 + 10 * slo, 2 + 10 * shi), rel=1e-12)
    # a higher confidence gives a wider interval
    wlo, whi = logit_interval(0.9, 0.04, 5.0, confidence=0.99)
    assert wlo < slo and whi > shi
    # an estimate on the end of the scale has no logit: the clipped t interval
    assert logit_interval(1.0, 0.05, 10.0) == pytest.approx(
        (1.0 - stats.t.ppf(0.975, 10.0) * 0.05, 1.0))
    assert np.isnan(logit_interval(0.5, 0.0, 10.0)).all()
    with pytest.raises(DataError):
        logit_interval(0.5, 0.1, 10.0, confidence=1.5)
    with pytest.raises(DataError):
        logit_interval(0.5, 0.1, 10.0, lower=1.0, upper=1.0)


@pytest.mark.slow
def test_coverage_is_near_nominal_in_a_seeded_simulation(integ):
    """200 simulated programmes (12 sessions x 4 raters, true mean 90%).

    Monte Carlo error of a coverage near 0.95 with 200 replicates:
    sqrt(0.95 * 0.05 / 200) = 0.0154; the test allows three of them (0.046).
    """
    inst = _instrument(integ)
    rng = np.random.default_rng(20261201)
    mu, nsim, n_t, n_r = 0.90, 200, 12, 4
    covered, inside = 0, 0
    for _ in range(nsim):
        y = (mu + rng.normal(0, 0.05, (n_t, 1)) + rng.normal(0, 0.03, (1, n_r))
             + rng.normal(0, 0.04, (n_t, n_r)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            s = fidelity_score(_ratings(y, inst.items[0].id, inst.score_max),
                               integ).scores.iloc[0]
        covered += int(s["ci_lower"] <= mu <= s["ci_upper"])
        inside += int(0.0 < s["ci_lower"] and s["ci_upper"] < 1.0)
    mc_error = np.sqrt(0.95 * 0.05 / nsim)
    assert abs(covered / nsim - 0.95) <= 3 * mc_error, covered / nsim
    assert inside == nsim
