"""Prometheus metrics: `GET /metrics` in the text format, rendered by prometheus-client.

Two kinds of figure:

* **events**, counted as they happen: calls finished, by direction and outcome (once per call:
  the rows of report.calls that got their outcome in this process), their wait and talk times
  (computed as report.calls computes wait_seconds / talk_seconds), and the lag of every ARI
  event (receive time minus Asterisk's `timestamp`);
* **state**, read at scrape time from the services themselves through callables given to the
  constructor, so nothing kept here can drift from what the API shows: waiting calls per queue,
  agents by state, live calls by direction and phase, the database write backlog, AMI events
  dropped, the dialer's figures per campaign.

A callable that raises costs its own metric family (logged), never the scrape. Each `Metrics`
owns its `CollectorRegistry` (never prometheus-client's global one), so tests can make several.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import Metric

from cc_ari.agents.models import AgentState
from cc_ari.calls.models import WAITING, Phase

log = structlog.get_logger("cc_ari.metrics")

DIRECTIONS = ("inbound", "outbound")
# report.calls' outcomes (README); pre-set to 0 so a first call shows as an increase.
OUTCOMES = ("answered", "abandoned", "voicemail", "callback", "invalid_number", "no_answer", "busy", "failed",
            "machine", "dropped")
# Seconds. Waits: service levels are usually set at 10 to 60 s; abandons come in the first minutes.
WAIT_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 1200.0)
# Talk: from a few seconds (wrong numbers, machines dropped) to an hour.
TALK_BUCKETS = (5.0, 10.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1200.0, 1800.0, 3600.0)
# ARI event lag: milliseconds when all is well, seconds when the loop or Asterisk is overloaded.
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# What generate_latest writes: the 0.0.4 text format (recent prometheus-client versions call it
# CONTENT_TYPE_PLAIN_0_0_4, their CONTENT_TYPE_LATEST being the 1.0.0 format; older ones lack the name).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NO_QUEUE = "none"  # the queue label of a call that waited outside any queue


class LiveCall(Protocol):
    """What the scrape reads of a live call (cc_ari.calls.models.Call)."""

    @property
    def direction(self) -> str: ...
    @property
    def phase(self) -> str: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def queued_mono(self) -> float: ...


class AgentLike(Protocol):
    @property
    def state(self) -> str: ...


class FinishedCall(Protocol):
    """A call whose final row was just written: a Call (CallService.on_final) or a CallRow
    (the CEL reconciler)."""

    @property
    def call_id(self) -> str: ...
    @property
    def outcome(self) -> str | None: ...
    @property
    def queue(self) -> str | None: ...
    @property
    def queued_at(self) -> datetime | None: ...
    @property
    def answered_at(self) -> datetime | None: ...
    @property
    def ended_at(self) -> datetime | None: ...


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return None if start is None or end is None else round((end - start).total_seconds(), 3)


class _State:
    """The gauges read at scrape time, one family (or one group of families) per callable."""

    def __init__(self, *, calls: Callable[[], Iterable[LiveCall]] | None,
                 queues: Callable[[], Iterable[str]] | None,
                 agents: Callable[[], Iterable[AgentLike]] | None,
                 db_backlog: Callable[[], int] | None,
                 ami_dropped: Callable[[], int] | None,
                 campaigns: Callable[[], Iterable[str]] | None,
                 campaign_live: Callable[[str], Mapping[str, Any]] | None,
                 monotonic: Callable[[], float]) -> None:
        self._calls = calls
        self._queues = queues
        self._agents = agents
        self._db_backlog = db_backlog
        self._ami_dropped = ami_dropped
        self._campaigns = campaigns
        self._campaign_live = campaign_live
        self._monotonic = monotonic

    def describe(self) -> Iterable[Metric]:
        """The names only (for the registry's clash check), without calling anything."""
        return [GaugeMetricFamily(name, "") for name in (
            "cc_queue_waiting_calls", "cc_queue_longest_wait_seconds", "cc_live_calls", "cc_agents",
            "cc_db_write_backlog", "cc_dialer_abandon_rate", "cc_dialer_abandon_cap", "cc_dialer_dial_level",
            "cc_dialer_calls_ringing")] + [CounterMetricFamily("cc_ami_events_dropped", "")]

    def collect(self) -> Iterator[Metric]:
        for name, build in (("calls", self._call_families), ("agents", self._agent_families),
                            ("db", self._db_families), ("ami", self._ami_families),
                            ("dialer", self._dialer_families)):
            try:
                families = list(build())
            except Exception:
                log.exception("metrics_family_failed", family=name)
                continue
            yield from families

    def _call_families(self) -> Iterator[Metric]:
        if self._calls is None:
            return
        calls = list(self._calls())
        names = set(self._queues()) if self._queues is not None else set()
        now = self._monotonic()
        waiting: dict[str, int] = dict.fromkeys(names, 0)
        longest: dict[str, float] = dict.fromkeys(names, 0.0)
        live: dict[tuple[str, str], int] = {(d, str(p)): 0 for d in DIRECTIONS for p in Phase}
        for c in calls:
            key = (str(c.direction), str(c.phase))
            live[key] = live.get(key, 0) + 1
            if c.queue is not None and c.phase in WAITING:
                waiting[c.queue] = waiting.get(c.queue, 0) + 1
                longest[c.queue] = max(longest.get(c.queue, 0.0), now - c.queued_mono)
        g = GaugeMetricFamily("cc_queue_waiting_calls", "Calls waiting in the queue (queued or ringing an agent).",
                              labels=["queue"])
        for q in sorted(waiting):
            g.add_metric([q], waiting[q])
        yield g
        g = GaugeMetricFamily("cc_queue_longest_wait_seconds", "How long the oldest waiting call has waited.",
                              labels=["queue"])
        for q in sorted(longest):
            g.add_metric([q], round(longest[q], 3))
        yield g
        g = GaugeMetricFamily("cc_live_calls", "Live calls by direction and phase.", labels=["direction", "phase"])
        for (direction, phase), n in sorted(live.items()):
            g.add_metric([direction, phase], n)
        yield g

    def _agent_families(self) -> Iterator[Metric]:
        if self._agents is None:
            return
        counts: dict[str, int] = {str(s): 0 for s in AgentState}
        for a in self._agents():
            counts[str(a.state)] = counts.get(str(a.state), 0) + 1
        g = GaugeMetricFamily("cc_agents", "Agents by state.", labels=["state"])
        for state, n in counts.items():
            g.add_metric([state], n)
        yield g

    def _db_families(self) -> Iterator[Metric]:
        if self._db_backlog is not None:
            yield GaugeMetricFamily("cc_db_write_backlog",
                                    "Database writes submitted and not yet committed (memory and journal).",
                                    value=self._db_backlog())

    def _ami_families(self) -> Iterator[Metric]:
        if self._ami_dropped is not None:
            yield CounterMetricFamily("cc_ami_events_dropped", "AMI events dropped (the event queue was full).",
                                      value=self._ami_dropped())

    def _dialer_families(self) -> Iterator[Metric]:
        if self._campaigns is None or self._campaign_live is None:
            return
        rate = GaugeMetricFamily("cc_dialer_abandon_rate", "Abandon rate over the campaign's compliance period.",
                                 labels=["campaign"])
        cap = GaugeMetricFamily("cc_dialer_abandon_cap", "The campaign's abandon-rate target (cap).",
                                labels=["campaign"])
        level = GaugeMetricFamily("cc_dialer_dial_level", "Calls ringing per agent ready or on a call.",
                                  labels=["campaign"])
        ringing = GaugeMetricFamily("cc_dialer_calls_ringing", "Outbound calls dialed and not answered yet.",
                                    labels=["campaign"])
        for name in sorted(self._campaigns()):
            try:  # one campaign's trouble costs that campaign only
                live = self._campaign_live(name)
                values = (float(live["abandon_rate"]), live.get("abandon_cap"), float(live["dial_level"]),
                          float(live["ringing"]))
            except Exception:
                log.exception("metrics_campaign_failed", campaign=name)
                continue
            rate.add_metric([name], values[0])
            if values[1] is not None:
                cap.add_metric([name], float(values[1]))
            level.add_metric([name], values[2])
            ringing.add_metric([name], values[3])
        yield from (rate, cap, level, ringing)


class _WithoutCreated:
    """The registry's families without the `_created` samples of counters and histograms: in the
    text format each would be one more gauge series per label set, which nobody here reads.
    (prometheus-client's own switch for this, disable_created_metrics(), is process-wide.)"""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Metric]:
        for family in self._registry.collect():
            if family.type in ("counter", "histogram"):
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
            yield family


