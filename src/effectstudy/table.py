"""The harmonised folder on disk: an atomic, private write and a verified read.

Shared by :mod:`effectstudy.harmonise` (which writes and reads the harmonised table,
client table, rejection log and accounting) and the study layer (which reads them).

Writing (:func:`write_frames`)
    The whole folder is built in a temporary sibling with
    :func:`effectstudy._io.atomic_folder` and renamed into place at the end: an
    interrupted write (Ctrl-C, SIGKILL, a full disk) leaves the earlier folder as it
    was. Files are ``0600``, the folder ``0700``. Every CSV cell that a spreadsheet
    would run as a formula is escaped with a leading ``'`` (:func:`effectstudy._io.csv_bytes`).
    ``provenance.json`` records, under ``"files"``, each written file's row count,
    byte size and sha256 (of the bytes only: no time stamp enters a file hash, so the
    same data give byte-identical files).

Reading (:func:`read_frame`, :func:`check_manifest`)
    Every file listed in ``provenance.json`` must be there with its recorded size; a
    data file that provenance does not list (e.g. left by another run) is refused;
    the file that is read must have its recorded sha256 and row count. The manifest
    itself is checked first: every name must be a plain ``<name>.parquet`` or
    ``<name>.csv`` (no folder part, so an edited record cannot point the reader at
    ``../`` or an absolute path), with a whole row count, byte size and a sha256.
    Symbolic links, FIFOs and other non-regular files are refused before anything is
    read, and a data file is read only up to its recorded size. Anything else is a
    :class:`~effectstudy.errors.HarmoniseError` naming the file, never partial data.

CSV and the ``'`` prefix
    The CSV copies are for people who open them in a spreadsheet. Parquet is preferred
    on reading; when only CSV is there, text cells that were escaped keep their leading
    ``'`` (e.g. a rejected value ``=1+1`` reads back as ``'=1+1``).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from effectstudy._io import atomic_folder, atomic_write_bytes, csv_bytes
from effectstudy.errors import HarmoniseError

FORMATS = ("parquet", "csv")
PROVENANCE = "provenance.json"
#: Key of the per-file manifest in provenance.json.
FILES_KEY = "files"
#: Largest provenance.json read (it holds a manifest and settings, never data).
MAX_PROVENANCE_BYTES = 16 * 1024 * 1024
#: A frame name: a plain file stem (no folder part, no leading dot).
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def frame_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """``frame`` serialised as parquet or as formula-escaped UTF-8 CSV (no index)."""
    if fmt == "parquet":
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        return buf.getvalue()
    if fmt == "csv":
        return csv_bytes(frame)
    raise HarmoniseError(f"unknown output format {fmt!r}; use 'parquet' and/or 'csv'")


def _data_file_names(names: Iterable[str]) -> set[str]:
    return {f"{n}.{fmt}" for n in names for fmt in FORMATS}


def _is_data_file_name(fname: object) -> bool:
    """``<stem>.parquet`` or ``<stem>.csv`` with a plain stem: never a path out of the folder."""
    if not isinstance(fname, str):
        return False
    stem, dot, fmt = fname.rpartition(".")
    return bool(dot) and fmt in FORMATS and _NAME.fullmatch(stem) is not None


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _regular_file(path: Path, what: str) -> os.stat_result:
    """``lstat`` of ``path``; refuse a symbolic link or anything but a regular file.

    A link could make the reader hash and parse a file outside the output folder, and
    a FIFO or device would block or never end; neither belongs in a harmonised folder.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        raise HarmoniseError(f"{what} is missing", file=path) from None
    if stat.S_ISLNK(st.st_mode):
        raise HarmoniseError(f"{what} is a symbolic link; a harmonised folder holds only the "
                             "files effectstudy wrote", file=path)
    if not stat.S_ISREG(st.st_mode):
        raise HarmoniseError(f"{what} is not a regular file", file=path)
    return st


def _read_exact(path: Path, size: int, what: str) -> bytes:
    """The bytes of a regular file whose size must be ``size`` (checked before reading)."""
    st = _regular_file(path, what)
    if st.st_size != size:
        raise HarmoniseError("file size differs from provenance.json (truncated or changed "
                             "after writing)", file=path)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as fh:
        data = fh.read(size + 1)
    if len(data) != size:
        raise HarmoniseError("file size differs from provenance.json (changed while reading)",
                             file=path)
    return data


