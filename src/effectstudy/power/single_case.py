"""Single-case (multiple-baseline / AB) design with a randomization test.

Data model (per case, occasions t = 1..T)::

    y_t = e_t + shift * [t >= s] + slope * (t - s + 1) * [t >= s]

with ``e`` a stationary AR(1) series with lag-1 autocorrelation ``ar`` and
*marginal* SD 1, so ``shift`` and ``slope`` are in within-case SD units; ``s``
is the case's intervention start (first phase-B occasion), drawn at random
from the case's window of allowed start points.

Test: the randomization test that mirrors this random assignment
(Edgington 1980; Marascuilo & Busk 1988; Bulté & Onghena 2008): each case's
start point is independently uniform over its window. The statistic is the
mean over cases of a per-case effect statistic - the phase-mean difference
B - A, or the non-overlap of all pairs (NAP; Parker & Vannest 2009). The
reference distribution is exact (all assignments) when there are at most
``max_exact`` of them, else a Monte Carlo sample of ``n_perm`` assignments
(p = (1 + #{stat >= observed}) / (n_perm + 1)).

This is a compact, vectorised implementation for power simulation; the
statistics are computed here for many data sets at once, but the null
distribution and p-value (tie tolerance relative 1e-10; two-sided = twice the
smaller one-sided p) are the core shared with
:func:`effectstudy.sced.randomization_test` (:mod:`effectstudy._randomization`), and
a test checks that both give the same p-value on the same data.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from .._randomization import aggregate, draw_indices, exact_null, p_value, sampled_null
from .._validate import check_choice, check_rng
from ..errors import SpecError

__all__ = ["SingleCaseDesign", "mb_randomization_test"]


@dataclass(frozen=True, eq=False)
class SingleCaseDesign:
    """A multiple-baseline (or AB) single-case design for power analysis.

    Parameters
    ----------
    n_cases : int
        Number of cases (1 for an AB design).
    series_length : int
        Measurement occasions per case.
    start_window : (int, int) or sequence of (int, int)
        Earliest and latest allowed first phase-B occasion (1-based,
        inclusive), one pair for all cases or one per case.
    level_shift : float
        True level change at the start of phase B, in within-case SD units.
    slope_change : float
        True change in slope per occasion in phase B (SD units).
    ar : float
        Lag-1 autocorrelation of the within-case errors (|ar| < 1).
    statistic : {"mean_difference", "nap"}
    alternative : {"greater", "less", "two-sided"}
        Direction of the expected effect (``"greater"``: phase B higher).
    n_perm : int
        Monte Carlo assignments when the exact distribution is too large.
    max_exact : int
        Largest number of assignments enumerated exactly.
    name : str
    """

    n_cases: int = 3
    series_length: int = 20
    start_window: tuple[int, int] | Sequence[tuple[int, int]] = (6, 15)
    level_shift: float = 1.0
    slope_change: float = 0.0
    ar: float = 0.0
    statistic: Literal["mean_difference", "nap"] = "mean_difference"
    alternative: Literal["greater", "less", "two-sided"] = "greater"
    n_perm: int = 1000
    max_exact: int = 20000
    name: str = "single-case"

    def __post_init__(self) -> None:
        if self.n_cases < 1 or self.series_length < 3:
            raise SpecError("need n_cases >= 1 and series_length >= 3")
        if not -1 < self.ar < 1:
            raise SpecError("ar must lie in (-1, 1)")
        check_choice("statistic", self.statistic, ("mean_difference", "nap"), normalise=False)
        check_choice("alternative", self.alternative, ("greater", "less", "two-sided"),
                     normalise=False)
        w = self.windows()
        for lo, hi in w:
            if not 2 <= lo <= hi <= self.series_length:
                raise SpecError(
                    f"start window ({lo}, {hi}) must satisfy 2 <= first <= last <= series_length"
                )

    def windows(self) -> list[tuple[int, int]]:
        sw = self.start_window
        if len(sw) == 2 and np.isscalar(sw[0]):
            return [(int(sw[0]), int(sw[1]))] * self.n_cases
        w = [(int(a), int(b)) for a, b in sw]
        if len(w) != self.n_cases:
            raise SpecError("give one start window per case")
        return w

    @property
    def n_assignments(self) -> int:
        return int(np.prod([hi - lo + 1 for lo, hi in self.windows()]))

    def replace(self, **changes: Any) -> SingleCaseDesign:
        return dataclasses.replace(self, **changes)

    def simulation_engine(self) -> _SingleCaseEngine:
        """The machinery :func:`~effectstudy.power.simulate` runs (built in each worker)."""
        return _SingleCaseEngine(self)

    def test_description(self) -> str:
        kind = "exact" if self.n_assignments <= self.max_exact else f"Monte Carlo ({self.n_perm})"
        return f"randomization test ({kind}), statistic {self.statistic}, {self.alternative}"


def _case_stats(y: np.ndarray, statistic: str, starts: np.ndarray) -> np.ndarray:
    """Per-case statistic for every candidate start.

    y : (..., T); starts : (S,) first phase-B occasions (1-based).
    Returns (..., S).
    """
    T = y.shape[-1]
    s0 = starts - 1  # number of phase-A points
    if statistic == "mean_difference":
        cs = np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(y, axis=-1)], axis=-1)
        tot = cs[..., -1:]
        a = cs[..., s0]
        return (tot - a) / (T - s0) - a / s0
    # NAP: share of (A, B) pairs with B > A (+1/2 for ties)
    C = (y[..., None, :] > y[..., :, None]) + 0.5 * (y[..., None, :] == y[..., :, None])
    rowcum = np.cumsum(C, axis=-2)  # [s-1, j] = sum_{i<s} C[i, j]
    rows = rowcum[..., s0 - 1, :]  # (..., S, T)
    suffix = np.cumsum(rows[..., ::-1], axis=-1)[..., ::-1]  # sum over j >= col
    idx = np.broadcast_to(s0[:, None], suffix.shape[:-1] + (1,))
    val = np.take_along_axis(suffix, idx, axis=-1)[..., 0]
    return val / (s0 * (T - s0))


def _oriented(stat: np.ndarray, statistic: str, alternative: str) -> np.ndarray:
    centre = 0.5 if statistic == "nap" else 0.0
    if alternative == "greater":
        return stat - centre
    if alternative == "less":
        return centre - stat
    return np.abs(stat - centre)


def mb_randomization_test(
    y: np.ndarray,
    windows: Sequence[tuple[int, int]],
    starts: Sequence[int],
    statistic: str = "mean_difference",
    alternative: str = "greater",
    *,
    n_perm: int = 1000,
    max_exact: int = 20000,
    rng: int | np.random.Generator | None = None,
) -> tuple[float, float]:
    """Randomization test of one multiple-baseline data set.

    Parameters
    ----------
    y : array, shape (n_cases, T)
    windows : per-case (first, last) allowed start points
    starts : the start points actually used
    statistic, alternative : as in :class:`SingleCaseDesign`
    rng : int, numpy.random.Generator or None
        Source of the Monte Carlo draws.

    Returns
    -------
    (statistic, p-value)
    """
    y = np.atleast_2d(np.asarray(y, float))
    stat, p = _test_batch(
        y[None],
        windows,
        np.asarray(starts)[None],
        statistic,
        alternative,
        n_perm,
        max_exact,
        [check_rng(rng)],
    )
    return float(stat[0]), float(p[0])


def _test_batch(Y, windows, starts, statistic, alternative, n_perm, max_exact, rngs):
    """Vectorised test for a batch: Y (m, n_cases, T), starts (m, n_cases).

    The null distribution and p-value come from :mod:`effectstudy._randomization`,
    the core shared with :func:`effectstudy.sced.randomization_test` (one tie
    rule, one two-sided rule).
    """
    m = Y.shape[0]
    per_case = []
    for c, (lo, hi) in enumerate(windows):
        cand = np.arange(lo, hi + 1)
        per_case.append(_oriented(_case_stats(Y[:, c, :], statistic, cand), statistic, "greater"))
    observed = aggregate(
        np.stack([S[np.arange(m), starts[:, c] - lo]
                  for c, (S, (lo, _)) in enumerate(zip(per_case, windows, strict=True))], axis=-1)
    )
    n_assign = int(np.prod([S.shape[1] for S in per_case]))
    if n_assign <= max_exact:
        dist = exact_null(per_case)
        p, _ = p_value(dist, observed, alternative, includes_observed=True)
    else:
        sizes = [S.shape[1] for S in per_case]
        index = np.stack([draw_indices(r, sizes, n_perm) for r in rngs])  # (m, n_perm, nc)
        dist = sampled_null(per_case, index)
        p, _ = p_value(dist, observed, alternative, includes_observed=False)
    return observed, p


class _SingleCaseEngine:
    def __init__(self, design: SingleCaseDesign) -> None:
        self.d = design
        self.windows = design.windows()

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        d = self.d
        T = d.series_length
        starts = np.array([rng.integers(lo, hi + 1) for lo, hi in self.windows])
        z = rng.standard_normal((d.n_cases, T))
        e = np.empty_like(z)
        e[:, 0] = z[:, 0]
        k = np.sqrt(1 - d.ar**2)
        for t in range(1, T):
            e[:, t] = d.ar * e[:, t - 1] + k * z[:, t]
        t = np.arange(1, T + 1)[None, :]
        post = t >= starts[:, None]
        y = e + d.level_shift * post + d.slope_change * (t - starts[:, None] + 1) * post
        return y, starts

    def run_chunk(self, seeds, alpha: float) -> pd.DataFrame:
        d = self.d
        rngs = [np.random.default_rng(s) for s in seeds]
        draws = [self.draw(r) for r in rngs]
        Y = np.stack([a for a, _ in draws])
        starts = np.stack([b for _, b in draws])
        # the oriented statistic is centred so that "greater" is the direction tested
        stat, p = _test_batch(
            Y if d.alternative != "less" else -Y,
            self.windows,
            starts,
            d.statistic,
            "two-sided" if d.alternative == "two-sided" else "greater",
            d.n_perm,
            d.max_exact,
            rngs,
        )
        return pd.DataFrame({"statistic": stat, "p": p, "failed": False, "singular": False})
