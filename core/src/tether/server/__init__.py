"""The HTTP server: AXP's intent API and tether's extensions over the engine."""

from .app import create_app

__all__ = ["create_app"]
