"""A call as cc_ari tracks it while it is live."""

from __future__ import annotations

import asyncio
import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cc_ari.ari.models import Event


class Phase(enum.StrEnum):
    NEW = "new"
    IVR = "ivr"
    QUEUED = "queued"
    RINGING = "ringing"  # an agent's phone is ringing
    TALKING = "talking"
    ENDING = "ending"


@dataclass(frozen=True, slots=True)
class Offer:
    """Internal event: the dispatcher gave this call to `agent`."""

    agent: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Internal event: after an ARI reconnect, these channels of the call no longer exist."""

    gone: tuple[str, ...]


CallEvent = Event | Offer | Resync


@dataclass(slots=True)
class Leg:
    leg_id: str
    role: str
    endpoint: str
    channel_name: str
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    hangup_cause: int | None = None

    def as_row(self, call_id: str) -> dict[str, Any]:
        """The cc.legs columns (for CallStore.leg)."""
        return {"call_id": call_id, "role": self.role, "endpoint": self.endpoint,
                "channel_name": self.channel_name or None, "started_at": self.started_at,
                "answered_at": self.answered_at, "ended_at": self.ended_at, "hangup_cause": self.hangup_cause}


@dataclass(slots=True)
class Call:
    call_id: str
    caller: str
    dnis: str
    started_at: datetime
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
    legs: dict[str, Leg] = field(default_factory=dict)
    events: asyncio.Queue[CallEvent] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None
    adopted: bool = False
    announcement: str | None = None  # playback id of a position announcement in progress

    @property
    def caller_leg(self) -> Leg:
        return self.legs[self.call_id]
