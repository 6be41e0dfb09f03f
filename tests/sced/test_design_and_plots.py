"""WWC design checks, phase plots and multiple-baseline plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from effectstudy.errors import DataError, SpecError  # noqa: E402
from effectstudy.sced.design import (  # noqa: E402
    DOES_NOT_MEET,
    MEETS,
    RESERVATIONS,
    design_check,
)
from effectstudy.sced.plots import (  # noqa: E402
    PHASE_CHANGE_GID,
    count_phase_change_lines,
    multiple_baseline_plot,
    phase_plot,
)
from effectstudy.style import OKABE_ITO, RCPARAMS, label_axes, use_style  # noqa: E402
from refdata import REFERENCE  # noqa: E402

#: column names of the test data (the sced vocabulary requires them)
AXES = dict(session="session", phase="phase")
COLS = dict(outcome="outcome", **AXES)

SCED = REFERENCE / "sced"


def _mb(starts, length=15, labels=None):
    labels = labels or [f"Meisje {i + 1}" for i in range(len(starts))]
    rows = []
    for lab, s in zip(labels, starts, strict=True):
        for t in range(1, length + 1):
            rows.append(dict(case=lab, session=t, phase="A" if t < s else "B",
                             outcome=float(t >= s) * 3 + 0.1 * t))
    return pd.DataFrame(rows)


def _series(phases):
    labels = [p for p, n in phases for _ in range(n)]
    return pd.DataFrame({"session": range(1, len(labels) + 1), "phase": labels,
                         "outcome": np.arange(len(labels), dtype=float)})


# --------------------------------------------------------------------------
# design check
# --------------------------------------------------------------------------


def test_mb_three_tiers_five_points_meets():
    frame = design_check(_mb([6, 8, 10]), **AXES, case="case", design="MB")
    assert frame.attrs["rating"] == MEETS
    assert frame.iloc[-1]["check"] == "overall" and frame.iloc[-1]["rating"] == MEETS
    pts = frame[frame.check == "points_in_phase"]
    assert len(pts) == 6  # 3 cases x 2 phases
    assert pts.set_index(["case", "phase"]).loc[("Meisje 1", "A"), "value"] == 5
    assert frame.loc[frame.check == "number_of_baselines", "value"].item() == 3


def test_mb_four_point_baseline_meets_with_reservations():
    frame = design_check(_mb([5, 8, 10]), **AXES, case="case", design="MB")
    assert frame.attrs["rating"] == RESERVATIONS


def test_mb_two_tiers_or_two_point_phase_does_not_meet():
    assert design_check(_mb([6, 9]), **AXES, case="case", design="MB").attrs["rating"] == DOES_NOT_MEET
    assert design_check(_mb([3, 8, 10]), **AXES, case="case",
                        design="MB").attrs["rating"] == DOES_NOT_MEET


def test_mb_not_staggered_does_not_meet():
    frame = design_check(_mb([6, 6, 10]), **AXES, case="case", design="MB")
    assert frame.loc[frame.check == "staggered_intervention_starts", "value"].item() == 2
    assert frame.attrs["rating"] == DOES_NOT_MEET


def test_reversal_rules():
    abab = _series([("A1", 5), ("B1", 5), ("A2", 5), ("B2", 5)])
    assert design_check(abab, **AXES, design="ABAB").attrs["rating"] == MEETS
    aba = _series([("A1", 5), ("B1", 5), ("A2", 5)])
    frame = design_check(aba, **AXES, design="ABAB")
    assert frame.loc[frame.check == "number_of_phases", "value"].item() == 3
    assert frame.attrs["rating"] == DOES_NOT_MEET
    short = _series([("A1", 3), ("B1", 5), ("A2", 4), ("B2", 5)])
    assert design_check(short, **AXES).attrs["rating"] == RESERVATIONS  # guessed ABAB
    assert design_check(_series([("A", 6), ("B", 6)]), **AXES).attrs["rating"] == DOES_NOT_MEET


def test_alternating_treatments():
    atd = pd.DataFrame({"session": range(1, 11), "phase": list("BCBCCBCBBC"),
                        "outcome": np.arange(10.0)})
    assert design_check(atd, **AXES, design="ATD").attrs["rating"] == MEETS
    assert design_check(atd.iloc[:8], **AXES, design="ATD").attrs["rating"] == RESERVATIONS


def test_design_check_on_reference_data():
    data = pd.read_csv(SCED / "data" / "scan_Grosche2011.csv")
    frame = design_check(data, phase="phase", case="case", session="mt")
    assert frame.attrs["design"] == "multiple_baseline"
    pts = frame[frame.check == "points_in_phase"]
    assert (pts["rating"] == MEETS).all() and len(pts) == 6
    # Eva and Georg both start the intervention at session 38: only two staggered starts
    stagger = frame[frame.check == "staggered_intervention_starts"]
    assert stagger["value"].item() == 2 and stagger["rating"].item() == DOES_NOT_MEET
    assert frame.attrs["rating"] == DOES_NOT_MEET
    assert set(frame.columns) == {"case", "phase", "check", "value", "meets", "reservations",
                                  "rating"}


def test_design_check_errors():
    with pytest.raises(SpecError):
        design_check(_mb([6, 8, 10]), **AXES, case="case", design="nonsense")
    with pytest.raises(DataError, match="column"):
        design_check(_mb([6, 8, 10]), **AXES, case="klant", design="MB")
    dup = _mb([6, 8, 10])
    dup.loc[1, "session"] = 1
    with pytest.raises(DataError, match="Meisje 1.*duplicated"):
        design_check(dup, **AXES, case="case")


# --------------------------------------------------------------------------
# plots
# --------------------------------------------------------------------------


def test_multiple_baseline_plot_renders_one_line_per_case():
    data = pd.read_csv(SCED / "data" / "scan_exampleAB.csv")
    fig = multiple_baseline_plot(data, case="case", phase="phase", session="mt",
                                 outcome="values", trend=True)
    fig.canvas.draw()
    assert len(fig.axes) == 3
    assert count_phase_change_lines(fig) == 3
    panel_labels = {t.get_text() for a in fig.axes for t in a.texts}
    assert {"Johanna", "Karolina", "Anja"} <= panel_labels
    trends = [ln for a in fig.axes for ln in a.lines if ln.get_gid() == "trend"]
    assert len(trends) == 6  # one per phase per case
    plt.close(fig)


def test_multiple_baseline_staggered_lines_and_order():
    data = _mb([10, 5, 7], labels=["Z", "X", "Y"])
    fig = multiple_baseline_plot(data, **COLS, case="case", trend=False)
    xs = [ln.get_xdata()[0] for a in fig.axes for ln in a.lines
          if ln.get_gid() == PHASE_CHANGE_GID]
    assert xs == [4.5, 6.5, 9.5]  # stacked by start, lines between sessions
    assert not [ln for a in fig.axes for ln in a.lines if ln.get_gid() == "trend"]
    plt.close(fig)
    fig = multiple_baseline_plot(data, **COLS, case="case", order=["Z", "Y", "X"])
    xs = [ln.get_xdata()[0] for a in fig.axes for ln in a.lines
          if ln.get_gid() == PHASE_CHANGE_GID]
    assert xs == [9.5, 6.5, 4.5]
    plt.close(fig)


def test_phase_plot_renders_abc_and_uses_palette():
    data = pd.read_csv(SCED / "data" / "scan_exampleABC.csv")
    fig = phase_plot(data[data.case == "Marie"], phase="phase", session="mt", outcome="values", trend=True)
    fig.canvas.draw()
    ax = fig.axes[0]
    assert count_phase_change_lines(fig) == 2  # A|B and B|C
    colours = {matplotlib.colors.to_hex(ln.get_color()).upper() for ln in ax.lines
               if ln.get_gid() is None}
    assert colours <= {c.upper() for c in OKABE_ITO.values()}
    assert ax.get_xlabel() == "session" and ax.get_ylabel() == "values"
    plt.close(fig)
    grid = phase_plot(data, phase="phase", case="case", session="mt", outcome="values")
    assert count_phase_change_lines(grid) == 2 * data["case"].nunique()
    plt.close(grid)


def test_style_module():
    assert len(OKABE_ITO) == 8 and RCPARAMS["font.size"] >= 10
    before = matplotlib.rcParams["axes.spines.top"]
    with use_style(**{"axes.spines.top": not before}):
        assert matplotlib.rcParams["axes.spines.top"] is (not before)
    assert matplotlib.rcParams["axes.spines.top"] is before  # restored
    with use_style():
        assert matplotlib.rcParams["axes.spines.top"] is False
        fig, ax = plt.subplots()
        label_axes(ax, x="week", y="score", title="t")
        assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("week", "score", "t")
        plt.close(fig)


def test_plot_errors():
    data = _mb([6, 8, 10])
    fig, ax = plt.subplots()
    with pytest.raises(DataError, match="one case"):
        phase_plot(data, **COLS, case="case", ax=ax)
    with pytest.raises(DataError, match="order"):
        multiple_baseline_plot(data, **COLS, case="case", order=["nobody"])
    plt.close(fig)
