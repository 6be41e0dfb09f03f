"""Typed, validated view of the data dictionary (``data_dictionary/``).

The dictionary is a folder of YAML files:

``references.yaml``
    every source cited anywhere else, by key;
``constructs.yaml``
    the common outcome constructs and their direction of improvement;
``occasions.yaml``
    canonical occasions (intake, during, discharge, follow-ups) and canonical phases;
``instruments.yaml``
    instruments, their scales, and every psychometric number as ``{value, source}``;
``programmes.yaml``
    the programmes, their phases and durations;
``sources/<programme>.yaml``
    how each programme's export is laid out and maps onto the above.

Closed vocabularies (privacy: free text never passes)
-----------------------------------------------------
A programme lists the interventions its description names under ``interventions:``
(``{id, label}`` entries, as described by the programme, not an exhaustive care
catalogue). A source file maps the labels its export uses onto those ids under
``labels: interventions:``. The harmoniser splits an interventions cell on ``;``,
``,``, ``|`` and line breaks, keeps the declared ids (sorted, ``;``-joined) and logs
every other item as ``unknown_intervention`` without repeating its text.

Client id formats
-----------------
A source file may declare ``client_id_format``:

``text`` (default)
    the id is taken as written (surrounding white space removed; whole numbers read
    from SPSS/Excel as ``829259.0`` become ``829259``);
``integer``
    the id is a whole number however it was written: spaces (also thin and no-break
    spaces) are removed, a trailing ``.0``/``,0`` is dropped and leading zeros are
    stripped, so ``0829259``, ``829259.0`` and ``829 259`` all link to ``829259``.
    Anything else (letters, a fraction, non-ASCII digits) is logged as
    ``invalid_client_id`` and the row's scores are rejected.

Adding a programme or an instrument is a YAML edit only. Loading validates every
file strictly: an unknown or misspelt key, a missing required key, a value of the
wrong type, or a reference to something not defined elsewhere raises
:class:`~effectstudy.errors.DictionaryError` naming the file and the key path.

A number whose ``source`` is ``UNVERIFIED`` (or missing) is *flagged*: it is kept
for range checks or planning, but :meth:`Scale.norm_for` and friends never
present it as a norm, reliability or clinical cut-off.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from effectstudy.errors import DictionaryError

UNVERIFIED = "UNVERIFIED"
LAYOUTS = ("wide", "occasion_rows", "long", "series")
FORMATS = ("excel", "spss", "csv")
CLIENT_FIELDS = ("weeks_in_care", "last_phase", "end_reason", "interventions", "fidelity")
CLIENT_ID_FORMATS = ("text", "integer")
END_REASONS = ("completed", "absconded", "transferred")
DIRECTIONS = ("higher", "lower")


# --------------------------------------------------------------------------- #
# Typed view
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SourcedValue:
    """A number with the key of its published source (or ``UNVERIFIED``)."""

    value: float | None
    source: str
    note: str | None = None

    @property
    def verified(self) -> bool:
        """True when the value exists and cites a published source."""
        return self.value is not None and self.source != UNVERIFIED


@dataclass(frozen=True)
class Reference:
    key: str
    citation: str
    url: str | None


@dataclass(frozen=True)
class Construct:
    id: str
    label: str
    better: str


@dataclass(frozen=True)
class Occasion:
    id: str
    label: str
    order: int
    weeks_after_discharge: int | None = None


@dataclass(frozen=True)
class CanonicalPhase:
    id: str
    label: str
    order: int


@dataclass(frozen=True)
class Norm:
    """Mean and SD of a scale in a norm group."""

    group: str
    sex: str
    age_min: float | None
    age_max: float | None
    mean: SourcedValue
    sd: SourcedValue

    @property
    def verified(self) -> bool:
        return self.mean.verified and self.sd.verified

    def applies_to(self, age: float | None, sex: str | None = "female") -> bool:
        """Whether the norm group covers a client of this age (years) and sex."""
        if self.sex not in ("any", sex):
            return False
        if age is None or pd.isna(age):
            return self.age_min is None and self.age_max is None
        if self.age_min is not None and age < self.age_min:
            return False
        # Ages are fractional years: a 17.6-year-old belongs to the 12-17 group.
        if self.age_max is not None and age >= self.age_max + 1:
            return False
        return True


@dataclass(frozen=True)
class Reliability:
    value: float | None
    type: str
    source: str
    population: str | None = None
    note: str | None = None

    @property
    def verified(self) -> bool:
        return self.value is not None and self.source != UNVERIFIED


@dataclass(frozen=True)
class Cutoff:
    value: float
    rule: str
    kind: str
    source: str
    note: str | None = None

    @property
    def verified(self) -> bool:
        return self.source != UNVERIFIED


@dataclass(frozen=True)
class Scale:
    """One scale of an instrument, with its psychometrics."""

    instrument: str
    id: str
    items: SourcedValue
    range_min: float
    range_max: float
    range_source: str
    metric: str
    better: str
    reliability: Reliability
    norms: tuple[Norm, ...]
    cutoff: Cutoff | None

    def norm_for(self, age: float | None, sex: str | None = "female") -> Norm | None:
        """The first *verified* norm group covering this client, else None."""
        for norm in self.norms:
            if norm.verified and norm.applies_to(age, sex):
                return norm
        return None


@dataclass(frozen=True)
class Instrument:
    id: str
    name: str
    respondent: str
    age_min: float | None
    age_max: float | None
    scales: Mapping[str, Scale]


@dataclass(frozen=True)
class ProgrammePhase:
    id: str
    label: str
    canonical: str
    typical_weeks: SourcedValue


@dataclass(frozen=True)
class Intervention:
    """One intervention of a programme's closed vocabulary (as its description names it)."""

    id: str
    label: str


