"""The shared call-control core with a fake ARI: each defect found in the old CallService."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cc_ari.agents.models import AgentState
from cc_ari.agents.reachability import Reachability
from cc_ari.agents.service import AgentService
from cc_ari.ari.errors import AriBadRequest, AriUnavailable
from cc_ari.ari.models import Channel, Dial, Event, PlaybackFinished, StasisStart, parse_event
from cc_ari.callflow import CallFlow, QueueConfig
from cc_ari.calls.handlers import AriHandlers
from cc_ari.calls.inbound import InboundFlow
from cc_ari.calls.models import Call, Phase
from cc_ari.calls.records import CallRecords
from cc_ari.calls.router import StasisRouter
from cc_ari.calls.service import CallService
from cc_ari.connect.service import Connector
from cc_ari.queueing.service import QueueService
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl, HoldingBridges, quote_caller_id
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import Leg, Resync, Session, utcnow
from cc_ari.telephony.registry import ChannelRegistry

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def ch(cid: str, name: str = "PJSIP/pstn-00000001", *, app_data: str = "") -> Channel:
    return Channel(id=cid, name=name, state="Up", caller_number="0155", app_name="Stasis" if app_data else "",
                   app_data=app_data)


class FakeAri:
    """Records every REST call; created channels enter Stasis at once; dials get `dial_status`."""

    app = "cc_ari"

    def __init__(self, registry: ChannelRegistry) -> None:
        self.registry = registry
        self.calls: list[tuple[Any, ...]] = []
        self.dial_status = "NOANSWER"
        self.fail: dict[str, Exception] = {}
        self.block_hangup: asyncio.Event | None = None
        self.live: list[Channel] = []
        self.vars: dict[tuple[str, str], str] = {}

    def _rec(self, *call: Any) -> None:
        self.calls.append(call)
        exc = self.fail.get(call[0])
        if exc is not None:
            raise exc

    def _emit(self, ev: Event) -> None:
        self.registry.route(ev)

    async def answer(self, cid: str) -> None:
        self._rec("answer", cid)

    async def hangup(self, cid: str, reason: str = "normal") -> None:
        self._rec("hangup", cid)
        if self.block_hangup is not None:
            await self.block_hangup.wait()

    async def moh(self, cid: str, *, on: bool) -> None:
        self._rec("moh", cid, on)

    async def play(self, cid: str, media: list[str], pb: str) -> None:
        self._rec("play", cid, pb)

    async def stop_playback(self, pb: str) -> None:
        self._rec("stop_playback", pb)

    async def create_channel(self, endpoint: str, *, channel_id: str, app_args: str, originator: str | None = None,
                             caller_id: str | None = None, variables: Mapping[str, str] | None = None) -> Channel:
        self._rec("create_channel", endpoint, channel_id, app_args, dict(variables or {}))
        c = ch(channel_id, f"{endpoint}-0000000{len(self.calls)}")
        start = StasisStart("StasisStart", NOW, {}, c, tuple(app_args.split(",")))
        asyncio.get_running_loop().call_soon(self._emit, start)
        return c

    async def dial(self, cid: str, *, timeout: int = 0, caller: str | None = None) -> None:
        self._rec("dial", cid, timeout)
        peer = ch(cid, "PJSIP/agent1-00000009")
        asyncio.get_running_loop().call_soon(self._emit, Dial("Dial", NOW, {}, peer, None, self.dial_status))

    async def set_var(self, cid: str, name: str, value: str) -> None:
        self._rec("set_var", cid, name, value)
        self.vars[cid, name] = value

    async def get_var(self, cid: str, name: str) -> str | None:
        return self.vars.get((cid, name))

    async def create_bridge(self, bid: str, kind: str, name: str = "") -> None:
        self._rec("create_bridge", bid, kind)

    async def add_to_bridge(self, bid: str, cids: list[str], role: str | None = None) -> None:
        self._rec("add_to_bridge", bid, tuple(cids))

    async def remove_from_bridge(self, bid: str, cid: str) -> None:
        self._rec("remove_from_bridge", bid, cid)

    async def destroy_bridge(self, bid: str) -> None:
        self._rec("destroy_bridge", bid)

    async def record_bridge(self, bid: str, name: str) -> None:
        self._rec("record_bridge", bid, name)

    async def stop_recording(self, name: str) -> None:
        self._rec("stop_recording", name)

    async def continue_in_dialplan(self, cid: str, context: str, exten: str) -> None:
        self._rec("continue", cid, context, exten)

    async def channels(self, *, timeout: float | None = None) -> list[Channel]:
        return list(self.live)

    async def channel_exists(self, cid: str) -> bool:
        return any(c.id == cid for c in self.live)

    async def bridges(self, *, timeout: float | None = None) -> list[Any]:
        return []

    def named(self, verb: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == verb]


class FakeStore:
    def __init__(self) -> None:
        self.writes: list[tuple[str, str, dict[str, Any]]] = []

    def call(self, call_id: str, mode: str = "merge", **values: Any) -> None:
        self.writes.append(("call", call_id, values))

    def leg(self, leg_id: str, mode: str = "merge", **values: Any) -> None:
        self.writes.append(("leg", leg_id, values))

    def agent_event(self, key: str, **values: Any) -> None:
        pass

    def agent_state(self, agent: str, **values: Any) -> None:
        pass

    async def fetch_call(self, call_id: str) -> None:
        return None


class Core:
    def __init__(self) -> None:
        self.registry = ChannelRegistry()
        self.ari = FakeAri(self.registry)
        self.store = FakeStore()
        self.flow = CallFlow(prompts={"goodbye": "bye", "not-in-service": "no"}, routes={},
                             queues={"support": QueueConfig(name="support", wrapup=0.0)}, menus={})
        self.agents = AgentService(["agent1", "agent2"], ["support"], self.store)  # type: ignore[arg-type]
        self.control = CallControl(self.ari, self.registry, prompts_dir="/p")  # type: ignore[arg-type]
        self.holding = HoldingBridges(self.ari)  # type: ignore[arg-type]
        self.reach = Reachability(["agent1", "agent2"])
        self.queues = QueueService(self.flow, self.agents, reachable=self.reach)
        self.records = CallRecords(self.store)  # type: ignore[arg-type]
        self.connector = Connector(self.control, self.agents, self.records, recordings_dir=Path("/rec"))
        self.inbound = InboundFlow(self.control, self.holding, self.queues, self.connector, self.agents,
                                   self.records, self.flow)
        self.calls = CallService(self.control, self.holding, self.queues, self.inbound, self.agents, self.records,
                                 self.store)  # type: ignore[arg-type]
        self.router_tasks = Tasks("router")
        self.router = StasisRouter(self.control, self.router_tasks)
        self.router.register("inbound", self.calls.on_inbound)
        self.handlers = AriHandlers(self.control, self.router, self.calls, self.reach)

    def call(self, call_id: str = "c1") -> Call:
        session = Session(anchor=call_id)
        session.legs[call_id] = Leg(call_id, "caller", "PJSIP/pstn", "PJSIP/pstn-1", NOW, hangup_cause=16)
        self.registry.claim(call_id, session)
        return Call(call_id=call_id, caller="0155", dnis="5001", started_at=NOW, session=session, queue="support")


@pytest.fixture
def core() -> Core:
    return Core()


async def test_announcement_ending_while_an_agent_rings_brings_the_music_back(core: Core) -> None:
    """Old defect: the ring loop consumed the announcement's PlaybackFinished: silence until max_wait."""
    call = core.call()
    call.session.hooks.append(core.inbound._announcement_hook(call))
    call.phase = Phase.RINGING
    call.announcement = "pb-announce"
    core.agents.login("agent1", ["support"])
    core.agents.reserve("agent1", call.call_id)
    call.agent = "agent1"

    async def announcement_ends_during_ringing() -> None:
        await asyncio.sleep(0)
        core.registry.route(PlaybackFinished("PlaybackFinished", NOW, {}, "pb-announce", f"channel:{call.call_id}",
                                             "done"))

    core.ari.dial_status = "NOANSWER"
    asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(announcement_ends_during_ringing()))
    assert await core.connector.reach(call, "agent1", ring_timeout=5) is False
    assert call.announcement is None
    assert ("moh", call.call_id, True) in core.ari.calls  # music again, not silence