class Metrics:
    """cc_ari's metrics. Everything is optional: a callable not given is a family not shown.

    * `calls()`: the live calls (CallService.calls); with `queues()` (the queue names, so an
      empty queue shows 0): cc_queue_waiting_calls, cc_queue_longest_wait_seconds, cc_live_calls.
    * `agents()`: the agents (AgentService.all): cc_agents{state}, every state present.
    * `db_backlog()`: CallStore.backlog. `ami_dropped()`: AMI events dropped so far.
    * `campaigns()`: the campaigns the dialer works on; `campaign_live(name)`: Dialer.live(name).
    """

    def __init__(self, *, calls: Callable[[], Iterable[LiveCall]] | None = None,
                 queues: Callable[[], Iterable[str]] | None = None,
                 agents: Callable[[], Iterable[AgentLike]] | None = None,
                 db_backlog: Callable[[], int] | None = None,
                 ami_dropped: Callable[[], int] | None = None,
                 campaigns: Callable[[], Iterable[str]] | None = None,
                 campaign_live: Callable[[str], Mapping[str, Any]] | None = None,
                 clock: Callable[[], float] = time.time, monotonic: Callable[[], float] = time.monotonic,
                 remember: int = 10_000, scrape_token: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self.scrape_token = scrape_token  # when set, GET /metrics needs "Authorization: Bearer <it>"
        self._clock = clock
        self._remember = max(1, remember)
        self._counted: dict[str, None] = {}  # the last `remember` call ids counted (an ordered set)
        self._calls = Counter("cc_calls", "Calls finished (their final row written), by direction and outcome.",
                              ["direction", "outcome"], registry=self.registry)
        for direction in DIRECTIONS:
            for outcome in OUTCOMES:
                self._calls.labels(direction, outcome)
        self._wait = Histogram("cc_call_wait_seconds", "Time in queue: until answered, or until the caller left.",
                               ["queue"], buckets=WAIT_BUCKETS, registry=self.registry)
        self._talk = Histogram("cc_call_talk_seconds", "Talk time of answered calls: answer to end.",
                               ["direction"], buckets=TALK_BUCKETS, registry=self.registry)
        self._lag = Histogram("cc_ari_event_lag_seconds", "ARI events: receive time minus Asterisk's timestamp.",
                              buckets=LAG_BUCKETS, registry=self.registry)
        self.registry.register(_State(calls=calls, queues=queues, agents=agents, db_backlog=db_backlog,
                                      ami_dropped=ami_dropped, campaigns=campaigns, campaign_live=campaign_live,
                                      monotonic=monotonic))

    # --- events -----------------------------------------------------------------------------
    def call_finished(self, direction: str, outcome: str, wait_seconds: float | None, talk_seconds: float | None,
                      *, queue: str | None = None, call_id: str | None = None) -> bool:
        """Count one finished call. With `call_id`, a call already counted (among the last
        `remember`) is not counted again: False."""
        if call_id is not None:
            if call_id in self._counted:
                return False
            self._counted[call_id] = None
            if len(self._counted) > self._remember:
                del self._counted[next(iter(self._counted))]
        self._calls.labels(direction, outcome).inc()
        if wait_seconds is not None:
            self._wait.labels(queue or NO_QUEUE).observe(max(0.0, wait_seconds))
        if talk_seconds is not None:
            self._talk.labels(direction).observe(max(0.0, talk_seconds))
        return True

    def call_final(self, call: FinishedCall, *, direction: str | None = None) -> None:
        """A call's final row was written (CallService.on_final hook, or the CEL reconciler with
        `direction="inbound"`): counted if the row has an outcome. A call handed to the fallback
        dialplan has none yet; the CEL reconciler counts it when it writes its outcome. Wait and
        talk are computed as report.calls computes wait_seconds and talk_seconds."""
        if call.outcome is None:
            return
        d = direction if direction is not None else str(getattr(call, "direction", "inbound"))
        wait = _seconds(call.queued_at, call.answered_at or call.ended_at)
        talk = _seconds(call.answered_at, call.ended_at)
        self.call_finished(d, call.outcome, wait, talk, queue=call.queue, call_id=call.call_id)

    def ari_event(self, timestamp: datetime | str | None) -> None:
        """One ARI event received now, stamped `timestamp` by Asterisk (Event.timestamp, or the raw
        ISO string). Never raises: it runs for every event, in the WebSocket reader."""
        if timestamp is None:
            return
        try:
            at = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
            lag = self._clock() - at.timestamp()
        except (TypeError, ValueError, OverflowError, OSError):
            return
        self._lag.observe(lag if lag > 0.0 else 0.0)

    # --- exposition -------------------------------------------------------------------------
    def render(self) -> tuple[bytes, str]:
        """The text exposition (body, Content-Type)."""
        return generate_latest(_WithoutCreated(self.registry)), CONTENT_TYPE

    def routes(self, app: web.Application) -> None:
        """`GET /metrics`: no token unless `scrape_token` is set (the lab's is loopback-only)."""
        app.router.add_get("/metrics", metrics_route(self, self.scrape_token))


def metrics_route(metrics: Metrics, token: str | None = None) -> Callable[[web.Request], Awaitable[web.Response]]:
    expected = f"Bearer {token}".encode() if token else None

    async def handler(request: web.Request) -> web.Response:
        if expected is not None and not hmac.compare_digest(
                request.headers.get("Authorization", "").encode("utf-8", "surrogateescape"), expected):
            return web.json_response({"error": "missing or invalid bearer token"}, status=401)
        body, content_type = metrics.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    return handler
