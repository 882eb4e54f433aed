"""Outbound campaigns through the HTTP API (LAB.md, "Outbound campaigns"): campaigns, lead
files (all or nothing, duplicates, E.164, time zones), state changes, do-not-call lists."""

from __future__ import annotations

import time
from typing import Any

import pytest

from conftest import csv_post

pytestmark = pytest.mark.lab


def new_campaign(api: Any, **extra: Any) -> str:
    name = f"t{time.time_ns() % 10**12}"
    status, body = api.call("POST", "/api/campaigns", {"name": name, "mode": "progressive",
                                                       "caller_id": "+15550100", **extra})
    assert status == 201, body
    return name


def test_create_read_and_the_defaults(api):
    name = new_campaign(api, abandon_target=0.01)
    c = api.ok("GET", f"/api/campaigns/{name}")
    assert (c["state"], c["mode"], c["abandon_target"], c["ring_timeout"]) == ("created", "progressive", 0.01, 20)
    assert c["leads"] == {"pending": 0, "scheduled": 0, "done": 0, "dnc": 0, "exhausted": 0}
    assert name in [x["name"] for x in api.ok("GET", "/api/campaigns")["campaigns"]]
    status, body = api.call("POST", "/api/campaigns", {"name": name, "mode": "progressive", "caller_id": "+15550100"})
    assert status == 409, body
    status, body = api.call("POST", "/api/campaigns", {"name": "x", "mode": "predictive", "caller_id": "+1555",
                                                       "ring_timeout": 5})
    assert status == 422 and "ring_timeout" in body["error"]
    assert api.call("GET", "/api/campaigns/nope")[0] == 404


async def test_a_lead_file_imports_whole_with_duplicates_reported(api, lab, db):
    name = new_campaign(api)
    text = ("phone,id,name,timezone\n"
            "+1 212 555 0100,a1,Ann,\n"
            "(202) 555-0123,a2,Bob,America/Chicago\n"
            "212-555-0100,a3,Ann again,\n"
            "+33 1 23 45 67 89,a4,Céline,\n")
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", text)
    assert status == 200, body
    assert body == {"imported": 3, "duplicates": [{"line": 4, "phone": "+12125550100"}]}
    rows = await db.fetch("SELECT lead_id, phone, timezone, status, attempts FROM report.leads WHERE campaign = $1 "
                          "ORDER BY lead_id", name)
    assert [tuple(r) for r in rows] == [("a1", "+12125550100", "America/New_York", "pending", 0),
                                        ("a2", "+12025550123", "America/Chicago", "pending", 0),
                                        ("a4", "+33123456789", "Europe/Paris", "pending", 0)]
    # The same numbers again: all duplicates (against the campaign), nothing new.
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", "phone\n+12125550100\n")
    assert status == 200 and body == {"imported": 0, "duplicates": [{"line": 2, "phone": "+12125550100"}]}
    assert api.ok("GET", f"/api/campaigns/{name}")["leads"]["pending"] == 3


async def test_a_bad_file_imports_nothing_and_names_every_bad_row(api, lab, db):
    name = new_campaign(api)
    text = "phone,name\n+12125550100,ok\n12,too short\n+12125550101,ok\n,empty\n+1212555010x,letters\n"
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", text)
    assert status == 422, body
    assert [r["row"] for r in body["rows"]] == [3, 5, 6]
    assert await db.fetchval("SELECT count(*) FROM report.leads WHERE campaign = $1", name) == 0
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", "name\nAnn\n")
    assert status == 422 and body["rows"] == [{"row": 1, "error": "the header has no `phone` column"}]


async def test_a_hundred_thousand_leads_import(api, lab, db):
    """COPY, not row-by-row inserts (the time is `make bench`'s business; this checks it all lands)."""
    name = new_campaign(api)
    rows = "\n".join(f"+1{200 + i // 10_000_000 % 700:03d}{i % 10_000_000:07d},L{i},n{i}" for i in range(100_000))
    status, body = csv_post(lab, f"/api/campaigns/{name}/leads", "phone,id,name\n" + rows + "\n")
    assert status == 200 and body["imported"] == 100_000, body
    assert await db.fetchval("SELECT count(*) FROM report.leads WHERE campaign = $1", name) == 100_000


def test_start_pause_stop_and_roles(api, lab):
    name = new_campaign(api)
    sup, agt = lab["CC_SUPERVISOR_TOKEN"], lab["CC_AGENT_TOKEN"]
    assert api.call("POST", f"/api/campaigns/{name}/start", token=agt)[0] == 403
    assert api.call("POST", f"/api/campaigns/{name}/pause")[0] == 409  # not running
    status, body = api.call("POST", f"/api/campaigns/{name}/start", token=sup)
    assert status == 200 and body["state"] == "running"
    assert api.ok("POST", f"/api/campaigns/{name}/pause")["state"] == "paused"
    assert api.ok("POST", f"/api/campaigns/{name}/stop")["state"] == "stopped"
    assert api.call("POST", f"/api/campaigns/{name}/start")[0] == 409
    assert api.call("GET", f"/api/campaigns/{name}", token=agt)[0] == 200
    assert csv_post(lab, f"/api/campaigns/{name}/leads", "phone\n+12125550100\n", token=agt)[0] == 403


def test_do_not_call_lists(api):
    name = new_campaign(api)
    assert api.ok("POST", "/api/dnc", {"numbers": ["+1 212 555 0199", "2125550198"]})["added"] == \
        ["+12125550198", "+12125550199"]
    assert {"+12125550198", "+12125550199"} <= set(api.ok("GET", "/api/dnc")["numbers"])
    assert api.ok("DELETE", "/api/dnc/+12125550198")["removed"] == "+12125550198"
    assert api.call("DELETE", "/api/dnc/+12125550198")[0] == 404
    api.ok("POST", f"/api/campaigns/{name}/dnc", {"numbers": ["+33123456789"]})
    assert api.ok("GET", f"/api/campaigns/{name}/dnc")["numbers"] == ["+33123456789"]
    status, body = api.call("POST", "/api/dnc", {"numbers": ["12"]})
    assert status == 422 and "numbers[0]" in body["error"]
    api.ok("DELETE", "/api/dnc/+12125550199")
