"""The analysis specification (``ANALYSIS.yaml``) that drives a study (and its reports).

Example (the demo's spec, :data:`DEMO_SPEC`)::

    title: Effect study of six programmes (synthetic demo data)
    seed: 2026
    suppression: {threshold: 5}
    public_individual_series: false     # public reports show no case-level series unless true
    change: {pre: intake, post: discharge, method: jacobson-truax}
    single_case:
      instrument: SUD-week
      improvement: decrease
      measures: [NAP, Tau_U, PND, SMD, LRRd]
      randomization: {statistic: mean_difference, min_phase_length: 3}
    multilevel:
      construct: internalising
      formula: "z ~ week + (1 + week | client)"
      ddf: kenward-roger
    slopes:                               # per-programme growth slopes, one joint model per construct
      constructs: [internalising, externalising]
      formula: "z ~ week * programme + (1 + week | client)"
      ddf: kenward-roger
    follow_up: {occasions: [follow_up_3m, follow_up_6m, follow_up_12m]}
    integrity:                            # programme integrity (issue 12): effectstudy.fidelity
      construct: trauma_symptoms          # outcome of dose-response, tailoring, moderator
      power_programmes: [6, 24]           # moderator power for so many programmes
      power_nsim: 10
    dropout:                              # dropout and safety (effectstudy.survival, .missing)
      event: absconded                    # time to first absconding per programme
      m: 5                                # imputations of the growth outcome (default 10)
      deltas: [0.0, 0.5, 1.0]             # tipping-point grid, SD units in the worse direction
      burn_in: 100
      thin: 10
    power:
      nsim: 200
      design: {programmes: 6, clients_per_programme: 8, weeks: [0, 8, 16, 24, 32], ...}

Every key is optional except ``title``; unknown keys are an error
(:class:`~effectstudy.errors.SpecError`) so a typo never silently drops a section.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from effectstudy._yaml_io import read_yaml, unknown_keys_text
from effectstudy.errors import SpecError

_SCHEMA: dict[str, Any] = {
    "title": str,
    "subtitle": str,
    # the title and subtitle of the Dutch / English reports, when they differ from the above
    "title_nl": str,
    "subtitle_nl": str,
    "title_en": str,
    "subtitle_en": str,
    "seed": int,
    "suppression": {"threshold": int, "suppress_zero": bool},
    "public_individual_series": bool,
    "descriptives": {"constructs": list},
    "change": {"pre": str, "post": str, "method": str, "constructs": list},
    "single_case": {"instrument": str, "construct": str, "improvement": str, "measures": list,
                    "programmes": list, "randomization": {"statistic": str, "min_phase_length": int,
                                                          "n_samples": int}},
    "multilevel": {"construct": str, "formula": str, "ddf": str, "reml": bool},
    "slopes": {"constructs": list, "formula": str, "ddf": str, "confidence": float},
    "follow_up": {"occasions": list},
    # hooks for the integrity (issue 12) and dropout (issue 13) sections: accepted now,
    # filled by the study layer when effectstudy.fidelity / survival provide them
    "integrity": {"construct": str, "confidence": float, "block": int, "dose_unit": str,
                  "dose_groups": int, "power_programmes": list, "power_nsim": int},
    "dropout": {"event": str, "m": int, "deltas": list, "burn_in": int, "thin": int,
                "term": str, "better": str, "confidence": float},
    "power": {"nsim": int, "alpha": float, "n_jobs": int, "design": dict,
              "vary": dict},
}

DEMO_SPEC: dict[str, Any] = {
    "title": "Effect study of six programmes for girls who are victims of loverboys",
    "subtitle": "Synthetic demonstration data - not real clients",
    "title_nl": "Effectonderzoek van zes programma's voor meisjes die slachtoffer zijn van loverboys",
    "subtitle_nl": "Synthetische demonstratiegegevens - geen echte cliënten",
    "seed": 2026,
    "suppression": {"threshold": 5, "suppress_zero": True},
    "public_individual_series": False,
    "change": {"pre": "intake", "post": "discharge", "method": "jacobson-truax"},
    "single_case": {
        "instrument": "SUD-week",
        "improvement": "decrease",
        "measures": ["NAP", "Tau_U", "PND", "SMD", "LRRd"],
        "randomization": {"statistic": "mean_difference", "min_phase_length": 3},
    },
    "multilevel": {"construct": "internalising", "formula": "z ~ week + (1 + week | client)",
                   "ddf": "kenward-roger"},
    "slopes": {"constructs": ["internalising", "externalising"],
               "formula": "z ~ week * programme + (1 + week | client)", "ddf": "kenward-roger"},
    "follow_up": {"occasions": ["follow_up_3m", "follow_up_6m", "follow_up_12m"]},
    "integrity": {"construct": "trauma_symptoms", "power_programmes": [6, 24],
                  "power_nsim": 10},
    "dropout": {"event": "absconded", "m": 5, "deltas": [0.0, 0.5, 1.0], "burn_in": 100,
                "thin": 10},
    "power": {
        "nsim": 200,
        "alpha": 0.05,
        "design": {
            "programmes": 6, "clients_per_programme": 8, "weeks": [0, 8, 16, 24, 32],
            "dropout": 0.25, "formula": "y ~ time", "fixed": {"Intercept": 50, "time": -0.10},
            "sd_programme": 2.0, "sd_intercept": 6.0, "sd_slope": 0.15,
            "cor_intercept_slope": -0.3, "sd_residual": 5.0, "test_term": "time",
            "ddf": "satterthwaite",
        },
    },
}


def _check(obj: Any, schema: Any, key: str, source: str) -> None:
    if isinstance(schema, dict):
        if not isinstance(obj, dict):
            raise SpecError(f"expected a mapping, got {type(obj).__name__}", file=source, key=key)
        unknown = [k for k in obj if k not in schema]
        if unknown:
            # an unknown key may be text of a wrongly passed data file: only typos are named
            raise SpecError(unknown_keys_text(unknown, schema), file=source, key=key or None)
        for k, v in obj.items():
            _check(v, schema[k], f"{key}.{k}" if key else k, source)
    elif schema is float:
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            raise SpecError(f"expected a number, got {type(obj).__name__}", file=source, key=key)
    elif not isinstance(obj, schema) or (schema is int and isinstance(obj, bool)):
        raise SpecError(f"expected {schema.__name__}, got {type(obj).__name__}", file=source,
                        key=key)


def validate_spec(spec: dict[str, Any], source: str = "<spec>") -> dict[str, Any]:
    """Check a spec against the schema; returns a deep copy."""
    _check(spec, _SCHEMA, "", source)
    if "title" not in spec:
        raise SpecError("the spec needs a title", file=source, key="title")
    return copy.deepcopy(spec)


def load_spec(path: str | Path | None) -> dict[str, Any]:
    """Read and validate ``ANALYSIS.yaml``; ``None`` gives the demo spec."""
    if path is None:
        return validate_spec(DEMO_SPEC, "<demo spec>")
    p = Path(path)
    data = read_yaml(p, not_found="analysis spec not found", invalid="not valid YAML",
                     require_mapping=True)
    return validate_spec(data, str(p))
