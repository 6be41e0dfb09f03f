"""The results of a study run, kept on disk as parquet + JSON (never pickle).

:meth:`StudyResults.save` writes one parquet file per result frame and
``provenance.json`` (the spec, the JSON metadata of every section and a manifest of
the files with their row counts, sizes and sha256) with
:func:`effectstudy.table.write_frames`: atomically (a temporary folder renamed into
place), files ``0600`` in a ``0700`` folder. :meth:`StudyResults.load` verifies the
manifest before it reads anything (:func:`effectstudy.table.read_provenance`,
:func:`~effectstudy.table.check_manifest`, :func:`~effectstudy.table.read_frame`).

The results are exact and internal (client pseudonyms included): audience rules are
applied by the renderer, never here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.errors import SpecError
from effectstudy.table import check_manifest, read_frame, read_provenance, write_frames

#: Marks a folder written by :meth:`StudyResults.save` (and its layout version).
KIND = "effectstudy-study-results"
VERSION = 1


def _jsonable(value: Any) -> Any:
    """Plain JSON types (numpy scalars unwrapped, NaN as None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _missing(v: Any) -> bool:
    try:
        return v is None or bool(pd.isna(v))
    except (TypeError, ValueError):  # arrays and other non-scalars are values
        return False


def _parquet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """One type per column, as parquet needs: flags with gaps become nullable booleans,
    numbers with gaps floats, and a column that mixes text with other types text."""
    out = frame.reset_index(drop=True).copy()
    out.columns = [str(c) for c in out.columns]
    for col in out.columns:
        if out[col].dtype != object:
            continue
        kinds = {type(v) for v in out[col] if not _missing(v)}
        if not kinds or kinds <= {str}:
            continue
        if kinds <= {bool, np.bool_}:
            out[col] = out[col].map(lambda v: None if _missing(v) else bool(v)).astype("boolean")
        elif kinds <= {int, float, np.int64, np.float64, np.int32, np.float32}:
            out[col] = pd.to_numeric(out[col], errors="coerce")
        else:
            out[col] = out[col].map(lambda v: None if _missing(v) else str(v))
    return out


@dataclass
class StudyResults:
    """Exact results of every analysis of a spec (see :func:`effectstudy.study.run`).

    Attributes
    ----------
    spec
        The validated analysis spec.
    frames
        Name -> result table (``flow``, ``descriptives``, ``rc``, ``rc_summary``,
        ``norm_view``, ``prepost``, ``follow_up``, ``sced_es``, ``sced_rand``,
        ``sced_design``, ``sced_series``, ``ml_coefs``, ``ml_varcomp``, ``ml_pred``,
        ``ml_means``, ``slopes``, ``slopes_vs_mean``, ``slopes_cr2``, ``slopes_n``,
        ``power``, ...: whichever the spec asked for).
    meta
        JSON-able metadata: the programmes as the dictionary describes them, the
        sections run, model settings and messages, provenance.
    """

    spec: dict[str, Any]
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sections(self) -> list[str]:
        return list(self.meta.get("sections", []))

    @property
    def programme_ids(self) -> list[str]:
        """Programmes with clients in the data (sorted)."""
        flow = self.frames.get("flow")
        return sorted(flow["programme"].astype(str)) if flow is not None else []

    def frame(self, name: str) -> pd.DataFrame:
        """A result table, or an empty frame when the section was not run."""
        return self.frames.get(name, pd.DataFrame())

    def save(self, folder: str | Path) -> list[Path]:
        """Write the results to ``folder`` (parquet + ``provenance.json``), atomically.

        Files are ``0600``, the folder ``0700``; ``provenance.json`` lists each file
        with its row count, size and sha256, checked by :meth:`load`.
        """
        frames = {name: _parquet_safe(f) for name, f in self.frames.items()}
        record = {"kind": KIND, "version": VERSION, "spec": _jsonable(self.spec),
                  "meta": _jsonable(self.meta)}
        return write_frames(folder, frames, record, ("parquet",))

    @classmethod
    def load(cls, folder: str | Path) -> StudyResults:
        """Read results written by :meth:`save`, every file verified against its hash."""
        folder = Path(folder)
        prov = read_provenance(folder)
        if prov.get("kind") != KIND:
            raise SpecError("not a study results folder (written by 'effectstudy run')",
                            file=folder)
        if prov.get("version") != VERSION:
            raise SpecError(f"study results of layout version {prov.get('version')!r}; "
                            f"this effectstudy reads version {VERSION}: run the study again",
                            file=folder)
        names = [n.rsplit(".", 1)[0] for n in prov["files"]]
        # a data file that the manifest does not list (left by another run, added later)
        # is refused, not ignored
        present = [p.name.rsplit(".", 1)[0] for p in folder.iterdir()
                   if p.suffix in (".parquet", ".csv")]
        check_manifest(folder, prov, [*names, *present])
        frames = {n: read_frame(folder, n, prov) for n in names}
        return cls(spec=prov.get("spec") or {}, frames=frames, meta=prov.get("meta") or {})

    def _repr_html_(self) -> str:
        import html

        items = "".join(f"<li>{html.escape(s)}</li>" for s in self.sections)
        return f"<p>Study results: {len(self.frames)} tables</p><ol>{items}</ol>"
