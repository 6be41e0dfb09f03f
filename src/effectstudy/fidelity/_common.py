"""Helpers shared by the fidelity modules: the integrity dictionary, column checks and
the prescribed components of each client.

A private module of :mod:`effectstudy.fidelity` with public names, so that
:mod:`~effectstudy.fidelity.delivery`, :mod:`~effectstudy.fidelity.dose` and
:mod:`~effectstudy.fidelity.score` share one implementation without importing each
other's private helpers. Errors name the table and the column, never a value.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from effectstudy.dictionary import IntegrityDictionary, load_integrity
from effectstudy.errors import DataError

__all__ = ["integrity_dictionary", "prescribed_components", "require_columns"]


def integrity_dictionary(dictionary: Any) -> IntegrityDictionary:
    """The integrity dictionary of ``dictionary``.

    ``dictionary`` is an :class:`~effectstudy.dictionary.IntegrityDictionary` (returned
    as it is), a :class:`~effectstudy.dictionary.Dictionary`, a folder, or None for
    the shipped dictionary (read with :func:`~effectstudy.dictionary.load_integrity`).
    """
    if isinstance(dictionary, IntegrityDictionary):
        return dictionary
    return load_integrity(dictionary)


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise :class:`~effectstudy.errors.DataError` unless ``frame`` is a DataFrame with
    ``columns``; ``what`` names the table in the message (the first missing column is
    named as the error's column)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{what} must be a DataFrame")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{what} lacks column {missing[0]!r}", column=missing[0])


def prescribed_components(logs: pd.DataFrame, integ: IntegrityDictionary) -> pd.DataFrame:
    """One row per client x prescribed component of a validated delivery log.

    Columns ``programme, client, component, delivery, delivered``: ``delivered`` is 1
    when the component was delivered at least once in its phase, else 0. What counts
    as prescribed is described in :mod:`effectstudy.fidelity.delivery` (universal
    components once the log reaches their phase; tailored components when the log
    has a row for them).
    """
    out = []
    for (prog, client), g in logs.groupby(["programme", "client"], sort=True):
        phases = set(g["phase"])
        logged = set(g["component"])
        for comp in integ.components.get(prog, ()):
            if comp.delivery == "universal":
                on = bool(phases) if comp.phase == "all" else comp.phase in phases
            else:
                on = comp.id in logged
            if not on:
                continue
            rows = g[(g["component"] == comp.id) & g["phase"].map(comp.applies_in)]
            out.append({"programme": prog, "client": client, "component": comp.id,
                        "delivery": comp.delivery, "delivered": int((rows["delivered"] == 1).any())})
    return pd.DataFrame(out, columns=["programme", "client", "component", "delivery", "delivered"])
