"""Cumulative incidence with competing events and exact Poisson rates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from effectstudy.errors import DataError
from effectstudy.survival import cumulative_incidence, event_rate, kaplan_meier
from effectstudy.survival.competing import poisson_ci
from refdata import REFERENCE

ABSCONDING = REFERENCE / "study" / "data" / "absconding_20261130.csv"

# 1 = absconding, 2 = completed care, 3 = transfer, 0 = censored
HAND = pd.DataFrame({"weeks": [1, 2, 3, 4, 5], "cause": [1, 2, 1, 0, 1]})


@pytest.fixture(scope="module")
def absconding() -> pd.DataFrame:
    if not ABSCONDING.is_file():
        pytest.fail(f"reference data not found at {ABSCONDING}; set EFFECTSTUDY_REFERENCE")
    return pd.read_csv(ABSCONDING)


def test_hand_example():
    # t1: n=5 S-=1 -> F1 = 1/5; t2: cause 2, S = .8 * 3/4 = .6; t3: F1 = .2 + .6/3 = .4;
    # t4 censored; t5: n=1, S- = .4 -> F1 = .8.  Cause 2: .8 * 1/4 = .2.
    f1 = cumulative_incidence(HAND, time="weeks", event="cause", event_of_interest=1)
    tab = f1.to_frame()
    assert tab["time"].tolist() == [1, 2, 3, 5]
    np.testing.assert_allclose(tab["cif"], [0.2, 0.2, 0.4, 0.8], rtol=1e-12)
    assert tab["n_risk"].tolist() == [5, 4, 3, 1]
    assert tab["n_competing"].tolist() == [0, 1, 0, 0]
    f2 = cumulative_incidence(HAND, time="weeks", event="cause", event_of_interest=2)
    assert f2.to_frame()["cif"].iloc[-1] == pytest.approx(0.2)


def test_single_cause_equals_one_minus_kaplan_meier(absconding):
    km = kaplan_meier(absconding, time="weeks", event="absconded", by="programme").to_frame()
    ci = cumulative_incidence(absconding, time="weeks", event="absconded",
                              event_of_interest=1, by="programme").to_frame()
    assert len(ci) == len(km)
    np.testing.assert_allclose(ci["cif"], 1 - km["survival"], rtol=1e-12, atol=1e-15)
    # with one cause the delta-method variance is Greenwood's
    np.testing.assert_allclose(ci["se"], km["se"], rtol=1e-10)
    assert (ci["ci_lower"] <= ci["cif"]).all() and (ci["cif"] <= ci["ci_upper"]).all()


def test_incidences_add_up_to_one_minus_event_free_survival(absconding):
    rng = np.random.default_rng(20261130)
    d = absconding.copy()
    d["cause"] = np.where(d["absconded"] == 1, 1, rng.choice([0, 2, 3], size=len(d)))
    total = sum(cumulative_incidence(d, time="weeks", event="cause", event_of_interest=k)
                .curve["cif"].to_numpy() for k in (1, 2, 3))
    free = kaplan_meier(d.assign(any=(d["cause"] > 0).astype(int)), time="weeks",
                        event="any").curve["survival"].to_numpy()
    np.testing.assert_allclose(total, 1 - free, rtol=1e-12, atol=1e-14)


def test_variance_matches_numerical_delta_method(absconding):
    """The closed-form variance against a numerical Jacobian of F(t) in the hazards."""
    rng = np.random.default_rng(7)
    d = absconding.copy()
    d["cause"] = np.where(d["absconded"] == 1, 1, rng.choice([0, 2], size=len(d), p=[.5, .5]))
    res = cumulative_incidence(d, time="weeks", event="cause", event_of_interest=1).curve
    n = res["n_risk"].to_numpy(float)
    hc = res["n_event"].to_numpy() / n
    ho = res["n_competing"].to_numpy() / n

    def cif_end(theta):
        c, o = theta[: len(n)], theta[len(n):]
        s = np.cumprod(1 - c - o)
        s_prev = np.concatenate([[1.0], s[:-1]])
        return np.sum(s_prev * c)

    theta = np.concatenate([hc, ho])
    eps = 1e-7
    grad = np.array([(cif_end(theta + eps * np.eye(len(theta))[i])
                      - cif_end(theta - eps * np.eye(len(theta))[i])) / (2 * eps)
                     for i in range(len(theta))])
    m = len(n)
    cov = np.zeros((2 * m, 2 * m))
    for j in range(m):  # multinomial (cause 1, other cause) per time
        cov[j, j] = hc[j] * (1 - hc[j]) / n[j]
        cov[m + j, m + j] = ho[j] * (1 - ho[j]) / n[j]
        cov[j, m + j] = cov[m + j, j] = -hc[j] * ho[j] / n[j]
    expected = np.sqrt(grad @ cov @ grad)
    assert res["se"].iloc[-1] == pytest.approx(expected, rel=1e-6)


def test_cumulative_incidence_bad_input():
    with pytest.raises(DataError) as err:
        cumulative_incidence(HAND.assign(cause=[1, 2, -1, 1.5, 0]), time="weeks",
                             event="cause", event_of_interest=1)
    assert err.value.column == "cause" and "2 row(s)" in str(err.value)
    with pytest.raises(DataError):
        cumulative_incidence(HAND, time="weeks", event="cause", event_of_interest=0)


def test_plot_and_summary():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = pd.concat([HAND.assign(p="A"), HAND.assign(p="B", cause=[2, 2, 1, 0, 0])])
    res = cumulative_incidence(d, time="weeks", event="cause", event_of_interest=1, by="p")
    s = res.summary()
    assert s["p"].tolist() == ["A", "B"]
    # B: S = .8, .6 after two completions, then F = .6 / 3
    np.testing.assert_allclose(s["cif_end"], [0.8, 0.2], rtol=1e-12)
    fig = res.plot()
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["A", "B"]
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Poisson rates
# --------------------------------------------------------------------------- #
# Exact 95% limits for a Poisson count (Garwood 1936), as tabulated e.g. by
# Sahai & Khurshid (1993, Stat Med 12:657) and in Ulm (1990, Am J Epidemiol 131:373).
GARWOOD_95 = {0: (0.0, 3.689), 1: (0.0253, 5.572), 5: (1.624, 11.668), 10: (4.795, 18.390)}


@pytest.mark.parametrize("count", sorted(GARWOOD_95))
def test_poisson_interval_published_table(count):
    d = pd.DataFrame({"episodes": [count], "weeks": [100.0]})
    row = event_rate(d, events="episodes", exposure="weeks").to_frame().iloc[0]
    lo, hi = GARWOOD_95[count]
    assert row["rate"] == count
    assert row["ci_lower"] == pytest.approx(lo, abs=6e-4)
    assert row["ci_upper"] == pytest.approx(hi, abs=6e-4)


@pytest.mark.parametrize("confidence", [0.90, 0.95, 0.99])
def test_poisson_interval_tail_probabilities(confidence):
    """The exact limits are the means at which the observed count sits in a tail of a/2."""
    d = pd.DataFrame({"programme": ["P1"] * 3 + ["P2"] * 2, "episodes": [2, 0, 1, 4, 3],
                      "weeks": [30.0, 52.0, 18.0, 40.0, 25.5]})
    tab = event_rate(d, events="episodes", exposure="weeks", by="programme", per=100,
                     confidence=confidence).to_frame()
    alpha = 1 - confidence
    for _, row in tab.iterrows():
        k, scale = row["events"], 100 / row["exposure"]
        lo, hi = row["ci_lower"] / scale, row["ci_upper"] / scale
        assert stats.poisson.cdf(k, hi) == pytest.approx(alpha / 2, rel=1e-8)
        assert stats.poisson.sf(k - 1, lo) == pytest.approx(alpha / 2, rel=1e-8)
    assert tab["events"].tolist() == [3, 7]
    np.testing.assert_allclose(tab["rate"], [300 / 100.0, 700 / 65.5])


def test_event_rate_bad_input():
    d = pd.DataFrame({"episodes": [1, -1, 2.5], "weeks": [10.0, 0.0, 5.0]})
    with pytest.raises(DataError) as err:
        event_rate(d, events="episodes", exposure="weeks")
    assert err.value.column == "episodes" and "2 row(s)" in str(err.value)
    with pytest.raises(DataError) as err:
        event_rate(d.assign(episodes=1), events="episodes", exposure="weeks")
    assert err.value.column == "weeks" and err.value.row == 1
    with pytest.raises(DataError):
        event_rate(d.assign(episodes=1, weeks=1.0), events="episodes", exposure="weeks", per=0)


@pytest.mark.parametrize("confidence", [0.95, 0.80])
def test_cumulative_incidence_log_minus_log_interval(absconding, confidence):
    """Choudhury (2002): symmetric on log(-log F) with se(log(-log F)) = se / |F log F|."""
    rng = np.random.default_rng(11)
    d = absconding.copy()
    d["cause"] = np.where(d["absconded"] == 1, 1, rng.choice([0, 2], size=len(d)))
    tab = cumulative_incidence(d, time="weeks", event="cause", event_of_interest=1,
                               confidence=confidence).to_frame()
    tab = tab[(tab["cif"] > 0) & (tab["cif"] < 1)]
    assert len(tab) > 5
    z = stats.norm.ppf(0.5 + confidence / 2)
    f, se = tab["cif"].to_numpy(), tab["se"].to_numpy()
    half = z * se / (f * np.abs(np.log(f)))
    # log(-log F) falls as F rises: the lower limit of F sits at log(-log F) + half
    np.testing.assert_allclose(np.log(-np.log(tab["ci_lower"])), np.log(-np.log(f)) + half,
                               rtol=1e-10)
    np.testing.assert_allclose(np.log(-np.log(tab["ci_upper"])), np.log(-np.log(f)) - half,
                               rtol=1e-10)
    assert ((tab["ci_lower"] > 0) & (tab["ci_upper"] < 1)).all()


def test_bad_event_of_interest_and_poisson_arguments():
    for bad in ("1", 1.5, True, None):
        with pytest.raises(DataError, match="event_of_interest"):
            cumulative_incidence(HAND, time="weeks", event="cause", event_of_interest=bad)
    for bad in (-1, 2.5, "3"):
        with pytest.raises(DataError, match="count"):
            poisson_ci(bad)
    with pytest.raises(DataError, match="confidence"):
        poisson_ci(3, confidence=95)
