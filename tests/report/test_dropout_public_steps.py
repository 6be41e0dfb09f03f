"""Public dropout curves are drawn in steps of at least ``threshold`` events.

A drawn step of a single week of a Kaplan-Meier curve is a drop d/n, and the public
at-risk table bounds n: the drop would give the number d of girls who absconded that
week (Kaplan & Meier 1958). The public renderer therefore groups the events of the
curve into steps of at least ``threshold`` events, as a life table groups the events of
an interval (Cutler & Ederer 1958), and leaves out the events after the last step.

The curves below are written by hand; every expected value is worked out in the
comments, not taken from the code under test.
"""

from __future__ import annotations

import math
from fractions import Fraction
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from effectstudy.report.dropout import _curves_figure, _public_steps  # noqa: E402

THRESHOLD = 3

# One programme, 12 girls. Kaplan-Meier S(t) = prod (1 - d/n) over the event times:
#   t=0.5  n=12 d=1            S = 11/12
#   t=1.2  n=11 d=1            S = 11/12 * 10/11 = 10/12
#   t=2.0  n=10 d=0 (1 censor) S = 10/12
#   t=2.4  n=9  d=2            S = 10/12 * 7/9  = 70/108   events so far 4 >= 3: step, week 3
#   t=3.5  n=7  d=1            S = 70/108 * 6/7 = 60/108
#   t=4.1  n=6  d=3            S = 60/108 * 3/6 = 30/108   events since 4 >= 3: step, week 5
#   t=6.0  n=3  d=1            S = 30/108 * 2/3 = 20/108   1 event: the tail, not drawn
#   t=7.0  n=2  d=1            S = 20/108 * 1/2 = 10/108   fewer than 3 at risk
_S = [Fraction(11, 12), Fraction(10, 12), Fraction(10, 12), Fraction(70, 108),
      Fraction(60, 108), Fraction(30, 108), Fraction(20, 108), Fraction(10, 108)]
KM = pd.DataFrame({
    "programme": "p1",
    "time": [0.5, 1.2, 2.0, 2.4, 3.5, 4.1, 6.0, 7.0],
    "n_risk": [12, 11, 10, 9, 7, 6, 3, 2],
    "n_event": [1, 1, 0, 2, 1, 3, 1, 1],
    "n_censor": [0, 0, 1, 0, 0, 0, 0, 1],
    "survival": [float(s) for s in _S],
})


def _events_per_step(frame: pd.DataFrame, weeks: list[float], threshold: int) -> list[int]:
    """Events of the rows with at least ``threshold`` at risk in each drawn interval
    (previous drawn week, this drawn week], weeks being the times rounded up."""
    g = frame[frame["n_risk"] >= threshold]
    week = np.ceil(g["time"].astype(float))
    out, lo = [], 0.0
    for w in weeks:
        out.append(int(g.loc[(week > lo) & (week <= w), "n_event"].sum()))
        lo = w
    return out


def test_kaplan_meier_steps_hold_the_threshold_and_drop_the_tail():
    steps = _public_steps(KM, "survival", THRESHOLD)
    assert list(steps.columns) == ["time", "survival"]
    assert steps["time"].tolist() == [3.0, 5.0]
    assert steps["survival"].tolist() == [0.65, 0.28]  # 70/108, 30/108 to two decimals
    # 4 events (weeks 1-3) and 4 events (weeks 4-5): each step holds at least 3
    assert _events_per_step(KM, [3.0, 5.0], THRESHOLD) == [4, 4]
    # the 1 event of week 6 (3 at risk) is not drawn, nor is week 7 (2 at risk)
    assert 6.0 not in steps["time"].tolist() and 7.0 not in steps["time"].tolist()
    assert steps["survival"].min() == 0.28


def test_threshold_five_draws_one_step():
    # with 5: 1+1+0+2+1 = 5 events by t=3.5 (week 4), S = 60/108; then 3+1 < 5 with
    # at least 5 at risk only up to t=4.1 (6 at risk): the tail of 3 events is dropped
    steps = _public_steps(KM, "survival", 5)
    assert steps["time"].tolist() == [4.0]
    assert steps["survival"].tolist() == [0.56]  # 60/108


def test_fewer_events_than_the_threshold_draw_no_step():
    # the rows with at least 9 at risk (t <= 2.4) hold 1+1+0+2 = 4 events: no step of 9
    assert _public_steps(KM, "survival", 9).empty
    # unsorted input is walked in time order all the same
    assert _public_steps(KM.iloc[::-1], "survival", THRESHOLD)["time"].tolist() == [3.0, 5.0]


def test_two_steps_in_one_week_are_drawn_once():
    # 3 events at t=1.1 and 3 at t=1.8 both round up to week 2: one step, the later value
    # S = (1 - 3/20) (1 - 3/17) = 17/20 * 14/17 = 14/20
    g = pd.DataFrame({"time": [1.1, 1.8, 2.5], "n_risk": [20, 17, 14],
                      "n_event": [3, 3, 1], "survival": [17 / 20, 14 / 20, 13 / 20]})
    steps = _public_steps(g, "survival", THRESHOLD)
    assert steps["time"].tolist() == [2.0]
    assert steps["survival"].tolist() == [0.7]  # 14/20


