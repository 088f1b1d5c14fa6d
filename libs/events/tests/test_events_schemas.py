from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from flowcase.devstack.layout import Layout
from flowcase.events import REGISTRY, Envelope, encode
from flowcase.events.cli import app
from flowcase.events.schemas import all_json_schemas, asyncapi_document

ASYNCAPI_SPEC = Path("tools", "node_modules", "@asyncapi", "specs", "schemas", "3.0.0.json")


def test_every_event_has_a_schema_that_accepts_its_encoded_example(
    example_envelopes: list[Envelope],
) -> None:
    schemas = all_json_schemas()
    for envelope in example_envelopes:
        schema = schemas[f"{envelope.event_type}.json"]
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(
            json.loads(encode(envelope)), schema, cls=jsonschema.Draft202012Validator
        )


def test_an_event_schema_rejects_a_wrong_payload(example_envelopes: list[Envelope]) -> None:
    envelope = example_envelopes[0]
    body = json.loads(encode(envelope))
    body["payload"] = {"unexpected": True}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(body, all_json_schemas()[f"{envelope.event_type}.json"])


def test_submission_schema_matches_its_example() -> None:
    schema = all_json_schemas()["intake.Submission.json"]
    for example in schema["examples"]:
        jsonschema.validate(example, schema, cls=jsonschema.Draft202012Validator)


def _asyncapi_validator() -> jsonschema.protocols.Validator:
    spec_file = Layout.default().home / ASYNCAPI_SPEC
    if not spec_file.exists():
        pytest.fail(
            f"the official AsyncAPI 3.0 schema is missing ({spec_file}): run `make install`"
        )
    spec = json.loads(spec_file.read_text())
    return jsonschema.validators.validator_for(spec)(spec)


def test_asyncapi_document_is_valid_against_the_official_schema() -> None:
    document = asyncapi_document()
    errors = [e.message for e in _asyncapi_validator().iter_errors(document)]
    assert errors == []
    described = {m for m in document["components"]["messages"]}
    assert set(REGISTRY) <= described


def test_asyncapi_validation_catches_a_broken_document() -> None:
    document = asyncapi_document()
    document["channels"]["caseEvents"]["address"] = 42
    assert list(_asyncapi_validator().iter_errors(document))


def test_every_ref_in_the_asyncapi_document_resolves() -> None:
    document = asyncapi_document()

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [v for k, v in node.items() if k == "$ref"] + [
                r for v in node.values() for r in refs(v)
            ]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(document):
        target: object = document
        for part in ref.removeprefix("#/").split("/"):
            assert isinstance(target, dict), f"dangling {ref}"
            assert part in target, f"dangling {ref}"
            target = target[part]


def test_cli_prints_the_asyncapi_document_and_writes_schemas(tmp_path: Path) -> None:
    runner = CliRunner()
    printed = runner.invoke(app, ["asyncapi"])
    assert printed.exit_code == 0
    assert YAML(typ="safe").load(printed.stdout) == json.loads(json.dumps(asyncapi_document()))
    written = runner.invoke(app, ["schemas", str(tmp_path)])
    assert written.exit_code == 0
    assert len(list(tmp_path.glob("*.json"))) == len(REGISTRY) + 1


VERSIONS = Path(__file__).with_name("catalogue_versions.json")


def test_a_payload_changes_its_fields_only_with_a_new_schema_version() -> None:
    """Every catalogued payload's fields, recorded per schema version. A consumer refuses a field
    it does not know (the models forbid extras), so a payload that gains one without a new
    version is read as malformed by every consumer not yet upgraded; with the new version, it
    is dead-lettered as newer than they know and read again after their upgrade."""
    recorded = json.loads(VERSIONS.read_text())
    for event_type, model in REGISTRY.items():
        known = recorded.get(event_type, {})
        fields = sorted(model.model_fields)
        assert known.get(str(model.schema_version)) == fields, (
            f"{event_type} version {model.schema_version} has the fields {fields}, recorded as "
            f"{known.get(str(model.schema_version))}: give a payload that changes its fields a "
            f"new schema version, and record it in {VERSIONS.name}"
        )
