"""Model formulas without code: design matrices from parsed formulas.

Formulas are parsed by the grammar of :mod:`effectstudy.multilevel.grammar`
(Wilkinson-Rogers notation as R and patsy write it; parsed, never evaluated as
Python); its public names (:func:`parse_terms`, :func:`formula_variables`,
:class:`Factor`, :class:`Term`, :class:`FormulaTerms`) are re-exported here.

The columns are those of R's ``model.matrix`` (R Core Team, *R: A Language
and Environment for Statistical Computing*, ``?terms.formula`` and
``?model.matrix``; Chambers & Hastie 1992, *Statistical Models in S*, chapter
2), so that a rank-deficient fit drops the columns lme4 drops and coefficient
tables line up with R's:

* term order: the intercept, then the terms by their order (main effects,
  two-way interactions, ...), each order in the order the formula gives
  (``terms.formula`` with ``keep.order = FALSE``): ``fidelity + time * programme``
  gives ``Intercept, fidelity, time, programme, time:programme``;
* the factors of an interaction are in order of their first appearance in the
  formula (``time + programme:time`` has the term ``time:programme``); the
  first factor varies fastest over the columns of a term;
* categorical factors get treatment contrasts with the first level as
  reference (sorted values; the category order of a pandas ``Categorical``;
  ``False < True`` for booleans), or full dummy coding where the term without
  the factor is not contained in an earlier term; without an intercept the
  first categorical factor of the first term that has one is coded in full.
  Hierarchical formulas so give full-rank matrices; a formula such as
  ``a:b`` without its margins gives aliased columns, as in R.

Columns are named as patsy (Smith et al., patsy 1.0) names them, which the
package has always used: ``Intercept``, ``time``, ``programme[T.P2]``,
``time:programme[T.P2]``, ``programme[P1]``, ``I(time ** 2)``, ``C(x)[T.b]``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from effectstudy.errors import ModelError
from effectstudy.multilevel.grammar import (
    INTERCEPT,
    TRANSFORMS,
    Factor,
    FormulaTerms,
    Term,
    formula_variables,
    parse_terms,
)

__all__ = [
    "DesignInfo",
    "DesignMatrix",
    "Factor",
    "FactorInfo",
    "FormulaTerms",
    "Term",
    "design_matrices",
    "design_matrix",
    "formula_variables",
    "parse_terms",
]

NAAction = Literal["raise", "drop"]

# ---------------------------------------------------------------------------
# evaluation over data
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FactorInfo:
    """How a factor is coded: ``type`` ``"numerical"`` or ``"categorical"``, its levels."""

    factor: Factor
    type: str
    categories: tuple | None = None
    reference: int = 0
    #: subtracted from the values (``center()``: the mean of the data the design was made on)
    shift: float = 0.0

    @property
    def num_columns(self) -> int:
        return 1


def _column(data: pd.DataFrame, name: str) -> pd.Series:
    if name not in data.columns:
        raise ModelError(f"the formula uses column {name!r}, which is not in the data",
                         column=name)
    col = data[name]
    if isinstance(col, pd.DataFrame):
        raise ModelError(f"the data has more than one column named {name!r}", column=name)
    return col


def _is_numeric(s: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(s.dtype) and not pd.api.types.is_bool_dtype(s.dtype)


def _as_float(s: pd.Series, name: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(s.dtype):
        return s.to_numpy(dtype=float, na_value=np.nan)
    if not _is_numeric(s):
        raise ModelError(f"column {name!r} is used as a number but is not numeric", column=name)
    return s.to_numpy(dtype=float, na_value=np.nan)


def _sort_levels(values: list) -> list:
    def key(v: Any) -> tuple:
        if isinstance(v, bool | np.bool_):
            return (0, float(v), "")
        if isinstance(v, int | float | np.integer | np.floating):
            return (0, float(v), "")
        return (1, 0.0, type(v).__name__ + ":" + str(v))
    return sorted(values, key=key)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _sniff_levels(s: pd.Series) -> tuple:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return tuple(_py(c) for c in s.cat.categories)
    if pd.api.types.is_bool_dtype(s.dtype):
        return (False, True)
    vals = [_py(v) for v in pd.unique(s.dropna().astype(object))]
    return tuple(_sort_levels(vals))


def _level_str(level: Any) -> str:
    return level if isinstance(level, str) else repr(_py(level))


def _eval_arith(e: tuple, data: pd.DataFrame) -> np.ndarray | float:
    kind = e[0]
    if kind == "num":
        return float(e[1])
    if kind == "var":
        return _as_float(_column(data, e[1]), e[1])
    if kind == "paren":
        return _eval_arith(e[1], data)
    if kind == "unary":
        v = _eval_arith(e[2], data)
        return -v if e[1] == "-" else v
    if kind == "call":
        return TRANSFORMS[e[1]](_eval_arith(e[2], data))
    a, b = _eval_arith(e[2], data), _eval_arith(e[3], data)
    op = e[1]
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return np.true_divide(a, b)
    return np.power(a, b)


def _factor_info(f: Factor, data: pd.DataFrame) -> FactorInfo:
    if f.kind == "numeric":
        for v in f.variables:
            _as_float(_column(data, v), v)
        shift = 0.0
        if f.centered:
            with np.errstate(all="ignore"):
                vals = np.broadcast_to(np.asarray(_eval_arith(f.expr, data), dtype=float),
                                       (len(data),))
            ok = vals[~np.isnan(vals)]
            shift = float(ok.mean()) if ok.size else 0.0
        return FactorInfo(f, "numerical", shift=shift)
    s = _column(data, f.variables[0])
    if f.kind == "column" and _is_numeric(s):
        return FactorInfo(f, "numerical")
    levels = _sniff_levels(s)
    ref = 0
    if f.reference is not None:
        matches = [i for i, lv in enumerate(levels) if lv == f.reference or
                   _level_str(lv) == f.reference]
        if not matches:
            raise ModelError(f"the reference level given in {f.code} is not a level of "
                             f"{f.variables[0]!r}", column=f.variables[0])
        ref = matches[0]
    return FactorInfo(f, "categorical", levels, ref)


def _eval_factor(info: FactorInfo, data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Values (floats, or level codes with -1 for missing) and the missing mask."""
    f = info.factor
    if info.type == "numerical":
        if f.kind == "numeric":
            with np.errstate(all="ignore"):
                v = _eval_arith(f.expr, data)
            v = np.broadcast_to(np.asarray(v, dtype=float), (len(data),)) - info.shift
        else:
            v = _as_float(_column(data, f.variables[0]), f.variables[0])
        return v, np.isnan(v)
    s = _column(data, f.variables[0])
    index = {lv: i for i, lv in enumerate(info.categories or ())}
    missing = s.isna().to_numpy()
    codes = np.full(len(s), -1, dtype=np.int64)
    unknown = 0
    for i, (val, na) in enumerate(zip(s.astype(object).to_numpy(), missing, strict=True)):
        if na:
            continue
        code = index.get(_py(val))
        if code is None:
            unknown += 1
        else:
            codes[i] = code
    if unknown:
        raise ModelError(f"{unknown} value(s) of {f.code} are not among the {len(index)} "
                         "levels the design was built with", column=f.variables[0])
    return codes, missing


