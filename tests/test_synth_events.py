"""The event generator's truth is recovered by effectstudy.survival (issue 13).

The hazard model of :mod:`effectstudy.synth_events` is simulated for many clients over a
handful of seeds; Cox regression (Efron ties) must cover the true log hazard ratios of
age and earlier absconding with its 95% intervals, and the exact Poisson interval of
the rate of first absconding must cover the true baseline hazard. The informative
missingness must drop the scores of the worse-off clients more often.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effectstudy import synth_events as se
from effectstudy.survival import cox, event_rate
from effectstudy.synth import generate

SEEDS = (11, 12, 13, 14, 15)


def _first_absconding(seed: int, n: int, *, fixed_age: float | None = None,
                      prior: bool | None = None, hazard: float = 0.02) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        age = float(rng.uniform(12, 22)) if fixed_age is None else fixed_age
        weeks = float(rng.uniform(20, 80))
        evs = se.simulate_client_events("x", age, weeks, "completed", rng, hazard=hazard,
                                        prior=prior)
        starts = [e["start_day"] / 7 for e in evs
                  if e["type"] == "absconding" and e["in_care"] and not e["terminal"]]
        had_prior = any(e["type"] == "absconding" and not e["in_care"] for e in evs)
        t = min(starts) if starts else weeks
        rows.append({"weeks": t, "absconded": int(bool(starts)), "age_c": age - se.AGE_CENTRE,
                     "prior": float(had_prior)})
    return pd.DataFrame(rows)


def test_cox_recovers_the_true_log_hazard_ratios():
    covered = {"age_c": 0, "prior": 0}
    estimates = {"age_c": [], "prior": []}
    truth = {"age_c": se.LOG_HR_AGE, "prior": se.LOG_HR_PRIOR}
    for seed in SEEDS:
        data = _first_absconding(seed, 700)
        assert 150 < data["absconded"].sum() < 600  # enough events, not all
        fit = cox(data, time="weeks", event="absconded", covariates=["age_c", "prior"])
        co = fit.coefficients().set_index("term")
        for term, true in truth.items():
            lo, hi = np.log(co.loc[term, "hr_ci_lower"]), np.log(co.loc[term, "hr_ci_upper"])
            covered[term] += lo < true < hi
            estimates[term].append(co.loc[term, "estimate"])
    for term, true in truth.items():
        # 95% intervals: at least 4 of 5 seeds cover the truth, and no drift on average
        assert covered[term] >= len(SEEDS) - 1, (term, covered[term])
        assert abs(np.mean(estimates[term]) - true) < 0.1, (term, estimates[term])
    # the check can fail: a model without the prior effect is far off
    assert abs(np.mean(estimates["prior"])) > 0.4


@pytest.mark.parametrize("seed", SEEDS)
def test_rate_of_first_absconding_recovers_the_baseline_hazard(seed):
    h0 = 0.025
    data = _first_absconding(seed, 400, fixed_age=se.AGE_CENTRE, prior=False, hazard=h0)
    res = event_rate(data, events="absconded", exposure="weeks", per=100).to_frame()
    assert res["ci_lower"].iloc[0] < 100 * h0 < res["ci_upper"].iloc[0]
    # and a clearly different hazard is excluded (the check can fail)
    assert not res["ci_lower"].iloc[0] < 100 * 2 * h0 < res["ci_upper"].iloc[0]


def test_episodes_never_overlap_and_never_have_zero_duration():
    rng = np.random.default_rng(3)
    for _ in range(300):
        evs = se.simulate_client_events("pinq_crisis", float(rng.uniform(12, 23)),
                                        float(rng.uniform(2, 90)), "absconded", rng)
        eps = sorted((e for e in evs if e["type"] == "absconding"), key=lambda e: e["start_day"])
        for a, b in zip(eps, eps[1:], strict=False):
            assert a["end_day"] is not None and a["end_day"] < b["start_day"]
        for e in eps:
            assert e["end_day"] is None or e["end_day"] > e["start_day"]
        assert eps[-1]["terminal"] and eps[-1]["end_day"] is None


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return [generate(tmp_path_factory.mktemp(f"s{s}"), seed=s, inject_errors=False)
            for s in (2026, 7)]


def test_generate_returns_events_and_true_hazards(runs):
    for res in runs:
        truth = res.event_truth
        assert truth["baseline_hazard_per_week"] == se.BASELINE_HAZARD
        assert truth["log_hr_prior"] == pytest.approx(np.log(2))
        ev = res.events
        assert set(ev["programme"]) == set(res.clients["programme"])
        # clients whose care ended by absconding have a terminal episode on their last day
        ended = res.clients[res.clients["end_reason"] == "absconded"]
        term = ev[ev["terminal"]]
        assert set(term["client_id"]) <= set(ended["client_id"])
        assert len(term) >= 0.5 * len(ended)


def test_scores_after_absconding_go_missing_not_at_random(runs):
    dropped = pd.concat([r.dropped_scores for r in runs])
    assert len(dropped) > 30
    kept = []
    for res in runs:
        ev = res.events
        first = (ev[(ev["type"] == "absconding") & ev["in_care"] & ~ev["terminal"]]
                 .groupby("client_id")["start_date"].min())
        t = res.truth[res.truth["client_id"].isin(first.index)]
        after = t[(t["occasion"] != "intake")
                  & (t["date"] > t["client_id"].map(first).astype("datetime64[ns]"))]
        kept.append(after)
    kept = pd.concat(kept)
    assert len(kept) > 30
    # the dropped (unobserved) scores are worse off than those still observed
    assert dropped["severity"].mean() > kept["severity"].mean() + 0.2
    # and the generator's stated probability is the model's
    p = 1 / (1 + np.exp(-(se.MNAR_INTERCEPT + se.MNAR_SLOPE * dropped["severity"])))
    np.testing.assert_allclose(dropped["p_drop"], p)
