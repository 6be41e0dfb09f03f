"""Report section: the SCRIBE checklist."""

from __future__ import annotations

import pandas as pd

from effectstudy.report.i18n import t
from effectstudy.report.sections.layout import Section

SCRIBE_ITEMS = list(range(1, 27))
_SCRIBE_COVERED = (1, 5, 7, 8, 11, 12, 14, 17, 18, 19, 20, 23)


def scribe_checklist() -> Section:
    sec = Section("scribe", t("scribe.title"))
    rows = [{t("col.item"): n, t("col.topic"): t(f"scribe.item{n}"),
             t("col.covered"): t("common.yes") if n in _SCRIBE_COVERED
             else t("scribe.to_write"),
             t("col.where"): t(f"scribe.where{n}") if n in _SCRIBE_COVERED else ""}
            for n in SCRIBE_ITEMS]
    sec.table(pd.DataFrame(rows), t("scribe.caption"))
    sec.references.append(t("ref.tate"))
    return sec
