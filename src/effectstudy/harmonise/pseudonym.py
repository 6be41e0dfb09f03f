"""Keyed pseudonyms for client ids (privacy at the door).

A raw client id never leaves the reader: it is replaced by
``HMAC-SHA256(key, programme + "\\x1f" + raw id)``, shown as the programme code and
the first :data:`PSEUDONYM_HEX_DIGITS` (20) hex digits, e.g. ``VL-3f9a1c2e07b4d58e6a13``.
The same key always gives the same pseudonym (so repeated exports link up); another
key gives unrelated pseudonyms.

Why 20 hex digits (80 bits): by the birthday bound, the chance that any two of ``n``
clients share a pseudonym is at most ``n (n - 1) / 2 / 2**80``; at a million clients
that is below ``4.2e-13`` (and the programme code separates programmes on top of it).
:func:`~effectstudy.harmonise.harmonise` still checks the whole run (all files, all
programmes, including clients seen only in a delivery log and in no score export) and
stops on a collision instead of merging two girls. The rater and target pseudonyms of
fidelity ratings (:func:`~effectstudy.harmonise.integrity.staff_pseudonym`) are checked
the same way, each in a space of its own (raters, targets), every row read included.

Where the key comes from, first match wins:

1. the ``key=`` argument (bytes, or str read as key text, see below);
2. an explicit ``key_file=`` argument (``--key-file``);
3. the environment variable ``EFFECTSTUDY_PSEUDONYM_KEY``;
4. a key file: env ``EFFECTSTUDY_KEY_FILE``, else
   ``~/.config/effectstudy/pseudonym.key``. If the file does not exist a random
   32-byte key is generated once and stored there (mode 0600, as hex text); a
   :class:`PseudonymKeyWarning` says where.

One rule turns key *text* (the environment variable, a key file, a ``str`` key) into
key bytes (:func:`key_from_text`): surrounding white space is stripped; text made only
of an even number of hex digits (at least 32, i.e. 16 bytes) is hex-decoded; any other
text is used as its UTF-8 bytes. So the hex text of a key gives the same pseudonyms
from the environment variable as from a key file. ``bytes`` keys are used as they are.

Keys are refused (:class:`~effectstudy.errors.HarmoniseError`) when shorter than
:data:`MIN_KEY_BYTES` (16) bytes or weak: fewer than :data:`MIN_DISTINCT_BYTES` (8)
distinct byte values (an all-zero key, a single repeated byte, ``abab...``); a random
16-byte key fails that rule with a probability far below ``1e-10``.

A key file inside the data folder or the output folder is refused: whoever gets the
data must not get the key with it. A key file that group or others may read (mode
``& 0o077``) is used with a :class:`PseudonymKeyWarning` that says how to fix it
(``chmod 600``). A key file that is not UTF-8 text is refused without showing it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import secrets
import stat
import warnings
from collections.abc import Iterable
from pathlib import Path

from effectstudy.errors import HarmoniseError

ENV_KEY = "EFFECTSTUDY_PSEUDONYM_KEY"
ENV_KEY_FILE = "EFFECTSTUDY_KEY_FILE"
MIN_KEY_BYTES = 16
#: A key with fewer distinct byte values than this is weak and refused.
MIN_DISTINCT_BYTES = 8
#: Hex digits of a pseudonym after the programme code (80 bits).
PSEUDONYM_HEX_DIGITS = 20
PSEUDONYM_PATTERN = rf"^[A-Z]{{1,4}}-[0-9a-f]{{{PSEUDONYM_HEX_DIGITS}}}$"
_HEX = re.compile(r"^(?:[0-9a-fA-F]{2}){16,}$")


class PseudonymKeyWarning(UserWarning):
    """Something about the pseudonym key needs the user's attention (new key file, open mode)."""


def default_key_file() -> Path:
    """The key file used when no key is given: env ``EFFECTSTUDY_KEY_FILE`` or ~/.config."""
    env = os.environ.get(ENV_KEY_FILE)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".config" / "effectstudy" / "pseudonym.key"


def programme_code(programme: str) -> str:
    """Short upper-case code of a programme id: initials of its parts, or its first two letters.

    ``veilig_lima`` -> ``VL``, ``pinq_crisis`` -> ``PC``, ``hoenderloo`` -> ``HO``.
    """
    parts = [p for p in programme.replace("-", "_").split("_") if p]
    if len(parts) >= 2:
        code = "".join(p[0] for p in parts[:4])
    else:
        code = (parts[0] if parts else "X")[:2]
    code = "".join(ch for ch in code.upper() if "A" <= ch <= "Z")
    return code or "X"


