"""The study layer: run once, keep exact results, save and load them verified."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest

from effectstudy import study
from effectstudy.errors import EffectStudyError, HarmoniseError, SpecError


@pytest.fixture(scope="module")
def demo(demo_data, demo_results, demo_saved):
    # the shared demo study and its saved folder (tests/conftest.py): read only
    return demo_data.harmonised, demo_results, demo_saved.results


def test_results_hold_every_section_of_the_spec(demo):
    _, res, _ = demo
    assert res.sections == ["programmes", "flow", "descriptives", "change", "single_case",
                            "multilevel", "slopes", "power", "dropout", "integrity"]
    for name in ("flow", "descriptives", "rc", "norm_view", "prepost", "follow_up", "sced_es",
                 "sced_rand", "ml_coefs", "slopes", "slopes_vs_mean", "slopes_cr2", "power"):
        assert len(res.frames[name]), name
    assert set(res.meta["slopes"]["per_construct"]) == {"internalising", "externalising"}


def test_flow_counts_are_exact_against_the_client_table(demo):
    h, res, _ = demo
    flow = res.frames["flow"].set_index("programme")
    by = h.clients.groupby("programme")
    assert flow["referred"].to_dict() == by.size().to_dict()
    absconded = by["end_reason"].apply(lambda s: int((s == "absconded").sum()))
    assert flow["absconded"].to_dict() == absconded.to_dict()
    # referred = completed + absconded + transferred + unknown, always; in the demo every end
    # of care is recorded, so unknown is 0
    ends = flow[["completed", "absconded", "transferred", "unknown"]]
    assert (ends.sum(axis=1) == flow["referred"]).all() and (flow["unknown"] == 0).all()


def test_slopes_are_the_joint_model_slopes(demo):
    # the per-programme slope of the joint model equals the week coefficient plus the
    # programme's interaction coefficient (checked from an independent fit of the same model)
    h, res, _ = demo
    from effectstudy import multilevel

    t = h.table
    d = t[t["session"].isna() & t["z"].notna() & (t["construct"] == "internalising")]
    fit = multilevel.fit("z ~ week * programme + (1 + week | client)", d)
    co = fit.coefficients().set_index("term")["estimate"]
    got = res.frames["slopes"].query("construct == 'internalising'").set_index("programme")
    ref = sorted(d["programme"].unique())[0]
    for pid in got.index:
        want = co["week"] + (0.0 if pid == ref else co[f"week:programme[T.{pid}]"])
        assert got.loc[pid, "estimate"] == pytest.approx(want, abs=1e-8)
        assert got.loc[pid, "ci_lower"] < want < got.loc[pid, "ci_upper"]
    vs = res.frames["slopes_vs_mean"].query("construct == 'internalising'")
    assert vs["estimate"].sum() == pytest.approx(0.0, abs=1e-10)
    assert set(vs["adjustment"]) == {"none"}


def test_norm_view_counts_the_clinical_range_from_the_cut_off(demo):
    _, res, _ = demo
    rc, nv = res.frames["rc"], res.frames["norm_view"]
    row = nv.iloc[0]
    g = rc[(rc["programme"] == row["programme"]) & (rc["instrument"] == row["instrument"])
           & (rc["scale"] == row["scale"])]
    lower = g["better"].iloc[0] == "lower"
    pre = (g["pre"] > row["cutoff"]) if lower else (g["pre"] < row["cutoff"])
    assert row["clinical_pre"] == int(pre.sum()) and row["n"] == len(g)
    assert (nv["clinical_pre"] <= nv["n"]).all() and (nv["clinical_post"] <= nv["n"]).all()


def test_save_and_load_round_trip(demo):
    _, res, folder = demo
    back = study.StudyResults.load(folder)
    assert back.sections == res.sections and back.spec == res.spec
    assert set(back.frames) == set(res.frames)
    def plain(frame):
        frame = frame.reset_index(drop=True).astype(object)
        return frame.where(frame.notna(), None)

    for name in ("flow", "slopes", "rc", "power"):
        pd.testing.assert_frame_equal(plain(back.frames[name]), plain(res.frames[name]))
    assert back.meta["programmes"]["veilig_lima"]["in_data"] is True


def test_saved_results_are_private_and_never_pickled(demo):
    _, _, folder = demo
    assert os.stat(folder).st_mode & 0o777 == 0o700
    names = sorted(p.name for p in folder.iterdir())
    assert "provenance.json" in names
    for p in folder.iterdir():
        assert p.stat().st_mode & 0o777 == 0o600, p
        assert p.suffix in (".parquet", ".json"), p
        assert not p.read_bytes().startswith(b"\x80"), p  # no pickle protocol header


def test_a_changed_or_extra_file_is_refused(demo, tmp_path):
    import shutil

    _, _, folder = demo
    copy_ = tmp_path / "r"
    shutil.copytree(folder, copy_)
    target = copy_ / "flow.parquet"
    data = bytearray(target.read_bytes())
    data[-20] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(HarmoniseError, match="sha256"):
        study.StudyResults.load(copy_)
    shutil.rmtree(copy_)
    shutil.copytree(folder, copy_)
    (copy_ / "extra.parquet").write_bytes(b"x")
    with pytest.raises(HarmoniseError, match="not recorded"):
        study.StudyResults.load(copy_)


def test_a_harmonised_folder_is_not_taken_for_results(demo, tmp_path):
    h, _, _ = demo
    h.write(tmp_path / "h", format=("parquet",))
    with pytest.raises(SpecError, match="not a study results folder"):
        study.StudyResults.load(tmp_path / "h")


def test_hooks_for_integrity_and_dropout_are_accepted(demo):
    h, _, _ = demo
    spec = {"title": "t", "integrity": {"power_nsim": 0, "dose_groups": 0}, "dropout": {}}
    res = study.run(spec, h)
    assert res.meta["integrity"]["status"] == "computed"  # see tests/study/test_integrity_section.py
    assert res.meta["dropout"]["module"] == "effectstudy.survival"
    assert "dropout" in res.sections and "integrity" in res.sections
    with pytest.raises(SpecError, match="evnt|event"):
        study.validate_spec({"title": "t", "dropout": {"evnt": "absconded"}})
    with pytest.raises(SpecError, match="intgrity|integrity"):
        study.validate_spec({"title": "t", "intgrity": {}})


def test_bad_data_is_the_package_error():
    with pytest.raises(EffectStudyError):
        study.run({"title": "t"}, 42)


def test_report_spec_module_still_importable():
    from effectstudy.report.spec import DEMO_SPEC, load_spec

    assert DEMO_SPEC is study.DEMO_SPEC and load_spec is study.load_spec


def test_results_json_has_no_nan_text(demo):
    _, _, folder = demo
    text = (folder / "provenance.json").read_text(encoding="utf-8")
    assert "NaN" not in text
    assert json.loads(text)["kind"] == "effectstudy-study-results"
    assert np.isfinite(json.loads(text)["meta"]["multilevel"]["max_week"])
