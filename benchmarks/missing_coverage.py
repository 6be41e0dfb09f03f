"""Simulation checks of multiple imputation and the tipping-point analysis (issue 13, section 3).

Data: six programmes (one with five occasions at weeks 0, 6, 12, 18, 24, five with
four at weeks 0, 8, 16, 24), ``--clients`` girls each, a known growth model

    y = 50 + programme offset + 0.8 (age - 16) + (-0.25 + b1) week + b0 + e,
    b0 ~ N(0, 6^2), b1 ~ N(0, 0.15^2), e ~ N(0, 4^2)

(a problem score: lower is better), and monotone dropout ("absconding") before each
later occasion with probability ``expit(-2 + 0.1 (previous score - 50))``: girls who
scored worse at the previous, observed occasion leave more often (missing at random).

* **MAR**: the estimand is the mean time slope -0.25 per week. Analysis of each
  completed table: the mean of the girls' own least-squares slopes (a summary
  measure, exact t-interval on complete data, ``df_complete = n - 1``), or with
  ``--analysis lmm`` the ``time`` coefficient of ``outcome ~ time + programme + age +
  (1 + time | client)``. Check: 95% intervals cover -0.25 in 93-97% of the seeds.
* **MNAR**: the same, but after absconding a girl's true scores are ``--shift``
  points worse (higher). Estimand: the mean change from week 0 to week 24 over all
  girls, shift included (computed once from 300,000 simulated girls). MAR
  imputation is then biased; the delta-adjusted analysis at the true delta
  (``shift`` / SD of the observed scores of that data set) is not. Check: the
  deltas at which the pooled interval covers the truth bracket the true delta in
  about 95% of the seeds (the tipping-point curve is right at the true shift); the
  MAR interval's coverage and the tipping point (the delta at which the
  improvement stops being significant) are printed for comparison.

Run: ``.venv/bin/python benchmarks/missing_coverage.py --nsim 500`` (joblib over 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from effectstudy.missing import growth_analysis, impute, pool, tipping_point  # noqa: E402
from effectstudy.missing.impute import run_analysis  # noqa: E402

TRUE_SLOPE = -0.25
PROGRAMMES = ("P1", "P2", "P3", "P4", "P5", "P6")
OFFSETS = (0.0, 3.0, -2.0, 5.0, 1.0, -4.0)
WEEKS = {"P1": (0.0, 6.0, 12.0, 18.0, 24.0)}
DEFAULT_WEEKS = (0.0, 8.0, 16.0, 24.0)
SD_B0, SD_B1, SD_E = 6.0, 0.15, 4.0
DROP_ALPHA, DROP_BETA = -2.0, 0.1


def simulate(seed: int, *, n_per_programme: int = 10, mechanism: str = "mar",
             shift: float = 6.0, complete: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One study: the long table (missing cells absent) and the client table.

    ``complete=True`` keeps every planned score (with the MNAR shift applied when
    ``mechanism="mnar"``), to compute the estimand.
    """
    rng = np.random.default_rng(seed)
    rows, clients = [], []
    for prog, offset in zip(PROGRAMMES, OFFSETS, strict=True):
        weeks = np.array(WEEKS.get(prog, DEFAULT_WEEKS))
        n = n_per_programme
        age = rng.uniform(12.0, 20.0, n)
        b0 = rng.normal(0.0, SD_B0, n)
        b1 = rng.normal(0.0, SD_B1, n)
        e = rng.normal(0.0, SD_E, (n, len(weeks)))
        y = (50.0 + offset + 0.8 * (age - 16.0) + b0)[:, None] + (
            (TRUE_SLOPE + b1)[:, None] * weeks[None, :]) + e
        left = np.full(n, len(weeks))  # index of the first occasion missed
        u = rng.uniform(size=(n, len(weeks)))
        for k in range(1, len(weeks)):
            still = left == len(weeks)
            p_drop = 1.0 / (1.0 + np.exp(-(DROP_ALPHA + DROP_BETA * (y[:, k - 1] - 50.0))))
            drop = still & (u[:, k] < p_drop)
            left[drop] = k
        after = np.arange(len(weeks))[None, :] >= left[:, None]
        if mechanism == "mnar":
            y = y + shift * after
        elif mechanism != "mar":
            raise ValueError(mechanism)
        ids = [f"{prog}-{i:05d}" for i in range(n)]
        for i in range(n):
            for k, w in enumerate(weeks):
                if complete or not after[i, k]:
                    rows.append((prog, ids[i], k + 1, w, y[i, k], age[i]))
            absconded = left[i] < len(weeks)
            last = weeks[left[i] - 1]
            clients.append((prog, ids[i], age[i], last + 2.0 if absconded else last + 1.0,
                            "absconded" if absconded else "completed"))
    table = pd.DataFrame(rows, columns=["programme", "client", "occasion", "week", "score",
                                        "age"])
    cl = pd.DataFrame(clients, columns=["programme", "client", "age", "weeks_in_care",
                                        "end_reason"])
    return table, cl


