"""Reading power designs from YAML.

Schema (keys not listed are an error)::

    type: growth            # growth | single-case | responder   (default growth)
    name: A                 # label used in results
    # ---- growth -------------------------------------------------------
    layout:                 # exactly one of file / planned
      file: power_design_A.csv          # CSV relative to the YAML file
      planned:                           # or arguments of GrowthDesign.planned
        programmes: 6
        clients_per_programme: 8         # or a list, one per programme
        weeks: [0, 8, 16, 24, 32]
        dropout: 0.25                    # proportion of clients dropping out (monotone)
        hazard: null                     # or per-occasion dropout hazard(s)
        mcar: 0.0                        # intermittent missing occasions
        treat_programmes: null           # e.g. [1, 3, 5] adds a 0/1 column `treat`
        seed: 1001                       # attrition pattern is drawn once (rng= of planned)
    formula: y ~ time                    # fixed part (parsed, never evaluated)
    fixed: {Intercept: 50, time: -0.10}
    random:
      sd_programme: 2.0                  # 0 drops (1 | programme)
      sd_intercept: 6.0
      sd_slope: 0.15                     # 0 gives (1 | client)
      cor_intercept_slope: -0.3
      sd_residual: 5.0
    test: {term: time, ddf: satterthwaite}   # or kenward-roger
    # ---- single-case: the SingleCaseDesign fields under `design:` ------
    # ---- responder:   the ResponderDesign fields under `design:` -------
    simulation: {nsim: 1000, seed: 1, alpha: 0.05}   # defaults for run_from_yaml

In a file a seed is an integer, so the key is ``seed``; it is passed on as
``rng=`` (the keyword of :func:`simulate` and :meth:`GrowthDesign.planned`).
``alpha`` is the significance level of the simulated test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .._compat import renamed_keywords, seed_to_rng
from .._validate import RNGLike
from .._yaml_io import read_yaml, unknown_keys_text
from ..errors import SpecError
from .growth import GrowthDesign
from .responder import ResponderDesign
from .simulate import PowerResult, simulate
from .single_case import SingleCaseDesign

__all__ = ["load_design", "run_from_yaml", "design_from_dict"]

_TOP = {"type", "name", "layout", "formula", "fixed", "random", "test", "design", "simulation"}


def _read(path: str | Path) -> dict:
    path = Path(path)
    return read_yaml(path, not_found="design file not found", invalid="invalid YAML",
                     require_mapping=True)


def design_from_dict(spec: dict, base: Path | None = None, file: Any = None):
    """Build a design object from a parsed YAML mapping (see module docstring)."""
    if not isinstance(spec, dict):
        raise SpecError("a design must be a mapping", file=file)
    unknown = [k for k in spec if k not in _TOP]
    if unknown:
        raise SpecError(unknown_keys_text(unknown, _TOP), file=file)
    kind = str(spec.get("type", "growth")).lower().replace("_", "-")
    name = str(spec.get("name", kind))
    try:
        if kind == "growth":
            lay = spec.get("layout") or {}
            if set(lay) - {"file", "planned"} or len(lay) != 1:
                raise SpecError(
                    "layout needs exactly one of 'file' or 'planned'", file=file, key="layout"
                )
            rnd = dict(spec.get("random") or {})
            test = dict(spec.get("test") or {})
            if set(test) - {"term", "ddf"}:
                raise SpecError(
                    f"unknown test keys {sorted(set(test) - {'term', 'ddf'})}",
                    file=file,
                    key="test",
                )
            kw = dict(
                formula=spec.get("formula", "y ~ time"),
                fixed=spec.get("fixed") or {},
                test_term=test.get("term", "time"),
                ddf=test.get("ddf", "satterthwaite"),
                name=name,
                **rnd,
            )
            if "file" in lay:
                p = Path(lay["file"])
                if not p.is_absolute() and base is not None:
                    p = base / p
                if not p.exists():
                    raise SpecError(f"layout file {p} not found", file=file, key="layout.file")
                return GrowthDesign(layout=pd.read_csv(p), **kw)
            planned = dict(lay["planned"])
            if "seed" in planned:
                if "rng" in planned:
                    raise SpecError("give seed or rng, not both", file=file,
                                    key="layout.planned")
                planned["rng"] = planned.pop("seed")
            return GrowthDesign.planned(**planned, **kw)
        if kind in ("single-case", "singlecase", "sced"):
            d = dict(spec.get("design") or {})
            if (
                "start_window" in d
                and isinstance(d["start_window"], list)
                and d["start_window"]
                and isinstance(d["start_window"][0], list)
            ):
                d["start_window"] = [tuple(w) for w in d["start_window"]]
            elif "start_window" in d:
                d["start_window"] = tuple(d["start_window"])
            return SingleCaseDesign(name=name, **d)
        if kind == "responder":
            return ResponderDesign(name=name, **dict(spec.get("design") or {}))
    except TypeError as exc:
        raise SpecError(f"invalid design arguments: {exc}", file=file) from exc
    except SpecError as exc:
        if exc.file is not None or file is None:
            raise
        raise SpecError(exc.message, file=file, key=exc.key, column=exc.column) from exc
    raise SpecError(f"unknown design type {kind!r}", file=file, key="type")


def load_design(path: str | Path):
    """Read a design from a YAML file (schema in this module's docstring)."""
    path = Path(path)
    return design_from_dict(_read(path), base=path.parent, file=path)


@renamed_keywords("run_from_yaml", {"seed": seed_to_rng})
def run_from_yaml(
    path: str | Path,
    nsim: int | None = None,
    rng: RNGLike = None,
    n_jobs: int = 1,
    *,
    alpha: float | None = None,
    scheduler: Any = None,
    progress: bool = True,
) -> PowerResult:
    """Load a YAML design and simulate its power (entry point for the CLI).

    ``nsim``, ``rng`` and ``alpha`` default to the file's ``simulation``
    section (``nsim``, ``seed``, ``alpha``), else 1000, 1 and 0.05. ``seed=``
    is accepted for one release with a :class:`FutureWarning`.
    """
    spec = _read(path)
    sim = dict(spec.get("simulation") or {})
    if set(sim) - {"nsim", "seed", "alpha"}:
        raise SpecError("simulation accepts nsim, seed and alpha", file=path, key="simulation")
    design = design_from_dict(spec, base=Path(path).parent, file=path)
    return simulate(
        design,
        nsim=int(nsim if nsim is not None else sim.get("nsim", 1000)),
        rng=rng if rng is not None else sim.get("seed", 1),
        n_jobs=n_jobs,
        alpha=float(alpha if alpha is not None else sim.get("alpha", 0.05)),
        scheduler=scheduler,
        progress=progress,
    )
