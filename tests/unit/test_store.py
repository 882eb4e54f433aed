"""CallStore: upsert SQL, the journal (group commit, replay, spill, compaction), poison records,
health, shutdown. A fake pool stands in for PostgreSQL; the named queries and a real refusal also
run against the lab's PostgreSQL when it is there (skipped otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import stat
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import structlog

from cc_ari.db import store as store_mod
from cc_ari.db.store import CALL_COLUMNS, KINDS, LEG_COLUMNS, CallStore, Write, _upsert_sql

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
DSN = "postgresql://x@127.0.0.1:1/x"  # nothing listens there: the fake pool is used instead


# --- pure parts ---------------------------------------------------------------------------------
def test_merge_upsert_prefers_new_non_null_values() -> None:
    sql, args = _upsert_sql("cc.calls", "call_id", CALL_COLUMNS,
                            {"outcome": "answered", "caller": "0612", "ended_at": T0}, "merge")
    assert sql == (
        "INSERT INTO cc.calls AS t (call_id, caller, ended_at, outcome) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT (call_id) DO UPDATE SET caller = COALESCE(EXCLUDED.caller, t.caller), "
        "ended_at = COALESCE(EXCLUDED.ended_at, t.ended_at), "
        "outcome = COALESCE(EXCLUDED.outcome, t.outcome), updated_at = now()")
    assert args == ["0612", T0, "answered"]  # in whitelist order; the key is passed separately as $1


def test_fill_upsert_keeps_existing_values_and_only_fills_nulls() -> None:
    sql, args = _upsert_sql("cc.legs", "leg_id", LEG_COLUMNS, {"hangup_cause": 16, "role": "agent"}, "fill")
    assert "role = COALESCE(t.role, EXCLUDED.role)" in sql
    assert "hangup_cause = COALESCE(t.hangup_cause, EXCLUDED.hangup_cause)" in sql
    assert "EXCLUDED.role, t.role" not in sql
    assert args == ["agent", 16]


def test_upsert_with_only_the_key_still_touches_updated_at() -> None:
    sql, args = _upsert_sql("cc.calls", "call_id", CALL_COLUMNS, {}, "merge")
    assert sql.endswith("ON CONFLICT (call_id) DO UPDATE SET updated_at = now()")
    assert "VALUES ($1)" in sql and args == []


@pytest.mark.parametrize("bad", ["dnis; DROP TABLE cc.calls", "updated_at", "call_id", "Caller"])
def test_upsert_rejects_columns_outside_the_whitelist(bad: str) -> None:
    with pytest.raises(ValueError, match=re.escape(f"unknown columns for cc.calls: {[bad]}")):
        _upsert_sql("cc.calls", "call_id", CALL_COLUMNS, {"caller": "1", bad: "x"}, "merge")


def test_upsert_sql_never_contains_values_only_numbered_parameters() -> None:
    values = {c: f"'value-of-{c}'); --" for c in CALL_COLUMNS}
    sql, args = _upsert_sql("cc.calls", "call_id", CALL_COLUMNS, values, "merge")
    assert "value-of" not in sql
    assert re.findall(r"\$\d+", sql) == [f"${i}" for i in range(1, len(CALL_COLUMNS) + 2)]
    assert args == [values[c] for c in CALL_COLUMNS]


def test_write_json_round_trip_restores_datetimes_in_time_columns_only() -> None:
    paris = timezone(timedelta(hours=1))
    w = Write("call", "call-1", {"started_at": T0, "answered_at": T0.astimezone(paris), "ended_at": None,
                                 "caller": "2026-11-23T12:00:00+00:00", "queue": "support"}, "fill")
    line = w.to_json()
    assert "\n" not in line
    assert json.loads(line)["values"]["started_at"] == "2026-11-23T12:00:00.123456+00:00"
    back = Write.from_json(line)
    assert back == w
    assert back.values["answered_at"].utcoffset() == timedelta(hours=1)
    assert isinstance(back.values["caller"], str)  # not a time column: stays text


def test_write_from_json_defaults_mode_to_merge_and_restores_agent_event_time() -> None:
    line = json.dumps({"kind": "agent_event", "key": "k1",
                       "values": {"agent": "agent1", "at": "2026-11-23T12:00:00+00:00", "queues": ["sales"]}})
    w = Write.from_json(line)
    assert (w.kind, w.key, w.mode) == ("agent_event", "k1", "merge")
    assert w.values["at"] == datetime(2026, 11, 23, 12, tzinfo=UTC) and w.values["queues"] == ["sales"]


@pytest.mark.parametrize("line", ["[1]", '{"kind": "call"}', '{"kind": "call", "key": "k", "values": [1]}', "7"])
def test_write_from_json_refuses_what_is_not_a_journal_record(line: str) -> None:
    with pytest.raises(ValueError, match="not a journal record"):
        Write.from_json(line)


# --- a fake PostgreSQL ----------------------------------------------------------------------------
@dataclass
class FakeDb:
    """Commits statements per transaction; can be down, refuse chosen writes, hang the probe."""
    committed: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    transactions: list[int] = field(default_factory=list)  # statements per committed transaction
    down: bool = False
    hang_probe: bool = False
    refuse: Callable[[str, tuple[Any, ...]], Exception | None] = lambda _sql, _args: None
    before_execute: Callable[[tuple[Any, ...]], Any] | None = None  # may be async (a gate)

    async def create_pool(self) -> FakePool:
        if self.down:
            raise ConnectionRefusedError("fake: database down")
        return FakePool(self)

    def keys(self) -> list[Any]:
        return [args[0] for _, args in self.committed]


class FakePool:
    def __init__(self, db: FakeDb) -> None:
        self.db = db

    @contextlib.asynccontextmanager
    async def acquire(self, *, timeout: float | None = None) -> AsyncIterator[FakeConn]:
        if self.db.down:
            raise ConnectionRefusedError("fake: database down")
        yield FakeConn(self.db)

    async def fetchval(self, sql: str, *args: Any, timeout: float | None = None) -> Any:
        if self.db.hang_probe:
            await asyncio.sleep(3600)
        if self.db.down:
            raise ConnectionResetError("fake: connection lost")
        return 1

    def terminate(self) -> None:
        pass

    async def close(self) -> None:
        pass


class FakeConn:
    def __init__(self, db: FakeDb) -> None:
        self.db = db
        self.staged: list[tuple[str, tuple[Any, ...]]] = []

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        self.staged = []
        yield
        self.db.committed.extend(self.staged)
        self.db.transactions.append(len(self.staged))

    async def execute(self, sql: str, *args: Any) -> str:
        if self.db.before_execute is not None:
            res = self.db.before_execute(args)
            if asyncio.iscoroutine(res):
                await res
        if self.db.down:
            raise ConnectionResetError("fake: connection lost")
        if (exc := self.db.refuse(sql, args)) is not None:
            raise exc
        self.staged.append((sql, args))
        return "INSERT 0 1"

    async def executemany(self, sql: str, args: list[Sequence[Any]]) -> None:
        """asyncpg's: one statement, many argument rows, all or nothing."""
        staged = list(self.staged)
        try:
            for row in args:
                await self.execute(sql, *row)
        except BaseException:
            self.staged = staged
            raise


