"""Inter-rater ICCs (:func:`effectstudy.fidelity.rater_agreement`) against psych::ICC.

Reference: ``shared/reference/study/expected_study.csv``, family ``icc_raters``
(``psych::ICC(sessions x raters matrix, lmer = FALSE)``), data in
``shared/reference/study/data/<dataset>.csv`` (columns session, rater, rating).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError, SpecError
from effectstudy.fidelity import (
    AGREEMENT_COLUMNS,
    ICC_DESCRIPTIONS,
    IncompleteRatingsWarning,
    RaterAgreementResult,
    rater_agreement,
)
from refdata import REFERENCE

STUDY = REFERENCE / "study"
EXPECTED = STUDY / "expected_study.csv"
RTOL = 1e-6
TYPES = ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
KW = {"targets": "session", "raters": "rater", "ratings": "rating"}


def _icc(data: pd.DataFrame, **kwargs) -> pd.DataFrame:
    """The ICC table of :func:`rater_agreement` (its ``to_frame()``)."""
    res = rater_agreement(data, **kwargs)
    assert isinstance(res, RaterAgreementResult)
    return res.to_frame()


def _reference_rows() -> list:
    if not EXPECTED.exists():
        return [pytest.param(None, id="reference-missing")]
    ref = pd.read_csv(EXPECTED)
    rows = ref[ref["family"] == "icc_raters"]
    return [pytest.param(r.to_dict(), id=f"{r['dataset']}|{r['group']}|{r['quantity']}")
            for _, r in rows.iterrows()]


def _ratings(dataset: str | None = None) -> pd.DataFrame:
    if not EXPECTED.exists():
        pytest.fail(f"reference values missing: {EXPECTED}")
    if dataset is None:
        ref = pd.read_csv(EXPECTED)
        dataset = ref.loc[ref["family"] == "icc_raters", "dataset"].iloc[0]
    path = STUDY / "data" / f"{dataset}.csv"
    if not path.exists():
        pytest.fail(f"reference data missing: {path}")
    return pd.read_csv(path)


def test_reference_has_all_six_forms_and_seven_quantities():
    # an empty family would parametrise test_icc_matches_psych to nothing and pass silently
    rows = [p.values[0] for p in _reference_rows()]
    assert rows and rows[0] is not None, f"reference values missing: {EXPECTED}"
    assert {r["group"] for r in rows} == set(TYPES)
    assert {r["quantity"] for r in rows} == {"icc", "F", "df1", "df2", "p_value", "ci_lower",
                                            "ci_upper"}


@pytest.mark.parametrize("row", _reference_rows())
def test_icc_matches_psych(row):
    if row is None:
        pytest.fail(f"reference values missing: {EXPECTED}")
    out = _icc(_ratings(row["dataset"]), **KW).set_index("type")
    got = out.at[row["group"], row["quantity"]]
    # psych's confidence limits are unrounded, so they are held to the same 1e-6
    assert float(got) == pytest.approx(row["value"], rel=RTOL)


def test_shape_columns_and_descriptions():
    out = _icc(_ratings(), **KW)
    assert tuple(out.columns) == AGREEMENT_COLUMNS
    assert list(out["type"]) == TYPES
    assert out.set_index("type").at["ICC2", "description"] == (
        "single raters, absolute agreement, two-way random")
    assert out.set_index("type").at["ICC3k", "description"] == (
        "average raters, consistency, two-way mixed")
    assert set(ICC_DESCRIPTIONS) == set(TYPES)
    assert (out["ci_lower"] < out["icc"]).all() and (out["icc"] < out["ci_upper"]).all()


def test_shrout_fleiss_1979_table_example():
    # Shrout & Fleiss (1979), table 2: 6 targets x 4 judges; their table 4 gives
    # ICC(1,1) .17, ICC(2,1) .29, ICC(3,1) .71, ICC(1,4) .44, ICC(2,4) .62, ICC(3,4) .91
    m = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                  [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], dtype=float)
    d = pd.DataFrame({"session": np.repeat(np.arange(6), 4), "rater": np.tile(list("ABCD"), 6),
                      "rating": m.ravel()})
    out = _icc(d, **KW).set_index("type")
    published = {"ICC1": 0.17, "ICC2": 0.29, "ICC3": 0.71, "ICC1k": 0.44, "ICC2k": 0.62,
                 "ICC3k": 0.91}
    for typ, value in published.items():
        assert out.at[typ, "icc"] == pytest.approx(value, abs=0.005), typ
    assert list(out["df1"]) == [5] * 6
    assert list(out["df2"]) == [18, 15, 15, 18, 15, 15]
    # their table 3 (ANOVA): BMS 11.24, WMS 6.26, JMS 32.49, EMS 1.02 (two decimals), so
    # F = BMS / WMS for the one-way forms and BMS / EMS for the two-way forms
    f = out["F"]
    for typ in ("ICC1", "ICC1k"):
        assert f[typ] == pytest.approx(11.24 / 6.26, rel=2e-3), typ
    for typ in ("ICC2", "ICC3", "ICC2k", "ICC3k"):
        assert f[typ] == pytest.approx(11.24 / 1.02, rel=6e-3), typ
    # ICC2 from the published mean squares (their formula, table 1)
    icc2 = (11.24 - 1.02) / (11.24 + 3 * 1.02 + 4 * (32.49 - 1.02) / 6)
    assert out.at["ICC2", "icc"] == pytest.approx(icc2, abs=1e-3)


def test_invariant_to_row_order_and_labels():
    d = _ratings()
    base = _icc(d, **KW)
    raters = sorted(d["rater"].unique())
    relabel = {r: f"z{len(raters) - i}" for i, r in enumerate(raters)}  # reverses the order
    shuffled = d.sample(frac=1.0, random_state=3).assign(rater=lambda x: x["rater"].map(relabel))
    pd.testing.assert_frame_equal(_icc(shuffled, **KW), base, rtol=1e-10)


def test_confidence_level():
    d = _ratings()
    c95 = _icc(d, **KW)
    c80 = _icc(d, **KW, confidence=0.80)
    assert (c80["ci_lower"] > c95["ci_lower"]).all()
    assert (c80["ci_upper"] < c95["ci_upper"]).all()
    pd.testing.assert_series_equal(c80["icc"], c95["icc"])


def test_incomplete_targets_dropped_with_warning():
    d = _ratings()
    sessions = sorted(d["session"].unique())
    gone = sessions[:2]
    # one session loses a row, the other gets a NaN rating: both are incomplete
    raters = sorted(d["rater"].unique())
    partial = d.drop(index=d.index[(d["session"] == gone[0]) & (d["rater"] == raters[1])])
    partial.loc[(partial["session"] == gone[1]) & (partial["rater"] == raters[-1]),
                "rating"] = np.nan
    with pytest.warns(IncompleteRatingsWarning, match=f"2 of {len(sessions)} targets"):
        out = _icc(partial, **KW)
    complete = _icc(d[~d["session"].isin(gone)], **KW)
    pd.testing.assert_frame_equal(out, complete)
    assert list(out["df1"]) == [len(sessions) - 3] * 6


def test_one_rater_is_an_error():
    d = _ratings()
    with pytest.raises(DataError, match="at least 2 raters") as err:
        rater_agreement(d[d["rater"] == d["rater"].iloc[0]], **KW)
    assert err.value.column == "rater"


def test_constant_ratings_are_an_error():
    d = _ratings().assign(rating=7.0)
    with pytest.raises(DataError, match="undefined"):
        rater_agreement(d, **KW)


def test_targets_with_equal_means_are_an_error():
    d = pd.DataFrame({"session": [1, 1, 2, 2, 3, 3], "rater": ["a", "b"] * 3,
                      "rating": [1.0, 2.0, 2.0, 1.0, 1.5, 1.5]})
    with pytest.raises(DataError, match="same mean rating"):
        rater_agreement(d, **KW)


def test_perfect_additive_agreement_is_an_error():
    d = _ratings()
    raters = sorted(d["rater"].unique())
    first = d[d["rater"] == raters[0]].set_index("session")["rating"]
    shift = {r: 0.5 * i for i, r in enumerate(raters)}
    d = d.assign(rating=d["session"].map(first) + d["rater"].map(shift))
    with pytest.raises(DataError, match="residual mean square is zero"):
        rater_agreement(d, **KW)


def test_too_few_complete_targets():
    d = _ratings()
    keep = d["session"].isin(sorted(d["session"].unique())[:1])
    with pytest.raises(DataError, match="at least 2 targets"):
        rater_agreement(d[keep], **KW)


def test_duplicate_rating_is_an_error():
    d = _ratings()
    d = pd.concat([d, d.iloc[[4]]], ignore_index=True)
    with pytest.raises(DataError, match="twice") as err:
        rater_agreement(d, **KW)
    assert err.value.row == len(d) - 1


def test_free_text_rating_is_refused_without_echo():
    d = _ratings().astype({"rating": object})
    d.loc[5, "rating"] = "Sanne was upset today"
    with pytest.raises(DataError, match="non-numeric rating") as err:
        rater_agreement(d, **KW)
    assert "Sanne" not in str(err.value)
    assert err.value.row == 5 and err.value.column == "rating"


def test_missing_column_and_bad_confidence():
    d = _ratings()
    with pytest.raises(DataError, match="no such column"):
        rater_agreement(d, targets="client", raters="rater", ratings="rating")
    with pytest.raises(SpecError):
        rater_agreement(d, **KW, confidence=95)
    with pytest.raises(DataError, match="DataFrame"):
        rater_agreement(d.to_numpy(), **KW)  # type: ignore[arg-type]


def test_result_object_api():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = _ratings()
    res = rater_agreement(d, **KW)
    n_sessions, n_raters = d["session"].nunique(), d["rater"].nunique()
    assert (res.n_targets, res.n_raters, res.n_dropped) == (n_sessions, n_raters, 0)
    assert res.confidence == 0.95 and res.warnings == ()
    s = res.summary()
    frame = res.to_frame().set_index("type")
    assert s.loc[0, "n_targets"] == n_sessions and s.loc[0, "n_raters"] == n_raters
    assert s.loc[0, "ICC2_icc"] == frame.at["ICC2", "icc"]
    assert s.loc[0, "ICC2k_ci_upper"] == frame.at["ICC2k", "ci_upper"]
    html = res._repr_html_()
    assert "<table" in html and "ICC3k" in html
    fig = res.plot()
    assert sorted(t.get_text() for t in fig.axes[0].get_yticklabels()) == sorted(TYPES)
    plt.close(fig)


def test_dropped_targets_are_noted_on_the_result():
    d = _ratings()
    first = sorted(d["session"].unique())[0]
    partial = d.drop(index=d.index[d["session"] == first][:1])
    with pytest.warns(IncompleteRatingsWarning):
        res = rater_agreement(partial, **KW)
    assert res.n_dropped == 1 and res.n_targets == d["session"].nunique() - 1
    assert len(res.warnings) == 1 and "1 target(s)" in res.warnings[0]
    assert str(first) not in res.warnings[0]
