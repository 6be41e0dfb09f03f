"""Keyed pseudonyms for client ids (privacy at the door).

A raw client id never leaves the reader: it is replaced by
``HMAC-SHA256(key, programme + "\\x1f" + raw id)``, shown as the programme code and
the first 8 hex digits, e.g. ``VL-3f9a1c2e``. The same key always gives the same
pseudonym (so repeated exports link up); another key gives unrelated pseudonyms.

Where the key comes from, first match wins:

1. the ``key=`` argument (bytes or str);
2. an explicit ``key_file=`` argument (``--key-file``);
3. the environment variable ``EFFECTSTUDY_PSEUDONYM_KEY``;
4. a key file: env ``EFFECTSTUDY_KEY_FILE``, else
   ``~/.config/effectstudy/pseudonym.key``. If the file does not exist a random
   32-byte key is generated once and stored there (mode 0600).

A key file inside the data folder or the output folder is refused: whoever gets the
data must not get the key with it.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from effectstudy.errors import HarmoniseError

ENV_KEY = "EFFECTSTUDY_PSEUDONYM_KEY"
ENV_KEY_FILE = "EFFECTSTUDY_KEY_FILE"
MIN_KEY_BYTES = 16
PSEUDONYM_PATTERN = r"^[A-Z]{1,4}-[0-9a-f]{8}$"


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


def _as_bytes(key: bytes | str) -> bytes:
    out = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(out) < MIN_KEY_BYTES:
        raise HarmoniseError(f"pseudonym key too short: need at least {MIN_KEY_BYTES} bytes")
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
        ``<CODE>-<8 hex>``, e.g. ``VL-3f9a1c2e``.
    """
    rid = normalise_id(raw_id)
    if rid is None:
        raise HarmoniseError("cannot pseudonymise a missing client id")
    mac = hmac.new(_as_bytes(key), f"{programme}\x1f{rid}".encode(), hashlib.sha256)
    return f"{programme_code(programme)}-{mac.hexdigest()[:8]}"


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
        Explicit key; wins over everything else.
    key_file
        Explicit key file; else env ``EFFECTSTUDY_KEY_FILE``, else ~/.config/effectstudy.
    forbidden
        Folders the key file may not be in (the data and output folders).

    Returns
    -------
    (bytes, Path or None)
        The key and the key file it came from (None for an explicit or env key).
    """
    if key is not None:
        return _as_bytes(key), None
    env = os.environ.get(ENV_KEY)
    if env and key_file is None:
        return _as_bytes(env), None
    file = Path(key_file).expanduser() if key_file is not None else default_key_file()
    check_key_file_location(file, forbidden)
    if file.is_file():
        text = file.read_text(encoding="utf-8").strip()
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = text.encode("utf-8")
        return _as_bytes(raw), file
    if file.exists():
        raise HarmoniseError("pseudonym key path exists but is not a file", file=file)
    file.parent.mkdir(parents=True, exist_ok=True)
    new = secrets.token_bytes(32)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(new.hex() + "\n")
    return new, file
