"""Analytic t-test power against pwr (R), and simulated t-test power against it."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import SpecError
from effectstudy.power.analytic import d_from_slope, slope_from_d, solve_n, t_test_power
from effectstudy.power.ttest_sim import simulate_t_test_power
from refdata import REFERENCE

PWR = REFERENCE / "multilevel" / "expected_power.csv"


def _pwr_rows() -> list[dict]:
    d = pd.read_csv(PWR)
    d = d[d["section"] == "pwr"]
    rows = []
    for _, r in d.iterrows():
        kw = dict(re.findall(r'([\w.]+) = ("?[\w.]+"?)', r["r_call"]))
        kw = {k: v.strip('"') for k, v in kw.items()}
        rows.append(
            {
                "id": r["design_id"],
                "quantity": r["quantity"],
                "value": float(r["value"]),
                "t2n": "t2n" in r["r_call"],
                **kw,
            }
        )
    return rows


ROWS = _pwr_rows()


def _ours(row: dict) -> float:
    alpha, alt, d = float(row["sig.level"]), row["alternative"], float(row["d"])
    if row["t2n"]:
        return t_test_power(
            d, float(row["n1"]), "two-sample", n2=float(row["n2"]), alpha=alpha, alternative=alt
        )
    kind = row["type"].replace(".", "-")
    if row["quantity"] == "n":
        return solve_n(d, float(row["power"]), kind, alpha, alt)
    return t_test_power(d, float(row["n"]), kind, alpha=alpha, alternative=alt)


def test_reference_rows_present():
    assert len(ROWS) == 64


@pytest.mark.parametrize("row", ROWS, ids=[r["id"] for r in ROWS])
def test_pwr_rows_exact(row):
    assert _ours(row) == pytest.approx(row["value"], abs=1e-6, rel=0)


# simulated power of the matching t-test within Monte Carlo error (4 binomial SE)
SIM_ROWS = [
    "t_one.sample_d0.5_n10",
    "t_two.sample_d0.8_n12",
    "t_paired_d0.5_n20",
    "t2n_d0.8_n8_20",
    "t_paired_greater_d0.5_n10",
]


@pytest.mark.parametrize("rid", SIM_ROWS)
def test_simulated_t_test_power_matches_analytic(rid):
    row = next(r for r in ROWS if r["id"] == rid)
    nsim = 2000
    if row["t2n"]:
        sim = simulate_t_test_power(
            float(row["d"]),
            int(row["n1"]),
            "two-sample",
            n2=int(row["n2"]),
            alternative=row["alternative"],
            nsim=nsim,
            rng=11,
        )
    else:
        sim = simulate_t_test_power(
            float(row["d"]),
            int(row["n"]),
            row["type"].replace(".", "-"),
            alternative=row["alternative"],
            nsim=nsim,
            rng=11,
        )
    p = row["value"]
    se = np.sqrt(p * (1 - p) / nsim)
    assert abs(sim - p) < 4 * se


def test_feingold_conversion_roundtrip():
    # d = slope * duration / sd_total (Feingold 2009)
    sd_total = np.sqrt(2**2 + 6**2 + 5**2)
    d = d_from_slope(-0.10, 32, sd_total)
    assert d == pytest.approx(-3.2 / sd_total)
    assert slope_from_d(d, 32, sd_total) == pytest.approx(-0.10)


def test_bad_arguments():
    with pytest.raises(SpecError):
        t_test_power(0.5, 10, kind="three-sample")
    with pytest.raises(SpecError):
        t_test_power(0.5, 10, alpha=1.5)
    with pytest.raises(SpecError):
        solve_n(0.5, power=1.2)
    # one validation helper: the message names the parameter and the allowed words
    with pytest.raises(SpecError, match=r"alternative must be one of \['greater', 'less', 'two-sided'\]"):
        t_test_power(0.5, 10, alternative="both")
    with pytest.raises(SpecError, match="alpha must lie strictly between 0 and 1"):
        t_test_power(0.5, 10, alpha=0)
    # pwr's spelling of the alternative is an alias of the same test
    assert t_test_power(0.5, 10, alternative="two.sided") == t_test_power(0.5, 10)
    with pytest.raises(SpecError, match="rng"):
        simulate_t_test_power(0.5, 10, rng="seven")
    with pytest.warns(FutureWarning, match="seed= is deprecated"):
        old = simulate_t_test_power(0.5, 10, nsim=200, seed=3)
    assert old == simulate_t_test_power(0.5, 10, nsim=200, rng=3)
