"""Recognising the columns of an export for the scaffolder: identifier-looking
columns, closed label lists, instrument and scale matches, wide-layout groups and
date formats.

Internal to :mod:`effectstudy.scaffold`; what may be shown of a column follows the
privacy rule in that package's docstring.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from effectstudy.dictionary import (
    Dictionary,
    SourceFile,
    load_dictionary,
)
from effectstudy.errors import DictionaryError
from effectstudy.harmonise.readers import is_empty
from effectstudy.scaffold._read import (
    DATE_FORMATS,
    DATE_TEXT,
    EMAIL,
    MAX_LABEL_LENGTH,
    MAX_LABELS,
    PHONE,
    TIMES,
    cell_text,
    elfproef,
    fold,
    id_digits,
    mentions_name,
    name_shaped,
    natural,
    one_line,
    tokens,
)
from effectstudy.scaffold._vocabulary import hidden_header

# --------------------------------------------------------------------------- #
# Columns
# --------------------------------------------------------------------------- #
_H_NAME = re.compile(r"naam|name|initialen|tussenvoegsel")
_H_BIRTH = re.compile(r"(^|[^a-z])geb(\W|d|o|$)|geboorte|birth|(^|[^a-z])dob($|[^a-z])")
_H_BSN = re.compile(r"bsn|burgerservice|sofi")
_H_CONTACT = re.compile(r"telefoon|(^|[^a-z])tel($|[^a-z])|mobiel|phone|adres|address|e-?mail|"
                        r"postcode|woonplaats|straat|huisnummer")
_H_TEXT = re.compile(r"opmerking|notitie|toelichting|bijzonderhe|memo|comment|note|aantekening|"
                     r"omschrijving|verslag|beschrijving|remark")
H_CLIENT = re.compile(r"client|dossier|respnr|^resp|^id$|^nr$|volgnummer|registratie|"
                       r"kindnummer|jongere")
H_DATE = re.compile(r"datum|date|^dat$")
H_OCCASION = re.compile(r"meetmoment|^meting|^moment|occasion|tijdstip|peilmoment|"
                         r"meting$|^wave$|^golf$")
H_SEX = re.compile(r"geslacht|sexe|^sex$|gender")
CLIENT_FIELD_PATTERNS = {
    "weeks_in_care": re.compile(r"weken|duur|weeks|verblijfsduur"),
    "last_phase": re.compile(r"laatste.?fase|fase.?bereikt|eindfase|last.?phase"),
    "end_reason": re.compile(r"reden.?einde|uitstroomreden|reden.?uitstroom|^einde$|"
                             r"end.?reason|reden.?vertrek"),
    "interventions": re.compile(r"interventie|modules?$|interventions"),
    "fidelity": re.compile(r"trouw|fidelity|getrouwheid"),
}
H_PHASE = re.compile(r"^fase$|^phase$|^fase\b|behandelfase")
H_SESSION = re.compile(r"^week$|^sessie|^session|weeknummer")
H_SCED = re.compile(r"conditie|condition|^ab$|fase.?ab")
H_INSTRUMENT = re.compile(r"^instrument|^vragenlijst|^test$")
H_SCALE = re.compile(r"^schaal|^scale|^subschaal")
H_SCORE = re.compile(r"^score$|^waarde$|^value$|^ruwe.?score")


@dataclass
class ExportColumn:
    index: int
    header: str
    values: list[Any]
    safe: bool
    kind: str = "other"  # identifier kinds: name, birth_date, bsn, contact, free_text
    why: str = ""

    @property
    def shown(self) -> str:
        """The header as comments and messages show it: one line, or
        ``column #N (not shown: may be a value)``."""
        return one_line(self.header) if self.safe else hidden_header(self.index)

    @property
    def identifier(self) -> bool:
        return self.kind in ("name", "birth_date", "bsn", "contact", "free_text")


