"""A service restart never strands a caller, and the call is still logged once, completely."""

from __future__ import annotations

import asyncio

import pytest

from conftest import kill_service, lab_cmd, legs_of, wait_call_row

pytestmark = pytest.mark.lab


async def test_conversation_survives_a_service_restart_and_is_logged_once(call, phones, api, db, caller_number):
    phones("agent15", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 12000)])
    await asyncio.sleep(3.0)
    assert api.agent("agent15")["state"] == "on_call"
    await asyncio.to_thread(lab_cmd, "service-stop")
    await asyncio.to_thread(lab_cmd, "service-start")
    # the restarted service adopted the conversation
    assert api.agent("agent15")["state"] == "on_call"
    res = await asyncio.to_thread(sipp.wait, 40)
    assert res.returncode == 0, res.errors or res.stderr

    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"], row["queue"]) == ("answered", "agent15", "support")
    assert 10 < row["talk_seconds"] < 14
    legs = await legs_of(db, row["call_id"])
    assert sorted(leg["role"] for leg in legs) == ["agent", "caller"]
    assert all(leg["ended_at"] is not None for leg in legs)
    assert api.agent("agent15")["state"] == "wrapup"


async def test_waiting_caller_goes_to_the_fallback_when_the_service_stops(call, lab, api, db, caller_number):
    from test_fallback import AppQueue

    from sipp import AgentPhone

    # agent16 is logged in to support, but its phone is not registered yet: cc_ari offers calls
    # only to registered agents, so the caller waits in cc_ari's queue.
    api.ok("POST", "/api/agents/agent16/login", {"queues": ["support"]})
    phone = AgentPhone("agent16", lab["CC_AGENT_PASSWORD"], sip_target=f"127.0.0.1:{lab['CC_SIP_PORT']}")
    try:
        async with AppQueue(lab) as app_queue:  # what the fallback's Queue() will ring
            await app_queue.wait_members("support", {"agent16": False})
        sipp = call("5001", caller_number, steps=[("pause", 14000), ("audio", None), ("pause", 3000)])
        await asyncio.sleep(2.0)
        assert api.agent("agent16")["state"] == "ready"  # not offered the call
        await asyncio.to_thread(lab_cmd, "service-stop")
        try:
            res = await asyncio.to_thread(phone.register)
            assert res.returncode == 0, res.errors or res.stderr
            res = await asyncio.to_thread(sipp.wait, 40)  # the dialplan's Queue() rang agent16
            assert res.returncode == 0, res.errors or res.stderr
        finally:
            await asyncio.to_thread(lab_cmd, "service-start")
    finally:
        phone.stop()
    [row] = await wait_call_row(db, caller_number, timeout=15)
    assert (row["outcome"], row["agent"], row["queue"]) == ("answered", "agent16", "support")
    assert row["wait_seconds"] > 2
    legs = await legs_of(db, row["call_id"])
    assert {leg["role"] for leg in legs} == {"caller", "agent"}
    assert all(leg["ended_at"] is not None for leg in legs)


async def test_asterisk_restart_ends_live_calls_cleanly_and_service_recovers(call, phones, api, lab, caller_number):
    import asyncpg

    phones("agent18", queues=["support"])
    talking = call("5001", caller_number, steps=[("pause", 30000)])
    await asyncio.sleep(2.5)
    assert api.agent("agent18")["state"] == "on_call"
    await asyncio.to_thread(lab_cmd, "asterisk-restart")
    talking.stop()
    db = await asyncpg.connect(lab["CC_DATABASE_URL"])
    try:
        [row] = await wait_call_row(db, caller_number, timeout=15)
        assert (row["outcome"], row["agent"]) == ("answered", "agent18")
        legs = await legs_of(db, row["call_id"])
        assert len(legs) == 2 and all(leg["ended_at"] is not None for leg in legs)
        # the agent is not stuck: after wrap-up it is offered calls again
        assert api.agent("agent18")["state"] in ("wrapup", "ready")
        for _ in range(50):
            status, health = api.call("GET", "/healthz", token=None)
            if status == 200 and health["ari"]:
                break
            await asyncio.sleep(0.2)
        assert health["ari"], health
        # and new calls are served by cc_ari again
        again = call("4040", caller_number, hangup="remote")
        res = await asyncio.to_thread(again.wait, 30)
        assert res.returncode == 0, res.errors or res.stderr
        rows = await wait_call_row(db, caller_number, count=2)
        assert rows[-1]["outcome"] == "invalid_number" and rows[-1]["handled_by"] == "cc_ari"
    finally:
        await db.close()


async def test_call_that_ends_while_the_service_is_crashed_is_finished_from_cel(call, phones, api, db,
                                                                               caller_number):
    phones("agent18", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 6000)])
    await asyncio.sleep(2.5)
    assert api.agent("agent18")["state"] == "on_call"
    await asyncio.to_thread(kill_service)
    try:
        res = await asyncio.to_thread(sipp.wait, 30)  # the conversation goes on and ends without cc_ari
        assert res.returncode == 0, res.errors or res.stderr
    finally:
        await asyncio.to_thread(lab_cmd, "service-start")
    [row] = await wait_call_row(db, caller_number, timeout=15)
    assert (row["outcome"], row["agent"], row["queue"], row["handled_by"]) == ("answered", "agent18", "support",
                                                                               "cc_ari")
    assert 2.5 < row["talk_seconds"] < 8
    legs = await legs_of(db, row["call_id"])
    assert sorted(leg["role"] for leg in legs) == ["agent", "caller"]
    assert all(leg["ended_at"] is not None for leg in legs)


async def test_conversation_survives_a_crash_of_the_service(call, phones, api, db, caller_number):
    phones("agent17", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 10000)])
    await asyncio.sleep(2.5)
    await asyncio.to_thread(kill_service)
    await asyncio.to_thread(lab_cmd, "service-start")
    assert api.agent("agent17")["state"] == "on_call"  # adopted
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"]) == ("answered", "agent17")
    assert 8 < row["talk_seconds"] < 12
