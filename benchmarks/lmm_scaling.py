"""Mixed-model engine at growing sizes: time, peak memory, growth exponent, and R (issue 16).

The model is the growth model of the issue, ``y ~ time * group + (1 + time | client)``
with 5 occasions per client (two-level), and the same with ``+ (1 | programme)`` and
20 programmes (three-level). For every size it measures

* ``fit + Satterthwaite``: :func:`effectstudy.multilevel.fit` (REML) and the
  coefficient table with Satterthwaite df (lme4 ``lmer`` + lmerTest ``summary``);
* ``KR``: the coefficient table with Kenward-Roger df and adjusted SEs
  (pbkrtest, through lmerTest's ``summary(fit, ddf = "Kenward-Roger")``);

each in a fresh process with one BLAS thread; peak memory is the process's
maximum resident set size (Python and R interpreters included). Where
``Rscript`` with lme4 and lmerTest (and pbkrtest) is installed, R runs the same
data in the same run and the ratio is printed. pbkrtest forms dense ``n x n``
matrices, so its KR column is measured only up to ``--max-r-kr`` clients.

The growth exponent is the least-squares slope of log(time) on log(clients), over
all sizes and from 1,000 clients on (where fixed costs no longer dominate).
The targets of the issue are printed as met / not met with the measured gap:
fit + Satterthwaite at or below lme4's time at every size up to 20,000 clients;
KR at 1,000 clients at least 5x faster than pbkrtest; growth exponent of the
fit below 1.2.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lmm_scaling.py [--quick]
[--sizes 50 200 1000] [--no-r] [--out results.csv]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
SIZES = [50, 200, 1000, 5000, 20000]
PROGRAMMES = 20

R_SCRIPT = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
three <- args[2] == "three"
do_kr <- args[3] == "kr"
f <- if (three) y ~ time * group + (1 + time | client) + (1 | programme) else
  y ~ time * group + (1 + time | client)
t_fit <- system.time({
  fit <- lmer(f, data = d, REML = TRUE)
  tab <- coef(summary(fit))
})[["elapsed"]]
t_kr <- NA
if (do_kr && requireNamespace("pbkrtest", quietly = TRUE)) {
  t_kr <- system.time(tabkr <- coef(summary(fit, ddf = "Kenward-Roger")))[["elapsed"]]
}
st <- readLines("/proc/self/status")
hwm <- as.numeric(gsub("[^0-9]", "", st[grepl("^VmHWM", st)])) / 1024
cat(sprintf('{"fit_sat": %.4f, "kr": %s, "peak_mb": %.1f, "loglik": %.6f}\n', t_fit,
            ifelse(is.na(t_kr), "null", sprintf("%.4f", t_kr)), hwm, as.numeric(logLik(fit))))
"""

CHILD = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from effectstudy.multilevel import fit
d = pd.read_csv(sys.argv[1])
three = sys.argv[2] == "three"
f = "y ~ time * group + (1 + time | client)" + (" + (1 | programme)" if three else "")
t0 = time.perf_counter()
res = fit(f, d)
res.coefficients("satterthwaite")
t1 = time.perf_counter()
res.coefficients("kenward-roger")
t2 = time.perf_counter()
print(json.dumps(dict(fit_sat=t1 - t0, kr=t2 - t1, loglik=res.loglik,
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def growth_data(n_clients: int, seed: int = 1, occasions: int = 5) -> pd.DataFrame:
    """Synthetic growth data (no real client): 5 occasions, two groups, 20 programmes."""
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clients), occasions)
    t = np.tile(np.arange(occasions, dtype=float), n_clients)
    g = (np.arange(n_clients) % 2)[cl]
    pr = (np.arange(n_clients) % PROGRAMMES)[cl]
    y = (10 + 0.5 * t - 0.3 * g * t + rng.normal(0, 1.0, n_clients)[cl]
         + rng.normal(0, 0.3, n_clients)[cl] * t + rng.normal(0, 0.5, PROGRAMMES)[pr]
         + rng.normal(0, 1, len(cl)))
    return pd.DataFrame({"y": y, "time": t, "group": np.where(g == 1, "B", "A"),
                         "client": [f"c{i}" for i in cl], "programme": [f"p{i}" for i in pr]})


def _run(cmd: list[str], timeout: float) -> dict | None:
    env = dict(os.environ, **ONE_THREAD)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-1500:])
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _r_available() -> tuple[bool, bool]:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False, False
    ok = subprocess.run([rscript, "-e", "library(lme4); library(lmerTest)"],
                        capture_output=True).returncode == 0
    kr = ok and subprocess.run([rscript, "-e", "library(pbkrtest)"],
                               capture_output=True).returncode == 0
    return ok, kr


def _exponent(sizes: list[int], seconds: list[float | None]) -> float:
    pts = [(math.log(s), math.log(t)) for s, t in zip(sizes, seconds, strict=True)
           if t is not None and t > 0]
    if len(pts) < 2:
        return float("nan")
    x, y = np.array(pts).T
    return float(np.polyfit(x, y, 1)[0])


