"""Multilevel growth models with small-sample inference for few clients and programmes.

lme4-style linear mixed models (:func:`fit`) with Satterthwaite and Kenward-Roger
degrees of freedom, CR2 cluster-robust inference (:func:`cluster_robust`),
nlme-style AR(1)/CAR(1) residual correlation (:func:`fit_ar1`), ICCs and
multilevel meta-analysis of case-level effect sizes (:func:`meta_analysis`).
"""

from effectstudy.multilevel.ar1 import AR1LMEResult, fit_ar1
from effectstudy.multilevel.lmm import MixedModelResults, compare, fit, icc, kr_modcomp
from effectstudy.multilevel.meta import MetaAnalysisResult, meta_analysis
from effectstudy.multilevel.robust import ClusterRobustResult, WaldTestResult, cluster_robust

__all__ = ["AR1LMEResult", "ClusterRobustResult", "MetaAnalysisResult", "MixedModelResults",
           "WaldTestResult", "cluster_robust", "compare", "fit", "fit_ar1", "icc", "kr_modcomp",
           "meta_analysis"]
