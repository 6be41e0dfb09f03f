"""Where the R reference values live: ``shared/reference`` beside the checkout.

Importable from every test module (``pythonpath = ["tests"]`` in pyproject.toml):
``from refdata import REFERENCE``. Override with the environment variable
``EFFECTSTUDY_REFERENCE``.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    env = os.environ.get("EFFECTSTUDY_REFERENCE")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "reference"


REFERENCE = reference_dir()
