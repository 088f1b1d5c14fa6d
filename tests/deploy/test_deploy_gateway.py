"""The compose gateway's nginx configuration, run by a real nginx: what it answers by itself.

The listeners proxy to the services by their compose names, which resolve only inside a compose
network; what the gateway answers without a service — `/metrics` refused from outside, the
development connector stand-in — is checked here on ports of this machine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowcase.devstack.dedicated import free_ports
from flowcase.devstack.services import SERVICES

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
HOOKS_PORT = 8009

pytestmark = pytest.mark.skipif(
    not Path(NGINX).exists(), reason="nginx is not installed (`make install` provides it)"
)


@pytest.fixture(scope="module")
def gateway(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, str]]:
    """The gateway's nginx.conf on free local ports: each compose port's base URL here."""
    folder = tmp_path_factory.mktemp("gateway")
    text = (root / "deploy" / "gateway" / "nginx.conf").read_text()
    compose_ports = [int(p) for p in re.findall(r"listen (\d+);", text)]
    assert set(compose_ports) == {s.port for s in SERVICES} | {HOOKS_PORT}
    here = dict(zip(compose_ports, free_ports(len(compose_ports)), strict=True))
    text = re.sub(r"(?m)^user .*;$", "", text)
    text = text.replace("pid /tmp/nginx.pid;", f"pid {folder}/nginx.pid;")
    text = re.sub(r"listen (\d+);", lambda m: f"listen 127.0.0.1:{here[int(m[1])]};", text)
    text = text.replace(
        "include /etc/nginx/internal-only.conf;",
        f"include {root / 'deploy' / 'gateway' / 'internal-only.conf'};",
    )
    temp_paths = " ".join(
        f"{kind}_temp_path {folder}/{kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    text = text.replace("http {", "http {\n    " + temp_paths, 1)
    conf = folder / "nginx.conf"
    conf.write_text(text)
    command = [NGINX, "-c", str(conf), "-p", str(folder), "-e", str(folder / "error.log")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr
    nginx = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        urls = {port: f"http://127.0.0.1:{local}" for port, local in here.items()}
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(urls[HOOKS_PORT], timeout=1)
                break
            except httpx.TransportError:
                assert nginx.poll() is None, nginx.stderr.read() if nginx.stderr else ""
                assert time.monotonic() < deadline, "nginx did not listen within 30 s"
                time.sleep(0.1)
        yield urls
    finally:
        nginx.terminate()
        nginx.wait(timeout=10)


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_metrics_are_not_served_to_the_outside(gateway: dict[int, str], service: Any) -> None:
    answer = httpx.get(f"{gateway[service.port]}/metrics", timeout=5)

    # nginx's own 404: the request never reached a service (none runs here to answer).
    assert answer.status_code == 404
    assert "nginx" in answer.text


def test_the_development_connector_stand_in_answers_every_connector(
    gateway: dict[int, str],
) -> None:
    hooks = gateway[HOOKS_PORT]

    first = httpx.post(f"{hooks}/hooks/identity-provider", json={"step": "reset"}, timeout=5)
    second = httpx.post(f"{hooks}/hooks/erp", json={}, timeout=5)

    assert first.status_code == second.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json()["connector"] == "identity-provider"
    assert second.json()["connector"] == "erp"
    assert first.json()["reference"] != second.json()["reference"]
    assert httpx.get(f"{hooks}/hooks/erp", timeout=5).status_code == 403
    assert httpx.post(f"{hooks}/other", timeout=5).status_code == 404


def test_the_stand_in_is_reached_only_inside_the_compose_network(
    compose_project: dict[str, Any],
) -> None:
    services = compose_project["services"]
    published = {str(p["published"]) for p in services["gateway"]["ports"]}
    workflow_env = services["workflow"]["environment"]

    assert str(HOOKS_PORT) not in published
    assert workflow_env["FLOWCASE_WORKFLOW_CONNECTOR_GATEWAY_URL"] == (
        f"http://gateway:{HOOKS_PORT}/hooks"
    )
