"""The dialer's decisions around the pure pacing core, with fakes for everything that does I/O:
which agent takes a live answer (reservation, longest idle, sessions, blending), the snapshot it
paces on, what a call's end does to its lead and the abandon ledger, outcomes from hangup causes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cc_ari.agents.models import AgentState
from cc_ari.agents.service import AgentService
from cc_ari.calls.models import Call, Phase
from cc_ari.campaigns.models import Campaign, Settings
from cc_ari.dialer import compliance
from cc_ari.dialer.outbound import outcome_from_cause
from cc_ari.dialer.service import Dialer, Estimates, Run, make_policy
from cc_ari.telephony.models import Session


class Store:
    def __init__(self) -> None:
        self.outcomes: list[dict[str, Any]] = []

    def agent_event(self, key: str, **values: Any) -> None:
        pass

    def agent_state(self, agent: str, **values: Any) -> None:
        pass

    def lead_outcome(self, call_id: str, **values: Any) -> None:
        self.outcomes.append({"call_id": call_id, **values})


@dataclass
class Sessions:
    up: set[str] = field(default_factory=set)
    on_up: Any = None

    def live(self, agent: str) -> bool:
        return agent in self.up

    def get(self, agent: str) -> None:
        return None


@dataclass
class Queues:
    waiting_in: dict[str, int] = field(default_factory=dict)

    def waiting(self, queue: str | None = None) -> list[object]:
        return [object()] * self.waiting_in.get(queue or "", 0)


@dataclass
class Calls:
    on_final: list[Any] = field(default_factory=list)
    closing: bool = False

    def get(self, call_id: str) -> None:
        return None


@dataclass
class Flow:
    picker: Any = None
    plans: dict[str, Any] = field(default_factory=dict)


def dialer(*, blend: str = "inbound", mode: str = "progressive") -> tuple[Dialer, AgentService, Sessions, Queues,
                                                                          Store]:
    store = Store()
    agents = AgentService([f"agent{i}" for i in range(1, 6)], ["support"], store)  # type: ignore[arg-type]
    sessions, queues = Sessions(), Queues()
    d = Dialer(None, None, store, None, Calls(), agents, sessions, queues, Flow(),  # type: ignore[arg-type]
               tick=0.1)
    c = Campaign("spring", mode, "+15550100", Settings(blend_priority=blend), "running")
    d._runs["spring"] = Run(c, make_policy(mode), compliance.AbandonLedger(30 * 86400))
    return d, agents, sessions, queues, store


def outbound_call(call_id: str = "c1", **kw: Any) -> Call:
    return Call(call_id=call_id, caller="+15550100", dnis="+12025550100", started_at=datetime.now(UTC),
                session=Session(anchor=call_id), direction="outbound", campaign="spring", lead_id="L1", **kw)


async def test_a_live_answer_takes_the_longest_idle_agent_in_a_live_session_and_reserves_them() -> None:
    d, agents, sessions, _, _ = dialer()
    agents.login("agent1", [], campaigns=["spring"])
    await asyncio.sleep(0)
    agents.login("agent2", [], campaigns=["spring"])
    agents.login("agent3", [], campaigns=["spring"])
    sessions.up |= {"agent2", "agent3"}  # agent1 (idle longest) has no session yet
    assert d.take_agent(outbound_call("c1")) == "agent2"
    assert agents.get("agent2").state is AgentState.RINGING and agents.get("agent2").call_id == "c1"
    assert d.take_agent(outbound_call("c2")) == "agent3"
    assert d.take_agent(outbound_call("c3")) is None  # nobody else: never two calls for one agent


async def test_an_agent_of_another_campaign_or_paused_is_never_taken() -> None:
    d, agents, sessions, _, _ = dialer()
    agents.login("agent1", [], campaigns=["autumn"])
    agents.login("agent2", [], campaigns=["spring"])
    agents.pause("agent2", "coffee")
    sessions.up |= {"agent1", "agent2"}
    assert d.take_agent(outbound_call()) is None


@pytest.mark.parametrize(("blend", "taken"), [("inbound", None), ("outbound", "agent1")])
async def test_blended_agents_go_to_waiting_inbound_callers_first_unless_the_campaign_says_outbound(
        blend: str, taken: str | None) -> None:
    d, agents, sessions, queues, _ = dialer(blend=blend)
    agents.login("agent1", ["support"], campaigns=["spring"])
    sessions.up.add("agent1")
    queues.waiting_in["support"] = 1
    assert d.take_agent(outbound_call()) == taken
    queues.waiting_in["support"] = 0
    if taken is None:
        assert d.take_agent(outbound_call("c2")) == "agent1"


async def test_the_snapshot_counts_ready_agents_in_session_and_busy_ones_with_their_elapsed_time() -> None:
    d, agents, sessions, _, _ = dialer()
    for a in ("agent1", "agent2", "agent3"):
        agents.login(a, [], campaigns=["spring"])
    sessions.up |= {"agent1", "agent2"}
    agents.reserve("agent2", "x", consumer="dialer")
    agents.answered("agent2")
    run = d._runs["spring"]
    ringing = outbound_call("r1")
    ringing.phase = Phase.RINGING
    waiting = outbound_call("w1", answered_at=datetime.now(UTC))
    waiting.phase = Phase.QUEUED
    run.calls = {"r1": ringing, "w1": waiting}
    snap = d.snapshot(run)
    assert snap.ready_agents == 1  # agent3 has no session
    assert [b.state for b in snap.busy_agents] == ["talking"]
    assert len(snap.ringing) == 1 and snap.waiting_live == 1
    assert snap.abandon_target == 0.03 and snap.ring_timeout == 20.0
    assert make_policy("progressive").calls_to_place(snap) == 0  # one ringing for the one ready agent  # type: ignore[union-attr]


async def test_a_call_end_writes_its_lead_outcome_and_counts_drops_against_the_period() -> None:
    d, _, _, _, store = dialer()
    d._attempts["c1"] = 1
    dropped = outbound_call("c1", answered_at=datetime.now(UTC), outcome="dropped")
    dropped.ended_at = datetime.now(UTC)
    d._on_final(dropped)
    d._attempts["c2"] = 3
    busy = outbound_call("c2", outcome="busy")
    d._on_final(busy)
    first, second = store.outcomes
    assert first["status"] == "scheduled" and first["outcome"] == "dropped"
    hold = first["next_attempt_at"] - datetime.now(UTC)
    assert timedelta(hours=71, minutes=59) < hold <= timedelta(hours=72)
    assert second["status"] == "exhausted" and second["next_attempt_at"] is None  # 3 of max 3
    live = d.live("spring")
    assert (live["live_answers"], live["drops"], live["abandon_rate"]) == (1, 1, 1.0)


def test_outcomes_come_from_the_hangup_cause() -> None:
    assert outcome_from_cause(17, timed_out=False) == "busy"
    assert outcome_from_cause(19, timed_out=False) == "no_answer"
    assert outcome_from_cause(18, timed_out=False) == "no_answer"
    assert outcome_from_cause(32, timed_out=True) == "no_answer"  # our ring timeout ended it
    for cause in (34, 21, 1, 38, None):
        assert outcome_from_cause(cause, timed_out=False) == "failed"


def test_estimates_start_from_priors_and_follow_the_outcomes() -> None:
    est = Estimates()
    assert est.share("answered", prior=0.25) == pytest.approx(0.25)
    for i in range(80):
        est.add(float(i), "answered" if i % 2 else "busy", answer_s=5.0, talk_s=60.0)
    assert 0.4 < est.share("answered", prior=0.25) < 0.5
    assert Estimates.mean(est.talks, 120.0) < 70.0
