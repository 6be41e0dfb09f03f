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

Texts in two languages
----------------------
Every human-readable text field (:data:`TEXT_FIELDS`: labels, setting, group, aims,
norm groups, checklist items, the ``note`` of a sourced number, a reliability's
``population``, ...) is either a plain string, which means English only,
or a mapping with exactly the languages of :data:`TEXT_LANGUAGES`
(``{en: ..., nl: ...}``). The typed classes keep the English text in the field itself
(``prog.setting``) and every language in ``translations``; ``prog.text("setting", "nl")``
gives the Dutch text or None. :meth:`Dictionary.untranslated` lists the fields without a
Dutch text (``effectstudy dictionary check`` reports them): a Dutch report never shows
their English text as if it were Dutch.

A number whose ``source`` is ``UNVERIFIED`` (or missing) is *flagged*: it is kept
for range checks or planning, but :meth:`Scale.norm_for` and friends never
present it as a norm, reliability or clinical cut-off.

Long because this module is the whole schema of the data dictionary: every YAML
file's typed classes sit beside the strict reader that validates them (the main
dictionary, the integrity blocks and the event blocks), and it imports nothing
of effectstudy but its errors and its safe YAML reader, so one file shows what a
dictionary may hold.
"""

from __future__ import annotations

import difflib
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from effectstudy._yaml_io import read_yaml
from effectstudy.errors import DictionaryError, SpecError

UNVERIFIED = "UNVERIFIED"
LAYOUTS = ("wide", "occasion_rows", "long", "series", "delivery", "fidelity_ratings")
#: Layouts of integrity exports (no scores; read by :mod:`effectstudy.harmonise.integrity`).
INTEGRITY_LAYOUTS = ("delivery", "fidelity_ratings")
#: ``columns:`` of an integrity export: canonical field -> required?
INTEGRITY_COLUMNS = {
    "delivery": {"week": True, "phase": True, "component": True, "delivered": True,
                 "minutes": True},
    "fidelity_ratings": {"target": True, "rater": True, "item": True, "score": True,
                         "rater_role": False, "instrument": False},
}
FORMATS = ("excel", "spss", "csv")
CLIENT_FIELDS = ("weeks_in_care", "last_phase", "end_reason", "interventions", "fidelity")
CLIENT_ID_FORMATS = ("text", "integer")
#: End-of-care reasons; ``unknown`` when the export records none (never counted as zero).
END_REASONS = ("completed", "absconded", "transferred", "unknown")
#: Group composition of a programme (``sex:`` in programmes.yaml); ``mixed`` is the default.
PROGRAMME_SEXES = ("female", "male", "mixed")
#: Client sex values a source's ``labels: sex:`` may map onto.
CLIENT_SEXES = ("female", "male")
#: Environment variable naming the data dictionary folder (see :func:`resolve_dictionary`).
ENV_DICTIONARY = "EFFECTSTUDY_DICTIONARY"
DIRECTIONS = ("higher", "lower")
#: Languages of the dictionary's texts; a text field is a string (English) or a mapping of
#: exactly these languages (``{en: ..., nl: ...}``).
TEXT_LANGUAGES = ("en", "nl")
#: The text fields, per dictionary file and record (as in :meth:`Dictionary.untranslated`).
#: A record is named by the last key of its path: ``reliability`` is a scale's
#: ``reliability:``, ``typical`` a programme's ``duration_weeks: typical:``, ``mean`` and
#: ``sd`` a norm group's numbers; the ``note`` of a sourced value is a text field too.
TEXT_FIELDS = {
    "constructs.yaml": {"constructs": ("label",)},
    "occasions.yaml": {"occasions": ("label",), "phases": ("label",)},
    "instruments.yaml": {"instruments": ("name",), "norms": ("group",),
                         "items": ("note",), "range": ("note",),
                         "reliability": ("population", "note"), "mean": ("note",),
                         "sd": ("note",), "cutoff": ("note",)},
    "programmes.yaml": {"programmes": ("setting", "security", "group", "aims"),
                        "phases": ("label",), "interventions": ("label",),
                        "components": ("label",), "typical": ("note",), "maximum": ("note",),
                        "aftercare_weeks": ("note",), "typical_weeks": ("note",),
                        "dose": ("note",)},
    "fidelity.yaml": {"fidelity_instruments": ("name",), "items": ("text",)},
    "events.yaml": {"event_types": ("label", "description")},
}


# --------------------------------------------------------------------------- #
# Typed view
# --------------------------------------------------------------------------- #
def _translations() -> Any:
    """The ``translations`` field of a record with text fields (not compared, not hashed)."""
    return field(default_factory=dict, compare=False, hash=False, repr=False)


def _check_language(language: str) -> None:
    if language not in TEXT_LANGUAGES:
        raise SpecError(f"language must be one of {list(TEXT_LANGUAGES)}, not {language!r}")


#: What follows an English text shown where another language was asked for and the
#: dictionary gives none (the wording of the report catalogue's ``common.untranslated``).
UNTRANSLATED_MARK = {"en": "", "nl": "(niet vertaald in het datawoordenboek)"}


class Texts:
    """Mixin of the records with text fields: every language the dictionary gives.

    ``translations`` maps a field name to ``{language: text}``; the field itself holds
    the English text. A record built without translations has English only.
    """

    translations: Mapping[str, Mapping[str, str]]

    def text(self, name: str, language: str = "en") -> str | None:
        """Text field ``name`` in ``language``; None when the dictionary gives none.

        Parameters
        ----------
        name
            A text field of the record (``"setting"``, ``"label"``, ...).
        language
            One of :data:`TEXT_LANGUAGES`.

        Returns
        -------
        str or None
            None when the field is empty or has no text in ``language`` (never the
            English text in place of a missing Dutch one).
        """
        _check_language(language)
        texts = self.texts(name)
        return texts.get(language)

    def texts(self, name: str) -> dict[str, str]:
        """Every language of text field ``name`` (``{}`` when the field is empty)."""
        given = self.translations.get(name)
        if given:
            return dict(given)
        value = getattr(self, name)
        return {"en": value} if isinstance(value, str) and value else {}


class Sourced:
    """Mixin of the dictionary's sourced numbers: a ``value`` and its ``source`` key."""

    value: float | None
    source: str

    @property
    def verified(self) -> bool:
        """True when the value exists and cites a published source (not ``UNVERIFIED``)."""
        return self.value is not None and self.source != UNVERIFIED


