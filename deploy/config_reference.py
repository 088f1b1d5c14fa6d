"""The configuration reference of docs/deploy.md, generated so that it cannot drift from the code.

For each process a deployment runs (the four services and the provisioning init), the modules it
loads are found by importing its entry point in a fresh interpreter. The variables it reads are
then

- every field of each pydantic-settings class that those modules define and instantiate (env
  prefix + field name, its default, type and description), and
- every FLOWCASE_*/OTEL_* variable those modules read straight from `os.environ` (found in their
  source), with the default written there.

    uv run python deploy/config_reference.py           # print the reference (Markdown)
    uv run python deploy/config_reference.py --write   # replace it in docs/deploy.md

tests/deploy checks that docs/deploy.md holds exactly what this prints, and that docker-compose
and the Kubernetes manifests set no variable outside these sets.
"""

from __future__ import annotations

import ast
import enum
import importlib
import importlib.util
import inspect
import json
import subprocess
import sys
import typing
from dataclasses import dataclass
from pathlib import Path

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined
from pydantic_settings import BaseSettings

from flowcase.devstack.services import SERVICES

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "deploy.md"
BEGIN = "<!-- BEGIN GENERATED CONFIGURATION REFERENCE (deploy/config_reference.py) -->"
END = "<!-- END GENERATED CONFIGURATION REFERENCE -->"
READ_PREFIXES = ("FLOWCASE_", "OTEL_")

# What a deployment runs: each service as the local stack starts it, and the provisioning init.
PROCESSES: dict[str, str] = {
    **{service.name: f"{service.module}.__main__" for service in SERVICES},
    "provision": "flowcase.devstack.provision",
}


@dataclass(frozen=True)
class Variable:
    name: str
    default: str
    meaning: str
    source: str  # the settings class or module that reads it

    def row(self) -> str:
        meaning = self.meaning.replace("|", "\\|").replace("\n", " ")
        return f"| `{self.name}` | {self.default} | {meaning} | `{self.source}` |"


