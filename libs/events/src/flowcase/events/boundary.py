"""The boundary policy for JSON from outside: what no consumer downstream can store or compute
with is named where it enters, by its field, instead of failing later (a 500, a dead letter, a
projection retrying for ever).

`read_json` parses as the JSON standard allows but keeps non-finite and over-long numbers as
markers; `unusable_values` then lists every marker, NUL character, lone surrogate and excess
nesting with its dotted path (`payload.lines.0.amount`). `text_problem` judges one text (a query
or path parameter) by the same rule.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


def read_json(data: bytes | str) -> Any:
    """The document, with unusable numbers kept as markers for `unusable_values` to name.
    Raises what `json.loads` raises for text that is not JSON."""
    return json.loads(data, parse_constant=_Unusable.non_finite, parse_float=_float, parse_int=_int)


def unusable_values(document: Any) -> list[tuple[str, str]]:
    """(field, reason) of every value of the document no consumer can use."""
    return list(_unusable(document, (), 0))


# PostgreSQL's text refuses NUL; UTF-8 has no lone surrogates; a JSON encoder refuses NaN; Python
# refuses integers over 4,300 digits; deep nesting overflows recursive serialisers.
MAX_DEPTH = 32
MAX_INTEGER_DIGITS = 64


@dataclass(frozen=True)
class _Unusable:
    """A number JSON allows to be written but no consumer can use, kept to be named by path."""

    text: str
    reason: str

    @classmethod
    def non_finite(cls, text: str) -> _Unusable:
        return cls(text, f"{text} is not a finite number")


def _float(text: str) -> float | _Unusable:
    value = float(text)
    if math.isinf(value):
        return _Unusable(text, f"{text[:40]} is out of the range of numbers")
    return value


def _int(text: str) -> int | _Unusable:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        return _Unusable(text, f"an integer of more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def _unusable(value: Any, path: tuple[str, ...], depth: int) -> Iterator[tuple[str, str]]:
    field = ".".join(path)
    if depth > MAX_DEPTH:
        yield field, f"nested deeper than {MAX_DEPTH} levels"
    elif isinstance(value, _Unusable):
        yield field, value.reason
    elif isinstance(value, str):
        if problem := text_problem(value):
            yield field, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            if problem := text_problem(key):
                yield field, f"a key {problem.removeprefix('the text ')}"
                continue
            yield from _unusable(item, (*path, key), depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _unusable(item, (*path, str(index)), depth + 1)


def text_problem(text: str) -> str | None:
    """What makes the text unusable downstream, or None."""
    if "\x00" in text:
        return "the text contains a NUL character (\\u0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "the text contains a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    return None
