"""Connect a call's anchor channel (caller, customer) to an agent.

`reach()` rings a reserved agent on a leg owned by the call's session; `bridge()` puts both in
a mixing bridge and records it (the path is stored only once Asterisk confirms the
recording); `talk()` waits for the end of the conversation. The agent is released (wrap-up)
by whoever owns the call, in its final step, so a failure anywhere never leaves an agent busy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import structlog

from cc_ari.agents.models import agent_endpoint
from cc_ari.agents.service import AgentService
from cc_ari.agents.sessions import AgentSessions
from cc_ari.ari.errors import AriError
from cc_ari.calls.models import Call
from cc_ari.calls.records import CallRecords
from cc_ari.telephony.control import CallControl, quote_caller_id
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import Leg, utcnow
from cc_ari.telephony.recording import MixMonitorRecorder

log = structlog.get_logger("cc_ari.connect")

AGENT_APP_ARG = "agent"


@dataclass(frozen=True, slots=True)
class AgentLegArgs:
    """Stasis arguments of an agent leg: `agent,<call_id>,<agent>` (explicit, never parsed from names)."""

    call_id: str
    agent: str

    def encode(self) -> str:
        return f"{AGENT_APP_ARG},{self.call_id},{self.agent}"

    @classmethod
    def decode(cls, args: tuple[str, ...]) -> AgentLegArgs | None:
        if len(args) >= 3 and args[0] == AGENT_APP_ARG and args[1] and args[2]:
            return cls(args[1], args[2])
        return None


class Connector:
    def __init__(self, control: CallControl, agents: AgentService, records: CallRecords, *,
                 recordings_dir: Path, recorder: MixMonitorRecorder | None = None,
                 sessions: AgentSessions | None = None) -> None:
        self._sessions = sessions
        self._control = control
        self._agents = agents
        self._records = records
        self._recordings_dir = recordings_dir
        self._recorder = recorder

    async def reach(self, call: Call, agent: str, *, ring_timeout: float) -> bool:
        """Ring a reserved agent. True when they answered; False when they did not (the leg is
        hung up and logged, the agent paused with reason no_answer)."""
        call.tried.add(agent)
        if self._sessions is not None and self._sessions.live(agent):
            # In a persistent session (blended with campaigns): already on the line, nothing rings.
            call.via_session = True
            call.agent = agent
            log.info("agent_in_session", agent=agent, queue=call.queue)
            return True
        call.via_session = False
        chan_id = call.new_leg_id()
        call.agent_channel = chan_id
        log.info("agent_ringing", agent=agent, queue=call.queue)
        variables = {"CC_ROLE": "agent", "CC_AGENT": agent, "CC_CALL_ID": call.call_id,
                     "CALLERID(all)": quote_caller_id(call.caller, call.caller)}
        try:
            await self._control.originate(call.session, agent_endpoint(agent), channel_id=chan_id, role="agent",
                                          app_args=AgentLegArgs(call.call_id, agent).encode(),
                                          originator=call.call_id, variables=variables)
            self._records.leg(call, call.legs[chan_id])
            result = await self._control.dial(call.session, chan_id, timeout=ring_timeout)
        except ChannelGone:
            raise  # the caller left while it rang: not the agent's fault (released as withdrawn)
        except (AriError, TelephonyError) as exc:
            log.warning("agent_unreachable", agent=agent, error=str(exc))
            return await self._missed(call, chan_id, agent)
        if result.answered:
            return True
        log.info("agent_no_answer", agent=agent, status=result.status, ring_timeout=ring_timeout)
        return await self._missed(call, chan_id, agent)

    async def _missed(self, call: Call, chan_id: str, agent: str) -> bool:
        await self._control.hangup(chan_id)
        leg = call.legs.get(chan_id)
        if leg is not None:
            if leg.ended_at is None:
                leg.ended_at = utcnow()
            self._records.leg(call, leg)
        self._control.registry.release(chan_id)
        call.agent_channel = None
        self._agents.no_answer(agent)
        call.agent = None
        return False

    async def bridge(self, call: Call) -> None:
        """Bridge the anchor and the agent's leg (or put it into the agent's session) and record
        the conversation."""
        if call.via_session:
            await self.join_session(call)
            await self.record(call, None)
            return
        agent_chan = call.agent_channel
        assert agent_chan is not None and call.agent is not None
        bridge_id = f"cc-call-{call.call_id}"
        call.bridge_id = bridge_id
        await self._control.mixing_bridge(call.session, bridge_id, [call.call_id, agent_chan])
        await self.record(call, bridge_id)

    async def join_session(self, call: Call) -> None:
        """Put the anchor into the agent's persistent session (`call.agent`, `call.via_session`);
        the agent's part of the call is a leg of its own (`<call_id>-agent`) on the session's
        channel. TelephonyError when the session cannot take it."""
        assert self._sessions is not None and call.agent is not None
        await self._sessions.connect(call.agent, call.call_id)
        session = self._sessions.get(call.agent)
        now = utcnow()
        leg = Leg(f"{call.call_id}-agent", "agent", agent_endpoint(call.agent),
                  session.leg_id if session else "", now, answered_at=now)
        call.legs[leg.leg_id] = leg
        self._records.leg(call, leg)

    async def record(self, call: Call, bridge_id: str | None) -> None:
        """Record the conversation (a `bridge_id` allows ARI's bridge recording as a fallback)."""
        name = f"cc-{call.call_id}"
        # MixMonitor on the caller's channel (cheap, survives a restart); ARI's bridge recording
        # only when AMI cannot start it. Either way the path is stored once Asterisk confirmed.
        recording = self._recorder is not None and await self._recorder.start(call.call_id, name)
        if not recording and bridge_id is not None:
            call.recording_name = name  # an ARI recording: stopped by name at the end
            recording = await self._control.record_bridge(call.session, bridge_id, name)
        if recording:
            call.recording_path = os.path.join(self._recordings_dir, f"{name}.wav")  # not pathlib: it interns parts
            self._records.update(call, recording_path=call.recording_path)

    async def talk(self, call: Call) -> None:
        """Until the agent's leg ends (the anchor ending raises ChannelGone). In a session, until
        the caller's channel ends (hung up by the caller, or by the agent's hangup request)."""
        if call.via_session:
            try:
                while True:
                    await call.session.next(None)
            finally:
                if call.agent is not None and self._sessions is not None:
                    self._sessions.disconnected(call.agent, call.call_id)
                leg = call.legs.get(f"{call.call_id}-agent")
                if leg is not None and leg.ended_at is None:
                    leg.ended_at = utcnow()
        while not call.session.ended(call.agent_channel):
            await call.session.next(None)
