"""Rubin's rules (:func:`effectstudy.missing.pool`) against mice::pool and mitml::testEstimates.

Reference: ``shared/reference/study/expected_study.csv``, families ``pool_inputs_lm`` /
``pool_lm`` (mice::pool, Barnard-Rubin df with dfcom = n - p) and ``pool_inputs_lmer`` /
``pool_lmer`` (mitml::testEstimates, Rubin 1987 df). See that folder's README and generate.R.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import DataError, SpecError
from effectstudy.missing import POOL_COLUMNS, pool
from refdata import REFERENCE

STUDY = REFERENCE / "study"
EXPECTED = STUDY / "expected_study.csv"
RTOL = 1e-6
# mitml computes p as 1 - pt(|t|, df): absolute precision ~1e-16, so a p of 0 in the
# reference stands for anything below that.
P_ATOL = 1e-14
QUANTITIES = ("estimate", "se", "df", "p_value", "riv", "fmi", "lambda")


def _reference() -> pd.DataFrame:
    if not EXPECTED.exists():
        pytest.fail(f"reference values missing: {EXPECTED}")
    return pd.read_csv(EXPECTED)


def _reference_rows() -> list:
    if not EXPECTED.exists():
        return [pytest.param(None, id="reference-missing")]
    ref = pd.read_csv(EXPECTED)
    rows = ref[ref["family"].isin(["pool_lm", "pool_lmer"])]
    return [pytest.param(r.to_dict(), id=f"{r['family']}|{r['dataset']}|{r['term']}|{r['quantity']}")
            for _, r in rows.iterrows()]


def _inputs(ref: pd.DataFrame, family: str, dataset: str) -> tuple[pd.DataFrame, float | None]:
    """Per-imputation estimates in long form and the complete-data df of the reference call."""
    inp = ref[(ref["family"] == f"pool_inputs_{family}") & (ref["dataset"] == dataset)]
    est = inp[inp["quantity"].isin(["estimate", "se"])]
    long = (est.pivot_table(index=["group", "term"], columns="quantity", values="value")
            .reset_index().rename(columns={"group": "imputation"}))
    dfc = inp.loc[inp["quantity"] == "df_complete", "value"]
    # mice::pool got the complete-data df (lm residual df); mitml was called with df.com = NULL
    return long, (float(dfc.iloc[0]) if family == "lm" else None)


def _pooled(family: str, dataset: str) -> pd.DataFrame:
    ref = _reference()
    long, dfc = _inputs(ref, family, dataset)
    return pool(long, df_complete=dfc).set_index("term")


@pytest.mark.parametrize("row", _reference_rows())
def test_pool_matches_reference(row):
    if row is None:
        pytest.fail(f"reference values missing: {EXPECTED}")
    family = row["family"].removeprefix("pool_")
    out = _pooled(family, row["dataset"])
    got = float(out.at[row["term"], row["quantity"]])
    atol = P_ATOL if row["quantity"] == "p_value" else 0.0
    assert got == pytest.approx(row["value"], rel=RTOL, abs=atol)


@pytest.mark.parametrize("family", ["lm", "lmer"])
def test_statistic_and_interval_follow_reference_estimate_se_df(family):
    ref = _reference()
    pooled_ref = ref[ref["family"] == f"pool_{family}"]
    for dataset in pooled_ref["dataset"].unique():
        r = (pooled_ref[pooled_ref["dataset"] == dataset]
             .pivot(index="term", columns="quantity", values="value"))
        out = _pooled(family, dataset)
        for term_, x in r.iterrows():
            crit = stats.t.ppf(0.975, x["df"])
            assert out.at[term_, "statistic"] == pytest.approx(x["estimate"] / x["se"], rel=RTOL)
            assert out.at[term_, "ci_lower"] == pytest.approx(x["estimate"] - crit * x["se"],
                                                              rel=RTOL)
            assert out.at[term_, "ci_upper"] == pytest.approx(x["estimate"] + crit * x["se"],
                                                              rel=RTOL)
            assert out.at[term_, "m"] == 5


def test_columns_and_term_order():
    ref = _reference()
    long, dfc = _inputs(ref, "lm", ref.loc[ref["family"] == "pool_lm", "dataset"].iloc[0])
    out = pool(long.sample(frac=1.0, random_state=1), df_complete=dfc)
    assert tuple(out.columns) == POOL_COLUMNS
    first = list(pd.unique(long.sample(frac=1.0, random_state=1)["term"]))
    assert list(out["term"]) == first
    # row order of the input does not change the pooled values
    again = pool(long, df_complete=dfc).set_index("term").loc[first].reset_index()
    pd.testing.assert_frame_equal(out.reset_index(drop=True), again, rtol=1e-12)


def test_hand_computed_rubin_example():
    # m = 3, estimates 1, 2, 3, all se 1: Qbar 2, Ubar 1, B 1, T = 1 + 4/3 = 7/3
    est = pd.DataFrame({"imputation": ["a", "b", "c"], "term": "x",
                        "estimate": [1.0, 2.0, 3.0], "se": [1.0, 1.0, 1.0]})
    out = pool(est).iloc[0]
    assert out["estimate"] == pytest.approx(2.0)
    assert out["se"] == pytest.approx(math.sqrt(7 / 3))
    assert out["riv"] == pytest.approx(4 / 3)
    assert out["lambda"] == pytest.approx(4 / 7)
    df_rubin = 2 * (1 + 3 / 4) ** 2  # (m - 1)(1 + 1/r)^2 = 6.125
    assert out["df"] == pytest.approx(df_rubin)
    assert out["fmi"] == pytest.approx((4 / 3 + 2 / (df_rubin + 3)) / (7 / 3))
    assert out["p_value"] == pytest.approx(2 * stats.t.sf(2 / math.sqrt(7 / 3), df_rubin))
    # Barnard-Rubin with nu_com = 10
    br = pool(est, df_complete=10).iloc[0]
    dfobs = 11 / 13 * 10 * (1 - 4 / 7)
    assert br["df"] == pytest.approx(df_rubin * dfobs / (df_rubin + dfobs))
    assert br["df"] < min(df_rubin, dfobs)
    # an infinite complete-data df gives Rubin's df back
    assert pool(est, df_complete=math.inf).iloc[0]["df"] == pytest.approx(df_rubin)


def test_no_between_variance():
    est = pd.DataFrame({"imputation": [1, 2], "term": "x", "estimate": [0.4, 0.4],
                        "se": [0.2, 0.2]})
    rubin = pool(est).iloc[0]
    assert rubin["riv"] == 0 and rubin["lambda"] == 0 and rubin["fmi"] == 0
    assert math.isinf(rubin["df"])
    assert rubin["p_value"] == pytest.approx(2 * stats.norm.sf(2.0))
    # mice floors lambda at 1e-4 inside the Barnard-Rubin df: df close to nu_obs
    br = pool(est, df_complete=20).iloc[0]
    dfold = 1 / 1e-8
    dfobs = 21 / 23 * 20 * (1 - 1e-4)
    assert br["df"] == pytest.approx(dfold * dfobs / (dfold + dfobs))
    assert br["lambda"] == 0


def test_df_complete_per_term_and_confidence():
    est = pd.DataFrame({"imputation": [1, 1, 2, 2, 3, 3], "term": ["a", "b"] * 3,
                        "estimate": [1.0, 5.0, 1.4, 5.5, 0.8, 4.0], "se": [0.3, 1.0] * 3})
    scalar = pool(est, df_complete=30)
    per_term = pool(est, df_complete={"a": 30, "b": 30, "unused": 1})
    pd.testing.assert_frame_equal(scalar, per_term)
    mixed = pool(est, df_complete=pd.Series({"a": 30.0, "b": 5.0})).set_index("term")
    assert mixed.at["a", "df"] == pytest.approx(scalar.set_index("term").at["a", "df"])
    assert mixed.at["b", "df"] < scalar.set_index("term").at["b", "df"]
    narrow = pool(est, confidence=0.80).set_index("term")
    wide = pool(est, confidence=0.99).set_index("term")
    assert (narrow["ci_lower"] > wide["ci_lower"]).all()
    assert (narrow["ci_upper"] < wide["ci_upper"]).all()


def _good() -> pd.DataFrame:
    return pd.DataFrame({"imputation": [1, 1, 2, 2], "term": ["a", "b", "a", "b"],
                         "estimate": [1.0, 2.0, 1.1, 2.2], "se": [0.5, 0.4, 0.5, 0.4]})


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d.drop(index=3), "lacks term"),
        (lambda d: d[d["imputation"] == 1], "m = 2"),
        (lambda d: d.assign(se=[0.5, 0.0, 0.5, 0.4]), "must be > 0"),
        (lambda d: d.assign(se=[0.5, -0.4, 0.5, 0.4]), "must be > 0"),
        (lambda d: d.assign(estimate=[1.0, np.nan, 1.1, 2.2]), "NaN"),
        (lambda d: d.assign(se=[0.5, 0.4, np.nan, 0.4]), "NaN"),
        (lambda d: d.assign(term=["a", "b", None, "b"]), "NaN"),
        (lambda d: d.assign(estimate=[1.0, np.inf, 1.1, 2.2]), "infinite"),
        (lambda d: d.assign(term=["a", "a", "a", "b"]), "twice"),
        (lambda d: d.drop(columns="se"), "no such column"),
        (lambda d: d.iloc[0:0], "empty"),
    ],
)
def test_bad_input_raises_data_error(mutate, match):
    with pytest.raises(DataError, match=match):
        pool(mutate(_good()))


def test_bad_input_names_row_and_column():
    bad = _good().assign(se=[0.5, 0.4, np.nan, 0.4])
    with pytest.raises(DataError) as err:
        pool(bad)
    assert err.value.row == 2 and err.value.column == "se"
    with pytest.raises(DataError) as err:
        pool(_good().drop(index=3))
    assert err.value.column == "term" and "'b'" in str(err.value)


@pytest.mark.parametrize("kwargs", [{"confidence": 1.5}, {"confidence": 0.0},
                                    {"df_complete": -3}, {"df_complete": {"a": 10}},
                                    {"df_complete": "many"}])
def test_bad_arguments_raise_spec_error(kwargs):
    with pytest.raises(SpecError):
        pool(_good(), **kwargs)


def test_not_a_dataframe():
    with pytest.raises(DataError, match="DataFrame"):
        pool([[1, "a", 1.0, 0.1]])  # type: ignore[arg-type]


def test_custom_column_names():
    d = _good().rename(columns={"imputation": "imp", "term": "param", "estimate": "b",
                                "se": "std_error"})
    out = pool(d, imputation="imp", term="param", estimate="b", se="std_error")
    pd.testing.assert_frame_equal(out, pool(_good()))
