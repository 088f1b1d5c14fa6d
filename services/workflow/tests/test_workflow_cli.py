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


MIGRATE = ["migrate", "invoice_approval", "--from=1", "--to=2", "--reason=a test"]


def test_migrate_names_the_field_of_a_bad_plan_and_calls_nothing(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("steps:\n  finance-approval: Not A Step\n")
    result = runner.invoke(app, [*MIGRATE, f"--plan={plan}", "--workflow=http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert f"{plan}: steps.finance-approval: String should match pattern" in result.output


def test_migrate_says_when_the_service_does_not_answer() -> None:
    # Port 9 (discard) has no listener here: the connection is refused at once.
    result = runner.invoke(app, [*MIGRATE, "--workflow=http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "the workflow service at http://127.0.0.1:9 did not answer" in result.output
