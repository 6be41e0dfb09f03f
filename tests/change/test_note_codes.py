"""Reliable change records its notes and sources as codes beside the English text (issue 11),
so that a report in another language renders them from its own catalogue."""

from __future__ import annotations

import pandas as pd
import pytest

from effectstudy import change
from effectstudy.dictionary import load_dictionary
from effectstudy.report.i18n import catalogue


@pytest.fixture(scope="module")
def dd():
    return load_dictionary()


def _table(rows, age=15.0):
    recs = []
    for client, inst, scale, construct, pre, post in rows:
        for occ, raw in (("intake", pre), ("discharge", post)):
            recs.append(dict(programme="p", client=client, occasion=occ, construct=construct,
                             instrument=inst, scale=scale, raw=raw, age=age))
    return pd.DataFrame(recs)


def _one(rc: pd.DataFrame, inst: str) -> pd.Series:
    return rc[rc["instrument"] == inst].iloc[0]


def test_codes_stand_beside_the_english_notes(dd):
    rows = ([(f"a{i}", "SDQ-S", "internalising", "internalising", pre, post)
             for i, (pre, post) in enumerate([(12, 4), (9, 8), (14, 10)])]
            + [(f"b{i}", "CRIES-13", "total", "trauma_symptoms", pre, post)
               for i, (pre, post) in enumerate([(45, 20), (35, 31), (30, 48)])]
            + [(f"c{i}", "YSR", "internalising_t", "internalising", pre, post)
               for i, (pre, post) in enumerate([(70, 55), (66, 63)])])
    rc = change.reliable_change(_table(rows), dictionary=dd)
    assert set(change.CODE_COLUMNS) <= set(rc.columns)
    # SDQ-S: a verified norm (girls 12-17) but no published reliability
    sdq = _one(rc, "SDQ-S")
    assert sdq["note_codes"] == "no_reliability"
    assert sdq["note"] == "no published reliability for SDQ-S internalising: RCI not computed"
    assert (sdq["sd_source_code"], sdq["sd_source_key"]) == ("norm", "vugteveen2022")
    assert sdq["norm_used"] == "NL general population girls 12-17, self-report"
    assert (sdq["cutoff_source_code"], sdq["cutoff_source_key"]) == ("norm_sample", "vugteveen2022")
    assert sdq["sd_source"] == "vugteveen2022 (NL general population girls 12-17, self-report)"
    # CRIES-13: no norm (sample SD), a published cut-off
    cries = _one(rc, "CRIES-13")
    assert cries["note_codes"] == "no_verified_norm"
    assert cries["note"] == "no verified norm: SD taken from the sample"
    assert (cries["sd_source_code"], cries["cutoff_source_code"]) == ("sample", "published")
    assert pd.isna(cries["sd_source_key"]) and pd.isna(cries["norm_used"])
    assert cries["cutoff_source_key"] == cries["cutoff_source"] == "verlinden2014"
    # YSR: verified T-score norm, reliability and published cut-off: nothing to note
    ysr = _one(rc, "YSR")
    assert ysr["note_codes"] == "" and ysr["note"] == ""
    assert (ysr["sd_source_code"], ysr["sd_source_key"]) == ("norm", "aseba_tscore")


def test_several_notes_keep_their_order_and_every_code_is_in_both_catalogues(dd):
    # KIDSCREEN school: no verified norm and no published reliability -> two notes;
    # the Maassen method with two clients adds no third (the reliability check comes first)
    rows = [(f"k{i}", "KIDSCREEN-27", "school_environment_t", "daily_activities", pre, post)
            for i, (pre, post) in enumerate([(35, 45), (40, 42)])]
    rc = change.reliable_change(_table(rows), dictionary=dd, method="maassen")
    row = rc.iloc[0]
    assert row["note_codes"] == "no_verified_norm;no_reliability"
    assert row["note"].split("; ") == [
        change.NOTES["no_verified_norm"],
        change.NOTES["no_reliability"].format(instrument="KIDSCREEN-27",
                                              scale="school_environment_t", method="maassen")]
    for lang in ("en", "nl"):
        cat = catalogue(lang)
        missing = [c for c in change.NOTES if f"change.notes.{c}" not in cat]
        assert missing == [], lang
        for code in (*change.SD_SOURCES, *change.CUTOFF_SOURCES[1:]):
            assert f"change.{'sd' if code in change.SD_SOURCES else 'cutoff'}_source_{code}" in cat


def test_few_clients_with_maassen_are_coded(dd):
    rows = [(f"c{i}", "CRIES-13", "total", "trauma_symptoms", pre, post)
            for i, (pre, post) in enumerate([(45, 20), (35, 31)])]
    rc = change.reliable_change(_table(rows), dictionary=dd, method="maassen")
    assert rc["note_codes"].iloc[0] == "no_verified_norm;needs_three"
    assert rc["note"].iloc[0].endswith("maassen needs at least three clients: RCI not computed")
