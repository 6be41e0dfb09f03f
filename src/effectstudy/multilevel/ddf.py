"""Small-sample denominator degrees of freedom for linear mixed models.

Satterthwaite (lmerTest)
------------------------
Kuznetsova, Brockhoff & Christensen (2017), "lmerTest package: tests in linear
mixed effects models", *Journal of Statistical Software* 82(13). With the
variance parameters ``phi = (theta, sigma)`` (lme4's relative Cholesky factor
elements and the residual SD), ``C(phi) = (X'V^-1X)^-1`` and the asymptotic
covariance ``A = 2 H^-1`` of ``phi``, where ``H`` is the Hessian of the REML
deviance ``-2 l_R(phi)`` (beta profiled out), the df of a contrast ``l'beta`` is::

    nu = 2 (l' C l)^2 / (g' A g),    g_i = l' (dC/dphi_i) l.

lmerTest differentiates numerically (Richardson extrapolation); here the
derivatives are analytic and computed by the engine
(:meth:`effectstudy.multilevel._engine.PLSModel.derivatives` and
``vcov_jacobian``) from the sparse structure of the model::

    dC/dphi_i = C X' V^-1 V_i V^-1 X C
    d(-2 l_R)/dphi_i = tr(P V_i) - y'P V_i P y
    d2(-2 l_R)/dphi_i dphi_j = tr(P V_ij) - tr(P V_i P V_j)
                                + 2 y'P V_i P V_j P y - y'P V_ij P y

with ``P = V^-1 - V^-1 X C X' V^-1`` (Harville 1977; for ML, ``V^-1`` replaces
``P`` inside the traces). ``V = sigma^2 (Z Lambda Lambda' Z' + I)`` so
``V_k = sigma^2 Z (Lambda_k Lambda' + Lambda Lambda_k') Z'``,
``V_sigma = 2 V / sigma``; ``Lambda`` is linear in ``theta``.

Multi-df tests follow lmerTest's ``contestMD``: the eigen-decomposition
``L C L' = P D P'`` gives ``q`` independent t-statistics with df ``nu_m``; ``F``
is their mean square and the denominator df is ``2E / (E - q)`` with
``E = sum nu_m / (nu_m - 2)`` (Fai & Cornelius 1996).

Kenward-Roger (pbkrtest)
------------------------
Kenward & Roger (1997), "Small sample inference for fixed effects from
restricted maximum likelihood", *Biometrics* 53; implemented as in pbkrtest
0.5.2 (Halekoh & Hojsgaard 2014, *J. Stat. Softw.* 59(9)): the covariance
parameters are the variances and covariances of every random-effect term plus
the residual variance, ``V = sum_r gamma_r G_r`` with ``G_r = Z_i Z_j' + Z_j Z_i'``
(``Z_i Z_i'`` on the diagonal) and ``G = I`` for the residual. With
``P_r = -X'V^-1 G_r V^-1 X``, ``Q_rs = X'V^-1 G_r V^-1 G_s V^-1 X`` and the
expected information ``I_E`` (pbkrtest's ``IE2``, twice the REML information
``tr(P G_r P G_s) / 2``), ``W = 2 I_E^-1`` and::

    Phi_A = Phi + 2 Phi [ sum_rs W_rs (Q_rs - P_r Phi P_s) ] Phi

For a hypothesis ``L beta = 0`` of rank ``q``, ``Theta = L'(L Phi L')^-1 L``,
``A1 = sum W_rs tr(Theta Phi P_r Phi) tr(Theta Phi P_s Phi)``,
``A2 = sum W_rs tr(Theta Phi P_r Phi Theta Phi P_s Phi)`` and the ``m`` (df) and
``lambda`` (F scaling) formulas of Kenward & Roger (1997, sec. 4) give the
denominator df and the scaled F statistic. The engine computes ``P_r``,
``Q_rs`` and the traces (``PLSModel.kenward_roger_terms``); this module only
combines arrays, so that both mixed-model engines can use it.

Method names
------------
:data:`DDF_METHODS` lists the denominator-df methods of the package and
:func:`ddf_method` turns an accepted spelling into one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from effectstudy._kenward_roger import kr_moment_terms
from effectstudy.errors import ModelError

__all__ = [
    "DDF_METHODS",
    "DDF_ALIASES",
    "ddf_method",
    "satterthwaite_info",
    "SatterthwaiteInfo",
    "kenward_roger_info",
    "KenwardRogerInfo",
    "kr_ddf",
    "kr_test",
]

#: The denominator-df methods: lmerTest's Satterthwaite, pbkrtest's Kenward-Roger
#: and the residual df ``n - p`` (lme4's t-table has none).
DDF_METHODS: tuple[str, ...] = ("satterthwaite", "kenward-roger", "residual")
#: Accepted spellings of :data:`DDF_METHODS`.
DDF_ALIASES: dict[str, str] = {
    "satterthwaite": "satterthwaite",
    "kenward-roger": "kenward-roger",
    "kenward_roger": "kenward-roger",
    "kenwardroger": "kenward-roger",
    "kr": "kenward-roger",
    "residual": "residual",
    "lme4": "residual",
}


def ddf_method(ddf: str, allowed: tuple[str, ...] = DDF_METHODS) -> str:
    """The canonical name of a ddf method (one of ``allowed``), or :class:`ModelError`."""
    key = DDF_ALIASES.get(str(ddf).lower(), str(ddf).lower())
    if key not in allowed:
        raise ModelError(f"unknown ddf method {ddf!r}: use one of {', '.join(allowed)}")
    return key


# ---------------------------------------------------------------------------
# Satterthwaite
# ---------------------------------------------------------------------------
@dataclass
class SatterthwaiteInfo:
    """Quantities for Satterthwaite df (lmerTest's ``vcov_varpar`` and ``Jac_list``)."""

    C: np.ndarray  # vcov(beta)
    A: np.ndarray  # 2 * H^-1, asymptotic covariance of (theta, sigma)
    jac: list[np.ndarray]  # dC / dphi_i
    hessian: np.ndarray

    def df_contrast(self, contrast: np.ndarray) -> float:
        """Satterthwaite df of ``l'beta``: ``2 (l'Cl)^2 / (g'Ag)``."""
        lv = np.asarray(contrast, dtype=float).ravel()
        var = float(lv @ self.C @ lv)
        grad = np.array([lv @ J @ lv for J in self.jac])
        return float(2.0 * var**2 / (grad @ self.A @ grad))

    def contest(self, L: np.ndarray, beta: np.ndarray,
                eps: float = np.sqrt(np.finfo(float).eps)) -> tuple[float, int, float]:
        """lmerTest ``contestMD``: F value, numerator df and denominator df."""
        L = np.atleast_2d(L)
        VL = L @ self.C @ L.T
        d, P = np.linalg.eigh(0.5 * (VL + VL.T))
        order = np.argsort(d)[::-1]
        d, P = d[order], P[:, order]
        tol = max(eps * d[0], 0.0)
        q = int(np.sum(d > tol))
        PtL = (P.T @ L)[:q]
        t2 = (PtL @ beta) ** 2 / d[:q]
        F = float(np.sum(t2) / q)
        nu = np.empty(q)
        for m in range(q):
            gm = np.array([PtL[m] @ J @ PtL[m] for J in self.jac])
            nu[m] = 2.0 * d[m] ** 2 / (gm @ self.A @ gm)
        return F, q, _fstat_ddf(nu)


def _fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of the mean of q squared t's (lmerTest ``get_Fstat_ddf``)."""
    nu = np.asarray(nu, dtype=float)
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2.0))
    return float(2.0 * E / (E - len(nu)))


