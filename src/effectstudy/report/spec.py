"""The analysis specification; it lives in :mod:`effectstudy.study.spec` (kept importable here)."""

from effectstudy.study.spec import DEMO_SPEC, load_spec, validate_spec

__all__ = ["DEMO_SPEC", "load_spec", "validate_spec"]