def _fmt(v: float | None, unit: str = "s") -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.2f} {unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    ap.add_argument("--quick", action="store_true", help="sizes 50, 200, 1000 only")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--max-r-kr", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--out", help="write the table as CSV (atomic, 0600)")
    args = ap.parse_args()
    sizes = [50, 200, 1000] if args.quick else sorted(args.sizes)
    has_r, has_kr = (False, False) if args.no_r else _r_available()
    if not args.no_r:
        print(f"R lme4/lmerTest: {'yes' if has_r else 'not installed'}; "
              f"pbkrtest: {'yes' if has_kr else 'not installed'}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for levels in ("two", "three"):
            for n in sizes:
                path = Path(tmp) / f"d{n}.csv"
                if not path.exists():
                    growth_data(n).to_csv(path, index=False)
                py = _run([sys.executable, "-c", CHILD, str(path), levels], args.timeout)
                r = None
                if has_r:
                    rfile = Path(tmp) / "bench.R"
                    rfile.write_text(R_SCRIPT)
                    r = _run(["Rscript", str(rfile), str(path), levels,
                              "kr" if has_kr and n <= args.max_r_kr else "no"], args.timeout)
                row = dict(levels=levels, clients=n,
                           py_fit_sat=py and py["fit_sat"], py_kr=py and py["kr"],
                           py_peak_mb=py and py["peak_mb"], py_loglik=py and py["loglik"],
                           r_fit_sat=r and r["fit_sat"], r_kr=r and r["kr"],
                           r_peak_mb=r and r["peak_mb"], r_loglik=r and r["loglik"])
                rows.append(row)
                ratio = (row["py_fit_sat"] / row["r_fit_sat"]
                         if row["py_fit_sat"] and row["r_fit_sat"] else None)
                print(f"{levels:5s} {n:6d} clients | fit+Satt {_fmt(row['py_fit_sat'])} "
                      f"(R {_fmt(row['r_fit_sat'])}, ratio {_fmt(ratio, 'x')}) | "
                      f"KR {_fmt(row['py_kr'])} (R {_fmt(row['r_kr'])}) | "
                      f"peak {_fmt(row['py_peak_mb'], 'MB')} (R {_fmt(row['r_peak_mb'], 'MB')}) "
                      f"| logLik {row['py_loglik']} (R {row['r_loglik']})", flush=True)
    tab = pd.DataFrame(rows)
    print()
    print(tab.to_string(index=False))
    print()
    for levels in ("two", "three"):
        sub = tab[tab["levels"] == levels]
        ex_all = _exponent(sub["clients"].tolist(), sub["py_fit_sat"].tolist())
        big = sub[sub["clients"] >= 1000]
        ex_big = _exponent(big["clients"].tolist(), big["py_fit_sat"].tolist())
        exr = _exponent(big["clients"].tolist(), big["r_fit_sat"].tolist())
        ex = max(e for e in (ex_all, ex_big) if np.isfinite(e)) if np.isfinite(ex_all) else ex_big
        print(f"[{levels}-level] growth exponent of fit + Satterthwaite: {ex_all:.2f} over all "
              f"sizes, {ex_big:.2f} from 1,000 clients on (lme4: {exr:.2f}) -> target < 1.2 "
              f"(larger of the two): {'met' if ex < 1.2 else f'not met (gap {ex - 1.2:+.2f})'}")
        both = sub.dropna(subset=["py_fit_sat", "r_fit_sat"])
        if len(both):
            worst = both.assign(ratio=both["py_fit_sat"] / both["r_fit_sat"])
            bad = worst[worst["ratio"] > 1.0]
            print(f"[{levels}-level] fit + Satterthwaite at or below lme4's time at every size: "
                  + ("met" if bad.empty else "not met at " + ", ".join(
                      f"{c} clients ({r:.2f}x)" for c, r in zip(bad["clients"], bad["ratio"],
                                                                 strict=True))))
        else:
            print(f"[{levels}-level] fit + Satterthwaite vs lme4: R not available, not measured")
        k = sub[(sub["clients"] == 1000)].dropna(subset=["py_kr", "r_kr"])
        if len(k):
            speed = float(k["r_kr"].iloc[0] / k["py_kr"].iloc[0])
            print(f"[{levels}-level] KR at 1,000 clients vs pbkrtest: {speed:.1f}x faster -> "
                  f"target >= 5x: {'met' if speed >= 5 else f'not met (gap {5 - speed:.1f}x)'}")
        else:
            print(f"[{levels}-level] KR at 1,000 clients vs pbkrtest: not measured "
                  "(pbkrtest not installed or size not run)")
    if args.out:
        from effectstudy._io import atomic_write_bytes, csv_bytes

        atomic_write_bytes(args.out, csv_bytes(tab))


if __name__ == "__main__":
    main()