async def test_the_same_agent_offered_the_same_call_twice_gets_two_distinct_legs(core: Core) -> None:
    """Old defect: `{call_id}-{agent}-{len(tried)}` repeated when the agent was offered the call again."""
    call = core.call()
    core.agents.login("agent1", ["support"])
    for _ in range(2):
        core.agents.ready("agent1")
        core.agents.reserve("agent1", call.call_id)
        call.agent = "agent1"
        assert await core.connector.reach(call, "agent1", ring_timeout=5) is False
    created = [c[2] for c in core.ari.named("create_channel")]
    assert len(created) == 2 and len(set(created)) == 2
    leg_rows = [w for w in core.store.writes if w[0] == "leg" and w[1] in created]
    assert {w[1] for w in leg_rows} == set(created)


async def test_agent_leg_carries_explicit_role_and_a_quoted_caller_id(core: Core) -> None:
    call = core.call()
    call.caller = '0155" <sip:evil>'
    core.agents.login("agent2", ["support"])
    core.agents.reserve("agent2", call.call_id)
    await core.connector.reach(call, "agent2", ring_timeout=5)
    _verb, endpoint, _cid, args, variables = core.ari.named("create_channel")[0]
    assert endpoint == "PJSIP/agent2"
    assert args.split(",") == ["agent", call.call_id, "agent2"]
    assert (variables["CC_ROLE"], variables["CC_AGENT"], variables["CC_CALL_ID"]) == ("agent", "agent2",
                                                                                      call.call_id)
    assert variables["CALLERID(all)"].count('"') == 2 and "<sip" not in variables["CALLERID(all)"]