@dataclass
class Harness:
    tmp: Path
    db: FakeDb = field(default_factory=FakeDb)
    stores: list[CallStore] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @property
    def journal(self) -> Path:
        return self.tmp / "state" / "journal.jsonl"

    @property
    def dead_letter(self) -> Path:
        return self.tmp / "state" / "dead-letter.jsonl"

    async def store(self, *, run: bool = True, monitor: bool = False, start: bool = True,
                    pending: deque[Any] | None = None, **kw: Any) -> CallStore:
        kw.setdefault("truncate_bytes", 0)  # truncation as soon as all is committed (its mechanics)
        s = CallStore(DSN, self.journal, create_pool=self.db.create_pool, **kw)
        if pending is not None:
            s._pending = pending
        self.stores.append(s)
        if start:
            await s.start()
        if run:
            self.tasks.append(asyncio.create_task(s.run()))
        if monitor:
            self.tasks.append(asyncio.create_task(s.monitor(interval=0.01, timeout=0.05)))
        return s

    def dead_records(self) -> list[dict[str, Any]]:
        if not self.dead_letter.exists():
            return []
        return [json.loads(line) for line in self.dead_letter.read_text().splitlines()]

    def journal_writes(self) -> list[Write]:
        return [Write.from_json(line) for line in self.journal.read_text().splitlines() if line.strip()]


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    harness = Harness(tmp_path)
    yield harness
    for t in harness.tasks:
        t.cancel()
    await asyncio.gather(*harness.tasks, return_exceptions=True)
    for s in harness.stores:
        await s.close()


