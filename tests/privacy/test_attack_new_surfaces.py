"""Attack corpus on the surfaces added after issue 10's 107 attempts.

The attacker of issue 10 comes back with the same identifier forms (BSN with spaces or
dots, birth dates in words, names without diacritics, two-letter names, third-party
names, names in headers, sheet names and file names, telephone numbers) and plants them
where the new code reads: the scaffolder's drafts (``effectstudy dictionary new-source``
and ``new-programme``), events in the exports (absconding episodes, end-of-care
reasons), undescribed files in the export folder, the study results folder
(``effectstudy run`` / :meth:`StudyResults.save` / :meth:`StudyResults.load`), YAML
tags in ``events.yaml`` and CSV injection in every CSV the new code writes. Each test
is one attack and asserts the safe behaviour; a positive control guards every grep
that could silently find nothing.

The secret values are distinctive strings that no code path produces on its own.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_attack_report as _tar  # noqa: I001
import yaml
from harmonise_helpers import write_egoversterkend, write_pinq_gesloten
from test_attack_report import (
    _build_attack,
    _dossier_attack,
    _flow,
    dossiers,  # noqa: F401  (fixture)
    public,  # noqa: F401  (fixture)
)
from typer.testing import CliRunner

from effectstudy import study
from effectstudy.dictionary import load_dictionary, load_integrity
from effectstudy.errors import DictionaryError, EffectStudyError, HarmoniseError, SpecError
from effectstudy.harmonise import EVENT_KINDS, harmonise
from effectstudy.scaffold import draft_programme, draft_source, header_is_safe
from effectstudy.table import PROVENANCE, sha256_bytes

KEY = b"attack-new-surfaces-key-0123456789"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
runner = CliRunner()

# Identifier forms of issue 10 (distinctive: no code path writes them by itself).
BSN_SPACED = "641 693 266"
BSN_DOTTED = "641.693.266"
BSN_PLAIN = "641693266"
BIRTH_WORDS = "7 nov 2009"
NAME_PLAIN = "Anais Ozturkqx"  # no diacritics
NAME_TWO = "Bo"
THIRD_PARTY = "Kevin Dragomirqz"  # the exploiter's name
PHONE = "06-48213977"
PHONE_SPACED = "06 4821 3977"
WIDE_NAME = "Mila van der Lindenqq"
SECRETS = [BSN_SPACED, BSN_DOTTED, BSN_PLAIN, BIRTH_WORDS, NAME_PLAIN, *NAME_PLAIN.split(),
           THIRD_PARTY, *THIRD_PARTY.split(), PHONE, PHONE_SPACED, "48213977", WIDE_NAME,
           "Lindenqq"]


@pytest.fixture(autouse=True)
def _no_home_key(tmp_path_factory, monkeypatch):
    """Never touch a real ~/.config key."""
    monkeypatch.setenv("EFFECTSTUDY_KEY_FILE", str(tmp_path_factory.mktemp("k") / "p.key"))
    monkeypatch.delenv("EFFECTSTUDY_PSEUDONYM_KEY", raising=False)


def _leaks(text: str, secrets=SECRETS) -> list[str]:
    return [s for s in secrets if s in text]


def _two_letter_name_shown(text: str) -> bool:
    """``Bo`` as a word of its own (not inside ``Bos`` or ``bo`` of a longer word)."""
    import re

    return re.search(r"(?<![A-Za-z])Bo(?![A-Za-z])", text) is not None


def _files_text(folder: Path) -> str:
    out = []
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            out.append(data.decode("utf-8", "replace"))
            out.append(data.decode("latin-1"))
            if p.suffix == ".parquet":
                out.append(pd.read_parquet(p).astype(str).to_csv())
    return "\n".join(out)


# --------------------------------------------------------------------------- #
# Scaffolding: headers, sheet names, file names, label cells, interventions
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("header", [
    "CRIES_Mila van der Lindenqq",   # the wide-Excel header of issue 10 item 6
    "Naomi Jansen 641693266",
    "M. Vos",
    "J.Jansenqq",
    "Milou Vos (moeder)",
    "Mila_Vosqq",
    "7 nov 2009",
    "CRIES_Anais",
    "Naam Anais Ozturkqx",            # a field word must not launder a name beside it
    "Bo",
    "Ozturkqx",
    "641 693 266",
    "06 4821 3977",
    # lower case: no capital gives a name away, so only a whitelist of column words holds
    "mila van der lindenqq",
    "anais ozturkqx",
    "bo",
    "cries_anais",
    "naam anais ozturkqx",
    "van der berg",
    "m.v.",
    "MV",
    "kevin dragomirqz",
    "client 510001",                  # a pivoted export: a column per client
    "datum 14-03-2008",
    "anais.ozturkqx@gmail.com",
    "0648213977",
])
def test_identifier_looking_headers_are_not_safe_to_show(header):
    assert not header_is_safe(header, ("cries", "kjts"))


@pytest.mark.parametrize("header", ["CRIES_T0", "KJTS_T1", "CRIES totaal", "Naam cliënt",
                                    "Geboortedatum", "Reden einde", "Meetmoment", "Overige info",
                                    "Sessie 3", "Weken in zorg", "cries_t0", "Uitstroomreden",
                                    "Geb.datum", "kids_psy_t", "BSN-nummer", "E-mail"])
def test_ordinary_headers_stay_visible(header):
    # positive control: the header rule is not "hide everything"
    assert header_is_safe(header, ("cries", "kjts"))


def _malicious_wide_export(path: Path) -> Path:
    """A wide workbook whose sheet name, headers and cells hold identifiers."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Anais Ozturkqx"
    ws.append(["Cliëntnummer", "Naam", "BSN", "Geboortedatum", "Telefoon", "Opmerkingen",
               "Interventies", "Meetmoment", "CRIES_T0", "CRIES_T1",
               f"CRIES_{WIDE_NAME}", "M. Vos", "Overige info"])
    fills = [
        ("Anais Ozturkqx", BSN_SPACED, BIRTH_WORDS, PHONE_SPACED,
         f"belt met {THIRD_PARTY}", f"gesprek met {THIRD_PARTY};traumabehandeling"),
        ("Bo", BSN_DOTTED, "14-03-2008", PHONE, f"moeder {NAME_PLAIN} belt {PHONE}",
         f"gesprek met {THIRD_PARTY};traumabehandeling"),
        ("Fleur Mulderqx", BSN_PLAIN, "02-11-2007", "0612345671", "", "onderwijs"),
        ("Sanne Bakkerzz", "123456782", "30-06-2009", "0623456782", "weggelopen",
         "traumabehandeling"),
    ]
    for i, (name, bsn, birth, phone, note, interv) in enumerate(fills):
        for occ in ("Voormeting", "Nameting"):
            ws.append([510001 + i, name, bsn, birth, phone, note, interv, occ,
                       20 + i, 15 + i, 3, 4, "x"])
    wb.save(path)
    return path


