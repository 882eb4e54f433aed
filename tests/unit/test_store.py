"""CallStore pure parts: upsert SQL, Write JSON round trip, journal replay at start (no database)."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cc_ari.db.store import CALL_COLUMNS, LEG_COLUMNS, CallStore, Write, _upsert_sql

T0 = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
DSN = "postgresql://x@127.0.0.1:1/x"  # nothing listens there; run() is never called


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


@pytest.fixture
async def opened() -> AsyncIterator[list[CallStore]]:
    stores: list[CallStore] = []
    yield stores
    for s in stores:
        await s.close()


async def test_start_replays_an_existing_journal_into_the_pending_queue(
        tmp_path: Path, opened: list[CallStore]) -> None:
    journal = tmp_path / "state" / "j.jsonl"
    journal.parent.mkdir()
    first = Write("call", "c1", {"started_at": T0, "caller": "0612"})
    second = Write("leg", "l1", {"call_id": "c1", "role": "caller"}, "fill")
    journal.write_text(first.to_json() + "\n\n" + second.to_json() + "\n   \n")
    store = CallStore(DSN, journal)
    opened.append(store)
    await store.start()
    assert list(store._pending) == [first, second]
    assert await store.flushed(timeout=0.05) is False  # replayed writes are not committed yet


async def test_start_without_journal_creates_a_private_empty_one(
        tmp_path: Path, opened: list[CallStore]) -> None:
    journal = tmp_path / "new" / "j.jsonl"
    store = CallStore(DSN, journal)
    opened.append(store)
    await store.start()
    assert journal.exists() and journal.read_text() == ""
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert len(store._pending) == 0
    assert await store.flushed(timeout=0.05) is True


async def test_submitted_writes_are_journaled_and_replayed_after_a_restart(
        tmp_path: Path, opened: list[CallStore]) -> None:
    journal = tmp_path / "j.jsonl"
    store = CallStore(DSN, journal)
    opened.append(store)
    await store.start()
    store.call("c1", outcome="answered", ended_at=T0)
    store.agent_state("agent1", state="ready", queues=["sales"], skills={}, pause_reason=None)
    assert await store.flushed(timeout=0.05) is False
    await store.close()
    restarted = CallStore(DSN, journal)
    opened.append(restarted)
    await restarted.start()
    assert list(restarted._pending) == [
        Write("call", "c1", {"outcome": "answered", "ended_at": T0}, "merge"),
        Write("agent_state", "agent1",
              {"state": "ready", "queues": ["sales"], "skills": {}, "pause_reason": None}),
    ]
