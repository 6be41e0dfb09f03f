"""The restricted likelihood of :func:`effectstudy.multilevel.fit_ar1`, per client.

Split from :mod:`effectstudy.multilevel.ar1` (the model, its result object and
the public function live there).  The exact (restricted) log-likelihood of a
linear mixed model with AR(1)/CAR(1) errors within the innermost groups is
accumulated one innermost group (client) at a time; random effects of outer
levels enter through the Woodbury identity (see :class:`AR1Problem`).  Also
nlme's containment degrees of freedom and the optimiser (Pinheiro & Bates,
2000; Harville, 1977). The full references are in the docstring of
:mod:`effectstudy.multilevel.ar1`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize
from scipy.linalg import solve_triangular

__all__ = [
    "AR1Problem",
    "Block",
    "OuterLevels",
    "containment_df",
    "minimise",
    "solve_lower",
]

LOG2PI = math.log(2.0 * math.pi)


# ---------------------------------------------------------------------------
# problem set-up
# ---------------------------------------------------------------------------


@dataclass(eq=False)
class Block:
    """Data of one outermost group."""

    y: np.ndarray
    X: np.ndarray
    Z: list[np.ndarray]  # per level: (n_b, q_l * g_lb), expanded over the level's groups
    n_re: list[int]  # per level: number of groups of that level in the block
    absdiff: np.ndarray | None  # |s_i - s_j| within innermost groups (nan across groups)
    same_inner: np.ndarray  # boolean (n_b, n_b): same innermost group


@dataclass(eq=False)
class OuterLevels:
    """Random effects of the levels above the innermost one, for the Woodbury update.

    Innermost group ``c`` has raw covariates ``Z[c]`` (``n_c x r_raw``: the
    columns of every outer level side by side); they go to positions ``pos[c]``
    of its outermost group ``block[c]`` (``r_max`` columns per outermost group).
    ``lpos[l]`` lists ``(block, start)`` of every group of outer level ``l``.
    """

    block: np.ndarray  # (n_inner,) outermost group of each innermost group
    pos: np.ndarray  # (n_inner, r_raw) column positions within the outermost group
    lpos: list[tuple[np.ndarray, np.ndarray]]
    n_blocks: int
    r_max: int


@dataclass(eq=False)
class AR1Problem:
    """The likelihood, evaluated per innermost group (client).

    ``blocks`` are the innermost groups: the AR(1)/CAR(1) correlation and the
    innermost random effects give each its own small covariance block
    ``A_c = R_c(phi) + Z_c Psi Z_c'``.  Random effects of outer levels
    (``group=["programme", "client"]``) couple the clients of one outermost group;
    they enter through the Woodbury identity, ``|V_b| = |A_b| |I + L' Z' A^-1 Z L|``
    and ``V_b^-1 = A_b^-1 - A_b^-1 Z L (I + L' Z' A_b^-1 Z L)^-1 L' Z' A_b^-1``
    (``L L' = blockdiag(Psi_l)``), so no matrix larger than a client's block or
    ``r x r`` is formed (Harville, 1977, sec. 3; Pinheiro & Bates, 2000, sec. 2.2).
    """

    blocks: list[Block]
    q: list[int]  # random-effect dimension per level
    p: int
    N: int
    correlation: str | None  # "AR1", "CAR1" or None
    _batches: Any = None
    outer: OuterLevels | None = None
    outer_Z: list[np.ndarray] | None = None  # per innermost group: (n_c, r_raw)
    dense_builder: Any = None  # builds per-outermost-group blocks (expected information)
    _dense: Any = None

    def dense_blocks(self) -> list[Block]:
        """Blocks with all levels' random effects, one per outermost group (built on demand)."""
        if self.outer is None:
            return self.blocks
        if self._dense is None:
            self._dense = self.dense_builder()
        return self._dense

    @property
    def n_chol(self) -> list[int]:
        return [qq * (qq + 1) // 2 for qq in self.q]

    @property
    def n_theta(self) -> int:
        return sum(self.n_chol) + (1 if self.correlation else 0)

    # -- parameter maps ----------------------------------------------------
    def unpack(self, par: np.ndarray) -> tuple[list[np.ndarray], float]:
        """Relative covariances Psi_l = T_l / sigma^2 and phi from unconstrained ``par``.

        Psi_l = L L' with L lower triangular; its diagonal is stored on the log
        scale (a log-Cholesky parameterisation, as nlme's pdLogChol).
        ``phi = tanh(z)`` for AR(1); ``phi = 1 / (1 + exp(-z))`` for CAR(1).
        """
        out = []
        k = 0
        for qq in self.q:
            L = np.zeros((qq, qq))
            for i in range(qq):
                L[i, i] = math.exp(min(max(par[k], -40.0), 40.0))
                k += 1
            for i in range(qq):
                for j in range(i):
                    L[i, j] = par[k]
                    k += 1
            out.append(L @ L.T)
        phi = 0.0
        if self.correlation == "AR1":
            phi = math.tanh(par[k])
        elif self.correlation == "CAR1":
            phi = 1.0 / (1.0 + math.exp(-min(max(par[k], -700.0), 700.0)))
        return out, phi

    def chol_diagonals(self, par: np.ndarray) -> list[np.ndarray]:
        """Diagonals of the relative Cholesky factors ``L_l`` (``Psi_l = L_l L_l'``).

        They are lme4's ``theta`` diagonal elements; one at or below
        ``effectstudy.multilevel.ar1.SINGULAR_TOL`` (1e-4) marks a boundary fit.
        """
        out, k = [], 0
        for qq in self.q:
            out.append(np.exp(np.clip(np.asarray(par[k : k + qq], float), -40.0, 40.0)))
            k += qq + qq * (qq - 1) // 2
        return out

    def corr(self, blk: Block, phi: float) -> np.ndarray:
        n = blk.y.shape[0]
        if self.correlation is None or blk.absdiff is None:
            return np.eye(n)
        with np.errstate(invalid="ignore"):
            R = np.where(
                blk.same_inner, np.power(phi, np.where(blk.same_inner, blk.absdiff, 0.0)), 0.0
            )
        return R

    def dcorr(self, blk: Block, phi: float) -> np.ndarray:
        """d R / d phi = |d| phi^(|d| - 1) within innermost groups (0 on the diagonal)."""
        d = np.where(blk.same_inner, blk.absdiff, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            val = d * np.power(phi, np.maximum(d - 1.0, 0.0))
        val[d == 0] = 0.0
        return val

    def W(self, blk: Block, psis: list[np.ndarray], phi: float) -> np.ndarray:
        W = self.corr(blk, phi).copy()
        for Zl, g, psi in zip(blk.Z, blk.n_re, psis, strict=True):
            if g == 0:
                continue
            G = np.kron(np.eye(g), psi)
            W += Zl @ G @ Zl.T
        return W

    # -- criterion -----------------------------------------------------------
    def batches(self) -> list[dict[str, Any]]:
        """Blocks of identical shape stacked for vectorised linear algebra."""
        if self._batches is None:
            groups: dict[tuple, list[int]] = {}
            for c, blk in enumerate(self.blocks):
                key = (blk.y.shape[0], tuple(z.shape[1] for z in blk.Z), tuple(blk.n_re))
                groups.setdefault(key, []).append(c)
            out = []
            for (_n, _zc, nre), members in groups.items():
                bl = [self.blocks[c] for c in members]
                out.append(
                    {
                        "y": np.stack([b.y for b in bl]),
                        "X": np.stack([b.X for b in bl]),
                        "Z": [np.stack([b.Z[k] for b in bl]) for k in range(len(nre))],
                        "n_re": nre,
                        "absdiff": np.stack([np.where(b.same_inner, b.absdiff, 0.0) for b in bl]),
                        "same": np.stack([b.same_inner for b in bl]),
                        "members": np.asarray(members),
                    }
                )
                if self.outer_Z is not None:
                    out[-1]["Zo"] = np.stack([self.outer_Z[c] for c in members])
                out[-1]["ZZ"] = [z @ z.transpose(0, 2, 1) for z in out[-1]["Z"]]
            self._batches = out
        return self._batches

    def accumulate(self, psis: list[np.ndarray], phi: float):
        p = self.p
        inner_psis = psis[-1:] if self.outer is not None else psis
        XtWX = np.zeros((p, p))
        XtWy = np.zeros(p)
        ytWy = 0.0
        logdet = 0.0
        out = self.outer
        if out is not None:
            GZX = np.zeros((out.n_blocks, out.r_max, p + 1))
            GZZ = np.zeros((out.n_blocks, out.r_max, out.r_max))
        for bt in self.batches():
            if self.correlation is None:
                W = np.broadcast_to(np.eye(bt["y"].shape[1]), bt["same"].shape).copy()
            else:
                W = np.where(bt["same"], np.power(phi, bt["absdiff"]), 0.0)
            for lvl, (Zl, g, psi) in enumerate(zip(bt["Z"], bt["n_re"], inner_psis, strict=True)):
                if g == 0:
                    continue
                if psi.shape == (1, 1):
                    W = W + psi[0, 0] * bt["ZZ"][lvl]
                else:
                    G = np.kron(np.eye(g), psi)
                    W = W + Zl @ G @ Zl.transpose(0, 2, 1)
            sign, ld = np.linalg.slogdet(W)
            if np.any(sign <= 0):
                return None
            logdet += float(np.sum(ld))
            parts = [bt["X"], bt["y"][:, :, None]]
            if out is not None:
                parts.append(bt["Zo"])
            rhs = np.concatenate(parts, axis=2)
            sol = np.linalg.solve(W, rhs)
            Xs = sol[:, :, :p]
            ys = sol[:, :, p]
            XtWX += np.einsum("bni,bnj->ij", bt["X"], Xs)
            XtWy += np.einsum("bni,bn->i", bt["X"], ys)
            ytWy += float(np.einsum("bn,bn->", bt["y"], ys))
            if out is not None:
                Zo = bt["Zo"]
                zx = np.einsum("bnr,bnk->brk", Zo, sol[:, :, : p + 1])
                zz = np.einsum("bnr,bns->brs", Zo, sol[:, :, p + 1 :])
                blk = out.block[bt["members"]]
                pos = out.pos[bt["members"]]
                np.add.at(GZX, (blk[:, None], pos), zx)
                np.add.at(GZZ, (blk[:, None, None], pos[:, :, None], pos[:, None, :]), zz)
        if out is not None:
            # Woodbury over the outer levels, one outermost group at a time (batched)
            Lb = np.zeros((out.n_blocks, out.r_max, out.r_max))
            for (bl, start), psi in zip(out.lpos, psis[:-1], strict=True):
                qq = psi.shape[0]
                if qq == 0 or bl.size == 0:
                    continue
                # any square root of Psi serves (L L' = Psi); eigh copes with a singular Psi
                vals, vecs = np.linalg.eigh((psi + psi.T) / 2.0)
                Lpsi = vecs * np.sqrt(np.clip(vals, 0.0, None))
                for i in range(qq):
                    for j in range(qq):
                        Lb[bl, start + i, start + j] = Lpsi[i, j]
            GZZ = (GZZ + GZZ.transpose(0, 2, 1)) / 2.0
            Mb = np.eye(out.r_max) + Lb.transpose(0, 2, 1) @ GZZ @ Lb
            try:
                Kb = np.linalg.cholesky(Mb)
            except np.linalg.LinAlgError:
                return None
            logdet += 2.0 * float(np.sum(np.log(np.einsum("bii->bi", Kb))))
            H = np.linalg.solve(Kb, Lb.transpose(0, 2, 1) @ GZX)
            corr = np.einsum("brk,brl->kl", H, H)
            XtWX -= corr[:p, :p]
            XtWy -= corr[:p, p]
            ytWy -= float(corr[p, p])
        XtWX = (XtWX + XtWX.T) / 2
        return XtWX, XtWy, ytWy, logdet

    def deviance(self, par: np.ndarray, reml: bool) -> float:
        psis, phi = self.unpack(par)
        acc = self.accumulate(psis, phi)
        if acc is None:
            return 1e300
        XtWX, XtWy, ytWy, logdet = acc
        try:
            CX = np.linalg.cholesky(XtWX)
        except np.linalg.LinAlgError:
            return 1e300
        z = solve_lower(CX, XtWy)
        rss = ytWy - float(z @ z)
        dof = self.N - self.p if reml else self.N
        if rss <= 0:
            return 1e300
        sigma2 = rss / dof
        dev = dof * (1.0 + LOG2PI + math.log(sigma2)) + logdet
        if reml:
            dev += 2.0 * float(np.sum(np.log(np.diag(CX))))
        return dev

    def solve(self, par: np.ndarray, reml: bool) -> dict[str, Any]:
        psis, phi = self.unpack(par)
        XtWX, XtWy, ytWy, logdet = self.accumulate(psis, phi)
        beta = np.linalg.solve(XtWX, XtWy)
        rss = ytWy - float(XtWy @ beta)
        dof = self.N - self.p if reml else self.N
        sigma2 = rss / dof
        vcov = sigma2 * np.linalg.inv(XtWX)
        return {
            "beta": beta,
            "sigma2": sigma2,
            "vcov": (vcov + vcov.T) / 2,
            "psis": psis,
            "phi": phi,
        }


def solve_lower(C: np.ndarray, B: np.ndarray) -> np.ndarray:
    return solve_triangular(C, B, lower=True, check_finite=False)


def central_grad(f, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h * max(1.0, abs(x[i]))
        g[i] = (f(x + e) - f(x - e)) / (2 * e[i])
    return g


def minimise(f, x0: np.ndarray) -> tuple[np.ndarray, float, bool]:
    """BFGS with central-difference gradients, then Newton steps on a numerical Hessian.

    The Newton polish brings the optimum to ~1e-8 in the parameters, well inside
    the agreement with nlme (whose own stopping rule is looser).
    """
    x = np.asarray(x0, float)
    best = f(x)
    for _ in range(3):
        res = optimize.minimize(
            f,
            x,
            jac=lambda v: central_grad(f, v),
            method="BFGS",
            options={"gtol": 1e-6, "maxiter": 500},
        )
        gain = best - float(res.fun)
        if res.fun <= best:
            x, best = res.x, float(res.fun)
        if res.success or gain < 1e-6:
            break
    converged = False
    for _ in range(6):
        g = central_grad(f, x)
        if np.max(np.abs(g)) < 1e-7:
            converged = True
            break
        H = num_hessian(f, x)
        try:
            step = np.linalg.solve(H, g)
        except np.linalg.LinAlgError:
            break
        xn = x - step
        fn = f(xn)
        if fn <= best:
            x, best = xn, fn
            if np.max(np.abs(step)) < 1e-9:
                converged = True
                break
        else:
            converged = bool(np.max(np.abs(g)) < 1e-4)
            break
    return x, best, converged


def num_hessian(f, x: np.ndarray, h: float = 1e-4) -> np.ndarray:
    k = x.size
    H = np.empty((k, k))
    f0 = f(x)
    hs = h * np.maximum(1.0, np.abs(x))
    for i in range(k):
        ei = np.zeros(k)
        ei[i] = hs[i]
        H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / hs[i] ** 2
        for j in range(i):
            ej = np.zeros(k)
            ej[j] = hs[j]
            H[i, j] = H[j, i] = (
                f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)
            ) / (4 * hs[i] * hs[j])
    return H


# ---------------------------------------------------------------------------
# containment degrees of freedom (nlme)
# ---------------------------------------------------------------------------


def containment_df(X: np.ndarray, group_codes: list[np.ndarray]) -> np.ndarray:
    """nlme's between/within ("containment") df for each column of ``X``.

    Strata are the grouping levels (outer to inner) plus the residual stratum.
    Stratum ``k`` starts with ``n_k - n_{k-1}`` df (``N - n_Q`` for the
    residual stratum); a column is estimated in the innermost stratum within
    whose enclosing groups it still varies, and takes one df from it. An
    intercept takes one df from the outermost stratum and gets the largest df.
    """
    N, p = X.shape
    ngrps = [len(np.unique(c)) for c in group_codes]
    dfX = np.array(ngrps + [N], float) - np.array([0] + ngrps, float)
    constant = np.array([np.all(X[:, j] == X[0, j]) for j in range(p)])
    levels = [np.zeros(N, int)] + list(group_codes)  # level 0 = whole data

    strat = np.zeros(p, int)
    for j in range(p):
        if constant[j]:
            continue
        s = 0
        for k, codes in enumerate(levels):
            if varies_within(X[:, j], codes):
                s = k
        strat[j] = s
    for j in range(p):
        if not constant[j]:
            dfX[strat[j]] -= 1
    if constant.any():
        dfX[0] -= 1
    else:
        dfX[1:] += 1
    out = np.empty(p)
    for j in range(p):
        out[j] = dfX.max() if constant[j] else dfX[strat[j]]
    return out


def varies_within(x: np.ndarray, codes: np.ndarray) -> bool:
    order = np.argsort(codes, kind="stable")
    c = codes[order]
    v = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(c)) + 1]
    mins = np.minimum.reduceat(v, starts)
    maxs = np.maximum.reduceat(v, starts)
    return bool(np.any(maxs > mins))
