"""Outbound campaigns end to end on the lab: SIPp plays the called parties behind the carrier
trunk (tests/carrier.py: human, machine, busy, no answer, reject, congestion, by the number's
last digit) and SIPp agents sit in persistent sessions. Real Asterisk (AMD included), real
PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from carrier import Carrier, number

from cc_ari.db.campaigns import DialerStore
from cc_ari.db.store import CallStore
from conftest import REPO, csv_post, lab_cmd, wait_call_row
from sipp import AgentPhone

pytestmark = pytest.mark.lab

WINDOW_ALWAYS = {"start": "00:00", "end": "23:59"}


@pytest.fixture(scope="module")
def carrier(lab: dict[str, str]) -> Iterator[Carrier]:
    with Carrier(sip_target=f"127.0.0.1:{lab['CC_SIP_PORT']}") as c:
        yield c


@pytest.fixture
def campaigns(api: Any) -> Iterator[Callable[..., str]]:
    """New campaigns, stopped at the end of the test (a running campaign would go on dialing)."""
    made: list[str] = []

    def make(mode: str = "progressive", **extra: Any) -> str:
        name = f"d{time.time_ns() % 10**12}"
        body = {"name": name, "mode": mode, "caller_id": "+15550100", "window": WINDOW_ALWAYS, **extra}
        status, out = api.call("POST", "/api/campaigns", body)
        assert status == 201, out
        made.append(name)
        return name

    yield make
    for name in made:
        api.call("POST", f"/api/campaigns/{name}/stop")


def import_leads(lab: dict[str, str], name: str, rows: list[tuple[str, str, str]]) -> None:
    """rows: (id, phone, timezone)."""
    text = "id,phone,timezone,first_name\n" + "".join(f"{i},{p},{tz},Name-{i}\n" for i, p, tz in rows)
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", text)
    assert status == 200, body


def session_agent(phones: Callable[..., AgentPhone], api: Any, name: str, campaign: str,
                  queues: list[str] | None = None) -> AgentPhone:
    phone = phones(name, login=False)
    api.ok("POST", f"/api/agents/{name}/login", {"campaigns": [campaign], **({"queues": queues} if queues else {})})
    assert wait_for(lambda: (api.agent(name).get("session") or {}).get("up"), 10), api.agent(name)
    return phone


def wait_for(pred: Callable[[], Any], timeout: float, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(interval)
    return pred()


def dispose_while_running(api: Any, agents: list[str], name: str, timeout: float,
                          code: str = "sale") -> dict[str, Any]:
    """Drive the agents' dispositions until the campaign is finished; its last view."""
    deadline = time.monotonic() + timeout
    c: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for a in agents:
            view = api.agent(a)
            if view["state"] == "wrapup" and view.get("disposition_pending"):
                api.call("POST", f"/api/agents/{a}/disposition", {"code": code})
        c = api.ok("GET", f"/api/campaigns/{name}")
        if c["state"] == "finished":
            return c
        time.sleep(0.3)
    return c


async def rows_of(db: asyncpg.Connection, name: str) -> dict[str, asyncpg.Record]:
    rows = await db.fetch("SELECT * FROM report.calls WHERE campaign = $1 ORDER BY started_at", name)
    return {r["lead_id"]: r for r in rows}


async def leads_of(db: asyncpg.Connection, name: str) -> dict[str, asyncpg.Record]:
    return {r["lead_id"]: r for r in await db.fetch("SELECT * FROM report.leads WHERE campaign = $1", name)}


