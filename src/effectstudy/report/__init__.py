"""Study reports: reproducible, privacy-safe HTML and PDF from harmonised data."""

from effectstudy.report.build import ReportResult, build_report, render_html
from effectstudy.report.spec import DEMO_SPEC, load_spec
from effectstudy.report.suppression import suppress_long, suppress_table, suppression_mask

__all__ = ["DEMO_SPEC", "ReportResult", "build_report", "load_spec", "render_html",
           "suppress_long", "suppress_table", "suppression_mask"]
