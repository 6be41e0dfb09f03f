"""Public API of :mod:`effectstudy.power` (simulation-based power, issue 6).

Example
-------
>>> from effectstudy.power.api import GrowthDesign, simulate, power_curve
>>> design = GrowthDesign.planned(programmes=6, clients_per_programme=8,
...     weeks=[0, 8, 16, 24, 32], dropout=0.25, rng=1001,
...     formula="y ~ time", fixed={"Intercept": 50, "time": -0.10},
...     sd_programme=2.0, sd_intercept=6.0, sd_slope=0.15, cor_intercept_slope=-0.3,
...     sd_residual=5.0, test_term="time", ddf="satterthwaite")
>>> res = simulate(design, nsim=1000, rng=1, n_jobs=-1)             # doctest: +SKIP
>>> res.power, res.ci_lower, res.ci_upper, res.n_failed, res.n_singular  # doctest: +SKIP
>>> curve = power_curve(design, vary={"clients_per_programme": range(4, 26, 2)})  # doctest: +SKIP
>>> curve.plot()                                                     # doctest: +SKIP

Designs: :class:`GrowthDesign` (three-level growth, REML refits with
Satterthwaite or Kenward-Roger t-tests), :class:`SingleCaseDesign`
(multiple-baseline randomization test) and :class:`ResponderDesign`
(Jacobson-Truax reliable change, exact binomial). YAML designs:
:func:`load_design` / :func:`run_from_yaml` (schema in
:mod:`effectstudy.power.yaml_design`). Analytic t-test power:
:func:`t_test_power`, :func:`solve_n` (identical to R's pwr).
"""

from __future__ import annotations

from .analytic import d_from_slope, slope_from_d, solve_n, t_test_power
from .growth import GrowthDesign
from .responder import ResponderDesign, reliable_change_sdiff
from .simulate import PowerCurve, PowerResult, clopper_pearson, power_curve, simulate
from .single_case import SingleCaseDesign, mb_randomization_test
from .ttest_sim import simulate_t_test_power
from .yaml_design import load_design, run_from_yaml

__all__ = [
    "GrowthDesign",
    "SingleCaseDesign",
    "ResponderDesign",
    "simulate",
    "power_curve",
    "PowerResult",
    "PowerCurve",
    "t_test_power",
    "solve_n",
    "simulate_t_test_power",
    "slope_from_d",
    "d_from_slope",
    "reliable_change_sdiff",
    "mb_randomization_test",
    "clopper_pearson",
    "load_design",
    "run_from_yaml",
]