@dataclass(frozen=True)
class SourcedValue(Sourced, Texts):
    """A number with the key of its published source (or ``UNVERIFIED``).

    ``note`` is a text field: its English text, every language in ``translations``
    (``sv.text("note", "nl")``).
    """

    value: float | None
    source: str
    note: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Reference:
    key: str
    citation: str
    url: str | None


@dataclass(frozen=True)
class Construct(Texts):
    id: str
    label: str
    better: str
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Occasion(Texts):
    id: str
    label: str
    order: int
    weeks_after_discharge: int | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class CanonicalPhase(Texts):
    id: str
    label: str
    order: int
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Norm(Texts):
    """Mean and SD of a scale in a norm group.

    ``group`` is the English description; it also names the norm group in harmonised
    data (``norm_group``), so it is the identity of the group.
    """

    group: str
    sex: str
    age_min: float | None
    age_max: float | None
    mean: SourcedValue
    sd: SourcedValue
    translations: Mapping[str, Mapping[str, str]] = _translations()

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
class Reliability(Sourced, Texts):
    """A scale's reliability; ``population`` (the sample it was estimated in) and ``note``
    are text fields."""

    value: float | None
    type: str
    source: str
    population: str | None = None
    note: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Cutoff(Sourced, Texts):
    """A scale's published cut-off; ``note`` is a text field."""

    value: float
    rule: str
    kind: str
    source: str
    note: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class ScaleRange(Texts):
    """The possible scores of a scale (``range:``) with its source; ``note`` is a text field.

    :class:`Scale` also keeps the bounds and the source as ``range_min``, ``range_max``
    and ``range_source``.
    """

    min: float
    max: float
    source: str
    note: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


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
    #: The ``range:`` record with its note (None for a scale built without one).
    range: ScaleRange | None = None

    def norm_for(self, age: float | None, sex: str | None = "female") -> Norm | None:
        """The first *verified* norm group covering this client, else None."""
        for norm in self.norms:
            if norm.verified and norm.applies_to(age, sex):
                return norm
        return None


@dataclass(frozen=True)
class Instrument(Texts):
    id: str
    name: str
    respondent: str
    age_min: float | None
    age_max: float | None
    scales: Mapping[str, Scale]
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class ProgrammePhase(Texts):
    id: str
    label: str
    canonical: str
    typical_weeks: SourcedValue
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Intervention(Texts):
    """One intervention of a programme's closed vocabulary (as its description names it)."""

    id: str
    label: str
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Programme(Texts):
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
    #: ``female``, ``male`` or ``mixed``: who the programme admits; decides norm groups.
    sex: str = "mixed"
    translations: Mapping[str, Mapping[str, str]] = _translations()

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
    #: 1-based row of the header (Excel and CSV); rows above it are titles, not data.
    header_row: int = 1
    #: Texts that mean "not measured by design" in a score cell (counted as empty).
    missing_values: tuple[str, ...] = ()
    #: Column of the client's sex (mapped with ``labels: sex:``), for mixed programmes.
    sex_column: str | None = None
    #: Event columns of the export (``events:``; see :class:`SourceEvents`), or None.
    events: SourceEvents | None = None
    #: Integrity layouts only: canonical field -> export column (``columns:``).
    columns: Mapping[str, str] = field(default_factory=dict)


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
    #: Event types of ``events.yaml`` (absconding, police report, ...); empty without the file.
    event_types: Mapping[str, EventType] = field(default_factory=dict)

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

    def text_records(self) -> list[tuple[str, str, Texts]]:
        """Every record with text fields as ``(file, key path, record)``.

        Besides the labelled records (constructs, occasions, instruments, norm groups,
        programmes, phases, interventions, event types) these are the sourced values,
        whose ``note`` is a text field (and a reliability's ``population``), with or
        without a note: a scale's ``items``, ``range``, ``reliability``, ``cutoff`` and a
        norm group's ``mean`` and ``sd``; a programme's ``duration_weeks`` (``typical``,
        ``maximum``), ``aftercare_weeks`` and a phase's ``typical_weeks``. A component's
        ``dose`` is walked by :meth:`IntegrityDictionary.untranslated`.
        """
        return [(file, key, record) for file, key, _, record in self._text_records()]

    def _text_records(self) -> list[tuple[str, str, str, Texts]]:
        """:meth:`text_records` with each record's kind (its entry of :data:`TEXT_FIELDS`)."""
        out: list[tuple[str, str, str, Texts]] = []
        out += [("constructs.yaml", f"constructs.{c.id}", "constructs", c)
                for c in self.constructs.values()]
        out += [("occasions.yaml", f"occasions.{o.id}", "occasions", o)
                for o in self.occasions.values()]
        out += [("occasions.yaml", f"phases.{p.id}", "phases", p) for p in self.phases.values()]
        inst_file = "instruments.yaml"
        for inst in self.instruments.values():
            out.append((inst_file, f"instruments.{inst.id}", "instruments", inst))
            for sc in inst.scales.values():
                sk = f"instruments.{inst.id}.scales.{sc.id}"
                out.append((inst_file, f"{sk}.items", "items", sc.items))
                if sc.range is not None:
                    out.append((inst_file, f"{sk}.range", "range", sc.range))
                out.append((inst_file, f"{sk}.reliability", "reliability", sc.reliability))
                for i, n in enumerate(sc.norms):
                    nk = f"{sk}.norms[{i}]"
                    out += [(inst_file, nk, "norms", n), (inst_file, f"{nk}.mean", "mean", n.mean),
                            (inst_file, f"{nk}.sd", "sd", n.sd)]
                if sc.cutoff is not None:
                    out.append((inst_file, f"{sk}.cutoff", "cutoff", sc.cutoff))
        prog_file = "programmes.yaml"
        for prog in self.programmes.values():
            k = f"programmes.{prog.id}"
            out.append((prog_file, k, "programmes", prog))
            out += [(prog_file, f"{k}.duration_weeks.typical", "typical", prog.typical_weeks),
                    (prog_file, f"{k}.duration_weeks.maximum", "maximum", prog.maximum_weeks)]
            if prog.aftercare_weeks is not None:
                out.append((prog_file, f"{k}.aftercare_weeks", "aftercare_weeks",
                            prog.aftercare_weeks))
            for i, ph in enumerate(prog.phases):
                out += [(prog_file, f"{k}.phases[{i}]", "phases", ph),
                        (prog_file, f"{k}.phases[{i}].typical_weeks", "typical_weeks",
                         ph.typical_weeks)]
            out += [(prog_file, f"{k}.interventions[{i}]", "interventions", iv)
                    for i, iv in enumerate(prog.interventions)]
        out += [("events.yaml", f"event_types.{e.id}", "event_types", e)
                for e in self.event_types.values()]
        return out

    def untranslated(self, language: str = "nl") -> pd.DataFrame:
        """Every text field of the dictionary without a text in ``language``.

        The text fields are those of :data:`TEXT_FIELDS`, including the ``note`` of every
        sourced value and the ``population`` of every reliability.

        Parameters
        ----------
        language
            One of :data:`TEXT_LANGUAGES` (default Dutch, the language of the reports
            besides English).

        Returns
        -------
        DataFrame
            One row per missing text: ``file``, ``key`` (the key path, as in
            :class:`~effectstudy.errors.DictionaryError`) and ``text`` (the English text
            to translate).
        """
        return _untranslated(self._text_records(), language)

    def unverified(self, language: str = "en") -> pd.DataFrame:
        """Every number in the dictionary that has no published source (flagged).

        Parameters
        ----------
        language
            One of :data:`TEXT_LANGUAGES`: the language of the ``note`` column and of the
            norm group named in ``what`` (default English). A dictionary text without that
            language is shown in English followed by :data:`UNTRANSLATED_MARK`, never as
            if it were translated.

        Returns
        -------
        DataFrame
            One row per flagged number: ``where`` (file and record), ``what`` (which
            number), ``value`` and ``note`` (the dictionary's note, or why it is flagged).
        """
        _check_language(language)
        rows: list[dict[str, Any]] = []

        def add(where: str, what: str, value: Any, note: str | None = None) -> None:
            rows.append({"where": where, "what": what, "value": value, "note": note})

        def note(record: Texts | None, name: str = "note") -> str | None:
            return None if record is None else _shown(record.texts(name), language)

        for inst in self.instruments.values():
            for sc in inst.scales.values():
                where = f"instruments.yaml: {inst.id}.{sc.id}"
                if not sc.items.verified:
                    add(where, "items", sc.items.value, note(sc.items))
                if sc.range_source == UNVERIFIED:
                    add(where, "range", f"{sc.range_min:g}-{sc.range_max:g}",
                        note(sc.range) or _FIXED_NOTES["range"][language])
                if not sc.reliability.verified:
                    add(where, "reliability", sc.reliability.value, note(sc.reliability))
                for norm in sc.norms:
                    if not norm.verified:
                        group = _shown(norm.texts("group"), language)
                        add(where, f"norm ({group})", f"{norm.mean.value}/{norm.sd.value}",
                            note(norm.mean) or note(norm.sd))
                if not sc.norms:
                    add(where, "norm", None, _FIXED_NOTES["no_norm"][language])
                if sc.cutoff is not None and not sc.cutoff.verified:
                    add(where, "cutoff", sc.cutoff.value, note(sc.cutoff))
        for prog in self.programmes.values():
            where = f"programmes.yaml: {prog.id}"
            for label, sv in (("typical weeks", prog.typical_weeks),
                              ("maximum weeks", prog.maximum_weeks),
                              ("aftercare weeks", prog.aftercare_weeks)):
                if sv is not None and not sv.verified:
                    add(where, label, sv.value, note(sv))
            if prog.age_source == UNVERIFIED:
                add(where, "age range", None)
            for ph in prog.phases:
                if not ph.typical_weeks.verified:
                    add(f"{where}.{ph.id}", "typical weeks", ph.typical_weeks.value,
                        note(ph.typical_weeks))
        return pd.DataFrame(rows, columns=["where", "what", "value", "note"])


