"""Supervision: a supervisor listens to, whispers to, or barges into a live call from their own
softphone, through ARI snoop channels on the agent's channel.

The supervisor's phone (`PJSIP/<name>`, like an agent's) is called into our app with the Stasis
arguments `monitor,<monitor_id>,<supervisor>`. Once answered it waits in a private mixing bridge
(`cc-monitor-<monitor_id>`) with ONE snoop channel on the agent's channel (Stasis arguments
`monitor-snoop,<monitor_id>`). The mode is only that snoop's directions:

    listen   spy=both  whisper=none   hears both sides; nobody hears the supervisor
    whisper  spy=both  whisper=out    ... and speaks into what the agent's phone receives only
    barge    spy=both  whisper=both   ... and into what the agent's channel sends on, so the
                                      caller hears the supervisor too

Directions are Asterisk's (res_stasis_snoop): `out` is the audio Asterisk WRITES to the snooped
channel (what the agent hears), `in` the audio READ from it (what the agent says, which the call's
bridge carries to the caller). A spy hook gets each frame before whisper audio is mixed in, so the
supervisor never hears themselves. In listen, the supervisor's audio reaches the snoop channel
and goes nowhere: the caller can never hear a listening supervisor.

Barge is whisper=both rather than the supervisor joining the call's bridge: the call's bridge,
its recording and its owner are never touched (an outbound agent's bridge is their persistent
session `cc-agent-<agent>`, which outlives the call; and a restarted cc_ari adopting a call
expects exactly caller + agent in `cc-call-<id>`), every mode has the same shape, and switching
mode is replacing one snoop channel: the supervisor's call is never moved nor redialed. (The
caller hears the supervisor through the agent's stream, as with ChanSpy's barge: that needs
the agent's phone to send media, which a phone in a call does.)

A session ends when the supervisor hangs up, the monitored call ends (`CallService.on_final`,
the snoop dying with the agent's channel, or the idle check), on `stop()` (DELETE), or at
shutdown (the supervisor is hung up: end_reason `shutdown`). After a crash, a supervisor or snoop
channel found in our app is hung up and its row closed with end_reason `restart`.

Every change of one monitor is serialized: API requests hold the monitor's lock, the monitor's
task is the only reader of its session's inbox (a mode change is handed to it and awaited), and
ending is done once, shielded, whatever asked for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from cc_ari.agents.errors import UnknownAgent
from cc_ari.agents.models import AgentState, agent_endpoint
from cc_ari.agents.service import AgentService
from cc_ari.agents.sessions import AgentSessions
from cc_ari.ari.errors import AriError, AriNotFound
from cc_ari.ari.models import Bridge, Channel, ChannelDestroyed, StasisEnd, StasisStart
from cc_ari.calls.models import Call, Phase
from cc_ari.calls.service import CallService, cleanup_step
from cc_ari.db.monitoring import MonitorRecords
from cc_ari.db.store import CallStore
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl, quote_caller_id
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import Resync, Session, utcnow

log = structlog.get_logger("cc_ari.supervision")

MONITOR_APP_ARG = "monitor"  # the supervisor's leg: monitor,<monitor_id>,<supervisor>
SNOOP_APP_ARG = "monitor-snoop"  # a snoop channel: monitor-snoop,<monitor_id>
BRIDGE_PREFIX = "cc-monitor-"
IDLE_CHECK_SECONDS = 2.0  # an idle monitor checks its call is still talking this often
CHANNEL_CHECK_SECONDS = 10.0  # ... and that the supervisor's channel exists (a lost hangup event)
REQUEST_TIMEOUT = 10.0
RECENT = 200  # ended monitors remembered (GET and an idempotent DELETE after the end)


class Mode(enum.StrEnum):
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


# mode -> (spy, whisper) of the snoop on the agent's channel
SNOOP_DIRECTIONS: dict[Mode, tuple[str, str]] = {
    Mode.LISTEN: ("both", "none"),
    Mode.WHISPER: ("both", "out"),
    Mode.BARGE: ("both", "both"),
}


class MonitorError(Exception):
    status = 409


class UnknownCall(MonitorError):
    status = 404


class UnknownMonitor(MonitorError):
    status = 404


class InvalidMonitor(MonitorError):
    status = 422


class MonitorConflict(MonitorError):
    status = 409


class _CallGone(Exception):
    """The agent's channel (what is snooped) is gone: the monitored call is over."""


