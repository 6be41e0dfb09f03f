"""The header rule of the scaffolder: a header is shown only when it is made of column
vocabulary (a whitelist), never because it fails to look like a name (a blacklist).

A blacklist cannot know every name: ``mila vos``, ``sanne`` or ``de vries`` in lower case
look like any other word. So the rule is turned around: a header is shown only when every
word of it is a *column word*, i.e. one of

* :data:`EXPORT_WORDS`, a short list of common Dutch and English export words (below);
* the words of the data dictionary in use (:func:`dictionary_words`): every column the
  existing sources map, and the ids of constructs, instruments, scales, occasions, phases,
  programmes, interventions and event types, plus the lower-case words of their labels
  (a capitalised word of a label may be a proper name, such as an instrument's author);
* a Dutch compound of such words (``Uitstroomreden`` = ``uitstroom`` + ``reden``, pieces
  of four letters or more, ``nr`` and ``id``; a linking ``s`` and a plural ending allowed:
  a short word such as ``ego`` is no piece, or ``Egon`` would pass);
* a number of at most 4 digits, alone or glued to an occasion or unit abbreviation
  (``T0``, ``FU3``, ``12m``, ``w6``), but not after a client word (``client 12``,
  ``dossier 7``: a pivoted export's column of one client);
* a short connecting word (``van``, ``de``, ``in``, ``of``, ...) or a separator.

At least one word must be a column word of three letters or more (or ``id``, ``nr``): a
header of initials (``m.v.``), particles or numbers alone is not shown. On top of that, a
header holding 7 or more digits, an ``@``, a date (``14-03-2008``, ``7 nov 2009``) or an
initial before a word (``M. Vos``) is never shown, whatever its words.

Every other header is shown as ``column #N (not shown: may be a value)``: an export saved
with a data row as its header, or pivoted with a column per client, has values for headers.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Iterable, Mapping
from typing import Any

from effectstudy.dictionary import Dictionary, default_path, load_dictionary
from effectstudy.errors import EffectStudyError
from effectstudy.scaffold._read import DATE_IN_WORDS, fold

__all__ = ["EXPORT_WORDS", "dictionary_words", "header_hint", "header_is_safe", "hidden_header"]

#: Common words of Dutch and English export headers, beyond the data dictionary's own
#: words. Chosen so that no word is a common Dutch first name or surname (``post``,
#: ``groen``, ``koning`` and the months are left out on purpose).
EXPORT_WORDS: frozenset[str] = frozenset("""
    client clienten jongere jongeren jeugdige kind kinderen respondent resp dossier
    registratie volgnummer nummer number record kenmerk batch code rij row regel
    naam namen name voornaam achternaam roepnaam initialen tussenvoegsel
    datum date dat tijd time jaar year maand month dagen days periode period
    geboorte geboortedatum birth geb dob leeftijd age geslacht sexe sex gender
    bsn burgerservicenummer sofi telefoon tel mobiel phone adres address mail email
    postcode woonplaats straat huisnummer contact
    meting metingen meetmoment moment momenten occasion tijdstip peilmoment peildatum wave
    golf voormeting nameting tussenmeting premeting postmeting pre intake start begin eind
    einde end uitstroom instroom follow baseline nulmeting
    week weken weeks wk sessie sessies session sessions fase fasen phase phases conditie
    condition
    score scores totaal total totaalscore som sum ruwe raw waarde value values schaal scale
    subschaal subscale item items vraag vragen vragenlijst questionnaire instrument test
    norm percentiel rom uitslag resultaat result
    programma program programme zorg care behandeling behandel treatment traject verblijf
    duur duration reden reason interventie interventies intervention interventions module
    modules trouw getrouwheid fidelity model protocol
    opmerking opmerkingen notitie notities toelichting comment comments note notes memo
    omschrijving beschrijving verslag info informatie overig overige other extra anders
    status type soort label groep group locatie afdeling team gemiddelde mean aantal count
    ingevuld afgenomen missend missing geldig valid versie version bron source export
    blad sheet data ouder ouders mentor moeder vader uitkomst uitkomsten reeks dagboek log
    logboek delivery rating ratings long wide plaatsing aanmelding opname ontslag
    behandelaar hulpverlener indicatie participant visit timepoint followup pretest posttest