# ---------------------------------------------------------------------------
# term order and coding (R's terms.formula and model.matrix)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subterm:
    """The factors of one term's columns; ``full`` marks categorical factors coded in full."""

    factors: tuple[Factor, ...]
    full: frozenset[Factor]


def _r_terms(terms: Sequence[Term], order: Sequence[Factor]) -> list[Term]:
    """The terms in R's order, each with its factors in R's variable order.

    R's ``terms.formula`` (``keep.order = FALSE``) puts the intercept first,
    then the terms by their order (main effects, two-way interactions, ...),
    keeping the formula's order within an order; the factors of a term follow
    the order in which the variables first appear in the formula, so
    ``time + programme:time`` has the term ``time:programme``.
    """
    rank = {f: i for i, f in enumerate(order)}
    for t in terms:  # terms built without a parser: order of appearance
        for f in t.factors:
            rank.setdefault(f, len(rank))
    out: list[Term] = []
    for t in terms:
        term = Term(tuple(sorted(t.factors, key=rank.__getitem__)))
        if term not in out:
            out.append(term)
    return sorted(out, key=lambda t: len(t.factors))  # stable within an order


def _r_codings(terms: Sequence[Term], infos: dict[Factor, FactorInfo]) -> list[frozenset[Factor]]:
    """The categorical factors coded in full (dummy per level) in each term.

    R's ``model.matrix`` rule (Chambers & Hastie 1992, *Statistical Models in
    S*, section 2.4.1; ``TermCode`` in R's ``model.c``): a categorical factor
    of a term gets treatment contrasts if the term without it is empty or is
    contained in an earlier term (in the order of :func:`_r_terms`), and full
    coding otherwise. Without an intercept the first categorical factor of the
    first term that has one is coded in full as well. Non-hierarchical
    formulas (``a:b`` without ``a``) can so give aliased columns, as in R.
    """
    earlier: list[frozenset[Factor]] = []
    need_full = INTERCEPT not in terms
    out: list[frozenset[Factor]] = []
    for t in terms:
        factors = frozenset(t.factors)
        cats = [f for f in t.factors if infos[f].type == "categorical"]
        full = {f for f in cats
                if (factors - {f}) and not any(factors - {f} <= e for e in earlier)}
        if need_full and cats:
            full.add(cats[0])
            need_full = False
        if t.factors:
            earlier.append(factors)
        out.append(frozenset(full))
    return out


