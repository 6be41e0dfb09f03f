"""Build a study report or a programme dossier: HTML (self-contained) and PDF.

The flow is one way: :class:`~effectstudy.study.StudyResults` (saved by
``effectstudy run`` or computed by :func:`effectstudy.study.run`) go in;
:mod:`effectstudy.report.sections` lays them out per audience and language; this
module renders them with a Jinja2 template (figures embedded as base64 PNG) and
converts the same HTML to PDF with xhtml2pdf. Nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import html as _html
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, select_autoescape

from effectstudy._io import DIR_MODE, atomic_write_bytes, atomic_write_text
from effectstudy.errors import SpecError
from effectstudy.report.i18n import LANGUAGES, has, num, t, use_language
from effectstudy.report.sections import run_sections
from effectstudy.report.sections.layout import FIGURE_DPI, Section
from effectstudy.study.results import StudyResults


@dataclass(frozen=True)
class ReportResult:
    """Paths of the written report and what went into it."""

    html_path: Path
    pdf_path: Path | None
    audience: str
    sections: tuple[str, ...]
    provenance: dict[str, Any]
    language: str = "en"
    programme: str | None = None

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{_html.escape(s)}</li>" for s in self.sections)
        return (f"<p>Report ({_html.escape(self.audience)}): {_html.escape(str(self.html_path))}"
                f"</p><ol>{items}</ol>")


def _header(col: str) -> str:
    """A column header as a reader sees it (the frames keep their code-friendly names)."""
    return t(f"col.{col}") if has(f"col.{col}") else col.replace("_", " ")


#: Columns that hold p-values (shown as "<0.001" below that).
_P_COLUMNS = {"p_value", "min_p", "p"}


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _decimals(values: list[float], cap: int = 3) -> int:
    """Fewest decimals (up to ``cap``) that show every value of a column as rounded."""
    need = 0
    for v in values:
        r = round(v, cap)
        while need < cap and round(r, need) != r:
            need += 1
    return need


def _column_text(col: str, values: pd.Series) -> tuple[list[str], bool]:
    """Format one column; returns the cell texts and whether it is numeric."""
    values = [None if isinstance(v, str) and not v.strip() else v for v in values]
    nums = [float(v) for v in values if _is_number(v) and not pd.isna(v)]
    other = [v for v in values if not (_is_number(v) or v is None)]
    numeric = bool(nums) and all(isinstance(v, str) and v.startswith("<") for v in other)
    cap = 4 if col in _P_COLUMNS else 3
    dec = _decimals(nums, cap)
    out = []
    for v in values:
        if v is None or (_is_number(v) and pd.isna(v)):
            out.append("")
        elif _is_number(v):
            f = float(v)
            if col in _P_COLUMNS and 0 <= f < 0.001:
                out.append("<" + num(0.001, 3))
            elif dec == 0 and abs(f) >= 10000:
                out.append(num(f, 0, thousands=True))
            else:
                out.append(num(f, dec))
        else:
            out.append(str(v))
    return out, numeric


#: Width of the text column in ems of the 8.5pt table font (A4 less margins in the PDF).
_PAGE_EMS = 56.0


def _text_width(text: str) -> float:
    """Rough width of ``text`` in ems of Helvetica/DejaVu Sans (for column widths)."""
    wide = sum(1 for ch in text if ch.isupper() or ch in "%mwMW@")
    digits = sum(1 for ch in text if ch.isdigit())
    narrow = sum(1 for ch in text if ch in " .,:;()[]|!'-ijlft\u00a0")
    rest = len(text) - wide - digits - narrow
    return 0.72 * wide + 0.58 * digits + 0.32 * narrow + 0.56 * rest


def _table_html(frame: pd.DataFrame, table_id: str) -> tuple[str, str]:
    """One table as HTML plus its CSS (column widths and alignment).

    Widths follow the length of each column's content so that neither the
    browser nor xhtml2pdf (which otherwise gives every column the same width)
    squeezes long text into a narrow column; numbers are right-aligned, text
    left-aligned.
    """
    cols = [str(c) for c in frame.columns]
    texts, numeric = [], []
    for col in frame.columns:
        t, is_num = _column_text(str(col), frame[col].astype(object).tolist())
        texts.append(t)
        numeric.append(is_num)
    heads = [_header(c) for c in cols]
    # minimum width per column: its longest unbreakable word (xhtml2pdf cannot break
    # one; headers are bold), short values kept on one line; plus the cell padding
    need, want = [], []
    for head, t in zip(heads, texts, strict=True):
        words = [w for x in t for w in x.split()] + [w + "i" for w in head.split()]
        longest_word = max((_text_width(w) for w in words), default=1.0)
        longest = max((_text_width(x) for x in t), default=0.0)
        low = 1.08 * max(longest_word, longest if longest <= 8 else 0.0, 2.5) + 1.8
        need.append(low)
        want.append(max(low, min(longest, 24.0) + 1.8, min(_text_width(head), 8.0) + 1.8))
    # share the page: every column gets what it needs, the rest goes to long text
    spare = max(_PAGE_EMS - sum(need), 0.0)
    extra = [w - n for w, n in zip(want, need, strict=True)]
    if sum(want) <= _PAGE_EMS:
        widths = want
    else:
        widths = [n + spare * e / (sum(extra) or 1.0) for n, e in zip(need, extra, strict=True)]
    total = sum(widths)
    css = []
    for k, (w, is_num, t) in enumerate(zip(widths, numeric, texts, strict=True), start=1):
        align = "right" if is_num else "left"
        short = max((len(x) for x in t), default=0) <= 12
        css.append(f"#{table_id} td:nth-child({k}), #{table_id} th:nth-child({k}) "
                   f"{{ width: {100 * w / total:.1f}%; text-align: {align}; }}")
        if short:  # short values (ranges like 12-18, "<5") never wrap
            css.append(f"#{table_id} td:nth-child({k}) {{ white-space: nowrap; }}")
    esc = _html.escape
    rows = ["<thead><tr>" + "".join(f"<th>{esc(h)}</th>" for h in heads) + "</tr></thead>",
            "<tbody>"]
    for i in range(len(frame)):
        rows.append("<tr>" + "".join(f"<td>{esc(t[i])}</td>" for t in texts) + "</tr>")
    rows.append("</tbody>")
    width = min(100, max(40, round(100 * total / _PAGE_EMS)))
    # a table that cannot fit at the normal size gets a smaller font instead of overflowing
    cls = "data wide" if sum(need) > _PAGE_EMS else "data"
    html = f'<table id="{table_id}" class="{cls}" style="width: {width}%">' + "\n".join(rows) + "</table>"
    return html, "\n".join(css)


#: Widest a figure is shown, in CSS pixels (the text column of the page and the PDF).
_MAX_FIGURE_PX = 660


def _figure_width(png: bytes) -> int:
    """Display width (CSS px) of a PNG saved by the report: its physical size, capped.

    Every report figure is saved at the same dpi, so showing it at its physical
    size keeps the fonts of all figures the same size on the page.
    """
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        px = im.size[0]
        dpi = im.info.get("dpi", (FIGURE_DPI, FIGURE_DPI))[0] or FIGURE_DPI
    return int(min(_MAX_FIGURE_PX, round(px / float(dpi) * 96)))


def render_html(sections: list[Section], *, title: str, subtitle: str | None, audience: str,
                threshold: int, prov: dict[str, Any], language: str = "en") -> str:
    """Lay out computed sections as one self-contained HTML page."""
    env = Environment(loader=PackageLoader("effectstudy.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    view, table_css = [], []
    n_figures = 0
    for s in sections:
        blocks = []
        for b in s.blocks:
            entry = {"kind": b.kind, "caption": b.caption, "content": b.content}
            if b.kind == "table":
                entry["html"], css = _table_html(b.content, f"t{len(table_css) + 1}")
                table_css.append(css)
                entry["number"] = len(table_css)
            elif b.kind == "figure":
                n_figures += 1
                entry["b64"] = base64.b64encode(b.content).decode("ascii")
                entry["number"] = n_figures
                entry["width"] = _figure_width(b.content)
            blocks.append(entry)
        view.append({"id": s.id, "title": s.title, "blocks": blocks})
    methods = [m for s in sections for m in s.methods]
    references = sorted(dict.fromkeys(r for s in sections for r in s.references))
    shown_prov = {t(f"prov.{k}") if has(f"prov.{k}") else k.replace("_", " "): v
                  for k, v in prov.items()
                  if k not in ("spec", "packages", "packages_text", "input_files")}
    return env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, audience=audience, threshold=threshold, sections=view,
        methods=methods, references=references, provenance=prov, shown_provenance=shown_prov,
        table_css="\n".join(table_css), lang=language, t=t)


def html_to_pdf(html_text: str, path: Path) -> Path:
    """Convert the report HTML to PDF (xhtml2pdf: pure Python, no browser needed).

    The PDF is rendered in memory and written atomically (``0600``): an interrupted
    run leaves the earlier file or none, never half a report.
    """
    import logging

    from xhtml2pdf import pisa

    # xhtml2pdf logs the CSS it ignores (e.g. border-collapse); that is expected here.
    logging.getLogger("xhtml2pdf").setLevel(logging.ERROR)
    buf = io.BytesIO()
    status = pisa.CreatePDF(html_text, dest=buf, encoding="utf-8")
    if status.err:
        raise SpecError(f"PDF conversion reported {status.err} error(s)", file=path)
    return atomic_write_bytes(path, buf.getvalue())


def _load_results(source: Any, spec: Any, dictionary: Any) -> StudyResults:
    """Saved or fresh results: StudyResults as given, a results folder read (verified),
    else harmonised data run through the study layer."""
    if isinstance(source, StudyResults):
        return source
    if isinstance(source, str | os.PathLike) and _is_results_folder(Path(source)):
        return StudyResults.load(source)
    from effectstudy.study import run  # the study layer computes; this module only renders

    return run(spec, source, dictionary=dictionary)


def _is_results_folder(folder: Path) -> bool:
    import json

    prov = folder / "provenance.json"
    if not prov.is_file() or prov.is_symlink():
        return False
    try:
        with prov.open("rb") as fh:
            head = fh.read(16 * 1024 * 1024)
        return json.loads(head.decode("utf-8")).get("kind") == "effectstudy-study-results"
    except (ValueError, UnicodeDecodeError, AttributeError):
        return False


def known_programmes(results: StudyResults) -> list[str]:
    """Programme ids with clients in the results."""
    return [pid for pid, p in results.meta.get("programmes", {}).items() if p.get("in_data")]


def build_report(source: Any, spec: str | Path | dict[str, Any] | None = None, *,
                 out: str | Path, audience: str = "public", dictionary: Any = None,
                 pdf: bool = True, programme: str | None = None,
                 language: str = "en") -> ReportResult:
    """Render the cross-programme report or one programme's dossier.

    Parameters
    ----------
    source
        :class:`~effectstudy.study.StudyResults`, a folder written by
        :meth:`StudyResults.save` (read and verified; nothing is recomputed), or
        harmonised data (a folder or a ``Harmonised`` result), which are first run
        through :func:`effectstudy.study.run` with ``spec``.
    spec
        Path of an ``ANALYSIS.yaml``, a dict, or None for the demo spec (used only
        when the study is run here).
    out
        Output folder; ``report.html``/``.pdf`` (or ``dossier_<programme>.html``/
        ``.pdf``) are written there, each atomically and owner-only (``0600``).
    audience
        ``"public"`` (default: small-cell suppression, no case-level identifiers or
        series) or ``"internal"`` (pseudonymised case-level detail).
    programme
        A programme id: write that programme's dossier instead of the
        cross-programme report. An unknown id is a
        :class:`~effectstudy.errors.SpecError` listing the known ids.
    language
        ``"en"`` or ``"nl"``: every text from the message catalogue, numbers per locale.
    """
    if language not in LANGUAGES:
        raise SpecError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    results = _load_results(source, spec, dictionary)
    known = known_programmes(results)
    if programme is not None and programme not in known:
        raise SpecError(f"unknown programme {programme!r}; known programmes: "
                        + ", ".join(sorted(known)))
    spec_dict = results.spec
    threshold = int(spec_dict.get("suppression", {}).get("threshold", 5))
    with use_language(language):
        sections = run_sections(results, audience, programme)
        prov = dict(results.meta.get("provenance", {}))
        prov.update(audience=audience, language=language)
        if programme is not None:
            prov["programme"] = programme
            name = results.meta["programmes"][programme]
            title = t("report.dossier_title", programme=name.get("name") or programme)
        else:
            title = spec_dict.get(f"title_{language}") or spec_dict["title"]
        subtitle = spec_dict.get(f"subtitle_{language}") or spec_dict.get("subtitle")
        html_text = render_html(sections, title=title, subtitle=subtitle, audience=audience,
                                threshold=threshold, prov=prov, language=language)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    stem = "report" if programme is None else f"dossier_{programme}"
    html_path = atomic_write_text(out_dir / f"{stem}.html", html_text)
    pdf_path = html_to_pdf(html_text, out_dir / f"{stem}.pdf") if pdf else None
    return ReportResult(html_path, pdf_path, audience, tuple(s.title for s in sections), prov,
                        language, programme)
