"""A stack's servers listen below the kernel's ephemeral range (see `listening_ports`)."""

from __future__ import annotations

import socket
from pathlib import Path

from flowcase.devstack.dedicated import free_ports, listening_ports


def test_servers_listen_below_the_ports_outgoing_connections_are_given() -> None:
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    chosen = [*free_ports(20), *free_ports(4, consecutive=True)]
    assert all(port in listening_ports() for port in chosen)
    assert not [port for port in chosen if low <= port <= high]
    # What the kernel gives the local end of a connection is never one of them.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        with socket.create_connection(listener.getsockname()) as client:
            assert client.getsockname()[1] not in listening_ports()