def identifier_kind(col: ExportColumn) -> tuple[str, str] | None:
    h = fold(col.header)
    vals = col.values
    texts = [cell_text(v) for v in vals if isinstance(v, str)]
    if _H_BSN.search(h):
        return "bsn", "header of a BSN"
    if _H_BIRTH.search(h):
        return "birth_date", "header of a date of birth"
    if _H_NAME.search(h):
        return "name", "header of a name"
    if _H_CONTACT.search(h):
        return "contact", "header of contact details"
    if _H_TEXT.search(h):
        return "free_text", "header of a free-text field"
    digits = [d for d in (id_digits(v) for v in vals) if d is not None]
    if vals and len(digits) >= 0.8 * len(vals):
        eligible = [d for d in digits if len(d) in (8, 9)]
        if len(eligible) >= 0.8 * len(vals) and sum(map(elfproef, eligible)) >= 0.8 * len(vals):
            return "bsn", "8-9 digit numbers that pass the elfproef (BSN-like)"
    if any(EMAIL.search(t) or PHONE.search(t) for t in texts):
        return "contact" if all(len(t) < 30 for t in texts) else "free_text", \
            "values holding a telephone number or an e-mail address"
    if texts and len(texts) >= 0.5 * len(vals):
        lengths = [len(t) for t in texts]
        words = [len(t.split()) for t in texts]
        distinct = len(set(texts))
        if max(lengths) > 60 or sum(lengths) / len(lengths) > 30:
            return "free_text", "long text values"
        if distinct > MAX_LABELS and distinct > 0.5 * len(texts) and sum(words) / len(words) >= 2:
            return "free_text", "many distinct text values of several words"
        named = sum(1 for t in texts if name_shaped(t))
        if named >= 0.5 * len(texts) and distinct >= 0.5 * len(texts):
            return "name", "values shaped like person names"
    return None


def values_by_client(col: ExportColumn, client: ExportColumn | None, body: list[list[Any]]) -> list[tuple]:
    out = []
    for row in body:
        v = row[col.index] if col.index < len(row) else None
        if is_empty(v):
            continue
        c = row[client.index] if client is not None and client.index < len(row) else None
        out.append((None if is_empty(c) else cell_text(c), cell_text(v)))
    return out


def closed_list(col: ExportColumn, client: ExportColumn | None, body: list[list[Any]],
                 labels: dict | None = None) -> tuple[list[str] | None, int]:
    """The distinct labels of ``col`` that may be shown (module privacy rule), and how
    many labels are held back because a single client holds them.

    None when the column is not a closed list. In a column whose value is a client's
    attribute (the same in all her rows: end reason, last phase, sex), a value held by
    one client only would single her out: it is counted, not shown.
    """
    if col.identifier or not col.safe:
        return None, 0
    pairs = values_by_client(col, client, body)
    if labels:
        pairs = [(c, cell_text(labels.get(_spss_key(v, labels), v))) for c, v in pairs]
    values = sorted({v for _c, v in pairs}, key=natural)
    if not values or len(values) > MAX_LABELS:
        return None, 0
    for v in values:
        if (len(v) > MAX_LABEL_LENGTH or sum(ch.isdigit() for ch in v) >= 7 or "@" in v
                or name_shaped(v) or mentions_name(v) or not v.isprintable()):
            return None, 0
    holders: dict[str, set] = {}
    clients = {c for c, _v in pairs if c is not None}
    if clients:
        per_client: dict[str, set] = {}
        for c, v in pairs:
            per_client.setdefault(c, set()).add(v)
            holders.setdefault(v, set()).add(c)
        if any(len(s) > 1 for s in per_client.values()):
            return values, 0  # labels that change within a client: occasions, phases
        if len(values) >= len(clients) and len(values) > 1:
            return None, 0
    else:
        if len(values) > 1 and len(values) > len(pairs) / 2:
            return None, 0
        for n, (_c, v) in enumerate(pairs):
            holders.setdefault(v, set()).add(n)
    shown = [v for v in values if len(holders[v]) >= 2]
    return (shown or None), len(values) - len(shown)


def session_like(col: ExportColumn) -> bool:
    """Whole numbers with more distinct values than a label list: session (week) numbers."""
    nums = [v for v in col.values if id_digits(v) is not None and len(id_digits(v) or "") <= 3]
    return (bool(col.values) and len(nums) >= 0.8 * len(col.values)
            and len({cell_text(v) for v in nums}) > MAX_LABELS)


def _spss_key(value: str, labels: dict) -> Any:
    for k in labels:
        if cell_text(k) == value:
            return k
    return value


