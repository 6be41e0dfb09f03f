"""Shared fixtures and test-process settings."""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# One BLAS thread per test worker (see the Makefile); set before numpy loads.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import pytest  # noqa: E402

from refdata import REFERENCE  # noqa: E402

#: The fixed pseudonymisation key of the shared demo study (test data, not a secret).
DEMO_KEY = b"test-key-for-the-shared-demo-study-0123456789"


@pytest.fixture(scope="session")
def reference():
    if not REFERENCE.is_dir():
        pytest.fail(f"reference values not found at {REFERENCE}; set EFFECTSTUDY_REFERENCE")
    return REFERENCE


# --------------------------------------------------------------------------- #
# The demo study, built once per test process (per xdist worker)
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class DemoData:
    """Synthetic demo exports (``raw``), their truth (``synth``) and the harmonised data."""

    root: Path
    raw: Path
    synth: Any
    harmonised: Any


@dataclass(frozen=True)
class DemoSaved:
    """The demo results saved by :meth:`StudyResults.save` and the harmonised data written
    as parquet, both in one session folder that tests must only read (copy to write)."""

    results: Path
    harmonised: Path


def demo_spec() -> dict[str, Any]:
    """A deep copy of the demo spec with 10 power simulations (no test checks power values)."""
    from effectstudy import study

    spec = copy.deepcopy(study.DEMO_SPEC)
    spec["power"]["nsim"] = 10
    return spec


def _fingerprint(*objects: Any) -> str:
    """A digest of result frames and metadata, to prove a shared object was not mutated."""
    digest = hashlib.sha256()
    for obj in objects:
        for name in ("spec", "meta", "provenance"):
            if hasattr(obj, name):
                digest.update(json.dumps(getattr(obj, name), sort_keys=True,
                                         default=repr).encode())
        frames = getattr(obj, "frames", None)
        if frames is None:
            frames = {n: getattr(obj, n) for n in ("table", "clients") if hasattr(obj, n)}
        for name in sorted(frames):
            digest.update(name.encode())
            digest.update(frames[name].to_csv().encode())
    return digest.hexdigest()


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> DemoData:
    """``synth.generate(seed=2026)`` harmonised with :data:`DEMO_KEY`; read-only."""
    from effectstudy.harmonise import harmonise
    from effectstudy.synth import generate

    root = tmp_path_factory.mktemp("demo")
    synth = generate(root / "raw", seed=2026)
    h = harmonise(root / "raw", key=DEMO_KEY)
    before = _fingerprint(h)
    yield DemoData(root, root / "raw", synth, h)
    assert _fingerprint(h) == before, "a test changed the shared harmonised demo data"


def _shared_run(spec: dict[str, Any], data: DemoData):
    from effectstudy import study

    results = study.run(spec, data.harmonised)
    before = _fingerprint(results)
    yield results
    assert _fingerprint(results) == before, "a test changed shared study results: copy them"


@pytest.fixture(scope="session")
def demo_results(demo_data):
    """``study.run`` of the demo spec (10 power simulations) on :func:`demo_data`.

    The same object for every test: read it only (``copy.deepcopy`` it to change it).
    """
    yield from _shared_run(demo_spec(), demo_data)


@pytest.fixture(scope="session")
def demo_goal_results(demo_data):
    """As :func:`demo_results`, with goal attainment among the slope constructs (norm-
    referenced scores in one programme only: its joint model cannot be estimated)."""
    spec = demo_spec()
    spec["slopes"]["constructs"] = ["internalising", "externalising", "goal_attainment"]
    yield from _shared_run(spec, demo_data)


@pytest.fixture(scope="session")
def demo_saved(demo_data, demo_results, tmp_path_factory) -> DemoSaved:
    """:func:`demo_results` saved and :func:`demo_data` written (parquet); read-only."""
    root = tmp_path_factory.mktemp("demo_saved")
    demo_results.save(root / "results")
    demo_data.harmonised.write(root / "harmonised", format=("parquet",))
    return DemoSaved(root / "results", root / "harmonised")


@pytest.fixture(scope="session")
def build_once() -> Callable[[str, Callable[[], Any]], Any]:
    """``build_once(name, build)``: ``build()`` the first time ``name`` is asked for in this
    test process, the same object after. For a module fixture that other modules import
    (each importing module would otherwise build it again); the object is read only."""
    built: dict[str, Any] = {}

    def get(name: str, build: Callable[[], Any]) -> Any:
        if name not in built:
            built[name] = build()
        return built[name]

    return get
