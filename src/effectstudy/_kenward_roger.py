"""Kenward-Roger moment terms shared by the general and the fast mixed-model engines."""

from __future__ import annotations


def kr_moment_terms(A1: float, A2: float, q: float) -> tuple[float, float, float]:
    """``V0, V1, V2`` of pbkrtest's ``.KR_adjust`` from ``A1``, ``A2`` and rank ``q``.

    Kenward & Roger (1997), *Biometrics* 53, sec. 4, as implemented in pbkrtest
    0.5.2 (Halekoh & Hojsgaard 2014, *J. Stat. Softw.* 59(9)); ``V0`` below
    1e-10 in absolute value is set to 0 as there.
    """
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3 * q + 2 * (1 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0 = 1 + c1 * B
    V1 = 1 - c2 * B
    V2 = 1 - c3 * B
    if abs(V0) < 1e-10:
        V0 = 0.0
    return V0, V1, V2
