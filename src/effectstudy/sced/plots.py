"""Graphs of single-case series: phase plots and multiple-baseline panels.

Visual analysis of level, trend, variability, immediacy and overlap across
phases (Kratochwill et al., 2010; Lane & Gast, 2014) starts from these plots.
Both functions return a :class:`matplotlib.figure.Figure`, use the shared
Okabe-Ito style of :mod:`effectstudy.style` and show the case labels exactly as
given (they are expected to be pseudonyms).

References
----------
Kratochwill, T. R., et al. (2010). *Single-case designs technical
documentation*. What Works Clearinghouse.

Lane, J. D., & Gast, D. L. (2014). Visual analysis in single case experimental
design studies: Brief review and guidelines. *Neuropsychological
Rehabilitation, 24*(3-4), 445-463.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from effectstudy.errors import DataError, SpecError
from effectstudy.sced._compat import REQUIRED, columns
from effectstudy.sced._series import CaseSeries, case_series, phase_labels
from effectstudy.style import GREY, color, label_axes, use_style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: gid of the dashed vertical phase-change lines (handy for tests and styling)
PHASE_CHANGE_GID = "phase-change"


def _phase_colours(labels: list) -> dict:
    return {lab: color(i) for i, lab in enumerate(labels)}


def _draw_series(ax, s: CaseSeries, colours: dict, *, trend: bool, connect: bool,
                 annotate: bool, **kwargs) -> list:
    """Draw one series; returns the x positions of its phase-change lines."""
    changes = []
    runs = s.runs
    for k, (lab, start, n) in enumerate(runs):
        x = s.session[start:start + n]
        y = s.outcome[start:start + n]
        ok = ~np.isnan(y)
        c = colours[lab]
        style = dict(marker="o", color=c, markeredgecolor="white", markeredgewidth=0.6)
        style.update(kwargs)
        ax.plot(x[ok], y[ok], "-" if connect else "none",
                label=str(lab), **style)
        if trend and ok.sum() >= 2:
            b1, b0 = np.polyfit(x[ok], y[ok], 1)
            xx = np.array([x[ok].min(), x[ok].max()])
            ax.plot(xx, b0 + b1 * xx, ls=":", lw=1.4, color=c, gid="trend")
        if annotate:
            ax.annotate(str(lab), xy=(x.mean(), 1.0), xycoords=("data", "axes fraction"),
                        ha="center", va="bottom", fontsize=10, color=GREY)
        if k > 0:
            prev_last = s.session[start - 1]
            xc = (prev_last + s.session[start]) / 2
            ax.axvline(xc, ls="--", lw=1.2, color=GREY, gid=PHASE_CHANGE_GID)
            changes.append(xc)
    return changes


def phase_plot(
    data: pd.DataFrame,
    *,
    outcome: str = REQUIRED,
    session: str = REQUIRED,
    phase: str = REQUIRED,
    case: str | None = None,
    trend: bool = False,
    connect: bool = True,
    ncols: int | None = None,
    ax: Axes | None = None,
    fig: Figure | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str = "session",
    **kwargs: Any,
) -> Figure:
    """Phase plot of a single-case series (one panel per case).

    Observations are drawn per phase in the colours of the Okabe-Ito palette,
    with a dashed vertical line midway between the last session of a phase and
    the first of the next, phase labels above the panel and, optionally, an
    ordinary least squares trend line per phase.

    Parameters
    ----------
    data : DataFrame
        Long format; missing outcomes are left out of the lines.
    outcome, session, phase : str
        Column names (give them explicitly; the old defaults ``"outcome"``,
        ``"session"``, ``"phase"`` still work for one release with a warning).
    case : str, optional
        Case column; several cases give a grid of independent panels. Any
        number of phases is drawn, so there are no ``baseline_phase`` /
        ``treatment_phase`` arguments.
    trend : bool
        Draw an OLS trend line per phase (dotted).
    connect : bool
        Connect the points within a phase.
    ncols : int, optional
        Panels per row (default: up to 3).
    ax : matplotlib Axes, optional
        Draw into this axes (one case only).
    fig : matplotlib Figure, optional
        Draw the grid of panels into this (empty) figure.
    title, ylabel, xlabel : str, optional
        Labels (``ylabel`` defaults to the outcome column name).
    **kwargs
        Passed to ``Axes.plot`` for the observations (e.g. ``markersize``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    outcome, session, phase = columns("phase_plot", outcome=outcome, session=session,
                                       phase=phase)
    if ax is not None and fig is not None:
        raise SpecError("give ax= (one case) or fig= (a grid of panels), not both")
    series = case_series(data, case=case, phase=phase, session=session, outcome=outcome,
                         require_outcome=False)
    colours = _phase_colours(phase_labels(series))
    with use_style():
        if ax is not None:
            if len(series) != 1:
                raise DataError(f"ax= draws one case, got {len(series)} cases")
            axes = [ax]
            fig = ax.figure
        else:
            k = len(series)
            nc = ncols or min(3, k)
            nr = int(np.ceil(k / nc))
            if fig is None:
                import matplotlib.pyplot as plt

                fig = plt.figure(figsize=(4.8 * nc, 3.2 * nr + 0.4))
            grid = fig.subplots(nr, nc, squeeze=False)
            axes = list(grid.ravel())
            for extra in axes[k:]:
                extra.set_visible(False)
        for a, s in zip(axes, series, strict=False):
            _draw_series(a, s, colours, trend=trend, connect=connect, annotate=True, **kwargs)
            label_axes(a, x=xlabel, y=ylabel or outcome)
            if s.case is not None:
                a.set_title(str(s.case), loc="left", pad=16)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def multiple_baseline_plot(
    data: pd.DataFrame,
    *,
    outcome: str = REQUIRED,
    session: str = REQUIRED,
    phase: str = REQUIRED,
    case: str | None = None,
    baseline_phase: object = "A",
    treatment_phase: object = "B",
    trend: bool = False,
    order: Sequence | None = None,
    sharey: bool = True,
    fig: Figure | None = None,
    title: str | None = None,
    ylabel: str | None = None,
    xlabel: str = "session",
    **kwargs: Any,
) -> Figure:
    """Multiple-baseline graph: cases stacked, staggered phase-change lines.

    One panel per case (tier) on a shared session axis, ordered by the start of
    the intervention unless ``order`` is given. Each panel has a dashed
    phase-change line; consecutive lines are joined across panels by the
    customary staircase connector. ``trend=True`` adds an OLS trend line per
    phase.

    Parameters
    ----------
    data : DataFrame
        Long format, one row per measurement occasion.
    outcome, session, phase : str
        Column names (give them explicitly; the old defaults ``"outcome"``,
        ``"session"``, ``"phase"`` still work for one release with a warning).
    case : str, optional
        Case (tier) column; ``None`` draws the data as one tier.
    baseline_phase, treatment_phase : label
        Labels shown in the legend as "baseline" and "intervention".
    trend : bool
        Per-phase OLS trend lines.
    order : sequence, optional
        Case labels from top to bottom.
    sharey : bool
        Same outcome scale in all panels.
    fig : matplotlib Figure, optional
        Draw the panels into this (empty) figure.
    title, ylabel, xlabel : str, optional
        Labels (``ylabel`` defaults to the outcome column name).
    **kwargs
        Passed to ``Axes.plot`` for the observations (e.g. ``markersize``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.patches import ConnectionPatch

    outcome, session, phase = columns("multiple_baseline_plot", outcome=outcome, session=session,
                                       phase=phase)
    series = case_series(data, case=case, phase=phase, session=session, outcome=outcome,
                          require_outcome=False)
    by_case = {s.case: s for s in series}
    if order is not None:
        missing = [c for c in order if c not in by_case]
        if missing:
            raise DataError(f"order names cases not in the data: {missing}")
        series = [by_case[c] for c in order]
    else:
        series = sorted(series, key=lambda s: s.session[s.runs[1][1]] if len(s.runs) > 1
                        else np.inf)
    colours = _phase_colours(phase_labels(series))
    k = len(series)
    with use_style():
        if fig is None:
            import matplotlib.pyplot as plt

            fig = plt.figure(figsize=(7.5, 1.9 * k + 0.9))
        axes = list(fig.subplots(k, 1, sharex=True, sharey=sharey, squeeze=False)[:, 0])
        changes = []
        for i, (a, s) in enumerate(zip(axes, series, strict=True)):
            ch = _draw_series(a, s, colours, trend=trend, connect=True, annotate=(i == 0),
                              **kwargs)
            changes.append(ch[0] if ch else None)
            a.text(1.01, 0.5, "" if s.case is None else str(s.case), transform=a.transAxes, rotation=0, ha="left",
                   va="center", fontsize=10)
        for i in range(k - 1):
            x0, x1 = changes[i], changes[i + 1]
            if x0 is None or x1 is None:
                continue
            top, bottom = axes[i], axes[i + 1]
            con = ConnectionPatch(xyA=(x0, 0), coordsA=top.get_xaxis_transform(),
                                  xyB=(x1, 1), coordsB=bottom.get_xaxis_transform(),
                                  color=GREY, ls="--", lw=1.0,
                                  connectionstyle="angle,angleA=0,angleB=90")
            con.set_gid("staircase")
            fig.add_artist(con)
        label_axes(axes[-1], x=xlabel)
        fig.supylabel(ylabel or outcome)
        handles, labels = axes[0].get_legend_handles_labels()
        keep = {}
        for h, lab in zip(handles, labels, strict=True):
            keep.setdefault(lab, h)
        names = {str(baseline_phase): f"{baseline_phase}: baseline",
                 str(treatment_phase): f"{treatment_phase}: intervention"}
        axes[0].legend(list(keep.values()), [names.get(k, k) for k in keep], loc="lower right",
                       bbox_to_anchor=(1.0, 1.12), ncols=max(1, len(keep)))
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def count_phase_change_lines(fig) -> int:
    """Number of dashed phase-change lines drawn in a figure from this module."""
    return sum(1 for a in fig.axes for line in a.lines if line.get_gid() == PHASE_CHANGE_GID)


__all__ = ["PHASE_CHANGE_GID", "count_phase_change_lines", "multiple_baseline_plot",
           "phase_plot"]