def normalise_id(value: object) -> str | None:
    """Canonical text of a raw client id (None when missing).

    Numbers that are whole (``101.0`` from SPSS) become ``"101"`` so that the same
    client links up across an SPSS file and a CSV file.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, int):
        return str(value)
    text = str(value).strip()
    if not text or text.lower() in ("nan", "none", "<na>"):
        return None
    return text


def key_from_text(text: str) -> bytes:
    """Key bytes from key text: hex-decoded when it is only hex digits, else its UTF-8 bytes.

    The one rule for the environment variable, key files and ``str`` keys (see the
    module docstring): white space around the text is stripped; an even number (>= 32)
    of hex digits is decoded; anything else is encoded as UTF-8.
    """
    text = text.strip()
    if _HEX.match(text):
        return bytes.fromhex(text)
    return text.encode("utf-8")


def _as_bytes(key: bytes | str) -> bytes:
    out = key_from_text(key) if isinstance(key, str) else bytes(key)
    if len(out) < MIN_KEY_BYTES:
        raise HarmoniseError(f"pseudonym key too short: need at least {MIN_KEY_BYTES} bytes")
    if len(set(out)) < MIN_DISTINCT_BYTES:
        raise HarmoniseError(f"pseudonym key is weak: fewer than {MIN_DISTINCT_BYTES} distinct "
                             "byte values (e.g. all zeros); use a random key, e.g. "
                             "python -c 'import secrets; print(secrets.token_hex(32))'")
    return out


def pseudonymise(programme: str, raw_id: object, key: bytes | str) -> str:
    """Keyed pseudonym of one client id.

    Parameters
    ----------
    programme
        Programme id (part of the HMAC message, so equal raw ids of two programmes differ).
    raw_id
        The raw client id as read (normalised with :func:`normalise_id`).
    key
        The secret key (at least 16 bytes).

    Returns
    -------
    str
        ``<CODE>-<20 hex>``, e.g. ``VL-3f9a1c2e07b4d58e6a13`` (see
        :data:`PSEUDONYM_PATTERN`).
    """
    rid = normalise_id(raw_id)
    if rid is None:
        raise HarmoniseError("cannot pseudonymise a missing client id")
    mac = hmac.new(_as_bytes(key), f"{programme}\x1f{rid}".encode(), hashlib.sha256)
    return f"{programme_code(programme)}-{mac.hexdigest()[:PSEUDONYM_HEX_DIGITS]}"


def demo_key(seed: int) -> bytes:
    """Deterministic key for the *synthetic* demo data only (never for real data)."""
    return hashlib.sha256(f"effectstudy synthetic demo key, seed {int(seed)}".encode()).digest()


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
    except ValueError:
        return False
    return True


def check_key_file_location(key_file: Path, forbidden: Iterable[str | Path]) -> None:
    """Refuse a key file inside any of the ``forbidden`` folders (data, output)."""
    for folder in forbidden:
        folder = Path(folder)
        if _inside(key_file, folder):
            raise HarmoniseError(
                "refusing to use a pseudonym key file inside the data or output folder; "
                "keep the key elsewhere (EFFECTSTUDY_KEY_FILE or --key-file)",
                file=key_file,
            )


def _read_key_file(file: Path) -> bytes:
    """Key bytes from a key file (the text rule of :func:`key_from_text`); never echoes it."""
    mode = stat.S_IMODE(file.stat().st_mode)
    if mode & 0o077:
        warnings.warn(PseudonymKeyWarning(
            f"pseudonym key file {file} can be read by group or others (mode {mode:04o}); "
            f"restrict it to yourself: chmod 600 {file}"), stacklevel=3)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise HarmoniseError("pseudonym key file is not UTF-8 text (a key file holds hex "
                             "digits or a passphrase)", file=file) from None
    return _as_bytes(key_from_text(text))


def resolve_key(
    key: bytes | str | None = None,
    *,
    key_file: str | Path | None = None,
    forbidden: Iterable[str | Path] = (),
) -> tuple[bytes, Path | None]:
    """Find (or create once) the pseudonym key.

    Parameters
    ----------
    key
        Explicit key; wins over everything else. ``str`` keys follow :func:`key_from_text`.
    key_file
        Explicit key file; else env ``EFFECTSTUDY_PSEUDONYM_KEY``, else env
        ``EFFECTSTUDY_KEY_FILE``, else ~/.config/effectstudy/pseudonym.key.
    forbidden
        Folders the key file may not be in (the data and output folders).

    Returns
    -------
    (bytes, Path or None)
        The key and the key file it came from (None for an explicit or env key).

    Raises
    ------
    HarmoniseError
        The key is too short or weak, the key file is inside a forbidden folder, is
        not UTF-8 text, or its path is not a file.

    Warns
    -----
    PseudonymKeyWarning
        A new key file was created (the warning says where), or the key file can be
        read by group or others.
    """
    if key is not None:
        return _as_bytes(key), None
    env = os.environ.get(ENV_KEY)
    if env and key_file is None:
        return _as_bytes(key_from_text(env)), None
    file = Path(key_file).expanduser() if key_file is not None else default_key_file()
    check_key_file_location(file, forbidden)
    if file.is_file():
        return _read_key_file(file), file
    if file.exists():
        raise HarmoniseError("pseudonym key path exists but is not a file", file=file)
    file.parent.mkdir(parents=True, exist_ok=True)
    new = secrets.token_bytes(32)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new.hex() + "\n")
    warnings.warn(PseudonymKeyWarning(
        f"no pseudonym key found: created a new random key file {file} (mode 0600); back it "
        "up and keep it away from the data, the same key is needed to link later exports"),
        stacklevel=2)
    return new, file