#: The notes :meth:`Dictionary.unverified` gives itself, per language.
_FIXED_NOTES = {
    "range": {"en": "range checks only", "nl": "alleen voor bereikcontroles"},
    "no_norm": {"en": "no norm group with a published source",
                "nl": "geen normgroep met een gepubliceerde bron"},
}


def _shown(texts: Mapping[str, str], language: str) -> str | None:
    """A text field (``{language: text}``) in ``language``; else its English text with
    :data:`UNTRANSLATED_MARK`; None when the field is empty."""
    if texts.get(language):
        return texts[language]
    english = texts.get("en")
    if not english:
        return None
    return f"{english} {UNTRANSLATED_MARK[language]}".rstrip()


def _untranslated(records: list[tuple[str, str, str, Texts]], language: str) -> pd.DataFrame:
    """The text fields of ``records`` (``(file, key, kind, record)``; see :data:`TEXT_FIELDS`)
    lacking ``language``."""
    _check_language(language)
    rows = []
    for file, key, kind, record in records:
        for name in TEXT_FIELDS[file][kind]:
            texts = record.texts(name)
            if texts and language not in texts:
                rows.append({"file": file, "key": f"{key}.{name}", "text": texts.get("en", "")})
    return pd.DataFrame(rows, columns=["file", "key", "text"])


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

    def texts(self, obj: Any, key: str, *, allow_none: bool = False
              ) -> tuple[str | None, dict[str, str]]:
        """A text field: a string (English only) or ``{en: ..., nl: ...}``.

        Returns the English text and every language given (``{}`` for an empty field).
        """
        if obj is None and allow_none:
            return None, {}
        if isinstance(obj, Mapping):
            m = self.mapping(obj, key, required=TEXT_LANGUAGES)
            given = {lang: str(self.text(m[lang], f"{key}.{lang}")) for lang in TEXT_LANGUAGES}
            return given["en"], given
        text = str(self.text(obj, key))
        return text, {"en": text}

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
        note, tr = self.texts(m.get("note"), f"{key}.note", allow_none=True)
        return SourcedValue(
            value=self.number(m["value"], f"{key}.value"),
            source=self.source_key(m["source"], f"{key}.source", refs),
            note=note, translations=_given(note=tr),
        )


def _given(**texts: dict[str, str]) -> dict[str, dict[str, str]]:
    """The ``translations`` of a record: the text fields given (empty ones left out)."""
    return {name: tr for name, tr in texts.items() if tr}


