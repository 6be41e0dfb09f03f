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
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

import effectstudy
from effectstudy.dictionary import Dictionary, load_dictionary
from effectstudy.errors import SpecError
from effectstudy.report.analyses import Section, run_sections
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


def _table_html(frame: pd.DataFrame) -> str:
    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.4g}"
        return v

    shown = frame.copy()
    for col in shown.columns:
        shown[col] = shown[col].map(fmt)
    return shown.to_html(index=False, escape=True, border=0, na_rep="")


def render_html(sections: list[Section], *, title: str, subtitle: str | None, audience: str,
                threshold: int, prov: dict[str, Any]) -> str:
    """Lay out computed sections as one self-contained HTML page."""
    env = Environment(loader=PackageLoader("effectstudy.report", "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    view = []
    for s in sections:
        blocks = []
        for b in s.blocks:
            entry = {"kind": b.kind, "caption": b.caption, "content": b.content}
            if b.kind == "table":
                entry["html"] = _table_html(b.content)
            elif b.kind == "figure":
                entry["b64"] = base64.b64encode(b.content).decode("ascii")
            blocks.append(entry)
        view.append({"id": s.id, "title": s.title, "blocks": blocks})
    methods = [m for s in sections for m in s.methods]
    references = sorted(dict.fromkeys(r for s in sections for r in s.references))
    return env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, audience=audience, threshold=threshold, sections=view,
        methods=methods, references=references, provenance=prov)


def html_to_pdf(html_text: str, path: Path) -> Path:
    """Convert the report HTML to PDF (xhtml2pdf: pure Python, no browser needed)."""
    from xhtml2pdf import pisa

    with path.open("wb") as fh:
        status = pisa.CreatePDF(html_text, dest=fh, encoding="utf-8")
    if status.err:
        raise SpecError(f"PDF conversion reported {status.err} error(s)", file=path)
    return path


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
        Output folder; ``report.html`` and ``report.pdf`` are written there.
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
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path = out_dir / "report.html"
    html_path.write_text(html_text, encoding="utf-8")
    pdf_path = html_to_pdf(html_text, out_dir / "report.pdf") if pdf else None
    return ReportResult(html_path, pdf_path, audience, tuple(s.title for s in sections), prov)
