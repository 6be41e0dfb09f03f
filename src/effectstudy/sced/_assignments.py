"""Permissible assignments of single-case designs and the test statistics under each.

Used by :func:`effectstudy.sced.randomization_test` and
:func:`effectstudy.sced.random_start_points`: the start points of AB and
multiple-baseline designs (Edgington, 1975; Marascuilo & Busk, 1988), the
phase-change points of ABAB designs (Onghena, 1992), the staggered windows of
the Koehler-Levin (1998) scheme, and each statistic evaluated for many
assignments at once (rows of a boolean matrix, True = treatment phase).

The full references are in the docstring of
:mod:`effectstudy.sced.randomization`.
"""

from __future__ import annotations

import numpy as np

from effectstudy.errors import DataError, SpecError

__all__ = ["ab_masks", "ab_starts", "abab_changes", "abab_masks", "case_statistic",
           "staggered_windows", "min_lengths"]


# --------------------------------------------------------------------------
# statistics over many assignments at once
# --------------------------------------------------------------------------


def case_statistic(name: str, y: np.ndarray, t: np.ndarray, masks: np.ndarray,
                    sign: float, starts: np.ndarray | None = None) -> np.ndarray:
    """Statistic of one case for every assignment (rows of the boolean ``masks``; True = B)."""
    B = masks.astype(float)
    A = 1.0 - B
    nA, nB = A.sum(1), B.sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        if name in ("mean_difference", "smd_hedges", "smd_glass", "t_statistic"):
            mA, mB = A @ y / nA, B @ y / nB
            if name == "mean_difference":
                return sign * (mB - mA)
            vA = (A * (y[None, :] - mA[:, None]) ** 2).sum(1) / (nA - 1)
            vB = (B * (y[None, :] - mB[:, None]) ** 2).sum(1) / (nB - 1)
            if name == "smd_glass":
                return sign * (mB - mA) / np.sqrt(vA)
            if name == "t_statistic":
                return sign * (mB - mA) / np.sqrt(vA / nA + vB / nB)
            n = nA + nB
            sp = np.sqrt(((nA - 1) * vA + (nB - 1) * vB) / (n - 2))
            corr = (n - 3) / (n - 2.25) * np.sqrt((n - 2) / n)  # as scan (Hedges' g approx.)
            return sign * (mB - mA) / sp * corr
        if name == "median_difference":
            med_a = np.nanmedian(np.where(masks, np.nan, y[None, :]), axis=1)
            med_b = np.nanmedian(np.where(masks, y[None, :], np.nan), axis=1)
            return sign * (med_b - med_a)
        if name in ("nap", "wilcoxon_w"):
            diff = y[None, :] - y[:, None]  # [i, j] = y_j - y_i
            better = (diff > 0) if sign > 0 else (diff < 0)
            P = better + 0.5 * (diff == 0)  # i in A, j in B
            count = np.einsum("ki,ij,kj->k", A, P, B)
            if name == "nap":
                return count / (nA * nB)
            return nA * nB - count  # Mann-Whitney W of the baseline: small = improvement
        if name == "slope_difference":
            def slope(W):
                n_ = W.sum(1)
                mx, my = W @ t / n_, W @ y / n_
                sxy = W @ (t * y) - n_ * mx * my
                sxx = W @ (t * t) - n_ * mx * mx
                return sxy / sxx
            return sign * (slope(B) - slope(A))
        if name == "level_change":
            t0 = t - t[0]
            tstart = t[starts][:, None]  # session of the first B observation
            X = np.stack([np.ones_like(B), np.broadcast_to(t0, B.shape), B,
                          B * (t[None, :] - tstart)], axis=2)
            xtx = np.einsum("kni,knj->kij", X, X)
            xty = np.einsum("kni,n->ki", X, y)
            beta = np.linalg.solve(xtx, xty[..., None])[..., 0]
            return sign * beta[:, 2]
    raise SpecError(f"unknown statistic {name!r}")  # pragma: no cover


# --------------------------------------------------------------------------
# permissible assignments
# --------------------------------------------------------------------------


def min_lengths(min_phase_length) -> tuple[int, int]:
    if np.ndim(min_phase_length) == 0:
        m = int(min_phase_length)
        out = (m, m)
    else:
        vals = list(min_phase_length)
        if len(vals) != 2:
            raise SpecError("min_phase_length must be an int or a pair (baseline, treatment)")
        out = (int(vals[0]), int(vals[1]))
    if min(out) < 1:
        raise SpecError("min_phase_length must be at least 1")
    return out


def ab_starts(n: int, mA: int, mB: int) -> np.ndarray:
    """0-based index of the first B observation for every permissible AB split."""
    return np.arange(mA, n - mB + 1)


def ab_masks(n: int, starts: np.ndarray) -> np.ndarray:
    return np.arange(n)[None, :] >= starts[:, None]


def abab_changes(n: int, mA: int, mB: int) -> np.ndarray:
    """All (s1, s2, s3): 0-based starts of B1, A2, B2 with every phase long enough."""
    out = [(s1, s2, s3)
           for s1 in range(mA, n + 1)
           for s2 in range(s1 + mB, n + 1)
           for s3 in range(s2 + mA, n - mB + 1)]
    return np.array(out, dtype=int).reshape(-1, 3)


def abab_masks(n: int, ch: np.ndarray) -> np.ndarray:
    i = np.arange(n)[None, :]
    return ((i >= ch[:, [0]]) & (i < ch[:, [1]])) | (i >= ch[:, [2]])


def staggered_windows(first: int, last: int, n_cases: int) -> list[np.ndarray]:
    """Split the permissible start range ``first..last`` into staggered windows."""
    rng = np.arange(first, last + 1)
    if len(rng) < n_cases:
        raise DataError(f"only {len(rng)} permissible start points for {n_cases} cases; "
                        "Koehler-Levin needs at least one start point per case")
    return [w for w in np.array_split(rng, n_cases)]
