"""``AR1LMEResult.expected_information`` accumulated per client (issue 16) against the
dense formula it replaced.

The oracle below is the former implementation's formula on the whole ``N x N``
marginal covariance, built here from the data and the fitted parameters (it shares
no code with the package): ``I_ab = tr(P dV_a P dV_b) / 2`` with the REML ``P``,
expanded as ``tr(Vi dV_a Vi dV_b) - 2 tr(M S_ab) + tr(M B_a M B_b)``.  The per-client
computation must agree to 1e-10 (relative to the largest entry of the matrix).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest

from effectstudy.multilevel.ar1 import fit_ar1
from effectstudy.multilevel.design import design_matrices
from refdata import REFERENCE

ML = REFERENCE / "multilevel"


def _terms(spec: str) -> list[str]:
    parts = [t.strip() for t in spec.split("+") if t.strip()]
    out = [] if "0" in parts else ["(Intercept)"]
    return out + [t for t in parts if t not in ("0", "1")]


def dense_information(fit, data: pd.DataFrame, formula: str, levels: list[str],
                      random: dict[str, str], index: str | None) -> np.ndarray:
    """The old dense formula on ``V = sigma^2 R + sum_l (Z_l Tau_l Z_l') * same_l``."""
    _, _, Xd = design_matrices(formula, data, NA_action="raise")
    X = np.asarray(Xd.matrix, dtype=float)
    N = X.shape[0]
    s2, phi = fit.sigma2, (fit.phi if fit.correlation else 0.0)
    key = None
    same, Zs = [], []
    for lv in levels:
        lab = data[lv].astype(str).to_numpy(dtype=object)
        key = lab if key is None else key + "/" + lab
        same.append((key[:, None] == key[None, :]).astype(float))
        Zs.append(np.column_stack([np.ones(N) if t == "(Intercept)" else data[t].to_numpy(float)
                                   for t in _terms(random[lv])]))
    if index is None:
        s = data.groupby(key).cumcount().to_numpy(float) + 1.0
    else:
        s = data[index].to_numpy(float)
    d = np.abs(s[:, None] - s[None, :])
    inner = same[-1]
    if fit.correlation:
        R = inner * phi**d
        with np.errstate(divide="ignore", invalid="ignore"):
            dR = np.where((inner > 0) & (d > 0), d * phi ** np.maximum(d - 1.0, 0.0), 0.0)
    else:
        R, dR = np.eye(N), None
    taus = list(fit.tau().values())
    V = s2 * R
    for Z, T, sm in zip(Zs, taus, same, strict=True):
        V = V + (Z @ T @ Z.T) * sm
    dVs = []
    for Z, T, sm in zip(Zs, taus, same, strict=True):
        q = T.shape[0]
        for j in range(q):
            for i in range(j + 1):
                E = np.zeros((q, q))
                E[i, j] = E[j, i] = 1.0
                dVs.append((Z @ E @ Z.T) * sm)
    if fit.correlation:
        dVs.append(s2 * dR)
    dVs.append(R)
    r = len(dVs)
    Vi = np.linalg.inv(V)
    Vi = (Vi + Vi.T) / 2
    A = [Vi @ dv for dv in dVs]
    reml = fit.method == "REML"
    ViX = Vi @ X
    M = np.linalg.inv(X.T @ ViX)
    C = [dv @ ViX for dv in dVs]
    info = np.zeros((r, r))
    for a in range(r):
        for b in range(a + 1):
            val = float(np.sum(A[a] * A[b].T))
            if reml:
                val -= 2.0 * float(np.trace(M @ (C[a].T @ Vi @ C[b])))
                val += float(np.trace(M @ (ViX.T @ C[a]) @ M @ (ViX.T @ C[b])))
            info[a, b] = info[b, a] = val / 2.0
    return info


def _data(name: str) -> pd.DataFrame:
    return pd.read_csv(ML / "data" / f"{name}.csv")


CASES = {
    "one level, AR1": ("sleepstudy", "Reaction ~ Days", ["Subject"], "1", "Days", "AR1",
                       "REML"),
    "one level, slope, AR1": ("sleepstudy", "Reaction ~ Days", ["Subject"], "1 + Days",
                              "Days", "AR1", "REML"),
    "one level, ML": ("growth_a", "outcome ~ time * programme", ["client"], "1", "occasion",
                      "AR1", "ML"),
    "nested, AR1": ("growth_a", "outcome ~ time + age", ["programme", "client"], "1",
                    "occasion", "AR1", "REML"),
    "nested, slopes at both levels": ("dense_ar1", "outcome ~ time + fidelity",
                                      ["programme", "client"], "1 + time", "occasion", "AR1",
                                      "REML"),
    "nested, outer slope only, CAR1": ("threelevel", "outcome ~ time",
                                       ["programme", "client"],
                                       {"programme": "1 + time", "client": "1"}, "time",
                                       "CAR1", "REML"),
    "nested, no correlation, ML": ("dense_ar1", "outcome ~ time", ["programme", "client"],
                                   "1", None, None, "ML"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_per_client_information_equals_the_dense_formula(case):
    name, formula, levels, random, index, corr, method = CASES[case]
    data = _data(name)
    fit = fit_ar1(formula, data, group=levels if len(levels) > 1 else levels[0],
                  random=random, correlation=corr, index=index, method=method, lrt=False)
    rspec = random if isinstance(random, dict) else {lv: random for lv in levels}
    expected = dense_information(fit, data, formula, levels, rspec, index)
    got = fit.expected_information()
    assert got.shape == (len(fit.varcomp()),) * 2
    scale = float(np.max(np.abs(expected)))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10 * scale)
    np.testing.assert_allclose(got, got.T, rtol=0, atol=0)


def test_information_memory_stays_at_client_size():
    """Six programmes of 100 clients (3,000 rows): one programme's dense block is
    500 x 500 (2 MB) and the dense formula held about ten such matrices at once
    (V, its inverse, the derivatives and their products); per client, far less."""
    rng = np.random.default_rng(5)
    n_cl, k = 600, 5
    client = np.repeat(np.arange(n_cl), k)
    prog = client % 6
    occ = np.tile(np.arange(1, k + 1), n_cl)
    y = (50 + rng.normal(0, 3, 6)[prog] + rng.normal(0, 5, n_cl)[client]
         + rng.normal(0, 4, client.size))
    data = pd.DataFrame({"programme": prog, "client": client, "occasion": occ,
                         "time": occ * 2.0, "outcome": np.round(y - 0.3 * occ, 2)})
    fit = fit_ar1("outcome ~ time", data, group=["programme", "client"], index="occasion",
                  lrt=False)
    tracemalloc.start()
    try:
        info = fit.expected_information()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4e6, peak
    assert info.shape == (4, 4)
    assert np.all(np.linalg.eigvalsh(info) > 0)
