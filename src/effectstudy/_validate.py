"""One place to check the arguments every analysis shares.

* :func:`check_confidence` -- a confidence level ``confidence=`` strictly
  between 0 and 1 (0.95 gives 95% intervals);
* :func:`check_significance` -- a significance level ``alpha=`` of a test
  (power analysis: the level of the simulated test, not an interval);
* :func:`check_rng` -- ``rng=`` as an int seed, a :class:`numpy.random.Generator`
  or ``None``, turned into a Generator (no global random state);
* :func:`check_choice` -- a keyword taken from a fixed set of words.

Each raises :class:`~effectstudy.errors.SpecError` (a :class:`ValueError`) whose
message names the parameter and the value given; values are arguments, never
client data.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from effectstudy.errors import SpecError

__all__ = [
    "RNGLike",
    "as_generator",
    "check_choice",
    "check_confidence",
    "check_rng",
    "check_significance",
]

#: What ``rng=`` accepts everywhere in effectstudy.
RNGLike = int | np.random.Generator | None


def check_confidence(confidence: float | None, allow_none: bool = False,
                     *, name: str = "confidence") -> float | None:
    """``confidence`` as a float strictly between 0 and 1 (``None`` if allowed)."""
    if confidence is None and allow_none:
        return None
    try:
        value = float(confidence)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(confidence, bool) or not 0.0 < value < 1.0:
        raise SpecError(f"{name} must lie strictly between 0 and 1, got {confidence!r}")
    return value


def check_significance(alpha: float, *, name: str = "alpha") -> float:
    """A significance level of a test, strictly between 0 and 1."""
    return check_confidence(alpha, name=name)  # type: ignore[return-value]


def as_generator(rng: RNGLike) -> tuple[np.random.Generator, int | None]:
    """A Generator from ``rng`` and the int seed to record (``None`` if none was given)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    if rng is None:
        return np.random.default_rng(), None
    if isinstance(rng, bool) or not isinstance(rng, int | np.integer):
        raise SpecError(f"rng must be an int seed, a numpy Generator or None, got "
                        f"{type(rng).__name__}")
    if int(rng) < 0:
        raise SpecError(f"an rng seed must be >= 0, got {int(rng)}")
    return np.random.default_rng(int(rng)), int(rng)


def check_rng(rng: RNGLike) -> np.random.Generator:
    """``rng`` (int seed, Generator or None) as a :class:`numpy.random.Generator`."""
    return as_generator(rng)[0]


def check_choice(name: str, value: Any, choices: Iterable[str] | Mapping[str, str],
                 *, normalise: bool = True) -> str:
    """``value`` as one of ``choices``.

    ``choices`` is a collection of allowed words, or a mapping from accepted
    spellings (aliases) to the canonical word. With ``normalise`` the value is
    compared in lower case with ``_`` and spaces read as ``-``.
    """
    table = dict(choices) if isinstance(choices, Mapping) else {c: c for c in choices}
    key = value
    if normalise and isinstance(value, str):
        key = value.strip().lower().replace("_", "-").replace(" ", "-")
    if isinstance(key, str) and key in table:
        return table[key]
    allowed = sorted(set(table.values()))
    raise SpecError(f"{name} must be one of {allowed}, got {value!r}")
