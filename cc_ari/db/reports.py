"""Reads of the interval KPI views (sql/005_operations.sql, docs/kpi.md) for the operations pages,
the per-queue report settings written at start, and the rows a queue_log export is made of.

Every function takes the service's asyncpg pool (`await store.pool()`, as CampaignStore does), a
`CallStore` itself, or a single connection: anything with asyncpg's `fetch` / `executemany`.
Parameterised SQL only. Times go out as Unix epoch seconds (float), as on the wire
(docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cc_ari.db.store import CallStore
from cc_ari.fallback.plan import member_of
from cc_ari.reporting.queue_log import AgentEvent, AgentLeg, QueueCall

TIMEOUT = 30.0  # seconds, every statement

QUEUE_INTERVAL_KEYS = ("queue", "interval_start", "offered", "answered", "abandoned", "short_abandoned",
                       "service_level", "asa_seconds", "aht_seconds", "longest_wait_seconds")
TODAY_KEYS = ("offered", "answered", "abandoned", "short_abandoned", "service_level", "asa_seconds",
              "aht_seconds", "abandon_rate", "longest_wait_seconds")
AGENT_INTERVAL_KEYS = ("agent", "interval_start", "logged_in_seconds", "ready_seconds", "ringing_seconds",
                       "talk_seconds", "wrapup_seconds", "pause_seconds", "occupancy", "calls")

SYNC_QUEUE_SETTINGS = """
INSERT INTO cc.queue_settings (queue, service_level_seconds, short_abandon_seconds) VALUES ($1, $2, $3)
ON CONFLICT (queue) DO UPDATE SET service_level_seconds = EXCLUDED.service_level_seconds,
    short_abandon_seconds = EXCLUDED.short_abandon_seconds
WHERE (cc.queue_settings.service_level_seconds, cc.queue_settings.short_abandon_seconds)
    IS DISTINCT FROM (EXCLUDED.service_level_seconds, EXCLUDED.short_abandon_seconds)
"""

_QUEUE_COLUMNS = """
SELECT queue, extract(epoch FROM interval_start)::float8 AS interval_start, offered, answered, abandoned,
       short_abandoned, service_level, asa_seconds::float8 AS asa_seconds, aht_seconds::float8 AS aht_seconds,
       longest_wait_seconds::float8 AS longest_wait_seconds
"""
_QUEUE_WHERE = "WHERE interval_start >= $1 AND interval_start < $2 ORDER BY interval_start, queue"
QUEUE_INTERVALS = {
    15: f"{_QUEUE_COLUMNS} FROM report.queue_intervals {_QUEUE_WHERE}",
    30: f"{_QUEUE_COLUMNS} FROM report.queue_intervals_30m {_QUEUE_WHERE}",
}

# A day's figures per queue from the 15-minute sums (never averages of averages).
QUEUE_TOTALS = """
SELECT queue, offered, answered, abandoned, short_abandoned,
       CASE WHEN sl_base > 0 THEN answered_within_sl::float8 / sl_base END AS service_level,
       CASE WHEN answered > 0 THEN (wait_seconds_answered / answered)::float8 END AS asa_seconds,
       CASE WHEN handled > 0 THEN (handle_seconds / handled)::float8 END AS aht_seconds,
       CASE WHEN sl_base > 0 THEN (abandoned - short_abandoned)::float8 / sl_base END AS abandon_rate,
       longest_wait_seconds::float8 AS longest_wait_seconds
FROM (
    SELECT queue, sum(offered)::int AS offered, sum(answered)::int AS answered, sum(abandoned)::int AS abandoned,
           sum(short_abandoned)::int AS short_abandoned, sum(answered_within_sl)::int AS answered_within_sl,
           sum(sl_base)::int AS sl_base, sum(wait_seconds_answered) AS wait_seconds_answered,
           sum(handled)::int AS handled, sum(handle_seconds) AS handle_seconds,
           max(longest_wait_seconds) AS longest_wait_seconds
    FROM report.queue_intervals
    WHERE interval_start >= $1 AND interval_start < $2
    GROUP BY queue
) t
ORDER BY queue
"""

_AGENT_COLUMNS = """
SELECT agent, extract(epoch FROM interval_start)::float8 AS interval_start,
       logged_in_seconds::float8 AS logged_in_seconds, ready_seconds::float8 AS ready_seconds,
       ringing_seconds::float8 AS ringing_seconds, talk_seconds::float8 AS talk_seconds,
       wrapup_seconds::float8 AS wrapup_seconds, pause_seconds::float8 AS pause_seconds, occupancy, calls
