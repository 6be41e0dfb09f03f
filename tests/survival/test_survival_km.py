"""Kaplan-Meier, median and log-rank: published examples, R's conventions, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import DataError
from effectstudy.survival import kaplan_meier, logrank, median_survival

# Freireich et al. (1963) 6-MP arm, as tabulated by Kalbfleisch & Prentice and Klein &
# Moeschberger (section 4.2): remission weeks, 1 = relapse, 0 = censored.
SIX_MP = pd.DataFrame({
    "weeks": [6, 6, 6, 6, 7, 9, 10, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 32, 34, 35],
    "relapse": [1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0],
})
# Published product-limit estimates and Greenwood standard errors (4 decimals).
SIX_MP_TABLE = {6: (0.8571, 0.0764), 7: (0.8067, 0.0869), 10: (0.7529, 0.0963),
                13: (0.6902, 0.1068), 16: (0.6275, 0.1141), 22: (0.5378, 0.1282),
                23: (0.4482, 0.1346)}


def test_six_mp_published_table():
    tab = kaplan_meier(SIX_MP, time="weeks", event="relapse").to_frame()
    assert list(tab["time"]) == sorted(SIX_MP_TABLE)
    for _, row in tab.iterrows():
        surv, se = SIX_MP_TABLE[int(row["time"])]
        assert row["survival"] == pytest.approx(surv, abs=5e-5)
        assert row["se"] == pytest.approx(se, abs=5e-5)
    assert tab["n_risk"].tolist() == [21, 17, 15, 12, 11, 7, 6]
    # log-scale interval: symmetric around log S with half-width z * se / S
    z = stats.norm.ppf(0.975)
    half = np.log(tab["survival"]) - np.log(tab["ci_lower"])
    np.testing.assert_allclose(half, z * tab["se"] / tab["survival"], rtol=1e-12)
    assert median_survival(kaplan_meier(SIX_MP, time="weeks", event="relapse"))[
        "median"].iloc[0] == 23


def test_confidence_level_widens_interval():
    a = kaplan_meier(SIX_MP, time="weeks", event="relapse", confidence=0.95).to_frame()
    b = kaplan_meier(SIX_MP, time="weeks", event="relapse", confidence=0.80).to_frame()
    assert (a["ci_lower"] < b["ci_lower"]).all()
    np.testing.assert_allclose(a["se"], b["se"])


@pytest.mark.parametrize("weeks, event, expected", [
    # S = .75, .5, .25, 0: flat at exactly 0.5 between 2 and 3 -> midpoint 2.5 (R's rule)
    ([1, 2, 3, 4], [1, 1, 1, 1], 2.5),
    # the curve ends on the flat at 0.5 (last follow-up at 4) -> (2 + 4) / 2
    ([1, 2, 3, 4], [1, 1, 0, 0], 3.0),
    # S never reaches 0.5 -> NaN
    ([1, 2, 3, 4], [1, 0, 0, 0], np.nan),
    # S jumps over 0.5: .8, .6, .4 -> the first time at or below 0.5
    ([1, 2, 3, 4, 5], [1, 1, 1, 0, 0], 3.0),
])
def test_median_conventions(weeks, event, expected):
    km = kaplan_meier(pd.DataFrame({"t": weeks, "e": event}), time="t", event="e")
    got = median_survival(km)["median"].iloc[0]
    if np.isnan(expected):
        assert np.isnan(got)
    else:
        assert got == expected


def test_median_per_group_and_summary():
    d = pd.DataFrame({"t": [1, 2, 3, 4, 1, 2, 3, 4], "e": [1, 1, 1, 1, 1, 0, 0, 0],
                      "g": ["b", "b", "b", "b", "a", "a", "a", "a"]})
    km = kaplan_meier(d, time="t", event="e", by="g")
    med = median_survival(km)
    assert med["g"].tolist() == ["a", "b"]
    assert np.isnan(med["median"].iloc[0]) and med["median"].iloc[1] == 2.5
    s = km.summary()
    assert s["n"].tolist() == [4, 4] and s["events"].tolist() == [1, 4]


def test_survival_reaching_zero_has_no_interval():
    tab = kaplan_meier(pd.DataFrame({"t": [1, 2], "e": [1, 1]}), time="t", event="e").to_frame()
    assert tab["survival"].tolist() == [0.5, 0.0]
    assert np.isnan(tab["se"].iloc[1]) and np.isnan(tab["ci_lower"].iloc[1])


def test_logrank_two_groups_hand_computed():
    # group A: events at 1, 3; group B: event at 2, censored at 4
    d = pd.DataFrame({"t": [1, 3, 2, 4], "e": [1, 1, 1, 0], "g": ["A", "A", "B", "B"]})
    # t=1: n=4 (2,2) d=1: E_A = .5, V = 1*3/3 * .5*.5 = .25
    # t=2: n=3 (A1,B2) d=1: E_A = 1/3, V = 1*2/2 * (1/3)(2/3) = 2/9
    # t=3: n=2 (A1,B1) d=1: E_A = .5, V = 1*1/1 * .25 = .25
    o_minus_e = 2 - (0.5 + 1 / 3 + 0.5)
    var = 0.25 + 2 / 9 + 0.25
    res = logrank(d, time="t", event="e", by="g")
    assert res.statistic == pytest.approx(o_minus_e**2 / var, rel=1e-12)
    assert res.df == 1
    assert res.p_value == pytest.approx(stats.chi2.sf(o_minus_e**2 / var, 1), rel=1e-12)
    assert res.groups["observed"].tolist() == [2.0, 1.0]


def test_logrank_needs_two_groups():
    with pytest.raises(DataError) as err:
        logrank(SIX_MP.assign(g="x"), time="weeks", event="relapse", by="g")
    assert err.value.column == "g"


@pytest.mark.parametrize("column, values, fragment", [
    ("weeks", {2: 0, 5: -3}, "2 row(s) have a zero or negative time"),
    ("weeks", {4: np.nan}, "1 row(s) have a missing value"),
    ("relapse", {1: 2, 3: 7, 8: -1}, "3 row(s) are neither 0"),
    ("relapse", {0: np.nan}, "1 row(s) have a missing value"),
])
def test_bad_times_and_events(column, values, fragment):
    d = SIX_MP.astype(float).assign(client=[f"CLIENT_{i:03d}" for i in range(len(SIX_MP))])
    for row, value in values.items():
        d.loc[row, column] = value
    for call in (lambda: kaplan_meier(d, time="weeks", event="relapse"),
                 lambda: logrank(d.assign(g=[0, 1] * 10 + [0]), time="weeks",
                                 event="relapse", by="g")):
        with pytest.raises(DataError) as err:
            call()
        msg = str(err.value)
        assert err.value.column == column and fragment in msg
        assert err.value.row == min(values)
        assert "CLIENT" not in msg and "-3" not in msg and "7" not in msg.replace(column, "")


def test_non_numeric_time_and_wrong_type():
    d = SIX_MP.astype(object)
    d.loc[3, "weeks"] = "zes"
    with pytest.raises(DataError, match="non-numeric") as err:
        kaplan_meier(d, time="weeks", event="relapse")
    assert "zes" not in str(err.value)
    with pytest.raises(DataError):
        kaplan_meier(SIX_MP.to_numpy(), time="weeks", event="relapse")
    with pytest.raises(DataError):
        kaplan_meier(SIX_MP, time="weeks", event="relapse", confidence=95)


def test_plots_draw_one_curve_per_group():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = pd.concat([SIX_MP.assign(arm="6-MP"), SIX_MP.assign(arm="other",
                                                           weeks=SIX_MP["weeks"] + 1)])
    km = kaplan_meier(d, time="weeks", event="relapse", by="arm")
    fig = km.plot()
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels == ["6-MP", "other"]
    plt.close(fig)
    fig = logrank(d, time="weeks", event="relapse", by="arm").plot()
    assert len(fig.axes) == 1
    plt.close(fig)
    assert "<table" in km._repr_html_()
