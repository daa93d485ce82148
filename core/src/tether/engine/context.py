"""What every engine operation runs with: the time, the actor, and the store's secret."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..clock import to_text
from ..model import Principal


@dataclass(frozen=True)
class Ctx:
    now: datetime
    actor: Principal
    secret: str

    @property
    def now_text(self) -> str:
        return to_text(self.now)
