"""Build a study report: HTML (self-contained, opens offline) and PDF.

The flow is one way: a harmonised folder (or :class:`~effectstudy.harmonise.Harmonised`)
and an analysis spec go in; :mod:`effectstudy.report.analyses` computes the results;
this module renders them with a Jinja2 template (figures embedded as base64 PNG)
and converts the same HTML to PDF with xhtml2pdf. Nothing here computes a statistic.
"""

from __future__ import annotations

import base64
import datetime as _dt
import hashlib
import html as _html
import importlib.metadata as md
import io
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

import effectstudy
from effectstudy._io import DIR_MODE, atomic_write_bytes, atomic_write_text
from effectstudy.dictionary import Dictionary, load_dictionary
from effectstudy.errors import SpecError
from effectstudy.report.analyses import FIGURE_DPI, Section, run_sections
from effectstudy.report.spec import load_spec, validate_spec

_PACKAGES = ("numpy", "scipy", "pandas", "statsmodels", "pingouin", "matplotlib", "jinja2",
             "pandera")


@dataclass(frozen=True)
class ReportResult:
    """Paths of the written report and what went into it."""

    html_path: Path
    pdf_path: Path | None
    audience: str
    sections: tuple[str, ...]
    provenance: dict[str, Any]

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{_html.escape(s)}</li>" for s in self.sections)
        return (f"<p>Report ({_html.escape(self.audience)}): {_html.escape(str(self.html_path))}"
                f"</p><ol>{items}</ol>")


def data_hash(table: pd.DataFrame, clients: pd.DataFrame) -> str:
    """SHA-256 of the harmonised table and client table (order-independent)."""
    h = hashlib.sha256()
    for frame in (table, clients):
        canon = frame.sort_values(list(frame.columns[:4])).reset_index(drop=True)
        h.update(canon.to_csv(index=False).encode("utf-8"))
    return h.hexdigest()


def provenance(table: pd.DataFrame, clients: pd.DataFrame, dictionary: Dictionary,
               spec: dict[str, Any], audience: str, upstream: dict[str, Any] | None = None
               ) -> dict[str, Any]:
    """Everything needed to reproduce the report."""
    versions = {}
    for pkg in _PACKAGES:
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            versions[pkg] = "not installed"
    prov = {
        "effectstudy_version": effectstudy.__version__,
        "python": platform.python_version(),
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "audience": audience,
        "seed": spec.get("seed"),
        "dictionary_sha256": dictionary.sha256,
        "data_sha256": data_hash(table, clients),
        "packages": versions,
        "packages_text": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "spec": yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
    }
    if upstream:
        prov["harmonised_at"] = upstream.get("date") or upstream.get("created")
        prov["input_files"] = upstream.get("input_files") or upstream.get("inputs")
    return prov


#: Column headers as a reader sees them (the frames keep their code-friendly names).
_HEADERS = {
    "se": "SE", "sd": "SD", "ci_lower": "95% CI lower", "ci_upper": "95% CI upper",
    "p_value": "p", "min_p": "smallest possible p", "n_assignments": "possible assignments",
    "mc_se": "MC SE", "n_failed": "failed", "n_singular": "singular", "nsim": "replicates",
    "df": "df",
}
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
                out.append("<0.001")
            elif dec == 0 and abs(f) >= 10000:
                out.append(f"{f:,.0f}")
            else:
                out.append(f"{f:.{dec}f}")
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
    heads = [_HEADERS.get(c, c.replace("_", " ")) for c in cols]
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
                threshold: int, prov: dict[str, Any]) -> str:
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
    return env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, audience=audience, threshold=threshold, sections=view,
        methods=methods, references=references, provenance=prov, table_css="\n".join(table_css))


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


def build_report(harmonised: Any, spec: str | Path | dict[str, Any] | None = None, *,
                 out: str | Path, audience: str = "public", dictionary: Dictionary | None = None,
                 pdf: bool = True) -> ReportResult:
    """Build the study report from harmonised data.

    Parameters
    ----------
    harmonised
        A :class:`~effectstudy.harmonise.Harmonised` result or a folder written by
        :meth:`Harmonised.write` (analyses never read raw exports).
    spec
        Path of an ``ANALYSIS.yaml``, a dict, or None for the demo spec.
    out
        Output folder; ``report.html`` and ``report.pdf`` are written there, each
        atomically and readable by the owner only (``0600``).
    audience
        ``"public"`` (default: small-cell suppression, no case-level identifiers or
        series) or ``"internal"`` (pseudonymised case-level detail).
    """
    from effectstudy.harmonise import read_harmonised

    dd = dictionary if dictionary is not None else load_dictionary()
    if isinstance(harmonised, str | Path):
        harmonised = read_harmonised(harmonised, dd)
    spec_dict = validate_spec(spec) if isinstance(spec, dict) else load_spec(spec)
    sections = run_sections(harmonised.table, harmonised.clients, dd, spec_dict, audience)
    prov = provenance(harmonised.table, harmonised.clients, dd, spec_dict, audience,
                      getattr(harmonised, "provenance", None))
    threshold = int(spec_dict.get("suppression", {}).get("threshold", 5))
    html_text = render_html(sections, title=spec_dict["title"], subtitle=spec_dict.get("subtitle"),
                            audience=audience, threshold=threshold, prov=prov)
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    html_path = atomic_write_text(out_dir / "report.html", html_text)
    pdf_path = html_to_pdf(html_text, out_dir / "report.pdf") if pdf else None
    return ReportResult(html_path, pdf_path, audience, tuple(s.title for s in sections), prov)
