from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from flowcase.workflow.cli import app

runner = CliRunner()

VALID = """\
name: sample
version: 3
request_type: sample
title: Sample
request_schema: {type: object}
steps:
  - {name: check, kind: validate}
"""


def test_validate_checks_the_shipped_definitions_by_default() -> None:
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 0, result.output
    assert (
        "ok    invoice_approval.yaml: invoice-approval v1 serves invoice_approval" in result.output
    )
    assert "8 definitions valid" in result.output


def test_validate_reports_each_problem_and_fails(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID.replace("sample", "other").replace("3", "zero"))
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert lines[0] == "FAIL  bad.yaml"
    assert lines[1] == (
        f"      {tmp_path / 'bad.yaml'}:2: version: "
        "Input should be a valid integer, unable to parse string as an integer"
    )
    assert lines[2] == "ok    good.yaml: sample v3 serves sample (1 step)"
    assert "1 of 2 definition files have problems" in result.output


def test_validate_fails_on_a_folder_without_definitions(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path)])
    assert result.exit_code == 1
    assert "no definition files" in result.output
