"""Benchmark: all per-case SCED effect sizes for 1,000 cases of 20 + 20 points.

Run with ``python benchmarks/sced_effect_sizes.py [n_cases]``. Prints the
wall-clock seconds of :func:`effectstudy.sced.effect_sizes` (all indices:
NAP, IRD, PND, PEM, PAND, Tau, Tau-BC, Tau-U, SMD, LRRd, LRRi with percentage
change, LRM, LOR, PoGO) and of :func:`effectstudy.sced.overlap`. Target: under
1 s for the effect sizes. (R is not installed here, so only our timings are
printed.)
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd

from effectstudy.sced import effect_sizes, overlap


def make_data(
    n_cases: int = 1000, n_a: int = 20, n_b: int = 20, seed: int = 20240611
) -> pd.DataFrame:
    """Simulated percentage-of-intervals series (0-100, step 5) with a level shift."""
    rng = np.random.default_rng(seed)
    n = n_a + n_b
    level = np.r_[np.full(n_a, 30.0), np.full(n_b, 55.0)]
    y = np.clip(np.round((level + rng.normal(0, 12, size=(n_cases, n))) / 5) * 5, 0, 100)
    return pd.DataFrame(
        {
            "case": np.repeat([f"c{i:04d}" for i in range(n_cases)], n),
            "phase": np.tile(np.r_[["A"] * n_a, ["B"] * n_b], n_cases),
            "session": np.tile(np.arange(1, n + 1), n_cases),
            "outcome": y.ravel(),
        }
    )


def main(n_cases: int = 1000) -> None:
    data = make_data(n_cases)
    kw = dict(case="case", phase="phase", session="session", outcome="outcome")
    effect_sizes(data.head(80), **kw, scale="percentage", intervals=20, goal=90)  # warm-up
    t0 = time.perf_counter()
    res = effect_sizes(
        data, **kw, scale="percentage", intervals=20, goal=90, pct_change=True, pretest_trend=0.05
    )
    t1 = time.perf_counter()
    ov = overlap(data, **kw)
    t2 = time.perf_counter()
    print(
        f"effect_sizes: {n_cases} cases x 20+20 points, {res.measure.nunique()} measures, "
        f"{len(res)} rows: {t1 - t0:.3f} s"
    )
    print(f"overlap (scan table): {len(ov)} cases: {t2 - t1:.3f} s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