@dataclass(frozen=True)
class Programme:
    id: str
    name: str
    provider: str
    setting: str
    security: str
    typical_weeks: SourcedValue
    maximum_weeks: SourcedValue
    age_min: float | None
    age_max: float | None
    age_source: str
    group: str
    reach: str
    phases: tuple[ProgrammePhase, ...]
    aims: str | None = None
    aftercare_weeks: SourcedValue | None = None
    short_name: str | None = None
    interventions: tuple[Intervention, ...] = ()

    def phase(self, phase_id: str) -> ProgrammePhase:
        for p in self.phases:
            if p.id == phase_id:
                return p
        raise KeyError(phase_id)


@dataclass(frozen=True)
class MeasureMap:
    """Which source column (or long-format label pair) holds which instrument scale."""

    instrument: str
    scale: str
    construct: str
    column: str | None = None
    label: tuple[str, str] | None = None


@dataclass(frozen=True)
class OccasionMap:
    label: str
    occasion: str
    week: float | None = None


@dataclass(frozen=True)
class SourceFile:
    """How one export file is laid out (see ``data_dictionary/sources``)."""

    programme: str
    id: str
    path: str
    format: str
    layout: str
    client_id: str
    identifiers: tuple[str, ...]
    measures: tuple[MeasureMap, ...]
    sheet: str | None = None
    csv: Mapping[str, str] = field(default_factory=dict)
    birth_date: str | None = None
    date_format: str | None = None
    client_fields: Mapping[str, str] = field(default_factory=dict)
    occasions: Mapping[str, OccasionMap] = field(default_factory=dict)
    occasion_column: str | None = None
    date_column: str | None = None
    phase_column: str | None = None
    session_column: str | None = None
    sced_phase_column: str | None = None
    instrument_column: str | None = None
    scale_column: str | None = None
    score_column: str | None = None
    labels: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    client_id_format: str = "text"


@dataclass(frozen=True)
class Source:
    programme: str
    files: tuple[SourceFile, ...]
    path: Path


