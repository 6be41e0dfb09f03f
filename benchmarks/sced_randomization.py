"""Benchmark: exact randomization test of a 4-case multiple-baseline design.

Each case has 10 permissible start points, so the test enumerates
10**4 = 10,000 assignments (Marascuilo-Busk scheme). Target: < 1 s.
R is not installed here, so only effectstudy's time is printed.

Run: ``.venv/bin/python benchmarks/sced_randomization.py``
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from effectstudy.sced.randomization import randomization_test


def make_data(seed: int = 2024) -> pd.DataFrame:
    """4 cases x 19 sessions; min_phase_length 5 leaves start points 6..15 (10 per case)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, start in enumerate([6, 8, 11, 14]):
        for t in range(1, 20):
            b = t >= start
            rows.append(dict(case=f"case{i + 1}", session=t, phase="B" if b else "A",
                             outcome=50 + 0.3 * t + 8 * b + rng.normal(0, 4)))
    return pd.DataFrame(rows)


def main() -> None:
    data = make_data()
    for statistic in ("mean_difference", "median_difference", "nap", "level_change"):
        randomization_test(data, case="case", design="MB", statistic=statistic,
                           min_phase_length=5)  # warm-up
        reps = 5
        t0 = time.perf_counter()
        for _ in range(reps):
            res = randomization_test(data, case="case", design="MB", statistic=statistic,
                                     min_phase_length=5, exhaustive=True)
        sec = (time.perf_counter() - t0) / reps
        assert res.n_assignments == 10_000 and res.exact
        print(f"{statistic:18s} assignments={res.n_assignments:6d} p={res.p_value:.4f} "
              f"seconds={sec:.4f} (target < 1 s)")


if __name__ == "__main__":
    main()