@dataclass(eq=False, slots=True)
class Monitor:
    monitor_id: str
    call_id: str
    supervisor: str
    agent: str
    agent_channel: str  # the snooped channel: the agent's leg, or their persistent session's
    mode: Mode
    session: Session  # anchor: the supervisor's channel
    started_at: datetime
    state: str = "ringing"  # ringing | active | ended
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    stop_reason: str | None = None  # why cc_ari is ending it (stopped, call_ended, shutdown)
    segment: int = 0  # the current mode segment (0: none yet)
    segment_started_at: datetime | None = None
    segment_mode: Mode | None = None
    snoop_id: str | None = None
    snoop_seq: int = 0
    bridged: bool = False
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    requests: deque[tuple[Mode, asyncio.Future[None]]] = field(default_factory=deque)
    task: asyncio.Task[None] | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def channel_id(self) -> str:
        return self.session.anchor

    @property
    def bridge_id(self) -> str:
        return f"{BRIDGE_PREFIX}{self.monitor_id}"

    def view(self) -> dict[str, Any]:
        """The API / live-feed shape (times as Unix epoch seconds)."""
        def epoch(t: datetime | None) -> float | None:
            return round(t.timestamp(), 3) if t is not None else None

        return {"monitor_id": self.monitor_id, "call_id": self.call_id, "supervisor": self.supervisor,
                "agent": self.agent, "mode": str(self.mode), "state": self.state,
                "started_at": epoch(self.started_at), "answered_at": epoch(self.answered_at),
                "ended_at": epoch(self.ended_at), "end_reason": self.end_reason}


