"""effectstudy.multilevel against lme4 / lmerTest / pbkrtest (expected_lmer.csv).

One test id per reference row (rows whose note starts with "diagnostic" are not
reference values and are skipped). Every model is fitted once per module
(a cache keyed by dataset, formula and REML/ML).

Tolerances (relative, with a tiny absolute floor for values near zero); the
observed agreement is given in brackets:

* estimates, SEs, variance components, theta, logLik and criteria: 1e-4
  [max 1.1e-5, in threelevel M2 whose REML optimum is flat: the README reports
  max|dtheta| = 1.4e-5 between lme4's optimizers there; the other largest
  differences are in the other three-level (M2) fits; logLik/REMLcrit agree to 1e-13];
* Satterthwaite df and everything derived from them: 1e-4 [max 1.8e-5];
* Kenward-Roger SE, df, F, F scaling: 1e-4 [max 1e-5];
* p-values: compared on the log scale, |log p - log p_ref| < 1e-4 [max 2.1e-5],
  because a small relative error in a df moves a tiny p-value (1e-51) by a
  relative amount of order e * |t| * |d log p / dt|.

fit_messages rows: only the singular flag is compared, not the text.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from effectstudy.multilevel import lmm

try:
    from refdata import REFERENCE
except ImportError:  # pragma: no cover
    REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"

REF_DIR = REFERENCE / "multilevel"
EXPECTED = REF_DIR / "expected_lmer.csv"

TOL_EST = 1e-4
TOL_DF = 1e-4
TOL_KR = 1e-4
TOL_LOGP = 1e-4


def _load_rows() -> pd.DataFrame:
    if not EXPECTED.exists():
        return pd.DataFrame()
    d = pd.read_csv(EXPECTED, dtype={"value": str})
    d = d[~d["note"].fillna("").str.startswith("diagnostic")].reset_index(drop=True)
    return d


ROWS = _load_rows()


def _row_id(i: int, r: pd.Series) -> str:
    term = "" if pd.isna(r["term"]) else str(r["term"])
    term = re.sub(r"\s*\[.*\]", "", term)
    return f"{r['dataset']}-{r['model_id'].split('_')[0]}-{r['estimation']}-{term}-{r['quantity']}-{i}"


PARAMS = [pytest.param(i, id=_row_id(i, r)) for i, r in ROWS.iterrows()]

# --------------------------------------------------------------------------
# fitted-model cache
# --------------------------------------------------------------------------
_DATA: dict[str, pd.DataFrame] = {}
_FITS: dict[tuple[str, str, bool], lmm.MixedModelResults] = {}
_CACHE: dict[tuple, object] = {}


def _data(name: str) -> pd.DataFrame:
    if name not in _DATA:
        _DATA[name] = pd.read_csv(REF_DIR / "data" / f"{name}.csv")
    return _DATA[name]


def _fit(dataset: str, formula: str, reml: bool) -> lmm.MixedModelResults:
    key = (dataset, formula, reml)
    if key not in _FITS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", lmm.FewClustersWarning)
            _FITS[key] = lmm.fit(formula, _data(dataset), reml=reml)
    return _FITS[key]


def _cached(key: tuple, fn):
    if key not in _CACHE:
        _CACHE[key] = fn()
    return _CACHE[key]


@pytest.fixture(scope="module")
def fits():
    """Module-scoped cache of the fitted models (each model is fitted once)."""
    yield _FITS
    _FITS.clear()
    _CACHE.clear()


# --------------------------------------------------------------------------
# R names -> patsy names
# --------------------------------------------------------------------------
def _patsy_name(r_name: str, data: pd.DataFrame) -> str:
    if r_name == "(Intercept)":
        return "Intercept"
    cats = [c for c in data.columns if not pd.api.types.is_numeric_dtype(data[c])]
    parts = []
    for part in r_name.split(":"):
        new = part
        for c in cats:
            if part.startswith(c) and part != c:
                lvl = part[len(c):]
                if lvl in set(data[c].astype(str)):
                    new = f"{c}[T.{lvl}]"
                    break
        parts.append(new)
    return ":".join(parts)


def _hyp_coefs(term: str) -> list[str]:
    m = re.match(r"H:\S+ \[(.*)=0\]$", term)
    assert m, term
    return m.group(1).split(";")


def _reduced_formula(r_call: str) -> str:
    m = re.search(r"KRmodcomp\(lmer\((.*?), REML=TRUE\), lmer\((.*?), REML=TRUE\)\)", r_call)
    assert m, r_call
    return m.group(2)


# --------------------------------------------------------------------------
# the value our code gives for a row
# --------------------------------------------------------------------------
def _actual(row: pd.Series):
    dataset, formula = row["dataset"], row["formula"]
    reml = row["estimation"] == "REML"
    fit = _fit(dataset, formula, reml)
    data = _data(dataset)
    q = row["quantity"]
    term = "" if pd.isna(row["term"]) else str(row["term"])
    key = (dataset, formula, reml)

    if q == "nobs":
        return fit.nobs
    if q == "n_groups":
        return fit.n_groups[term]
    if q == "is_singular":
        return int(fit.is_singular)
    if q == "n_parameters":
        return fit.n_parameters
    if q in ("logLik_REML", "logLik_ML"):
        return fit.loglik
    if q in ("REMLcrit", "deviance_ML"):
        return fit.deviance
    if q in ("AIC_REML", "AIC_ML"):
        return fit.aic
    if q == "BIC_ML":
        return fit.bic
    if q == "theta":
        return dict(zip(fit.theta_names, fit.theta, strict=True))[term]
    if q in ("sd", "cor", "variance", "covariance"):
        vc = _cached(key + ("vc",), fit.variance_components).set_index("component")
        col = "estimate" if q in ("sd", "cor") else "variance"
        return vc.loc[term, col]
    if q in ("estimate", "se") or q.endswith("_satterthwaite") and not q.startswith(
            ("anova", "contest")) or q in ("se_kr", "df_kr", "t_kr", "p_kr"):
        method = "kenward-roger" if q.endswith("_kr") else (
            "satterthwaite" if q.endswith("_satterthwaite") else "residual")
        tab = _cached(key + ("coef", method), lambda: fit.coefficients(method)).set_index("term")
        r = tab.loc[_patsy_name(term, data)]
        col = {"estimate": "estimate", "se": "se", "se_kr": "se"}.get(q) or {
            "df": "df", "t": "statistic", "p": "p_value"}[q.split("_")[0]]
        return r[col]
    if q.startswith("anova3_"):
        _, what, method = q.split("_")
        method = "kenward-roger" if method == "kr" else "satterthwaite"
        tab = _cached(key + ("anova", method), lambda: fit.anova(method)).set_index("term")
        r = tab.loc[_patsy_name(term, data)]
        return r[{"F": "F", "numdf": "num_df", "dendf": "den_df", "p": "p_value"}[what]]
    if q.startswith("contest_"):
        _, what, method = q.split("_")
        method = "kenward-roger" if method == "kr" else "satterthwaite"
        names = [_patsy_name(c, data) for c in _hyp_coefs(term)]
        tab = _cached(key + ("contest", term, method), lambda: fit.contrast(names, ddf=method))
        r = tab.iloc[0]
        return r[{"F": "F", "numdf": "num_df", "dendf": "den_df", "p": "p_value"}[what]]
    if q.startswith("KRmodcomp_"):
        rest = q[len("KRmodcomp_"):]
        if rest.startswith("models_"):
            rest = rest[len("models_"):]
            reduced = _reduced_formula(row["r_call"])

            def run():
                small = _fit(dataset, reduced, True)
                return lmm.kr_modcomp(fit, small)

            tab = _cached(key + ("krmodels", reduced), run)
        else:
            names = [_patsy_name(c, data) for c in _hyp_coefs(term)]
            tab = _cached(key + ("kr", term),
                          lambda: fit.contrast(names, ddf="kenward-roger"))
        tab = tab.set_index("test")
        if rest == "F_scaling":
            return tab.loc["Ftest", "F_scaling"]
        test, what = rest.split("_")
        return tab.loc[test, {"stat": "F", "ndf": "num_df", "ddf": "den_df",
                              "p": "p_value"}[what]]
    raise KeyError(q)


def _tolerance(q: str) -> float:
    if "satterthwaite" in q:
        return TOL_DF
    if q.endswith("_kr") or "KRmodcomp" in q:
        return TOL_KR
    return TOL_EST


def _is_p(q: str) -> bool:
    return q.startswith("p_") or q.endswith("_p") or "_p_" in q


@pytest.mark.parametrize("i", PARAMS)
def test_lmer_reference(i: int, fits) -> None:
    row = ROWS.loc[i]
    q = row["quantity"]
    if q == "fit_messages":
        fit = _fit(row["dataset"], row["formula"], row["estimation"] == "REML")
        expect_singular = "singular" in str(row["value"]).lower()
        assert fit.is_singular == expect_singular
        return
    actual = float(_actual(row))
    expected = float(row["value"])
    if _is_p(q):
        assert np.log(actual) == pytest.approx(np.log(expected), abs=TOL_LOGP), (actual, expected)
        return
    tol = _tolerance(q)
    assert actual == pytest.approx(expected, rel=tol, abs=1e-9), (actual, expected)
