"""One release of grace for renamed keywords, shared by every package.

:func:`renamed_keywords` lets a function accept an old keyword name (``seed=``,
``alpha=``, ``cover=``...) for one more release: the call works as before and
emits a :class:`FutureWarning` naming the new spelling. Giving both names is a
:class:`~effectstudy.errors.SpecError`. :func:`deprecated_alias` keeps an old
*function* name working the same way.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from effectstudy.errors import SpecError

__all__ = ["confidence_from_alpha", "deprecated_alias", "renamed_keywords", "seed_to_rng"]

F = TypeVar("F", bound=Callable[..., Any])


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


def seed_to_rng(seed: Any) -> dict[str, Any]:
    """``seed=`` as ``rng=`` (an int seed or ``None`` means the same there)."""
    return {"rng": seed}


def deprecated_alias(old: str, func: F) -> F:
    """``func`` under its old name ``old``, warning once per call for one release."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(f"{old}() is deprecated and will be removed in the next release; "
                      f"use {func.__name__}()", FutureWarning, stacklevel=2)
        return func(*args, **kwargs)

    wrapper.__name__ = old
    wrapper.__qualname__ = old
    return wrapper  # type: ignore[return-value]
