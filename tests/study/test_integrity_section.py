"""The integrity section: numbers saved by the study layer, rendered in nl and en.

The expected numbers are direct calls of :mod:`effectstudy.fidelity` on the same
harmonised data (an outcome table built here, not by the study layer).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from effectstudy import fidelity, study
from effectstudy.dictionary import load_integrity
from effectstudy.report.analyses import Context
from effectstudy.report.i18n import catalogue, use_language
from effectstudy.report.integrity import HIDDEN, integrity_section
from small_counts import section_text

SMALL_N = re.compile(r"\bn\s*=\s*[0-4](?![\d]|[.,]\d)|\b[0-4] (?:clients|girls|cases|meisjes)\b")
PSEUDONYM = re.compile(r"\b[A-Z]{1,4}-[0-9a-f]{20}\b")


@pytest.fixture(scope="module")
def demo(demo_data, demo_saved):
    # the integrity section of the shared demo study (tests/conftest.py), as saved and loaded
    return demo_data.harmonised, study.StudyResults.load(demo_saved.results)


def _outcome(h) -> pd.DataFrame:
    t = h.table
    t = t[(t["construct"] == "trauma_symptoms") & (t["instrument"] == "CRIES-13")
          & (t["scale"] == "total") & t["raw"].notna() & t["session"].isna()]
    return pd.DataFrame({"programme": t["programme"].astype(str).to_numpy(),
                         "client": t["client"].astype(str).to_numpy(),
                         "time": t["week"].astype(float).to_numpy(),
                         "outcome": t["raw"].astype(float).to_numpy()})


def _logs(h) -> pd.DataFrame:
    return h.delivery[["programme", "client", "week", "phase", "component", "delivered",
                       "minutes"]].reset_index(drop=True)


def test_saved_numbers_equal_direct_fidelity_calls(demo):
    h, res = demo
    integ = load_integrity()
    assert "integrity" in res.sections and res.meta["integrity"]["status"] == "computed"
    assert res.meta["integrity"]["outcome"] == "CRIES-13/total"
    adh = fidelity.adherence(_logs(h), integ, block=4)
    got = res.frames["integrity_adherence"].set_index("programme")
    want = adh.programmes
    want = want.set_index("programme") if "programme" in want else want
    assert sorted(got.index) == sorted(h.delivery["programme"].unique())
    for col in ("n_clients", "adherence", "ci_lower", "ci_upper", "sessions_mean"):
        np.testing.assert_allclose(got.loc[want.index, col].astype(float),
                                   want[col].astype(float), rtol=1e-10, err_msg=col)
    comp = res.frames["integrity_components"]
    assert comp[["prescribed", "delivered"]].to_numpy().tolist() == \
        adh.components[["prescribed", "delivered"]].to_numpy().tolist()
    score = fidelity.fidelity_score(h.fidelity_ratings, integ)
    np.testing.assert_allclose(res.frames["integrity_score"]["score"], score.scores["score"],
                               rtol=1e-8)
    np.testing.assert_allclose(res.frames["integrity_score"]["rater_share"],
                               score.scores["rater_share"], rtol=1e-6)
    dr = fidelity.dose_response(_outcome(h), _logs(h))
    saved = res.frames["integrity_dose"].set_index("term").loc["dose"]
    np.testing.assert_allclose([saved["estimate"], saved["df"], saved["ci_lower"]],
                               [dr.dose["estimate"], dr.dose["df"], dr.dose["ci_lower"]],
                               rtol=1e-6)
    mod = fidelity.fidelity_moderator(_outcome(h), score.scores, power_programmes=None)
    saved = res.frames["integrity_moderator"].set_index("term").loc["time:fidelity"]
    np.testing.assert_allclose([saved["estimate"], saved["df"]],
                               [mod.moderator["estimate"], mod.moderator["df"]], rtol=1e-6)
    info = res.meta["integrity"]
    assert info["moderator"]["n_programmes"] == _outcome(h)["programme"].nunique()
    assert str(info["moderator"]["n_programmes"]) in info["moderator"]["sentence"]
    assert len(res.frames["integrity_moderator_power"]) == 2  # [6, 24] programmes
    tl = fidelity.tailoring(_logs(h), _outcome(h), integ)
    assert info["tailoring"]["n_tests"] == tl.n_tests == len(res.frames["integrity_tailoring_tests"])


_texts = section_text


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_section_renders_in_both_languages(demo, lang):
    _, res = demo
    with use_language(lang):
        sec = integrity_section(Context(res, "internal"))
    assert sec.title == catalogue(lang)["integrity.title"]
    kinds = [b.kind for b in sec.blocks]
    assert kinds.count("figure") == 2 and kinds.count("table") >= 4  # matrix, dose curve
    text = _texts(sec)
    assert catalogue(lang)["integrity.tailoring_caption"] in text  # internal: tailoring table
    assert "{" not in text  # every field filled


def test_public_shows_programme_level_only(demo):
    h, res = demo
    with use_language("en"):
        pub = integrity_section(Context(res, "public"))
        internal = integrity_section(Context(res, "internal"))
    text = _texts(pub)
    assert not PSEUDONYM.search(text)  # no client, rater or target
    assert not SMALL_N.search(text)
    assert catalogue("en")["integrity.tailoring_caption"] not in text
    tables = [b.content for b in pub.blocks if b.kind == "table"]
    assert all("n" not in t.columns for t in tables)
    # the component x programme cells rest on at least 5 clients, both ways, or are hidden
    comp = res.frames["integrity_components"]
    matrix = next(t for t in tables if "component" in t.columns)
    shown = matrix["delivered"] != HIDDEN
    n, d = comp["prescribed"].to_numpy(), comp["delivered"].to_numpy()
    safe = (n >= 5) & (d >= 5) & (n - d >= 5)
    assert shown.tolist() == safe.tolist()
    assert (~safe).any() and safe.any()  # the demo has both kinds
    # a programme of fewer than 5 clients gets no adherence number
    small = res.frames["integrity_adherence"].query("n_clients < 5")["programme"].tolist()
    adh = tables[0].set_index("programme")
    for p in small:
        name = Context(res, "public").programme_name(p)
        assert adh.loc[name, "adherence"] == "fewer than 5"
    assert len(_texts(internal)) > len(text)


def test_dossier_shows_its_own_programme(demo):
    _, res = demo
    prog = "pinq_gesloten"
    ctx = Context(res, "public", prog)
    with use_language("nl"):
        sec = integrity_section(ctx)
    names = {ctx.programme_name(p) for p in res.frames["integrity_adherence"]["programme"]}
    text = _texts(sec)
    assert ctx.programme_name(prog) in text
    assert not [n for n in names - {ctx.programme_name(prog)} if n in text]
    assert catalogue("nl")["integrity.dossier_pooled"] in text


# --------------------------------------------------------------------------- #
# The dose-response curve: saved by the study layer, drawn by the report
# --------------------------------------------------------------------------- #
def test_dose_curve_range_by_hand():
    from effectstudy.study.integrity import dose_curve_range

    # ten girls, doses 0 at intake and 1..10 sessions at their last occasion
    data = pd.DataFrame({"client": [f"c{i}" for i in range(10)] * 2,
                         "dose": [0.0] * 10 + [float(i + 1) for i in range(10)]})
    # 90th percentile of the highest doses is 9.1; only four girls reach 7 or more, five
    # reach 6: the upper end is 6; every girl starts at 0
    assert dose_curve_range(data, 5) == (0.0, 6.0)
    # threshold 1: the 90th percentile, rounded down to a whole session
    assert dose_curve_range(data, 1) == (0.0, 9.0)
    # nine girls cannot have five at or beyond each end
    assert dose_curve_range(data[data["client"] != "c0"], 5) is None
    # minutes: two significant digits above 100 (1237 -> 1200), lower end rounded up
    mins = pd.DataFrame({"client": [f"c{i}" for i in range(10)] * 2,
                         "dose": [40.0 + i for i in range(10)]
                         + [1000.0 + 30 * i for i in range(10)]})
    lo, hi = dose_curve_range(mins, 2)
    # lows 40..49: 10th percentile 40.9, second lowest 41 -> 41 -> rounded up to 100
    # highs 1000..1270: 90th percentile 1243, second highest 1240 -> 1240 -> 1200
    assert (lo, hi) == (100.0, 1200.0)


def test_saved_dose_curve_is_the_kr_line_over_a_trimmed_range(demo):
    h, res = demo
    threshold = 5
    dr = fidelity.dose_response(_outcome(h), _logs(h))
    curve = res.frames["integrity_dose_curve"]
    span = res.meta["integrity"]["dose"]["curve"]
    assert list(curve.columns) == ["dose", "estimate", "ci_lower", "ci_upper"]
    x = curve["dose"].to_numpy(float)
    assert x[0] == span["from"] and x[-1] == span["to"] and span["threshold"] == threshold
    b, lo, hi = (float(dr.dose[k]) for k in ("estimate", "ci_lower", "ci_upper"))
    np.testing.assert_allclose(curve["estimate"], b * x, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(curve["ci_lower"], np.minimum(lo * x, hi * x), rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_allclose(curve["ci_upper"], np.maximum(lo * x, hi * x), rtol=1e-6,
                               atol=1e-12)
    # the range shows no single girl's dose: recomputed here from the logs
    doses = fidelity.cumulative_dose(_outcome(h), _logs(h))
    per = doses.groupby("client")["dose"].agg(["min", "max"])
    assert span["to"] < per["max"].max() and span["from"] >= per["min"].min()
    assert (per["max"] >= span["to"]).sum() >= threshold
    assert (per["min"] <= span["from"]).sum() >= threshold
    assert span["to"] <= np.quantile(per["max"], 0.9)
    assert float(span["to"]).is_integer() and float(span["from"]).is_integer()
    # no client column and no per-client value in the saved curve
    assert "client" not in curve and len(curve) == res.meta["integrity"]["dose"]["curve"]["points"]


def test_report_draws_the_saved_curve_points(demo, monkeypatch):
    import effectstudy.report.integrity as rep

    _, res = demo
    drawn = []
    real = rep._dose_curve_figure

    def spy(curve, unit, level):
        drawn.append(curve.copy())
        return real(curve, unit, level)

    monkeypatch.setattr(rep, "_dose_curve_figure", spy)
    span = res.meta["integrity"]["dose"]["curve"]
    for lang in ("nl", "en"):
        with use_language(lang):
            sec = integrity_section(Context(res, "public"))
        caption = catalogue(lang)["integrity.dose_curve_caption"].split("{")[0]
        figs = [b for b in sec.blocks if b.kind == "figure"]
        assert any(b.caption.startswith(caption) for b in figs)
        text = _texts(sec)
        assert f"{int(span['from'])} " in text and f"{int(span['to'])} " in text
        assert "{" not in text
    assert len(drawn) == 2
    pd.testing.assert_frame_equal(drawn[0].reset_index(drop=True),
                                  res.frames["integrity_dose_curve"].reset_index(drop=True))


def test_public_report_hides_a_curve_trimmed_for_a_smaller_threshold(demo):
    _, res = demo

    class Stricter(Context):
        @property
        def threshold(self) -> int:
            return 50

    with use_language("en"):
        pub = integrity_section(Stricter(res, "public"))
        internal = integrity_section(Stricter(res, "internal"))
    hidden = catalogue("en")["integrity.dose_curve_hidden"].format(threshold=50)
    assert hidden in _texts(pub)
    caption = catalogue("en")["integrity.dose_curve_caption"].split("{")[0]
    assert not any(b.caption.startswith(caption) for b in pub.blocks if b.kind == "figure")
    # the internal report keeps it (its audience sees more than the public)
    assert any(b.caption.startswith(caption) for b in internal.blocks if b.kind == "figure")
    assert hidden not in _texts(internal)