def test_quote_caller_id_cannot_be_broken_out_of() -> None:
    assert quote_caller_id('Bob "x" <1>', "+33 1-23\r\n") == '"Bob x 1" <+33123>'
    assert quote_caller_id("", "") == '"" <>'


async def test_every_cleanup_step_runs_even_when_one_fails(core: Core) -> None:
    """Old defect: four ARI steps under one try: one failure left bridges or channels behind."""
    call = core.call()
    call.recording_name = "cc-c1"
    call.bridge_id = "cc-call-c1"
    call.agent_channel = "c1-1"
    call.legs["c1-1"] = Leg("c1-1", "agent", "PJSIP/agent1", "PJSIP/agent1-1", NOW, hangup_cause=16)
    core.ari.fail["stop_recording"] = AriUnavailable("timeout")
    core.ari.fail["hangup"] = AriUnavailable("timeout")
    core.calls._calls[call.call_id] = call
    call.session.clock = lambda: 0.0  # settle() does not wait
    await core.calls._finish(call, rescued=False)
    verbs = [c[0] for c in core.ari.calls]
    assert verbs.count("hangup") == 2  # agent and caller, although each failed
    assert "destroy_bridge" in verbs
    assert core.calls.get(call.call_id) is None
    final = [w for w in core.store.writes if w[0] == "call"][-1][2]
    assert final["outcome"] == "abandoned" and final["ended_at"] is not None


