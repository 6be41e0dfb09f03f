"""Norms are chosen by the client's sex: the programme's ``sex:`` or a ``sex_column``."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
from harmonise_helpers import KEY

from effectstudy.dictionary import default_path, load_dictionary
from effectstudy.harmonise import harmonise

PROGRAMME = """
  gemengd:
    name: Gemengde groep
    provider: fictitious, for the test
    setting: open residential group
    security: open
    duration_weeks:
      typical: {value: 26, source: UNVERIFIED}
      maximum: {value: 52, source: UNVERIFIED}
    age_range: {min: 12, max: 18, source: UNVERIFIED}
    group: boys and girls
    sex: mixed
    reach: regional
    phases:
      - {id: verblijf, label: Verblijf, canonical: treatment, typical_weeks: {value: 26, source: UNVERIFIED}}
"""

SOURCE = """programme: gemengd
files:
  - id: metingen
    path: gemengd.csv
    format: csv
    csv: {sep: ",", decimal: ".", encoding: utf-8}
    layout: occasion_rows
    client_id: nr
    identifiers: [geboren]
    birth_date: geboren
    occasion_column: meting
    date_column: datum
    sex_column: geslacht
    occasions:
      voor: {occasion: intake}
    measures:
      - {column: sdq_int, instrument: SDQ-S, scale: internalising, construct: internalising}
      - {column: ysr_int, instrument: YSR, scale: internalising_t, construct: internalising}
    labels:
      sex: {V: female, M: male}
"""


def _setup(tmp_path: Path, sex: str = "mixed") -> tuple[Path, Path]:
    d = tmp_path / "dictionary"
    shutil.copytree(Path(default_path()).resolve(), d)
    with (d / "programmes.yaml").open("a", encoding="utf-8") as fh:
        fh.write(PROGRAMME.replace("sex: mixed", f"sex: {sex}"))
    (d / "sources" / "gemengd.yaml").write_text(SOURCE, encoding="utf-8")
    data = tmp_path / "exports"
    data.mkdir()
    pd.DataFrame({
        "nr": ["a1", "a2", "a3", "a4"], "geboren": ["2008-01-01"] * 4,
        "meting": ["voor"] * 4, "datum": ["2023-01-01"] * 4,
        "geslacht": ["V", "M", "", "X"], "sdq_int": [9, 9, 9, 9], "ysr_int": [60, 60, 60, 60],
    }).to_csv(data / "gemengd.csv", index=False)
    return d, data


def test_mixed_programme_norms_follow_the_sex_column(tmp_path):
    d, data = _setup(tmp_path)
    h = harmonise(data, load_dictionary(d), key=KEY)
    t = h.table.merge(h.clients[["client", "sex"]], on="client")
    sdq = t[t["instrument"] == "SDQ-S"].set_index("source_row")
    ysr = t[t["instrument"] == "YSR"].set_index("source_row")
    # a girl of 15 gets the girls' SDQ norm (mean 4.1, sd 3.2)
    assert sdq.loc[2, "z"] == (9 - 4.1) / 3.2 and sdq.loc[2, "sex"] == "female"
    # a boy: no norm for boys, no z
    assert pd.isna(sdq.loc[3, "z"]) and sdq.loc[3, "sex"] == "male"
    # no sex value, and an undeclared label: no sex-specific norm, with a note
    for row in (4, 5):
        assert pd.isna(sdq.loc[row, "z"]) and pd.isna(sdq.loc[row, "sex"])
        assert "sex unknown" in sdq.loc[row, "note"] and "no sex-specific norm" in sdq.loc[
            row, "note"]
        # a norm for both sexes still applies, and says so
        assert ysr.loc[row, "z"] == 1.0 and "both sexes" in ysr.loc[row, "note"]
    assert ysr.loc[2, "z"] == 1.0 and pd.isna(ysr.loc[2, "note"])
    log = h.rejections
    bad = log[(log["column"] == "geslacht")]
    assert bad["row"].tolist() == [5] and bad["kind"].tolist() == ["unknown_label"]
    assert bad["value"].isna().all()  # an undeclared label is never echoed


def test_female_programme_applies_its_sex_to_every_client(tmp_path):
    d, data = _setup(tmp_path, sex="female")
    h = harmonise(data, load_dictionary(d), key=KEY)
    sex = h.clients.set_index("client")["sex"]
    # the column says M for one client: the export's value wins over the programme's
    assert sorted(sex.fillna("none")) == ["female", "female", "female", "male"]
    sdq = h.table[h.table["instrument"] == "SDQ-S"].set_index("source_row")
    assert sdq.loc[4, "z"] == (9 - 4.1) / 3.2  # no sex value: the programme's sex (girls)
