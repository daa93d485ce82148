"""A real ``tether serve`` process on loopback, for tests that treat tether as a black box."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tether_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether", *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def new_key(db_url: str, *args: str) -> str:
    out = tether_cli("keys", "create", *args, "--db", db_url, "--json")
    assert out.returncode == 0, out.stderr
    return str(json.loads(out.stdout)["key"])


@dataclass
class Server:
    url: str
    db_url: str
    process: subprocess.Popen[str]

    def key(self, *args: str) -> str:
        return new_key(self.db_url, *args)


def start_server(
    db_url: str, *extra: str, env: dict[str, str] | None = None, port: int | None = None
) -> Server:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tether", "serve", "--db", db_url, "--port", str(port), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return Server(url, db_url, process)
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                f"tether serve did not start: {process.stdout.read() if process.stdout else ''}"
            )
        time.sleep(0.05)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    db_url = f"sqlite:///{tmp_path / 'server.db'}"
    admin_key_holder = new_key(db_url, "--role", "admin", "--subject", "ops")
    srv = start_server(db_url)
    srv.admin = admin_key_holder  # type: ignore[attr-defined]
    try:
        yield srv
    finally:
        srv.process.terminate()
        try:
            srv.process.wait(10)
        except subprocess.TimeoutExpired:
            srv.process.kill()
