"""Programme integrity: measuring how faithfully the programmes are delivered.

The programme descriptions warn that implementation differs per provider and that
programme integrity is not yet established. This package holds the fidelity tools
of effectstudy:

* :func:`rater_agreement`: the six Shrout-Fleiss intraclass correlations of fidelity
  ratings (as R's ``psych::ICC``), so the reliability of a checklist can be shown
  before its scores are used;
* :func:`validate_logs`, :func:`validate_ratings`: delivery logs and ratings checked
  against the dictionary (``components:`` in ``programmes.yaml``, ``fidelity.yaml``),
  bad rows going to a rejection log;
* :func:`adherence`: share of prescribed components delivered in their phase and the
  dose received, per client and programme, with the fidelity profile and drift plots;
* :func:`fidelity_score`: a programme fidelity score from checklist ratings with rater
  variance in its uncertainty;
* :func:`dose_response`, :func:`tailoring`, :func:`fidelity_moderator`: received dose,
  tailored components and programme fidelity related to change (observational).
"""

from effectstudy.fidelity.agreement import (
    AGREEMENT_COLUMNS,
    ICC_DESCRIPTIONS,
    IncompleteRatingsWarning,
    RaterAgreementResult,
    rater_agreement,
)
from effectstudy.fidelity.delivery import (
    AdherenceResult,
    adherence,
    clopper_pearson,
    drift_plot,
    fidelity_profile_plot,
    korn_graubard,
    validate_logs,
    validate_ratings,
)
from effectstudy.fidelity.dose import (
    SIX_PROGRAMMES_SENTENCE,
    DoseResponseResult,
    ModeratorResult,
    TailoringResult,
    cumulative_dose,
    dose_response,
    fidelity_moderator,
    tailoring,
)
from effectstudy.fidelity.score import FidelityScoreResult, fidelity_score, logit_interval

__all__ = ["AGREEMENT_COLUMNS", "ICC_DESCRIPTIONS", "IncompleteRatingsWarning",
           "RaterAgreementResult", "rater_agreement",
           "AdherenceResult", "adherence", "clopper_pearson", "drift_plot",
           "fidelity_profile_plot", "korn_graubard", "validate_logs", "validate_ratings",
           "SIX_PROGRAMMES_SENTENCE", "DoseResponseResult", "ModeratorResult", "TailoringResult",
           "cumulative_dose", "dose_response", "fidelity_moderator", "tailoring",
           "FidelityScoreResult", "fidelity_score", "logit_interval"]
