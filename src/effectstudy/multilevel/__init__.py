"""Multilevel growth models with small-sample inference for few clients and programmes.

lme4-style linear mixed models (:func:`fit`) with Satterthwaite and Kenward-Roger
degrees of freedom, CR2 cluster-robust inference (:func:`cluster_robust`),
nlme-style AR(1)/CAR(1) residual correlation (:func:`fit_ar1`), ICCs and
multilevel meta-analysis of case-level effect sizes (:func:`meta_analysis`).
"""

from effectstudy.multilevel.ar1 import AR1LMEResult, fit_ar1
from effectstudy.multilevel.lmm import (
    FewClustersWarning,
    IccResult,
    LinearMixedModel,
    LRTResult,
    MixedModelResults,
    compare,
    fit,
    icc,
    kr_modcomp,
)
from effectstudy.multilevel.meta import MetaAnalysisResult, meta_analysis
from effectstudy.multilevel.plots import caterpillar_plot, spaghetti_plot
from effectstudy.multilevel.robust import ClusterRobustResult, WaldTestResult, cluster_robust
from effectstudy.multilevel.summaries import (
    GrowthD,
    VarianceExplained,
    blup_intervals,
    convergence_report,
    growth_d,
    predicted_means,
    variance_explained,
)
from effectstudy.multilevel.trends import slopes

__all__ = ["AR1LMEResult", "ClusterRobustResult", "FewClustersWarning", "IccResult",
           "LRTResult", "LinearMixedModel", "GrowthD", "MetaAnalysisResult",
           "MixedModelResults", "VarianceExplained", "WaldTestResult", "blup_intervals",
           "caterpillar_plot", "cluster_robust", "compare", "convergence_report", "fit", "fit_ar1",
           "growth_d", "icc", "kr_modcomp", "meta_analysis", "predicted_means", "slopes",
           "spaghetti_plot", "variance_explained"]
