"""Lay out saved study results as report sections (a pure renderer).

Every number comes from :class:`~effectstudy.study.StudyResults`; this package
computes no statistic. What it does: choose what an audience may see (a public
report gets suppressed tables, no case-level results unless the spec opts in, no
client counts below the threshold in any text), translate (every text is a key of
the message catalogue, :mod:`effectstudy.report.i18n`), format numbers per locale
and draw figures from the saved numbers. A programme dossier
(``programme=ID``) shows that programme's results only: never another
programme's client-level results.

One module per report section (programmes, flow, descriptives, change, single case,
slopes, growth, follow-up, dropout, integrity, power, recognition, SCRIBE, limitations,
summary) with its figures, each reading its own saved result; what the sections share
(the audience rules, the render context and the label and number formats) lives in
:mod:`effectstudy.report.sections.layout`, so those rules stay in one place.
:func:`run_sections` gives the section order per audience and programme.
"""

from __future__ import annotations

from typing import Any

from effectstudy.report.sections.change import reliable_change_section
from effectstudy.report.sections.descriptives import descriptives
from effectstudy.report.sections.dropout import dropout_section
from effectstudy.report.sections.flow import sample_flow
from effectstudy.report.sections.follow_up import follow_up_section
from effectstudy.report.sections.growth import multilevel_section
from effectstudy.report.sections.integrity import integrity_section
from effectstudy.report.sections.layout import Context, Section
from effectstudy.report.sections.limitations import limitations_section
from effectstudy.report.sections.power import power_section
from effectstudy.report.sections.programmes import programmes_section
from effectstudy.report.sections.recognition import recognition_section
from effectstudy.report.sections.scribe import scribe_checklist
from effectstudy.report.sections.single_case import single_case_section
from effectstudy.report.sections.slopes import slopes_section
from effectstudy.report.sections.summary import summary_section

__all__ = ["AUDIENCES", "run_sections"]

AUDIENCES = ("public", "internal")


def run_sections(results: Any, audience: str, programme: str | None = None) -> list[Section]:
    """Lay out every section the results hold, in report order."""
    from effectstudy.errors import SpecError

    if audience not in AUDIENCES:
        raise SpecError(f"audience must be one of {AUDIENCES}, got {audience!r}")
    ctx = Context(results, audience, programme)
    have = set(results.sections)
    order = _REPORT if programme is None else _DOSSIER
    sections = [layout(ctx) for needs, layout in order if needs is None or needs in have]
    # a dossier opens with its plain-language summary, written from what the other
    # sections published (so it is laid out last)
    return sections if programme is None else [summary_section(ctx), *sections]


#: (the study section a layout needs, or None for always; the layout) in report order
_REPORT = (
    (None, programmes_section), (None, sample_flow), (None, descriptives),
    ("change", reliable_change_section), ("single_case", single_case_section),
    ("multilevel", multilevel_section), ("slopes", slopes_section),
    ("dropout", dropout_section), ("integrity", integrity_section),
    ("power", power_section), (None, lambda ctx: scribe_checklist()),
    (None, limitations_section),
)
_DOSSIER = (
    (None, programmes_section), (None, sample_flow),
    ("change", reliable_change_section), ("single_case", single_case_section),
    ("slopes", slopes_section), ("change", follow_up_section),
    ("dropout", dropout_section), ("integrity", integrity_section),
    (None, recognition_section), (None, lambda ctx: scribe_checklist()),
    (None, limitations_section),
)
