"""Inbound calls end to end: SIPp carrier -> Asterisk -> cc_ari (IVR, queue, agents) -> PostgreSQL."""

from __future__ import annotations

import array
import asyncio
import base64
import math
import wave
from pathlib import Path

import pytest

from conftest import legs_of, wait_call_row

pytestmark = pytest.mark.lab


def wav_seconds(path: str) -> float:
    with wave.open(path) as w:
        return w.getnframes() / float(w.getframerate())


async def test_call_to_support_number_is_answered_recorded_and_logged(call, phones, db, caller_number):
    phones("agent1", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 1500), ("audio", None), ("pause", 4000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr

    [row] = await wait_call_row(db, caller_number)
    assert row["direction"] == "inbound"
    assert row["dnis"] == "5001"
    assert row["queue"] == "support"
    assert row["outcome"] == "answered"
    assert row["agent"] == "agent1"
    assert 0 <= row["wait_seconds"] < 5
    assert 3.0 < row["talk_seconds"] < 10
    legs = await legs_of(db, row["call_id"])
    roles = sorted(leg["role"] for leg in legs)
    assert roles == ["agent", "caller"]
    assert all(leg["ended_at"] is not None for leg in legs)
    rec = row["recording_path"]
    assert rec and Path(rec).exists()
    assert abs(wav_seconds(rec) - float(row["talk_seconds"])) < 1.5


async def test_ivr_press_2_reaches_support_agent_with_recording_of_the_conversation(call, phones, db, caller_number):
    phones("agent2", queues=["support"])
    sipp = call("5000", caller_number,
                steps=[("pause", 1500), ("dtmf", "2"), ("pause", 4000), ("audio", None), ("pause", 2000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr

    [row] = await wait_call_row(db, caller_number)
    assert (row["dnis"], row["queue"], row["outcome"], row["agent"]) == ("5000", "support", "answered", "agent2")
    assert row["ivr_path"] == "2"
    assert row["queued_at"] > row["started_at"]
    assert row["talk_seconds"] > 3
    rec = row["recording_path"]
    assert Path(rec).exists() and abs(wav_seconds(rec) - float(row["talk_seconds"])) < 1.5
    legs = await legs_of(db, row["call_id"])
    assert {leg["role"]: leg["endpoint"] for leg in legs} == {"caller": "PJSIP/pstn", "agent": "PJSIP/agent2"}


async def test_ivr_press_1_goes_to_sales_not_support(call, phones, db, caller_number):
    phones("agent3", queues=["sales"])
    phones("agent4", queues=["support"])
    sipp = call("5000", caller_number, steps=[("pause", 1000), ("dtmf", "1"), ("pause", 5000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["queue"], row["agent"], row["outcome"]) == ("sales", "agent3", "answered")


async def test_ivr_without_any_digit_goes_to_support_after_two_prompts(call, phones, db, caller_number):
    phones("agent5", queues=["support"])
    # welcome + menu (~5 s) + 5 s timeout + menu again (~3 s) + 5 s timeout -> support
    sipp = call("5000", caller_number, steps=[("pause", 24000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["queue"], row["outcome"], row["agent"]) == ("support", "answered", "agent5")
    assert row["ivr_path"] is None
    ivr_seconds = (row["queued_at"] - row["started_at"]).total_seconds()
    assert 12 < ivr_seconds < 22, ivr_seconds


async def test_three_invalid_digits_in_ivr_go_to_support(call, phones, db, caller_number):
    phones("agent6", queues=["support"])
    steps = [("pause", 800), ("dtmf", "7"), ("pause", 600), ("dtmf", "8"), ("pause", 600), ("dtmf", "9"),
             ("pause", 8000)]
    sipp = call("5000", caller_number, steps=steps)
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["queue"], row["outcome"]) == ("support", "answered")


async def test_caller_hangs_up_during_ivr_is_logged_as_abandoned(call, db, caller_number):
    sipp = call("5000", caller_number, steps=[("pause", 2000)])
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert row["outcome"] == "abandoned"
    assert row["queue"] is None and row["agent"] is None and row["answered_at"] is None
    [leg] = await legs_of(db, row["call_id"])
    assert leg["role"] == "caller" and leg["ended_at"] is not None


async def test_caller_abandons_while_queued_with_nobody_logged_in(call, db, caller_number):
    sipp = call("5001", caller_number, steps=[("pause", 4000)])
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["queue"], row["outcome"], row["agent"]) == ("support", "abandoned", None)
    assert 3.0 < row["wait_seconds"] < 6.0
    assert row["talk_seconds"] is None and row["recording_path"] is None


async def test_unknown_number_hears_announcement_then_asterisk_hangs_up(call, db, caller_number):
    sipp = call("4321", caller_number, hangup="remote")
    res = await asyncio.to_thread(sipp.wait, 40)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["dnis"], row["outcome"], row["queue"]) == ("4321", "invalid_number", None)
    # the announcement was played in full before the hangup
    assert (row["ended_at"] - row["started_at"]).total_seconds() > 4
    [leg] = await legs_of(db, row["call_id"])
    assert leg["hangup_cause"] is not None


async def test_agent_who_does_not_answer_is_paused_and_next_agent_gets_the_call(call, phones, api, db,
                                                                                caller_number):
    phones("agent7", queues=["support"], answer=False)
    api.ok("POST", "/api/agents/agent7/pause", {"reason": "setup"})
    api.ok("POST", "/api/agents/agent7/ready")  # agent7 is now the longest idle... make agent8 newer
    await asyncio.sleep(0.05)
    phones("agent8", queues=["support"])
    sipp = call("5001", caller_number, steps=[("pause", 22000)])
    res = await asyncio.to_thread(sipp.wait, 60)
    assert res.returncode == 0, res.errors or res.stderr

    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"]) == ("answered", "agent8")
    assert 14 < row["wait_seconds"] < 20  # agent7 rang for the 15 s ring timeout first
    a7 = api.agent("agent7")
    assert (a7["state"], a7["pause_reason"]) == ("paused", "no_answer")
    legs = await legs_of(db, row["call_id"])
    agent_legs = {leg["endpoint"]: leg for leg in legs if leg["role"] == "agent"}
    assert set(agent_legs) == {"PJSIP/agent7", "PJSIP/agent8"}
    assert agent_legs["PJSIP/agent7"]["answered_at"] is None
    assert agent_legs["PJSIP/agent8"]["answered_at"] is not None
    events = await db.fetch("SELECT state, reason FROM report.agent_events WHERE agent = 'agent7' "
                            "AND call_id = $1 ORDER BY at", row["call_id"])
    assert ("paused", "no_answer") in [(e["state"], e["reason"]) for e in events]


async def test_second_caller_waits_for_the_only_agent_then_is_answered(call, phones, db, caller_number):
    phones("agent9", queues=["support"])
    first = call("5001", caller_number, steps=[("pause", 4000)])
    await asyncio.sleep(1.0)
    second = call("5001", caller_number, steps=[("pause", 22000)])
    r1, r2 = await asyncio.gather(asyncio.to_thread(first.wait, 60), asyncio.to_thread(second.wait, 60))
    assert r1.returncode == 0 and r2.returncode == 0, (r1.errors, r2.errors)
    rows = await wait_call_row(db, caller_number, count=2)
    assert [r["outcome"] for r in rows] == ["answered", "answered"]
    assert all(r["agent"] == "agent9" for r in rows)
    # the second waited for the first call (~3.5 s) plus the 10 s wrap-up
    assert 11 < rows[1]["wait_seconds"] < 18, rows[1]["wait_seconds"]
    assert rows[1]["answered_at"] > rows[0]["ended_at"]


async def test_agent_hanging_up_ends_the_call_cleanly(call, phones, api, db, caller_number):
    phones("agent10", queues=["support"], talk_ms=3000)
    sipp = call("5001", caller_number, hangup="remote")
    res = await asyncio.to_thread(sipp.wait, 40)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"]) == ("answered", "agent10")
    assert 2 < row["talk_seconds"] < 6
    assert api.agent("agent10")["state"] == "wrapup"  # after-call work before the next offer
    legs = await legs_of(db, row["call_id"])
    assert all(leg["ended_at"] is not None for leg in legs) and len(legs) == 2


async def test_paused_agent_is_not_offered_calls(call, phones, api, db, caller_number):
    phones("agent11", queues=["support"])
    api.ok("POST", "/api/agents/agent11/pause", {"reason": "lunch"})
    sipp = call("5001", caller_number, steps=[("pause", 3000)])
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0
    [row] = await wait_call_row(db, caller_number)
    assert row["outcome"] == "abandoned"
    ev = await db.fetchrow("SELECT state, reason FROM report.agent_events WHERE agent='agent11' "
                           "ORDER BY at DESC LIMIT 1")
    assert (ev["state"], ev["reason"]) == ("paused", "lunch")


async def test_burst_of_eight_callers_with_two_agents_leaves_eight_calls_and_no_orphan_legs(
        call, phones, db, caller_number):
    phones("agent12", queues=["support"])
    phones("agent13", queues=["support"])
    sipps = [call("5001", caller_number, steps=[("pause", 6000)]) for _ in range(8)]
    results = await asyncio.gather(*(asyncio.to_thread(s.wait, 60) for s in sipps))
    assert all(r.returncode == 0 for r in results), [r.errors for r in results if r.returncode]
    rows = await wait_call_row(db, caller_number, count=8)
    assert len(rows) == 8
    outcomes = sorted(r["outcome"] for r in rows)
    assert outcomes.count("answered") == 2 and outcomes.count("abandoned") == 6
    # who got which: the two agents took one call each, the first two callers in line
    answered = [r for r in rows if r["outcome"] == "answered"]
    assert sorted(r["agent"] for r in answered) == ["agent12", "agent13"]
    first_two = sorted(rows, key=lambda r: r["queued_at"])[:2]
    assert {r["call_id"] for r in answered} == {r["call_id"] for r in first_two}
    for r in rows:
        if r["outcome"] == "abandoned":
            assert r["agent"] is None and r["answered_at"] is None and r["wait_seconds"] > 4
    ids = [r["call_id"] for r in rows]
    orphans = await db.fetchval(
        "SELECT count(*) FROM report.legs l LEFT JOIN report.calls c USING (call_id) WHERE c.call_id IS NULL")
    assert orphans == 0
    legs = await db.fetch("SELECT call_id, role FROM report.legs WHERE call_id = ANY($1)", ids)
    assert sum(1 for leg in legs if leg["role"] == "caller") == 8
    assert sum(1 for leg in legs if leg["role"] == "agent") >= 2


async def test_waiting_caller_hears_position_and_expected_wait(call, phones, db, caller_number):
    import json

    from conftest import REPO

    phones("agent1", queues=["support"])
    first = call("5001", caller_number, steps=[("pause", 24000)])
    await asyncio.sleep(1.0)
    second = call("5001", caller_number, steps=[("pause", 21000)])  # hears the whole announcement
    r1, r2 = await asyncio.gather(asyncio.to_thread(first.wait, 40), asyncio.to_thread(second.wait, 40))
    assert r1.returncode == 0 and r2.returncode == 0, (r1.errors, r2.errors)
    rows = await wait_call_row(db, caller_number, count=2)
    assert [r["outcome"] for r in rows] == ["answered", "abandoned"]
    waiting_call = rows[1]["call_id"]
    lines = [json.loads(line) for line in (REPO / ".lab" / "logs" / "cc_ari.jsonl").read_text().splitlines()
             if waiting_call in line]
    announced = [e for e in lines if e["event"] == "queue_position_announced"]
    assert announced, "no announcement after 10 s in queue"
    first_announcement = announced[0]
    assert (first_announcement["position"], first_announcement["agents_serving"]) == (1, 1)
    # half an average handle time (talk + wrap-up of recent calls, 180 s before any), in whole minutes
    assert 1 <= first_announcement["expected_wait_min"] <= 2
    assert not [e for e in lines if e["event"] in ("announcement_failed", "call_handler_failed")]
    # Asterisk played every file of it (a missing or unplayable file is logged there)
    messages = (REPO / ".lab" / "asterisk" / "log" / "messages.log").read_text()
    assert f"{waiting_call}: Playback failed" not in messages


async def test_caller_hangs_up_while_agent_rings_agent_stays_ready_not_paused(call, phones, api, db, caller_number):
    phones("agent2", queues=["support"], answer=False)
    sipp = call("5001", caller_number, steps=[("pause", 4000)])
    res = await asyncio.to_thread(sipp.wait, 30)
    assert res.returncode == 0, res.errors or res.stderr
    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"], row["answered_at"]) == ("abandoned", None, None)
    legs = await legs_of(db, row["call_id"])
    [agent_leg] = [leg for leg in legs if leg["role"] == "agent"]
    assert agent_leg["endpoint"] == "PJSIP/agent2" and agent_leg["answered_at"] is None
    assert agent_leg["ended_at"] is not None
    a = api.agent("agent2")
    assert (a["state"], a["pause_reason"]) == ("ready", None)  # not the agent's fault


async def test_every_call_has_exactly_one_call_finished_log_line_with_its_call_id(call, phones, db,
                                                                                caller_number):
    import collections
    import json

    from conftest import REPO

    # its own calls (not whatever ran before): answered, abandoned in queue, invalid number
    phones("agent11", queues=["support"])
    calls = [call("5001", caller_number, steps=[("pause", 3000)]),
             call("4321", caller_number, hangup="remote")]
    results = await asyncio.gather(*(asyncio.to_thread(s.wait, 40) for s in calls))
    assert all(r.returncode == 0 for r in results), [r.errors for r in results]
    rows = await wait_call_row(db, caller_number, count=2)
    ids = {r["call_id"] for r in rows}
    assert len(ids) == 2
    finished: collections.Counter[str] = collections.Counter()
    for line in (REPO / ".lab" / "logs" / "cc_ari.jsonl").read_text().splitlines():
        event = json.loads(line)
        if event.get("event") == "call_finished":
            assert event.get("call_id"), event
            finished[event["call_id"]] += 1
    assert {c: finished[c] for c in ids} == {c: 1 for c in ids}
    assert [c for c, n in finished.items() if n > 1] == []


async def test_transfer_from_the_agent_phone_is_refused_and_the_conversation_goes_on(call, phones, api, db,
                                                                                     caller_number):
    # a blind transfer (REFER) from the softphone would send the caller out of cc_ari's hands
    phones("agent19", queues=["support"], refer_to="5000")
    sipp = call("5001", caller_number, steps=[("pause", 6000)])
    res = await asyncio.to_thread(sipp.wait, 40)
    assert res.returncode == 0, res.errors or res.stderr  # the caller stayed until its own BYE
    [row] = await wait_call_row(db, caller_number)
    assert (row["outcome"], row["agent"]) == ("answered", "agent19")
    assert row["talk_seconds"] > 4  # the REFER (1 s in) did not end the conversation
    legs = await legs_of(db, row["call_id"])
    assert sorted(leg["role"] for leg in legs) == ["agent", "caller"]


async def test_a_waiting_caller_hears_music_then_the_announcement_then_music_again(lab, call, caller_number):
    """What reaches the caller, measured: an ARI snoop on the caller's channel (spy=out: the audio
    Asterisk sends to the caller) recorded by a test application of its own. Support announces the
    position after 10 s. The old defect left callers in silence after an announcement."""
    import aiohttp

    base = lab["CC_ARI_URL"]
    basic = base64.b64encode(f"{lab['CC_ARI_USER']}:{lab['CC_ARI_PASSWORD']}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    name = f"hears-{caller_number}"
    async with aiohttp.ClientSession(headers=auth) as http:
        ws = await http.ws_connect(base.replace("http", "ws", 1) + "/ari/events?app=cc-test-ears")
        try:
            sipp = call("5001", caller_number, steps=[("pause", 24000)])
            pstn = None
            for _ in range(50):
                chans = await (await http.get(f"{base}/ari/channels")).json()
                pstn = next((c for c in chans if c["caller"]["number"] == caller_number), None)
                if pstn is not None and pstn["state"] == "Up":
                    break
                await asyncio.sleep(0.1)
            assert pstn is not None
            snoop = await http.post(f"{base}/ari/channels/{pstn['id']}/snoop",
                                    params={"app": "cc-test-ears", "spy": "out", "snoopId": f"ears-{caller_number}"})
            assert snoop.status == 200, await snoop.text()
            await asyncio.sleep(0.3)
            rec = await http.post(f"{base}/ari/channels/ears-{caller_number}/record",
                                  params={"name": name, "format": "wav", "ifExists": "overwrite"})
            assert rec.status == 201, await rec.text()
            await asyncio.sleep(20)
            await http.post(f"{base}/ari/recordings/live/{name}/stop")
            await http.delete(f"{base}/ari/channels/ears-{caller_number}")
        finally:
            await ws.close()
        await asyncio.to_thread(sipp.wait, 30)
    path = Path(lab["CC_RECORDINGS_DIR"]) / f"{name}.wav"
    with wave.open(str(path)) as w:
        frames, width, rate = w.readframes(w.getnframes()), w.getsampwidth(), w.getframerate()
    path.unlink()
    assert width == 2
    samples = array.array("h", frames)
    step = rate // 2  # half-second windows
    rms = [math.sqrt(sum(x * x for x in samples[i:i + step]) / step) for i in range(0, len(samples) - step + 1, step)]
    assert len(rms) >= 36, len(rms)  # ~20 s recorded
    silent_run = longest = 0
    for level in rms:
        silent_run = silent_run + 1 if level < 50 else 0
        longest = max(longest, silent_run)
    # Music from the start, the announcement at ~10 s, music again after it: never more than
    # 1.5 s of silence (the gaps between the announcement's words and numbers are shorter).
    assert longest <= 3, rms
    assert min(rms[-8:]) >= 50, rms  # the last 4 s, well after the announcement: music
