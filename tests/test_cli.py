"""The report and power commands: output, and one-line errors with non-zero exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from effectstudy.cli import app

runner = CliRunner()
DESIGN = Path(__file__).resolve().parents[1] / "src" / "effectstudy" / "power" / "examples" / "design_A.yaml"


def test_power_command_prints_power_and_its_interval():
    res = runner.invoke(app, ["power", str(DESIGN), "--nsim", "20", "--seed", "3", "--n-jobs", "1"])
    assert res.exit_code == 0, res.output
    assert "power" in res.output and "ci_lower" in res.output and "n_singular" in res.output


def test_power_command_missing_file_is_one_line_error(tmp_path):
    res = runner.invoke(app, ["power", str(tmp_path / "nope.yaml"), "--nsim", "5"])
    # CliRunner swallows an unhandled exception into res.exception (the output then has no
    # "Traceback" either): the error must have been turned into a clean exit by the CLI.
    assert res.exit_code == 1
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output
    assert res.output.startswith("error:") and "nope.yaml" in res.output
    assert len(res.output.strip().splitlines()) == 1


def test_report_command_errors(tmp_path):
    res = runner.invoke(app, ["report", "--data", str(tmp_path), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
    assert isinstance(res.exception, SystemExit), repr(res.exception)
    assert "Traceback" not in res.output and "provenance.json" in res.output
    res = runner.invoke(app, ["report", "--data", str(tmp_path), "--audience", "everyone"])
    assert res.exit_code == 1 and "audience" in res.output
    assert isinstance(res.exception, SystemExit), repr(res.exception)


def test_every_command_that_reads_the_dictionary_takes_dictionary():
    for command in ("demo", "harmonise", "report"):
        res = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and "--dictionary" in res.output, command
    res = runner.invoke(app, ["harmonise", "--help"], env={"COLUMNS": "200"})
    assert "--strict" in res.output and "EFFECTSTUDY_DICTIONARY" in res.output


def test_dictionary_from_the_environment_is_honoured(tmp_path):
    data = tmp_path / "exports"
    data.mkdir()
    (data / "x.csv").write_text("a\n1\n")
    missing = tmp_path / "no_dictionary_here"
    res = runner.invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "o")],
                        env={"EFFECTSTUDY_DICTIONARY": str(missing),
                             "EFFECTSTUDY_KEY_FILE": str(tmp_path / "k" / "p.key")})
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit), res.output
    out = " ".join(res.output.split())
    assert "data dictionary folder not found (from EFFECTSTUDY_DICTIONARY)" in out
    assert str(missing) in out.replace(" ", "") or "no_dictionary_here" in out
    # --dictionary wins over the environment: the shipped folder finds no export
    from effectstudy.dictionary import default_path

    res = runner.invoke(app, ["harmonise", str(data), "--out", str(tmp_path / "o"),
                              "--dictionary", str(default_path())],
                        env={"EFFECTSTUDY_DICTIONARY": str(missing),
                             "EFFECTSTUDY_KEY_FILE": str(tmp_path / "k" / "p.key")})
    assert res.exit_code == 1 and "no export described" in " ".join(res.output.split())
    assert "'x.csv'" in res.output


# --------------------------------------------------------------------------- #
# run / report --results / --programme / --language (issue 11)
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def study_cli(tmp_path_factory):
    import copy

    import yaml

    from effectstudy.harmonise import harmonise
    from effectstudy.study import DEMO_SPEC
    from effectstudy.synth import generate

    root = tmp_path_factory.mktemp("cli_study")
    generate(root / "raw", seed=2026)
    harmonise(root / "raw", key=b"test-key-for-the-cli-study-0123456789").write(
        root / "harmonised", format=("parquet",))
    spec = copy.deepcopy(DEMO_SPEC)
    spec["power"]["nsim"] = 10
    (root / "spec.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")
    res = runner.invoke(app, ["run", "--data", str(root / "harmonised"), "--spec",
                              str(root / "spec.yaml"), "--out", str(root / "results")])
    assert res.exit_code == 0, res.output
    return root


def _dutch_dossier_ok(path):
    html = path.read_text(encoding="utf-8")
    for heading in ("Samenvatting", "Erkenning", "Betrouwbare verandering"):
        assert heading in html, heading
    assert '<html lang="nl">' in html


def test_run_writes_verified_results(study_cli):
    from effectstudy.study import StudyResults

    res = StudyResults.load(study_cli / "results")
    assert "slopes" in res.sections and len(res.frames["slopes"])


def test_report_dossier_in_dutch_from_harmonised_data(study_cli):
    out = study_cli / "dossier_nl"
    res = runner.invoke(app, ["report", "--data", str(study_cli / "harmonised"), "--spec",
                              str(study_cli / "spec.yaml"), "--programme", "veilig_lima",
                              "--language", "nl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    _dutch_dossier_ok(out / "dossier_veilig_lima.html")
    assert (out / "dossier_veilig_lima.pdf").read_bytes()[:4] == b"%PDF"
    assert "dossier veilig_lima" in " ".join(res.output.split())


def test_report_from_saved_results(study_cli):
    out = study_cli / "from_results"
    res = runner.invoke(app, ["report", "--results", str(study_cli / "results"), "--programme",
                              "hoenderloo", "--language", "nl", "--out", str(out)])
    assert res.exit_code == 0, res.output
    _dutch_dossier_ok(out / "dossier_hoenderloo.html")


def test_report_unknown_programme_lists_the_known_ids(study_cli):
    res = runner.invoke(app, ["report", "--results", str(study_cli / "results"), "--programme",
                              "veilig_lmia", "--out", str(study_cli / "x")])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)
    text = " ".join(res.output.split())
    assert "unknown programme 'veilig_lmia'" in text
    for pid in ("egoversterkend", "hoenderloo", "intermetzo", "pinq_crisis", "pinq_gesloten",
                "veilig_lima"):
        assert pid in text
    assert "Traceback" not in res.output


def test_report_option_errors(study_cli):
    both = runner.invoke(app, ["report", "--results", str(study_cli / "results"), "--data",
                               str(study_cli / "harmonised")])
    assert both.exit_code == 1 and "either --data" in both.output
    neither = runner.invoke(app, ["report"])
    assert neither.exit_code == 1 and "either --data" in neither.output
    lang = runner.invoke(app, ["report", "--results", str(study_cli / "results"),
                               "--language", "de"])
    assert lang.exit_code == 1 and "--language" in lang.output
    notres = runner.invoke(app, ["report", "--results", str(study_cli / "harmonised")])
    assert notres.exit_code == 1 and "not a study results folder" in notres.output
