"""Programme integrity (issue 12): validation, adherence, fidelity score, dose and tailoring.

Hand-computed values on tiny logs, bad-input rows, the crossed fidelity model against the
psych::ICC reference (``icc_raters``), and a quick recovery check on the integrity generator
(the full 200-seed version is ``benchmarks/fidelity_recovery.py``).
"""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from effectstudy.dictionary import load_integrity  # noqa: E402
from effectstudy.errors import DataError  # noqa: E402
from effectstudy.fidelity import (  # noqa: E402
    adherence,
    cumulative_dose,
    dose_response,
    fidelity_moderator,
    fidelity_score,
    tailoring,
    validate_logs,
    validate_ratings,
)
from effectstudy.harmonise.log import LOG_COLUMNS  # noqa: E402
from effectstudy.synth_integrity import generate_integrity  # noqa: E402
from refdata import REFERENCE  # noqa: E402

STUDY = REFERENCE / "study"
COLS = ["programme", "client", "week", "phase", "component", "delivered", "minutes"]


@pytest.fixture(scope="module")
def integ():
    return load_integrity()


@pytest.fixture(scope="module")
def synth(integ):
    return generate_integrity(integ, seed=11)


def _tiny_log() -> pd.DataFrame:
    """Veilig Lima, two clients. See test_adherence_by_hand for the counts."""
    rows = [
        # client A reaches fase_1 and fase_2
        ("veilig_lima", "A", 1, "fase_1", "psychoeducation", 1, 60.0),
        ("veilig_lima", "A", 2, "fase_1", "psychoeducation", 0, 0.0),
        ("veilig_lima", "A", 1, "fase_1", "system_work", 1, 45.0),
        ("veilig_lima", "A", 3, "fase_2", "system_work", 1, 30.0),
        # tailored trauma treatment (phase fase_3) given in fase_2: prescribed, not in its phase
        ("veilig_lima", "A", 3, "fase_2", "trauma_treatment", 1, 50.0),
        # client B reaches fase_1 only
        ("veilig_lima", "B", 1, "fase_1", "psychoeducation", 1, 60.0),
        ("veilig_lima", "B", 2, "fase_1", "system_work", 1, 40.0),
    ]
    return pd.DataFrame(rows, columns=COLS)


# --------------------------------------------------------------------------- #
# adherence by hand
# --------------------------------------------------------------------------- #
def test_adherence_by_hand(integ):
    res = adherence(_tiny_log(), integ)
    cl = res.clients.set_index("client")
    # A: prescribed psychoeducation, system_work (all), resilience_training (fase_2, no rows),
    #    trauma_treatment (tailored, has a row) = 4; delivered in phase: psychoeducation, system_work
    assert cl.loc["A", "prescribed"] == 4 and cl.loc["A", "delivered"] == 2
    assert cl.loc["A", "adherence"] == pytest.approx(0.5)
    # dose received counts every delivered row: 4 sessions, 185 minutes, weeks {1, 3}
    assert (cl.loc["A", "sessions"], cl.loc["A", "minutes"], cl.loc["A", "weeks_exposed"]) == (4, 185, 2)
    assert cl.loc["A", "weeks_logged"] == 3
    # B: psychoeducation and system_work, both delivered
    assert (cl.loc["B", "prescribed"], cl.loc["B", "delivered"]) == (2, 2)
    assert (cl.loc["B", "sessions"], cl.loc["B", "minutes"], cl.loc["B", "weeks_exposed"]) == (2, 100, 2)
    # client intervals: exact binomial (scipy's binomtest, an independent implementation)
    ci = stats.binomtest(2, 4).proportion_ci(0.95, method="exact")
    assert cl.loc["A", "ci_lower"] == pytest.approx(ci.low, abs=1e-10)
    assert cl.loc["A", "ci_upper"] == pytest.approx(ci.high, abs=1e-10)
    # programme: 4 of 6; Korn-Graubard by hand
    prog = res.programmes.set_index("programme").loc["veilig_lima"]
    assert prog["adherence"] == pytest.approx(4 / 6)
    p, total, m = 4 / 6, 6.0, 2
    v = m / (m - 1) * ((2 - 4 * p) ** 2 + (2 - 2 * p) ** 2) / total**2
    n_eff = min(total, p * (1 - p) / v) * (stats.norm.ppf(0.975) / stats.t.ppf(0.975, m - 1)) ** 2
    assert prog["effective_n"] == pytest.approx(n_eff)
    assert prog["ci_lower"] == pytest.approx(stats.beta.ppf(0.025, p * n_eff, n_eff - p * n_eff + 1))
    assert prog["ci_upper"] == pytest.approx(stats.beta.ppf(0.975, p * n_eff + 1, n_eff - p * n_eff))
    assert prog["sessions_mean"] == pytest.approx(3.0)
    comp = res.components.set_index("component")
    assert (comp.loc["psychoeducation", "prescribed"], comp.loc["psychoeducation", "delivered"]) == (2, 2)
    assert comp.loc["resilience_training", "share"] == 0.0
    assert comp.loc["trauma_treatment", "delivery"] == "tailored"


