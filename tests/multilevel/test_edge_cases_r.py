"""Numerical edge cases of issue 15 against R values stored as test data.

The values in ``data/multilevel_edge_r.csv`` were written by
``benchmarks/r/multilevel_edge_cases.R`` (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3,
pbkrtest 0.5.2, clubSandwich 0.5.8; each row's exact call is in ``r_call``). R is a
peer for reference values only: nothing here runs it.

* ``rank_deficient.csv``: the shared ``growth_a.csv`` with programme P3 reduced to its
  intake scores (time 0), so ``time:programmeP3`` is an all-zero column of
  ``time * programme``. lme4 drops it ("fixed-effect model matrix is rank deficient so
  dropping 1 column / coefficient"); D1 and D2 are lmer fits with tight bobyqa
  tolerances.
* ``cr2_empty_level.csv``: ``growth_a.csv`` plus four rows of a programme P7 whose
  outcome is missing; ``lm`` drops the rows and the unused level, clubSandwich gives
  the CR2 values (E1).
* ``growth_a`` H1: the CR2 HTZ Wald test whose Hotelling scaling clubSandwich clamps
  at 0 (``Hotelling_Tsq``: ``delta = pmax((eta - q + 1) / eta, 0)``, p-value NA).
* ``growth_a_constant`` K1: what lme4 does with a constant outcome (kept in ``note``).

Tolerances: 1e-4 relative on estimates, SEs, F statistics and logLik; 2e-3 relative
on degrees of freedom and p-values.
"""

from __future__ import annotations

import re
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import DataError
from effectstudy.multilevel import FewClustersWarning, fit
from effectstudy.multilevel._engine import independent_columns
from effectstudy.multilevel.robust import cluster_robust
from refdata import REFERENCE

DATA = Path(__file__).parent / "data"
R = pd.read_csv(DATA / "multilevel_edge_r.csv", keep_default_na=False)
TOL, TOL_DF = 1e-4, 2e-3
FORMULAS = {
    "D1": "outcome ~ time * programme + (1 + time | client)",
    "D2": "outcome ~ fidelity + time * programme + (1 | client)",
}


def _patsy(r_name: str) -> str:
    """R's coefficient name as this package spells it (patsy's names)."""
    if r_name == "(Intercept)":
        return "Intercept"
    return re.sub(r"programme(P\d+)", r"programme[T.\1]", r_name)


def _rows(model_id: str, quantity: str | None = None) -> pd.DataFrame:
    rows = R[R.model_id == model_id]
    return rows if quantity is None else rows[rows.quantity == quantity]


def _value(model_id: str, quantity: str, term: str = "") -> str:
    row = R[(R.model_id == model_id) & (R.quantity == quantity) & (R.term == term)]
    assert len(row) == 1, (model_id, quantity, term)
    return str(row["value"].iloc[0])


