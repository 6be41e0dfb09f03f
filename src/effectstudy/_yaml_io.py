"""Reading YAML spec files with :class:`~effectstudy.errors.SpecError` on failure."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import SpecError


def read_yaml(path: str | Path, *, not_found: str, invalid: str) -> Any:
    """``yaml.safe_load`` of the file at ``path``.

    A missing file raises ``SpecError(not_found)``, a YAML syntax error
    ``SpecError(f"{invalid}: <parser message>")``, both with ``file=path``.
    """
    path = Path(path)
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SpecError(not_found, file=path) from exc
    except yaml.YAMLError as exc:
        raise SpecError(f"{invalid}: {exc}", file=path) from exc
