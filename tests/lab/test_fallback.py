"""cc_ari stopped: the dialplan still serves callers, ringing only the agents cc_ari had logged in
to the queue and not paused (app_queue's cc-fb-<queue> members, kept in step over AMI), and the
calls reach PostgreSQL later."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from types import TracebackType

import pytest

from cc_ari.ami.client import AmiClient
from conftest import lab_cmd, legs_of, wait_call_row
from sipp import AgentPhone

pytestmark = pytest.mark.lab


class AppQueue:
    """Reads app_queue's fallback queues over AMI, as Asterisk sees them (`async with AppQueue(lab)`)."""

    def __init__(self, lab: dict[str, str]) -> None:
        self._ami = AmiClient(lab["CC_AMI_HOST"], int(lab["CC_AMI_PORT"]), lab["CC_AMI_USER"],
                              lab["CC_AMI_PASSWORD"], events="off", keepalive=None)
        self._runner: asyncio.Task[None] | None = None

    async def __aenter__(self) -> AppQueue:
        self._runner = asyncio.create_task(self._ami.run())
        await asyncio.wait_for(self._ami.connected.wait(), 5)
        return self

    async def __aexit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        await self._ami.close()

    async def status(self, queue: str) -> tuple[dict[str, bool], int]:
        """cc-fb-<queue>: its members (name -> paused) and how many callers wait in it."""
        events = await self._ami.action_list("QueueStatus", Queue=f"cc-fb-{queue}")
        assert any(e.get("Event") == "QueueParams" for e in events), f"no queue cc-fb-{queue} in app_queue"
        members = {e["Name"]: e["Paused"] == "1" for e in events if e.get("Event") == "QueueMember"}
        return members, sum(1 for e in events if e.get("Event") == "QueueEntry")

    async def wait_members(self, queue: str, expected: dict[str, bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (members := (await self.status(queue))[0]) != expected and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        assert members == expected, f"cc-fb-{queue} holds {members}, expected {expected}"

    async def wait_callers(self, queue: str, count: int, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while (waiting := (await self.status(queue))[1]) != count and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.2)
        assert waiting == count, f"{waiting} callers in cc-fb-{queue}, expected {count}"


def invites_received(phone: AgentPhone) -> int:
    """Stops the phone's SIPp UAS and returns how many INVITEs (calls) it got."""
    phone.uas.proc.terminate()
    out, _err = phone.uas.proc.communicate(timeout=10)
    found = re.search(r"Incoming calls created\s*\|\s*\d+\s*\|\s*(\d+)", out)
    assert found, out[-2000:]
    return int(found.group(1))


async def test_with_service_stopped_caller_reaches_agent_and_call_is_reconciled(call, phones, api, db, lab,
                                                                                caller_number):
    phones("agent14")  # logged in to support: a member of app_queue's cc-fb-support
    async with AppQueue(lab) as app_queue:
        await app_queue.wait_members("support", {"agent14": False})
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


async def test_with_service_stopped_only_logged_in_unpaused_agents_of_the_queue_are_rung(
        call, phones, api, db, lab, caller_number):
    # Registered and answering, but each one must not be rung by the support fallback:
    logged_out = phones("agent11", login=False)
    paused = phones("agent12")
    api.ok("POST", "/api/agents/agent12/pause", {"reason": "break"})
    other_queue = phones("agent13", queues=["sales"])
    # Logged in to support and ready; its phone registers only once the caller waits in Queue(), so
    # for those seconds a wrongly rung member would be the only one app_queue could ring.
    api.ok("POST", "/api/agents/agent15/login", {"queues": ["support"]})
    ready = AgentPhone("agent15", lab["CC_AGENT_PASSWORD"], sip_target=f"127.0.0.1:{lab['CC_SIP_PORT']}",
                       talk_ms=3000)
    try:
        async with AppQueue(lab) as app_queue:
            await app_queue.wait_members("support", {"agent12": True, "agent15": False})
            await app_queue.wait_members("sales", {"agent13": False})
            await asyncio.to_thread(lab_cmd, "service-stop")
            try:
                sipp = call("5001", caller_number, hangup="remote")  # agent15 hangs up after 3 s of talk
                await app_queue.wait_callers("support", 1)  # after the apology
                await asyncio.sleep(3.0)  # app_queue retries every 2 s: nobody it may ring is there
                res = await asyncio.to_thread(ready.register)
                assert res.returncode == 0, res.errors or res.stderr
                res = await asyncio.to_thread(sipp.wait, 30)
                assert res.returncode == 0, res.errors or res.stderr
                assert [invites_received(p) for p in (logged_out, paused, other_queue, ready)] == [0, 0, 0, 1]
            finally:
                await asyncio.to_thread(lab_cmd, "service-start")
    finally:
        ready.stop()
    [row] = await wait_call_row(db, caller_number, timeout=15)
    assert (row["handled_by"], row["outcome"], row["queue"], row["agent"]) == ("fallback", "answered", "support",
                                                                              "agent15")
    assert row["wait_seconds"] > 3
    legs = await legs_of(db, row["call_id"])
    assert [leg["endpoint"] for leg in legs if leg["role"] == "agent"] == ["PJSIP/agent15"]
    assert {leg["role"] for leg in legs} == {"caller", "agent"}
