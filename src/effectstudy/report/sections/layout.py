"""What every report section shares: blocks, sections, the render context, the
audience rules for texts and the label and number formats.

Nothing here computes a statistic; see :mod:`effectstudy.report.sections`.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from effectstudy.report.i18n import num, t
from effectstudy.report.publication import (
    PublicationPlan,
    publication_plan,
)

#: Resolution of every report figure (the renderer shows figures at physical size).
FIGURE_DPI = 150



def pretty(value: Any) -> Any:
    """A code-style label as a reader sees it (occasion, construct, scale, category...)."""
    from effectstudy.report.i18n import has

    if not isinstance(value, str):
        return value
    for group in ("occasion", "construct", "category", "check", "rating", "statistic",
                  "direction", "scale"):
        if has(f"{group}.{value}"):
            return t(f"{group}.{value}")
    if value.endswith("_t"):
        stem = value[:-2]
        base = t(f"scale.{stem}") if has(f"scale.{stem}") else stem.replace("_", " ")
        return f"{base} {t('common.t_score')}"
    return value.replace("_", " ")


@dataclass
class Block:
    """One element of a section: prose, a table or a figure (PNG bytes)."""

    kind: str  # "text" | "table" | "figure"
    content: Any
    caption: str = ""


@dataclass
class Section:
    id: str
    title: str
    blocks: list[Block] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)     # sentences for the methods text
    references: list[str] = field(default_factory=list)  # citations used

    def text(self, content: str) -> None:
        self.blocks.append(Block("text", content))

    def table(self, frame: pd.DataFrame, caption: str = "") -> None:
        self.blocks.append(Block("table", frame, caption))

    def figure(self, fig, caption: str = "") -> None:
        import matplotlib.pyplot as plt

        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
        plt.close(fig)
        self.blocks.append(Block("figure", buf.getvalue(), caption))


class Context:
    """What a section renders from: the saved results, the audience, the programme.

    ``Context(results, audience, programme)``. The older form
    ``Context(table=..., clients=..., dictionary=..., spec=..., audience=...)`` is
    still accepted: the study layer then runs on those frames when a section first
    needs results (the renderer itself still computes nothing).
    """

    def __init__(self, results: Any = None, audience: str = "public",
                 programme: str | None = None, published: dict[str, Any] | None = None, *,
                 table: pd.DataFrame | None = None, clients: pd.DataFrame | None = None,
                 dictionary: Any = None, spec: dict[str, Any] | None = None) -> None:
        if results is None and (table is None or clients is None or spec is None):
            from effectstudy.errors import SpecError

            raise SpecError("a report context needs study results (or table, clients and spec)")
        self._results = results
        self._legacy = None if results is not None else (spec, table, clients, dictionary)
        self.audience = audience
        self.programme = programme
        #: what earlier sections published, for later text (e.g. which flow counts are visible)
        self.published: dict[str, Any] = published if published is not None else {}

    @property
    def results(self) -> Any:  # effectstudy.study.StudyResults
        if self._results is None:
            from effectstudy.study import run  # the study layer computes, not the renderer

            spec, table, clients, dictionary = self._legacy
            self._results = run(spec, (table, clients), dictionary=dictionary)
        return self._results

    @property
    def spec(self) -> dict[str, Any]:
        return self._legacy[0] if self._results is None else self.results.spec

    @property
    def meta(self) -> dict[str, Any]:
        return self.results.meta

    @property
    def public(self) -> bool:
        return self.audience == "public"

    @property
    def threshold(self) -> int:
        return int(self.spec.get("suppression", {}).get("threshold", 5))

    @property
    def suppress_zero(self) -> bool:
        return bool(self.spec.get("suppression", {}).get("suppress_zero", True))

    @property
    def case_level(self) -> bool:
        return not self.public or bool(self.spec.get("public_individual_series", False))

    def programme_name(self, pid: str) -> str:
        prog = self.meta.get("programmes", {}).get(pid)
        return (prog.get("short_name") or prog.get("name")) if prog else pid

    def frame(self, name: str, *, own: bool = True) -> pd.DataFrame:
        """A saved result table; in a dossier (``own``) only this programme's rows."""
        f = self.results.frame(name)
        if own and self.programme is not None and "programme" in f:
            f = f[f["programme"] == self.programme]
        return f.reset_index(drop=True)

    def few(self) -> str:
        return t("common.fewer_than", threshold=self.threshold)

    @property
    def plan(self) -> PublicationPlan:
        """The one suppression pattern of every public document of these results."""
        return publication_plan(self.results)

    def count(self, kind: str, *key: Any, value: Any) -> int | str:
        """A count as this document prints it: for the public, as the one suppression
        pattern shows cell ``(kind, *key)`` (its number, ``<5`` or ``x``); else ``value``.

        The key parts are the saved frame's values (programme id, instrument, scale,
        occasion ...), as :mod:`effectstudy.report.publication` names its cells.
        """
        if not self.public:
            return int(value)
        return self.plan.shown((kind, *(str(k) for k in key)))


