"""Missing outcomes: combining analyses over multiply imputed data sets.

Girls who abscond from care leave outcome scores missing, and not at random. This
package holds the multiple-imputation tools of effectstudy. It now provides
:func:`pool`, Rubin's rules over per-imputation estimates (Barnard-Rubin df when
the complete-data df is known, as R's ``mice::pool``; Rubin's 1987 df otherwise,
as ``mitml::testEstimates``).
"""

from effectstudy.missing.pooling import POOL_COLUMNS, pool

__all__ = ["POOL_COLUMNS", "pool"]
