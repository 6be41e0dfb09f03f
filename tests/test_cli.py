"""The report and power commands: output, and one-line errors with non-zero exit codes."""

from __future__ import annotations

from pathlib import Path

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
