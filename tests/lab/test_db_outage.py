"""Nothing lost: calls during a PostgreSQL outage reach report.calls when it is back."""

from __future__ import annotations

import asyncio

import pytest

from conftest import lab_cmd, legs_of, wait_call_row

pytestmark = pytest.mark.lab


async def test_calls_made_while_postgres_is_down_are_written_when_it_returns(call, phones, api, lab, caller_number):
    import asyncpg

    phones("agent17", queues=["support"])
    await asyncio.to_thread(lab_cmd, "pg-stop")
    try:
        answered = call("5001", caller_number, steps=[("pause", 4000)])
        invalid = call("7777", caller_number, hangup="remote")
        r1, r2 = await asyncio.gather(asyncio.to_thread(answered.wait, 40), asyncio.to_thread(invalid.wait, 40))
        assert r1.returncode == 0 and r2.returncode == 0, (r1.errors, r2.errors)
        _status, health = api.call("GET", "/healthz", token=None)
        assert health["database"] is False  # the service noticed, and kept serving calls
    finally:
        await asyncio.to_thread(lab_cmd, "pg-start")
    db = await asyncpg.connect(lab["CC_DATABASE_URL"])
    try:
        rows = await wait_call_row(db, caller_number, count=2, timeout=20)
        assert sorted(r["outcome"] for r in rows) == ["answered", "invalid_number"]
        for r in rows:
            assert await legs_of(db, r["call_id"])
    finally:
        await db.close()