# ---------------------------------------------------------------------------
# design info and matrices
# ---------------------------------------------------------------------------
@dataclass
class DesignInfo:
    """What a design matrix was built from, so new data get the same coding.

    Attributes
    ----------
    formula:
        The right-hand side the matrix was built from.
    terms:
        The terms in column order (the intercept is ``Term(())``).
    factor_infos:
        Coding of each factor: numeric, or categorical with its levels.
    term_slices:
        The columns of each term.
    column_names:
        Coefficient names as patsy spells them.
    """

    formula: str
    terms: list[Term]
    factor_infos: dict[Factor, FactorInfo]
    term_slices: dict[Term, slice]
    column_names: list[str]
    _blocks: list[tuple[Term, list[_Subterm]]] = field(repr=False, default_factory=list)

    @property
    def term_names(self) -> list[str]:
        return [t.name() for t in self.terms]

    @property
    def term_name_slices(self) -> dict[str, slice]:
        return {t.name(): s for t, s in self.term_slices.items()}

    @property
    def column_name_indexes(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.column_names)}

    @property
    def variables(self) -> list[str]:
        """Data columns read by the design."""
        out: list[str] = []
        for t in self.terms:
            for f in t.factors:
                for v in f.variables:
                    if v not in out:
                        out.append(v)
        return out

    def describe(self) -> str:
        """The right-hand side rebuilt from the terms (``1 + time + time:programme``)."""
        parts = ["1" if not t.factors else t.name() for t in self.terms]
        if INTERCEPT not in self.terms:
            parts.insert(0, "0")
        return " + ".join(parts)

    def build(self, data: pd.DataFrame, NA_action: NAAction = "raise"  # noqa: N803
              ) -> tuple[np.ndarray, np.ndarray]:
        """The model matrix of ``data`` with this coding, and the positions of the rows used.

        Categorical values must be among the levels seen when the design was
        made; ``NA_action="raise"`` refuses missing values, ``"drop"`` leaves
        those rows out.
        """
        if not isinstance(data, pd.DataFrame):
            raise ModelError("data must be a pandas DataFrame")
        values, missing = _evaluate(self.factor_infos, data)
        rows = _rows(missing, NA_action, len(data))
        return _assemble(self._blocks, self.factor_infos, values, rows), rows


def _evaluate(infos: dict[Factor, FactorInfo], data: pd.DataFrame
              ) -> tuple[dict[Factor, np.ndarray], dict[Factor, np.ndarray]]:
    values, missing = {}, {}
    for f, fi in infos.items():
        values[f], missing[f] = _eval_factor(fi, data)
    return values, missing


def _rows(missing: dict[Factor, np.ndarray], NA_action: str, n: int) -> np.ndarray:  # noqa: N803
    if NA_action not in ("raise", "drop"):
        raise ModelError(f"NA_action must be 'raise' or 'drop', not {NA_action!r}")
    bad = np.zeros(n, dtype=bool)
    for f, m in missing.items():
        if m.any() and NA_action == "raise":
            raise ModelError(f"{int(m.sum())} row(s) have a missing value in {f.code}",
                             column=f.variables[0] if len(f.variables) == 1 else None)
        bad |= m
    return np.flatnonzero(~bad)


def _block_columns(sub: _Subterm, infos: dict[Factor, FactorInfo],
                   values: dict[Factor, np.ndarray], rows: np.ndarray
                   ) -> tuple[list[str], list[np.ndarray]]:
    per_factor: list[list[tuple[str, np.ndarray]]] = []
    for f in sub.factors:
        fi = infos[f]
        v = values[f][rows]
        if fi.type == "numerical":
            per_factor.append([(f.code, v.astype(float))])
            continue
        cats = fi.categories or ()
        if f in sub.full:
            keep = list(range(len(cats)))
            fmt = "{code}[{lv}]"
        else:
            keep = [i for i in range(len(cats)) if i != fi.reference]
            fmt = "{code}[T.{lv}]"
        per_factor.append([(fmt.format(code=f.code, lv=_level_str(cats[i])),
                            (v == i).astype(float)) for i in keep])
    names, cols = [], []
    # the first factor varies fastest, as in R's model.matrix (and patsy)
    for combo in itertools.product(*reversed(per_factor)):
        combo = combo[::-1]
        names.append(":".join(c[0] for c in combo) if combo else "Intercept")
        col = np.ones(len(rows))
        for _, c in combo:
            col = col * c
        cols.append(col)
    return names, cols


