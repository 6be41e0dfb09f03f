"""The study layer: run every analysis of a spec once and keep the exact results.

:func:`run` reads an analysis spec (:mod:`effectstudy.study.spec`) and harmonised
data and returns :class:`StudyResults`; :meth:`StudyResults.save` and
:meth:`StudyResults.load` keep them on disk (parquet + JSON, verified by sha256), so
that reports (:mod:`effectstudy.report`, a pure renderer) and notebooks read
results without recomputing.
"""

from effectstudy.study.results import StudyResults
from effectstudy.study.run import run
from effectstudy.study.spec import DEMO_SPEC, load_spec, validate_spec

__all__ = ["DEMO_SPEC", "StudyResults", "load_spec", "run", "validate_spec"]
