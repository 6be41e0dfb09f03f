"""Check: the general mixed-model engine finds an optimum at least as good as lme4's.

Simulates ``n`` data sets of reference designs A (``(1 | programme) + (1 + time | client)``)
and C (``(1 | programme) + (1 | client)``) with the power engine's generator
(``np.random.default_rng(seed)``, seeds 0..n-1, as tests/power/test_power_fastlmm.py),
fits them with ``effectstudy.multilevel.fit`` (REML) and with lme4 under tight
``nloptwrap`` control (lmm_optimum_vs_lme4.R), and reports ``ours - lme4`` of the REML
criterion (negative or ~0 is good; > 1e-6 is a failure). Needs ``Rscript`` with lme4.

Usage: ``python benchmarks/r/lmm_optimum_vs_lme4.py [--n 40]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from effectstudy.multilevel import fit
from effectstudy.power.growth import _GrowthEngine, reference_design

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
REF = (
    Path(os.environ.get("EFFECTSTUDY_REFERENCE", ROOT.parent / "shared" / "reference"))
    / "multilevel"
)

FORMULA = {
    "A": "y ~ time + (1 | programme) + (1 + time | client)",
    "C": "y ~ time + (1 | programme) + (1 | client)",
}


def design(which: str) -> tuple[pd.DataFrame, _GrowthEngine]:
    lay = pd.read_csv(REF / "data" / f"power_design_{which}.csv")
    return lay, _GrowthEngine(reference_design(which, lay))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=40)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for which in ("A", "C"):
            lay, eng = design(which)
            for seed in range(args.n):
                y = np.round(eng.draw(np.random.default_rng(seed)), 10)
                data = lay.assign(y=y)
                f = Path(tmp) / f"sim_{which}_{seed}.csv"
                data.to_csv(f, index=False)
                files.append(str(f))
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = fit(FORMULA[which], data)
                fast = eng.model.fit(eng.model.stats(y), start=eng.theta0, tol=1e-12)
                rows.append(
                    dict(
                        file=f.name,
                        design=which,
                        seed=seed,
                        ours=res.reml_criterion,
                        fast=fast.deviance,
                        seconds=time.perf_counter() - t0,
                        singular=res.is_singular,
                        messages="; ".join(res.messages),
                    )
                )
        out = Path(tmp) / "r.csv"
        subprocess.run(
            ["Rscript", str(HERE / "lmm_optimum_vs_lme4.R"), str(out), *files], check=True
        )
        r = pd.read_csv(out, comment="#")
    tab = pd.DataFrame(rows).merge(r, on="file")
    tab["ours_minus_lme4"] = tab["ours"] - tab["REMLcrit"]
    tab["ours_minus_fast"] = tab["ours"] - tab["fast"]
    pd.set_option("display.width", 200)
    print(
        tab[
            [
                "design",
                "seed",
                "ours_minus_lme4",
                "ours_minus_fast",
                "singular_x",
                "singular_y",
                "seconds",
            ]
        ].to_string(index=False)
    )
    for which, g in tab.groupby("design"):
        print(
            f"design {which}: n={len(g)}, max(ours - lme4) = {g.ours_minus_lme4.max():.3g}, "
            f"min = {g.ours_minus_lme4.min():.3g}, max(ours - fast) = "
            f"{g.ours_minus_fast.max():.3g}, singular (ours/lme4) = "
            f"{int(g.singular_x.sum())}/{int(g.singular_y.sum())}, "
            f"mean fit time {g.seconds.mean():.3f}s"
        )
    bad = tab[tab.ours_minus_lme4 > 1e-6]
    print("FAIL" if len(bad) else "OK: never worse than lme4 by more than 1e-6")
    return 1 if len(bad) else 0


if __name__ == "__main__":
    raise SystemExit(main())
