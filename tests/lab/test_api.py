"""The agent API of LAB.md through the running service: auth, validation, no half-applied change."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.lab


def test_api_without_token_is_401_with_json_error(api):
    status, body = api.call("GET", "/api/agents", token=None)
    assert status == 401 and "token" in body["error"]


def test_api_with_wrong_token_is_401(api):
    status, _body = api.call("POST", "/api/agents/agent1/login", {"queues": ["support"]}, token="x" * 32)
    assert status == 401
    assert api.agent("agent1")["state"] == "logged_out"


def test_unknown_agent_is_404(api):
    status, body = api.call("POST", "/api/agents/agent999/login", {"queues": ["support"]})
    assert status == 404 and "agent999" in body["error"]
    status, _ = api.call("GET", "/api/agents/nobody")
    assert status == 404


@pytest.mark.parametrize("raw, status", [
    (b"{not json", 400),
    (b"[1, 2]", 400),
    (b"", 400),
    (b'{"queues": "support"}', 422),
    (b'{"queues": []}', 422),
    (b'{"queues": ["support"], "skills": {"fr": "high"}}', 422),
    (b'{"queues": ["support"], "colour": "blue"}', 422),
])
def test_malformed_login_body_is_rejected_and_nothing_changes(api, raw, status):
    got, body = api.call("POST", "/api/agents/agent1/login", raw=raw)
    assert got == status, body
    assert isinstance(body, dict) and body["error"]
    assert api.agent("agent1")["state"] == "logged_out"


def test_login_with_one_unknown_queue_is_not_half_applied(api):
    status, body = api.call("POST", "/api/agents/agent1/login", {"queues": ["support", "nosuchqueue"]})
    assert status == 422 and "nosuchqueue" in body["error"]
    a = api.agent("agent1")
    assert a["state"] == "logged_out" and a["queues"] == []


def test_login_pause_ready_logout_cycle(api, db):
    a = api.ok("POST", "/api/agents/agent1/login", {"queues": ["support", "sales"], "skills": {"en": 5}})
    assert (a["state"], a["queues"], a["skills"]) == ("ready", ["sales", "support"], {"en": 5})
    a = api.ok("POST", "/api/agents/agent1/pause", {"reason": "break"})
    assert (a["state"], a["pause_reason"]) == ("paused", "break")
    assert api.ok("POST", "/api/agents/agent1/ready")["state"] == "ready"
    assert api.ok("POST", "/api/agents/agent1/logout")["state"] == "logged_out"


def test_pause_reason_must_be_a_short_string(api):
    api.ok("POST", "/api/agents/agent1/login", {"queues": ["support"]})
    for bad in ({"reason": ""}, {"reason": 5}, {"reason": "x" * 65}, {"why": "break"}):
        status, body = api.call("POST", "/api/agents/agent1/pause", bad)
        assert status == 422, (bad, body)
    assert api.agent("agent1")["state"] == "ready"


def test_pause_while_logged_out_is_a_conflict(api):
    status, body = api.call("POST", "/api/agents/agent1/pause", {"reason": "break"})
    assert status == 409 and "log in" in body["error"]


def test_lists_agents_and_queues(api):
    api.ok("POST", "/api/agents/agent2/login", {"queues": ["sales"]})
    agents = api.ok("GET", "/api/agents")["agents"]
    assert [a["agent"] for a in agents][:3] == ["agent1", "agent2", "agent3"] and len(agents) == 20
    queues = {q["queue"]: q for q in api.ok("GET", "/api/queues")["queues"]}
    assert set(queues) == {"sales", "support"}
    assert queues["sales"]["agents_logged_in"] == 1
    assert {"waiting", "longest_wait_seconds", "agents_ready"} <= set(queues["sales"])


def test_unknown_route_and_wrong_method_are_json_errors(api):
    status, body = api.call("GET", "/api/nothing-here")
    assert status == 404 and body["error"]
    status, body = api.call("DELETE", "/api/agents/agent1/login")
    assert status == 405 and body["error"]


async def test_agent_state_changes_are_audited_in_postgres(api, db):
    api.ok("POST", "/api/agents/agent3/login", {"queues": ["support"]})
    api.ok("POST", "/api/agents/agent3/pause", {"reason": "training"})
    import asyncio

    for _ in range(40):
        row = await db.fetchrow("SELECT state, reason FROM report.agent_events WHERE agent='agent3' "
                                "ORDER BY at DESC LIMIT 1")
        if row and row["reason"] == "training":
            break
        await asyncio.sleep(0.1)
    assert row is not None and (row["state"], row["reason"]) == ("paused", "training")


def test_health_and_recent_ami_events_for_ops(api):
    status, health = api.call("GET", "/healthz", token=None)
    assert status == 200 and health["ari"] and health["ami"] and health["database"]
    events = api.ok("GET", "/api/ami/events?limit=50")["events"]
    assert events and all({"ts", "event", "fields"} <= set(e) for e in events)
    assert all("Secret" not in e["fields"] for e in events)
    status, _ = api.call("GET", "/api/ami/events?limit=0")
    assert status == 422


def test_roles_supervisor_controls_agents_agent_token_only_reads(api, lab):
    sup, agt = lab["CC_SUPERVISOR_TOKEN"], lab["CC_AGENT_TOKEN"]
    status, _ = api.call("POST", "/api/agents/agent4/login", {"queues": ["support"]}, token=sup)
    assert status == 200
    status, body = api.call("POST", "/api/agents/agent4/logout", token=agt)
    assert status == 403 and "role" in body["error"]
    assert api.agent("agent4")["state"] == "ready"
    status, body = api.call("GET", "/api/queues", token=agt)
    assert status == 200 and body["queues"]
    status, _ = api.call("GET", "/api/ami/events", token=agt)
    assert status == 403
