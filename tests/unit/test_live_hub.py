"""The live feed's hub: snapshots, diffs, who sees what, slow pages (no I/O: fake sources)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cc_ari.agents.models import Agent, AgentState
from cc_ari.calls.models import Call, Phase
from cc_ari.ops.live import QUEUE_LIMIT, LiveHub, Sources, Viewer
from cc_ari.telephony.models import Session

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.agents = {f"agent{i}": Agent(f"agent{i}") for i in range(1, 4)}
        self.calls: dict[str, Call] = {}
        self.today: dict[str, dict[str, Any]] = {"support": {"offered": 3, "answered": 2}}

    def sources(self) -> Sources:
        async def today() -> dict[str, dict[str, Any]]:
            return self.today

        async def intervals() -> dict[str, Any]:
            return {"date": "2026-11-30", "minutes": 15, "rows": [{"queue": "support", "offered": 3}]}

        return Sources(agents=lambda: self.agents.values(), registered=lambda: {"agent1": True},
                       calls=lambda: self.calls.values(), call=self.calls.get,
                       queue_names=lambda: ["support", "sales"], queue_today=today, intervals=intervals,
                       disposition_pending=lambda a: {"call_id": "c0", "codes": ["resolved"]},
                       lead_of=lambda c: {"fields": {"name": "Ann"}} if c.outbound else None,
                       monotonic=lambda: 1000.0)

    def call(self, call_id: str, phase: Phase, **kw: Any) -> Call:
        c = Call(call_id, "+15551230000", "5001", T0, Session(call_id), phase=phase, queue="support",
                 queued_at=T0 + timedelta(seconds=2), **kw)
        self.calls[call_id] = c
        return c


def hub_of(world: World) -> LiveHub:
    return LiveHub(world.sources(), clock=lambda: 1_800_000_000.0)


def ident(m: dict[str, Any]) -> tuple[str, str]:
    return m["type"], m[{"agent": "agent", "queue": "queue", "call": "call_id"}[m["type"]]]


def texts(sub: Any) -> list[dict[str, Any]]:
    out = []
    while not sub.queue.empty():
        item = sub.queue.get_nowait()
        out.append(json.loads(item) if item is not None else None)
    return out


def test_snapshot_has_every_agent_queue_and_call_for_a_supervisor() -> None:
    world = World()
    world.call("c1", Phase.QUEUED)
    hub = hub_of(world)
    msgs = [json.loads(t) for t in hub.snapshot(Viewer("supervisor"))]
    kinds = [ident(m) for m in msgs]
    assert kinds == [("agent", "agent1"), ("agent", "agent2"), ("agent", "agent3"),
                     ("queue", "sales"), ("queue", "support"), ("call", "c1")]
    support = next(m for m in msgs if m.get("queue") == "support")
    assert support["waiting"] == 1
    assert support["oldest_waiting_since"] == (T0 + timedelta(seconds=2)).timestamp()
    assert msgs[0]["registered"] is True and msgs[1]["registered"] is False


def test_agent_since_is_epoch_from_the_monotonic_clock_and_stable() -> None:
    world = World()
    world.agents["agent1"] = Agent("agent1", AgentState.READY, frozenset({"support"}), since=990.0)
    hub = hub_of(world)
    first = json.loads(hub.snapshot(Viewer("admin"))[0])
    assert first["since"] == 1_800_000_000.0 - 10.0
    assert hub.snapshot(Viewer("admin"))[0] == hub.snapshot(Viewer("admin"))[0]


def test_flush_sends_only_what_changed_and_gone_calls() -> None:
    world = World()
    call = world.call("c1", Phase.QUEUED)
    hub = hub_of(world)
    sub = hub.subscribe(Viewer("supervisor"))
    hub.flush()
    assert len(texts(sub)) == 6  # the first flush: everything is new
    hub.flush()
    assert texts(sub) == []  # nothing changed: nothing sent
    call.phase = Phase.TALKING
    call.agent = "agent2"
    world.agents["agent2"] = Agent("agent2", AgentState.ON_CALL, frozenset({"support"}), since=999.0, call_id="c1")
    hub.flush()
    changed = texts(sub)
    assert {ident(m) for m in changed} == {
        ("call", "c1"), ("agent", "agent2"), ("queue", "support")}
    agent2 = next(m for m in changed if m["type"] == "agent")
    assert agent2["call"]["caller"] == "+15551230000" and agent2["call"]["queue"] == "support"
    del world.calls["c1"]
    hub.flush()
    assert {"type": "call", "call_id": "c1", "gone": True} in texts(sub)


def test_a_bound_agent_sees_only_itself() -> None:
    world = World()
    world.call("c1", Phase.TALKING, agent="agent2")
    hub = hub_of(world)
    viewer = Viewer("agent", "agent2")
    assert [json.loads(t)["agent"] for t in hub.snapshot(viewer)] == ["agent2"]
    sub = hub.subscribe(viewer)
    hub.flush()
    assert [m["agent"] for m in texts(sub)] == ["agent2"]
    hub.ami_event({"ts": 1.0, "event": "Newchannel", "fields": {}})
    world.agents["agent1"] = replace(world.agents["agent1"], state=AgentState.READY, since=999.0)
    hub.flush()
    assert texts(sub) == []


def test_ami_events_go_to_supervisors_only_and_are_capped() -> None:
    world = World()
    hub = hub_of(world)
    boss, reader = hub.subscribe(Viewer("supervisor")), hub.subscribe(Viewer("agent"))
    hub.flush()
    texts(boss), texts(reader)
    for i in range(600):
        hub.ami_event({"ts": float(i), "event": "VarSet", "fields": {"Channel": "PJSIP/x"}})
    hub.flush()
    got = texts(boss)
    assert [m["type"] for m in got].count("ami") == 500
    assert got[-1] == {"type": "ami_skipped", "count": 100}
    assert texts(reader) == []


def test_disposition_pending_only_in_wrapup_and_lead_for_outbound() -> None:
    world = World()
    world.agents["agent1"] = Agent("agent1", AgentState.WRAPUP, since=999.0)
    c = world.call("c9", Phase.TALKING, agent="agent3", direction="outbound", campaign="spring")
    world.agents["agent3"] = Agent("agent3", AgentState.ON_CALL, since=999.0, call_id=c.call_id)
    msgs = {m["agent"]: m for m in map(json.loads, hub_of(world).snapshot(Viewer("admin"))) if m["type"] == "agent"}
    assert msgs["agent1"]["disposition_pending"] == {"call_id": "c0", "codes": ["resolved"]}
    assert msgs["agent2"]["disposition_pending"] is None
    assert msgs["agent3"]["call"]["lead"] == {"fields": {"name": "Ann"}}


def test_a_page_that_cannot_keep_up_is_cut_off() -> None:
    world = World()
    hub = hub_of(world)
    sub = hub.subscribe(Viewer("supervisor"))
    for i in range(QUEUE_LIMIT + 5):
        hub.ami_event({"ts": float(i), "event": "X", "fields": {}})
        if i % 400 == 0:
            hub.flush()
    hub.flush()
    assert sub.overflowed and hub.subscribers == 0
    items = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert items[-1] is None  # the writer closes the socket on None


async def test_run_pushes_a_poke_within_the_coalesce_time_and_reports() -> None:
    world = World()
    hub = LiveHub(world.sources(), coalesce=0.05)
    sub = hub.subscribe(Viewer("supervisor"))
    task = asyncio.create_task(hub.run())
    try:
        await asyncio.sleep(0.3)
        texts(sub)
        world.agents["agent1"] = replace(world.agents["agent1"], state=AgentState.READY, since=999.0)
        hub.poke()
        await asyncio.sleep(0.2)
        got = texts(sub)
        assert [m["agent"] for m in got if m["type"] == "agent"] == ["agent1"]
        world.today = {"support": {"offered": 4, "answered": 3}}
        hub.calls_ended()
        await asyncio.sleep(0.3)
        support = [m for m in texts(sub) if m.get("queue") == "support"]
        assert support and support[-1]["today"] == {"offered": 4, "answered": 3}
        snap = [json.loads(t) for t in hub.snapshot(Viewer("supervisor"))]
        assert snap[-1]["type"] == "intervals" and snap[-1]["rows"][0]["offered"] == 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