class Monitors:
    def __init__(self, control: CallControl, calls: CallService, agents: AgentService, sessions: AgentSessions,
                 store: CallStore, *, ring_timeout: float = 30.0) -> None:
        self._control = control
        self._calls = calls
        self._agents = agents
        self._sessions = sessions
        self._records = MonitorRecords(store)
        self._store = store
        self._ring_timeout = ring_timeout
        self._live: dict[str, Monitor] = {}
        self._recent: OrderedDict[str, Monitor] = OrderedDict()
        self._tasks = Tasks("monitors")
        self._finishing = Tasks("monitor-finish")
        self._closing = False
        self.listeners: list[Callable[[dict[str, Any]], None]] = []  # {"type": "monitor", ...} per change
        calls.on_final.append(self._on_call_final)

    # --- reads ------------------------------------------------------------------------------
    def live(self) -> list[Monitor]:
        return list(self._live.values())

    def supervising(self, agent: str) -> bool:
        """Whether `agent`'s phone is busy supervising (for whoever offers them calls)."""
        return any(m.supervisor == agent for m in self._live.values())

    def get(self, monitor_id: str) -> Monitor:
        m = self._live.get(monitor_id) or self._recent.get(monitor_id)
        if m is None:
            raise UnknownMonitor(f"no monitor {monitor_id}")
        return m

    # --- requests -----------------------------------------------------------------------------
    def start(self, call_id: str, supervisor: str, mode: Mode) -> Monitor:
        """Ring the supervisor's phone to supervise `call_id` in `mode`. Validated whole, and
        synchronously (no await between the checks and the registration: two requests for the
        same supervisor cannot both pass)."""
        if self._closing:
            raise MonitorConflict("cc_ari is shutting down")
        call = self._calls.get(call_id)
        if call is None:
            raise UnknownCall(f"no live call {call_id}")
        try:
            sup = self._agents.get(supervisor)
        except UnknownAgent:
            raise InvalidMonitor(f"unknown supervisor extension {supervisor!r}") from None
        if call.phase is not Phase.TALKING or call.agent is None:
            raise MonitorConflict(f"call {call_id} is {call.phase}, not talking to an agent")
        agent_channel = self._agent_channel(call)
        if agent_channel is None:
            raise MonitorConflict(f"the agent's channel of call {call_id} is gone")
        if supervisor == call.agent:
            raise MonitorConflict(f"{supervisor} is the agent on call {call_id}")
        for other in self._live.values():
            if other.supervisor == supervisor:
                raise MonitorConflict(f"{supervisor} is already monitoring call {other.call_id} "
                                      f"(monitor {other.monitor_id})")
        if sup.state in (AgentState.RINGING, AgentState.ON_CALL):
            raise MonitorConflict(f"{supervisor} is on a call")
        session = self._sessions.get(supervisor)
        if session is not None and not session.ended.is_set():
            raise MonitorConflict(f"{supervisor} is in a campaign session (their phone is in use)")
        if sup.state in (AgentState.READY, AgentState.WRAPUP):
            raise MonitorConflict(f"{supervisor} takes calls ({sup.state}); pause or log them out first")
        if not self._agents.reachable(supervisor):
            raise MonitorConflict(f"{supervisor}'s phone is not registered")
        monitor_id = uuid.uuid4().hex[:16]
        m = Monitor(monitor_id, call_id, supervisor, call.agent, agent_channel, mode,
                    Session(anchor=f"cc-monitor-{monitor_id}-sup"), utcnow())
        self._live[monitor_id] = m
        self._write_session(m)
        self._notify(m)
        m.task = self._tasks.spawn(self._run(m), f"monitor-{monitor_id}")
        log.info("monitor_requested", monitor_id=monitor_id, call_id=call_id, supervisor=supervisor,
                 agent=call.agent, mode=str(mode))
        return m

    async def set_mode(self, monitor_id: str, mode: Mode) -> Monitor:
        """Switch mode (idempotent): the snoop channel is replaced, the supervisor's call stays."""
        m = self.get(monitor_id)
        async with m.lock:
            if m.state == "ended" or m.stop_reason is not None or m.end_reason is not None:  # ended or ending
                raise MonitorConflict(f"monitor {monitor_id} has ended")
            if mode == m.mode:
                return m
            if m.state == "ringing":  # not connected yet: it connects in the new mode
                m.mode = mode
                self._write_session(m)
                self._notify(m)
                return m
            fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            m.requests.append((mode, fut))
            m.session.deliver(Resync(()))  # wakes the monitor's task; nothing is gone
            # the monitor may end meanwhile (the call hung up): then answer at once, not at the timeout
            ended: asyncio.Future[Any] = asyncio.ensure_future(m.done.wait())
            waiting: set[asyncio.Future[Any]] = {fut, ended}
            try:
                await asyncio.wait(waiting, timeout=REQUEST_TIMEOUT, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
            if fut.done():
                fut.result()  # MonitorConflict when the monitor ended before switching
            elif m.done.is_set():
                raise MonitorConflict(f"monitor {monitor_id} has ended ({m.end_reason})")
            else:
                raise MonitorConflict(f"monitor {monitor_id} did not switch in {REQUEST_TIMEOUT:.0f} s")
        return m

    async def stop(self, monitor_id: str, reason: str = "stopped") -> Monitor:
        """End a monitor (idempotent): the supervisor's phone is hung up; the call goes on."""
        m = self.get(monitor_id)
        if m.state == "ended":
            return m
        async with m.lock:
            if m.state != "ended":
                if m.stop_reason is None:
                    m.stop_reason = reason
                if m.task is not None:
                    m.task.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(m.done.wait(), REQUEST_TIMEOUT)
        return m

    # --- the monitored calls ------------------------------------------------------------------
    def _agent_channel(self, call: Call) -> str | None:
        """The channel to snoop: the agent's leg, or (outbound, blended) their session's channel."""
        if call.via_session:
            s = self._sessions.get(call.agent) if call.agent else None
            return s.leg_id if s is not None and not s.ended.is_set() else None
        chan = call.agent_channel
        return chan if chan is not None and not call.session.ended(chan) else None

    def _call_talking(self, m: Monitor) -> bool:
        call = self._calls.get(m.call_id)
        return call is not None and call.phase is Phase.TALKING

    def _on_call_final(self, call: Call) -> None:
        """A call's final rows: its monitors end with it."""
        for m in list(self._live.values()):
            if m.call_id == call.call_id and m.stop_reason is None:
                self._tasks.spawn(self.stop(m.monitor_id, "call_ended"), f"monitor-end-{m.monitor_id}")

    # --- one monitor --------------------------------------------------------------------------
    async def _run(self, m: Monitor) -> None:
        structlog.contextvars.bind_contextvars(monitor_id=m.monitor_id, call_id=m.call_id)
        reason = "error"
        try:
            reason = await self._ring(m)
            if reason == "answered":
                await self._connect(m)
                reason = await self._supervise(m)
        except ChannelGone:
            reason = "supervisor_hangup" if m.answered_at is not None else "no_answer"
        except _CallGone:
            reason = "call_ended"
        except asyncio.CancelledError:
            reason = "shutdown"
            raise
        except Exception:
            log.exception("monitor_failed")
            reason = "error"
        finally:
            fin = self._finishing.spawn(self._finish(m, reason), f"monitor-finish-{m.monitor_id}")
            await asyncio.shield(fin)

    async def _ring(self, m: Monitor) -> str:
        call = self._calls.get(m.call_id)
        caller = call.caller if call is not None else ""
        app_args = f"{MONITOR_APP_ARG},{m.monitor_id},{m.supervisor}"
        variables = {"CC_ROLE": "supervisor", "CC_MONITOR": m.monitor_id, "CC_CALL_ID": m.call_id,
                     "CALLERID(all)": quote_caller_id(f"monitor {m.agent}", caller)}
        try:
            await self._control.originate(m.session, agent_endpoint(m.supervisor), channel_id=m.channel_id,
                                          role="supervisor", app_args=app_args, variables=variables)
            result = await self._control.dial(m.session, m.channel_id, timeout=self._ring_timeout)
        except ChannelGone:
            raise
        except (AriError, TelephonyError) as exc:
            log.warning("monitor_supervisor_unreachable", supervisor=m.supervisor, error=str(exc))
            return "unreachable"
        if not result.answered:
            log.info("monitor_not_answered", supervisor=m.supervisor, status=result.status)
            return "no_answer" if result.status != "CHANUNAVAIL" else "unreachable"
        return "answered"

    async def _connect(self, m: Monitor) -> None:
        """The supervisor answered: their bridge, then the snoop of the mode asked (under the
        lock, so a mode change asked meanwhile is applied before or after, never half)."""
        async with m.lock:
            m.answered_at = utcnow()
            await self._control.mixing_bridge(m.session, m.bridge_id, [m.channel_id])
            m.bridged = True
            await self._snoop(m, m.mode)
            m.state = "active"
            self._begin_segment(m, utcnow())
            self._write_session(m)
            self._notify(m)
            log.info("monitor_active", mode=str(m.mode), answer_s=round((m.answered_at - m.started_at)
                                                                         .total_seconds(), 3))

    async def _supervise(self, m: Monitor) -> str:
        """Until the supervisor hangs up (ChannelGone) or the call ends; applies mode changes."""
        idle = 0.0
        while True:
            await self._serve_requests(m)
            ev = await m.session.next(IDLE_CHECK_SECONDS)
            if ev is None:
                if not self._call_talking(m):
                    return "call_ended"
                idle += IDLE_CHECK_SECONDS
                if idle >= CHANNEL_CHECK_SECONDS:
                    idle = 0.0
                    with contextlib.suppress(AriError):  # Asterisk unreachable: judged next time
                        if not await self._control.ari.channel_exists(m.channel_id):
                            raise ChannelGone()
                continue
            if isinstance(ev, StasisEnd | ChannelDestroyed) and ev.channel.id == m.snoop_id:
                return "call_ended"  # a snoop dies with the channel it snoops on

    async def _serve_requests(self, m: Monitor) -> None:
        while m.requests:
            mode, fut = m.requests.popleft()
            if fut.done():
                continue
            try:
                await self._switch(m, mode)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(MonitorConflict(f"monitor {m.monitor_id} ended while switching: "
                                                      f"{type(exc).__name__}"))
                raise
            if not fut.done():
                fut.set_result(None)

    async def _switch(self, m: Monitor, mode: Mode) -> None:
        if mode == m.mode and m.snoop_id is not None:
            return
        old = m.snoop_id
        if old is not None:  # break before make: never two whisper hooks at once
            await self._drop_snoop(m, old)
        previous = m.mode
        m.mode = mode
        await self._snoop(m, mode)
        self._begin_segment(m, utcnow())
        self._write_session(m)
        self._notify(m)
        log.info("monitor_mode_changed", mode=str(mode), previous=str(previous))

    async def _snoop(self, m: Monitor, mode: Mode) -> None:
        spy, whisper = SNOOP_DIRECTIONS[mode]
        m.snoop_seq += 1
        snoop_id = f"cc-monitor-{m.monitor_id}-snoop{m.snoop_seq}"
        try:
            await self._control.snoop(m.session, m.agent_channel, snoop_id=snoop_id, role="snoop",
                                      app_args=f"{SNOOP_APP_ARG},{m.monitor_id}", spy=spy, whisper=whisper)
        except AriNotFound:
            self._control.registry.release(snoop_id)
            m.session.legs.pop(snoop_id, None)
            raise _CallGone() from None
        m.snoop_id = snoop_id
        try:
            await self._control.ari.add_to_bridge(m.bridge_id, [snoop_id])
        except AriError as exc:
            # The snoop died at once (its agent channel ended), or the supervisor's bridge is gone.
            if m.session.anchor_gone():
                raise ChannelGone() from exc
            raise _CallGone() from exc

    async def _drop_snoop(self, m: Monitor, snoop_id: str) -> None:
        m.snoop_id = None
        await self._control.hangup(snoop_id)
        self._control.registry.release(snoop_id)  # its end events are no news
        leg = m.session.legs.get(snoop_id)
        if leg is not None and leg.ended_at is None:
            leg.ended_at = utcnow()

    def _begin_segment(self, m: Monitor, now: datetime) -> None:
        self._end_segment(m, now)
        m.segment += 1
        m.segment_started_at = now
        m.segment_mode = m.mode
        self._records.segment(m.monitor_id, m.segment, mode=str(m.mode), started_at=now)

    def _end_segment(self, m: Monitor, now: datetime) -> None:
        if m.segment and m.segment_started_at is not None and m.segment_mode is not None:
            self._records.segment(m.monitor_id, m.segment, mode=str(m.segment_mode),
                                  started_at=m.segment_started_at, ended_at=now)
            m.segment_started_at = None

    async def _finish(self, m: Monitor, reason: str) -> None:
        m.end_reason = m.stop_reason or reason
        m.ended_at = utcnow()
        while m.requests:
            _, fut = m.requests.popleft()
            if not fut.done():
                fut.set_exception(MonitorConflict(f"monitor {m.monitor_id} has ended ({m.end_reason})"))
        try:
            if m.snoop_id is not None:
                await cleanup_step("hangup_snoop", self._drop_snoop(m, m.snoop_id))
            if not m.session.anchor_gone():
                await cleanup_step("hangup_supervisor", self._control.hangup(m.channel_id))
            if m.bridged:
                await cleanup_step("destroy_bridge", self._control.destroy_bridge(m.bridge_id))
        finally:
            self._control.registry.release_session(m.session)
            m.session.hooks.clear()
            self._end_segment(m, m.ended_at)
            m.state = "ended"
            self._write_session(m)
            self._live.pop(m.monitor_id, None)
            self._recent[m.monitor_id] = m
            while len(self._recent) > RECENT:
                self._recent.popitem(last=False)
            m.task = None
            m.done.set()
            self._notify(m)
            log.info("monitor_ended", reason=m.end_reason, segments=m.segment,
                     seconds=round((m.ended_at - m.started_at).total_seconds(), 3))

    # --- rows and listeners -------------------------------------------------------------------
    def _write_session(self, m: Monitor) -> None:
        self._records.session(m.monitor_id, call_id=m.call_id, supervisor=m.supervisor, agent=m.agent,
                              mode=str(m.mode), started_at=m.started_at, answered_at=m.answered_at,
                              ended_at=m.ended_at, end_reason=m.end_reason)
        leg = m.session.legs.get(m.channel_id)  # the supervisor's phone: a leg of the call it monitors
        if leg is not None:
            row = leg.as_row(m.call_id)
            row["answered_at"] = row["answered_at"] or m.answered_at
            row["ended_at"] = row["ended_at"] or m.ended_at
            self._store.leg(leg.leg_id, **row)

    def _notify(self, m: Monitor) -> None:
        msg = {"type": "monitor", **m.view()}
        for listener in tuple(self.listeners):
            try:
                listener(msg)
            except Exception:
                log.exception("monitor_listener_failed")

    # --- channels of ours nobody owns ---------------------------------------------------------
    def on_stasis_start(self, ev: StasisStart) -> None:
        """A supervisor or snoop channel entering our app unclaimed (its monitor is gone): hung up."""
        log.warning("monitor_channel_unowned", channel=ev.channel.name, args=list(ev.args))
        self._tasks.spawn(self._control.hangup(ev.channel.id), f"monitor-hangup-{ev.channel.id}")

    async def adopt(self, ch: Channel, args: Sequence[str], bridges: Sequence[Bridge]) -> bool:
        """A supervisor or snoop channel left in our app by a previous cc_ari (it crashed): the
        supervision is not resumed. The channel is hung up, its private bridge destroyed, and the
        session's row (and open segment) closed with end_reason `restart`."""
        kind = args[0] if args else ""
        monitor_id = args[1] if len(args) > 1 else ""
        log.warning("monitor_orphan_hungup", channel=ch.name, kind=kind, monitor_id=monitor_id)
        await self._control.hangup(ch.id)  # a live monitor's own channels are claimed: never orphans
        if kind == MONITOR_APP_ARG and monitor_id and monitor_id not in self._live:
            self._records.close(monitor_id, ended_at=utcnow(), end_reason="restart")
            bridge_id = f"{BRIDGE_PREFIX}{monitor_id}"
            if any(b.id == bridge_id for b in bridges):
                await self._control.destroy_bridge(bridge_id)
        return True

    # --- shutdown -------------------------------------------------------------------------------
    async def aclose(self) -> None:
        """Shutdown: every supervision ends (end_reason `shutdown`); the calls go on."""
        self._closing = True
        for m in self._live.values():
            if m.stop_reason is None:
                m.stop_reason = "shutdown"
        await self._tasks.cancel_all()
        await self._finishing.wait(timeout=5.0)
