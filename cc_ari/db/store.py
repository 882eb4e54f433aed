"""The one module that writes calls, legs and agent events to PostgreSQL.

Call handling never waits for the database: `submit()` appends the write to an on-disk
journal and a memory queue and returns. A writer task drains the queue in order, a batch per
transaction, with idempotent upserts (a replayed write never duplicates a row). When the
database is down the writer retries with backoff and nothing is dropped; when the process
restarts, the journal is replayed first. The journal is truncated once everything in it is
committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import asyncpg
import structlog

log = structlog.get_logger("cc_ari.db")

Mode = Literal["merge", "fill"]

# Whitelisted columns per table; SQL is built only from these names, values are always $n.
CALL_COLUMNS = ("direction", "caller", "dnis", "queue", "agent", "ivr_path", "started_at", "queued_at",
                "answered_at", "ended_at", "outcome", "recording_path", "handled_by")
LEG_COLUMNS = ("call_id", "role", "endpoint", "channel_name", "started_at", "answered_at", "ended_at",
               "hangup_cause")
TIME_COLUMNS = frozenset({"started_at", "queued_at", "answered_at", "ended_at", "at"})


@dataclass(frozen=True, slots=True)
class Write:
    kind: Literal["call", "leg", "agent_event", "agent_state"]
    key: str  # call_id / leg_id / event key / agent name
    values: Mapping[str, Any]
    mode: Mode = "merge"

    def to_json(self) -> str:
        vals = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.values.items()}
        return json.dumps({"kind": self.kind, "key": self.key, "values": vals, "mode": self.mode})

    @classmethod
    def from_json(cls, line: str) -> Write:
        d = json.loads(line)
        vals = {k: (datetime.fromisoformat(v) if k in TIME_COLUMNS and isinstance(v, str) else v)
                for k, v in d["values"].items()}
        return cls(d["kind"], d["key"], vals, d.get("mode", "merge"))


def _upsert_sql(table: str, key: str, allowed: Sequence[str], values: Mapping[str, Any],
                mode: Mode) -> tuple[str, list[Any]]:
    cols = [c for c in allowed if c in values]
    unknown = set(values) - set(allowed)
    if unknown:
        raise ValueError(f"unknown columns for {table}: {sorted(unknown)}")
    names = [key, *cols]
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    if mode == "merge":
        sets = [f"{c} = COALESCE(EXCLUDED.{c}, t.{c})" for c in cols]
    else:
        sets = [f"{c} = COALESCE(t.{c}, EXCLUDED.{c})" for c in cols]
    sets.append("updated_at = now()")
    sql = (f"INSERT INTO {table} AS t ({', '.join(names)}) VALUES ({params}) "
           f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)}")
    return sql, [values[c] for c in cols]


AGENT_EVENT_SQL = """
INSERT INTO cc.agent_events (event_key, agent, state, reason, queues, call_id, at)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (event_key) DO NOTHING
"""
AGENT_STATE_SQL = """
INSERT INTO cc.agents AS t (agent, state, queues, skills, pause_reason) VALUES ($1, $2, $3, $4::jsonb, $5)
ON CONFLICT (agent) DO UPDATE SET state = EXCLUDED.state, queues = EXCLUDED.queues,
    skills = EXCLUDED.skills, pause_reason = EXCLUDED.pause_reason, updated_at = now()
