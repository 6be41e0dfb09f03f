"""Kaplan-Meier, log-rank and Cox against R's survival 3.5 (shared/reference/study).

Every reference row of the families ``kaplan_meier``, ``kaplan_meier_median``,
``logrank``, ``cox`` and ``cox_cluster`` is one test case; generate.R shows the R
call behind each row.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from effectstudy.survival import cox, kaplan_meier, logrank, median_survival
from refdata import REFERENCE

STUDY = REFERENCE / "study"
FAMILIES = ("kaplan_meier", "kaplan_meier_median", "logrank", "cox", "cox_cluster")
COVARIATES = ["age", "prior_absconding"]


def _rows() -> list:
    path = STUDY / "expected_study.csv"
    if not path.is_file():
        # collected without the reference: one case that fails with the path
        return [pytest.param(None, id="reference-missing")]
    ref = pd.read_csv(path, keep_default_na=False, na_values=[""])
    ref = ref[ref["family"].isin(FAMILIES)].reset_index(drop=True)
    params = []
    for _, row in ref.iterrows():
        term = "" if pd.isna(row["term"]) else str(row["term"])
        params.append(pytest.param(row.to_dict(),
                                   id=f"{row['family']}-{row['group']}-{term}-{row['quantity']}"))
    return params


@pytest.fixture(scope="module")
def absconding() -> pd.DataFrame:
    path = STUDY / "data" / "absconding_20261130.csv"
    if not path.is_file():
        pytest.fail(f"reference data not found at {path}; set EFFECTSTUDY_REFERENCE")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def fitted(absconding):
    km = kaplan_meier(absconding, time="weeks", event="absconded", by="programme").to_frame()
    km_all = kaplan_meier(absconding, time="weeks", event="absconded")
    lr = logrank(absconding, time="weeks", event="absconded", by="programme")
    fits = {ties: cox(absconding, time="weeks", event="absconded", covariates=COVARIATES,
                      ties=ties) for ties in ("efron", "breslow")}
    clustered = {ties: cox(absconding, time="weeks", event="absconded", covariates=COVARIATES,
                           ties=ties, cluster="programme") for ties in ("efron", "breslow")}
    return {"km": km, "median": median_survival(km_all), "logrank": lr, "cox": fits,
            "cox_cluster": clustered}


def test_reference_present():
    assert STUDY.is_dir(), f"reference values not found at {STUDY}; set EFFECTSTUDY_REFERENCE"
    # every family has rows: an empty family would parametrise to nothing and pass silently
    ref = pd.read_csv(STUDY / "expected_study.csv")
    counts = ref["family"].value_counts()
    assert all(counts.get(f, 0) > 0 for f in FAMILIES), counts.to_dict()
    assert set(ref.loc[ref["family"] == "cox", "group"]) == {"efron", "breslow"}


@pytest.mark.parametrize("row", _rows())
def test_reference_row(row, fitted):
    if row is None:
        pytest.fail(f"reference values not found at {STUDY / 'expected_study.csv'}")
    family, quantity = row["family"], row["quantity"]
    # R writes NA where a quantity is undefined (a median never reached, the Greenwood SE
    # and interval once S reaches 0): the package must give NaN there, not a number
    missing = str(row["value"]).strip() in ("NA", "NaN", "nan")
    expected = float("nan") if missing else float(row["value"])
    term = "" if pd.isna(row["term"]) else str(row["term"])
    if family == "kaplan_meier":
        km = fitted["km"]
        sel = (km["programme"] == row["group"]) & (km["time"] == float(term))
        assert sel.sum() == 1, "event time missing from the Kaplan-Meier table"
        got, rel = float(km.loc[sel, quantity].iloc[0]), 1e-6
    elif family == "kaplan_meier_median":
        got, rel = float(fitted["median"]["median"].iloc[0]), 1e-6
    elif family == "logrank":
        got, rel = float(getattr(fitted["logrank"], quantity)), 1e-6
    elif family == "cox":
        fit = fitted["cox"][row["group"]]
        if quantity in ("loglik", "concordance"):
            got = float(getattr(fit, quantity))
        else:
            tab = fit.coefficients().set_index("term")
            got = float(tab.loc[term, quantity])
        rel = 1e-5
    else:  # cox_cluster
        tab = fitted["cox_cluster"][row["group"]].coefficients().set_index("term")
        got, rel = float(tab.loc[term, quantity]), 1e-5
    if missing:
        assert math.isnan(got), (got, "NA")
    else:
        assert math.isclose(got, expected, rel_tol=rel, abs_tol=0.0), (got, expected)


def test_every_event_time_is_in_the_reference(fitted):
    """No extra rows: the table lists event times only, as summary(censored = FALSE)."""
    ref = pd.read_csv(STUDY / "expected_study.csv")
    ref = ref[(ref["family"] == "kaplan_meier") & (ref["quantity"] == "n_risk")]
    km = fitted["km"]
    assert len(km) == len(ref)
    assert list(km.columns) == ["programme", "time", "n_risk", "n_event", "survival", "se",
                                "ci_lower", "ci_upper"]
