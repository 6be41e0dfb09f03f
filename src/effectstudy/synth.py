"""Seeded synthetic raw exports of the six programmes, with their ground truth.

:func:`generate` writes, for every programme in the data dictionary, the export
files exactly as ``data_dictionary/sources/<programme>.yaml`` describes them
(Excel wide workbooks, SPSS ``.sav`` files with value labels, a Dutch-locale CSV,
a long CSV and dense single-case series CSVs), and returns a :class:`SynthResult`
with the truth behind every written number, so the harmoniser and the analyses
can be tested end to end without real client data.

Long because one data-generating model has to write four export formats and four layouts
with realistic injected errors and keep the exact truth behind every written cell; events
and integrity data already live in :mod:`effectstudy.synth_events` and
:mod:`effectstudy.synth_integrity`.

Data-generating model
---------------------
Per client and construct a latent *severity* ``s`` (in SD units of the general
population; positive = worse) starts at intake around +1.25 (a clinical sample,
1-1.5 SD worse than the norm; constructs correlate through a shared client
factor) and improves with the weeks in care by a programme-specific effect
(scaled per client; absconding clients improve less), with a small relapse after
discharge. At every measurement a measurement error is added. The instrument
score is then::

    true_z = s      if the scale's raw score is better when lower
    true_z = -s     if it is better when higher
    raw    = clip(round(mean + sd * true_z), range_min, range_max)

``mean``/``sd`` are the dictionary's *verified* norm for the client's age at the
measurement (:meth:`~effectstudy.dictionary.Scale.norm_for`), else a verified
norm of the same scale for another age group, else a clearly labelled
generator-only value from :data:`GENERATOR_ONLY_NORMS` (never written into the
dictionary and never to be used as a norm). ``truth.expected_z`` is
``(raw - norm mean) / norm sd`` only where the dictionary has a verified norm
for the client's age at that measurement (age in years = days since birth /
365.25; measurement dates are kept at least 3 days away from a birthday, so any
reasonable age rule agrees), else NaN. It is on the scale's raw direction
(``truth.expected_z_better`` is the same with higher = better).

File conventions
----------------
* Excel: header in row 1, one row per client (``wide``); dates are real date
  cells (``yyyy-mm-dd``); identifiers and client ids as declared.
* SPSS: occasions, phases, last phase and end reasons are integer codes
  ``1..k`` in the YAML label order, with value labels equal to the YAML label
  keys; dates are SPSS dates; numeric client ids.
* CSV: written with the declared separator, decimal mark and encoding; dates in
  the declared ``date_format``; cp1252 files use CRLF line ends.
* The phase column is empty at follow-up occasions of programmes without an
  aftercare phase (no phase after discharge).
* Client-level fields (weeks in care, last phase, end reason, interventions,
  fidelity) are repeated on every row of the client. Interventions are drawn from the
  programme's closed vocabulary (``programmes.yaml``) and written with the export's
  labels (``labels.interventions``), ``;``-joined; ``clients.interventions`` holds the
  ids, sorted and ``;``-joined, as the harmoniser gives them.
* A missed occasion is an absent row (row layouts), blank cells (wide) or absent
  rows (long); a single missing questionnaire is a blank cell (absent long row).

Injected errors (``inject_errors=True``)
----------------------------------------
A few bad rows/cells per file, each listed in :attr:`SynthResult.injected` with
the row number as the reader counts it (CSV/Excel: spreadsheet row, header =
row 1, first data row = 2; SPSS: 1-based case number). Kinds:

``out_of_range``
    a score above the scale's range, in an otherwise empty slot (an occasion
    the client missed), so no valid score is lost whatever the rejection grain
    (series: replaces a session's rating, e.g. ``12,5`` on a 0-10 rating);
``unparseable_date``
    an impossible date (day 31 of April) in the declared format, on a missed
    occasion (series: replaces a session's date);
``unknown_occasion``
    an extra row with an occasion label the YAML does not know (SPSS: an
    integer code without a value label);
``duplicate``
    an exact copy of a valid row (wide: of a client's whole row), inserted right
    after it: a duplicate client x occasion x instrument. The first copy is
    valid and is in ``truth``; the listed row is the second copy.
``unknown_intervention``
    free text naming the client (name and BSN) appended to the interventions cell
    of one valid row of a client without another injected error: the harmoniser
    keeps the declared items and logs the rest (0 scores) without repeating it.

Nothing listed in ``injected`` is in ``truth`` or ``series_truth`` (except the
original of a duplicate); with ``inject_errors=False`` every written row is valid.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.dictionary import (
    INTEGRITY_LAYOUTS,
    Dictionary,
    Programme,
    Scale,
    SourceFile,
    load_dictionary,
)

__all__ = [
    "BASE_DATE",
    "DEFAULT_N_CLIENTS",
    "EXPORT_DATE",
    "GENERATOR_ONLY_NORMS",
    "SynthResult",
    "bsn_is_valid",
    "generate",
]

#: First possible intake date (all dates derive from it; never today's date).
BASE_DATE = dt.date(2023, 1, 9)
#: Date of the export: later occasions (e.g. late follow-ups) are not yet measured.
EXPORT_DATE = dt.date(2026, 3, 31)

#: Clients per programme in the outcome files (small, unequal groups).
DEFAULT_N_CLIENTS: dict[str, int] = {
    "pinq_crisis": 12,
    "veilig_lima": 9,
    "pinq_gesloten": 16,
    "egoversterkend": 25,
    "intermetzo": 6,
    "hoenderloo": 4,
}

#: GENERATOR-ONLY population mean and SD of scales without a verified norm.
#: Plausible values to make synthetic raw scores look realistic; they are *not*
#: norms, have no published source and must never be copied into the dictionary.
GENERATOR_ONLY_NORMS: dict[tuple[str, str], tuple[float, float]] = {
    ("CRIES-13", "total"): (14.0, 11.0),
    ("KJTS", "total"): (12.0, 9.0),
    ("RSES", "total"): (20.0, 5.0),
    ("CBSA", "global_self_worth"): (15.0, 3.0),
    ("HoNOSCA", "total"): (6.0, 6.0),
    ("INCIDENTS", "count"): (0.6, 1.2),
    ("KIDSCREEN-27", "psychological_wellbeing_t"): (50.0, 10.0),
    ("KIDSCREEN-27", "parents_autonomy_t"): (50.0, 10.0),
    ("KIDSCREEN-27", "school_environment_t"): (50.0, 10.0),
    ("SUD-week", "rating"): (3.0, 2.0),
}

#: Generator-only age range for programmes whose dictionary entry has none.
_FALLBACK_AGES = (12.0, 18.0)

# Programme-specific generator settings (all generator-only): mean improvement
# over a full planned stay (SD units) and client-id style. The interventions a client
# receives are drawn from the programme's closed vocabulary in the dictionary.
_SETTINGS: dict[str, dict[str, Any]] = {
    "pinq_crisis": {"effect": 0.35, "id": ("str", "SPI-{year}-{num:04d}")},
    "veilig_lima": {"effect": 0.8, "id": ("int", 310000)},
    "pinq_gesloten": {"effect": 0.6, "id": ("str", "DK-{num:06d}")},
    "egoversterkend": {"effect": 0.9, "id": ("str", "TJ{num:05d}")},
    "intermetzo": {"effect": 0.7, "id": ("int", 520000)},
    "hoenderloo": {"effect": 0.5, "id": ("int", 740000), "series_decimals": 1},
}
_DEFAULT_SETTINGS: dict[str, Any] = {
    "effect": 0.6, "id": ("int", 900000),
}

_FIRST_NAMES = [
    "Anna", "Sanne", "Lisa", "Emma", "Julia", "Fleur", "Iris", "Lotte", "Noa", "Tess", "Sara",
    "Eva", "Milou", "Nina", "Femke", "Roos", "Demi", "Kim", "Romy", "Britt", "Chantal", "Esmee",
    "Zoë", "Noëlle", "Chloë", "Anaïs", "Danique", "Shanice", "Naomi", "Yasmina", "Fatima",
    "Samira", "Melissa", "Jill", "Kelly", "Maud", "Floor", "Lieke", "Merel", "Jasmijn", "Ilse",
    "Sophie", "Aylin", "Dilara", "Kiki", "Rosalie", "Bo", "Isa", "Mila", "Renée", "Inès",
]
_LAST_NAMES = [
    "de Vries", "Jansen", "van den Berg", "Bakker", "Visser", "Smit", "Meijer", "de Boer",
    "Mulder", "de Groot", "Bos", "Vos", "Peters", "Hendriks", "van Leeuwen", "Dekker",
    "Brouwer", "de Wit", "Dijkstra", "Smits", "de Graaf", "van der Meer", "van der Linden",
    "Kok", "Jacobs", "de Haan", "Vermeulen", "van den Heuvel", "van der Veen", "van den Broek",
    "de Bruijn", "van der Heijden", "Schouten", "van Beek", "Willems", "van Vliet",
    "van de Ven", "Hoekstra", "Maas", "Verhoeven", "Koster", "van Dam", "Prins", "Blom",
    "Huisman", "Öztürk", "El Amrani", "Bouzid", "Kramer", "Postma", "Wijnands", "Dumitrescu",
]

_END_REASONS = ("completed", "absconded", "transferred")
_IDENTITY_STREAM = 11
_INJECT_STREAM = 7
_MISSED_P = 0.10          # a scheduled in-care occasion is missed
_ITEM_MISSING_P = 0.04    # one questionnaire missing at an attended occasion


# --------------------------------------------------------------------------- #
# Result
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate` wrote and the truth behind it.

    Attributes
    ----------
    files
        Every written file (absolute paths), in source order.
    truth
        One row per valid written outcome score: ``programme, file, row, client_id,
        occasion_label, occasion, date, week, age, phase, canonical_phase,
        instrument, scale, construct, column, severity, true_z, raw, expected_z,
        expected_z_better, gen_mean, gen_sd, gen_norm``. ``client_id`` is the raw
        id as a string (SPSS numeric ids without ``.0``), ``row`` the reader's row
        number, ``occasion_label`` the label as written, ``occasion`` canonical,
        ``date`` the measurement date, ``week`` days since intake / 7 (the intake
        measurement is taken on the day of admission, so this equals the weeks
        since the intake measurement when the file has one), ``age``
        years at the measurement (days / 365.25), ``phase`` the programme phase id
        (None after discharge without an aftercare phase), ``column`` the source
        column (long layout: ``"<instrument label>/<scale label>"``),
        ``severity`` the latent value without measurement error (positive =
        worse), ``true_z`` the standardised score before rounding (scale raw
        direction), ``raw`` the value written, ``expected_z`` see module notes,
        ``gen_norm`` ``"verified"``, ``"verified_other_age"`` or ``"generator_only"``.
    clients
        One row per client with the moderators in canonical values:
        ``programme, client_id, age_at_intake, intake_date, planned_weeks,
        weeks_in_care, last_phase, end_reason, interventions, fidelity, in_series,
        true_improvement`` (the client's latent improvement in SD units over a full
        planned stay; absconding halves it).
    series_truth
        One row per valid written single-case session: ``programme, file, row,
        client_id, session, date, phase ("A"/"B"), phase_label, baseline_length,
        level_a, true_shift, true_level, outcome, instrument, scale, column``.
    injected
        The deliberately bad rows/cells: ``programme, file, format, row, column,
        kind, value, client_id, occasion_label``.
    identifiers
        Every direct identifier value written: ``programme, client_id, kind,
        format, value`` with kinds ``name`` (full name), ``first_name`` and
        ``last_name`` (only for programmes whose export splits the name),
        ``birth_date`` (ISO ``%Y-%m-%d`` and Dutch ``%d-%m-%Y``), ``bsn`` and
        ``client_id`` (the raw id as text).
    """

    files: list[Path]
    truth: pd.DataFrame
    clients: pd.DataFrame
    series_truth: pd.DataFrame
    injected: pd.DataFrame
    identifiers: pd.DataFrame
    #: Events written into the exports, with the true hazards and the scores dropped after
    #: absconding (see :mod:`effectstudy.synth_events`).
    events: pd.DataFrame = field(default_factory=pd.DataFrame)
    event_truth: dict[str, Any] = field(default_factory=dict)
    dropped_scores: pd.DataFrame = field(default_factory=pd.DataFrame)


