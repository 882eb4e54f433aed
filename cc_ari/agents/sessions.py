"""Persistent agent sessions: an agent serving campaigns is called once and stays connected.

At login to a campaign cc_ari rings the agent's softphone (Stasis arguments
`agent-session,<agent>`); once answered, the agent's channel waits alone in the agent's own
mixing bridge (`cc-agent-<agent>`). A customer is connected by adding their channel to that
bridge (one request: milliseconds, which is what makes the 2-second rule possible) and
disconnected by hanging the customer up; the agent stays. Logout ends the session with a BYE.

If the session ends any other way (the agent hung up, the phone vanished), the agent is paused
with reason `session_lost` and no customer is sent to them; a customer they were talking to is
hung up. Ready again reopens the session. Sessions are rows of `report.agent_sessions`.
After a restart, a session channel left in our app is taken back with its bridge.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from cc_ari.agents.errors import AgentError
from cc_ari.agents.models import Agent, AgentState, agent_endpoint
from cc_ari.agents.service import AgentService
from cc_ari.ari.errors import AriError, AriNotFound
from cc_ari.ari.models import Bridge, Channel
from cc_ari.db.store import CallStore
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl, quote_caller_id
from cc_ari.telephony.errors import ChannelGone, TelephonyError
from cc_ari.telephony.models import Leg, Session, utcnow

log = structlog.get_logger("cc_ari.agents")

SESSION_APP_ARG = "agent-session"
BRIDGE_PREFIX = "cc-agent-"
LOST = "session_lost"


@dataclass(eq=False, slots=True)
class AgentSession:
    agent: str
    leg_id: str
    session: Session
    bridge_id: str
    started_at: datetime
    answered_at: datetime | None = None
    customer: str | None = None  # the customer channel in the bridge now
    closing: str | None = None  # why cc_ari is ending it (logout, shutdown)
    task: asyncio.Task[None] | None = None
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def up(self) -> bool:
        return self.answered_at is not None and not self.ended.is_set() and self.closing is None


class AgentSessions:
    def __init__(self, control: CallControl, agents: AgentService, store: CallStore, *,
                 ring_timeout: float = 30.0, caller_id: str = "cc_ari") -> None:
        self._control = control
        self._agents = agents
        self._store = store
        self._ring_timeout = ring_timeout
        self._caller_id = caller_id
        self._sessions: dict[str, AgentSession] = {}
        self._tasks = Tasks("agent-sessions")
        self._closing = False
        self.on_up: Callable[[str], None] = lambda _agent: None  # a session became usable (dialer wake)
        self.on_lost: Callable[[str, str], None] = lambda _agent, _customer: None  # customer cut off
        agents.listeners.append(self._on_agent)

    # --- reads ------------------------------------------------------------------------------
    def get(self, agent: str) -> AgentSession | None:
        return self._sessions.get(agent)

    def live(self, agent: str) -> bool:
        s = self._sessions.get(agent)
        return s is not None and s.up

    def all(self) -> list[AgentSession]:
        return list(self._sessions.values())

    # --- follow the agents ------------------------------------------------------------------
    def _on_agent(self, agent: Agent) -> None:
        """Campaign agents get a session when they log in (or are ready again after losing it);
        logging out ends it."""
        if self._closing:
            return
        s = self._sessions.get(agent.name)
        if agent.state is AgentState.LOGGED_OUT or not agent.campaigns:
            if s is not None and s.closing is None and not agent.campaigns:
                self.close(agent.name, "logout")
            return
        if agent.state is AgentState.PAUSED and agent.pause_reason == LOST:
            return  # reopened by "ready"
        if s is None or s.ended.is_set():
            self.open(agent.name)

    def open(self, agent: str) -> None:
        leg_id = f"cc-session-{agent}-{uuid.uuid4().hex[:12]}"
        s = AgentSession(agent, leg_id, Session(anchor=leg_id), f"{BRIDGE_PREFIX}{agent}", utcnow())
        self._sessions[agent] = s
        s.task = self._tasks.spawn(self._run(s), f"session-{agent}")

    def close(self, agent: str, reason: str) -> None:
        s = self._sessions.get(agent)
        if s is None or s.ended.is_set():
            return
        s.closing = reason
        self._tasks.spawn(self._control.hangup(s.leg_id), f"session-bye-{agent}")

    # --- connecting customers ---------------------------------------------------------------
    async def connect(self, agent: str, channel_id: str) -> None:
        """Put a customer's channel into the agent's session (raises TelephonyError if it cannot)."""
        s = self._sessions.get(agent)
        if s is None or not s.up:
            raise TelephonyError(f"{agent} has no live session")
        s.customer = channel_id
        try:
            await self._control.ari.add_to_bridge(s.bridge_id, [channel_id])
        except AriError as exc:
            s.customer = None
            raise TelephonyError(f"connecting to {agent}'s session: {exc}") from exc

    def disconnected(self, agent: str, channel_id: str) -> None:
        """The customer's call is over (their channel hung up, which took it out of the bridge)."""
        s = self._sessions.get(agent)
        if s is not None and s.customer == channel_id:
            s.customer = None

    # --- the session itself -----------------------------------------------------------------
    async def _run(self, s: AgentSession) -> None:
        structlog.contextvars.bind_contextvars(agent=s.agent, session=s.leg_id)
        reason = LOST
        try:
            if s.answered_at is None:  # a new session (an adopted one is up already)
                reason = await self._establish(s)
                if reason != "up":
                    return
            self._on_established(s)
            while True:  # until the session channel ends (ChannelGone)
                await s.session.next(None)
        except ChannelGone:
            reason = s.closing or LOST
        except asyncio.CancelledError:
            reason = s.closing or "shutdown"
            raise
        except Exception:
            log.exception("agent_session_failed")
            reason = s.closing or LOST
            await self._control.hangup(s.leg_id)
        finally:
            await asyncio.shield(self._ended(s, reason))

    async def _establish(self, s: AgentSession) -> str:
        variables = {"CC_ROLE": "agent-session", "CC_AGENT": s.agent,
                     "CALLERID(all)": quote_caller_id("cc_ari session", self._caller_id)}
        self._store.agent_session(s.leg_id, agent=s.agent, started_at=s.started_at)
        try:
            await self._control.originate(s.session, agent_endpoint(s.agent), channel_id=s.leg_id,
                                          role="agent", app_args=f"{SESSION_APP_ARG},{s.agent}",
                                          variables=variables)
            result = await self._control.dial(s.session, s.leg_id, timeout=self._ring_timeout)
        except (AriError, TelephonyError) as exc:
            log.warning("agent_session_unreachable", error=str(exc))
            await self._control.hangup(s.leg_id)
            return "unreachable"
        if not result.answered:
            log.info("agent_session_not_answered", status=result.status)
            await self._control.hangup(s.leg_id)
            return "no_answer"
        s.answered_at = utcnow()
        try:
            await self._control.ari.create_bridge(s.bridge_id, "mixing", name=s.bridge_id)
            self._control.registry.claim_bridge(s.bridge_id, s.session)
            await self._control.ari.add_to_bridge(s.bridge_id, [s.leg_id])
        except AriNotFound:
            raise ChannelGone() from None
        self._store.agent_session(s.leg_id, agent=s.agent, started_at=s.started_at, answered_at=s.answered_at)
        return "up"

    def _on_established(self, s: AgentSession) -> None:
        log.info("agent_session_up", setup_s=round((utcnow() - s.started_at).total_seconds(), 3))
        self.on_up(s.agent)

    async def _ended(self, s: AgentSession, reason: str) -> None:
        s.ended.set()
        if reason == "shutdown":  # the session stays up in Asterisk: the next cc_ari adopts it
            self._control.registry.release_session(s.session)
            return
        leg = s.session.legs.get(s.leg_id)
        ended_at = (leg.ended_at if leg is not None else None) or utcnow()
        self._store.agent_session(s.leg_id, agent=s.agent, started_at=s.started_at, ended_at=ended_at,
                                  end_reason=reason)
        log.info("agent_session_ended", reason=reason)
        customer = s.customer
        if customer is not None:
            s.customer = None
            self.on_lost(s.agent, customer)
            await self._control.hangup(customer)
        with contextlib.suppress(AriError):
            await self._control.ari.destroy_bridge(s.bridge_id)
        self._control.registry.release_session(s.session)
        if self._sessions.get(s.agent) is s:
            del self._sessions[s.agent]
        if reason in (LOST, "no_answer", "unreachable") and not self._closing:
            try:
                agent = self._agents.get(s.agent)
                if agent.state is not AgentState.LOGGED_OUT and agent.campaigns:
                    self._agents.pause(s.agent, LOST)
            except AgentError as exc:
                log.warning("session_pause_failed", error=str(exc))

    # --- restart ----------------------------------------------------------------------------
    async def adopt(self, ch: Channel, args: Sequence[str], bridges: Sequence[Bridge]) -> bool:
        """A session channel a previous cc_ari left in our app: kept when its agent is still
        logged in to a campaign (with any customer found in its bridge), else hung up."""
        agent = args[1] if len(args) > 1 else ""
        try:
            known = self._agents.get(agent)
        except AgentError:
            return False
        if not known.campaigns or known.state is AgentState.LOGGED_OUT or self.live(agent):
            return False
        bridge = next((b for b in bridges if b.name == f"{BRIDGE_PREFIX}{agent}" and ch.id in b.channels), None)
        if bridge is None:
            return False
        started = ch.created or utcnow()
        s = AgentSession(agent, ch.id, Session(anchor=ch.id), bridge.id, started, answered_at=started)
        s.session.legs[ch.id] = Leg(ch.id, "agent", agent_endpoint(agent), ch.name, started, answered_at=started)
        others = [c for c in bridge.channels if c != ch.id]
        s.customer = others[0] if others else None
        self._control.registry.claim(ch.id, s.session)
        self._control.registry.claim_bridge(bridge.id, s.session)
        self._sessions[agent] = s
        s.task = self._tasks.spawn(self._run(s), f"session-{agent}")
        log.warning("agent_session_adopted", agent=agent, customer=bool(s.customer))
        return True

    async def aclose(self) -> None:
        """Shutdown: sessions stay up in Asterisk (the next cc_ari adopts them)."""
        self._closing = True
        await self._tasks.cancel_all()