async def eventually(cond: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not cond():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.005)


def pending_writes(s: CallStore) -> list[Write]:
    return [e.write for e in s._pending]


def call(i: int | str, **values: Any) -> Write:
    return Write("call", f"c{i}", {"direction": "inbound", "started_at": T0, **values})


# --- journal replay -----------------------------------------------------------------------------
async def test_start_replays_an_existing_journal_into_the_pending_queue(h: Harness) -> None:
    h.journal.parent.mkdir()
    first = Write("call", "c1", {"started_at": T0, "caller": "0612"})
    second = Write("leg", "l1", {"call_id": "c1", "role": "caller"}, "fill")
    h.journal.write_text(first.to_json() + "\n\n" + second.to_json() + "\n   \n")
    store = await h.store(run=False)
    assert pending_writes(store) == [first, second]
    assert store.backlog == 2
    assert await store.flushed(timeout=0.05) is False  # replayed writes are not committed yet


async def test_start_without_journal_creates_a_private_empty_one(h: Harness) -> None:
    store = await h.store(run=False)
    assert h.journal.exists() and h.journal.read_text() == ""
    assert stat.S_IMODE(h.journal.stat().st_mode) == 0o600
    assert store.backlog == 0
    assert await store.flushed(timeout=0.05) is True


async def test_submitted_writes_are_journaled_and_replayed_after_a_restart(h: Harness) -> None:
    store = await h.store(run=False)
    store.call("c1", outcome="answered", ended_at=T0)
    store.agent_state("agent1", state="ready", queues=["sales"], skills={}, pause_reason=None)
    assert await store.flushed(timeout=0.05) is False
    await store.close()
    restarted = await h.store(run=False)
    assert pending_writes(restarted) == [
        Write("call", "c1", {"outcome": "answered", "ended_at": T0}, "merge"),
        Write("agent_state", "agent1",
              {"state": "ready", "queues": ["sales"], "skills": {}, "pause_reason": None}),
    ]


async def test_a_torn_last_line_is_set_aside_and_the_next_write_does_not_follow_it(h: Harness) -> None:
    h.journal.parent.mkdir()
    good = call(1)
    h.journal.write_text(good.to_json() + "\n" + '{"kind": "call", "key": "c2", "val')  # crash mid-write
    store = await h.store(run=False)
    assert pending_writes(store) == [good]
    [dead] = h.dead_records()
    assert dead["line"].startswith('{"kind": "call", "key": "c2"') and "torn" in dead["error"]
    store.submit(call(3))
    await store.close()
    restarted = await h.store(run=False)
    assert pending_writes(restarted) == [good, call(3)]


