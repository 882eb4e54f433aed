"""The live feed behind `GET /api/live` (docs/operations.md): every change pushed to the pages.

How a change reaches a page: whatever may change the state (an ARI or AMI event, an agent's
state change, a call's end) calls `poke()`; the hub then waits `coalesce` seconds (so a burst of
events makes one update), builds the current view of every agent, queue, live call and campaign,
compares each with what it last sent and broadcasts only the entities that changed (a call that
ended: `{"type": "call", "call_id", "gone": true}`). Building views from the services' own state
(not from the events) means nothing can drift: the page shows what the service knows. AMI events
are passed on as they come (supervisors and admins only). Figures that live in SQL (today's
queue KPIs, the 15-minute intervals) are re-read after calls end, at most every `report_every`
seconds.

Each page is a `Subscriber` with a bounded queue of JSON texts; a page too slow to keep up is
disconnected (it reconnects and gets a fresh snapshot) rather than slowing the service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from cc_ari.agents.models import Agent, AgentState
from cc_ari.calls.models import Call, Phase, waiting_by_queue

log = structlog.get_logger("cc_ari.live")

Message = dict[str, Any]
QUEUE_LIMIT = 20_000  # texts waiting for one page before it is cut off
GONE_ID = {"call": "call_id", "monitor": "monitor_id"}  # entities that end, and their id field
AMI_PER_FLUSH = 500  # AMI events passed on per flush at most (the rest are counted as skipped)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is watching: their role, and the agent a bound token is for."""

    role: str
    agent: str | None = None

    @property
    def supervisor(self) -> bool:
        return self.role in ("admin", "supervisor")

    def sees(self, key: tuple[str, str]) -> bool:
        if self.agent is not None:  # an agent's own desktop: their agent only
            return key == ("agent", self.agent)
        return key[0] not in ("ami", "intervals", "monitor") or self.supervisor