# ---------------------------------------------------------------------------------------------
async def test_progressive_campaign_runs_to_completion_with_every_outcome(lab, api, db, phones, carrier, campaigns):
    name = campaigns("progressive", window={"start": "08:00", "end": "21:00"},
                     retry={"busy": 60, "no_answer": 60, "machine": 60, "failed": 60}, max_attempts=1, ring_timeout=15)
    kinds = ["human_hangs_up", "busy", "machine", "reject", "congestion", "no_answer", "human_hangs_up"]
    # Leads in a zone whose window is open now:
    day = next(tz for tz in ("UTC", "Asia/Tokyo", "America/Los_Angeles", "Asia/Kolkata", "America/New_York")
               if 8 <= datetime.now(UTC).astimezone(ZoneInfo(tz)).hour < 20)
    leads = [(f"L{i}", number(k, 100 + i), day) for i, k in enumerate(kinds)]
    # On the DNC lists, and outside its window (a zone where it is the middle of the night now):
    dnc_phone = number("human", 150)
    late_phone = number("human", 151)
    night = next(tz for tz in ("Pacific/Kiritimati", "Asia/Tokyo", "America/Los_Angeles", "Europe/London")
                 if not 8 <= datetime.now(UTC).astimezone(ZoneInfo(tz)).hour < 20)
    leads += [("LD", dnc_phone, "UTC"), ("LW", late_phone, night)]
    import_leads(lab, name, leads)
    api.ok("POST", "/api/dnc", {"numbers": [dnc_phone]})
    session_agent(phones, api, "agent4", name)
    try:
        api.ok("POST", f"/api/campaigns/{name}/start")
        # The late lead keeps the campaign running (waiting for its window): not finished, but
        # every other lead settles.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(await wait_rows(db, name, 7, timeout=0.5)) < 7:
            c = dispose_while_running(api, ["agent4"], name, 0.5)
        wait_for(lambda: api.agent("agent4")["state"] == "wrapup", 10)
        c = dispose_while_running(api, ["agent4"], name, 1)
    finally:
        api.call("DELETE", f"/api/dnc/{dnc_phone}")
    await asyncio.sleep(1.0)
    got = await leads_of(db, name)
    calls = await rows_of(db, name)
    assert got["LD"]["status"] == "dnc" and got["LD"]["attempts"] == 0
    assert got["LW"]["status"] == "scheduled" and got["LW"]["attempts"] == 0 and got["LW"]["next_attempt_at"]
    assert dnc_phone not in carrier.calls_seen() and late_phone not in carrier.calls_seen()
    phones_by_lead = {i: p for i, p, _ in leads}
    expected = {"L0": ("answered", "done"), "L1": ("busy", "exhausted"), "L2": ("machine", "exhausted"),
                "L3": ("failed", "exhausted"), "L4": ("failed", "exhausted"), "L5": ("no_answer", "exhausted"),
                "L6": ("answered", "done")}
    for lead, (outcome, status) in expected.items():
        assert calls[lead]["outcome"] == outcome, (lead, dict(calls[lead]))
        assert got[lead]["status"] == status, (lead, dict(got[lead]))
        assert got[lead]["attempts"] == 1 and got[lead]["last_outcome"] == outcome
        assert calls[lead]["direction"] == "outbound" and calls[lead]["caller"] == "+15550100"
        assert calls[lead]["dnis"] == phones_by_lead[lead]
    for lead in ("L0", "L6"):
        row = calls[lead]
        assert row["amd_result"] == "HUMAN" and row["agent"] == "agent4" and got[lead]["disposition"] == "sale"
        assert 0.5 < float(row["amd_seconds"]) < 4.0
        assert float(row["connect_seconds"]) - float(row["amd_seconds"]) < 0.3
        legs = {r["role"]: r for r in await db.fetch("SELECT * FROM report.legs WHERE call_id = $1",
                                                     row["call_id"])}
        assert set(legs) == {"customer", "agent"} and legs["agent"]["endpoint"] == "PJSIP/agent4"
    assert calls["L2"]["amd_result"] == "MACHINE"
    causes = {lead: (await db.fetchval("SELECT hangup_cause FROM report.legs WHERE call_id = $1 "
                                       "AND role = 'customer'", calls[lead]["call_id"]))
              for lead in ("L1", "L3", "L4", "L5")}
    assert (causes["L1"], causes["L3"], causes["L4"]) == (17, 21, 34)
    assert causes["L5"] not in (17, 21, 34)  # our ring timeout ended it
    # every dialed number once
    seen = [p for p in carrier.calls_seen() if p in phones_by_lead.values()]
    assert sorted(seen) == sorted(p for i, p, _ in leads if i not in ("LD", "LW"))
    assert c["live"]["leads_left"] is not None
    sessions = await db.fetch("SELECT * FROM report.agent_sessions WHERE agent = 'agent4' ORDER BY started_at DESC")
    assert sessions and sessions[0]["answered_at"] is not None