""".split())
#: Words of one or two letters that may stand in a header; only ``id`` and ``nr`` count
#: as a column word, the others only connect (``Weken in zorg``, ``datum van intake``).
_SHORT_WORDS = frozenset({"id", "nr", "t", "in", "op", "na", "of", "en", "de", "te", "up",
                          "vs", "at", "by", "to", "on"})
_STRONG_SHORT = frozenset({"id", "nr"})
#: Connecting words of three letters or more: allowed, but not a column word.
_CONNECTORS = frozenset({"van", "der", "den", "het", "een", "met", "per", "bij", "voor",
                         "naar", "tot", "uit", "the", "and", "for", "from", "with"})
#: Letters glued to a number in a header: occasions and units (``T0``, ``FU3``, ``12m``).
_UNITS = frozenset({"t", "m", "w", "fu", "wk", "mnd", "jr", "j", "v", "s", "x", "nr", "d"})
#: Words after which (or glued to which) a number is a client's number.
_CLIENT_WORD = re.compile(r"client|dossier|resp|jongere|kind|^id$|^nr$|nummer|number|"
                          r"registratie")
_MAX_NUMBER = 4  # digits of a number that may stand in a header
_DATE_NUMERIC = re.compile(r"\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}|"  # 14-03-2008
                           r"(?<!\d)\d{1,2}\s*[-/.]\s*(?:19|20)\d\d(?!\d)|"  # 03-2008
                           r"(?<!\d)(?:19|20)\d\d\s*[-/.]\s*\d{1,2}(?!\d)")  # 2008/03
_INITIAL = re.compile(r"(?<![^\W\d_])[A-Z]\.\s*[^\W\d_]*[a-z]")
_PLURAL = ("", "s", "n", "en", "e")


@functools.lru_cache(maxsize=1)
def _shipped_words() -> frozenset[str]:
    """The words of the shipped dictionary (empty if it cannot be loaded: stricter)."""
    try:
        return dictionary_words(load_dictionary(default_path()))
    except EffectStudyError:
        return frozenset()


def _strings(value: Any) -> Iterable[str]:
    """Every text in ``value``: a string, a mapping's values (a text in two languages),
    a sequence's items."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _strings(v)


def _words(text: str) -> list[str]:
    """The letter runs of ``text``, folded (``KIDS_OUDERS_{occasion}`` -> kids, ouders,
    occasion; ``T0`` -> t)."""
    return re.findall(r"[^\W\d_]+", fold(text))


def _lower_words(text: str) -> list[str]:
    """The words of a label written in lower case (a capitalised word may be a name)."""
    return [w for raw in re.findall(r"[^\W\d_]+", text) if raw == raw.lower()
            for w in _words(raw)]


# SourceFile fields that hold no column name (label values, formats, ids of the file).
# The file's path is left out too: it holds the programme id, and a programme's name is
# no column word (``veilig_lima``: Lima is also a first name).
_NOT_COLUMNS = frozenset({"labels", "missing_values", "date_format", "csv", "format", "layout",
                          "programme", "id", "client_id_format", "header_row", "path"})


