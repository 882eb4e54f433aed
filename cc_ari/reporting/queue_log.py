"""Asterisk `queue_log` lines from cc_ari's calls, legs and agent events (pure: rows in, lines out).

A line is `epoch|callid|queue|agent|EVENT|data1|data2|...`, the layout app_queue writes (Asterisk's
"Queue Logs" documentation; field order as app_queue.c logs them), so tools made for Asterisk's
queue_log (QueueMetrics, Wazo stats, home-made scripts) can read cc_ari's queues:

| event | callid | queue | data |
|---|---|---|---|
| ENTERQUEUE | call | queue | url (empty) \\| caller number \\| position on entry |
| RINGNOANSWER | call | queue | ms the agent's phone rang (an agent leg not answered) |
| RINGCANCELED | call | queue | ms it rang until the caller hung up (an agent leg ringing then) |
| CONNECT | call | queue | holdtime \\| the agent leg's uniqueid \\| ring seconds of that leg |
| COMPLETECALLER / COMPLETEAGENT | call | queue | holdtime \\| calltime \\| position on entry |
| ABANDON / EXITWITHTIMEOUT | call | queue | position when leaving \\| position on entry \\| waittime |
| AGENTLOGIN | NONE | NONE | the agent's interface (`PJSIP/agent1`) |
| AGENTLOGOFF | NONE | NONE | interface \\| seconds logged in |
| ADDMEMBER / REMOVEMEMBER | NONE | each queue | `PAUSED` when added paused, else empty |
| PAUSEALL / UNPAUSEALL | NONE | NONE | pause reason (empty for an unpause) |
| PAUSE / UNPAUSE | NONE | each queue | pause reason (empty for an unpause) |

Choices (docs/kpi.md says the same):
* The agent field is `Agent/<name>` by default (QueueMetrics' convention: an agent is `Agent/...`,
  the phone it uses is the AGENTLOGIN data), or the interface `PJSIP/<name>` (agent_style
  "interface"); calls not involving an agent carry `NONE`, as Asterisk writes.
* Epochs are whole seconds (floored) and every duration is the difference of the two lines'
  epochs, as app_queue computes them (`time(NULL) - start`); RINGNOANSWER / RINGCANCELED are in
  milliseconds of the exact times.
* A call unanswered that ended with outcome `no_answer` (the queue's max_wait) is EXITWITHTIMEOUT;
  any other unanswered ending is ABANDON. COMPLETEAGENT when the agent's leg ended strictly before
  the caller's, else COMPLETECALLER. The times are the call's: queued_at (ENTERQUEUE), answered_at
  (CONNECT), ended_at (the rest); RINGNOANSWER is at the agent leg's end.
* Positions are first-come first-served among the calls of the same queue: on entry, 1 + the calls
  entered before and still waiting; when leaving, 1 + those of them still waiting then.
* Agent events give the member lines from their state changes: from logged_out to a logged-in
  state AGENTLOGIN then ADDMEMBER per queue; a change of queues ADDMEMBER / REMOVEMEMBER; into
  `paused` PAUSEALL then PAUSE per queue (with the reason, again when the reason changes); out of
  it UNPAUSEALL then UNPAUSE per queue; to logged_out REMOVEMEMBER per queue then AGENTLOGOFF.
  Ringing, talk and wrap-up give no member line (the call lines tell them).
* Lines are sorted by time (then in the order above within one call); only those whose time is
  in [since, until) are kept. Outbound calls are not queue calls and give no line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from cc_ari.agents.models import agent_endpoint

AgentStyle = Literal["agent", "interface"]
AGENT_STYLES: tuple[AgentStyle, ...] = ("agent", "interface")
NONE = "NONE"
FOREVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class AgentLeg:
    """A leg that rang an agent for a queue call (report.legs, role agent)."""

    leg_id: str
    agent: str  # the agent's name (`agent1`), not the interface
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueCall:
    """An inbound call that entered a queue (report.calls with queued_at)."""

    call_id: str
    queue: str
    queued_at: datetime
    caller: str | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    outcome: str | None = None
    agent: str | None = None
    caller_ended_at: datetime | None = None  # the caller's own leg's end (who hung up first)
    legs: tuple[AgentLeg, ...] = ()


@dataclass(frozen=True, slots=True)
class AgentEvent:
    """An agent state change (report.agent_events)."""

    agent: str
    state: str
    at: datetime
    reason: str | None = None
    queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, order=True)
class Line:
    at: datetime
    rank: int
    seq: int
    callid: str = field(compare=False)
    queue: str = field(compare=False)
    agent: str = field(compare=False)
    event: str = field(compare=False)
    data: tuple[str, ...] = field(compare=False, default=())

    @property
    def epoch(self) -> int:
        return epoch(self.at)

    def __str__(self) -> str:
        return "|".join((str(self.epoch), self.callid, self.queue, self.agent, self.event, *self.data))


def epoch(at: datetime) -> int:
    """Whole Unix seconds, as Asterisk's `time(NULL)`."""
    return math.floor(at.timestamp())


