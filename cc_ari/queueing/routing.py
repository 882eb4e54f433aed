"""Which waiting caller goes to which agent: pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from cc_ari.agents.models import Agent


@dataclass(frozen=True, slots=True)
class Waiting:
    call_id: str
    queue: str
    queued_at: float
    tried: frozenset[str] = frozenset()  # agents already offered this call


@dataclass(frozen=True, slots=True)
class Assignment:
    call_id: str
    agent: str


def pick_agent(
    queue: str,
    agents: Iterable[Agent],
    *,
    exclude: frozenset[str] = frozenset(),
    reachable: Callable[[str], bool] = lambda _name: True,
) -> Agent | None:
    """The longest-idle ready agent logged into `queue` (ties: by name, for determinism)."""
    candidates = [
        a for a in agents if a.available_for(queue) and a.name not in exclude and reachable(a.name)
    ]
    if not candidates:
        return None
    return min(candidates, key=lambda a: (a.idle_since, a.name))


def assign(
    waiting: Sequence[Waiting],
    agents: Iterable[Agent],
    *,
    reachable: Callable[[str], bool] = lambda _name: True,
) -> list[Assignment]:
    """Match waiting callers (oldest first, across queues) to free agents.

    Each agent gets at most one call; a call goes back to an agent who already let it ring out
    only when no other agent can take it. Callers nobody can take now keep waiting.
    """
    pool = {a.name: a for a in agents}
    out: list[Assignment] = []
    for w in sorted(waiting, key=lambda w: (w.queued_at, w.call_id)):
        agent = pick_agent(w.queue, pool.values(), exclude=w.tried, reachable=reachable)
        if agent is None and w.tried:
            agent = pick_agent(w.queue, pool.values(), reachable=reachable)
        if agent is not None:
            out.append(Assignment(w.call_id, agent.name))
            del pool[agent.name]
    return out