def write_frames(out_dir: str | Path, frames: Mapping[str, pd.DataFrame],
                 provenance: Mapping[str, Any], formats: Sequence[str]) -> list[Path]:
    """Write ``frames`` (name -> frame) in each format, plus ``provenance.json``, atomically.

    Parameters
    ----------
    out_dir
        The folder to (re)place. An existing folder is replaced only when it holds
        nothing but files this function writes now or recorded in the folder's own
        ``provenance.json`` (a folder with other content is refused, so that a wrong
        ``--out`` never deletes anything else).
    frames
        Name -> frame, written as ``<name>.<format>``.
    provenance
        Written to ``provenance.json`` with the manifest added under ``"files"``.
    formats
        ``"parquet"`` and/or ``"csv"``.

    Returns
    -------
    list of Path
        The files written (their final paths).
    """
    out = Path(out_dir)
    bad_names = [n for n in frames if not (isinstance(n, str) and _NAME.fullmatch(n))]
    if bad_names:
        raise HarmoniseError(f"{len(bad_names)} frame name(s) are not plain file names "
                             "(letters, digits, '_' and '-')", file=out)
    formats = list(dict.fromkeys(formats))
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise HarmoniseError(f"unknown output format(s) {bad}; use 'parquet' and/or 'csv'")
    if out.exists() and not out.is_dir():
        raise HarmoniseError("output path exists and is not a folder", file=out)
    if out.is_dir():
        ours = _data_file_names(frames) | {PROVENANCE}
        try:  # files an earlier write recorded are ours too (a run with other sections)
            ours |= set(read_provenance(out)[FILES_KEY])
        except HarmoniseError:
            pass
        other = [p for p in out.iterdir() if p.name not in ours]
        if other:
            raise HarmoniseError(
                f"refusing to replace an output folder that holds {len(other)} other "
                "file(s) or folder(s); choose an empty folder or an earlier harmonised output",
                file=out)
    manifest: dict[str, dict[str, Any]] = {}
    names: list[str] = []
    with atomic_folder(out) as tmp:
        for fmt in formats:
            for name, frame in frames.items():
                data = frame_bytes(frame, fmt)
                fname = f"{name}.{fmt}"
                atomic_write_bytes(tmp / fname, data)
                manifest[fname] = {"rows": int(len(frame)), "bytes": len(data),
                                   "sha256": sha256_bytes(data)}
                names.append(fname)
        prov = dict(provenance)
        prov[FILES_KEY] = manifest
        text = json.dumps(prov, indent=2, sort_keys=True, default=str) + "\n"
        atomic_write_bytes(tmp / PROVENANCE, text.encode("utf-8"))
        names.append(PROVENANCE)
    return [out / n for n in names]