async def test_a_person_nobody_can_take_hears_the_safe_harbor_message_and_is_a_drop(
        lab, api, db, phones, carrier, campaigns):
    name = campaigns("progressive")
    import_leads(lab, name, [("P0", number("human", 200), "UTC")])
    session_agent(phones, api, "agent5", name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    assert wait_for(lambda: api.ok("GET", f"/api/campaigns/{name}")["live"]["dialing"] >= 1, 10)
    api.ok("POST", "/api/agents/agent5/pause", {"reason": "coffee"})  # while the call rings
    rows = await wait_rows(db, name, 1, timeout=40)
    row = rows[0]
    assert row["outcome"] == "dropped" and row["amd_result"] == "HUMAN" and row["agent"] is None
    # the message (about 7 s of speech and the call-back number) was played before the hangup
    assert float(row["talk_seconds"]) > float(row["amd_seconds"]) + 5.0
    lead = (await leads_of(db, name))["P0"]
    hold = lead["next_attempt_at"] - datetime.now(UTC)
    assert lead["status"] == "scheduled" and timedelta(hours=71) < hold <= timedelta(hours=72)
    live = api.ok("GET", f"/api/campaigns/{name}")["live"]
    assert live["drops"] == 1 and live["live_answers"] == 1 and live["abandon_rate"] == 1.0


async def wait_rows(db: asyncpg.Connection, name: str, count: int, *, timeout: float) -> list[asyncpg.Record]:
    deadline = time.monotonic() + timeout
    rows: list[asyncpg.Record] = []
    while time.monotonic() < deadline:
        rows = await db.fetch("SELECT * FROM report.calls WHERE campaign = $1 AND ended_at IS NOT NULL "
                              "AND outcome IS NOT NULL ORDER BY started_at", name)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.3)
    return rows


