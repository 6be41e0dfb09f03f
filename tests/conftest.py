"""Shared fixtures: where the R reference values live."""

from __future__ import annotations

import os

# One BLAS thread per test worker (see the Makefile); set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def reference_dir() -> Path:
    """The ``shared/reference`` folder beside the checkout (override: EFFECTSTUDY_REFERENCE)."""
    env = os.environ.get("EFFECTSTUDY_REFERENCE")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "reference"


REFERENCE = reference_dir()


@pytest.fixture(scope="session")
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"reference values not found at {REFERENCE}; set EFFECTSTUDY_REFERENCE")
    return REFERENCE