def satterthwaite_info(C: np.ndarray, jac: list[np.ndarray], hessian: np.ndarray
                       ) -> SatterthwaiteInfo:
    """Satterthwaite pieces from ``vcov(beta)``, its Jacobian in ``(theta, sigma)`` and
    the Hessian of the (RE)ML deviance: ``A = 2 H^-1`` (pseudo-inverse if singular)."""
    try:
        A = 2.0 * np.linalg.inv(hessian)
    except np.linalg.LinAlgError:  # e.g. a degenerate boundary fit
        A = 2.0 * np.linalg.pinv(hessian)
    return SatterthwaiteInfo(C=C, A=A, jac=list(jac), hessian=hessian)


# ---------------------------------------------------------------------------
# Kenward-Roger
# ---------------------------------------------------------------------------
@dataclass
class KenwardRogerInfo:
    """pbkrtest ``vcovAdj``: ``Phi``, ``Phi_A`` and the ``P`` and ``W`` attributes."""

    Phi: np.ndarray
    vcov_adj: np.ndarray
    P: list[np.ndarray]
    W: np.ndarray
    condi: float


def kenward_roger_info(Phi: np.ndarray, P: list[np.ndarray],
                       Q: dict[tuple[int, int], np.ndarray], ktrace: np.ndarray
                       ) -> KenwardRogerInfo:
    """Kenward-Roger adjusted covariance (pbkrtest ``vcovAdj``) from its pieces.

    Parameters
    ----------
    Phi:
        ``vcov(beta) = (X'V^-1X)^-1``.
    P, Q:
        ``P_r = -X'V^-1 G_r V^-1 X`` and ``Q_rs = X'V^-1 G_r V^-1 G_s V^-1 X`` (``r <= s``).
    ktrace:
        ``tr(V^-1 G_r V^-1 G_s)``.
    """
    ng = len(P)
    IE2 = np.empty((ng, ng))
    for r in range(ng):
        PhiPr = Phi @ P[r]
        for s in range(r, ng):
            IE2[r, s] = IE2[s, r] = (ktrace[r, s] - 2.0 * np.sum(Phi * Q[(r, s)])
                                     + np.sum(PhiPr * (P[s] @ Phi)))
    eig = np.linalg.eigvalsh(IE2)
    condi = float(np.min(np.abs(eig)))
    W = 2.0 * (np.linalg.inv(IE2) if condi > 1e-10 else np.linalg.pinv(IE2))
    W = 0.5 * (W + W.T)
    p = Phi.shape[0]
    UU = np.zeros((p, p))
    for r in range(ng - 1):
        for s in range(r + 1, ng):
            UU += W[r, s] * (Q[(r, s)] - P[r] @ Phi @ P[s])
    UU = UU + UU.T
    for r in range(ng):
        UU += W[r, r] * (Q[(r, r)] - P[r] @ Phi @ P[r])
    PhiA = Phi + 2.0 * Phi @ UU @ Phi
    return KenwardRogerInfo(Phi=Phi, vcov_adj=PhiA, P=list(P), W=W, condi=condi)


