"""The agent state machine, pure: no I/O, times passed in.

States: logged_out -> ready <-> paused; ready -> ringing (offered a call) -> on_call ->
wrapup -> ready. A pause or logout requested while on a call is remembered and applied when
the call ends (an agent is never yanked out of a conversation).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cc_ari.agents.errors import InvalidTransition


class AgentState(enum.StrEnum):
    LOGGED_OUT = "logged_out"
    READY = "ready"
    PAUSED = "paused"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAPUP = "wrapup"


BUSY = frozenset({AgentState.RINGING, AgentState.ON_CALL})


def agent_endpoint(agent: str) -> str:
    """The agent's softphone. The one place the PJSIP naming is spelt."""
    return f"PJSIP/{agent}"


@dataclass(frozen=True, slots=True)
class Agent:
    name: str
    state: AgentState = AgentState.LOGGED_OUT
    queues: frozenset[str] = frozenset()
    campaigns: frozenset[str] = frozenset()  # outbound campaigns served (blended with `queues`)
    skills: Mapping[str, int] = field(default_factory=dict)
    pause_reason: str | None = None
    since: float = 0.0  # when the current state began (monotonic seconds)
    idle_since: float = 0.0  # when the agent last became available (for longest-idle)
    call_id: str | None = None
    pending: str | None = None  # "pause:<reason>" | "logout", applied after the call
    wrapup_until: float | None = None

    # --- requests from the API ---------------------------------------------------------
    def login(self, queues: frozenset[str], skills: Mapping[str, int], now: float,
              campaigns: frozenset[str] = frozenset()) -> Agent:
        if self.state in BUSY or self.state is AgentState.WRAPUP:
            # Re-login while busy: change queues, keep the call.
            return replace(self, queues=queues, campaigns=campaigns, skills=dict(skills), pending=None)
        return replace(self, state=AgentState.READY, queues=queues, campaigns=campaigns, skills=dict(skills),
                       pause_reason=None, since=now, idle_since=now, pending=None)

    def pause(self, reason: str, now: float) -> Agent:
        if self.state is AgentState.LOGGED_OUT:
            raise InvalidTransition(f"{self.name} is logged out; log in first")
        if self.state in BUSY:
            return replace(self, pending=f"pause:{reason}")
        return replace(self, state=AgentState.PAUSED, pause_reason=reason, since=now,
                       wrapup_until=None, pending=None)

    def ready(self, now: float) -> Agent:
        if self.state is AgentState.LOGGED_OUT:
            raise InvalidTransition(f"{self.name} is logged out; log in first")
        if self.state in BUSY:
            return replace(self, pending=None)
        if self.state is AgentState.READY:
            return self
        return replace(self, state=AgentState.READY, pause_reason=None, since=now, idle_since=now,
                       wrapup_until=None, pending=None)

    def logout(self, now: float) -> Agent:
        if self.state in BUSY:
            return replace(self, pending="logout")
        return replace(self, state=AgentState.LOGGED_OUT, queues=frozenset(), campaigns=frozenset(),
                       pause_reason=None,
                       since=now, wrapup_until=None, pending=None)

    # --- call events ---------------------------------------------------------------------
    def offer(self, call_id: str, now: float) -> Agent:
        if self.state is not AgentState.READY:
            raise InvalidTransition(f"{self.name} is {self.state}, not ready")
        return replace(self, state=AgentState.RINGING, call_id=call_id, since=now)

    def answered(self, now: float) -> Agent:
        return replace(self, state=AgentState.ON_CALL, since=now)

    def no_answer(self, now: float) -> Agent:
        """Rang out: paused with reason no_answer (unless a logout was pending)."""
        base = replace(self, call_id=None, state=AgentState.PAUSED, pending=None)
        if self.pending == "logout":
            return base.logout(now)
        return replace(base, pause_reason="no_answer", since=now)

    def offer_withdrawn(self, now: float) -> Agent:
        """The caller went away while this agent's phone rang: not the agent's fault."""
        return self._after_call(now, wrapup=0.0)

    def call_ended(self, now: float, wrapup: float) -> Agent:
        return self._after_call(now, wrapup)

    def _after_call(self, now: float, wrapup: float) -> Agent:
        # Out of the busy states first, so a pending request is applied, not re-deferred.
        base = replace(self, call_id=None, state=AgentState.READY, pending=None)
        if self.pending == "logout" or not (self.queues or self.campaigns):
            return base.logout(now)
        if self.pending and self.pending.startswith("pause:"):
            return base.pause(self.pending.split(":", 1)[1], now)
        if wrapup > 0:
            return replace(base, state=AgentState.WRAPUP, since=now, wrapup_until=now + wrapup)
        return replace(base, state=AgentState.READY, since=now, idle_since=now)

    def wrapup_done(self, now: float) -> Agent:
        if self.state is not AgentState.WRAPUP:
            return self
        return replace(self, state=AgentState.READY, since=now, idle_since=now, wrapup_until=None)

    def available_for(self, queue: str) -> bool:
        return self.state is AgentState.READY and queue in self.queues

    def available_for_campaign(self, campaign: str) -> bool:
        return self.state is AgentState.READY and campaign in self.campaigns
