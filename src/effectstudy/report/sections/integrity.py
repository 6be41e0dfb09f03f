"""Report section: programme integrity."""

from __future__ import annotations

from effectstudy.report.sections.layout import Context, Section


def integrity_section(ctx: Context) -> Section:
    """Programme integrity (issue 12): rendered by :mod:`effectstudy.report.integrity`."""
    from effectstudy.report.integrity import integrity_section as render

    return render(ctx)
