"""Report section: dropout (time to the end reason the spec names)."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.layout import FLOW_COLUMNS, Context, Section, locale_axes


def dropout_section(ctx: Context) -> Section:
    """Dropout and safety (issue 13): rendered by :mod:`effectstudy.report.dropout`."""
    from effectstudy.report.dropout import dropout_section as render

    return render(ctx)


def _pretty_end(reason: str) -> str:
    return t(f"flow.{reason}") if reason in FLOW_COLUMNS else str(reason).replace("_", " ")


def _km_figure(ctx: Context, km: pd.DataFrame):
    """Kaplan-Meier curves drawn from the saved steps (time, survival)."""
    import matplotlib.pyplot as plt

    from effectstudy.style import color, use_style

    order = sorted(ctx.meta.get("programmes", {}))
    with use_style():
        fig, ax = plt.subplots(figsize=(6.4, 3.8))
        for pid, g in km.groupby("programme", sort=True):
            g = g.sort_values("time")
            x = [0.0, *g["time"].astype(float)]
            y = [1.0, *g["survival"].astype(float)]
            i = order.index(pid) if pid in order else len(order)
            ax.step(x, y, where="post", color=color(i), label=ctx.programme_name(pid))
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(t("axis.weeks_in_care"))
        ax.set_ylabel(t("axis.still_in_care"))
        ax.legend(loc="lower left", fontsize=8)
        locale_axes(ax)
    return fig
