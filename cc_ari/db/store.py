"""The one module that writes calls, legs and agent events to PostgreSQL.

Call handling never waits for the database, nor for the disk: `submit()` only appends the write
to memory. Two tasks take it from there, in order:

* the **journal** task appends what accumulated to the journal file and `fsync`s it, in a worker
  thread, one fsync per group (group commit). Only then is a write handed to the database writer:
  a write PostgreSQL has is always one the journal holds. At most `max_pending` durable writes
  are kept in memory; beyond that they live only in the journal and are read back from it as
  memory frees, so a long database outage costs disk, not memory. The journal task alone touches
  the file: it also truncates it once everything in it is committed (or drops a large committed
  prefix), so compaction never races an append.
* the **writer** (`run()`) sends them to PostgreSQL, a batch per transaction, with idempotent
  upserts (a replayed write never duplicates a row). When the database is down it retries with
  backoff and nothing is dropped. A write the database (or the code) can never accept, a
  *poison* record, goes to a dead-letter file next to the journal (JSON lines, 0600) with an
  error log line, and the others carry on.

At start the journal is replayed (a torn last line, from a crash mid-write, is set aside). What
each kind of write does is a small registry, `KINDS`: kind → the statement it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import asyncpg
import structlog

from cc_ari.db import queries

log = structlog.get_logger("cc_ari.db")

Mode = Literal["merge", "fill"]

# Whitelisted columns per table; SQL is built only from these names, values are always $n.
CALL_COLUMNS = ("direction", "caller", "dnis", "queue", "agent", "ivr_path", "started_at", "queued_at",
                "answered_at", "ended_at", "outcome", "recording_path", "handled_by", "campaign", "lead_id",
                "amd_result", "amd_seconds", "connect_seconds", "disposition")
LEG_COLUMNS = ("call_id", "role", "endpoint", "channel_name", "started_at", "answered_at", "ended_at",
               "hangup_cause")
SESSION_COLUMNS = ("agent", "started_at", "answered_at", "ended_at", "end_reason")
TIME_COLUMNS = frozenset({"started_at", "queued_at", "answered_at", "ended_at", "at", "next_attempt_at"})


@dataclass(frozen=True, slots=True)
class Write:
    kind: str  # a key of KINDS
    key: str  # call_id / leg_id / event key / agent name
    values: Mapping[str, Any]
    mode: Mode = "merge"

    def to_json(self) -> str:
        vals = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.values.items()}
        return json.dumps({"kind": self.kind, "key": self.key, "values": vals, "mode": self.mode})

    @classmethod
    def from_json(cls, line: str) -> Write:
        d = json.loads(line)
        if not (isinstance(d, dict) and isinstance(d.get("kind"), str) and isinstance(d.get("key"), str)
                and isinstance(d.get("values"), dict)):
            raise ValueError("not a journal record")
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


# --- the kinds of write: kind → the one statement (SQL, $n arguments) that applies it -------------
Statement = tuple[str, Sequence[Any]]
KindWriter = Callable[[Write], Statement]


def _call(w: Write) -> Statement:
    sql, args = _upsert_sql("cc.calls", "call_id", CALL_COLUMNS, w.values, w.mode)
    return sql, [w.key, *args]


def _leg(w: Write) -> Statement:
    sql, args = _upsert_sql("cc.legs", "leg_id", LEG_COLUMNS, w.values, w.mode)
    return sql, [w.key, *args]


def _agent_event(w: Write) -> Statement:
    v = w.values
    return queries.AGENT_EVENT, [w.key, v["agent"], v["state"], v.get("reason"), list(v.get("queues", ())),
                                 v.get("call_id"), v["at"], list(v.get("campaigns", ()))]


def _agent_state(w: Write) -> Statement:
    v = w.values
    return queries.AGENT_STATE, [w.key, v["state"], list(v.get("queues", ())), json.dumps(v.get("skills", {})),
                                 v.get("pause_reason"), list(v.get("campaigns", ()))]


def _agent_session(w: Write) -> Statement:
    sql, args = _upsert_sql("cc.agent_sessions", "leg_id", SESSION_COLUMNS, w.values, w.mode)
    return sql, [w.key, *args]


def _lead_outcome(w: Write) -> Statement:
    """A dial attempt's result on its lead, applied only while the lead is still being dialed by
    that call (key = the call id): a replay, or a late write after the lead moved on, does nothing."""
    v = w.values
    return queries.LEAD_OUTCOME, [v["campaign"], v["lead_id"], w.key, v["status"], v.get("next_attempt_at"),
                                  v["outcome"]]


# A new kind (agent_session, monitoring, ...) is a function like these and one line here.
# Statements run in this order (a lead's outcome after its call's row).
KIND_ORDER = {"call": 0, "leg": 1, "agent_event": 2, "agent_state": 3, "agent_session": 4, "lead_outcome": 5}
# Writes to one row that may be folded into one statement (`coalesce`): "call" and "leg" are
# upserts whose columns combine; "agent_state" replaces the whole row (the last one wins).
COALESCED = frozenset({"call", "leg", "agent_state", "agent_session"})


def coalesce(batch: Iterable[_Durable]) -> list[tuple[list[_Durable], Write]]:
    """Fold the writes of a batch that touch the same row (kind, key, mode) into one, at the
    place of the first: a call's start, queueing and routing written in the same moment cost one
    statement, not three. A merge-mode upsert keeps each column's last non-NULL value (what
    applying them in turn does: COALESCE(EXCLUDED.c, t.c)); a keep-mode one its first non-NULL
    value. A write of another mode to the same row closes the fold, so order is never changed
    between writes whose effect depends on it."""
    out: list[tuple[list[_Durable], Write]] = []
    open_at: dict[tuple[str, str], int] = {}
    for e in batch:
        w = e.write
        row = (w.kind, w.key)
        i = open_at.get(row) if w.kind in COALESCED else None
        if i is None or out[i][1].mode != w.mode:
            if w.kind in COALESCED:
                open_at[row] = len(out)
            out.append(([e], w))
            continue
        entries, prev = out[i]
        entries.append(e)
        if w.kind == "agent_state":
            values: Mapping[str, Any] = w.values
        elif w.mode == "merge":
            values = {**prev.values, **{k: v for k, v in w.values.items() if v is not None or k not in prev.values}}
        else:
            values = {**w.values, **{k: v for k, v in prev.values.items() if v is not None or k not in w.values}}
        out[i] = (entries, Write(w.kind, w.key, values, w.mode))
    return out
KINDS: Mapping[str, KindWriter] = MappingProxyType({
    "call": _call,
    "leg": _leg,
    "agent_event": _agent_event,
    "agent_state": _agent_state,
    "agent_session": _agent_session,
    "lead_outcome": _lead_outcome,
})

# asyncpg's client-side "this value does not fit the column" (a subclass of InterfaceError).
CLIENT_DATA_ERRORS = (asyncpg.exceptions._base.DataError,)
CONNECTION_ERRORS = (OSError, TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError,
                     asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError)
# Server errors that mean "not now" (shutdown, failover to a standby, contention, missing grants or
# schema), not "never this write": retried like an outage, never dead-lettered.
TRANSIENT_ERRORS = (asyncpg.exceptions.OperatorInterventionError, asyncpg.exceptions.TransactionRollbackError,
                    asyncpg.exceptions.InsufficientResourcesError, asyncpg.exceptions.ReadOnlySQLTransactionError,
                    asyncpg.exceptions.InvalidAuthorizationSpecificationError,
                    asyncpg.exceptions.InvalidCatalogNameError, asyncpg.exceptions.InsufficientPrivilegeError,
                    asyncpg.exceptions.UndefinedTableError)


def is_outage(exc: BaseException) -> bool:
    """True when the database cannot take writes now (retry); False when it refuses this one."""
    if isinstance(exc, CLIENT_DATA_ERRORS):
        return False
    return isinstance(exc, CONNECTION_ERRORS + TRANSIENT_ERRORS)


@dataclass(slots=True)
class _Durable:
    """A write whose journal line is on disk, waiting for the database."""
    write: Write
    end: int  # logical journal offset just after its line


def _json_default(o: object) -> str:
    return o.isoformat() if isinstance(o, datetime) else repr(o)


class CallStore:
    def __init__(self, dsn: str, journal: Path, *, batch: int = 200, timeout: float = 10.0,
                 max_pending: int = 50_000, compact_bytes: int = 16 << 20,
                 kinds: Mapping[str, KindWriter] = KINDS, dead_letter: Path | None = None,
                 create_pool: Callable[[], Awaitable[Any]] | None = None, linger: float = 0.02,
                 truncate_bytes: int = 256 << 10) -> None:
        self._dsn = dsn
        self._linger = linger  # a group waits this long for company: fewer fsyncs, bigger batches
        self._truncate_bytes = truncate_bytes  # a committed journal is emptied past this size
        self._journal_path = journal
        self._dead_letter_path = dead_letter or journal.parent / "dead-letter.jsonl"
        self._batch = batch
        self._timeout = timeout
        self._max_pending = max(1, max_pending)
        self._compact_bytes = compact_bytes
        self._kinds = kinds
        self._create_pool = create_pool or self._default_pool
        # submitted → _buffer → (journal task: write + fsync) → _pending or the spill → (writer) → PostgreSQL
        self._buffer: list[tuple[Write, bytes]] = []  # submitted, not yet in the journal file
        self._inflight = 0  # writes of the group being written + fsynced right now
        self._pending: deque[_Durable] = deque()  # durable, in memory, in order, for the writer
        self._spilled = 0  # durable lines only in the journal file (memory was full)
        self._spill_at = 0  # logical offset of the first spilled line
        # Journal offsets are logical: they keep growing across truncations; file offset = logical - base.
        self._size = 0  # logical end of the journal
        self._base = 0  # logical offset of the file's first byte
        self._committed = 0  # everything before this logical offset is committed (or dead-lettered)
        self._start_size = 0
        self._fd: int | None = None
        self._journal_task: asyncio.Task[None] | None = None
        self._journal_wake = asyncio.Event()
        self._writer_wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._db_up = asyncio.Event()
        self._stopping = False
        self._closed = False
        self._pool: Any = None
        self._pool_lock = asyncio.Lock()
        self._replayed_agent_states: dict[str, Mapping[str, Any]] = {}
        self._probe_ok = True  # what the monitor() last saw (true until it runs)
        self._write_ok = True  # whether the last write attempt reached the database

    # --- state ----------------------------------------------------------------------------
    @property
    def healthy(self) -> bool:
        """The database answers (monitor's probe) and the writer's last attempt went through."""
        return self._probe_ok and self._write_ok

    @property
    def backlog(self) -> int:
        """Writes submitted and not yet committed (memory, being journaled, and spilled to disk)."""
        return len(self._buffer) + self._inflight + len(self._pending) + self._spilled

    def _done(self) -> bool:
        return not (self._buffer or self._inflight or self._pending or self._spilled)

    def _set_idle_if_done(self) -> None:
        if self._done():
            self._idle.set()

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Open the journal, replay it (its first `max_pending` writes into memory, the rest read
        back later), and start the journal task."""
        torn, head, spilled, agent_states = await asyncio.to_thread(self._open_journal)
        if torn:
            log.error("journal_line_unreadable", line="last", note="torn by a crash mid-write; set aside")
            await self._dead_letter([(torn, "torn last line")])
        entries, dead = self._parse_lines(head)
        if dead:
            await self._dead_letter(dead)
        self._replayed_agent_states = agent_states
        self._start_size = self._size
        self._pending.extend(entries)
        self._spill_at = head[-1][1] if head else 0
        self._spilled = spilled
        if entries or spilled:
            log.info("journal_replay", writes=len(entries) + spilled, in_memory=len(entries))
            self._idle.clear()
            self._writer_wake.set()
        self._journal_task = asyncio.create_task(self._journal_loop(), name="db_journal")
        self._journal_wake.set()

    async def close(self) -> None:
        """Write what is still in memory to the journal, stop the journal task, close the pool.
        A write submitted afterwards goes straight to the journal file (see submit)."""
        self._stopping = True
        task, self._journal_task = self._journal_task, None
        if task is not None:
            self._journal_wake.set()
            try:
                await asyncio.shield(task)  # the last group is written even if close() is cancelled
            except Exception:
                log.exception("journal_task_failed")
        if self._buffer:  # submitted while stopping, or the journal could not take them
            leftover, self._buffer = self._buffer, []
            try:
                self._append_sync(b"".join(line for _, line in leftover))
            except OSError as exc:
                log.error("journal_write_failed", error=repr(exc), lost=len(leftover))
        self._closed = True
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- writes ---------------------------------------------------------------------------
    def submit(self, write: Write) -> None:
        """Queue a write: appended to memory only, never blocks, never raises for database or disk
        trouble. An unknown kind is a programming error: ValueError."""
        if write.kind not in self._kinds:
            raise ValueError(f"unknown write kind {write.kind!r} (known: {', '.join(sorted(self._kinds))})")
        try:
            line = (write.to_json() + "\n").encode()
        except (TypeError, ValueError) as exc:  # a value JSON cannot hold: a bug; keep it for a human
            log.error("db_write_dead_lettered", kind=write.kind, key=write.key, error=repr(exc))
            try:
                self._dead_letter_sync([self._dead_record(write, repr(exc))])
            except OSError as exc2:
                log.error("dead_letter_write_failed", error=repr(exc2), kind=write.kind, key=write.key)
            return
        if self._closed:  # a call finishing during shutdown: straight to the file, replayed at next start
            log.warning("db_write_after_close", kind=write.kind, key=write.key)
            try:
                self._append_sync(line)
            except OSError as exc:
                log.error("journal_write_failed", error=repr(exc), kind=write.kind, key=write.key)
            return
        self._buffer.append((write, line))
        self._idle.clear()
        self._journal_wake.set()

    def call(self, call_id: str, mode: Mode = "merge", **values: Any) -> None:
        self.submit(Write("call", call_id, values, mode))

    def leg(self, leg_id: str, mode: Mode = "merge", **values: Any) -> None:
        self.submit(Write("leg", leg_id, values, mode))

    def agent_event(self, key: str, **values: Any) -> None:
        self.submit(Write("agent_event", key, values))

    def agent_state(self, agent: str, **values: Any) -> None:
        self.submit(Write("agent_state", agent, values))

    def agent_session(self, leg_id: str, **values: Any) -> None:
        self.submit(Write("agent_session", leg_id, values))

    def lead_outcome(self, call_id: str, **values: Any) -> None:
        self.submit(Write("lead_outcome", call_id, values))

    async def flushed(self, timeout: float = 10.0) -> bool:
        """Wait until every submitted write is committed or dead-lettered (tests, shutdown)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    def pending_agent_states(self) -> dict[str, Mapping[str, Any]]:
        """Agent states in the journal at start() and submitted since, not yet known committed
        (newest per agent); for restoring agents at start, before the writer runs."""
        states = dict(self._replayed_agent_states)
        for e in self._pending:
            if e.end > self._start_size and e.write.kind == "agent_state":
                states[e.write.key] = e.write.values
        for w, _ in self._buffer:
            if w.kind == "agent_state":
                states[w.key] = w.values
        return states

    # --- the database writer --------------------------------------------------------------
    async def run(self) -> None:
        """Send durable writes to PostgreSQL in order, a batch per transaction, until cancelled."""
        backoff = 0.2
        while True:
            if not self._pending:
                self._set_idle_if_done()
                self._writer_wake.clear()
                await self._writer_wake.wait()
                continue
            batch = list(itertools.islice(self._pending, self._batch))  # O(batch), not O(pending)
            try:
                await self._commit(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # _commit raises only outages
                if self._write_ok:
                    log.error("db_write_failed", error=repr(exc), backlog=self.backlog)
                self._write_ok = False
                await self._reset_pool()
                await self._sleep_unless_db_back(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            if not self._write_ok:
                log.info("db_write_recovered", backlog=self.backlog)
            self._write_ok = True
            backoff = 0.2
            for _ in batch:
                self._pending.popleft()
            self._committed = batch[-1].end
            self._journal_wake.set()  # room for spilled writes; maybe time to truncate
            self._set_idle_if_done()

    def _prepare(self, batch: Iterable[_Durable]) -> tuple[list[tuple[list[_Durable], Statement]],
                                                           list[tuple[Write | bytes, str]]]:
        """The batch as statements, each with the writes it applies: writes to the same row
        coalesced (`coalesce`), in table order (calls before the legs that reference them)."""
        good: list[tuple[list[_Durable], Statement]] = []
        dead: list[tuple[Write | bytes, str]] = []
        for entries, write in coalesce(batch):
            writer = self._kinds.get(write.kind)
            if writer is None:  # e.g. replayed from a journal written by a newer version
                dead.extend((e.write, f"unknown write kind {write.kind!r}") for e in entries)
                continue
            try:
                good.append((entries, writer(write)))
            except Exception as exc:  # a missing or malformed value: this write can never be applied
                dead.extend((e.write, repr(exc)) for e in entries)
        good.sort(key=lambda g: KIND_ORDER.get(g[0][0].write.kind, len(KIND_ORDER)))  # stable
        return good, dead

    async def _commit(self, batch: list[_Durable]) -> None:
        """Commit `batch` in one transaction; a write that can never be committed is dead-lettered.
        Raises only when the database is out (`is_outage`): then nothing is dead-lettered."""
        good, dead = self._prepare(batch)
        try:
            await self._execute([stmt for _, stmt in good])
        except Exception as exc:
            if is_outage(exc):
                raise
            # The database refuses something in the batch: one by one, to find it and keep the rest.
            for entries, stmt in good:
                try:
                    await self._execute([stmt])
                except Exception as exc1:
                    if is_outage(exc1):
                        raise
                    dead.extend((e.write, repr(exc1)) for e in entries)
        if dead:
            await self._dead_letter(dead)

    async def _execute(self, statements: Sequence[Statement]) -> None:
        """One transaction; a run of statements with the same SQL goes as one `executemany`."""
        if not statements:
            return
        pool = await self._ensure_pool()
        async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
            for sql, run in itertools.groupby(statements, key=lambda st: st[0]):
                args = [a for _, a in run]
                if len(args) == 1:
                    await conn.execute(sql, *args[0])
                else:
                    await conn.executemany(sql, args)

    async def _sleep_unless_db_back(self, seconds: float) -> None:
        self._db_up.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._db_up.wait(), seconds)

    # --- the journal ----------------------------------------------------------------------
    async def _journal_loop(self) -> None:
        backoff = 0.05
        while True:
            if not self._stopping:
                await self._journal_wake.wait()
                if self._linger > 0 and self._buffer:
                    await asyncio.sleep(self._linger)
            self._journal_wake.clear()
            try:
                ok = await self._journal_step()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("journal_step_failed")
                ok = False
            if self._stopping and (not self._buffer or not ok):
                return
            if not ok:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._journal_wake.set()
            else:
                backoff = 0.05

    async def _journal_step(self) -> bool:
        ok = await self._write_group() if self._buffer else True
        while self._spilled and len(self._pending) < self._max_pending and not self._stopping:
            await self._read_back()
        await self._compact()
        return ok

    async def _write_group(self) -> bool:
        """Append and fsync everything submitted so far (one fsync), then hand it to the writer."""
        group, self._buffer = self._buffer, []
        self._inflight = len(group)
        data = b"".join(line for _, line in group)
        start = self._size
        try:
            await asyncio.to_thread(self._append, data, start - self._base)
        except OSError as exc:
            self._inflight = 0
            if self._spilled or self._stopping:  # order must be kept: retry (close() tries once more)
                self._buffer[:0] = group
                log.error("journal_write_failed", error=repr(exc), writes=len(group), retry=True)
                return False
            # Disk full or broken: the database may still take them. Not durable; said loudly.
            log.error("journal_write_failed", error=repr(exc), writes=len(group), note="kept in memory only")
            self._pending.extend(_Durable(w, start) for w, _ in group)
            self._writer_wake.set()
            return True
        self._inflight = 0
        self._size = start + len(data)
        room = 0 if self._spilled else self._max_pending - len(self._pending)
        pos = start
        handed = False
        for w, line in group:
            if room > 0:
                pos += len(line)
                self._pending.append(_Durable(w, pos))
                room -= 1
                handed = True
            else:
                if not self._spilled:
                    self._spill_at = pos
                    log.warning("db_backlog_spilled_to_journal", in_memory=len(self._pending))
                pos += len(line)
                self._spilled += 1
        if handed:
            self._writer_wake.set()
        return True

    async def _read_back(self) -> None:
        """Move spilled writes from the journal file back into memory, as much as fits."""
        want = self._max_pending - len(self._pending)
        lines = await asyncio.to_thread(self._read_lines, self._spill_at, self._size, self._base, want)
        if not lines:  # the file is shorter than we think: nothing more to read
            log.error("journal_spill_missing", spilled=self._spilled)
            self._spilled = 0
            self._set_idle_if_done()
            return
        self._spilled -= len(lines)
        self._spill_at = lines[-1][1]
        entries, dead = self._parse_lines(lines)
        self._pending.extend(entries)
        if entries:
            self._writer_wake.set()
        if dead:
            await self._dead_letter(dead)
        self._set_idle_if_done()

    async def _compact(self) -> None:
        """Truncate the journal once all of it is committed; drop a large committed prefix otherwise."""
        if self._size == self._base:
            return
        # All committed: emptied, once it holds enough to be worth a system call (or at stop).
        # Not fsynced: a lost truncation only replays committed writes, which are idempotent.
        if self._done() and (self._size - self._base >= self._truncate_bytes or self._stopping):
            await asyncio.to_thread(self._truncate)
            self._base = self._size
            self._replayed_agent_states = {}
            return
        dead_bytes = self._committed - self._base
        if dead_bytes >= self._compact_bytes and dead_bytes * 2 >= self._size - self._base:
            cut = self._committed
            self._fd = await asyncio.to_thread(self._rewrite_from, cut - self._base, self._size - self._base)
            self._base = cut

    def _parse_lines(self, lines: Iterable[tuple[bytes, int]]) -> tuple[list[_Durable],
                                                                       list[tuple[Write | bytes, str]]]:
        entries: list[_Durable] = []
        dead: list[tuple[Write | bytes, str]] = []
        for raw, end in lines:
            if not raw.strip():
                continue
            try:
                entries.append(_Durable(Write.from_json(raw.decode()), end))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                dead.append((raw, f"unreadable journal line: {exc!r}"))
        return entries, dead

    # --- file work (worker threads; only the journal task, start and close call these) -----
    def _open_journal(self) -> tuple[bytes, list[tuple[bytes, int]], int, dict[str, Mapping[str, Any]]]:
        self._journal_path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: should another process ever append too (an old instance still stopping), lines
        # interleave whole instead of overwriting each other.
        fd = os.open(self._journal_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)
        self._fd = fd
        size = os.fstat(fd).st_size
        torn = b""
        if size:
            cut = size
            while cut > 0:  # back to the last newline
                chunk = os.pread(fd, min(65536, cut), cut - min(65536, cut))
                i = chunk.rfind(b"\n")
                if i >= 0:
                    cut = cut - len(chunk) + i + 1
                    break
                cut -= len(chunk)
            if cut < size:
                torn = os.pread(fd, size - cut, cut)
                os.ftruncate(fd, cut)
                os.fsync(fd)
                size = cut
        self._base, self._size = 0, size
        lines = self._iter_lines(0, size, 0)
        head = list(itertools.islice(lines, self._max_pending))
        spilled = 0
        states: dict[str, Mapping[str, Any]] = {}
        for raw, _ in head:
            self._note_agent_state(raw, states)
        for raw, _ in lines:
            spilled += 1
            self._note_agent_state(raw, states)
        return torn, head, spilled, states

    @staticmethod
    def _note_agent_state(raw: bytes, states: dict[str, Mapping[str, Any]]) -> None:
        if b'"agent_state"' in raw:
            with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                w = Write.from_json(raw.decode())
                if w.kind == "agent_state":
                    states[w.key] = w.values

    def _iter_lines(self, start: int, stop: int, base: int) -> Iterator[tuple[bytes, int]]:
        """Complete lines of the journal between logical offsets: (line, logical end) pairs."""
        fd = self._fd
        assert fd is not None
        pos = start
        rest = b""
        while pos < stop:
            chunk = os.pread(fd, min(1 << 20, stop - pos), pos - base)
            if not chunk:
                return
            line_start = pos - len(rest)
            pos += len(chunk)
            data = rest + chunk
            i = 0
            while (j := data.find(b"\n", i)) >= 0:
                yield data[i:j], line_start + j + 1
                i = j + 1
            rest = data[i:]

    def _read_lines(self, start: int, stop: int, base: int, limit: int) -> list[tuple[bytes, int]]:
        return list(itertools.islice(self._iter_lines(start, stop, base), limit))

    def _append(self, data: bytes, offset: int) -> None:
        """Append `data` (the journal's file size is `offset`) and fsync it."""
        fd = self._fd
        assert fd is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            with contextlib.suppress(OSError):  # never leave a torn line for the next group to follow
                os.ftruncate(fd, offset)
            raise

    def _truncate(self) -> None:
        assert self._fd is not None
        os.ftruncate(self._fd, 0)

    def _rewrite_from(self, offset: int, end: int) -> int:
        """A new journal holding only [offset, end) of the old one, swapped in atomically."""
        old = self._fd
        assert old is not None
        tmp = self._journal_path.with_name(self._journal_path.name + ".compact")
        fd = os.open(tmp, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            pos = offset
            while pos < end:
                chunk = os.pread(old, min(1 << 20, end - pos), pos)
                if not chunk:
                    break
                os.write(fd, chunk)
                pos += len(chunk)
            os.fsync(fd)
            os.replace(tmp, self._journal_path)
        except BaseException:
            os.close(fd)
            raise
        dir_fd = os.open(self._journal_path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        os.close(old)
        log.info("journal_compacted", dropped_bytes=offset, kept_bytes=end - offset)
        return fd

    def _append_sync(self, data: bytes) -> None:
        self._journal_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- dead letters ---------------------------------------------------------------------
    def _dead_record(self, item: Write | bytes, error: str) -> dict[str, Any]:
        record: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "error": error}
        if isinstance(item, Write):
            record.update(kind=item.kind, key=item.key,
                          write={"kind": item.kind, "key": item.key, "values": dict(item.values), "mode": item.mode})
        else:
            record["line"] = item.decode(errors="replace")
        return record

    async def _dead_letter(self, dead: Sequence[tuple[Write | bytes, str]]) -> None:
        records = []
        for item, error in dead:
            if isinstance(item, Write):
                log.error("db_write_dead_lettered", kind=item.kind, key=item.key, error=error,
                          file=str(self._dead_letter_path))
            else:
                log.error("db_write_dead_lettered", kind=None, key=None, error=error,
                          file=str(self._dead_letter_path))
            records.append(self._dead_record(item, error))
        try:
            await asyncio.to_thread(self._dead_letter_sync, records)
        except OSError as exc:
            log.error("dead_letter_write_failed", error=repr(exc), records=len(records))

    def _dead_letter_sync(self, records: Sequence[Mapping[str, Any]]) -> None:
        data = "".join(json.dumps(r, default=_json_default) + "\n" for r in records).encode()
        self._dead_letter_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._dead_letter_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- the pool and its health ----------------------------------------------------------
    async def _default_pool(self) -> Any:
        return await asyncpg.create_pool(self._dsn, min_size=1, max_size=4, timeout=self._timeout,
                                         command_timeout=self._timeout)

    async def pool(self) -> Any:
        """The connection pool, for the other stores of cc_ari/db/ (campaigns)."""
        return await self._ensure_pool()

    async def _ensure_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await self._create_pool()
        return self._pool

    async def _reset_pool(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(Exception):
                pool.terminate()

    async def probe(self, *, timeout: float = 1.0) -> bool:
        """Whether PostgreSQL answers `SELECT 1` within `timeout` seconds now."""
        try:
            async with asyncio.timeout(timeout):
                pool = await self._ensure_pool()
                await pool.fetchval(queries.PROBE, timeout=timeout)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def monitor(self, *, interval: float = 1.0, timeout: float = 1.0) -> None:
        """Keep `healthy` true to what PostgreSQL answers now, not to the last write (run it as a
        background task). A recovery also cuts the writer's backoff short."""
        while True:
            ok = await self.probe(timeout=timeout)
            if ok != self._probe_ok:
                (log.info if ok else log.warning)("db_health", healthy=ok)
            self._probe_ok = ok
            if ok and not self._write_ok:
                self._db_up.set()
            await asyncio.sleep(interval)

    # --- reads (named queries; the rest of cc_ari has no SQL) ------------------------------
    async def load_agents(self) -> list[Mapping[str, Any]]:
        pool = await self._ensure_pool()
        rows = await pool.fetch(queries.LOAD_AGENTS, timeout=self._timeout)
        return [dict(r) for r in rows]

    async def fetch_call(self, call_id: str) -> dict[str, Any] | None:
        """What the database knows of a call (adoption after a restart), or None: queue, queued_at,
        answered_at, ivr_path, recording_path, handled_by, agent, outcome, ended_at."""
        pool = await self._ensure_pool()
        row = await pool.fetchrow(queries.FETCH_CALL, call_id, timeout=self._timeout)
        return dict(row) if row is not None else None

    async def open_call_ids(self, ids: Iterable[str]) -> set[str]:
        """Those of `ids` whose call has a row that has not ended (ended_at NULL)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return set()
        pool = await self._ensure_pool()
        rows = await pool.fetch(queries.OPEN_CALL_IDS, wanted, timeout=self._timeout)
        return {r["call_id"] for r in rows}

    async def get_cel_cursor(self, source: str) -> tuple[int, int] | None:
        """(inode, offset) reconciled so far of a CEL log, or None."""
        pool = await self._ensure_pool()
        row = await pool.fetchrow(queries.GET_CEL_CURSOR, source, timeout=self._timeout)
        return (int(row["inode"]), int(row["offset_bytes"])) if row is not None else None

    async def set_cel_cursor(self, source: str, inode: int, offset: int) -> None:
        pool = await self._ensure_pool()
        await pool.execute(queries.SET_CEL_CURSOR, source, inode, offset, timeout=self._timeout)