async def test_the_reader_only_routes_a_slow_hangup_never_delays_other_calls(core: Core) -> None:
    """Old defect: on_event awaited per-call work (hangups) in the WebSocket reader."""
    core.ari.block_hangup = asyncio.Event()  # Asterisk never answers the hangup
    other = core.call("c2")
    unknown = StasisStart("StasisStart", NOW, {}, ch("x1", app_data="cc_ari,nonsense"), ("nonsense",))
    assert core.handlers.on_event(unknown) is None  # synchronous: nothing awaited
    dtmf = parse_event({"type": "ChannelDtmfReceived", "digit": "5", "channel": {"id": "c2", "name": "n"}})
    core.handlers.on_event(dtmf)
    ev = await asyncio.wait_for(other.session.next(1.0), 1.0)
    assert getattr(ev, "digit", None) == "5"
    await asyncio.sleep(0)
    assert ("hangup", "x1") in core.ari.calls  # the unknown channel is being hung up, in its own task
    core.ari.block_hangup.set()
    await core.router_tasks.cancel_all()


async def test_resync_ends_calls_whose_channels_vanished_and_frees_stuck_agents(core: Core) -> None:
    """Old defect: a lost ChannelDestroyed left the call and its agent busy forever."""
    call = core.call()
    core.calls._calls[call.call_id] = call
    core.agents.login("agent1", ["support"])
    core.agents.login("agent2", ["support"])
    core.agents.reserve("agent1", call.call_id)
    core.agents.answered("agent1")
    core.agents.reserve("agent2", "ghost-call")  # busy on a call nobody has any more
    core.agents.answered("agent2")
    core.ari.live = []  # Asterisk has none of these channels
    await core.calls.resync(reason="periodic")
    with pytest.raises(Exception) as gone:
        await call.session.next(0.1)
    assert type(gone.value).__name__ == "ChannelGone"
    assert core.agents.get("agent2").state is AgentState.READY
    assert core.agents.get("agent1").state is AgentState.ON_CALL  # its call is live in cc_ari: ends normally
    await core.calls._tasks.cancel_all()


async def test_resync_leaves_a_leg_begun_while_asterisk_listed_its_channels(core: Core) -> None:
    """Bench finding: a resync 9 ms after an agent leg was originated judged it vanished and
    paused the agent for no answer. Legs younger than the margin are not judged."""
    call = core.call()
    core.calls._calls[call.call_id] = call
    call.legs[call.call_id].started_at = utcnow() - timedelta(minutes=1)
    core.ari.live = [ch(call.call_id, "PJSIP/pstn-00000001")]
    call.legs["agent-leg"] = Leg("agent-leg", "agent", "PJSIP/agent1", "", utcnow())  # not listed yet
    await core.calls.resync(reason="periodic")
    assert call.session.inbox.empty()
    call.legs["agent-leg"].started_at = utcnow() - timedelta(minutes=1)  # old and still not listed
    await core.calls.resync(reason="periodic")
    assert isinstance(call.session.inbox.get_nowait(), Resync)


async def test_periodic_resync_does_not_adopt_a_caller_whose_stasis_start_is_on_its_way(core: Core) -> None:
    """Soak finding: a periodic resync listed a caller that had just entered the app, before its
    StasisStart was read, took it for an orphan and started a second flow on it."""
    young = Channel(id="y1", name="PJSIP/pstn-00000042", state="Up", caller_number="0155", exten="5001",
                    app_name="Stasis", app_data="cc_ari,inbound,5001", created=utcnow())
    core.ari.live = [young]
    await core.calls.resync(reason="periodic")
    assert "y1" not in core.calls._adopting and core.calls.get("y1") is None
    old = Channel(id="o1", name="PJSIP/pstn-00000043", state="Up", caller_number="0156", exten="5001",
                  app_name="Stasis", app_data="cc_ari,inbound,5001", created=utcnow() - timedelta(minutes=1))
    core.ari.live = [young, old]
    await core.calls.resync(reason="periodic")
    await core.calls._tasks.wait(timeout=1)
    assert core.calls.get("o1") is not None and core.calls.get("y1") is None
    await core.calls._tasks.cancel_all()