def _load_yaml(file: Path) -> Any:
    """One dictionary file, parsed safely; errors name the file, line and column only."""
    return read_yaml(file, not_found="dictionary file is missing", invalid="not valid YAML",
                     error=DictionaryError)


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
        label, tr = r.texts(m["label"], f"{k}.label")
        out[cid] = Construct(cid, str(label), r.choice(m["better"], f"{k}.better", DIRECTIONS),
                             translations={"label": tr})
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
        label, tr = r.texts(m["label"], f"{k}.label")
        occ[oid] = Occasion(oid, str(label),
                            int(r.number(m["order"], f"{k}.order", allow_none=False)),
                            None if wad is None else int(wad), translations={"label": tr})
    phases = {}
    for pid, entry in r.entries(data["phases"], "phases").items():
        k = f"phases.{pid}"
        m = r.mapping(entry, k, required=("label", "order"))
        label, tr = r.texts(m["label"], f"{k}.label")
        phases[pid] = CanonicalPhase(pid, str(label),
                                     int(r.number(m["order"], f"{k}.order", allow_none=False)),
                                     translations={"label": tr})
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
            range_note, range_tr = r.texts(rng.get("note"), f"{sk}.range.note", allow_none=True)
            scale_range = ScaleRange(float(lo), float(hi),
                                     r.source_key(rng["source"], f"{sk}.range.source", refs),
                                     range_note, translations=_given(note=range_tr))
            rel = r.mapping(s["reliability"], f"{sk}.reliability", required=("value", "type", "source"),
                            optional=("population", "note"))
            rel_value = r.number(rel["value"], f"{sk}.reliability.value")
            if rel_value is not None and not 0 < rel_value < 1:
                raise r.fail(f"reliability {rel_value} is not between 0 and 1", f"{sk}.reliability.value")
            population, pop_tr = r.texts(rel.get("population"), f"{sk}.reliability.population",
                                         allow_none=True)
            rel_note, rel_tr = r.texts(rel.get("note"), f"{sk}.reliability.note", allow_none=True)
            norms = []
            if not isinstance(s["norms"], list):
                raise r.fail("norms must be a list (possibly empty)", f"{sk}.norms")
            for i, nentry in enumerate(s["norms"]):
                nk = f"{sk}.norms[{i}]"
                n = r.mapping(nentry, nk, required=("group", "sex", "age_min", "age_max", "mean", "sd"))
                sd = r.sourced(n["sd"], f"{nk}.sd", refs)
                if sd.value is not None and sd.value <= 0:
                    raise r.fail("a norm SD must be positive", f"{nk}.sd.value")
                group, tr = r.texts(n["group"], f"{nk}.group")
                norms.append(Norm(str(group),
                                  r.choice(n["sex"], f"{nk}.sex", ("female", "male", "any")),
                                  r.number(n["age_min"], f"{nk}.age_min"),
                                  r.number(n["age_max"], f"{nk}.age_max"),
                                  r.sourced(n["mean"], f"{nk}.mean", refs), sd,
                                  translations={"group": tr}))
            cutoff = None
            if s["cutoff"] is not None:
                c = r.mapping(s["cutoff"], f"{sk}.cutoff", required=("value", "rule", "kind", "source"),
                              optional=("note",))
                cut_note, cut_tr = r.texts(c.get("note"), f"{sk}.cutoff.note", allow_none=True)
                cutoff = Cutoff(r.number(c["value"], f"{sk}.cutoff.value", allow_none=False),
                                r.choice(c["rule"], f"{sk}.cutoff.rule", (">=", ">", "<=", "<")),
                                r.text(c["kind"], f"{sk}.cutoff.kind"),
                                r.source_key(c["source"], f"{sk}.cutoff.source", refs), cut_note,
                                translations=_given(note=cut_tr))
            scales[sid] = Scale(
                instrument=iid, id=sid, items=r.sourced(s["items"], f"{sk}.items", refs),
                range_min=lo, range_max=hi, range_source=scale_range.source, range=scale_range,
                metric=r.choice(s["metric"], f"{sk}.metric", ("raw", "t_score")),
                better=r.choice(s["better"], f"{sk}.better", DIRECTIONS),
                reliability=Reliability(rel_value, r.text(rel["type"], f"{sk}.reliability.type"),
                                        r.source_key(rel["source"], f"{sk}.reliability.source", refs),
                                        population, rel_note,
                                        translations=_given(population=pop_tr, note=rel_tr)),
                norms=tuple(norms), cutoff=cutoff)
        name, tr = r.texts(m["name"], f"{k}.name")
        out[iid] = Instrument(iid, str(name), r.text(m["respondent"], f"{k}.respondent"),
                              r.number(ages["min"], f"{k}.ages.min"), r.number(ages["max"], f"{k}.ages.max"),
                              scales, translations={"name": tr})
    return out


def _programmes(folder: Path, refs: Mapping[str, Reference],
                canon: Mapping[str, CanonicalPhase]) -> dict[str, Programme]:
    r, body = _top(folder / "programmes.yaml", "programmes")
    out = {}
    for pid, entry in body.items():
        k = f"programmes.{pid}"
        m = r.mapping(entry, k, required=("name", "provider", "setting", "security", "duration_weeks",
                                          "age_range", "group", "reach", "phases"),
                      optional=("aims", "aftercare_weeks", "short_name", "interventions",
                                "components", "sex"))
        dur = r.mapping(m["duration_weeks"], f"{k}.duration_weeks", required=("typical", "maximum"))
        ages = r.mapping(m["age_range"], f"{k}.age_range", required=("min", "max", "source"))
        if not isinstance(m["phases"], list) or not m["phases"]:
            raise r.fail("phases must be a non-empty list, in order", f"{k}.phases")
        phases = []
        for i, ph in enumerate(m["phases"]):
            hk = f"{k}.phases[{i}]"
            p = r.mapping(ph, hk, required=("id", "label", "canonical", "typical_weeks"))
            label, tr = r.texts(p["label"], f"{hk}.label")
            phases.append(ProgrammePhase(r.text(p["id"], f"{hk}.id"), str(label),
                                         r.choice(p["canonical"], f"{hk}.canonical", tuple(canon)),
                                         r.sourced(p["typical_weeks"], f"{hk}.typical_weeks", refs),
                                         translations={"label": tr}))
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
            label, tr = r.texts(e["label"], f"{ik}.label")
            interventions.append(Intervention(r.text(e["id"], f"{ik}.id"), str(label),
                                              translations={"label": tr}))
        if len({iv.id for iv in interventions}) != len(interventions):
            raise r.fail("intervention ids must be unique", f"{k}.interventions")
        texts = {name: r.texts(m.get(name), f"{k}.{name}", allow_none=name == "aims")
                 for name in ("setting", "security", "group", "aims")}
        out[pid] = Programme(
            id=pid, name=r.text(m["name"], f"{k}.name"), provider=r.text(m["provider"], f"{k}.provider"),
            setting=str(texts["setting"][0]), security=str(texts["security"][0]),
            typical_weeks=r.sourced(dur["typical"], f"{k}.duration_weeks.typical", refs),
            maximum_weeks=r.sourced(dur["maximum"], f"{k}.duration_weeks.maximum", refs),
            age_min=r.number(ages["min"], f"{k}.age_range.min"),
            age_max=r.number(ages["max"], f"{k}.age_range.max"),
            age_source=r.source_key(ages["source"], f"{k}.age_range.source", refs),
            group=str(texts["group"][0]),
            reach=r.choice(m["reach"], f"{k}.reach", ("regional", "national")),
            phases=tuple(phases), aims=texts["aims"][0], interventions=tuple(interventions),
            sex=r.choice(m.get("sex", "mixed"), f"{k}.sex", PROGRAMME_SEXES),
            short_name=r.text(m.get("short_name"), f"{k}.short_name", allow_none=True),
            aftercare_weeks=None if after is None else r.sourced(after, f"{k}.aftercare_weeks", refs),
            translations={name: tr for name, (_, tr) in texts.items() if tr})
    return out


