"""Model formulas without code: a formula grammar and design matrices.

Formulas reach the package from files (an analysis spec, a power design), so
they are *parsed*, never evaluated as Python. The grammar is the
Wilkinson-Rogers notation (Wilkinson & Rogers 1973, "Symbolic description of
factorial models for analysis of variance", *Applied Statistics* 22(3),
392-399) as R and patsy write it, restricted to what this package needs:

* column names of the data (``[A-Za-z_][A-Za-z0-9_]*``; no dots, no dunder
  names, no Python keywords) and numbers;
* the operators ``~ + - * / : **`` and parentheses; ``1``, ``0`` and ``-1``
  for the intercept; ``(a + b) ** 2`` takes integer powers;
* the transforms ``I(<arithmetic>)``, ``log(<arithmetic>)``,
  ``exp(<arithmetic>)`` and ``sqrt(<arithmetic>)`` (also spelled ``np.log``,
  ``np.exp``, ``np.sqrt``: fixed tokens, no attribute is ever looked up), where
  the arithmetic uses column names, numbers, ``+ - * / **`` and parentheses and
  is computed by a small interpreter over numpy arrays;
* ``center(<arithmetic>)``: the values minus their mean in the data the design
  was made on (the same mean is used for new data);
* ``C(x)`` (``x`` as categorical) and ``C(x, Treatment(reference='level'))``
  or ``C(x, Treatment('level'))``.

Anything else (attributes, subscripts, other calls, strings elsewhere, keyword
arguments, lambdas) is a :class:`~effectstudy.errors.ModelError` naming the
offending token and its position.

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
import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from effectstudy.errors import ModelError

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

#: Longest formula accepted (characters) and deepest nesting of parentheses.
MAX_FORMULA_LENGTH = 2000
MAX_DEPTH = 40

_TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log, "exp": np.exp, "sqrt": np.sqrt,
    # fixed spellings kept for formulas written for patsy (one token, no attribute lookup)
    "np.log": np.log, "np.exp": np.exp, "np.sqrt": np.sqrt,
}
_CALLS = {"I", "C", "center", *_TRANSFORMS}

_TOKEN = re.compile(
    r"(?P<ws>\s+)"
    r"|(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>np\.(?:log|exp|sqrt)(?![A-Za-z0-9_.])|[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<string>'[^'\\\n]*'|\"[^\"\\\n]*\")"
    r"|(?P<op>\*\*|[~+\-*/:(),=])"
)


def _show(text: str) -> str:
    text = text if len(text) <= 40 else text[:37] + "..."
    return repr(text)


# ---------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Tok:
    kind: str  # number, name, string, op, end
    text: str
    pos: int


def _tokenize(formula: str) -> list[_Tok]:
    if not isinstance(formula, str):
        raise ModelError(f"a formula must be text, not {type(formula).__name__}")
    if len(formula) > MAX_FORMULA_LENGTH:
        raise ModelError(f"the formula is longer than {MAX_FORMULA_LENGTH} characters")
    out: list[_Tok] = []
    pos = 0
    while pos < len(formula):
        m = _TOKEN.match(formula, pos)
        if m is None:
            raise ModelError(f"invalid formula: character {_show(formula[pos])} at position "
                             f"{pos + 1} is not allowed in a formula")
        kind = m.lastgroup or ""
        if kind != "ws":
            out.append(_Tok(kind, m.group(), pos))
            if kind == "name":
                _check_name(out[-1])
        pos = m.end()
    out.append(_Tok("end", "", len(formula)))
    return out


def _check_name(tok: _Tok) -> None:
    if "__" in tok.text:
        raise ModelError(f"invalid formula: {_show(tok.text)} at position {tok.pos + 1} is not "
                         "allowed (names with a double underscore are never column names)")
    if keyword.iskeyword(tok.text):
        raise ModelError(f"invalid formula: {_show(tok.text)} at position {tok.pos + 1} is a "
                         "Python keyword, not a column name")


# ---------------------------------------------------------------------------
# factors and terms
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Factor:
    """One factor of a term: a column, ``C(column)`` or a numeric transform.

    ``code`` is the factor's name as patsy spells it (``time``, ``I(time ** 2)``,
    ``C(x, Treatment(reference='b'))``); ``kind`` is ``"column"``, ``"C"`` or
    ``"numeric"`` (a transform); ``variables`` the data columns it reads.
    """

    code: str
    kind: str
    variables: tuple[str, ...]
    expr: Any = field(default=None, compare=False, hash=False, repr=False)
    reference: str | None = field(default=None, compare=False, hash=False)
    centered: bool = field(default=False, compare=False, hash=False)

    def name(self) -> str:
        """The factor's name (patsy's ``EvalFactor.name()``)."""
        return self.code


@dataclass(frozen=True)
class Term:
    """A product of factors; the intercept is the term without factors."""

    factors: tuple[Factor, ...]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Term) and frozenset(self.factors) == frozenset(other.factors)

    def __hash__(self) -> int:
        return hash(frozenset(self.factors))

    def name(self) -> str:
        """``Intercept`` or the factor names joined by ``:``."""
        return ":".join(f.code for f in self.factors) if self.factors else "Intercept"

    def __repr__(self) -> str:
        return f"Term({self.name()!r})"


INTERCEPT = Term(())


def _term(factors: Sequence[Factor]) -> Term:
    seen: list[Factor] = []
    for f in factors:
        if f not in seen:
            seen.append(f)
    return Term(tuple(seen))


def _unique(terms: Sequence[Term]) -> list[Term]:
    out: list[Term] = []
    for t in terms:
        if t not in out:
            out.append(t)
    return out


@dataclass(frozen=True)
class _Expr:
    """Intermediate result (intercept present / explicitly removed, terms)."""

    intercept: bool
    removed: bool
    terms: tuple[Term, ...]

    @staticmethod
    def of(intercept: bool, removed: bool, terms: Sequence[Term]) -> _Expr:
        return _Expr(intercept, removed, tuple(_unique(terms)))


@dataclass(frozen=True)
class FormulaTerms:
    """A parsed formula: the response terms (may be empty) and the right-hand terms."""

    lhs: tuple[Term, ...]
    rhs: tuple[Term, ...]

    @property
    def variables(self) -> list[str]:
        """Data columns read by the formula, in order of first appearance."""
        out: list[str] = []
        for t in (*self.lhs, *self.rhs):
            for f in t.factors:
                for v in f.variables:
                    if v not in out:
                        out.append(v)
        return out


# ---------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------
_BINARY = {"+": 100, "-": 100, "*": 200, "/": 200, ":": 300, "**": 500}


class _Parser:
    def __init__(self, formula: str) -> None:
        self.formula = formula
        self.toks = _tokenize(formula)
        self.i = 0
        self.depth = 0

    # -- helpers --------------------------------------------------------------
    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def advance(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def fail(self, tok: _Tok, why: str = "") -> ModelError:
        if tok.kind == "end":
            return ModelError(f"invalid formula: it ends too early{why}")
        return ModelError(f"invalid formula: unexpected {_show(tok.text)} at position "
                          f"{tok.pos + 1}{why}")

    def expect(self, text: str) -> _Tok:
        if self.tok.text != text or self.tok.kind not in ("op",):
            raise self.fail(self.tok, f" (expected {text!r})")
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ModelError(f"invalid formula: nested deeper than {MAX_DEPTH} levels")

    # -- formula level -------------------------------------------------------
    def parse(self) -> FormulaTerms:
        lhs: _Expr | None = None
        if self.tok.text == "~" and self.tok.kind == "op":
            self.advance()
            rhs = self.expr(0)
        else:
            first = self.expr(0)
            if self.tok.text == "~" and self.tok.kind == "op":
                self.advance()
                lhs, rhs = first, self.expr(0)
            else:
                rhs = first
        if self.tok.kind != "end":
            raise self.fail(self.tok)
        end = self.tok
        rhs = self.as_expr(rhs, end)
        lhs_terms: tuple[Term, ...] = ()
        if lhs is not None:
            lhs = self.as_expr(lhs, end)
            lhs_terms = ((INTERCEPT,) if lhs.intercept else ()) + lhs.terms
        rhs_terms = (() if rhs.removed else (INTERCEPT,)) + rhs.terms
        return FormulaTerms(lhs_terms, rhs_terms)

    def expr(self, min_prec: int) -> _Expr | _Tok:
        self.enter()
        tok = self.tok
        if tok.kind == "op" and tok.text in ("+", "-"):
            self.advance()
            operand = self.expr(101)
            left: Any = self.unary(tok, operand)
        else:
            left = self.atom()
        while self.tok.kind == "op" and self.tok.text in _BINARY:
            op = self.tok
            prec = _BINARY[op.text]
            if prec < min_prec:
                break
            self.advance()
            right = self.expr(prec + 1)
            left = self.binary(op, left, right)
        self.depth -= 1
        return left

    def atom(self) -> _Expr | _Tok:
        tok = self.tok
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            inner = self.expr(0)
            self.expect(")")
            return self.as_expr(inner, tok) if isinstance(inner, _Tok) else inner
        if tok.kind == "number":
            self.advance()
            return tok  # resolved by the operator that uses it
        if tok.kind == "name":
            _check_name(tok)
            if self.toks[self.i + 1].text == "(":
                return _Expr.of(False, False, [Term((self.call(),))])
            self.advance()
            return _Expr.of(False, False, [Term((Factor(tok.text, "column", (tok.text,)),))])
        if tok.kind == "string":
            raise self.fail(tok, " (text is only allowed as the reference level in "
                                 "C(x, Treatment(reference='level')))")
        raise self.fail(tok)

    def as_expr(self, x: _Expr | _Tok, where: _Tok) -> _Expr:
        if isinstance(x, _Expr):
            return x
        if x.text == "1":
            return _Expr.of(True, False, [])
        if x.text == "0":
            return _Expr.of(False, True, [])
        raise ModelError(f"invalid formula: the number {_show(x.text)} at position {x.pos + 1} "
                         "is not allowed here (only 0 and 1, or an integer power after '**')")

    def unary(self, op: _Tok, operand: _Expr | _Tok) -> _Expr:
        if op.text == "+":
            return self.as_expr(operand, op)
        if isinstance(operand, _Tok) and operand.text == "0":
            return _Expr.of(True, False, [])
        if isinstance(operand, _Tok) and operand.text == "1":
            return _Expr.of(False, True, [])
        raise ModelError(f"invalid formula: unary '-' at position {op.pos + 1} applies only "
                         "to 0 or 1")

    @staticmethod
    def _interactable(x: _Expr, op: _Tok) -> None:
        if x.intercept:
            raise ModelError(f"invalid formula: the intercept cannot interact with anything "
                             f"(operator {op.text!r} at position {op.pos + 1})")

    @staticmethod
    def _interaction(a: _Expr, b: _Expr) -> list[Term]:
        return [_term(x.factors + y.factors) for x in a.terms for y in b.terms]

    def binary(self, op: _Tok, left: _Expr | _Tok, right: _Expr | _Tok) -> _Expr:
        if op.text == "**":
            lx = self.as_expr(left, op)
            self._interactable(lx, op)
            power = -1
            if isinstance(right, _Tok) and re.fullmatch(r"\d+", right.text):
                power = int(right.text)
            if power < 1:
                raise ModelError(f"invalid formula: '**' at position {op.pos + 1} needs a "
                                 "positive integer power")
            terms = list(lx.terms)
            big = lx
            for _ in range(1, min(len(lx.terms), power)):
                big = _Expr.of(False, False, self._interaction(lx, big))
                terms += big.terms
            return _Expr.of(False, False, terms)
        if op.text == "+":
            lx = self.as_expr(left, op)
            if isinstance(right, _Tok) and right.text == "0":
                return _Expr.of(False, True, lx.terms)
            rx = self.as_expr(right, op)
            if rx.intercept:
                return _Expr.of(True, False, lx.terms + rx.terms)
            return _Expr.of(lx.intercept, lx.removed, lx.terms + rx.terms)
        if op.text == "-":
            lx = self.as_expr(left, op)
            if isinstance(right, _Tok) and right.text == "0":
                return _Expr.of(True, False, lx.terms)
            if isinstance(right, _Tok) and right.text == "1":
                return _Expr.of(False, True, lx.terms)
            rx = self.as_expr(right, op)
            terms = [t for t in lx.terms if t not in rx.terms]
            if rx.intercept:
                return _Expr.of(False, True, terms)
            return _Expr.of(lx.intercept, lx.removed, terms)
        lx, rx = self.as_expr(left, op), self.as_expr(right, op)
        if op.text == ":":
            self._interactable(lx, op)
            self._interactable(rx, op)
            return _Expr.of(False, False, self._interaction(lx, rx))
        if op.text == "*":
            self._interactable(lx, op)
            self._interactable(rx, op)
            return _Expr.of(False, False, [*lx.terms, *rx.terms, *self._interaction(lx, rx)])
        if op.text == "/":
            self._interactable(lx, op)
            self._interactable(rx, op)
            combined = _Expr.of(False, False, [_term([f for t in lx.terms for f in t.factors])])
            return _Expr.of(False, False, [*lx.terms, *self._interaction(combined, rx)])
        raise self.fail(op)  # pragma: no cover - all binary operators handled above

    # -- calls ----------------------------------------------------------------
    def call(self) -> Factor:
        name = self.advance()
        if name.text not in _CALLS:
            raise ModelError(f"invalid formula: function {_show(name.text)} at position "
                             f"{name.pos + 1} is not allowed (allowed: I(), log(), exp(), "
                             "sqrt(), center(), C())")
        self.expect("(")
        self.enter()
        if name.text == "C":
            factor = self.c_call()
        else:
            expr = self.arith()
            self.expect(")")
            code = f"{name.text}({_render(expr)})"
            if name.text not in ("I", "center"):
                expr = ("call", name.text, expr)
            factor = Factor(code, "numeric", tuple(_arith_vars(expr)), expr=expr,
                            centered=name.text == "center")
        self.depth -= 1
        return factor

    def c_call(self) -> Factor:
        var = self.advance()
        if var.kind != "name":
            raise self.fail(var, " (C() takes a column name)")
        _check_name(var)
        if self.tok.text == ")":
            self.advance()
            return Factor(f"C({var.text})", "C", (var.text,))
        self.expect(",")
        tr = self.advance()
        if tr.text != "Treatment" or tr.kind != "name":
            raise self.fail(tr, " (the only coding allowed in C() is Treatment)")
        self.expect("(")
        if self.tok.kind == "name" and self.tok.text == "reference":
            self.advance()
            self.expect("=")
            prefix = "reference="
        else:
            prefix = ""
        ref = self.advance()
        if ref.kind != "string":
            raise self.fail(ref, " (the reference level must be quoted text)")
        self.expect(")")
        self.expect(")")
        code = f"C({var.text}, Treatment({prefix}{ref.text}))"
        return Factor(code, "C", (var.text,), reference=ref.text[1:-1])

    # -- arithmetic (Python precedence) ----------------------------------------
    def arith(self) -> tuple:
        left = self.arith_term()
        while self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.advance().text
            left = ("bin", op, left, self.arith_term())
        return left

    def arith_term(self) -> tuple:
        left = self.arith_unary()
        while self.tok.kind == "op" and self.tok.text in ("*", "/"):
            op = self.advance().text
            left = ("bin", op, left, self.arith_unary())
        return left

    def arith_unary(self) -> tuple:
        if self.tok.kind == "op" and self.tok.text in ("+", "-"):
            op = self.advance().text
            self.enter()
            out = ("unary", op, self.arith_unary())
            self.depth -= 1
            return out
        return self.arith_power()

    def arith_power(self) -> tuple:
        base = self.arith_primary()
        if self.tok.kind == "op" and self.tok.text == "**":
            self.advance()
            self.enter()
            out = ("bin", "**", base, self.arith_unary())
            self.depth -= 1
            return out
        return base

    def arith_primary(self) -> tuple:
        tok = self.tok
        if tok.kind == "number":
            self.advance()
            return ("num", tok.text)
        if tok.kind == "name":
            _check_name(tok)
            if self.toks[self.i + 1].text == "(":
                self.advance()
                if tok.text not in _TRANSFORMS:
                    raise ModelError(f"invalid formula: function {_show(tok.text)} at position "
                                     f"{tok.pos + 1} is not allowed inside a transform "
                                     "(allowed: log(), exp(), sqrt())")
                self.expect("(")
                self.enter()
                inner = self.arith()
                self.expect(")")
                self.depth -= 1
                return ("call", tok.text, inner)
            self.advance()
            return ("var", tok.text)
        if tok.kind == "op" and tok.text == "(":
            self.advance()
            self.enter()
            inner = self.arith()
            self.expect(")")
            self.depth -= 1
            return ("paren", inner)
        raise self.fail(tok, " (a transform holds column names, numbers, + - * / ** "
                             "and parentheses)")


def _render(e: tuple) -> str:
    kind = e[0]
    if kind in ("num", "var"):
        return e[1]
    if kind == "paren":
        return f"({_render(e[1])})"
    if kind == "unary":
        return f"{e[1]}{_render(e[2])}"
    if kind == "call":
        return f"{e[1]}({_render(e[2])})"
    return f"{_render(e[2])} {e[1]} {_render(e[3])}"


def _arith_vars(e: tuple) -> list[str]:
    kind = e[0]
    if kind == "var":
        return [e[1]]
    if kind == "num":
        return []
    out: list[str] = []
    for sub in e[1:]:
        if isinstance(sub, tuple):
            for v in _arith_vars(sub):
                if v not in out:
                    out.append(v)
    return out


def parse_terms(formula: str) -> FormulaTerms:
    """Parse a formula (``"y ~ a * b"`` or a right-hand side ``"a * b"``) into terms.

    Raises
    ------
    ModelError
        If the formula uses anything outside the grammar of this module; the
        message names the offending token and its position.
    """
    return _Parser(formula).parse()


def formula_variables(formula: str) -> list[str]:
    """The data columns a formula reads (``"y ~ I(t ** 2) + C(p)"`` -> y, t, p)."""
    return parse_terms(formula).variables


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
        return _TRANSFORMS[e[1]](_eval_arith(e[2], data))
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