def round_frame(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out


def count_text(ctx: Context, value: Any) -> str:
    """A published count as text: the number, or 'fewer than 5' / '5 or more'."""
    if is_count(value):
        return str(int(value))
    if isinstance(value, str) and value.startswith("<"):
        return ctx.few()
    return t("common.or_more", threshold=ctx.threshold)


def pretty_measure(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    inst, _, scale = text.partition(" ")
    return f"{inst} {pretty(scale)}".strip()


def ci_text(lo: Any, hi: Any, decimals: int = 2) -> str:
    if lo is None or hi is None or not (np.isfinite(float(lo)) and np.isfinite(float(hi))):
        return ""
    return f"[{num(lo, decimals)}; {num(hi, decimals)}]"


#: A client count written into a text: "(n=3)", "n = 3", "3 clients".
_COUNT_IN_TEXT = re.compile(r"\s*\(\s*n\s*=\s*[\d,.]+\s*\)|\bn\s*=\s*[\d,.]+")


def public_text(text: Any) -> Any:
    """A provenance text without any client count in it (``(n=3)`` and the like)."""
    if not isinstance(text, str):
        return text
    return _COUNT_IN_TEXT.sub("", text).strip()


#: "client (3 levels)" in a model message: the number of clients in the model.
_LEVELS = re.compile(r"\((\d+) levels?\)")


def public_message(text: str, threshold: int) -> str:
    """A model or test message for the public: group counts below the threshold and
    ``n=`` counts are left out ("client (3 levels)" -> "client (few levels)")."""
    text = _LEVELS.sub(lambda m: "(few levels)" if int(m.group(1)) < threshold else m.group(0),
                       str(text))
    return public_text(text)


def public_note(note: Any) -> Any:
    """A reliable-change note for the public: reasons that hint at a group's size
    ('fewer than 2 clients', 'needs at least 3 clients') become a neutral reason."""
    if not isinstance(note, str) or not note:
        return note
    parts = []
    for part in note.split("; "):
        if "no usable SD" in part or "needs at least" in part:
            part = "no usable sample SD in some programmes: RCI not computed there"
        else:
            part = public_text(part)
        parts.append(part)
    return "; ".join(dict.fromkeys(parts))


def locale_axes(ax) -> None:
    """Numeric tick labels with the report's decimal separator (a comma in Dutch);
    axes with their own labels (programme names) are left alone."""
    from matplotlib.ticker import FuncFormatter, ScalarFormatter

    from effectstudy.report.i18n import decimal_point

    if decimal_point() == ".":
        return
    for axis in (ax.xaxis, ax.yaxis):
        if isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.set_major_formatter(FuncFormatter(
                lambda v, _pos: f"{v:g}".replace("-", "\u2212").replace(".", ",")))


def is_count(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)