def _assemble(blocks: list[tuple[Term, list[_Subterm]]], infos: dict[Factor, FactorInfo],
              values: dict[Factor, np.ndarray], rows: np.ndarray) -> np.ndarray:
    cols: list[np.ndarray] = []
    for _, subs in blocks:
        for sub in subs:
            cols += _block_columns(sub, infos, values, rows)[1]
    if not cols:
        return np.zeros((len(rows), 0))
    return np.column_stack(cols)


def _make_info(formula: str, terms: Sequence[Term], data: pd.DataFrame,
               order: Sequence[Factor] = ()) -> DesignInfo:
    """Coding, columns and names of ``terms`` on ``data``; ``order`` is the
    formula's order of first appearance of the factors (see :func:`_r_terms`)."""
    terms = _r_terms(terms, order)
    infos: dict[Factor, FactorInfo] = {}
    for t in terms:
        for f in t.factors:
            if f not in infos:
                infos[f] = _factor_info(f, data)
    blocks = [(t, [_Subterm(t.factors, full)])
              for t, full in zip(terms, _r_codings(terms, infos), strict=True)]
    names: list[str] = []
    slices: dict[Term, slice] = {}
    empty = {f: np.zeros(0) for f in infos}
    for t, subs in blocks:
        start = len(names)
        for sub in subs:
            names += _block_columns(sub, infos, empty, np.zeros(0, dtype=int))[0]
        slices[t] = slice(start, len(names))
    return DesignInfo(formula, [t for t, _ in blocks], infos, slices, names, blocks)


@dataclass
class DesignMatrix:
    """A model matrix with its column names, design info and the rows used."""

    matrix: np.ndarray
    design_info: DesignInfo
    rows: np.ndarray

    @property
    def column_names(self) -> list[str]:
        return self.design_info.column_names

    def frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """The matrix as a DataFrame (index: the used rows of ``index``)."""
        idx = index[self.rows] if index is not None else None
        return pd.DataFrame(self.matrix, columns=self.column_names, index=idx)


def design_matrix(formula: str, data: pd.DataFrame,
                  NA_action: NAAction = "raise") -> DesignMatrix:  # noqa: N803
    """Model matrix of a right-hand side (``"time * programme"``) on ``data``.

    A response before ``~`` is ignored. ``NA_action="raise"`` refuses missing
    values in the variables used; ``"drop"`` leaves those rows out (see
    ``rows`` of the result).

    Raises
    ------
    ModelError
        A formula outside the grammar, a column not in ``data``, a missing
        value (with ``"raise"``).
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelError("data must be a pandas DataFrame")
    parsed = parse_terms(formula)
    rhs = formula.split("~", 1)[-1].strip()
    info = _make_info(rhs, parsed.rhs, data, parsed.factors)
    mat, rows = info.build(data, NA_action)
    return DesignMatrix(mat, info, rows)


def design_matrices(formula: str, data: pd.DataFrame, NA_action: NAAction = "raise"  # noqa: N803
                    ) -> tuple[np.ndarray, str, DesignMatrix]:
    """Response and model matrix of ``"y ~ rhs"``.

    Returns ``(y, response_name, X)`` where ``X`` is a :class:`DesignMatrix`
    and ``y`` holds the rows ``X.rows``. The response must be one numeric
    column or transform (``y``, ``log(y)``).
    """
    if not isinstance(data, pd.DataFrame):
        raise ModelError("data must be a pandas DataFrame")
    parsed = parse_terms(formula)
    if not parsed.lhs:
        raise ModelError("the formula has no response before '~'")
    if len(parsed.lhs) != 1 or len(parsed.lhs[0].factors) != 1:
        raise ModelError("the response must be a single column or transform")
    (yf,) = parsed.lhs[0].factors
    yinfo = _factor_info(yf, data)
    if yinfo.type != "numerical":
        raise ModelError(f"the response {yf.code} is not numeric", column=yf.variables[0])
    rhs = formula.split("~", 1)[1].strip()
    info = _make_info(rhs, parsed.rhs, data, parsed.factors)
    values, missing = _evaluate({yf: yinfo, **info.factor_infos}, data)
    rows = _rows(missing, NA_action, len(data))
    X = _assemble(info._blocks, info.factor_infos, values, rows)
    return values[yf][rows], yf.code, DesignMatrix(X, info, rows)
