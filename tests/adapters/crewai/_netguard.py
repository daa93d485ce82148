"""No network in the adapter's tests: any connection or name lookup beyond loopback is
refused and logged (to a file, for child processes), so a test can assert there was none."""

from __future__ import annotations

import socket
from typing import Any

_LOCAL = ("localhost", "::1", "0.0.0.0")


def _local(host: Any) -> bool:
    if host is None:
        return True
    text = host.decode() if isinstance(host, bytes) else str(host)
    return text in _LOCAL or text.startswith("127.")


class NetGuard:
    def __init__(self, log_path: str | None = None) -> None:
        self.attempts: list[str] = []
        self.log_path = log_path

    def blocked(self, what: object) -> None:
        self.attempts.append(repr(what))
        if self.log_path:
            with open(self.log_path, "a") as log:
                log.write(f"{what!r}\n")

    def install(self) -> NetGuard:
        connect, connect_ex = socket.socket.connect, socket.socket.connect_ex
        getaddrinfo = socket.getaddrinfo
        guard = self

        def checked(address: Any) -> bool:
            if not isinstance(address, tuple):
                return True  # a unix socket
            if _local(address[0]):
                return True
            guard.blocked(address)
            return False

        def guarded_connect(self: socket.socket, address: Any) -> None:
            if not checked(address):
                raise OSError(f"network access is blocked in these tests: {address!r}")
            connect(self, address)

        def guarded_connect_ex(self: socket.socket, address: Any) -> int:
            if not checked(address):
                return 111
            return connect_ex(self, address)

        def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            if not _local(host):
                guard.blocked(host)
                raise socket.gaierror(f"name lookups are blocked in these tests: {host!r}")
            return getaddrinfo(host, *args, **kwargs)

        socket.socket.connect = guarded_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = guarded_connect_ex  # type: ignore[method-assign]
        socket.getaddrinfo = guarded_getaddrinfo
        return self
