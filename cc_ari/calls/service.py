"""Inbound calls, end to end: route, IVR, queue, ring agents, bridge, record, log.

Each call runs as one task that consumes its own event queue, so a call's events are handled
in order. The flow is written top to bottom (answer -> IVR -> queue -> ring -> talk); a caller
hanging up at any point raises `CallerGone` out of whatever step is waiting, and `_finish`
(which always runs, even on cancel) cleans up and writes the final rows. A step that fails
unexpectedly sends the caller to the fallback dialplan, so nobody is stranded.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from cc_ari.agents.errors import AgentError
from cc_ari.agents.models import AgentState
from cc_ari.agents.service import AgentService
from cc_ari.ari.client import AriClient
from cc_ari.ari.errors import AriError, AriNotFound
from cc_ari.ari.models import (
    Bridge,
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelHangupRequest,
    ChannelStateChange,
    Dial,
    Event,
    PlaybackFinished,
    StasisEnd,
    StasisStart,
)
from cc_ari.callflow import CallFlow, QueueConfig, Target
from cc_ari.calls.models import Call, CallEvent, Leg, Offer, Phase, Resync
from cc_ari.db.store import CallStore
from cc_ari.ivr.engine import Collect, IvrEngine, Leave, Play
from cc_ari.queueing.estimate import (
    HandleTimes,
    expected_wait_seconds,
    number_sounds,
    position_in_queue,
    wait_minutes_to_announce,
)
from cc_ari.queueing.routing import Waiting, assign

log = structlog.get_logger("cc_ari.calls")

FALLBACK_CONTEXT = "cc-fallback"
AGENT_FAIL_STATUSES = frozenset({"NOANSWER", "BUSY", "CHANUNAVAIL", "CONGESTION", "CANCEL", "DONTCALL",
                                 "TORTURE", "INVALIDARGS"})
MAX_PROMPT_SECONDS = 60.0


class CallerGone(Exception):
    """The caller's channel is gone (hung up); the current step stops."""


@dataclass(frozen=True, slots=True)
class MediaPaths:
    prompts_dir: str  # as Asterisk sees it
    recordings_dir: Path  # as this host sees it


def utcnow() -> datetime:
    return datetime.now(UTC)


