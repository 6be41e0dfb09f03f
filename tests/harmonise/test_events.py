"""Events in the data (issue 13 section 1): dictionary, harmonised events table, privacy.

The events table of the synthetic exports is compared with the generator's ground
truth; each bad-input kind is a rejection-log row with file, row, column and reason;
events in = events in the table + rejected; no identifier in any written file.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from harmonise_helpers import BIRTHS, BSNS, KEY, NAMES, RAW_IDS, write_pinq_gesloten

from effectstudy.dictionary import load_dictionary
from effectstudy.errors import DictionaryError
from effectstudy.harmonise import (
    EVENT_COLUMNS,
    EVENT_KINDS,
    harmonise,
    read_harmonised,
    time_to_first_absconding,
)
from effectstudy.harmonise.mapping import integer_id
from effectstudy.harmonise.pseudonym import normalise_id, pseudonymise


def _pseudo(d, programme: str, raw: str) -> str:
    sf = d.sources[programme].files[0]
    rid = integer_id(raw) if sf.client_id_format == "integer" else normalise_id(raw)
    return pseudonymise(programme, rid, KEY)


# --------------------------------------------------------------------------- #
# The synthetic exports against the generator's truth
# --------------------------------------------------------------------------- #
def test_events_table_matches_the_generators_truth(synth_run, dictionary):
    result, h, _ = synth_run
    assert tuple(h.events.columns) == EVENT_COLUMNS
    truth = result.events
    assert len(truth) > 50 and set(truth["type"]) >= {"absconding", "end_of_care",
                                                      "exploiter_contact"}
    want = sorted(
        (r.programme, _pseudo(dictionary, r.programme, r.client_id), r.type,
         pd.Timestamp(r.start_date), None if r.end_date is None or pd.isna(r.end_date)
         else pd.Timestamp(r.end_date))
        for r in truth.itertuples())
    got = sorted(
        (r.programme, r.client, r.type, pd.Timestamp(r.start_date),
         None if pd.isna(r.end_date) else pd.Timestamp(r.end_date))
        for r in h.events.itertuples())
    assert got == want
    # weeks are counted from the intake measurement (the admission day in the generator)
    merged = h.events.assign(key=[(p, c, t, s) for p, c, t, s in zip(
        h.events.programme, h.events.client, h.events.type, h.events.start_date, strict=True)])
    tw = {(r.programme, _pseudo(dictionary, r.programme, r.client_id), r.type,
           pd.Timestamp(r.start_date)): r.start_week for r in truth.itertuples()}
    np.testing.assert_allclose(merged["start_week"], [tw[k] for k in merged["key"]], atol=1e-9)
    # end reasons of the end-of-care events are the clients' end reasons
    eoc = h.events[h.events.type == "end_of_care"].merge(h.clients, on=["programme", "client"])
    assert len(eoc) > 20 and (eoc["reason"] == eoc["end_reason"]).all()
    # episodes before the intake are history: negative weeks, kept
    assert (h.events.loc[h.events.type == "absconding", "start_week"] < 0).any()


def test_event_accounting_and_provenance(synth_run):
    _, h, _ = synth_run
    acc = h.accounting[h.accounting["status"] == "read"]
    assert (acc["events_in"] == acc["events_out"] + acc["events_rejected"]).all()
    assert acc["events_out"].sum() == len(h.events)
    rej = h.rejections[h.rejections["kind"].isin(EVENT_KINDS)]
    assert acc["events_rejected"].sum() == len(rej)
    assert (rej["scores"] == 0).all()
    assert h.provenance["events"]["out"] == len(h.events)
    assert "pinq_crisis" in h.provenance["events"]["absconding_recorded"]


def test_time_to_first_absconding_matches_truth(synth_run, dictionary):
    result, h, _ = synth_run
    ttf = time_to_first_absconding(h)
    assert list(ttf.columns) == ["programme", "client", "weeks", "absconded", "age",
                                 "prior_absconding"]
    assert ttf[["programme", "client"]].duplicated().sum() == 0
    assert len(ttf) == len(h.clients)
    truth = result.events
    first = {}
    prior = set()
    for r in truth[truth.type == "absconding"].itertuples():
        k = (r.programme, _pseudo(dictionary, r.programme, r.client_id))
        if r.start_week >= 0:
            first[k] = min(first.get(k, np.inf), r.start_week)
        else:
            prior.add(k)
    cl = h.clients.set_index(["programme", "client"])
    n_events = 0
    for r in ttf.itertuples():
        k = (r.programme, r.client)
        t = first.get(k)
        if t is not None and t <= cl.loc[k, "weeks_in_care"] + 1e-9:
            assert r.absconded == 1 and r.weeks == pytest.approx(t)
            n_events += 1
        else:
            assert r.absconded == 0 and r.weeks == pytest.approx(cl.loc[k, "weeks_in_care"])
        assert r.prior_absconding == float(k in prior)
    assert n_events >= 10 and (ttf["weeks"] > 0).all()


def test_events_survive_write_and_read(synth_run, tmp_path):
    _, h, _ = synth_run
    for fmt in ("parquet", "csv"):
        h.write(tmp_path / fmt, format=fmt)
        back = read_harmonised(tmp_path / fmt)
        pd.testing.assert_frame_equal(back.events, h.events, check_dtype=False)


# --------------------------------------------------------------------------- #
# Bad input: one rejection-log row per kind, with file, row, column and reason
# --------------------------------------------------------------------------- #
def _bad_events_export(folder: Path) -> Path:
    base = write_pinq_gesloten(folder)
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    for col in ("weglopen_start_1", "weglopen_terug_1", "weglopen_start_2", "weglopen_terug_2",
                "aangifte_1", "einddatum"):
        df[col] = None
    first = ~df.duplicated("Cliëntnummer")
    rows = {rid: df.index[first & (df["Cliëntnummer"] == rid)][0] for rid in RAW_IDS}
    a, b, c = (rows[r] for r in RAW_IDS)
    # client 0: zero duration; a police report after the end of care
    df.loc[a, ["weglopen_start_1", "weglopen_terug_1"]] = ["10-03-2023", "10-03-2023"]
    df.loc[a, ["aangifte_1", "einddatum"]] = ["01-12-2023", "01-09-2023"]
    # client 1: a return before the start; then two overlapping episodes
    df.loc[b, ["weglopen_start_1", "weglopen_terug_1"]] = ["10-03-2023", "01-03-2023"]
    df.loc[b, ["weglopen_start_2", "weglopen_terug_2"]] = ["01-05-2023", "20-05-2023"]
    later = df.index[(df["Cliëntnummer"] == RAW_IDS[1]) & ~first][0]
    df.loc[later, ["weglopen_start_2", "weglopen_terug_2"]] = ["10-05-2023", "30-05-2023"]
    # client 2: an impossible date, a name in a date cell, an end without a start
    df.loc[c, ["weglopen_start_1", "weglopen_terug_1"]] = ["31-02-2023", "05-03-2023"]
    df.loc[c, "aangifte_1"] = NAMES[2]
    df.loc[c, "weglopen_terug_2"] = "07-07-2023"
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    return base


@pytest.fixture
def bad_events(tmp_path, dictionary):
    raw = tmp_path / "raw"
    raw.mkdir()
    _bad_events_export(raw)
    return harmonise(raw, dictionary, key=KEY), raw


def test_each_bad_event_is_a_log_row_with_its_reason(bad_events):
    h, _ = bad_events
    rej = h.rejections[h.rejections["kind"].isin(EVENT_KINDS)]
    got = {(int(r.row), r.column, r.kind) for r in rej.itertuples()}
    assert got == {
        (2, "weglopen_terug_1", "event_zero_duration"),
        (2, "aangifte_1", "event_after_end_of_care"),
        (4, "weglopen_terug_1", "event_return_before_start"),
        (5, "weglopen_start_2", "event_overlap"),
        (6, "weglopen_start_1", "event_unparseable_date"),
        (6, "aangifte_1", "event_unparseable_date"),
        (6, "weglopen_terug_2", "event_missing_start"),
    }
    assert (rej["file"] == "pinq_gesloten_metingen.csv").all()
    assert (rej["programme"] == "pinq_gesloten").all() and (rej["scores"] == 0).all()
    by_kind = rej.set_index("kind")
    assert "zero duration" in by_kind.loc["event_zero_duration", "reason"]
    assert ("after the client's end of care (the end-of-care event of "
            "pinq_gesloten_metingen.csv row 2)") in by_kind.loc["event_after_end_of_care", "reason"]
    assert by_kind.loc["event_after_end_of_care", "value"] == "2023-12-01"
    assert by_kind.loc["event_overlap", "value"] == "2023-05-10"
    # reasons carry no dates (only the whitelisted value does)
    assert not rej["reason"].str.contains(r"20[0-9]{2}-[0-9]{2}").any()
    assert "before its start date" in by_kind.loc["event_return_before_start", "reason"]
    assert "overlaps an earlier episode" in by_kind.loc["event_overlap", "reason"]
    # dates are shown (date-shaped), the name in a date cell is not
    bad_dates = rej[rej["kind"] == "event_unparseable_date"].set_index("column")
    assert bad_dates.loc["weglopen_start_1", "value"] == "31-02-2023"
    assert pd.isna(bad_dates.loc["aangifte_1", "value"])
    assert "value not shown" in bad_dates.loc["aangifte_1", "reason"]
    # the good events remain: client 1's first overlap episode, client 0's end of care
    ev = h.events
    assert len(ev) == 2 and set(ev["type"]) == {"absconding", "end_of_care"}
    ep = ev[ev["type"] == "absconding"].iloc[0]
    assert ep["start_date"] == pd.Timestamp("2023-05-01") and ep["end_week"] > ep["start_week"]
    # accounting: 9 event records read = 2 kept + 7 rejected
    acc = h.accounting.set_index("file").loc["pinq_gesloten_metingen.csv"]
    assert (acc["events_in"], acc["events_out"], acc["events_rejected"]) == (9, 2, 7)


def test_no_identifier_in_written_files_or_log(bad_events, tmp_path):
    h, _ = bad_events
    written = h.write(tmp_path / "out", format=("parquet", "csv"))
    assert len(written) == 15  # 7 frames x parquet, csv + provenance.json
    secrets = [*NAMES, *(n.split()[1] for n in NAMES), *BSNS, *BIRTHS, *RAW_IDS,
               *(f"{b[8:10]}-{b[5:7]}-{b[:4]}" for b in BIRTHS)]
    for p in written:
        data = p.read_bytes()
        for text in (data.decode("utf-8", "replace"), data.decode("latin-1")):
            for s in secrets:
                assert s not in text, (p.name, "identifier written")
    log_text = h.rejections.astype(str).to_csv()
    assert not any(s in log_text for s in secrets)


# --------------------------------------------------------------------------- #
# Dictionary: strict validation of events.yaml and the events blocks
# --------------------------------------------------------------------------- #
def _copy(dictionary, tmp_path) -> Path:
    folder = tmp_path / "dict"
    shutil.copytree(dictionary.path, folder)
    return folder


def test_shipped_dictionary_declares_the_event_types(dictionary):
    types = dictionary.event_types
    assert set(types) == {"absconding", "exploiter_contact", "police_report",
                          "comensha_report", "transfer", "end_of_care"}
    assert types["absconding"].episode and not types["police_report"].episode
    assert "CoMensha" in types["comensha_report"].label_en
    assert types["police_report"].label_nl.startswith("Aangifte")
    for src in dictionary.sources.values():
        ev = src.files[0].events
        assert ev is not None and ev.columns[0].start == "weglopen_start_{n}"


@pytest.mark.parametrize("old,new,key", [
    ('{type: police_report, start: "aangifte_{n}"}',
     '{type: police_report, start: "aangifte_{n}", end: "x_{n}"}', "events.columns[2].end"),
    ('{type: police_report, start: "aangifte_{n}"}',
     '{type: police_rapport, start: "aangifte_{n}"}', "events.columns[2].type"),
    ('{type: police_report, start: "aangifte_{n}"}',
     '{type: police_report, begin: "aangifte_{n}"}', "events.columns[2].begin"),
    ('end: "weglopen_terug_{n}"}', 'end: "weglopen_terug"}', "events.columns[0].end"),
])
def test_events_block_is_validated_strictly(dictionary, tmp_path, old, new, key):
    folder = _copy(dictionary, tmp_path)
    src = folder / "sources" / "pinq_gesloten.yaml"
    text = src.read_text(encoding="utf-8")
    assert old in text
    src.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(DictionaryError) as err:
        load_dictionary(folder)
    assert "pinq_gesloten.yaml" in str(err.value) and key in str(err.value)


def test_events_yaml_needs_absconding_and_end_of_care(dictionary, tmp_path):
    folder = _copy(dictionary, tmp_path)
    ev = folder / "events.yaml"
    text = ev.read_text(encoding="utf-8")
    ev.write_text(text.replace("  absconding:", "  weglopen:"), encoding="utf-8")
    with pytest.raises(DictionaryError, match="absconding") as err:
        load_dictionary(folder)
    assert "events.yaml" in str(err.value)


def test_long_events_rows_are_read_and_unknown_types_rejected(dictionary, tmp_path):
    from harmonise_helpers import write_egoversterkend

    folder = _copy(dictionary, tmp_path)
    src = folder / "sources" / "egoversterkend.yaml"
    text = src.read_text(encoding="utf-8")
    assert text.count("    events:\n") == 1
    src.write_text(text.replace("    events:\n", (
        "    events:\n      rows: {type_column: gebeurtenis, start_column: gebeurtenis_datum, "
        "end_column: gebeurtenis_eind, labels: {Weggelopen: absconding, Aangifte: "
        "police_report}}\n")), encoding="utf-8")
    d = load_dictionary(folder)
    raw = tmp_path / "raw"
    raw.mkdir()
    path = write_egoversterkend(raw)
    df = pd.read_csv(path, dtype=str)
    df["gebeurtenis"] = df["gebeurtenis_datum"] = df["gebeurtenis_eind"] = None
    df.loc[0, ["gebeurtenis", "gebeurtenis_datum", "gebeurtenis_eind"]] = [
        "Weggelopen", "2023-03-01", "2023-03-05"]
    df.loc[1, ["gebeurtenis", "gebeurtenis_datum"]] = [NAMES[0], "2023-03-02"]
    df.loc[2, ["gebeurtenis", "gebeurtenis_datum"]] = ["Aangifte", "2023-04-01"]
    df.to_csv(path, index=False, encoding="utf-8")
    h = harmonise(raw, d, key=KEY)
    assert sorted(h.events["type"]) == ["absconding", "police_report"]
    ep = h.events[h.events["type"] == "absconding"].iloc[0]
    assert (ep["start_date"], ep["end_date"]) == (pd.Timestamp("2023-03-01"),
                                                  pd.Timestamp("2023-03-05"))
    assert ep["source_row"] == 2 and ep["source_column"] == "gebeurtenis_datum"
    assert ep["start_week"] == pytest.approx((pd.Timestamp("2023-03-01")
                                              - pd.Timestamp("2023-01-10")).days / 7)
    rej = h.rejections[h.rejections["kind"] == "event_unknown_type"]
    assert len(rej) == 1 and int(rej["row"].iloc[0]) == 3
    assert rej["column"].iloc[0] == "gebeurtenis" and pd.isna(rej["value"].iloc[0])
    assert NAMES[0] not in rej.astype(str).to_csv()
    acc = h.accounting.set_index("file").loc["egoversterkend_scores_long.csv"]
    assert (acc["events_in"], acc["events_out"], acc["events_rejected"]) == (3, 2, 1)