async def test_call_state_is_saved_in_one_request_and_read_back(core: Core) -> None:
    """A restarted cc_ari rebuilds a call from the state on its channel: one variable, one
    request per transition (it was one request per field), whatever characters it holds."""
    call = core.call()
    call.queued_at = NOW
    call.ivr_path = "1&2=3 é"
    await core.control.save_state(call.call_id, call.state(Phase.QUEUED))
    assert len(core.ari.named("set_var")) == 1
    state = await core.control.load_state(call.call_id)
    assert state == {"phase": "queued", "queue": "support", "ivr_path": "1&2=3 é",
                     "queued_at": f"{NOW.timestamp():.3f}"}
    assert await core.control.load_state("no-such-channel") == {}


class FakeAmi:
    def __init__(self, fail: Exception | None = None) -> None:
        self.actions: list[tuple[str, dict[str, str]]] = []
        self.fail = fail

    async def action(self, name: str, **fields: str) -> dict[str, str]:
        self.actions.append((name, fields))
        if self.fail is not None:
            raise self.fail
        return {"Response": "Success"}


async def test_conversation_recorded_by_mixmonitor_and_by_the_bridge_only_when_ami_cannot(core: Core) -> None:
    """A bridge recording makes the two-party bridge a softmix conference (its cost); MixMonitor
    on the caller's channel is the cheap way. AMI down: ARI's bridge recording, still confirmed."""
    from cc_ari.ami.errors import AmiUnavailable
    from cc_ari.telephony.recording import MixMonitorRecorder

    for ami, expect_bridge_recording in ((FakeAmi(), False), (FakeAmi(AmiUnavailable("down")), True)):
        core.ari.calls.clear()
        connector = Connector(core.control, core.agents, core.records, recordings_dir=Path("/rec"),
                              recorder=MixMonitorRecorder(ami, "/ast/rec/"))
        call = core.call()
        call.agent, call.agent_channel = "agent1", "c1-1"
        if expect_bridge_recording:
            core.control.registry.claim_bridge("cc-call-c1", call.session)
            started = parse_event({"type": "RecordingStarted", "timestamp": "2026-11-24T12:00:00.000+0000",
                                   "recording": {"name": "cc-c1", "target_uri": "bridge:cc-call-c1",
                                                 "state": "recording"}})
            asyncio.get_running_loop().call_later(0.01, core.ari._emit, started)
        await connector.bridge(call)
        assert ami.actions[0] == ("MixMonitor", {"Channel": "c1", "File": "/ast/rec/cc-c1.wav"})
        assert bool(core.ari.named("record_bridge")) is expect_bridge_recording
        assert call.recording_path == "/rec/cc-c1.wav"
        assert call.recording_name == ("cc-c1" if expect_bridge_recording else None)


async def test_bridging_when_a_leg_hung_up_meanwhile(core: Core) -> None:
    """Bench finding: addChannel's 400 "Channel not found" when the caller hung up at the moment
    of bridging became a handler failure. Caller gone: the session ends (ChannelGone); agent gone
    while the caller is still there: a TelephonyError (the caller is rescued, never dropped)."""
    call = core.call()
    core.ari.fail["add_to_bridge"] = AriBadRequest("POST /bridges/x/addChannel: 400 Channel not found", status=400)
    core.ari.live = []  # the caller is gone too
    with pytest.raises(ChannelGone):
        await core.control.mixing_bridge(call.session, "cc-call-c1", [call.call_id, "agent-leg"])
    core.ari.live = [ch(call.call_id, "PJSIP/pstn-00000001")]
    with pytest.raises(TelephonyError) as failed:
        await core.control.mixing_bridge(call.session, "cc-call-c2", [call.call_id, "agent-leg"])
    assert not isinstance(failed.value, ChannelGone)


