"""Write the stored data of the general engine's false-boundary regression test.

Design-A data sets (``power_design_A.csv``; Intercept 50, time -0.1, SDs programme 2,
intercept 6, slope 0.15, cor -0.3, residual 5) drawn with ``np.random.default_rng(seed)``
for the seeds at which ``effectstudy.multilevel.fit`` once stopped at a false boundary
optimum (a zero Cholesky column, where the REML criterion has zero gradient): 1 and 4
(REML criterion 1.29 and 0.075 too high on the lead's machine) and 7 (0.0018 too high
here). Writes ``tests/multilevel/data/lmm_boundary_A_seed<s>.csv`` and lme4's REML
criterion with tight control (``lmm_optimum_vs_lme4.R``) to
``tests/multilevel/data/lmm_boundary_reference.csv``.

Usage, from the repository root (needs Rscript with lme4):
``python benchmarks/r/lmm_boundary_regression_data.py``
"""

from __future__ import annotations

import subprocess

import numpy as np
import pandas as pd
from lmm_optimum_vs_lme4 import HERE, ROOT, design

OUT = ROOT / "tests" / "multilevel" / "data"
SEEDS = (1, 4, 7)


def main() -> int:
    lay, eng = design("A")
    OUT.mkdir(parents=True, exist_ok=True)
    files = []
    for seed in SEEDS:
        y = np.round(eng.draw(np.random.default_rng(seed)), 10)
        f = OUT / f"lmm_boundary_A_seed{seed}.csv"
        lay.assign(y=y).to_csv(f, index=False, float_format="%.10f")
        files.append(str(f))
    target = OUT / "lmm_boundary_reference.csv"
    subprocess.run(
        ["Rscript", str(HERE / "lmm_optimum_vs_lme4.R"), str(target), *files], check=True
    )
    print(pd.read_csv(target, comment="#").to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
