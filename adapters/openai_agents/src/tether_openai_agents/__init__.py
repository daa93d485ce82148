"""tether for the OpenAI Agents SDK: runs that wait for people and long tool calls, survive
process exits, and resume where they stopped.

Example::

    import tether
    from agents import Agent, function_tool
    from tether_openai_agents import DurableRunner, requires_approval

    @requires_approval(when=lambda args: args["amount"] > 1000)
    @function_tool
    def pay(amount: int, payee: str) -> str:
        \"\"\"Pay an amount to a payee.\"\"\"
        return psp.pay(amount, payee)

    agent = Agent(name="payments", instructions="Pay the invoices you are given.", tools=[pay])
    runner = DurableRunner(agent, address="agent://acme/payments")

    client = tether.connect()
    outcome = await runner.run(client, "Pay invoice 42: 32000 EUR to ACME", key="invoice-42")
    # outcome.waiting: a person approves with `tether inbox approve <intent id>`; then
    runner.worker(client).run()        # in any process: continues the run to its end

Public names: :class:`DurableRunner` and :class:`RunOutcome` (run, resume, worker),
:func:`requires_approval`, :func:`wait_for_tool` and :func:`callback_token` (marking tools),
:class:`TetherSession` (conversation memory on an intent), and the errors.
"""

from .errors import AdapterError, NotInToolStart, StoredStateError, UnapprovedToolCall
from .runner import DEFAULT_INTENT_TYPE, DurableRunner, RunOutcome
from .session import TetherSession
from .tools import (
    ApprovalPolicy,
    ApprovalRequest,
    ExternalCall,
    callback_token,
    requires_approval,
    wait_for_tool,
)

__all__ = [
    "DEFAULT_INTENT_TYPE",
    "AdapterError",
    "ApprovalPolicy",
    "ApprovalRequest",
    "DurableRunner",
    "ExternalCall",
    "NotInToolStart",
    "RunOutcome",
    "StoredStateError",
    "TetherSession",
    "UnapprovedToolCall",
    "callback_token",
    "requires_approval",
    "wait_for_tool",
]