@cache
def _lmm(model_id: str):
    data = pd.read_csv(DATA / "rank_deficient.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return fit(FORMULAS[model_id], data)


def _tables(model_id: str) -> dict[str, pd.Series]:
    m = _lmm(model_id)
    sat = m.coefficients().set_index("term")
    kr = m.coefficients(ddf="kenward-roger").set_index("term")
    return {"estimate": sat["estimate"], "se": sat["se"], "df_satterthwaite": sat["df"],
            "se_KR": kr["se"], "df_KR": kr["df"]}


def _compare(model_id: str, terms: set[str] | None = None) -> int:
    tables = _tables(model_id)
    checked = 0
    for row in _rows(model_id).itertuples():
        if row.term == "" or (terms is not None and row.term not in terms):
            continue
        ours = float(tables[row.quantity][_patsy(row.term)])
        tol = TOL_DF if row.quantity.startswith("df") else TOL
        assert ours == pytest.approx(float(row.value), rel=tol), (row.term, row.quantity)
        checked += 1
    return checked


# -- (a) rank-deficient fixed effects ------------------------------------------------


def test_zero_column_is_dropped_and_named_like_lme4():
    m = _lmm("D1")
    r_dropped = _value("D1", "dropped_columns").split(";")
    assert r_dropped == ["time:programmeP3"]
    assert m.model.dropped_fixed == [_patsy(t) for t in r_dropped]
    assert "time:programme[T.P3]" not in m.fixed_names
    assert m.messages[0].startswith("fixed-effect model matrix is rank deficient so dropping 1 ")
    assert m.messages[0].endswith(": time:programme[T.P3]")
    assert "rank deficient so dropping 1 column" in _value("D1", "fit_messages")


def test_zero_column_fit_matches_lme4_lmertest_pbkrtest():
    m = _lmm("D1")
    # every kept coefficient: estimate, SE, Satterthwaite df, KR SE and KR df
    assert _compare("D1") == 5 * len(m.fixed_names) == 5 * 11
    assert m.loglik == pytest.approx(float(_value("D1", "logLik_REML")), rel=TOL)


def test_aliased_programme_level_agrees_with_lme4_where_the_choice_does_not_matter():
    """D2: ``fidelity`` is constant within programme, so it is aliased with the
    programme dummies. Which column goes depends on the column order; the
    coefficients of the time columns do not (the reparametrisation mixes only the
    intercept, fidelity and programme columns), nor does the number dropped."""
    m = _lmm("D2")
    assert len(m.model.dropped_fixed) == 2
    assert "time:programme[T.P3]" in m.model.dropped_fixed
    time_terms = {t for t in _rows("D2").term if t.startswith("time")}
    assert len(time_terms) == 5
    assert _compare("D2", time_terms) == 25


def test_aliased_programme_level_drops_the_column_lme4_drops():
    """The design orders terms as R's ``model.matrix`` (``Intercept, fidelity, time,
    programme, time:programme``), so the rank check drops what lme4 drops:
    ``programmeP6`` (aliased with the earlier intercept, fidelity and other
    programme columns) and the all-zero ``time:programmeP3``; ``fidelity`` stays."""
    m = _lmm("D2")
    assert m.model.dropped_fixed == [_patsy(t) for t in _value("D2", "dropped_columns").split(";")]
    # 13 columns less the 2 dropped; every kept coefficient checked on 5 quantities
    assert len(m.fixed_names) == 11 and "fidelity" in m.fixed_names
    assert _compare("D2") == 5 * 11
    # REML logLik contains log|X'V^-1 X|, so it depends on which column is kept
    assert m.loglik == pytest.approx(float(_value("D2", "logLik_REML")), rel=TOL)


def test_rank_check_keeps_the_columns_r_qr_keeps():
    """``qr(X, tol = 1e-7, LAPACK = FALSE)`` in R 4.2.2 on this matrix gives rank 4
    and ``pivot`` 1 2 6 8 3 4 5 7 9 (columns counted from 1): the exact alias
    ``2x + 3``, the zero column and ``x + 1e-9 z`` go, ``x + 5e-7 w`` (relative
    residual 4.9e-8) goes, ``x + 2e-6 w`` (2.0e-7) stays, and ``x + 1e-5 w`` is then
    in the span of the kept columns; the kept columns stay in their order."""
    x = np.arange(1.0, 9.0)
    z = np.array([0, 1, 0, 1, 1, 0, 0, 1], dtype=float)
    w = np.array([1, -1, 0, 0, 0, 0, 1, -1], dtype=float)
    X = np.column_stack([np.ones(8), x, 2 * x + 3, np.zeros(8), x + 1e-9 * z, z,
                         x + 5e-7 * w, x + 2e-6 * w, x + 1e-5 * w])
    assert list(independent_columns(X) + 1) == [1, 2, 6, 8]


# -- (b) cluster_robust with a level without complete rows -----------------------------


def test_cluster_robust_drops_the_empty_level_like_lm_and_matches_clubsandwich():
    """Expected values: ``lm`` + clubSandwich 0.5.8 (``vcovCR(type = "CR2")``,
    ``coef_test(test = "Satterthwaite")``, ``Wald_test(test = "HTZ")``) on the same
    CSV, i.e. independent code in another language; R drops the incomplete rows and
    the unused level P7 itself."""
    data = pd.read_csv(DATA / "cr2_empty_level.csv")
    assert set(data.loc[data.outcome.isna(), "programme"]) == {"P7"}
    res = cluster_robust("outcome ~ time * programme", data, cluster="client")
    assert res.nobs == int(float(_value("E1", "nobs"))) == 441
    assert res.messages == ("factor 'programme': level(s) P7 without complete rows dropped",)
    coefs = res.coefficients().set_index("term")
    column = {"estimate": "estimate", "se_CR2": "se", "df_satterthwaite_CR2": "df",
              "p_satterthwaite_CR2": "p_value"}
    checked = 0
    for row in _rows("E1").itertuples():
        if row.quantity in column:
            ours = coefs.loc[_patsy(row.term), column[row.quantity]]
            tol = TOL if row.quantity in ("estimate", "se_CR2") else TOL_DF
        elif row.quantity.startswith("wald_HTZ"):
            terms = [_patsy(t) for t in re.search(r"\[(.*)=0\]", row.term).group(1).split(";")]
            w = res.wald_test(terms)
            ours = {"wald_HTZ_F": w.F, "wald_HTZ_df_denom": w.df_denom,
                    "wald_HTZ_p": w.p_value}[row.quantity]
            tol = TOL if row.quantity == "wald_HTZ_F" else TOL_DF
        else:
            continue
        assert ours == pytest.approx(float(row.value), rel=tol), (row.term, row.quantity)
        checked += 1
    assert checked == 12 * 4 + 2 * 3
    assert not any(name.endswith("P7]") for name in coefs.index)


# -- (d) the HTZ clamp ----------------------------------------------------------------


@pytest.mark.parametrize("label", ["all_slopes", "fidelity"])
def test_htz_scaling_and_its_clamp_match_clubsandwich(label):
    data = pd.read_csv(REFERENCE / "multilevel" / "data" / "growth_a.csv")
    res = cluster_robust("outcome ~ time * fidelity + age", data, cluster="programme")
    rows = _rows("H1")
    rows = rows[rows.term.str.startswith(f"H:{label} [")]
    assert len(rows) == 4
    terms = [_patsy(t) for t in re.search(r"\[(.*)=0\]", rows.term.iloc[0]).group(1).split(";")]
    w = res.wald_test(terms)
    ref = dict(zip(rows.quantity, rows.value, strict=True))
    assert w.df_denom == pytest.approx(float(ref["wald_HTZ_df_denom"]), rel=TOL_DF)
    if label == "all_slopes":
        # clubSandwich: eta - q + 1 < 0, so delta = F = 0 and the p-value is NA
        assert float(ref["wald_HTZ_df_denom"]) < 0
        assert float(ref["wald_HTZ_delta"]) == 0.0 and float(ref["wald_HTZ_F"]) == 0.0
        assert ref["wald_HTZ_p"] == "NA"
        assert w.delta == 0.0 and w.F == 0.0
        assert np.isnan(w.p_value)
    else:
        assert w.delta == pytest.approx(float(ref["wald_HTZ_delta"]), rel=TOL)
        assert w.F == pytest.approx(float(ref["wald_HTZ_F"]), rel=TOL)
        assert w.p_value == pytest.approx(float(ref["wald_HTZ_p"]), rel=TOL_DF)


# -- (c) constant outcome -------------------------------------------------------------


def test_constant_outcome_raises_a_clear_data_error_where_lme4_fits_a_degenerate_model():
    note = R[R.model_id == "K1"]["note"].iloc[0]
    # lme4 returns a singular fit that failed to converge, with a Satterthwaite df ~ 0
    assert "isSingular" in _value("K1", "fit_messages")
    assert "failed to converge" in _value("K1", "fit_messages")
    assert float(re.search(r"df of time: (\S+)", note).group(1)) < 1e-6
    data = pd.read_csv(REFERENCE / "multilevel" / "data" / "growth_a.csv").assign(outcome=50.0)
    with pytest.raises(DataError, match="the outcome is constant") as info:
        fit("outcome ~ time + (1 + time | client)", data)
    assert info.value.column == "outcome"
    assert not any(c in str(info.value) for c in data.client.unique())
