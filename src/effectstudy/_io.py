"""Safe writing of every file effectstudy produces: atomic, private, formula-escaped.

* :func:`atomic_write_bytes` / :func:`atomic_write_text` write to a temporary file in
  the same folder, ``fsync`` it and ``os.replace`` it over the target, so a reader
  sees the old file or the new one, never half of one (POSIX rename is atomic).
* :func:`atomic_folder` builds a whole output folder in a temporary sibling and
  swaps it in at the end; an interrupted run (Ctrl-C, SIGKILL) leaves the earlier
  folder untouched and at most a ``.<name>.tmp-*`` folder beside it.
* Files are created ``0600`` and folders ``0700`` by default: harmonised data of
  minors are for the research team only.
* :func:`escape_csv_cell` neutralises spreadsheet formulas (OWASP "CSV injection":
  a cell starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return is
  prefixed with ``'``), so a cell written by effectstudy never runs in Excel.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

FILE_MODE = 0o600
DIR_MODE = 0o700

#: First characters that make a spreadsheet treat a cell as a formula (OWASP).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_NUMBER_CHARS = set("0123456789.eE+-")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes, *, mode: int = FILE_MODE) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def atomic_write_text(path: str | Path, text: str, *, mode: int = FILE_MODE) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


@contextlib.contextmanager
def atomic_folder(target: str | Path, *, mode: int = DIR_MODE) -> Iterator[Path]:
    """Build a folder's content in a temporary sibling; swap it in only on success.

    Yields the temporary folder to write into. On normal exit the previous
    ``target`` (if any) is moved aside, the new folder renamed into place, and the
    old one removed; on any exception (KeyboardInterrupt included) the temporary
    folder is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    os.chmod(tmp, mode)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
        os.rmdir(old)
        os.replace(target, old)
    os.replace(tmp, target)
    _fsync_dir(target.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def escape_csv_cell(value: object) -> object:
    """A cell that a spreadsheet would run as a formula, made inert with a leading ``'``.

    Numbers (``-3.5``, ``+2``) stay numbers: only text that starts with one of
    :data:`FORMULA_PREFIXES` and is not a plain number is escaped.
    """
    if not isinstance(value, str) or not value or value[0] not in FORMULA_PREFIXES:
        return value
    if value[0] in "+-" and len(value) > 1 and set(value) <= _NUMBER_CHARS:
        try:
            float(value)
        except ValueError:
            pass
        else:
            return value
    return "'" + value


def escape_csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell (and header) passed through :func:`escape_csv_cell`."""
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(escape_csv_cell)
    out.columns = [escape_csv_cell(c) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as UTF-8 CSV bytes with formula-looking cells escaped."""
    return escape_csv_frame(frame).to_csv(index=False).encode("utf-8")
