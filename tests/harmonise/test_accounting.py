"""rows in = rows out + rows rejected, exactly, per file; injected errors all logged."""

from __future__ import annotations

import string

import pandas as pd
import pyreadstat
from harmonise_helpers import KEY
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl import load_workbook

from effectstudy.harmonise import harmonise
from effectstudy.harmonise.mapping import is_empty

KIND_MAP = {"bad_date": "unparseable_date"}


def _independent_count(path, sf):
    """Score records of a file, counted straight from the raw file (not via the readers)."""
    if sf.format == "excel":
        ws = load_workbook(path, data_only=True)[sf.sheet]
        rows = list(ws.iter_rows(values_only=True))
        df = pd.DataFrame(rows[1:], columns=rows[0], dtype=object)
    elif sf.format == "spss":
        df, _ = pyreadstat.read_sav(str(path))
        df = df.astype(object)
    else:
        df = pd.read_csv(path, sep=sf.csv["sep"], encoding=sf.csv["encoding"], dtype=str,
                         keep_default_na=False)
    if sf.layout == "long":
        return int(len(df))
    if sf.layout == "wide":
        cols = [c for c in df.columns
                if any(c.startswith(m.column.split("{occasion}")[0]) and c.endswith(
                    m.column.split("{occasion}")[1]) for m in sf.measures)]
        cols = [c for c in cols if c not in sf.client_fields.values()
                and not c.startswith(("Datum_", "Fase_"))]
    else:
        cols = [m.column for m in sf.measures]
    return int(sum((~df[c].map(is_empty)).sum() for c in cols))


def test_rows_in_equals_out_plus_rejected_per_file(synth_run, dictionary):
    synth, h, raw = synth_run
    acc = h.accounting
    assert (acc["rows_in"] == acc["rows_out"] + acc["rows_rejected"]).all()
    out = h.table.groupby("source_file").size()
    rej = h.rejections.groupby("file")["scores"].sum()
    by_name = {f.path: f for s in dictionary.sources.values() for f in s.files}
    assert len(acc) == len(synth.files) == 8 + 12  # score exports + 6 x (delivery log, ratings)
    for rec in acc.to_dict("records"):
        assert rec["rows_out"] == out.get(rec["file"], 0)
        assert rec["rows_rejected"] == rej.get(rec["file"], 0)
        assert rec["rows_in"] == _independent_count(raw / rec["file"], by_name[rec["file"]])


def test_every_injected_error_is_logged(synth_run):
    synth, h, _ = synth_run
    log = h.rejections
    assert len(synth.injected) >= 20
    for inj in synth.injected.to_dict("records"):
        kind = KIND_MAP.get(inj["kind"], inj["kind"])
        hit = log[(log["file"] == inj["file"]) & (log["row"] == inj["row"])
                  & (log["column"] == inj["column"]) & (log["kind"] == kind)]
        assert len(hit) == 1, inj
        if kind == "unknown_intervention":  # a client-level note: no score is lost
            assert hit["scores"].iloc[0] == 0
            assert hit["value"].isna().all()
        else:
            assert hit["scores"].iloc[0] >= 1


def test_no_unexplained_rejections(synth_run):
    """Every score-rejecting log entry corresponds to an injected error."""
    synth, h, _ = synth_run
    rej = h.rejections[h.rejections["scores"] > 0]
    inj = {(r["file"], r["row"]) for r in synth.injected.to_dict("records")}
    assert {(f, r) for f, r in zip(rej["file"], rej["row"], strict=True)} <= inj


# --------------------------------------------------------------------------- #
# Property: random long files with random corruptions never lose a row
# --------------------------------------------------------------------------- #
HEADER = ["client_id", "name", "birth_date", "bsn", "occasion", "date", "phase", "instrument",
          "scale", "score", "weeks_in_care", "last_phase", "end_reason", "interventions",
          "fidelity"]
PAIRS = [("YSR", "INT"), ("YSR", "EXT"), ("CBSA", "GSW"), ("GAS", "T"), ("XX", "YY")]
cell = st.one_of(st.just(""), st.text(string.ascii_letters + string.digits + " .-", max_size=6))
row = st.fixed_dictionaries({
    "client_id": st.one_of(st.sampled_from(["TJ1", "TJ2", "TJ3"]), st.just("")),
    "occasion": st.sampled_from(["T0", "T1", "T3", "FU6", "T9", ""]),
    "date": st.sampled_from(["2023-01-02", "2023-05-01", "2023-02-31", "", "x"]),
    "phase": st.sampled_from(["behandeling", "nazorg", "treatment", "?", ""]),
    "pair": st.sampled_from(PAIRS),
    "score": st.one_of(st.integers(-5, 120).map(str), cell),
    "fidelity": st.sampled_from(["6.5", "7", ""]),
})


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(row, min_size=1, max_size=25))
def test_property_no_silent_loss(rows, tmp_path_factory, dictionary):
    folder = tmp_path_factory.mktemp("prop")
    recs = []
    for r in rows:
        recs.append({"client_id": r["client_id"], "name": "N N", "birth_date": "2008-01-01",
                     "bsn": "111222333", "occasion": r["occasion"], "date": r["date"],
                     "phase": r["phase"], "instrument": r["pair"][0], "scale": r["pair"][1],
                     "score": r["score"], "weeks_in_care": "40", "last_phase": "nazorg",
                     "end_reason": "completed", "interventions": "EMDR",
                     "fidelity": r["fidelity"]})
    df = pd.DataFrame(recs, columns=HEADER)
    df.to_csv(folder / "egoversterkend_scores_long.csv", index=False)
    # fully empty rows are skipped by design; every other row is one score record
    n_in = int(sum(any(str(v).strip() for v in rec.values()) for rec in recs))
    h = harmonise(folder, dictionary, key=KEY)
    acc = h.accounting.iloc[0]
    assert acc["rows_in"] == n_in
    assert acc["rows_in"] == len(h.table) + int(h.rejections["scores"].sum())
    assert set(h.table["source_row"]).isdisjoint(
        set(h.rejections.loc[h.rejections["scores"] > 0, "row"].dropna().astype(int)))
