"""``harmonise()``: raw programme exports -> one long tidy table, a client table and a log.

See :func:`harmonise`. Analyses read the result back with :func:`read_harmonised`
and never touch the raw exports.

Long because the run-wide steps belong together: choosing the inputs, resolving clients
across files, the pseudonym collision check, building the table, clients, events and the
accounting, and writing and verifying the output; the per-file work is in
:mod:`~effectstudy.harmonise.mapping`, :mod:`~effectstudy.harmonise.readers` and
:mod:`~effectstudy.harmonise.events`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import hmac
import re
import unicodedata
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.errors as pa_errors

from effectstudy.dictionary import (
    CLIENT_SEXES,
    END_REASONS,
    INTEGRITY_LAYOUTS,
    Dictionary,
    SourceFile,
    load_dictionary,
    load_integrity,
    resolve_dictionary,
)
from effectstudy.errors import EffectStudyError, HarmoniseError, SourceError
from effectstudy.harmonise.events import build_events, event_accounting, events_frame
from effectstudy.harmonise.integrity import (
    DELIVERY_COLUMNS,
    RATINGS_COLUMNS,
    STAFF_PREFIXES,
    IntegrityResult,
    build_integrity,
    delivery_frame,
    ratings_frame,
    read_integrity,
)
from effectstudy.harmonise.log import RejectionLog
from effectstudy.harmonise.mapping import FileResult, map_file
from effectstudy.harmonise.pseudonym import (
    PSEUDONYM_HEX_DIGITS,
    check_key_file_location,
    normalise_id,
    resolve_key,
)
from effectstudy.harmonise.readers import read_source
from effectstudy.harmonise.schema import (
    AGE_RANGE,
    CLIENT_COLUMNS,
    TABLE_COLUMNS,
    clients_schema,
    rejections_schema,
    table_schema,
)
from effectstudy.table import check_manifest, read_frame, read_provenance, write_frames

ACCOUNTING_COLUMNS = ("programme", "file", "status", "cells_read", "cells_empty", "rows_in",
                      "rows_out", "rows_rejected", "events_in", "events_out", "events_rejected")
#: Columns of the per client x occasion cell accounting (:attr:`Harmonised.cells`).
CELLS_COLUMNS = ("programme", "client", "occasion", "occasion_label", "cells_read",
                 "cells_empty", "rows_in", "rows_out", "rows_rejected")
#: ``status`` of an export that was read.
READ = "read"
#: ``status`` of a file in the input folder that no source describes.
NOT_DESCRIBED = "not described in the dictionary"
#: The fix named whenever data and dictionary do not match.
DICTIONARY_FIX = "pass --dictionary <the folder the data were harmonised with>"


class UndescribedFileWarning(UserWarning):
    """A file in the input folder that no source of the data dictionary describes (not read).

    The message names the file (the user's own folder listing) and the nearest declared
    ``path:``; ``harmonise(..., strict=True)`` (CLI ``--strict``) makes it an error.
    """

Progress = Callable[[str, int, int], None]


# --------------------------------------------------------------------------- #
# Result
# --------------------------------------------------------------------------- #
@dataclass(frozen=True)
class Harmonised:
    """Result of :func:`harmonise` (or :func:`read_harmonised`).

    Attributes
    ----------
    table
        Long tidy table, one row per accepted score; columns
        :data:`~effectstudy.harmonise.schema.TABLE_COLUMNS`.
    clients
        One row per programme x client; columns
        :data:`~effectstudy.harmonise.schema.CLIENT_COLUMNS`.
    rejections
        The rejection log; columns :data:`~effectstudy.harmonise.log.LOG_COLUMNS`.
    accounting
        Per file of the input folder (:data:`ACCOUNTING_COLUMNS`): ``status`` (``read``,
        or ``not described in the dictionary (nearest declared path: ...)`` with zero
        counts), score cells read, of which empty (not measured: blank or a declared
        ``missing_values`` text), score records ``rows_in = cells_read - cells_empty``,
        and ``rows_in = rows_out + rows_rejected`` exactly.
    provenance
        The dictionary (path and sha256), input file sha256s, files not described and
        declared files absent, effectstudy version, date.
    cells
        The same cell accounting per programme x client x occasion
        (:data:`CELLS_COLUMNS`; ``client`` is empty for rows whose client id is missing
        or invalid, ``occasion``/``occasion_label`` for undeclared occasion labels).
        Kept in memory by :func:`harmonise` (not written; empty after
        :func:`read_harmonised`).
    events
        One row per event (absconding episode, safety report, transfer, end of care);
        columns :data:`~effectstudy.harmonise.events.EVENT_COLUMNS`, see
        :mod:`effectstudy.harmonise.events`. Per file of the accounting
        ``events_in = events_out + events_rejected``.
    """

    table: pd.DataFrame
    clients: pd.DataFrame
    rejections: pd.DataFrame
    accounting: pd.DataFrame
    provenance: dict[str, Any] = field(default_factory=dict)
    key_file: Path | None = field(default=None, repr=False, compare=False)
    cells: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=list(CELLS_COLUMNS)),
                                repr=False, compare=False)
    events: pd.DataFrame = field(default_factory=events_frame, repr=False, compare=False)
    #: Delivery logs and fidelity ratings (:mod:`effectstudy.harmonise.integrity`).
    delivery: pd.DataFrame = field(default_factory=delivery_frame, repr=False, compare=False)
    fidelity_ratings: pd.DataFrame = field(default_factory=ratings_frame, repr=False,
                                           compare=False)

    def __repr__(self) -> str:
        return (f"Harmonised({len(self.table)} scores, {len(self.clients)} clients, "
                f"{len(self.rejections)} log entries, "
                f"{self.accounting['programme'].dropna().nunique()} programmes)")

    def rejection_counts(self) -> pd.DataFrame:
        """Per programme x kind: log entries and score records rejected."""
        rej = self.rejections
        if rej.empty:
            return pd.DataFrame(columns=["programme", "kind", "entries", "scores"])
        out = (rej.groupby(["programme", "kind"], sort=True)
               .agg(entries=("kind", "size"), scores=("scores", "sum")).reset_index())
        return out

    def summary(self) -> pd.DataFrame:
        """Per programme: files, clients, occasions, constructs, instruments, cells, rows.

        ``cells_read`` are score cells examined, ``cells_empty`` those not measured (blank
        or a declared missing-by-design text), ``rows_in`` score records read
        (``cells_read - cells_empty``), ``rows`` scores in the table, ``rows_rejected``
        score records rejected, ``notes`` log entries that rejected no score (e.g. dropped
        undeclared columns), ``rejected_by_reason`` e.g. ``"out_of_range 3, duplicate 1"``.
        Files not described in the dictionary are not in this summary (see
        :attr:`accounting`).
        """
        read = self.accounting[self.accounting["programme"].notna()]
        progs = sorted(set(read["programme"]) | set(self.clients["programme"]))
        rows = []
        for p in progs:
            t = self.table[self.table["programme"] == p]
            acc = read[read["programme"] == p]
            rej = self.rejections[self.rejections["programme"] == p]
            by = rej[rej["scores"] > 0].groupby("kind")["scores"].sum().sort_values(
                ascending=False)
            rows.append({
                "programme": p,
                "files": int(len(acc)),
                "clients": int((self.clients["programme"] == p).sum()),
                "occasions": int(t["occasion"].nunique()),
                "constructs": int(t["construct"].nunique()),
                "instruments": int(t["instrument"].nunique()),
                "cells_read": int(acc["cells_read"].sum()) if "cells_read" in acc else 0,
                "cells_empty": int(acc["cells_empty"].sum()) if "cells_empty" in acc else 0,
                "rows": int(len(t)),
                "rows_in": int(acc["rows_in"].sum()),
                "rows_rejected": int(acc["rows_rejected"].sum()),
                "notes": int((rej["scores"] == 0).sum()),
                "rejected_by_reason": ", ".join(f"{k} {int(v)}" for k, v in by.items()),
            })
        return pd.DataFrame(rows, columns=["programme", "files", "clients", "occasions",
                                           "constructs", "instruments", "cells_read",
                                           "cells_empty", "rows", "rows_in",
                                           "rows_rejected", "notes", "rejected_by_reason"])

    def write(self, out_dir: str | Path, format: str | Sequence[str] = "parquet") -> list[Path]:
        """Write table, clients, rejections, accounting, events and ``provenance.json``, atomically.

        The folder is built aside and swapped in at the end (an interrupted write leaves
        the earlier output intact); files are ``0600``, the folder ``0700``; CSV cells
        that look like spreadsheet formulas are escaped with ``'``; ``provenance.json``
        records each file's row count, size and sha256 (see :mod:`effectstudy.table`).

        Parameters
        ----------
        out_dir
            Output folder (created or replaced). Must not hold the pseudonym key file,
            nor anything but an earlier harmonised output.
        format
            ``"parquet"``, ``"csv"`` or both (a sequence).

        Returns
        -------
        list of Path
            The files written.
        """
        out = Path(out_dir)
        formats = [format] if isinstance(format, str) else list(format)
        bad = [f for f in formats if f not in ("parquet", "csv")]
        if bad or not formats:
            raise HarmoniseError(f"unknown output format(s) {bad}; use 'parquet' and/or 'csv'")
        if self.key_file is not None:
            check_key_file_location(self.key_file, [out])
        return write_frames(out, dict(zip(_FRAMES, (self.table, self.clients, self.rejections,
                                                     self.accounting, self.events,
                                                     self.delivery, self.fidelity_ratings),
                                          strict=True)),
                            self.provenance, formats)


#: The frames written by :meth:`Harmonised.write` (the per client x occasion ``cells``
#: accounting is kept in memory only; its per-file totals are in ``accounting``).
_FRAMES = ("table", "clients", "rejections", "accounting", "events", "delivery",
           "fidelity_ratings")


def _read_frame(folder: Path, name: str, str_cols: Iterable[str],
                provenance: dict[str, Any]) -> pd.DataFrame:
    """One frame (parquet preferred), verified against the hash and row count in provenance."""
    return read_frame(folder, name, provenance, str_cols)


def _schema_failures(exc: Exception) -> str:
    """Which columns failed which checks, without echoing any cell value (privacy)."""
    cases = getattr(exc, "failure_cases", None)
    if isinstance(cases, pd.DataFrame) and {"column", "check"} <= set(cases.columns):
        pairs = sorted({f"{c}: {k}" for c, k in zip(cases["column"], cases["check"], strict=True)})
        return "; ".join(pairs)[:400]
    column = getattr(getattr(exc, "schema", None), "name", None)
    return f"column {column!r} failed a check" if column else "a schema check failed"


def read_harmonised(folder: str | Path, dictionary: Dictionary | str | Path | None = None
                    ) -> Harmonised:
    """Read a folder written by :meth:`Harmonised.write` (parquet preferred, else csv).

    The folder is verified against ``provenance.json`` first: every recorded file is
    present with its size, no unrecorded data file lies beside them, and each file read
    has its recorded sha256 and row count. The frames are then validated against the
    same schemas as on writing. When read from CSV, text cells that the writer escaped
    against spreadsheet formulas keep their leading ``'``.

    Without ``dictionary`` the dictionary recorded in ``provenance.json`` is used while its
    folder still has the recorded sha256, else env ``EFFECTSTUDY_DICTIONARY`` or the
    shipped one (:func:`dictionary_for`). Data naming a programme that dictionary does not
    describe give one sentence naming the programme ids and the fix (``pass --dictionary
    <the folder the data were harmonised with>``), never a schema traceback.

    Raises
    ------
    HarmoniseError
        Not a harmonised folder, or a file missing, truncated, changed, unrecorded or
        unreadable (the error names the file), a programme unknown to the dictionary, or a
        schema check failed.
    """
    folder = Path(folder)
    provenance = read_provenance(folder)
    d = dictionary_for(provenance, dictionary)
    check_manifest(folder, provenance, _FRAMES)
    tsch, csch, rsch = table_schema(d), clients_schema(d), rejections_schema()

    def strs(schema) -> list[str]:
        return [n for n, c in schema.columns.items() if str(c.dtype) in ("str", "string")]

    table = _read_frame(folder, "table", strs(tsch), provenance)
    clients = _read_frame(folder, "clients", strs(csch), provenance)
    _check_programmes(d, provenance, table, clients, folder)
    if "sex" not in clients.columns:  # written before the sex column existed
        clients.insert(list(CLIENT_COLUMNS).index("sex"), "sex", None)
    clients["end_reason"] = clients["end_reason"].where(clients["end_reason"].notna(),
                                                        "unknown")
    try:
        table = tsch.validate(table)
        clients = csch.validate(clients)
        rejections = rsch.validate(_read_frame(folder, "rejections", strs(rsch), provenance))
    except (pa_errors.SchemaError, pa_errors.SchemaErrors) as exc:
        raise HarmoniseError("harmonised output does not match its schema: "
                             f"{_schema_failures(exc)}", file=folder) from exc
    accounting = _read_frame(folder, "accounting", ["programme", "file", "status"], provenance)
    recorded = provenance.get("files", {})
    if any(f"events.{fmt}" in recorded for fmt in ("parquet", "csv")):
        events = events_frame(_read_frame(folder, "events", [
            "programme", "client", "type", "reason", "source_file", "source_column"],
            provenance))
    else:  # written before events existed
        events = events_frame()
    integ = {name: make(_read_frame(folder, name, [c for c in cols if c not in (
        "week", "delivered", "minutes", "score", "source_row")], provenance))
        if any(f"{name}.{fmt}" in recorded for fmt in ("parquet", "csv")) else make()
        for name, make, cols in (("delivery", delivery_frame, DELIVERY_COLUMNS),
                                 ("fidelity_ratings", ratings_frame, RATINGS_COLUMNS))}
    return Harmonised(table, clients, rejections, accounting, provenance, events=events, **integ)


def dictionary_for(provenance: dict[str, Any] | str | Path,
                   dictionary: Dictionary | str | Path | None = None) -> Dictionary:
    """The dictionary to read a harmonised output with.

    An explicit ``dictionary`` wins. Otherwise the dictionary recorded in the output's
    ``provenance.json`` (path and sha256) is used when that folder still has the same
    content; else the one :func:`~effectstudy.dictionary.resolve_dictionary` gives (env
    ``EFFECTSTUDY_DICTIONARY``, else the shipped one).

    Parameters
    ----------
    provenance
        The output's provenance (a dict) or the harmonised folder.
    dictionary
        A loaded dictionary, a folder, or None.

    Returns
    -------
    Dictionary
    """
    if isinstance(dictionary, Dictionary):
        return dictionary
    if dictionary is not None:
        return load_dictionary(dictionary)
    prov = provenance if isinstance(provenance, dict) else read_provenance(provenance)
    recorded = prov.get("dictionary") if isinstance(prov.get("dictionary"), dict) else {}
    path, sha = recorded.get("path"), recorded.get("sha256")
    if isinstance(path, str) and isinstance(sha, str) and Path(path).is_dir():
        try:
            candidate = load_dictionary(path)
        except EffectStudyError:
            candidate = None
        if candidate is not None and candidate.sha256 == sha:
            return candidate
    return load_dictionary(resolve_dictionary(None))


def _check_programmes(d: Dictionary, provenance: dict[str, Any], table: pd.DataFrame,
                      clients: pd.DataFrame, folder: Path) -> None:
    """One sentence naming the programme ids the dictionary does not know, and the fix."""
    found: set[str] = set()
    for frame in (table, clients):
        if "programme" in frame.columns:
            found |= {str(p) for p in frame["programme"].dropna().unique()}
    unknown = sorted(found - set(d.programmes))
    if not unknown:
        return
    recorded = provenance.get("dictionary") if isinstance(provenance.get("dictionary"),
                                                          dict) else {}
    was = (f" (provenance.json records {recorded['path']})"
           if isinstance(recorded.get("path"), str) else "")
    ids = ", ".join(unknown)
    raise HarmoniseError(
        f"the harmonised data hold programme(s) {ids} that the data dictionary {d.path} does "
        f"not describe: {DICTIONARY_FIX}{was}", file=folder)


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #
def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _nearest_path(name: str, declared: Iterable[str]) -> str | None:
    """The declared ``path:`` most similar to a file name (difflib ratio), if any."""
    best, score = None, -1.0
    for path in sorted(set(declared)):
        r = difflib.SequenceMatcher(None, name.casefold(), path.casefold()).ratio()
        if r > score:
            best, score = path, r
    return best


def _select_inputs(d: Dictionary, folder_or_files: str | Path | Sequence[str | Path],
                   programmes: Sequence[str] | None
                   ) -> tuple[list[tuple[Path, SourceFile]], list[Path],
                              list[tuple[str, str | None]], list[tuple[str, str]]]:
    if programmes is not None:
        unknown = [p for p in programmes if p not in d.sources]
        if unknown:
            raise HarmoniseError(f"programme(s) {unknown} have no source description in the "
                                 f"data dictionary; known: {sorted(d.sources)}")
    wanted = list(programmes) if programmes is not None else sorted(d.sources)
    by_name = {Path(sf.path).name: sf for src in d.sources.values() for sf in src.files}
    chosen: list[tuple[Path, SourceFile]] = []
    undescribed: list[tuple[str, str | None]] = []
    absent: list[tuple[str, str]] = []
    if isinstance(folder_or_files, str | Path) and Path(folder_or_files).is_dir():
        folder = Path(folder_or_files)
        for prog in wanted:
            for sf in d.sources[prog].files:
                path = folder / sf.path
                if path.is_file():
                    chosen.append((path, sf))
                elif programmes is not None:
                    raise SourceError("export file not found (programme requested)", file=path)
                else:
                    absent.append((prog, sf.path))
        declared = [sf.path for src in d.sources.values() for sf in src.files]
        described = {folder / p for p in declared}
        for p in sorted(folder.iterdir()):
            if p.is_file() and p not in described and not p.name.startswith("."):
                undescribed.append((p.name, _nearest_path(p.name, declared)))
        roots = [folder]
    else:
        items = ([folder_or_files] if isinstance(folder_or_files, str | Path)
                 else list(folder_or_files))
        for item in items:
            path = Path(item)
            if not path.is_file():
                raise SourceError("export file not found", file=path)
            sf = by_name.get(path.name)
            if sf is None:
                raise SourceError("file is not described in the data dictionary "
                                  "(sources/*.yaml path)", file=path)
            if sf.programme in wanted:
                chosen.append((path, sf))
        roots = sorted({p.parent for p, _ in chosen})
    if not chosen:
        seen = (f"; the folder holds {len(undescribed)} file(s) no source describes, e.g. "
                f"{undescribed[0][0]!r} (nearest declared path: {undescribed[0][1]!r})"
                if undescribed else "")
        raise HarmoniseError(f"no export described in the data dictionary ({d.path}) was "
                             f"found{seen}",
                             file=str(folder_or_files) if isinstance(folder_or_files, str | Path)
                             else None)
    order = {(src.programme, sf.id): (i, j) for i, src in enumerate(
        sorted(d.sources.values(), key=lambda s: s.programme)) for j, sf in enumerate(src.files)}
    chosen.sort(key=lambda ps: order[(ps[1].programme, ps[1].id)])
    return chosen, roots, undescribed, absent


# --------------------------------------------------------------------------- #
# Client-level resolution
# --------------------------------------------------------------------------- #
def _resolve_clients(d: Dictionary, results: list[FileResult], log: RejectionLog
                     ) -> dict[tuple[str, str], dict]:
    clients: dict[tuple[str, str], dict] = {}
    fidelity_obs: dict[str, list[dict]] = defaultdict(list)
    for res in results:
        for ob in res.client_obs:
            k = (ob["programme"], ob["client"])
            c = clients.setdefault(k, {"_first": {}})
            fld = ob["field"]
            if fld == "_seen":
                continue
            if fld == "fidelity":
                fidelity_obs[ob["programme"]].append(ob)
                continue
            first = c["_first"].get(fld)
            if first is None:
                c["_first"][fld] = ob
                c[fld] = ob["value"]
            elif ob["value"] != first["value"]:
                # values are parsed numbers or dictionary ids: shown by declared type only
                prog = d.programmes[ob["programme"]]
                shape, allowed = {
                    "weeks_in_care": ("number", ()),
                    "last_phase": ("label", {p.id for p in prog.phases}),
                    "end_reason": ("label", set(END_REASONS)),
                    "sex": ("label", set(CLIENT_SEXES)),
                    "interventions": ("label", {iv.id for iv in prog.interventions}),
                }.get(fld, (None, ()))
                log.add(programme=ob["programme"], file=ob["file"], row=ob["row"],
                        column=ob["column"], kind="inconsistent_client",
                        reason=(f"{fld} differs from the client's first value "
                                f"({first['file']} row {first['row']}); first value kept"),
                        value=ob["value"], scores=0, shape=shape, allowed=allowed)
    # fidelity: one value per programme, the most frequent over clients (each client's first
    # value; ties: first seen); every row that deviates is logged
    for prog, obs in fidelity_obs.items():
        per_client: dict[str, float] = {}
        for ob in obs:
            per_client.setdefault(ob["client"], ob["value"])
        counts = Counter(per_client.values())
        top = max(counts.values())
        value = next(v for v in per_client.values() if counts[v] == top)
        for ob in obs:
            if ob["value"] != value:
                log.add(programme=prog, file=ob["file"], row=ob["row"], column=ob["column"],
                        kind="inconsistent_fidelity",
                        reason=(f"fidelity is programme-level but differs within {prog}; "
                                f"the programme value {value:g} (most frequent) is used"),
                        value=ob["value"], scores=0, shape="number")
        for (p, _), c in clients.items():
            if p == prog:
                c["fidelity"] = value
    return clients


# --------------------------------------------------------------------------- #
# Pseudonym collisions over the whole run
# --------------------------------------------------------------------------- #
_ID_SEPARATORS = re.compile(r"[\s.,_/-]+")


def _loose_id(rid: str) -> str:
    """A raw id reduced to what any declared id format keeps (case, separators, zeros).

    Two rows whose loose ids are equal may be one client linked by the declared id
    format; only rows whose loose ids differ are certainly two clients. The collision
    check therefore never stops a run over ids that mapping linked on purpose.
    """
    text = unicodedata.normalize("NFKC", rid).casefold().strip()
    text = re.sub(r"[.,]0+$", "", text)
    text = _ID_SEPARATORS.sub("", text)
    return text.lstrip("0") or "0"


def _column_owners(raw: Any, column: str | None, key: bytes, tag: str,
                   reduce: Callable[[str], str]) -> dict[int, str]:
    """Source row -> full-length keyed digest of ``tag`` and the reduced raw id of ``column``.

    Kept in memory for the collision check only, under a label of its own (so it is no
    pseudonym); no raw id is kept or written. Rows without an id are left out.
    """
    frame = getattr(raw, "frame", None)
    rows = getattr(raw, "rows", None)
    if frame is None or rows is None or column is None or column not in frame.columns:
        return {}
    out: dict[int, str] = {}
    for n, value in zip(rows, frame[column].tolist(), strict=True):
        try:
            rid = normalise_id(value)
        except Exception:  # noqa: BLE001 - an unusable id is mapping's to reject
            rid = None
        if rid is None:
            continue
        msg = f"effectstudy collision check\x1f{tag}\x1f{reduce(rid)}".encode()
        out[int(n)] = hmac.new(key, msg, hashlib.sha256).hexdigest()
    return out


def _row_owners(raw: Any, sf: SourceFile, key: bytes) -> dict[int, str]:
    """Source row -> keyed digest of (programme, loose raw client id), re-derived from the export.

    The digest is a full-length HMAC under a separate label, kept in memory for the
    collision check only; no raw id is kept or written.
    """
    return _column_owners(raw, sf.client_id, key, sf.programme, _loose_id)


def _staff_owners(raw: Any, sf: SourceFile, key: bytes) -> dict[str, dict[int, str]]:
    """Per staff field (``rater``, ``target``): source row -> keyed digest of its raw id.

    The owner is what :func:`~effectstudy.harmonise.integrity.staff_pseudonym` hashes
    (prefix, programme, :func:`normalise_id` of the raw id), not the loose id of the
    client check: no declared id format links two spellings of a rater or a target, so
    two spellings get two pseudonyms and are two raters (targets) downstream; a
    collision between them would merge them and must stop the run as well.
    """
    if sf.layout != "fidelity_ratings":
        return {}
    return {fld: _column_owners(raw, sf.columns.get(fld), key,
                                f"{prefix}\x1f{sf.programme}", lambda rid: rid)
            for fld, prefix in STAFF_PREFIXES.items()}


def _check_collisions(owners_by_pseudonym: dict[str, tuple[str, str, int]], res: FileResult,
                      owners: dict[int, str], column: str | None = None) -> None:
    """Stop when one pseudonym stands for two different (programme, raw id) pairs.

    ``owners_by_pseudonym`` (pseudonym -> (owner digest, file, row)) accumulates over
    every file of the run, so collisions across files and programmes are caught, not
    only within one file. The error names files, rows and the id ``column``, never an id.
    """
    pairs = [(ob.get("client"), ob.get("row")) for ob in res.client_obs]
    pairs += [(r.get("client"), r.get("source_row")) for r in res.records]
    _check_pairs(owners_by_pseudonym, res.file, pairs, owners, column=column)


def _check_log_collisions(owners_by_pseudonym: dict[str, tuple[str, str, int]],
                          res: IntegrityResult, owners: dict[int, str],
                          column: str | None = None) -> None:
    """:func:`_check_collisions` for a delivery log: its clients (also those in no score
    export) join the same run-wide check, row by row."""
    if res.layout != "delivery" or "client" not in res.rows:
        return
    pairs = list(zip(res.rows["client"].tolist(), res.source_rows, strict=True))
    _check_pairs(owners_by_pseudonym, res.file, pairs, owners, column=column)


def _check_staff_collisions(spaces: dict[str, dict[str, tuple[str, str, int]]],
                            res: IntegrityResult, owners: dict[str, dict[int, str]],
                            columns: dict[str, str]) -> None:
    """The run-wide collision check for the rater and the target pseudonyms of ratings.

    ``spaces`` holds one pseudonym -> (owner digest, file, row) map per field
    (``rater``, ``target``), accumulated over every ratings export of the run (all
    programmes). Raters, targets and clients are separate spaces: each lives in its own
    column and is only ever grouped with its own kind, and the prefixes (``R``, ``T``)
    already keep rater and target pseudonyms apart. Every row read is checked, also rows
    that validation rejects (a colliding rater must not turn a rating into a "duplicate").
    ``columns`` maps each field to the export's column, named in the error.
    """
    if res.layout != "fidelity_ratings":
        return
    for fld, ids in res.ids.items():
        pairs = list(zip(ids, res.source_rows, strict=True))
        _check_pairs(spaces.setdefault(fld, {}), res.file, pairs, owners.get(fld, {}),
                     what=fld, column=columns.get(fld))


def _check_pairs(owners_by_pseudonym: dict[str, tuple[str, str, int]], file: str,
                 pairs: list[tuple[Any, Any]], owners: dict[int, str], *,
                 what: str = "client", column: str | None = None) -> None:
    """Record (pseudonym, source row) pairs of one file; stop at a second owner.

    One dictionary look-up per pair (linear in the rows of the run). The error names
    both files and rows, and the ``column`` of the second; never an id or a pseudonym.
    """
    for pseudonym, row in pairs:
        if pseudonym is None or row is None:
            continue
        owner = owners.get(int(row))
        if owner is None:
            continue
        first = owners_by_pseudonym.setdefault(pseudonym, (owner, file, int(row)))
        if first[0] != owner:
            raise HarmoniseError(
                f"two different {what} ids share one pseudonym ({first[1]} row {first[2]} and "
                f"{file} row {int(row)}); they would be merged: choose another pseudonym "
                "key", file=file, row=int(row), column=column)


# --------------------------------------------------------------------------- #
# harmonise()
# --------------------------------------------------------------------------- #
def _norm_note(scale, age: float | None) -> str:
    if not scale.norms:
        return "no norm group for this scale: z not computed"
    if not any(n.verified for n in scale.norms):
        return "norm UNVERIFIED (no published source): z not computed"
    if age is None:
        return "age unknown: no verified norm applies, z not computed"
    return "no verified norm covers the client's age: z not computed"


def harmonise(
    folder_or_files: str | Path | Sequence[str | Path],
    dictionary: Dictionary | str | Path | None = None,
    *,
    key: bytes | str | None = None,
    programmes: Sequence[str] | None = None,
    key_file: str | Path | None = None,
    progress: Progress | None = None,
    strict: bool = False,
) -> Harmonised:
    """Harmonise raw programme exports onto one long tidy table.

    Parameters
    ----------
    folder_or_files
        A folder holding the exports (file names as in ``data_dictionary/sources``;
        absent exports are skipped unless ``programmes`` asks for them), or a list of
        export files.
    dictionary
        A loaded :class:`~effectstudy.dictionary.Dictionary`, a dictionary folder, or
        None for env ``EFFECTSTUDY_DICTIONARY``, else the shipped one. The output records
        which (path and sha256) so that :func:`read_harmonised` and the report use the
        same one.
    key
        Pseudonym key (bytes/str, >= 16 bytes). Default: env ``EFFECTSTUDY_PSEUDONYM_KEY``,
        else the key file (see :mod:`effectstudy.harmonise.pseudonym`).
    programmes
        Restrict to these programme ids.
    key_file
        Key file to use (or create) when no key is given; never inside the data folder.
    progress
        Called as ``progress(file_name, i, n)`` before each file is read.
    strict
        Make a file in the folder that no source describes an error instead of an
        :class:`UndescribedFileWarning` (and a row in the accounting).

    Returns
    -------
    Harmonised

    Raises
    ------
    SourceError
        A file cannot be read as described (encoding, empty, missing column, sheet...).
    HarmoniseError
        Nothing to harmonise, the key is unusable, or (``strict``) a file in the folder
        is not described.
    DictionaryError
        The dictionary folder is malformed.

    Notes
    -----
    Rows are counted in *score records* (see :mod:`effectstudy.harmonise.mapping`);
    per file ``rows_in == rows_out + rows_rejected`` holds exactly and is checked.
    Duplicates (same client x occasion label x instrument x scale, or the same session
    of a series) keep the *first* record in file/row order; later ones are rejected.
    """
    d = dictionary if isinstance(dictionary, Dictionary) else load_dictionary(dictionary)
    inputs, roots, undescribed, absent = _select_inputs(d, folder_or_files, programmes)
    if undescribed and strict:
        names = "; ".join(f"{n!r} (nearest declared path: {near!r})" for n, near in undescribed)
        raise HarmoniseError(f"{len(undescribed)} file(s) in the folder are not described in "
                             f"the data dictionary ({d.path}): {names}; describe them in "
                             "sources/<programme>.yaml (path:), rename them, or move them out "
                             "(strict mode)", file=roots[0] if roots else None)
    for name, near in undescribed:
        warnings.warn(f"{name!r} is not described in the data dictionary and was not read "
                      f"(nearest declared path: {near!r})", UndescribedFileWarning,
                      stacklevel=2)
    key_bytes, used_key_file = resolve_key(key, key_file=key_file, forbidden=roots)
    log = RejectionLog()
    results: list[FileResult] = []
    names = [p.name for p, _ in inputs]
    if len(set(names)) != len(names):
        raise HarmoniseError("two inputs share a file name; pass one folder or distinct files")
    owners_by_pseudonym: dict[str, tuple[str, str, int]] = {}
    # rater and target pseudonyms: one space each, run-wide (see _check_staff_collisions)
    staff_spaces: dict[str, dict[str, tuple[str, str, int]]] = {}
    integrity_results: list = []  # integrity hook: delivery logs and fidelity ratings
    integ_d = None
    for i, (path, sf) in enumerate(inputs):
        if progress is not None:
            progress(path.name, i, len(inputs))
        raw = read_source(path, sf)
        if sf.layout in INTEGRITY_LAYOUTS:
            integ_d = integ_d or load_integrity(d)
            integrity_results.append(read_integrity(raw, sf, integ_d, key_bytes, log, path.name))
            results.append(FileResult(path.name, sf.programme))
            # a delivery log's clients join the collision check (some are in no score export)
            _check_log_collisions(owners_by_pseudonym, integrity_results[-1],
                                  _row_owners(raw, sf, key_bytes), column=sf.client_id)
            # ratings: two raters (or two targets) must not share one pseudonym either
            _check_staff_collisions(staff_spaces, integrity_results[-1],
                                    _staff_owners(raw, sf, key_bytes), dict(sf.columns))
            continue
        owners = _row_owners(raw, sf, key_bytes)
        results.append(map_file(raw, sf, d, key_bytes, log, path.name))
        _check_collisions(owners_by_pseudonym, results[-1], owners, column=sf.client_id)
        del owners
    del owners_by_pseudonym, staff_spaces
    clients = _resolve_clients(d, results, log)
    table = _build_table(d, results, clients, log,
                         {p.name: sf.client_id for p, sf in inputs})
    clients_df = _build_clients(d, results, clients, table)
    events = build_events(d, [e for res in results for e in res.events], clients, log)
    delivery, fid_ratings, integrity_acc = build_integrity(
        integ_d, integrity_results,
        {p.name: sf for p, sf in inputs}, clients_df, log)
    rejections = log.frame()
    accounting = _accounting(results, table, rejections, undescribed, events)
    cells = _cells(results, table)
    try:
        table = table_schema(d).validate(table)
        clients_df = clients_schema(d).validate(clients_df)
        rejections = rejections_schema().validate(rejections)
    except (pa_errors.SchemaError, pa_errors.SchemaErrors) as exc:  # pragma: no cover
        raise HarmoniseError(f"harmonised output failed validation: {_schema_failures(exc)}"
                             ) from exc
    from effectstudy import __version__

    created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    provenance = {
        "effectstudy_version": __version__,
        "created_utc": created,
        "date": created,
        "dictionary_sha256": d.sha256,
        "dictionary": {"path": str(Path(d.path).resolve()), "sha256": d.sha256},
        "inputs": {p.name: {"programme": sf.programme, "file_id": sf.id, "sha256": _sha256(p)}
                   for p, sf in inputs},
        "ignored_files": len(undescribed),
        # named on the console only: a stray file may be named after a client, so
        # written files record its position and extension, never its name
        "undescribed_files": [{"file": undescribed_label(k, n), "nearest_declared_path": near}
                              for k, (n, near) in enumerate(undescribed, start=1)],
        "absent_sources": [{"programme": prog, "path": path} for prog, path in absent],
        "pseudonym_key_check": hmac.new(key_bytes, b"effectstudy key check",
                                        hashlib.sha256).hexdigest()[:12],
        "pseudonym_hex_digits": PSEUDONYM_HEX_DIGITS,
        "rows": {"in": int(accounting["rows_in"].sum()), "out": int(len(table)),
                 "rejected": int(accounting["rows_rejected"].sum())},
        "cells": {"read": int(accounting["cells_read"].sum()),
                  "empty": int(accounting["cells_empty"].sum())},
        "events": {"in": int(accounting["events_in"].sum()), "out": int(len(events)),
                   "rejected": int(accounting["events_rejected"].sum()),
                   "absconding_recorded": sorted({res.programme for res in results
                                                  if res.absconding_columns})},
        "integrity": integrity_acc,
    }
    return Harmonised(table, clients_df, rejections, accounting, provenance,
                      key_file=used_key_file, cells=cells, events=events, delivery=delivery,
                      fidelity_ratings=fid_ratings)


def _build_table(d: Dictionary, results: list[FileResult], clients: dict, log: RejectionLog,
                 id_columns: dict[str, str]) -> pd.DataFrame:
    records = [r for res in results for r in res.records]
    # intake dates and age at intake
    intake: dict[tuple[str, str], pd.Timestamp] = {}
    first_date: dict[tuple[str, str], pd.Timestamp] = {}
    for r in records:
        if r["date"] is None:
            continue
        k = (r["programme"], r["client"])
        if r["occasion"] == "intake":
            intake[k] = min(intake.get(k, r["date"]), r["date"])
        first_date[k] = min(first_date.get(k, r["date"]), r["date"])
    for k, c in clients.items():
        psex = d.programmes[k[0]].sex
        c["sex"] = c.get("sex") or (psex if psex in CLIENT_SEXES else None)
        ref = intake.get(k, first_date.get(k))
        birth = c.get("birth_date")
        c["age"] = ((ref - birth).days / 365.25) if (ref is not None and birth is not None) \
            else None
        c["intake_date"] = intake.get(k)
        if c["age"] is not None and not AGE_RANGE[0] <= c["age"] <= AGE_RANGE[1]:
            # an implausible birth date (e.g. 1950) is logged, never an abort; age unknown
            ob = c["_first"]["birth_date"]
            log.add(programme=k[0], file=ob["file"], row=ob["row"], column=ob["column"],
                    kind="implausible_value",
                    reason=(f"date of birth gives an age outside the plausible range "
                            f"{AGE_RANGE[0]:g}-{AGE_RANGE[1]:g} years at the first "
                            "measurement (age unknown; value not shown)"), scores=0)
            c["age"] = c["birth_date"] = None
    # duplicates: keep the first in file/row order
    seen: dict[tuple, dict] = {}
    kept, dups = [], []
    for r in records:
        k = (r["programme"], r["client"], r["occasion_label"], r["session"], r["instrument"],
             r["scale"])
        if k in seen:
            dups.append((r, seen[k]))
        else:
            seen[k] = r
            kept.append(r)
    per_row = Counter((r["source_file"], r["source_row"]) for r in records)
    dup_rows = Counter((r["source_file"], r["source_row"]) for r, _ in dups)
    logged_rows: set[tuple[str, int]] = set()
    for r, f in dups:
        where = (r["source_file"], r["source_row"])
        if dup_rows[where] == per_row[where] and per_row[where] > 1:
            # every score of this source row repeats an earlier row: one entry for the row
            if where in logged_rows:
                continue
            logged_rows.add(where)
            log.add(programme=r["programme"], file=r["source_file"], row=r["source_row"],
                    column=id_columns.get(r["source_file"]), kind="duplicate",
                    reason=(f"duplicate row: all {per_row[where]} scores repeat client x "
                            f"occasion x instrument x scale of {f['source_file']} row "
                            f"{f['source_row']} (the first is kept)"),
                    scores=per_row[where])
            continue
        what = (f"session {r['session']}" if r["session"] is not None
                else f"occasion {r['occasion_label']}")
        log.add(programme=r["programme"], file=r["source_file"], row=r["source_row"],
                column=r["source_column"], kind="duplicate",
                reason=(f"duplicate client x {what} x {r['instrument']} {r['scale']}; the "
                        f"first ({f['source_file']} row {f['source_row']}) is kept"),
                value=r["raw"], scores=1, shape="number")
    occ_week = {(sf.programme, Path(sf.path).name, lab): om.week
                for src in d.sources.values() for sf in src.files
                for lab, om in sf.occasions.items()}
    rows = []
    week_noted: set[tuple] = set()
    for r in kept:
        k = (r["programme"], r["client"])
        c = clients.get(k, {})
        # norms apply to the age at the measurement (else the age at intake)
        birth = c.get("birth_date")
        if r["date"] is not None and birth is not None:
            age = (r["date"] - birth).days / 365.25
        else:
            age = c.get("age")
        sc = d.scale(r["instrument"], r["scale"])
        sex = c.get("sex")
        norm = sc.norm_for(age, sex)
        if norm is not None:
            z = (r["raw"] - norm.mean.value) / norm.sd.value
            t, group, note = 50 + 10 * z, norm.group, None
            if sex is None:
                note = ("sex unknown (mixed programme without a sex value): a norm for both "
                        "sexes is used")
        else:
            z = t = np.nan
            group, note = None, _norm_note(sc, age)
            if sex is None and any(n.verified and n.sex != "any" for n in sc.norms):
                note = ("sex unknown (mixed programme without a sex value): no sex-specific "
                        "norm applies, z not computed")
        start = c.get("intake_date")
        if r["date"] is not None and start is not None:
            week = (r["date"] - start).days / 7.0
        else:
            fixed = occ_week.get((r["programme"], r["source_file"], r["occasion_label"]))
            week = fixed if fixed is not None else (0.0 if r["occasion"] == "intake" else np.nan)
        if pd.isna(week) and r["session"] is None:  # a series row is timed by its session
            where = (r["source_file"], r["source_row"], r["occasion_label"])
            if where not in week_noted:
                week_noted.add(where)
                why = ("this measurement has no date" if r["date"] is None
                       else "the client has no dated intake measurement")
                log.add(programme=r["programme"], file=r["source_file"], row=r["source_row"],
                        column=None, kind="note",
                        reason=(f"week in care cannot be computed: {why} and occasion label "
                                f"{r['occasion_label']!r} declares no week: in the dictionary; "
                                "the scores are kept with an empty week"), scores=0)
        pp = r["programme_phase"]
        rows.append({
            "programme": r["programme"], "client": r["client"], "occasion": r["occasion"],
            "occasion_label": r["occasion_label"], "week": week, "session": r["session"],
            "phase": d.programmes[r["programme"]].phase(pp).canonical if pp else None,
            "programme_phase": pp, "sced_phase": r["sced_phase"], "construct": r["construct"],
            "instrument": r["instrument"], "scale": r["scale"], "raw": r["raw"], "z": z, "t": t,
            "better": sc.better, "norm_group": group, "note": note,
            "source_file": r["source_file"], "source_row": r["source_row"],
            "source_column": r["source_column"],
        })
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    df["session"] = pd.array(df["session"].tolist(), dtype="Int64")
    for col in ("week", "raw", "z", "t"):
        df[col] = df[col].astype(float)
    df["source_row"] = df["source_row"].astype("int64")
    order = {o: occ.order for o, occ in d.occasions.items()}
    df["_o"] = df["occasion"].map(order)
    df = df.sort_values(["programme", "client", "_o", "week", "occasion_label", "session",
                         "instrument", "scale"], na_position="last", kind="mergesort")
    return df.drop(columns="_o").reset_index(drop=True)


def _build_clients(d: Dictionary, results: list[FileResult], clients: dict,
                   table: pd.DataFrame) -> pd.DataFrame:
    counts = table.groupby(["programme", "client"]).size().to_dict()
    rows = []
    for (prog, client), c in clients.items():
        lp = c.get("last_phase")
        age = c.get("age")
        rows.append({
            "programme": prog, "client": client,
            "age": None if age is None else round(age, 2), "sex": c.get("sex"),
            "weeks_in_care": c.get("weeks_in_care"), "last_phase": lp,
            "last_phase_canonical": d.programmes[prog].phase(lp).canonical if lp else None,
            # unknown is not zero: a client whose export records no end of care
            "end_reason": c.get("end_reason") or "unknown",
            "interventions": c.get("interventions"),
            "fidelity": c.get("fidelity"), "n_scores": int(counts.get((prog, client), 0)),
        })
    df = pd.DataFrame(rows, columns=list(CLIENT_COLUMNS))
    for col in ("age", "weeks_in_care", "fidelity"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    df["n_scores"] = df["n_scores"].astype("int64")
    return df.sort_values(["programme", "client"], kind="mergesort").reset_index(drop=True)


def undescribed_label(k: int, name: str) -> str:
    """How written files refer to the k-th undescribed file: position and extension only.

    The console warning names the file (it is the user's own folder listing); anything
    written (accounting, provenance) does not, because a stray file may be named after a
    client (``verslag Mila Vos.docx``).
    """
    ext = Path(name).suffix.lower()
    ext = ext if ext and len(ext) <= 8 and ext[1:].isalnum() else "no extension"
    return f"undescribed file {k} ({ext})"


def _accounting(results: list[FileResult], table: pd.DataFrame, rejections: pd.DataFrame,
                undescribed: Sequence[tuple[str, str | None]] = (),
                events: pd.DataFrame | None = None) -> pd.DataFrame:
    out_by = table.groupby("source_file").size().to_dict()
    rej_by = rejections.groupby("file")["scores"].sum().to_dict()
    rows = []
    for res in results:
        r_out = int(out_by.get(res.file, 0))
        r_rej = int(rej_by.get(res.file, 0))
        if res.rows_in != r_out + r_rej:  # pragma: no cover - an engine bug, never data
            raise HarmoniseError(f"row accounting broken: {res.rows_in} in, {r_out} out, "
                                 f"{r_rej} rejected", file=res.file)
        if res.cells_read != res.cells_empty + res.rows_in:  # pragma: no cover - engine bug
            raise HarmoniseError(f"cell accounting broken: {res.cells_read} cells read, "
                                 f"{res.cells_empty} empty, {res.rows_in} score records",
                                 file=res.file)
        e_out, e_rej = event_accounting(res.file, res.events_in,
                                        events if events is not None else events_frame(),
                                        rejections)
        rows.append({"programme": res.programme, "file": res.file, "status": READ,
                     "cells_read": res.cells_read, "cells_empty": res.cells_empty,
                     "rows_in": res.rows_in, "rows_out": r_out, "rows_rejected": r_rej,
                     "events_in": res.events_in, "events_out": e_out, "events_rejected": e_rej})
    for k, (name, near) in enumerate(undescribed, start=1):
        rows.append({"programme": None, "file": undescribed_label(k, name),
                     "status": f"{NOT_DESCRIBED} (nearest declared path: {near})",
                     "cells_read": 0, "cells_empty": 0, "rows_in": 0, "rows_out": 0,
                     "rows_rejected": 0, "events_in": 0, "events_out": 0,
                     "events_rejected": 0})
    out = pd.DataFrame(rows, columns=list(ACCOUNTING_COLUMNS))
    for col in ACCOUNTING_COLUMNS[3:]:
        out[col] = out[col].astype("int64")
    return out


def _cells(results: list[FileResult], table: pd.DataFrame) -> pd.DataFrame:
    """Cells read, empty, score records, in the table and rejected per client x occasion."""
    agg: dict[tuple, list[int]] = {}
    for res in results:
        for (client, label, occasion), (read, empty, records) in res.cells.items():
            a = agg.setdefault((res.programme, client, occasion, label), [0, 0, 0])
            a[0] += read
            a[1] += empty
            a[2] += records
    out_by = table.groupby(["programme", "client", "occasion_label"]).size().to_dict()
    rows = []
    for (prog, client, occasion, label), (read, empty, records) in agg.items():
        r_out = int(out_by.get((prog, client, label), 0)) if client is not None else 0
        if r_out > records:  # pragma: no cover - an engine bug, never data
            raise HarmoniseError("cell accounting broken: more scores in the table than read "
                                 f"for one client x occasion of {prog}")
        rows.append({"programme": prog, "client": client, "occasion": occasion,
                     "occasion_label": label, "cells_read": read, "cells_empty": empty,
                     "rows_in": records, "rows_out": r_out, "rows_rejected": records - r_out})
    df = pd.DataFrame(rows, columns=list(CELLS_COLUMNS))
    for col in CELLS_COLUMNS[4:]:
        df[col] = df[col].astype("int64")
    for col in CELLS_COLUMNS[:4]:
        df[col] = df[col].astype(object).where(df[col].notna(), None)
    return df.sort_values(["programme", "client", "occasion_label"], na_position="last",
                          kind="mergesort").reset_index(drop=True)


__all__ = ["ACCOUNTING_COLUMNS", "CELLS_COLUMNS", "EffectStudyError",
           "Harmonised", "UndescribedFileWarning", "dictionary_for", "harmonise",
           "read_harmonised"]
