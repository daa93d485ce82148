"""The adapter's errors (tether's own errors pass through unchanged)."""

from __future__ import annotations


class AdapterError(Exception):
    """A crew or flow cannot run durably as it is written (the message says why)."""


class StoredStateError(AdapterError):
    """What tether holds for a run was written by a newer release of this adapter."""