def slope_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean of the clients' own least-squares slopes of score on week; SE = SD / sqrt(n)."""
    t = table["week"].to_numpy(dtype=float)
    y = table["score"].to_numpy(dtype=float)
    codes, uniq = pd.factorize(table["client"])
    n = np.bincount(codes)
    tbar = np.bincount(codes, t) / n
    ybar = np.bincount(codes, y) / n
    dt = t - tbar[codes]
    slopes = np.bincount(codes, dt * (y - ybar[codes])) / np.bincount(codes, dt * dt)
    return pd.DataFrame({"term": ["week"], "estimate": [slopes.mean()],
                         "se": [slopes.std(ddof=1) / np.sqrt(len(uniq))]})


def change_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean change from the first to the last planned occasion; SE = SD / sqrt(n)."""
    t = table["week"].to_numpy(dtype=float)
    y = table["score"].to_numpy(dtype=float)
    codes, _ = pd.factorize(table["client"])
    order = np.lexsort((t, codes))
    c_sorted = codes[order]
    first = order[np.r_[True, c_sorted[1:] != c_sorted[:-1]]]
    last = order[np.r_[c_sorted[1:] != c_sorted[:-1], True]]
    change = y[last] - y[first]
    return pd.DataFrame({"term": ["change"], "estimate": [change.mean()],
                         "se": [change.std(ddof=1) / np.sqrt(len(change))]})


def true_change(shift: float, n: int = 50_000, seed: int = 987_654) -> float:
    """The MNAR estimand: mean change week 0 -> 24 of all girls, shift included."""
    table, _ = simulate(seed, n_per_programme=n, mechanism="mnar", shift=shift, complete=True)
    return float(change_summary(table)["estimate"].iloc[0])


def run_mar(seed: int, *, n_per_programme: int, m: int, burn_in: int, thin: int,
            analysis: str = "summary") -> dict:
    """One MAR replicate: the pooled slope interval and whether it covers the truth."""
    table, _ = simulate(seed, n_per_programme=n_per_programme, mechanism="mar")
    imp = impute(table, outcome="score", time="week", covariates=["age"], m=m,
                 rng=np.random.default_rng([seed, 1]), burn_in=burn_in, thin=thin)
    if analysis == "summary":
        n = imp[0]["client"].nunique()
        res = pool(run_analysis(slope_summary, imp), df_complete=n - 1)
    else:
        fn = growth_analysis("score ~ week + programme + age + (1 + week | client)",
                             term="week")
        res = pool(run_analysis(fn, imp))
    r = res.iloc[0]
    return {"seed": seed, "estimate": r["estimate"], "se": r["se"], "fmi": r["fmi"],
            "covered": bool(r["ci_lower"] <= TRUE_SLOPE <= r["ci_upper"]),
            "missing": float(imp[0]["imputed"].mean())}


def run_mnar(seed: int, *, truth: float, shift: float, n_per_programme: int, m: int,
             burn_in: int, thin: int, deltas: np.ndarray) -> dict:
    """One MNAR replicate: the tipping-point curve and where it covers the truth."""
    table, clients = simulate(seed, n_per_programme=n_per_programme, mechanism="mnar",
                              shift=shift)
    n = table["client"].nunique()
    res = tipping_point(table, clients, outcome="score", time="week", deltas=deltas,
                        analysis=change_summary, term="change", better="lower",
                        covariates=["age"], m=m, rng=np.random.default_rng([seed, 2]),
                        burn_in=burn_in, thin=thin, df_complete=n - 1)
    f = res.table
    true_delta = shift / res.outcome_sd
    covers = (f["ci_lower"] <= truth) & (truth <= f["ci_upper"])
    lo_row = f.loc[f["delta"] <= true_delta].iloc[-1]
    hi_row = f.loc[f["delta"] >= true_delta].iloc[0]
    # Estimate and bounds are linear in delta (the shift moves every imputation alike).
    w = 0.0 if hi_row["delta"] == lo_row["delta"] else (
        (true_delta - lo_row["delta"]) / (hi_row["delta"] - lo_row["delta"]))
    lo = (1 - w) * lo_row["ci_lower"] + w * hi_row["ci_lower"]
    hi = (1 - w) * lo_row["ci_upper"] + w * hi_row["ci_upper"]
    est = (1 - w) * lo_row["estimate"] + w * hi_row["estimate"]
    covering = f.loc[covers, "delta"]
    return {"seed": seed, "true_delta": true_delta,
            "brackets": bool(lo <= truth <= hi), "adjusted_estimate": float(est),
            "cover_lo": float(covering.min()) if len(covering) else np.nan,
            "cover_hi": float(covering.max()) if len(covering) else np.nan,
            "mar_covered": bool(covers.iloc[0]),
            "mar_estimate": float(f["estimate"].iloc[0]),
            "tipping_delta": np.nan if res.tipping_delta is None else res.tipping_delta}


def coverage_ci(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact (Clopper-Pearson) Monte Carlo interval of a coverage proportion."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=confidence, method="exact")
    return float(ci.low), float(ci.high)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nsim", type=int, default=500, help="seeds per scenario (500)")
    ap.add_argument("--clients", type=int, default=10, help="girls per programme (10)")
    ap.add_argument("--m", type=int, default=20, help="imputations (20)")
    ap.add_argument("--burn-in", type=int, default=500)
    ap.add_argument("--thin", type=int, default=50)
    ap.add_argument("--shift", type=float, default=6.0, help="MNAR shift in score points")
    ap.add_argument("--jobs", type=int, default=2, help="joblib workers (2)")
    ap.add_argument("--scenario", choices=("mar", "mnar", "both"), default="both")
    ap.add_argument("--analysis", choices=("summary", "lmm"), default="summary",
                    help="MAR analysis: summary-measure slopes (fast) or the mixed model")
    args = ap.parse_args(argv)
    from joblib import Parallel, delayed

    ok = True
    common = dict(n_per_programme=args.clients, m=args.m, burn_in=args.burn_in,
                  thin=args.thin)
    if args.scenario in ("mar", "both"):
        t0 = time.perf_counter()
        out = Parallel(n_jobs=args.jobs)(
            delayed(run_mar)(s, analysis=args.analysis, **common) for s in range(args.nsim))
        res = pd.DataFrame(out)
        k = int(res["covered"].sum())
        lo, hi = coverage_ci(k, len(res))
        cov = k / len(res)
        ok &= 0.93 <= cov <= 0.97
        print(f"MAR ({args.analysis}), {len(res)} seeds: coverage of the 95% interval "
              f"{cov:.3f} (Monte Carlo 95% CI {lo:.3f}-{hi:.3f}; target 0.93-0.97); "
              f"mean estimate {res['estimate'].mean():.4f} (truth {TRUE_SLOPE}); "
              f"mean fmi {res['fmi'].mean():.2f}; missing cells {res['missing'].mean():.1%}; "
              f"{time.perf_counter() - t0:.1f} s")
    if args.scenario in ("mnar", "both"):
        t0 = time.perf_counter()
        truth = true_change(args.shift)
        deltas = np.round(np.arange(0.0, 3.0001, 0.1), 10)
        out = Parallel(n_jobs=args.jobs)(
            delayed(run_mnar)(s, truth=truth, shift=args.shift, deltas=deltas, **common)
            for s in range(args.nsim))
        res = pd.DataFrame(out)
        k = int(res["brackets"].sum())
        lo, hi = coverage_ci(k, len(res))
        kmar = int(res["mar_covered"].sum())
        ok &= 0.93 <= k / len(res) <= 0.97
        print(f"MNAR (shift {args.shift} points), {len(res)} seeds: truth {truth:.3f}; the "
              f"deltas whose interval covers the truth bracket the true delta "
              f"(mean {res['true_delta'].mean():.2f} SD) in {k / len(res):.3f} "
              f"(Monte Carlo 95% CI {lo:.3f}-{hi:.3f}); MAR (delta 0) coverage "
              f"{kmar / len(res):.3f}, mean MAR estimate {res['mar_estimate'].mean():.3f}; "
              f"median tipping delta {res['tipping_delta'].median():.2f}; "
              f"{time.perf_counter() - t0:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
