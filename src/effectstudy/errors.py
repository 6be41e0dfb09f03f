"""Exception classes of effectstudy.

Every error the package raises on bad input is an :class:`EffectStudyError`. All of
them are value errors (bad data, a bad file, a bad argument or specification, a model
the data cannot support), so the base class subclasses :class:`ValueError`: code that
catches ``ValueError`` around an effectstudy call keeps working.
Messages name the file, row and column where they apply, and never carry a raw
client identifier (names, birth dates, BSN-like numbers or unpseudonymised ids).
"""

from __future__ import annotations

from pathlib import Path


class EffectStudyError(ValueError):
    """Base class of all errors raised by effectstudy on bad input or misuse."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        row: int | None = None,
        column: str | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.row = row
        self.column = column
        self.key = key
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(f"file {self.file}")
        if self.key is not None:
            where.append(f"key {self.key!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{self.message} ({', '.join(where)})" if where else self.message


class DictionaryError(EffectStudyError):
    """The data dictionary is malformed: a typo, an unknown key, a bad value."""


class SourceError(EffectStudyError):
    """A raw export cannot be read as its dictionary entry describes."""


class HarmoniseError(EffectStudyError):
    """Harmonising failed as a whole (not a single row, which is logged instead)."""


class DataError(EffectStudyError):
    """An analysis got data it cannot work with (wrong columns, degenerate series)."""


class ModelError(EffectStudyError):
    """A model could not be specified or fitted."""


class SpecError(EffectStudyError):
    """An analysis or design specification (YAML or arguments) is invalid."""
