"""Report section: the power simulation."""

from __future__ import annotations

from effectstudy.report.i18n import dictionary_text, num, t
from effectstudy.report.sections.layout import Context, Section, round_frame


def power_section(ctx: Context) -> Section:
    meta = ctx.meta.get("power", {})
    sec = Section("power", t("power.title"))
    frame = ctx.frame("power", own=False)
    shown = [c for c in ("test", "power", "ci_lower", "ci_upper", "nsim", "successes", "n_failed",
                         "n_singular", "alpha") if c in frame.columns]
    sec.table(round_frame(frame[shown], 3).assign(**_test_label(meta, frame)), t("power.caption"))
    sec.methods.append(t("power.methods", nsim=meta.get("nsim"),
                         programmes=meta.get("programmes"),
                         clients=meta.get("clients_per_programme"),
                         weeks=", ".join(map(str, meta.get("weeks", []))),
                         dropout=num(100 * float(meta.get("dropout", 0)), 0),
                         term=meta.get("test_term"), ddf=meta.get("ddf"),
                         alpha=num(meta.get("alpha", 0.05), 2)))
    return sec


#: Denominator degrees of freedom by code, as the test label names them (names, not words).
_DDF_NAMES = {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}


def _test_label(meta: dict, frame) -> dict:
    """The ``test`` column in the report's language: from the design's test code
    (``meta["power"]["test"]``), else (older results) the English label, marked as such."""
    if "test" not in frame.columns:
        return {}
    code = meta.get("test")
    if not code:
        return {"test": [dictionary_text(v) if isinstance(v, str) else v for v in frame["test"]]}
    ddf = _DDF_NAMES.get(str(code.get("ddf")), str(code.get("ddf")))
    return {"test": t(f"power.test.{code['code']}", term=code.get("term"), ddf=ddf)}
