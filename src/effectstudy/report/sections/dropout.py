"""Report section: dropout (time to the end reason the spec names)."""

from __future__ import annotations

from effectstudy.report.sections.layout import Context, Section


def dropout_section(ctx: Context) -> Section:
    """Dropout and safety (issue 13): rendered by :mod:`effectstudy.report.dropout`."""
    from effectstudy.report.dropout import dropout_section as render

    return render(ctx)