"""
_AGENT_WHERE = ("WHERE interval_start >= $1 AND interval_start < $2 AND ($3::text IS NULL OR agent = $3) "
                "ORDER BY interval_start, agent")
AGENT_INTERVALS = {
    15: f"{_AGENT_COLUMNS} FROM report.agent_intervals {_AGENT_WHERE}",
    30: f"{_AGENT_COLUMNS} FROM report.agent_intervals_30m {_AGENT_WHERE}",
}

# --- queue_log export -------------------------------------------------------------------------
# Calls are looked for from this long before the window (a call that entered the queue earlier
# still ends inside it; the callers ahead of one in line are counted for its positions).
EXPORT_LOOKBACK = timedelta(hours=24)
EXPORT_CALLS = """
SELECT c.call_id, c.queue, c.caller, c.queued_at, c.answered_at, c.ended_at, c.outcome, c.agent,
       (SELECT l.ended_at FROM cc.legs l WHERE l.leg_id = c.call_id) AS caller_ended_at
FROM cc.calls c
WHERE c.direction = 'inbound' AND c.queue IS NOT NULL AND c.queued_at IS NOT NULL
  AND c.started_at >= $1 AND c.started_at < $2
ORDER BY c.queued_at, c.call_id
"""
EXPORT_LEGS = """
SELECT call_id, leg_id, endpoint, started_at, answered_at, ended_at
FROM cc.legs WHERE call_id = ANY($1::text[]) AND role = 'agent' AND endpoint IS NOT NULL
ORDER BY started_at, leg_id
"""
# Per agent, its events from the last logout before the window (its state and login time when the
# window opens) to the window's end; loose index scan of agent_events_agent_at for the agents.
EXPORT_AGENT_EVENTS = """
WITH RECURSIVE agents (agent) AS (
    SELECT (SELECT min(e.agent) FROM cc.agent_events e)
    UNION ALL
    SELECT (SELECT min(e.agent) FROM cc.agent_events e WHERE e.agent > a.agent) FROM agents a WHERE a.agent IS NOT NULL
)
SELECT e.agent, e.state, e.reason, e.queues, e.at
FROM agents a
CROSS JOIN LATERAL (
    SELECT coalesce((SELECT max(p.at) FROM cc.agent_events p
                      WHERE p.agent = a.agent AND p.at < $1 AND p.state = 'logged_out'),
                    '-infinity'::timestamptz) AS since
) b
JOIN cc.agent_events e ON e.agent = a.agent AND e.at >= b.since AND e.at < $2
WHERE a.agent IS NOT NULL
ORDER BY e.at, e.id
"""


async def _pool(pool: Any) -> Any:
    return await pool.pool() if isinstance(pool, CallStore) else pool


def _zone(tz: tzinfo | str) -> tzinfo:
    if isinstance(tz, tzinfo):
        return tz
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {tz!r}") from exc


def day_bounds(day: date, tz: tzinfo | str) -> tuple[datetime, datetime]:
    """[local midnight, next local midnight) of `day` in `tz`, in UTC (23 or 25 hours on DST days)."""
    zone = _zone(tz)
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def _minutes(minutes: int) -> int:
    if minutes not in (15, 30):
        raise ValueError(f"minutes must be 15 or 30, got {minutes!r}")
    return minutes


def _plain(value: Any) -> Any:
    return float(value) if isinstance(value, Decimal) else value


def _row(row: Mapping[str, Any], keys: Sequence[str]) -> dict[str, Any]:
    return {k: _plain(row[k]) for k in keys}


async def sync_queue_settings(conn_or_pool: Any, settings: Iterable[tuple[str, int, int]]) -> None:
    """Upsert each (queue, service_level_seconds, short_abandon_seconds) into cc.queue_settings (the
    configured queues, at start). Queues no longer configured keep their last row: their history
    stays reported with the thresholds it had."""
    rows = [(str(q), int(sl), int(sa)) for q, sl, sa in settings]
    if not rows:
        return
    target = await _pool(conn_or_pool)
    await target.executemany(SYNC_QUEUE_SETTINGS, rows, timeout=TIMEOUT)


async def queue_intervals(pool: Any, day: date, minutes: int, tz: tzinfo | str) -> list[dict[str, Any]]:
    """The rows of the `intervals` message (docs/operations.md): per queue and 15- or 30-minute
    interval of the local `day`, intervals with at least one offered call, in time order."""
    sql = QUEUE_INTERVALS[_minutes(minutes)]
    start, end = day_bounds(day, tz)
    rows = await (await _pool(pool)).fetch(sql, start, end, timeout=TIMEOUT)
    return [_row(r, QUEUE_INTERVAL_KEYS) for r in rows]


def _empty_totals() -> dict[str, Any]:
    return {"offered": 0, "answered": 0, "abandoned": 0, "short_abandoned": 0, "service_level": None,
            "asa_seconds": None, "aht_seconds": None, "abandon_rate": None, "longest_wait_seconds": None}


async def queue_day(pool: Any, day: date, tz: tzinfo | str, queues: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """Per queue, the day's figures (the `today` object of the queue message): the 15-minute sums of
    the local `day`. Every queue of `queues` is there, zeros and nulls when it had no call."""
    start, end = day_bounds(day, tz)
    out = {q: _empty_totals() for q in queues}
    for r in await (await _pool(pool)).fetch(QUEUE_TOTALS, start, end, timeout=TIMEOUT):
        out[r["queue"]] = _row(r, TODAY_KEYS)
    return out


async def queue_today(pool: Any, tz: tzinfo | str, queues: Iterable[str] = ()) -> dict[str, dict[str, Any]]:
    """`queue_day` of today in `tz`."""
    zone = _zone(tz)
    return await queue_day(pool, datetime.now(zone).date(), zone, queues)


async def agent_intervals(pool: Any, day: date, minutes: int, tz: tzinfo | str,
                          agent: str | None = None) -> list[dict[str, Any]]:
    """Per agent (or only `agent`) and 15- or 30-minute interval of the local `day`: the agent's
    seconds in each state, occupancy and calls (docs/kpi.md); intervals the agent was logged in
    for some of, in time order."""
    sql = AGENT_INTERVALS[_minutes(minutes)]
    start, end = day_bounds(day, tz)
    rows = await (await _pool(pool)).fetch(sql, start, end, agent, timeout=TIMEOUT)
    return [_row(r, AGENT_INTERVAL_KEYS) for r in rows]


async def queue_log_rows(pool: Any, since: datetime, until: datetime) -> tuple[list[QueueCall], list[AgentEvent]]:
    """What `reporting.queue_log.export` needs for the lines of [since, until): the queue calls
    that may have a line then (entered at most EXPORT_LOOKBACK before `since`), each with its
    agent legs, and the agent events (from each agent's last logout before `since`)."""
    db = await _pool(pool)
    call_rows = await db.fetch(EXPORT_CALLS, since - EXPORT_LOOKBACK, until, timeout=TIMEOUT)
    legs: dict[str, list[AgentLeg]] = {}
    if call_rows:
        for r in await db.fetch(EXPORT_LEGS, [c["call_id"] for c in call_rows], timeout=TIMEOUT):
            legs.setdefault(r["call_id"], []).append(AgentLeg(
                leg_id=r["leg_id"], agent=member_of(r["endpoint"]), started_at=r["started_at"],
                answered_at=r["answered_at"], ended_at=r["ended_at"]))
    calls = [QueueCall(call_id=r["call_id"], queue=r["queue"], caller=r["caller"], queued_at=r["queued_at"],
                       answered_at=r["answered_at"], ended_at=r["ended_at"], outcome=r["outcome"], agent=r["agent"],
                       caller_ended_at=r["caller_ended_at"], legs=tuple(legs.get(r["call_id"], ())))
             for r in call_rows]
    events = [AgentEvent(agent=r["agent"], state=r["state"], reason=r["reason"], queues=tuple(r["queues"] or ()),
                         at=r["at"])
              for r in await db.fetch(EXPORT_AGENT_EVENTS, since, until, timeout=TIMEOUT)]
    return calls, events
