"""Agent service: applies requests and call events to agents, persists every change.

All changes happen synchronously on the event loop (validate first, then apply), so a
request is applied whole or not at all. Persistence goes through the CallStore journal.

`reserve()` is the one way any consumer (a queue's dispatcher today, the dialer next) gets an
agent: it succeeds only for a ready agent and marks them busy at once, so a blended agent is
never offered two calls. Wrap-up timers are owned tasks, cancelled and awaited at close.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import structlog

from cc_ari.agents.errors import InvalidTransition, UnknownAgent, UnknownQueue
from cc_ari.agents.models import Agent, AgentState
from cc_ari.db.store import CallStore
from cc_ari.tasks import Tasks

log = structlog.get_logger("cc_ari.agents")


class AgentService:
    def __init__(self, names: Iterable[str], queues: Iterable[str], store: CallStore, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._agents: dict[str, Agent] = {n: Agent(name=n) for n in names}
        self._queues = frozenset(queues)
        self._store = store
        self._clock = clock
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._tasks = Tasks("agents")
        self.on_available: Callable[[], None] = lambda: None
        self.reachable: Callable[[str], bool] = lambda _name: True
        self.listeners: list[Callable[[Agent], None]] = []  # told of each state/queues/pause change

    # --- reads ----------------------------------------------------------------------------
    def get(self, name: str) -> Agent:
        try:
            return self._agents[name]
        except KeyError:
            raise UnknownAgent(name) from None

    def all(self) -> list[Agent]:
        return list(self._agents.values())

    @property
    def queue_names(self) -> frozenset[str]:
        return self._queues

    # --- persistence --------------------------------------------------------------------
    def restore(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Bring back who was logged in before a restart (calls in progress are not assumed)."""
        now = self._clock()
        for row in rows:
            name = row["agent"]
            if name not in self._agents:
                continue
            queues = frozenset(q for q in row.get("queues") or () if q in self._queues)
            campaigns = frozenset(row.get("campaigns") or ())
            state = row["state"]
            if state == AgentState.LOGGED_OUT or not (queues or campaigns):
                continue
            raw_skills = row.get("skills") or {}
            skills = json.loads(raw_skills) if isinstance(raw_skills, str) else dict(raw_skills)
            agent = Agent(name=name).login(queues, skills, now, campaigns)
            if state == AgentState.PAUSED:
                agent = agent.pause(row.get("pause_reason") or "paused", now)
            self._agents[name] = agent
            log.info("agent_restored", agent=name, state=str(agent.state), queues=sorted(queues),
                     campaigns=sorted(campaigns))

    def _set(self, new: Agent, *, reason: str | None = None, call_id: str | None = None) -> None:
        old = self._agents[new.name]
        self._agents[new.name] = new
        if old.wrapup_until is not None and new.wrapup_until is None:
            timer = self._timers.pop(new.name, None)
            if timer:
                timer.cancel()
        if new.state is AgentState.WRAPUP and new.wrapup_until is not None:
            self._schedule_wrapup(new)
        if (old.state, old.queues, old.campaigns, old.pause_reason) != (new.state, new.queues, new.campaigns,
                                                                        new.pause_reason):
            now = datetime.now(UTC)
            self._store.agent_event(
                uuid.uuid4().hex, agent=new.name, state=str(new.state), reason=reason or new.pause_reason,
                queues=sorted(new.queues), call_id=call_id or new.call_id or old.call_id, at=now,
                campaigns=sorted(new.campaigns))
            self._store.agent_state(new.name, state=str(new.state), queues=sorted(new.queues),
                                    skills=dict(new.skills), pause_reason=new.pause_reason,
                                    campaigns=sorted(new.campaigns))
            log.info("agent_state", agent=new.name, state=str(new.state), previous=str(old.state),
                     reason=reason or new.pause_reason)
        if new.state is AgentState.READY and old.state is not AgentState.READY:
            self.on_available()
        if (old.state, old.queues, old.campaigns, old.pause_reason, old.pending) != (
                new.state, new.queues, new.campaigns, new.pause_reason, new.pending):
            for listener in self.listeners:
                listener(new)

    def _schedule_wrapup(self, agent: Agent) -> None:
        old = self._timers.pop(agent.name, None)
        if old:
            old.cancel()
        delay = max(0.0, (agent.wrapup_until or 0) - self._clock())
        self._timers[agent.name] = self._tasks.spawn(self._wrapup_after(agent.name, delay),
                                                     f"wrapup-{agent.name}")

    async def _wrapup_after(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        if self._timers.get(name) is asyncio.current_task():
            del self._timers[name]
        self._set(self._agents[name].wrapup_done(self._clock()), reason="wrapup_done")

    # --- API requests ---------------------------------------------------------------------
    def login(self, name: str, queues: list[str], skills: Mapping[str, int] | None = None,
              campaigns: list[str] | None = None) -> Agent:
        """Log in to queues and/or campaigns (campaign names are checked by the caller)."""
        agent = self.get(name)
        unknown = [q for q in queues if q not in self._queues]
        if unknown:
            raise UnknownQueue(unknown)
        if not queues and not campaigns:
            raise InvalidTransition("log in to at least one queue or campaign")
        self._set(agent.login(frozenset(queues), dict(skills or {}), self._clock(), frozenset(campaigns or ())),
                  reason="login")
        return self._agents[name]

    def pause(self, name: str, reason: str) -> Agent:
        self._set(self.get(name).pause(reason, self._clock()), reason=reason)
        return self._agents[name]

    def ready(self, name: str) -> Agent:
        self._set(self.get(name).ready(self._clock()), reason="ready")
        return self._agents[name]

    def logout(self, name: str) -> Agent:
        self._set(self.get(name).logout(self._clock()), reason="logout")
        return self._agents[name]

    # --- the reservation API (queues, dialer) ----------------------------------------------
    def reserve(self, name: str, call_id: str, *, consumer: str = "queue") -> None:
        """Hand a ready agent to one call (raises InvalidTransition if not ready): from now on
        nobody else can offer this agent anything until the call releases them."""
        self._set(self.get(name).offer(call_id, self._clock()), call_id=call_id, reason=f"offered:{consumer}"
                  if consumer != "queue" else "offered")

    def offer(self, name: str, call_id: str) -> None:
        self.reserve(name, call_id)

    def release(self, name: str, call_id: str, *, answered: bool, wrapup: float) -> None:
        """The call `call_id` is done with this agent: wrap-up if they talked, else back to
        where they were. A stale release (the agent moved on) changes nothing."""
        agent = self.get(name)
        if agent.call_id != call_id:
            return
        if agent.state is AgentState.RINGING:
            self.offer_withdrawn(name)
        elif agent.state is AgentState.ON_CALL:
            self.call_ended(name, wrapup if answered else 0.0)

    # --- call events (from the call service) --------------------------------------------

    def answered(self, name: str) -> None:
        self._set(self.get(name).answered(self._clock()), reason="answered")

    def no_answer(self, name: str) -> None:
        self._set(self.get(name).no_answer(self._clock()), reason="no_answer")

    def offer_withdrawn(self, name: str) -> None:
        self._set(self.get(name).offer_withdrawn(self._clock()), reason="offer_withdrawn")

    def call_ended(self, name: str, wrapup: float) -> None:
        self._set(self.get(name).call_ended(self._clock(), wrapup), reason="call_ended")

    def end_wrapup(self, name: str) -> bool:
        """The agent closed their wrap-up (a disposition): ready now. False when not in wrap-up."""
        agent = self.get(name)
        if agent.state is not AgentState.WRAPUP:
            return False
        self._set(agent.wrapup_done(self._clock()), reason="disposition")
        return True

    def adopt_call(self, name: str, call_id: str) -> None:
        """After a restart: the agent is found talking on a call cc_ari adopts."""
        agent = self.get(name)
        self._set(replace(agent, state=AgentState.ON_CALL, call_id=call_id, since=self._clock()),
                  reason="adopted")

    def stuck(self, live_calls: set[str]) -> list[str]:
        """Agents busy with a call that no longer exists (its end was lost)."""
        return [a.name for a in self._agents.values()
                if a.state in (AgentState.RINGING, AgentState.ON_CALL) and a.call_id not in live_calls]

    def close(self) -> None:
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()

    async def aclose(self) -> None:
        self.close()
        await self._tasks.cancel_all()
