"""One outbound call, written with the shared primitives: dial the lead through the carrier trunk
-> (AMD in the dialplan) -> connect a person to an agent's session within the 2-second rule, or
the safe-harbor message -> talk -> the call service's final step writes the rows.

Outcomes: `busy`, `no_answer` and `failed` come from the customer leg's hangup cause (17; 19
or 18 or our ring timeout; anything else), never from an originate reason. `machine` when AMD
says so (hung up, or the campaign's recorded message left). `dropped` when a person answered and
no agent was connected in time (the safe-harbor message is played). `answered` when connected.
`abandoned` when the person hung up before the 2 seconds were over (not a drop).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlencode

import structlog

from cc_ari.agents.service import AgentService
from cc_ari.ari.errors import AriError
from cc_ari.ari.models import StasisStart
from cc_ari.calls.models import Call, Phase
from cc_ari.calls.records import CallRecords
from cc_ari.campaigns.models import Campaign, amd_arguments
from cc_ari.connect.service import Connector
from cc_ari.telephony.control import STATE_VAR, CallControl, quote_caller_id
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import utcnow

log = structlog.get_logger("cc_ari.dialer")

OUTBOUND_APP_ARG = "outbound"  # the customer's channel, created by cc_ari: outbound,<campaign>,<lead>
AMD_APP_ARG = "outbound-amd"  # back from the AMD dialplan: outbound-amd,<AMDSTATUS>,<AMDCAUSE>
AMD_CONTEXT = "cc-outbound-amd"
DROP_CONTEXT = "cc-outbound-drop"  # the safe-harbor message from the dialplan (cc_ari cannot serve the call)
TRUNK = "pstn"  # the carrier's pjsip endpoint
GRACE_SECONDS = 2.0  # the 2-second rule
SAFE_HARBOR_PROMPT = "safe-harbor"
MACHINE_MESSAGE_PROMPT = "machine-message"
AMD_STATUSES = frozenset({"HUMAN", "MACHINE", "NOTSURE", "HANGUP"})


def outcome_from_cause(cause: int | None, *, timed_out: bool) -> str:
    """An unanswered call's outcome from its hangup cause: 17 busy, 19/18 (or our ring timeout) no
    answer, anything else (34 congestion, 21 rejected, 1 unallocated, ...) failed."""
    if cause == 17:
        return "busy"
    if cause in (18, 19) or timed_out:
        return "no_answer"
    return "failed"


class AgentPicker(Protocol):
    """The dialer's side: which agent takes a live answer (reserved at once), and a wake-up."""

    def take_agent(self, call: Call) -> str | None: ...

    def connected(self, call: Call) -> None: ...

    def agent_freed(self) -> asyncio.Event: ...


@dataclass(frozen=True, slots=True)
class DialPlan:
    """What the dialer decided for this call."""

    campaign: Campaign
    phone: str