# --------------------------------------------------------------------------- #
# Internal records
# --------------------------------------------------------------------------- #
@dataclass
class _Client:
    programme: str
    raw_id: int | str
    first_name: str
    last_name: str
    birth: dt.date
    bsn: str
    age: float
    intake: dt.date
    planned: int
    weeks: int
    end_reason: str
    last_phase: str
    interventions: tuple[str, ...]  # intervention ids of the dictionary, in menu order
    g: float
    s0: dict[str, float] = field(default_factory=dict)
    delta: float = 0.0
    relapse: dict[str, float] = field(default_factory=dict)

    @property
    def client_id(self) -> str:
        return str(self.raw_id)

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"


@dataclass
class _Slot:
    """One (client, occasion label) of a file, attended or not."""

    label: str
    occasion: str
    date: dt.date
    week: float
    phase: str | None
    canonical_phase: str | None
    status: str  # "attended", "missed", "not_done", "after_end", "censored"


# --------------------------------------------------------------------------- #
# Small helpers
# --------------------------------------------------------------------------- #
def bsn_is_valid(bsn: str | int) -> bool:
    """Whether a 9-digit number passes the Dutch BSN 11-proof.

    Parameters
    ----------
    bsn
        The number, as text or integer (leading zeros allowed in text).

    Returns
    -------
    bool
        True when ``9*d1 + 8*d2 + ... + 2*d8 - d9`` is divisible by 11 and not 0.
    """
    s = str(bsn).strip()
    if len(s) != 9 or not s.isdigit():
        return False
    digits = [int(c) for c in s]
    total = sum((9 - i) * d for i, d in enumerate(digits[:8])) - digits[8]
    return total % 11 == 0 and total != 0


def _make_bsn(rng: np.random.Generator, taken: set[str]) -> str:
    while True:
        digits = [int(rng.integers(1, 7))] + [int(x) for x in rng.integers(0, 10, size=7)]
        check = sum((9 - i) * d for i, d in enumerate(digits)) % 11
        if check == 10:
            continue
        bsn = "".join(map(str, digits + [check]))
        if bsn not in taken and bsn_is_valid(bsn):
            taken.add(bsn)
            return bsn


def _stream(seed: int, *keys: int | str) -> np.random.Generator:
    """An independent generator for (seed, keys...); strings hashed with crc32."""
    words = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return np.random.default_rng(words)


def _settings(programme: str) -> dict[str, Any]:
    return {**_DEFAULT_SETTINGS, **_SETTINGS.get(programme, {})}


def _age_years(birth: dt.date, when: dt.date) -> float:
    return (when - birth).days / 365.25