def test_new_source_draft_shows_no_identifier(tmp_path):
    export = _malicious_wide_export(tmp_path / "rom_export.xlsx")
    text, findings = draft_source(export, programme="nieuw")
    shown = text + "\n" + "\n".join(str(f) for f in findings)
    # positive control: the draft did read the export (scores and a safe header shown)
    assert "CRIES_{occasion}" in shown or "CRIES_T0" in shown
    assert "Overige info" in shown
    assert _leaks(shown) == []
    assert not _two_letter_name_shown(shown)
    # the draft is YAML that loads without tags
    assert isinstance(yaml.safe_load(text), dict)


def test_new_source_cli_output_and_console_show_no_identifier(tmp_path):
    from effectstudy.cli import app

    export = _malicious_wide_export(tmp_path / "rom_export.xlsx")
    out = tmp_path / "draft.yaml"
    res = runner.invoke(app, ["dictionary", "new-source", str(export), "--programme", "nieuw",
                              "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = out.read_text(encoding="utf-8")
    assert "CRIES" in written  # positive control
    assert _leaks(written + res.output) == []
    assert (out.stat().st_mode & 0o777) == 0o600
    # a draft never overwrites: the second call fails and leaves the file as it was
    again = runner.invoke(app, ["dictionary", "new-source", str(export), "--programme", "nieuw",
                                "--out", str(out)])
    assert again.exit_code == 1 and out.read_text(encoding="utf-8") == written


def test_file_name_holding_a_name_is_not_shown_in_the_draft(tmp_path):
    export = _malicious_wide_export(tmp_path / f"dossier {NAME_PLAIN}.xlsx")
    text, findings = draft_source(export, programme="nieuw")
    shown = text + "\n".join(str(f) for f in findings)
    assert "path: TODO" in text  # the name is withheld, and the user told so
    assert _leaks(shown) == []


def test_occasion_labels_holding_names_or_phones_are_not_listed(tmp_path):
    rows = []
    for i in range(6):
        for occ in ("T0", f"T1 {NAME_PLAIN}" if i == 0 else "T1",
                    f"na bellen {PHONE}" if i == 1 else "T2"):
            rows.append({"client": 700 + i, "meetmoment": occ, "CRIES totaal": 10 + i})
    path = tmp_path / "long.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    text, findings = draft_source(path, programme="nieuw")
    shown = text + "\n".join(str(f) for f in findings)
    assert "not a closed list" in shown  # the labels are counted, not listed
    assert _leaks(shown) == []


def test_new_programme_name_cannot_inject_yaml(tmp_path):
    evil = 'x\n  provider: !!python/object/apply:os.system ["id"]\n  # =HYPERLINK("a")'
    text = draft_programme("nieuw", name=evil)
    data = yaml.safe_load(text)  # a tag would raise ConstructorError here
    entry = data["programmes"]["nieuw"] if "programmes" in data else data["nieuw"]
    assert entry["name"] == evil
    assert "!!python" not in text.split("name:")[0]


def test_dictionary_check_refuses_a_python_tag_in_events_yaml(tmp_path):
    folder = tmp_path / "dict"
    shutil.copytree(load_dictionary().path, folder)
    ev = folder / "events.yaml"
    marker = tmp_path / "ran"
    ev.write_text(ev.read_text(encoding="utf-8") + textwrap.dedent(f"""\
        boom: !!python/object/apply:os.system ["touch {marker}"]
        """), encoding="utf-8")
    with pytest.raises(DictionaryError) as err:
        load_dictionary(folder)
    assert "events.yaml" in str(err.value)
    assert not marker.exists()


def test_dictionary_check_refuses_a_python_tag_in_fidelity_yaml(tmp_path):
    folder = tmp_path / "dict"
    shutil.copytree(load_dictionary().path, folder)
    fy = folder / "fidelity.yaml"
    marker = tmp_path / "ran"
    fy.write_text(fy.read_text(encoding="utf-8") + textwrap.dedent(f"""\
        boom: !!python/object/apply:os.system ["touch {marker}"]
        """), encoding="utf-8")
    with pytest.raises(DictionaryError) as err:
        load_integrity(folder)
    assert "fidelity.yaml" in str(err.value)
    assert not marker.exists()


# --------------------------------------------------------------------------- #
# Events in the exports
# --------------------------------------------------------------------------- #
def _events_export(folder: Path, plant: dict[str, str]) -> Path:
    base = write_pinq_gesloten(folder)
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    for col in ("weglopen_start_1", "weglopen_terug_1", "contact_uitbuiter_1", "aangifte_1",
                "einddatum"):
        df[col] = None
    first = df.index[~df.duplicated("Cliëntnummer")]
    for row, (col, value) in zip(first.tolist() * 3, plant.items(), strict=False):
        df.loc[row, col] = value
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    return base


@pytest.mark.parametrize("value", [BIRTH_WORDS, BSN_SPACED, BSN_DOTTED, NAME_PLAIN, NAME_TWO,
                                   PHONE, PHONE_SPACED, "07-11-2009 Anais"])
def test_identifiers_in_event_date_cells_never_reach_a_written_file(tmp_path, value):
    raw = tmp_path / "raw"
    raw.mkdir()
    _events_export(raw, {"weglopen_start_1": value, "contact_uitbuiter_1": value,
                         "einddatum": value})
    h = harmonise(raw, key=KEY)
    rej = h.rejections[h.rejections["kind"].isin(EVENT_KINDS)]
    assert len(rej) >= 3  # positive control: the planted cells were read and rejected
    written = h.write(tmp_path / "out", format=("parquet", "csv"))
    text = _files_text(tmp_path / "out") + h.rejections.astype(str).to_csv()
    if value == NAME_TWO:  # as a word of its own (``Bo`` is inside ``Bool`` etc.)
        assert not _two_letter_name_shown(text), [p.name for p in written]
    else:
        assert value not in text, [p.name for p in written]


def test_end_reason_label_with_a_third_party_name_is_not_logged(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    base = _events_export(raw, {"einddatum": "01-09-2023"})
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    df["Reden einde"] = f"opgehaald door {THIRD_PARTY}"
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    h = harmonise(raw, key=KEY)
    assert (h.rejections["column"] == "Reden einde").any()  # positive control
    h.write(tmp_path / "out", format=("parquet", "csv"))
    assert _leaks(_files_text(tmp_path / "out") + h.rejections.astype(str).to_csv()) == []


def test_formula_cells_in_events_and_labels_are_escaped_in_every_csv(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    base = _events_export(raw, {"weglopen_start_1": "=HYPERLINK(\"http://x\")",
                                "aangifte_1": "+cmd|' /C calc'!A0",
                                "einddatum": "@SUM(1+1)"})
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    df["Reden einde"] = "-2+3+cmd|' /C calc'!A0"
    df["Meetmoment"] = df["Meetmoment"].where(df.index % 2 == 0, "=1+1")
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    h = harmonise(raw, key=KEY)
    written = h.write(tmp_path / "out", format=("parquet", "csv"))
    csvs = [p for p in written if p.suffix == ".csv"]
    assert any(p.name.startswith("events") for p in csvs)
    n_cells = 0
    for p in csvs:
        for row in pd.read_csv(p, dtype=str, keep_default_na=False).itertuples(index=False):
            for cell in row:
                n_cells += 1
                if cell and cell[0] in FORMULA_START:
                    float(cell)  # only a plain number may start with + or -
    assert n_cells > 50


def test_undescribed_file_names_stay_out_of_written_files(tmp_path):
    """A file in the export folder named after a client (the user's own listing) may be
    named on the console, but never in a written file (accounting, provenance)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    write_pinq_gesloten(raw)
    (raw / f"verslag {NAME_PLAIN} {BSN_PLAIN}.docx").write_bytes(b"not an export")
    h = harmonise(raw, key=KEY)
    h.write(tmp_path / "out", format=("parquet", "csv"))
    assert len(h.table) > 0  # positive control
    assert _leaks(_files_text(tmp_path / "out")) == []


# --------------------------------------------------------------------------- #
# Study results folder: no code from files, verified, atomic
# --------------------------------------------------------------------------- #
def _small_results() -> study.StudyResults:
    flow = pd.DataFrame({"programme": ["a", "b"], "n": [12, 7],
                         "note": ["=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0"]})
    desc = pd.DataFrame({"programme": ["a"], "mean": [1.5], "sd": [np.nan]})
    return study.StudyResults(spec={"title": "t"}, frames={"flow": flow, "descriptives": desc},
                              meta={"sections": ["flow"]})


def test_results_folder_with_a_pickled_arrow_extension_type_runs_no_code(tmp_path):
    """A crafted parquet whose schema carries a pickled Python extension type (the
    pyarrow CVE-2023-47248 vector) with a manifest recomputed to match."""
    folder = tmp_path / "res"
    _small_results().save(folder)
    marker = tmp_path / "pwned"
    import pickle  # only to build the attacker's payload; the package never imports it

    class Boom:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    payload = pickle.dumps(Boom())
    table = pa.table({"programme": ["a"], "n": [1]})
    field_meta = {b"ARROW:extension:name": b"arrow.py_extension_type",
                  b"ARROW:extension:metadata": payload}
    schema = pa.schema([table.schema.field(0).with_metadata(field_meta), table.schema.field(1)])
    buf = io.BytesIO()
    pq.write_table(table.cast(schema), buf)
    data = buf.getvalue()
    (folder / "flow.parquet").write_bytes(data)
    prov = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    prov["files"]["flow.parquet"] = {"rows": 1, "bytes": len(data), "sha256": sha256_bytes(data)}
    (folder / PROVENANCE).write_text(json.dumps(prov), encoding="utf-8")
    try:
        study.StudyResults.load(folder)
    except EffectStudyError:
        pass
    assert not marker.exists()


def test_results_manifest_pointing_outside_the_folder_is_refused(tmp_path):
    folder = tmp_path / "res"
    _small_results().save(folder)
    secret = tmp_path / "secret.parquet"
    pd.DataFrame({"x": [1]}).to_parquet(secret)
    data = secret.read_bytes()
    prov = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    prov["files"]["../secret.parquet"] = {"rows": 1, "bytes": len(data),
                                          "sha256": sha256_bytes(data)}
    (folder / PROVENANCE).write_text(json.dumps(prov), encoding="utf-8")
    with pytest.raises(HarmoniseError):
        study.StudyResults.load(folder)


def test_results_manifest_of_another_kind_or_version_is_refused(tmp_path):
    folder = tmp_path / "res"
    _small_results().save(folder)
    prov = json.loads((folder / PROVENANCE).read_text(encoding="utf-8"))
    for change in ({"kind": "effectstudy-harmonised"}, {"version": 99}):
        (folder / PROVENANCE).write_text(json.dumps({**prov, **change}), encoding="utf-8")
        with pytest.raises(SpecError):
            study.StudyResults.load(folder)


def test_results_are_private_and_csv_injection_free(tmp_path):
    folder = tmp_path / "res"
    written = _small_results().save(folder)
    assert (folder.stat().st_mode & 0o777) == 0o700
    assert all((p.stat().st_mode & 0o777) == 0o600 for p in written)
    back = study.StudyResults.load(folder)
    # exact round trip of text cells (the escape is for CSV only, never parquet)
    assert back.frame("flow")["note"].tolist() == ["=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0"]
    assert not any(p.suffix == ".pkl" or p.suffix == ".pickle" for p in folder.iterdir())
    assert b"pickle" not in (folder / PROVENANCE).read_bytes()


def test_categorical_text_is_escaped_in_csv():
    from effectstudy._io import csv_bytes

    frame = pd.DataFrame({"c": pd.Categorical(["=1+1", "ok"]),
                          "s": pd.array(["@x", "y"], dtype="string"),
                          "o": ["-cmd", "-3.5"]})
    text = csv_bytes(frame).decode("utf-8")
    assert "'=1+1" in text and "'@x" in text and "'-cmd" in text
    assert ",-3.5" in text  # numbers stay numbers (positive control of the escape rule)


def test_results_save_interrupted_by_ctrl_c_keeps_the_earlier_folder(tmp_path, monkeypatch):
    folder = tmp_path / "res"
    _small_results().save(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    import effectstudy.table as table_mod

    calls = {"n": 0}
    real = table_mod.atomic_write_bytes

    def interrupted(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(path, data, **kw)

    monkeypatch.setattr(table_mod, "atomic_write_bytes", interrupted)
    bigger = _small_results()
    bigger.frames["extra"] = pd.DataFrame({"x": range(10)})
    with pytest.raises(KeyboardInterrupt):
        bigger.save(folder)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert len(study.StudyResults.load(folder).frame("flow")) == 2


def test_results_save_killed_mid_write_leaves_a_loadable_earlier_folder(tmp_path):
    folder = tmp_path / "res"
    _small_results().save(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    script = textwrap.dedent(f"""
        import os, sys, time
        import pandas as pd
        import effectstudy.table as t
        from effectstudy import study
        real = t.atomic_write_bytes
        def slow(path, data, **kw):
            out = real(path, data, **kw)
            print("wrote", flush=True)
            time.sleep(30)
            return out
        t.atomic_write_bytes = slow
        frames = {{"flow": pd.DataFrame({{"programme": ["z"], "n": [1]}})}}
        study.StudyResults(spec={{}}, frames=frames, meta={{}}).save({str(folder)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        assert proc.stdout.readline().strip() == b"wrote"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    back = study.StudyResults.load(folder)
    assert back.frame("flow")["n"].tolist() == [12, 7]


# --------------------------------------------------------------------------- #
# Dossier + cross-programme report, solved together
# --------------------------------------------------------------------------- #
# Both documents are public. The attacker puts the relations of the cross-programme
# report and of every dossier (Dutch and English) into one integer program, linking a
# dossier's flow cells to the report's row of that programme and bounding the sum over
# the programmes' dossiers of a change cell by the report's cell. The fixtures and
# relation builders are those of ``test_attack_report`` (imported, not repeated).


def _cell_term(at, text: str, names_slice: dict[str, int], name: str):
    text = text.replace(",", "").strip()
    if text.isdigit():
        return int(text)
    return ("var", names_slice[name])


def test_no_cell_hidden_in_the_report_is_printed_in_a_dossier(public, dossiers):  # noqa: F811
    from effectstudy.dictionary import load_dictionary

    dd = load_dictionary()
    flow = _flow(public["tables"])
    heads = flow["heads"]
    report = {r["programme"]: r for r in flow["rows"]}
    hidden = 0
    shown_in_dossier = []
    for (lang, pid), d in sorted(dossiers.items()):
        prog = dd.programmes[pid]
        row_r = report[prog.short_name or prog.name]
        (dflow,) = d["tables"]["flow"]
        (row_d,) = dflow["rows"]
        for h_d, h_r in zip(dflow["heads"][1:8], heads[1:8], strict=True):
            if not row_r[h_r].replace(",", "").isdigit():
                hidden += 1
                if row_d[h_d].replace(",", "").isdigit():
                    shown_in_dossier.append((lang, pid, h_r, row_r[h_r], row_d[h_d]))
    assert hidden >= 4  # positive control: the report hides cells
    assert not shown_in_dossier, shown_in_dossier


def test_dossiers_and_report_solved_together_pin_no_hidden_cell(public, dossiers):  # noqa: F811
    from effectstudy.dictionary import load_dictionary

    at, f = _build_attack(public)
    report_heads = _flow(public["tables"])["heads"]
    report_change = {r["construct"]: r for r in public["tables"]["change"][0]["rows"]}
    cats_report = public["tables"]["change"][0]["heads"][1:-1]
    dd = load_dictionary()
    change_sum: dict[tuple[str, str], list] = {}
    linked = 0
    for (lang, pid), d in sorted(dossiers.items()):
        n0 = len(at.names)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(_tar, "Attack", lambda: at)
            _dossier_attack(d)
        # make this dossier's variable names unique and find them by name
        local = {}
        for j in range(n0, len(at.names)):
            local.setdefault(at.names[j], j)
            at.names[j] = f"{lang}/{pid}: {at.names[j]}"
        prog = dd.programmes[pid]
        shown = prog.short_name or prog.name
        (flow,) = d["tables"]["flow"]
        (row,) = flow["rows"]
        for h_d, h_r in zip(flow["heads"][1:8], report_heads[1:8], strict=True):
            at.equal([_cell_term(at, row[h_d], local, f"flow {h_d}")], [f[shown][h_r]])
            linked += 1
        if lang != "en":
            continue
        for tab in d["tables"].get("change", []):
            if tab["heads"][-1] != "Total" or tab["heads"][1:-1] != cats_report:
                continue
            for r in tab["rows"]:
                c = r[tab["heads"][0]]
                if c == "Total" or c not in report_change:
                    continue
                for k in cats_report:
                    change_sum.setdefault((c, k), []).append(
                        _cell_term(at, r[k], local, f"change {c} {k}"))
    for (c, k), terms in change_sum.items():
        rep_cell = report_change[c][k].replace(",", "").strip()
        if rep_cell.isdigit():
            at.at_most(terms, [int(rep_cell)])
    # the at-risk counts under the dropout curves of the report and of every dossier: a
    # later count is at most an earlier one, and none exceeds the programme's referred
    # clients in the report's flow
    at_risk = 0
    documents = [("report", public)] + [(f"{lang}/{pid}", d) for (lang, pid), d in
                                        sorted(dossiers.items()) if lang == "en"]
    for doc, d in documents:
        for tab in d["tables"].get("dropout", []):
            weeks = [h for h in tab["heads"][1:] if re.fullmatch(r"week \d+", h)]
            if not weeks or len(weeks) != len(tab["heads"]) - 1:
                continue
            for r in tab["rows"]:
                prog = r[tab["heads"][0]]
                cells = [at.cell(r[w], f"{doc}: at risk {prog} {w}") for w in weeks]
                for a, b in zip(cells, cells[1:], strict=False):
                    at.at_most([b], [a])
                for cell in cells:
                    at.at_most([cell], [f[prog][report_heads[1]]])
                at_risk += len(cells)
    assert at_risk >= 20, "the at-risk tables were not found"
    assert linked == 7 * 12 and change_sum, "the documents were not linked"
    ranges = at.ranges()
    pinned = {name: r for name, r in ranges.items() if r[1] - r[0] < 2}
    assert not pinned, pinned
    # not vacuous: every programme's true referred count lies in its range
    h = public["h"]
    for pid, n in h.clients.groupby("programme").size().items():
        prog = dd.programmes[pid]
        key = f"flow {prog.short_name or prog.name} {report_heads[1]}"
        if key in ranges:
            assert ranges[key][0] <= n <= ranges[key][1]


# --------------------------------------------------------------------------- #
# Study specs: code in formulas, YAML tags, an export passed as --spec
# --------------------------------------------------------------------------- #
@pytest.fixture
def small_harmonised(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_pinq_gesloten(raw)
    write_egoversterkend(raw)  # two programmes: the slopes model is fitted
    h = harmonise(raw, key=KEY)
    h.write(tmp_path / "h", format=("parquet",))
    return h, tmp_path / "h"


@pytest.mark.parametrize("section", ["multilevel", "slopes"])
def test_formula_in_a_study_spec_runs_no_code(small_harmonised, tmp_path, section):
    h, _ = small_harmonised
    marker = tmp_path / "pwned"
    formula = (f"z ~ week + I(__import__('os').system('touch {marker}')*0 + week)"
               " + (1 | client)")
    spec = {"title": "t", section: {"formula": formula}}
    try:
        res = study.run(spec, h)
    except EffectStudyError:
        res = None
    assert not marker.exists()
    if res is not None:  # the run goes on, but every model of the section was refused
        info = res.meta[section] if section in res.meta else {}
        statuses = {v.get("status") for v in info.get("per_construct", info).values()
                    if isinstance(v, dict) and "status" in v}
        assert statuses and "ok" not in statuses, info


def test_yaml_tag_in_a_study_spec_file_is_refused(tmp_path):
    from effectstudy.study.spec import load_spec

    marker = tmp_path / "pwned"
    path = tmp_path / "spec.yaml"
    path.write_text(f'title: !!python/object/apply:os.system ["touch {marker}"]\n',
                    encoding="utf-8")
    with pytest.raises(SpecError):
        load_spec(path)
    assert not marker.exists()


def test_an_export_passed_as_run_spec_echoes_no_row(small_harmonised, tmp_path):
    from effectstudy.cli import app

    _h, data = small_harmonised
    export = tmp_path / "export.csv"
    export.write_text("Cliëntnummer;Naam;BSN\n510001;Anais Ozturkqx;641693266\n"
                      "510002;\"Kevin Dragomirqz: 06-48213977\n", encoding="utf-8")
    res = runner.invoke(app, ["run", "--data", str(data), "--out", str(tmp_path / "res"),
                              "--spec", str(export)])
    assert res.exit_code == 1
    text = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert "error" in text.lower()  # positive control: the message was captured
    assert _leaks(text) == []
    assert not (tmp_path / "res").exists()


def test_no_pseudonym_in_any_public_document(public, dossiers):  # noqa: F811
    """Pseudonyms are internal (exact results): no public report or dossier names one."""
    pseudonyms = set(public["h"].clients["client"].astype(str))
    assert len(pseudonyms) > 50 and all(len(p) >= 8 for p in pseudonyms)
    texts = {"report": public["html"], **{f"{k[0]}/{k[1]}": d["html"]
                                          for k, d in dossiers.items()}}
    for name, html in texts.items():
        found = [p for p in pseudonyms if p in html]
        assert not found, (name, found[:3])


def test_crafted_results_metadata_is_escaped_in_the_report(public, tmp_path):  # noqa: F811
    """A results folder whose provenance (not hashed: it holds the manifest) was edited:
    the spec title and a programme name carry markup; the report escapes them."""
    from effectstudy.report import build_report

    folder = tmp_path / "res"
    public["results"].save(folder)
    prov_path = folder / PROVENANCE
    prov = json.loads(prov_path.read_text(encoding="utf-8"))
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    prov["spec"]["title"] = evil
    prov_path.write_text(json.dumps(prov), encoding="utf-8")
    res = study.StudyResults.load(folder)
    assert res.spec["title"] == evil  # positive control: the edit was read
    rep = build_report(res, out=tmp_path / "rep", audience="public", pdf=False)
    html = rep.html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;" in html


# --------------------------------------------------------------------------- #
# header_row:, sex_column:, missing_values: with identifiers where they read
# --------------------------------------------------------------------------- #
def _dict_with(tmp_path, extra: str) -> Path:
    folder = tmp_path / "dict"
    shutil.copytree(load_dictionary().path, folder)
    src = folder / "sources" / "pinq_gesloten.yaml"
    text = src.read_text(encoding="utf-8")
    anchor = "    client_id: Cliëntnummer\n"
    assert anchor in text
    src.write_text(text.replace(anchor, anchor + extra), encoding="utf-8")
    return folder


def _with_title_rows(path: Path, titles: list[str]) -> None:
    body = path.read_bytes().decode("cp1252")
    path.write_bytes(("".join(t + "\n" for t in titles) + body).encode("cp1252"))


def test_title_rows_above_the_header_are_never_shown(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    base = write_pinq_gesloten(raw)
    _with_title_rows(base, [f"Rapportage {NAME_PLAIN} {BSN_SPACED}", f"tel {PHONE}"])
    d = load_dictionary(_dict_with(tmp_path, "    header_row: 3\n"))
    h = harmonise(raw, d, key=KEY)
    assert len(h.table) > 0  # positive control: the export was read below its titles
    h.write(tmp_path / "out", format=("parquet", "csv"))
    assert _leaks(_files_text(tmp_path / "out") + h.rejections.astype(str).to_csv()) == []


def test_header_row_pointing_at_a_data_row_echoes_no_cell(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    base = write_pinq_gesloten(raw)
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    df.loc[0, "Naam"] = NAME_PLAIN
    df.loc[0, "BSN"] = BSN_DOTTED
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    d = load_dictionary(_dict_with(tmp_path, "    header_row: 2\n"))
    with pytest.raises(EffectStudyError) as err:
        harmonise(raw, d, key=KEY)
    msg = str(err.value)
    assert "pinq_gesloten_metingen.csv" in msg  # names the file
    assert _leaks(msg) == [] and "510001" not in msg and "R-778" not in msg


def test_sex_column_with_a_name_is_not_logged(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    base = write_pinq_gesloten(raw)
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    df["Geslacht"] = "V"
    df.loc[0, "Geslacht"] = NAME_PLAIN
    df.loc[2, "Geslacht"] = PHONE
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    try:
        d = load_dictionary(_dict_with(tmp_path, "    sex_column: Geslacht\n"))
    except DictionaryError as exc:  # a female-only programme may refuse sex_column
        assert _leaks(str(exc)) == []
        return
    h = harmonise(raw, d, key=KEY)
    h.write(tmp_path / "out", format=("parquet", "csv"))
    assert _leaks(_files_text(tmp_path / "out") + h.rejections.astype(str).to_csv()) == []


def test_a_missing_values_look_alike_is_rejected_without_its_text(tmp_path):
    """``missing_values: ["n.v.t."]`` and a score cell ``n.v.t. Anais Ozturkqx``: not a
    declared missing code, so it is rejected, and its text is not logged."""
    raw = tmp_path / "raw"
    raw.mkdir()
    base = write_pinq_gesloten(raw)
    df = pd.read_csv(base, sep=";", encoding="cp1252", dtype=str)
    df.loc[0, "CRIES totaal"] = f"n.v.t. {NAME_PLAIN}"
    df.loc[1, "CRIES totaal"] = f"n.v.t. ({BSN_SPACED})"
    df.loc[2, "CRIES totaal"] = "N.V.T."
    df.to_csv(base, sep=";", index=False, encoding="cp1252")
    d = load_dictionary(_dict_with(tmp_path, '    missing_values: ["n.v.t."]\n'))
    h = harmonise(raw, d, key=KEY)
    rej = h.rejections[h.rejections["column"] == "CRIES totaal"]
    assert sorted(rej["row"].astype(int)) == [2, 3]  # the look-alikes, not the real code
    h.write(tmp_path / "out", format=("parquet", "csv"))
    assert _leaks(_files_text(tmp_path / "out") + h.rejections.astype(str).to_csv()) == []
