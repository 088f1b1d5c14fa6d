from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from flowcase.events.catalogue.workflow import StepKind
from flowcase.workflow.definition import parse_duration
from flowcase.workflow.definition_files import (
    InvalidDefinition,
    check_folder,
    load_folder,
    parse_definition,
    shipped_folder,
)
from flowcase.workflow.registry import DefinitionRegistry, UnknownRequestType, VersionConflict

HEADER = """\
name: sample
version: 1
request_type: sample
title: Sample
request_schema: {type: object}
steps:
"""

SHIPPED_TYPES = {
    "password_reset",
    "software_access",
    "invoice_approval",
    "purchase_order",
    "employee_onboarding",
    "access_complaint",
    "hr_matter",
    "multi_system_incident",
}


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidDefinition) as caught:
        parse_definition(text, "sample.yaml")
    return [str(p) for p in caught.value.problems]


def test_every_shipped_definition_validates() -> None:
    reports = check_folder(shipped_folder())
    assert [str(p) for r in reports for p in r.problems] == []
    assert {r.definition.request_type for r in reports if r.definition} == SHIPPED_TYPES


def test_shipped_definitions_use_every_step_kind() -> None:
    kinds = {step.kind for d in load_folder(shipped_folder()) for step in d.steps}
    assert kinds == set(StepKind)


def test_onboarding_provisions_five_tools_welcomes_and_schedules_a_kickoff() -> None:
    onboarding = next(
        d for d in load_folder(shipped_folder()) if d.request_type == "employee_onboarding"
    )
    provisioning = [s for s in onboarding.steps if s.name.startswith("provision-")]
    assert len({s.connector for s in provisioning}) == 5  # type: ignore[union-attr]
    assert [s.name for s in onboarding.steps][-2:] == ["send-welcome-email", "schedule-kickoff"]


def test_a_yaml_syntax_error_names_its_line() -> None:
    text = HEADER + "  - name: check\n    kind: [validate\n  - name: other\n"
    [problem] = problems(text)
    assert problem.startswith("sample.yaml:9: (document): not valid YAML")


def test_a_character_yaml_does_not_allow_is_a_problem_not_a_crash() -> None:
    """A control character stops YAML's reader before it parses (no line to name): the
    definition is refused with the reader's reason (it raised out of the loader before)."""
    [problem] = problems("\x08" + HEADER)
    assert problem.startswith("sample.yaml: (document): not valid YAML: unacceptable character")


def test_a_duplicate_key_names_its_line() -> None:
    [problem] = problems(HEADER.replace("title: Sample\n", "title: Sample\ntitle: Again\n"))
    assert problem.startswith("sample.yaml:5:")


def test_invalid_fields_are_reported_at_their_own_lines() -> None:
    text = HEADER + textwrap.indent(
        textwrap.dedent("""\
          - name: approve
            kind: approval
            approvers:
              - when: payload.amount >=
                role: manager
            timeout: 2 fortnights
          - name: Bad Name
            kind: notify
            channel: email
            to: request.requester
            template: hello
            colour: blue
          - name: mystery
            kind: teleport
          - kind: route
            otherwise: {team: desk}
        """),
        "  ",
    )
    assert problems(text) == [
        "sample.yaml:10: steps[0].approvers[0].when: expression at 1:18: Syntax error: "
        "mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', 'false', "
        "'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}",
        "sample.yaml:12: steps[0].timeout: '2 fortnights' is not a duration like 90s, 15m, "
        "4h, 2d or 1h30m",
        "sample.yaml:13: steps[1].name: String should match pattern '^[a-z][a-z0-9-]*$'",
        "sample.yaml:18: steps[1].colour: Extra inputs are not permitted",
        "sample.yaml:20: steps[2].kind: unknown step kind 'teleport'; one of validate, route, "
        "sla, approval, action, notify, branch, escalate",
        "sample.yaml:21: steps[3].name: Field required",
    ]


def test_a_missing_top_level_field_points_at_the_document() -> None:
    assert problems(HEADER.replace("version: 1\n", "") + "  - {name: a, kind: validate}\n") == [
        "sample.yaml:1: version: Field required"
    ]


def test_steps_must_refer_to_later_steps() -> None:
    text = HEADER + textwrap.indent(
        textwrap.dedent("""\
            - name: watch
              kind: sla
              within: 1h
              until: nowhere
            - name: choose
              kind: branch
              cases:
                - when: "true"
                  goto: watch
            - name: choose
              kind: validate
        """),
        "  ",
    )
    assert problems(text) == [
        "sample.yaml:16: steps[2].name: step 'choose' is named twice",
        "sample.yaml:10: steps[0].until: 'nowhere' is not a later step",
        "sample.yaml:15: steps[1].cases[0].goto: 'watch' is not a later step (nor `end`)",
    ]


def test_the_request_schema_must_be_a_json_schema() -> None:
    text = HEADER.replace("{type: object}", "{type: sphere}") + "  - {name: a, kind: validate}\n"
    [problem] = problems(text)
    assert problem.startswith("sample.yaml:5: request_schema: not a valid JSON Schema")


def test_a_folder_may_not_serve_a_request_type_twice(tmp_path: Path) -> None:
    body = HEADER + "  - {name: a, kind: validate}\n"
    (tmp_path / "a.yaml").write_text(body)
    (tmp_path / "b.yaml").write_text(body.replace("name: sample", "name: sample-two"))
    reports = check_folder(tmp_path)
    assert [str(p) for p in reports[1].problems] == [
        f"{tmp_path / 'b.yaml'}: request_type: a.yaml already serves this request type"
    ]
    with pytest.raises(InvalidDefinition):
        load_folder(tmp_path)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("4h", 14400), ("2d", 172800), ("1w", 604800), ("1h30m", 5400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "5", "1y", "h1", "1h 30x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_the_registry_keeps_every_version_and_refuses_to_rewrite_one() -> None:
    v1 = parse_definition(HEADER + "  - {name: a, kind: validate}\n", "v1.yaml")
    v2 = v1.model_copy(update={"version": 2, "title": "Sample, revised"})
    registry = DefinitionRegistry([v1, v2])
    assert registry.current("sample") is v2
    assert registry.get("sample", 1) is v1
    assert registry.versions("sample") == [1, 2]
    assert registry.request_types() == ["sample"]
    registry.publish(v1)  # the same content again is fine
    with pytest.raises(VersionConflict):
        registry.publish(v1.model_copy(update={"title": "Changed in place"}))
    with pytest.raises(UnknownRequestType):
        registry.current("nothing")
    with pytest.raises(UnknownRequestType):
        registry.get("sample", 3)
