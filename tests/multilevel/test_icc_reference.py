"""effectstudy.multilevel.icc against lme4 (expected_icc.csv), one id per reference row.

The arguments of ``icc()`` are read from each row's formula: the random
intercepts in formula order (outer level first) and any fixed covariate.
Tolerance 1e-4 relative (observed agreement is ~1e-7).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pandas as pd
import pytest

from effectstudy.multilevel import lmm

try:
    from refdata import REFERENCE
except ImportError:  # pragma: no cover
    REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

REF_DIR = REFERENCE / "multilevel"
EXPECTED = REF_DIR / "expected_icc.csv"
TOL = 1e-4

ROWS = (pd.read_csv(EXPECTED, dtype={"value": str}) if EXPECTED.exists() else pd.DataFrame())
PARAMS = [
    pytest.param(i, id=f"{r['dataset']}-{r['model_id']}-{r['term']}-{r['quantity']}")
    for i, r in ROWS.iterrows()
]
_CACHE: dict[tuple[str, str], lmm.IccResult] = {}


def _args(formula: str) -> tuple[str, list[str], list[str]]:
    lhs, rhs = (s.strip() for s in formula.split("~"))
    groups = re.findall(r"\(\s*1\s*\|\s*([A-Za-z_.][A-Za-z0-9_.]*)\s*\)", rhs)
    fixed = re.sub(r"\+?\s*\([^)]*\)", "", rhs)
    covs = [t.strip() for t in fixed.split("+") if t.strip() not in ("", "1")]
    return lhs, groups, covs


def _result(dataset: str, formula: str) -> lmm.IccResult:
    key = (dataset, formula)
    if key not in _CACHE:
        data = pd.read_csv(REF_DIR / "data" / f"{dataset}.csv")
        outcome, groups, covs = _args(formula)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmm.FewClustersWarning)
            _CACHE[key] = lmm.icc(data, outcome=outcome, groups=groups,
                                  covariates=covs or None)
    return _CACHE[key]


@pytest.fixture(scope="module")
def icc_cache():
    yield _CACHE
    _CACHE.clear()


@pytest.mark.parametrize("i", PARAMS)
def test_icc_reference(i: int, icc_cache) -> None:
    row = ROWS.loc[i]
    res = _result(row["dataset"], row["formula"])
    q, term = row["quantity"], row["term"]
    expected = float(row["value"])
    if q == "is_singular":
        assert int(res.fit.is_singular) == int(expected)
        return
    if q == "logLik_REML":
        actual = res.fit.loglik
    elif q == "estimate":
        name = "Intercept" if term == "(Intercept)" else term
        actual = dict(zip(res.fit.fixed_names, res.fit.beta, strict=True))[name]
    else:
        actual = res.value(term, q)
    assert actual == pytest.approx(expected, rel=TOL, abs=1e-10)
