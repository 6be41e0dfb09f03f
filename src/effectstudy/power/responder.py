"""Responder (reliable change) design: power to show enough reliable improvers.

Jacobson & Truax (1991): a client's change ``D = post - pre`` is reliable when
``|RCI| = |D| / S_diff > 1.96`` with ``S_diff = SD * sqrt(2 (1 - r))``, where SD
is the instrument's (normative or baseline) SD and r its reliability. With
true changes ``N(mean_change, sd_true_change^2)`` and independent measurement
errors of variance ``(1 - r) SD^2`` at each occasion, the observed change is
``N(mean_change, sd_true_change^2 + S_diff^2)`` and the probability of a
reliable *improvement* is

    pi = Phi((m - 1.96 S_diff) / sqrt(sd_true_change^2 + S_diff^2)),

with m the improvement (``-mean_change`` when lower scores are better).
Power: exact one-sided binomial test of ``H0: pi <= null_proportion``; the
critical count is the smallest k with ``P(X >= k | pi0) <= alpha``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._compat import deprecated_alias
from .._validate import check_significance
from ..change import standard_error_difference
from ..errors import DataError, SpecError

__all__ = ["ResponderDesign", "reliable_change_sdiff"]

#: Deprecated name of :func:`effectstudy.change.standard_error_difference` (one release).
reliable_change_sdiff = deprecated_alias("reliable_change_sdiff", standard_error_difference)


def _critical(n: int, pi0: float, alpha: float) -> int:
    """Smallest k with P(X >= k | n, pi0) <= alpha (n + 1 if none)."""
    k = np.arange(n + 2)
    tail = stats.binom.sf(k - 1, n, pi0)
    ok = np.nonzero(tail <= alpha)[0]
    return int(ok[0]) if ok.size else n + 1


@dataclass(frozen=True, eq=False)
class ResponderDesign:
    """Proportion of reliable improvers per programme (Jacobson & Truax 1991).

    Parameters
    ----------
    n_per_programme : int or sequence of int
        Clients with pre and post measurement, per programme.
    mean_change : float
        True mean change (post - pre) in raw units.
    sd : float
        Instrument SD used for the RCI (normative or baseline SD).
    reliability : float
        Reliability of the instrument (e.g. Cronbach's alpha or test-retest r),
        taken from the data dictionary.
    sd_true_change : float
        SD of the true individual changes (0: everyone changes equally).
    null_proportion : float
        Proportion of reliable improvers to exceed (H0: pi <= pi0).
    lower_is_better : bool
        Whether a decrease is an improvement.
    alpha : float
        One-sided significance level of the exact binomial test (not a
        confidence level).
    name : str
    """

    n_per_programme: int | Sequence[int] = 10
    mean_change: float = -8.0
    sd: float = 10.0
    reliability: float = 0.85
    sd_true_change: float = 0.0
    null_proportion: float = 0.2
    lower_is_better: bool = True
    alpha: float = 0.05
    name: str = "responder"

    def __post_init__(self) -> None:
        try:
            standard_error_difference(self.sd, self.reliability)
        except DataError as exc:  # a planned design: the same check, reported as a spec error
            raise SpecError(exc.message) from exc
        check_significance(self.alpha)
        if not 0 < self.null_proportion < 1:
            raise SpecError("null_proportion must lie in (0, 1)")
        if min(self.ns) < 1:
            raise SpecError("n_per_programme must be positive")

    @property
    def ns(self) -> list[int]:
        n = self.n_per_programme
        return [int(n)] if np.isscalar(n) else [int(v) for v in n]

    @property
    def s_diff(self) -> float:
        return standard_error_difference(self.sd, self.reliability)

    @property
    def responder_probability(self) -> float:
        """True probability of a reliable improvement."""
        m = -self.mean_change if self.lower_is_better else self.mean_change
        sdo = np.hypot(self.sd_true_change, self.s_diff)
        return float(stats.norm.cdf((m - 1.96 * self.s_diff) / sdo))

    def replace(self, **changes: Any) -> ResponderDesign:
        return dataclasses.replace(self, **changes)

    def test_description(self) -> str:
        return f"exact binomial test of pi > {self.null_proportion:g} (pooled over programmes)"

    def analytic(self) -> pd.DataFrame:
        """Exact power per programme and pooled over programmes."""
        pi = self.responder_probability
        rows = []
        ns = self.ns
        for i, n in enumerate(ns + [sum(ns)]):
            k = _critical(n, self.null_proportion, self.alpha)
            rows.append(
                {
                    "programme": f"P{i + 1}" if i < len(ns) else "pooled",
                    "n": n,
                    "pi": pi,
                    "critical_k": k,
                    "power": float(stats.binom.sf(k - 1, n, pi)),
                    "size": float(stats.binom.sf(k - 1, n, self.null_proportion)),
                }
            )
        return pd.DataFrame(rows)

    def simulation_engine(self) -> _ResponderEngine:
        """The machinery :func:`~effectstudy.power.simulate` runs (built in each worker)."""
        return _ResponderEngine(self)


class _ResponderEngine:
    def __init__(self, d: ResponderDesign) -> None:
        self.d = d

    def run_chunk(self, seeds, alpha: float) -> pd.DataFrame:
        d = self.d
        ns = d.ns
        N = sum(ns)
        sgn = -1.0 if d.lower_is_better else 1.0
        e_sd = d.sd * np.sqrt(1 - d.reliability)
        rows = []
        for s in seeds:
            rng = np.random.default_rng(s)
            true = d.mean_change + d.sd_true_change * rng.standard_normal(N)
            obs = true + e_sd * (rng.standard_normal(N) - rng.standard_normal(N))
            improved = sgn * obs / d.s_diff > 1.96
            k = int(improved.sum())
            rows.append(
                {
                    "responders": k,
                    "p": float(stats.binom.sf(k - 1, N, d.null_proportion)),
                    "failed": False,
                    "singular": False,
                }
            )
        return pd.DataFrame(rows)
