"""tether for CrewAI: crews and flows whose runs wait for people, survive their process, and
resume where they stopped, in any process.

- :class:`DurableCrew`: runs a crew as a tether intent. Finished tasks are kept in tether,
  so a resumed crew neither runs them again nor calls the model for them.
- :func:`requires_approval`, :func:`requires_review`, :func:`awaits_tool`: task wrappers; the
  crew suspends before (or, for a review, after) the task until the wait is answered.
- :class:`DurableFlow`, :class:`TetherFlowPersistence`, :func:`wait_for_human`,
  :func:`wait_for_tool`: flows that pause through ``HumanFeedbackPending`` under ``@persist``
  with their state in tether, resumed by ``Flow.from_pending(...).resume(decision_json)``.
- In both, every task, flow method, model turn and tool call is a mesh boundary (a killed or
  paused agent stops there, held, not failed), a tool outside the agent's scope is refused
  and the model is told so, each tool call is journaled so a resumed step does not repeat
  it, and each model turn's usage is reported as spend.

Example::

    import tether
    from crewai import Crew, Task
    from tether_crewai import DurableCrew, requires_approval

    def build_crew() -> Crew:
        write = Task(description="Write a post about {topic}", ..., agent=writer)
        publish = requires_approval(Task(description="Publish it", ..., agent=publisher),
                                    title="Publish this post?", groups=["editors"])
        return Crew(agents=[writer, publisher], tasks=[write, publish])

    durable = DurableCrew(build_crew, tether.connect(), agent="agent://acme/content")
    run = durable.run({"topic": "durable agents"}, key="post-42")   # waits for an editor
    durable.worker().run()        # any process, later: continues it when they decide

Importing this package switches crewai's telemetry, tracing and version check off (each one
only if the user did not set it); ``crewai_telemetry=True`` on a runner gives them back.
"""

from ._binding import PriceFn
from ._crew import CREW_INTENT_TYPE, DurableCrew
from ._decision import Decision
from ._env import OFFLINE_DEFAULTS, quiet_crewai
from ._flow import FLOW_INTENT_TYPE, DurableFlow
from ._runner import RunResult
from .errors import AdapterError, StoredStateError
from .flow_steps import wait_for_human, wait_for_tool
from .gates import Gate, awaits_tool, decision_of, requires_approval, requires_review
from .persistence import TetherFlowPersistence

quiet_crewai()

__all__ = [
    "CREW_INTENT_TYPE",
    "FLOW_INTENT_TYPE",
    "OFFLINE_DEFAULTS",
    "AdapterError",
    "Decision",
    "DurableCrew",
    "DurableFlow",
    "Gate",
    "PriceFn",
    "RunResult",
    "StoredStateError",
    "TetherFlowPersistence",
    "awaits_tool",
    "decision_of",
    "requires_approval",
    "requires_review",
    "wait_for_human",
    "wait_for_tool",
]
