"""Single-case experimental designs: effect sizes, randomization tests, piecewise
regression, design-comparable SMD, design checks and plots.

Every function takes a tidy DataFrame (or two arrays) and column names, so it works
on the harmonised table (``occasion == "session"`` rows; ``sced_phase`` A/B) and on
any other long data.

One vocabulary (:mod:`effectstudy.sced._compat`): ``f(data, *, outcome, session,
phase, case=None, baseline_phase="A", treatment_phase="B", improvement=...)``,
``confidence=`` for confidence levels and ``rng=`` for randomness. Importing this
package loads neither :mod:`matplotlib.pyplot` nor :mod:`effectstudy.multilevel`;
``meta_analysis`` (re-exported from :mod:`effectstudy.multilevel.meta`) is
loaded on first use.
"""

from typing import Any

from effectstudy.sced.between_case import BetweenCaseSMD, between_case_smd
from effectstudy.sced.design import DOES_NOT_MEET, MEETS, RESERVATIONS, design_check
from effectstudy.sced.effect_sizes import (
    MEASURES,
    EffectSize,
    TauUResult,
    batch_effect_sizes,
    corrected_tau,
    effect_sizes,
    ird,
    lor,
    lrm,
    lrrd,
    lrri,
    nap,
    overlap,
    pand,
    pem,
    pnd,
    pogo,
    smd,
    tau,
    tau_bc,
    tau_u,
    tau_u_table,
)
from effectstudy.sced.piecewise import PiecewiseResult, piecewise
from effectstudy.sced.plots import multiple_baseline_plot, phase_plot
from effectstudy.sced.randomization import (
    RandomizationResult,
    random_start_points,
    randomization_test,
)

__all__ = [
    "DOES_NOT_MEET", "MEASURES", "MEETS", "RESERVATIONS", "TauUResult", "meta_analysis", "tau_u_table", "BetweenCaseSMD", "EffectSize", "PiecewiseResult",
    "RandomizationResult", "batch_effect_sizes", "between_case_smd", "corrected_tau",
    "design_check", "effect_sizes", "ird", "lor", "lrm", "lrrd", "lrri", "multiple_baseline_plot",
    "nap", "overlap", "pand", "pem", "phase_plot", "piecewise", "pnd", "pogo",
    "random_start_points", "randomization_test", "smd", "tau", "tau_bc", "tau_u",
]


def __getattr__(name: str) -> Any:
    if name == "meta_analysis":
        from effectstudy.multilevel.meta import meta_analysis

        return meta_analysis
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
