"""Many threads and processes on one store: races, and invariants under random operations."""

from __future__ import annotations

import multiprocessing
import os
import threading

import tether
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tether import HumanTask, Principal, Status

from .conftest import AGENT, new_intent, waiting_for_human

EXAMPLES = int(os.environ.get("TETHER_HYPOTHESIS_EXAMPLES", "25"))  # make chaos runs many more


def _race(n: int, fn: object) -> list[BaseException | None]:
    barrier = threading.Barrier(n)
    results: list[BaseException | None] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            fn(i)  # type: ignore[operator]
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_two_threads_resolve_one_wait_exactly_one_wins(client: tether.Client) -> None:
    for _ in range(20):
        intent = waiting_for_human(client)
        people = [client.as_actor(Principal.human(n)) for n in ("alice", "bob")]
        outcomes = ["approved", "rejected"]
        results = _race(
            2, lambda i, p=people, o=outcomes, x=intent.intent_id: p[i].respond(x, o[i])
        )
        errors = [r for r in results if r is not None]
        assert len(errors) == 1 and isinstance(errors[0], tether.Conflict)
        wait = client.list_waits(intent.intent_id)[0]
        assert wait.outcome == outcomes[results.index(None)]
        assert [e.event_type for e in client.list_events(intent.intent_id)].count(
            "intent.resumed"
        ) == 1


def _answer(
    db_url: str, intent_id: str, name: str, outcome: str, start: object, out: object
) -> None:
    with tether.connect(db_url, actor=Principal.human(name)) as client:
        start.wait()  # type: ignore[attr-defined]
        try:
            client.respond(intent_id, outcome)
            out.put((name, "won"))  # type: ignore[attr-defined]
        except tether.Conflict:
            out.put((name, "conflict"))  # type: ignore[attr-defined]


def test_two_processes_resolve_one_wait_exactly_one_wins(store_url: str) -> None:
    db_url = store_url
    ctx = multiprocessing.get_context("spawn")
    with tether.connect(db_url) as client:
        intents = [waiting_for_human(client).intent_id for _ in range(3)]
    for intent_id in intents:
        start, out = ctx.Event(), ctx.Queue()
        procs = [
            ctx.Process(target=_answer, args=(db_url, intent_id, n, o, start, out))
            for n, o in (("alice", "approved"), ("bob", "rejected"))
        ]
        for p in procs:
            p.start()
        start.set()
        for p in procs:
            p.join(60)
            assert p.exitcode == 0
        results = dict(out.get(timeout=5) for _ in procs)
        assert sorted(results.values()) == ["conflict", "won"]
        with tether.connect(db_url) as client:
            wait = client.list_waits(intent_id)[0]
            winner = next(n for n, r in results.items() if r == "won")
            assert wait.resolved_by == f"human:{winner}"
            assert client.verify_audit(intent_id).ok


# -- random operation sequences from several threads ----------------------------------------------

OPS = [
    "start",
    "step",
    "wait_human",
    "approve",
    "reject",
    "complete",
    "fail",
    "cancel",
    "claim",
    "tool",
]


def _apply(client: tether.Client, intent_id: str, op: str, n: int) -> None:
    people = client.as_actor(Principal.human(f"p{n % 3}"))
    try:
        if op == "start":
            client.start(intent_id, owner=f"w{n}", lease_seconds=0.001)
        elif op == "step":
            client.record_step(intent_id, f"k{n % 4}", n)
        elif op == "wait_human":
            client.wait_for_human(intent_id, HumanTask(title="ok?"), key=f"h{n % 3}")
        elif op == "approve":
            people.approve(intent_id)
        elif op == "reject":
            people.reject(intent_id)
        elif op == "complete":
            client.complete(intent_id, {"n": n})
        elif op == "fail":
            client.fail(intent_id, "x")
        elif op == "cancel":
            client.cancel(intent_id, "x")
        elif op == "claim":
            client.claim(AGENT, owner=f"w{n}", lease_seconds=0.001)
        elif op == "tool":
            wait = client.wait_for_tool(intent_id, "t", key=f"t{n % 2}")
            assert wait.callback_token is not None
            client.complete_tool(wait.callback_token, {"n": n})
    except tether.TetherError:
        pass  # refusals are expected; the invariants below must hold regardless


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    plans=st.lists(
        st.lists(st.tuples(st.integers(0, 2), st.sampled_from(OPS)), min_size=1, max_size=12),
        min_size=2,
        max_size=4,
    )
)
def test_invariants_hold_under_random_concurrent_operations(
    plans: list[list[tuple[int, str]]], store_url: str
) -> None:
    with tether.connect(store_url) as client:
        # one store serves every example: each example works on its own three intents
        ids = [new_intent(client).intent_id for _ in range(3)]
        terminal_seen: dict[str, int] = {}
        lock = threading.Lock()

        def run(i: int) -> None:
            for n, (which, op) in enumerate(plans[i]):
                intent_id = ids[which]
                _apply(client, intent_id, op, n)
                current = client.get_intent(intent_id)
                if current.status.terminal:
                    with lock:
                        terminal_seen.setdefault(intent_id, current.seq)

        failures = [r for r in _race(len(plans), run) if r is not None]
        assert not failures, failures
        for intent_id in ids:
            events = client.list_events(intent_id)
            assert [e.seq for e in events] == list(range(1, len(events) + 1))  # gap-free
            ends = [e for e in events if e.status.terminal]
            assert len(ends) <= 1 and (not ends or ends[0] == events[-1])  # nothing after the end
            if intent_id in terminal_seen:
                assert events[-1].seq == terminal_seen[intent_id]
            for e in events:
                assert (e.waiting_reason is not None) == (e.status is Status.WAITING)
            for wait in client.list_waits(intent_id):
                resolutions = [
                    e for e in events
                    if e.details.get("wait_id") == wait.wait_id
                    and e.event_type in ("intent.resumed", "intent.timeout")
                ]  # fmt: skip
                assert len(resolutions) <= 1  # each wait resolved at most once
        assert client.verify_audit().ok
