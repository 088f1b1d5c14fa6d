"""The workflow's pure engine and intake's payload check: microseconds per request.

    uv run python benchmarks/engine.py [--requests 2000]

In one process, no servers: the shipped password-reset definition decided from `Submit` to its
completion (the start turn, then each action reported done, as the workflow service drives it),
and the same request's payload checked against its type's schema the way intake checks a
submission, with the compiled validator and with python-jsonschema alone. Results go to
benchmarks/results/engine-<date>.json. Nothing here is asserted: it measures.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime
from typing import Any

from jsonschema import Draft202012Validator
from microbench import microseconds_each, write_results

from flowcase.events.payload_schema import PayloadSchema
from flowcase.workflow.definition_files import load_folder, shipped_folder
from flowcase.workflow.effects import RunAction
from flowcase.workflow.engine import decide
from flowcase.workflow.state import Status
from flowcase.workflow.triggers import ReportActionSucceeded, Submit

PAYLOAD: dict[str, Any] = {"account": "alice", "system": "okta"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    requests = parser.parse_args().requests
    definition = next(d for d in load_folder(shipped_folder()) if d.name == "password-reset")
    at = datetime.now(UTC)

    def password_reset() -> None:
        submit = Submit(
            request_id=uuid.uuid4(),
            request_type=definition.request_type,
            requester="alice@example.com",
            payload=PAYLOAD,
        )
        decision = decide(definition, None, submit, at)
        while decision.state and decision.state.status is Status.RUNNING:
            action = next(e for e in decision.effects if isinstance(e, RunAction))
            decision = decide(
                definition, decision.state, ReportActionSucceeded(step=action.step), at
            )
        assert decision.state
        assert decision.state.status is Status.COMPLETED

    compiled = PayloadSchema(definition.request_schema, check_formats=True)
    interpreted = Draft202012Validator(
        definition.request_schema, format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    password_reset()  # the first call compiles the definition's schema
    figures = {
        "password reset, submit to completed (engine)": microseconds_each(password_reset, requests),
        "payload check, compiled (intake)": microseconds_each(
            lambda: compiled.errors(PAYLOAD), requests
        ),
        "payload check, python-jsonschema": microseconds_each(
            lambda: list(interpreted.iter_errors(PAYLOAD)), requests
        ),
    }
    for name, us in figures.items():
        print(f"{name:46} {us:8.2f} µs per request")
    write_results("engine", at, requests=requests, microseconds_per_request=figures)


if __name__ == "__main__":
    main()
