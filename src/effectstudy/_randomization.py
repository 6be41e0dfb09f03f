"""Randomization null distribution and p-value shared by :mod:`effectstudy.sced` and
:mod:`effectstudy.power`.

A private module of the top-level package, because two subpackages use it: neither
owns the other's internals.

A randomization test of a single-case design compares the observed statistic
with its values under the assignments the design could have produced
(Edgington, 1980; Marascuilo & Busk, 1988). Both
:func:`effectstudy.sced.randomization_test` and the vectorised multiple-baseline
test of :mod:`effectstudy.power.single_case` build the reference distribution
and the p-value here, so they use one tie rule and one two-sided rule:

* **ties**: a reference value counts as at least as extreme as the observed one
  when it is within a relative tolerance of ``1e-10 * max(1, |observed|)``, so
  values equal in exact arithmetic count as equal;
* **exact** enumeration including the observed assignment:
  ``p = b / m``; otherwise (Monte Carlo, or an observed assignment outside the
  permissible set) ``p = (b + 1) / (m + 1)`` (Phipson & Smyth, 2010), never 0;
* **two-sided**: twice the smaller one-sided p-value, at most 1, which needs
  no assumption about the centre or symmetry of the null distribution.

All functions accept leading batch axes (many data sets at once).

References
----------
Edgington, E. S. (1980). *Randomization tests*. Marcel Dekker.

Marascuilo, L. A., & Busk, P. L. (1988). Combining statistics for multiple-
baseline AB and replicated ABAB designs across subjects. *Behavioral
Assessment, 10*(1), 1-28.

Phipson, B., & Smyth, G. K. (2010). Permutation p-values should never be zero.
*Statistical Applications in Genetics and Molecular Biology, 9*(1), Article 39.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from effectstudy.errors import SpecError

__all__ = [
    "AGGREGATES", "ALTERNATIVES", "TIE_TOLERANCE", "aggregate", "draw_indices", "exact_null",
    "p_value", "sampled_null",
]

#: relative tolerance under which two statistics count as tied
TIE_TOLERANCE = 1e-10

ALTERNATIVES = ("greater", "less", "two-sided")

#: how per-case statistics (last axis) are combined across cases
AGGREGATES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mean": lambda m: _sequential_mean(m),
    "median": lambda m: np.median(m, axis=-1),
    "rms": lambda m: np.sqrt((m**2).mean(axis=-1)),
}


def _sequential_mean(m: np.ndarray) -> np.ndarray:
    total = m[..., 0].copy()
    for c in range(1, m.shape[-1]):
        total = total + m[..., c]
    return total / m.shape[-1]


def aggregate(values: np.ndarray, how: str = "mean") -> np.ndarray:
    """Combine per-case statistics (last axis) into one statistic."""
    if how not in AGGREGATES:
        raise SpecError(f"aggregate must be one of {sorted(AGGREGATES)}")
    return AGGREGATES[how](np.asarray(values, dtype=float))


def exact_null(per_case: Sequence[np.ndarray], how: str = "mean") -> np.ndarray:
    """Aggregated statistic over the Cartesian product of per-case options (C order).

    ``per_case[c]`` has shape ``(..., w_c)``: the statistic of case ``c`` under
    each of its ``w_c`` permissible assignments. Returns ``(..., prod(w_c))``.
    """
    k = len(per_case)
    if how == "mean":
        total = np.asarray(per_case[0], dtype=float)
        for v in per_case[1:]:
            v = np.asarray(v, dtype=float)
            total = (total[..., :, None] + v[..., None, :]).reshape(*v.shape[:-1], -1)
        return total / k
    if any(np.ndim(v) != 1 for v in per_case):
        raise SpecError("only the mean aggregate supports a batch of data sets")
    grids = np.meshgrid(*per_case, indexing="ij")
    return aggregate(np.stack([g.ravel() for g in grids], axis=-1), how)


def draw_indices(rng: np.random.Generator, sizes: Sequence[int], n: int) -> np.ndarray:
    """``n`` independent uniform assignments: one option index per case, shape ``(n, k)``."""
    return np.stack([rng.integers(0, w, size=n) for w in sizes], axis=-1)


def sampled_null(per_case: Sequence[np.ndarray], index: np.ndarray, how: str = "mean") -> np.ndarray:
    """Aggregated statistic under sampled assignments.

    ``per_case[c]`` has shape ``(..., w_c)``; ``index`` has shape ``(..., n, k)``
    (from :func:`draw_indices`). Returns ``(..., n)``.
    """
    cols = [np.take_along_axis(np.asarray(v, dtype=float), index[..., c], axis=-1)
            for c, v in enumerate(per_case)]
    return aggregate(np.stack(cols, axis=-1), how)


def p_value(
    null: np.ndarray,
    observed: np.ndarray | float,
    alternative: str = "greater",
    *,
    includes_observed: bool,
    exclude_equal: bool = False,
) -> tuple[np.ndarray, float]:
    """Randomization p-value and smallest attainable p-value.

    Parameters
    ----------
    null : array, shape (..., m)
        Statistic under the enumerated or sampled assignments.
    observed : array, shape (...)
        Observed statistic.
    alternative : {"greater", "less", "two-sided"}
        ``"greater"``: large values are extreme; ``"two-sided"``: twice the
        smaller one-sided p-value, at most 1.
    includes_observed : bool
        True when ``null`` is the complete enumeration and the observed
        assignment is one of its members (then ``p = b / m``); otherwise
        ``p = (b + 1) / (m + 1)``.
    exclude_equal : bool
        Count only strictly more extreme assignments (not a valid test).

    Returns
    -------
    (p, min_p)
    """
    if alternative not in ALTERNATIVES:
        raise SpecError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    null = np.asarray(null, dtype=float)
    obs = np.asarray(observed, dtype=float)[..., None]
    m = null.shape[-1]
    tol = TIE_TOLERANCE * np.maximum(1.0, np.abs(obs))

    def one_sided(sign: float) -> np.ndarray:
        d, o = sign * null, sign * obs
        extreme = d > o + tol if exclude_equal else d >= o - tol
        b = extreme.sum(axis=-1)
        return b / m if includes_observed else (b + 1) / (m + 1)

    min_p = 1 / m if includes_observed else 1 / (m + 1)
    if alternative == "greater":
        return one_sided(1.0), min_p
    if alternative == "less":
        return one_sided(-1.0), min_p
    p = np.minimum(1.0, 2 * np.minimum(one_sided(1.0), one_sided(-1.0)))
    return p, min(1.0, 2 * min_p)
