"""Operations end to end: agent-bound tokens, the /api/live feed, inbound dispositions and
/metrics against report.calls — on the real lab."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import REPO, Api, wait_call_row

pytestmark = pytest.mark.lab


def agent_tokens() -> dict[str, str]:
    return json.loads((REPO / ".lab" / "agent-tokens.json").read_text())  # type: ignore[no-any-return]


class Feed:
    """A /api/live client collecting messages in the background."""

    def __init__(self, url: str, token: str, *, in_url: bool = True) -> None:
        self.url = url + "/api/live" + (f"?token={token}" if in_url else "")
        self.token = token
        self.in_url = in_url
        self.messages: list[tuple[float, dict[str, Any]]] = []
        self.closed: tuple[int | None, str] | None = None
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()

    async def __aenter__(self) -> Feed:
        self._session = aiohttp.ClientSession()
        self._ws = await self._session.ws_connect(self.url)
        if not self.in_url:
            await self._ws.send_json({"token": self.token})
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for msg in self._ws:
            data = json.loads(msg.data)
            self.messages.append((time.monotonic(), data))
            if data["type"] == "synced":
                self.synced.set()
        self.closed = (self._ws.close_code, "")

    async def __aexit__(self, *exc: object) -> None:
        await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        await self._session.close()

    def of(self, kind: str, **match: Any) -> list[dict[str, Any]]:
        return [m for _, m in self.messages if m["type"] == kind and all(m.get(k) == v for k, v in match.items())]

    async def wait_for(self, kind: str, pred: Any, timeout: float = 5.0, **match: Any) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        seen = 0
        while time.monotonic() < deadline:
            for at, m in self.messages[seen:]:
                if m["type"] == kind and all(m.get(k) == v for k, v in match.items()) and pred(m):
                    return at, m
            seen = len(self.messages)
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} {match} message matching in {timeout} s")


def test_whoami_and_what_a_bound_agent_token_may_do(lab, api: Api) -> None:
    tokens = agent_tokens()
    assert api.call("GET", "/api/whoami", token=lab["CC_SUPERVISOR_TOKEN"]) == (
        200, {"role": "supervisor", "agent": None})
    assert api.call("GET", "/api/whoami", token=tokens["agent16"]) == (200, {"role": "agent", "agent": "agent16"})
    assert api.call("GET", "/api/whoami", token=lab["CC_AGENT_TOKEN"]) == (200, {"role": "agent", "agent": None})
    assert api.call("GET", "/api/whoami", token="x" * 32)[0] == 401
    mine = tokens["agent16"]
    status, body = api.call("POST", "/api/agents/agent16/login", {"queues": ["support"]}, token=mine)
    assert status == 200 and body["state"] == "ready"
    assert api.call("POST", "/api/agents/agent16/pause", {"reason": "lunch"}, token=mine)[1]["state"] == "paused"
    status, body = api.call("POST", "/api/agents/agent15/pause", {"reason": "lunch"}, token=mine)
    assert status == 403 and "agent16 only" in body["error"]
    assert api.call("POST", "/api/agents/agent15/login", {"queues": ["support"]}, token=mine)[0] == 403
    assert api.call("GET", "/api/ami/events", token=mine)[0] == 403
    assert api.call("POST", "/api/agents/agent16/logout", token=mine)[1]["state"] == "logged_out"


async def test_live_feed_snapshot_changes_within_a_second_and_scoping(lab, api: Api) -> None:
    tokens = agent_tokens()
    async with Feed(lab["CC_API_URL"], lab["CC_SUPERVISOR_TOKEN"]) as boss, \
            Feed(lab["CC_API_URL"], tokens["agent16"], in_url=False) as desk:
        await asyncio.wait_for(boss.synced.wait(), 5)
        await asyncio.wait_for(desk.synced.wait(), 5)
        hello = boss.messages[0][1]
        assert hello["type"] == "hello" and hello["role"] == "supervisor"
        assert abs(hello["server_time"] - time.time()) < 5
        names = {m["agent"] for m in boss.of("agent")}
        assert {f"agent{i}" for i in range(1, 21)} <= names
        assert {m["queue"] for m in boss.of("queue")} >= {"support", "sales"}
        # the desk sees its own agent, nothing else
        assert desk.messages[0][1] == {"type": "hello", "role": "agent", "agent": "agent16",
                                       "server_time": desk.messages[0][1]["server_time"]}
        assert {(m["type"], m.get("agent")) for _, m in desk.messages[1:-1]} == {("agent", "agent16")}

        sent = time.monotonic()
        api.ok("POST", "/api/agents/agent15/login", {"queues": ["support"]})
        at, msg = await boss.wait_for("agent", lambda m: m["state"] == "ready", agent="agent15")
        assert at - sent < 1.0, f"the change took {at - sent:.2f} s to arrive"
        assert msg["queues"] == ["support"] and abs(msg["since"] - time.time()) < 5
        _, q = await boss.wait_for("queue", lambda m: m["agents"]["ready"] >= 1, queue="support")
        assert q["agents"]["logged_in"] >= 1

        sent = time.monotonic()
        api.ok("POST", "/api/agents/agent16/login", {"queues": ["sales"]})
        at, _ = await desk.wait_for("agent", lambda m: m["state"] == "ready", agent="agent16")
        assert at - sent < 1.0
        await asyncio.sleep(0.5)
        assert {m.get("agent") for _, m in desk.messages if m["type"] != "hello" and m["type"] != "synced"} == {
            "agent16"}
        assert not desk.of("ami") and boss.of("ami"), "AMI events go to supervisors only"


async def test_bad_token_on_the_live_feed_is_refused(lab) -> None:
    async with aiohttp.ClientSession() as s, s.ws_connect(lab["CC_API_URL"] + "/api/live?token=" + "y" * 32) as ws:
        msg = await ws.receive_json(timeout=5)
        assert msg["type"] == "error"
        closing = await ws.receive(timeout=5)
        assert closing.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == 4401


async def test_inbound_call_disposition_closes_wrapup_and_lands_on_the_row(lab, api, call, phones, db,
                                                                           caller_number) -> None:
    tokens = agent_tokens()
    phones("agent14", queues=["support"], talk_ms=1500)
    async with Feed(lab["CC_API_URL"], tokens["agent14"]) as desk:
        await asyncio.wait_for(desk.synced.wait(), 5)
        sipp = call("5001", caller_number, steps=[("pause", 6000)])
        _, pop = await desk.wait_for("agent", lambda m: m["call"] is not None, timeout=15, agent="agent14")
        assert pop["call"]["caller"] == caller_number and pop["call"]["queue"] == "support"
        assert pop["call"]["direction"] == "inbound"
        _, wrap = await desk.wait_for("agent", lambda m: m["state"] == "wrapup", timeout=20, agent="agent14")
        pending = wrap["disposition_pending"]
        assert pending["direction"] == "inbound" and "resolved" in pending["codes"]
        status, body = api.call("POST", "/api/agents/agent14/disposition", {"code": "nonsense"},
                                token=tokens["agent14"])
        assert status == 422 and "resolved" in body["error"]
        status, body = api.call("POST", "/api/agents/agent14/disposition", {"code": "resolved"},
                                token=tokens["agent14"])
        assert status == 200, body
        assert api.agent("agent14")["state"] == "ready"  # wrap-up (10 s in the lab) ended at once
        await desk.wait_for("agent", lambda m: m["state"] == "ready" and m["disposition_pending"] is None,
                            agent="agent14")
        status, body = api.call("POST", "/api/agents/agent14/disposition", {"code": "resolved"},
                                token=tokens["agent14"])
        assert status == 409 and "no call to dispose" in body["error"]
    await asyncio.to_thread(sipp.wait, 30)
    [row] = await wait_call_row(db, caller_number)
    for _ in range(40):
        if (await db.fetchval("SELECT disposition FROM report.calls WHERE call_id = $1", row["call_id"])):
            break
        await asyncio.sleep(0.25)
    assert await db.fetchval("SELECT disposition FROM report.calls WHERE call_id = $1", row["call_id"]) == "resolved"


def scrape(lab: dict[str, str]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(lab["CC_API_URL"] + "/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_parse_and_count_the_calls_report_calls_has(lab, call, phones, db, caller_number) -> None:
    before = scrape(lab)
    phones("agent13", queues=["support"], talk_ms=1000)
    phones("agent11", queues=["support"], talk_ms=1000)
    answered = [call("5001", caller_number, steps=[("pause", 3000)]) for _ in range(2)]
    for s in answered:
        await asyncio.to_thread(s.wait, 40)
    for name in ("agent13", "agent11"):
        Api(lab["CC_API_URL"], lab["CC_API_TOKEN"]).ok("POST", f"/api/agents/{name}/logout")
    phones("agent12", queues=["support"], answer=False)  # rings, never answers: the caller gives up
    abandoned = call("5001", caller_number, steps=[("pause", 3000)])
    await asyncio.to_thread(abandoned.wait, 30)
    rows = await wait_call_row(db, caller_number, count=3, timeout=20)
    assert len(rows) == 3
    await asyncio.sleep(1.0)
    after = scrape(lab)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    by_outcome: dict[str, int] = {}
    for r in rows:
        by_outcome[r["outcome"]] = by_outcome.get(r["outcome"], 0) + 1
    assert by_outcome == {"answered": 2, "abandoned": 1}
    for outcome, n in by_outcome.items():
        assert delta("cc_calls_total", direction="inbound", outcome=outcome) >= n
    # nothing else ran meanwhile in this session of tests: the counter moved by exactly our calls
    total = sum(v for (name, _), v in after.items() if name == "cc_calls_total") - sum(
        v for (name, _), v in before.items() if name == "cc_calls_total")
    assert total == len(rows)
    assert delta("cc_call_talk_seconds_count", direction="inbound") == 2
    assert ("cc_agents", (("state", "ready"),)) in after
    assert ("cc_db_write_backlog", ()) in after
    assert after[("cc_ari_event_lag_seconds_count", ())] > before.get(("cc_ari_event_lag_seconds_count", ()), 0)
