"""Multilevel meta-analysis against metafor 3.8-1 (expected_meta.csv, every row).

Tolerances: 1e-6 relative for every row, except the 4-level es_id variance, which
is at the boundary (metafor reports 1.3e-10, we report 0): absolute 1e-8, and the
I2 of a component is compared on the same absolute scale.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest

from effectstudy.multilevel.meta import MetaAnalysisResult, meta_analysis
from effectstudy.multilevel.robust import ClusterRobustResult
from refdata import REFERENCE

REF_DIR = REFERENCE / "multilevel"
EXPECTED = REF_DIR / "expected_meta.csv"
RTOL = 1e-6
BOUNDARY_ATOL = 1e-8


def _load() -> pd.DataFrame:
    if not EXPECTED.is_file():  # pragma: no cover
        return pd.DataFrame(columns=["model_id", "term", "quantity", "value"])
    return pd.read_csv(EXPECTED, keep_default_na=False)


ROWS = _load()

PARAMS = [
    pytest.param(
        r["model_id"],
        r["term"],
        r["quantity"],
        r["value"],
        id=f"{r['model_id']}|{r['term'] or '-'}|{r['quantity']}",
    )
    for _, r in ROWS.iterrows()
]

_KWARGS = {
    "rma_mv_3level": {},
    "rma_mv_3level_t": {"test": "t"},
    "rma_mv_4level": {"levels": ["programme", "case", "es_id"]},
    "rma_mv_3level_fidelity": {"mods": "~ fidelity"},
    "rma_mv_3level_robust_CR2": {},
}


@cache
def _data() -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / "es_threelevel.csv")


@cache
def _fit(model_id: str) -> MetaAnalysisResult:
    return meta_analysis(_data(), yi="yi", vi="vi", **_KWARGS[model_id])


@cache
def _robust(model_id: str) -> ClusterRobustResult:
    return _fit(model_id).robust("programme")


@pytest.fixture(scope="module")
def fits():
    yield _fit
    for f in (_fit, _robust):
        f.cache_clear()


_COEF = {
    "estimate": "estimate",
    "se": "se",
    "z": "statistic",
    "t": "statistic",
    "p": "p_value",
    "ci_lb": "ci_lower",
    "ci_ub": "ci_upper",
    "df": "df",
}
_ROBUST = {
    "estimate": "estimate",
    "se_CR2": "se",
    "t_CR2": "statistic",
    "df_satterthwaite_CR2": "df",
    "p_CR2": "p_value",
    "ci_lb": "ci_lower",
    "ci_ub": "ci_upper",
}


def _ours(model_id: str, term: str, quantity: str) -> float:
    if model_id.endswith("robust_CR2"):
        rob = _robust(model_id)
        if quantity == "n_clusters":
            return float(rob.n_clusters)
        return float(rob.conf_int().set_index("term").loc[term, _ROBUST[quantity]])
    fit = _fit(model_id)
    if quantity in _COEF and term:
        return float(fit.to_frame().set_index("term").loc[term, _COEF[quantity]])
    het = fit.heterogeneity().set_index("component")
    if quantity == "sigma2":
        return float(het.loc[term, "sigma2"])
    if quantity == "n_levels":
        return float(het.loc[term, "n_levels"])
    if quantity == "I2":
        return float(het.loc[term, "I2"])
    if quantity == "I2_total":
        return fit.I2_total
    if quantity == "typical_sampling_variance":
        return fit.typical_sampling_variance
    if quantity == "k":
        return float(fit.k)
    if quantity in ("QE", "QE_df", "QE_p", "QM", "QM_p"):
        return float(getattr(fit, quantity))
    if quantity == "QM_df":
        return float(fit.QM_df[0])
    if quantity.startswith("fitstats_"):
        stat = quantity.split("_")[1]
        return float(getattr(fit, stat))
    raise AssertionError(f"unknown quantity {quantity}")


def _is_boundary(model_id: str, term: str, quantity: str) -> bool:
    return model_id == "rma_mv_4level" and term.endswith("es_id") and quantity in ("sigma2", "I2")


@pytest.mark.parametrize(("model_id", "term", "quantity", "value"), PARAMS)
def test_meta_reference_row(fits, model_id, term, quantity, value):
    expected = float(value)
    ours = _ours(model_id, term, quantity)
    if _is_boundary(model_id, term, quantity):
        assert ours == pytest.approx(expected, abs=BOUNDARY_ATOL)
    else:
        assert ours == pytest.approx(expected, rel=RTOL, abs=0.0), (ours, expected)


def test_reference_rows_present():
    assert len(ROWS) == 100


def test_result_frames_are_tidy():
    fit = _fit("rma_mv_3level_fidelity")
    assert list(fit.to_frame()["term"]) == ["intrcpt", "fidelity"]
    het = fit.heterogeneity()
    assert list(het["component"]) == ["programme", "programme/case", "total"]
    assert np.isclose(het["I2"].iloc[:-1].sum(), het["I2"].iloc[-1])
    assert "<h4>" in fit._repr_html_()


def test_bad_input_raises():
    from effectstudy.errors import DataError, ModelError

    with pytest.raises(DataError):
        meta_analysis(_data(), yi="yi", vi="nope")
    with pytest.raises(ModelError):
        meta_analysis(_data(), yi="yi", vi="vi", test="knha")