def test_cumulative_incidence_counts_its_own_cause_only():
    # Aalen-Johansen F(t) = sum S(t-) d_abscond / n, S the all-cause survival:
    #   t=1  n=10 abscond 1 competing 4  F = 1/10                 S = 5/10
    #   t=2  n=5  abscond 1 competing 0  F = 1/10 + 5/10 * 1/5 = 2/10   S = 4/10
    #   t=3  n=4  abscond 1 competing 0  F = 2/10 + 4/10 * 1/4 = 3/10   (3 absconding: step)
    # the 4 competing ends at t=1 would make a step at week 1 if they were counted
    cif = pd.DataFrame({"programme": "p1", "time": [1.0, 2.0, 3.0], "n_risk": [10, 5, 4],
                        "n_event": [1, 1, 1], "n_competing": [4, 0, 0],
                        "cif": [1 / 10, 2 / 10, 3 / 10]})
    steps = _public_steps(cif, "cif", THRESHOLD)
    assert steps["time"].tolist() == [3.0]
    assert steps["cif"].tolist() == [0.3]


def test_simulated_curves_every_step_holds_the_threshold():
    from effectstudy import survival

    rng = np.random.default_rng(20261201)
    drawn_any = 0
    for _ in range(20):
        n = int(rng.integers(8, 60))
        weeks = np.round(rng.exponential(20.0, n), 1) + 0.1
        data = pd.DataFrame({"weeks": weeks, "absconded": rng.integers(0, 2, n)})
        curve = survival.kaplan_meier(data, time="weeks", event="absconded").curve
        for th in (3, 5):
            ok = curve[curve["n_risk"] >= th].reset_index(drop=True)
            jumps = ok[ok["n_event"] > 0]
            steps = _public_steps(curve, "survival", th)
            # each drawn value is the curve's value (to two decimals) just after an
            # event time of its week, drawn at that time rounded up
            rows = []
            for w, s in zip(steps["time"], steps["survival"], strict=True):
                match = (np.ceil(jumps["time"]) == w) & np.isclose(
                    jumps["survival"].round(2), s, rtol=0, atol=1e-12)
                assert match.any(), (w, s)
                rows.append(jumps.index[match][-1])
            assert rows == sorted(rows)
            # the drop from one drawn value to the next holds at least th events
            bounds = [-1, *rows]
            held = [int(ok.loc[a + 1:b, "n_event"].sum()) for a, b in zip(bounds, bounds[1:], strict=False)]
            assert all(e >= th for e in held), (held, th)
            # the events after the last drawn step (with enough at risk) are fewer than th
            assert int(ok.loc[bounds[-1] + 1:, "n_event"].sum()) < th
            drawn_any += len(rows)
    assert drawn_any >= 20  # the simulation did draw steps


def _lines(public: bool):
    # no printed at-risk count (every one hidden): nothing thins the steps
    plan = SimpleNamespace(values={("at_risk", "p1", 4): 5}, shown=lambda key: "x")
    ctx = SimpleNamespace(public=public, threshold=THRESHOLD, meta={"programmes": {"p1": {}}},
                          programme_name=lambda p: "Programme One", plan=plan)
    fig = _curves_figure(ctx, KM, ["p1"], "survival", 1.0, "share")
    try:
        (line,) = fig.axes[0].get_lines()
        return list(line.get_xdata()), list(line.get_ydata())
    finally:
        plt.close(fig)


def test_public_figure_draws_the_coarse_steps_and_internal_every_event():
    x, y = _lines(public=True)
    assert x == [0.0, 3.0, 5.0]
    assert y == [1.0, 0.65, 0.28]  # 70/108, 30/108 to two decimals
    # internal: every time with an event, exact times, to the end of the curve
    x, y = _lines(public=False)
    assert x == [0.0, 0.5, 1.2, 2.4, 3.5, 4.1, 6.0, 7.0]
    assert y == pytest.approx([1.0, 11 / 12, 10 / 12, 70 / 108, 60 / 108, 30 / 108,
                               20 / 108, 10 / 108])
    assert not math.isclose(y[-1], 30 / 108)


def test_steps_are_thinned_until_no_printed_count_pins_the_other_ends():
    from effectstudy.report.dropout import _thinned

    steps = pd.DataFrame({"time": [5.0, 13.0, 20.0], "survival": [0.8, 0.6, 0.4]})
    # 25 referred, 20 at risk at week 16: with the steps of weeks 5 and 13 a reader knows
    # at least 10 abscondings before week 16, more than the 5 who left; with the week-5
    # step only, at least 5: exactly 5 and 0 other ends. Both go; week 20 stays (no count
    # printed after it)
    out = _thinned(steps, {0: 25, 16: 20}, 5)
    assert out["time"].tolist() == [20.0]
    # 25 referred, 12 at risk at week 16: 13 left; two steps (10 abscondings) leave the
    # other ends 0 to 3: wide enough, nothing dropped
    assert _thinned(steps, {0: 25, 16: 12}, 5)["time"].tolist() == [5.0, 13.0, 20.0]
    # 25 referred, 14 at risk: 11 left, two steps give 0 or 1 other ends: the later step
    # goes (one step: 0 to 6)
    assert _thinned(steps, {0: 25, 16: 14}, 5)["time"].tolist() == [5.0, 20.0]

