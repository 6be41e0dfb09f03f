"""Model formulas without code: the formula grammar (tokens, factors, terms, parser).

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

:mod:`effectstudy.multilevel.design` turns the parsed terms into design matrices and
re-exports the public names of this module.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from effectstudy.errors import ModelError

__all__ = [
    "INTERCEPT",
    "MAX_DEPTH",
    "MAX_FORMULA_LENGTH",
    "TRANSFORMS",
    "Factor",
    "FormulaTerms",
    "Term",
    "formula_variables",
    "parse_terms",
]

#: Longest formula accepted (characters) and deepest nesting of parentheses.
MAX_FORMULA_LENGTH = 2000
MAX_DEPTH = 40

#: The functions a formula may call on arithmetic (one token each, never looked up).
TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log, "exp": np.exp, "sqrt": np.sqrt,
    # fixed spellings kept for formulas written for patsy (one token, no attribute lookup)
    "np.log": np.log, "np.exp": np.exp, "np.sqrt": np.sqrt,
}
_CALLS = {"I", "C", "center", *TRANSFORMS}

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
    """A parsed formula: the response terms (may be empty) and the right-hand terms.

    ``rhs`` holds the terms as the formula expands them (the intercept first if
    present); ``factors`` every factor in order of first appearance, left to
    right and the response included (R's order of the ``variables`` of a
    ``terms`` object, which orders the factors within each interaction).
    """

    lhs: tuple[Term, ...]
    rhs: tuple[Term, ...]
    factors: tuple[Factor, ...] = ()

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
        #: factors in order of first appearance
        self.seen: list[Factor] = []

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

    def note(self, factor: Factor) -> Factor:
        if factor not in self.seen:
            self.seen.append(factor)
        return factor

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
        return FormulaTerms(lhs_terms, rhs_terms, tuple(self.seen))

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
                return _Expr.of(False, False, [Term((self.note(self.call()),))])
            self.advance()
            factor = self.note(Factor(tok.text, "column", (tok.text,)))
            return _Expr.of(False, False, [Term((factor,))])
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
                if tok.text not in TRANSFORMS:
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