def _field(value: str | None) -> str:
    """A value safe inside a line: no field separator, no line break."""
    return (value or "").replace("|", "_").replace("\n", " ").replace("\r", " ")


def _ms(start: datetime, end: datetime) -> int:
    return max(0, round((end - start).total_seconds() * 1000))


def _seconds(start: datetime, end: datetime) -> int:
    return max(0, epoch(end) - epoch(start))


class _Names:
    def __init__(self, style: AgentStyle) -> None:
        if style not in AGENT_STYLES:
            raise ValueError(f"agent style must be one of {AGENT_STYLES}, got {style!r}")
        self.style = style

    def __call__(self, agent: str | None) -> str:
        if not agent:
            return NONE
        return f"Agent/{_field(agent)}" if self.style == "agent" else _field(agent_endpoint(agent))


def positions(calls: Iterable[QueueCall]) -> dict[str, tuple[int, int]]:
    """call_id -> (position on entry, position when leaving the queue), first come first served per
    queue. A call leaves the queue at its answer or its end; one still waiting is ahead of every
    later one."""
    by_queue: dict[str, list[QueueCall]] = {}
    for c in calls:
        by_queue.setdefault(c.queue, []).append(c)
    out: dict[str, tuple[int, int]] = {}
    for members in by_queue.values():
        members.sort(key=lambda c: (c.queued_at, c.call_id))
        waiting: list[QueueCall] = []  # entered before the current call and not gone yet
        for c in members:
            waiting = [w for w in waiting if _leaves(w) > c.queued_at]
            ahead_on_leave = sum(1 for w in waiting if _leaves(w) > _leaves(c))
            out[c.call_id] = (len(waiting) + 1, ahead_on_leave + 1)
            waiting.append(c)
    return out


def _left(c: QueueCall) -> datetime | None:
    return c.answered_at or c.ended_at


def _leaves(c: QueueCall) -> datetime:
    return _left(c) or FOREVER


def _call_lines(c: QueueCall, pos: tuple[int, int], name: _Names, seq: Iterator[int]) -> Iterator[Line]:
    queue = _field(c.queue)
    opos, leave_pos = pos
    yield Line(c.queued_at, 0, next(seq), c.call_id, queue, NONE, "ENTERQUEUE", ("", _field(c.caller), str(opos)))
    left = _left(c)
    answering: AgentLeg | None = None
    for leg in c.legs:
        if leg.answered_at is not None:
            if c.answered_at is not None and (answering is None or leg.agent == c.agent):
                answering = leg
            continue
        if leg.ended_at is None:
            continue
        if left is not None and leg.ended_at >= left and c.answered_at is None:
            # still ringing when the caller hung up: Asterisk logs it at the hangup
            yield Line(left, 1, next(seq), c.call_id, queue, name(leg.agent), "RINGCANCELED",
                       (str(_ms(leg.started_at, left)),))
        else:
            yield Line(leg.ended_at, 1, next(seq), c.call_id, queue, name(leg.agent), "RINGNOANSWER",
                       (str(_ms(leg.started_at, leg.ended_at)),))
    if c.answered_at is not None:
        agent = name(c.agent or (answering.agent if answering else None))
        hold = _seconds(c.queued_at, c.answered_at)
        ring = _seconds(answering.started_at, answering.answered_at) if answering and answering.answered_at else 0
        yield Line(c.answered_at, 2, next(seq), c.call_id, queue, agent, "CONNECT",
                   (str(hold), answering.leg_id if answering else "", str(ring)))
        if c.ended_at is not None:
            agent_end = answering.ended_at if answering else None
            by_agent = agent_end is not None and c.caller_ended_at is not None and agent_end < c.caller_ended_at
            yield Line(c.ended_at, 3, next(seq), c.call_id, queue, agent,
                       "COMPLETEAGENT" if by_agent else "COMPLETECALLER",
                       (str(hold), str(_seconds(c.answered_at, c.ended_at)), str(opos)))
    elif c.ended_at is not None:
        event = "EXITWITHTIMEOUT" if c.outcome == "no_answer" else "ABANDON"
        yield Line(c.ended_at, 3, next(seq), c.call_id, queue, NONE, event,
                   (str(leave_pos), str(opos), str(_seconds(c.queued_at, c.ended_at))))