@dataclass(eq=False)
class Subscriber:
    viewer: Viewer
    queue: asyncio.Queue[str | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    overflowed: bool = False

    def put(self, text: str) -> None:
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.overflowed = True
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.queue.put_nowait(None)  # the page's writer sees None: it closes the socket

    async def get(self) -> str | None:
        return await self.queue.get()


def epoch(at: datetime | None) -> float | None:
    return None if at is None else round(at.timestamp(), 3)


def call_message(c: Call) -> Message:
    return {"type": "call", "call_id": c.call_id, "direction": c.direction, "phase": str(c.phase),
            "caller": c.caller, "dnis": c.dnis, "queue": c.queue, "agent": c.agent, "campaign": c.campaign,
            "ivr_path": c.ivr_path or None, "started_at": epoch(c.started_at), "queued_at": epoch(c.queued_at),
            "answered_at": epoch(c.answered_at)}


@dataclass(slots=True)
class Sources:
    """What the hub reads (plain callables, so it can be tested without the services)."""

    agents: Callable[[], Iterable[Agent]]
    registered: Callable[[], Mapping[str, bool]]
    calls: Callable[[], Iterable[Call]]
    call: Callable[[str], Call | None]
    queue_names: Callable[[], Iterable[str]]
    lead_of: Callable[[Call], dict[str, Any] | None] = lambda _c: None
    disposition_pending: Callable[[str], dict[str, Any] | None] = lambda _a: None
    campaigns: Callable[[], Iterable[Message]] = lambda: ()  # {"campaign", "status", "mode", "live"}
    service_level_seconds: Callable[[str], int] = lambda _q: 20
    queue_today: Callable[[], Awaitable[Mapping[str, Mapping[str, Any]]]] | None = None
    intervals: Callable[[], Awaitable[Message]] | None = None  # {"date", "minutes", "rows"}
    monitors: Callable[[], Iterable[Mapping[str, Any]]] = lambda: ()  # supervisors listening in (their views)
    monotonic: Callable[[], float] = time.monotonic  # the agents' clock (their `since`)


class LiveHub:
    def __init__(self, sources: Sources, *, coalesce: float = 0.2, report_every: float = 5.0,
                 clock: Callable[[], float] = time.time) -> None:
        self._src = sources
        self._coalesce = coalesce
        self._report_every = report_every
        self._clock = clock
        self._offset = clock() - sources.monotonic()  # monotonic -> epoch, fixed (no jitter in diffs)
        self._subs: set[Subscriber] = set()
        self._sent: dict[tuple[str, str], str] = {}  # entity -> the JSON text last sent
        self._dirty = asyncio.Event()
        self._reports_due = asyncio.Event()
        self._ami: deque[Message] = deque()
        self._ami_skipped = 0
        self._today: Mapping[str, Mapping[str, Any]] = {}
        self._intervals: Message | None = None
        self.flushes = 0
        self.flush_seconds = 0.0  # time spent building and diffing views (for the benchmark / metrics)

    # --- inputs -------------------------------------------------------------------------------
    def poke(self, *_args: object) -> None:
        """Something may have changed (any signature, so it can be a listener of anything)."""
        self._dirty.set()

    def calls_ended(self, *_args: object) -> None:
        """A call's final rows were written: the SQL figures are worth reading again."""
        self._reports_due.set()
        self._dirty.set()

    def ami_event(self, event: Mapping[str, Any]) -> None:
        """An AMI event as GET /api/ami/events shows it ({"ts", "event", "fields"})."""
        if not any(s.viewer.supervisor for s in self._subs):
            return
        if len(self._ami) >= AMI_PER_FLUSH:
            self._ami_skipped += 1
        else:
            self._ami.append({"type": "ami", **event})
        self._dirty.set()

    # --- pages --------------------------------------------------------------------------------
    def subscribe(self, viewer: Viewer) -> Subscriber:
        sub = Subscriber(viewer)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def snapshot(self, viewer: Viewer) -> list[str]:
        """The whole current state for a new page, as the texts to send after `hello`."""
        views = self._views()
        out = [text for key, text in views.items() if viewer.sees(key)]
        if viewer.sees(("intervals", "")) and self._intervals is not None:
            out.append(_dump(self._intervals))
        return out

    def hello(self, viewer: Viewer) -> str:
        return _dump({"type": "hello", "role": viewer.role, "agent": viewer.agent,
                      "server_time": round(self._clock(), 3)})

    # --- the loop -----------------------------------------------------------------------------
    async def run(self) -> None:
        reports = asyncio.create_task(self._reports_loop(), name="live-reports")
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # a slow beat: anything changed without an event
                    await asyncio.wait_for(self._dirty.wait(), timeout=5.0)
                await asyncio.sleep(self._coalesce)
                self._dirty.clear()
                self.flush()
        finally:
            reports.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reports

    async def _reports_loop(self) -> None:
        await self._refresh_reports()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reports_due.wait(), timeout=60.0)
            self._reports_due.clear()
            await self._refresh_reports()
            await asyncio.sleep(self._report_every)

    async def _refresh_reports(self) -> None:
        if self._src.queue_today is not None:
            try:
                self._today = await self._src.queue_today()
            except Exception as exc:  # the database may be away: the live part goes on
                log.warning("live_queue_today_failed", error=repr(exc))
        if self._src.intervals is not None:
            try:
                intervals = {"type": "intervals", **await self._src.intervals()}
            except Exception as exc:
                log.warning("live_intervals_failed", error=repr(exc))
            else:
                if intervals != self._intervals:
                    self._intervals = intervals
                    self._broadcast(("intervals", ""), _dump(intervals))
        self._dirty.set()

    def flush(self) -> None:
        """Send every entity that changed since the last flush, and the AMI events that came."""
        started = time.perf_counter()
        views = self._views()
        for key, text in views.items():
            if self._sent.get(key) != text:
                self._broadcast(key, text)
        for key in [k for k in self._sent if k not in views]:
            if key[0] in GONE_ID:  # an entity that ended (agents, queues, campaigns stay)
                self._broadcast(key, _dump({"type": key[0], GONE_ID[key[0]]: key[1], "gone": True}))
        self._sent = views
        while self._ami:
            self._broadcast(("ami", ""), _dump(self._ami.popleft()))
        if self._ami_skipped:
            self._broadcast(("ami", ""), _dump({"type": "ami_skipped", "count": self._ami_skipped}))
            self._ami_skipped = 0
        self.flushes += 1
        self.flush_seconds += time.perf_counter() - started

    def _broadcast(self, key: tuple[str, str], text: str) -> None:
        for sub in tuple(self._subs):
            if sub.viewer.sees(key):
                sub.put(text)
            if sub.overflowed:
                self._subs.discard(sub)
                log.warning("live_page_too_slow", role=sub.viewer.role)

    # --- views --------------------------------------------------------------------------------
    def _views(self) -> dict[tuple[str, str], str]:
        src = self._src
        agents = list(src.agents())
        online = src.registered()
        calls = list(src.calls())
        out: dict[tuple[str, str], str] = {}
        for a in agents:
            out[("agent", a.name)] = _dump(self._agent(a, online.get(a.name, False)))
        waiting = waiting_by_queue(calls)
        for q in sorted(src.queue_names()):
            out[("queue", q)] = _dump(self._queue(q, agents, calls, waiting.get(q, [])))
        for c in calls:
            out[("call", c.call_id)] = _dump(call_message(c))
        for camp in src.campaigns():
            out[("campaign", str(camp["campaign"]))] = _dump({"type": "campaign", **camp})
        for mon in src.monitors():
            out[("monitor", str(mon["monitor_id"]))] = _dump({**mon, "type": "monitor"})
        return out

    def _agent(self, a: Agent, registered: bool) -> Message:
        call = self._src.call(a.call_id) if a.call_id else None
        return {
            "type": "agent", "agent": a.name, "state": str(a.state),
            "since": round(a.since + self._offset, 2) if a.since else None,
            "pause_reason": a.pause_reason, "pending": a.pending,
            "queues": sorted(a.queues), "campaigns": sorted(a.campaigns), "registered": registered,
            "call": None if call is None else {
                "call_id": call.call_id, "direction": call.direction, "phase": str(call.phase),
                "caller": call.caller, "dnis": call.dnis, "queue": call.queue, "ivr_path": call.ivr_path or None,
                "campaign": call.campaign, "lead": self._src.lead_of(call),
                "started_at": epoch(call.started_at), "answered_at": epoch(call.answered_at)},
            "disposition_pending": self._src.disposition_pending(a.name) if a.state is AgentState.WRAPUP else None,
        }

    def _queue(self, q: str, agents: list[Agent], calls: list[Call], waiting: list[Call]) -> Message:
        members = [a for a in agents if q in a.queues]
        oldest = min((c.queued_at for c in waiting if c.queued_at is not None), default=None)
        by_state = {s: sum(1 for a in members if a.state is s) for s in AgentState if s is not AgentState.LOGGED_OUT}
        return {
            "type": "queue", "queue": q, "waiting": len(waiting), "oldest_waiting_since": epoch(oldest),
            "talking": sum(1 for c in calls if c.queue == q and c.phase is Phase.TALKING),
            "agents": {"logged_in": len(members), **{str(s): n for s, n in by_state.items()}},
            "service_level_seconds": self._src.service_level_seconds(q),
            "today": dict(self._today.get(q, {})),
        }


def _dump(message: Message) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)
