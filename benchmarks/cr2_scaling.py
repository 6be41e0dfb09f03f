"""CR2 and fit_ar1 at growing sizes: time, peak memory and growth exponent (issue 16).

* ``cluster_robust`` / ``cr2_from_arrays`` (CR2 covariance, Satterthwaite df of every
  coefficient and one 2-df HTZ test) at 5,000 and 50,000 rows in 60 clusters, with
  an OLS working model and with a mixed-model working model (random intercept and
  slope per client, clients nested in the 60 clusters; the blocks are built from
  known variance components, so only the CR2 step is timed).  The mixed-model
  blocks are passed as ``LowRankCovariance`` (``sigma^2 I + F F'``: reduced to a
  ``(p + r)``-dimensional problem per cluster) and, for comparison, as dense
  ``n_j x n_j`` arrays (the exact path).  Target (issue 16): under 10 s at 50,000
  rows.  Where ``Rscript`` with clubSandwich and lme4 is installed, clubSandwich
  0.5.8 runs the same data in the same run (``lm`` / ``lmer(y ~ x1 + x2 + x3 + x4 +
  (1 + t | client))``; only ``vcovCR`` + ``coef_test`` + ``Wald_test`` are timed,
  not the fit; its working model is the lmer fit's, so its numbers differ).
* ``fit_ar1`` (REML, random intercept, AR(1) over occasions, no LRT refit) at 50,
  200, 1,000 and 5,000 clients with 5 occasions each, for ``group="client"`` and
  for ``group=["programme", "client"]`` (6 programmes), side by side with
  ``nlme::lme`` where R and nlme are installed.

Every measurement runs in a fresh process with one BLAS thread; peak memory is the
process's maximum resident set size.  The growth exponent is the least-squares
slope of log(time) on log(size).

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cr2_scaling.py [--quick]
[--cr2-only] [--no-r]``.

CR2 numbers of the last run (2 shared cores, one BLAS thread, seconds / peak MB)::

    working model          rows   seconds  peak MB  clubSandwich s  clubSandwich MB
    OLS                    5000      0.03      184            0.57              165
    OLS                   50000      0.04      188          284.36             2657
    LMM low-rank blocks    5000      0.05      189            0.51              207
    LMM low-rank blocks   50000      1.10      387          220.07             2616
    LMM dense blocks       5000      0.06      188               -                -
    LMM dense blocks      50000      5.08      547               -                -

At 5,000 rows the clusters have 83 rows and ``method="auto"`` keeps them dense
(the reduction pays from about 130 rows).  Under the load of other jobs on the
same machine, LMM at 50,000 rows took 2.4 s (low-rank) against 10.8-13.0 s
(dense).  clubSandwich's working model is its own lmer fit, so its numbers are
for the same sizes, not the same variance components.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}

R_NLME = r"""
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
nested <- args[2] == "nested"
invisible(gc(reset = TRUE))
t <- system.time({
  if (nested) {
    fit <- lme(outcome ~ time, random = ~ 1 | programme/client,
               correlation = corAR1(form = ~ occasion | programme/client), method = "REML", data = d)
  } else {
    fit <- lme(outcome ~ time, random = ~ 1 | client,
               correlation = corAR1(form = ~ occasion | client), method = "REML", data = d)
  }
})[["elapsed"]]
g <- gc()
cat(sprintf('{"seconds": %.4f, "peak_mb": %.1f, "loglik": %.6f}\n', t, sum(g[, ncol(g)]),
            as.numeric(logLik(fit))))
