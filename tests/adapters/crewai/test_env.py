"""crewai's calls home are off for the adapter's runs unless the user asks otherwise, and a
flow's persistence never falls back to crewai's files under HOME."""

from __future__ import annotations

import pytest
from tether_crewai import AdapterError, TetherFlowPersistence
from tether_crewai import _env as env


def test_the_adapter_switches_off_only_what_the_user_left_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in env.OFFLINE_DEFAULTS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CREWAI_DISABLE_VERSION_CHECK", "false")  # the user's choice
    monkeypatch.setattr(env, "_ours", set())
    env.quiet_crewai()
    import os

    assert os.environ["CREWAI_DISABLE_TELEMETRY"] == "true"
    assert os.environ["OTEL_SDK_DISABLED"] == "true"
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    assert os.environ["CREWAI_DISABLE_VERSION_CHECK"] == "false"
    env.allow_crewai_telemetry()  # crewai_telemetry=True on a runner
    assert "CREWAI_DISABLE_TELEMETRY" not in os.environ
    assert os.environ["CREWAI_DISABLE_VERSION_CHECK"] == "false"


def test_flow_persistence_needs_tether() -> None:
    with pytest.raises(AdapterError, match="no tether client"):
        TetherFlowPersistence().load_state("0190f3c2-0000-7000-8000-000000000001")
