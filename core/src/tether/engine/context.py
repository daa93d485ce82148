"""What every engine operation runs with: the time, the actor, and the store's secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..clock import to_text
from ..model import Principal


@dataclass(frozen=True)
class Ctx:
    now: datetime
    actor: Principal
    secret: str
    now_text: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "now_text", to_text(self.now))
