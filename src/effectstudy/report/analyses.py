"""The report sections under their old address.

The sections live in :mod:`effectstudy.report.sections`, one module per section, with
what they share in :mod:`effectstudy.report.sections.layout`; this module re-exports
the names other code and the tests import from here.
"""

from __future__ import annotations

from effectstudy.report.publication import CATEGORIES, FLOW_COLUMNS
from effectstudy.report.sections import AUDIENCES, run_sections
from effectstudy.report.sections.change import reliable_change_section
from effectstudy.report.sections.descriptives import descriptives
from effectstudy.report.sections.dropout import dropout_section
from effectstudy.report.sections.flow import sample_flow
from effectstudy.report.sections.follow_up import follow_up_section
from effectstudy.report.sections.growth import multilevel_section
from effectstudy.report.sections.integrity import integrity_section
from effectstudy.report.sections.layout import (
    FIGURE_DPI,
    Block,
    Context,
    Section,
    locale_axes,
    public_message,
    public_note,
    public_text,
)
from effectstudy.report.sections.limitations import limitations_section, public_size_range
from effectstudy.report.sections.power import power_section
from effectstudy.report.sections.programmes import programmes_section
from effectstudy.report.sections.recognition import recognition_section
from effectstudy.report.sections.scribe import SCRIBE_ITEMS, scribe_checklist
from effectstudy.report.sections.single_case import single_case_section
from effectstudy.report.sections.slopes import slopes_section
from effectstudy.report.sections.summary import summary_section

__all__ = [
    "AUDIENCES", "CATEGORIES", "FIGURE_DPI", "FLOW_COLUMNS", "SCRIBE_ITEMS", "Block", "Context",
    "Section", "descriptives", "dropout_section", "follow_up_section", "integrity_section",
    "limitations_section", "locale_axes", "multilevel_section", "power_section",
    "programmes_section", "public_message", "public_note", "public_size_range", "public_text",
    "recognition_section", "reliable_change_section", "run_sections", "sample_flow",
    "scribe_checklist", "single_case_section", "slopes_section", "summary_section",
]
