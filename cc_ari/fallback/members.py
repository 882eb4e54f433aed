"""Keeps app_queue's fallback queues (`cc-fb-<queue>`) in step with cc_ari's agents, over AMI.

One owned loop (`run()`): a change anywhere calls `notify()` (sync, cheap, never blocks); the
loop wakes, computes the wanted members from the agents, diffs them against what it last knew
app_queue holds, and sends only the difference (`QueueAdd` / `QueueRemove` / `QueuePause`).
What app_queue holds is read with `QueueStatus` only when that knowledge may be stale: at the
first round, after each AMI (re)connection (`FullyBooted`, or an action that found the
connection gone), after a failed action, and every `resync_every` seconds. A round that fails
is logged and retried after a capped backoff; while AMI is down the loop just waits for it.

Nothing is removed when cc_ari stops: the members stay as they were, which is the point —
the fallback dialplan then rings exactly the agents cc_ari last had logged in and not paused.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from cc_ari.agents.models import Agent
from cc_ari.ami.errors import AmiActionFailed, AmiError, AmiUnavailable
from cc_ari.ami.models import AmiEvent, FullyBooted
from cc_ari.fallback.plan import (
    Action,
    QueueAdd,
    QueueRemove,
    desired,
    fallback_queue,
    member_of,
    plan,
    record,
)

log = structlog.get_logger("cc_ari.fallback")


class Ami(Protocol):
    """The part of `cc_ari.ami.client.AmiClient` this service uses (what a test fake provides)."""

    @property
    def connected(self) -> asyncio.Event: ...

    async def action(self, name: str, **fields: str) -> dict[str, str]: ...

    async def action_list(self, name: str, **fields: str) -> list[dict[str, str]]: ...


AgentsProvider = Callable[[], Iterable[Agent]]


class FallbackMembers:
    def __init__(self, ami: Ami, queue_names: Iterable[str], agents_provider: AgentsProvider, *,
                 resync_every: float = 60.0, retry_min: float = 1.0, retry_max: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._ami = ami
        self._queues = frozenset(queue_names)
        self._agents = agents_provider
        self._resync_every = resync_every
        self._retry_min = retry_min
        self._retry_max = retry_max
        self._clock = clock
        self._wake = asyncio.Event()
        self._actual: dict[str, dict[str, bool]] | None = None  # None: read QueueStatus first
        self._missing: frozenset[str] = frozenset()  # fallback queues app_queue does not have
        self._resync_at = 0.0
        self.rounds = 0  # completed rounds, clean or not (for tests and ops)

    # --- inputs -------------------------------------------------------------------------
    def notify(self, _agent: Agent | None = None) -> None:
        """Something changed (an agent's state, queues or pause): sync soon. Never blocks.

        Takes an optional agent so it can be an `AgentService.listeners` entry as is."""
        self._wake.set()

    async def on_ami_event(self, event: AmiEvent) -> None:
        """AMI handler: after each login (FullyBooted) app_queue may be new (Asterisk restarted,
        persistentmembers = no), so read it again."""
        if isinstance(event, FullyBooted):
            self._actual = None
            self._wake.set()

    @property
    def known_members(self) -> dict[str, dict[str, bool]] | None:
        """What app_queue holds as far as this service knows (None: not read yet)."""
        return None if self._actual is None else {q: dict(m) for q, m in self._actual.items()}

    # --- the loop -----------------------------------------------------------------------
    async def run(self) -> None:
        retry = 0.0
        while True:
            await self._ami.connected.wait()
            self._wake.clear()  # what happened until now is covered by this round
            try:
                clean = await self.sync()
            except AmiUnavailable as exc:
                log.warning("fallback_members_ami_unavailable", error=str(exc))
                self._actual = None
                clean = False
            except AmiError as exc:  # QueueStatus refused or malformed
                log.warning("fallback_members_read_failed", error=str(exc))
                self._actual = None
                clean = False
            if clean:
                retry = 0.0
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.0, self._resync_at - self._clock()))
            else:
                retry = min(max(retry * 2, self._retry_min), self._retry_max)
                await asyncio.sleep(retry)

    async def sync(self) -> bool:
        """One round; True when app_queue now matches the agents (a refused action is logged,
        and makes it False). Raises AmiUnavailable, or AmiError if QueueStatus fails."""
        try:
            if self._actual is None or self._clock() >= self._resync_at:
                known, self._actual = self._actual, await self._read()
                self._resync_at = self._clock() + self._resync_every
                counts = {q: len(m) for q, m in self._actual.items()}
                if known is None:
                    log.info("fallback_members_read", members=counts)
                elif known != self._actual:  # changed behind cc_ari's back (by hand, or a missed restart)
                    log.warning("fallback_members_drift", members=counts)
            actual = self._actual
            want = desired(self._agents(), self._queues)
            members = {q: m for q, m in want.members.items() if q not in self._missing}
            failed = 0
            for action in plan(members, actual, reasons=want.reasons):
                if await self._apply(action):
                    record(actual, action)
                else:
                    failed += 1
            if failed:
                self._actual = None  # a refused action means our picture may be wrong: re-read
                log.warning("fallback_members_round_failed", failed=failed, note="retried with backoff")
            return failed == 0
        finally:
            self.rounds += 1

    # --- AMI ----------------------------------------------------------------------------
    async def _read(self) -> dict[str, dict[str, bool]]:
        actual: dict[str, dict[str, bool]] = {}
        missing = set()
        for queue in sorted(fallback_queue(q) for q in self._queues):
            events = await self._ami.action_list("QueueStatus", Queue=queue)
            if not any(e.get("Event") == "QueueParams" and e.get("Queue") == queue for e in events):
                missing.add(queue)
                continue
            actual[queue] = {
                member_of(e.get("Location") or e.get("Interface", "")): e.get("Paused") == "1"
                for e in events if e.get("Event") == "QueueMember" and e.get("Queue") == queue}
        if missing and missing != self._missing:
            log.error("fallback_queue_missing", queues=sorted(missing),
                      note="not in queues.conf: the fallback cannot ring these queues' agents")
        self._missing = frozenset(missing)
        return actual

    async def _apply(self, action: Action) -> bool:
        """Send one action; False (logged) if Asterisk refused it. AmiUnavailable propagates."""
        name = member_of(action.interface)
        try:
            if isinstance(action, QueueAdd):
                await self._ami.action("QueueAdd", Queue=action.queue, Interface=action.interface,
                                       MemberName=action.member_name, StateInterface=action.interface,
                                       Paused="true" if action.paused else "false",
                                       **({"Reason": action.reason} if action.paused and action.reason else {}))
                log.info("fallback_member_added", queue=action.queue, agent=name, paused=action.paused)
            elif isinstance(action, QueueRemove):
                await self._ami.action("QueueRemove", Queue=action.queue, Interface=action.interface)
                log.info("fallback_member_removed", queue=action.queue, agent=name)
            else:
                await self._ami.action("QueuePause", Queue=action.queue, Interface=action.interface,
                                       Paused="true" if action.paused else "false",
                                       **({"Reason": action.reason} if action.reason else {}))
                log.info("fallback_member_paused" if action.paused else "fallback_member_unpaused",
                         queue=action.queue, agent=name, reason=action.reason or None)
        except AmiActionFailed as exc:
            log.warning("fallback_member_action_failed", action=type(action).__name__, queue=action.queue,
                        agent=name, error=str(exc))
            return False
        return True
