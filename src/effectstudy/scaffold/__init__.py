"""Draft data-dictionary entries for a new programme from its export.

:func:`draft_source` reads one export (CSV, Excel or SPSS) and writes a *draft* of
``data_dictionary/sources/<programme>.yaml``; :func:`draft_programme` drafts the
programme's entry of ``programmes.yaml``. Both are drafts: every line is to be checked,
every ``TODO`` filled in, and the result validated with ``effectstudy dictionary check``.

What is detected
----------------
* CSV: the encoding (a byte-order mark; else valid UTF-8; else cp1252), the separator
  (of ``, ; tab |``, the one that gives most rows the same number of columns, two or
  more) and the decimal mark (``,`` when more number-like cells are written ``9,7`` than
  ``9.7``).
* Excel: every worksheet is read (merged cells hold their value in the top-left cell
  only); the header row of a sheet is the first row whose cells are mostly non-empty
  text and which is followed by a data row (a row with a number or a date); the sheet
  picked is the one with the most data cells below its header.
* SPSS (via :func:`effectstudy.harmonise.readers.read_spss`): value labels are used to
  list the labels of categorical columns.
* The date format (``date_format``) from the shape of the text cells that look like
  dates (``31-01-2024`` -> ``%d-%m-%Y``; day first when the shape is ambiguous).
* Identifier-looking columns, to be dropped at the door (``identifiers:``): names (by
  header, or by values shaped like a person's name), dates of birth (by header), BSN-like
  numbers (8 or 9 digits passing the elfproef, the BSN's 11-test), contact details
  (telephone numbers, e-mail addresses, by header or value) and free text (by header,
  long values, or many distinct values of several words).
* Score columns, matched to the dictionary's instruments and scales by name (the
  columns the existing sources map, then the instrument ids and their scales), with
  the match shown as a YAML comment; a wide layout (``CRIES_T0``, ``CRIES_T1``) becomes
  the template ``CRIES_{occasion}`` and its occasion labels are listed.
* The layout: ``wide`` (occasion templates), ``long`` (instrument, scale and score
  columns; the label pairs are matched), ``series`` (a session column of week numbers
  and an A/B phase column) or ``occasion_rows``.
* Occasion, phase, end-reason and other label columns, with the labels found listed
  as ``# TODO`` lines for the user to map.

Privacy rule (what the draft and the console may show)
-------------------------------------------------------
The export holds data of minors who are crime victims. The draft, the findings and the
console output show:

* **a column header** only when it is made of column words (a whitelist, see
  :mod:`effectstudy.scaffold._vocabulary`): every word of it is a word of
  :data:`EXPORT_WORDS` (common Dutch and English export words such as ``datum``,
  ``client``, ``score``, ``meting``, ``fase``), a word of the data dictionary in use (the
  columns its sources map; the ids of its constructs, instruments, scales, occasions and
  phases and the lower-case words of their labels), a compound of such words
  (``Uitstroomreden``), a connecting word (``in``, ``van``), or a number of at most 4
  digits (``T0``, ``Sessie 3``; not after a client word: ``client 12``). Any other header
  -- a name in any case (``mila vos``, ``van der berg``), initials (``m.v.``), a date, a
  BSN-like number, an e-mail address or a telephone number, as when an export was saved
  with a data row as its header or pivoted with a column per client -- is shown as
  ``column #N (not shown: may be a value)`` (N counts the columns from 1), with a hint
  how to name it; there is no option to show it;
* **never a cell value** of an identifier-looking or free-text column, nor of the
  client-id column; counts and shapes (``%d-%m-%Y``) only;
* **label values** (occasion, phase, end-reason, ... labels) only when the column is a
  *closed list*: at most 12 distinct values, each at most 40 characters, none holding
  7 or more digits, an ``@``, a line break, the shape of a person's name or a
  capitalised word after the first (``gesprek met Kevin``: a third party), and the
  values do not single out clients: either they change within a client (occasion and
  phase labels), or there are fewer distinct values than clients and each value shown
  is held by at least two clients (a value held by one client is counted, not shown).
  Otherwise the draft says how many labels there are and that they are not shown;
* **intervention items** (an interventions cell is split on ``; , |``) one by one: an
  item is shown when at least two clients have it and it passes the same shape test;
  the others are counted, not shown;
* **text in score cells** only when it is a known missing-value code (``n.v.t.``,
  ``-``, ``onbekend``, ...); any other text is counted, not shown;
* the sheet name and the export's file name follow the header rule (the words of the
  programme id count as column words for them).

Errors are :class:`~effectstudy.errors.SourceError` naming the file (never a cell).
"""

from __future__ import annotations

from effectstudy.scaffold._draft import draft_programme, draft_source
from effectstudy.scaffold._read import Finding, elfproef
from effectstudy.scaffold._vocabulary import EXPORT_WORDS, dictionary_words, header_is_safe

__all__ = ["EXPORT_WORDS", "Finding", "dictionary_words", "draft_programme", "draft_source",
           "elfproef", "header_is_safe"]