@dataclass(frozen=True)
class Dictionary:
    """The whole data dictionary, validated and cross-checked."""

    path: Path
    references: Mapping[str, Reference]
    constructs: Mapping[str, Construct]
    occasions: Mapping[str, Occasion]
    phases: Mapping[str, CanonicalPhase]
    instruments: Mapping[str, Instrument]
    programmes: Mapping[str, Programme]
    sources: Mapping[str, Source]
    sha256: str

    def scale(self, instrument: str, scale: str) -> Scale:
        """Look up an instrument scale; KeyError names what is unknown."""
        if instrument not in self.instruments:
            raise KeyError(f"unknown instrument {instrument!r}")
        scales = self.instruments[instrument].scales
        if scale not in scales:
            raise KeyError(f"unknown scale {scale!r} of instrument {instrument!r}")
        return scales[scale]

    def citation(self, key: str) -> str:
        """Full citation of a reference key ('UNVERIFIED' stays as it is)."""
        if key == UNVERIFIED:
            return "no published source found (UNVERIFIED)"
        return self.references[key].citation

    def scales_frame(self) -> pd.DataFrame:
        """One row per instrument scale with its psychometrics and their sources."""
        rows = []
        for inst in self.instruments.values():
            for sc in inst.scales.values():
                norm = next((n for n in sc.norms if n.verified), None)
                rows.append(
                    {
                        "instrument": inst.id,
                        "scale": sc.id,
                        "metric": sc.metric,
                        "better": sc.better,
                        "range_min": sc.range_min,
                        "range_max": sc.range_max,
                        "reliability": sc.reliability.value if sc.reliability.verified else None,
                        "reliability_type": sc.reliability.type,
                        "reliability_source": sc.reliability.source,
                        "norm_group": norm.group if norm else None,
                        "norm_mean": norm.mean.value if norm else None,
                        "norm_sd": norm.sd.value if norm else None,
                        "norm_source": norm.mean.source if norm else None,
                        "cutoff": sc.cutoff.value if sc.cutoff and sc.cutoff.verified else None,
                        "cutoff_source": sc.cutoff.source if sc.cutoff else None,
                    }
                )
        return pd.DataFrame(rows)

    def unverified(self) -> pd.DataFrame:
        """Every number in the dictionary that has no published source (flagged)."""
        rows: list[dict[str, Any]] = []

        def add(where: str, what: str, value: Any, note: str | None = None) -> None:
            rows.append({"where": where, "what": what, "value": value, "note": note})

        for inst in self.instruments.values():
            for sc in inst.scales.values():
                where = f"instruments.yaml: {inst.id}.{sc.id}"
                if not sc.items.verified:
                    add(where, "items", sc.items.value, sc.items.note)
                if sc.range_source == UNVERIFIED:
                    add(where, "range", f"{sc.range_min:g}-{sc.range_max:g}", "range checks only")
                if not sc.reliability.verified:
                    add(where, "reliability", sc.reliability.value, sc.reliability.note)
                for norm in sc.norms:
                    if not norm.verified:
                        add(where, f"norm ({norm.group})", f"{norm.mean.value}/{norm.sd.value}")
                if not sc.norms:
                    add(where, "norm", None, "no norm group with a published source")
                if sc.cutoff is not None and not sc.cutoff.verified:
                    add(where, "cutoff", sc.cutoff.value, sc.cutoff.note)
        for prog in self.programmes.values():
            where = f"programmes.yaml: {prog.id}"
            for label, sv in (("typical weeks", prog.typical_weeks), ("maximum weeks", prog.maximum_weeks)):
                if not sv.verified:
                    add(where, label, sv.value, sv.note)
            if prog.age_source == UNVERIFIED:
                add(where, "age range", None)
            for ph in prog.phases:
                if not ph.typical_weeks.verified:
                    add(f"{where}.{ph.id}", "typical weeks", ph.typical_weeks.value)
        return pd.DataFrame(rows, columns=["where", "what", "value", "note"])


