"""Memory and time of the mixed-model engine grow linearly in the number of clients.

A dense ``n x n`` marginal covariance of 100,000 rows would need 75 GiB; the
engine works on the sparse random-effects structure (Bates et al. 2015), so a
growth model of 20,000 clients fits with Satterthwaite df under a 4 GiB
address-space limit, and a crossed design of 5,000 clients x 4,000 raters fits
without a dense matrix over the raters (sparse Schur complement, SuperLU).
Times are printed by ``benchmarks/lmm_scaling.py``, never asserted here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pandas as pd
import pytest

from effectstudy.multilevel import lmm


def growth_data(n_clients: int, occasions: int = 5, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cl = np.repeat(np.arange(n_clients), occasions)
    t = np.tile(np.arange(occasions, dtype=float), n_clients)
    g = (np.arange(n_clients) % 2)[cl]
    y = (10 + 0.5 * t - 0.3 * g * t + rng.normal(0, 1.0, n_clients)[cl]
         + rng.normal(0, 0.3, n_clients)[cl] * t + rng.normal(0, 1, len(cl)))
    return pd.DataFrame({"y": y, "time": t, "group": np.where(g == 1, "B", "A"),
                         "client": cl})


SCRIPT = textwrap.dedent("""
    import json, resource, sys, time
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path.insert(0, sys.argv[3])
    from test_scaling import growth_data
    from effectstudy.multilevel import lmm
    d = growth_data(int(sys.argv[1]))
    t0 = time.perf_counter()
    fit = lmm.fit("y ~ time * group + (1 + time | client)", d)
    tab = fit.coefficients("satterthwaite")
    print(json.dumps(dict(seconds=time.perf_counter() - t0, df=tab["df"].tolist(),
                          term=tab["term"].tolist(),
                          estimate=tab["estimate"].tolist(), se=tab["se"].tolist(),
                          messages=fit.messages,
                          maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
""")


@pytest.mark.slow
def test_twenty_thousand_clients_fit_under_a_memory_limit():
    n_clients = 20_000
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    limit = 4 * 2**30
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(n_clients), str(limit), os.path.dirname(__file__)],
        capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # a dense n x n float array alone would be 100,000^2 * 8 bytes = 74.5 GiB
    assert out["maxrss_kib"] * 1024 < limit
    assert out["messages"] == []
    # the data were generated with a time slope of 0.5 and a group difference of -0.3
    est = dict(zip(out["term"], out["estimate"], strict=True))
    se = dict(zip(out["term"], out["se"], strict=True))
    assert abs(est["time"] - 0.5) < 5 * se["time"]
    assert abs(est["time:group[T.B]"] + 0.3) < 5 * se["time:group[T.B]"]
    # with 20,000 clients the Satterthwaite df is close to the number of clients
    assert all(0.9 * n_clients < df < 1.01 * n_clients for df in out["df"])


def _peak_bytes(n_clients: int) -> tuple[int, int]:
    d = growth_data(n_clients)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        try:
            fit = lmm.fit("y ~ time * group + (1 + time | client)", d)
            fit.coefficients("satterthwaite")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    return peak, len(d)


@pytest.mark.slow
def test_peak_memory_is_linear_in_the_number_of_rows():
    peak_small, n_small = _peak_bytes(1_000)
    peak, n = _peak_bytes(5_000)
    # an n x n array of 25,000 rows alone would be 5 GB (200 kB per row)
    assert peak < 4_000 * n, peak / n
    # and memory grows linearly: 5 times the rows, well under 25 times the memory
    assert peak / peak_small < 8.0, (peak, peak_small)
    assert n == 5 * n_small


CROSSED_SCRIPT = textwrap.dedent("""
    import json, os, resource, sys, tracemalloc, warnings
    limit = int(sys.argv[3])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    sys.path[:0] = [sys.argv[4], os.path.dirname(sys.argv[4])]  # its module and refdata
    warnings.simplefilter("ignore")
    from test_engine_paths import crossed_data
    from effectstudy.multilevel.fitting import LinearMixedModel
    d = crossed_data(int(sys.argv[1]), int(sys.argv[2]))
    tracemalloc.start()
    m = LinearMixedModel("y ~ time + (1 | client) + (1 | rater)", d)
    fit = m.fit()
    tab = fit.coefficients("satterthwaite")
    _, peak = tracemalloc.get_traced_memory()
    vc = fit.variance_components().set_index("component")["estimate"]
    print(json.dumps(dict(path=m.path, q1=m.q1, q2=m.q - m.q1, peak=peak,
                          estimate=tab["estimate"].tolist(), se=tab["se"].tolist(),
                          df=tab["df"].tolist(), sigma=fit.sigma, messages=fit.messages,
                          sd_client=vc["client:(Intercept)"], sd_rater=vc["rater:(Intercept)"],
                          maxrss_kib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
""")


@pytest.mark.slow
def test_crossed_clients_by_raters_beyond_the_dense_schur_limit_under_a_memory_limit():
    """5,000 clients x 4,000 raters (crossed): the Schur complement of the raters
    stays sparse (SuperLU); no dense 4,000 x 4,000 (128 MB) or 5,000 x 4,000 matrix."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    limit = 3 * 2**30
    proc = subprocess.run(
        [sys.executable, "-c", CROSSED_SCRIPT, "5000", "4000", str(limit),
         os.path.dirname(__file__)], capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["path"] == "sparse-lu"
    q2 = out["q2"]
    assert q2 > 3900 and out["q1"] == 5000
    assert out["maxrss_kib"] * 1024 < limit
    # numpy's allocations stay below one dense q2 x q2 matrix
    assert out["peak"] < 8 * q2 * q2, out["peak"] / 2**20
    assert out["messages"] == []
    # generated with intercept 10, time slope 0.3, SDs client 1, rater 0.5, residual 1
    assert abs(out["estimate"][1] - 0.3) < 5 * out["se"][1]
    assert abs(out["estimate"][0] - 10) < 5 * out["se"][0]
    assert out["sigma"] == pytest.approx(1.0, rel=0.05)
    assert out["sd_client"] == pytest.approx(1.0, rel=0.1)
    assert out["sd_rater"] == pytest.approx(0.5, rel=0.2)
    # the time slope is estimated within clients: its df is of the order of the residual df
    assert out["df"][1] > 10_000
