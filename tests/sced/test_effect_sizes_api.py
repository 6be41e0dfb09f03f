"""API behaviour of effectstudy.sced.effect_sizes: degenerate series, options, results.

The numbers against R are in test_effect_sizes_reference.py; here the values
are small hand calculations from the definitions.
"""

from __future__ import annotations

import dataclasses
import importlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from effectstudy.errors import DataError

es = importlib.import_module("effectstudy.sced.effect_sizes")


def _frame(a, b, case="k", start=1):
    n = len(a) + len(b)
    return pd.DataFrame(
        {
            "case": case,
            "phase": ["A"] * len(a) + ["B"] * len(b),
            "session": np.arange(start, start + n),
            "y": list(a) + list(b),
        }
    )


def _run(frame, **kw):
    kw.setdefault("case", "case")
    return es.effect_sizes(frame, phase="phase", session="session", outcome="y", **kw)


def _batch(frame, **kw):
    kw.setdefault("case", "case")
    return es.batch_effect_sizes(frame, phase="phase", session="session", outcome="y", **kw)


def _est(tab, measure):
    return float(tab.loc[tab.measure == measure, "estimate"].iloc[0])


# --------------------------------------------------------------------------- hand values


def test_nap_hand_value_and_ties():
    # pairs (A, B): (1,2) 1, (1,3) 1, (2,2) 0.5, (2,3) 1 -> 3.5 / 4
    res = es.nap([1, 2], [2, 3])
    assert res.estimate == pytest.approx(0.875)
    assert es.tau([1, 2], [2, 3]).estimate == pytest.approx(0.75)
    assert es.nap([1, 2], [2, 3], improvement="decrease").estimate == pytest.approx(0.125)


def test_nap_null_se_formula():
    res = es.nap([1, 2, 3], [2, 3, 4, 5], se="null")
    assert res.se == pytest.approx(math.sqrt((3 + 4 + 1) / (12 * 3 * 4)))


def test_pnd_pem_pand_ird_hand_values():
    a, b = [1, 3, 2], [2, 4, 5, 3]
    assert es.pnd(a, b).estimate == pytest.approx(2 / 4)  # 4, 5 above max(A) = 3
    assert es.pem(a, b).estimate == pytest.approx((3 + 0.5) / 4)  # median 2: 4, 5, 3 above, 2 tied
    # removing one A point (3) leaves 2 < 2? no -> remove A's 3 and B's 2: 5 of 7 remain
    assert es.pand(a, b).estimate == pytest.approx(5 / 7)
    assert es.ird(a, b).estimate == pytest.approx((49 * 5 / 7 - 9 - 16) / (2 * 12))


def test_smd_hand_value():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0]
    res = es.smd(a, b, bias_correct=False)
    assert res.estimate == pytest.approx(3.0)  # (5 - 2) / sd(A) = 3 / 1
    assert res.se == pytest.approx(math.sqrt(1 / 3 + 1 / 3 + 9 / 4))
    g = es.smd(a, b, bias_correct=True)
    assert g.estimate == pytest.approx(3.0 * (1 - 3 / (4 * 2 - 1)))
    assert es.smd(a, b, improvement="decrease", bias_correct=False).estimate == pytest.approx(-3.0)


def test_lrr_hand_value_and_pct_change():
    a, b = [10.0, 10.0, 10.0], [5.0, 5.0, 5.0]
    res = es.lrrd(a, b, improvement="decrease", bias_correct=False, pct_change=True)
    assert res.estimate == pytest.approx(math.log(0.5))
    assert res.extra["pct_change"] == pytest.approx(-50.0)
    assert es.lrri(a, b, improvement="decrease", bias_correct=False).estimate == pytest.approx(
        math.log(2)
    )


def test_pogo_hand_value():
    assert es.pogo([2, 2, 2], [6, 6, 6], goal=10).estimate == pytest.approx(50.0)


