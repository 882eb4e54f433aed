"""AgentService with a recording fake store and an injected clock (no database)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from cc_ari.agents.errors import InvalidTransition, UnknownAgent, UnknownQueue
from cc_ari.agents.models import AgentState
from cc_ari.agents.service import AgentService

WRAPUP = 0.05


class FakeStore:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.states: list[dict[str, Any]] = []

    def agent_event(self, key: str, **values: Any) -> None:
        self.events.append({"key": key, **values})

    def agent_state(self, agent: str, **values: Any) -> None:
        self.states.append({"agent": agent, **values})


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self) -> None:
        self.store = FakeStore()
        self.clock = Clock()
        self.available = 0
        self.svc = AgentService(["agent1", "agent2"], ["sales", "support"], self.store,  # type: ignore[arg-type]
                                clock=self.clock)
        self.svc.on_available = self._available

    def _available(self) -> None:
        self.available += 1


@pytest.fixture
def h() -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.svc.close()


def test_agents_start_logged_out_and_unknown_names_are_rejected(h: Harness) -> None:
    assert {a.name: a.state for a in h.svc.all()} == {"agent1": AgentState.LOGGED_OUT,
                                                       "agent2": AgentState.LOGGED_OUT}
    assert h.svc.queue_names == frozenset({"sales", "support"})
    with pytest.raises(UnknownAgent, match="unknown agent 'bob'") as exc:
        h.svc.login("bob", ["sales"])
    assert exc.value.agent == "bob"


def test_login_to_unknown_queue_is_rejected_and_changes_nothing(h: Harness) -> None:
    with pytest.raises(UnknownQueue, match="unknown queue\\(s\\): billing, vip") as exc:
        h.svc.login("agent1", ["sales", "vip", "billing"])
    assert exc.value.queues == ["vip", "billing"]
    assert h.svc.get("agent1").state is AgentState.LOGGED_OUT
    assert (h.store.events, h.store.states, h.available) == ([], [], 0)


def test_login_with_no_queue_or_pause_while_logged_out_is_rejected_without_writes(h: Harness) -> None:
    with pytest.raises(InvalidTransition, match="at least one queue"):
        h.svc.login("agent1", [])
    with pytest.raises(InvalidTransition, match="agent2 is logged out"):
        h.svc.pause("agent2", "lunch")
    assert (h.store.events, h.store.states) == ([], [])


def test_login_persists_an_event_and_the_state_and_announces_availability(h: Harness) -> None:
    a = h.svc.login("agent1", ["support", "sales"], {"fr": 3})
    assert (a.state, a.since) == (AgentState.READY, 100.0)
    [event] = h.store.events
    assert {k: event[k] for k in ("agent", "state", "reason", "queues", "call_id")} == {
        "agent": "agent1", "state": "ready", "reason": "login", "queues": ["sales", "support"],
        "call_id": None}
    assert isinstance(event["at"], datetime) and event["at"].tzinfo is not None
    assert len(event["key"]) == 32
    assert h.store.states == [{"agent": "agent1", "state": "ready", "queues": ["sales", "support"],
                               "skills": {"fr": 3}, "pause_reason": None, "campaigns": []}]
    assert h.available == 1


def test_pause_persists_reason_and_ready_announces_availability_again(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    h.clock.now = 110.0
    paused = h.svc.pause("agent1", "lunch")
    assert (paused.state, paused.since) == (AgentState.PAUSED, 110.0)
    assert (h.store.events[-1]["state"], h.store.events[-1]["reason"]) == ("paused", "lunch")
    assert h.store.states[-1]["pause_reason"] == "lunch"
    assert h.available == 1
    h.svc.ready("agent1")
    assert (h.store.events[-1]["state"], h.available) == ("ready", 2)


def test_a_request_that_changes_nothing_writes_nothing(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    before = (len(h.store.events), len(h.store.states))
    h.svc.ready("agent1")
    assert (len(h.store.events), len(h.store.states), h.available) == (*before, 1)


def test_offer_event_carries_the_call_id_and_no_answer_pauses(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    h.svc.offer("agent1", "call-9")
    assert (h.store.events[-1]["state"], h.store.events[-1]["call_id"]) == ("ringing", "call-9")
    h.svc.no_answer("agent1")
    assert h.svc.get("agent1").state is AgentState.PAUSED
    assert (h.store.events[-1]["reason"], h.store.events[-1]["call_id"]) == ("no_answer", "call-9")


def test_adopted_call_puts_agent_on_call(h: Harness) -> None:
    h.svc.adopt_call("agent2", "call-7")
    a = h.svc.get("agent2")
    assert (a.state, a.call_id) == (AgentState.ON_CALL, "call-7")
    assert (h.store.events[-1]["reason"], h.store.events[-1]["call_id"]) == ("adopted", "call-7")


async def test_wrapup_timer_returns_agent_to_ready_and_announces_it(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    h.svc.offer("agent1", "call-1")
    h.svc.answered("agent1")
    h.svc.call_ended("agent1", WRAPUP)
    a = h.svc.get("agent1")
    assert (a.state, a.wrapup_until) == (AgentState.WRAPUP, 100.0 + WRAPUP)
    assert h.available == 1
    await asyncio.sleep(WRAPUP * 3)
    assert h.svc.get("agent1").state is AgentState.READY
    assert (h.store.events[-1]["state"], h.store.events[-1]["reason"]) == ("ready", "wrapup_done")
    assert h.available == 2


async def test_pause_during_wrapup_cancels_the_wrapup_timer(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    h.svc.offer("agent1", "call-1")
    h.svc.answered("agent1")
    h.svc.call_ended("agent1", WRAPUP)
    h.svc.pause("agent1", "notes")
    await asyncio.sleep(WRAPUP * 3)
    a = h.svc.get("agent1")
    assert (a.state, a.pause_reason) == (AgentState.PAUSED, "notes")
    assert h.available == 1


async def test_close_cancels_pending_wrapup_timers(h: Harness) -> None:
    h.svc.login("agent1", ["sales"])
    h.svc.offer("agent1", "call-1")
    h.svc.call_ended("agent1", WRAPUP)
    h.svc.close()
    await asyncio.sleep(WRAPUP * 3)
    assert h.svc.get("agent1").state is AgentState.WRAPUP


def test_restore_brings_back_logged_in_agents_without_writing(h: Harness) -> None:
    h.clock.now = 500.0
    h.svc.restore([
        {"agent": "agent1", "state": "on_call", "queues": ["sales", "gone"], "skills": '{"en": 2}',
         "pause_reason": None},
        {"agent": "agent2", "state": "paused", "queues": ["support"], "skills": None, "pause_reason": None},
        {"agent": "ghost", "state": "ready", "queues": ["sales"], "skills": {}, "pause_reason": None},
    ])
    a1, a2 = h.svc.get("agent1"), h.svc.get("agent2")
    assert (a1.state, a1.queues, dict(a1.skills), a1.call_id, a1.idle_since) == (
        AgentState.READY, frozenset({"sales"}), {"en": 2}, None, 500.0)
    assert (a2.state, a2.pause_reason) == (AgentState.PAUSED, "paused")
    assert [a.name for a in h.svc.all()] == ["agent1", "agent2"]
    assert (h.store.events, h.store.states, h.available) == ([], [], 0)


@pytest.mark.parametrize("row", [
    {"agent": "agent1", "state": "logged_out", "queues": ["sales"], "skills": {}},
    {"agent": "agent1", "state": "ready", "queues": ["gone"], "skills": {}},
    {"agent": "agent1", "state": "ready", "queues": [], "skills": {}},
])
def test_restore_skips_logged_out_agents_and_agents_without_known_queues(
        h: Harness, row: dict[str, Any]) -> None:
    h.svc.restore([row])
    assert h.svc.get("agent1").state is AgentState.LOGGED_OUT


def test_restore_keeps_the_paused_reason(h: Harness) -> None:
    h.svc.restore([{"agent": "agent1", "state": "paused", "queues": ["sales"], "skills": {"x": 1},
                    "pause_reason": "training"}])
    a = h.svc.get("agent1")
    assert (a.state, a.pause_reason, dict(a.skills)) == (AgentState.PAUSED, "training", {"x": 1})
