"""Shared fixtures and test-process settings."""

from __future__ import annotations

import os

# One BLAS thread per test worker (see the Makefile); set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

from refdata import REFERENCE  # noqa: E402


@pytest.fixture(scope="session")
def reference():
    if not REFERENCE.is_dir():
        pytest.fail(f"reference values not found at {REFERENCE}; set EFFECTSTUDY_REFERENCE")
    return REFERENCE
