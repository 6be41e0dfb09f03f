"""Missing outcomes: multiple imputation, pooling and sensitivity to missing not at random.

Girls who abscond from care leave outcome scores missing, and not at random. This
package holds the multiple-imputation tools of effectstudy:

* :func:`impute`: two-level normal multiple imputation of the planned but unobserved
  client x occasion cells (clients within programmes, as R's ``pan``/``jomo``);
* :func:`analyse_imputed` and :func:`growth_analysis`: run an analysis on each
  completed table and pool it;
* :func:`pool`: Rubin's rules over per-imputation estimates (Barnard-Rubin df when
  the complete-data df is known, as R's ``mice::pool``; Rubin's 1987 df otherwise,
  as ``mitml::testEstimates``);
* :func:`tipping_point`: delta-adjusted sensitivity analysis for scores missing
  after absconding.
"""

from effectstudy.missing.impute import (
    ImputationResult,
    analyse_imputed,
    growth_analysis,
    impute,
    planned_grid,
)
from effectstudy.missing.pooling import POOL_COLUMNS, pool
from effectstudy.missing.sensitivity import ABSCONDED, TippingPointResult, tipping_point

__all__ = ["ABSCONDED", "POOL_COLUMNS", "ImputationResult", "TippingPointResult",
           "analyse_imputed", "growth_analysis", "impute", "planned_grid", "pool",
           "tipping_point"]
