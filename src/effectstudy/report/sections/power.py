"""Report section: the power simulation."""

from __future__ import annotations

from effectstudy.report.i18n import num, t
from effectstudy.report.sections.layout import Context, Section, round_frame


def power_section(ctx: Context) -> Section:
    meta = ctx.meta.get("power", {})
    sec = Section("power", t("power.title"))
    frame = ctx.frame("power", own=False)
    shown = [c for c in ("test", "power", "ci_lower", "ci_upper", "nsim", "successes", "n_failed",
                         "n_singular", "alpha") if c in frame.columns]
    sec.table(round_frame(frame[shown], 3), t("power.caption"))
    sec.methods.append(t("power.methods", nsim=meta.get("nsim"),
                         programmes=meta.get("programmes"),
                         clients=meta.get("clients_per_programme"),
                         weeks=", ".join(map(str, meta.get("weeks", []))),
                         dropout=num(100 * float(meta.get("dropout", 0)), 0),
                         term=meta.get("test_term"), ddf=meta.get("ddf"),
                         alpha=num(meta.get("alpha", 0.05), 2)))
    return sec
