"""Tests of effectstudy.synth: synthetic raw exports and their ground truth.

Files are read back with plain pandas / pyreadstat / openpyxl (not the harmoniser),
following the source YAMLs, so these tests pin the file contract itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyreadstat
import pytest

from effectstudy.dictionary import INTEGRITY_LAYOUTS, load_dictionary
from effectstudy.synth import SynthResult, bsn_is_valid, generate

DICT = load_dictionary()
# score exports; the integrity exports (delivery logs, fidelity ratings) are checked in
# tests/harmonise/test_integrity_logs.py
FILES = {f.path: f for src in DICT.sources.values() for f in src.files
         if f.layout not in INTEGRITY_LAYOUTS}
INTEGRITY_FILES = {f.path for src in DICT.sources.values() for f in src.files
                   if f.layout in INTEGRITY_LAYOUTS}


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthResult]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, seed=2026, dictionary=DICT)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthResult]:
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, seed=2026, dictionary=DICT, inject_errors=False)


def read(path: Path, sf) -> pd.DataFrame:
    """Read an export as plain text/objects, one DataFrame row per data row."""
    if sf.format == "csv":
        return pd.read_csv(path, sep=sf.csv["sep"], encoding=sf.csv["encoding"], dtype=str,
                           keep_default_na=False)
    if sf.format == "excel":
        return pd.read_excel(path, sheet_name=sf.sheet, dtype=object)
    df, _ = pyreadstat.read_sav(str(path))
    return df


def row_of(df: pd.DataFrame, sf, row: int) -> pd.Series:
    """The data row the reader numbers ``row`` (header = row 1 in CSV/Excel)."""
    return df.iloc[row - (1 if sf.format == "spss" else 2)]


def number(value, sf) -> float:
    if isinstance(value, str):
        if value == "":
            return np.nan
        if sf.format == "csv":
            value = value.replace(sf.csv["decimal"], ".")
        return float(value)
    return float(value) if value is not None else np.nan


def declared_columns(sf) -> list[str]:
    cols = [sf.client_id, *sf.identifiers, *sf.client_fields.values()]
    if sf.birth_date:
        cols.append(sf.birth_date)
    if sf.layout == "wide":
        for lab in sf.occasions:
            for tmpl in [sf.date_column, sf.phase_column, *(m.column for m in sf.measures)]:
                if tmpl:
                    cols.append(tmpl.replace("{occasion}", lab))
    else:
        cols += [c for c in (sf.occasion_column, sf.date_column, sf.phase_column,
                             sf.session_column, sf.sced_phase_column, sf.instrument_column,
                             sf.scale_column, sf.score_column) if c]
        cols += [m.column for m in sf.measures if m.column]
    return cols


# --------------------------------------------------------------------------- #
def test_same_seed_same_output(synth, tmp_path):
    out, first = synth
    second = generate(tmp_path, seed=2026, dictionary=DICT)
    for a, b in zip(first.files, second.files, strict=True):
        assert a.name == b.name
        if a.suffix in (".csv", ".xlsx"):
            assert a.read_bytes() == b.read_bytes(), a.name
        else:
            pd.testing.assert_frame_equal(pyreadstat.read_sav(str(a))[0],
                                          pyreadstat.read_sav(str(b))[0])
    for name in ("truth", "clients", "series_truth", "injected", "identifiers"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))


def test_other_seed_differs(synth, tmp_path):
    _, first = synth
    other = generate(tmp_path, seed=7, dictionary=DICT)
    assert not first.truth["raw"].equals(other.truth["raw"])


def test_every_source_file_written_and_readable(synth):
    out, res = synth
    written = {p.relative_to(out).as_posix() for p in res.files}
    assert written == set(FILES) | INTEGRITY_FILES
    for path, sf in FILES.items():
        df = read(out / path, sf)
        missing = set(declared_columns(sf)) - set(df.columns)
        assert not missing, (path, missing)
        assert len(df) > 0
        if sf.format == "excel":
            wb = openpyxl.load_workbook(out / path, read_only=True)
            assert sf.sheet in wb.sheetnames


def test_group_sizes_and_ages(synth):
    out, res = synth
    sizes = res.clients.groupby("programme").size()
    assert set(sizes.index) == set(DICT.sources)
    assert sizes.between(4, 25).all()
    assert sizes.nunique() > 3  # unequal groups
    for pid, grp in res.clients.groupby("programme"):
        prog = DICT.programmes[pid]
        lo = prog.age_min if prog.age_min is not None else 10
        hi = (prog.age_max if prog.age_max is not None else 24) + 1
        assert grp["age_at_intake"].between(lo, hi, inclusive="left").all(), pid
    # written birth dates agree with the ages
    sf = FILES["pinq_gesloten_metingen.csv"]
    df = read(out / sf.path, sf)
    birth = pd.to_datetime(df[sf.birth_date], format="%d-%m-%Y")
    first = df.groupby(sf.client_id).head(1)
    assert birth.notna().all() and len(first) == 16


def test_outcome_files_client_counts(synth):
    out, res = synth
    for path, sf in FILES.items():
        if sf.layout == "series":
            continue
        ids = read(out / path, sf)[sf.client_id].astype(str).str.replace(r"\.0$", "", regex=True)
        n = (res.clients["programme"] == sf.programme).sum()
        assert ids.nunique() == n


def test_dropout_and_missing_occasions(synth):
    _, res = synth
    cl = res.clients
    assert set(cl["end_reason"]) == {"completed", "absconded", "transferred"}
    for pid, grp in cl.groupby("programme"):
        assert (grp["end_reason"] != "completed").any(), pid
        assert (grp["weeks_in_care"] <= grp["planned_weeks"]).all()
    t = res.truth.merge(cl, on=["programme", "client_id"])
    drop = t[t["end_reason"] != "completed"]
    incare = drop[drop["occasion"].isin(["intake", "during"])]
    assert (incare["week"] < incare["weeks_in_care"]).all()
    # dropouts reach fewer occasions than completers
    per = t.groupby(["programme", "client_id", "end_reason"])["occasion_label"].nunique()
    per = per.reset_index()
    assert (per[per.end_reason != "completed"].occasion_label.mean()
            < per[per.end_reason == "completed"].occasion_label.mean())
    # follow-ups only for part of the clients
    fu = t[t["occasion"].str.startswith("follow_up")]
    assert 0 < fu["client_id"].nunique() < cl["client_id"].nunique()
    # last phase of dropouts is reached earlier than that of completers
    for pid in ("intermetzo", "veilig_lima"):
        g = cl[cl.programme == pid]
        order = [p.id for p in DICT.programmes[pid].phases]
        rank = g["last_phase"].map(order.index)
        assert rank[g.end_reason != "completed"].max() < rank[g.end_reason == "completed"].min()


def test_dates_consistent_with_weeks(synth):
    _, res = synth
    t = res.truth.merge(res.clients, on=["programme", "client_id"])
    weeks = (t["date"] - t["intake_date"]).dt.days / 7
    assert np.allclose(weeks, t["week"])
    dis = t[t["occasion"] == "discharge"]
    assert (abs(dis["week"] - dis["weeks_in_care"]) < 1.0).all()
    intake = t[t["occasion"] == "intake"]
    assert (intake["week"] == 0).all()


def test_dutch_csv_locale(synth):
    out, _ = synth
    raw = (out / "pinq_gesloten_metingen.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    text = raw.decode("cp1252")
    header = text.splitlines()[0]
    assert header.startswith("Cliëntnummer;")
    assert header.count(";") >= 10 and "," not in header
    sf = FILES["pinq_gesloten_metingen.csv"]
    df = read(out / sf.path, sf)
    assert df["Programmatrouw"].str.fullmatch(r"\d+(,\d)?").all()
    assert df["Programmatrouw"].str.contains(",").any() or df["Programmatrouw"].nunique() == 1
    dates = df["Datum"]
    ok = dates.str.fullmatch(r"\d{2}-\d{2}-\d{4}")
    assert ok.all()
    assert df["Geboortedatum"].str.fullmatch(r"\d{2}-\d{2}-\d{4}").all()
    # the intervention lists contain the separator and are therefore quoted
    assert '"' in text and df["Interventies"].str.contains(";").any()
    # Dutch series file too
    series = (out / "hoenderloo_weekreeks.csv").read_bytes().decode("cp1252")
    assert re.search(r";\d+,\d\r?\n", series)


def test_spss_value_labels(synth):
    out, _ = synth
    for path, sf in FILES.items():
        if sf.format != "spss":
            continue
        _, meta = pyreadstat.read_sav(str(out / path))
        vl = meta.variable_value_labels
        assert sorted(vl[sf.occasion_column].values()) == sorted(sf.occasions)
        assert sorted(vl[sf.phase_column].values()) == sorted(sf.labels["phase"])
        assert sorted(vl[sf.client_fields["end_reason"]].values()) == sorted(sf.labels["end_reason"])
        assert sorted(vl[sf.client_fields["last_phase"]].values()) == sorted(sf.labels["last_phase"])
        labelled, _ = pyreadstat.read_sav(str(out / path), apply_value_formats=True)
        assert set(labelled[sf.client_fields["end_reason"]]) <= set(sf.labels["end_reason"])


def test_series_multiple_baseline(synth):
    out, res = synth
    st = res.series_truth
    for path, sf in FILES.items():
        if sf.layout != "series":
            continue
        df = read(out / path, sf)
        sub = st[st.file == path]
        cases = sub.groupby("client_id")
        assert 3 <= cases.ngroups <= 6
        base = cases["baseline_length"].first()
        assert base.is_unique and base.between(5, 12).all()  # staggered change points
        n = cases["session"].max()
        assert n.between(20, 30).all()
        # written phases switch A -> B exactly once, at the true baseline length
        labels = sf.labels["sced_phase"]
        df["_phase"] = df[sf.sced_phase_column].map(labels)
        df["_session"] = df[sf.session_column].astype(int)
        for cid, g in df.groupby(sf.client_id):
            g = g.sort_values("_session")
            first_b = g.loc[g["_phase"] == "B", "_session"].min()
            last_a = g.loc[g["_phase"] == "A", "_session"].max()
            assert last_a == base[str(cid)] and first_b == last_a + 1
        # a true level shift (improvement: lower distress) per client
        assert (cases["true_shift"].first() < 0).all()
        means = sub.groupby(["client_id", "phase"])["outcome"].mean().unstack()
        assert (means["B"] < means["A"]).mean() >= 0.6
        assert sub["outcome"].between(0, 10).all()


def test_truth_matches_written_cells(synth):
    out, res = synth
    for path, sf in FILES.items():
        if sf.layout == "series":
            continue
        df = read(out / path, sf)
        t = res.truth[res.truth.file == path]
        assert len(t) > 0
        for rec in t.itertuples():
            row = row_of(df, sf, rec.row)
            assert str(row[sf.client_id]).removesuffix(".0") == rec.client_id
            col = sf.score_column if sf.layout == "long" else rec.column
            assert number(row[col], sf) == rec.raw, (path, rec.row, col)
            if sf.layout == "long":
                assert row[sf.occasion_column] == rec.occasion_label
            scale = DICT.scale(rec.instrument, rec.scale)
            assert scale.range_min <= rec.raw <= scale.range_max


def test_series_truth_matches_written_cells(synth):
    out, res = synth
    for path, sf in FILES.items():
        if sf.layout != "series":
            continue
        df = read(out / path, sf)
        for rec in res.series_truth[res.series_truth.file == path].itertuples():
            row = row_of(df, sf, rec.row)
            assert str(row[sf.client_id]) == rec.client_id
            assert int(row[sf.session_column]) == rec.session
            assert number(row[rec.column], sf) == rec.outcome


def test_expected_z_from_verified_norms(synth):
    _, res = synth
    t = res.truth
    seen_nan = seen_val = 0
    for rec in t.itertuples():
        norm = DICT.scale(rec.instrument, rec.scale).norm_for(rec.age)
        if norm is None:
            assert np.isnan(rec.expected_z)
            seen_nan += 1
        else:
            assert rec.expected_z == pytest.approx((rec.raw - norm.mean.value) / norm.sd.value)
            seen_val += 1
    assert seen_nan and seen_val
    # ages are computed at the measurement date and never sit on a birthday boundary
    assert (t.groupby("instrument")["expected_z"].count()[["YSR", "SDQ-S", "GAS"]] > 0).all()
    # clinical sample: worse than the norm at intake (raw direction: higher = worse here)
    intake = t[(t.occasion == "intake") & t.instrument.isin(["YSR", "SDQ-S"])]
    assert intake["expected_z"].mean() > 0.7
    # and improving towards discharge
    dis = t[(t.occasion == "discharge") & t.instrument.isin(["YSR", "SDQ-S"])]
    assert dis["expected_z"].mean() < intake["expected_z"].mean()
    # unverified norms (KIDSCREEN) never give an expected z
    assert t.loc[t.instrument == "KIDSCREEN-27", "expected_z"].isna().all()
    better = t["expected_z_better"].dropna()
    assert np.allclose(better.abs(), t.loc[better.index, "expected_z"].abs())


def test_identifiers(synth):
    out, res = synth
    ids = res.identifiers
    bsn = ids[ids.kind == "bsn"]["value"]
    assert bsn.str.fullmatch(r"\d{9}").all() and bsn.map(bsn_is_valid).all()
    assert bsn.is_unique
    names = ids[ids.kind == "name"]["value"]
    assert names.is_unique
    # 11-proof by hand: 9*1+8*2+...+2*8 = 156; 156 - 2 = 154 = 14*11, 156 - 0 = 156 is not
    assert bsn_is_valid("123456782") and not bsn_is_valid("123456780")
    assert bsn_is_valid("111222333") and not bsn_is_valid("111222334")
    # identifiers really are in the raw files (the privacy tests grep outputs for them)
    text = (out / "pinq_gesloten_metingen.csv").read_bytes().decode("cp1252")
    gesl = ids[ids.programme == "pinq_gesloten"]
    for kind in ("name", "bsn", "client_id"):
        for value in gesl[gesl.kind == kind]["value"]:
            assert value in text
    for value in gesl[(gesl.kind == "birth_date") & (gesl.format == "%d-%m-%Y")]["value"]:
        assert value in text
    long_text = (out / "egoversterkend_scores_long.csv").read_text("utf-8")
    ego = ids[ids.programme == "egoversterkend"]
    for value in ego[(ego.kind == "birth_date") & (ego.format == "%Y-%m-%d")]["value"]:
        assert value in long_text
    # the SPSS and Excel files carry the BSNs in their declared columns
    sf = FILES["veilig_lima_metingen.sav"]
    df = read(out / sf.path, sf)
    assert df["bsn"].map(bsn_is_valid).all()
    sf = FILES["intermetzo_rom.xlsx"]
    df = read(out / sf.path, sf)
    assert df["BSN-nummer"].astype(str).map(bsn_is_valid).all()


def test_client_fields(synth):
    out, res = synth
    cl = res.clients
    assert cl.groupby("programme")["fidelity"].nunique().eq(1).all()
    assert cl["fidelity"].between(0, 10).all()
    assert cl["interventions"].str.len().gt(0).all()
    assert cl.groupby("programme")["interventions"].nunique().gt(1).all()
    for path, sf in FILES.items():
        if not sf.client_fields:
            continue
        df = read(out / path, sf)
        if sf.format == "spss":
            df, _ = pyreadstat.read_sav(str(out / path), apply_value_formats=True)
        labels = sf.labels
        ends = df[sf.client_fields["end_reason"]].map(labels["end_reason"])
        assert ends.notna().all()
        assert set(ends) == set(cl.loc[cl.programme == sf.programme, "end_reason"])
        phases = df[sf.client_fields["last_phase"]].map(labels["last_phase"])
        assert phases.notna().all()


def test_injected_errors_are_written(synth):
    out, res = synth
    inj = res.injected
    assert len(inj) > 0
    assert set(inj.kind) == {"out_of_range", "duplicate", "unparseable_date", "unknown_occasion",
                             "unknown_intervention"}
    free = inj[inj.kind == "unknown_intervention"]
    # one per file with an interventions column (every outcome file, no series file)
    assert set(free.file) == {p for p, sf in FILES.items() if sf.client_fields}
    assert inj[inj.kind != "unknown_intervention"].groupby("file").size().between(1, 3).all()
    assert set(inj.file) == set(FILES)
    for rec in inj.itertuples():
        sf = FILES[rec.file]
        df = read(out / rec.file, sf)
        row = row_of(df, sf, rec.row)
        cell = row[rec.column]
        if rec.kind == "out_of_range":
            meas = next(m for m in sf.measures
                        if (m.column or "").replace("{occasion}", str(rec.occasion_label)) == rec.column
                        or sf.layout == "long")
            if sf.layout == "long":
                meas = next(m for m in sf.measures
                            if [row[sf.instrument_column], row[sf.scale_column]] == list(m.label))
            scale = DICT.scale(meas.instrument, meas.scale)
            v = number(cell, sf)
            assert v == float(rec.value)
            assert not scale.range_min <= v <= scale.range_max
        elif rec.kind == "unparseable_date":
            assert str(cell) == rec.value
            fmt = sf.date_format or "%Y-%m-%d"
            assert pd.isna(pd.to_datetime(pd.Series([cell]), format=fmt, errors="coerce")[0])
        elif rec.kind == "unknown_occasion":
            if sf.format == "spss":
                assert float(cell) == float(rec.value)
            else:
                assert cell == rec.value and cell not in sf.occasions
        elif rec.kind == "unknown_intervention":
            # the client's own name in free text, after the declared labels
            assert cell == rec.value
            names = res.identifiers.query("kind == 'name' and client_id == @rec.client_id")
            assert names["value"].iloc[0] in cell
            labels = sf.labels["interventions"]
            assert str(cell).split(";")[0] in labels
        elif rec.kind == "duplicate":
            prev = row_of(df, sf, rec.row - 1)
            pd.testing.assert_series_equal(row, prev, check_names=False)
        if rec.kind == "unknown_intervention":
            continue  # a client-level cell: the row's scores stay valid (in the truth)
        # injected rows/cells are never in the truth (a duplicate's first copy is)
        same = res.truth[(res.truth.file == rec.file) & (res.truth.row == rec.row)]
        if sf.layout == "wide" and rec.kind != "duplicate":
            same = same[same.occasion_label == rec.occasion_label]
        assert same.empty


def test_clean_run_has_only_valid_rows(clean, synth):
    out, res = clean
    assert res.injected.empty
    pd.testing.assert_frame_equal(res.clients, synth[1].clients)
    for path, sf in FILES.items():
        df = read(out / path, sf)
        if sf.layout == "series":
            assert len(df) == (res.series_truth.file == path).sum()
            assert pd.to_datetime(df[sf.date_column], format=sf.date_format).notna().all()
            vals = df[sf.measures[0].column].map(lambda v, sf=sf: number(v, sf))
            assert vals.between(0, 10).all()
            continue
        t = res.truth[res.truth.file == path]
        if sf.layout == "long":
            assert len(df) == len(t)
            assert df[sf.occasion_column].isin(list(sf.occasions)).all()
            key = [sf.client_id, sf.occasion_column, sf.instrument_column, sf.scale_column]
            assert not df.duplicated(key).any()
        elif sf.layout == "occasion_rows":
            assert len(df) == t.row.nunique()
            if sf.format == "spss":
                df, _ = pyreadstat.read_sav(str(out / path), apply_value_formats=True)
            assert df[sf.occasion_column].isin(list(sf.occasions)).all()
            assert not df.duplicated([sf.client_id, sf.occasion_column]).any()
        else:
            assert df[sf.client_id].is_unique
        # every score cell written is a truth score
        n_cells = 0
        for m in sf.measures:
            if sf.layout == "wide":
                cols = [m.column.replace("{occasion}", lab) for lab in sf.occasions]
            elif sf.layout == "long":
                continue
            else:
                cols = [m.column]
            for c in cols:
                n_cells += df[c].map(lambda v, sf=sf: number(v, sf)).notna().sum()
        if sf.layout != "long":
            assert n_cells == len(t)


def test_n_clients_override(tmp_path):
    res = generate(tmp_path, seed=1, dictionary=DICT, n_clients={"hoenderloo": 5}, inject_errors=False)
    sizes = res.clients.groupby("programme").size()
    assert sizes["hoenderloo"] == 5 and sizes["egoversterkend"] == 25


def test_injected_kinds_are_rejection_kinds(synth):
    """The injected kinds use the harmoniser's rejection-log vocabulary."""
    log = pytest.importorskip("effectstudy.harmonise.log")
    assert set(synth[1].injected["kind"]) <= set(log.KINDS)


def test_programme_ids_do_not_collide(synth):
    _, res = synth
    assert res.clients["client_id"].is_unique
    assert res.identifiers.query("kind == 'name'")["value"].is_unique
