"""The formula grammar and design matrices of :mod:`effectstudy.multilevel.design`.

Formulas from spec and design files are parsed, never evaluated as Python.
The column order, term order and coding below were recorded from R 4.2.2's
``model.matrix`` on the reference datasets (column names respelled as patsy, the
library the package used before, spelled them); R is not run by these tests.
R's order (terms by degree, factors of a term in order of first appearance)
decides which column a rank-deficient lme4 fit drops, so the R-reference tests
depend on it. Matrices are checked against columns built by hand from the data.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from effectstudy.errors import ModelError
from effectstudy.multilevel.design import (
    design_matrices,
    design_matrix,
    formula_variables,
    parse_terms,
)
from refdata import REFERENCE

DATA = REFERENCE / "multilevel" / "data"


def _load(name: str) -> pd.DataFrame:
    d = pd.read_csv(DATA / f"{name}.csv")
    if name == "growth_a":
        # two derived columns: a boolean and a Categorical in reverse order
        d["late"] = d["time"] > 12
        d["prog_rev"] = pd.Categorical(
            d["programme"], categories=sorted(d["programme"].unique(), reverse=True))
    return d


_CACHE: dict[str, pd.DataFrame] = {}


def data(name: str) -> pd.DataFrame:
    if name not in _CACHE:
        _CACHE[name] = _load(name)
    return _CACHE[name].copy()


# (dataset, right-hand side, column names, term names) as R 4.2.2 gives them:
# colnames(model.matrix(~ rhs, data)) and attr(terms, "term.labels"), respelled as
# patsy spells them (programmeP2 -> programme[T.P2] for contrasts, programme[P1] for
# full coding; TRUE -> True); the script checked that the respelled names map back
# onto R's colnames one to one.
R_NAMES = [
    ('growth_a', 'time * programme',
     ['Intercept', 'time', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'programme', 'time:programme']),
    ('growth_a', 'time * fidelity + age',
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity'],
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity']),
    ('growth_a', 'time + age',
     ['Intercept', 'time', 'age'],
     ['Intercept', 'time', 'age']),
    ('growth_a', '1',
     ['Intercept'],
     ['Intercept']),
    ('growth_a', '1 + time',
     ['Intercept', 'time'],
     ['Intercept', 'time']),
    ('growth_a', '0 + time',
     ['time'],
     ['time']),
    ('growth_a', 'programme * time',
     ['Intercept', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'time', 'programme[T.P2]:time', 'programme[T.P3]:time', 'programme[T.P4]:time', 'programme[T.P5]:time', 'programme[T.P6]:time'],
     ['Intercept', 'programme', 'time', 'programme:time']),
    ('growth_a', '0 + programme',
     ['programme[P1]', 'programme[P2]', 'programme[P3]', 'programme[P4]', 'programme[P5]', 'programme[P6]'],
     ['programme']),
    ('growth_a', 'programme:time',
     ['Intercept', 'programme[P1]:time', 'programme[P2]:time', 'programme[P3]:time', 'programme[P4]:time', 'programme[P5]:time', 'programme[P6]:time'],
     ['Intercept', 'programme:time']),
    ('growth_a', 'time:programme',
     ['Intercept', 'time:programme[P1]', 'time:programme[P2]', 'time:programme[P3]', 'time:programme[P4]', 'time:programme[P5]', 'time:programme[P6]'],
     ['Intercept', 'time:programme']),
    ('growth_a', 'programme * time - 1',
     ['programme[P1]', 'programme[P2]', 'programme[P3]', 'programme[P4]', 'programme[P5]', 'programme[P6]', 'time', 'programme[T.P2]:time', 'programme[T.P3]:time', 'programme[T.P4]:time', 'programme[T.P5]:time', 'programme[T.P6]:time'],
     ['programme', 'time', 'programme:time']),
    ('growth_a', 'time / programme',
     ['Intercept', 'time', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'time:programme']),
    ('growth_a', 'programme / time',
     ['Intercept', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'programme[P1]:time', 'programme[P2]:time', 'programme[P3]:time', 'programme[P4]:time', 'programme[P5]:time', 'programme[P6]:time'],
     ['Intercept', 'programme', 'programme:time']),
    ('growth_a', '(time + age + fidelity) ** 2',
     ['Intercept', 'time', 'age', 'fidelity', 'time:age', 'time:fidelity', 'age:fidelity'],
     ['Intercept', 'time', 'age', 'fidelity', 'time:age', 'time:fidelity', 'age:fidelity']),
    ('growth_a', 'time * fidelity * age',
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity', 'time:age', 'fidelity:age', 'time:fidelity:age'],
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity', 'time:age', 'fidelity:age', 'time:fidelity:age']),
    ('growth_a', 'C(occasion)',
     ['Intercept', 'C(occasion)[T.2]', 'C(occasion)[T.3]', 'C(occasion)[T.4]', 'C(occasion)[T.5]', 'C(occasion)[T.6]', 'C(occasion)[T.7]', 'C(occasion)[T.8]', 'C(occasion)[T.9]'],
     ['Intercept', 'C(occasion)']),
    ('growth_a', 'time * C(occasion)',
     ['Intercept', 'time', 'C(occasion)[T.2]', 'C(occasion)[T.3]', 'C(occasion)[T.4]', 'C(occasion)[T.5]', 'C(occasion)[T.6]', 'C(occasion)[T.7]', 'C(occasion)[T.8]', 'C(occasion)[T.9]', 'time:C(occasion)[T.2]', 'time:C(occasion)[T.3]', 'time:C(occasion)[T.4]', 'time:C(occasion)[T.5]', 'time:C(occasion)[T.6]', 'time:C(occasion)[T.7]', 'time:C(occasion)[T.8]', 'time:C(occasion)[T.9]'],
     ['Intercept', 'time', 'C(occasion)', 'time:C(occasion)']),
    ('growth_a', 'time + I(time ** 2)',
     ['Intercept', 'time', 'I(time ** 2)'],
     ['Intercept', 'time', 'I(time ** 2)']),
    ('growth_a', 'I(time**2) + I((time - 12) / 4) + I(-time)',
     ['Intercept', 'I(time ** 2)', 'I((time - 12) / 4)', 'I(-time)'],
     ['Intercept', 'I(time ** 2)', 'I((time - 12) / 4)', 'I(-time)']),
    ('growth_a', 'log(age) + sqrt(age) + exp(fidelity / 10)',
     ['Intercept', 'log(age)', 'sqrt(age)', 'exp(fidelity / 10)'],
     ['Intercept', 'log(age)', 'sqrt(age)', 'exp(fidelity / 10)']),
    ('growth_a', "C(programme, Treatment(reference='P3'))",
     ['Intercept', "C(programme, Treatment(reference='P3'))[T.P1]", "C(programme, Treatment(reference='P3'))[T.P2]", "C(programme, Treatment(reference='P3'))[T.P4]", "C(programme, Treatment(reference='P3'))[T.P5]", "C(programme, Treatment(reference='P3'))[T.P6]"],
     ['Intercept', "C(programme, Treatment(reference='P3'))"]),
    ('growth_a', "C(programme, Treatment('P3')) * time",
     ['Intercept', "C(programme, Treatment('P3'))[T.P1]", "C(programme, Treatment('P3'))[T.P2]", "C(programme, Treatment('P3'))[T.P4]", "C(programme, Treatment('P3'))[T.P5]", "C(programme, Treatment('P3'))[T.P6]", 'time', "C(programme, Treatment('P3'))[T.P1]:time", "C(programme, Treatment('P3'))[T.P2]:time", "C(programme, Treatment('P3'))[T.P4]:time", "C(programme, Treatment('P3'))[T.P5]:time", "C(programme, Treatment('P3'))[T.P6]:time"],
     ['Intercept', "C(programme, Treatment('P3'))", 'time', "C(programme, Treatment('P3')):time"]),
    ('growth_a', 'late * time',
     ['Intercept', 'late[T.True]', 'time', 'late[T.True]:time'],
     ['Intercept', 'late', 'time', 'late:time']),
    ('growth_a', 'prog_rev + time',
     ['Intercept', 'prog_rev[T.P5]', 'prog_rev[T.P4]', 'prog_rev[T.P3]', 'prog_rev[T.P2]', 'prog_rev[T.P1]', 'time'],
     ['Intercept', 'prog_rev', 'time']),
    ('growth_a', 'prog_rev:late',
     ['Intercept', 'prog_rev[P6]:late[False]', 'prog_rev[P5]:late[False]', 'prog_rev[P4]:late[False]', 'prog_rev[P3]:late[False]', 'prog_rev[P2]:late[False]', 'prog_rev[P1]:late[False]', 'prog_rev[P6]:late[True]', 'prog_rev[P5]:late[True]', 'prog_rev[P4]:late[True]', 'prog_rev[P3]:late[True]', 'prog_rev[P2]:late[True]', 'prog_rev[P1]:late[True]'],
     ['Intercept', 'prog_rev:late']),
    ('growth_a', 'programme * late',
     ['Intercept', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'late[T.True]', 'programme[T.P2]:late[T.True]', 'programme[T.P3]:late[T.True]', 'programme[T.P4]:late[T.True]', 'programme[T.P5]:late[T.True]', 'programme[T.P6]:late[T.True]'],
     ['Intercept', 'programme', 'late', 'programme:late']),
    ('growth_a', 'time * programme * late',
     ['Intercept', 'time', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'late[T.True]', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]', 'time:late[T.True]', 'programme[T.P2]:late[T.True]', 'programme[T.P3]:late[T.True]', 'programme[T.P4]:late[T.True]', 'programme[T.P5]:late[T.True]', 'programme[T.P6]:late[T.True]', 'time:programme[T.P2]:late[T.True]', 'time:programme[T.P3]:late[T.True]', 'time:programme[T.P4]:late[T.True]', 'time:programme[T.P5]:late[T.True]', 'time:programme[T.P6]:late[T.True]'],
     ['Intercept', 'time', 'programme', 'late', 'time:programme', 'time:late', 'programme:late', 'time:programme:late']),
    ('growth_a', 'time + age - 1 + fidelity',
     ['time', 'age', 'fidelity'],
     ['time', 'age', 'fidelity']),
    ('growth_a', 'time * programme - programme',
     ['Intercept', 'time', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'time:programme']),
    ('threelevel', 'time * programme',
     ['Intercept', 'time', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'programme', 'time:programme']),
    ('threelevel', 'time * fidelity + age',
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity'],
     ['Intercept', 'time', 'fidelity', 'age', 'time:fidelity']),
    ('dense_ar1', 'time * programme',
     ['Intercept', 'time', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'programme', 'time:programme']),
    ('dense_ar1', 'time + age',
     ['Intercept', 'time', 'age'],
     ['Intercept', 'time', 'age']),
    ('sleepstudy', 'Days',
     ['Intercept', 'Days'],
     ['Intercept', 'Days']),
    ('sleepstudy', '1 + Days',
     ['Intercept', 'Days'],
     ['Intercept', 'Days']),
    ('sleepstudy', '0 + Days',
     ['Days'],
     ['Days']),
    ('sleepstudy', 'Days + I(Days ** 2)',
     ['Intercept', 'Days', 'I(Days ** 2)'],
     ['Intercept', 'Days', 'I(Days ** 2)']),
    ('es_threelevel', 'fidelity',
     ['Intercept', 'fidelity'],
     ['Intercept', 'fidelity']),
    ('es_threelevel', '1',
     ['Intercept'],
     ['Intercept']),
    ('es_threelevel', 'programme + fidelity',
     ['Intercept', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'programme[T.P7]', 'programme[T.P8]', 'fidelity'],
     ['Intercept', 'programme', 'fidelity']),
    ('power_design_A', 'time',
     ['Intercept', 'time'],
     ['Intercept', 'time']),
    ('power_design_B', 'time * treat',
     ['Intercept', 'time', 'treat', 'time:treat'],
     ['Intercept', 'time', 'treat', 'time:treat']),
    ('power_design_B', 'time + time:treat',
     ['Intercept', 'time', 'time:treat'],
     ['Intercept', 'time', 'time:treat']),
    ('power_design_B', 'C(treat) * time',
     ['Intercept', 'C(treat)[T.1]', 'time', 'C(treat)[T.1]:time'],
     ['Intercept', 'C(treat)', 'time', 'C(treat):time']),
    ('growth_a', 'fidelity + time * programme',
     ['Intercept', 'fidelity', 'time', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'fidelity', 'time', 'programme', 'time:programme']),
    ('growth_a', 'late + programme:late',
     ['Intercept', 'late[T.True]', 'late[False]:programme[T.P2]', 'late[True]:programme[T.P2]', 'late[False]:programme[T.P3]', 'late[True]:programme[T.P3]', 'late[False]:programme[T.P4]', 'late[True]:programme[T.P4]', 'late[False]:programme[T.P5]', 'late[True]:programme[T.P5]', 'late[False]:programme[T.P6]', 'late[True]:programme[T.P6]'],
     ['Intercept', 'late', 'late:programme']),
    ('growth_a', 'time + programme:time',
     ['Intercept', 'time', 'time:programme[T.P2]', 'time:programme[T.P3]', 'time:programme[T.P4]', 'time:programme[T.P5]', 'time:programme[T.P6]'],
     ['Intercept', 'time', 'time:programme']),
    ('growth_a', 'time:age + programme:age',
     ['Intercept', 'time:age', 'age:programme[T.P2]', 'age:programme[T.P3]', 'age:programme[T.P4]', 'age:programme[T.P5]', 'age:programme[T.P6]'],
     ['Intercept', 'time:age', 'age:programme']),
    ('growth_a', 'programme:age + time:age',
     ['Intercept', 'programme[P1]:age', 'programme[P2]:age', 'programme[P3]:age', 'programme[P4]:age', 'programme[P5]:age', 'programme[P6]:age', 'age:time'],
     ['Intercept', 'programme:age', 'age:time']),
    ('growth_a', '0 + time:programme + late',
     ['late[False]', 'late[True]', 'time:programme[P1]', 'time:programme[P2]', 'time:programme[P3]', 'time:programme[P4]', 'time:programme[P5]', 'time:programme[P6]'],
     ['late', 'time:programme']),
    ('growth_a', 'programme:late:time + programme',
     ['Intercept', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'programme[P1]:late[False]:time', 'programme[P2]:late[False]:time', 'programme[P3]:late[False]:time', 'programme[P4]:late[False]:time', 'programme[P5]:late[False]:time', 'programme[P6]:late[False]:time', 'programme[P1]:late[True]:time', 'programme[P2]:late[True]:time', 'programme[P3]:late[True]:time', 'programme[P4]:late[True]:time', 'programme[P5]:late[True]:time', 'programme[P6]:late[True]:time'],
     ['Intercept', 'programme', 'programme:late:time']),
    ('growth_a', 'time:programme:late + late:programme',
     ['Intercept', 'programme[P1]:late[False]', 'programme[P2]:late[False]', 'programme[P3]:late[False]', 'programme[P4]:late[False]', 'programme[P5]:late[False]', 'programme[P6]:late[False]', 'programme[P1]:late[True]', 'programme[P2]:late[True]', 'programme[P3]:late[True]', 'programme[P4]:late[True]', 'programme[P5]:late[True]', 'programme[P6]:late[True]', 'time:programme[P1]:late[False]', 'time:programme[P2]:late[False]', 'time:programme[P3]:late[False]', 'time:programme[P4]:late[False]', 'time:programme[P5]:late[False]', 'time:programme[P6]:late[False]', 'time:programme[P1]:late[True]', 'time:programme[P2]:late[True]', 'time:programme[P3]:late[True]', 'time:programme[P4]:late[True]', 'time:programme[P5]:late[True]', 'time:programme[P6]:late[True]'],
     ['Intercept', 'programme:late', 'time:programme:late']),
    ('growth_a', 'late * programme - 1',
     ['late[False]', 'late[True]', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'late[T.True]:programme[T.P2]', 'late[T.True]:programme[T.P3]', 'late[T.True]:programme[T.P4]', 'late[T.True]:programme[T.P5]', 'late[T.True]:programme[T.P6]'],
     ['late', 'programme', 'late:programme']),
    ('growth_a', '(late + programme) / time',
     ['Intercept', 'late[T.True]', 'programme[T.P2]', 'programme[T.P3]', 'programme[T.P4]', 'programme[T.P5]', 'programme[T.P6]', 'late[False]:programme[P1]:time', 'late[True]:programme[P1]:time', 'late[False]:programme[P2]:time', 'late[True]:programme[P2]:time', 'late[False]:programme[P3]:time', 'late[True]:programme[P3]:time', 'late[False]:programme[P4]:time', 'late[True]:programme[P4]:time', 'late[False]:programme[P5]:time', 'late[True]:programme[P5]:time', 'late[False]:programme[P6]:time', 'late[True]:programme[P6]:time'],
     ['Intercept', 'late', 'programme', 'late:programme:time']),
    ('growth_a', 'time:fidelity + fidelity:age + age',
     ['Intercept', 'age', 'time:fidelity', 'fidelity:age'],
     ['Intercept', 'age', 'time:fidelity', 'fidelity:age']),
]


@pytest.mark.parametrize(("dataset", "rhs", "columns", "terms"), R_NAMES,
                         ids=[f"{d}:{r}" for d, r, _, _ in R_NAMES])
def test_names_and_order_as_r_gives_them(dataset, rhs, columns, terms):
    dm = design_matrix(rhs, data(dataset))
    assert dm.column_names == columns
    assert dm.design_info.term_names == terms
    assert dm.matrix.shape == (len(data(dataset)), len(columns))
    assert np.all(np.isfinite(dm.matrix))


def _dummy(s: pd.Series, level) -> np.ndarray:
    return (s == level).to_numpy(dtype=float)


def test_matrix_of_time_by_programme_built_by_hand():
    d = data("growth_a")
    X = design_matrix("time * programme", d).matrix
    t = d["time"].to_numpy(float)
    progs = ["P2", "P3", "P4", "P5", "P6"]
    expected = np.column_stack([np.ones(len(d)), t] + [_dummy(d["programme"], p) for p in progs]
                               + [t * _dummy(d["programme"], p) for p in progs])
    np.testing.assert_array_equal(X, expected)


def test_full_coding_where_a_margin_is_missing_built_by_hand():
    d = data("growth_a")
    X = design_matrix("0 + programme", d).matrix
    np.testing.assert_array_equal(
        X, np.column_stack([_dummy(d["programme"], f"P{i}") for i in range(1, 7)]))
    # prog_rev:late without margins: both in full (aliased with the intercept, as in R);
    # prog_rev in its category order (P6 first) varies fastest
    X = design_matrix("prog_rev:late", d).matrix
    late = d["late"].to_numpy(bool)
    cols = [np.ones(len(d))]
    for lv in (False, True):
        for p in ["P6", "P5", "P4", "P3", "P2", "P1"]:
            cols.append(_dummy(d["programme"], p) * (late == lv))
    np.testing.assert_array_equal(X, np.column_stack(cols))
    # late + programme:late -> late reduced, programme reduced within each level of late
    X = design_matrix("late + programme:late", d).matrix
    cols = [np.ones(len(d)), late.astype(float)]
    for p in ["P2", "P3", "P4", "P5", "P6"]:
        for lv in (False, True):
            cols.append(_dummy(d["programme"], p) * (late == lv))
    np.testing.assert_array_equal(X, np.column_stack(cols))
    # no intercept: the first categorical factor of the first term with one in full
    X = design_matrix("0 + time:programme + late", d).matrix
    t = d["time"].to_numpy(float)
    np.testing.assert_array_equal(
        X, np.column_stack([(~late).astype(float), late.astype(float)]
                           + [t * _dummy(d["programme"], f"P{i}") for i in range(1, 7)]))


def test_transforms_and_reference_level_built_by_hand():
    d = data("growth_a")
    X = design_matrix("I(time**2) + I((time - 12) / 4) + I(-time)", d).matrix
    t = d["time"].to_numpy(float)
    np.testing.assert_allclose(X, np.column_stack([np.ones(len(d)), t**2, (t - 12) / 4, -t]),
                               rtol=0, atol=0)
    X = design_matrix("log(age) + sqrt(age) + exp(fidelity / 10)", d).matrix
    a, f = d["age"].to_numpy(float), d["fidelity"].to_numpy(float)
    np.testing.assert_allclose(X[:, 1:], np.column_stack([np.log(a), np.sqrt(a), np.exp(f / 10)]))
    X = design_matrix("C(programme, Treatment(reference='P3'))", d).matrix
    np.testing.assert_array_equal(
        X[:, 1:], np.column_stack([_dummy(d["programme"], p) for p in ["P1", "P2", "P4", "P5", "P6"]]))
    X = design_matrix("C(occasion)", d).matrix
    assert X.shape[1] == 9
    np.testing.assert_array_equal(X[:, 1], _dummy(d["occasion"], 2))


# -- grammar: what is accepted -------------------------------------------------
@pytest.mark.parametrize(("formula", "terms"), [
    ("a", ["Intercept", "a"]),
    ("y ~ a + b", ["Intercept", "a", "b"]),
    ("~ a", ["Intercept", "a"]),
    ("0 + a", ["a"]),
    ("a - 1", ["a"]),
    ("-1 + a", ["a"]),
    ("a + 0 + 1", ["Intercept", "a"]),
    ("a * b", ["Intercept", "a", "b", "a:b"]),
    ("a:b:a", ["Intercept", "a:b"]),
    ("a:b - b:a", ["Intercept"]),
    ("(a + b):c", ["Intercept", "a:c", "b:c"]),
    ("a / b", ["Intercept", "a", "a:b"]),
    ("(a + b) / c", ["Intercept", "a", "b", "a:b:c"]),
    ("a * b - a", ["Intercept", "b", "a:b"]),
    ("(a + b + c) ** 2", ["Intercept", "a", "b", "c", "a:b", "a:c", "b:c"]),
    ("a + a + (a)", ["Intercept", "a"]),
    ("I(a**2)", ["Intercept", "I(a ** 2)"]),
    ("I( a*-1 )", ["Intercept", "I(a * -1)"]),
    ("I((a + 1) / 2) + log(b) + exp(-b) + sqrt(b + 1)",
     ["Intercept", "I((a + 1) / 2)", "log(b)", "exp(-b)", "sqrt(b + 1)"]),
    ("I(2 ** -a) + I(1e-3 * a)", ["Intercept", "I(2 ** -a)", "I(1e-3 * a)"]),
    ("np.log(a) + np.sqrt(b) + center(a)", ["Intercept", "np.log(a)", "np.sqrt(b)", "center(a)"]),
    ("C(g) + C(g, Treatment('x')) + C(g, Treatment(reference=\"x\"))",
     ["Intercept", "C(g)", "C(g, Treatment('x'))", "C(g, Treatment(reference=\"x\"))"]),
])
def test_grammar_accepts(formula, terms):
    assert [t.name() for t in parse_terms(formula).rhs] == terms


def test_formula_variables_reads_every_column_once():
    assert formula_variables("y ~ I(t ** 2) + C(p) * t + log(y + a)") == ["y", "t", "p", "a"]


def test_factors_are_listed_in_order_of_first_appearance():
    # R's variable order, which orders the factors within each interaction
    parsed = parse_terms("y ~ b:a + C(g) * I(a ** 2) - d:b")
    assert [f.name() for f in parsed.factors] == ["y", "b", "a", "C(g)", "I(a ** 2)", "d"]


def test_response_is_returned_with_its_rows():
    d = data("sleepstudy")
    y, name, X = design_matrices("Reaction ~ Days", d)
    assert name == "Reaction" and X.column_names == ["Intercept", "Days"]
    np.testing.assert_array_equal(y, d["Reaction"].to_numpy(float))
    y, name, _ = design_matrices("log(Reaction) ~ Days", d)
    assert name == "log(Reaction)"
    np.testing.assert_allclose(y, np.log(d["Reaction"].to_numpy(float)))


# -- grammar: what is refused ----------------------------------------------------
@pytest.mark.parametrize(("formula", "offending"), [
    ("z ~ week + I(__import__('os').system('id')*0 + week)", "__import__"),
    ("y ~ __class__", "__class__"),
    ("y ~ os.system", "'.'"),
    ("y ~ x[0]", "'['"),
    ("y ~ open('x')", "open"),
    ("y ~ I(open('x'))", "open"),
    ("y ~ np.linalg(x)", "'.'"),
    ("y ~ np.log.__class__", "'.'"),
    ("y ~ np.logx(x)", "'.'"),
    ("y ~ lambda: x", "lambda"),
    ("y ~ I(x if x else 0)", "if"),
    ("y ~ 'text'", "'text'"),
    ("y ~ I('a' * 3)", "'a'"),
    ("y ~ C(g, Sum)", "Sum"),
    ("y ~ C(g, Treatment(reference=g))", "'g'"),
    ("y ~ C(g, levels=2)", "'levels'"),
    ("y ~ log(x, base=10)", "','"),
    ("y ~ x + 2", "'2'"),
    ("y ~ x ** y", "'**'"),
    ("y ~ -x", "unary '-'"),
    ("y ~ x ~ z", "'~'"),
    ("y ~ (x", "ends too early"),
    ("y ~ x)", "')'"),
    ("y ~ x; import os", "';'"),
    ("y ~ x # comment", "'#'"),
    ("y ~ {x}", "'{'"),
    ("y ~ `x`", "'`'"),
    ("y ~ x | g", "'|'"),
    ("y ~ I(x @ x)", "'@'"),
    ("y ~ 1:x", "intercept"),
])
def test_grammar_refuses_with_the_offending_token(formula, offending):
    with pytest.raises(ModelError) as err:
        parse_terms(formula)
    assert offending in str(err.value)


def test_refuses_deep_nesting_and_long_formulas():
    with pytest.raises(ModelError, match="nested deeper"):
        parse_terms("y ~ " + "(" * 500 + "x" + ")" * 500)
    with pytest.raises(ModelError, match="nested deeper"):
        parse_terms("y ~ I(" + "(" * 500 + "x" + ")" * 500 + ")")
    with pytest.raises(ModelError, match="longer than"):
        parse_terms("y ~ " + " + ".join(["x"] * 2000))


def test_columns_must_exist_and_be_numeric_inside_transforms():
    d = data("growth_a")
    with pytest.raises(ModelError, match="'nonexistent'"):
        design_matrix("time + nonexistent", d)
    with pytest.raises(ModelError, match="'programme' is used as a number"):
        design_matrix("I(programme * 2)", d)
    with pytest.raises(ModelError, match="reference level"):
        design_matrix("C(programme, Treatment('P9'))", d)
    with pytest.raises(ModelError, match="not numeric"):
        design_matrices("programme ~ time", d)


# -- missing values --------------------------------------------------------------
def test_center_keeps_the_mean_of_the_design_data():
    d = data("growth_a")
    dm = design_matrix("center(time)", d)
    t = d["time"].to_numpy(float)
    np.testing.assert_allclose(dm.matrix[:, 1], t - t.mean(), rtol=0, atol=1e-12)
    X, _ = dm.design_info.build(pd.DataFrame({"time": [0.0, 10.0]}))
    np.testing.assert_allclose(X[:, 1], [0.0 - t.mean(), 10.0 - t.mean()], rtol=0, atol=1e-12)


def test_missing_values_raise_or_drop():
    d = data("growth_a").head(20).copy()
    d.loc[[3, 7], "age"] = np.nan
    d.loc[[5], "programme"] = None
    with pytest.raises(ModelError, match="2 row"):
        design_matrix("time + age", d, NA_action="raise")
    dm = design_matrix("time + age + programme", d, NA_action="drop")
    assert list(dm.rows) == [i for i in range(20) if i not in (3, 5, 7)]
    np.testing.assert_array_equal(dm.matrix[:, dm.column_names.index("age")],
                                  d["age"].to_numpy(float)[dm.rows])
    # a transform that gives NaN counts as missing, as a missing input does
    d2 = data("growth_a").head(5).copy()
    d2.loc[1, "age"] = -1.0
    assert list(design_matrix("log(age)", d2, NA_action="drop").rows) == [0, 2, 3, 4]


# -- new data with the design's coding -----------------------------------------------
def test_design_info_builds_new_data_with_the_fitted_coding():
    d = data("growth_a")
    info = design_matrix("time * programme", d).design_info
    new = pd.DataFrame({"time": [0.0, 10.0], "programme": ["P3", "P1"]})
    X, rows = info.build(new)
    assert list(rows) == [0, 1]
    expected = np.zeros((2, 12))
    expected[:, 0] = 1
    expected[0, 3] = 1          # programme[T.P3]
    expected[1, 1] = 10.0       # time (P1 is the reference)
    np.testing.assert_array_equal(X, expected)
    with pytest.raises(ModelError, match="not among the 6 levels") as err:
        info.build(pd.DataFrame({"time": [1.0], "programme": ["Naomi Jansen"]}))
    assert "Naomi" not in str(err.value)


def test_design_info_keeps_terms_levels_and_slices():
    info = design_matrix("time * programme", data("growth_a")).design_info
    assert info.variables == ["time", "programme"]
    assert info.term_name_slices["time:programme"] == slice(7, 12)
    (prog,) = [f for f in info.factor_infos if f.name() == "programme"]
    assert info.factor_infos[prog].type == "categorical"
    assert info.factor_infos[prog].categories == ("P1", "P2", "P3", "P4", "P5", "P6")
    assert info.describe() == "1 + time + programme + time:programme"