def _away_from_birthday(when: dt.date, birth: dt.date) -> dt.date:
    """Shift a date by 3 days when it lies within 2 days of a birthday."""
    for year in (when.year - 1, when.year, when.year + 1):
        try:
            bday = birth.replace(year=year)
        except ValueError:  # 29 February
            bday = dt.date(year, 3, 1)
        if abs((when - bday).days) <= 2:
            return when + dt.timedelta(days=3 + (bday - when).days)
    return when


def _invert(labels: Mapping[str, str]) -> dict[str, str]:
    """target -> first label (the YAML maps label -> target)."""
    out: dict[str, str] = {}
    for lab, target in labels.items():
        out.setdefault(target, lab)
    return out


def _impossible_date(date_format: str | None, year: int) -> str:
    """Day 31 of April, in the file's date format (a realistic typo)."""
    fmt = date_format or "%d-%m-%Y"
    return fmt.replace("%Y", f"{year:04d}").replace("%m", "04").replace("%d", "31")


def _unknown_label(labels: Sequence[str]) -> str:
    """A plausible occasion label that is not one of ``labels``."""
    for lab in labels:
        m = re.match(r"^(.*?)(\d+)$", lab)
        if m:
            stem = m.group(1)
            nums = [int(mm.group(1)) for x in labels if (mm := re.match(rf"^{re.escape(stem)}(\d+)$", x))]
            cand = f"{stem}{max(nums) + 1}"
            if cand not in labels:
                return cand
    cand = f"{labels[-1]} 2"
    while cand in labels:
        cand += "b"
    return cand


def _identifier_kind(column: str, file: SourceFile) -> str:
    low = column.lower()
    if column == file.birth_date:
        return "birth_date"
    if "bsn" in low:
        return "bsn"
    if "voornaam" in low or "first" in low:
        return "first_name"
    if "achternaam" in low or "last" in low or "surname" in low:
        return "last_name"
    if "geb" in low or "birth" in low:
        return "birth_date"
    return "name"


