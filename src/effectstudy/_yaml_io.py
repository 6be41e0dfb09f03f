"""Reading YAML spec files with :class:`~effectstudy.errors.SpecError` on failure.

A spec or design file is small UTF-8 text. Whatever else is passed by mistake
(a client export, an SPSS ``.sav``, a huge file) is refused with an error that
names the file but never repeats any of its content: YAML parser messages quote
the offending text, so only line and column numbers are passed on.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import EffectStudyError, SpecError

#: Largest spec/design file read (bytes); real ones are a few kilobytes.
MAX_SPEC_BYTES = 1_000_000

_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
#: Control characters never found in a YAML text file (tab, LF, CR allowed).
_BINARY = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _where(exc: yaml.YAMLError) -> tuple[int | None, str]:
    """(line, text) of where the parser stopped: the line goes into the error's ``row``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is None:
        return None, ""
    return mark.line + 1, f" at line {mark.line + 1}, column {mark.column + 1}"


def _problem(exc: yaml.YAMLError) -> str:
    """The parser's description with every quoted fragment (file content) left out."""
    problem = getattr(exc, "problem", None)
    if not isinstance(problem, str) or not problem:
        return "syntax error"
    return _QUOTED.sub("(not shown)", problem)


def read_yaml(path: str | Path, *, not_found: str, invalid: str,
              require_mapping: bool = False,
              error: type[EffectStudyError] = SpecError) -> Any:
    """``yaml.safe_load`` of the file at ``path``.

    A missing file raises ``SpecError(not_found)``; a file that is not UTF-8
    text, holds binary control characters or exceeds :data:`MAX_SPEC_BYTES`, a
    YAML syntax error (``SpecError(f"{invalid}: ... at line L, column C")``) or,
    with ``require_mapping``, a document that is not a mapping raise
    :class:`SpecError` (or the ``error`` class given, e.g. ``DictionaryError``);
    all with ``file=path`` and none with the file's content. An empty document is
    ``None`` (``{}`` with ``require_mapping``). Parsing uses PyYAML's safe loader
    (its C version where available): no tag can construct a Python object.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_SPEC_BYTES:
            raise error(f"the file is too large for a YAML settings file ({size} bytes; at most "
                            f"{MAX_SPEC_BYTES}); is it a data file?", file=path)
        raw = path.read_bytes()
    except FileNotFoundError as exc:
        raise error(not_found, file=path) from exc
    except IsADirectoryError as exc:
        raise error(f"{not_found}: the path is a folder", file=path) from exc
    except OSError as exc:
        raise error(f"cannot read the file ({type(exc).__name__})", file=path) from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    # errors are raised outside the except blocks: the decoder's and the parser's
    # exceptions hold the file's text and must not travel along as __context__
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None:
        raise error("the file is not UTF-8 text; a YAML settings file is text saved as "
                    "UTF-8 (is this a data export?)", file=path)
    if _BINARY.search(text):
        raise error("the file holds binary data, not YAML text (is this a data file?)",
                        file=path)
    problem, line = None, None
    try:
        data = yaml.load(text, Loader=_SafeLoader)
    except yaml.YAMLError as exc:
        line, where = _where(exc)
        problem = f"{_problem(exc)}{where}"
    except RecursionError:
        problem = "the document is nested too deeply"
    except Exception as exc:  # PyYAML constructors also raise ValueError and others
        # (e.g. ``!!int <text>`` -> ValueError quoting the text): never pass the text on
        problem = f"a value does not match its YAML tag ({type(exc).__name__})"
    if problem is not None:
        raise error(f"{invalid}: {problem}", file=path, row=line)
    if require_mapping:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise error(f"the file must hold a YAML mapping (key: value lines), not a "
                            f"{type(data).__name__}", file=path)
    return data


def unknown_keys_text(keys: Any, allowed: Any) -> str:
    """Describe unknown keys without echoing content: typos of allowed keys are named.

    A key is shown only when it is a close match of an allowed key (a typo such
    as ``tittle``); any other key may be text from a wrongly passed data file
    and is only counted.
    """
    import difflib

    allowed = sorted(str(a) for a in allowed)
    shown, hidden = [], 0
    for k in keys:
        hint = difflib.get_close_matches(str(k), allowed, n=1) if isinstance(k, str) else []
        if hint and len(str(k)) <= 40:
            shown.append(f"{k!r} (did you mean {hint[0]!r}?)")
        else:
            hidden += 1
    parts = shown + ([f"{hidden} other key(s), not shown"] if hidden else [])
    return f"unknown key(s): {'; '.join(parts)}; allowed: {', '.join(allowed)}"
