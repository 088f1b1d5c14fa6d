"""Each image, without Docker: its build stage's install and its start command, run for real.

The target's own `uv sync` line from the Dockerfile installs the service into a fresh virtual
environment (offline, from uv's cache); the service then starts from that environment alone, in
an empty working directory, with the environment docker-compose gives its container (endpoints
pointed at the test's Kafka topics and database). It must become ready, pass the image's health
check, and exit 0 on SIGTERM.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import os
import shlex
import shutil
import signal
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from dockerfile_parse import DockerfileParser
from ruamel.yaml import YAML

from flowcase.devstack.endpoints import Endpoints
from flowcase.devstack.services import SERVICES
from flowcase.events.settings import KafkaSettings

WORKSPACE_DISTRIBUTIONS = sorted(
    {
        d.metadata["Name"]
        for d in importlib.metadata.distributions()
        if d.metadata["Name"].startswith("flowcase-")
    }
)


def _install_line(dockerfile: DockerfileParser, target: str) -> list[str]:
    stage = None
    for instruction in dockerfile.structure:
        if instruction["instruction"] == "FROM":
            stage = instruction["value"].split()[-1]
        elif instruction["instruction"] == "RUN" and stage == f"build-{target}":
            return shlex.split(instruction["value"])
    raise AssertionError(f"no build stage for {target}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(*args: str, env: dict[str, str], cwd: Path) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *args, env=env, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(process.communicate(), timeout=180)
    assert process.returncode is not None
    return process.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("name", [s.name for s in SERVICES])
async def test_the_image_install_and_start_command_run_the_service(
    name: str,
    root: Path,
    tmp_path: Path,
    dockerfile: DockerfileParser,
    compose_project: dict[str, Any],
    stack: Endpoints,
    kafka_settings: KafkaSettings,
    database_url: str,
) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    venv = tmp_path / "opt-flowcase"
    build_env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv), "UV_OFFLINE": "1"}
    build_env.pop("VIRTUAL_ENV", None)
    # uv reuses a wheel it built of a workspace member even when its sources changed.
    reinstall = [a for d in WORKSPACE_DISTRIBUTIONS for a in ("--reinstall-package", d)]
    code, out = await _run(
        uv, *_install_line(dockerfile, name)[1:], *reinstall, env=build_env, cwd=root
    )
    assert code == 0, out

    port = _free_port()
    container_env = dict(compose_project["services"][name]["environment"])
    container_env.pop("OTEL_EXPORTER_OTLP_ENDPOINT")  # no collector here
    env = {
        **container_env,
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "FLOWCASE_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FLOWCASE_KAFKA_TOPIC_SUFFIX": kafka_settings.topic_suffix,
        "FLOWCASE_DATABASE_URL": database_url,
        "FLOWCASE_HTTP_HOST": "127.0.0.1",
        "FLOWCASE_HTTP_PORT": str(port),
    }
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    [command] = [
        c["value"]
        for c in dockerfile.structure
        if c["instruction"] == "CMD" and f"flowcase.{name}" in c["value"]
    ]
    argv = [str(venv / "bin" / "python"), *YAML(typ="safe").load(command)[1:]]
    log = (tmp_path / "service.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        *argv, env=env, cwd=workdir, stdout=log, stderr=asyncio.subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 90
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert process.returncode is None, (tmp_path / "service.log").read_text()
                try:
                    if (await client.get(f"http://127.0.0.1:{port}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "service.log").read_text()
                await asyncio.sleep(0.5)
        code, out = await _run(
            str(venv / "bin" / "python"),
            str(root / "deploy" / "docker" / "healthcheck.py"),
            "--ready",
            env=env,
            cwd=workdir,
        )
        assert code == 0, out
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=40) == 0, (
            tmp_path / "service.log"
        ).read_text()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        log.close()
