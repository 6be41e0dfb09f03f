"""Linear mixed models in lme4's formulation, with small-sample inference.

This module keeps the old import path; the code lives in

* :mod:`effectstudy.multilevel._engine` -- the penalised least-squares engine
  (Bates, Maechler, Bolker & Walker 2015, *J. Stat. Softw.* 67(1)) on the
  sparse structure of the random effects, with the analytic derivatives;
* :mod:`effectstudy.multilevel.fitting` -- :class:`LinearMixedModel` (the
  optimiser and its boundary checks) and :func:`fit`;
* :mod:`effectstudy.multilevel.results` -- :class:`MixedModelResults`;
* :mod:`effectstudy.multilevel.anova` -- type-III contrasts, :func:`compare`,
  :func:`kr_modcomp`;
* :mod:`effectstudy.multilevel.icc` -- :func:`icc`;
* :mod:`effectstudy.multilevel.ddf` -- Satterthwaite and Kenward-Roger from
  the engine's pieces.
"""

from __future__ import annotations

from effectstudy.multilevel._engine import (
    FEW_CLUSTERS,
    SINGULAR_MESSAGE,
    SINGULAR_TOL,
    FewClustersWarning,
)
from effectstudy.multilevel.anova import LRTResult, compare, kr_modcomp
from effectstudy.multilevel.ddf import DDF_METHODS
from effectstudy.multilevel.fitting import LinearMixedModel, fit
from effectstudy.multilevel.icc import IccResult, icc
from effectstudy.multilevel.results import MixedModelResults

__all__ = [
    "fit",
    "compare",
    "icc",
    "kr_modcomp",
    "LinearMixedModel",
    "MixedModelResults",
    "IccResult",
    "LRTResult",
    "FewClustersWarning",
    "SINGULAR_MESSAGE",
    "SINGULAR_TOL",
    "FEW_CLUSTERS",
    "DDF_METHODS",
]