def read_provenance(folder: str | Path) -> dict[str, Any]:
    """``provenance.json`` of a harmonised folder, with its file manifest checked for shape."""
    folder = Path(folder)
    prov_file = folder / PROVENANCE
    if not folder.is_dir() or not os.path.lexists(prov_file):
        raise HarmoniseError("not a harmonised output folder (no provenance.json)", file=folder)
    st = _regular_file(prov_file, "provenance.json")
    if st.st_size > MAX_PROVENANCE_BYTES:
        raise HarmoniseError("provenance.json is too large to be a provenance record "
                             "(damaged output folder)", file=prov_file)
    try:
        prov = json.loads(_read_exact(prov_file, st.st_size, "provenance.json").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise HarmoniseError("provenance.json is not valid JSON (damaged output folder)",
                             file=prov_file) from None
    files = prov.get(FILES_KEY) if isinstance(prov, dict) else None
    if not isinstance(files, dict) or not all(
            isinstance(v, dict) and {"rows", "bytes", "sha256"} <= set(v) for v in files.values()):
        raise HarmoniseError("provenance.json lists no file hashes (written by an older "
                             "effectstudy or edited): the folder cannot be verified; "
                             "harmonise the exports again", file=prov_file)
    bad_names = [k for k in files if not _is_data_file_name(k)]
    if bad_names:
        # a name such as '../x' or '/etc/x' would point the checks outside the folder
        raise HarmoniseError(f"provenance.json lists {len(bad_names)} file name(s) that are "
                             "not plain data file names (edited or damaged record)",
                             file=prov_file)
    bad_meta = [k for k, v in files.items()
                if not (_whole(v["rows"]) and _whole(v["bytes"]) and isinstance(v["sha256"], str)
                        and _SHA256.fullmatch(v["sha256"]))]
    if bad_meta:
        raise HarmoniseError(f"provenance.json records {len(bad_meta)} file(s) without a whole "
                             "row count, byte size and sha256 (edited or damaged record)",
                             file=prov_file)
    return prov


def check_manifest(folder: str | Path, provenance: Mapping[str, Any],
                   names: Iterable[str]) -> None:
    """Every listed file present with its recorded size; no unlisted data file of ``names``."""
    folder = Path(folder)
    files: Mapping[str, Mapping[str, Any]] = provenance[FILES_KEY]
    for fname, meta in sorted(files.items()):
        if not _is_data_file_name(fname):
            raise HarmoniseError("provenance.json lists a file name that is not a plain data "
                                 "file name (edited or damaged record)", file=folder / PROVENANCE)
        path = folder / fname
        if not os.path.lexists(path):
            raise HarmoniseError("a file recorded in provenance.json is missing (incomplete "
                                 "output folder)", file=path)
        st = _regular_file(path, "a file recorded in provenance.json")
        if st.st_size != int(meta["bytes"]):
            raise HarmoniseError("file size differs from provenance.json (truncated or "
                                 "changed after writing)", file=path)
    for fname in sorted(_data_file_names(names)):
        if fname not in files and os.path.lexists(folder / fname):
            raise HarmoniseError("file is not recorded in provenance.json (left over from "
                                 "another run or added later)", file=folder / fname)


def read_frame(folder: str | Path, name: str, provenance: Mapping[str, Any],
               str_cols: Iterable[str] = ()) -> pd.DataFrame:
    """Read ``<name>.parquet`` (preferred) or ``<name>.csv``, verified against provenance.

    The bytes are read once, their sha256 and the frame's row count compared with
    ``provenance.json``; a mismatch or an unreadable file is a
    :class:`~effectstudy.errors.HarmoniseError` naming the file.
    """
    folder = Path(folder)
    files: Mapping[str, Mapping[str, Any]] = provenance[FILES_KEY]
    fmt = next((f for f in FORMATS if f"{name}.{f}" in files), None)
    if fmt is None:
        raise HarmoniseError(f"harmonised output has no {name}.parquet or {name}.csv "
                             "recorded in provenance.json", file=folder)
    path = folder / f"{name}.{fmt}"
    meta = files[path.name]
    if not (_is_data_file_name(path.name) and _whole(meta.get("rows"))
            and _whole(meta.get("bytes")) and isinstance(meta.get("sha256"), str)):
        raise HarmoniseError("provenance.json does not record a valid name, row count, size "
                             "and sha256 for this file", file=path)
    if not os.path.lexists(path):
        raise HarmoniseError("a file recorded in provenance.json is missing", file=path)
    data = _read_exact(path, int(meta["bytes"]), "a file recorded in provenance.json")
    if sha256_bytes(data) != meta["sha256"]:
        raise HarmoniseError("file does not match its sha256 in provenance.json (truncated "
                             "or changed after writing)", file=path)
    try:
        if fmt == "parquet":
            frame = pd.read_parquet(io.BytesIO(data))
        else:
            frame = pd.read_csv(io.BytesIO(data), dtype={c: "str" for c in str_cols},
                                keep_default_na=True, encoding="utf-8")
    except Exception as exc:  # pyarrow.ArrowInvalid, ParserError, UnicodeDecodeError, ...
        raise HarmoniseError(f"file cannot be read as {fmt} ({type(exc).__name__})",
                             file=path) from None
    if len(frame) != int(meta["rows"]):
        raise HarmoniseError(f"file has {len(frame)} rows, provenance.json records "
                             f"{int(meta['rows'])}", file=path)
    return frame


__all__ = ["FILES_KEY", "FORMATS", "PROVENANCE", "check_manifest", "frame_bytes",
           "read_frame", "read_provenance", "sha256_bytes", "write_frames"]
