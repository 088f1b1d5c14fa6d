"""Conditions and computed values of process definitions, written in CEL.

CEL (the Common Expression Language) is side-effect free and always terminates, so a definition
can say "amount at least 10000" without the engine running arbitrary code. Each expression is
compiled once, when its definition loads, so a typo fails the definition, not a live request.

Expressions see three variables and nothing else (no clock, no I/O), so the same instance always
gets the same answer:

- `payload`: the intake fields of the request;
- `request`: `id`, `type`, `requester`, `priority`;
- `state`: `team` and `queue` (the route, empty before one is decided) and `outputs` (each
  completed action's result, by step name).
"""

from __future__ import annotations

from typing import Any

import cel
from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema


class RuleError(Exception):
    """An expression could not be evaluated, or gave a value of the wrong type."""


class Expression:
    """A compiled CEL expression, keeping its source for events and error messages."""

    __slots__ = ("_program", "_reads", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self._program = cel.compile(source)
        except ValueError as exc:
            raise ValueError(_first_line(str(exc))) from None
        # Handing the runtime a variable costs a conversion of the whole value on every call
        # (the three of them about 20 µs, the payload alone 7), so it gets only those it reads.
        self._reads = frozenset(self._program.references()["variables"])

    def evaluate(self, variables: dict[str, Any]) -> Any:
        try:
            return self._program.execute(
                {name: value for name, value in variables.items() if name in self._reads}
            )
        # The CEL runtime reports a missing field, a type mismatch or a division by zero with
        # whichever Python exception is closest; to the engine they are all one failed rule.
        except Exception as exc:
            raise RuleError(f"`{self.source}` could not be evaluated: {exc}") from exc

    def holds(self, variables: dict[str, Any]) -> bool:
        value = self.evaluate(variables)
        if not isinstance(value, bool):
            raise RuleError(f"`{self.source}` gave {value!r}, not true or false")
        return value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source_type: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(
            cls,
            core_schema.str_schema(min_length=1),
            serialization=core_schema.plain_serializer_function_ser_schema(lambda e: e.source),
        )


def _first_line(message: str) -> str:
    # The parser's message repeats the source and draws a caret under it on the next lines;
    # keep the line that says what is wrong (it carries the column) for a one-line report.
    message = message.splitlines()[0]
    _, found, rest = message.partition("ERROR: <input>:")
    return f"expression at {rest}" if found else message
