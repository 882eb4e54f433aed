"""Live calls: their tasks, their end, their adoption after a restart, and the safety nets.

Each call runs as one task consuming its session's inbox, so its events are handled in order.
`_finish` always runs (even on cancel, shielded and tracked): it releases the agent at once,
then runs each cleanup step on its own (one failure never skips the next), then writes the
final rows. A flow that fails unexpectedly hands the caller to the fallback dialplan.

Safety nets: after every ARI (re)connection and every `reconcile_interval` seconds, live
state is checked against Asterisk: legs that vanished end their calls (a lost ChannelDestroyed
can never leave a call or an agent busy forever), agents busy on calls that no longer exist
are released, and channels left in our app by a previous process are adopted: conversations
followed to their end, waiting callers put back in line in their original order, callers
found in the IVR given the menu again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

from cc_ari.agents.errors import AgentError
from cc_ari.agents.models import agent_endpoint
from cc_ari.agents.service import AgentService
from cc_ari.ari.errors import AriError
from cc_ari.ari.models import Bridge, Channel, StasisStart
from cc_ari.calls.inbound import INBOUND_APP_ARG, InboundFlow
from cc_ari.calls.models import Call, Phase
from cc_ari.calls.records import CallRecords
from cc_ari.connect.service import AgentLegArgs
from cc_ari.db.store import CallStore
from cc_ari.queueing.service import QueueService
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl, HoldingBridges
from cc_ari.telephony.errors import ChannelGone
from cc_ari.telephony.models import Leg, Resync, Session, utcnow
from cc_ari.telephony.registry import ChannelRegistry

log = structlog.get_logger("cc_ari.calls")

FALLBACK_CONTEXT = "cc-fallback"
TALK_BRIDGE_PREFIX = "cc-call-"
RESYNC_MARGIN_SECONDS = 5.0  # legs younger than this are not judged vanished by a resync
RESYNC_TIMEOUT_SECONDS = 30.0  # listing 800+ channels takes Asterisk seconds under load


class Flow(Protocol):
    """What runs a call of one direction (inbound: IVR -> queue -> agent; outbound: the dialer's)."""

    async def run(self, call: Call) -> None: ...


# Adopts a channel of another kind left in our app by a previous process (agent sessions,
# outbound customers): True when taken back, False to have it hung up.
Adopter = Callable[[Channel, Sequence[str], Sequence[Bridge]], Awaitable[bool]]


def _epoch(raw: str | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(raw or ""), UTC)
    except (TypeError, ValueError, OverflowError):
        return None


async def cleanup_step(name: str, coro: Awaitable[Any]) -> None:
    """One cleanup step: its failure is logged and never stops the next step."""
    try:
        await coro
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning("cleanup_step_failed", step=name, error=repr(exc))


class CallService:
    def __init__(self, control: CallControl, holding: HoldingBridges, queues: QueueService, inbound: InboundFlow,
                 agents: AgentService, records: CallRecords, store: CallStore) -> None:
        self._control = control
        self._registry: ChannelRegistry = control.registry
        self._holding = holding
        self._queues = queues
        self._inbound = inbound
        self._agents = agents
        self._records = records
        self._store = store
        self._calls: dict[str, Call] = {}
        self._tasks = Tasks("calls")
        self._finishing = Tasks("call-finish")
        self._adopting: set[str] = set()
        self._closing = False
        self._flows: dict[str, Flow] = {"inbound": inbound}
        self.adopters: dict[str, Adopter] = {}  # Stasis argument kind -> who takes such orphans back
        self.on_final: list[Callable[[Call], None]] = []  # told of each call's final rows (the dialer)

    def register_flow(self, direction: str, flow: Flow) -> None:
        self._flows[direction] = flow

    # ------------------------------------------------------------------ views
    def calls(self) -> list[Call]:
        return list(self._calls.values())

    def get(self, call_id: str) -> Call | None:
        return self._calls.get(call_id)

    # ------------------------------------------------------------------ start
    def on_inbound(self, ev: StasisStart) -> None:
        if self._closing:  # shutting down: the dialplan serves this caller
            self._tasks.spawn(self._to_fallback(ev.channel.id, ev.args[1] if len(ev.args) > 1 else ev.channel.exten),
                              f"fallback-{ev.channel.id}")
            return
        ch = ev.channel
        dnis = ev.args[1] if len(ev.args) > 1 else ch.exten
        call = self._new_call(ch, dnis)
        self._records.started(call)
        self._spawn(call)

    def start(self, call: Call) -> None:
        """A call another service created (the dialer's outbound calls): tracked, logged and run
        by its direction's flow like any other."""
        self._calls[call.call_id] = call
        self._registry.claim(call.call_id, call.session)
        self._records.started(call)
        self._spawn(call)

    @property
    def closing(self) -> bool:
        return self._closing

    def _new_call(self, ch: Channel, dnis: str) -> Call:
        started = ch.created or utcnow()
        session = Session(anchor=ch.id)
        session.legs[ch.id] = Leg(ch.id, "caller", ch.endpoint, ch.name, started)
        call = Call(call_id=ch.id, caller=ch.caller_number, dnis=dnis, started_at=started, session=session)
        self._calls[call.call_id] = call
        self._registry.claim(ch.id, session)
        return call

    def _spawn(self, call: Call) -> None:
        call.task = self._tasks.spawn(self._run(call), f"call-{call.call_id}")

    async def _run(self, call: Call) -> None:
        structlog.contextvars.bind_contextvars(call_id=call.call_id)
        log.info("call_started", direction=call.direction, dnis=call.dnis if not call.outbound else None,
                 campaign=call.campaign, adopted=call.adopted, resumed=call.resumed)
        rescued = False
        try:
            await self._flows[call.direction].run(call)
        except ChannelGone:
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("call_handler_failed", phase=str(call.phase))
            rescued = await self._rescue(call)
        finally:
            if call.call_id not in self._calls:
                pass  # already written (handed to the fallback at shutdown)
            elif self._closing and call.phase is Phase.TALKING:
                log.info("call_left_to_asterisk", phase=str(call.phase))
                self._forget(call)
            else:
                # Shielded and tracked: a cancel (shutdown) never loses the final rows.
                fin = self._finishing.spawn(self._finish(call, rescued=rescued), f"finish-{call.call_id}")
                await asyncio.shield(fin)

    # ------------------------------------------------------------------ ending
    async def _to_fallback(self, channel_id: str, dnis: str) -> bool:
        try:
            await self._control.ari.continue_in_dialplan(channel_id, FALLBACK_CONTEXT, dnis or "0")
            return True
        except AriError as exc:
            log.error("rescue_failed", channel=channel_id, error=str(exc))
            return False

    async def _rescue(self, call: Call) -> bool:
        """A handler failed (or the service stops): hand the caller to the fallback dialplan.
        (An outbound customer is not: the call's end hangs up, with the safe-harbor message if a
        person answered.)"""
        if call.phase is Phase.TALKING or call.session.anchor_gone() or call.outbound:
            return False
        if call.queue:
            await cleanup_step("leave_holding", self._holding.leave(call.queue, call.call_id))
        if not await self._to_fallback(call.call_id, call.dnis):
            return False
        call.handled_by = "fallback"
        log.warning("call_rescued_to_dialplan", context=FALLBACK_CONTEXT)
        return True

    def _release_agent(self, call: Call) -> None:
        """Free the agent of this call, synchronously, before any await can fail."""
        if call.agent is None:
            return
        wrapup = call.wrapup if call.wrapup is not None else self._queues.config(call.queue).wrapup
        if call.answered_at is not None and call.queue is not None:
            talk = (utcnow() - call.answered_at).total_seconds()
            self._queues.handle_times.add(call.queue, talk + wrapup)
        try:
            self._agents.release(call.agent, call.call_id, answered=call.answered_at is not None,
                                 wrapup=wrapup)
        except AgentError as exc:
            log.warning("agent_release_failed", agent=call.agent, error=str(exc))

    def _end_time(self, call: Call) -> datetime:
        """When the conversation ended: the first of caller/agent legs to end, else now."""
        ends = [leg.ended_at for leg in call.legs.values()
                if leg.ended_at is not None and leg.leg_id in (call.call_id, call.agent_channel)]
        return min(ends) if ends else utcnow()

    async def _finish(self, call: Call, *, rescued: bool) -> None:
        phase = call.phase
        call.phase = Phase.ENDING
        end_time = self._end_time(call)
        self._queues.leave(call)
        self._holding.forget(call.call_id)  # gone from its holding bridge with its channel
        self._release_agent(call)
        try:
            if call.recording_name:
                await cleanup_step("stop_recording", self._control.stop_recording(call.recording_name))
            agent_chan = call.agent_channel
            if agent_chan is not None and not call.session.ended(agent_chan):
                await cleanup_step("hangup_agent", self._control.hangup(agent_chan))
            if not rescued and not call.session.anchor_gone():
                await cleanup_step("hangup_caller", self._control.hangup(call.call_id))
            if call.bridge_id:
                await cleanup_step("destroy_bridge", self._control.destroy_bridge(call.bridge_id))
            await cleanup_step("settle", call.session.settle(2.0, exclude=frozenset({call.call_id}) if rescued
                                                      else frozenset()))
        finally:
            self._write_final(call, phase, rescued, end_time)

    def _write_final(self, call: Call, phase: Phase, rescued: bool, end_time: datetime) -> None:
        if not rescued:
            call.ended_at = end_time
            if call.outcome is None:
                call.outcome = "answered" if call.answered_at is not None else "abandoned"
        for leg in call.legs.values():
            if leg.ended_at is None and not (rescued and leg.leg_id == call.call_id):
                leg.ended_at = utcnow()
        self._records.final(call, handed_over=rescued)
        for hook in self.on_final:
            try:
                hook(call)
            except Exception:
                log.exception("final_hook_failed")
        self._forget(call)
        wait_s = None
        if call.queued_at is not None:
            wait_s = round(((call.answered_at or end_time) - call.queued_at).total_seconds(), 3)
        talk_s = round((end_time - call.answered_at).total_seconds(), 3) if call.answered_at else None
        log.info("call_finished", direction=call.direction, outcome=call.outcome, queue=call.queue,
                 campaign=call.campaign, agent=call.agent, dnis=call.dnis if not call.outbound else None,
                 wait_s=wait_s, talk_s=talk_s, last_phase=str(phase), rescued=rescued,
                 recording=call.recording_path, handled_by=call.handled_by, amd=call.amd_result,
                 amd_s=call.amd_seconds, connect_s=call.connect_seconds)

    def _forget(self, call: Call) -> None:
        self._registry.release_session(call.session)
        self._calls.pop(call.call_id, None)
        # Break the call's reference cycles (call -> session -> hooks -> closures -> call; call ->
        # task), so reference counting frees it at once: left to the cyclic collector, finished
        # calls piled up between its rare full passes (the soak's RSS slope).
        call.session.hooks.clear()
        call.task = None

    # ------------------------------------------------------------------ safety nets
    async def resync(self, *, reason: str) -> None:
        """Compare live state with Asterisk; adopt what a previous process left in our app."""
        # A leg begun just before (or while) Asterisk lists its channels may be missing from the
        # list without having ended: only legs older than the snapshot by a margin are judged.
        judged_before = utcnow() - timedelta(seconds=RESYNC_MARGIN_SECONDS)
        try:
            channels = await self._control.ari.channels(timeout=RESYNC_TIMEOUT_SECONDS)
            bridges = await self._control.ari.bridges(timeout=RESYNC_TIMEOUT_SECONDS)
        except AriError as exc:
            log.error("resync_failed", reason=reason, error=str(exc))
            return
        live = {c.id for c in channels}
        ended = 0
        for call in list(self._calls.values()):
            gone = tuple(leg_id for leg_id, leg in call.legs.items()
                         if leg.ended_at is None and leg_id not in live and leg.started_at < judged_before)
            if gone:
                ended += 1
                log.warning("legs_vanished", call_id=call.call_id, legs=list(gone), reason=reason)
                call.session.deliver(Resync(gone))
        for name in self._agents.stuck(set(self._calls)):
            log.warning("agent_stuck_released", agent=name, reason=reason)
            agent = self._agents.get(name)
            if agent.call_id is not None:
                self._agents.release(name, agent.call_id, answered=True,
                                     wrapup=0.0)
        if reason == "connect":
            self._holding.adopt(bridges)
        # A channel whose StasisStart is still on its way (it entered the app as Asterisk listed
        # its channels) is not an orphan: only channels older than the margin are adopted.
        orphans = [c for c in channels if c.id not in self._registry and c.id not in self._adopting
                   and c.app_name == "Stasis" and c.app_data.split(",")[0] == self._control.ari.app
                   and (reason == "connect" or c.created is None or c.created < judged_before)]
        if orphans:
            self._adopting.update(c.id for c in orphans)
            self._tasks.spawn(self._adopt(orphans, bridges), "adopt")
        log.info("resynced", reason=reason, channels=len(channels), calls=len(self._calls), orphans=len(orphans),
                 calls_with_vanished_legs=ended)

    async def run_reconcile(self, interval: float, connected: Callable[[], bool]) -> None:
        while True:
            await asyncio.sleep(interval)
            if connected() and not self._closing:
                await self.resync(reason="periodic")

    async def _adopt(self, orphans: Sequence[Channel], bridges: Sequence[Bridge]) -> None:
        """Channels left in our app by a previous cc_ari (it crashed or was stopped)."""
        try:
            talk = {ch: b for b in bridges if b.name.startswith(TALK_BRIDGE_PREFIX) for ch in b.channels}
            holding = {ch: q for b in bridges if (q := self._holding.queue_of(b.name)) is not None
                       for ch in b.channels}
            by_id = {c.id: c for c in orphans}
            requeued: list[Call] = []
            for ch in orphans:
                args = tuple(ch.app_data.split(",")[1:])
                kind = args[0] if args else ""
                if kind == INBOUND_APP_ARG:
                    call = await self._adopt_caller(ch, args, talk.get(ch.id), holding.get(ch.id), by_id)
                    if call is not None and call.phase is Phase.QUEUED:
                        requeued.append(call)
                    continue
                adopter = self.adopters.get(kind)
                if adopter is not None:
                    try:
                        if await adopter(ch, args, bridges):
                            continue
                    except Exception:
                        log.exception("adopt_failed", kind=kind)
                # An agent leg is kept only while its caller is with it (adopted with the caller).
                bridge = talk.get(ch.id)
                if kind == "agent" and bridge is not None and any(c != ch.id and c in by_id for c in bridge.channels):
                    continue
                log.warning("orphan_channel_hungup", channel=ch.name, kind=kind)
                await self._control.hangup(ch.id)
            # Callers back in line in their original order (oldest first), then dispatched.
            for call in sorted(requeued, key=lambda c: c.queued_mono):
                self._spawn(call)
        finally:
            self._adopting.difference_update(c.id for c in orphans)

    async def _adopt_caller(self, ch: Channel, args: tuple[str, ...], talk: Bridge | None, queue: str | None,
                            by_id: dict[str, Channel]) -> Call | None:
        dnis = args[1] if len(args) > 1 else ch.exten
        row = await self._call_row(ch.id)
        state = await self._channel_state(ch.id)  # what the flow saved (Call.state)
        call = self._new_call(ch, dnis)
        call.adopted = True
        call.caller_leg.answered_at = call.started_at
        call.ivr_path = state.get("ivr_path") or row.get("ivr_path") or ""
        call.queue = state.get("queue") or row.get("queue") or queue
        call.queued_at = _epoch(state.get("queued_at")) or row.get("queued_at")
        if talk is not None:
            others = [c for c in talk.channels if c != ch.id]
            call.phase = Phase.TALKING
            call.bridge_id = talk.id
            self._registry.claim_bridge(talk.id, call.session)
            call.answered_at = (_epoch(state.get("answered_at")) or row.get("answered_at") or talk.created_at
                                or utcnow())
            call.recording_path = row.get("recording_path")  # its MixMonitor goes on with the channel
            agent_ch = by_id.get(others[0]) if others else None
            leg_args = AgentLegArgs.decode(tuple(agent_ch.app_data.split(",")[1:])) if agent_ch else None
            agent = leg_args.agent if leg_args else (state.get("agent") or row.get("agent"))
            call.agent = agent
            if agent_ch is not None:
                call.agent_channel = agent_ch.id
                endpoint = agent_endpoint(agent) if agent else agent_ch.endpoint
                call.legs[agent_ch.id] = Leg(agent_ch.id, "agent", endpoint, agent_ch.name, call.answered_at,
                                             answered_at=call.answered_at)
                self._registry.claim(agent_ch.id, call.session)
                if agent:
                    with contextlib.suppress(AgentError):
                        self._agents.adopt_call(agent, call.call_id)
            log.warning("orphan_call_adopted", call_id=call.call_id, agent=agent, agent_leg=bool(agent_ch))
            self._spawn(call)
            return call
        if queue is not None:
            call.queue = queue
            call.queued_at = call.queued_at or utcnow()
            call.queued_mono = time.monotonic() - max(0.0, (utcnow() - call.queued_at).total_seconds())
            call.phase = Phase.QUEUED
            call.resumed = True
            log.warning("orphan_caller_requeued", call_id=call.call_id, queue=queue,
                        waited_s=round((utcnow() - call.queued_at).total_seconds(), 1))
            return call  # spawned by _adopt, in order
        # In the IVR (or just answered): the menu again, from the top.
        call.phase = Phase.IVR if ch.state == "Up" else Phase.NEW
        call.queue = None
        call.resumed = True
        log.warning("orphan_caller_resumed_in_ivr", call_id=call.call_id)
        self._spawn(call)
        return call

    async def _channel_state(self, channel_id: str) -> dict[str, str]:
        """The explicit state a flow left on its channel (CallControl.save_state)."""
        try:
            return await self._control.load_state(channel_id)
        except AriError as exc:
            log.warning("adopt_state_unreadable", channel=channel_id, error=str(exc))
            return {}

    async def _call_row(self, call_id: str) -> dict[str, Any]:
        try:
            return dict(await self._store.fetch_call(call_id) or {})
        except Exception as exc:  # the database may be down: adopt with what Asterisk knows
            log.warning("adopt_lookup_failed", error=repr(exc))
            return {}

    # ------------------------------------------------------------------ shutdown
    async def close(self) -> None:
        """Shutdown: nobody is dropped. Callers not yet talking go to the fallback dialplan;
        conversations stay bridged in Asterisk and are adopted by the next cc_ari."""
        self._closing = True
        for call in list(self._calls.values()):
            if call.phase is Phase.TALKING or call.session.anchor_gone() or call.outbound:
                continue  # outbound calls end through their flow's cancellation (below)
            with structlog.contextvars.bound_contextvars(call_id=call.call_id):
                if call.agent_channel is not None:
                    await cleanup_step("hangup_agent", self._control.hangup(call.agent_channel))
                if await self._rescue(call):
                    call.phase = Phase.ENDING
                    self._release_agent(call)
                    self._write_final(call, call.phase, True, utcnow())
        await self._tasks.cancel_all()
        await self._finishing.wait(timeout=10.0)