def _column_texts(obj: Any, skip: frozenset[str] = _NOT_COLUMNS) -> Iterable[str]:
    """Every text in a source file's description except label values and formats."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name not in skip:
                yield from _column_texts(getattr(obj, f.name), frozenset({"labels"}))
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            yield from _strings(k)
            yield from _column_texts(v, frozenset({"labels"}))
    elif isinstance(obj, tuple | list):
        for v in obj:
            yield from _column_texts(v, frozenset({"labels"}))
    else:
        yield from _strings(obj)


def dictionary_words(d: Dictionary) -> frozenset[str]:
    """The column words a data dictionary adds to :data:`EXPORT_WORDS`.

    Every word of three letters or more of the columns its sources map (``client_id``,
    ``identifiers``, measure columns, occasion labels, event columns, ...) and of the ids
    of its constructs, instruments, scales, occasions, phases, programmes, interventions
    and event types; of their labels and names only the words written in lower case.
    """
    ids: list[str] = [*d.constructs, *d.occasions, *d.phases, *d.instruments, *d.event_types]
    labels: list[str] = []
    for c in d.constructs.values():
        labels += _strings(c.label)
    for o in d.occasions.values():
        labels += _strings(o.label)
    for ph in d.phases.values():
        labels += _strings(ph.label)
    for inst in d.instruments.values():
        ids += list(inst.scales)
        labels += _strings(inst.name)
    for prog in d.programmes.values():  # not its id nor its name: no column words
        for pp in prog.phases:
            ids.append(pp.id)
            labels += _strings(pp.label)
        for iv in prog.interventions:
            ids.append(iv.id)
            labels += _strings(iv.label)
    for et in d.event_types.values():
        labels += [*_strings(et.label_nl), *_strings(et.label_en)]
    for src in d.sources.values():
        for sf in src.files:
            ids += _column_texts(sf)
    words = {w for text in ids for w in _words(text)}
    words |= {w for text in labels for w in _lower_words(text)}
    return frozenset(w for w in words if len(w) >= 3 and w.isascii())


def _known(word: str, vocabulary: frozenset[str]) -> bool:
    """``word`` (folded letters) is a column word or a compound of them."""
    if not word.isascii():
        return False
    if len(word) <= 2:
        return word in _SHORT_WORDS
    if word in vocabulary or word in _CONNECTORS:
        return True
    # compound: pieces of 4+ letters (or nr/id), a linking "s" between pieces, a plural end
    n = len(word)
    reach = [False] * (n + 1)
    reach[0] = True
    for i in range(n):
        if not reach[i]:
            continue
        for j in range(i + 2, n + 1):
            piece = word[i:j]
            if (len(piece) >= 4 and piece in vocabulary) or piece in _STRONG_SHORT:
                reach[j] = True
                if j < n and word[j] == "s":
                    reach[j + 1] = True
    return any(reach[n - len(end)] for end in _PLURAL
               if n - len(end) > 0 and word.endswith(end))


def header_is_safe(header: str, vocabulary: Iterable[str] = ()) -> bool:
    """Whether an export header may be shown: only when it is made of column words.

    Parameters
    ----------
    header
        The header (or a sheet name, or the export's file name without its extension).
    vocabulary
        Column words besides :data:`EXPORT_WORDS` and the shipped dictionary's words:
        e.g. instrument ids (split into words and folded), or a frozenset of words already
        folded, as :func:`dictionary_words` of the dictionary in use gives.

    Returns
    -------
    bool
        True only when every word of the header is a column word, a compound of column
        words, a connecting word or a short number (see the module docstring), at least one
        of them a column word, and the header holds no 7+ digits, ``@``, date or initial
        before a word. A name in lower case (``mila vos``, ``van der berg``), initials
        (``m.v.``), a date, a BSN, an e-mail address or a telephone number is never shown.
    """
    text = str(header).strip()
    if not text:
        return False
    if (sum(ch.isdigit() for ch in text) >= 7 or "@" in text or _DATE_NUMERIC.search(text)
            or DATE_IN_WORDS.search(fold(text)) or _INITIAL.search(text)):
        return False
    text = re.sub(r"(?i)(?<![^\W\d_])e[-\s]?mail", "email", text)  # E-mail: no lone "e"
    extra = (vocabulary if isinstance(vocabulary, frozenset)  # dictionary_words(): words
             else {w for v in vocabulary for w in _words(v)})
    words = _shipped_words() | EXPORT_WORDS | extra
    content = False
    after_client = False
    for run in re.findall(r"[^\W_]+", fold(text)):
        parts = re.findall(r"\d+|[^\W\d_]+", run)
        glued = len(parts) > 1
        for part in parts:
            if part.isdigit():
                if len(part) > _MAX_NUMBER or after_client:
                    return False
                continue
            if glued and part in _UNITS:
                after_client = False
                continue
            if not _known(part, words):
                return False
            after_client = bool(_CLIENT_WORD.search(part))
            if (len(part) >= 3 and part not in _CONNECTORS) or part in _STRONG_SHORT:
                content = True
    return content


def hidden_header(index: int) -> str:
    """How a header that is not shown appears: by its position (``index`` from 0)."""
    return f"column #{index + 1} (not shown: may be a value)"


def header_hint(indices: Iterable[int]) -> str:
    """What to do about the headers that are not shown (``indices`` from 0); the message
    names them by position only."""
    where = ", ".join(f"#{i + 1}" for i in indices)
    return (f"the header of column(s) {where} is not shown: a header is shown only when it is "
            "made of column words, and these may be values (a name, a date, a number: an "
            "export saved with a data row as its header, or a column per client). If one is a "
            "column name, rename it in the export with words such as datum, score, meting, "
            "fase, or an instrument id with an occasion (CRIES_T0), or add a new instrument "
            "to instruments.yaml of your dictionary and pass it with --dictionary; else type "
            "its header into the draft yourself")
