"""Every shell example in the READMEs and docs runs as written, against a platform of its own.

The convention, for whoever writes the docs:

- every fenced block names its language (```text for output and diagrams);
- a ```bash, ```sh or ```shell block is run (of a ```console block, its `$ ` lines) unless the
  line just above its fence says why not, as `<!-- example: not run (a server in the
  foreground) -->`: for what a test cannot do (a server or `make up` in the foreground, Docker,
  kubectl, the test suite itself, a long benchmark);
- every curl says `--fail-with-body`, so that a refusal (a 401, a 422) fails the example.

How they run: the module starts one `DedicatedStack` (Kafka, PostgreSQL and the four services on
free ports, in a temporary home), as the reliability suite does. The blocks of one file run in
order in one bash session (`set -euo pipefail`, in the repository root, with the workspace's
environment not activated), so a block may use what an earlier block of the same file set (a
TOKEN, a REQUEST_ID); no file depends on another, so the files' sessions run side by side. The
examples name the local stack's fixed places, which `translation_to` maps to the module's stack:
the service URLs (127.0.0.1:8001 … 8004, or localhost), Kafka's 19092 and PostgreSQL's 55432, the
state folder `.flowcase/` (where `flowcase token` finds the development secret, as right after
`make up`), compose's default development secret, and the ports and URLs the `flowcase` commands
take by default. A failing block fails its file's test with the block's file and line, the line
that failed, and the block's output.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent

import pytest

from flowcase.devstack.dedicated import DedicatedStack
from flowcase.devstack.dev_secret import dev_secret
from flowcase.devstack.layout import Ports, repo_root
from flowcase.devstack.services import SERVICES

ROOT = repo_root()
SHELLS = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
NOT_RUN = re.compile(r"^\s*<!-- example: not run \((?P<reason>.*\S.*)\) -->\s*$")
ANY_MARK = re.compile(r"^\s*<!--\s*example")
# Every file's session, side by side, ends within this (a dozen CLI starts on a busy machine).
SESSION_SECONDS = 150
MARK = "::docs-example::"


@dataclass(frozen=True)
class Example:
    doc: str  # the file, from the repository root
    line: int  # of the opening fence
    language: str
    code: str
    not_run: str | None  # why, when it is not run

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def runs(self) -> bool:
        return self.language in SHELLS and self.not_run is None

    @property
    def commands(self) -> str:
        if self.language != "console":
            return self.code
        return "\n".join(line[2:] for line in self.code.splitlines() if line.startswith("$ "))


def markdown_files() -> list[Path]:
    found = []
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = sorted(
            s for s in subfolders if not s.startswith(".") and s != "node_modules"
        )
        found += [Path(folder) / f for f in files if f.endswith(".md")]
    return sorted(found)


def read_examples(text: str, doc: str) -> tuple[list[Example], list[str]]:
    """Every fenced block of a markdown text, and where it breaks the convention."""
    lines = text.splitlines()
    examples: list[Example] = []
    problems: list[str] = []
    mark: tuple[int, str] | None = None  # the line and reason of a marker awaiting its block
    i = 0
    while i < len(lines):
        line = lines[i]
        opening = FENCE.match(line)
        if opening is None:
            if mark is not None:
                problems.append(f"{doc}:{mark[0]}: the marker is not just above a block")
                mark = None
            if found := NOT_RUN.match(line):
                mark = (i + 1, found["reason"])
            elif ANY_MARK.search(line):
                problems.append(f"{doc}:{i + 1}: write a marker as <!-- example: not run (why) -->")
            i += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        language = (opening["info"].split() or [""])[0]
        end = i + 1
        while end < len(lines) and not re.fullmatch(
            rf" *{re.escape(fence[0])}{{{len(fence)},}} *", lines[end]
        ):
            end += 1
        if end == len(lines):
            problems.append(f"{doc}:{i + 1}: the block is never closed")
        body = [b[min(indent, len(b) - len(b.lstrip(" "))) :] for b in lines[i + 1 : end]]
        if not language:
            problems.append(f"{doc}:{i + 1}: name the block's language (```text if none)")
        if mark is not None and language not in SHELLS:
            problems.append(f"{doc}:{mark[0]}: a ```{language} block is never run: drop the marker")
        examples.append(
            Example(doc, i + 1, language, "\n".join(body), mark[1] if mark is not None else None)
        )
        mark = None
        i = end + 1
    if mark is not None:
        problems.append(f"{doc}:{mark[0]}: the marker is not just above a block")
    return examples, problems


def examples_of(path: Path) -> tuple[list[Example], list[str]]:
    return read_examples(path.read_text(), str(path.relative_to(ROOT)))


def runnable() -> dict[str, list[Example]]:
    """The examples to run, by file."""
    by_doc = {}
    for path in markdown_files():
        examples = [e for e in examples_of(path)[0] if e.runs]
        if examples:
            by_doc[examples[0].doc] = examples
    return by_doc


def test_every_shell_example_is_run_or_says_why_not() -> None:
    problems = [p for path in markdown_files() for p in examples_of(path)[1]]
    assert not problems, "\n".join(problems)


def test_the_convention_reads_blocks_markers_and_their_mistakes() -> None:
    text = dedent(
        """\
        ```bash
        echo run
        ```
        <!-- example: not run (a server in the foreground) -->
        ```sh
        serve
        ```
        - in a list:

          ```console
          $ echo indented
          output
          ```
        ```
        no language
        ```
        <!-- example: not run () -->
        <!-- example: not run (a blank line follows) -->

        ```bash
        echo run too
        ```
        <!-- example: not run (yaml is never run) -->
        ```yaml
        a: 1
        ```
        ```bash
        never closed
        """
    )
    examples, problems = read_examples(text, "x.md")
    assert [(e.line, e.language, e.runs, e.commands) for e in examples] == [
        (1, "bash", True, "echo run"),
        (5, "sh", False, "serve"),
        (10, "console", True, "echo indented"),
        (14, "", False, "no language"),
        (20, "bash", True, "echo run too"),
        (24, "yaml", False, "a: 1"),
        (27, "bash", True, "never closed"),
    ]
    assert examples[1].not_run == "a server in the foreground"
    assert problems == [
        "x.md:14: name the block's language (```text if none)",
        "x.md:17: write a marker as <!-- example: not run (why) -->",
        "x.md:18: the marker is not just above a block",
        "x.md:23: a ```yaml block is never run: drop the marker",
        "x.md:27: the block is never closed",
    ]


