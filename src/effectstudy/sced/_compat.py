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

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np

from effectstudy.errors import SpecError

__all__ = [
    "REQUIRED", "as_generator", "check_confidence", "columns", "confidence_from_alpha",
    "renamed_keywords",
]

F = TypeVar("F", bound=Callable[..., Any])


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


def renamed_keywords(
    function: str, mapping: Mapping[str, str | Callable[[Any], dict[str, Any]]]
) -> Callable[[F], F]:
    """Accept old keyword names for one release, with a :class:`FutureWarning`.

    ``mapping`` maps an old keyword to its new name, or to a function turning
    the old value into new keyword arguments (for example ``alpha`` into
    ``confidence = 1 - alpha``). Giving both the old and the new name raises
    :class:`~effectstudy.errors.SpecError`.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old, new in mapping.items():
                if old not in kwargs:
                    continue
                value = kwargs.pop(old)
                new_kwargs = {new: value} if isinstance(new, str) else new(value)
                names = ", ".join(f"{k}=" for k in new_kwargs)
                clash = [k for k in new_kwargs if k in kwargs]
                if clash:
                    raise SpecError(f"{function}(): give {old}= or {names}, not both")
                warnings.warn(
                    f"{function}(): {old}= is deprecated and will be removed in the next "
                    f"release; use {names}",
                    FutureWarning, stacklevel=2,
                )
                kwargs.update(new_kwargs)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def confidence_from_alpha(alpha: Any) -> dict[str, Any]:
    """``alpha=`` (significance level) as ``confidence = 1 - alpha``."""
    return {"confidence": 1.0 - float(alpha)}


def as_generator(rng: int | np.random.Generator | None) -> tuple[np.random.Generator, int | None]:
    """A Generator from ``rng`` (int seed, Generator or None) and the seed to record (or None)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    if rng is None:
        return np.random.default_rng(), None
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise SpecError(f"rng must be an int seed, a numpy Generator or None, got "
                        f"{type(rng).__name__}")
    return np.random.default_rng(int(rng)), int(rng)


def check_confidence(confidence: float | None, allow_none: bool = False) -> None:
    """``confidence`` must lie strictly between 0 and 1."""
    if confidence is None and allow_none:
        return
    if confidence is None or not 0 < float(confidence) < 1:
        raise SpecError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