def _fmt_number(value: Any, decimal: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return np.format_float_positional(float(value), trim="-").replace(".", decimal)
    return str(value)


# --------------------------------------------------------------------------- #
# Clients and their latent trajectories
# --------------------------------------------------------------------------- #
def _programme_constructs(d: Dictionary, programme: str) -> list[str]:
    seen: list[str] = []
    for f in d.sources[programme].files:
        for m in f.measures:
            if m.construct not in seen:
                seen.append(m.construct)
    return seen


def _phase_plan(prog: Programme, planned: int) -> list[tuple[str, float]]:
    """(phase id, end week) of the in-care phases scaled to the planned stay."""
    incare = [p for p in prog.phases if p.canonical != "aftercare"] or list(prog.phases)
    weights = [p.typical_weeks.value or 1.0 for p in incare]
    total = float(sum(weights))
    ends, acc = [], 0.0
    for p, w in zip(incare, weights, strict=True):
        acc += w
        ends.append((p.id, planned * acc / total))
    return ends


def _phase_at(prog: Programme, client: _Client, week: float) -> str | None:
    if week > client.weeks + 0.5:  # after discharge
        after = [p for p in prog.phases if p.canonical == "aftercare"]
        return after[0].id if after else None
    w = min(week, client.weeks - 0.01)
    for pid, end in _phase_plan(prog, client.planned):
        if w < end:
            return pid
    return _phase_plan(prog, client.planned)[-1][0]


def _intervention_menu(d: Dictionary, programme: str) -> list[str]:
    """Intervention ids of a programme, in the order of its first export's label map."""
    ids = [iv.id for iv in d.programmes[programme].interventions]
    for f in d.sources[programme].files if programme in d.sources else ():
        mapped = list(dict.fromkeys(t for t in f.labels.get("interventions", {}).values()
                                    if t in ids))
        if mapped:
            return mapped + [i for i in ids if i not in mapped]
    return ids


def _intervention_text(file: SourceFile, ids: Sequence[str]) -> str:
    """The interventions cell as the export writes it (its labels, ``;``-joined)."""
    label = _invert(file.labels.get("interventions", {}))
    return ";".join(label.get(i, i) for i in ids)


def _make_clients(d: Dictionary, programme: str, n: int, rng: np.random.Generator,
                  ident: np.random.Generator, names_taken: set[str],
                  bsn_taken: set[str]) -> list[_Client]:
    prog = d.programmes[programme]
    st = _settings(programme)
    lo = prog.age_min if prog.age_min is not None else _FALLBACK_AGES[0]
    hi = prog.age_max if prog.age_max is not None else _FALLBACK_AGES[1]
    typical = prog.typical_weeks.value or 26.0
    maximum = prog.maximum_weeks.value or typical * 1.5
    constructs = _programme_constructs(d, programme)

    n_drop = max(1, int(round(n * rng.uniform(0.2, 0.35)))) if n >= 3 else 0
    reasons = ["completed"] * (n - n_drop)
    if n_drop:
        drops = ["absconded"] + [str(x) for x in rng.choice(["absconded", "transferred"],
                                                            size=n_drop - 1, p=[0.55, 0.45])]
        if n_drop >= 2 and "transferred" not in drops:
            drops[-1] = "transferred"
        reasons += drops
    reasons = [reasons[i] for i in rng.permutation(n)]

    kind, spec = st["id"]
    used_nums: set[int] = set()
    clients = []
    for i in range(n):
        # identity (from the identity stream: unique names and BSNs over all programmes)
        while True:
            first = str(ident.choice(_FIRST_NAMES))
            last = str(ident.choice(_LAST_NAMES))
            if f"{first} {last}" not in names_taken:
                names_taken.add(f"{first} {last}")
                break
        bsn = _make_bsn(ident, bsn_taken)

        intake = BASE_DATE + dt.timedelta(days=int(rng.integers(0, 600)))
        span = hi + 1 - lo
        age = lo + span * float(rng.beta(2.2, 2.0)) * 0.99  # margin: the intake may move 5 days
        birth = intake - dt.timedelta(days=int(round(age * 365.25)))
        intake = _away_from_birthday(intake, birth)
        age = _age_years(birth, intake)

        planned = int(np.clip(round(typical * float(rng.lognormal(0.0, 0.2))),
                              max(2, round(0.5 * typical)), maximum))
        reason = reasons[i]
        if reason == "completed":
            weeks = planned
        else:
            weeks = max(1, int(round(planned * rng.uniform(0.1, 0.75))))

        while True:  # unique within the programme; ids of programmes never overlap
            num = int(rng.integers(1, 90_000 if kind == "int" else 10_000))
            if num not in used_nums:
                used_nums.add(num)
                break
        raw_id: int | str = (int(spec) + num if kind == "int"
                             else str(spec).format(year=intake.year, num=num))

        menu = _intervention_menu(d, programme)
        interventions: tuple[str, ...] = ()
        if len(menu) >= 2:
            k = int(rng.integers(2, min(4, len(menu)) + 1)) - (1 if reason != "completed" else 0)
            chosen = sorted(rng.choice(len(menu), size=max(1, k), replace=False))
            interventions = tuple(menu[j] for j in chosen)

        g = float(rng.normal())
        client = _Client(programme, raw_id, first, last, birth, bsn, age, intake, planned, weeks,
                         reason, "", interventions, g)
        client.s0 = {c: float(1.25 + 0.35 * g + 0.4 * rng.normal()) for c in constructs}
        mult = max(0.0, float(rng.normal(1.0, 0.35)))
        client.delta = st["effect"] * mult * (0.5 if reason == "absconded" else 1.0)
        client.relapse = {c: float(rng.normal(0.15, 0.25)) for c in constructs}
        clients.append(client)

    for c in clients:
        if c.end_reason == "completed":
            after = [p for p in prog.phases if p.canonical == "aftercare"]
            c.last_phase = after[0].id if after else _phase_plan(prog, c.planned)[-1][0]
        else:
            c.last_phase = _phase_at(prog, c, c.weeks - 0.01) or prog.phases[0].id
    return clients


def _severity(client: _Client, construct: str, week: float) -> float:
    frac = min(max(week, 0.0) / max(client.planned, 1), 1.0)
    if week <= client.weeks + 0.5:
        return client.s0[construct] - client.delta * frac ** 0.7
    at_end = client.s0[construct] - client.delta * min(client.weeks / max(client.planned, 1), 1.0) ** 0.7
    years_after = (week - client.weeks) / 52.0
    return at_end + client.relapse[construct] * min(1.0, 2 * years_after)


def _gen_norm(scale: Scale, age: float) -> tuple[float, float, str]:
    norm = scale.norm_for(age)
    if norm is not None:
        return float(norm.mean.value), float(norm.sd.value), "verified"
    for nm in scale.norms:
        if nm.verified:
            return float(nm.mean.value), float(nm.sd.value), "verified_other_age"
    key = (scale.instrument, scale.id)
    if key in GENERATOR_ONLY_NORMS:
        m, s = GENERATOR_ONLY_NORMS[key]
        return m, s, "generator_only"
    mid = (scale.range_min + scale.range_max) / 2
    return mid, (scale.range_max - scale.range_min) / 6, "generator_only"


# --------------------------------------------------------------------------- #
# Occasion schedule
# --------------------------------------------------------------------------- #
def _schedule(d: Dictionary, file: SourceFile, client: _Client,
              rng: np.random.Generator) -> list[_Slot]:
    prog = d.programmes[file.programme]
    labels = list(file.occasions)
    during = [lab for lab in labels if file.occasions[lab].occasion == "during"]
    fu_rank = 0
    prev_fu = False
    slots = []
    for lab in labels:
        om = file.occasions[lab]
        occ = om.occasion
        status = "attended"
        if occ == "intake":
            days = 0  # measured at admission: the anchor of all weeks
        elif occ == "during":
            if om.week is not None:
                target = om.week
            else:
                k = during.index(lab) + 1
                target = client.planned * k / (len(during) + 1)
            days = int(round(target * 7)) + int(rng.integers(-4, 5))
            if days >= client.weeks * 7 - 7:
                status = "after_end"
            elif rng.random() < _MISSED_P:
                status = "missed"
        elif occ == "discharge":
            days = client.weeks * 7 + int(rng.integers(-2, 3))
            p = {"completed": 1.0, "transferred": 0.6, "absconded": 0.15}[client.end_reason]
            if rng.random() >= p:
                status = "not_done"
            elif rng.random() < _MISSED_P:
                status = "missed"
        else:  # follow-ups
            after = d.occasions[occ].weeks_after_discharge or 13
            days = client.weeks * 7 + after * 7 + int(rng.integers(-7, 8))
            base = {"completed": 0.65, "transferred": 0.25, "absconded": 0.1}[client.end_reason]
            # a later follow-up mostly reaches those who took part in the earlier one
            p = base if fu_rank == 0 else (0.75 if prev_fu else 0.15)
            fu_rank += 1
            prev_fu = rng.random() < p
            if not prev_fu:
                status = "not_done"
        date = client.intake + dt.timedelta(days=max(days, 0))
        if occ != "intake":
            date = _away_from_birthday(date, client.birth)
        if date > EXPORT_DATE and status == "attended":
            status = "censored"
        week = (date - client.intake).days / 7.0
        phase = _phase_at(prog, client, week)
        canonical = prog.phase(phase).canonical if phase is not None else None
        slots.append(_Slot(lab, occ, date, week, phase, canonical, status))
    return slots


# --------------------------------------------------------------------------- #
# Building the tables of one file
# --------------------------------------------------------------------------- #
@dataclass
class _Table:
    """A file's rows before writing; ``keys`` ties truth rows to final row numbers."""

    columns: list[str]
    rows: list[dict[str, Any]]
    keys: list[int]
    kinds: dict[str, str]  # column -> "date", "int", "float", "str", "code:<labels kind>"


def _label_codes(file: SourceFile, kind: str, programme: Programme) -> dict[str, int]:
    """Integer codes 1..k of a label set (YAML order) for SPSS."""
    if kind == "occasion":
        labs = list(file.occasions)
    else:
        labs = list(file.labels.get(kind, {}))
        if not labs and kind in ("phase", "last_phase"):
            labs = [p.id for p in programme.phases]
        if not labs and kind == "end_reason":
            labs = list(_END_REASONS)
    return {lab: i + 1 for i, lab in enumerate(labs)}


def _client_field_values(file: SourceFile, client: _Client, fidelity: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    phase_lab = _invert(file.labels.get("last_phase", {}))
    end_lab = _invert(file.labels.get("end_reason", {}))
    for fieldname, col in file.client_fields.items():
        if fieldname == "weeks_in_care":
            out[col] = int(client.weeks)
        elif fieldname == "last_phase":
            out[col] = phase_lab.get(client.last_phase, client.last_phase)
        elif fieldname == "end_reason":
            out[col] = end_lab.get(client.end_reason, client.end_reason)
        elif fieldname == "interventions":
            out[col] = _intervention_text(file, client.interventions) or None
        elif fieldname == "fidelity":
            out[col] = float(fidelity)
    return out


def _identifier_values(file: SourceFile, client: _Client) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for col in file.identifiers:
        kind = _identifier_kind(col, file)
        out[col] = {"name": client.name, "first_name": client.first_name,
                    "last_name": client.last_name, "bsn": client.bsn,
                    "birth_date": client.birth}[kind]
    if file.birth_date and file.birth_date not in out:
        out[file.birth_date] = client.birth
    return out


def _column_kinds(file: SourceFile) -> dict[str, str]:
    kinds: dict[str, str] = {}
    cf = file.client_fields
    for fieldname, col in cf.items():
        kinds[col] = {"weeks_in_care": "int", "last_phase": "code:last_phase",
                      "end_reason": "code:end_reason", "interventions": "str",
                      "fidelity": "float"}[fieldname]
    for col in file.identifiers:
        kinds[col] = "date" if _identifier_kind(col, file) == "birth_date" else "str"
    if file.birth_date:
        kinds[file.birth_date] = "date"
    return kinds


def _score(d: Dictionary, client: _Client, slot: _Slot, instrument: str, scale_id: str,
           construct: str, rng: np.random.Generator) -> dict[str, Any]:
    scale = d.scale(instrument, scale_id)
    age = _age_years(client.birth, slot.date)
    sev = _severity(client, construct, slot.week)
    observed = sev + float(rng.normal(0.0, 0.3))
    sign = 1.0 if scale.better == "lower" else -1.0
    true_z = sign * observed
    mean, sd, how = _gen_norm(scale, age)
    raw = int(np.clip(np.rint(mean + sd * true_z), scale.range_min, scale.range_max))
    norm = scale.norm_for(age)
    expected = (raw - norm.mean.value) / norm.sd.value if norm is not None else np.nan
    return {"age": age, "severity": sev, "true_z": true_z, "raw": raw, "expected_z": expected,
            "expected_z_better": -sign * expected if norm is not None else np.nan,
            "gen_mean": mean, "gen_sd": sd, "gen_norm": how}


def _truth_row(file: SourceFile, client: _Client, slot: _Slot, m: Any, column: str,
               sc: dict[str, Any], key: int) -> dict[str, Any]:
    return {"programme": file.programme, "file": file.path, "_key": key,
            "client_id": client.client_id, "occasion_label": slot.label,
            "occasion": slot.occasion, "date": pd.Timestamp(slot.date), "week": slot.week,
            "age": sc["age"], "phase": slot.phase, "canonical_phase": slot.canonical_phase,
            "instrument": m.instrument, "scale": m.scale,
            "construct": m.construct, "column": column, "severity": sc["severity"],
            "true_z": sc["true_z"], "raw": sc["raw"], "expected_z": sc["expected_z"],
            "expected_z_better": sc["expected_z_better"], "gen_mean": sc["gen_mean"],
            "gen_sd": sc["gen_sd"], "gen_norm": sc["gen_norm"]}


def _phase_label(file: SourceFile, phase: str | None) -> str | None:
    if phase is None:
        return None
    return _invert(file.labels.get("phase", {})).get(phase, phase)


def _slot_columns(file: SourceFile, occasion: str | None = None) -> list[tuple[str, str]]:
    """(column, kind) of the file's date and phase columns, if any.

    For a wide file pass ``occasion`` to fill in the ``{occasion}`` placeholder.
    """
    out = []
    if file.date_column:
        out.append((_fill_occasion(file.date_column, occasion), "date"))
    if file.phase_column:
        out.append((_fill_occasion(file.phase_column, occasion), "code:phase"))
    return out


def _slot_values(file: SourceFile, slot: _Slot, occasion: str | None = None) -> dict[str, Any]:
    """Date and phase cells of one measurement slot (keys as in :func:`_slot_columns`)."""
    out: dict[str, Any] = {}
    if file.date_column:
        out[_fill_occasion(file.date_column, occasion)] = slot.date
    if file.phase_column:
        out[_fill_occasion(file.phase_column, occasion)] = _phase_label(file, slot.phase)
    return out


def _fill_occasion(column: str, occasion: str | None) -> str:
    return column if occasion is None else column.replace("{occasion}", occasion)


def _outcome_table(d: Dictionary, file: SourceFile, clients: list[_Client], fidelity: float,
                   rng: np.random.Generator) -> tuple[_Table, list[dict[str, Any]], dict[str, list]]:
    """Rows of a wide / occasion_rows / long file, its truth rows and its empty slots."""
    layout = file.layout
    kinds = _column_kinds(file)
    ident_cols = list(dict.fromkeys([*file.identifiers,
                                     *([file.birth_date] if file.birth_date else [])]))
    head = [file.client_id, *ident_cols]
    kinds[file.client_id] = "id"
    cf_cols = list(file.client_fields.values())
    truth: list[dict[str, Any]] = []
    empty: dict[str, list] = {}  # client_id -> [(slot, client)] not measured (injectable)
    rows: list[dict[str, Any]] = []
    keys: list[int] = []
    key = 0

    if layout == "wide":
        typed: list[tuple[str, str]] = []
        for lab in file.occasions:
            typed += _slot_columns(file, lab)
            typed += [(_fill_occasion(m.column, lab), "int") for m in file.measures]
        columns = [*head, *cf_cols, *(c for c, _ in typed)]
    else:
        typed = [(file.occasion_column, "code:occasion"), *_slot_columns(file)]
        if layout == "occasion_rows":
            typed += [(m.column, "int") for m in file.measures]
        else:  # long
            typed += [(file.instrument_column, "str"), (file.scale_column, "str"),
                      (file.score_column, "int")]
        columns = [*head, *(c for c, _ in typed), *cf_cols]
    kinds.update(typed)

    for client in clients:
        base = {file.client_id: client.raw_id, **_identifier_values(file, client),
                **_client_field_values(file, client, fidelity)}
        slots = _schedule(d, file, client, rng)
        wide_row = dict(base) if layout == "wide" else None
        wide_truth: list[dict[str, Any]] = []
        empty[client.client_id] = []
        for slot in slots:
            if slot.status != "attended":
                if slot.status in ("missed", "not_done") and slot.date <= EXPORT_DATE:
                    empty[client.client_id].append((slot, client))
                continue
            scores = []
            for m in file.measures:
                sc = _score(d, client, slot, m.instrument, m.scale, m.construct, rng)
                if slot.occasion != "intake" and rng.random() < _ITEM_MISSING_P:
                    continue
                scores.append((m, sc))
            if layout == "wide":
                wide_row.update(_slot_values(file, slot, slot.label))
                for m, sc in scores:
                    col = m.column.replace("{occasion}", slot.label)
                    wide_row[col] = sc["raw"]
                    wide_truth.append(_truth_row(file, client, slot, m, col, sc, key))
            elif layout == "occasion_rows":
                row = dict(base)
                row[file.occasion_column] = slot.label
                row.update(_slot_values(file, slot))
                for m, sc in scores:
                    row[m.column] = sc["raw"]
                    truth.append(_truth_row(file, client, slot, m, m.column, sc, key))
                rows.append(row)
                keys.append(key)
                key += 1
            else:
                for m, sc in scores:
                    row = dict(base)
                    row[file.occasion_column] = slot.label
                    row.update(_slot_values(file, slot))
                    row[file.instrument_column] = m.label[0]
                    row[file.scale_column] = m.label[1]
                    row[file.score_column] = sc["raw"]
                    truth.append(_truth_row(file, client, slot, m, "/".join(m.label), sc, key))
                    rows.append(row)
                    keys.append(key)
                    key += 1
        if layout == "wide":
            rows.append(wide_row)
            keys.append(key)
            truth.extend(wide_truth)
            key += 1
    return _Table(columns, rows, keys, kinds), truth, empty


# --------------------------------------------------------------------------- #
# Single-case series
# --------------------------------------------------------------------------- #
def _series_table(d: Dictionary, file: SourceFile, clients: list[_Client], rng: np.random.Generator
                  ) -> tuple[_Table, list[dict[str, Any]]]:
    st = _settings(file.programme)
    decimals = int(st.get("series_decimals", 0))
    phase_lab = _invert(file.labels.get("sced_phase", {"A": "A", "B": "B"}))
    # cases: clients whose stay is long enough for a 20-30 week series (else the longest)
    long_enough = [c for c in clients if c.weeks >= 21]
    pool = long_enough if len(long_enough) >= 3 else sorted(clients, key=lambda c: -c.weeks)[:3]
    k = int(min(rng.integers(3, 7), len(pool)))
    cases = [pool[i] for i in sorted(rng.choice(len(pool), size=k, replace=False))]
    baselines = sorted(int(x) for x in rng.choice(np.arange(5, 13), size=k, replace=False))
    columns = [file.client_id, file.session_column]
    kinds = {file.client_id: "id", file.session_column: "int"}
    if file.date_column:
        columns.append(file.date_column)
        kinds[file.date_column] = "date"
    columns.append(file.sced_phase_column)
    kinds[file.sced_phase_column] = "str"
    for m in file.measures:
        columns.append(m.column)
        kinds[m.column] = "float" if decimals else "int"
    rows, keys, truth = [], [], []
    key = 0
    for client, n_base in zip(cases, baselines, strict=True):
        n_sessions = int(min(rng.integers(20, 31), max(20, client.weeks - 1)))
        start = client.intake + dt.timedelta(days=int(rng.integers(3, 10)))
        per_measure = []
        for m in file.measures:
            scale = d.scale(m.instrument, m.scale)
            scale_lo, scale_hi = scale.range_min, scale.range_max
            level_a = float(rng.uniform(5.5, 8.0))
            shift = -float(rng.uniform(1.5, 3.5))
            e, noise = 0.0, []
            for _ in range(n_sessions):
                e = 0.3 * e + float(rng.normal(0.0, 0.7))
                noise.append(e)
            per_measure.append((m, level_a, shift, noise, scale_lo, scale_hi))
        for s in range(1, n_sessions + 1):
            phase = "A" if s <= n_base else "B"
            skip = rng.random() < 0.04 and s not in (1, n_base, n_base + 1, n_sessions)
            if skip:
                continue
            date = start + dt.timedelta(days=7 * (s - 1))
            row = {file.client_id: client.raw_id, file.session_column: s,
                   file.sced_phase_column: phase_lab.get(phase, phase)}
            if file.date_column:
                row[file.date_column] = date
            for m, level_a, shift, noise, lo, hi in per_measure:
                level = level_a + (shift if phase == "B" else 0.0)
                val = float(np.clip(round(level + noise[s - 1], decimals), lo, hi))
                row[m.column] = val if decimals else int(val)
                truth.append({"programme": file.programme, "file": file.path, "_key": key,
                              "client_id": client.client_id, "session": s,
                              "date": pd.Timestamp(date), "phase": phase,
                              "phase_label": phase_lab.get(phase, phase),
                              "baseline_length": n_base, "level_a": level_a,
                              "true_shift": shift, "true_level": level,
                              "outcome": row[m.column], "instrument": m.instrument,
                              "scale": m.scale, "column": m.column})
            rows.append(row)
            keys.append(key)
            key += 1
    return _Table(columns, rows, keys, kinds), truth


# --------------------------------------------------------------------------- #
# Error injection
# --------------------------------------------------------------------------- #
def _out_of_range_value(scale: Scale, rng: np.random.Generator) -> int:
    span = scale.range_max - scale.range_min
    return int(scale.range_max + max(1, round(span * rng.uniform(0.05, 0.3))))


def _inject(d: Dictionary, file: SourceFile, table: _Table, empty: dict[str, list],
            clients: list[_Client], rng: np.random.Generator, fidelity: float
            ) -> tuple[list[tuple[int, str, str, Any, str, str | None]], set[int]]:
    """Add/alter rows of ``table`` in place.

    Returns the injected (key, column, kind, value, client_id, occasion label) and the
    keys of valid rows whose truth must be dropped (series: altered sessions).
    """
    out: list[tuple[int, str, str, Any, str, str | None]] = []
    dropped: set[int] = set()
    next_key = -1

    def insert_after(pos_key: int | None, row: dict[str, Any]) -> int:
        nonlocal next_key
        k = next_key
        next_key -= 1
        idx = len(table.rows) if pos_key is None else table.keys.index(pos_key) + 1
        table.rows.insert(idx, row)
        table.keys.insert(idx, k)
        return k

    def last_key_of(client_id: str) -> int | None:
        found = None
        for row, k in zip(table.rows, table.keys, strict=True):
            if k >= 0 and str(row.get(file.client_id)) == client_id:
                found = k
        return found

    if file.layout == "series":
        valid = [i for i, k in enumerate(table.keys) if k >= 0]
        picks = rng.choice(valid, size=2, replace=False)
        m = file.measures[0]
        i = int(picks[0])
        top = d.scale(m.instrument, m.scale).range_max
        decimals = int(_settings(file.programme).get("series_decimals", 0))
        val: Any = int(top) + int(rng.integers(2, 6))
        if decimals:
            val = val + 0.5
        table.rows[i][m.column] = val
        dropped.add(table.keys[i])
        out.append((table.keys[i], m.column, "out_of_range", val,
                    str(table.rows[i][file.client_id]), None))
        if file.date_column:
            i = int(picks[1])
            bad = _impossible_date(file.date_format, table.rows[i][file.date_column].year)
            table.rows[i][file.date_column] = bad
            dropped.add(table.keys[i])
            out.append((table.keys[i], file.date_column, "unparseable_date", bad,
                        str(table.rows[i][file.client_id]), None))
        return out, dropped

    kinds = ["out_of_range"]
    if file.date_column and file.format != "spss":
        kinds.append("unparseable_date")
    if file.layout != "wide":
        kinds.append("unknown_occasion")
    if file.layout == "wide" or file.format == "spss" or file.layout == "long":
        kinds.append("duplicate")
    if len(kinds) > 3:
        kinds = kinds[:1] + [str(x) for x in rng.choice(kinds[1:], size=2, replace=False)]

    slots = [s for cid in sorted(empty) for s in empty[cid]]
    order = rng.permutation(len(slots)) if slots else []
    slot_iter = iter([slots[i] for i in order])
    used_clients: set[str] = set()

    def next_slot() -> tuple[_Slot, _Client] | None:
        for slot, client in slot_iter:
            if client.client_id not in used_clients:
                used_clients.add(client.client_id)
                return slot, client
        return None

    def base_row(client: _Client) -> dict[str, Any]:
        row = {file.client_id: client.raw_id, **_identifier_values(file, client),
               **_client_field_values(file, client, fidelity)}
        return row

    for kind in kinds:
        if kind in ("out_of_range", "unparseable_date"):
            pick = next_slot()
            if pick is None:
                continue
            slot, client = pick
            m = file.measures[int(rng.integers(len(file.measures)))]
            scale = d.scale(m.instrument, m.scale)
            if kind == "out_of_range":
                value: Any = _out_of_range_value(scale, rng)
                date: Any = slot.date
            else:
                value = int(np.clip(np.rint(_gen_norm(scale, client.age)[0]), scale.range_min,
                                    scale.range_max))
                date = _impossible_date(file.date_format, slot.date.year)
            if file.layout == "wide":
                key = next(k for row, k in zip(table.rows, table.keys, strict=True)
                           if k >= 0 and str(row[file.client_id]) == client.client_id)
                row = table.rows[table.keys.index(key)]
                if file.date_column:
                    row[file.date_column.replace("{occasion}", slot.label)] = date
                if file.phase_column:
                    row[file.phase_column.replace("{occasion}", slot.label)] = \
                        _phase_label(file, slot.phase)
                col = m.column.replace("{occasion}", slot.label)
                row[col] = value
                if kind == "unparseable_date":
                    col = file.date_column.replace("{occasion}", slot.label)
                    out.append((key, col, kind, date, client.client_id, slot.label))
                else:
                    out.append((key, col, kind, value, client.client_id, slot.label))
                continue
            row = base_row(client)
            row[file.occasion_column] = slot.label
            if file.date_column:
                row[file.date_column] = date
            if file.phase_column:
                row[file.phase_column] = _phase_label(file, slot.phase)
            if file.layout == "long":
                row[file.instrument_column] = m.label[0]
                row[file.scale_column] = m.label[1]
                row[file.score_column] = value
                col = file.score_column
            else:
                row[m.column] = value
                col = m.column
            k = insert_after(last_key_of(client.client_id), row)
            if kind == "unparseable_date":
                out.append((k, file.date_column, kind, date, client.client_id, slot.label))
            else:
                out.append((k, col, kind, value, client.client_id, slot.label))
        elif kind == "unknown_occasion":
            client = clients[int(rng.integers(len(clients)))]
            src = next((r for r, k in zip(table.rows, table.keys, strict=True)
                        if k >= 0 and str(r[file.client_id]) == client.client_id), None)
            if src is None:
                continue
            row = dict(src)
            if file.format == "spss":
                codes = _label_codes(file, "occasion", d.programmes[file.programme])
                label: Any = 9 if 9 not in codes.values() else max(codes.values()) + 1
            else:
                label = _unknown_label(list(file.occasions))
            row[file.occasion_column] = label
            if file.date_column and isinstance(row.get(file.date_column), dt.date):
                row[file.date_column] = _away_from_birthday(
                    row[file.date_column] + dt.timedelta(days=int(rng.integers(20, 40))),
                    client.birth)
            k = insert_after(last_key_of(client.client_id), row)
            out.append((k, file.occasion_column, kind, label, client.client_id, str(label)))
        elif kind == "duplicate":
            valid = [k for k in table.keys if k >= 0]
            taken = {o[4] for o in out}
            cands = [k for k in valid
                     if str(table.rows[table.keys.index(k)][file.client_id]) not in taken]
            src_key = int(rng.choice(cands or valid))
            src = table.rows[table.keys.index(src_key)]
            k = insert_after(src_key, dict(src))
            occ = None if file.layout == "wide" else str(src.get(file.occasion_column))
            out.append((k, file.client_id, kind, src[file.client_id], str(src[file.client_id]),
                        occ))
    col = file.client_fields.get("interventions")
    if col:
        # free text naming the client in the interventions cell of one valid row: the
        # declared items are kept, the rest is logged without its text
        by_id = {c.client_id: c for c in clients}
        taken = {o[4] for o in out}  # clients with another injected error: left alone
        cands = [k for k, row in zip(table.keys, table.rows, strict=True)
                 if k >= 0 and row.get(col) and str(row.get(file.client_id)) in by_id
                 and str(row.get(file.client_id)) not in taken]
        if cands:
            k = int(cands[int(rng.integers(len(cands)))])
            row = table.rows[table.keys.index(k)]
            client = by_id[str(row[file.client_id])]
            value = f"{row[col]};gesprek met {client.name} (BSN {client.bsn})"
            row[col] = value
            occ = (None if file.layout == "wide"
                   else str(row.get(file.occasion_column)))
            out.append((k, col, "unknown_intervention", value, client.client_id, occ))
    return out, dropped


# --------------------------------------------------------------------------- #
# Writers
# --------------------------------------------------------------------------- #
def _fixed_xlsx(path: Path) -> None:
    """Rewrite an .xlsx with fixed zip and document timestamps (byte-stable)."""
    with zipfile.ZipFile(path) as zin:
        items = [(info.filename, zin.read(info.filename)) for info in zin.infolist()]
    stamp = BASE_DATE.isoformat() + "T00:00:00Z"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in items:
            if name == "docProps/core.xml":
                text = data.decode("utf-8")
                text = re.sub(r"(<dcterms:(?:created|modified)[^>]*>)[^<]*(<)", rf"\g<1>{stamp}\2",
                              text)
                data = text.encode("utf-8")
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    path.write_bytes(buf.getvalue())


def _write_excel(path: Path, file: SourceFile, table: _Table) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = file.sheet or "Sheet1"
    ws.append(table.columns)
    for r, row in enumerate(table.rows, start=2):
        for c, col in enumerate(table.columns, start=1):
            value = row.get(col)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                continue
            cell = ws.cell(row=r, column=c, value=value)
            if isinstance(value, dt.date):
                cell.number_format = "yyyy-mm-dd"
    fixed = dt.datetime.combine(BASE_DATE, dt.time())
    wb.properties.created = fixed
    wb.properties.modified = fixed
    wb.properties.creator = "effectstudy.synth"
    wb.save(path)
    _fixed_xlsx(path)


def _write_csv(path: Path, file: SourceFile, table: _Table) -> None:
    sep = file.csv.get("sep", ",")
    decimal = file.csv.get("decimal", ".")
    encoding = file.csv.get("encoding", "utf-8")
    fmt = file.date_format or "%Y-%m-%d"
    newline = "\r\n" if encoding.lower().replace("-", "") in ("cp1252", "windows1252", "latin1") \
        else "\n"
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=sep, lineterminator=newline, quoting=csv.QUOTE_MINIMAL)
    writer.writerow(table.columns)
    for row in table.rows:
        cells = []
        for col in table.columns:
            v = row.get(col)
            if isinstance(v, dt.date):
                cells.append(v.strftime(fmt))
            else:
                cells.append(_fmt_number(v, decimal))
        writer.writerow(cells)
    path.write_bytes(buf.getvalue().encode(encoding))


def _write_spss(path: Path, file: SourceFile, table: _Table, programme: Programme) -> None:
    import pyreadstat

    data: dict[str, list[Any]] = {}
    value_labels: dict[str, dict[float, str]] = {}
    formats: dict[str, str] = {}
    for col in table.columns:
        kind = table.kinds.get(col, "str")
        vals = [row.get(col) for row in table.rows]
        if kind.startswith("code:"):
            what = kind.split(":", 1)[1]
            codes = _label_codes(file, what, programme)
            data[col] = [float(codes[v]) if isinstance(v, str) and v in codes
                         else (float(v) if isinstance(v, int | float) else np.nan) for v in vals]
            value_labels[col] = {float(c): lab for lab, c in codes.items()}
            formats[col] = "F2.0"
        elif kind in ("int", "id", "float"):
            if kind == "id" and not all(isinstance(v, int | np.integer) for v in vals):
                data[col] = ["" if v is None else str(v) for v in vals]
                continue
            data[col] = [np.nan if v is None else float(v) for v in vals]
            formats[col] = "F4.1" if kind == "float" else "F8.0"
        elif kind == "date":
            data[col] = [v if isinstance(v, dt.date) else None for v in vals]
        else:
            data[col] = ["" if v is None else str(v) for v in vals]
    df = pd.DataFrame(data, columns=table.columns)
    pyreadstat.write_sav(df, str(path), variable_value_labels=value_labels,
                         variable_format=formats)


# --------------------------------------------------------------------------- #
# Public entry point
# --------------------------------------------------------------------------- #
def _n_for(programme: str, n_clients: int | Mapping[str, int] | None) -> int:
    if n_clients is None:
        n = DEFAULT_N_CLIENTS.get(programme, 10)
    elif isinstance(n_clients, Mapping):
        n = int(n_clients.get(programme, DEFAULT_N_CLIENTS.get(programme, 10)))
    else:
        n = int(n_clients)
    if n < 1:
        raise ValueError(f"n_clients for {programme!r} must be at least 1, got {n}")
    return n


def generate(out_dir: str | Path, *, seed: int = 2026, dictionary: Dictionary | str | Path | None = None,
             n_clients: int | Mapping[str, int] | None = None,
             inject_errors: bool = True) -> SynthResult:
    """Write synthetic raw exports of every programme and return their truth.

    Parameters
    ----------
    out_dir
        Folder to write into (created if needed); file names are the ``path``
        entries of the source YAMLs, relative to it.
    seed
        Seed of all randomness (``numpy.random.default_rng``; no global state, no
        clock): the same seed gives byte-identical CSV and Excel files and equal frames.
    dictionary
        A loaded :class:`~effectstudy.dictionary.Dictionary`, a dictionary folder,
        or None for the shipped one.
    n_clients
        Clients per programme: None for :data:`DEFAULT_N_CLIENTS`, an int for every
        programme, or a mapping programme -> int.
    inject_errors
        Add a few realistic bad rows/cells per file (listed in ``injected``).

    Returns
    -------
    SynthResult
        Written files plus the ``truth``, ``clients``, ``series_truth``,
        ``injected`` and ``identifiers`` frames (see :class:`SynthResult`).
    """
    d = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ident = _stream(seed, _IDENTITY_STREAM)
    names_taken: set[str] = set()
    bsn_taken: set[str] = set()

    files: list[Path] = []
    truth_rows: list[dict[str, Any]] = []
    series_rows: list[dict[str, Any]] = []
    client_rows: list[dict[str, Any]] = []
    injected_rows: list[dict[str, Any]] = []
    ident_rows: list[dict[str, Any]] = []
    from effectstudy.synth_events import EventState
    events = EventState(seed, EXPORT_DATE)

    for programme in sorted(d.sources):
        rng = _stream(seed, programme)
        prog = d.programmes[programme]
        n = _n_for(programme, n_clients)
        clients = _make_clients(d, programme, n, rng, ident, names_taken, bsn_taken)
        fidelity = round(float(rng.uniform(5.5, 9.2)), 1)
        in_series: set[str] = set()

        for file in d.sources[programme].files:
            if file.layout in INTEGRITY_LAYOUTS:  # written by the synth_integrity hook below
                continue
            file_rng = _stream(seed, programme, file.id)
            if file.layout == "series":
                table, ftruth = _series_table(d, file, clients, file_rng)
                empty: dict[str, list] = {}
                in_series |= {r["client_id"] for r in ftruth}
                target = series_rows
            else:
                table, ftruth, empty = _outcome_table(d, file, clients, fidelity, file_rng)
                ftruth = events.apply(d, file, table, ftruth, clients)  # synth_events hook
                target = truth_rows
            inj: list = []
            dropped: set[int] = set()
            if inject_errors:
                inj, dropped = _inject(d, file, table, empty, clients,
                                       _stream(seed, programme, file.id, _INJECT_STREAM), fidelity)
            offset = 1 if file.format == "spss" else 2
            row_of = {k: i + offset for i, k in enumerate(table.keys)}
            for t in ftruth:
                if t["_key"] in dropped:
                    continue
                t = dict(t)
                t["row"] = row_of[t.pop("_key")]
                target.append(t)
            for key, col, kind, value, cid, occ in inj:
                shown = value.isoformat() if isinstance(value, dt.date) else value
                injected_rows.append({"programme": programme, "file": file.path,
                                      "format": file.format, "row": row_of[key], "column": col,
                                      "kind": kind, "value": str(shown), "client_id": cid,
                                      "occasion_label": occ})
            path = out / file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            if file.format == "excel":
                _write_excel(path, file, table)
            elif file.format == "spss":
                _write_spss(path, file, table, prog)
            else:
                _write_csv(path, file, table)
            files.append(path)

        split_names = any(_identifier_kind(col, f) in ("first_name", "last_name")
                          for f in d.sources[programme].files for col in f.identifiers)
        for c in clients:
            client_rows.append({"programme": programme, "client_id": c.client_id,
                                "age_at_intake": c.age, "intake_date": pd.Timestamp(c.intake),
                                "planned_weeks": c.planned, "weeks_in_care": c.weeks,
                                "last_phase": c.last_phase, "end_reason": c.end_reason,
                                "interventions": ";".join(sorted(c.interventions)) or None,
                                "fidelity": fidelity,
                                "in_series": c.client_id in in_series,
                                "true_improvement": c.delta})
            base = {"programme": programme, "client_id": c.client_id}
            ident_rows.append({**base, "kind": "name", "format": "full", "value": c.name})
            if split_names:
                ident_rows += [
                    {**base, "kind": "first_name", "format": "text", "value": c.first_name},
                    {**base, "kind": "last_name", "format": "text", "value": c.last_name},
                ]
            ident_rows += [
                {**base, "kind": "birth_date", "format": "%Y-%m-%d",
                 "value": c.birth.strftime("%Y-%m-%d")},
                {**base, "kind": "birth_date", "format": "%d-%m-%Y",
                 "value": c.birth.strftime("%d-%m-%Y")},
                {**base, "kind": "bsn", "format": "text", "value": c.bsn},
                {**base, "kind": "client_id", "format": "text", "value": c.client_id},
            ]

    files += _write_integrity(d, out, seed, pd.DataFrame(client_rows))  # synth_integrity hook
    truth_cols = ["programme", "file", "row", "client_id", "occasion_label", "occasion", "date",
                  "week", "age", "phase", "canonical_phase", "instrument", "scale", "construct",
                  "column", "severity", "true_z", "raw", "expected_z", "expected_z_better", "gen_mean",
                  "gen_sd", "gen_norm"]
    series_cols = ["programme", "file", "row", "client_id", "session", "date", "phase",
                   "phase_label", "baseline_length", "level_a", "true_shift", "true_level",
                   "outcome", "instrument", "scale", "column"]
    inj_cols = ["programme", "file", "format", "row", "column", "kind", "value", "client_id",
                "occasion_label"]
    return SynthResult(
        files=files,
        truth=pd.DataFrame(truth_rows, columns=truth_cols),
        clients=pd.DataFrame(client_rows),
        series_truth=pd.DataFrame(series_rows, columns=series_cols),
        injected=pd.DataFrame(injected_rows, columns=inj_cols),
        identifiers=pd.DataFrame(ident_rows, columns=["programme", "client_id", "kind", "format",
                                                      "value"]),
        events=events.events_frame(), event_truth=events.hazards(),
        dropped_scores=events.dropped_frame(),
    )


def _write_integrity(d: Dictionary, out: Path, seed: int, clients: pd.DataFrame) -> list[Path]:
    """Delivery logs and fidelity ratings (:mod:`effectstudy.synth_integrity`) as exports.

    Written where ``layout: delivery`` / ``layout: fidelity_ratings`` source files
    declare them, with the declared column names (atomic, 0600, formula cells escaped).
    The logs belong to the score exports' clients: client ``k`` of the simulated logs of
    a programme takes the id of its ``k``-th client, and weeks after her time in care
    (rounded up) are not written, so the logs link to the scores and pass the
    time-in-care check.
    """
    from effectstudy._io import atomic_write_bytes, csv_bytes
    from effectstudy.synth_integrity import generate_integrity

    wanted = [sf for prog in sorted(d.sources) for sf in d.sources[prog].files
              if sf.layout in INTEGRITY_LAYOUTS]
    if not wanted:
        return []
    counts = clients.groupby("programme").size()
    sim = generate_integrity(d, seed=seed, n_clients={p: max(int(counts.get(p, 0)), 2)
                                                      for p in d.programmes})
    logs = sim.logs_raw.astype({"client_id": object})
    for prog, own in clients.groupby("programme", sort=False):
        ids = list(dict.fromkeys(logs.loc[logs["programme"] == prog, "client_id"]))
        new = dict(zip(ids, own["client_id"], strict=False))
        weeks = dict(zip(own["client_id"], np.ceil(own["weeks_in_care"].astype(float)),
                         strict=True))
        sel = logs["programme"] == prog
        logs.loc[sel, "client_id"] = logs.loc[sel, "client_id"].map(new)
        logs = logs[~sel | (logs["week"] <= logs["client_id"].map(weeks).fillna(-1))]
    written = []
    for sf in wanted:
        frame = logs if sf.layout == "delivery" else sim.ratings
        part = frame[frame["programme"] == sf.programme]
        names = dict(sf.columns)
        if sf.layout == "delivery":
            names["client_id"] = sf.client_id
        part = part[list(names)].rename(columns=names)
        written.append(atomic_write_bytes(out / sf.path, csv_bytes(part)))
    return written