@dataclass(slots=True)
class _Member:
    state: str = "logged_out"
    reason: str = ""
    queues: tuple[str, ...] = ()
    login_at: datetime | None = None


def _agent_lines(events: Iterable[AgentEvent], name: _Names, seq: Iterator[int]) -> Iterator[Line]:
    members: dict[str, _Member] = {}
    for e in events:
        m = members.setdefault(e.agent, _Member())
        who = name(e.agent)
        interface = _field(agent_endpoint(e.agent))
        was_in, now_in = m.state != "logged_out", e.state != "logged_out"
        was_paused, now_paused = m.state == "paused", e.state == "paused"
        queues = tuple(sorted({_field(q) for q in e.queues}))
        reason = _field(e.reason) if now_paused else ""

        def line(queue: str, event: str, *data: str, _at: datetime = e.at, _who: str = who) -> Line:
            return Line(_at, 0, next(seq), NONE, queue, _who, event, data)

        if now_in and not was_in:
            m.login_at = e.at
            yield line(NONE, "AGENTLOGIN", interface)
            for q in queues:
                yield line(q, "ADDMEMBER", "PAUSED" if now_paused else "")
        elif was_in and not now_in:
            for q in m.queues:
                yield line(q, "REMOVEMEMBER", "")
            logged_in = _seconds(m.login_at, e.at) if m.login_at is not None else 0
            yield line(NONE, "AGENTLOGOFF", interface, str(logged_in))
        elif now_in:
            for q in m.queues:
                if q not in queues:
                    yield line(q, "REMOVEMEMBER", "")
            for q in queues:
                if q not in m.queues:
                    yield line(q, "ADDMEMBER", "PAUSED" if now_paused else "")
        if now_paused and (not was_paused or reason != m.reason or not was_in):
            yield line(NONE, "PAUSEALL", reason)
            for q in queues:
                yield line(q, "PAUSE", reason)
        elif was_paused and now_in and not now_paused:
            yield line(NONE, "UNPAUSEALL", "")
            for q in queues:
                yield line(q, "UNPAUSE", "")
        m.state, m.reason, m.queues = e.state, reason, queues if now_in else ()
        if not now_in:
            m.login_at = None


def export(calls: Iterable[QueueCall], events: Iterable[AgentEvent], *, since: datetime, until: datetime,
           agent_style: AgentStyle = "agent") -> list[str]:
    """The queue_log lines of [since, until), in time order. `calls` should hold every queue call
    that may have a line then and those waiting ahead of them (for positions); `events` each
    agent's events in time order from a logout before `since` (to know its state and login time)."""
    name = _Names(agent_style)
    seq = iter(range(1 << 62))
    call_list = list(calls)
    pos = positions(call_list)
    lines: list[Line] = []
    for c in call_list:
        lines.extend(_call_lines(c, pos[c.call_id], name, seq))
    lines.extend(_agent_lines(sorted(events, key=lambda e: e.at), name, seq))
    return [str(x) for x in sorted(lines) if since <= x.at < until]


def count_by_event(lines: Iterable[str]) -> Mapping[str, int]:
    """How many lines of each event (for a summary on stderr)."""
    out: dict[str, int] = {}
    for text in lines:
        parts = text.split("|")
        if len(parts) >= 5:
            out[parts[4]] = out.get(parts[4], 0) + 1
    return out
