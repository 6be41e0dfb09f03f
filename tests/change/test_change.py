"""Reliable change and pre-post comparisons: hand-calculable cases, identities, pingouin agreement."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pingouin as pg
import pytest

from effectstudy import change
from effectstudy.dictionary import load_dictionary
from effectstudy.errors import DataError


@pytest.fixture(scope="module")
def dd():
    return load_dictionary()


# --- the bare formulas, on numbers one can check by hand --------------------------------
def test_rci_hand_calculation():
    # SD 10, r = .875: SE = 10 * sqrt(.125) = 3.5355, S_diff = sqrt(2) * SE = 5 exactly.
    assert change.standard_error_difference(10, 0.875) == pytest.approx(5.0, rel=1e-12)
    rci = change.reliable_change_index([40, 40, 40], [30, 50, 37], sd=10, reliability=0.875)
    np.testing.assert_allclose(rci, [-2.0, 2.0, -0.6], rtol=1e-12)


def test_cutoffs_hand_calculation():
    # Symptom scale: clinical M 30 SD 6, norm M 10 SD 4.
    assert change.clinical_cutoff(kind="a", clinical_mean=30, clinical_sd=6, better="lower") == 18
    assert change.clinical_cutoff(kind="b", norm_mean=10, norm_sd=4, better="lower") == 18
    # c = (6*10 + 4*30) / (6 + 4) = 18
    assert change.clinical_cutoff(kind="c", clinical_mean=30, clinical_sd=6, norm_mean=10,
                                  norm_sd=4) == 18
    # Strength scale mirrors: a = 10 + 2*3 = 16; b = 25 - 2*2 = 21; c = (3*25 + 2*10)/5 = 19
    kw = dict(clinical_mean=10, clinical_sd=3, norm_mean=25, norm_sd=2, better="higher")
    assert change.clinical_cutoff(kind="a", **kw) == 16
    assert change.clinical_cutoff(kind="b", **kw) == 21
    assert change.clinical_cutoff(kind="c", **kw) == 19


def test_c_lies_between_the_means_and_equals_midpoint_for_equal_sds():
    c = change.clinical_cutoff(kind="c", clinical_mean=40, clinical_sd=5, norm_mean=20, norm_sd=5)
    assert c == 30


def test_maassen_equals_jacobson_truax_for_equal_sds():
    pre, post = np.array([20.0, 25, 30]), np.array([10.0, 24, 35])
    a = change.reliable_change_maassen(pre, post, sd_pre=8, sd_post=8, reliability=0.8)
    b = change.reliable_change_index(pre, post, sd=8, reliability=0.8)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_hageman_arrindell_reduces_to_jt_when_difference_scores_are_perfectly_reliable():
    # With r_xx -> 1 the difference reliability r_DD -> 1 and RC_ID -> change / sqrt(SE1^2+SE2^2).
    pre, post = np.array([20.0, 25, 30, 28]), np.array([10.0, 24, 35, 20])
    ha = change.reliable_change_hageman_arrindell(pre, post, sd_pre=5, sd_post=5,
                                                  reliability=0.999999, r_prepost=0.3)
    jt = change.reliable_change_index(pre, post, sd=5, reliability=0.999999)
    np.testing.assert_allclose(ha, jt, rtol=1e-4)


def test_bad_reliability_is_an_error():
    with pytest.raises(DataError, match="reliability"):
        change.reliable_change_index([1], [2], sd=1, reliability=1.2)


# --- per-client classification on a tiny harmonised table --------------------------------
def _table(rows):
    recs = []
    for prog, client, inst, scale, construct, better, pre, post in rows:
        for occ, raw in (("intake", pre), ("discharge", post)):
            recs.append(dict(programme=prog, client=client, occasion=occ, construct=construct,
                             instrument=inst, scale=scale, raw=raw, better=better, age=15.0))
    return pd.DataFrame(recs)


def test_classification_with_published_cutoff(dd):
    # CRIES-13: alpha .89 (vanmeijel), published cut-off >= 30 (verlinden2014).
    # No verified norm, so the SD comes from the sample's intake scores.
    rows = [("p", f"c{i}", "CRIES-13", "total", "trauma_symptoms", "lower", pre, post)
            for i, (pre, post) in enumerate([(45, 20), (45, 40), (35, 31), (30, 48), (40, 34)])]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    sd = np.std([45, 45, 35, 30, 40], ddof=1)
    s_diff = np.sqrt(2) * sd * np.sqrt(1 - 0.89)
    np.testing.assert_allclose(rc["rci"], (np.array([20, 40, 31, 48, 34]) - [45, 45, 35, 30, 40]) / s_diff)
    assert rc["cutoff"].iloc[0] == 30 and rc["cutoff_kind"].iloc[0] == "published (>=)"
    assert rc["reliability_source"].iloc[0] == "vanmeijel"
    assert "sample SD" in rc["sd_source"].iloc[0]
    expected = []
    for pre, post in [(45, 20), (45, 40), (35, 31), (30, 48), (40, 34)]:
        r = (post - pre) / s_diff
        if r < -1.96:
            expected.append("recovered" if post < 30 <= pre else "improved")
        elif r > 1.96:
            expected.append("deteriorated")
        else:
            expected.append("unchanged")
    assert rc["category"].tolist() == expected
    assert set(expected) >= {"recovered", "deteriorated"}


def test_category_identity_with_rci_thresholds(dd):
    rng = np.random.default_rng(5)
    pre = rng.integers(30, 60, 40)
    post = np.clip(pre + rng.integers(-25, 15, 40), 0, 65)
    rows = [("p", f"c{i}", "CRIES-13", "total", "trauma_symptoms", "lower", a, b)
            for i, (a, b) in enumerate(zip(pre, post, strict=True))]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    improved = rc["category"].isin(["recovered", "improved"])
    assert (improved == (rc["rci"] < -1.96)).all()
    assert ((rc["category"] == "deteriorated") == (rc["rci"] > 1.96)).all()
    assert ((rc["category"] == "unchanged") == (rc["rci"].abs() <= 1.96)).all()
    # recovered = reliably improved and crossed the published cut-off of 30
    rec = rc["category"] == "recovered"
    assert (rec == (improved & (rc["pre"] >= 30) & (rc["post"] < 30))).all()


def test_norm_sd_and_cutoff_c_for_t_scores(dd):
    # YSR internalising T: norm 50/10 (aseba_tscore), alpha .90 (hofsteenge), cut-off 64 published.
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", pre, post)
            for i, (pre, post) in enumerate([(70, 55), (66, 63), (58, 70)])]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    s_diff = np.sqrt(2) * 10 * np.sqrt(0.1)
    np.testing.assert_allclose(rc["rci"], np.array([-15, -3, 12]) / s_diff)
    assert rc["sd"].iloc[0] == 10 and rc["sd_source"].iloc[0].startswith("aseba_tscore")
    assert rc["category"].tolist() == ["recovered", "unchanged", "deteriorated"]


def test_unsourced_reliability_is_not_assessable(dd):
    rows = [("p", f"c{i}", "SDQ-S", "internalising", "internalising", "lower", 12, 2)
            for i in range(3)]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    assert (rc["category"] == "not assessable").all()
    assert rc["rci"].isna().all()
    assert "no published reliability" in rc["note"].iloc[0]


def test_summary_counts_and_exact_ci(dd):
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", 75, 50)
            for i in range(4)] + [("p", "c9", "YSR", "internalising_t", "internalising", "lower", 70, 69)]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    s = change.summary(rc).set_index("category")
    assert s.loc["recovered", "n"] == 4 and s.loc["unchanged", "n"] == 1
    assert s.loc["recovered", "proportion"] == pytest.approx(0.8)
    # Clopper-Pearson for 4/5: lower = Beta(0.025; 4, 2), upper = Beta(0.975; 5, 1)
    from scipy.stats import beta

    assert s.loc["recovered", "ci_lower"] == pytest.approx(beta.ppf(0.025, 4, 2), rel=1e-9)
    assert s.loc["recovered", "ci_upper"] == pytest.approx(beta.ppf(0.975, 5, 1), rel=1e-9)


def test_missing_columns_error():
    with pytest.raises(DataError, match="lacks column"):
        change.reliable_change(pd.DataFrame({"client": [1]}))


# --- pre-post comparisons against pingouin ---------------------------------------------------
def test_prepost_agrees_with_pingouin():
    rng = np.random.default_rng(11)
    pre = rng.normal(60, 8, 12).round()
    post = (pre - 6 + rng.normal(0, 5, 12)).round()
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", a, b)
            for i, (a, b) in enumerate(zip(pre, post, strict=True))]
    res = change.prepost(_table(rows)).iloc[0]
    tt = pg.ttest(pre, post, paired=True)
    pcol = "p_val" if "p_val" in tt else "p-val"
    # improvement on a 'lower is better' scale is pre - post
    assert res["t"] == pytest.approx(float(tt["T"].iloc[0]), rel=1e-10)
    assert res["p_t"] == pytest.approx(float(tt[pcol].iloc[0]), rel=1e-10)
    d = pre - post
    assert res["d_z"] == pytest.approx(d.mean() / d.std(ddof=1), rel=1e-12)
    d_av = d.mean() / ((pre.std(ddof=1) + post.std(ddof=1)) / 2)
    assert res["d_av"] == pytest.approx(d_av, rel=1e-12)
    # pingouin's paired Cohen d standardises by the root mean square of the two SDs,
    # Lakens' (2013, eq. 10) d_av by their mean; with equal SDs the two coincide.
    rms = np.sqrt((pre.std(ddof=1) ** 2 + post.std(ddof=1) ** 2) / 2)
    assert abs(pg.compute_effsize(pre, post, paired=True, eftype="cohen")) == pytest.approx(
        abs(res["d_av"]) * ((pre.std(ddof=1) + post.std(ddof=1)) / 2) / rms, rel=1e-10)
    wx = pg.wilcoxon(pre, post)
    assert res["p_wilcoxon"] == pytest.approx(float(wx[pcol].iloc[0]), rel=1e-10)
    # d_z CI: the t statistic's noncentrality CI divided by sqrt(n) brackets d_z
    assert res["d_z_ci_lower"] < res["d_z"] < res["d_z_ci_upper"]
    from scipy.stats import nct

    tval = res["d_z"] * np.sqrt(12)
    assert nct.cdf(tval, 11, res["d_z_ci_lower"] * np.sqrt(12)) == pytest.approx(0.975, abs=1e-8)


def test_prepost_small_n_warns():
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", 70 + i, 60 - i)
            for i in range(4)]
    with pytest.warns(change.SmallSampleWarning, match="Wilcoxon"):
        res = change.prepost(_table(rows))
    assert "cannot reach" in res["warning"].iloc[0]


def test_jacobson_plot_renders(dd):
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", 60 + i, 50 + 2 * i)
            for i in range(8)]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    fig = change.jacobson_plot(rc, construct="internalising")
    ax = fig.axes[0]
    assert len(ax.collections) >= 2  # band + points
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # cut-off lines


def test_norm_outside_its_age_range_is_not_used(dd):
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", pre, post)
            for i, (pre, post) in enumerate([(70, 55), (66, 63), (58, 70)])]
    t = _table(rows).assign(age=21.0, norm_group=None,
                            note="no verified norm covers the client's age: z not computed")
    rc = change.reliable_change(t, dictionary=dd)
    assert not rc["sd_source"].str.startswith("aseba_tscore").any()


def test_not_assessable_rows_claim_no_direction_or_significance(dd):
    rows = [("p", f"c{i}", "SDQ-S", "internalising", "internalising", "lower", 12 + i, 2 + i)
            for i in range(3)]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    assert (rc["category"] == "not assessable").all()
    assert rc["reliable"].isna().all()
    assert rc["direction"].isna().all(), rc["direction"].tolist()
    assert rc["clinically_significant"].isna().all(), rc["clinically_significant"].tolist()


def test_prepost_ci_survives_large_t_where_scipy_nct_cdf_is_nan():
    # With 7 pairs and a large change, scipy's nct.cdf returns NaN in the far tail; the CI
    # must still be found and bracket d_z, with the limits solving the defining equations.
    from scipy.stats import nct

    pre = np.array([70.0, 72, 68, 75, 71, 69, 74])
    post = pre - np.array([1.0, 2, 6, 5, 7, 4, 5])  # t = 5.30 on 6 df: old bracket hit NaN
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", a, b)
            for i, (a, b) in enumerate(zip(pre, post, strict=True))]
    res = change.prepost(_table(rows)).iloc[0]
    n = 7
    t = res["d_z"] * np.sqrt(n)
    assert res["d_z_ci_lower"] < res["d_z"] < res["d_z_ci_upper"]
    assert nct.cdf(t, n - 1, res["d_z_ci_lower"] * np.sqrt(n)) == pytest.approx(0.975, abs=1e-6)
    assert nct.cdf(t, n - 1, res["d_z_ci_upper"] * np.sqrt(n)) == pytest.approx(0.025, abs=1e-6)


def test_hedges_g_is_undefined_for_two_pairs():
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", 70 + i, 60 - 3 * i)
            for i in range(2)]
    with pytest.warns(change.SmallSampleWarning):
        res = change.prepost(_table(rows)).iloc[0]
    assert np.isfinite(res["d_av"]) and np.isnan(res["g_av"])


def _two_panel_table(dd) -> pd.DataFrame:
    rows = [("p", f"c{i}", "YSR", "internalising_t", "internalising", "lower", 60 + i, 50 + 2 * i)
            for i in range(8)]
    rc = change.reliable_change(_table(rows), dictionary=dd)
    return pd.concat([rc, rc.assign(scale="second_t")], ignore_index=True)


def test_jacobson_plot_draws_every_panel_into_given_figure_or_axes(dd):
    import matplotlib.pyplot as plt

    from effectstudy.errors import SpecError

    rc = _two_panel_table(dd)
    fig = plt.figure()
    try:
        assert change.jacobson_plot(rc, construct="internalising", fig=fig) is fig
        assert len(fig.axes) == 2
        assert all(len(ax.collections) >= 2 for ax in fig.axes)  # band + points in each panel
    finally:
        plt.close(fig)
    fig, axes = plt.subplots(1, 2)
    try:
        out = change.jacobson_plot(rc, construct="internalising", ax=axes, marker="s")
        assert out is fig
        for ax in axes:
            points = [c for c in ax.collections if c.get_label() in change.CATEGORIES]
            assert points and all(len(c.get_offsets()) > 0 for c in points)
        # one Axes for two panels: an error, never a silently shortened plot
        with pytest.raises(SpecError, match="2 panel"):
            change.jacobson_plot(rc, construct="internalising", ax=axes[0])
        with pytest.raises(SpecError, match="not both"):
            change.jacobson_plot(rc, construct="internalising", ax=axes, fig=fig)
    finally:
        plt.close(fig)


def test_bad_choices_and_confidence_are_spec_errors(dd):
    from effectstudy.errors import SpecError

    rows = [("p", "c1", "YSR", "internalising_t", "internalising", "lower", 60, 50)]
    with pytest.raises(SpecError, match="method"):
        change.reliable_change(_table(rows), dictionary=dd, method="jt")
    with pytest.raises(SpecError, match="sd must be one of"):
        change.reliable_change(_table(rows), dictionary=dd, sd="pooled")
    for bad in (0, 1, 95, -0.5):
        with pytest.raises(SpecError, match="confidence"):
            change.proportion_ci(3, 10, confidence=bad)
    assert isinstance(SpecError("x"), ValueError)