"""
# asyncpg's client-side "this value does not fit the column" (a subclass of InterfaceError).
CLIENT_DATA_ERRORS = (asyncpg.exceptions._base.DataError,)
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                     asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)

LOAD_AGENTS_SQL = "SELECT agent, state, queues, skills::text AS skills, pause_reason FROM cc.agents"
FETCH_CALL_SQL = """
SELECT queue, queued_at, answered_at, ivr_path, recording_path, handled_by, agent, outcome, ended_at
FROM cc.calls WHERE call_id = $1
"""


class CallStore:
    def __init__(self, dsn: str, journal: Path, *, batch: int = 200, timeout: float = 10.0) -> None:
        self._dsn = dsn
        self._journal_path = journal
        self._batch = batch
        self._timeout = timeout
        self._pending: deque[Write] = deque()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._pool: asyncpg.Pool | None = None
        self._journal: Any = None
        self.healthy = True  # until a write fails

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        self._journal_path.parent.mkdir(parents=True, exist_ok=True)
        if self._journal_path.exists():
            replay = []
            for n, line in enumerate(self._journal_path.read_text(errors="replace").splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    replay.append(Write.from_json(line))
                except (ValueError, KeyError, TypeError):  # a torn last line (crash mid-write)
                    log.error("journal_line_unreadable", line=n)
            if replay:
                log.info("journal_replay", writes=len(replay))
                self._pending.extend(replay)
                self._idle.clear()
                self._wake.set()
        self._journal = open(self._journal_path, "a")  # noqa: SIM115, ASYNC230 - once at start; closed in close()
        os.chmod(self._journal_path, 0o600)

    async def _ensure_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=4, timeout=self._timeout,
                                                   command_timeout=self._timeout)
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    # --- writes ---------------------------------------------------------------------------
    def submit(self, write: Write) -> None:
        """Queue a write. Never blocks, never raises for database trouble."""
        if self._journal is not None:
            try:
                self._journal.write(write.to_json() + "\n")
                self._journal.flush()
            except OSError as exc:  # disk full: keep it in memory, say so loudly
                log.error("journal_write_failed", error=repr(exc))
        self._pending.append(write)
        self._idle.clear()
        self._wake.set()

    def call(self, call_id: str, mode: Mode = "merge", **values: Any) -> None:
        self.submit(Write("call", call_id, values, mode))

    def leg(self, leg_id: str, mode: Mode = "merge", **values: Any) -> None:
        self.submit(Write("leg", leg_id, values, mode))

    def agent_event(self, key: str, **values: Any) -> None:
        self.submit(Write("agent_event", key, values))

    def agent_state(self, agent: str, **values: Any) -> None:
        self.submit(Write("agent_state", agent, values))

    async def flushed(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted write is committed (tests, shutdown)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    async def run(self) -> None:
        backoff = 0.2
        self._wake.set()  # a (re)started writer first drains what is already pending
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = list(self._pending)[: self._batch]
                try:
                    try:
                        await self._write(batch)
                    except CLIENT_DATA_ERRORS:
                        batch = await self._write_one_by_one(batch)
                except asyncio.CancelledError:
                    raise
                except CONNECTION_ERRORS as exc:
                    if self.healthy:
                        log.error("db_write_failed", error=repr(exc), pending=len(self._pending))
                    self.healthy = False
                    await self._reset_pool()
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                except (asyncpg.PostgresError, ValueError):
                    # A write the database refuses (a bug, not an outage): find it, log it,
                    # keep the others. Never loop forever on it.
                    try:
                        batch = await self._write_one_by_one(batch)
                    except CONNECTION_ERRORS:
                        self.healthy = False
                        await self._reset_pool()
                        await asyncio.sleep(backoff)
                        continue
                if not self.healthy:
                    log.info("db_write_recovered")
                self.healthy = True
                backoff = 0.2
                for _ in batch:
                    self._pending.popleft()
            self._compact()
            self._idle.set()

    async def _write_one_by_one(self, batch: list[Write]) -> list[Write]:
        for w in batch:
            try:
                await self._write([w])
            except CLIENT_DATA_ERRORS as exc:
                log.error("db_write_rejected", kind=w.kind, key=w.key, error=repr(exc))
            except (asyncpg.PostgresError, ValueError) as exc:
                if isinstance(exc, CONNECTION_ERRORS):
                    raise
                log.error("db_write_rejected", kind=w.kind, key=w.key, error=repr(exc))
        return batch

    async def _reset_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                pool.terminate()

    def _compact(self) -> None:
        if not self._pending and self._journal is not None:
            self._journal.truncate(0)
            self._journal.seek(0)

    async def _write(self, batch: list[Write]) -> None:
        pool = await self._ensure_pool()
        async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
            for w in batch:
                if w.kind == "call":
                    sql, args = _upsert_sql("cc.calls", "call_id", CALL_COLUMNS, w.values, w.mode)
                    await conn.execute(sql, w.key, *args)
                elif w.kind == "leg":
                    sql, args = _upsert_sql("cc.legs", "leg_id", LEG_COLUMNS, w.values, w.mode)
                    await conn.execute(sql, w.key, *args)
                elif w.kind == "agent_event":
                    v = w.values
                    await conn.execute(AGENT_EVENT_SQL, w.key, v["agent"], v["state"], v.get("reason"),
                                       list(v.get("queues", ())), v.get("call_id"), v["at"])
                elif w.kind == "agent_state":
                    v = w.values
                    await conn.execute(AGENT_STATE_SQL, w.key, v["state"], list(v.get("queues", ())),
                                       json.dumps(v.get("skills", {})), v.get("pause_reason"))

    def pending_agent_states(self) -> dict[str, Mapping[str, Any]]:
        """Agent states written but not yet committed (e.g. replayed from the journal)."""
        return {w.key: w.values for w in self._pending if w.kind == "agent_state"}

    # --- reads ----------------------------------------------------------------------------
    async def load_agents(self) -> list[Mapping[str, Any]]:
        pool = await self._ensure_pool()
        rows = await pool.fetch(LOAD_AGENTS_SQL, timeout=self._timeout)
        return [dict(r) for r in rows]

    async def fetch_call(self, call_id: str) -> dict[str, Any] | None:
        """What the database knows of a call (adoption after a restart), or None."""
        pool = await self._ensure_pool()
        row = await pool.fetchrow(FETCH_CALL_SQL, call_id, timeout=self._timeout)
        return dict(row) if row is not None else None

    async def monitor(self, *, interval: float = 1.0, timeout: float = 1.0) -> None:
        """Keep `healthy` true to what PostgreSQL answers now (not to the last write)."""
        while True:
            try:
                pool = await self._ensure_pool()
                await pool.fetchval("SELECT 1", timeout=timeout)
                ok = True
            except asyncio.CancelledError:
                raise
            except Exception:
                ok = False
            if ok != self.healthy:
                log.warning("db_health", healthy=ok)
            self.healthy = ok
            await asyncio.sleep(interval)

    async def fetch(self, sql: str, *args: Any) -> list[Mapping[str, Any]]:
        pool = await self._ensure_pool()
        return [dict(r) for r in await pool.fetch(sql, *args, timeout=self._timeout)]

    async def execute(self, sql: str, *args: Any) -> str:
        pool = await self._ensure_pool()
        return str(await pool.execute(sql, *args, timeout=self._timeout))
