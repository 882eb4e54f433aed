"""Crashes and lost events never strand a caller or an agent (issue: one call-control core).

- cc_ari SIGKILLed with callers waiting: they keep their music in Asterisk, and when cc_ari is
  back they are served by cc_ari, in the order they called.
- cc_ari SIGKILLed while a caller is in the IVR: the caller gets the menu again when it is back.
- the ARI WebSocket dropped while Asterisk stays up, and the caller's hangup lost with it.
- an event lost with the WebSocket up: the periodic reconciliation ends the call.
"""

from __future__ import annotations

import asyncio

import pytest

from conftest import kill_service, lab_cmd, legs_of, wait_call_row

pytestmark = pytest.mark.lab


async def test_callers_waiting_during_a_crash_are_served_by_cc_ari_in_their_order(call, phones, api, db,
                                                                                   caller_number):
    sipps = []
    for _ in range(4):  # nobody logged in: all four wait in support, a second apart
        sipps.append(call("5001", caller_number, steps=[("pause", 45000)]))
        await asyncio.sleep(1.0)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(kill_service)
    await asyncio.sleep(8.0)  # callers hear music from Asterisk meanwhile
    await asyncio.to_thread(lab_cmd, "service-start")
    queued = {q["queue"]: q for q in api.ok("GET", "/api/queues")["queues"]}
    for _ in range(30):
        if queued["support"]["waiting"] == 4:
            break
        await asyncio.sleep(0.2)
        queued = {q["queue"]: q for q in api.ok("GET", "/api/queues")["queues"]}
    assert queued["support"]["waiting"] == 4, queued["support"]
    assert queued["support"]["longest_wait_seconds"] > 10  # their wait goes on, not restarted
    # two agents: the two earliest callers first, then (after hangups + wrap-up) the others
    phones("agent1", queues=["support"], talk_ms=2000)
    phones("agent2", queues=["support"], talk_ms=2000)
    results = await asyncio.gather(*(asyncio.to_thread(s.wait, 90) for s in sipps))
    rows = await wait_call_row(db, caller_number, count=4, timeout=20)
    assert len(rows) == 4, [r.returncode for r in results]
    assert all(r["handled_by"] == "cc_ari" for r in rows), [r["handled_by"] for r in rows]
    assert [r["outcome"] for r in rows] == ["answered"] * 4, [(r["outcome"], r["agent"]) for r in rows]
    by_start = sorted(rows, key=lambda r: r["started_at"])
    answered_order = sorted(rows, key=lambda r: r["answered_at"])
    assert {r["call_id"] for r in answered_order[:2]} == {r["call_id"] for r in by_start[:2]}
    assert {r["call_id"] for r in answered_order[2:]} == {r["call_id"] for r in by_start[2:]}
    # queued_at kept from before the crash: the wait counts from the first entry in the queue
    for r in rows:
        assert (r["queued_at"] - r["started_at"]).total_seconds() < 1.0
        assert r["wait_seconds"] > 9
    for r in rows:
        legs = await legs_of(db, r["call_id"])
        assert {leg["role"] for leg in legs} == {"caller", "agent"}
        assert all(leg["ended_at"] is not None for leg in legs)


async def test_caller_in_the_ivr_during_a_crash_gets_the_menu_again_and_reaches_an_agent(
        call, phones, db, caller_number):
    phones("agent3", queues=["support"])
    # the crash comes 2 s in (during the welcome); cc_ari is back ~3 s later and replays the menu,
    # whose "press 2" the caller answers after 12 s
    sipp = call("5000", caller_number, steps=[("pause", 12000), ("dtmf", "2"), ("pause", 5000)])
    await asyncio.sleep(2.0)
    await asyncio.to_thread(kill_service)
    await asyncio.sleep(1.0)
    await asyncio.to_thread(lab_cmd, "service-start")
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["handled_by"], row["queue"], row["outcome"], row["agent"]) == ("cc_ari", "support", "answered",
                                                                               "agent3")
    assert row["ivr_path"] == "2"


async def test_ari_socket_dropped_while_asterisk_stays_up_loses_no_call(call, phones, api, db, caller_number):
    phones("agent4", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 4000)])  # the caller hangs up at ~4 s
    await asyncio.sleep(2.5)
    assert api.agent("agent4")["state"] == "on_call"
    # the socket goes away for 4 s: the caller's hangup happens while nobody listens
    status, body = api.call("POST", "/api/debug/faults", {"drop_ari_socket_seconds": 4})
    assert status == 200, body
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number, timeout=20)
    assert (row["outcome"], row["agent"], row["handled_by"]) == ("answered", "agent4", "cc_ari")
    assert 1.0 < row["talk_seconds"] < 9
    legs = await legs_of(db, row["call_id"])
    assert len(legs) == 2 and all(leg["ended_at"] is not None for leg in legs)
    assert api.agent("agent4")["state"] in ("wrapup", "ready")
    assert [c for c in api.ok("GET", "/api/calls")["calls"] if c["call_id"] == row["call_id"]] == []


async def test_lost_hangup_events_are_caught_by_the_periodic_reconciliation(call, phones, api, db, caller_number):
    phones("agent5", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 4000)])
    await asyncio.sleep(2.5)
    assert api.agent("agent5")["state"] == "on_call"
    # every ARI event of the next 3 s is lost, the caller's hangup among them; the socket stays up
    status, body = api.call("POST", "/api/debug/faults", {"drop_ari_events_seconds": 3})
    assert status == 200, body
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    # the lab reconciles every 10 s: the call ends, the agent is released
    [row] = await wait_call_row(db, caller_number, timeout=25)
    assert (row["outcome"], row["agent"]) == ("answered", "agent5")
    legs = await legs_of(db, row["call_id"])
    assert len(legs) == 2 and all(leg["ended_at"] is not None for leg in legs)
    for _ in range(50):
        if api.agent("agent5")["state"] in ("wrapup", "ready"):
            break
        await asyncio.sleep(0.2)
    assert api.agent("agent5")["state"] in ("wrapup", "ready")
    channels = [c for c in api.ok("GET", "/api/calls")["calls"] if c["call_id"] == row["call_id"]]
    assert channels == []


async def test_fault_injection_is_refused_to_a_supervisor_token(api, lab):
    status, _ = api.call("POST", "/api/debug/faults", {"drop_ari_events_seconds": 1},
                         token=lab["CC_SUPERVISOR_TOKEN"])
    assert status == 403
    status, _ = api.call("POST", "/api/debug/faults", {"drop_ari_events_seconds": 100})
    assert status == 422