def test_tau_u_parker_equals_definition():
    a, b = [2, 3, 5, 3], [4, 5, 5, 7, 6]  # Parker et al. (2011) "Bob"
    s_ab = sum(np.sign(y - x) for x in a for y in b)
    s_a = sum(np.sign(a[j] - a[i]) for i in range(4) for j in range(i + 1, 4))
    res = es.tau_u(a, b)
    assert res.estimate == pytest.approx((s_ab - s_a) / 20)
    assert set(res.table["model"]) >= {"A vs. B", "A vs. B - Trend A"}
    assert res.S == s_ab - s_a


# --------------------------------------------------------------------------- degenerate series


def test_constant_series_defined_values():
    tab = _run(_frame([3, 3, 3], [3, 3, 3]), goal=5)
    assert _est(tab, "NAP") == 0.5
    assert _est(tab, "Tau") == 0.0
    assert _est(tab, "Tau_U") == 0.0
    assert _est(tab, "PND") == 0.0
    assert _est(tab, "PEM") == 0.5
    assert _est(tab, "LRRi") == 0.0
    assert _est(tab, "Tau_BC") == 0.0
    assert math.isnan(_est(tab, "SMD"))  # 0 / 0: no variation
    res = es.smd([3, 3, 3], [3, 3, 3])
    assert res.warnings and "no variation" in res.warnings[0]


def test_all_zero_baseline():
    a, b = [0, 0, 0], [2, 3, 1]
    tab = _run(_frame(a, b), scale="count")
    # LRR uses the truncated baseline mean 1 / (2 D n) with D = 1 (counts)
    lrri = es.lrri(a, b, bias_correct=False)
    assert lrri.estimate == pytest.approx(math.log(2.0) - math.log(1 / 6))
    assert math.isfinite(_est(tab, "LRRi"))
    assert _est(tab, "SMD") == math.inf  # zero baseline SD
    assert _est(tab, "PND") == 1.0
    assert _est(tab, "NAP") == 1.0


def test_one_point_phase_gives_values_and_nan_se():
    tab = _run(_frame([4], [5, 6, 7]))
    assert _est(tab, "NAP") == 1.0
    nap_se = tab.loc[tab.measure == "NAP", "se"].iloc[0]
    assert math.isnan(nap_se)
    assert math.isnan(_est(tab, "Tau_BC"))
    assert math.isnan(_est(tab, "SMD"))
    res = es.tau_bc([4], [5, 6, 7])
    assert any("two baseline" in w for w in res.warnings)


def test_all_ties_between_and_within():
    # tau-b denominator is 0 when every value is tied: 0/0 (NaN), as in scan
    assert math.isnan(es.tau_u([2, 2], [2, 2, 2], method="complete").estimate)
    assert es.tau_u([2, 2], [2, 2, 2], method="parker").estimate == 0.0
    assert es.nap([2, 2], [2, 2, 2]).estimate == 0.5
    tab = es.tau_u_table([2, 2], [2, 2, 2])
    assert len(tab) == 6


def test_nan_outcomes_are_dropped():
    full = _run(_frame([1, 2, np.nan, 3], [5, np.nan, 6, 7]))
    clean = _run(_frame([1, 2, 3], [5, 6, 7]))
    pd.testing.assert_series_equal(full["estimate"], clean["estimate"])


def test_phases_out_of_order_names_case():
    frame = pd.DataFrame(
        {"case": "Anna", "phase": ["A", "B", "A", "B"], "session": [1, 2, 3, 4], "y": [1, 2, 3, 4]}
    )
    with pytest.raises(DataError, match="Anna.*out of order"):
        _run(frame)


def test_missing_phase_names_case():
    frame = pd.concat(
        [
            _frame([1, 2], [3, 4], case="ok"),
            pd.DataFrame({"case": "Bram", "phase": "A", "session": [1, 2], "y": [1, 2]}),
        ]
    )
    with pytest.raises(DataError, match="Bram.*treatment phase"):
        _run(frame)


def test_all_missing_outcomes_names_case():
    with pytest.raises(DataError, match="Cas.*missing"):
        _run(_frame([np.nan, np.nan], [1, 2], case="Cas"))


