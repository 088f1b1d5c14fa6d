"""Fixtures of the deployment checks: the repository's deploy files, parsed and rendered.

Nothing here needs a network or a Docker engine. The compose and kustomize renderers are tools
`make install` provides; a test that needs a missing one is skipped, saying which.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser
from ruamel.yaml import YAML

from flowcase.devstack import services as devstack_services
from flowcase.devstack.services import SERVICES, ServiceProcess
from flowcase.devstack.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".flowcase" / "tools" / "bin"


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def config_reference() -> ModuleType:
    """deploy/config_reference.py, the generator of the configuration reference."""
    spec = importlib.util.spec_from_file_location(
        "flowcase_config_reference", ROOT / "deploy" / "config_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def variables_read(config_reference: ModuleType) -> dict[str, set[str]]:
    """The environment variables each process reads (service name or `provision` → names)."""
    return {process: set(variables) for process, variables in config_reference.reference().items()}


@pytest.fixture(scope="session")
def local_stack_launches() -> dict[str, tuple[list[str], dict[str, str]]]:
    """How `flowcase stack up` starts each service (the command its supervisor runs): its argv and
    the environment it sets.

    ServiceProcess.start runs with spawn replaced by a recorder, so nothing is started.
    """
    launches: dict[str, tuple[list[str], dict[str, str]]] = {}
    stack = LocalStack()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ServiceProcess, "pid", lambda self: None)
        patch.setattr(devstack_services, "wait_until", lambda *args, **kwargs: None)
        for service in SERVICES:

            def record(
                args: list[str], *, env: dict[str, str], name: str = service.name, **_: Any
            ) -> int:
                launches[name] = (list(args), dict(env))
                return 0

            patch.setattr(devstack_services, "spawn", record)
            ServiceProcess(service, stack.layout).start(stack.service_env(service.name))
    return launches


def _tool(name: str, hint: str) -> Path:
    found = shutil.which(name) or (TOOLS / name if (TOOLS / name).exists() else None)
    if found is None:
        pytest.skip(f"{name} is not installed ({hint}); run `make install`")
    return Path(found)


@pytest.fixture(scope="session")
def compose_check() -> Path:
    return _tool("compose-check", "built from deploy/compose-check with Go")


@pytest.fixture(scope="session")
def compose_project(compose_check: Path) -> dict[str, Any]:
    """docker-compose.yml as compose-go loads it: validated, interpolated with the defaults."""
    done = subprocess.run(
        [str(compose_check), str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        timeout=60,
        env={},
    )
    assert done.returncode == 0, f"docker-compose.yml does not load:\n{done.stderr}"
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def compose_schema(compose_check: Path) -> dict[str, Any]:
    """The compose-spec JSON schema that compose-go embeds (pinned by its go.mod)."""
    done = subprocess.run(
        [str(compose_check), "-schema"], capture_output=True, text=True, timeout=60, check=True
    )
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def compose_raw() -> dict[str, Any]:
    return YAML(typ="safe").load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="session")
def dockerfile() -> DockerfileParser:
    return DockerfileParser(path=str(ROOT / "deploy" / "docker" / "Dockerfile"))


@pytest.fixture(scope="session")
def kustomize() -> list[str]:
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    return [str(_tool("kustomize", "kubectl's built-in or built with Go")), "build"]


def render(kustomize: list[str], folder: Path) -> list[dict[str, Any]]:
    done = subprocess.run([*kustomize, str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"kustomize cannot render {folder}:\n{done.stderr}"
    return [doc for doc in YAML(typ="safe").load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def k8s_base(kustomize: list[str]) -> list[dict[str, Any]]:
    return render(kustomize, ROOT / "deploy" / "k8s" / "base")


@pytest.fixture(scope="session")
def k8s_overlay(kustomize: list[str]) -> list[dict[str, Any]]:
    return render(kustomize, ROOT / "deploy" / "k8s" / "overlays" / "example")
