"""What app_queue's fallback queues should hold, and the AMI actions that get them there. Pure.

While cc_ari is down, the dialplan's `Queue(cc-fb-<queue>)` rings the members of that app_queue
queue. cc_ari keeps those members in step with its own agent state, so the fallback rings only
agents who are logged in to the queue and not paused, and `Queue()` needs no state of its own.

A membership map is `{app_queue queue: {member name: paused}}`; the member name is the agent
name and its interface `PJSIP/<agent>`.

How cc_ari's states map (`desired()`):

* `logged_out` → a member of nothing.
* `paused` → a member of each of its queues, paused (the pause reason goes along).
* `ready` → a member, not paused.
* `ringing`, `on_call` → a member, not paused. app_queue will not ring a device in use
  (`ringinuse = no`), and when that call ends while cc_ari is down the agent is free to serve
  the fallback, as they would be in cc_ari.
* `wrapup` → a member, not paused: if cc_ari dies during a wrap-up nobody ends it, so the
  agent must stay ringable.
* A pause asked for during a call (applied by cc_ari when the call ends) → paused now: the
  device is in use anyway, and if cc_ari dies during the call the agent's request is honoured.
  A logout asked for during a call → a member of nothing, for the same reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cc_ari.agents.models import Agent, AgentState

QUEUE_PREFIX = "cc-fb-"

Members = Mapping[str, Mapping[str, bool]]  # app_queue queue -> member name -> paused


def fallback_queue(queue: str) -> str:
    """cc_ari queue `support` -> app_queue queue `cc-fb-support` (see scripts/lab.py)."""
    return f"{QUEUE_PREFIX}{queue}"


def interface_of(member: str) -> str:
    """An agent's interface (`PJSIP/agent1`); a name that already is an interface stays as is."""
    return member if "/" in member else f"PJSIP/{member}"


def member_of(interface: str) -> str:
    """`PJSIP/agent1` -> `agent1`; any other technology's interface is its own name."""
    tech, sep, name = interface.partition("/")
    return name if sep and tech.upper() == "PJSIP" and "/" not in name else interface


@dataclass(frozen=True, slots=True)
class QueueAdd:
    queue: str
    interface: str
    member_name: str
    paused: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class QueueRemove:
    queue: str
    interface: str


@dataclass(frozen=True, slots=True)
class QueuePause:
    queue: str
    interface: str
    paused: bool
    reason: str = ""


Action = QueueAdd | QueueRemove | QueuePause


@dataclass(frozen=True, slots=True)
class Desired:
    members: dict[str, dict[str, bool]]
    reasons: dict[str, str]  # member -> pause reason, for the paused ones


def desired(agents: Iterable[Agent], queues: Iterable[str]) -> Desired:
    """The fallback queues' members for these agents; every managed queue appears, even empty.

    `queues` are cc_ari's queue names; an agent's queue not among them is ignored."""
    managed = frozenset(queues)
    members: dict[str, dict[str, bool]] = {fallback_queue(q): {} for q in sorted(managed)}
    reasons: dict[str, str] = {}
    for agent in agents:
        if agent.state is AgentState.LOGGED_OUT or agent.pending == "logout":
            continue
        pending_pause = agent.pending.split(":", 1)[1] if agent.pending and agent.pending.startswith("pause:") \
            else None
        paused = agent.state is AgentState.PAUSED or pending_pause is not None
        if paused:
            reasons[agent.name] = (agent.pause_reason if agent.state is AgentState.PAUSED else pending_pause) \
                or "paused"
        for q in agent.queues:
            if q in managed:
                members[fallback_queue(q)][agent.name] = paused
    return Desired(members, reasons)


def plan(desired: Members, actual: Members, *, reasons: Mapping[str, str] | None = None) -> list[Action]:
    """The actions that turn `actual` into `desired`, for the queues in `desired` only.

    A queue absent from `desired` is not managed and left alone; a queue absent from `actual`
    is taken as empty. Order: per queue (sorted), removals, then additions, then pause changes,
    each by member name; an added member is added already paused or not (no extra QueuePause)."""
    why = reasons or {}
    actions: list[Action] = []
    for queue in sorted(desired):
        want = desired[queue]
        have = actual.get(queue, {})
        actions.extend(QueueRemove(queue, interface_of(m)) for m in sorted(have.keys() - want.keys()))
        actions.extend(QueueAdd(queue, interface_of(m), m, want[m], why.get(m, "") if want[m] else "")
                       for m in sorted(want.keys() - have.keys()))
        actions.extend(QueuePause(queue, interface_of(m), want[m], why.get(m, "") if want[m] else "")
                       for m in sorted(want.keys() & have.keys()) if want[m] != have[m])
    return actions


def record(members: dict[str, dict[str, bool]], action: Action) -> None:
    """Update `members` in place as `action`, once it succeeded, changed app_queue."""
    queue = members.setdefault(action.queue, {})
    name = member_of(action.interface)  # the key QueueStatus gives too (its Location)
    if isinstance(action, QueueRemove):
        queue.pop(name, None)
    else:
        queue[name] = action.paused