def test_duplicated_sessions_raise():
    frame = _frame([1, 2], [3, 4], case="Dirk")
    frame.loc[1, "session"] = 1
    with pytest.raises(DataError, match="Dirk.*duplicated"):
        _run(frame)


def test_missing_column_raises():
    with pytest.raises(DataError, match="not found"):
        es.effect_sizes(
            _frame([1], [2]), case="case", phase="phase", session="session", outcome="nope"
        )


# --------------------------------------------------------------------------- options


def test_unknown_option_raises():
    with pytest.raises(DataError, match="unknown option"):
        _run(_frame([1, 2], [3, 4]), bogus=1)


def test_unknown_measure_raises():
    with pytest.raises(DataError, match="unknown measure"):
        _run(_frame([1, 2], [3, 4]), measures=["NAPP"])


def test_bad_improvement_and_option_values_raise():
    with pytest.raises(DataError):
        _run(_frame([1, 2], [3, 4]), improvement="up")
    with pytest.raises(DataError, match="se must be"):
        _run(_frame([1, 2], [3, 4]), measures="NAP", se="bootstrap")
    with pytest.raises(DataError, match="std_dev"):
        _run(_frame([1, 2], [3, 4]), measures="SMD", std_dev="both")
    with pytest.raises(DataError, match="scale"):
        _run(_frame([1, 2], [3, 4]), measures="LRRi", scale="kilos")
    with pytest.raises(DataError, match="pretest_trend"):
        _run(_frame([1, 2], [3, 4]), measures="Tau_BC", pretest_trend=2)
    with pytest.raises(DataError, match="confidence"):
        _run(_frame([1, 2], [3, 4]), confidence=95)


def test_pogo_needs_goal():
    with pytest.raises(DataError, match="goal"):
        _run(_frame([1, 2], [3, 4]), measures=["PoGO"])
    tab = _run(_frame([1, 2], [3, 4]))
    assert "PoGO" not in set(tab.measure)  # default measures skip PoGO without goal


def test_option_not_taken_by_measure_is_ignored():
    base = _run(_frame([1, 2, 4], [3, 5, 6]), measures=["NAP"])
    other = _run(_frame([1, 2, 4], [3, 5, 6]), measures=["NAP"], std_dev="pool", delta_method=True)
    pd.testing.assert_frame_equal(base, other)


def test_options_are_used():
    f = _frame([1, 2, 4], [3, 5, 6])
    a = _est(_run(f, measures="SMD", std_dev="baseline"), "SMD")
    b = _est(_run(f, measures="SMD", std_dev="pool"), "SMD")
    assert a != b
    h = _run(f, measures="NAP", se="hanley").se.iloc[0]
    u = _run(f, measures="NAP", se="unbiased").se.iloc[0]
    assert h != u


def test_confidence_none_gives_no_intervals():
    tab = _run(_frame([1, 2, 4], [3, 5, 6]), confidence=None)
    assert tab.ci_lower.isna().all() and tab.ci_upper.isna().all()


def test_columns_and_measure_names():
    tab = _run(_frame([1, 2, 4], [3, 5, 6]), goal=8, pct_change=True, scale="count")
    assert list(tab.columns) == ["case", "measure", "estimate", "se", "ci_lower", "ci_upper"]
    assert set(tab.measure) == set(es.MEASURES)


def test_tau_u_method_option_gives_se():
    f = _frame([1, 2, 4, 3], [3, 5, 6, 7])
    plain = _run(f, measures="Tau_U")
    assert math.isnan(plain.se.iloc[0])  # SingleCaseES reports no SE
    scan = _run(f, measures="Tau_U", method="complete", tau_method="b")
    assert math.isfinite(scan.se.iloc[0])
    with pytest.raises(DataError, match="method"):
        _run(f, measures="Tau_U", method="magic")


def test_case_options_per_case_direction():
    f = pd.concat([_frame([1, 2], [5, 6], case="up"), _frame([5, 6], [1, 2], case="down")])
    f["direction"] = np.where(f["case"] == "up", "increase", "decrease")
    tab = _run(f, measures="NAP", case_options={"improvement": "direction"})
    assert list(tab.estimate) == [1.0, 1.0]


