"""LangGraph values as JSON that tether can store, and large values split into parts.

LangGraph's serializer turns a value into ``(type, bytes)``; tether stores JSON, so a value is
kept as ``[type, base64]``. A request to ``tether serve`` has a body limit (128 KiB by
default), so when a record would be larger its biggest values move out into parts of their
own, written first and named by their content: ``[type, {"h": digest, "n": parts}]``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import Any

from langgraph.checkpoint.serde.base import SerializerProtocol

from . import _layout

Slot = list[Any]
"""An encoded value: ``[type, base64]`` inline, or ``[type, {"h", "n"}]`` in parts."""

PART_CHARS = 90_000
"""The size of one part of a large value (characters of base64)."""

RECORD_CHARS = 100_000
"""A record whose values add up to more than this moves its largest values into parts."""


def encode(serde: SerializerProtocol, value: Any) -> Slot:
    kind, data = serde.dumps_typed(value)
    return [kind, base64.b64encode(data).decode("ascii")]


def decode(serde: SerializerProtocol, slot: Slot, fetch: Callable[[str], Any]) -> Any:
    """The value of a slot; ``fetch(key)`` reads a part of a value stored in parts."""
    kind, body = slot
    if isinstance(body, dict):
        body = "".join(fetch(_layout.blob_key(body["h"], i)) for i in range(body["n"]))
    return serde.loads_typed((kind, base64.b64decode(body)))


def fit(slots: Iterable[Slot], budget: int = RECORD_CHARS) -> list[tuple[str, str]]:
    """Move the largest inline slots into parts until the rest fits ``budget``.

    Changes the slots in place and returns the parts to write (key, text) before the record
    that refers to them.
    """
    inline = [s for s in slots if isinstance(s[1], str)]
    total = sum(len(s[1]) for s in inline)
    parts: list[tuple[str, str]] = []
    for slot in sorted(inline, key=lambda s: len(s[1]), reverse=True):
        if total <= budget:
            break
        text: str = slot[1]
        digest = _layout.blob_digest(text)
        pieces = [text[i : i + PART_CHARS] for i in range(0, len(text), PART_CHARS)]
        parts.extend((_layout.blob_key(digest, i), piece) for i, piece in enumerate(pieces))
        slot[1] = {"h": digest, "n": len(pieces)}
        total -= len(text)
    return parts
