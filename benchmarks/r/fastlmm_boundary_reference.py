"""Write the stored reference data of the power engine's boundary-fit test.

Draws four data sets of reference design A (``GrowthDesign`` defaults) with the seeds
of ``np.random.SeedSequence(1).spawn(40)`` used by
``tests/power/test_power_fastlmm.py::test_boundary_fits_match_lmertest_and_pbkrtest``
(draws 5, 8, 11, 0: programme SD at its bound, both bounds, slope Cholesky at its
bound, interior), writes them to ``tests/power/data/boundary_reference/sim_A_<i>.csv``
(y rounded to 10 digits, as R reads it) and runs ``fastlmm_boundary_reference.R`` on
them, which adds ``r_reference.csv`` (REMLcrit, estimate, SE, Satterthwaite df, KR SE
and df) with the R and package versions in its header comment.

Run once, from the repository root, when the reference values need refreshing:
``python benchmarks/r/fastlmm_boundary_reference.py`` (needs Rscript with lme4,
lmerTest and pbkrtest). The test itself reads the stored files and never calls R.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from effectstudy.power.growth import GrowthDesign, _GrowthEngine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REF = (
    Path(os.environ.get("EFFECTSTUDY_REFERENCE", ROOT.parent / "shared" / "reference"))
    / "multilevel"
)
OUT = ROOT / "tests" / "power" / "data" / "boundary_reference"
DRAWS = (5, 8, 11, 0)  # programme boundary, both, slope boundary, interior


def main() -> int:
    lay = pd.read_csv(REF / "data" / "power_design_A.csv")
    eng = _GrowthEngine(GrowthDesign(layout=lay))
    seeds = np.random.SeedSequence(1).spawn(40)
    OUT.mkdir(parents=True, exist_ok=True)
    for i in DRAWS:
        y = np.round(eng.draw(np.random.default_rng(seeds[i])), 10)
        lay.assign(y=y).to_csv(OUT / f"sim_A_{i}.csv", index=False, float_format="%.10f")
    subprocess.run(["Rscript", str(HERE / "fastlmm_boundary_reference.R"), str(OUT)], check=True)
    print(pd.read_csv(OUT / "r_reference.csv", comment="#").to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
