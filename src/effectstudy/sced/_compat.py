"""One vocabulary for :mod:`effectstudy.sced`, and one release of grace for old names.

Every public sced function that reads long data is called as
``f(data, *, outcome, session, phase, case=None, baseline_phase="A",
treatment_phase="B", improvement=...)``; a confidence level is ``confidence=``
and randomness is ``rng=`` (an int seed, a :class:`numpy.random.Generator` or
``None``). Keyword names used before (``seed=``, ``alpha=``, ``cover=``,
``phases=``) and column names that used to have a default keep working for one
release with a :class:`FutureWarning` naming the new spelling.
"""

from __future__ import annotations

import warnings
from typing import Any

# the generic helpers live in effectstudy._compat / effectstudy._validate (shared by
# every package); they are re-exported here so that sced's modules keep importing them
from effectstudy._compat import confidence_from_alpha, renamed_keywords
from effectstudy._validate import as_generator, check_confidence

__all__ = [
    "REQUIRED", "as_generator", "check_confidence", "columns", "confidence_from_alpha",
    "renamed_keywords",
]


class _Required:
    """Sentinel default of a column name that must be given (old default still honoured)."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<required>"


#: default of column-name parameters that are required in the sced vocabulary
REQUIRED: Any = _Required()


def columns(function: str, *, stacklevel: int = 3, **given: Any) -> tuple[str, ...]:
    """Resolve column-name arguments; omitted ones fall back to their old default name.

    ``given`` maps each role (``outcome``, ``session``, ``phase``) to the value
    passed; a :data:`REQUIRED` value becomes the role's own name (the default
    before the vocabulary was unified) and one :class:`FutureWarning` lists them.
    ``stacklevel`` points the warning at the caller (one more for a function
    wrapped by :func:`renamed_keywords`).
    """
    omitted = [role for role, value in given.items() if value is REQUIRED]
    if omitted:
        names = ", ".join(f"{role}=" for role in omitted)
        warnings.warn(
            f"{function}(): pass {names} explicitly; the defaults "
            f"({', '.join(f'{role}={role!r}' for role in omitted)}) are deprecated and will "
            "be removed in the next release",
            FutureWarning, stacklevel=stacklevel,
        )
    return tuple(role if value is REQUIRED else value for role, value in given.items())
