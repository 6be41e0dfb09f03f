"""``confidence=`` in meta_analysis and MixedModelResults.coefficients (issue 15).

The intervals at a confidence level other than 0.95 are checked against intervals
built from R's own estimate, standard error and df (metafor 3.8-1; lmerTest 3.1-3),
and the deprecated spellings (``level=``, ``alpha=``, ``result.level``) must warn and
give the same numbers for one release.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import SpecError
from effectstudy.multilevel import fit, meta_analysis
from refdata import REFERENCE

REF_DIR = REFERENCE / "multilevel"


def _reference(file: str, model_id: str, term: str, quantity: str) -> float:
    """One REML value of R's reference table."""
    path = REF_DIR / file
    if not path.is_file():
        pytest.fail(f"reference data missing: {path}")
    d = pd.read_csv(path, keep_default_na=False)
    row = d[(d["model_id"] == model_id) & (d["term"] == term) & (d["quantity"] == quantity)
            & (d["estimation"] == "REML")]
    assert len(row) == 1, (model_id, term, quantity)
    return float(row["value"].iloc[0])


@cache
def _es() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / "es_threelevel.csv")


@cache
def _sleep_fit():
    return fit("Reaction ~ Days + (1 + Days | Subject)",
               pd.read_csv(REF_DIR / "data" / "sleepstudy.csv"))


def test_meta_analysis_confidence_matches_metafor_interval():
    est = _reference("expected_meta.csv", "rma_mv_3level", "intrcpt", "estimate")
    se = _reference("expected_meta.csv", "rma_mv_3level", "intrcpt", "se")
    res = meta_analysis(_es(), yi="yi", vi="vi", confidence=0.90)
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose([res.ci_lower[0], res.ci_upper[0]], [est - z * se, est + z * se],
                               rtol=1e-6)
    assert res.confidence == 0.90


def test_meta_analysis_level_is_a_deprecated_alias():
    new = meta_analysis(_es(), yi="yi", vi="vi", confidence=0.80)
    with pytest.warns(FutureWarning, match="level= is deprecated"):
        old = meta_analysis(_es(), yi="yi", vi="vi", level=0.80)
    np.testing.assert_array_equal(old.ci_lower, new.ci_lower)
    np.testing.assert_array_equal(old.ci_upper, new.ci_upper)
    with pytest.warns(FutureWarning, match="use .confidence"):
        assert new.level == 0.80
    with pytest.raises(SpecError, match="not both"):
        meta_analysis(_es(), yi="yi", vi="vi", level=0.8, confidence=0.9)
    with pytest.raises(SpecError, match="confidence"):
        meta_analysis(_es(), yi="yi", vi="vi", confidence=95)


def test_coefficients_confidence_matches_lmertest_interval():
    model = "S1_sleepstudy_random_slope"
    est = _reference("expected_lmer.csv", model, "Days", "estimate")
    se = _reference("expected_lmer.csv", model, "Days", "se")
    df = _reference("expected_lmer.csv", model, "Days", "df_satterthwaite")
    tab = _sleep_fit().coefficients(confidence=0.90).set_index("term")
    half = stats.t.ppf(0.95, df) * se
    np.testing.assert_allclose(tab.loc["Days", ["ci_lower", "ci_upper"]].to_numpy(float),
                               [est - half, est + half], rtol=1e-5)


def test_coefficients_alpha_is_a_deprecated_alias():
    res = _sleep_fit()
    new = res.coefficients("kenward-roger", confidence=0.90)
    with pytest.warns(FutureWarning, match="alpha= is deprecated"):
        old = res.coefficients("kenward-roger", alpha=0.10)
    pd.testing.assert_frame_equal(old, new)
    default = res.coefficients()
    assert (default["ci_upper"] - default["ci_lower"] > new["ci_upper"] - new["ci_lower"]).all()
    with pytest.raises(SpecError, match="not both"):
        res.coefficients(alpha=0.1, confidence=0.9)
    with pytest.raises(TypeError):  # an old positional alpha is not read as a confidence
        res.coefficients("satterthwaite", 0.05)
