"""The dropout and safety section (issue 13, section 4): computed once by the study layer,
rendered from the saved results in Dutch and English, public counts protected."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from effectstudy import missing, study, survival
from effectstudy.harmonise import time_to_first_absconding
from effectstudy.report.analyses import Context, run_sections
from effectstudy.report.dropout import at_risk, dropout_section
from effectstudy.report.i18n import use_language
from effectstudy.study.dropout import causes, exposure_table, growth_table
from small_counts import section_text

SPEC = {
    "title": "dropout test",
    "seed": 2026,
    "suppression": {"threshold": 5, "suppress_zero": True},
    "multilevel": {"construct": "internalising", "formula": "z ~ week + (1 + week | client)",
                   "ddf": "kenward-roger"},
    "dropout": {"event": "absconded", "m": 3, "deltas": [0.0, 1.0], "burn_in": 60, "thin": 5},
}
SMALL_N = re.compile(r"\bn\s*=\s*[0-4](?![\d]|[.,]\d)|\b[0-4] (?:clients|girls|cases|cliënten|"
                     r"meisjes)\b")


@pytest.fixture(scope="module")
def demo(demo_data, tmp_path_factory):
    # the shared harmonised demo (tests/conftest.py); this module's own, smaller spec
    h = demo_data.harmonised
    root = tmp_path_factory.mktemp("dropout")
    res = study.run(SPEC, h)
    res.save(root / "results")
    return h, study.StudyResults.load(root / "results")


def _ttf(h):
    ttf = time_to_first_absconding(h).merge(h.clients[["programme", "client", "end_reason"]],
                                            on=["programme", "client"], how="left")
    return ttf[ttf["weeks"] > 0].reset_index(drop=True)


def _frame(res, name):
    return res.frame(name).reset_index(drop=True)


def test_survival_numbers_equal_direct_calls(demo):
    h, res = demo
    assert res.meta["dropout"]["source"] == "events"
    ttf = _ttf(h)
    km = survival.kaplan_meier(ttf, time="weeks", event="absconded", by="programme")
    pd.testing.assert_frame_equal(_frame(res, "dropout_km"), km.curve.reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)
    lr = survival.logrank(ttf, time="weeks", event="absconded", by="programme")
    assert _frame(res, "dropout_logrank")["statistic"].iloc[0] == pytest.approx(lr.statistic,
                                                                               rel=1e-12)
    assert _frame(res, "dropout_logrank")["df"].iloc[0] == 5
    ci = survival.cumulative_incidence(ttf.assign(cause=causes(ttf)), time="weeks", event="cause",
                                       event_of_interest=1, by="programme")
    pd.testing.assert_frame_equal(_frame(res, "dropout_cif"), ci.to_frame().reset_index(drop=True),
                                  check_dtype=False, rtol=1e-12)
    # recurrent episodes in care, counted independently of the study layer
    ev = h.events[(h.events["type"] == "absconding") & (h.events["start_week"] >= 0)]
    rates = _frame(res, "dropout_rates").set_index("programme")
    cl = h.clients[h.clients["weeks_in_care"] > 0]
    for pid, grp in cl.groupby("programme"):
        keys = set(zip(grp["programme"], grp["client"], strict=True))
        k = sum((p, c) in keys for p, c in zip(ev["programme"], ev["client"], strict=True))
        assert rates.loc[pid, "events"] == k
        assert rates.loc[pid, "exposure"] == pytest.approx(grp["weeks_in_care"].sum())
        lo, hi = survival.competing.poisson_ci(k)
        assert rates.loc[pid, "ci_upper"] == pytest.approx(100 * hi / grp["weeks_in_care"].sum())
    assert len(exposure_table(h.clients, h.events)) == len(cl)


def test_cox_equals_a_direct_fit(demo):
    h, res = demo
    ttf = _ttf(h).assign(age_c=lambda d: d["age"] - 16.0).dropna(
        subset=["age_c", "prior_absconding"])
    fit = survival.cox(ttf, time="weeks", event="absconded",
                       covariates=["age_c", "prior_absconding"])
    got = _frame(res, "dropout_cox")
    assert list(got["term"]) == ["age_c", "prior_absconding"]
    np.testing.assert_allclose(got["estimate"], fit.coefficients()["estimate"], rtol=1e-10)
    info = res.meta["dropout"]["cox"]
    assert info["events_per_variable"] == pytest.approx(ttf["absconded"].sum() / 2)
    assert info["firth"] is False


def test_growth_under_imputation_and_tipping_point_equal_direct_calls(demo):
    h, res = demo
    tab = growth_table(h.table, "internalising")
    # one score per client and occasion label
    assert not tab.duplicated(["programme", "client", "occasion_label"]).any()
    analysis = missing.growth_analysis("z ~ week + (1 + week | client)", term="week",
                                       ddf="kenward-roger")
    observed = analysis(tab)
    mi = missing.impute(tab, outcome="z", time="week", occasion="occasion_label", m=3,
                        rng=np.random.default_rng(2026), burn_in=60, thin=5)
    pooled = missing.analyse_imputed(analysis, mi)
    got = _frame(res, "dropout_mi").set_index("data")
    assert got.loc["observed", "estimate"] == pytest.approx(observed["estimate"].iloc[0], rel=1e-9)
    assert got.loc["imputed", "estimate"] == pytest.approx(pooled["estimate"].iloc[0], rel=1e-9)
    assert got.loc["imputed", "ci_upper"] == pytest.approx(pooled["ci_upper"].iloc[0], rel=1e-9)
    tp = missing.tipping_point(tab, h.clients, outcome="z", time="week", deltas=[0.0, 1.0],
                               analysis=analysis, term="week", occasion="occasion_label",
                               better="lower", imputed=mi)
    np.testing.assert_allclose(_frame(res, "dropout_tipping")["estimate"],
                               tp.to_frame()["estimate"], rtol=1e-9)
    info = res.meta["dropout"]["missing"]
    assert info["tipping_delta"] == tp.tipping_delta
    assert info["m"] == 3 and info["deltas"] == [0.0, 1.0]


def test_fallback_to_the_client_table_says_so(demo):
    h, _ = demo
    spec = {k: v for k, v in SPEC.items() if k != "multilevel"}
    res = study.run(spec, (h.table, h.clients))
    info = res.meta["dropout"]
    assert info["source"] == "clients" and info["messages"]
    d = h.clients.dropna(subset=["weeks_in_care"])
    d = d[d["weeks_in_care"] > 0]
    assert int(_frame(res, "dropout_n")["events"].sum()) == int((d["end_reason"] == "absconded")
                                                                .sum())
    assert "dropout_rates" not in res.frames  # no episodes without an events table
    with use_language("en"):
        sec = dropout_section(Context(res, "internal"))
    assert any("No absconding episodes were recorded" in b.content for b in sec.blocks
               if b.kind == "text")


_texts = section_text


@pytest.mark.parametrize("lang,title,word", [("nl", "Uitval en veiligheid", "weglopen"),
                                             ("en", "Dropout and safety", "absconding")])
def test_section_renders_in_both_languages(demo, lang, title, word):
    _, res = demo
    for audience in ("public", "internal"):
        with use_language(lang):
            secs = run_sections(res, audience)
        sec = next(s for s in secs if s.id == "dropout")
        assert sec.title == title
        text = _texts(sec)
        assert word in text
        kinds = [b.kind for b in sec.blocks]
        # KM, cumulative incidence (internal only: beside KM it gives the other ends of
        # care), tipping point
        assert kinds.count("figure") >= (2 if audience == "public" else 3)
        assert not re.search(r"dropout_safety\.", text)


def test_public_at_risk_counts_and_small_programmes(demo):
    _, res = demo
    counts = _frame(res, "dropout_n").set_index("programme")["clients"]
    small = sorted(p for p, n in counts.items() if n < 5)
    assert small  # the demo has programmes below the threshold: the test has teeth
    with use_language("en"):
        pub = dropout_section(Context(res, "public"))
        internal = dropout_section(Context(res, "internal"))
        names = {p: Context(res, "public").programme_name(p) for p in counts.index}
    tables = [b.content for b in pub.blocks if b.kind == "table"]
    risk = next(tb for tb in tables if any(c.startswith("week ") for c in tb.columns))
    shown = set(risk["Programme" if "Programme" in risk else risk.columns[0]])
    assert not shown & {names[p] for p in small}  # small programmes not drawn, not tabled
    assert "week 0" not in risk.columns
    km = _frame(res, "dropout_km")
    seen_small = False
    for _, row in risk.iterrows():
        pid = next(p for p, n in names.items() if n == row.iloc[0])
        for col in risk.columns[1:]:
            exact = at_risk(km[km["programme"] == pid], float(col.split()[1]))
            cell = row[col]
            if exact < 5:
                assert cell == "<5", (pid, col, cell)
                seen_small = True
            elif cell not in ("x",):
                assert int(cell) == exact
    assert seen_small  # some at-risk count fell below the threshold and was hidden
    text = _texts(pub)
    assert all(names[p] in text for p in small)  # said which are not drawn ("fewer than 5")
    assert not SMALL_N.findall(text)
    # public rates: only where clients and episodes reach the threshold; no episode counts
    rates = next(tb for tb in tables if "episodes per 100 weeks in care" in tb.columns)
    assert "episodes" not in rates.columns and "weeks in care" not in rates.columns
    exact = _frame(res, "dropout_rates").set_index("programme")
    for _, row in rates.iterrows():
        pid = next(p for p, n in names.items() if n == row.iloc[0])
        visible = not row["episodes per 100 weeks in care"].startswith("not shown")
        assert visible == (exact.loc[pid, "events"] >= 5 and counts[pid] >= 5)
    # the internal report shows the exact counts and every programme
    internal_tables = [b.content for b in internal.blocks if b.kind == "table"]
    irisk = next(tb for tb in internal_tables if "week 0" in tb.columns)
    assert len(irisk) == len(counts)
    assert "<5" not in irisk.to_string()


def test_public_curves_stop_below_the_threshold(demo):
    """The public KM figure is drawn from steps with at least 5 at risk only, each step
    grouping at least 5 events: the renderer's step helper drops the rest, rounds times up
    to whole weeks and values to two decimals."""
    from effectstudy.report.dropout import _public_steps

    _, res = demo
    km = _frame(res, "dropout_km")
    big = _frame(res, "dropout_n").query("clients >= 5")["programme"]
    drawn = 0
    for pid in big:
        g = km[km["programme"] == pid].sort_values("time")
        ok = g[g["n_risk"] >= 5]
        steps = _public_steps(g, "survival", 5)
        assert len(steps) <= int(ok["n_event"].sum()) // 5
        assert (steps["time"] <= np.ceil(ok["time"].max())).all()
        assert (steps["time"] == np.round(steps["time"])).all()
        assert steps["survival"].isin(ok["survival"].round(2)).all()
        drawn += len(steps)
    assert drawn >= 1


def test_dossier_shows_its_own_programme_only(demo):
    _, res = demo
    counts = _frame(res, "dropout_n").set_index("programme")["clients"]
    big = next(p for p, n in counts.items() if n >= 5)
    small = next(p for p, n in counts.items() if n < 5)
    with use_language("nl"):
        ctx = Context(res, "public", big)
        sec = dropout_section(ctx)
        others = [Context(res, "public").programme_name(p) for p in counts.index if p != big]
        text = _texts(sec)
        assert not [o for o in others if o in text]
        assert "programma-overstijgende rapport" in text
        assert not any("Cox" in str(b.caption) for b in sec.blocks)
        small_sec = dropout_section(Context(res, "public", small))
    assert not [b for b in small_sec.blocks if b.kind == "figure"]
    assert "minder dan 5 cliënten" in _texts(small_sec)