def test_batch_without_aggregate_and_weighting_error():
    f = pd.concat(
        [
            _frame([1, 2], [5, 6], case="x").assign(pair=1),
            _frame([2, 3], [6, 8], case="x", start=5).assign(pair=2),
        ]
    )
    # without aggregate an ABAB case is one series: phases out of order
    with pytest.raises(DataError, match="'x'.*out of order"):
        _batch(f, aggregate=None, measures="NAP")
    per_pair = _batch(f, case=["case", "pair"], aggregate=None, measures="NAP")
    assert list(per_pair.case) == ["x|1", "x|2"]
    agg = _batch(f, aggregate="pair", measures=["NAP", "PND"])
    assert set(agg.measure) == {"NAP", "PND"}
    with pytest.raises(DataError, match="weighting"):
        _batch(f, aggregate="pair", weighting="w")


def test_batch_equal_weighting_is_mean_of_pairs():
    f = pd.concat(
        [
            _frame([1, 2, 3], [2, 6, 7], case="x").assign(pair=1),
            _frame([2, 3, 5], [6, 4, 8], case="x", start=7).assign(pair=2),
        ]
    )
    agg = _batch(f, aggregate="pair", measures="NAP")
    n1 = es.nap([1, 2, 3], [2, 6, 7])
    n2 = es.nap([2, 3, 5], [6, 4, 8])
    assert agg.estimate.iloc[0] == pytest.approx((n1.estimate + n2.estimate) / 2)
    assert agg.se.iloc[0] == pytest.approx(math.sqrt(n1.se**2 + n2.se**2) / 2)


def test_overlap_table_columns():
    tab = es.overlap(
        _frame([1, 2, 4], [3, 5, 6]), case="case", phase="phase", session="session", outcome="y"
    )
    assert tab.loc[0, "NAP"] == pytest.approx(100 * es.nap([1, 2, 4], [3, 5, 6]).estimate)
    assert tab.loc[0, "NAP rescaled"] == pytest.approx(2 * tab.loc[0, "NAP"] - 100)


# --------------------------------------------------------------------------- results


def test_result_object():
    res = es.tau_bc([1, 2, 3, 4], [6, 7, 8])
    assert dataclasses.is_dataclass(res)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0  # type: ignore[misc]
    assert res.slope == pytest.approx(1.0)
    frame = res.to_frame()
    assert {"measure", "estimate", "se", "ci_lower", "ci_upper", "slope"} <= set(frame.columns)
    assert "<table" in res._repr_html_()
    with pytest.raises(AttributeError):
        res.no_such_thing  # noqa: B018
    assert "<table" in es.tau_u([1, 2, 3], [4, 5, 6])._repr_html_()


# --------------------------------------------------------------------------- properties

_vals = st.lists(st.integers(min_value=0, max_value=20), min_size=2, max_size=8)


@settings(max_examples=40, deadline=None)
@given(_vals, _vals)
def test_direction_is_negation(a, b):
    a, b = np.array(a, float), np.array(b, float)
    for fn in (es.nap, es.pnd, es.pem, es.pand, es.ird):
        assert fn(a, b, improvement="decrease").estimate == pytest.approx(fn(-a, -b).estimate)
    assert es.tau_u(a, b, improvement="decrease").estimate == pytest.approx(
        es.tau_u(-a, -b).estimate
    )


@settings(max_examples=40, deadline=None)
@given(_vals, _vals)
def test_bounds_and_nap_ci_contains_estimate(a, b):
    res = es.nap(a, b)
    assert 0 <= res.estimate <= 1
    assert res.ci_lower <= res.estimate + 1e-12 and res.estimate - 1e-12 <= res.ci_upper
    assert 0 <= es.pand(a, b).estimate <= 1
    assert -1 <= es.ird(a, b).estimate <= 1
    assert es.tau(a, b).estimate == pytest.approx(2 * res.estimate - 1)
