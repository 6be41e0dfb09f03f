"""Design-comparable SMDs against scdhlm 0.7.4.9999 / lmeInfo 0.3.2 (``expected_scdhlm.csv``).

Every reference row is a parametrised case; all its numeric columns (estimate,
se, df, CI bounds) are compared. Tolerances: 1e-6 relative for the closed-form
HPS estimator (scdhlm ``effect_size_MB`` / ``effect_size_ABk``); 1e-4 relative
for REML-based rows (``g_REML``, ``g_mlm``, ``calc_BCSMD``), because nlme stops
its iterations at default tolerances (``calc_BCSMD`` and ``g_mlm`` on the same
model differ from each other by ~1e-7, and by up to ~1e-5 on flat likelihoods).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError, ModelError
from effectstudy.multilevel.ar1 import fit_ar1
from effectstudy.sced.between_case import between_case_smd, estimate_between_case_smd, g_mlm
from refdata import REFERENCE

SCED = REFERENCE / "sced"
DATA = SCED / "data"
EXPECTED = SCED / "expected_scdhlm.csv"

BT = dict(baseline_phase="baseline", treatment_phase="treatment")
# dataset -> (file stem, column mapping, filter column, design for REML/HPS)
SPEC: dict[str, dict] = {
    "Laski": dict(case="case", phase="treatment", session="time", outcome="outcome", **BT),
    "Saddler": dict(
        case="case", phase="treatment", session="time", outcome="outcome", filter="measure", **BT
    ),
    "Schutte": dict(case="case", phase="treatment", session="week", outcome="fatigue", **BT),
    "AlberMorgan": dict(case="case", phase="condition", session="session", outcome="outcome", **BT),
    "CaseHarrisGraham": dict(
        case="case", phase="condition", session="session", outcome="outcome", **BT
    ),
    "Datchuk": dict(case="case", phase="condition", session="session", outcome="outcome", **BT),
    "GunningEspie": dict(
        case="case", phase="condition", session="session", outcome="outcome", **BT
    ),
    "Peltier": dict(case="case", phase="condition", session="session", outcome="outcome", **BT),
    "Rodgers": dict(case="case", phase="condition", session="session", outcome="outcome", **BT),
    "BartonArwood": dict(case="case", phase="condition", session="session", outcome="outcome"),
    "Rodriguez": dict(case="case", phase="condition", session="session", outcome="outcome"),
    "DelemereDounavi": dict(
        case="case",
        phase="condition",
        session="session",
        outcome="outcome",
        filter="intervention",
        **BT,
    ),
    "Musser": dict(case="student", phase="treatment", session="session", outcome="outcome", **BT),
    "Ruiz": dict(
        case="case", phase="treatment", session="time", outcome="outcome", filter="measure", **BT
    ),
    "Salazar": dict(
        case="case", phase="treatment", session="time", outcome="outcome", filter="measure", **BT
    ),
    "Bryant2018": dict(
        case="case", phase="treatment", session="session", outcome="outcome", cluster="group", **BT
    ),
    "Thiemann2001": dict(
        case="case", phase="treatment", session="time", outcome="outcome", series="series", **BT
    ),
    "Thiemann2004": dict(
        case="case", phase="treatment", session="time", outcome="outcome", series="series", **BT
    ),
    "Lambert": dict(
        case="case",
        phase="treatment",
        session="time",
        outcome="outcome",
        filter="measure",
        baseline_phase="SSR",
        treatment_phase="RC",
        phase_pair="phase",
    ),
    "Anglesea": dict(
        case="case",
        phase="condition",
        session="session",
        outcome="outcome",
        phase_pair="phase",
        **BT,
    ),
    "Thorne": dict(
        case="case",
        phase="condition",
        session="session",
        outcome="outcome",
        filter="measure",
        phase_pair="pair",
    ),
}
TR = {"Lambert", "Anglesea", "Thorne"}


def _rows() -> list:
    if not EXPECTED.exists():  # pragma: no cover
        return []
    ref = pd.read_csv(EXPECTED)
    return [
        pytest.param(
            i, r.dataset, r.case, r.measure, r.options, id=f"{i}-{r.dataset}-{r.case}-{r.measure}"
        )
        for i, r in ref.iterrows()
    ]


@cache
def _ref() -> pd.DataFrame:
    return pd.read_csv(EXPECTED)


@cache
def _data(dataset: str, case_label: str) -> pd.DataFrame:
    d = pd.read_csv(DATA / f"scdhlm_{dataset}.csv")
    spec = SPEC[dataset]
    if "filter" in spec:
        # e.g. "measure=PSWQ;phases=baseline+treatment" -> measure == "PSWQ"
        value = case_label.split(";")[0].split("=", 1)[1]
        d = d[d[spec["filter"]] == value]
    if dataset == "Musser":
        d = d[d["student"].isin(["Student 1", "Student 2", "Student 3"])]
    if dataset == "Thorne":
        d = d.assign(pair=d["phase_id"].str[1:].astype(int))
    return d.reset_index(drop=True)


def _kwargs(dataset: str) -> dict:
    spec = dict(SPEC[dataset])
    spec.pop("filter", None)
    return spec


@cache
def _estimate(dataset: str, case_label: str, method: str, trend: bool, symmetric: bool):
    kw = _kwargs(dataset)
    design = (
        "TR" if dataset in TR else "CMB" if "cluster" in kw else "RMBB" if "series" in kw else "MBP"
    )
    if method != "hps":
        kw.pop("phase_pair", None)  # only the HPS (AB)^k estimator uses phase pairs
    extra = dict(FE_base=(0, 1), FE_trt=(0, 1)) if trend else {}
    return between_case_smd(
        _data(dataset, case_label), method=method, design=design, symmetric=symmetric, **kw, **extra
    )


@cache
def _schutte_trend():
    """The g_REML help-page model (Schutte, trend + random slope on week)."""
    d = pd.read_csv(DATA / "scdhlm_Schutte.csv")
    d = d[d["case"] != "Case 4"].copy()
    d["trt"] = (d["treatment"] == "treatment").astype(float)
    first = d[d.trt == 1].groupby("case")["week"].min()
    d["trt_week"] = np.where(d.trt == 1, d["week"] - d["case"].map(first) + 1, 0.0)
    d["week"] = d["week"] - 9
    return fit_ar1(
        "fatigue ~ week + trt + trt_week",
        d,
        group="case",
        random="1 + week",
        correlation="AR1",
        index="week",
        lrt=False,
    )


def _compare(got: dict, row: pd.Series, rel: float) -> None:
    for col in ("estimate", "se", "df", "ci_lower", "ci_upper"):
        exp = row[col]
        if pd.isna(exp):
            continue
        assert got[col] == pytest.approx(float(exp), rel=rel, abs=rel * 1e-3), (
            f"{col}: {got[col]!r} vs {exp!r}"
        )


@pytest.mark.parametrize(("i", "dataset", "case_label", "measure", "options"), _rows())
def test_scdhlm_reference(i, dataset, case_label, measure, options):
    row = _ref().iloc[i]
    if measure == "HPS_delta_hat":
        res = _estimate(dataset, case_label, "hps", False, True)
        got = {"estimate": res.estimate, "se": res.se, "df": res.df}
        _compare(got, row, 1e-6)
        return
    if case_label.startswith("ALL (help-page trend model)"):
        fit = _schutte_trend()
        # lmeInfo order (Tau00, Tau01, Tau11, phi, sigma^2); g_REML orders theta as
        # (sigma^2, phi, Tau...), so its r_const = c(1,0,1,0,0) is (1,0,0,0,1) here.
        r_const = (1, 0, 1, 0, 0) if measure == "g_mlm" else (1, 0, 0, 0, 1)
        res = g_mlm(fit, (0, 0, 1, 7), r_const)
        lo, hi = res.ci()
        got = {"estimate": res.g, "se": res.se, "df": res.nu, "ci_lower": lo, "ci_upper": hi}
        _compare(got, row, 1e-4)
        return
    trend = "FE_base=c(0,1)" in options
    symmetric = measure != "g_mlm_CI_noncentral_t"
    res = _estimate(dataset, case_label, "reml", trend, symmetric)
    got = {
        "estimate": res.estimate,
        "se": res.se,
        "df": res.df,
        "ci_lower": res.ci_lower,
        "ci_upper": res.ci_upper,
    }
    _compare(got, row, 1e-4)
    if measure == "BCSMD":
        extra = dict(kv.split("=", 1) for kv in str(row["extra"]).split(";") if "=" in kv)
        assert res.components["phi"] == pytest.approx(float(extra["phi"]), rel=1e-4)
        if extra.get("A", "NA") != "NA":
            assert res.A == float(extra["A"]) and res.B == float(extra["B"])


def test_dataframe_output_and_components():
    d = _data("Laski", "ALL")
    frame = between_case_smd(d, **_kwargs("Laski"), method="reml").to_frame()
    assert len(frame) == 1
    for col in (
        "estimate",
        "se",
        "df",
        "ci_lower",
        "ci_upper",
        "tau_sq_case",
        "sigma_sq",
        "phi",
        "rho",
    ):
        assert col in frame.columns
    hps = between_case_smd(d, **_kwargs("Laski"), method="hps").to_frame()
    assert {"phi", "rho", "S_sq", "D_bar"} <= set(hps.columns)
    assert math.isfinite(float(hps["ci_lower"].iloc[0]))


def test_degenerate_inputs():
    d = _data("Laski", "ALL")
    kw = _kwargs("Laski")
    with pytest.raises(DataError):
        between_case_smd(d.assign(outcome=3.0), **kw)
    with pytest.raises(DataError):
        between_case_smd(d[d["case"] == d["case"].iloc[0]], **kw)
    with pytest.raises(DataError):  # a case without treatment observations
        first = d["case"].iloc[0]
        between_case_smd(d[~((d["case"] == first) & (d["treatment"] == "treatment"))], **kw)
    with pytest.raises(DataError):
        between_case_smd(d, **{**kw, "outcome": "nope"})
    with pytest.raises(ModelError):
        between_case_smd(d, **kw, design="CMB")
    with pytest.raises(ModelError):
        between_case_smd(d, **kw, method="hps", design="RMBB", series="case")


def test_phase_pairs_computed_when_not_given():
    d = _data("Anglesea", "ALL")
    kw = _kwargs("Anglesea")
    with_pairs = between_case_smd(d, method="hps", design="TR", **kw)
    kw.pop("phase_pair")
    without = between_case_smd(d, method="hps", design="TR", **kw)
    assert without.estimate == pytest.approx(with_pairs.estimate, rel=1e-12)
    assert without.df == pytest.approx(with_pairs.df, rel=1e-12)


def test_nested_designs_need_their_grouping_column():
    d = _data("Laski", "ALL")
    with pytest.raises(ModelError):
        between_case_smd(d, **_kwargs("Laski"), design="RMBB")
    with pytest.raises(ModelError):
        between_case_smd(d, **_kwargs("Laski"), method="bayes")
    with pytest.raises(ModelError):
        between_case_smd(d, **_kwargs("Laski"), design="TR", FE_base=(0, 1), FE_trt=(0, 1))


def test_deprecated_alias_and_cover_keyword_warn_and_agree():
    d = _data("Laski", "ALL")
    new = between_case_smd(d, **_kwargs("Laski"), method="hps", confidence=0.9)
    with pytest.warns(FutureWarning, match="between_case_smd"):
        old = estimate_between_case_smd(d, **_kwargs("Laski"), method="hps", confidence=0.9)
    with pytest.warns(FutureWarning, match="confidence="):
        cover = between_case_smd(d, **_kwargs("Laski"), method="hps", cover=0.9)
    assert old.estimate == new.estimate and cover.ci_lower == new.ci_lower
    wide = between_case_smd(d, **_kwargs("Laski"), method="hps")
    assert wide.ci_lower < new.ci_lower  # 95% interval is wider than the 90% one
    assert new.to_frame()["confidence"].iloc[0] == 0.9
