"""Security by default: the carrier trunk cannot be spoofed; logs are private; nested JSON is a 400."""

from __future__ import annotations

import asyncio
import os
import stat

import pytest

from conftest import REPO

pytestmark = pytest.mark.lab


async def test_invite_from_another_address_posing_as_the_carrier_is_refused(call, db):
    # From user "pstn" (the trunk's name), but from 127.0.0.3 instead of the carrier's 127.0.0.2
    before = await db.fetchval("SELECT count(*) FROM report.calls WHERE caller = 'pstn'")
    sipp = call("5001", "pstn", carrier_ip="127.0.0.3", steps=[("pause", 1000)], timeout_s=5)
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode != 0  # no 200 OK: challenged/refused, never a call
    await asyncio.sleep(1.0)
    assert await db.fetchval("SELECT count(*) FROM report.calls WHERE caller = 'pstn'") == before


def test_logs_holding_caller_numbers_are_not_world_readable(lab):
    logs = REPO / ".lab" / "logs"
    assert stat.S_IMODE(os.stat(logs).st_mode) == 0o750
    for name in ("cc_ari.jsonl", "cc_ari.out"):
        mode = stat.S_IMODE(os.stat(logs / name).st_mode)
        assert mode & 0o007 == 0, (name, oct(mode))


def test_deeply_nested_json_is_a_400_not_a_500(api):
    for path in ("/api/agents/agent1/login", "/api/agents/agent1/pause", "/api/agents/agent1/ready",
                 "/api/agents/agent1/logout"):
        status, body = api.call("POST", path, raw=b"[" * 32000)
        assert status == 400, (path, status, body)
        assert "nested" in body["error"] or "JSON" in body["error"]