async def test_a_caller_hanging_up_with_an_offer_in_flight_leaves_the_agent_ready(core: Core) -> None:
    call = core.call()
    core.agents.login("agent1", ["support"])
    core.calls._calls[call.call_id] = call
    call.session.clock = lambda: 0.0
    core.agents.reserve("agent1", call.call_id)
    call.agent = "agent1"
    await core.calls._finish(call, rescued=False)
    assert core.agents.get("agent1").state is AgentState.READY


async def test_caller_leaving_while_the_agent_rings_is_not_the_agents_no_answer(core: Core) -> None:
    call = core.call()
    core.agents.login("agent1", ["support"])
    core.agents.reserve("agent1", call.call_id)
    call.agent = "agent1"
    core.ari.dial_status = "RINGING"  # never answers: the caller hangs up first
    call.legs[call.call_id].ended_at = NOW
    with pytest.raises(ChannelGone):
        await core.connector.reach(call, "agent1", ring_timeout=5)
    assert core.agents.get("agent1").state is AgentState.RINGING  # released by the call's finish, not paused
    core.calls._calls[call.call_id] = call
    call.session.clock = lambda: 0.0
    await core.calls._finish(call, rescued=False)
    assert core.agents.get("agent1").state is AgentState.READY


async def test_holding_bridges_hold_at_most_capacity_callers_each(core: Core) -> None:
    """Bench finding: 800 callers in one holding bridge backed up Asterisk's ARI queue (every
    join/leave describes the whole bridge). Bridges of `capacity`; a leave (or a hangup) frees a
    place; after a restart the bridges and their callers are taken from Asterisk."""
    from cc_ari.ari.models import Bridge

    holding = HoldingBridges(core.ari, capacity=2)  # type: ignore[arg-type]
    for cid in ("a", "b", "c"):
        await holding.enter("support", cid)
    first, second = holding.bridge_of("a"), holding.bridge_of("c")
    assert first == holding.bridge_of("b") and second not in (None, first)
    assert len(core.ari.named("create_bridge")) == 2
    await holding.leave("support", "a")
    assert core.ari.named("remove_from_bridge")[-1] == ("remove_from_bridge", first, "a")
    holding.forget("b")  # hung up while waiting: no request, but its place is free
    await holding.enter("support", "d")
    await holding.enter("support", "e")
    assert holding.bridge_of("d") == holding.bridge_of("e") == first
    assert len(core.ari.named("create_bridge")) == 2
    holding.adopt([Bridge("x1", "holding", ("p", "q"), "cc-hold-sales"), Bridge("x2", "mixing", ("r",), "cc-call-1")])
    assert holding.bridge_of("p") == "x1" and holding.bridge_of("r") is None
    await holding.enter("sales", "s")  # x1 is full: a new one
    assert holding.bridge_of("s") not in (None, "x1")


async def test_a_finished_call_is_freed_by_reference_counting_alone(core: Core) -> None:
    """Soak finding (RSS +7 KB per call): finished calls were kept alive by reference cycles
    (call -> session -> hooks -> closure -> call) until the cyclic collector's rare full pass.
    A call that ran its flow and ended must leave no cyclic garbage behind."""
    import gc

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        start = StasisStart("StasisStart", NOW, {}, ch("c9", app_data="cc_ari,inbound,5001"), ("inbound", "5001"))
        core.calls.on_inbound(start)
        for _ in range(50):  # answered, state saved, in the holding bridge, music: waiting
            await asyncio.sleep(0.01)
            if core.ari.named("moh"):
                break
        assert core.calls.get("c9") is not None
        core.handlers.on_event(parse_event({"type": "ChannelDestroyed", "timestamp": "2026-11-24T12:00:05.000+0000",
                                            "cause": 16, "channel": {"id": "c9", "name": "PJSIP/pstn-9"}}))
        await core.calls._tasks.wait(timeout=5)
        assert core.calls.get("c9") is None and len(core.calls._tasks) == 0
        del start
        gc.collect()
        leaked = [o for o in gc.garbage if isinstance(o, Call | Session)]
        assert leaked == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
