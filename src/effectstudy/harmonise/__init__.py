"""Harmonise raw programme exports into one long tidy table (privacy at the door).

>>> from effectstudy.harmonise import harmonise, read_harmonised
>>> h = harmonise("exports/")            # doctest: +SKIP
>>> h.summary()                          # doctest: +SKIP
>>> h.write("harmonised/", format=("parquet", "csv"))  # doctest: +SKIP
>>> h2 = read_harmonised("harmonised/")  # doctest: +SKIP

The entry point is the function :func:`effectstudy.harmonise.harmonise` (also reachable
as ``effectstudy.harmonise_exports``); the package itself is a plain module.

Modules: :mod:`.readers` (per format), :mod:`.mapping` (per layout, row accounting),
:mod:`.log` (rejection log), :mod:`.schema` (pandera schemas), :mod:`.pseudonym`
(keyed pseudonyms), :mod:`.core` (``harmonise`` and ``Harmonised``).
"""

from __future__ import annotations

from effectstudy.harmonise.core import (
    Harmonised,
    UndescribedFileWarning,
    dictionary_for,
    harmonise,
    read_harmonised,
)
from effectstudy.harmonise.events import EVENT_COLUMNS, time_to_first_absconding
from effectstudy.harmonise.log import EVENT_KINDS, KINDS, LOG_COLUMNS
from effectstudy.harmonise.pseudonym import pseudonymise
from effectstudy.harmonise.schema import CLIENT_COLUMNS, TABLE_COLUMNS

__all__ = ["harmonise", "Harmonised", "read_harmonised", "pseudonymise", "TABLE_COLUMNS",
           "CLIENT_COLUMNS", "LOG_COLUMNS", "KINDS", "UndescribedFileWarning", "dictionary_for",
           "EVENT_COLUMNS", "EVENT_KINDS", "time_to_first_absconding"]