def test_confidence_changes_the_interval(integ):
    log = _tiny_log()
    wide = adherence(log, integ, confidence=0.99).clients.set_index("client")
    narrow = adherence(log, integ, confidence=0.8).clients.set_index("client")
    assert wide.loc["A", "ci_lower"] < narrow.loc["A", "ci_lower"]
    assert wide.loc["A", "ci_upper"] > narrow.loc["A", "ci_upper"]


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
SECRET = "Jansen 0612345678"


def test_bad_log_rows_go_to_the_rejection_log(integ):
    log = _tiny_log()
    bad = pd.DataFrame([
        ("veilig_lima", "A", 2, "fase_1", SECRET, 1, 20.0),              # unknown component
        ("veilig_lima", "A", 2, "fase_1", "system_work", 1, -5.0),       # negative minutes
        ("veilig_lima", "B", 9, "fase_1", "system_work", 1, 30.0),       # after B's time in care
        ("veilig_lima", "B", 1, SECRET, "system_work", 1, 30.0),         # unknown phase
        ("veilig_lima", "B", 1, "fase_1", "system_work", "ja", 30.0),    # not a number
        ("nowhere", "B", 1, "fase_1", "system_work", 1, 30.0),           # unknown programme
    ], columns=COLS)
    full = pd.concat([log, bad], ignore_index=True)
    clients = pd.DataFrame({"client": ["A", "B"], "weeks_in_care": [10, 4]})
    clean, rej = validate_logs(full, integ, clients=clients, file="vl_log.csv")
    assert list(rej.columns) == list(LOG_COLUMNS)
    assert len(clean) == len(log)
    assert list(rej["kind"]) == ["component_not_in_programme", "delivery_out_of_range",
                                 "delivery_outside_care", "unknown_phase", "non_numeric",
                                 "integrity_unknown_programme"]
    # rows: the first data row is row 2 (header row 1)
    assert list(rej["row"]) == [len(log) + 2 + i for i in range(6)]
    assert list(rej["column"]) == ["component", "minutes", "week", "phase", "delivered", "programme"]
    assert (rej["file"] == "vl_log.csv").all() and (rej["scores"] == 1).all()
    text = rej.astype(str).to_string()
    assert "Jansen" not in text and "0612345678" not in text and "nowhere" not in text
    assert rej.loc[rej["kind"] == "delivery_out_of_range", "value"].iloc[0] == "-5"
    # adherence refuses a log that validate_logs would reject, without repeating its text
    with pytest.raises(DataError) as err:
        adherence(full, integ)
    assert "Jansen" not in str(err.value)


def test_missing_columns_and_bad_ratings(integ):
    with pytest.raises(DataError, match="minutes"):
        validate_logs(_tiny_log().drop(columns="minutes"), integ)
    ratings = pd.DataFrame([
        ("veilig_lima", "M1", "R1", "system_sessions", 7),
        ("veilig_lima", "M1", "R1", "system_sessions", 8),     # duplicate
        ("veilig_lima", "M1", "R2", SECRET, 8),                # not on the checklist
        ("veilig_lima", "M1", "R2", "system_sessions", 11),    # outside 0-10
        ("veilig_lima", None, "R2", "system_sessions", 5),     # no target
    ], columns=["programme", "target", "rater", "item", "score"])
    clean, rej = validate_ratings(ratings, integ)
    assert len(clean) == 1
    assert list(rej["kind"]) == ["duplicate", "item_not_on_checklist", "rating_out_of_range",
                                 "rating_missing_id"]
    from effectstudy.harmonise.log import KINDS

    assert set(rej["kind"]) <= set(KINDS)  # the harmoniser logs them as they are
    assert "Jansen" not in rej.astype(str).to_string()


