"""Parsing of lme4-style mixed-model formulas.

A formula such as ``outcome ~ time * fidelity + age + (1 | programme) + (1 + time | client)``
is split into

* the response (``outcome``),
* the fixed-effects right-hand side (``time * fidelity + age``), handed to the
  formula grammar of :mod:`effectstudy.multilevel.design` (parsed, never
  evaluated as code), and
* a list of random-effect terms ``(expr | group)``, each with its own model
  formula ``expr`` and grouping factor ``group``.

The conventions follow lme4 (Bates, Maechler, Bolker & Walker 2015, "Fitting
linear mixed-effects models using lme4", *Journal of Statistical Software* 67(1),
section 2.1):

* ``(expr | g)`` gives correlated random effects for the columns of ``expr``
  within the levels of ``g``; ``1`` is implied unless ``0`` or ``-1`` is given.
* ``(expr || g)`` gives uncorrelated effects: it is expanded into one term per
  column, ``(1 | g) + (0 + x | g)``, as lme4 does for numeric ``x``.
* ``(expr | a/b)`` is the nested shorthand for ``(expr | a) + (expr | a:b)``.
* ``(expr | a:b)`` groups by the combination of ``a`` and ``b``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from effectstudy.errors import ModelError

__all__ = ["RandomTerm", "ParsedFormula", "parse_formula"]

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(expr | group)``.

    Attributes
    ----------
    expr:
        The right-hand side of the term's own model formula, e.g. ``"1 + time"``
        or ``"0 + Days"``.
    group:
        The grouping factor; ``"a:b"`` for an interaction of two factors.
    """

    expr: str
    group: str

    @property
    def group_variables(self) -> list[str]:
        """The data columns that make up the grouping factor."""
        return [g.strip() for g in self.group.split(":")]

    def __str__(self) -> str:
        return f"({self.expr} | {self.group})"


@dataclass(frozen=True)
class ParsedFormula:
    """An lme4 formula split into response, fixed part and random terms."""

    formula: str
    response: str
    fixed: str
    random: list[RandomTerm] = field(default_factory=list)

    @property
    def fixed_formula(self) -> str:
        """The formula of the fixed part, ``response ~ fixed``."""
        return f"{self.response} ~ {self.fixed}"


def _split_top_level(text: str, sep: str = "+") -> list[str]:
    """Split ``text`` at ``sep`` characters that are not inside parentheses."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise ModelError("unbalanced parentheses in formula")
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    if depth != 0:
        raise ModelError("unbalanced parentheses in formula")
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _expr_columns(expr: str) -> tuple[bool, list[str]]:
    """Return (has_intercept, other summands) of a simple random-term expression."""
    pieces = [p for p in _split_top_level(expr.replace("-1", "+0"), "+") if p]
    intercept = True
    others = []
    for p in pieces:
        if p == "1":
            intercept = True
        elif p == "0":
            intercept = False
        else:
            others.append(p)
    return intercept, others


def _expand_term(expr: str, group: str, double_bar: bool) -> list[RandomTerm]:
    group = group.strip()
    if not group:
        raise ModelError("random-effect term without a grouping factor")
    if "/" in group:
        outer, inner = (g.strip() for g in group.split("/", 1))
        groups = [outer, f"{outer}:{inner}"]
    else:
        groups = [group]
    for g in groups:
        for v in g.split(":"):
            if not _NAME.match(v.strip()):
                raise ModelError(f"cannot read grouping factor {g!r} in random term")
    expr = expr.strip()
    if not expr:
        raise ModelError("empty random-effect expression")
    terms: list[RandomTerm] = []
    for g in groups:
        if double_bar:
            intercept, others = _expr_columns(expr)
            if intercept:
                terms.append(RandomTerm("1", g))
            terms.extend(RandomTerm(f"0 + {o}", g) for o in others)
        else:
            terms.append(RandomTerm(expr, g))
    return terms


def parse_formula(formula: str) -> ParsedFormula:
    """Split an lme4 model formula into response, fixed part and random terms.

    Parameters
    ----------
    formula:
        For example ``"outcome ~ time * programme + (1 + time | client)"``.

    Returns
    -------
    ParsedFormula

    Raises
    ------
    ModelError
        If the formula has no ``~``, unbalanced parentheses, an empty part or a
        random term that cannot be read.
    """
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ModelError(f"a model formula needs exactly one '~': {formula!r}")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    if not lhs:
        raise ModelError(f"the formula has no response: {formula!r}")
    if not rhs:
        raise ModelError(f"the formula has no right-hand side: {formula!r}")
    fixed_parts: list[str] = []
    random: list[RandomTerm] = []
    for part in _split_top_level(rhs, "+"):
        if not part:
            raise ModelError(f"empty term in formula {formula!r}")
        inner = part
        if part.startswith("(") and part.endswith(")") and "|" in part:
            inner = part[1:-1]
            if "||" in inner:
                expr, group = inner.split("||", 1)
                random.extend(_expand_term(expr, group, double_bar=True))
            else:
                if inner.count("|") != 1:
                    raise ModelError(f"cannot read random term {part!r}")
                expr, group = inner.split("|", 1)
                random.extend(_expand_term(expr, group, double_bar=False))
        elif "|" in part:
            raise ModelError(f"random term must be in parentheses: {part!r}")
        else:
            fixed_parts.append(part)
    fixed = " + ".join(fixed_parts) if fixed_parts else "1"
    return ParsedFormula(formula=formula, response=lhs, fixed=fixed, random=random)