# --------------------------------------------------------------------------- #
# Instruments
# --------------------------------------------------------------------------- #
_SCALE_WORDS = {
    "total": ("tot", "totaal", "total", "totale", "score", "som"),
    "total_difficulties": ("tot", "totaal", "total", "td", "problemen"),
    "internalising": ("int", "internaliserend", "internalising", "internaliseren",
                      "internalizing"),
    "externalising": ("ext", "externaliserend", "externalising", "externaliseren",
                      "externalizing"),
    "prosocial": ("pro", "prosociaal", "prosocial"),
    "global_self_worth": ("gsw", "zelfwaardering", "globaal", "self", "worth"),
    "parents_autonomy": ("ouders", "parents", "autonomie", "autonomy", "pa"),
    "school_environment": ("school", "schoolomgeving", "se"),
    "psychological_wellbeing": ("psy", "psych", "welzijn", "wellbeing", "pw", "psychisch"),
    "t_score": ("t", "tscore"),
    "count": ("aantal", "count", "n", "totaal", "tot"),
    "rating": ("rating", "cijfer", "score"),
}
_INSTRUMENT_EXTRA = {"INCIDENTS": ("incidenten", "incident"), "KIDSCREEN-27": ("kids",),
                     "SUD-week": ("sud", "spanning")}


def instrument_aliases(d: Dictionary) -> dict[str, str]:
    out: dict[str, str] = {}
    for iid in d.instruments:
        toks = tokens(iid)
        out.setdefault("".join(toks), iid)
        out.setdefault(toks[0], iid)
        for extra in _INSTRUMENT_EXTRA.get(iid, ()):
            out.setdefault(extra, iid)
    return out


def _scale_words(scale_id: str) -> set[str]:
    words: set[str] = set(tokens(scale_id))
    for key, syn in _SCALE_WORDS.items():
        if scale_id == key or scale_id.startswith(key + "_") or scale_id == key + "_t":
            words.update(syn)
    return words


@dataclass(frozen=True)
class InstrumentMatch:
    instrument: str
    scale: str | None
    construct: str | None
    how: str
    scales: tuple[str, ...] = ()


def known_columns(d: Dictionary) -> dict[tuple[str, ...], tuple[str, str, str, str]]:
    """Normalised measure column (template without ``{occasion}``) -> (inst, scale,
    construct, where) from the dictionary's existing sources."""
    out: dict[tuple[str, ...], tuple[str, str, str, str]] = {}
    for src in d.sources.values():
        for f in src.files:
            for m in f.measures:
                names = ([m.column.replace("{occasion}", "")] if m.column else []) + (
                    [" ".join(m.label)] if m.label else [])
                for n in names:
                    out.setdefault(tuple(tokens(n)), (m.instrument, m.scale, m.construct,
                                                       f"sources/{src.programme}.yaml"))
    return out


def constructs_of(d: Dictionary) -> dict[tuple[str, str], str]:
    votes: dict[tuple[str, str], Counter] = {}
    for src in d.sources.values():
        for f in src.files:
            for m in f.measures:
                votes.setdefault((m.instrument, m.scale), Counter())[m.construct] += 1
    return {k: v.most_common(1)[0][0] for k, v in votes.items()}


def match_instrument(stem: str, d: Dictionary, known: dict, constructs: dict,
                      aliases: dict[str, str]) -> InstrumentMatch | None:
    toks = tuple(tokens(stem))
    if not toks:
        return None
    if toks in known:
        inst, scale, construct, where = known[toks]
        return InstrumentMatch(inst, scale, construct, f"as in {where}")
    inst = None
    rest: tuple[str, ...] = ()
    for n in (2, 1):
        if len(toks) >= n and "".join(toks[:n]) in aliases:
            inst, rest = aliases["".join(toks[:n])], toks[n:]
            break
    if inst is None:
        return None
    scales = tuple(d.instruments[inst].scales)
    name = f"instrument {inst}"
    if len(scales) == 1:
        scale = scales[0]
    else:
        scored = sorted(((len(set(rest) & _scale_words(s)) + (0.5 if s == "total" else 0), s)
                         for s in scales), reverse=True)
        if rest and scored[0][0] >= 1 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
            scale = scored[0][1]
        elif not rest and "total" in scales:
            scale = "total"
        else:
            return InstrumentMatch(inst, None, None, f"{name}; scale unclear", scales)
    return InstrumentMatch(inst, scale, constructs.get((inst, scale)), f"by {name}")


