"""Root finding as R's ``uniroot`` (Brent's zeroin) for the effect-size intervals.

The NAP and LOR confidence limits of SingleCaseES are roots found by R's
``uniroot`` with its default tolerance; reproducing the reference values to
1e-6 needs the same algorithm and stopping rule (Brent, 1973, ch. 4).

References
----------
Brent, R. P. (1973). *Algorithms for minimization without derivatives*.
Prentice-Hall.
"""

from __future__ import annotations

import numpy as np

_EPS = float(np.finfo(float).eps)


_UNIROOT_TOL = _EPS**0.25


def zeroin(
    f, ax: np.ndarray, bx: np.ndarray, tol: float = _UNIROOT_TOL, maxiter: int = 1000
) -> np.ndarray:
    """Brent's root finder with the same steps as R's ``uniroot()``, for many roots at once.

    R's ``uniroot`` (C ``R_zeroin2``; Brent 1973) stops at an absolute
    tolerance of ``.Machine$double.eps^0.25`` (about 1.2e-4); SingleCaseES's NAP
    interval uses that default, so the same iteration is used here to return
    the same limits (not the exact roots). ``f`` maps an array of x values to
    an array of f(x) (element i belongs to root i); every element follows R's
    iteration exactly and stops when R's would.
    """
    a = np.asarray(ax, dtype=float).copy()
    b = np.asarray(bx, dtype=float).copy()
    fa, fb = f(a), f(b)
    c, fc = a.copy(), fa.copy()
    result = np.where(fa == 0.0, a, np.where(fb == 0.0, b, np.nan))
    done = (fa == 0.0) | (fb == 0.0)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for _ in range(maxiter + 1):
            active = ~done
            if not active.any():
                break
            prev_step = b - a
            sw = active & (np.abs(fc) < np.abs(fb))
            a = np.where(sw, b, a)
            fa = np.where(sw, fb, fa)
            b = np.where(sw, c, b)
            fb = np.where(sw, fc, fb)
            c = np.where(sw, a, c)
            fc = np.where(sw, fa, fc)
            tol_act = 2 * _EPS * np.abs(b) + tol / 2
            new_step = (c - b) / 2
            conv = active & ((np.abs(new_step) <= tol_act) | (fb == 0.0))
            result = np.where(conv, b, result)
            done = done | conv
            active = active & ~conv
            if not active.any():
                break
            cb = c - b
            t1_lin = fb / fa
            q_ = fa / fc
            t1 = fb / fc
            t2 = fb / fa
            lin = a == c
            p = np.where(lin, cb * t1_lin, t2 * (cb * q_ * (q_ - t1) - (b - a) * (t1 - 1.0)))
            q = np.where(lin, 1.0 - t1_lin, (q_ - 1.0) * (t1 - 1.0) * (t2 - 1.0))
            pos = p > 0
            q = np.where(pos, -q, q)
            p = np.where(pos, p, -p)
            interp = active & (np.abs(prev_step) >= tol_act) & (np.abs(fa) > np.abs(fb))
            accept = (
                interp
                & (p < (0.75 * cb * q - np.abs(tol_act * q) / 2))
                & (p < np.abs(prev_step * q / 2))
            )
            new_step = np.where(accept, p / q, new_step)
            small = np.abs(new_step) < tol_act
            new_step = np.where(small, np.where(new_step > 0, tol_act, -tol_act), new_step)
            a = np.where(active, b, a)
            fa = np.where(active, fb, fa)
            b = np.where(active, b + new_step, b)
            fb = np.where(active, f(b), fb)
            adj = active & (((fb > 0) & (fc > 0)) | ((fb < 0) & (fc < 0)))
            c = np.where(adj, a, c)
            fc = np.where(adj, fa, fc)
    return np.where(done, result, b)
