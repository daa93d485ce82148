"""How a wait ended, in the shape a task's prompt, a flow's listener and the intent's result
all read: the outcome, the person's comment and form data, who decided, a tool's result."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import tether


@dataclass(frozen=True)
class Decision:
    """The end of a wait.

    ``outcome`` is the person's answer (``"approved"``, ``"rejected"``, or any allowed
    outcome of the task), ``"completed"``/``"failed"`` for a tool, and ``"timeout"`` when the
    deadline passed first: a timeout is never reported as a rejection.

    Example::

        @listen(review)
        def publish(self, result: HumanFeedbackResult) -> str:
            decision = Decision.from_feedback(result)
            if not decision.approved:
                return f"not published: {decision.outcome} ({decision.comment})"
            ...
    """

    outcome: str
    comment: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    """The person's form data (a human wait)."""
    decided_by: str | None = None
    result: Any = None
    """What the tool posted (a tool wait)."""

    @property
    def approved(self) -> bool:
        return self.outcome == "approved"

    @property
    def timed_out(self) -> bool:
        return self.outcome == tether.TIMEOUT

    @classmethod
    def of(cls, wait: tether.Wait) -> Decision:
        """The decision a closed wait holds."""
        outcome = wait.outcome or (tether.TIMEOUT if wait.timed_out else wait.status.value)
        if wait.kind is tether.WaitKind.HUMAN:
            data = wait.result if isinstance(wait.result, dict) else {}
            return cls(outcome, wait.comment, dict(data), wait.resolved_by)
        return cls(outcome, wait.comment, {}, wait.resolved_by, wait.result)

    def to_json(self) -> str:
        """The decision as the JSON text a flow is resumed with."""
        return json.dumps(asdict(self), sort_keys=True, default=str)

    def as_dict(self) -> dict[str, Any]:
        return json.loads(self.to_json())  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, text: str) -> Decision:
        raw = json.loads(text)
        if not isinstance(raw, dict) or "outcome" not in raw:
            raise ValueError(f"not a tether decision: {text[:200]!r}")
        return cls(
            outcome=str(raw["outcome"]),
            comment=raw.get("comment"),
            data=dict(raw.get("data") or {}),
            decided_by=raw.get("decided_by"),
            result=raw.get("result"),
        )

    @classmethod
    def from_feedback(cls, feedback: Any) -> Decision:
        """The decision in a flow listener's argument (crewai's ``HumanFeedbackResult``) or
        in the feedback text itself."""
        text = feedback if isinstance(feedback, str) else getattr(feedback, "feedback", None)
        if not isinstance(text, str):
            raise TypeError(f"expected a HumanFeedbackResult or its text, got {feedback!r}")
        return cls.from_json(text)

    def describe(self) -> str:
        """One sentence for a prompt: what was decided, by whom, and the comment."""
        if self.timed_out:
            text = "nobody answered before the deadline (timeout)"
        else:
            text = self.outcome + (f" by {self.decided_by}" if self.decided_by else "")
        if self.comment:
            text += f"; their comment: {self.comment}"
        if self.data:
            text += f"; their data: {json.dumps(self.data, sort_keys=True, default=str)}"
        if self.result is not None:
            text += f"; the result: {json.dumps(self.result, sort_keys=True, default=str)}"
        return text
