"""A session: the channels of one call, their lifecycle, and the call's own ordered inbox.

Every ARI event about a channel (or bridge) a session owns is put in its inbox by the
registry; the session's task consumes it with `next()`, which keeps leg times and hangup
causes up to date and raises `ChannelGone` once the anchor channel has ended. Events that no
step is waiting for (an announcement ending while an agent rings, ...) go through the
session's background hooks, whatever step is running, so none is ever lost.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cc_ari.ari.models import ChannelDestroyed, ChannelHangupRequest, Event, StasisEnd
from cc_ari.telephony.errors import ChannelGone


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Offer:
    """Internal event: the dispatcher reserved `agent` for this call."""

    agent: str


@dataclass(frozen=True, slots=True)
class Resync:
    """Internal event: these channels of the session no longer exist in Asterisk (reconnect or
    periodic reconciliation found them gone; their end event was lost)."""

    gone: tuple[str, ...]


SessionEvent = Event | Offer | Resync
BackgroundHook = Callable[[SessionEvent], Awaitable[bool]]


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
    in_dialplan: bool = False  # sent to the dialplan on purpose (AMD): its StasisEnd is not its end

    def as_row(self, call_id: str) -> dict[str, Any]:
        """The cc.legs columns (for CallStore.leg)."""
        return {"call_id": call_id, "role": self.role, "endpoint": self.endpoint,
                "channel_name": self.channel_name or None, "started_at": self.started_at,
                "answered_at": self.answered_at, "ended_at": self.ended_at, "hangup_cause": self.hangup_cause}


@dataclass(eq=False, slots=True)
class Session:
    anchor: str  # the channel whose end ends the session
    legs: dict[str, Leg] = field(default_factory=dict)
    inbox: asyncio.Queue[SessionEvent] = field(default_factory=asyncio.Queue)
    hooks: list[BackgroundHook] = field(default_factory=list)
    clock: Callable[[], float] = time.monotonic

    def anchor_gone(self) -> bool:
        return self.ended(self.anchor)

    def ended(self, leg_id: str | None) -> bool:
        if leg_id is None:
            return True
        leg = self.legs.get(leg_id)
        return leg is None or leg.ended_at is not None

    def deliver(self, ev: SessionEvent) -> None:
        self.inbox.put_nowait(ev)

    async def next(self, timeout: float | None) -> SessionEvent | None:
        """The next event no background hook consumed, or None after `timeout` s.

        Raises ChannelGone as soon as the anchor channel has ended."""
        deadline = None if timeout is None else self.clock() + timeout
        while True:
            if self.anchor_gone():
                raise ChannelGone()
            ev = await self._get(None if deadline is None else deadline - self.clock())
            if ev is None:
                return None
            self.track(ev)
            if self.anchor_gone():
                raise ChannelGone()
            consumed = False
            for hook in tuple(self.hooks):
                if await hook(ev):
                    consumed = True
                    break
            if not consumed:
                return ev

    async def _get(self, timeout: float | None) -> SessionEvent | None:
        if not self.inbox.empty():
            return self.inbox.get_nowait()
        if timeout is not None and timeout <= 0:
            return None
        try:
            if timeout is None:
                return await self.inbox.get()
            return await asyncio.wait_for(self.inbox.get(), timeout)
        except TimeoutError:
            return None

    def track(self, ev: SessionEvent) -> None:
        """Keep leg times and causes up to date from any event."""
        if isinstance(ev, Resync):
            now = utcnow()
            for leg_id in ev.gone:
                leg = self.legs.get(leg_id)
                if leg is not None and leg.ended_at is None:
                    leg.ended_at = now
            return
        if isinstance(ev, StasisEnd | ChannelDestroyed | ChannelHangupRequest):
            leg = self.legs.get(ev.channel.id)
            if leg is None or (isinstance(ev, StasisEnd) and leg.in_dialplan):
                return
            if isinstance(ev, ChannelDestroyed) or (
                isinstance(ev, ChannelHangupRequest) and ev.cause and leg.hangup_cause is None
            ):
                leg.hangup_cause = ev.cause
            if leg.ended_at is None:
                leg.ended_at = ev.timestamp or utcnow()

    async def settle(self, timeout: float, *, exclude: frozenset[str] = frozenset()) -> None:
        """After hanging up: give Asterisk a moment to report the legs' hangup causes."""
        deadline = self.clock() + timeout
        while True:
            pending = [leg for leg in self.legs.values()
                       if leg.hangup_cause is None and leg.channel_name and leg.leg_id not in exclude]
            if not pending:
                return
            ev = await self._get(deadline - self.clock())
            if ev is None:
                return
            self.track(ev)
