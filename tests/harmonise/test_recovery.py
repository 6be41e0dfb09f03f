"""End to end against effectstudy.synth: the harmonised table recovers the truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from harmonise_helpers import KEY

from effectstudy.harmonise import pseudonymise


def _with_pseudonyms(frame):
    out = frame.copy()
    out["client"] = [pseudonymise(p, c, KEY) for p, c in zip(out["programme"], out["client_id"],
                                                            strict=True)]
    out["source_file"] = out["file"].map(lambda f: Path(f).name)
    return out


@pytest.fixture(scope="module")
def merged(synth_run):
    synth, h, _ = synth_run
    truth = _with_pseudonyms(synth.truth)
    keys = ["source_file", "client", "occasion_label", "instrument", "scale"]
    m = truth.merge(h.table, left_on=[*keys, "row"], right_on=[*keys, "source_row"],
                    how="left", suffixes=("_truth", ""), validate="one_to_one",
                    indicator=True)
    return m


def test_every_truth_score_is_in_the_table(merged):
    assert (merged["_merge"] == "both").all(), merged[merged["_merge"] != "both"].head()


def test_raw_scores_equal_truth(merged):
    assert np.array_equal(merged["raw"].to_numpy(float), merged["raw_truth"].to_numpy(float))


def test_z_equals_expected_z(merged):
    ez, z = merged["expected_z"].to_numpy(float), merged["z"].to_numpy(float)
    assert np.array_equal(np.isnan(ez), np.isnan(z))
    assert np.nanmax(np.abs(ez - z)) < 1e-9
    ok = ~np.isnan(z)
    assert np.allclose(merged["t"].to_numpy(float)[ok], 50 + 10 * z[ok])
    # no z without a verified norm group, and a note wherever z is missing
    assert merged.loc[ok, "norm_group"].notna().all()
    assert merged.loc[~ok, "note"].notna().all()


def test_occasion_phase_and_week(merged, dictionary):
    assert (merged["occasion"] == merged["occasion_truth"]).all()
    has_phase_col = merged["programme"].map(
        lambda p: any(f.phase_column for f in dictionary.sources[p].files))
    sub = merged[has_phase_col]
    assert (sub["phase_truth"].fillna("-") == sub["programme_phase"].fillna("-")).all()
    canon = [dictionary.programmes[p].phase(ph).canonical if isinstance(ph, str) else None
             for p, ph in zip(sub["programme"], sub["programme_phase"], strict=True)]
    assert (sub["phase"].fillna("-").tolist() == [c or "-" for c in canon])
    # week counts from the intake *measurement* (the intake date itself is not exported),
    # which synth places 0-6 days after intake
    diff = merged["week_truth"] - merged["week"]
    assert diff.between(-1e-9, 1 + 1e-9).all()


def test_better_from_the_scale(merged, dictionary):
    exp = [dictionary.scale(i, s).better for i, s in zip(merged["instrument"], merged["scale"],
                                                         strict=True)]
    assert merged["better"].tolist() == exp


def test_series_recovered(synth_run):
    synth, h, _ = synth_run
    st = _with_pseudonyms(synth.series_truth)
    keys = ["source_file", "client", "instrument", "scale", "session"]
    series = h.table[h.table["occasion"] == "session"]
    m = st.merge(series, left_on=[*keys, "row"], right_on=[*keys, "source_row"], how="left",
                 suffixes=("_truth", ""), indicator=True, validate="one_to_one")
    assert (m["_merge"] == "both").all()
    assert np.allclose(m["outcome"].astype(float), m["raw"])
    assert (m["phase_truth"] == m["sced_phase"]).all()
    assert (m["occasion"] == "session").all()
    n_series = (h.table["occasion"] == "session").sum()
    assert n_series == len(st)


def test_table_holds_only_truth_rows(synth_run):
    synth, h, _ = synth_run
    assert len(h.table) == len(synth.truth) + len(synth.series_truth)


def test_clients_recovered(synth_run):
    synth, h, _ = synth_run
    c = synth.clients.copy()
    c["client"] = [pseudonymise(p, x, KEY) for p, x in zip(c["programme"], c["client_id"],
                                                          strict=True)]
    m = c.merge(h.clients, on=["programme", "client"], how="outer", suffixes=("_truth", ""),
                indicator=True)
    assert (m["_merge"] == "both").all()
    assert (m["weeks_in_care_truth"] == m["weeks_in_care"]).all()
    assert (m["last_phase_truth"] == m["last_phase"]).all()
    assert (m["end_reason_truth"] == m["end_reason"]).all()
    assert (m["interventions_truth"] == m["interventions"]).all()
    assert np.allclose(m["fidelity_truth"], m["fidelity"])
    # age at the intake measurement (0-6 days after intake), rounded to 0.01 year
    assert (m["age"] - m["age_at_intake"]).abs().max() < 0.03
    assert h.clients.groupby("programme")["fidelity"].nunique().eq(1).all()
