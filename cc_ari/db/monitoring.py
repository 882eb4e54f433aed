"""Supervision rows in PostgreSQL, through CallStore's journal (a database outage loses nothing).

Three kinds of write, registered with CallStore by `MONITORING_KINDS` (app.py):

* `monitoring` — one row per supervision session (`cc.monitoring`, key monitor_id): who, whom,
  the call, the mode (the one asked at start, then the latest), rung / answered / ended, why.
* `monitoring_segment` — one row per stretch of one mode (`cc.monitoring_segments`, key
  `<monitor_id>/<n>`): a session answered in listen, switched to whisper then barge has three.
  `report.monitoring` is these rows with the session's who/whom: supervisor, agent, call_id,
  mode, started_at ("from"), ended_at ("to"), monitor_id.
* `monitoring_close` — closes whatever a session left open (its row and its open segment) with a
  time and a reason, without knowing which segment was open: used for sessions found after a
  restart.

Every statement is an idempotent upsert or a "fill what is still empty" update, so a replayed
journal never duplicates or moves a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from types import MappingProxyType
from typing import Any

from cc_ari.db.store import CallStore, KindWriter, Write

MONITORING = "monitoring"
SEGMENT = "monitoring_segment"
CLOSE = "monitoring_close"

SESSION_COLUMNS = ("call_id", "supervisor", "agent", "mode", "started_at", "answered_at", "ended_at", "end_reason")
SEGMENT_COLUMNS = ("monitor_id", "segment", "mode", "started_at", "ended_at")

# Who, whom and when it began never change; the rest takes the latest known value.
_SESSION_SQL = f"""
INSERT INTO cc.monitoring AS t (monitor_id, {", ".join(SESSION_COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (monitor_id) DO UPDATE SET
    call_id = COALESCE(t.call_id, EXCLUDED.call_id),
    supervisor = COALESCE(t.supervisor, EXCLUDED.supervisor),
    agent = COALESCE(t.agent, EXCLUDED.agent),
    mode = COALESCE(EXCLUDED.mode, t.mode),
    started_at = COALESCE(t.started_at, EXCLUDED.started_at),
    answered_at = COALESCE(EXCLUDED.answered_at, t.answered_at),
    ended_at = COALESCE(EXCLUDED.ended_at, t.ended_at),
    end_reason = COALESCE(EXCLUDED.end_reason, t.end_reason),
    updated_at = now()
"""

_SEGMENT_SQL = f"""
INSERT INTO cc.monitoring_segments AS t (segment_id, {", ".join(SEGMENT_COLUMNS)})
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (segment_id) DO UPDATE SET
    mode = COALESCE(t.mode, EXCLUDED.mode),
    started_at = COALESCE(t.started_at, EXCLUDED.started_at),
    ended_at = COALESCE(EXCLUDED.ended_at, t.ended_at),
    updated_at = now()
"""

# Closes the open segment(s) and the session, keeping any end already written.
_CLOSE_SQL = """
WITH open_segments AS (
    UPDATE cc.monitoring_segments SET ended_at = $2, updated_at = now()
    WHERE monitor_id = $1 AND ended_at IS NULL
    RETURNING 1
)
UPDATE cc.monitoring SET ended_at = COALESCE(ended_at, $2), end_reason = COALESCE(end_reason, $3),
    updated_at = now()
WHERE monitor_id = $1
"""


def _args(w: Write, columns: Sequence[str]) -> list[Any]:
    unknown = set(w.values) - set(columns)
    if unknown:
        raise ValueError(f"unknown columns for {w.kind}: {sorted(unknown)}")
    return [w.key, *(w.values.get(c) for c in columns)]


def _session(w: Write) -> tuple[str, Sequence[Any]]:
    return _SESSION_SQL, _args(w, SESSION_COLUMNS)


def _segment(w: Write) -> tuple[str, Sequence[Any]]:
    return _SEGMENT_SQL, _args(w, SEGMENT_COLUMNS)


def _close(w: Write) -> tuple[str, Sequence[Any]]:
    return _CLOSE_SQL, [w.key, w.values["ended_at"], w.values["end_reason"]]


MONITORING_KINDS: Mapping[str, KindWriter] = MappingProxyType({
    MONITORING: _session,
    SEGMENT: _segment,
    CLOSE: _close,
})


class MonitorRecords:
    """The writes of the supervision service (never blocks, never raises for database trouble)."""

    def __init__(self, store: CallStore) -> None:
        self._store = store

    def session(self, monitor_id: str, *, call_id: str, supervisor: str, agent: str, mode: str,
                started_at: datetime, answered_at: datetime | None = None, ended_at: datetime | None = None,
                end_reason: str | None = None) -> None:
        # Every write carries the NOT NULL columns: an upsert's insertion is checked before its conflict.
        self._store.submit(Write(MONITORING, monitor_id, {
            "call_id": call_id, "supervisor": supervisor, "agent": agent, "mode": mode, "started_at": started_at,
            "answered_at": answered_at, "ended_at": ended_at, "end_reason": end_reason}))

    def segment(self, monitor_id: str, segment: int, *, mode: str, started_at: datetime,
                ended_at: datetime | None = None) -> None:
        self._store.submit(Write(SEGMENT, f"{monitor_id}/{segment}", {
            "monitor_id": monitor_id, "segment": segment, "mode": mode, "started_at": started_at,
            "ended_at": ended_at}))

    def close(self, monitor_id: str, *, ended_at: datetime, end_reason: str) -> None:
        self._store.submit(Write(CLOSE, monitor_id, {"ended_at": ended_at, "end_reason": end_reason}))