class CallService:
    def __init__(self, ari: AriClient, store: CallStore, flow: CallFlow, agents: AgentService,
                 media: MediaPaths, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ari = ari
        self._store = store
        self._flow = flow
        self._agents = agents
        self._media = media
        self._clock = clock
        self._ivr = IvrEngine(flow)
        self._calls: dict[str, Call] = {}
        self._by_channel: dict[str, str] = {}
        self._holding: dict[str, str] = {}  # queue -> holding bridge id
        self._holding_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._online: dict[str, bool] = {}
        self._dispatch_scheduled = False
        self._closing = False
        self._finishing: set[asyncio.Future[None]] = set()
        self._rescued_ids: set[str] = set()
        self._handle_times = HandleTimes()
        agents.on_available = self.schedule_dispatch
        agents.reachable = self.reachable

    # ------------------------------------------------------------------ public views
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def reachable(self, agent: str) -> bool:
        return self._online.get(agent, False)

    def endpoint_states(self) -> dict[str, bool]:
        return dict(self._online)

    # ------------------------------------------------------------------ ARI plumbing
    async def on_connect(self) -> None:
        """After each (re)connection: resynchronise from Asterisk before deciding anything."""
        try:
            await self._ari.subscribe("endpoint:PJSIP")
            states = await self._ari.endpoints("PJSIP")
            self._online = {name: state == "online" for name, state in states.items()}
            live = {c.id: c for c in await self._ari.channels()}
            bridges = await self._ari.bridges()
        except AriError as exc:
            log.error("resync_failed", error=str(exc))
            return
        self._holding = {b.name.removeprefix("cc-hold-"): b.id for b in bridges if b.name.startswith("cc-hold-")}
        for call in list(self._calls.values()):
            gone = tuple(leg_id for leg_id, leg in call.legs.items() if leg.ended_at is None and leg_id not in live)
            if gone:
                call.events.put_nowait(Resync(gone))
        orphans = [c for c in live.values() if c.id not in self._by_channel and c.app_name == "Stasis"
                   and c.app_data.split(",")[0] == self._ari.app]
        for ch in orphans:
            await self._adopt_orphan(ch, bridges)
        log.info("resynced", channels=len(live), calls=len(self._calls), orphans=len(orphans),
                 agents_online=sum(self._online.values()))
        self.schedule_dispatch()

    async def on_disconnect(self) -> None:
        log.warning("ari_lost", live_calls=len(self._calls))

    async def on_event(self, ev: Event) -> None:
        if ev.type == "EndpointStateChange":
            ep = ev.raw.get("endpoint") or {}
            if ep.get("technology") == "PJSIP":
                online = ep.get("state") == "online"
                name = str(ep.get("resource"))
                if self._online.get(name) != online:
                    self._online[name] = online
                    log.info("endpoint_state", endpoint=name, online=online)
                    if online:
                        self.schedule_dispatch()
            return
        if isinstance(ev, StasisStart) and ev.channel.id not in self._by_channel:
            if ev.channel.id in self._rescued_ids:  # sent to the fallback at resync already
                self._rescued_ids.discard(ev.channel.id)
                return
            if ev.args and ev.args[0] == "inbound":
                dnis = ev.args[1] if len(ev.args) > 1 else ev.channel.exten
                self._start_call(ev.channel, dnis)
                return
            log.warning("unexpected_stasis_channel", channel=ev.channel.name, args=list(ev.args))
            await self._ari.hangup(ev.channel.id)
            return
        seen: set[str] = set()
        for cid in ev.channel_ids:
            call_id = self._by_channel.get(cid)
            if call_id is not None and call_id not in seen:
                seen.add(call_id)
                self._calls[call_id].events.put_nowait(ev)

    # ------------------------------------------------------------------ call lifecycle
    def _start_call(self, ch: Channel, dnis: str, *, adopted: bool = False) -> Call:
        started = ch.created or utcnow()
        call = Call(call_id=ch.id, caller=ch.caller_number, dnis=dnis, started_at=started, adopted=adopted)
        call.legs[ch.id] = Leg(ch.id, "caller", ch.endpoint, ch.name, started)
        self._calls[call.call_id] = call
        self._by_channel[ch.id] = call.call_id
        self._store.call(call.call_id, direction="inbound", caller=call.caller or None, dnis=dnis,
                         started_at=started)
        self._store.leg(ch.id, call_id=call.call_id, role="caller", endpoint=ch.endpoint,
                        channel_name=ch.name, started_at=started)
        self._spawn(call)
        return call

    def _spawn(self, call: Call) -> None:
        """The call's own task; tracked so shutdown can cancel and await it."""
        task = asyncio.create_task(self._run(call), name=f"call-{call.call_id}")
        call.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, call: Call) -> None:
        structlog.contextvars.bind_contextvars(call_id=call.call_id)
        log.info("call_started", dnis=call.dnis, adopted=call.adopted)
        rescued = False
        try:
            await self._flow_inbound(call)
        except CallerGone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call_handler_failed", phase=str(call.phase))
            rescued = await self._rescue(call)
        finally:
            if self._closing:
                log.info("call_left_to_asterisk", phase=str(call.phase))
            else:
                # Shielded and tracked: a cancel (shutdown) never loses the final rows.
                fin = asyncio.ensure_future(self._finish(call, rescued=rescued))
                self._finishing.add(fin)
                fin.add_done_callback(self._finishing.discard)
                await asyncio.shield(fin)

    async def _flow_inbound(self, call: Call) -> None:
        if call.phase is Phase.TALKING:  # adopted after a restart, already talking
            await self._talk(call, self._queue_config(call.queue))
            return
        if call.phase is not Phase.QUEUED:
            await self._ari.answer(call.call_id)
            call.caller_leg.answered_at = utcnow()
        route = self._flow.route_for(call.dnis) if call.queue is None else None
        queue = call.queue
        if queue is None:
            if route is None:
                await self._invalid_number(call)
                return
            queue = route.queue
            if route.ivr is not None:
                target = await self._run_ivr(call, route.ivr)
                if target.queue is None:
                    await self._play_wait(call, [self._flow.goodbye_prompt])
                    call.outcome = "abandoned"
                    return
                queue = target.queue
        assert queue is not None
        await self._queue_and_connect(call, queue)

    async def _invalid_number(self, call: Call) -> None:
        call.outcome = "invalid_number"
        log.info("invalid_number", dnis=call.dnis)
        await self._play_wait(call, [self._flow.invalid_number_prompt])
        await self._ari.hangup(call.call_id, "unallocated")

    # ------------------------------------------------------------------ events helpers
    async def _next(self, call: Call, timeout: float | None) -> CallEvent | None:
        """Next event of this call, or None on timeout. Raises CallerGone when the caller left."""
        if not call.events.empty():
            ev = call.events.get_nowait()  # (wait_for with a 0 timeout would not look)
        elif timeout is not None and timeout <= 0:
            return None
        else:
            try:
                ev = await (call.events.get() if timeout is None else asyncio.wait_for(call.events.get(), timeout))
            except TimeoutError:
                return None
        self._track(call, ev)
        caller_leg = call.legs[call.call_id]
        if caller_leg.ended_at is not None:
            raise CallerGone()
        return ev

    def _track(self, call: Call, ev: CallEvent) -> None:
        """Keep leg times and causes up to date from any event."""
        now = utcnow()
        if isinstance(ev, Resync):
            for leg_id in ev.gone:
                leg = call.legs.get(leg_id)
                if leg is not None and leg.ended_at is None:
                    leg.ended_at = now
            return
        if isinstance(ev, (StasisEnd, ChannelDestroyed, ChannelHangupRequest)):
            leg = call.legs.get(ev.channel.id)
            if leg is None:
                return
            if isinstance(ev, ChannelDestroyed) or (
                isinstance(ev, ChannelHangupRequest) and ev.cause and leg.hangup_cause is None
            ):
                leg.hangup_cause = ev.cause
            if leg.ended_at is None:
                leg.ended_at = ev.timestamp or now

    def _leg_ended(self, call: Call, leg_id: str | None) -> bool:
        if leg_id is None:
            return True
        leg = call.legs.get(leg_id)
        return leg is None or leg.ended_at is not None

    def _sound_uris(self, prompts: list[str] | tuple[str, ...]) -> list[str]:
        return [f"sound:{self._media.prompts_dir}/{p}" for p in prompts]

    async def _start_playback(self, call: Call, prompts: list[str] | tuple[str, ...]) -> str:
        pb = f"pb-{uuid.uuid4().hex}"
        try:
            await self._ari.play(call.call_id, self._sound_uris(prompts), pb)
        except AriNotFound:
            raise CallerGone() from None
        return pb

    async def _play_wait(self, call: Call, prompts: list[str] | tuple[str, ...]) -> None:
        """Play prompts to the caller and wait until they end (digits are ignored)."""
        pb = await self._start_playback(call, prompts)
        deadline = self._clock() + MAX_PROMPT_SECONDS
        while True:
            ev = await self._next(call, deadline - self._clock())
            if ev is None or (isinstance(ev, PlaybackFinished) and ev.playback_id == pb):
                return

    async def _play_collect(self, call: Call, prompts: tuple[str, ...], timeout: float) -> str | None:
        """Play prompts, then wait `timeout` s for one digit. A digit interrupts the prompt."""
        pb = await self._start_playback(call, prompts) if prompts else None
        playing = pb is not None
        deadline = self._clock() + (MAX_PROMPT_SECONDS if playing else timeout)
        while True:
            ev = await self._next(call, deadline - self._clock())
            if ev is None:
                if playing:  # a prompt that never finished: treat as finished
                    playing = False
                    deadline = self._clock() + timeout
                    continue
                return None
            if isinstance(ev, ChannelDtmfReceived) and ev.channel.id == call.call_id:
                if playing and pb is not None:
                    await self._ari.stop_playback(pb)
                return ev.digit
            if isinstance(ev, PlaybackFinished) and ev.playback_id == pb:
                playing = False
                deadline = self._clock() + timeout

    # ------------------------------------------------------------------ IVR
    async def _run_ivr(self, call: Call, menu: str) -> Target:
        call.phase = Phase.IVR
        state, actions = self._ivr.start(menu)
        while True:
            prompts: tuple[str, ...] = ()
            next_actions = None
            for action in actions:
                if isinstance(action, Play):
                    prompts = action.prompts
                elif isinstance(action, Collect):
                    digit = await self._play_collect(call, prompts, action.timeout)
                    if digit is None:
                        log.info("ivr_timeout", menu=state.menu, plays=state.plays)
                        state, next_actions = self._ivr.on_timeout(state)
                    else:
                        log.info("ivr_digit", menu=state.menu, digit=digit)
                        state, next_actions = self._ivr.on_digit(state, digit)
                    break
                elif isinstance(action, Leave):
                    call.ivr_path = "".join(state.path)
                    log.info("ivr_left", target_queue=action.target.queue, reason=action.reason,
                             path=call.ivr_path)
                    if action.target.prompt:
                        await self._play_wait(call, [action.target.prompt])
                    return action.target
            if next_actions is None:
                raise RuntimeError("IVR produced no Collect or Leave")
            actions = next_actions

    # ------------------------------------------------------------------ queue
    def _queue_config(self, queue: str | None) -> QueueConfig:
        if queue is not None and queue in self._flow.queues:
            return self._flow.queues[queue]
        return QueueConfig(name=queue or "default")

    async def _holding_bridge(self, queue: str) -> str:
        async with self._holding_lock:
            bridge_id = self._holding.get(queue)
            if bridge_id is None:
                bridge_id = f"cc-hold-{queue}-{uuid.uuid4().hex[:8]}"
                await self._ari.create_bridge(bridge_id, "holding", name=f"cc-hold-{queue}")
                self._holding[queue] = bridge_id
                log.info("holding_bridge_created", queue=queue, bridge=bridge_id)
            return bridge_id

    async def _enter_holding(self, call: Call, queue: str) -> None:
        bridge_id = await self._holding_bridge(queue)
        try:
            await self._ari.add_to_bridge(bridge_id, [call.call_id], role="participant")
        except AriNotFound:
            # The bridge vanished (Asterisk restarted?): make a new one.
            self._holding.pop(queue, None)
            bridge_id = await self._holding_bridge(queue)
            await self._ari.add_to_bridge(bridge_id, [call.call_id], role="participant")
        await self._moh(call, on=True)

    async def _leave_holding(self, call: Call) -> None:
        if call.queue and call.queue in self._holding:
            await self._moh(call, on=False)
            await self._ari.remove_from_bridge(self._holding[call.queue], call.call_id)

    async def _queue_and_connect(self, call: Call, queue: str) -> None:
        qc = self._queue_config(queue)
        call.queue = queue
        if call.queued_at is None:
            call.queued_at = utcnow()
            call.queued_mono = self._clock()
        self._store.call(call.call_id, direction="inbound", started_at=call.started_at, queue=queue,
                         queued_at=call.queued_at, ivr_path=call.ivr_path or None)
        log.info("call_queued", queue=queue)
        await self._enter_holding(call, queue)
        call.phase = Phase.QUEUED
        self.schedule_dispatch()
        deadline = call.queued_mono + qc.max_wait
        announce_at = call.queued_mono + qc.announce_first if qc.announce_every > 0 else float("inf")
        while True:
            ev = await self._next(call, min(deadline, announce_at) - self._clock())
            if isinstance(ev, PlaybackFinished) and ev.playback_id == call.announcement:
                call.announcement = None
                if call.phase is Phase.QUEUED or call.phase is Phase.RINGING:
                    await self._moh(call, on=True)
                continue
            if ev is None and self._clock() < deadline:  # time to announce
                announce_at = self._clock() + qc.announce_every
                if call.phase is Phase.QUEUED and call.announcement is None:
                    await self._announce_position(call)
                continue
            if ev is None:
                if call.phase is Phase.QUEUED:
                    log.info("queue_max_wait", queue=queue)
                    call.phase = Phase.ENDING
                    call.outcome = "no_answer"
                    await self._leave_holding(call)
                    await self._play_wait(call, [self._flow.goodbye_prompt])
                    return
                continue
            if isinstance(ev, Offer):
                if await self._ring_agent(call, ev.agent, qc):
                    await self._talk(call, qc)
                    return
                call.phase = Phase.QUEUED
                self.schedule_dispatch()

    async def _moh(self, call: Call, *, on: bool) -> None:
        with contextlib.suppress(AriError):
            await self._ari.moh(call.call_id, on=on)

    async def _announce_position(self, call: Call) -> None:
        """"You are caller number N. Your expected waiting time is about M minutes." Then music again."""
        assert call.queue is not None
        waiting = [(c.call_id, c.queued_mono) for c in self._calls.values()
                   if c.queue == call.queue and c.phase in (Phase.QUEUED, Phase.RINGING)]
        position = position_in_queue(call.call_id, waiting)
        serving = sum(1 for a in self._agents.all()
                      if call.queue in a.queues and a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED))
        ewt = expected_wait_seconds(position, serving, self._handle_times.average(call.queue))
        pos_p, wait_p, min_p = self._flow.position_prompts
        media = [*self._sound_uris([pos_p]), *(f"sound:{s}" for s in number_sounds(min(position, 999)))]
        minutes = None
        if ewt is not None:
            minutes = wait_minutes_to_announce(ewt)
            media += [*self._sound_uris([wait_p]), *(f"sound:{s}" for s in number_sounds(min(minutes, 999))),
                      *self._sound_uris([min_p])]
        log.info("queue_position_announced", queue=call.queue, position=position, expected_wait_min=minutes,
                 agents_serving=serving)
        await self._moh(call, on=False)
        pb = f"pb-{uuid.uuid4().hex}"
        try:
            await self._ari.play(call.call_id, media, pb)
            call.announcement = pb
        except AriNotFound:
            raise CallerGone() from None
        except AriError as exc:
            log.warning("announcement_failed", error=str(exc))
            await self._moh(call, on=True)

    def schedule_dispatch(self) -> None:
        if not self._dispatch_scheduled:
            self._dispatch_scheduled = True
            asyncio.get_running_loop().call_soon(self._dispatch)

    def _dispatch(self) -> None:
        self._dispatch_scheduled = False
        waiting = [Waiting(c.call_id, c.queue, c.queued_mono, frozenset(c.tried))
                   for c in self._calls.values() if c.phase is Phase.QUEUED and c.queue is not None]
        if not waiting:
            return
        for a in assign(waiting, self._agents.all(), reachable=self.reachable):
            call = self._calls[a.call_id]
            try:
                self._agents.offer(a.agent, call.call_id)
            except AgentError:
                continue
            call.phase = Phase.RINGING
            call.agent = a.agent
            call.events.put_nowait(Offer(a.agent))

    # ------------------------------------------------------------------ agents
    async def _ring_agent(self, call: Call, agent: str, qc: QueueConfig) -> bool:
        """Ring one agent. True when answered; False (agent handled) otherwise."""
        call.tried.add(agent)
        chan_id = f"{call.call_id}-{agent}-{len(call.tried)}"
        now = utcnow()
        self._by_channel[chan_id] = call.call_id
        call.legs[chan_id] = Leg(chan_id, "agent", f"PJSIP/{agent}", "", now)
        call.agent_channel = chan_id
        self._store.leg(chan_id, call_id=call.call_id, role="agent", endpoint=f"PJSIP/{agent}", started_at=now)
        log.info("agent_ringing", agent=agent, queue=call.queue)
        try:
            ch = await self._ari.create_channel(
                f"PJSIP/{agent}", channel_id=chan_id, app_args=f"agent,{call.call_id}", originator=call.call_id,
                caller_id=f'"{call.caller}" <{call.caller}>' if call.caller else None)
            call.legs[chan_id].channel_name = ch.name
            await self._await_stasis(call, chan_id)
            await self._ari.dial(chan_id, timeout=int(qc.ring_timeout))
        except AriError as exc:
            log.warning("agent_unreachable", agent=agent, error=str(exc))
            call.legs[chan_id].ended_at = utcnow()
            return await self._agent_missed(call, chan_id, agent)
        deadline = self._clock() + qc.ring_timeout + 2.0
        while True:
            ev = await self._next(call, deadline - self._clock())
            if ev is None:
                log.info("agent_no_answer", agent=agent, after_s=qc.ring_timeout)
                return await self._agent_missed(call, chan_id, agent)
            answered = (isinstance(ev, Dial) and ev.peer is not None and ev.peer.id == chan_id
                        and ev.dialstatus == "ANSWER") or \
                       (isinstance(ev, ChannelStateChange) and ev.channel.id == chan_id and ev.channel.state == "Up")
            if answered:
                return True
            failed = (isinstance(ev, Dial) and ev.peer is not None and ev.peer.id == chan_id
                      and ev.dialstatus in AGENT_FAIL_STATUSES) or self._leg_ended(call, chan_id)
            if failed:
                status = ev.dialstatus if isinstance(ev, Dial) else "HANGUP"
                log.info("agent_no_answer", agent=agent, status=status)
                return await self._agent_missed(call, chan_id, agent)

    async def _await_stasis(self, call: Call, chan_id: str, timeout: float = 5.0) -> None:
        """A created channel can be dialed only once it is in our Stasis app."""
        deadline = self._clock() + timeout
        while True:
            ev = await self._next(call, deadline - self._clock())
            if ev is None:
                raise AriError(f"channel {chan_id} did not enter Stasis in {timeout} s")
            if isinstance(ev, StasisStart) and ev.channel.id == chan_id:
                return
            if self._leg_ended(call, chan_id):
                raise AriError(f"channel {chan_id} ended before it could be dialed")

    async def _agent_missed(self, call: Call, chan_id: str, agent: str) -> bool:
        """The agent did not take the call: drop the leg, pause the agent (no_answer). Always False."""
        await self._drop_agent_channel(call, chan_id)
        self._agents.no_answer(agent)
        call.agent = None
        return False

    async def _drop_agent_channel(self, call: Call, chan_id: str) -> None:
        await self._ari.hangup(chan_id)
        leg = call.legs.get(chan_id)
        if leg is not None:
            if leg.ended_at is None:
                leg.ended_at = utcnow()
            self._write_leg(call, leg)
        call.agent_channel = None

    async def _talk(self, call: Call, qc: QueueConfig) -> None:
        agent_chan = call.agent_channel
        assert agent_chan is not None and call.agent is not None
        if not call.adopted:  # an adopted call is already bridged and recorded
            call.answered_at = utcnow()
            call.legs[agent_chan].answered_at = call.answered_at
            self._agents.answered(call.agent)
            self._store.call(call.call_id, direction="inbound", started_at=call.started_at, agent=call.agent,
                             answered_at=call.answered_at)
            self._write_leg(call, call.legs[agent_chan])
            log.info("call_answered", agent=call.agent, queue=call.queue,
                     wait_s=round(self._clock() - call.queued_mono, 3))
            if call.announcement is not None:
                await self._ari.stop_playback(call.announcement)
                call.announcement = None
            await self._leave_holding(call)
            bridge_id = f"cc-call-{call.call_id}"
            await self._ari.create_bridge(bridge_id, "mixing", name=bridge_id)
            call.bridge_id = bridge_id
            await self._ari.add_to_bridge(bridge_id, [call.call_id, agent_chan])
            call.phase = Phase.TALKING  # only now: until bridged, a failure still rescues the caller
            await self._start_recording(call)
        call.phase = Phase.TALKING
        while not self._leg_ended(call, agent_chan):
            await self._next(call, None)

    async def _start_recording(self, call: Call) -> None:
        assert call.bridge_id is not None
        name = f"cc-{call.call_id}"
        try:
            await self._ari.record_bridge(call.bridge_id, name)
        except AriError as exc:
            log.error("recording_failed", error=str(exc))
            return
        call.recording_name = name
        call.recording_path = str(self._media.recordings_dir / f"{name}.wav")
        self._store.call(call.call_id, direction="inbound", started_at=call.started_at,
                         recording_path=call.recording_path)

    # ------------------------------------------------------------------ ending
    async def _rescue(self, call: Call) -> bool:
        """A handler failed: hand the caller to the fallback dialplan (never strand them)."""
        if call.phase is Phase.TALKING or self._leg_ended(call, call.call_id):
            return False
        try:
            await self._leave_holding(call)
            await self._ari.continue_in_dialplan(call.call_id, FALLBACK_CONTEXT, call.dnis or "0")
            log.warning("call_rescued_to_dialplan", context=FALLBACK_CONTEXT)
            return True
        except AriError as exc:
            log.error("rescue_failed", error=str(exc))
            return False

    def _release_agent(self, call: Call) -> None:
        """Free the agent of this call (synchronously, before any await can fail)."""
        if call.agent is None:
            return
        if call.answered_at is not None and call.queue is not None:
            talk = (utcnow() - call.answered_at).total_seconds()
            self._handle_times.add(call.queue, talk + self._queue_config(call.queue).wrapup)
        try:
            agent = self._agents.get(call.agent)
            if agent.call_id == call.call_id:
                if agent.state is AgentState.RINGING:
                    self._agents.offer_withdrawn(call.agent)
                elif agent.state is AgentState.ON_CALL:
                    self._agents.call_ended(call.agent, self._queue_config(call.queue).wrapup)
        except AgentError as exc:
            log.warning("agent_release_failed", agent=call.agent, error=str(exc))

    def _end_time(self, call: Call) -> datetime:
        """When the conversation ended: the first of caller/agent legs to end, else now."""
        ends = [leg.ended_at for leg in call.legs.values()
                if leg.ended_at is not None and (leg.leg_id == call.call_id or leg.leg_id == call.agent_channel)]
        return min(ends) if ends else utcnow()

    async def _finish(self, call: Call, *, rescued: bool) -> None:
        phase = call.phase
        call.phase = Phase.ENDING
        end_time = self._end_time(call)
        self._release_agent(call)
        try:
            if call.recording_name:
                await self._ari.stop_recording(call.recording_name)
            agent_chan = call.agent_channel
            if agent_chan is not None and not self._leg_ended(call, agent_chan):
                await self._ari.hangup(agent_chan)
            if not rescued and not self._leg_ended(call, call.call_id):
                await self._ari.hangup(call.call_id)
            if call.bridge_id:
                await self._ari.destroy_bridge(call.bridge_id)
            await self._await_destroyed(call, exclude_caller=rescued)
        except Exception:
            log.exception("call_cleanup_failed")
        finally:
            self._write_final(call, phase, rescued, end_time)

    async def _await_destroyed(self, call: Call, *, exclude_caller: bool) -> None:
        """Give Asterisk a moment to report hangup causes of the legs."""
        deadline = self._clock() + 2.0
        while True:
            pending = [leg for leg in call.legs.values()
                       if leg.hangup_cause is None and leg.channel_name and not (exclude_caller and
                                                                              leg.leg_id == call.call_id)]
            if not pending or self._clock() >= deadline:
                return
            try:
                ev = await asyncio.wait_for(call.events.get(), deadline - self._clock())
            except TimeoutError:
                return
            self._track(call, ev)

    def _write_leg(self, call: Call, leg: Leg) -> None:
        self._store.leg(leg.leg_id, **leg.as_row(call.call_id))

    def _write_final(self, call: Call, phase: Phase, rescued: bool, end_time: datetime) -> None:
        now = end_time
        if not rescued:
            call.ended_at = end_time
            if call.outcome is None:
                call.outcome = "answered" if call.answered_at is not None else "abandoned"
        # The call row first (legs reference it), then the legs.
        self._store.call(call.call_id, direction="inbound", started_at=call.started_at, queue=call.queue,
                         agent=call.agent if call.answered_at else None, answered_at=call.answered_at,
                         ended_at=call.ended_at, outcome=call.outcome, recording_path=call.recording_path,
                         ivr_path=call.ivr_path or None)
        for leg in call.legs.values():
            if rescued and leg.leg_id == call.call_id:
                # The caller lives on in the fallback dialplan: the CEL reconciler ends this leg.
                leg.ended_at = None
                leg.hangup_cause = None
            elif leg.ended_at is None:
                leg.ended_at = utcnow()
            self._write_leg(call, leg)
        for leg_id in call.legs:
            self._by_channel.pop(leg_id, None)
        self._calls.pop(call.call_id, None)
        wait_s = None
        if call.queued_at is not None:
            wait_s = round(((call.answered_at or now) - call.queued_at).total_seconds(), 3)
        talk_s = round((now - call.answered_at).total_seconds(), 3) if call.answered_at else None
        log.info("call_finished", outcome=call.outcome, queue=call.queue, agent=call.agent, dnis=call.dnis,
                 wait_s=wait_s, talk_s=talk_s, last_phase=str(phase), rescued=rescued,
                 recording=call.recording_path)

    # ------------------------------------------------------------------ restart adoption
    async def _adopt_orphan(self, ch: Channel, bridges: Sequence[Bridge]) -> None:
        """A channel left in our Stasis app by a previous cc_ari process (it crashed or was stopped).

        A conversation (caller + agent in a cc-call bridge) is adopted and followed to its end;
        a caller still waiting is handed to the fallback dialplan; a lone agent leg is hung up.
        """
        args = ch.app_data.split(",")
        if len(args) < 2 or args[1] != "inbound":
            # An agent leg is kept only while its caller is with it; alone, it is hung up.
            if not any(ch.id in b.channels and len(b.channels) > 1 for b in bridges if b.name.startswith("cc-call-")):
                log.warning("orphan_channel_hungup", channel=ch.name)
                await self._ari.hangup(ch.id)
            return
        dnis = args[2] if len(args) > 2 else ch.exten
        talk = next((b for b in bridges if b.name.startswith("cc-call-") and ch.id in b.channels), None)
        others = [c for c in talk.channels if c != ch.id] if talk else []
        if talk is None or not others:
            log.warning("orphan_caller_rescued", channel=ch.name)
            self._rescued_ids.add(ch.id)
            try:
                await self._ari.continue_in_dialplan(ch.id, FALLBACK_CONTEXT, dnis or "0")
            except AriError as exc:
                log.error("orphan_rescue_failed", channel=ch.name, error=str(exc))
            return
        agent_chan = others[0]
        agent = agent_chan.split("-")[-2] if agent_chan.count("-") >= 2 else ""
        rows = await self._fetch_call_row(ch.id)
        call = Call(call_id=ch.id, caller=ch.caller_number, dnis=dnis, started_at=ch.created or utcnow(),
                    adopted=True, phase=Phase.TALKING)
        call.queue = rows.get("queue")
        call.queued_at = rows.get("queued_at")
        call.answered_at = rows.get("answered_at") or utcnow()
        call.ivr_path = rows.get("ivr_path") or ""
        call.recording_name = f"cc-{ch.id}"
        call.recording_path = rows.get("recording_path")
        call.bridge_id = talk.id
        call.agent = agent or None
        call.agent_channel = agent_chan
        call.legs[ch.id] = Leg(ch.id, "caller", ch.endpoint, ch.name, call.started_at, answered_at=call.started_at)
        call.legs[agent_chan] = Leg(agent_chan, "agent", f"PJSIP/{agent}", "", call.answered_at,
                                    answered_at=call.answered_at)
        self._calls[call.call_id] = call
        self._by_channel[ch.id] = call.call_id
        self._by_channel[agent_chan] = call.call_id
        if agent:
            with contextlib.suppress(AgentError):
                self._agents.adopt_call(agent, call.call_id)
        log.warning("orphan_call_adopted", channel=ch.name, agent=agent)
        self._spawn(call)

    async def _fetch_call_row(self, call_id: str) -> dict[str, Any]:
        try:
            rows = await self._store.fetch(
                "SELECT queue, queued_at, answered_at, ivr_path, recording_path FROM cc.calls WHERE call_id = $1",
                call_id)
        except Exception as exc:  # the database may be down: adopt with what Asterisk knows
            log.warning("adopt_lookup_failed", error=repr(exc))
            return {}
        return dict(rows[0]) if rows else {}

    async def close(self) -> None:
        """Shutdown: nobody is dropped. Callers not yet talking go to the fallback dialplan;
        conversations stay bridged in Asterisk and are adopted by the next cc_ari."""
        self._closing = True
        for call in list(self._calls.values()):
            if call.phase is not Phase.TALKING and not self._leg_ended(call, call.call_id):
                with structlog.contextvars.bound_contextvars(call_id=call.call_id):
                    if call.agent_channel is not None:
                        await self._ari.hangup(call.agent_channel)
                    await self._rescue(call)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._finishing:
            await asyncio.gather(*self._finishing, return_exceptions=True)
