"""crewai's calls home, switched off for the adapter's runs unless the user asks otherwise.

crewai sends anonymous telemetry, may start a trace session, and checks PyPI for a newer
release when it prints; each of these reaches the network from an agent's process. It reads
its switches from the environment at the moment it would call out, so setting them before a
run is enough. A variable the user set (to anything) is left as it is, and
``crewai_telemetry=True`` on a runner gives crewai back its own defaults.
"""

from __future__ import annotations

import os
import threading

OFFLINE_DEFAULTS: dict[str, str] = {
    "CREWAI_DISABLE_TELEMETRY": "true",
    "OTEL_SDK_DISABLED": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",
    "CREWAI_DISABLE_VERSION_CHECK": "true",
}
"""The variables crewai reads (checked against crewai 1.15: ``crewai_core/telemetry.py``,
``crewai/execution.py``, ``crewai/events/utils/console_formatter.py``) and their offline values."""

_lock = threading.Lock()
_ours: set[str] = set()


def quiet_crewai() -> None:
    """Set each offline default that is not set yet (and remember which ones we set)."""
    with _lock:
        for name, value in OFFLINE_DEFAULTS.items():
            if name not in os.environ:
                os.environ[name] = value
                _ours.add(name)


def allow_crewai_telemetry() -> None:
    """Undo :func:`quiet_crewai` for the variables it set; the user's own stay."""
    with _lock:
        for name in list(_ours):
            if os.environ.get(name) == OFFLINE_DEFAULTS[name]:
                del os.environ[name]
            _ours.discard(name)
