"""Old home of the fast REML engine, now :mod:`effectstudy.multilevel.fastlmm`.

Kept for one release so that code importing ``effectstudy.power._fastlmm``
keeps working; import from :mod:`effectstudy.multilevel.fastlmm` instead.
"""

from __future__ import annotations

from effectstudy.multilevel.fastlmm import FastLMM, FitResult, RandomTerm

__all__ = ["FastLMM", "FitResult", "RandomTerm"]