"""

R_CLUBSANDWICH = r"""
suppressPackageStartupMessages({library(clubSandwich); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
mixed <- args[2] == "lmm"
if (mixed) {
  fit <- lmer(y ~ x1 + x2 + x3 + x4 + (1 + t | client), data = d, REML = TRUE)
} else {
  fit <- lm(y ~ x1 + x2 + x3 + x4, data = d)
}
invisible(gc(reset = TRUE))
t <- system.time({
  V <- vcovCR(fit, cluster = d$cluster, type = "CR2")
  ct <- coef_test(fit, vcov = V, test = "Satterthwaite")
  wt <- Wald_test(fit, constraints = constrain_zero(c("x2", "x3")), vcov = V, test = "HTZ")
})[["elapsed"]]
g <- gc()
cat(sprintf('{"seconds": %.4f, "peak_mb": %.1f}\n', t, sum(g[, ncol(g)])))
"""


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------


def growth_data(n_clients: int, seed: int = 1, n_programmes: int = 6) -> pd.DataFrame:
    """Synthetic growth data: 5 occasions per client, AR(1) errors (phi 0.5)."""
    rng = np.random.default_rng(seed)
    k = 5
    client = np.repeat(np.arange(n_clients), k)
    occasion = np.tile(np.arange(1, k + 1), n_clients)
    prog = client % n_programmes
    u = rng.normal(0, 6, n_clients)[client] + rng.normal(0, 3, n_programmes)[prog]
    e = np.empty(n_clients * k)
    e0 = rng.normal(0, 5, (n_clients, k))
    e2 = e0.copy()
    for j in range(1, k):
        e2[:, j] = 0.5 * e2[:, j - 1] + math.sqrt(1 - 0.25) * e0[:, j]
    e[:] = e2.ravel()
    time_w = (occasion - 1) * 8.0
    return pd.DataFrame(
        {
            "programme": [f"P{p + 1}" for p in prog],
            "client": [f"K{c}" for c in client],
            "occasion": occasion,
            "time": time_w,
            "outcome": np.round(60 - 0.2 * time_w + u + e, 2),
        }
    )


def cr2_arrays(n_rows: int, n_clusters: int = 60, seed: int = 2):
    rng = np.random.default_rng(seed)
    k = 5
    n_clients = n_rows // k
    client = np.repeat(np.arange(n_clients), k)
    cluster = client % n_clusters
    t = np.tile(np.arange(k) * 8.0, n_clients)
    x = rng.normal(size=n_clients)[client]
    X = np.column_stack([np.ones(n_rows), t, x, t * x, rng.normal(size=n_rows)])
    y = X @ np.array([60.0, -0.2, 1.0, 0.05, 0.3]) + rng.normal(0, 6, n_clients)[client]
    y += rng.normal(0, 5, n_rows) + rng.normal(0, 2, n_clusters)[cluster]
    return X, y, cluster, client, t


# ---------------------------------------------------------------------------
# one measurement (runs in a child process)
# ---------------------------------------------------------------------------


def _lmm_blocks(kind: str, X, cluster, client, t):
    """Working covariance per cluster (``V = Z T Z' + s2 I`` per client) and GLS beta."""
    from effectstudy.multilevel.cr2_core import LowRankCovariance

    # intercept SD 6, slope SD 0.1, correlation -0.3; s2 = 25
    T = np.array([[36.0, -0.18], [-0.18, 0.01]])
    order = np.argsort(cluster, kind="stable")
    bounds = np.searchsorted(cluster[order], np.arange(61))
    blocks, rows = [], []
    for j in range(60):
        ix = order[bounds[j] : bounds[j + 1]]
        _, inv = np.unique(client[ix], return_inverse=True)
        Z = np.zeros((ix.size, 2 * (int(inv.max()) + 1)))
        Z[np.arange(ix.size), 2 * inv] = 1.0
        Z[np.arange(ix.size), 2 * inv + 1] = t[ix]
        Tj = np.kron(np.eye(Z.shape[1] // 2), T)
        low = LowRankCovariance.from_components(25.0, Z, Tj)
        blocks.append(low if kind == "cr2_lmm" else low.dense())
        rows.append(ix)
    return blocks, rows


def _measure(kind: str, size: int) -> dict:
    from effectstudy.multilevel.ar1 import fit_ar1
    from effectstudy.multilevel.robust import cr2_from_arrays

    if kind.startswith("cr2"):
        X, y, cluster, client, t = cr2_arrays(size)
        t0 = time.perf_counter()
        if kind == "cr2_ols":
            beta = np.linalg.lstsq(X, y, rcond=None)[0]
            res = cr2_from_arrays(X, y, beta, cluster)
        else:
            blocks, rows = _lmm_blocks(kind, X, cluster, client, t)
            XtWX, Xty = np.zeros((X.shape[1], X.shape[1])), np.zeros(X.shape[1])
            for b, ix in zip(blocks, rows, strict=True):
                Vj = b if isinstance(b, np.ndarray) else b.dense()
                s = np.linalg.solve(Vj, np.column_stack([X[ix], y[ix]]))
                XtWX += X[ix].T @ s[:, :-1]
                Xty += X[ix].T @ s[:, -1]
            beta = np.linalg.solve(XtWX, Xty)
            t0 = time.perf_counter()  # time the CR2 step only
            res = cr2_from_arrays(X, y, beta, cluster, V_blocks=blocks)
        res.coefficients()
        res.wald_test(["x2", "x3"])
        seconds = time.perf_counter() - t0
        extra = {"n_clusters": res.n_clusters}
    else:
        data = growth_data(size)
        group = ["programme", "client"] if kind == "ar1_nested" else "client"
        t0 = time.perf_counter()
        fit = fit_ar1("outcome ~ time", data, group=group, random="1", correlation="AR1",
                      index="occasion", lrt=False)
        seconds = time.perf_counter() - t0
        extra = {"loglik": fit.loglik}
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mb": peak_kb / 1024.0, **extra}


def _run_child(kind: str, size: int, timeout: float) -> dict | None:
    env = {**os.environ, **ONE_THREAD}
    cmd = [sys.executable, __file__, "--one", kind, str(size)]
    try:
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout,
                             check=True)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as exc:
        print(f"  {kind} {size}: failed ({type(exc).__name__})", file=sys.stderr)
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_r_cr2(kind: str, size: int, timeout: float) -> dict | None:
    """clubSandwich on the same synthetic data (``None`` without R, clubSandwich or lme4)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    check = subprocess.run([rscript, "-e", "library(clubSandwich); library(lme4)"],
                           capture_output=True)
    if check.returncode != 0:
        return None
    X, y, cluster, client, t = cr2_arrays(size)
    frame = pd.DataFrame({"y": y, **{f"x{i}": X[:, i] for i in range(1, X.shape[1])},
                          "cluster": cluster, "client": client, "t": t})
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)
        csv = Path(tmp) / "d.csv"
        frame.to_csv(csv, index=False)  # synthetic data only
        script = Path(tmp) / "cr2.R"
        script.write_text(R_CLUBSANDWICH)
        try:
            out = subprocess.run(
                [rscript, str(script), str(csv), "lmm" if kind != "cr2_ols" else "ols"],
                env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                timeout=timeout, check=True,
            )
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
            print(f"  clubSandwich {kind} {size}: failed", file=sys.stderr)
            return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _run_r(size: int, nested: bool, timeout: float) -> dict | None:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    check = subprocess.run([rscript, "-e", "library(nlme)"], capture_output=True)
    if check.returncode != 0:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        os.chmod(tmp, 0o700)
        csv = Path(tmp) / "d.csv"
        growth_data(size).to_csv(csv, index=False)  # synthetic data only
        script = Path(tmp) / "fit.R"
        script.write_text(R_NLME)
        try:
            out = subprocess.run(
                [rscript, str(script), str(csv), "nested" if nested else "client"],
                env={**os.environ, **ONE_THREAD}, capture_output=True, text=True,
                timeout=timeout, check=True,
            )
        except (subprocess.TimeoutExpired, subprocess.CalledProcessError):
            return None
    return json.loads(out.stdout.strip().splitlines()[-1])


def _exponent(sizes: list[int], seconds: list[float | None]) -> float:
    pts = [(math.log(s), math.log(t)) for s, t in zip(sizes, seconds, strict=True) if t]
    if len(pts) < 2:
        return float("nan")
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--one", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--no-r", action="store_true", help="skip the clubSandwich and nlme columns")
    ap.add_argument("--cr2-only", action="store_true", help="skip the fit_ar1 measurements")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(_measure(args.one[0], int(args.one[1]))))
        return

    cr2_sizes = [5_000, 50_000] if not args.quick else [1_000, 5_000]
    ar1_sizes = [50, 200, 1_000, 5_000] if not args.quick else [50, 200]
    print("CR2, 60 clusters (effectstudy and clubSandwich)")
    print(f"{'working model':<22}{'rows':>8}{'seconds':>10}{'peak MB':>10}"
          f"{'clubS. s':>10}{'clubS. MB':>10}")
    kinds = [("cr2_ols", "OLS"), ("cr2_lmm", "LMM low-rank blocks"),
             ("cr2_lmm_dense", "LMM dense blocks")]
    for kind, label in kinds:
        secs = []
        for n in cr2_sizes:
            r = _run_child(kind, n, args.timeout)
            secs.append(r["seconds"] if r else None)
            rr = None if args.no_r or kind == "cr2_lmm_dense" else _run_r_cr2(
                kind, n, args.timeout)
            rcols = f"{rr['seconds']:>10.2f}{rr['peak_mb']:>10.0f}" if rr else f"{'-':>10}{'-':>10}"
            if r:
                print(f"{label:<22}{n:>8}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{rcols}",
                      flush=True)
        print(f"{label:<22}growth exponent (time ~ rows^k): {_exponent(cr2_sizes, secs):.2f}")
    if args.cr2_only:
        return

    print("\nfit_ar1 REML, random intercept, AR(1), 5 occasions per client (no LRT refit)")
    print(f"{'grouping':<20}{'clients':>8}{'seconds':>10}{'peak MB':>10}"
          f"{'nlme s':>10}{'nlme MB':>10}{'ratio':>8}{'dlogLik':>10}")
    for kind, nested in [("ar1_client", False), ("ar1_nested", True)]:
        label = "programme/client" if nested else "client"
        ours_s, r_s = [], []
        for n in ar1_sizes:
            r = _run_child(kind, n, args.timeout)
            rr = None if args.no_r else _run_r(n, nested, args.timeout)
            ours_s.append(r["seconds"] if r else None)
            r_s.append(rr["seconds"] if rr else None)
            if r is None:
                print(f"{label:<20}{n:>8}{'failed':>10}")
                continue
            rcols = (f"{rr['seconds']:>10.2f}{rr['peak_mb']:>10.0f}"
                     f"{r['seconds'] / max(rr['seconds'], 1e-9):>8.1f}"
                     f"{r['loglik'] - rr['loglik']:>10.2e}") if rr else f"{'-':>10}{'-':>10}"
            print(f"{label:<20}{n:>8}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{rcols}")
        print(f"{label:<20}growth exponent: effectstudy {_exponent(ar1_sizes, ours_s):.2f}, "
              f"nlme {_exponent(ar1_sizes, r_s):.2f}")
    print("\nratio = effectstudy seconds / nlme seconds; dlogLik = effectstudy - nlme REML logLik")


if __name__ == "__main__":
    main()
