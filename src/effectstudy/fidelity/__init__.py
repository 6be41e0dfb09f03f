"""Programme integrity: measuring how faithfully the programmes are delivered.

The programme descriptions warn that implementation differs per provider and that
programme integrity is not yet established. This package holds the fidelity tools
of effectstudy. It now provides :func:`rater_agreement`, the six Shrout-Fleiss
intraclass correlations of fidelity ratings (as R's ``psych::ICC``), so the
reliability of a fidelity checklist can be shown before its scores are used.
"""

from effectstudy.fidelity.agreement import (
    AGREEMENT_COLUMNS,
    ICC_DESCRIPTIONS,
    IncompleteRatingsWarning,
    rater_agreement,
)

__all__ = ["AGREEMENT_COLUMNS", "ICC_DESCRIPTIONS", "IncompleteRatingsWarning",
           "rater_agreement"]
