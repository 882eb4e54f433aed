"""A call as cc_ari tracks it while it is live: its session (channels, ordered events) plus
what the call center cares about (queue, agent, times, outcome)."""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from cc_ari.telephony.models import Leg, Offer, Resync, Session, SessionEvent, utcnow

__all__ = ["Call", "CallEvent", "Leg", "Offer", "Phase", "Resync"]

CallEvent = SessionEvent


class Phase(enum.StrEnum):
    NEW = "new"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # an agent's phone is ringing
    TALKING = "talking"
    ENDING = "ending"


WAITING = frozenset({Phase.QUEUED, Phase.RINGING})


def waiting_by_queue(calls: Iterable[Call]) -> dict[str, list[Call]]:
    """The calls waiting for an agent (queued, or an agent's phone ringing), per queue."""
    out: dict[str, list[Call]] = {}
    for c in calls:
        if c.queue is not None and c.phase in WAITING:
            out.setdefault(c.queue, []).append(c)
    return out


@dataclass(eq=False, slots=True)
class Call:
    call_id: str
    caller: str
    dnis: str
    started_at: datetime
    session: Session
    direction: str = "inbound"
    phase: Phase = Phase.NEW
    queue: str | None = None
    queued_at: datetime | None = None
    queued_mono: float = 0.0
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    agent: str | None = None
    outcome: str | None = None
    recording_name: str | None = None
    recording_path: str | None = None
    ivr_path: str = ""
    tried: set[str] = field(default_factory=set)
    agent_channel: str | None = None
    bridge_id: str | None = None
    task: asyncio.Task[None] | None = None
    adopted: bool = False
    resumed: bool = False  # picked up again after a restart (IVR replayed / queue re-entered)
    announcement: str | None = None  # playback id of a position announcement in progress
    handled_by: str = "cc_ari"
    # Outbound (the dialer): the campaign and lead, AMD's verdict, and how the agent was reached.
    campaign: str | None = None
    lead_id: str | None = None
    lead: dict[str, object] = field(default_factory=dict)  # the lead's custom fields, for the agent
    amd_result: str | None = None
    amd_seconds: float | None = None
    connect_seconds: float | None = None
    wrapup: float | None = None  # the agent's wrap-up after this call (None: the queue's)
    via_session: bool = False  # the agent is in a persistent session: their channel is not this call's
    _leg_seq: int = 0

    @property
    def legs(self) -> dict[str, Leg]:
        return self.session.legs

    @property
    def talking(self) -> bool:
        return self.phase is Phase.TALKING

    @property
    def outbound(self) -> bool:
        return self.direction == "outbound"

    def seconds_since(self, at: datetime | None) -> float | None:
        return None if at is None else round((utcnow() - at).total_seconds(), 3)

    @property
    def caller_leg(self) -> Leg:
        return self.session.legs[self.call_id]

    def state(self, phase: Phase) -> dict[str, str]:
        """What a restarted cc_ari needs to take this call back (saved on the caller's channel)."""
        state = {"phase": str(phase), "queue": self.queue or "", "ivr_path": self.ivr_path, "agent": self.agent or "",
                 "queued_at": f"{self.queued_at.timestamp():.3f}" if self.queued_at else "",
                 "answered_at": f"{self.answered_at.timestamp():.3f}" if self.answered_at else ""}
        return {k: v for k, v in state.items() if v}

    def new_leg_id(self) -> str:
        """A leg id never used before in this call (an agent offered the same call twice gets two)."""
        self._leg_seq += 1
        return f"{self.call_id}-{self._leg_seq}"