_FILE_REQUIRED = ("id", "path", "format", "layout", "client_id", "identifiers", "measures")
_FILE_OPTIONAL = ("sheet", "csv", "birth_date", "date_format", "client_fields", "occasions",
                  "occasion_column", "date_column", "phase_column", "session_column",
                  "sced_phase_column", "instrument_column", "scale_column", "score_column", "labels",
                  "client_id_format", "header_row", "missing_values", "sex_column", "events",
                  "columns")
_LAYOUT_NEEDS = {
    "wide": ("occasions",),
    "occasion_rows": ("occasions", "occasion_column"),
    "long": ("occasions", "occasion_column", "instrument_column", "scale_column", "score_column"),
    "series": ("session_column", "sced_phase_column"),
    "delivery": ("columns",),
    "fidelity_ratings": ("columns",),
}


def _source(file: Path, *, programmes: Mapping[str, Programme], instruments: Mapping[str, Instrument],
            constructs: Mapping[str, Construct], occasions: Mapping[str, Occasion],
            event_types: Mapping[str, EventType] | None = None) -> Source:
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
        integ = isinstance(fentry, Mapping) and fentry.get("layout") in INTEGRITY_LAYOUTS
        no_client = integ and fentry.get("layout") == "fidelity_ratings"  # staff, not clients
        f = r.mapping(fentry, fk, required=tuple(
            k for k in _FILE_REQUIRED if k != "measures" and not (no_client and k == "client_id"))
            if integ else _FILE_REQUIRED, optional=_FILE_OPTIONAL)
        if no_client and f.get("client_id"):
            raise r.fail("fidelity ratings hold no client id", f"{fk}.client_id")
        fmt = r.choice(f["format"], f"{fk}.format", FORMATS)
        layout = r.choice(f["layout"], f"{fk}.layout", LAYOUTS)
        integrity_columns: dict[str, str] = {}
        if integ:
            if f.get("measures"):
                raise r.fail(f"layout {layout!r} has no measures (it holds no scores)",
                             f"{fk}.measures")
            spec = INTEGRITY_COLUMNS[layout]
            cols = r.mapping(f["columns"], f"{fk}.columns",
                             required=tuple(k for k, req in spec.items() if req),
                             optional=tuple(k for k, req in spec.items() if not req))
            integrity_columns = {str(k): r.text(v, f"{fk}.columns.{k}") for k, v in cols.items()}
            f["measures"] = [None]  # placeholder: skipped below
        elif f.get("columns"):
            raise r.fail("'columns' only applies to layouts "
                         f"{', '.join(INTEGRITY_LAYOUTS)}", f"{fk}.columns")
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
        for j, mentry in enumerate([] if integ else f["measures"]):
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
                                     "interventions", "sex"))
        phase_ids = tuple(p.id for p in prog.phases)
        iv_ids = tuple(iv.id for iv in prog.interventions)
        for kind, mapping in labels.items():
            lk = f"{fk}.labels.{kind}"
            targets = {"phase": phase_ids, "last_phase": phase_ids, "end_reason": END_REASONS,
                       "sced_phase": ("A", "B"), "interventions": iv_ids,
                       "sex": CLIENT_SEXES}[kind]
            for lab, target in r.entries(mapping, lk).items():
                r.choice(target, f"{lk}.{lab}", targets)
        labels = {kind: {str(a): str(b) for a, b in mapping.items()} for kind, mapping in labels.items()}
        id_format = r.choice(f.get("client_id_format", "text"), f"{fk}.client_id_format",
                             CLIENT_ID_FORMATS)
        header_row = f.get("header_row", 1)
        if isinstance(header_row, bool) or not isinstance(header_row, int) or header_row < 1:
            raise r.fail(f"header_row must be a whole number >= 1 (the header's row in the "
                         f"export, 1-based), got {header_row!r}", f"{fk}.header_row")
        if fmt == "spss" and header_row != 1:
            raise r.fail("header_row does not apply to SPSS files", f"{fk}.header_row")
        missing = f.get("missing_values") or []
        if not isinstance(missing, list) or not all(
                isinstance(v, str) and v.strip() for v in missing):
            raise r.fail('missing_values must be a list of texts, e.g. ["n.v.t.", "-"]',
                         f"{fk}.missing_values")
        sex_column = r.text(f.get("sex_column"), f"{fk}.sex_column", allow_none=True)
        if sex_column and not labels.get("sex"):
            raise r.fail("a sex_column needs labels: sex: (export label -> female/male)",
                         f"{fk}.labels.sex")
        files.append(SourceFile(
            programme=prog_id, id=r.text(f["id"], f"{fk}.id"), path=r.text(f["path"], f"{fk}.path"),
            format=fmt, layout=layout,
            client_id="" if no_client else r.text(f["client_id"], f"{fk}.client_id"),
            identifiers=tuple(str(c) for c in f["identifiers"]), measures=tuple(measures),
            sheet=f.get("sheet"), csv=csv_opts, birth_date=f.get("birth_date"),
            date_format=f.get("date_format"), client_fields=cf, occasions=occ_maps,
            occasion_column=f.get("occasion_column"), date_column=f.get("date_column"),
            phase_column=f.get("phase_column"), session_column=f.get("session_column"),
            sced_phase_column=f.get("sced_phase_column"), instrument_column=f.get("instrument_column"),
            scale_column=f.get("scale_column"), score_column=f.get("score_column"), labels=labels,
            client_id_format=id_format, header_row=int(header_row),
            missing_values=tuple(v.strip() for v in missing), sex_column=sex_column,
            events=_source_events(r, f.get("events"), f"{fk}.events", event_types or {}),
            columns=integrity_columns))
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


