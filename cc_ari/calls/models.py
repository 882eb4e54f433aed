"""A call as cc_ari tracks it while it is live: its session (channels, ordered events) plus
what the call center cares about (queue, agent, times, outcome)."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import datetime

from cc_ari.telephony.models import Leg, Offer, Resync, Session, SessionEvent

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
    _leg_seq: int = 0

    @property
    def legs(self) -> dict[str, Leg]:
        return self.session.legs

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