def loaded_modules(entry_module: str) -> list[str]:
    """The flowcase modules a process loads: its entry point imported in a fresh interpreter
    (with `run_service` made a no-op, so importing a service's `__main__` does not serve)."""
    probe = (
        "import importlib, json, sys; "
        "import flowcase.runtime as runtime; "
        "runtime.run_service = lambda *args, **kwargs: None; "
        f"importlib.import_module({entry_module!r}); "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('flowcase.'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot import {entry_module}:\n{done.stderr}")
    return list(json.loads(done.stdout))


def _type_name(annotation: typing.Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return " or ".join(_type_name(a) for a in args)
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        return "one of " + ", ".join(f"`{m.value}`" for m in annotation)
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "**required**"
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if value == "":
        return '`""`'
    return f"`{value}`"


def settings_variables(cls: type[BaseSettings]) -> list[Variable]:
    prefix = cls.model_config.get("env_prefix", "")
    found = []
    for name, field in cls.model_fields.items():
        env = field.validation_alias if isinstance(field.validation_alias, str) else None
        kind = _type_name(field.annotation)
        secret = "SecretStr" in str(field.annotation)
        meaning = field.description or f"(undocumented: give `{cls.__name__}.{name}` a description)"
        found.append(
            Variable(
                name=(env or f"{prefix}{name}").upper(),
                default=_default(field),
                meaning=f"{meaning} *{kind}{', secret' if secret else ''}*",
                source=cls.__name__,
            )
        )
    return found


def _environ_reads(tree: ast.AST, namespace: dict[str, typing.Any]) -> list[tuple[str, str]]:
    """(name, default) of each `os.environ.get(...)`, `os.getenv(...)`, `os.environ[...]`; a
    default that is an expression (`str(LOCAL_POSTGRES_PORT)`) is evaluated in its module's
    `namespace`, else shown as written."""
    reads = []
    for node in ast.walk(tree):
        key: ast.expr | None = None
        default = "unset"
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func in ("os.environ.get", "environ.get", "os.getenv", "getenv"):
                key = node.args[0]
                if len(node.args) > 1:
                    value = _value_of(node.args[1], namespace)
                    default = f"`{value!s}`" if value else '`""`'
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value) in (
            "os.environ",
            "environ",
        ):
            key, default = node.slice, "**required**"
        is_name = isinstance(key, ast.Constant) and isinstance(key.value, str)
        if is_name and key.value.startswith(READ_PREFIXES):  # type: ignore[union-attr]
            reads.append((key.value, default))  # type: ignore[union-attr]
    return reads


def _value_of(expression: ast.expr, namespace: dict[str, typing.Any]) -> typing.Any:
    if isinstance(expression, ast.Constant):
        return expression.value
    try:
        # The project's own source, compiled from its own tree: not outside input.
        code = compile(ast.Expression(expression), "<default>", "eval")
        return eval(code, dict(namespace))
    except Exception:
        return ast.unparse(expression)


def _called_names(tree: ast.AST) -> set[str]:
    """Names called (`X(...)`, `m.X(...)`) or handed over as a factory (`default_factory=X`)."""
    names = set()
    for node in ast.walk(tree):
        target = None
        if isinstance(node, ast.Call):
            target = node.func
        elif isinstance(node, ast.keyword) and node.arg == "default_factory":
            target = node.value
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names


def process_variables(entry_module: str) -> dict[str, Variable]:
    """Every variable one process reads, by name.

    A settings class counts when a loaded module instantiates it: the shared module that defines
    KafkaSettings and DatabaseSettings is loaded by processes that read only one of them.
    """
    loaded = loaded_modules(entry_module)
    # A service's `__main__` serves when imported: it is read, not imported (it defines nothing).
    modules = [importlib.import_module(name) for name in loaded if not name.endswith("__main__")]
    trees = {m.__name__: ast.parse(inspect.getsource(m)) for m in modules}
    for name in loaded:
        if name.endswith("__main__"):
            spec = importlib.util.find_spec(name)
            assert spec is not None
            assert spec.origin is not None
            trees[name] = ast.parse(Path(spec.origin).read_text())
    called = set().union(*(_called_names(tree) for tree in trees.values()))
    found: dict[str, Variable] = {}
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, BaseSettings)
                and cls.__module__ == module.__name__
                and cls.__name__ in called
            ):
                found.update((v.name, v) for v in settings_variables(cls))
    namespaces = {m.__name__: vars(m) for m in modules}
    for module_name, tree in trees.items():
        for name, default in _environ_reads(tree, namespaces.get(module_name, {})):
            found.setdefault(
                name,
                Variable(
                    name=name,
                    default=default,
                    meaning=f"read from the environment by `{module_name}`",
                    source=module_name,
                ),
            )
    return found


def reference() -> dict[str, dict[str, Variable]]:
    """The variables of each process (by process name, then variable name)."""
    return {process: process_variables(entry) for process, entry in PROCESSES.items()}


def _table(variables: list[Variable]) -> list[str]:
    return [
        "| variable | default | meaning | read by |",
        "|---|---|---|---|",
        *(v.row() for v in sorted(variables, key=lambda v: v.name)),
        "",
    ]


def render(by_process: dict[str, dict[str, Variable]]) -> str:
    services = [s.name for s in SERVICES]
    shared = set.intersection(*(set(by_process[s]) for s in services))
    lines = [
        "### Every service",
        "",
        f"Read by each of {', '.join(services)}.",
        "",
        *_table([by_process[services[0]][name] for name in shared]),
    ]
    for process, variables in by_process.items():
        own = [v for name, v in variables.items() if process == "provision" or name not in shared]
        title = "The provisioning init" if process == "provision" else f"{process} only"
        command = PROCESSES[process].removesuffix(".__main__")
        lines += [f"### {title}", "", f"`python -m {command}`", ""]
        lines += _table(own) if own else ["Nothing beyond the shared variables.", ""]
    return "\n".join(lines).rstrip() + "\n"


def write(doc: Path = DOC) -> None:
    text = doc.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    doc.write_text(f"{head}{BEGIN}\n{render(reference())}{END}{tail}")


def checked_in(doc: Path = DOC) -> str:
    text = doc.read_text()
    return text.partition(BEGIN)[2].partition(END)[0].removeprefix("\n")


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
        print(f"wrote the configuration reference into {DOC.relative_to(ROOT)}")
    else:
        print(render(reference()), end="")
