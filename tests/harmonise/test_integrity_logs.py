"""Delivery logs and fidelity ratings through the harmoniser (issue 12 with issue 10's rules).

Expected values come from the raw CSVs read here with pandas and from the generator
(:func:`effectstudy.synth_integrity.generate_integrity`), never from the harmoniser.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from harmonise_helpers import KEY

from effectstudy.harmonise import harmonise, read_harmonised
from effectstudy.harmonise.pseudonym import pseudonymise
from effectstudy.synth_integrity import generate_integrity

PROG = "hoenderloo"
LOG = f"{PROG}_delivery_log.csv"
RATINGS = f"{PROG}_fidelity_ratings.csv"
FIELDS = ["week", "phase", "component", "delivered", "minutes"]


def _raw_lines(path) -> int:
    """Data lines of a CSV, counted without a CSV parser."""
    return sum(1 for line in path.read_text(encoding="utf-8").splitlines()[1:] if line.strip())


def test_harmonised_delivery_is_the_generated_log_with_keyed_pseudonyms(synth_run, dictionary):
    synth, h, raw = synth_run
    for prog in sorted(dictionary.sources):
        path = raw / f"{prog}_delivery_log.csv"
        sf = next(f for f in dictionary.sources[prog].files if f.layout == "delivery")
        src = pd.read_csv(path, dtype={"client_id": str})
        got = h.delivery[h.delivery["programme"] == prog].reset_index(drop=True)
        assert len(got) == len(src) == _raw_lines(path)
        want = [pseudonymise(prog, c, KEY) for c in src["client_id"]]
        assert got["client"].tolist() == want
        for col in FIELDS:
            assert got[col].tolist() == src[col].tolist(), (prog, col)
        assert got["source_row"].tolist() == list(range(2, len(src) + 2))
        # the rows are the generator's own rows (the synth only renames clients and
        # drops weeks after the end of care)
        n = synth.clients.groupby("programme").size()
        gen = generate_integrity(dictionary, seed=2026,
                                 n_clients={p: max(int(n.get(p, 0)), 2)
                                            for p in dictionary.programmes}).logs_raw
        gen = gen[gen["programme"] == prog]
        key = lambda f: list(map(tuple, f[FIELDS].astype(str).to_numpy()))  # noqa: E731
        assert pd.Series(key(src)).isin(set(key(gen))).all()
        # every log client is a client of the score exports (they link)
        assert set(got["client"]) <= set(h.clients.loc[h.clients["programme"] == prog, "client"])
        assert sf.client_id == "client_id"
    # ratings: rater and target ids are keyed pseudonyms with their own prefixes
    fr = h.fidelity_ratings
    assert len(fr) == sum(_raw_lines(raw / f"{p}_fidelity_ratings.csv") for p in dictionary.sources)
    assert fr["rater"].str.match(r"^R[A-Z]{2}-[0-9a-f]{20}$").all()
    assert fr["target"].str.match(r"^T[A-Z]{2}-[0-9a-f]{20}$").all()
    raw_raters = set(pd.read_csv(raw / RATINGS)["rater"])
    assert not raw_raters & set(fr["rater"])
    acc = h.provenance["integrity"]
    assert all(v["in"] == v["out"] + v["rejected"] for v in acc.values())


def test_round_trip_through_the_written_output(synth_run, tmp_path):
    _, h, _ = synth_run
    h.write(tmp_path / "out", format=("parquet", "csv"))
    back = read_harmonised(tmp_path / "out")
    pd.testing.assert_frame_equal(back.delivery, h.delivery)
    pd.testing.assert_frame_equal(back.fidelity_ratings, h.fidelity_ratings)


def _hoenderloo_copy(raw, tmp_path):
    """The hoenderloo score export, delivery log and ratings copied to a new folder; the
    folder, the delivery log, its first client id and its number of rows."""
    folder = tmp_path / "raw"
    folder.mkdir()
    for name in ("hoenderloo_metingen.sav", LOG, RATINGS):
        shutil.copy(raw / name, folder / name)
    log = pd.read_csv(folder / LOG, dtype=str)
    return folder, log, log["client_id"].iloc[0], len(log)


@pytest.fixture
def bad(synth_run, tmp_path):
    """The hoenderloo exports with bad rows appended to the delivery log and the ratings."""
    folder, log, cid, n0 = _hoenderloo_copy(synth_run[2], tmp_path)
    extra = pd.DataFrame([
        # row n0+2: component not in the dictionary (a name typed in the cell)
        {"week": "3", "phase": "observatie", "component": "Naomi Jansen", "delivered": "1",
         "minutes": "30", "client_id": cid},
        # row n0+3: negative minutes
        {"week": "3", "phase": "observatie", "component": "observation", "delivered": "1",
         "minutes": "-5", "client_id": cid},
        # row n0+4: a week long after the end of care
        {"week": "900", "phase": "observatie", "component": "observation", "delivered": "1",
         "minutes": "30", "client_id": cid},
        # row n0+5: a phone number where the minutes go
        {"week": "3", "phase": "observatie", "component": "observation", "delivered": "1",
         "minutes": "06-41693266", "client_id": cid},
        # row n0+6: an unknown phase
        {"week": "3", "phase": "Bij Naomi thuis", "component": "observation", "delivered": "1",
         "minutes": "30", "client_id": cid},
    ])
    log = pd.concat([log, extra], ignore_index=True)
    log["Naomi Jansen 641693266"] = ""  # an undeclared column whose header is an identifier
    log.to_csv(folder / LOG, index=False)
    rt = pd.read_csv(folder / RATINGS, dtype=str)
    r0 = len(rt)
    first = rt.iloc[0].to_dict()
    rt = pd.concat([rt, pd.DataFrame([
        {**first, "item": "Naomi vertelde over thuis"},  # not on the checklist
        {**first, "target": "x-month99", "score": "99"},  # outside the scoring range
        dict(first),  # the same target x rater x item again
        {**first, "target": "x-month98", "rater_role": "moeder van Naomi"},  # unknown role
    ])], ignore_index=True)
    rt.to_csv(folder / RATINGS, index=False)
    h = harmonise(folder, key=KEY)
    return h, folder, n0, r0


def test_bad_rows_are_logged_with_file_row_column_and_reason(bad):
    h, folder, n0, r0 = bad
    rej = h.rejections
    logrej = rej[rej["file"] == LOG]
    rows = logrej[logrej["row"].notna()]
    got = {(int(r), c, k) for r, c, k in zip(rows["row"], rows["column"], rows["kind"],
                                             strict=True)}
    want = {(n0 + 2, "component", "component_not_in_programme"),
            (n0 + 3, "minutes", "delivery_out_of_range"),
            (n0 + 4, "week", "delivery_outside_care"), (n0 + 5, "minutes", "non_numeric"),
            (n0 + 6, "phase", "unknown_phase")}
    assert want <= got
    undeclared = logrej[logrej["kind"] == "undeclared_columns"]
    assert len(undeclared) == 1 and undeclared["row"].isna().all()
    assert (logrej.loc[logrej["kind"] != "undeclared_columns", "reason"].str.len() > 0).all()
    rrej = rej[rej["file"] == RATINGS]
    kinds = dict(zip(rrej["row"].astype(int), rrej["kind"], strict=True))
    assert kinds == {r0 + 2: "item_not_on_checklist", r0 + 3: "rating_out_of_range",
                     r0 + 4: "duplicate", r0 + 5: "unknown_rater_role"}
    # the integrity checks have kinds of their own, not the score exports' kinds
    from effectstudy.harmonise.log import INTEGRITY_KINDS, KINDS

    integrity_rows = rej[rej["file"].isin([LOG, RATINGS])]
    own = integrity_rows[integrity_rows["kind"].isin(INTEGRITY_KINDS)]
    assert len(own) == 6 and set(INTEGRITY_KINDS) <= set(KINDS)
    assert not integrity_rows["kind"].isin(["unknown_label", "implausible_value",
                                            "missing_score", "out_of_range"]).any()
    assert (rej.loc[rej["file"].isin([LOG, RATINGS]), "scores"] == 0).all()


def test_no_identifier_in_any_written_file(bad, tmp_path):
    h, folder, _, _ = bad
    h.write(tmp_path / "out", format=("parquet", "csv"))
    raw_ids = set(pd.read_csv(folder / LOG, dtype=str)["client_id"])
    raters = set(pd.read_csv(folder / RATINGS, dtype=str)["rater"])
    needles = ["Naomi", "641693266", "41693266", "x-month99", *raw_ids, *raters]
    for p in (tmp_path / "out").iterdir():
        text = p.read_bytes().decode("latin-1")
        for needle in needles:
            if needle.isdigit() and p.suffix == ".parquet":
                continue  # digit runs occur inside binary floats
            assert needle not in text, (p.name, needle)


def test_rows_in_equals_rows_out_plus_rejected_per_file(bad):
    h, folder, _, _ = bad
    acc = h.provenance["integrity"]
    for name, frame in ((LOG, h.delivery), (RATINGS, h.fidelity_ratings)):
        lines = _raw_lines(folder / name)  # independent of the CSV parser
        rejected = int(((h.rejections["file"] == name)
                        & (h.rejections["kind"] != "undeclared_columns")).sum())
        kept = int((frame["source_file"] == name).sum())
        assert acc[name]["in"] == lines == kept + rejected
        assert acc[name]["out"] == kept and acc[name]["rejected"] == rejected


# --------------------------------------------------------------------------- #
# Run-wide pseudonym collisions also cover clients seen only in a delivery log
# --------------------------------------------------------------------------- #
LOG_ONLY = ("88001234", "88005678")  # two girls in the log but in no score export


@pytest.fixture
def log_only(synth_run, tmp_path):
    """The hoenderloo exports with two log-only clients appended to the delivery log."""
    folder, log, cid, n0 = _hoenderloo_copy(synth_run[2], tmp_path)
    extra = pd.DataFrame([{"week": "2", "phase": "observatie", "component": "observation",
                           "delivered": "1", "minutes": "30", "client_id": c} for c in LOG_ONLY])
    pd.concat([log, extra], ignore_index=True).to_csv(folder / LOG, index=False)
    return folder, cid, n0


def test_log_only_clients_are_harmonised_without_a_collision(log_only):
    folder, _, n0 = log_only
    h = harmonise(folder, key=KEY)
    got = h.delivery[h.delivery["source_row"] >= n0 + 2]
    assert got["client"].tolist() == [pseudonymise(PROG, c, KEY) for c in LOG_ONLY]
    # they are in no score export: the log is their only trace
    assert not set(got["client"]) & set(h.clients["client"])


@pytest.mark.parametrize("other", ["scored", "log_only"])
def test_collision_of_a_log_only_client_stops_the_run(log_only, monkeypatch, other):
    import effectstudy.harmonise.integrity as integrity
    from effectstudy.errors import HarmoniseError

    folder, cid, n0 = log_only
    real = integrity.pseudonymise
    if other == "scored":
        # the first log-only girl gets the pseudonym of a girl of the score export
        forced = {LOG_ONLY[0]: real(PROG, cid, KEY)}
        where = rf"\S+ row \d+ and {LOG} row {n0 + 2}"
    else:
        # both log-only girls get one pseudonym that no scored girl has
        forced = dict.fromkeys(LOG_ONLY, "HO-" + "0" * 20)
        where = rf"{LOG} row {n0 + 2} and {LOG} row {n0 + 3}"
    monkeypatch.setattr(integrity, "pseudonymise",
                        lambda prog, rid, key: forced.get(str(rid)) or real(prog, rid, key))
    with pytest.raises(HarmoniseError, match=rf"share one pseudonym \({where}\)") as err:
        harmonise(folder, key=KEY)
    for raw_id in (cid, *LOG_ONLY):
        assert raw_id not in str(err.value)


# --------------------------------------------------------------------------- #
# Rater and target pseudonyms join the run-wide collision check (one space each)
# --------------------------------------------------------------------------- #
STAFF = {"rater": "R", "target": "T"}
_HEX_RUN = r"[0-9a-f]{20}"


def _force(monkeypatch, forced: dict[tuple[str, str], str]) -> None:
    """Make ``staff_pseudonym`` return ``forced[(prefix, raw id)]`` where given."""
    import effectstudy.harmonise.integrity as integrity

    real = integrity.staff_pseudonym

    def colliding(programme, raw, key, prefix="R"):
        return forced.get((prefix, str(raw))) or real(programme, raw, key, prefix)

    monkeypatch.setattr(integrity, "staff_pseudonym", colliding)


@pytest.mark.parametrize("field", sorted(STAFF))
def test_rater_or_target_collision_stops_the_run(synth_run, tmp_path, monkeypatch, field):
    import re

    from effectstudy.errors import HarmoniseError

    folder, *_ = _hoenderloo_copy(synth_run[2], tmp_path)
    rt = pd.read_csv(folder / RATINGS, dtype=str)
    one, two = rt[field].drop_duplicates().iloc[:2]  # two different raters (targets)
    # source rows: header on line 1, so data index i is row i + 2
    first_one = int(rt.index[rt[field] == one][0]) + 2
    first_two = int(rt.index[rt[field] == two][0]) + 2
    a, b = sorted((first_one, first_two))
    fake = f"{STAFF[field]}HO-" + "0" * 20
    _force(monkeypatch, {(STAFF[field], one): fake, (STAFF[field], two): fake})
    with pytest.raises(HarmoniseError) as err:
        harmonise(folder, key=KEY)
    assert type(err.value) is HarmoniseError
    msg = str(err.value)
    assert re.search(rf"two different {field} ids share one pseudonym "
                     rf"\({re.escape(RATINGS)} row {a} and {re.escape(RATINGS)} row {b}\)", msg)
    assert (err.value.file, err.value.row, err.value.column) == (RATINGS, b, field)
    assert f"column '{field}'" in msg
    # neither raw id nor any pseudonym (forced or real) is shown
    for raw_id in (one, two):
        assert raw_id not in msg
    assert fake not in msg and not re.search(_HEX_RUN, msg)


def test_collision_with_a_row_that_validation_rejects_still_stops_the_run(
        synth_run, tmp_path, monkeypatch):
    # A new rater forced onto the first rater's pseudonym: without the check, the
    # appended row would be taken for a second rating of the same target, rater and
    # item and dropped as a "duplicate". The check sees every row read, so it stops.
    import re

    from effectstudy.errors import HarmoniseError

    folder, *_ = _hoenderloo_copy(synth_run[2], tmp_path)
    rt = pd.read_csv(folder / RATINGS, dtype=str)
    r0 = len(rt)
    first = rt.iloc[0].to_dict()
    newcomer = "Naomi Jansen (stagiair)"
    pd.concat([rt, pd.DataFrame([{**first, "rater": newcomer}])],
              ignore_index=True).to_csv(folder / RATINGS, index=False)
    fake = "RHO-" + "0" * 20
    _force(monkeypatch, {("R", first["rater"]): fake, ("R", newcomer): fake})
    with pytest.raises(HarmoniseError, match=rf"two different rater ids share one pseudonym "
                       rf"\({re.escape(RATINGS)} row 2 and {re.escape(RATINGS)} "
                       rf"row {r0 + 2}\)") as err:
        harmonise(folder, key=KEY)
    assert err.value.row == r0 + 2 and err.value.column == "rater"
    msg = str(err.value)
    assert "Naomi" not in msg and first["rater"] not in msg and not re.search(_HEX_RUN, msg)


def test_rater_collision_across_programmes_stops_the_run(synth_run, dictionary, monkeypatch):
    import re

    import effectstudy.harmonise.integrity as integrity
    from effectstudy.errors import HarmoniseError

    raw = synth_run[2]
    real = integrity.staff_pseudonym
    first: dict[str, str] = {}

    def colliding(programme, rid, key, prefix="R"):
        # the first rater of every programme gets one pseudonym
        if prefix == "R" and first.setdefault(programme, str(rid)) == str(rid):
            return "RZZ-" + "0" * 20
        return real(programme, rid, key, prefix)

    monkeypatch.setattr(integrity, "staff_pseudonym", colliding)
    with pytest.raises(HarmoniseError) as err:
        harmonise(raw, dictionary, key=KEY)
    msg = str(err.value)
    m = re.search(r"two different rater ids share one pseudonym \((\S+) row (\d+) and (\S+) "
                  r"row (\d+)\)", msg)
    assert m is not None, msg
    progs = sorted(first)
    assert len(progs) == 2  # stopped in the second programme's ratings
    assert (m.group(1), m.group(3)) == tuple(f"{p}_fidelity_ratings.csv" for p in progs)
    # the rows are those where each programme's first rater first appears
    for prog, group in zip(progs, (2, 4), strict=True):
        rt = pd.read_csv(raw / f"{prog}_fidelity_ratings.csv", dtype=str)
        assert int(m.group(group)) == int(rt.index[rt["rater"] == first[prog]][0]) + 2
    assert err.value.column == "rater"
    for rid in first.values():
        assert rid not in msg
    assert not re.search(_HEX_RUN, msg)


def test_distinct_raters_and_targets_stay_distinct(synth_run, dictionary):
    _, h, raw = synth_run
    fr = h.fidelity_ratings
    seen: dict[str, set[str]] = {f: set() for f in STAFF}
    for prog in sorted(dictionary.sources):
        name = f"{prog}_fidelity_ratings.csv"
        rt = pd.read_csv(raw / name, dtype=str)
        rt["source_row"] = range(2, len(rt) + 2)
        got = fr[fr["source_file"] == name]
        assert len(got) > 0
        both = got.merge(rt, on="source_row", suffixes=("", "_raw"), validate="one_to_one")
        assert len(both) == len(got)
        for f in STAFF:
            pairs = both[[f, f"{f}_raw"]].drop_duplicates()
            # one pseudonym per raw id and one raw id per pseudonym: nothing merged
            assert pairs[f].is_unique and pairs[f"{f}_raw"].is_unique
            assert both[f].nunique() == both[f"{f}_raw"].nunique() >= 2
            assert not seen[f] & set(pairs[f])  # programmes do not share one either
            seen[f] |= set(pairs[f])
    assert not seen["rater"] & seen["target"]


def test_staff_spaces_are_separate_and_link_across_files():
    from effectstudy.errors import HarmoniseError
    from effectstudy.harmonise.core import _check_staff_collisions
    from effectstudy.harmonise.integrity import IntegrityResult

    def res(file, rows, raters, targets):
        return IntegrityResult(file, PROG, "fidelity_ratings", pd.DataFrame(), pd.DataFrame(),
                               len(rows), tuple(rows), {"rater": raters, "target": targets})

    cols = {"rater": "beoordelaar", "target": "doel"}
    spaces: dict = {}
    # a rater and a target with one pseudonym text but different owners: separate spaces
    _check_staff_collisions(spaces, res("a.csv", [2, 3], ("P", "Q"), ("P", "P")),
                            {"rater": {2: "r1", 3: "r2"}, "target": {2: "t1", 3: "t1"}}, cols)
    # the same rater in another file under the same pseudonym links up
    _check_staff_collisions(spaces, res("b.csv", [5], ("P",), ("S",)),
                            {"rater": {5: "r1"}, "target": {5: "t9"}}, cols)
    # a row without an id (rejected later as rating_missing_id) is not an owner
    _check_staff_collisions(spaces, res("b.csv", [6], (None,), ("S",)),
                            {"rater": {}, "target": {6: "t9"}}, cols)
    with pytest.raises(HarmoniseError, match=r"two different target ids share one pseudonym "
                       r"\(b.csv row 5 and c.csv row 9\)") as err:
        _check_staff_collisions(spaces, res("c.csv", [9], ("Q",), ("S",)),
                                {"rater": {9: "r2"}, "target": {9: "t3"}}, cols)
    assert (err.value.file, err.value.row, err.value.column) == ("c.csv", 9, "doel")
