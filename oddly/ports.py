"""A free TCP port on 127.0.0.1: for the demo's services, the benchmarks and the tests (a port that
was free a moment ago is also what "a server that is down" looks like)."""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])
