"""Benchmark: simulated power of reference design A (nsim = 1000), ours vs R.

Ours: ``effectstudy.power.simulate`` (fast profiled REML + Satterthwaite df).
R: if ``Rscript`` with lme4 and lmerTest is on PATH, a loop of lmer +
lmerTest refits on the same design is timed; otherwise the simr wall time
recorded in the reference file (``elapsed_seconds``) is used and said so.

Usage: ``python benchmarks/power_vs_r.py [--nsim 1000] [--n-jobs -1]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from effectstudy.power.api import simulate
from effectstudy.power.growth import reference_design

ROOT = Path(__file__).resolve().parents[1]
REF = (
    Path(os.environ.get("EFFECTSTUDY_REFERENCE", ROOT.parent / "shared" / "reference"))
    / "multilevel"
)

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); nsim <- as.integer(args[2]); set.seed(2001)
d$programme <- factor(d$programme); d$client <- factor(d$client)
prog <- as.integer(d$programme); cl <- as.integer(d$client)
S <- matrix(c(36, -0.3*6*0.15, -0.3*6*0.15, 0.0225), 2); R <- chol(S)
t0 <- proc.time()[["elapsed"]]; rej <- 0
for (i in seq_len(nsim)) {
  v <- rnorm(nlevels(d$programme), 0, 2)
  u <- matrix(rnorm(2 * nlevels(d$client)), ncol = 2) %*% R
  d$y <- 50 - 0.10 * d$time + v[prog] + u[cl, 1] + u[cl, 2] * d$time + rnorm(nrow(d), 0, 5)
  fit <- suppressWarnings(suppressMessages(
    lmer(y ~ time + (1 | programme) + (1 + time | client), data = d)))
  p <- summary(fit, ddf = "Satterthwaite")$coefficients["time", "Pr(>|t|)"]
  rej <- rej + (p < 0.05)
}
cat(sprintf("%.3f %d\n", proc.time()[["elapsed"]] - t0, rej))
"""


def r_available() -> bool:
    if shutil.which("Rscript") is None:
        return False
    r = subprocess.run(["Rscript", "-e", "library(lme4); library(lmerTest)"], capture_output=True)
    return r.returncode == 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nsim", type=int, default=1000)
    ap.add_argument("--n-jobs", type=int, default=-1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    layout = pd.read_csv(REF / "data" / "power_design_A.csv")
    design = reference_design("A", layout)
    # warm-up: imports and (for n_jobs != 1) the reusable loky worker pool
    simulate(design, nsim=8, rng=0, n_jobs=args.n_jobs, progress=False)
    t0 = time.perf_counter()
    res = simulate(design, nsim=args.nsim, rng=args.seed, n_jobs=args.n_jobs, progress=True)
    wall = time.perf_counter() - t0
    cpu = res.extra["cpu_seconds"]
    load = os.getloadavg()[0]
    print(
        f"ours   : design A, nsim={args.nsim}, n_jobs={args.n_jobs}: wall {wall:.1f} s "
        f"(CPU summed over workers {cpu:.1f} s; load average {load:.1f} on {os.cpu_count()} cores)"
    )
    print(
        f"         power {res.power:.3f} +- {res.mc_se:.3f} (MC SE), 95% CI [{res.ci_lower:.3f}, {res.ci_upper:.3f}]; "
        f"{res.n_singular} singular, {res.n_failed} failed"
    )

    ref = pd.read_csv(REF / "expected_power.csv")
    simr = ref[(ref.section == "simr") & (ref.design_id == "simr_A")].set_index("quantity")["value"]
    p_simr = float(simr["power"])
    n_simr = int(float(simr["nsim"]))
    se_simr = np.sqrt(p_simr * (1 - p_simr) / n_simr)
    if r_available():
        with tempfile.TemporaryDirectory() as tmp:
            script = Path(tmp) / "bench.R"
            script.write_text(R_CODE)
            out = subprocess.run(
                ["Rscript", str(script), str(REF / "data" / "power_design_A.csv"), str(args.nsim)],
                capture_output=True,
                text=True,
                check=True,
            )
        r_time, r_rej = out.stdout.split()
        r_time = float(r_time)
        p_r = int(r_rej) / args.nsim
        print(
            f"R      : lmer + lmerTest loop, nsim={args.nsim}: {r_time:.1f} s; power {p_r:.3f} "
            f"+- {np.sqrt(p_r * (1 - p_r) / args.nsim):.3f}"
        )
        label = "R loop"
    else:
        r_time = float(simr["elapsed_seconds"]) * args.nsim / n_simr
        print(
            "R      : Rscript with lme4+lmerTest not found on PATH; using simr's recorded wall time "
            f"from the reference file ({float(simr['elapsed_seconds']):.1f} s for nsim={n_simr}"
            + (f", scaled to nsim={args.nsim}" if args.nsim != n_simr else "")
            + ")"
        )
        print(f"         simr power {p_simr:.3f} +- {se_simr:.3f} (MC SE)")
        label = "simr (recorded)"
    print(
        f"speed-up: {label} {r_time:.1f} s / ours {wall:.1f} s = {r_time / wall:.1f}x (wall clock)"
    )
    print(
        f"          {label} {r_time:.1f} s / ours {cpu:.1f} CPU-s = {r_time / cpu:.1f}x "
        "(R is single-threaded; this is the single-core comparison, robust to machine load)"
    )
    diff = res.power - p_simr
    se = np.sqrt(se_simr**2 + res.mc_se**2)
    print(f"power difference ours - simr = {diff:+.3f} ({diff / se:+.2f} combined MC SE)")


if __name__ == "__main__":
    main()
