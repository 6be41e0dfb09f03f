"""Messages and numbers of the reports in Dutch and English, from one YAML catalogue.

Every text a report shows (titles, table headers, captions, methods, limitations,
the SCRIBE checklist, the recognition section) is a key of
``report/locale/<language>.yaml``; :func:`t` looks a key up in the language of the
report being rendered (:func:`use_language`) and fills its ``{fields}``. Numbers
are formatted per locale by :func:`num` (decimal comma in Dutch). A key missing
from a catalogue is an error, never a silent fallback to English.

Texts that are not the catalogue's come in two kinds: texts of the data dictionary,
which study results keep in every language the dictionary gives (:func:`dictionary_text`
picks the report's one and marks a missing translation), and coded messages of the
analyses (:func:`message` renders codes such as reliable change's ``note_codes``).
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Iterator
from importlib import resources
from typing import Any

import yaml

from effectstudy.errors import SpecError

LANGUAGES = ("en", "nl")
_current: contextvars.ContextVar[str] = contextvars.ContextVar("report_language", default="en")


@functools.cache
def catalogue(language: str) -> dict[str, str]:
    """The flat message catalogue of ``language`` (dotted keys -> text)."""
    if language not in LANGUAGES:
        raise SpecError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    text = resources.files("effectstudy.report").joinpath("locale", f"{language}.yaml").read_text(
        encoding="utf-8")
    data = yaml.safe_load(text)
    flat: dict[str, str] = {}

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            flat[prefix] = str(node)

    walk("", data)
    return flat


def language() -> str:
    """The language of the report being rendered."""
    return _current.get()


@contextlib.contextmanager
def use_language(lang: str) -> Iterator[None]:
    """Render in ``lang`` inside the block."""
    catalogue(lang)  # validates
    token = _current.set(lang)
    try:
        yield
    finally:
        _current.reset(token)


def t(key: str, **fields: Any) -> str:
    """The text of ``key`` in the current language, with ``{fields}`` filled in."""
    cat = catalogue(language())
    if key not in cat:
        raise KeyError(f"message {key!r} missing from the {language()} catalogue")
    text = cat[key]
    return text.format(**fields) if fields else text


def has(key: str) -> bool:
    """Whether the current catalogue has ``key``."""
    return key in catalogue(language())


def label(group: str, value: Any) -> Any:
    """A code value (construct, occasion, category, ...) as a reader sees it:
    the catalogue's ``<group>.<value>`` if there is one, else the value made readable."""
    if not isinstance(value, str):
        return value
    key = f"{group}.{value}"
    if has(key):
        return t(key)
    return value.replace("_", " ")


def dictionary_text(value: Any) -> str:
    """A data-dictionary text of saved results in the language of the report.

    ``value`` is ``{language: text}`` (results keep every language the dictionary gives)
    or a plain string (older results, and dictionaries without translations: English
    only). A text the dictionary does not give in the report's language is shown in
    English *with* the catalogue's mark ``common.untranslated`` after it, never as if
    it were translated (``effectstudy dictionary check`` lists the missing texts).
    None or an empty mapping gives "".
    """
    if value is None:
        return ""
    texts = {"en": value} if isinstance(value, str) else dict(value)
    lang = language()
    if texts.get(lang):
        return str(texts[lang])
    english = texts.get("en") or next(iter(texts.values()), "")
    if not english:
        return ""
    return f"{english} {t('common.untranslated')}"


def message(group: str, codes: Any, **fields: Any) -> str:
    """Coded messages of an analysis (``"code1;code2"`` or a list) as one text in the
    report's language: each code is the catalogue key ``<group>.<code>``, filled with
    ``fields``; texts are joined with "; " (repeats once)."""
    if codes is None or (isinstance(codes, float) and math.isnan(codes)):
        return ""
    items = codes.split(";") if isinstance(codes, str) else list(codes)
    texts = [t(f"{group}.{c}", **fields) for c in items if c]
    return "; ".join(dict.fromkeys(texts))


def num(value: Any, decimals: int = 2, *, thousands: bool = False) -> str:
    """A number in the current locale: ``0.25`` -> ``0,25`` in Dutch; "" for None/NaN."""
    if value is None or isinstance(value, str):
        return "" if value is None else value
    f = float(value)
    if not math.isfinite(f):
        return ""
    text = f"{f:,.{decimals}f}" if thousands else f"{f:.{decimals}f}"
    if language() == "nl":
        text = text.replace(",", "\u0000").replace(".", ",").replace("\u0000", ".")
    return text


def decimal_point() -> str:
    return "," if language() == "nl" else "."
