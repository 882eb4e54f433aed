"""FallbackMembers against a fake app_queue over a fake AMI: it follows the agents, reads app_queue
only when its picture may be stale, survives AMI going away and retries what Asterisk refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import pytest
from structlog.testing import capture_logs

from cc_ari.agents.models import Agent, AgentState
from cc_ari.agents.service import AgentService
from cc_ari.ami.errors import AmiActionFailed, AmiUnavailable
from cc_ari.ami.models import AmiEvent, FullyBooted
from cc_ari.fallback.members import FallbackMembers


class FakeAmi:
    """app_queue behind AMI: queues of members (interface -> name, paused, reason), with
    Asterisk's own error messages. `down` makes every action raise AmiUnavailable;
    `refuse[action]` refuses that many of the next such actions."""

    def __init__(self, queues: tuple[str, ...] = ("cc-fb-sales", "cc-fb-support")) -> None:
        self.connected = asyncio.Event()
        self.connected.set()
        self.queues: dict[str, dict[str, dict[str, Any]]] = {q: {} for q in queues}
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.down = False
        self.refuse: dict[str, int] = {}

    @property
    def reads(self) -> int:
        return sum(1 for name, _ in self.sent if name == "QueueStatus")

    def changes(self) -> list[tuple[str, ...]]:
        return [(name, f["Queue"], f["Interface"], *([f["Paused"]] if "Paused" in f else []))
                for name, f in self.sent if name != "QueueStatus"]

    def members(self) -> dict[str, dict[str, bool]]:
        return {q: {m["name"]: m["paused"] for m in ms.values()} for q, ms in self.queues.items()}

    def restart(self) -> None:
        """Asterisk restarted: persistentmembers = no, so every dynamic member is gone."""
        for ms in self.queues.values():
            ms.clear()

    async def action(self, name: str, **f: str) -> dict[str, str]:
        await asyncio.sleep(0)
        if self.down:
            raise AmiUnavailable(f"{name}: not connected to AMI", action=name)
        self.sent.append((name, f))
        if self.refuse.get(name):
            self.refuse[name] -= 1
            raise AmiActionFailed(f"{name}: Error: something odd", action=name)
        queue = self.queues.get(f["Queue"])
        interface = f["Interface"]
        if name == "QueueAdd":
            if queue is None:
                raise AmiActionFailed("QueueAdd: Error: Unable to add interface to queue: No such queue")
            if interface in queue:
                raise AmiActionFailed("QueueAdd: Error: Unable to add interface: Already there")
            queue[interface] = {"name": f["MemberName"], "paused": f["Paused"] == "true",
                                "reason": f.get("Reason", ""), "state": f["StateInterface"]}
            return {"Response": "Success", "Message": "Added interface to queue"}
        if name == "QueueRemove":
            if queue is None:
                raise AmiActionFailed("QueueRemove: Error: Unable to remove interface from queue: No such queue")
            if interface not in queue:
                raise AmiActionFailed("QueueRemove: Error: Unable to remove interface: Not there")
            del queue[interface]
            return {"Response": "Success", "Message": "Removed interface from queue"}
        if name == "QueuePause":
            if queue is None or interface not in queue:
                raise AmiActionFailed("QueuePause: Error: Interface not found")
            queue[interface].update(paused=f["Paused"] == "true", reason=f.get("Reason", ""))
            return {"Response": "Success", "Message": "Interface paused successfully"}
        raise AmiActionFailed(f"{name}: Error: Invalid/unknown command")

    async def action_list(self, name: str, **f: str) -> list[dict[str, str]]:
        await asyncio.sleep(0)
        if self.down:
            raise AmiUnavailable(f"{name}: not connected to AMI", action=name)
        assert name == "QueueStatus"
        self.sent.append((name, f))
        queue = f["Queue"]
        if queue not in self.queues:
            return []
        return [{"Event": "QueueParams", "Queue": queue, "Strategy": "rrmemory"},
                *({"Event": "QueueMember", "Queue": queue, "Name": m["name"], "Location": iface,
                   "StateInterface": m["state"], "Membership": "dynamic", "Paused": "1" if m["paused"] else "0",
                   "PausedReason": m["reason"]} for iface, m in self.queues[queue].items())]


class Agents:
    def __init__(self) -> None:
        self.by_name: dict[str, Agent] = {}

    def set(self, name: str, state: AgentState, *queues: str, reason: str | None = None) -> None:
        self.by_name[name] = Agent(name=name, state=state, queues=frozenset(queues or ("support",)),
                                   pause_reason=reason)

    def logout(self, name: str) -> None:
        self.by_name[name] = replace(self.by_name[name], state=AgentState.LOGGED_OUT, queues=frozenset())

    def __call__(self) -> list[Agent]:
        return list(self.by_name.values())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def until(cond: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110 - polling a test condition
            await asyncio.sleep(0.005)


@pytest.fixture
def ami() -> FakeAmi:
    return FakeAmi()


@pytest.fixture
def agents() -> Agents:
    return Agents()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def svc(ami: FakeAmi, agents: Agents, clock: Clock) -> FallbackMembers:
    return FallbackMembers(ami, ["sales", "support"], agents, resync_every=60.0, retry_min=0.01, retry_max=0.04,
                           clock=clock)


@pytest.fixture
async def running(svc: FallbackMembers) -> AsyncIterator[FallbackMembers]:
    task = asyncio.create_task(svc.run())
    await until(lambda: svc.rounds >= 1)
    yield svc
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def settle(svc: FallbackMembers, rounds: int = 1) -> None:
    """Let the loop run `rounds` more rounds after a notify()."""
    target = svc.rounds + rounds
    await until(lambda: svc.rounds >= target)
    await asyncio.sleep(0.01)


# --- one round at a time (sync) ----------------------------------------------------------------------
async def test_login_pause_ready_logout_become_add_pause_unpause_remove(svc: FallbackMembers, ami: FakeAmi,
                                                                         agents: Agents) -> None:
    assert await svc.sync()
    assert ami.changes() == [] and ami.reads == 2  # first round: read both queues

    agents.set("agent1", AgentState.READY, "support", "sales")
    assert await svc.sync()
    assert ami.changes() == [("QueueAdd", "cc-fb-sales", "PJSIP/agent1", "false"),
                             ("QueueAdd", "cc-fb-support", "PJSIP/agent1", "false")]
    add = ami.sent[2][1]
    assert (add["MemberName"], add["StateInterface"]) == ("agent1", "PJSIP/agent1")
    ami.sent.clear()

    agents.set("agent1", AgentState.PAUSED, "support", reason="lunch")  # and no longer in sales
    assert await svc.sync()
    assert ami.changes() == [("QueueRemove", "cc-fb-sales", "PJSIP/agent1"),
                             ("QueuePause", "cc-fb-support", "PJSIP/agent1", "true")]
    assert ami.queues["cc-fb-support"]["PJSIP/agent1"]["reason"] == "lunch"
    ami.sent.clear()

    agents.set("agent1", AgentState.READY, "support")
    assert await svc.sync()
    agents.logout("agent1")
    assert await svc.sync()
    assert ami.changes() == [("QueuePause", "cc-fb-support", "PJSIP/agent1", "false"),
                             ("QueueRemove", "cc-fb-support", "PJSIP/agent1")]
    assert ami.reads == 0  # diffs against what it knows: app_queue is not read again
    assert ami.members() == {"cc-fb-sales": {}, "cc-fb-support": {}}


async def test_call_states_change_nothing_in_app_queue(svc: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    agents.set("agent1", AgentState.READY)
    await svc.sync()
    ami.sent.clear()
    for state in (AgentState.RINGING, AgentState.ON_CALL, AgentState.WRAPUP, AgentState.READY):
        agents.set("agent1", state)
        assert await svc.sync()
    assert ami.sent == []


async def test_a_paused_agent_is_added_paused(svc: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    agents.set("agent2", AgentState.PAUSED, "sales", reason="training")
    await svc.sync()
    assert ami.queues["cc-fb-sales"]["PJSIP/agent2"] == {"name": "agent2", "paused": True, "reason": "training",
                                                         "state": "PJSIP/agent2"}


async def test_members_nobody_logged_in_are_removed_at_the_first_round(svc: FallbackMembers, ami: FakeAmi,
                                                                       agents: Agents) -> None:
    """E.g. cc_ari restarted and an agent logged out meanwhile; or a stale member from a test."""
    ami.queues["cc-fb-support"] = {"PJSIP/agent7": {"name": "agent7", "paused": False, "reason": "",
                                                    "state": "PJSIP/agent7"},
                                   "PJSIP/agent8": {"name": "agent8", "paused": True, "reason": "x",
                                                    "state": "PJSIP/agent8"}}
    agents.set("agent8", AgentState.READY)
    assert await svc.sync()
    assert ami.members() == {"cc-fb-sales": {}, "cc-fb-support": {"agent8": False}}


async def test_periodic_resync_corrects_a_change_made_behind_its_back(svc: FallbackMembers, ami: FakeAmi,
                                                                      agents: Agents, clock: Clock) -> None:
    agents.set("agent1", AgentState.READY)
    await svc.sync()
    ami.queues["cc-fb-support"].clear()  # someone ran `queue remove member` by hand
    clock.now += 30
    await svc.sync()
    assert ami.members()["cc-fb-support"] == {}  # not known yet: app_queue was not read
    clock.now += 31
    with capture_logs() as logs:
        await svc.sync()
    assert ami.members()["cc-fb-support"] == {"agent1": False}
    assert ami.reads == 4
    assert [e["members"] for e in logs if e["event"] == "fallback_members_drift"] == [
        {"cc-fb-sales": 0, "cc-fb-support": 0}]


async def test_a_missing_fallback_queue_is_reported_and_skipped(agents: Agents) -> None:
    ami = FakeAmi(queues=("cc-fb-support",))  # queues.conf lacks cc-fb-sales
    svc = FallbackMembers(ami, ["sales", "support"], agents)
    agents.set("agent1", AgentState.READY, "sales", "support")
    with capture_logs() as logs:
        assert await svc.sync()
        assert await svc.sync()
    assert ami.changes() == [("QueueAdd", "cc-fb-support", "PJSIP/agent1", "false")]
    missing = [e for e in logs if e["event"] == "fallback_queue_missing"]
    assert len(missing) == 1 and missing[0]["queues"] == ["cc-fb-sales"]


async def test_a_refused_action_is_logged_and_the_next_round_rereads_and_retries(
        svc: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    agents.set("agent1", AgentState.READY)
    agents.set("agent2", AgentState.READY)
    ami.refuse["QueueAdd"] = 1
    with capture_logs() as logs:
        assert not await svc.sync()
    assert ami.members()["cc-fb-support"] == {"agent2": False}  # the other one went through
    assert [e["agent"] for e in logs if e["event"] == "fallback_member_action_failed"] == ["agent1"]
    assert svc.known_members is None
    ami.sent.clear()
    assert await svc.sync()
    assert ami.reads == 2
    assert ami.changes() == [("QueueAdd", "cc-fb-support", "PJSIP/agent1", "false")]
    assert ami.members()["cc-fb-support"] == {"agent1": False, "agent2": False}


async def test_a_stale_picture_heals_itself(svc: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    """Asterisk restarted without us seeing FullyBooted: QueuePause finds no member, the round
    fails, the next one reads app_queue again and adds the agent back."""
    agents.set("agent1", AgentState.READY)
    await svc.sync()
    ami.restart()
    agents.set("agent1", AgentState.PAUSED, reason="break")
    assert not await svc.sync()
    assert await svc.sync()
    assert ami.members()["cc-fb-support"] == {"agent1": True}


async def test_ami_unavailable_propagates_from_a_round(svc: FallbackMembers, ami: FakeAmi,
                                                       agents: Agents) -> None:
    ami.down = True
    with pytest.raises(AmiUnavailable):
        await svc.sync()


# --- the loop ------------------------------------------------------------------------------------
async def test_notify_wakes_the_loop_and_a_burst_is_coalesced(running: FallbackMembers, ami: FakeAmi,
                                                              agents: Agents) -> None:
    rounds = running.rounds
    for i in range(1, 11):
        agents.set(f"agent{i}", AgentState.READY)
        running.notify()  # sync and immediate: the loop has not run yet
    assert running.rounds == rounds
    await settle(running)
    assert running.rounds == rounds + 1
    assert len(ami.members()["cc-fb-support"]) == 10
    assert ami.reads == 2  # only the first round read app_queue


async def test_notify_never_blocks_even_with_ami_down(running: FallbackMembers, ami: FakeAmi,
                                                      agents: Agents) -> None:
    ami.connected.clear()
    ami.down = True
    agents.set("agent1", AgentState.READY)
    running.notify()
    running.notify(agents()[0])  # as an AgentService listener
    await asyncio.sleep(0.05)
    assert ami.members()["cc-fb-support"] == {}


async def test_after_an_ami_reconnect_it_rereads_app_queue_and_restores_members(
        running: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    agents.set("agent1", AgentState.READY)
    agents.set("agent2", AgentState.PAUSED, reason="break")
    running.notify()
    await settle(running)
    assert ami.members()["cc-fb-support"] == {"agent1": False, "agent2": True}
    # Asterisk restarts: the connection drops, members are gone, AMI comes back with FullyBooted.
    ami.connected.clear()
    ami.down = True
    ami.restart()
    agents.set("agent3", AgentState.READY)
    running.notify()
    await asyncio.sleep(0.05)
    ami.sent.clear()
    ami.down = False
    ami.connected.set()
    await running.on_ami_event(FullyBooted("FullyBooted", {}, status="Fully Booted"))
    await until(lambda: len(ami.members()["cc-fb-support"]) == 3)
    assert ami.members()["cc-fb-support"] == {"agent1": False, "agent2": True, "agent3": False}
    assert ami.reads == 2


async def test_fully_booted_alone_triggers_a_resync(running: FallbackMembers, ami: FakeAmi,
                                                    agents: Agents) -> None:
    agents.set("agent1", AgentState.READY)
    running.notify()
    await settle(running)
    ami.restart()  # a reconnect that happened between two rounds
    reads = ami.reads
    await running.on_ami_event(AmiEvent("Newchannel", {}))  # other events change nothing
    await running.on_ami_event(FullyBooted("FullyBooted", {}, status="Fully Booted"))
    await until(lambda: ami.members()["cc-fb-support"] == {"agent1": False})
    assert ami.reads == reads + 2


async def test_connection_lost_in_a_round_is_retried_when_ami_is_back(running: FallbackMembers, ami: FakeAmi,
                                                                      agents: Agents) -> None:
    ami.down = True  # connected still set: the loss is found by the action itself
    agents.set("agent1", AgentState.READY)
    with capture_logs() as logs:
        running.notify()
        await settle(running, rounds=2)
    assert any(e["event"] == "fallback_members_ami_unavailable" for e in logs)
    ami.down = False
    await until(lambda: ami.members()["cc-fb-support"] == {"agent1": False})


async def test_a_refused_action_is_retried_after_a_backoff_without_a_notify(
        running: FallbackMembers, ami: FakeAmi, agents: Agents) -> None:
    ami.refuse["QueueAdd"] = 3
    agents.set("agent1", AgentState.READY)
    running.notify()
    await until(lambda: ami.members()["cc-fb-support"] == {"agent1": False})
    assert sum(1 for name, _ in ami.sent if name == "QueueAdd") == 4


async def test_the_resync_timer_wakes_the_loop(ami: FakeAmi, agents: Agents) -> None:
    svc = FallbackMembers(ami, ["support"], agents, resync_every=0.05)
    agents.set("agent1", AgentState.READY)
    task = asyncio.create_task(svc.run())
    try:
        await until(lambda: ami.members()["cc-fb-support"] == {"agent1": False})
        ami.restart()
        await until(lambda: ami.members()["cc-fb-support"] == {"agent1": False}, within=1.0)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


# --- wired to AgentService ---------------------------------------------------------------------------
class NullStore:
    def agent_event(self, *_args: Any, **_kwargs: Any) -> None:
        pass

    def agent_state(self, *_args: Any, **_kwargs: Any) -> None:
        pass


async def test_agent_service_listeners_drive_the_members(ami: FakeAmi) -> None:
    service = AgentService(["agent1", "agent2"], ["sales", "support"], NullStore())  # type: ignore[arg-type]
    svc = FallbackMembers(ami, service.queue_names, service.all)
    told: list[Agent] = []
    service.listeners.append(told.append)
    service.listeners.append(svc.notify)
    task = asyncio.create_task(svc.run())
    try:
        service.login("agent1", ["support"])
        service.login("agent2", ["sales", "support"])
        service.pause("agent2", "break")
        await until(lambda: ami.members() == {"cc-fb-sales": {"agent2": True},
                                              "cc-fb-support": {"agent1": False, "agent2": True}})
        service.reserve("agent1", "call-1")
        service.answered("agent1")
        service.pause("agent1", "meeting")  # deferred until the call ends, but paused in app_queue now
        await until(lambda: ami.members()["cc-fb-support"]["agent1"])
        service.logout("agent2")
        await until(lambda: ami.members() == {"cc-fb-sales": {}, "cc-fb-support": {"agent1": True}})
        assert [(a.name, str(a.state)) for a in told] == [
            ("agent1", "ready"), ("agent2", "ready"), ("agent2", "paused"), ("agent1", "ringing"),
            ("agent1", "on_call"), ("agent1", "on_call"), ("agent2", "logged_out")]
        assert told[5].pending == "pause:meeting"
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await service.aclose()
