"""Plots of longitudinal data and mixed-model fits: spaghetti and caterpillar plots.

Both use the shared report style (:mod:`effectstudy.style`, Okabe-Ito colours).
Client identifiers are never written on a spaghetti plot; a caterpillar plot
shows the group labels as the data hold them (pseudonyms) only when asked or
when there are few groups.

Conventions of every effectstudy plot: a one-panel plot takes ``ax=None`` (draw
on these axes, else on a new figure), a multi-panel plot ``fig=None`` (draw its
panels in this figure, else in a new one); extra keyword arguments are forwarded
to the main artist; the :class:`~matplotlib.figure.Figure` is always returned.
:mod:`matplotlib.pyplot` is imported only when a plot is drawn, so importing
:mod:`effectstudy.multilevel` does not load it.

References
----------
Bates, D., Maechler, M., Bolker, B. & Walker, S. (2015). Fitting linear
mixed-effects models using lme4. *Journal of Statistical Software*, 67(1).
(``dotplot(ranef(fit, condVar = TRUE))`` is the caterpillar plot.)

Singer, J. D. & Willett, J. B. (2003). *Applied longitudinal data analysis*.
Oxford University Press. (Ch. 2: empirical growth plots / spaghetti plots.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb

from effectstudy._compat import renamed_keywords
from effectstudy._validate import check_confidence
from effectstudy.errors import ModelError
from effectstudy.multilevel.lmm import MixedModelResults
from effectstudy.multilevel.summaries import blup_intervals, predicted_means
from effectstudy.style import GREY, PALETTE, color, label_axes, use_style

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["caterpillar_plot", "spaghetti_plot"]

#: The client-line colour is the group colour mixed with this light grey.
_LIGHT_GREY = (0.80, 0.80, 0.80)


def _greyish(c: str, share: float = 0.55) -> tuple[float, float, float]:
    r = np.asarray(to_rgb(c))
    return tuple(share * np.asarray(_LIGHT_GREY) + (1 - share) * r)  # type: ignore[return-value]


def _group_colour(i: int) -> str:
    # the style's cycle (blue, orange, green, ...) keeps yellow for later groups
    c = color(i)
    return c if c in PALETTE else PALETTE[i % len(PALETTE)]


def _fixed_columns(fit: MixedModelResults) -> list[str]:
    """Data columns used by the fixed part of the model (the response excluded)."""
    used = set(fit.model.design_info.variables)
    return [c for c in fit.data.columns if c in used and c != fit.model.parsed.response]


def _typical_newdata(fit: MixedModelResults, time: str, group: str | None, g: object,
                     grid: np.ndarray) -> pd.DataFrame:
    """Prediction grid over ``time``; other covariates at their mean / reference level."""
    nd = pd.DataFrame({time: grid})
    for col in _fixed_columns(fit):
        if col == time:
            continue
        if group is not None and col == group:
            nd[col] = g
            continue
        src = fit.data[col]
        if isinstance(src.dtype, pd.CategoricalDtype):
            nd[col] = src.cat.categories[0]
        else:
            nd[col] = float(src.mean())
    return nd


@renamed_keywords("spaghetti_plot", {"group": "by"})
def spaghetti_plot(fit_or_data: MixedModelResults | pd.DataFrame, *, time: str, outcome: str,
                   client: str, by: str | None = "programme", fitted: bool = True,
                   data: pd.DataFrame | None = None, ddf: str = "kenward-roger",
                   band: bool = False, ax: Axes | None = None, title: str | None = None,
                   **kwargs: Any) -> Figure:
    """Individual trajectories with the fitted mean trajectory per group.

    Each client is a thin line in a greyish tint of the group's colour; with a
    fit, the population-level (fixed-effects) trajectory of each group from
    :func:`~effectstudy.multilevel.summaries.predicted_means` is drawn on top
    over the group's observed time range (Singer & Willett 2003, ch. 2).

    Parameters
    ----------
    fit_or_data:
        A fit from :func:`effectstudy.multilevel.fit` (its rows are plotted) or a
        long DataFrame (raw trajectories only).
    time, outcome, client:
        Column names. Client labels are never drawn on the plot.
    by:
        Column whose groups get their own colour and fitted line, e.g.
        ``"programme"`` (``None``: one group). Called ``group=`` before (accepted
        for one release with a :class:`FutureWarning`): in
        :func:`caterpillar_plot` ``group`` is the grouping factor of a random
        effect, here it is only a colouring.
    fitted:
        Draw the fitted mean line per group (needs a fit).
    data:
        Raw data to draw instead of the fit's rows (e.g. to colour by a column
        that is not in the model).
    ddf:
        df method for the optional band (see ``predicted_means``); ML fits fall
        back to ``"satterthwaite"``.
    band:
        Shade the pointwise confidence band (95%) of each fitted line.
    ax:
        Axes to draw on; a new figure otherwise.
    title:
        Optional title.
    **kwargs:
        Forwarded to :meth:`matplotlib.axes.Axes.plot` for the client lines
        (e.g. ``lw``, ``alpha``).

    Returns
    -------
    matplotlib.figure.Figure
        Line count: one line per client plus one fitted line per group.

    Notes
    -----
    Covariates other than ``time`` and ``group`` that the fixed effects use are
    held at their sample mean (numeric) or reference level (factor), so the
    fitted line is the trajectory of a typical client of that group.
    """
    import matplotlib.pyplot as plt

    group = by
    fit = fit_or_data if isinstance(fit_or_data, MixedModelResults) else None
    if fit is None and not isinstance(fit_or_data, pd.DataFrame):
        raise ModelError("fit_or_data must be a fitted mixed model or a DataFrame")
    frame = data if data is not None else (fit.data if fit is not None else fit_or_data)
    needed = [time, outcome, client] + ([group] if group is not None else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ModelError(f"column(s) {missing} not found in the data", column=missing[0])
    frame = frame.dropna(subset=[time, outcome, client])
    groups: list[object] = (sorted(pd.unique(frame[group].astype(object)), key=str)
                            if group is not None else [None])
    if fit is not None and not fit.reml and ddf.lower() in ("kenward-roger", "kr", "kenward_roger"):
        ddf = "satterthwaite"
    with use_style():
        if ax is None:
            fig, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
        else:
            fig = ax.figure
        for gi, g in enumerate(groups):
            col = _group_colour(gi)
            sub = frame if g is None else frame[frame[group].astype(object) == g]
            for _, cd in sub.groupby(client, sort=True, observed=True):
                cd = cd.sort_values(time)
                ax.plot(cd[time].to_numpy(float), cd[outcome].to_numpy(float),
                        **{"color": _greyish(col), "lw": 0.8, "alpha": 0.8, "marker": "o",
                           "ms": 2.2, "zorder": 1, **kwargs, "label": "_nolegend_"})
            if fit is not None and fitted:
                lo, hi = float(sub[time].min()), float(sub[time].max())
                grid = np.linspace(lo, hi, 60) if hi > lo else np.array([lo])
                nd = _typical_newdata(fit, time, group, g, grid)
                # without a band only the estimates are needed: skip the df computations
                pm = predicted_means(fit, nd, ddf=ddf if band else "residual")
                ax.plot(grid, pm["estimate"].to_numpy(), color=col, lw=2.6,
                        label=str(g) if g is not None else "fitted mean", zorder=3)
                if band:
                    ax.fill_between(grid, pm["ci_lower"].to_numpy(), pm["ci_upper"].to_numpy(),
                                    color=col, alpha=0.15, lw=0, zorder=2)
        label_axes(ax, x=time, y=outcome, title=title)
        if fit is not None and fitted:
            ax.legend(title=group if group is not None else None)
    return fig


def caterpillar_plot(fit: MixedModelResults, term: str | Sequence[str] | None = "(Intercept)",
                     group: str = "client", *, confidence: float = 0.95,
                     show_labels: bool | None = None, fig: Figure | None = None,
                     **kwargs: Any) -> Figure:
    """Caterpillar plot: sorted BLUPs with approximate intervals, one panel per term.

    Parameters
    ----------
    fit:
        A fit from :func:`effectstudy.multilevel.fit`.
    term:
        Random-effect coefficient(s) of ``group`` to show, e.g. ``"(Intercept)"``
        or ``["(Intercept)", "time"]``; ``None`` shows every term of the group.
        One panel per term.
    group:
        The grouping factor (e.g. ``"client"``, ``"programme"``).
    confidence:
        Level of the normal-theory intervals ``BLUP +- z * conditional SD``.
    show_labels:
        Write the group labels (as the data hold them, i.e. pseudonyms) on the
        y axis. Default: only when there are at most 30 groups.
    fig:
        Figure to draw the panels in (a new figure otherwise).
    **kwargs:
        Forwarded to :meth:`matplotlib.axes.Axes.plot` for the BLUP points
        (e.g. ``ms``, ``color``).

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    Groups are sorted by the BLUP of the first panel's term, and all panels
    share that order (as lme4's ``dotplot.ranef.mer``). The conditional SDs are
    lme4's ``condVar``: ``diag(sigma^2 Lambda (Lambda'Z'Z Lambda + I)^-1 Lambda')``
    (Bates et al. 2015), computed from the fit's ``Z`` and ``Lambda(theta)``; they
    ignore the uncertainty of beta and theta, hence "approximate".
    """
    import matplotlib.pyplot as plt

    confidence = check_confidence(confidence)
    tab = blup_intervals(fit, group, confidence=confidence)
    available = list(dict.fromkeys(tab["term"]))
    if term is None:
        terms = available
    else:
        terms = [term] if isinstance(term, str) else list(term)
        terms = ["(Intercept)" if t == "Intercept" else t for t in terms]
        unknown = [t for t in terms if t not in available]
        if unknown:
            raise ModelError(f"no random effect {unknown} for {group!r}; it has {available}")
    first = tab[tab["term"] == terms[0]].sort_values("estimate", kind="mergesort")
    order = list(first["level"])
    pos = {lv: i for i, lv in enumerate(order)}
    n = len(order)
    if show_labels is None:
        show_labels = n <= 30
    with use_style():
        if fig is None:
            fig = plt.figure(layout="constrained", figsize=(
                3.2 * len(terms) + 1.2, max(3.0, min(0.18 * n + 1.2, 12))))
        axes = fig.subplots(1, len(terms), sharey=True, squeeze=False)
        for ax, tm in zip(axes[0], terms, strict=True):
            sub = tab[tab["term"] == tm].copy()
            sub["y"] = sub["level"].map(pos)
            sub = sub.sort_values("y")
            ax.axvline(0.0, color=GREY, lw=0.8, ls="--", zorder=1)
            ax.hlines(sub["y"], sub["ci_lower"], sub["ci_upper"], color=color(0), lw=1.0,
                      alpha=0.7, zorder=2)
            ax.plot(sub["estimate"], sub["y"], **{"ls": "none", "marker": "o", "ms": 3.5,
                                                  "color": color(0), "zorder": 3, **kwargs,
                                                  "gid": "blups"})
            label_axes(ax, x=f"{tm} (BLUP)", title=f"{group}: {tm}")
        ax0 = axes[0][0]
        if show_labels:
            ax0.set_yticks(range(n), [str(v) for v in order])
        else:
            ax0.set_yticks([])
            ax0.set_ylabel(f"{group} ({n}, sorted)")
        fig.suptitle(f"Random effects with approximate {confidence:.0%} intervals", fontsize=11)
    return fig