class OutboundFlow:
    def __init__(self, control: CallControl, agents: AgentService, connector: Connector, records: CallRecords,
                 *, trunk: str) -> None:
        self._control = control
        self._agents = agents
        self._connector = connector  # joins the agent's session, records, waits for the end
        self._records = records
        self._trunk = trunk
        self.plans: dict[str, DialPlan] = {}  # call id -> what to dial (set by the dialer before start)
        self.picker: AgentPicker | None = None
        self.clock: Callable[[], float] = time.monotonic

    def endpoint(self, phone: str) -> str:
        """The carrier trunk: sip:+NUMBER@<carrier> through the pjsip endpoint `pstn`."""
        return f"PJSIP/{phone}@{self._trunk}"

    async def run(self, call: Call) -> None:
        if call.phase is Phase.TALKING:  # adopted after a restart, already with an agent
            await self._talk(call)
            return
        plan = self.plans.pop(call.call_id)
        if call.adopted and call.outcome is not None:  # found after a restart, with nobody to talk to
            if call.outcome == "dropped":
                await self._safe_harbor(call, plan)
            return
        if call.adopted and call.phase is Phase.QUEUED:  # back from AMD after a restart
            settings = plan.campaign.settings
            if call.amd_result == "HUMAN" or (call.amd_result == "NOTSURE" and settings.notsure == "person"):
                await self._connect(call, plan, deadline=self.clock() + GRACE_SECONDS)
            else:
                call.outcome = "machine"
            return
        try:
            await self._dial_and_connect(call, plan)
        except asyncio.CancelledError:
            # Shutdown: a person waiting for an agent hears the safe-harbor message; a call still
            # ringing is given up. (A conversation is left to Asterisk and adopted.)
            if call.talking:
                raise
            if call.answered_at is not None and call.outcome is None:
                call.outcome = "dropped"
                await asyncio.shield(self._safe_harbor(call, plan))
            elif call.outcome is None:
                call.outcome = "failed"
            raise
        except ChannelGone:
            raise
        except Exception:
            # A failure of ours: a person on the line still hears who called (and it is a drop).
            if not call.talking and call.answered_at is not None and call.outcome is None:
                call.outcome = "dropped"
                await self._safe_harbor(call, plan)
            elif call.outcome is None:
                call.outcome = "failed"
            raise

    async def _dial_and_connect(self, call: Call, plan: DialPlan) -> None:
        settings = plan.campaign.settings
        variables = {"CALLERID(all)": quote_caller_id("", plan.campaign.caller_id), "CC_ROLE": "customer",
                     "CC_CALLBACK": plan.campaign.caller_id.lstrip("+"),
                     STATE_VAR: urlencode({"campaign": plan.campaign.name, "lead": call.lead_id or "",
                                           "phone": plan.phone})}
        if settings.amd:
            variables["CC_AMD"] = amd_arguments(settings)
        call.phase = Phase.RINGING
        try:
            await self._control.originate(call.session, self.endpoint(plan.phone), channel_id=call.call_id,
                                          role="customer",
                                          app_args=f"{OUTBOUND_APP_ARG},{plan.campaign.name},{call.lead_id}",
                                          variables=variables)
        except (AriError, TelephonyError) as exc:
            log.warning("outbound_originate_failed", error=str(exc))
            call.outcome = "failed"
            return
        leg = call.legs[call.call_id]
        self._records.leg(call, leg)
        if settings.amd:  # its events must keep coming while it runs AMD in the dialplan
            try:
                await self._control.ari.subscribe(f"channel:{call.call_id}")
            except AriError as exc:
                log.warning("outbound_subscribe_failed", error=str(exc))
        timed_out = False
        dialed = self.clock()
        try:
            result = await self._control.dial(call.session, call.call_id, timeout=settings.ring_timeout)
            if not result.answered:
                timed_out = result.status in ("NOANSWER", "TIMEOUT")
                await self._control.hangup(call.call_id)
                await call.session.next(3.0)  # its end, with the hangup cause (raises ChannelGone)
                raise ChannelGone()
        except ChannelGone:
            # Our ring timeout: however Asterisk ends the channel then (its cause may be 32 or 16).
            timed_out = timed_out or self.clock() - dialed >= settings.ring_timeout - 0.5
            call.outcome = outcome_from_cause(leg.hangup_cause, timed_out=timed_out)
            log.info("outbound_not_answered", outcome=call.outcome, cause=leg.hangup_cause)
            raise
        call.answered_at = leg.answered_at or utcnow()
        self._records.update(call, answered_at=call.answered_at)
        self._records.leg(call, leg)
        reference = self.clock()  # the 2-second rule's start ("uk": the answer)
        person = True
        if settings.amd:
            status = await self._amd(call, settings.amd_params["total_analysis_time"] / 1000 + 3.0)
            decided = self.clock()
            if settings.connect_rule == "us":
                reference = decided  # from the end of the greeting, which is when AMD decides
            person = status == "HUMAN" or (status == "NOTSURE" and settings.notsure == "person")
            if not person:
                call.outcome = "machine"
                log.info("outbound_machine", amd=status, amd_s=call.amd_seconds)
                if settings.machine_action == "message":
                    await self._control.play_and_wait(call.session, call.call_id,
                                                      self._control.prompt_uris([MACHINE_MESSAGE_PROMPT]))
                return
        await self._connect(call, plan, deadline=reference + GRACE_SECONDS)

    async def _amd(self, call: Call, timeout: float) -> str:
        """Send the answered call through AMD() in the dialplan and wait for it back in Stasis."""
        leg = call.legs[call.call_id]
        leg.in_dialplan = True
        await self._control.ari.continue_in_dialplan(call.call_id, AMD_CONTEXT, "s")
        assert call.answered_at is not None
        deadline = self.clock() + timeout
        status = "NOTSURE"
        while True:
            try:
                ev = await call.session.next(deadline - self.clock())
            except ChannelGone:
                call.amd_result = "HANGUP"
                call.amd_seconds = call.seconds_since(call.answered_at)
                call.outcome = "abandoned"
                raise
            if ev is None:
                log.warning("amd_no_verdict", after_s=timeout)
                break
            if isinstance(ev, StasisStart) and ev.channel.id == call.call_id and ev.args[:1] == (AMD_APP_ARG,):
                raw = ev.args[1] if len(ev.args) > 1 else ""
                status = raw if raw in AMD_STATUSES else "NOTSURE"
                log.info("amd_verdict", amd=status, cause=ev.args[2] if len(ev.args) > 2 else "")
                break
        leg.in_dialplan = False
        call.amd_result = status
        call.amd_seconds = call.seconds_since(call.answered_at)
        self._records.update(call, amd_result=call.amd_result, amd_seconds=call.amd_seconds)
        return status

    async def _connect(self, call: Call, plan: DialPlan, *, deadline: float) -> None:
        """A person is on the line: the first free agent of the campaign, by the deadline."""
        picker = self.picker
        assert picker is not None
        call.phase = Phase.QUEUED
        agent = picker.take_agent(call)
        while agent is None:
            left = deadline - self.clock()
            if left <= 0:
                break
            freed = picker.agent_freed()
            try:
                await asyncio.wait_for(freed.wait(), left)
            except TimeoutError:
                break
            if call.session.anchor_gone():
                raise ChannelGone()
            agent = picker.take_agent(call)
        if agent is None:
            if call.session.anchor_gone():
                raise ChannelGone()
            call.outcome = "dropped"
            log.warning("outbound_dropped", waited_s=round(self.clock() - deadline + GRACE_SECONDS, 3))
            await self._safe_harbor(call, plan)
            return
        call.agent = agent
        call.via_session = True
        try:
            await self._connector.join_session(call)
        except TelephonyError as exc:
            if call.session.anchor_gone() or not await self._control.ari.channel_exists(call.call_id):
                raise ChannelGone() from exc
            raise
        assert call.answered_at is not None
        call.connect_seconds = call.seconds_since(call.answered_at)
        call.phase = Phase.TALKING
        self._agents.answered(agent)
        self._records.update(call, agent=agent, connect_seconds=call.connect_seconds)
        picker.connected(call)
        log.info("outbound_connected", agent=agent, connect_s=call.connect_seconds, amd_s=call.amd_seconds)
        await self._connector.record(call, None)
        await self._talk(call)

    async def _talk(self, call: Call) -> None:
        """Until the customer's channel ends (they hang up, the agent's hangup request, the
        agent's session lost): ChannelGone."""
        try:
            await self._connector.talk(call)
        finally:
            call.outcome = call.outcome or "answered"

    async def _safe_harbor(self, call: Call, plan: DialPlan) -> None:
        """Who called and a number to call back, then goodbye."""
        digits = [f"sound:digits/{d}" for d in plan.campaign.caller_id if d.isdigit()]
        media = [*self._control.prompt_uris([SAFE_HARBOR_PROMPT]), *digits]
        with contextlib.suppress(ChannelGone):
            await self._control.play_and_wait(call.session, call.call_id, media, max_seconds=20.0)
        await self._control.hangup(call.call_id)

