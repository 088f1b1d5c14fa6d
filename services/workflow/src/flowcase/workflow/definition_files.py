"""Reading process definitions from YAML files, with every problem pinned to its line.

The YAML is parsed with ruamel.yaml's round-trip loader, which remembers where each key and item
was written; pydantic then validates the plain data, and each error's location is walked back
through the parsed document to the line that holds the offending field.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from flowcase.events.catalogue.workflow import StepKind
from flowcase.workflow.definition import InconsistentSteps, ProcessDefinition, dotted_path

SUFFIXES = (".yaml", ".yml")


def shipped_folder() -> Path:
    """The definitions that ship with the service, installed as package data."""
    return Path(str(files("flowcase.workflow") / "processes"))


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field or '(document)'}: {self.reason}"


class InvalidDefinition(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def parse_definition(text: str, file: str) -> ProcessDefinition:
    """Validate one definition's YAML text; `file` names it in problems."""
    try:
        document = YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = Problem(file, line, "", f"not valid YAML: {exc.problem}")
        raise InvalidDefinition([problem]) from None
    except YAMLError as exc:  # a character YAML does not allow, before any parsing
        problem = Problem(file, None, "", f"not valid YAML: {' '.join(str(exc).split())}")
        raise InvalidDefinition([problem]) from None
    if not isinstance(document, CommentedMap):
        raise InvalidDefinition([Problem(file, 1, "", "a definition is a YAML mapping")])
    try:
        return ProcessDefinition.model_validate(_plain(document))
    except ValidationError as exc:
        raise InvalidDefinition(list(_problems(exc, document, file))) from None


def load_definition(path: Path) -> ProcessDefinition:
    return parse_definition(path.read_text(encoding="utf-8"), str(path))


@dataclass(frozen=True)
class FileReport:
    path: Path
    definition: ProcessDefinition | None
    problems: tuple[Problem, ...]


def check_folder(folder: Path) -> list[FileReport]:
    """Validate every definition file in `folder`, and that no two serve one request type."""
    reports: list[FileReport] = []
    served_by: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if p.suffix in SUFFIXES):
        try:
            definition = load_definition(path)
        except InvalidDefinition as exc:
            reports.append(FileReport(path, None, tuple(exc.problems)))
            continue
        other = served_by.setdefault(definition.request_type, path)
        if other != path:
            problem = Problem(
                str(path), None, "request_type", f"{other.name} already serves this request type"
            )
            reports.append(FileReport(path, None, (problem,)))
            continue
        reports.append(FileReport(path, definition, ()))
    return reports


def load_folder(folder: Path) -> list[ProcessDefinition]:
    """Every definition in `folder`, or InvalidDefinition with the problems of all files."""
    reports = check_folder(folder)
    problems = [problem for report in reports for problem in report.problems]
    if problems:
        raise InvalidDefinition(problems)
    return [report.definition for report in reports if report.definition]


def _plain(node: Any) -> Any:
    # pydantic should see ordinary dicts and lists, not ruamel's commented subclasses.
    if isinstance(node, CommentedMap):
        return {key: _plain(value) for key, value in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(item) for item in node]
    return node


def _problems(exc: ValidationError, document: CommentedMap, file: str) -> Iterator[Problem]:
    for error in exc.errors():
        cause = error.get("ctx", {}).get("error")
        if isinstance(cause, InconsistentSteps):
            for loc, reason in cause.problems:
                yield Problem(file, _line_of(document, loc), dotted_path(loc), reason)
            continue
        loc = _yaml_loc(document, tuple(error["loc"]))
        if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc += ("kind",)
        yield Problem(file, _line_of(document, loc), dotted_path(loc), _reason(error))


def _yaml_loc(document: CommentedMap, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop the parts of a pydantic location that are not in the document, such as the
    discriminator tag pydantic inserts for a step (`steps.2.approval.timeout`)."""
    node: Any = document
    kept: list[str | int] = []
    for part in loc:
        if _has(node, part):
            node = node[part]
            kept.append(part)
        elif _names_missing_field(node, part):
            kept.append(part)
    return tuple(kept)


# Labels pydantic adds to locations inside unions and custom types.
_PYDANTIC_LABELS = {"function-after", "function-before", "function-plain", "str"}


def _names_missing_field(node: Any, part: str | int) -> bool:
    return (
        isinstance(node, CommentedMap)
        and isinstance(part, str)
        and part not in _PYDANTIC_LABELS
        and node.get("kind") != part
    )


def _has(node: Any, part: str | int) -> bool:
    if isinstance(node, CommentedMap):
        return part in node
    return isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node)


def _line_of(document: CommentedMap, loc: tuple[str | int, ...]) -> int:
    """1-based line of the deepest node of `loc` that the document has."""
    node: Any = document
    line = document.lc.line
    for part in loc:
        if not _has(node, part):
            break
        line = node.lc.key(part)[0] if isinstance(node, CommentedMap) else node.lc.item(part)[0]
        node = node[part]
    return line + 1


def _reason(error: Any) -> str:
    if error["type"] == "union_tag_invalid":
        return f"unknown step kind {error['ctx']['tag']!r}; one of {', '.join(StepKind)}"
    if error["type"] == "union_tag_not_found":
        return f"every step needs a kind, one of {', '.join(StepKind)}"
    message = str(error["msg"])
    # pydantic prefixes messages of validators that raise ValueError; the reason reads better bare.
    return message.removeprefix("Value error, ")
