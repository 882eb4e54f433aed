"""Waiting calls per queue and the dispatcher that hands them agents.

The dispatcher is one owned task, woken whenever an agent becomes available or a call starts
waiting; it matches waiting calls to agents with the pure `assign()`, reserves each agent
through the agent service (the one reservation API) and gives the call an `Offer`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from cc_ari.agents.errors import AgentError
from cc_ari.agents.models import AgentState
from cc_ari.agents.service import AgentService
from cc_ari.callflow import CallFlow, QueueConfig
from cc_ari.calls.models import Call, Offer, Phase
from cc_ari.queueing.estimate import HandleTimes
from cc_ari.queueing.routing import Waiting, assign

log = structlog.get_logger("cc_ari.queueing")


class QueueService:
    def __init__(self, flow: CallFlow, agents: AgentService, *, reachable: Callable[[str], bool]) -> None:
        self._flow = flow
        self._agents = agents
        self._reachable = reachable
        self._waiting: dict[str, Call] = {}
        self._wake = asyncio.Event()
        self.handle_times = HandleTimes()

    def config(self, queue: str | None) -> QueueConfig:
        if queue is not None and queue in self._flow.queues:
            return self._flow.queues[queue]
        return QueueConfig(name=queue or "default")

    def join(self, call: Call) -> None:
        self._waiting[call.call_id] = call
        self.wake()

    def leave(self, call: Call) -> None:
        self._waiting.pop(call.call_id, None)

    def waiting(self, queue: str | None = None) -> list[Call]:
        return [c for c in self._waiting.values() if queue is None or c.queue == queue]

    def position(self, call: Call) -> int:
        """1-based, oldest first (queued_at survives a restart, so the order does too)."""
        same = sorted((c for c in self._waiting.values() if c.queue == call.queue),
                      key=lambda c: (c.queued_mono, c.call_id))
        return next((i for i, c in enumerate(same, 1) if c is call), 0)

    def serving(self, queue: str) -> int:
        return sum(1 for a in self._agents.all()
                   if queue in a.queues and a.state not in (AgentState.LOGGED_OUT, AgentState.PAUSED))

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self.dispatch()

    def dispatch(self) -> None:
        waiting = [Waiting(c.call_id, c.queue, c.queued_mono, frozenset(c.tried))
                   for c in self._waiting.values() if c.phase is Phase.QUEUED and c.queue is not None]
        if not waiting:
            return
        for a in assign(waiting, self._agents.all(), reachable=self._reachable):
            call = self._waiting[a.call_id]
            try:
                self._agents.reserve(a.agent, call.call_id, consumer=f"queue:{call.queue}")
            except AgentError:
                continue
            call.phase = Phase.RINGING
            call.agent = a.agent
            call.session.deliver(Offer(a.agent))