# --------------------------------------------------------------------------- #
# Draft
# --------------------------------------------------------------------------- #
_OCC_SUFFIX = re.compile(r"^(?:t|m|w|fu|meting|fase)?\d{1,3}(?:m|mnd|w)?$|^(?:voor|na|pre|post|"
                         r"intake|eind|begin|start|fu|follow ?up|tussen)$", re.IGNORECASE)
_SUGGEST = (
    (re.compile(r"(?i)^(t0|m0|voor|pre|intake|begin|start|voormeting)"), "intake"),
    (re.compile(r"(?i)(follow|fu|nameting ?\d|^na ?\d).*?12"), "follow_up_12m"),
    (re.compile(r"(?i)(follow|fu).*?6"), "follow_up_6m"),
    (re.compile(r"(?i)(follow|fu).*?3"), "follow_up_3m"),
    (re.compile(r"(?i)^(na|post|eind|uitstroom|nameting)"), "discharge"),
    (re.compile(r"(?i)^(tussen|during)"), "during"),
)


def suggest_occasion(label: str, d: Dictionary) -> str | None:
    for rx, occ in _SUGGEST:
        if rx.search(label) and occ in d.occasions:
            return occ
    return None


def _split_suffix(header: str) -> tuple[str, str] | None:
    m = re.match(r"^(.*?[^_\s.\-])[_\s.\-]+([A-Za-z0-9]+)$", header)
    if not m:
        return None
    return m.group(1), m.group(2)


def wide_groups(cols: list[ExportColumn]) -> tuple[dict[str, dict[str, ExportColumn]], list[str]]:
    """stem -> {occasion label -> column} for wide-layout columns, and the labels."""
    split = {c.index: _split_suffix(c.header) for c in cols if c.safe and not c.identifier}
    by_suffix: dict[str, set[str]] = {}
    by_stem: dict[str, set[str]] = {}
    for parts in split.values():
        if parts:
            by_suffix.setdefault(parts[1], set()).add(parts[0])
            by_stem.setdefault(parts[0], set()).add(parts[1])
    keep = {s for s, stems in by_suffix.items()
            if _OCC_SUFFIX.match(s) or sum(len(by_stem[st]) >= 2 for st in stems) >= 2}
    groups: dict[str, dict[str, ExportColumn]] = {}
    for c in cols:
        parts = split.get(c.index)
        if parts and parts[1] in keep and len(by_stem[parts[0]] & keep) >= 2:
            groups.setdefault(parts[0], {})[parts[1]] = c
    labels = sorted({lab for g in groups.values() for lab in g}, key=natural)
    return groups, labels


def pick(cols: list[ExportColumn], rx: re.Pattern, used: set[int]) -> ExportColumn | None:
    for c in cols:
        if c.index not in used and not c.identifier and rx.search(fold(c.header)):
            return c
    return None


def date_format(values: list[Any]) -> tuple[str | None, int]:
    texts = [v.strip() for v in values if isinstance(v, str) and DATE_TEXT.match(v.strip())]
    if not texts:
        return None, 0
    best, best_n = None, 0
    for fmt in DATE_FORMATS:
        for tail in TIMES:
            n = 0
            for t in texts:
                try:
                    dt.datetime.strptime(t, fmt + tail)
                    n += 1
                except ValueError:
                    pass
            if n > best_n:
                best, best_n = fmt + tail, n
    return best, len(texts) - best_n


def supports(key: str) -> bool:
    return key in {f.name for f in dataclasses.fields(SourceFile)}


def as_dictionary(dictionary: Dictionary | str | Path | None) -> Dictionary:
    return dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)


def check_programme_id(programme: str) -> None:
    if not isinstance(programme, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", programme):
        raise DictionaryError("a programme id is lower-case letters, digits and '_', starting "
                              f"with a letter (e.g. 'nieuw_programma'), not {programme!r}",
                              key="programme")
