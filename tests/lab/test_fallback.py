"""cc_ari stopped: the dialplan still serves callers, and the calls reach PostgreSQL later."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from conftest import lab_cmd, legs_of, wait_call_row

pytestmark = pytest.mark.lab



async def test_with_service_stopped_caller_reaches_agent_and_call_is_reconciled(call, phones, api, db,
                                                                                caller_number):
    phones("agent14", login=False)
    lab_cmd("service-stop")
    try:
        answered = call("5001", caller_number, steps=[("pause", 9000), ("audio", None), ("pause", 6000)])
        invalid = call("4444", caller_number, hangup="remote")
        r1, r2 = await asyncio.gather(asyncio.to_thread(answered.wait, 60), asyncio.to_thread(invalid.wait, 60))
        assert r1.returncode == 0, r1.errors or r1.stderr
        assert r2.returncode == 0, r2.errors or r2.stderr
        assert await db.fetchval("SELECT count(*) FROM report.calls WHERE caller = $1", caller_number) == 0
    finally:
        lab_cmd("service-start")
    rows = await wait_call_row(db, caller_number, count=2, timeout=15)
    by_dnis = {r["dnis"]: r for r in rows}
    assert set(by_dnis) == {"5001", "4444"}
    a = by_dnis["5001"]
    assert (a["handled_by"], a["outcome"], a["queue"], a["agent"]) == ("fallback", "answered", "support",
                                                                      "agent14")
    assert a["talk_seconds"] > 5
    assert a["recording_path"] and Path(a["recording_path"]).exists()
    legs = await legs_of(db, a["call_id"])
    assert {leg["role"] for leg in legs} == {"caller", "agent"}
    assert all(leg["ended_at"] is not None for leg in legs)
    b = by_dnis["4444"]
    assert (b["handled_by"], b["outcome"]) == ("fallback", "invalid_number")
