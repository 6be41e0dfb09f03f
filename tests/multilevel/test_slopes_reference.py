"""Per-programme slopes and slope-vs-mean contrasts against emmeans 1.8.4.

Reference: ``shared/reference/study/expected_study.csv``, families ``slopes``
(``emtrends(fit, ~ programme, var = "time", lmer.df = m)``) and
``slope_vs_mean`` (``contrast(emtrends(...), "eff", adjust = "none")``) for
``m`` in kenward-roger and satterthwaite, on
``shared/reference/multilevel/data/growth_a.csv`` with
``lmer(outcome ~ time * programme + (1 + time | client), REML = TRUE)`` and tight
optimiser tolerances (``generate.R``).

Tolerance: 1e-4 relative on every quantity (estimates, SEs, CI bounds, df and
p-values), the house standard for iterative fits. Issue 11 allowed 2e-3 on df and
p, but the package agrees with emmeans to better than 1e-6 on all of them, so the
looser bound would hide a regression. A missing reference fails, never skips.

The tests on other formulas compare with the linear combination written out by
hand from the coefficient names (time + interaction, covariates at their mean,
equal weights over another factor), not with the package's grid code.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import EffectStudyError, ModelError
from effectstudy.multilevel import fit as lmm_fit
from effectstudy.multilevel import slopes
from refdata import REFERENCE

EXPECTED = REFERENCE / "study" / "expected_study.csv"
DATA = REFERENCE / "multilevel" / "data" / "growth_a.csv"
FORMULA = "outcome ~ time * programme + (1 + time | client)"

TOL = 1e-4
COLUMN = {"estimate": "estimate", "se": "se", "df": "df", "ci_lower": "ci_lower",
          "ci_upper": "ci_upper", "p": "p_value"}


def _reference_rows() -> list[pytest.param]:
    if not EXPECTED.exists():  # collected without the reference: one case that fails
        return [pytest.param(None, None, None, None, None, id="reference-missing")]
    ref = pd.read_csv(EXPECTED)
    ref = ref[ref["family"].isin(["slopes", "slope_vs_mean"])]
    params = []
    for r in ref.itertuples(index=False):
        method = "kenward-roger" if "lmer.df = 'kenward-roger'" in r.call else "satterthwaite"
        assert f"lmer.df = '{method}'" in r.call
        qty = r.quantity
        if qty != "estimate":
            suffix = "_" + method
            assert qty.endswith(suffix), qty
            qty = qty[: -len(suffix)]
        params.append(pytest.param(r.family, method, r.group, qty, float(r.value),
                                   id=f"{r.family}-{method}-{r.group}-{qty}"))
    return params


REF_ROWS = _reference_rows()


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    if not DATA.is_file():
        pytest.fail(f"reference data not found at {DATA}; set EFFECTSTUDY_REFERENCE")
    return pd.read_csv(DATA)


@pytest.fixture(scope="module")
def fitted(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmm_fit(FORMULA, data, reml=True)


@pytest.fixture(scope="module")
def tables(fitted) -> dict[tuple[str, str], pd.DataFrame]:
    out = {}
    for method in ("kenward-roger", "satterthwaite"):
        out[("slopes", method)] = slopes(fitted, ddf=method)
        out[("slope_vs_mean", method)] = slopes(fitted, ddf=method, contrast="vs_mean")
    return out


def test_reference_covers_both_families_methods_and_programmes():
    # 6 programmes x (6 slope quantities + 4 contrast quantities) x 2 methods
    assert len(REF_ROWS) == 120
    groups = {p.values[2] for p in REF_ROWS}
    assert groups == {f"P{i}" for i in range(1, 7)}


@pytest.mark.parametrize(("family", "method", "group", "quantity", "expected"), REF_ROWS)
def test_matches_emmeans(tables, family, method, group, quantity, expected):
    if family is None:
        pytest.fail(f"reference values not found at {EXPECTED}; set EFFECTSTUDY_REFERENCE")
    tab = tables[(family, method)].set_index("programme")
    got = float(tab.loc[group, COLUMN[quantity]])
    assert got == pytest.approx(expected, rel=TOL, abs=0.0)


def test_columns_order_and_attrs(tables):
    tab = tables[("slopes", "kenward-roger")]
    assert list(tab.columns) == ["programme", "estimate", "se", "df", "ci_lower", "ci_upper",
                                 "statistic", "p_value"]
    assert tab.attrs["adjustment"] == "none"
    assert tab.attrs["ddf"] == "kenward-roger"
    assert tab.attrs["var"] == "time" and tab.attrs["by"] == "programme"
    eff = tables[("slope_vs_mean", "satterthwaite")]
    assert list(eff.columns)[:8] == list(tab.columns)
    assert set(eff["adjustment"]) == {"none"}
    assert eff.attrs["adjustment"] == "none"
    assert eff.attrs["contrast"] == "vs_mean"
    assert "no multiplicity adjustment" in eff.attrs["note"]


def test_statistic_is_estimate_over_se(tables):
    for tab in tables.values():
        np.testing.assert_allclose(tab["statistic"], tab["estimate"] / tab["se"], rtol=1e-12)


def test_kr_slopes_are_coefficient_sums(fitted, tables):
    # time (reference level P1) and time + time:programme[T.Pk]: hand-built L
    names = list(fitted.fixed_names)
    beta = pd.Series(fitted.beta, index=names)
    V = pd.DataFrame(fitted.vcov_kr(), index=names, columns=names)
    tab = tables[("slopes", "kenward-roger")].set_index("programme")
    for g in [f"P{i}" for i in range(1, 7)]:
        terms = ["time"] + ([f"time:programme[T.{g}]"] if g != "P1" else [])
        est = float(beta[terms].sum())
        se = float(np.sqrt(V.loc[terms, terms].to_numpy().sum()))
        assert tab.loc[g, "estimate"] == pytest.approx(est, rel=1e-10)
        assert tab.loc[g, "se"] == pytest.approx(se, rel=1e-10)


def test_confidence_level_changes_width(fitted, tables):
    t90 = slopes(fitted, ddf="kenward-roger", confidence=0.90)
    t95 = tables[("slopes", "kenward-roger")]
    w90 = (t90["ci_upper"] - t90["ci_lower"]).to_numpy()
    w95 = (t95["ci_upper"] - t95["ci_lower"]).to_numpy()
    assert np.all(w90 < w95)
    # 90% limits from the t quantile at the same df
    from scipy import stats
    crit = stats.t.ppf(0.95, t90["df"])
    np.testing.assert_allclose(t90["ci_lower"], t90["estimate"] - crit * t90["se"], rtol=1e-12)


def test_covariate_interacting_with_time_is_held_at_its_mean(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm_fit("outcome ~ time * programme + time:age + age + (1 + time | client)",
                    data, reml=True)
    names = list(f.fixed_names)
    beta = pd.Series(f.beta, index=names)
    age_mean = float(data["age"].mean())
    tab = slopes(f, ddf="satterthwaite").set_index("programme")
    for g in ["P1", "P4"]:
        est = beta["time"] + age_mean * beta["time:age"]
        if g != "P1":
            est += beta[f"time:programme[T.{g}]"]
        assert tab.loc[g, "estimate"] == pytest.approx(est, rel=1e-10)
    assert tab.attrs["at"]["age"] == pytest.approx(age_mean)


def test_other_factor_is_averaged_with_equal_weights(data):
    d = data.copy()
    d["setting"] = np.where(d["age"] > d["age"].median(), "high", "low")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm_fit("outcome ~ time * programme + time * setting + (1 + time | client)", d,
                    reml=True)
    beta = pd.Series(f.beta, index=list(f.fixed_names))
    tab = slopes(f, ddf="satterthwaite").set_index("programme")
    # levels high (reference) and low: slope = time + 0.5 * time:setting[T.low] (+ programme)
    est = beta["time"] + 0.5 * beta["time:setting[T.low]"] + beta["time:programme[T.P3]"]
    assert tab.loc["P3", "estimate"] == pytest.approx(est, rel=1e-10)
    assert tab.attrs["averaged_over"] == ["setting"]


def test_vs_mean_rows_sum_to_zero(tables):
    for method in ("kenward-roger", "satterthwaite"):
        eff = tables[("slope_vs_mean", method)]
        assert abs(eff["estimate"].sum()) < 1e-12


@pytest.mark.parametrize("formula, var", [
    ("outcome ~ time * programme + I(time**2) + (1 + time | client)", "time"),
    ("outcome ~ np.log(t1) * programme + (1 + t1 | client)", "t1"),
])
def test_nonlinear_var_is_refused(data, formula, var):
    d = data.assign(t1=data["time"] + 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm_fit(formula, d, reml=True)
    with pytest.raises(ModelError, match="non-linearly"):
        slopes(f, var=var)


def test_linear_transform_of_var_is_accepted(data, tables):
    # center(time) is linear in time: the same slopes as the reference model
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm_fit("outcome ~ center(time) * programme + (1 + time | client)", data,
                    reml=True)
    got = slopes(f, ddf="satterthwaite")
    np.testing.assert_allclose(got["estimate"],
                               tables[("slopes", "satterthwaite")]["estimate"], rtol=1e-6)


@pytest.mark.parametrize("kwargs, pattern", [
    ({"ddf": "residual"}, "kenward-roger, satterthwaite"),
    ({"ddf": "KR-ish"}, "kenward-roger, satterthwaite"),
    ({"contrast": "pairwise"}, "vs_mean"),
    ({"confidence": 95}, "confidence"),
    ({"var": "programme"}, "numeric"),
    ({"var": "wellbeing"}, "not a variable"),
    ({"by": "time", "var": "time"}, "factor"),
    ({"by": "client"}, "not a variable"),
])
def test_bad_arguments(fitted, kwargs, pattern):
    with pytest.raises(ModelError, match=pattern) as info:
        slopes(fitted, **kwargs)
    assert isinstance(info.value, EffectStudyError)
    assert "P1_C" not in str(info.value)  # never a client id


def test_kenward_roger_needs_reml(data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = lmm_fit(FORMULA, data, reml=False)
    with pytest.raises(ModelError, match="REML"):
        slopes(f, ddf="kenward-roger")
    assert len(slopes(f, ddf="satterthwaite")) == 6


def test_not_a_fit():
    with pytest.raises(ModelError):
        slopes(pd.DataFrame({"time": [1.0]}))


def test_exported_from_package():
    import effectstudy.multilevel as ml

    assert ml.slopes is slopes
    assert "slopes" in ml.__all__
    assert "effectstudy.multilevel.trends" in sys.modules