# --------------------------------------------------------------------------- #
# Validation
# --------------------------------------------------------------------------- #
class _Reader:
    """Strict access to one YAML file's mappings, with file + key path in errors."""

    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, message: str, key: str) -> DictionaryError:
        return DictionaryError(message, file=self.file, key=key)

    def mapping(self, obj: Any, key: str, *, required: tuple[str, ...] = (),
                optional: tuple[str, ...] = ()) -> dict:
        if not isinstance(obj, Mapping):
            raise self.fail(f"expected a mapping, got {type(obj).__name__}", key)
        allowed = set(required) | set(optional)
        for k in obj:
            if k not in allowed:
                hint = difflib.get_close_matches(str(k), sorted(allowed), n=1)
                extra = f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {sorted(allowed)}"
                raise self.fail(f"unknown key {k!r}{extra}", f"{key}.{k}")
        for k in required:
            if k not in obj:
                raise self.fail(f"missing required key {k!r}", f"{key}.{k}")
        return dict(obj)

    def entries(self, obj: Any, key: str) -> dict:
        """A mapping whose keys are free (ids defined by the user)."""
        if not isinstance(obj, Mapping):
            raise self.fail(f"expected a mapping, got {type(obj).__name__}", key)
        return dict(obj)

    def text(self, obj: Any, key: str, *, allow_none: bool = False) -> str | None:
        if obj is None and allow_none:
            return None
        if not isinstance(obj, str) or not obj.strip():
            raise self.fail(f"expected text, got {obj!r}", key)
        return obj

    def number(self, obj: Any, key: str, *, allow_none: bool = True) -> float | None:
        if obj is None and allow_none:
            return None
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            raise self.fail(f"expected a number, got {obj!r}", key)
        return float(obj)

    def choice(self, obj: Any, key: str, choices: tuple[str, ...]) -> str:
        if obj not in choices:
            hint = difflib.get_close_matches(str(obj), choices, n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.fail(f"{obj!r} is not one of {list(choices)}{extra}", key)
        return obj

    def source_key(self, obj: Any, key: str, references: Mapping[str, Reference]) -> str:
        src = self.text(obj, key)
        if src != UNVERIFIED and src not in references:
            hint = difflib.get_close_matches(src, sorted(references), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise self.fail(f"source {src!r} is not a key of references.yaml{extra}", key)
        return src

    def sourced(self, obj: Any, key: str, refs: Mapping[str, Reference]) -> SourcedValue:
        m = self.mapping(obj, key, required=("value", "source"), optional=("note",))
        return SourcedValue(
            value=self.number(m["value"], f"{key}.value"),
            source=self.source_key(m["source"], f"{key}.source", refs),
            note=m.get("note"),
        )


def _load_yaml(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise DictionaryError("dictionary file is missing", file=file) from exc
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        row = mark.line + 1 if mark is not None else None
        raise DictionaryError(f"not valid YAML: {getattr(exc, 'problem', exc)}", file=file,
                              row=row) from exc


def _top(file: Path, name: str) -> tuple[_Reader, dict]:
    r = _Reader(file)
    data = _load_yaml(file)
    top = r.mapping(data, "<top>", required=(name,), optional=())
    body = top[name]
    if not isinstance(body, Mapping) or not body:
        raise r.fail(f"{name!r} must be a non-empty mapping", name)
    return r, dict(body)


def _references(folder: Path) -> dict[str, Reference]:
    r, body = _top(folder / "references.yaml", "references")
    out = {}
    for key, entry in body.items():
        m = r.mapping(entry, f"references.{key}", required=("citation",), optional=("url",))
        out[key] = Reference(key, r.text(m["citation"], f"references.{key}.citation"), m.get("url"))
    return out


def _constructs(folder: Path) -> dict[str, Construct]:
    r, body = _top(folder / "constructs.yaml", "constructs")
    out = {}
    for cid, entry in body.items():
        k = f"constructs.{cid}"
        m = r.mapping(entry, k, required=("label", "better"))
        out[cid] = Construct(cid, r.text(m["label"], f"{k}.label"),
                             r.choice(m["better"], f"{k}.better", DIRECTIONS))
    return out


def _occasions(folder: Path) -> tuple[dict[str, Occasion], dict[str, CanonicalPhase]]:
    file = folder / "occasions.yaml"
    r = _Reader(file)
    data = r.mapping(_load_yaml(file), "<top>", required=("occasions", "phases"))
    occ = {}
    for oid, entry in r.entries(data["occasions"], "occasions").items():
        k = f"occasions.{oid}"
        m = r.mapping(entry, k, required=("label", "order"), optional=("weeks_after_discharge",))
        wad = r.number(m.get("weeks_after_discharge"), f"{k}.weeks_after_discharge")
        occ[oid] = Occasion(oid, r.text(m["label"], f"{k}.label"),
                            int(r.number(m["order"], f"{k}.order", allow_none=False)),
                            None if wad is None else int(wad))
    phases = {}
    for pid, entry in r.entries(data["phases"], "phases").items():
        k = f"phases.{pid}"
        m = r.mapping(entry, k, required=("label", "order"))
        phases[pid] = CanonicalPhase(pid, r.text(m["label"], f"{k}.label"),
                                     int(r.number(m["order"], f"{k}.order", allow_none=False)))
    return occ, phases


def _instruments(folder: Path, refs: Mapping[str, Reference]) -> dict[str, Instrument]:
    r, body = _top(folder / "instruments.yaml", "instruments")
    out = {}
    for iid, entry in body.items():
        k = f"instruments.{iid}"
        m = r.mapping(entry, k, required=("name", "respondent", "ages", "scales"))
        ages = r.mapping(m["ages"], f"{k}.ages", required=("min", "max", "source"))
        r.source_key(ages["source"], f"{k}.ages.source", refs)
        scales_in = r.entries(m["scales"], f"{k}.scales")
        if not scales_in:
            raise r.fail("an instrument needs at least one scale", f"{k}.scales")
        scales = {}
        for sid, sentry in scales_in.items():
            sk = f"{k}.scales.{sid}"
            s = r.mapping(sentry, sk, required=("items", "range", "metric", "better", "reliability",
                                                "norms", "cutoff"))
            rng = r.mapping(s["range"], f"{sk}.range", required=("min", "max", "source"),
                            optional=("note",))
            lo = r.number(rng["min"], f"{sk}.range.min", allow_none=False)
            hi = r.number(rng["max"], f"{sk}.range.max", allow_none=False)
            if lo >= hi:
                raise r.fail(f"range min {lo:g} is not below max {hi:g}", f"{sk}.range")
            rel = r.mapping(s["reliability"], f"{sk}.reliability", required=("value", "type", "source"),
                            optional=("population", "note"))
            rel_value = r.number(rel["value"], f"{sk}.reliability.value")
            if rel_value is not None and not 0 < rel_value < 1:
                raise r.fail(f"reliability {rel_value} is not between 0 and 1", f"{sk}.reliability.value")
            norms = []
            if not isinstance(s["norms"], list):
                raise r.fail("norms must be a list (possibly empty)", f"{sk}.norms")
            for i, nentry in enumerate(s["norms"]):
                nk = f"{sk}.norms[{i}]"
                n = r.mapping(nentry, nk, required=("group", "sex", "age_min", "age_max", "mean", "sd"))
                sd = r.sourced(n["sd"], f"{nk}.sd", refs)
                if sd.value is not None and sd.value <= 0:
                    raise r.fail("a norm SD must be positive", f"{nk}.sd.value")
                norms.append(Norm(r.text(n["group"], f"{nk}.group"),
                                  r.choice(n["sex"], f"{nk}.sex", ("female", "male", "any")),
                                  r.number(n["age_min"], f"{nk}.age_min"),
                                  r.number(n["age_max"], f"{nk}.age_max"),
                                  r.sourced(n["mean"], f"{nk}.mean", refs), sd))
            cutoff = None
            if s["cutoff"] is not None:
                c = r.mapping(s["cutoff"], f"{sk}.cutoff", required=("value", "rule", "kind", "source"),
                              optional=("note",))
                cutoff = Cutoff(r.number(c["value"], f"{sk}.cutoff.value", allow_none=False),
                                r.choice(c["rule"], f"{sk}.cutoff.rule", (">=", ">", "<=", "<")),
                                r.text(c["kind"], f"{sk}.cutoff.kind"),
                                r.source_key(c["source"], f"{sk}.cutoff.source", refs), c.get("note"))
            scales[sid] = Scale(
                instrument=iid, id=sid, items=r.sourced(s["items"], f"{sk}.items", refs),
                range_min=lo, range_max=hi,
                range_source=r.source_key(rng["source"], f"{sk}.range.source", refs),
                metric=r.choice(s["metric"], f"{sk}.metric", ("raw", "t_score")),
                better=r.choice(s["better"], f"{sk}.better", DIRECTIONS),
                reliability=Reliability(rel_value, r.text(rel["type"], f"{sk}.reliability.type"),
                                        r.source_key(rel["source"], f"{sk}.reliability.source", refs),
                                        rel.get("population"), rel.get("note")),
                norms=tuple(norms), cutoff=cutoff)
        out[iid] = Instrument(iid, r.text(m["name"], f"{k}.name"), r.text(m["respondent"], f"{k}.respondent"),
                              r.number(ages["min"], f"{k}.ages.min"), r.number(ages["max"], f"{k}.ages.max"),
                              scales)
    return out


def _programmes(folder: Path, refs: Mapping[str, Reference],
                canon: Mapping[str, CanonicalPhase]) -> dict[str, Programme]:
    r, body = _top(folder / "programmes.yaml", "programmes")
    out = {}
    for pid, entry in body.items():
        k = f"programmes.{pid}"
        m = r.mapping(entry, k, required=("name", "provider", "setting", "security", "duration_weeks",
                                          "age_range", "group", "reach", "phases"),
                      optional=("aims", "aftercare_weeks", "short_name", "interventions"))
        dur = r.mapping(m["duration_weeks"], f"{k}.duration_weeks", required=("typical", "maximum"))
        ages = r.mapping(m["age_range"], f"{k}.age_range", required=("min", "max", "source"))
        if not isinstance(m["phases"], list) or not m["phases"]:
            raise r.fail("phases must be a non-empty list, in order", f"{k}.phases")
        phases = []
        for i, ph in enumerate(m["phases"]):
            hk = f"{k}.phases[{i}]"
            p = r.mapping(ph, hk, required=("id", "label", "canonical", "typical_weeks"))
            phases.append(ProgrammePhase(r.text(p["id"], f"{hk}.id"), r.text(p["label"], f"{hk}.label"),
                                         r.choice(p["canonical"], f"{hk}.canonical", tuple(canon)),
                                         r.sourced(p["typical_weeks"], f"{hk}.typical_weeks", refs)))
        if len({p.id for p in phases}) != len(phases):
            raise r.fail("phase ids must be unique", f"{k}.phases")
        after = m.get("aftercare_weeks")
        ivs = m.get("interventions") or []
        if not isinstance(ivs, list):
            raise r.fail("interventions must be a list of {id, label}", f"{k}.interventions")
        interventions = []
        for i, iv in enumerate(ivs):
            ik = f"{k}.interventions[{i}]"
            e = r.mapping(iv, ik, required=("id", "label"))
            interventions.append(Intervention(r.text(e["id"], f"{ik}.id"),
                                              r.text(e["label"], f"{ik}.label")))
        if len({iv.id for iv in interventions}) != len(interventions):
            raise r.fail("intervention ids must be unique", f"{k}.interventions")
        out[pid] = Programme(
            id=pid, name=r.text(m["name"], f"{k}.name"), provider=r.text(m["provider"], f"{k}.provider"),
            setting=r.text(m["setting"], f"{k}.setting"), security=r.text(m["security"], f"{k}.security"),
            typical_weeks=r.sourced(dur["typical"], f"{k}.duration_weeks.typical", refs),
            maximum_weeks=r.sourced(dur["maximum"], f"{k}.duration_weeks.maximum", refs),
            age_min=r.number(ages["min"], f"{k}.age_range.min"),
            age_max=r.number(ages["max"], f"{k}.age_range.max"),
            age_source=r.source_key(ages["source"], f"{k}.age_range.source", refs),
            group=r.text(m["group"], f"{k}.group"),
            reach=r.choice(m["reach"], f"{k}.reach", ("regional", "national")),
            phases=tuple(phases), aims=m.get("aims"), interventions=tuple(interventions),
            short_name=r.text(m.get("short_name"), f"{k}.short_name", allow_none=True),
            aftercare_weeks=None if after is None else r.sourced(after, f"{k}.aftercare_weeks", refs))
    return out


_FILE_REQUIRED = ("id", "path", "format", "layout", "client_id", "identifiers", "measures")
_FILE_OPTIONAL = ("sheet", "csv", "birth_date", "date_format", "client_fields", "occasions",
                  "occasion_column", "date_column", "phase_column", "session_column",
                  "sced_phase_column", "instrument_column", "scale_column", "score_column", "labels",
                  "client_id_format")
_LAYOUT_NEEDS = {
    "wide": ("occasions",),
    "occasion_rows": ("occasions", "occasion_column"),
    "long": ("occasions", "occasion_column", "instrument_column", "scale_column", "score_column"),
    "series": ("session_column", "sced_phase_column"),
}


def _source(file: Path, *, programmes: Mapping[str, Programme], instruments: Mapping[str, Instrument],
            constructs: Mapping[str, Construct], occasions: Mapping[str, Occasion]) -> Source:
    r = _Reader(file)
    top = r.mapping(_load_yaml(file), "<top>", required=("programme", "files"))
    prog_id = r.choice(top["programme"], "programme", tuple(programmes))
    if file.stem != prog_id:
        raise r.fail(f"source file for programme {prog_id!r} must be named {prog_id}.yaml", "programme")
    prog = programmes[prog_id]
    if not isinstance(top["files"], list) or not top["files"]:
        raise r.fail("files must be a non-empty list", "files")
    files = []
    for i, fentry in enumerate(top["files"]):
        fk = f"files[{i}]"
        f = r.mapping(fentry, fk, required=_FILE_REQUIRED, optional=_FILE_OPTIONAL)
        fmt = r.choice(f["format"], f"{fk}.format", FORMATS)
        layout = r.choice(f["layout"], f"{fk}.layout", LAYOUTS)
        for need in _LAYOUT_NEEDS[layout]:
            if not f.get(need):
                raise r.fail(f"layout {layout!r} needs {need!r}", f"{fk}.{need}")
        if fmt == "excel" and not f.get("sheet"):
            raise r.fail("an Excel source needs 'sheet'", f"{fk}.sheet")
        csv_opts = {}
        if fmt == "csv":
            csv_opts = r.mapping(f.get("csv") or {}, f"{fk}.csv", required=("sep", "decimal", "encoding"))
        elif f.get("csv"):
            raise r.fail("'csv' options only apply to format csv", f"{fk}.csv")
        if not isinstance(f["identifiers"], list):
            raise r.fail("identifiers must be a list of column names", f"{fk}.identifiers")
        cf = r.mapping(f.get("client_fields") or {}, f"{fk}.client_fields", optional=CLIENT_FIELDS)
        occ_maps = {}
        for label, oentry in r.entries(f.get("occasions") or {}, f"{fk}.occasions").items():
            ok = f"{fk}.occasions.{label}"
            o = r.mapping(oentry, ok, required=("occasion",), optional=("week",))
            occ_maps[str(label)] = OccasionMap(str(label), r.choice(o["occasion"], f"{ok}.occasion",
                                                                    tuple(occasions)),
                                               r.number(o.get("week"), f"{ok}.week"))
        if not isinstance(f["measures"], list) or not f["measures"]:
            raise r.fail("measures must be a non-empty list", f"{fk}.measures")
        measures = []
        for j, mentry in enumerate(f["measures"]):
            mk = f"{fk}.measures[{j}]"
            mm = r.mapping(mentry, mk, required=("instrument", "scale", "construct"),
                           optional=("column", "label"))
            inst = r.choice(mm["instrument"], f"{mk}.instrument", tuple(instruments))
            scale = r.choice(mm["scale"], f"{mk}.scale", tuple(instruments[inst].scales))
            construct = r.choice(mm["construct"], f"{mk}.construct", tuple(constructs))
            if layout == "long":
                lab = mm.get("label")
                if not (isinstance(lab, list) and len(lab) == 2):
                    raise r.fail("a long-layout measure needs label: [instrument label, scale label]",
                                 f"{mk}.label")
                measures.append(MeasureMap(inst, scale, construct, label=(str(lab[0]), str(lab[1]))))
            else:
                col = r.text(mm.get("column"), f"{mk}.column")
                if layout == "wide" and "{occasion}" not in col:
                    raise r.fail("a wide-layout column must contain '{occasion}'", f"{mk}.column")
                measures.append(MeasureMap(inst, scale, construct, column=col))
        labels = r.mapping(f.get("labels") or {}, f"{fk}.labels",
                           optional=("phase", "last_phase", "end_reason", "sced_phase",
                                     "interventions"))
        phase_ids = tuple(p.id for p in prog.phases)
        iv_ids = tuple(iv.id for iv in prog.interventions)
        for kind, mapping in labels.items():
            lk = f"{fk}.labels.{kind}"
            targets = {"phase": phase_ids, "last_phase": phase_ids, "end_reason": END_REASONS,
                       "sced_phase": ("A", "B"), "interventions": iv_ids}[kind]
            for lab, target in r.entries(mapping, lk).items():
                r.choice(target, f"{lk}.{lab}", targets)
        labels = {kind: {str(a): str(b) for a, b in mapping.items()} for kind, mapping in labels.items()}
        id_format = r.choice(f.get("client_id_format", "text"), f"{fk}.client_id_format",
                             CLIENT_ID_FORMATS)
        files.append(SourceFile(
            programme=prog_id, id=r.text(f["id"], f"{fk}.id"), path=r.text(f["path"], f"{fk}.path"),
            format=fmt, layout=layout, client_id=r.text(f["client_id"], f"{fk}.client_id"),
            identifiers=tuple(str(c) for c in f["identifiers"]), measures=tuple(measures),
            sheet=f.get("sheet"), csv=csv_opts, birth_date=f.get("birth_date"),
            date_format=f.get("date_format"), client_fields=cf, occasions=occ_maps,
            occasion_column=f.get("occasion_column"), date_column=f.get("date_column"),
            phase_column=f.get("phase_column"), session_column=f.get("session_column"),
            sced_phase_column=f.get("sced_phase_column"), instrument_column=f.get("instrument_column"),
            scale_column=f.get("scale_column"), score_column=f.get("score_column"), labels=labels,
            client_id_format=id_format))
    if len({f.id for f in files}) != len(files):
        raise r.fail("file ids must be unique within a source", "files")
    return Source(prog_id, tuple(files), file)


def default_path() -> Path:
    """The dictionary shipped inside the installed package."""
    return Path(str(resources.files("effectstudy") / "data_dictionary"))


def _hash_folder(folder: Path) -> str:
    digest = hashlib.sha256()
    for file in sorted(folder.rglob("*.yaml")):
        digest.update(str(file.relative_to(folder)).encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


def load_dictionary(path: str | Path | None = None) -> Dictionary:
    """Load and validate a data dictionary folder.

    Parameters
    ----------
    path
        Folder holding the YAML files; default: the dictionary shipped with the package.

    Returns
    -------
    Dictionary
        Typed, cross-checked view. ``Dictionary.sha256`` identifies its exact content
        (used in report provenance).

    Raises
    ------
    DictionaryError
        On any malformed file, naming the file and the key path.
    """
    folder = Path(path) if path is not None else default_path()
    if not folder.is_dir():
        raise DictionaryError("data dictionary folder not found", file=folder)
    refs = _references(folder)
    constructs = _constructs(folder)
    occasions, phases = _occasions(folder)
    instruments = _instruments(folder, refs)
    programmes = _programmes(folder, refs, phases)
    sources = {}
    source_dir = folder / "sources"
    for file in sorted(source_dir.glob("*.yaml")) if source_dir.is_dir() else []:
        src = _source(file, programmes=programmes, instruments=instruments, constructs=constructs,
                      occasions=occasions)
        sources[src.programme] = src
    return Dictionary(path=folder, references=refs, constructs=constructs, occasions=occasions,
                      phases=phases, instruments=instruments, programmes=programmes, sources=sources,
                      sha256=_hash_folder(folder))