def resolve_dictionary(path: str | Path | None = None) -> Path:
    """The dictionary folder to use: ``path``, else env ``EFFECTSTUDY_DICTIONARY``, else the
    shipped one.

    Every command and function that takes a dictionary resolves it here, so that one
    setting (``--dictionary DIR`` or the environment variable) applies everywhere.

    Parameters
    ----------
    path
        An explicit folder (``--dictionary``); None to fall back to the environment
        variable and then to :func:`default_path`.

    Returns
    -------
    Path
        The folder (not checked for existence here; :func:`load_dictionary` does).
    """
    if path is not None and str(path).strip():
        return Path(path).expanduser()
    env = os.environ.get(ENV_DICTIONARY, "").strip()
    if env:
        return Path(env).expanduser()
    return default_path()


def load_dictionary(path: str | Path | None = None) -> Dictionary:
    """Load and validate a data dictionary folder.

    Parameters
    ----------
    path
        Folder holding the YAML files; default: env ``EFFECTSTUDY_DICTIONARY``, else the
        dictionary shipped with the package (see :func:`resolve_dictionary`).

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
    folder = resolve_dictionary(path)
    if not folder.is_dir():
        where = ("" if path is not None or not os.environ.get(ENV_DICTIONARY, "").strip()
                 else f" (from {ENV_DICTIONARY})")
        raise DictionaryError(f"data dictionary folder not found{where}", file=folder)
    refs = _references(folder)
    constructs = _constructs(folder)
    occasions, phases = _occasions(folder)
    instruments = _instruments(folder, refs)
    programmes = _programmes(folder, refs, phases)
    sources = {}
    event_types = _event_types(folder)
    source_dir = folder / "sources"
    for file in sorted(source_dir.glob("*.yaml")) if source_dir.is_dir() else []:
        src = _source(file, programmes=programmes, instruments=instruments, constructs=constructs,
                      occasions=occasions, event_types=event_types)
        sources[src.programme] = src
    return Dictionary(path=folder, references=refs, constructs=constructs, occasions=occasions,
                      phases=phases, instruments=instruments, programmes=programmes, sources=sources,
                      sha256=_hash_folder(folder), event_types=event_types)


# --------------------------------------------------------------------------- #
# Programme integrity (issue 12): components and fidelity instruments
# --------------------------------------------------------------------------- #
#: How a component reaches clients: every client, or only the clients it is tailored to.
DELIVERIES = ("universal", "tailored")
#: Units of an intended dose.
DOSE_UNITS = ("sessions", "weeks", "minutes")
#: A component's phase may be ``all`` (the whole stay) instead of a phase id.
ALL_PHASES = "all"
#: What one fidelity rating is about.
FIDELITY_TARGETS = ("session", "team_month")
#: Who rates fidelity.
FIDELITY_RATERS = ("team", "external")


@dataclass(frozen=True)
class ComponentDose(Sourced, Texts):
    """Intended dose of a component: a sourced number and its unit; ``note`` is a text field."""

    value: float | None
    unit: str
    source: str
    note: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class Component(Texts):
    """One component of a programme as its description names it."""

    programme: str
    id: str
    label: str
    phase: str
    delivery: str
    dose: ComponentDose
    interventions: tuple[str, ...]
    translations: Mapping[str, Mapping[str, str]] = _translations()

    def applies_in(self, phase: str | None) -> bool:
        """Whether the component is prescribed in programme phase ``phase``."""
        return phase is not None and self.phase in (ALL_PHASES, phase)


@dataclass(frozen=True)
class FidelityItem(Texts):
    id: str
    component: str
    text: str  # type: ignore[assignment]  # the item's English text (Texts.text is shadowed)
    translations: Mapping[str, Mapping[str, str]] = _translations()


@dataclass(frozen=True)
class FidelityInstrument(Texts):
    """A fidelity checklist of one programme (``fidelity.yaml``)."""

    id: str
    name: str
    programme: str
    target: str
    raters: tuple[str, ...]
    score_min: float
    score_max: float
    scoring_source: str
    source: str
    items: tuple[FidelityItem, ...]
    translations: Mapping[str, Mapping[str, str]] = _translations()

    def item(self, item_id: str) -> FidelityItem:
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)


@dataclass(frozen=True)
class IntegrityDictionary:
    """Programme components and fidelity instruments, validated against the dictionary."""

    dictionary: Dictionary
    components: Mapping[str, tuple[Component, ...]]
    fidelity_instruments: Mapping[str, FidelityInstrument]

    def component(self, programme: str, component: str) -> Component:
        for c in self.components.get(programme, ()):
            if c.id == component:
                return c
        raise KeyError(f"unknown component {component!r} of programme {programme!r}")

    def instrument_for(self, programme: str) -> FidelityInstrument:
        for inst in self.fidelity_instruments.values():
            if inst.programme == programme:
                return inst
        raise KeyError(f"no fidelity instrument for programme {programme!r}")

    def untranslated(self, language: str = "nl") -> pd.DataFrame:
        """Text fields of the components and fidelity checklists without ``language``
        (same columns as :meth:`Dictionary.untranslated`)."""
        records: list[tuple[str, str, str, Texts]] = []
        for pid, comps in self.components.items():
            for i, c in enumerate(comps):
                ck = f"programmes.{pid}.components[{i}]"
                records += [("programmes.yaml", ck, "components", c),
                            ("programmes.yaml", f"{ck}.dose", "dose", c.dose)]
        for inst in self.fidelity_instruments.values():
            k = f"fidelity_instruments.{inst.id}"
            records.append(("fidelity.yaml", k, "fidelity_instruments", inst))
            records += [("fidelity.yaml", f"{k}.items[{i}]", "items", it)
                        for i, it in enumerate(inst.items)]
        return _untranslated(records, language)

    def components_frame(self) -> pd.DataFrame:
        """One row per programme component with its intended dose and its source."""
        rows = [{"programme": c.programme, "component": c.id, "label": c.label, "phase": c.phase,
                 "delivery": c.delivery, "dose": c.dose.value, "dose_unit": c.dose.unit,
                 "dose_source": c.dose.source, "interventions": ";".join(c.interventions)}
                for comps in self.components.values() for c in comps]
        return pd.DataFrame(rows, columns=["programme", "component", "label", "phase", "delivery",
                                           "dose", "dose_unit", "dose_source", "interventions"])


def _components(folder: Path, d: Dictionary) -> dict[str, tuple[Component, ...]]:
    file = folder / "programmes.yaml"
    r, body = _top(file, "programmes")
    out: dict[str, tuple[Component, ...]] = {}
    for pid, entry in body.items():
        prog = d.programmes[pid]
        k = f"programmes.{pid}.components"
        raw = entry.get("components") if isinstance(entry, Mapping) else None
        if raw is None:
            out[pid] = ()
            continue
        if not isinstance(raw, list):
            raise r.fail("components must be a list", k)
        phase_ids = (ALL_PHASES, *(p.id for p in prog.phases))
        iv_ids = tuple(iv.id for iv in prog.interventions)
        comps = []
        for i, centry in enumerate(raw):
            ck = f"{k}[{i}]"
            m = r.mapping(centry, ck, required=("id", "label", "phase", "delivery", "dose",
                                                "interventions"))
            dose = r.mapping(m["dose"], f"{ck}.dose", required=("value", "unit", "source"),
                             optional=("note",))
            value = r.number(dose["value"], f"{ck}.dose.value")
            if value is not None and value <= 0:
                raise r.fail("an intended dose must be positive", f"{ck}.dose.value")
            ivs = m["interventions"]
            if not isinstance(ivs, list) or not ivs:
                raise r.fail("interventions must be a non-empty list of intervention ids",
                             f"{ck}.interventions")
            label, tr = r.texts(m["label"], f"{ck}.label")
            dose_note, dose_tr = r.texts(dose.get("note"), f"{ck}.dose.note", allow_none=True)
            comps.append(Component(
                programme=pid, id=r.text(m["id"], f"{ck}.id"), label=str(label),
                phase=r.choice(m["phase"], f"{ck}.phase", phase_ids),
                delivery=r.choice(m["delivery"], f"{ck}.delivery", DELIVERIES),
                dose=ComponentDose(value, r.choice(dose["unit"], f"{ck}.dose.unit", DOSE_UNITS),
                                   r.source_key(dose["source"], f"{ck}.dose.source", d.references),
                                   dose_note, translations=_given(note=dose_tr)),
                interventions=tuple(r.choice(iv, f"{ck}.interventions[{j}]", iv_ids)
                                    for j, iv in enumerate(ivs)), translations={"label": tr}))
        if len({c.id for c in comps}) != len(comps):
            raise r.fail("component ids must be unique within a programme", k)
        out[pid] = tuple(comps)
    return out


def _fidelity_instruments(folder: Path, d: Dictionary,
                          components: Mapping[str, tuple[Component, ...]]
                          ) -> dict[str, FidelityInstrument]:
    file = folder / "fidelity.yaml"
    if not file.exists():
        return {}
    r, body = _top(file, "fidelity_instruments")
    out = {}
    for iid, entry in body.items():
        k = f"fidelity_instruments.{iid}"
        m = r.mapping(entry, k, required=("name", "programme", "target", "raters", "scoring",
                                          "source", "items"))
        pid = r.choice(m["programme"], f"{k}.programme", tuple(d.programmes))
        comp_ids = tuple(c.id for c in components.get(pid, ()))
        raters = m["raters"]
        if not isinstance(raters, list) or not raters:
            raise r.fail("raters must be a non-empty list", f"{k}.raters")
        sc = r.mapping(m["scoring"], f"{k}.scoring", required=("min", "max", "source"))
        lo = r.number(sc["min"], f"{k}.scoring.min", allow_none=False)
        hi = r.number(sc["max"], f"{k}.scoring.max", allow_none=False)
        if lo >= hi:
            raise r.fail(f"scoring min {lo:g} is not below max {hi:g}", f"{k}.scoring")
        if not isinstance(m["items"], list) or not m["items"]:
            raise r.fail("items must be a non-empty list", f"{k}.items")
        items = []
        for i, ientry in enumerate(m["items"]):
            ik = f"{k}.items[{i}]"
            it = r.mapping(ientry, ik, required=("id", "component", "text"))
            text, tr = r.texts(it["text"], f"{ik}.text")
            items.append(FidelityItem(r.text(it["id"], f"{ik}.id"),
                                      r.choice(it["component"], f"{ik}.component", comp_ids),
                                      str(text), translations={"text": tr}))
        if len({it.id for it in items}) != len(items):
            raise r.fail("item ids must be unique within an instrument", f"{k}.items")
        name, tr = r.texts(m["name"], f"{k}.name")
        out[iid] = FidelityInstrument(
            id=iid, name=str(name), programme=pid, translations={"name": tr},
            target=r.choice(m["target"], f"{k}.target", FIDELITY_TARGETS),
            raters=tuple(r.choice(x, f"{k}.raters[{j}]", FIDELITY_RATERS) for j, x in enumerate(raters)),
            score_min=lo, score_max=hi,
            scoring_source=r.source_key(sc["source"], f"{k}.scoring.source", d.references),
            source=r.source_key(m["source"], f"{k}.source", d.references), items=tuple(items))
    progs = [inst.programme for inst in out.values()]
    dup = sorted({p for p in progs if progs.count(p) > 1})
    if dup:
        raise r.fail(f"more than one fidelity instrument for programme {dup[0]!r}", "fidelity_instruments")
    return out


def load_integrity(path: str | Path | Dictionary | None = None) -> IntegrityDictionary:
    """Load programme components (``programmes.yaml``) and fidelity instruments (``fidelity.yaml``).

    Parameters
    ----------
    path
        A dictionary folder, an already loaded :class:`Dictionary`, or None for the
        shipped dictionary.

    Returns
    -------
    IntegrityDictionary
        Components per programme (empty tuple when a programme lists none) and the
        fidelity instruments by id (empty when ``fidelity.yaml`` is absent).

    Raises
    ------
    DictionaryError
        On an unknown key, a missing key, a phase, intervention, component or
        programme id defined nowhere, naming the file and the key path.
    """
    d = path if isinstance(path, Dictionary) else load_dictionary(path)
    components = _components(d.path, d)
    return IntegrityDictionary(dictionary=d, components=components,
                               fidelity_instruments=_fidelity_instruments(d.path, d, components))


# --------------------------------------------------------------------------- #
# Events (issue 13): absconding, safety reports, transfer, end of care
# --------------------------------------------------------------------------- #
#: The event type of absconding episodes (start and return); required in ``events.yaml``.
ABSCONDING = "absconding"
#: The event type that ends care (with its reason); required in ``events.yaml``.
END_OF_CARE = "end_of_care"
#: The placeholder of a numbered event column template (``weglopen_start_{n}``).
EVENT_NUMBER = "{n}"


@dataclass(frozen=True)
class EventType(Texts):
    """One event type of ``events.yaml`` with its Dutch and English labels.

    ``episode`` types have a start and an end (absconding: start and return); the others
    are dated points. ``end_of_care`` may carry an end reason.
    """

    id: str
    label_nl: str
    label_en: str
    episode: bool
    description: str | None = None
    translations: Mapping[str, Mapping[str, str]] = _translations()

    @property
    def label(self) -> str:
        """The English label (``text("label", "nl")`` gives the Dutch one)."""
        return self.label_en

    def texts(self, name: str) -> dict[str, str]:
        if name == "label" and not self.translations.get("label"):
            return {"en": self.label_en, "nl": self.label_nl}
        return super().texts(name)


@dataclass(frozen=True)
class EventColumns:
    """Export columns of one event type (``events: columns:``).

    ``start``/``end`` are column names or templates holding ``{n}`` (episode 1, 2, ...);
    ``end`` only for episode types, ``reason`` (mapped with ``labels: end_reason:``) only
    for ``end_of_care``.
    """

    type: str
    start: str
    end: str | None = None
    reason: str | None = None

    @property
    def numbered(self) -> bool:
        return EVENT_NUMBER in self.start


@dataclass(frozen=True)
class EventRows:
    """A long events export: one event per row (``events: rows:``)."""

    type_column: str
    start_column: str
    labels: Mapping[str, str]
    end_column: str | None = None
    reason_column: str | None = None


@dataclass(frozen=True)
class SourceEvents:
    """The ``events:`` block of a source file: wide column templates and/or event rows."""

    columns: tuple[EventColumns, ...] = ()
    rows: EventRows | None = None


def _event_types(folder: Path) -> dict[str, EventType]:
    """``events.yaml`` (optional file): event type id -> :class:`EventType`."""
    file = folder / "events.yaml"
    if not file.exists():
        return {}
    r, body = _top(file, "event_types")
    out = {}
    for tid, entry in body.items():
        k = f"event_types.{tid}"
        # ``label: {en, nl}``; the older ``label_nl`` + ``label_en`` pair is still read
        m = r.mapping(entry, k, required=("episode",),
                      optional=("label", "label_nl", "label_en", "description"))
        if not isinstance(m["episode"], bool):
            raise r.fail(f"episode must be true or false, got {m['episode']!r}", f"{k}.episode")
        if "label" in m:
            if "label_nl" in m or "label_en" in m:
                raise r.fail("give 'label' or the older 'label_nl' and 'label_en', not both",
                             f"{k}.label")
            _, label = r.texts(m["label"], f"{k}.label")
        else:
            for old in ("label_en", "label_nl"):
                if old not in m:
                    raise r.fail("missing required key 'label' ({en: ..., nl: ...})", f"{k}.label")
            label = {"en": str(r.text(m["label_en"], f"{k}.label_en")),
                     "nl": str(r.text(m["label_nl"], f"{k}.label_nl"))}
        description, dtr = r.texts(m.get("description"), f"{k}.description", allow_none=True)
        out[str(tid)] = EventType(str(tid), label.get("nl", label["en"]), label["en"],
                                  m["episode"], description,
                                  translations={"label": label,
                                                **({"description": dtr} if dtr else {})})
    for need, episode in ((ABSCONDING, True), (END_OF_CARE, False)):
        if need not in out:
            raise r.fail(f"event type {need!r} must be declared", f"event_types.{need}")
        if out[need].episode is not episode:
            raise r.fail(f"event type {need!r} must have episode: {str(episode).lower()}",
                         f"event_types.{need}.episode")
    return out


def _source_events(r: _Reader, obj: Any, key: str,
                   types: Mapping[str, EventType]) -> SourceEvents | None:
    """Validate a source file's ``events:`` block against ``events.yaml``."""
    if obj is None:
        return None
    if not types:
        raise r.fail("an events block needs event types in events.yaml", key)
    m = r.mapping(obj, key, optional=("columns", "rows"))
    if not m:
        raise r.fail("an events block needs 'columns' and/or 'rows'", key)
    tids = tuple(types)
    columns = []
    raw_cols = m.get("columns") or []
    if not isinstance(raw_cols, list):
        raise r.fail("columns must be a list of {type, start, end, reason}", f"{key}.columns")
    for i, centry in enumerate(raw_cols):
        ck = f"{key}.columns[{i}]"
        c = r.mapping(centry, ck, required=("type", "start"), optional=("end", "reason"))
        tid = r.choice(c["type"], f"{ck}.type", tids)
        start = r.text(c["start"], f"{ck}.start")
        end = r.text(c.get("end"), f"{ck}.end", allow_none=True)
        reason = r.text(c.get("reason"), f"{ck}.reason", allow_none=True)
        if end is not None and not types[tid].episode:
            raise r.fail(f"event type {tid!r} is not an episode (episode: false): no 'end'",
                         f"{ck}.end")
        if reason is not None and tid != END_OF_CARE:
            raise r.fail(f"'reason' only applies to {END_OF_CARE!r}", f"{ck}.reason")
        for name, col in (("start", start), ("end", end), ("reason", reason)):
            if col is not None and "{" in col.replace(EVENT_NUMBER, ""):
                raise r.fail(f"the only placeholder of an event column is {EVENT_NUMBER}",
                             f"{ck}.{name}")
        numbered = EVENT_NUMBER in start
        for name, col in (("end", end), ("reason", reason)):
            if col is not None and (EVENT_NUMBER in col) != numbered:
                raise r.fail(f"'{name}' and 'start' must both hold {EVENT_NUMBER} or neither",
                             f"{ck}.{name}")
        columns.append(EventColumns(tid, start, end, reason))
    rows = None
    if m.get("rows") is not None:
        rk = f"{key}.rows"
        rm = r.mapping(m["rows"], rk, required=("type_column", "start_column", "labels"),
                       optional=("end_column", "reason_column"))
        labels = {}
        for lab, target in r.entries(rm["labels"], f"{rk}.labels").items():
            labels[str(lab)] = r.choice(target, f"{rk}.labels.{lab}", tids)
        if not labels:
            raise r.fail("labels must map the export's event texts onto event types",
                         f"{rk}.labels")
        rows = EventRows(r.text(rm["type_column"], f"{rk}.type_column"),
                         r.text(rm["start_column"], f"{rk}.start_column"), labels,
                         r.text(rm.get("end_column"), f"{rk}.end_column", allow_none=True),
                         r.text(rm.get("reason_column"), f"{rk}.reason_column", allow_none=True))
    return SourceEvents(tuple(columns), rows)