def _kr_adjust(info: KenwardRogerInfo, L: np.ndarray, q: int) -> tuple[float, float]:
    """pbkrtest ``.KR_adjust`` / ``Lb_ddf``: denominator df and F scaling."""
    Phi = info.Phi
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    ThetaPhi = Theta @ Phi
    ng = len(info.P)
    U = [ThetaPhi @ Pr @ Phi for Pr in info.P]
    A1 = A2 = 0.0
    for i in range(ng):
        for j in range(i, ng):
            e = 1.0 if i == j else 2.0
            A1 += e * info.W[i, j] * np.trace(U[i]) * np.trace(U[j])
            A2 += e * info.W[i, j] * np.sum(U[i] * U[j].T)
    V0, V1, V2 = kr_moment_terms(A1, A2, q)
    x = 1 - A2 / q
    ratio = 1.0 if (abs(x) < 1e-14 and abs(V1) < 1e-14) else x / V1
    rho = ratio**2 * V0 / V2 / q
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - A2 / q) / (df2 - 2)
    return float(df2), float(scaling)


def kr_ddf(info: KenwardRogerInfo, L: np.ndarray) -> float:
    """KR denominator df of ``L beta`` (pbkrtest ``Lb_ddf``; q = rows of L)."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    return _kr_adjust(info, L, L.shape[0])[0]


def kr_test(info: KenwardRogerInfo, L: np.ndarray, beta: np.ndarray,
            beta_h: np.ndarray | None = None) -> dict[str, float]:
    """pbkrtest ``KRmodcomp`` with a restriction matrix: ``Ftest`` and ``FtestU``."""
    L = np.atleast_2d(np.asarray(L, dtype=float))
    q = int(np.linalg.matrix_rank(L))
    df2, scaling = _kr_adjust(info, L, q)
    diff = beta - (0.0 if beta_h is None else beta_h)
    Lb = L @ diff
    wald = float(Lb @ np.linalg.solve(L @ info.vcov_adj @ L.T, Lb))
    FU = wald / q
    F = scaling * FU
    return dict(F=F, FU=FU, ndf=q, ddf=df2, scaling=scaling,
                p=float(stats.f.sf(F, q, df2)), pU=float(stats.f.sf(FU, q, df2)))
