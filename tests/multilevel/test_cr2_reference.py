"""CR2 / Satterthwaite / HTZ against clubSandwich 0.5.8 (expected_cr2.csv, every row).

OLS rows (C1-C3, sleepstudy lm) are fitted by ``cluster_robust(formula, data)`` and
must agree to 1e-6 relative.  Mixed-model rows (C4, C5, sleepstudy lmer) pass a real
REML fit of :func:`effectstudy.multilevel.fit` to ``cluster_robust``: the model of
the reference's ``r_call``, ``lmer(outcome ~ time * fidelity + age + (1 + time |
client))`` (sleepstudy: ``Reaction ~ Days + (1 + Days | Subject)``), clustered on
client (C4) or programme (C5); 1e-4 relative.
"""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import pandas as pd
import pytest

from effectstudy.multilevel import MixedModelResults, fit
from effectstudy.multilevel.robust import ClusterRobustResult, cluster_robust
from refdata import REFERENCE

REF_DIR = REFERENCE / "multilevel"
EXPECTED = REF_DIR / "expected_cr2.csv"

OLS_RTOL = 1e-6
LMM_RTOL = 1e-4


def _load() -> pd.DataFrame:
    if not EXPECTED.is_file():  # pragma: no cover - collection without reference
        return pd.DataFrame(columns=["dataset", "model_id", "term", "quantity", "value"])
    frame = pd.read_csv(EXPECTED, keep_default_na=False)
    return frame


ROWS = _load()


def _row_id(row: pd.Series) -> str:
    return f"{row['dataset']}|{row['model_id'].split('_')[0]}|{row['term']}|{row['quantity']}"


PARAMS = [
    pytest.param(r["dataset"], r["model_id"], r["term"], r["quantity"], r["value"], id=_row_id(r))
    for _, r in ROWS.iterrows()
]


# ---------------------------------------------------------------------------
# model specifications (from the r_call column)
# ---------------------------------------------------------------------------


def _spec(dataset: str, model_id: str) -> tuple[str, str, bool]:
    """(formula, cluster, mixed) for a reference model."""
    kind = model_id.split("_")[0]
    if dataset == "sleepstudy":
        return "Reaction ~ Days", "Subject", kind == "C4"
    if kind == "C3":
        return "outcome ~ time * programme", "client", False
    cluster = "programme" if kind in ("C1", "C5") else "client"
    return "outcome ~ time * fidelity + age", cluster, kind in ("C4", "C5")


def _patsy_name(r_name: str) -> str:
    """R coefficient name -> patsy name (treatment contrasts)."""
    if r_name == "(Intercept)":
        return "Intercept"
    return re.sub(r"programme(P\d+)", r"programme[T.\1]", r_name)


# ---------------------------------------------------------------------------
# fitted-once cache
# ---------------------------------------------------------------------------


@cache
def _data(dataset: str) -> pd.DataFrame:
    return pd.read_csv(REF_DIR / "data" / f"{dataset}.csv")


@cache
def _lmm(dataset: str) -> MixedModelResults:
    """The REML fit of the reference's lmer model (random intercept + slope)."""
    formula, _, _ = _spec(dataset, "C4")
    group, slope = ("Subject", "Days") if dataset == "sleepstudy" else ("client", "time")
    return fit(f"{formula} + (1 + {slope} | {group})", _data(dataset))


@cache
def _result(dataset: str, model_id: str) -> ClusterRobustResult:
    formula, cluster, mixed = _spec(dataset, model_id)
    if mixed:
        return cluster_robust(_lmm(dataset), cluster=cluster)
    return cluster_robust(formula, _data(dataset), cluster=cluster)


@pytest.fixture(scope="module")
def results():
    """Module-level cache of fitted results (each model fitted once)."""
    yield _result
    _result.cache_clear()
    _lmm.cache_clear()


_COEF_COLUMN = {
    "estimate": "estimate",
    "se_CR2": "se",
    "t_CR2": "statistic",
    "df_satterthwaite_CR2": "df",
    "p_satterthwaite_CR2": "p_value",
}
_WALD_FIELD = {
    "wald_HTZ_F": "F",
    "wald_HTZ_delta": "delta",
    "wald_HTZ_df_num": "df_num",
    "wald_HTZ_df_denom": "df_denom",
    "wald_HTZ_p": "p_value",
}


def _ours(res: ClusterRobustResult, term: str, quantity: str) -> float:
    if quantity == "n_clusters":
        return float(res.n_clusters)
    if quantity == "vcov_CR2":
        a, b = term.split("|")
        return float(res.vcov.loc[_patsy_name(a), _patsy_name(b)])
    if quantity in _COEF_COLUMN:
        frame = res.coefficients().set_index("term")
        return float(frame.loc[_patsy_name(term), _COEF_COLUMN[quantity]])
    if quantity in _WALD_FIELD:
        inside = re.search(r"\[(.*)=0\]", term)
        assert inside is not None, term
        terms = [_patsy_name(t) for t in inside.group(1).split(";")]
        return float(getattr(res.wald_test(terms), _WALD_FIELD[quantity]))
    raise AssertionError(f"unknown quantity {quantity}")


@pytest.mark.parametrize(("dataset", "model_id", "term", "quantity", "value"), PARAMS)
def test_cr2_reference_row(results, dataset, model_id, term, quantity, value):
    expected = float(value)
    _, _, mixed = _spec(dataset, model_id)
    ours = _ours(results(dataset, model_id), term, quantity)
    rtol = LMM_RTOL if mixed else OLS_RTOL
    assert ours == pytest.approx(expected, rel=rtol, abs=0.0), (ours, expected)


def test_reference_rows_present():
    assert len(ROWS) == 1037


def test_formula_and_array_inputs_agree():
    data = _data("growth_a")
    by_name = cluster_robust("outcome ~ time * fidelity + age", data, cluster="programme")
    by_values = cluster_robust(
        "outcome ~ time * fidelity + age", data, cluster=data["programme"].to_numpy()
    )
    np.testing.assert_allclose(by_name.vcov.to_numpy(), by_values.vcov.to_numpy())
    frame = by_name.coefficients()
    assert list(frame.columns) == ["term", "estimate", "se", "df", "statistic", "p_value"]
    assert by_name.wald_test(["fidelity", "time:fidelity"]).to_frame().shape[0] == 1


def test_non_nested_working_covariance_rejected():
    from effectstudy.errors import ModelError

    fit = _lmm("sleepstudy")
    with pytest.raises(ModelError):
        # clusters that split subjects: the random effects are not nested in them
        cluster_robust(fit, cluster=np.arange(len(fit.y)) % 2)