# --- the examples against a dedicated stack --------------------------------------------------


@dataclass(frozen=True)
class Translation:
    """The local stack's fixed places, as the examples name them, read on another stack."""

    text: list[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]]
    env: dict[str, str]

    def apply(self, code: str) -> str:
        for pattern, replacement in self.text:
            code = pattern.sub(replacement, code)
        return code


def compose_dev_secret() -> str:
    """The development secret docker-compose.yml gives the services unless the shell sets one."""
    compose = (ROOT / "docker-compose.yml").read_text()
    found = re.search(r"FLOWCASE_AUTH_DEV_SECRET:-([^}]+)\}", compose)
    assert found, "docker-compose.yml no longer defaults FLOWCASE_AUTH_DEV_SECRET"
    return found[1]


def translation_to(stack: DedicatedStack) -> Translation:
    local = Ports()
    urls = {str(s.port): stack.services[s.name].url for s in SERVICES}
    service = re.compile(rf"(?:https?://)?(?:127\.0\.0\.1|localhost):({'|'.join(urls)})\b")
    return Translation(
        text=[
            (service, lambda found: urls[found[1]]),
            (re.compile(rf"127\.0\.0\.1:{local.kafka}\b"), stack.kafka_bootstrap),
            (
                re.compile(rf"127\.0\.0\.1:{local.postgres}\b"),
                f"127.0.0.1:{stack.local.ports.postgres}",
            ),
            (re.compile(r"(?<![\w./-])\.flowcase/"), f"{stack.home}/"),
            (re.compile(re.escape(compose_dev_secret())), dev_secret(stack.home)),
        ],
        env={
            "FLOWCASE_HOME": str(stack.home),
            "FLOWCASE_KAFKA_PORT": str(stack.local.ports.kafka),
            "FLOWCASE_POSTGRES_PORT": str(stack.local.ports.postgres),
            # The broker a command reaches by default; its databases follow FLOWCASE_POSTGRES_PORT.
            "FLOWCASE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
            **{f"FLOWCASE_{n.upper()}_URL": s.url for n, s in stack.services.items()},
        },
    )


@pytest.fixture(scope="module")
def dedicated() -> Iterator[Translation]:
    stack = DedicatedStack()
    try:
        stack.start_infrastructure()
        stack.start_services()
        yield translation_to(stack)
    finally:
        stack.stop()


