"""Report section: descriptive statistics per construct, measure and occasion."""

from __future__ import annotations

from typing import Any

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.layout import Context, Section, pretty, pretty_measure, round_frame


def descriptives(ctx: Context) -> Section:
    sec = Section("descriptives", t("descriptives.title"))
    desc = ctx.frame("descriptives")
    if desc.empty:
        sec.text(t("common.no_data"))
        return sec
    order = ctx.meta.get("occasion_order", {})
    desc = round_frame(desc, 2)
    if ctx.public:
        # n as the one suppression pattern of all public documents shows it; the
        # statistics of a hidden n are left out with it
        shown = [ctx.count("descriptives", r.programme, r.instrument, r.scale, r.occasion,
                           value=r.n) for r in desc.itertuples(index=False)]
        hidden = [isinstance(v, str) for v in shown]
        desc = desc.assign(n=pd.Series(shown, index=desc.index, dtype=object))
        for col in ("mean", "sd"):
            desc[col] = desc[col].astype(object).where(~pd.Series(hidden, index=desc.index), "")
    desc = desc.assign(programme=desc["programme"].map(ctx.programme_name),
                       _o=desc["occasion"].map(order))
    desc = desc.sort_values(["construct", "instrument", "scale", "programme", "_o"]).drop(
        columns="_o")
    desc.insert(1, "measure", desc["instrument"] + " " + desc["scale"])
    desc = desc.drop(columns=["instrument", "scale"])
    if ctx.public:
        # a minimum or maximum is one client's score: not for publication
        desc = desc.drop(columns=["min", "max"])
    note = (" " + t("descriptives.note_public", threshold=ctx.threshold) if ctx.public else "")
    desc["measure"] = desc["measure"].map(pretty_measure)
    desc["occasion"] = desc["occasion"].map(pretty)
    for construct, part in desc.groupby("construct", sort=True):
        sec.table(part.drop(columns="construct"),
                  t("descriptives.caption", construct=_cap(pretty(construct))) + note)
    sec.methods.append(t("descriptives.methods"))
    return sec


def _cap(text: Any) -> str:
    text = str(text)
    return text[:1].upper() + text[1:]
