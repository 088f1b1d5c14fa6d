"""Properties over any sequence of commands, valid or refused."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import reduce
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from flowcase.case.aggregate import Case
from flowcase.case.application import CaseApplication
from flowcase.case.catalogue_mapping import to_catalogue
from flowcase.case.errors import CaseError
from flowcase.events.catalogue.case import CaseStatus

text = st.text(min_size=1, max_size=20).filter(str.strip)
actor = st.sampled_from(["agent-1", "agent-2", "sup-1"])


def cited(case: Case, count: int) -> list[str]:
    citable = [*case.notes, *case.communications, *case.evidence, *case.decisions]
    return citable[:count]


Command = Callable[[Case], object]

# Commands with drawn arguments, not all valid where they land (a task that does not exist, a
# status change the lifecycle forbids, an unjustified decision): refusals are part of the test.
commands: st.SearchStrategy[Command] = st.one_of(
    st.builds(lambda t, a: lambda c: c.add_note(t, actor=a), text, actor),
    st.builds(
        lambda d, p, a: lambda c: c.log_communication(d, "email", p, "summary", actor=a),
        st.sampled_from(["inbound", "outbound"]),
        st.lists(text, max_size=3),
        actor,
    ),
    st.builds(
        lambda b, a: lambda c: c.attach_evidence("ref", hashlib.sha256(b).hexdigest(), actor=a),
        st.binary(max_size=8),
        actor,
    ),
    st.builds(lambda t, a: lambda c: c.add_task(t, actor=a), text, actor),
    st.builds(
        lambda i, a: lambda c: c.complete_task(f"t-{i}", "done", actor=a), st.integers(1, 3), actor
    ),
    st.builds(lambda t, a: lambda c: c.set_milestone(t, actor=a), text, actor),
    st.builds(lambda t, a: lambda c: c.assign(t, None, actor=a), text, actor),
    st.builds(lambda a: lambda c: c.claim(actor=a), actor),
    st.builds(
        lambda s, a: lambda c: c.change_status(s, actor=a), st.sampled_from(CaseStatus), actor
    ),
    *(
        st.builds(
            lambda r, n, g, a, method=method: (
                lambda c: getattr(c, method)("what", r, cited(c, n), gap_acknowledged=g, actor=a)
            ),
            st.none() | text,
            st.integers(0, 2),
            st.booleans(),
            actor,
        )
        for method in ("record_decision", "apply_override", "resolve")
    ),
)


def run(case: Case, command: Command) -> None:
    """Run a command; a refused one must leave the case exactly as it was."""
    version = case.version
    pending = len(case.pending_events)
    try:
        command(case)
    except CaseError:
        assert case.version == version
        assert len(case.pending_events) == pending


@settings(max_examples=60, deadline=None)
@given(st.lists(commands, max_size=70))
def test_any_commands_keep_the_chain_whole_and_replay_equal_to_state(
    sequence: list[Command],
) -> None:
    app = CaseApplication(env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    case = Case.open_manually("Property case", actor="sup-1")
    for command in sequence:
        run(case, command)
    app.save(case)

    report = app.verify_chain(case.id)
    assert report.intact
    assert report.verified == case.version
    assert report.head == case.chain_head

    stored = app.history(case.id)
    replayed: Any = reduce(lambda state, event: event.mutate(state), stored, None)
    assert replayed == app.get_case(case.id)
    for event in stored:
        to_catalogue(event)