async def test_agent_hangs_up_then_a_callback_disposition_schedules_the_lead(lab, api, db, phones, carrier, campaigns):
    name = campaigns("progressive")
    import_leads(lab, name, [("C0", number("human", 300), "UTC")])
    session_agent(phones, api, "agent6", name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    view = wait_for(lambda: (a := api.agent("agent6"))["state"] == "on_call" and a, 20)
    assert view and view["call"]["lead"]["lead_id"] == "C0"
    assert view["call"]["lead"]["fields"] == {"first_name": "Name-C0"}
    status, body = api.call("POST", "/api/agents/agent6/disposition", {"code": "sale"})
    assert status == 409, body  # still talking: nothing to dispose yet
    api.ok("POST", "/api/agents/agent6/hangup")
    assert wait_for(lambda: api.agent("agent6")["state"] == "wrapup", 5)
    assert api.agent("agent6")["session"]["up"]  # the agent stays in the session
    at = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    status, body = api.call("POST", "/api/agents/agent6/disposition", {"code": "callback"})
    assert status == 422, body
    out = api.ok("POST", "/api/agents/agent6/disposition", {"code": "callback", "callback_at": at.isoformat()})
    assert out["status"] == "scheduled"
    assert api.agent("agent6")["state"] == "ready"
    lead = (await leads_of(db, name))["C0"]
    assert lead["status"] == "scheduled" and lead["next_attempt_at"] == at and lead["disposition"] == "callback"
    row = (await wait_rows(db, name, 1, timeout=10))[0]
    assert row["outcome"] == "answered" and row["agent"] == "agent6"


async def test_losing_the_session_pauses_the_agent_and_ready_calls_them_again(lab, api, db, phones, carrier, campaigns):
    name = campaigns("progressive")
    phone = session_agent(phones, api, "agent7", name)
    leg = api.agent("agent7")["session"]["leg_id"]
    phone.uas.stop()  # the softphone dies ...
    phone.unregister()
    lab_ari_hangup(lab, leg)  # ... and its call is gone
    assert wait_for(lambda: api.agent("agent7")["pause_reason"] == "session_lost", 10), api.agent("agent7")
    row = await wait_session_end(db, leg)
    assert row["end_reason"] == "session_lost"
    phone2 = phones("agent7", login=False)
    api.ok("POST", "/api/agents/agent7/ready")
    assert wait_for(lambda: (api.agent("agent7").get("session") or {}).get("up"), 10), api.agent("agent7")
    api.ok("POST", "/api/agents/agent7/logout")
    new_leg = (await db.fetch("SELECT leg_id FROM report.agent_sessions WHERE agent = 'agent7' "
                              "ORDER BY started_at DESC LIMIT 1"))[0]["leg_id"]
    assert (await wait_session_end(db, new_leg))["end_reason"] == "logout"
    del phone2


def lab_ari_hangup(lab: dict[str, str], channel_id: str) -> None:
    import base64
    import urllib.request

    req = urllib.request.Request(f"{lab['CC_ARI_URL']}/ari/channels/{channel_id}", method="DELETE")
    auth = base64.b64encode(f"{lab['CC_ARI_USER']}:{lab['CC_ARI_PASSWORD']}".encode()).decode()
    req.add_header("Authorization", f"Basic {auth}")
    urllib.request.urlopen(req, timeout=5).close()


async def wait_session_end(db: asyncpg.Connection, leg: str, timeout: float = 10.0) -> asyncpg.Record:
    deadline = time.monotonic() + timeout
    while True:
        row = await db.fetchrow("SELECT * FROM report.agent_sessions WHERE leg_id = $1", leg)
        if (row is not None and row["ended_at"] is not None) or time.monotonic() > deadline:
            assert row is not None and row["ended_at"] is not None, row
            return row
        await asyncio.sleep(0.2)


async def test_a_blended_agent_takes_an_inbound_call_between_outbound_ones(
        lab, api, db, phones, carrier, campaigns, call, caller_number):
    name = campaigns("progressive")
    import_leads(lab, name, [("B0", number("human_hangs_up", 400), "UTC"),
                             ("B1", number("human_hangs_up", 401), "UTC")])
    session_agent(phones, api, "agent8", name, queues=["support"])
    api.ok("POST", f"/api/campaigns/{name}/start")
    await wait_rows(db, name, 1, timeout=30)
    api.ok("POST", f"/api/campaigns/{name}/pause")
    wait_for(lambda: api.agent("agent8")["state"] == "wrapup", 10)
    api.call("POST", "/api/agents/agent8/disposition", {"code": "sale"})
    sipp = call("5001", caller_number, steps=[("pause", 4000)])
    rows = await wait_call_row(db, caller_number, timeout=40)
    assert sipp.wait(30).returncode == 0
    assert rows and rows[0]["outcome"] == "answered" and rows[0]["agent"] == "agent8"
    legs = {r["role"]: r for r in await db.fetch("SELECT * FROM report.legs WHERE call_id = $1", rows[0]["call_id"])}
    assert legs["agent"]["endpoint"] == "PJSIP/agent8"  # through the session: the phone did not ring again
    wait_for(lambda: api.agent("agent8")["state"] == "ready", 15)
    api.ok("POST", f"/api/campaigns/{name}/start")
    out = await wait_rows(db, name, 2, timeout=40)
    assert [r["outcome"] for r in out] == ["answered", "answered"]


async def test_two_dialers_never_claim_the_same_lead(lab, api, campaigns, tmp_path):
    name = campaigns("progressive")
    import_leads(lab, name, [(f"T{i}", number("human", i), "UTC") for i in range(300)])
    stores = [CallStore(lab["CC_DATABASE_URL"], tmp_path / f"j{i}.jsonl") for i in range(2)]
    for s in stores:
        await s.start()
    try:
        dialers = [DialerStore(s) for s in stores]
        counter = iter(range(10**6))

        async def claim_all(d: DialerStore) -> list[str]:
            got: list[str] = []
            while True:
                res = await d.claim(name, 7, call_ids=lambda: f"x-{next(counter)}", window=lambda _z: None,
                                    lease=3600)
                if not res.claimed:
                    return got
                got += [c.lead_id for c in res.claimed]

        a, b = await asyncio.gather(*(claim_all(d) for d in dialers))
    finally:
        for s in stores:
            await s.close()
    assert not set(a) & set(b)
    assert len(a) + len(b) == 300 and a and b


async def test_killing_the_service_mid_campaign_loses_no_lead_and_no_call_row(lab, api, db, phones, carrier,
                                                                                 campaigns):
    name = campaigns("progressive", max_attempts=1)
    kinds = ["human", "no_answer", "human", "machine", "human_hangs_up", "busy"]
    leads = [(f"K{i}", number(k, 500 + i), "UTC") for i, k in enumerate(kinds)]
    import_leads(lab, name, leads)
    for a in ("agent9", "agent14"):
        session_agent(phones, api, a, name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    # Killed while one agent talks and another call rings (or runs AMD).
    assert wait_for(lambda: api.agent("agent9")["state"] == "on_call" or api.agent("agent14")["state"] == "on_call",
                    20)
    assert wait_for(lambda: api.ok("GET", f"/api/campaigns/{name}")["live"]["ringing"] >= 1, 20)
    talking = next(a for a in ("agent9", "agent14") if api.agent(a)["state"] == "on_call")
    pid = int((REPO / ".lab" / "run" / "cc_ari.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    await asyncio.sleep(1)
    await asyncio.to_thread(lab_cmd, "service-start")
    assert wait_for(lambda: api.call("GET", "/healthz")[0] == 200, 30)
    assert wait_for(lambda: api.agent(talking)["state"] == "on_call", 15), api.agent(talking)  # still talking
    api.ok("POST", f"/api/agents/{talking}/hangup")

    def settled() -> bool:
        for a in ("agent9", "agent14"):
            view = api.agent(a)
            if view["state"] == "on_call":
                api.call("POST", f"/api/agents/{a}/hangup")
            if view["state"] == "wrapup" and view.get("disposition_pending"):
                api.call("POST", f"/api/agents/{a}/disposition", {"code": "sale"})
        c = api.ok("GET", f"/api/campaigns/{name}")
        return c["state"] == "finished"

    assert wait_for(settled, 90, interval=0.5), api.ok("GET", f"/api/campaigns/{name}")
    got = await leads_of(db, name)
    rows = await db.fetch("SELECT * FROM report.calls WHERE campaign = $1", name)
    assert all(r["ended_at"] is not None and r["outcome"] is not None for r in rows), [dict(r) for r in rows]
    assert len(rows) == sum(lead["attempts"] for lead in got.values())  # a row for every attempt
    assert all(lead["status"] in ("done", "exhausted") and lead["attempts"] == 1 for lead in got.values()), got
    assert sorted(r["lead_id"] for r in rows) == sorted(got)
    open_leads = await db.fetchval("SELECT count(*) FROM cc.leads WHERE campaign = $1 AND dialing_call_id IS NOT NULL",
                                   name)
    assert open_leads == 0


async def test_a_predictive_campaign_runs_to_completion_with_three_agents(lab, api, db, phones, carrier, campaigns):
    name = campaigns("predictive", max_attempts=1)
    kinds = ["human_hangs_up"] * 6 + ["busy", "machine", "no_answer", "reject"] + ["human_quick_hangup"]
    leads = [(f"R{i}", number(k, 600 + i), "UTC") for i, k in enumerate(kinds)]
    import_leads(lab, name, leads)
    agents = ["agent10", "agent11", "agent12"]
    for a in agents:
        session_agent(phones, api, a, name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    c = dispose_while_running(api, agents, name, 150)
    assert c["state"] == "finished", c
    calls = await rows_of(db, name)
    got = await leads_of(db, name)
    assert set(calls) == set(got) == {i for i, _, _ in leads}  # every lead dialed once, every call has a row
    for lead, row in calls.items():
        status = got[lead]["status"]
        if row["outcome"] == "answered":
            assert status == "done" and got[lead]["disposition"] == "sale" and row["agent"] in agents
        elif row["outcome"] == "dropped":
            assert status == "scheduled"
        else:
            assert status == "exhausted", (lead, row["outcome"], status)
    outcomes = [r["outcome"] for r in calls.values()]
    assert outcomes.count("answered") >= 5 and outcomes.count("busy") == 1 and outcomes.count("machine") == 1
    live = c["live"]
    assert live["abandon_rate"] <= 0.03 and live["drops"] == outcomes.count("dropped")
    assert live["leads_left"] == 0 and live["dialing"] == 0


async def test_preview_the_agent_dials_the_lead_on_their_screen(lab, api, db, phones, carrier, campaigns):
    name = campaigns("preview")
    import_leads(lab, name, [("V0", number("busy", 700), "UTC"), ("V1", number("human", 701), "UTC")])
    status, body = api.call("POST", "/api/agents/agent13/dial")
    assert status == 409, body  # not logged in to a preview campaign
    session_agent(phones, api, "agent13", name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    await asyncio.sleep(2.0)
    assert api.ok("GET", f"/api/campaigns/{name}")["live"]["dialing"] == 0  # nothing dials by itself
    out = api.ok("POST", "/api/agents/agent13/dial")
    assert out["lead"]["lead_id"] == "V0" and out["lead"]["fields"] == {"first_name": "Name-V0"}
    await wait_rows(db, name, 1, timeout=15)  # busy: the agent is free again at once
    assert wait_for(lambda: api.agent("agent13")["state"] == "ready", 5), api.agent("agent13")
    out = api.ok("POST", "/api/agents/agent13/dial")
    assert out["lead"]["lead_id"] == "V1"
    assert wait_for(lambda: api.agent("agent13")["state"] == "on_call", 15)
    api.ok("POST", "/api/agents/agent13/hangup")
    assert wait_for(lambda: api.agent("agent13")["state"] == "wrapup", 5)
    api.ok("POST", "/api/agents/agent13/disposition", {"code": "dnc"})
    rows = await wait_rows(db, name, 2, timeout=10)
    assert [r["outcome"] for r in rows] == ["busy", "answered"]
    assert rows[1]["agent"] == "agent13" and float(rows[1]["connect_seconds"]) < 0.3 + float(rows[1]["amd_seconds"])
    got = await leads_of(db, name)
    assert got["V1"]["status"] == "dnc" and got["V0"]["status"] == "scheduled"
    assert number("human", 701) in api.ok("GET", f"/api/campaigns/{name}/dnc")["numbers"]
    status, body = api.call("POST", "/api/agents/agent13/dial")
    assert status == 409, body  # V0 waits for its retry: nothing to dial now


async def test_a_restart_while_amd_listens_still_settles_the_call_and_its_lead(lab, api, db, phones, carrier,
                                                                               campaigns):
    name = campaigns("progressive", max_attempts=1)
    import_leads(lab, name, [("A0", number("human", 800), "UTC")])
    session_agent(phones, api, "agent15", name)
    api.ok("POST", f"/api/campaigns/{name}/start")

    def answered() -> bool:
        live = api.ok("GET", f"/api/campaigns/{name}")["live"]
        return live["dialing"] == 1 and live["ringing"] == 0

    assert wait_for(answered, 20, interval=0.05)  # answered: AMD is listening to the greeting
    pid = int((REPO / ".lab" / "run" / "cc_ari.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    await asyncio.to_thread(lab_cmd, "service-start")
    assert wait_for(lambda: api.call("GET", "/healthz")[0] == 200, 30)

    async def settled() -> asyncpg.Record | None:
        return await db.fetchrow("SELECT * FROM report.calls c JOIN cc.leads l USING (campaign, lead_id) "
                                 "WHERE c.campaign = $1 AND c.ended_at IS NOT NULL AND l.dialing_call_id IS NULL",
                                 name)

    deadline = time.monotonic() + 90
    row = await settled()
    while row is None and time.monotonic() < deadline:
        view = api.agent("agent15")
        if view["state"] == "on_call":  # connected after the restart: the agent ends it
            api.call("POST", "/api/agents/agent15/hangup")
        if view["state"] == "wrapup" and view.get("disposition_pending"):
            api.call("POST", "/api/agents/agent15/disposition", {"code": "sale"})
        await asyncio.sleep(0.5)
        row = await settled()
    assert row is not None, await db.fetch("SELECT * FROM report.calls WHERE campaign = $1", name)
    lead = (await leads_of(db, name))["A0"]
    assert lead["attempts"] == 1 and lead["last_outcome"] == row["outcome"]
    assert (lead["status"], row["outcome"]) in {("done", "answered"), ("scheduled", "dropped"),
                                                ("exhausted", "abandoned")}, (lead["status"], row["outcome"])


async def test_a_machine_gets_the_campaigns_message_when_the_campaign_says_so(lab, api, db, phones, carrier,
                                                                              campaigns):
    name = campaigns("progressive", machine_action="message", max_attempts=2, retry={"machine": 60})
    import_leads(lab, name, [("M0", number("machine", 900), "UTC")])
    session_agent(phones, api, "agent16", name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    row = (await wait_rows(db, name, 1, timeout=40))[0]
    assert row["outcome"] == "machine" and row["amd_result"] == "MACHINE" and row["agent"] is None
    # the message (about 6 s) was left before the hangup; the agent was never offered the call
    assert float(row["talk_seconds"]) > float(row["amd_seconds"]) + 4.0
    assert api.agent("agent16")["state"] == "ready"
    lead = (await leads_of(db, name))["M0"]
    assert lead["status"] == "scheduled" and lead["attempts"] == 1 and lead["last_outcome"] == "machine"


async def test_a_database_outage_mid_call_loses_nothing_and_campaign_requests_say_503(lab, api, phones, carrier,
                                                                                      campaigns):
    name = campaigns("progressive", max_attempts=1)
    import_leads(lab, name, [("D0", number("human", 950), "UTC")])
    session_agent(phones, api, "agent17", name)
    api.ok("POST", f"/api/campaigns/{name}/start")
    assert wait_for(lambda: api.agent("agent17")["state"] == "on_call", 20)
    await asyncio.to_thread(lab_cmd, "pg-stop")
    try:
        status, body = api.call("GET", f"/api/campaigns/{name}")
        assert status == 503 and "nothing was changed" in body["error"], (status, body)
        assert api.call("POST", f"/api/campaigns/{name}/pause")[0] == 503
        api.ok("POST", "/api/agents/agent17/hangup")  # calls go on without the database
        assert wait_for(lambda: api.agent("agent17")["state"] == "wrapup", 10)
        status, body = api.call("POST", "/api/agents/agent17/disposition", {"code": "sale"})
        assert status == 503, (status, body)
    finally:
        await asyncio.to_thread(lab_cmd, "pg-start")
    assert wait_for(lambda: api.call("GET", f"/api/campaigns/{name}")[0] == 200, 30)
    api.ok("POST", "/api/agents/agent17/disposition", {"code": "sale"})  # kept for when it is back
    db = await asyncpg.connect(lab["CC_DATABASE_URL"])
    try:
        rows = await wait_rows(db, name, 1, timeout=30)
        assert rows and rows[0]["outcome"] == "answered" and rows[0]["agent"] == "agent17"
        lead = (await leads_of(db, name))["D0"]
        assert (lead["status"], lead["disposition"], lead["attempts"]) == ("done", "sale", 1)
        assert await db.fetchval("SELECT count(*) FROM report.legs WHERE call_id = $1", rows[0]["call_id"]) == 2
    finally:
        await db.close()
