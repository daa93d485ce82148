"""The one config object: ``tether.Settings``, from ``TETHER_*`` environment variables."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration for clients, the CLI and the server.

    Every field reads the environment variable ``TETHER_<FIELD>`` (``TETHER_DB``,
    ``TETHER_URL``, ...); command-line flags override them.
    """

    model_config = SettingsConfigDict(env_prefix="TETHER_", extra="ignore")

    db: str = "sqlite:///.tether/tether.db"
    """The store URL for library mode and the server (``sqlite:///path``)."""
    url: str | None = None
    """A server URL; when set, clients talk HTTP instead of opening the store."""
    api_key: str | None = None
    actor: str | None = None
    """Who a person is when using the CLI in library mode (default: the OS user)."""
    groups: str = ""
    """Comma-separated groups of that person."""
    workspace: str = "default"
    max_body_bytes: int = 128 * 1024
    """Requests with a larger body are refused with 413."""
    rate_limit: float = 2000.0
    """Requests per second per API key (0: no limit); over it, 429 with Retry-After."""
    rate_burst: float = 4000.0
    webhook_allow_private: bool = False
    """Allow webhook targets in private or link-local ranges (loopback is always allowed)."""
    webhook_max_attempts: int = 8
    """Attempts before a delivery is dead-lettered."""
    webhook_backoff_seconds: float = 1.0
    """The first retry's delay; each later one doubles it (with jitter), up to an hour."""
