"""Shared behaviour of result objects: small frozen dataclasses for notebooks.

Each result dataclass defines ``to_frame()``; this mixin adds an HTML
representation for Jupyter built from that frame, and a default ``plot`` that
subclasses override where a picture means something.
"""

from __future__ import annotations

import html

import pandas as pd


class ResultMixin:
    """Mixin for frozen result dataclasses: ``to_frame`` -> ``_repr_html_``."""

    #: Title shown above the table in notebooks; subclasses override.
    _title: str = ""

    def to_frame(self) -> pd.DataFrame:  # pragma: no cover - interface
        raise NotImplementedError

    def _repr_html_(self) -> str:
        title = self._title or type(self).__name__
        table = self.to_frame().to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
        notes = getattr(self, "warnings", None) or ()
        note_html = "".join(f"<p><em>Note:</em> {html.escape(str(n))}</p>" for n in notes)
        return f"<h4>{html.escape(title)}</h4>{table}{note_html}"

    def plot(self, ax=None):
        """Plot the result; the base implementation draws the table's estimates."""
        import matplotlib.pyplot as plt

        frame = self.to_frame()
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3))
        if "estimate" not in frame:
            raise NotImplementedError(f"{type(self).__name__} has no plot")
        labels = frame.iloc[:, 0].astype(str)
        ax.errorbar(
            frame["estimate"],
            range(len(frame)),
            xerr=None
            if "ci_lower" not in frame
            else [frame["estimate"] - frame["ci_lower"], frame["ci_upper"] - frame["estimate"]],
            fmt="o",
        )
        ax.set_yticks(range(len(frame)), labels)
        ax.set_xlabel("estimate")
        return ax.figure
