"""Model formulas without code: design matrices from parsed formulas.

Formulas are parsed by the grammar of :mod:`effectstudy.multilevel.grammar`
(Wilkinson-Rogers notation as R and patsy write it; parsed, never evaluated as
Python); its public names (:func:`parse_terms`, :func:`formula_variables`,
:class:`Factor`, :class:`Term`, :class:`FormulaTerms`) are re-exported here.

The design matrices reproduce patsy's (Smith et al., patsy 1.0) conventions so
that coefficient names and column order are unchanged: terms are grouped by
their set of numeric factors (the group without numeric factors first), sorted
by degree within a group; categorical factors get treatment contrasts with the
first level as reference (sorted values; the category order of a pandas
``Categorical``; ``False < True`` for booleans), or full dummy coding where a
lower-order margin is absent, so that the matrix is full rank for the usual
hierarchical models (the same rule as R's ``model.matrix``, Chambers & Hastie
1992, *Statistical Models in S*, section 2.4.1). Columns are named
``Intercept``, ``time``, ``programme[T.P2]``, ``time:programme[T.P2]``,
``programme[P1]``, ``I(time ** 2)``, ``C(x)[T.b]``.
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
# coding (which contrasts each term gets)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subterm:
    """Factors of one block of columns; ``full`` marks categorical factors coded in full."""

    factors: tuple[Factor, ...]
    full: frozenset[Factor]


def _subsets(items: Sequence[Factor]) -> list[tuple[Factor, ...]]:
    idx = list(range(len(items)))
    subs = [c for r in range(len(items) + 1) for c in itertools.combinations(idx, r)]
    return [tuple(items[i] for i in s) for s in subs]


def _codings(cats: list[Factor], used: set[frozenset]) -> list[dict[Factor, bool]]:
    """Full-rank coding of one term's categorical factors given the margins already used.

    Each subset of the term's categorical factors not yet spanned by an earlier
    term of the same numeric group is a block of contrast-coded columns; a block
    that contains a lower one by one factor absorbs it by coding that factor in
    full (the rule of patsy and of R's ``model.matrix``).
    """
    blocks: list[dict[Factor, bool]] = []
    for sub in _subsets(cats):
        key = frozenset(sub)
        if key not in used:
            blocks.append(dict.fromkeys(sub, False))
            used.add(key)
    changed = True
    while changed:
        changed = False
        for i, short in enumerate(blocks):
            for j in range(i + 1, len(blocks)):
                long = blocks[j]
                extra = set(long) - set(short)
                if (len(long) - len(short) == 1 and set(short) <= set(long)
                        and all(long[k] == short[k] for k in short)):
                    (f,) = extra
                    if long[f]:
                        continue
                    merged = dict(short)
                    merged[f] = True
                    blocks[j] = merged
                    blocks.pop(i)
                    changed = True
                    break
            if changed:
                break
    return blocks


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
    # the first factor varies fastest, as in patsy
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


def _make_info(formula: str, terms: Sequence[Term], data: pd.DataFrame) -> DesignInfo:
    infos: dict[Factor, FactorInfo] = {}
    for t in terms:
        for f in t.factors:
            if f not in infos:
                infos[f] = _factor_info(f, data)
    # group terms by their set of numeric factors; the group without any comes first
    groups: dict[frozenset, list[Term]] = {}
    for t in terms:
        key = frozenset(f for f in t.factors if infos[f].type == "numerical")
        groups.setdefault(key, []).append(t)
    order = list(groups)
    if frozenset() in groups:
        order.remove(frozenset())
        order.insert(0, frozenset())
    blocks: list[tuple[Term, list[_Subterm]]] = []
    for key in order:
        used: set[frozenset] = set()
        for t in sorted(groups[key], key=lambda t: len(t.factors)):
            cats = [f for f in t.factors if infos[f].type == "categorical"]
            subs = []
            for coding in _codings(cats, used):
                fs = tuple(f for f in t.factors if infos[f].type == "numerical" or f in coding)
                subs.append(_Subterm(fs, frozenset(f for f, full in coding.items() if full)))
            blocks.append((t, subs))
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
    info = _make_info(rhs, parsed.rhs, data)
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
    info = _make_info(rhs, parsed.rhs, data)
    values, missing = _evaluate({yf: yinfo, **info.factor_infos}, data)
    rows = _rows(missing, NA_action, len(data))
    X = _assemble(info._blocks, info.factor_infos, values, rows)
    return values[yf][rows], yf.code, DesignMatrix(X, info, rows)