# --------------------------------------------------------------------------- #
# fidelity score: crossed random effects vs the psych::ICC reference
# --------------------------------------------------------------------------- #
def _reference_ratings() -> pd.DataFrame:
    path = STUDY / "data" / "fidelity_ratings_20261130.csv"
    if not path.exists():
        pytest.skip("reference data missing")
    data = pd.read_csv(path)
    return pd.DataFrame({"programme": "veilig_lima", "target": data["session"],
                         "rater": data["rater"], "item": "system_sessions", "score": data["rating"]})


def _reference_value(icc_type: str) -> float:
    exp = pd.read_csv(STUDY / "expected_study.csv")
    row = exp[(exp["family"] == "icc_raters") & (exp["group"] == icc_type) & (exp["quantity"] == "icc")]
    return float(row["value"].iloc[0])


def anova_se_df(y: np.ndarray) -> tuple[float, float]:
    """SE of the grand mean of a balanced target x rater matrix ``y`` and its df, by hand.

    Two-way random-effects ANOVA: var(mean) = (MS_T + MS_R - MS_E) / (T R), with
    Satterthwaite's df for that combination of mean squares.
    """
    n_t, n_r = y.shape
    grand = y.mean()
    ms_t = n_r * ((y.mean(axis=1) - grand) ** 2).sum() / (n_t - 1)
    ms_r = n_t * ((y.mean(axis=0) - grand) ** 2).sum() / (n_r - 1)
    resid = y - y.mean(axis=1, keepdims=True) - y.mean(axis=0, keepdims=True) + grand
    ms_e = (resid**2).sum() / ((n_t - 1) * (n_r - 1))
    comb = ms_t + ms_r - ms_e
    df = comb**2 / (ms_t**2 / (n_t - 1) + ms_r**2 / (n_r - 1)
                    + ms_e**2 / ((n_t - 1) * (n_r - 1)))
    return float(np.sqrt(comb / (n_t * n_r))), float(df)


def test_fidelity_score_variance_components_give_psych_icc2(integ):
    ratings = _reference_ratings()
    res = fidelity_score(ratings, integ, scale="raw").scores.iloc[0]
    icc2 = res["var_target"] / (res["var_target"] + res["var_rater"] + res["var_residual"])
    # balanced crossed design: REML components = two-way ANOVA components (Shrout & Fleiss ICC(2,1))
    assert icc2 == pytest.approx(_reference_value("ICC2"), abs=1e-6)
    # the score is the grand mean; its SE includes the rater variance
    assert res["score"] == pytest.approx(ratings["score"].mean(), abs=1e-8)
    # balanced two-way ANOVA by hand: var(mean) = (MS_T + MS_R - MS_E) / (T R) with
    # Satterthwaite's df; the rater mean square is part of it (rater variance included)
    se, df = anova_se_df(ratings.pivot(index="target", columns="rater",
                                       values="score").to_numpy(float))
    assert res["se"] == pytest.approx(se, rel=1e-5)
    assert res["df"] == pytest.approx(df, rel=1e-4)
    share = fidelity_score(ratings, integ).scores.iloc[0]
    assert share["score"] == pytest.approx(res["score"] / 10)


def test_fidelity_score_bad_input(integ):
    ratings = _reference_ratings()
    with pytest.raises(DataError, match="one rater"):
        fidelity_score(ratings[ratings["rater"] == ratings["rater"].iloc[0]], integ)
    const = ratings.assign(score=5.0)
    with pytest.raises(DataError, match="constant"):
        fidelity_score(const, integ)
    # a target rated by only some raters is kept and counted
    partial = ratings.drop(index=ratings.index[0])
    assert fidelity_score(partial, integ).scores.iloc[0]["incomplete_targets"] == 1


# --------------------------------------------------------------------------- #
# generator, dose, tailoring, moderator
# --------------------------------------------------------------------------- #
def test_generator_raw_and_harmonised_forms(synth):
    raw_ids = set(synth.logs_raw["client_id"].astype(str))
    assert not raw_ids & set(synth.logs.astype(str).to_numpy().ravel())
    assert synth.logs["client"].str.match(r"^[A-Z]{1,4}-[0-9a-f]{20}$").all()
    assert set(synth.truth["programme"]) == set(synth.logs["programme"])
    assert synth.truth["adherence"].between(0.55, 0.92).all()
    # the rounded/clipped expectation stays close to the latent fidelity on a 0-10 scale
    ten = synth.truth[synth.truth["programme"] != "egoversterkend"]
    assert (ten["fidelity_expected"] - ten["fidelity_latent"]).abs().max() < 0.02