# Run before a file's blocks. The curl function stands in for curl: it refuses a call without
# --fail-with-body, and repeats a failed call's answer on stderr (the example may have sent it
# into a variable or a pipe, where the test's output would not show it).
PRELUDE = f"""\
set -euo pipefail
trap 'echo "{MARK} failed at $LINENO" >&2' ERR
curl() {{
  case " $* " in
    *" --fail-with-body "*) ;;
    *) echo "curl without --fail-with-body: a 401 or a 422 would pass unseen" >&2; return 2 ;;
  esac
  local answer status=0
  answer=$(command curl "$@") || status=$?
  printf '%s\\n' "$answer"
  if [ "$status" -ne 0 ]; then echo "curl exited $status, the answer: $answer" >&2; fi
  return "$status"
}}
"""


@dataclass
class Session:
    """One file's examples in one bash process, its output going to a file."""

    examples: list[Example]
    starts: list[int]  # the script line each example's code starts on
    output: Path
    process: subprocess.Popen[bytes] | None = None

    @classmethod
    def of(cls, examples: list[Example], translation: Translation, folder: Path) -> Session:
        script = PRELUDE.splitlines()
        starts = []
        for n, example in enumerate(examples):
            script.append(f'echo "{MARK} example {n}" >&2')
            starts.append(len(script) + 1)
            script += translation.apply(example.commands).splitlines()
        name = examples[0].doc.replace("/", "-")
        (folder / f"{name}.sh").write_text("\n".join(script) + "\n")
        return cls(examples, starts, folder / f"{name}.out")

    def start(self, env: dict[str, str]) -> None:
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(
                ["bash", str(self.output.with_suffix(".sh"))],
                cwd=ROOT,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait(self, seconds: float) -> str | None:
        """None when every example ran, else which one failed, on which line, and its output."""
        assert self.process is not None
        try:
            status = self.process.wait(timeout=max(seconds, 0))
        except subprocess.TimeoutExpired:
            self.kill()
            return self.failure(f"did not finish in {SESSION_SECONDS} s")
        return self.failure(f"failed (exit {status})") if status else None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def failure(self, why: str) -> str:
        output = self.output.read_text(errors="replace")
        parts = re.split(rf"^{re.escape(MARK)} example (\d+)$", output, flags=re.MULTILINE)
        if len(parts) < 2:
            return f"{self.examples[0].doc}: the session {why} before its first example:\n{output}"
        n, printed = int(parts[-2]), parts[-1]
        example = self.examples[n]
        at = ""
        failed = re.search(rf"^{re.escape(MARK)} failed at (\d+)$", printed, flags=re.MULTILINE)
        if failed:
            line = int(failed[1]) - self.starts[n]
            if 0 <= line < len(example.code.splitlines()):
                at = f" at {example.doc}:{example.line + 1 + line}"
            printed = printed.replace(failed[0], "")
        return (
            f"the example at {example.where} {why}{at}:\n{example.code}\n"
            f"--- its output ---\n{printed.strip()[-6000:]}"
        )


def shell_env(translation: Translation) -> dict[str, str]:
    """A reader's shell: no Flowcase or OpenTelemetry settings of this session, the workspace's
    environment not activated (the docs say `uv run`), then the translation's."""
    venv = Path(sys.prefix).resolve()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FLOWCASE_", "OTEL_")) and k != "VIRTUAL_ENV"
    }
    env["PATH"] = os.pathsep.join(
        p for p in env["PATH"].split(os.pathsep) if not Path(p).resolve().is_relative_to(venv)
    )
    return {**env, **translation.env}


@pytest.fixture(scope="module")
def sessions(
    dedicated: Translation, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Session], float]]:
    """Every file's session, started together (files do not depend on one another, and most of
    a session is waiting: on a command starting, on the platform), with their deadline."""
    folder = tmp_path_factory.mktemp("docs-examples")
    started = {doc: Session.of(e, dedicated, folder) for doc, e in runnable().items()}
    env = shell_env(dedicated)
    for session in started.values():
        session.start(env)
    try:
        yield started, time.monotonic() + SESSION_SECONDS
    finally:
        for session in started.values():
            session.kill()


@pytest.mark.integration
@pytest.mark.parametrize("doc", sorted(runnable()))
def test_the_examples_run_as_written(doc: str, sessions: tuple[dict[str, Session], float]) -> None:
    started, deadline = sessions
    failed = started[doc].wait(deadline - time.monotonic())
    if failed:
        pytest.fail(failed, pytrace=False)
