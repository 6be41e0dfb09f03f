"""Piecewise regression against scan 0.67.1 ``plm()`` (every row of expected_scan_plm.csv)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError, SpecError
from effectstudy.sced.piecewise import PiecewiseResult, piecewise
from refdata import REFERENCE

SCED = REFERENCE / "sced"
RTOL = 1e-6


def _rows() -> list:
    path = SCED / "expected_scan_plm.csv"
    if not path.exists():  # collected without the reference: one failing placeholder
        return [pytest.param(None, id="reference-missing")]
    ref = pd.read_csv(path)
    out = []
    for _, row in ref.iterrows():
        term = re.fullmatch(r"plm\[(.*)\]", row["measure"]).group(1)
        out.append(pytest.param(row.to_dict(), id=f"{row['case']}|{row['options']}|{term}"))
    return out


def _options(text: str) -> dict:
    return dict(kv.split("=", 1) for kv in text.split(";"))


def _extra(text: str) -> dict:
    return dict(kv.split("=", 1) for kv in str(text).split(";") if "=" in kv)


_CACHE: dict = {}


def _fit(dataset: str, case: str, options: str) -> pd.DataFrame:
    key = (dataset, case, options)
    if key not in _CACHE:
        o = _options(options)
        data = pd.read_csv(SCED / "data" / f"{dataset}.csv")
        data = data[data["case"] == case]
        kwargs = dict(model=o["model"], ar=int(o["AR"]))
        if "contrast" in o:
            kwargs["contrast"] = o["contrast"]
        for flag in ("trend", "level", "slope"):
            if flag in o:
                kwargs[flag] = o[flag] == "TRUE"
        res = piecewise(data, session="mt", phase="phase", outcome="values", **kwargs)
        _CACHE[key] = res.to_frame().set_index("scan_term")
    return _CACHE[key]


@pytest.mark.parametrize("row", _rows())
def test_plm_reference_row(row):
    assert row is not None, f"reference file missing under {SCED}"
    table = _fit(row["dataset"], row["case"], row["options"])
    term = re.fullmatch(r"plm\[(.*)\]", row["measure"]).group(1)
    got = table.loc[term]
    statistic = float(_extra(row["extra"])["statistic"])
    assert got["estimate"] == pytest.approx(row["estimate"], rel=RTOL, abs=1e-12)
    assert got["se"] == pytest.approx(row["se"], rel=RTOL)
    assert got["statistic"] == pytest.approx(statistic, rel=RTOL, abs=1e-12)
    assert got["p_value"] == pytest.approx(row["p_value"], rel=RTOL)
    assert got["df"] == row["df"]


def test_term_names_and_result_type():
    data = pd.read_csv(SCED / "data" / "scan_exampleABC.csv")
    res = piecewise(data[data.case == "Marie"], session="mt", phase="phase", outcome="values")
    assert isinstance(res, PiecewiseResult)
    frame = res.to_frame()
    assert list(frame["term"]) == ["intercept", "trend", "level_B", "level_C", "slope_B",
                                   "slope_C"]
    assert list(frame.columns) == ["case", "term", "scan_term", "estimate", "se", "statistic",
                                   "p_value", "df"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.model = "H-M"


def test_per_case_equals_single_fits():
    data = pd.read_csv(SCED / "data" / "scan_exampleAB.csv")
    both = piecewise(data, case="case", session="mt", phase="phase", outcome="values").to_frame()
    one = piecewise(data[data.case == "Anja"], session="mt", phase="phase",
                    outcome="values").to_frame()
    sub = both[both.case == "Anja"].reset_index(drop=True)
    np.testing.assert_allclose(sub["estimate"], one["estimate"], rtol=1e-12)
    assert set(both["case"]) == {"Johanna", "Karolina", "Anja"}


def test_multilevel_random_intercept_recovers_effects():
    rng = np.random.default_rng(7)
    rows = []
    for i, start in enumerate([6, 9, 12, 15]):
        u = rng.normal(0, 3)
        for t in range(1, 25):
            b = t >= start
            y = 10 + u + 0.2 * t + 8 * b + rng.normal(0, 1)
            rows.append(dict(case=f"P{i}", session=t, phase="B" if b else "A", outcome=y))
    data = pd.DataFrame(rows)
    res = piecewise(data, outcome="outcome", session="session", phase="phase", case="case", multilevel=True, slope=False)
    frame = res.to_frame()
    assert res.multilevel and list(frame["case"].unique()) == ["ALL"]
    level = res.coef("level_B")
    se = frame.loc[frame.term == "level_B", "se"].item()
    assert abs(level - 8) < 3 * se + 0.5
    assert res.fit["tau_intercept"].item() > 0


def test_degenerate_one_point_phase_names_case():
    data = pd.DataFrame({"case": "Lotte", "session": range(1, 8),
                         "phase": list("AAAAAAB"), "outcome": np.arange(7.0)})
    with pytest.raises(DataError, match="Lotte"):
        piecewise(data, outcome="outcome", session="session", phase="phase", case="case")


def test_degenerate_nan_outcome_names_case():
    data = pd.DataFrame({"case": "Noor", "session": range(1, 9),
                         "phase": list("AAAABBBB"),
                         "outcome": [1, 2, np.nan, 3, 5, 6, 7, 8]})
    with pytest.raises(DataError, match="Noor.*missing"):
        piecewise(data, outcome="outcome", session="session", phase="phase", case="case")


def test_phases_out_of_order():
    data = pd.DataFrame({"case": "Sara", "session": range(1, 9),
                         "phase": list("BBBBAAAA"), "outcome": np.arange(8.0)})
    with pytest.raises(DataError, match="Sara.*out of order"):
        piecewise(data, outcome="outcome", session="session", phase="phase", case="case", phases=["A", "B"])
    mixed = data.assign(phase=list("AABBAABB"))
    with pytest.raises(DataError, match="Sara"):
        piecewise(mixed, outcome="outcome", session="session", phase="phase", case="case")


def test_single_phase_and_bad_options():
    data = pd.DataFrame({"session": range(1, 9), "phase": "A", "outcome": np.arange(8.0)})
    with pytest.raises(DataError, match="one phase"):
        piecewise(data, outcome="outcome", session="session", phase="phase")
    with pytest.raises(SpecError):
        piecewise(data, outcome="outcome", session="session", phase="phase", model="XYZ")
    with pytest.raises(SpecError):
        piecewise(data, outcome="outcome", session="session", phase="phase", ar=2)


def test_missing_column():
    data = pd.DataFrame({"session": range(1, 9), "phase": list("AAAABBBB")})
    with pytest.raises(DataError, match="outcome"):
        piecewise(data, outcome="outcome", session="session", phase="phase")


def test_ar1_reports_autocorrelation():
    data = pd.read_csv(SCED / "data" / "scan_exampleAB.csv")
    res = piecewise(data[data.case == "Johanna"], session="mt", phase="phase",
                    outcome="values", ar=1)
    phi = res.fit["phi"].item()
    assert -1 < phi < 1 and phi != 0


def test_result_plot_renders():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = pd.read_csv(SCED / "data" / "scan_exampleAB.csv")
    res = piecewise(data, case="case", session="mt", phase="phase", outcome="values")
    fig = res.plot()
    assert len(fig.axes) == 3
    # fitted lines: one per phase per case, plus the observed points
    assert sum(len(a.lines) for a in fig.axes) == 3 * 3
    assert "<table" in res._repr_html_()
    plt.close(fig)