# --- group commit off the event loop ------------------------------------------------------------
async def test_submit_only_appends_to_memory_and_a_group_is_journaled_with_one_fsync(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(store_mod.os, "fsync", lambda fd: (fsyncs.append(fd), real_fsync(fd))[1])
    store = await h.store(run=False)
    for i in range(50):
        store.submit(call(i))
    assert h.journal.read_bytes() == b""  # nothing written on the event loop by submit()
    assert store.backlog == 50
    await eventually(lambda: len(store._pending) == 50)
    assert [w.key for w in h.journal_writes()] == [f"c{i}" for i in range(50)]
    assert len(fsyncs) == 1


async def test_no_write_reaches_the_database_before_its_journal_line_is_fsynced(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    durable: set[str] = set()
    early: list[str] = []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        import time
        time.sleep(0.02)  # a slow disk: a writer not waiting for the journal would overtake it
        real_fsync(fd)
        if h.journal.exists():
            durable.update(w.key for w in h.journal_writes())

    monkeypatch.setattr(store_mod.os, "fsync", slow_fsync)
    h.db.before_execute = lambda args: None if args[0] in durable else early.append(args[0])
    store = await h.store(batch=3)
    for group in range(5):
        for i in range(4):
            store.submit(call(f"{group}-{i}"))
        await asyncio.sleep(0.005)
    assert await store.flushed(timeout=5)
    assert early == []
    assert h.db.keys() == [f"c{g}-{i}" for g in range(5) for i in range(4)]


async def test_the_journal_is_truncated_once_everything_is_committed(h: Harness) -> None:
    store = await h.store()
    for i in range(20):
        store.submit(call(i))
    assert await store.flushed(timeout=3)
    await eventually(lambda: h.journal.stat().st_size == 0)
    store.submit(call(99))  # offsets keep working after a truncation
    assert await store.flushed(timeout=3)
    assert h.db.keys()[-1] == "c99"
    await store.close()
    assert h.journal.read_bytes() == b""
    assert pending_writes(await h.store(run=False)) == []


async def test_a_write_submitted_while_the_journal_is_being_truncated_stays_in_it(
        h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading
    import time

    truncating = threading.Event()
    real_ftruncate = os.ftruncate

    def slow_ftruncate(fd: int, length: int) -> None:
        truncating.set()
        time.sleep(0.05)  # in the journal's worker thread: the event loop goes on meanwhile
        real_ftruncate(fd, length)

    monkeypatch.setattr(store_mod.os, "ftruncate", slow_ftruncate)
    store = await h.store()
    store.submit(call(1))
    assert await store.flushed(timeout=3)
    await eventually(truncating.is_set)
    h.db.down = True
    store.submit(call(2))  # during the truncation; the database cannot take it
    await eventually(lambda: store.backlog == 1 and not store._buffer and not store._inflight)
    await store.close()
    assert h.db.keys() == ["c1"]
    assert pending_writes(await h.store(run=False)) == [call(2)]


async def test_a_large_committed_prefix_is_dropped_while_later_writes_wait(h: Harness) -> None:
    gate = asyncio.Event()

    async def hold_c50(args: tuple[Any, ...]) -> None:
        if args[0] == "c50":
            await gate.wait()

    h.db.before_execute = hold_c50
    store = await h.store(batch=10, compact_bytes=1000)
    for i in range(80):
        store.submit(call(i))
    # c0..c49 committed, the batch of c50 stuck: the journal keeps exactly what is not committed.
    await eventually(lambda: h.journal_writes()[:1] == [call(50)])
    assert h.journal_writes() == [call(i) for i in range(50, 80)]
    assert stat.S_IMODE(h.journal.stat().st_mode) == 0o600
    store.submit(call(80))
    gate.set()
    assert await store.flushed(timeout=3)
    assert h.db.keys() == [f"c{i}" for i in range(81)]
    await eventually(lambda: h.journal.stat().st_size == 0)


# --- bounded memory -----------------------------------------------------------------------------
async def test_memory_stays_bounded_while_the_database_is_down_and_nothing_is_lost(h: Harness) -> None:
    h.db.down = True
    most_in_memory = 0

    def sample(_args: tuple[Any, ...]) -> None:
        nonlocal most_in_memory
        most_in_memory = max(most_in_memory, len(store._pending))

    h.db.before_execute = sample
    store = await h.store(max_pending=10, batch=4, monitor=True)
    for i in range(100):
        store.submit(call(i))
        if i % 7 == 0:
            await asyncio.sleep(0)
    await eventually(lambda: len(h.journal_writes()) == 100)
    assert len(store._pending) <= 10 and store.backlog == 100
    assert not store.healthy
    h.db.down = False
    assert await store.flushed(timeout=5)
    assert h.db.keys() == [f"c{i}" for i in range(100)]  # each once, in order
    assert most_in_memory <= 10 and max(h.db.transactions) <= 4
    await eventually(lambda: store.healthy)  # the monitor's next probe (every 10 ms) sees it back
    assert store.backlog == 0 and h.dead_records() == []


async def test_a_journal_larger_than_memory_is_replayed_in_order_reading_the_rest_back(h: Harness) -> None:
    h.journal.parent.mkdir()
    writes = [call(i) for i in range(50)]
    writes.insert(3, Write("agent_state", "agent1", {"state": "ready", "queues": ["sales"]}))
    writes.insert(40, Write("agent_state", "agent1", {"state": "paused", "queues": ["sales"],
                                                      "pause_reason": "lunch"}))
    h.journal.write_text("".join(w.to_json() + "\n" for w in writes))
    store = await h.store(run=False, max_pending=8)
    assert len(store._pending) == 8 and store.backlog == 52
    # The newest state is in the part of the journal not read into memory yet: still found.
    assert store.pending_agent_states()["agent1"]["state"] == "paused"
    h.tasks.append(asyncio.create_task(store.run()))
    assert await store.flushed(timeout=5)
    # In order per table (a batch runs calls before agent states: they are independent rows).
    committed_keys = h.db.keys()
    assert [k for k in committed_keys if k != "agent1"] == [w.key for w in writes if w.kind == "call"]
    states = [args[1] for sql, args in h.db.committed if args[0] == "agent1"]
    assert states == ["ready", "paused"]


async def test_100k_writes_are_batched_touching_each_pending_write_a_bounded_number_of_times(
        h: Harness) -> None:
    class CountingDeque(deque[Any]):
        touched = 0

        def __iter__(self) -> Iterator[Any]:
            for item in super().__iter__():
                CountingDeque.touched += 1
                yield item

    n, batch = 100_000, 200
    store = await h.store(pending=CountingDeque(), batch=batch, max_pending=n)
    for i in range(n):
        store.agent_event(f"e{i}", agent="agent1", state="ready", at=T0)
    assert await store.flushed(timeout=60)
    assert len(h.db.committed) == n and h.db.keys()[:2] == ["e0", "e1"] and h.db.keys()[-1] == f"e{n - 1}"
    assert max(h.db.transactions) == batch
    # A batch looks at its own writes only (a copy of the whole queue per batch would be ~n²/2/batch).
    assert CountingDeque.touched <= n


# --- poison records and unknown kinds -----------------------------------------------------------
async def test_a_poison_record_is_dead_lettered_and_the_writes_after_it_still_commit(h: Harness) -> None:
    store = await h.store()
    with structlog.testing.capture_logs() as logs:
        store.call("c1", direction="inbound", started_at=T0)
        store.agent_event("ev-1", state="ready", at=T0)  # no "agent": KeyError when written
        store.call("c2", direction="inbound", started_at=T0)
        assert await store.flushed(timeout=3)
    assert h.db.keys() == ["c1", "c2"]
    [dead] = h.dead_records()
    assert (dead["kind"], dead["key"]) == ("agent_event", "ev-1") and "agent" in dead["error"]
    assert Write.from_json(json.dumps(dead["write"])) == Write("agent_event", "ev-1", {"state": "ready", "at": T0})
    assert stat.S_IMODE(h.dead_letter.stat().st_mode) == 0o600
    [line] = [e for e in logs if e["event"] == "db_write_dead_lettered"]
    assert (line["log_level"], line["kind"], line["key"]) == ("error", "agent_event", "ev-1")
    assert "agent" in line["error"]


async def test_a_write_the_database_refuses_is_dead_lettered_and_its_batch_neighbours_commit(
        h: Harness) -> None:
    h.db.refuse = lambda _sql, args: (asyncpg.exceptions.CheckViolationError("violates check constraint")
                                      if args[0] == "c2" else None)
    store = await h.store()
    for i in range(1, 5):
        store.submit(call(i, outcome="bogus" if i == 2 else "answered"))
    assert await store.flushed(timeout=3)
    assert h.db.keys() == ["c1", "c3", "c4"]
    assert [(d["key"], "CheckViolationError" in d["error"]) for d in h.dead_records()] == [("c2", True)]
    assert store.healthy  # a refused write is not an outage


async def test_an_outage_is_retried_and_never_dead_letters(h: Harness) -> None:
    store = await h.store(monitor=True)
    h.db.down = True
    store.submit(call(1))
    await eventually(lambda: not store.healthy)
    assert h.db.committed == []
    h.db.down = False
    assert await store.flushed(timeout=3)
    assert h.db.keys() == ["c1"] and h.dead_records() == [] and store.healthy


async def test_submit_of_an_unknown_kind_raises_and_keeps_nothing(h: Harness) -> None:
    store = await h.store(run=False)
    with pytest.raises(ValueError, match="unknown write kind 'cal'"):
        store.submit(Write("cal", "c1", {}))
    assert store.backlog == 0 and await store.flushed(timeout=0.01)


async def test_an_unknown_kind_replayed_from_the_journal_is_dead_lettered_and_the_rest_commit(
        h: Harness) -> None:
    h.journal.parent.mkdir()
    h.journal.write_text(call(1).to_json() + "\n" + Write("monitoring", "m1", {"x": 1}).to_json() + "\n"
                         + "{not json\n" + call(2).to_json() + "\n")
    store = await h.store()
    assert await store.flushed(timeout=3)
    assert h.db.keys() == ["c1", "c2"]
    dead = h.dead_records()
    assert [d.get("key") for d in dead] == [None, "m1"]  # the unreadable line (at start), then the kind
    assert "unreadable" in dead[0]["error"] and dead[0]["line"] == "{not json"
    assert "unknown write kind 'monitoring'" in dead[1]["error"]


async def test_a_new_kind_is_one_entry_in_the_registry(h: Harness) -> None:
    kinds = {**KINDS, "monitoring": lambda w: ("INSERT INTO cc.monitoring VALUES ($1, $2)",
                                               [w.key, w.values["supervisor"]])}
    store = await h.store(kinds=kinds)
    store.submit(Write("monitoring", "m1", {"supervisor": "sup1"}))
    assert await store.flushed(timeout=3)
    assert h.db.committed == [("INSERT INTO cc.monitoring VALUES ($1, $2)", ("m1", "sup1"))]


async def test_a_value_json_cannot_hold_is_dead_lettered_at_submit_not_raised(h: Harness) -> None:
    store = await h.store(run=False)
    store.call("c1", caller={1, 2})
    assert store.backlog == 0
    [dead] = h.dead_records()
    assert dead["key"] == "c1" and "TypeError" in dead["error"]


# --- health -------------------------------------------------------------------------------------
async def test_monitor_tells_the_database_is_down_without_waiting_for_a_write(h: Harness) -> None:
    store = await h.store(run=False, monitor=True)
    await eventually(lambda: store.healthy)
    h.db.down = True
    await eventually(lambda: not store.healthy, timeout=1)
    h.db.down = False
    await eventually(lambda: store.healthy, timeout=1)
    h.db.hang_probe = True  # a database that does not answer is down too (probe timeout)
    await eventually(lambda: not store.healthy, timeout=1)


# --- shutdown -----------------------------------------------------------------------------------
async def test_a_write_after_close_is_appended_to_the_journal_and_replayed_at_next_start(h: Harness) -> None:
    store = await h.store(run=False)
    store.submit(call(1))
    await store.close()
    with structlog.testing.capture_logs() as logs:
        store.submit(call(2))  # a call finishing during shutdown
    assert [e["log_level"] for e in logs if e["event"] == "db_write_after_close"] == ["warning"]
    restarted = await h.store(run=False)
    assert pending_writes(restarted) == [call(1), call(2)]


# --- against the lab's PostgreSQL ---------------------------------------------------------------
def _lab_dsn() -> str | None:
    if dsn := os.environ.get("CC_DATABASE_URL"):
        return dsn
    env = Path(__file__).resolve().parents[2] / ".lab" / "env"
    if env.exists():
        import shlex

        for line in env.read_text().splitlines():
            if line.startswith("export CC_DATABASE_URL="):
                return shlex.split(line.partition("=")[2])[0]
    return None


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[tuple[CallStore, str]]:
    dsn = _lab_dsn()
    if dsn is None:
        pytest.skip("no PostgreSQL (CC_DATABASE_URL or .lab/env)")
    try:
        conn = await asyncpg.connect(dsn, timeout=2)
    except (OSError, asyncpg.PostgresError) as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc!r}")
    prefix = f"unit-store-{uuid.uuid4().hex[:12]}-"
    store = CallStore(dsn, tmp_path / "journal.jsonl", timeout=5)
    await store.start()
    runner = asyncio.create_task(store.run())
    try:
        yield store, prefix
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await store.close()
        await conn.execute("DELETE FROM cc.calls WHERE call_id LIKE $1", prefix + "%")
        await conn.execute("DELETE FROM cc.cel_cursor WHERE source LIKE $1", prefix + "%")
        await conn.close()


async def test_named_queries_read_what_the_writer_committed(pg: tuple[CallStore, str]) -> None:
    store, p = pg
    store.call(p + "open", direction="inbound", started_at=T0, queue="support", ivr_path="1")
    store.call(p + "done", direction="inbound", started_at=T0, ended_at=T0 + timedelta(seconds=5),
               outcome="abandoned")
    assert await store.flushed(timeout=5)
    row = await store.fetch_call(p + "open")
    assert row is not None and (row["queue"], row["ivr_path"], row["handled_by"], row["ended_at"]) == (
        "support", "1", "cc_ari", None)
    assert set(row) == {"queue", "queued_at", "answered_at", "ivr_path", "recording_path", "handled_by",
                        "agent", "outcome", "ended_at"}
    assert await store.fetch_call(p + "nobody") is None
    assert await store.open_call_ids([p + "open", p + "done", p + "nobody"]) == {p + "open"}
    assert await store.open_call_ids([]) == set()
    assert await store.get_cel_cursor(p + "cel") is None
    await store.set_cel_cursor(p + "cel", 1234, 56)
    await store.set_cel_cursor(p + "cel", 1234, 789)
    assert await store.get_cel_cursor(p + "cel") == (1234, 789)
    assert await store.probe(timeout=2) is True


async def test_a_row_postgres_refuses_is_dead_lettered_and_the_next_write_commits(
        pg: tuple[CallStore, str], tmp_path: Path) -> None:
    store, p = pg
    store.call(p + "bad", direction="inbound", started_at=T0, outcome="bogus")  # CHECK (outcome IN ...)
    store.call(p + "good", direction="inbound", started_at=T0, outcome="answered")
    assert await store.flushed(timeout=5)
    assert (await store.fetch_call(p + "good") or {}).get("outcome") == "answered"
    assert await store.fetch_call(p + "bad") is None
    [dead] = [json.loads(x) for x in (tmp_path / "dead-letter.jsonl").read_text().splitlines()]
    assert dead["key"] == p + "bad" and "CheckViolationError" in dead["error"]


def test_writes_to_one_row_are_folded_as_applying_them_in_turn_would() -> None:
    """Fewer statements per call (cost per call): a call's start, queueing and routing, written
    in the same moment, are one upsert; order between modes and between events is kept."""
    from cc_ari.db.store import _Durable, coalesce

    def d(w: Write) -> _Durable:
        return _Durable(w, 0)

    batch = [d(Write("call", "c1", {"caller": "0155", "queue": None})),
             d(Write("leg", "c1", {"call_id": "c1", "role": "caller"})),
             d(Write("call", "c1", {"queue": "support", "caller": None})),
             d(Write("agent_event", "e1", {"agent": "a", "state": "ready", "at": T0})),
             d(Write("agent_event", "e2", {"agent": "a", "state": "ringing", "at": T0})),
             d(Write("agent_state", "a", {"state": "ready", "queues": ["q"]})),
             d(Write("call", "c1", {"outcome": "answered"}, "keep")),   # another mode: not folded
             d(Write("call", "c1", {"outcome": "abandoned", "queue": "x"}, "keep")),
             d(Write("agent_state", "a", {"state": "ringing", "queues": ["q"]})),
             d(Write("call", "c1", {"agent": "agent1"}))]               # after a keep: a new fold
    folded = coalesce(batch)
    assert [(w.kind, w.key, w.mode, dict(w.values), len(es)) for es, w in folded] == [
        ("call", "c1", "merge", {"caller": "0155", "queue": "support"}, 2),
        ("leg", "c1", "merge", {"call_id": "c1", "role": "caller"}, 1),
        ("agent_event", "e1", "merge", {"agent": "a", "state": "ready", "at": T0}, 1),
        ("agent_event", "e2", "merge", {"agent": "a", "state": "ringing", "at": T0}, 1),
        ("agent_state", "a", "merge", {"state": "ringing", "queues": ["q"]}, 2),
        ("call", "c1", "keep", {"outcome": "answered", "queue": "x"}, 2),
        ("call", "c1", "merge", {"agent": "agent1"}, 1),
    ]
    assert sum(len(es) for es, _ in folded) == len(batch)  # every write accounted for (dead letters)


async def test_a_small_committed_journal_is_left_until_it_is_worth_truncating(h: Harness) -> None:
    """Cost per call: emptying the journal after every group was a system call (and an fsync)
    per group. It waits for `truncate_bytes`; a replay of committed writes is idempotent."""
    store = await h.store(truncate_bytes=4096)
    store.call("c1", caller="1")
    assert await store.flushed(timeout=5)
    await asyncio.sleep(0.05)
    assert h.journal.stat().st_size > 0
    for i in range(60):
        store.call(f"c{i}", caller="1" * 40)
    assert await store.flushed(timeout=5)
    await eventually(lambda: h.journal.stat().st_size == 0)
