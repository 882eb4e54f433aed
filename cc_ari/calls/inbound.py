"""The inbound flow, written with the shared primitives: answer -> route -> IVR -> queue -> connect.

A caller hanging up at any point raises ChannelGone out of whatever step is waiting; the call
service's final step (always run) releases the agent, cleans up and writes the rows.
"""

from __future__ import annotations

import time

import structlog

from cc_ari.agents.service import AgentService
from cc_ari.ari.errors import AriError, AriNotFound
from cc_ari.ari.models import PlaybackFinished
from cc_ari.callflow import CallFlow, Target
from cc_ari.calls.models import WAITING, Call, Offer, Phase
from cc_ari.calls.records import CallRecords
from cc_ari.connect.service import Connector
from cc_ari.ivr.engine import Collect, IvrEngine, Leave, Play
from cc_ari.queueing.estimate import expected_wait_seconds, number_sounds, wait_minutes_to_announce
from cc_ari.queueing.service import QueueService
from cc_ari.telephony.control import CallControl, HoldingBridges
from cc_ari.telephony.errors import ChannelGone
from cc_ari.telephony.models import BackgroundHook, SessionEvent, utcnow

log = structlog.get_logger("cc_ari.calls")

INBOUND_APP_ARG = "inbound"


class InboundFlow:
    def __init__(self, control: CallControl, holding: HoldingBridges, queues: QueueService, connector: Connector,
                 agents: AgentService, records: CallRecords, flow: CallFlow) -> None:
        self._control = control
        self._holding = holding
        self._queues = queues
        self._connector = connector
        self._agents = agents
        self._records = records
        self._flow = flow
        self._ivr = IvrEngine(flow)

    async def run(self, call: Call) -> None:
        call.session.hooks.append(self._announcement_hook(call))
        if call.phase is Phase.TALKING:  # adopted after a restart, already talking
            await self._connector.talk(call)
            return
        if call.phase is Phase.NEW:
            await self._control.answer(call.session, call.call_id)
        queue = call.queue
        if queue is None:
            route = self._flow.route_for(call.dnis)
            if route is None:
                await self._invalid_number(call)
                return
            queue = route.queue
            if route.ivr is not None:
                target = await self._run_ivr(call, route.ivr)
                if target.queue is None:
                    await self._control.play_and_wait(call.session, call.call_id,
                                                      self._control.prompt_uris([self._flow.goodbye_prompt]))
                    call.outcome = "abandoned"
                    return
                queue = target.queue
        assert queue is not None
        await self._queue_and_connect(call, queue)

    async def _invalid_number(self, call: Call) -> None:
        call.outcome = "invalid_number"
        log.info("invalid_number", dnis=call.dnis)
        await self._control.play_and_wait(call.session, call.call_id,
                                          self._control.prompt_uris([self._flow.invalid_number_prompt]))
        await self._control.hangup(call.call_id, "unallocated")

    # ------------------------------------------------------------------ IVR
    async def _run_ivr(self, call: Call, menu: str) -> Target:
        call.phase = Phase.IVR
        await self._control.save_state(call.call_id, call.state(Phase.IVR))
        state, actions = self._ivr.start(menu)
        while True:
            prompts: tuple[str, ...] = ()
            next_actions = None
            for action in actions:
                if isinstance(action, Play):
                    prompts = action.prompts
                elif isinstance(action, Collect):
                    digit = await self._control.play_and_collect(call.session, call.call_id,
                                                                 self._control.prompt_uris(prompts), action.timeout)
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
                        await self._control.play_and_wait(call.session, call.call_id,
                                                          self._control.prompt_uris([action.target.prompt]))
                    return action.target
            if next_actions is None:
                raise RuntimeError("IVR produced no Collect or Leave")
            actions = next_actions

    # ------------------------------------------------------------------ queue
    async def _queue_and_connect(self, call: Call, queue: str) -> None:
        call.queue = queue
        if call.queued_at is None:
            call.queued_at = utcnow()
            call.queued_mono = time.monotonic()
        self._records.update(call, queue=queue, queued_at=call.queued_at, ivr_path=call.ivr_path or None)
        log.info("call_queued", queue=queue, resumed=call.resumed)
        if not (call.resumed and call.phase is Phase.QUEUED):  # a requeued caller is in the bridge already
            # Explicit state on the channel: a restarted cc_ari puts the caller back in line.
            await self._control.save_state(call.call_id, call.state(Phase.QUEUED))
            await self._holding.enter(queue, call.call_id)
        await self._control.moh(call.call_id, on=True)
        call.phase = Phase.QUEUED
        self._queues.join(call)
        try:
            await self._wait_for_agent(call, queue)
        finally:
            self._queues.leave(call)

    async def _wait_for_agent(self, call: Call, queue: str) -> None:
        qc = self._queues.config(queue)
        clock = call.session.clock
        deadline = call.queued_mono + qc.max_wait
        announce_at = (max(call.queued_mono + qc.announce_first, clock()) if qc.announce_every > 0
                       else float("inf"))
        while True:
            ev = await call.session.next(min(deadline, announce_at) - clock())
            if ev is None and clock() < deadline:  # time to announce
                announce_at = clock() + qc.announce_every
                if call.phase is Phase.QUEUED and call.announcement is None:
                    await self._announce_position(call)
                continue
            if ev is None:
                if call.phase is Phase.QUEUED:
                    log.info("queue_max_wait", queue=queue)
                    call.phase = Phase.ENDING
                    call.outcome = "no_answer"
                    await self._holding.leave(queue, call.call_id)
                    await self._control.play_and_wait(call.session, call.call_id,
                                                      self._control.prompt_uris([self._flow.goodbye_prompt]))
                    return
                continue
            if isinstance(ev, Offer):
                if await self._connector.reach(call, ev.agent, ring_timeout=qc.ring_timeout):
                    await self._connected(call)
                    return
                call.phase = Phase.QUEUED
                if call.announcement is None:  # music again (an announcement restarts it when it ends)
                    await self._control.moh(call.call_id, on=True)
                self._queues.wake()

    async def _connected(self, call: Call) -> None:
        assert call.agent is not None and (call.agent_channel is not None or call.via_session)
        self._queues.leave(call)
        call.answered_at = utcnow()
        self._agents.answered(call.agent)
        self._records.update(call, agent=call.agent, answered_at=call.answered_at)
        if call.agent_channel is not None:
            self._records.leg(call, call.legs[call.agent_channel])
        log.info("call_answered", agent=call.agent, queue=call.queue,
                 wait_s=round(time.monotonic() - call.queued_mono, 3))
        if call.announcement is not None:
            await self._control.ari.stop_playback(call.announcement)
            call.announcement = None
        await self._control.moh(call.call_id, on=False)
        assert call.queue is not None
        await self._holding.leave(call.queue, call.call_id)
        await self._connector.bridge(call)
        # Only now: until bridged, a failure still rescues the caller. (No state saved on the
        # channel: a restarted cc_ari knows a conversation by its bridge, the agent by the agent
        # leg's arguments, the answer time by the bridge's creation time.)
        call.phase = Phase.TALKING
        await self._connector.talk(call)

    def _announcement_hook(self, call: Call) -> BackgroundHook:
        """Whatever step is running (even ringing an agent), the end of a position announcement
        brings the music back while the caller still waits: never silence."""
        async def hook(ev: SessionEvent) -> bool:
            if isinstance(ev, PlaybackFinished) and call.announcement and ev.playback_id == call.announcement:
                call.announcement = None
                if call.phase in WAITING:
                    await self._control.moh(call.call_id, on=True)
                return True
            return False
        return hook

    async def _announce_position(self, call: Call) -> None:
        """"You are caller number N. Your expected waiting time is about M minutes." Then music again."""
        assert call.queue is not None
        position = self._queues.position(call)
        serving = self._queues.serving(call.queue)
        ewt = expected_wait_seconds(position, serving, self._queues.handle_times.average(call.queue))
        pos_p, wait_p, min_p = self._flow.position_prompts
        media = [*self._control.prompt_uris([pos_p]), *(f"sound:{s}" for s in number_sounds(min(position, 999)))]
        minutes = None
        if ewt is not None:
            minutes = wait_minutes_to_announce(ewt)
            media += [*self._control.prompt_uris([wait_p]),
                      *(f"sound:{s}" for s in number_sounds(min(minutes, 999))), *self._control.prompt_uris([min_p])]
        log.info("queue_position_announced", queue=call.queue, position=position, expected_wait_min=minutes,
                 agents_serving=serving)
        await self._control.moh(call.call_id, on=False)
        try:
            call.announcement = await self._control.start_playback(call.call_id, media)
        except ChannelGone:
            raise
        except AriNotFound:
            raise ChannelGone() from None
        except AriError as exc:
            log.warning("announcement_failed", error=str(exc))
            await self._control.moh(call.call_id, on=True)
