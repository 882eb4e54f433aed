"""cc_ari.ops.metrics: what /metrics shows, read back with prometheus-client's own parser."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from cc_ari.agents.models import Agent, AgentState
from cc_ari.calls.models import Call, Phase
from cc_ari.ops.metrics import OUTCOMES, Metrics, metrics_route
from cc_ari.reporting.reconcile import CallRow
from cc_ari.telephony.models import Session

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def call(call_id: str, *, direction: str = "inbound", phase: Phase = Phase.NEW, queue: str | None = None,
         queued: float | None = None, answered: float | None = None, ended: float | None = None,
         outcome: str | None = None, queued_mono: float = 0.0) -> Call:
    return Call(call_id=call_id, caller="0155", dnis="5000", started_at=T0, session=Session(anchor=call_id),
                direction=direction, phase=phase, queue=queue, queued_mono=queued_mono,
                queued_at=at(queued) if queued is not None else None,
                answered_at=at(answered) if answered is not None else None,
                ended_at=at(ended) if ended is not None else None, outcome=outcome)


def scrape(metrics: Metrics) -> dict[str, Metric]:
    body, content_type = metrics.render()
    assert content_type.startswith("text/plain")
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


def values(family: Metric, sample: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    """{sorted labels: value} of the family's samples named `sample` (default: the family's name)."""
    name = sample or family.name
    return {tuple(sorted(s.labels.items())): s.value for s in family.samples if s.name == name}


def one(family: Metric, sample: str, **labels: str) -> float:
    return values(family, sample)[tuple(sorted(labels.items()))]


# --- calls ----------------------------------------------------------------------------------------
def test_calls_counted_once_per_final_row_with_wait_and_talk() -> None:
    m = Metrics()
    finished = [
        # answered after 12 s in support, talked 60 s
        call("c1", queue="support", queued=3, answered=15, ended=75, outcome="answered"),
        # abandoned after 40 s in support
        call("c2", queue="support", queued=5, ended=45, outcome="abandoned"),
        # answered from the sales queue after 2 s, talked 30 s
        call("c3", queue="sales", queued=1, answered=3, ended=33, outcome="answered"),
        # unknown number: no queue, no talk
        call("c4", ended=4, outcome="invalid_number"),
        # outbound: answered (talk 20 s), and a machine
        call("o1", direction="outbound", answered=10, ended=30, outcome="answered"),
        call("o2", direction="outbound", answered=8, ended=9, outcome="machine"),
    ]
    for c in finished:
        m.call_final(c)
    # Handed to the fallback dialplan: its row has no outcome yet, the CEL reconciler counts it...
    m.call_final(call("c5", queue="support", queued=2))
    row = CallRow(call_id="c5", caller="0155", dnis="5000", queue="support", agent="agent1", started_at=T0,
                  queued_at=at(2), answered_at=at(8), ended_at=at(20), outcome="answered", recording_path=None,
                  fallback=True)
    m.call_final(row, direction="inbound")
    # ... once: the same call written again (a CEL re-read, a race with cc_ari's own row) is not recounted.
    m.call_final(row, direction="inbound")
    m.call_final(finished[0])

    fams = scrape(m)
    calls = values(fams["cc_calls"], "cc_calls_total")
    expected = {("inbound", "answered"): 3, ("inbound", "abandoned"): 1, ("inbound", "invalid_number"): 1,
                ("outbound", "answered"): 1, ("outbound", "machine"): 1}
    for direction in ("inbound", "outbound"):
        for outcome in OUTCOMES:  # every known pair is there, 0 included
            key = (("direction", direction), ("outcome", outcome))
            assert calls[key] == expected.get((direction, outcome), 0), key
    assert sum(calls.values()) == 7

    wait = fams["cc_call_wait_seconds"]
    assert one(wait, "cc_call_wait_seconds_count", queue="support") == 3  # c1, c2, c5
    assert one(wait, "cc_call_wait_seconds_sum", queue="support") == 12 + 40 + 6
    assert one(wait, "cc_call_wait_seconds_count", queue="sales") == 1
    assert one(wait, "cc_call_wait_seconds_bucket", queue="support", le="20.0") == 2
    assert one(wait, "cc_call_wait_seconds_bucket", queue="support", le="45.0") == 3
    assert one(wait, "cc_call_wait_seconds_bucket", queue="sales", le="2.0") == 1
    assert {dict(k)["queue"] for k in values(wait, "cc_call_wait_seconds_count")} == {"support", "sales"}

    talk = fams["cc_call_talk_seconds"]
    assert one(talk, "cc_call_talk_seconds_count", direction="inbound") == 3  # c1, c3, c5
    assert one(talk, "cc_call_talk_seconds_sum", direction="inbound") == 60 + 30 + 12
    assert one(talk, "cc_call_talk_seconds_count", direction="outbound") == 2
    assert one(talk, "cc_call_talk_seconds_sum", direction="outbound") == 21
    assert one(talk, "cc_call_talk_seconds_bucket", direction="outbound", le="5.0") == 1
    assert one(talk, "cc_call_talk_seconds_bucket", direction="inbound", le="+Inf") == 3


def test_call_finished_directly() -> None:
    m = Metrics(remember=2)
    assert m.call_finished("inbound", "busy", None, None)
    assert m.call_finished("inbound", "busy", None, None)  # no call id: no de-duplication
    assert m.call_finished("outbound", "no_answer", None, None, call_id="a")
    assert m.call_finished("outbound", "no_answer", None, None, call_id="a") is False
    m.call_finished("outbound", "no_answer", None, None, call_id="b")
    m.call_finished("outbound", "no_answer", None, None, call_id="c")  # "a" forgotten (remember=2)
    assert m.call_finished("outbound", "no_answer", None, None, call_id="a")
    m.call_finished("inbound", "abandoned", -0.5, None)  # clock skew never makes a negative wait
    fams = scrape(m)
    assert one(fams["cc_calls"], "cc_calls_total", direction="inbound", outcome="busy") == 2
    assert one(fams["cc_calls"], "cc_calls_total", direction="outbound", outcome="no_answer") == 4
    assert one(fams["cc_call_wait_seconds"], "cc_call_wait_seconds_sum", queue="none") == 0.0


# --- ARI event lag -------------------------------------------------------------------------------
def test_ari_event_lag() -> None:
    now = at(100).timestamp()
    m = Metrics(clock=lambda: now)
    m.ari_event(at(99.990))  # 10 ms (a parsed Event.timestamp)
    m.ari_event("2026-11-24T12:01:39.700+0000")  # 300 ms, Asterisk's own format
    m.ari_event(at(97))  # 3 s
    m.ari_event(at(100.5))  # Asterisk's clock ahead: 0, never negative
    m.ari_event(None)  # events without a timestamp are not measured
    m.ari_event("not a time")
    lag = scrape(m)["cc_ari_event_lag_seconds"]
    assert one(lag, "cc_ari_event_lag_seconds_count") == 4
    assert abs(one(lag, "cc_ari_event_lag_seconds_sum") - 3.31) < 1e-6
    assert one(lag, "cc_ari_event_lag_seconds_bucket", le="0.001") == 1
    assert one(lag, "cc_ari_event_lag_seconds_bucket", le="0.01") == 2
    assert one(lag, "cc_ari_event_lag_seconds_bucket", le="0.5") == 3
    assert one(lag, "cc_ari_event_lag_seconds_bucket", le="5.0") == 4


# --- state read at scrape time -----------------------------------------------------------------
LIVE: dict[str, dict[str, Any]] = {
    "spring": {"abandon_rate": 0.0125, "abandon_cap": 0.03, "dial_level": 1.5, "ringing": 3},
    "autumn": {"abandon_rate": 0.0, "abandon_cap": None, "dial_level": 0.0, "ringing": 0},
}


def state_metrics(**overrides: Any) -> Metrics:
    live_calls = [
        call("w1", phase=Phase.QUEUED, queue="support", queued_mono=970.0),
        call("w2", phase=Phase.RINGING, queue="support", queued_mono=990.0),
        call("w3", phase=Phase.QUEUED, queue="sales", queued_mono=995.0),
        call("t1", phase=Phase.TALKING, queue="support"),
        call("i1", phase=Phase.IVR),
        call("o1", direction="outbound", phase=Phase.RINGING),  # an outbound call waiting: no queue
        call("o2", direction="outbound", phase=Phase.TALKING),
    ]
    agents = [Agent("agent1", state=AgentState.READY), Agent("agent2", state=AgentState.ON_CALL),
              Agent("agent3", state=AgentState.ON_CALL), Agent("agent4", state=AgentState.PAUSED),
              Agent("agent5")]
    args: dict[str, Any] = {
        "calls": lambda: live_calls, "queues": lambda: ["support", "sales", "billing"],
        "agents": lambda: agents, "db_backlog": lambda: 42, "ami_dropped": lambda: 7,
        "campaigns": lambda: list(LIVE), "campaign_live": LIVE.__getitem__, "monotonic": lambda: 1000.0,
    }
    args.update(overrides)
    return Metrics(**args)


def test_state_gauges_read_at_scrape_time() -> None:
    backlog = [42]
    fams = scrape(state_metrics(db_backlog=lambda: backlog[0]))

    assert values(fams["cc_queue_waiting_calls"]) == {
        (("queue", "support"),): 2, (("queue", "sales"),): 1, (("queue", "billing"),): 0}
    assert values(fams["cc_queue_longest_wait_seconds"]) == {
        (("queue", "support"),): 30.0, (("queue", "sales"),): 5.0, (("queue", "billing"),): 0.0}

    live = values(fams["cc_live_calls"])
    assert len(live) == 2 * len(Phase)  # every direction x phase, 0 included
    assert live[(("direction", "inbound"), ("phase", "queued"))] == 2
    assert live[(("direction", "inbound"), ("phase", "ringing"))] == 1
    assert live[(("direction", "inbound"), ("phase", "talking"))] == 1
    assert live[(("direction", "inbound"), ("phase", "ivr"))] == 1
    assert live[(("direction", "outbound"), ("phase", "ringing"))] == 1
    assert live[(("direction", "outbound"), ("phase", "talking"))] == 1
    assert sum(live.values()) == 7

    assert values(fams["cc_agents"]) == {(("state", str(s)),): n for s, n in {
        AgentState.LOGGED_OUT: 1, AgentState.READY: 1, AgentState.PAUSED: 1, AgentState.RINGING: 0,
        AgentState.ON_CALL: 2, AgentState.WRAPUP: 0}.items()}

    assert values(fams["cc_db_write_backlog"]) == {(): 42}
    assert values(fams["cc_ami_events_dropped"], "cc_ami_events_dropped_total") == {(): 7}
    assert fams["cc_ami_events_dropped"].type == "counter"

    assert values(fams["cc_dialer_abandon_rate"]) == {(("campaign", "spring"),): 0.0125,
                                                      (("campaign", "autumn"),): 0.0}
    assert values(fams["cc_dialer_abandon_cap"]) == {(("campaign", "spring"),): 0.03}  # autumn has none
    assert values(fams["cc_dialer_dial_level"]) == {(("campaign", "spring"),): 1.5, (("campaign", "autumn"),): 0.0}
    assert values(fams["cc_dialer_calls_ringing"]) == {(("campaign", "spring"),): 3, (("campaign", "autumn"),): 0}

    backlog[0] = 0  # read again at every scrape: nothing kept here to drift
    assert values(scrape(state_metrics(db_backlog=lambda: backlog[0]))["cc_db_write_backlog"]) == {(): 0}


def test_a_failing_callable_costs_its_family_only() -> None:
    def broken() -> list[Agent]:
        raise RuntimeError("agents unavailable")

    def live(name: str) -> Mapping[str, Any]:
        if name == "autumn":
            raise KeyError(name)
        return LIVE[name]

    with capture_logs() as logs:
        fams = scrape(state_metrics(agents=broken, campaign_live=live, ami_dropped=lambda: 1 // 0))
    assert "cc_agents" not in fams
    assert "cc_ami_events_dropped" not in fams
    assert values(fams["cc_dialer_dial_level"]) == {(("campaign", "spring"),): 1.5}  # autumn alone is left out
    assert values(fams["cc_db_write_backlog"]) == {(): 42}
    assert "cc_queue_waiting_calls" in fams and "cc_calls" in fams
    failed = {(e["event"], e.get("family") or e.get("campaign")) for e in logs if e["log_level"] == "error"}
    assert failed == {("metrics_family_failed", "agents"), ("metrics_family_failed", "ami"),
                      ("metrics_campaign_failed", "autumn")}


def test_families_not_wired_are_absent_and_registries_are_separate() -> None:
    a, b = Metrics(), Metrics()
    a.call_finished("inbound", "answered", 1.0, 2.0, queue="support")
    fams = scrape(b)
    assert one(fams["cc_calls"], "cc_calls_total", direction="inbound", outcome="answered") == 0
    assert set(fams) == {"cc_calls", "cc_call_wait_seconds", "cc_call_talk_seconds", "cc_ari_event_lag_seconds"}
    assert one(scrape(a)["cc_calls"], "cc_calls_total", direction="inbound", outcome="answered") == 1


# --- HTTP ------------------------------------------------------------------------------------------
async def test_get_metrics_over_http_without_token() -> None:
    m = state_metrics()
    m.call_finished("inbound", "answered", 3.0, 30.0, queue="support", call_id="x")
    app = web.Application()
    m.routes(app)
    app.router.add_get("/metrics2", metrics_route(m))
    async with TestClient(TestServer(app)) as client:
        for path in ("/metrics", "/metrics2"):
            resp = await client.get(path)
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            fams = {f.name: f for f in text_string_to_metric_families(await resp.text())}
            assert one(fams["cc_calls"], "cc_calls_total", direction="inbound", outcome="answered") == 1
            assert values(fams["cc_queue_waiting_calls"])[(("queue", "support"),)] == 2


async def test_a_scrape_token_when_set_is_required() -> None:
    token = "scrape-token-0123456789"
    m = Metrics(scrape_token=token)
    app = web.Application()
    m.routes(app)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/metrics")).status == 401
        assert (await client.get("/metrics", headers={"Authorization": "Bearer wrong-token-0123456"})).status == 401
        resp = await client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert resp.status == 200 and "cc_calls_total" in await resp.text()