def test_cumulative_dose_by_hand():
    log = _tiny_log()
    table = pd.DataFrame({"client": ["A", "A", "A", "B"], "time": [0.0, 1.0, 3.0, 2.0]})
    out = cumulative_dose(table, log)
    assert list(out["dose"]) == [0.0, 2.0, 4.0, 2.0]
    mins = cumulative_dose(table, log, unit="minutes")
    assert list(mins["dose"]) == [0.0, 105.0, 185.0, 100.0]


def test_dose_response_recovers_slope_and_plots(synth):
    res = dose_response(synth.outcomes, synth.logs)
    slope = synth.params["dose_slope"]
    assert res.dose["ci_lower"] <= slope <= res.dose["ci_upper"]
    assert res.dose["df"] > 0 and res.dose["ci_upper"] < 0
    assert set(res.by_group["dose_group"]) == {"dose 1/3", "dose 2/3", "dose 3/3"}
    # more dose, steeper decline: the high-dose group's time slope is the most negative
    bg = res.by_group.set_index("dose_group")["estimate"]
    assert bg["dose 3/3"] < bg["dose 1/3"]
    assert isinstance(res.plot(), Figure)


def test_adherence_plots_return_figures(synth, integ):
    res = adherence(synth.logs, integ)
    assert isinstance(res.profile_plot(), Figure)
    assert isinstance(res.drift_plot(), Figure)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    assert res.profile_plot(ax=ax, cmap="magma") is fig
    plt.close("all")


def test_tailoring_counts_tests_and_adjusts(synth, integ):
    res = tailoring(synth.logs, synth.outcomes, integ, adjust="bonferroni")
    assert res.n_tests == len(res.tests) > 0
    assert f"{res.n_tests} tests" in res.notes[0] and "Exploratory" in res.notes[0]
    expected = np.minimum(1.0, res.tests["p_value"] * res.n_tests)
    assert np.allclose(res.tests["p_adjusted"], expected)
    tailored = {c.id for cs in integ.components.values() for c in cs if c.delivery == "tailored"}
    assert set(res.matrix.columns) == {"client", "programme"} | tailored
    # received <= prescribed <= clients, per programme and component
    s = res.summary
    assert (s["received"] <= s["prescribed"]).all() and (s["prescribed"] <= s["n_clients"]).all()
    with pytest.raises(DataError):
        tailoring(synth.logs, synth.outcomes, integ, adjust="magic")


def test_fidelity_moderator_is_honest_about_six_programmes(synth, integ):
    scores = fidelity_score(synth.ratings, integ).scores
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fidelity_moderator(synth.outcomes, scores, power_programmes=(6, 48), nsim=6,
                                 rng=np.random.default_rng(3))
    assert res.n_programmes == 6
    assert res.moderator["df"] <= 4 + 1e-6          # KR df of a programme-level term
    assert "cannot be established" in res.sentence and "6 programmes" in res.sentence
    assert "time:fidelity" in set(res.cr2["term"])
    assert list(res.power["programmes"]) == [6, 48]
    assert res.power["power"].between(0, 1).all()
    assert res.programmes_for_80 in (None, 6, 48)


# --------------------------------------------------------------------------- #
# quick recovery (the 200-seed version: benchmarks/fidelity_recovery.py)
# --------------------------------------------------------------------------- #
def test_adherence_recovery_quick(integ):
    covered = total = 0
    for seed in range(100, 115):
        s = generate_integrity(integ, seed=seed, n_clients=8)
        got = adherence(s.logs, integ).programmes.merge(s.truth, on="programme")
        covered += int(((got["ci_lower"] <= got["adherence_y"])
                        & (got["adherence_y"] <= got["ci_upper"])).sum())
        total += len(got)
    # 90 intervals; with true coverage 0.95 fewer than 80 covered has probability < 0.2%
    assert total == 90
    assert covered >= 80, f"adherence covered {covered}/{total}"
