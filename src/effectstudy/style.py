"""One shared plot style for effectstudy figures.

Colour-blind-safe Okabe-Ito palette (Okabe & Ito, 2008, *Color Universal
Design*), readable font sizes and a helper to label axes. Every module that
draws should use :func:`use_style` (a context manager) or apply
:data:`RCPARAMS` so that all report figures look alike.

Example
-------
>>> from effectstudy.style import use_style, OKABE_ITO
>>> with use_style():
...     import matplotlib.pyplot as plt
...     fig, ax = plt.subplots()
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import matplotlib as mpl
from cycler import cycler

#: Okabe-Ito palette (name -> hex), ordered for use as a colour cycle. Black is
#: last so that it stays free for reference lines.
OKABE_ITO: dict[str, str] = {
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
    "black": "#000000",
}

#: The palette as a list (colour cycle order).
PALETTE: list[str] = list(OKABE_ITO.values())

#: Neutral grey for reference lines, phase-change lines and annotations.
GREY = "#595959"

#: rcParams applied by :func:`use_style`.
RCPARAMS: dict[str, object] = {
    "axes.prop_cycle": cycler(color=[OKABE_ITO[k] for k in ("blue", "orange", "bluish_green",
                                                             "vermillion", "reddish_purple",
                                                             "sky_blue", "yellow", "black")]),
    "font.size": 11,
    "axes.titlesize": 12,
    "axes.labelsize": 11,
    "xtick.labelsize": 10,
    "ytick.labelsize": 10,
    "legend.fontsize": 10,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "lines.linewidth": 1.6,
    "lines.markersize": 5,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
}


def color(i: int) -> str:
    """Colour number ``i`` of the style's cycle (wraps around)."""
    cyc = RCPARAMS["axes.prop_cycle"].by_key()["color"]  # type: ignore[union-attr]
    return cyc[i % len(cyc)]


@contextlib.contextmanager
def use_style(**overrides: object) -> Iterator[None]:
    """Context manager that applies :data:`RCPARAMS` (plus ``overrides``).

    Parameters
    ----------
    **overrides
        Extra rcParams, e.g. ``use_style(**{"font.size": 9})``.
    """
    params = {**RCPARAMS, **overrides}
    with mpl.rc_context(params):
        yield


def label_axes(ax, *, x: str | None = None, y: str | None = None, title: str | None = None,
               legend: bool | Sequence[str] = False) -> None:
    """Set axis labels and title in one call; optionally draw a legend.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    x, y, title : str, optional
        Axis labels and title (left unchanged when ``None``).
    legend : bool or sequence of str
        ``True`` draws a legend of labelled artists; a sequence gives labels.
    """
    if x is not None:
        ax.set_xlabel(x)
    if y is not None:
        ax.set_ylabel(y)
    if title is not None:
        ax.set_title(title)
    if legend is True:
        ax.legend()
    elif legend:
        ax.legend(list(legend))


__all__ = ["GREY", "OKABE_ITO", "PALETTE", "RCPARAMS", "color", "label_axes", "use_style"]
