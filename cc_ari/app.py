"""The one place that wires cc_ari together, by constructor injection."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
import tracemalloc
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from cc_ari import callflow
from cc_ari.agents.dispositions import Dispositions
from cc_ari.agents.reachability import Reachability
from cc_ari.agents.service import AgentService
from cc_ari.agents.sessions import SESSION_APP_ARG, AgentSessions
from cc_ari.ami.client import AmiClient
from cc_ari.ami.models import AmiEvent, ContactStatus
from cc_ari.ari.client import AriClient, AriEvents
from cc_ari.ari.models import Event
from cc_ari.calls.handlers import AriHandlers
from cc_ari.calls.inbound import INBOUND_APP_ARG, InboundFlow
from cc_ari.calls.records import CallRecords
from cc_ari.calls.router import StasisRouter
from cc_ari.calls.service import CallService
from cc_ari.connect.service import Connector
from cc_ari.db import reports
from cc_ari.db.campaigns import CampaignStore, DialerStore
from cc_ari.db.store import KINDS, CallStore
from cc_ari.dialer.outbound import AMD_APP_ARG, OUTBOUND_APP_ARG, TRUNK, OutboundFlow
from cc_ari.dialer.service import Dialer
from cc_ari.fallback.members import FallbackMembers
from cc_ari.ops.live import LiveHub, Sources
from cc_ari.ops.metrics import Metrics
from cc_ari.queueing.service import QueueService
from cc_ari.reporting.reconcile import CelReconciler
from cc_ari.settings import Settings
from cc_ari.supervision import MONITOR_APP_ARG, MONITORING_KINDS, SNOOP_APP_ARG, Monitors
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl, HoldingBridges
from cc_ari.telephony.recording import MixMonitorRecorder
from cc_ari.telephony.registry import ChannelRegistry
from cc_ari.web.api import Api, Tokens, build_app
from cc_ari.web.campaigns import CampaignApi
from cc_ari.web.dialer import DialerApi
from cc_ari.web.live import LiveApi
from cc_ari.web.monitor import MonitorApi
from cc_ari.web.pages import Pages
from cc_ari.web.reports import ReportsApi

log = structlog.get_logger("cc_ari.app")


async def _supervise(name: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run a background loop; a crash is logged loudly and the loop restarted."""
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task_crashed", task=name)
            await asyncio.sleep(1.0)


def _dump_tracemalloc(state_dir: Path) -> None:
    """SIGUSR2: a tracemalloc snapshot into the state directory, when the service runs with
    PYTHONTRACEMALLOC=N (`make bench-soak ARGS=--tracemalloc` compares two); else a log line."""
    if not tracemalloc.is_tracing():
        log.info("tracemalloc_not_tracing", hint="start the service with PYTHONTRACEMALLOC=25")
        return
    path = state_dir / f"{time.time():.0f}.tracemalloc"
    tracemalloc.take_snapshot().dump(str(path))
    log.info("tracemalloc_snapshot", path=str(path))


async def _sync_queue_settings(store: CallStore, flow: callflow.CallFlow) -> None:
    """The queues' report thresholds into cc.queue_settings (the KPI views read them), retried until
    the database takes them: the service starts whether PostgreSQL is up or not."""
    rows = [(name, q.service_level_seconds, q.short_abandon_seconds) for name, q in flow.queues.items()]
    delay = 1.0
    while True:
        try:
            await reports.sync_queue_settings(store, rows)
            return
        except Exception as exc:
            log.warning("queue_settings_sync_failed", error=repr(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(60.0, delay * 2)


async def serve(settings: Settings) -> None:
    flow = callflow.load(settings.config_path)
    store = CallStore(settings.database_url, settings.state_dir / "journal.jsonl",
                      timeout=settings.request_timeout * 2,
                      kinds={**KINDS, **MONITORING_KINDS})  # supervision rows (report.monitoring)
    await store.start()
    agents = AgentService(settings.agents, flow.queues.keys(), store)
    try:
        rows = {r["agent"]: dict(r) for r in await store.load_agents()}
    except Exception as exc:  # the database may be down at start: carry on, journal keeps writes
        log.error("agents_restore_failed", error=repr(exc))
        rows = {}
    # Changes still in the journal are newer than the database.
    for name, values in store.pending_agent_states().items():
        rows[name] = {"agent": name, **values}
    agents.restore(rows.values())

    ari = AriClient(settings.ari_url, settings.ari_user, settings.ari_password, settings.ari_app,
                    timeout=settings.request_timeout)
    await ari.start()
    control = CallControl(ari, ChannelRegistry(), prompts_dir=settings.prompts_dir)
    holding = HoldingBridges(ari)
    reach = Reachability(settings.agents)
    agents.reachable = reach
    supervising: list[Callable[[str], bool]] = []  # the monitors, once built: a supervisor listening in
    queues = QueueService(flow, agents,  # is not offered queue calls meanwhile
                          reachable=lambda a: reach(a) and not any(busy(a) for busy in supervising))
    agents.on_available = queues.wake
    reach.on_online = queues.wake
    records = CallRecords(store)
    ami = AmiClient(settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_password,
                    timeout=settings.request_timeout, events="system,call,agent,reporting")
    recorder = MixMonitorRecorder(ami, settings.asterisk_recordings_dir)
    sessions = AgentSessions(control, agents, store)
    connector = Connector(control, agents, records, recordings_dir=settings.recordings_dir,
                          recorder=recorder, sessions=sessions)
    inbound = InboundFlow(control, holding, queues, connector, agents, records, flow)
    calls = CallService(control, holding, queues, inbound, agents, records, store)
    campaign_store = CampaignStore(store)
    outbound = OutboundFlow(control, agents, connector, records, trunk=TRUNK)
    calls.register_flow("outbound", outbound)
    dialer = Dialer(campaign_store, DialerStore(store), store, control, calls, agents, sessions, queues, outbound)
    calls.adopters[SESSION_APP_ARG] = sessions.adopt
    calls.adopters[OUTBOUND_APP_ARG] = dialer.adopt
    calls.adopters[AMD_APP_ARG] = dialer.adopt  # back from AMD, in our app
    router_tasks = Tasks("router")
    router = StasisRouter(control, router_tasks)
    router.register(INBOUND_APP_ARG, calls.on_inbound)
    router.register(AMD_APP_ARG, dialer.on_amd_return)  # back from AMD, unknown here (a restart)
    handlers = AriHandlers(control, router, calls, reach)
    # Supervision (listen / whisper / barge through snoop channels); ends with the monitored call.
    monitors = Monitors(control, calls, agents, sessions, store)
    supervising.append(monitors.supervising)
    router.register(MONITOR_APP_ARG, monitors.on_stasis_start)
    router.register(SNOOP_APP_ARG, monitors.on_stasis_start)
    calls.adopters[MONITOR_APP_ARG] = monitors.adopt  # after a crash: hung up, row closed ('restart')
    calls.adopters[SNOOP_APP_ARG] = monitors.adopt
    tz = datetime.now().astimezone().tzinfo or UTC  # "today" on the wallboard: the server's day

    async def today_intervals() -> dict[str, Any]:
        day = datetime.now(tz).date()
        return {"date": day.isoformat(), "minutes": 15, "rows": await reports.queue_intervals(store, day, 15, tz)}

    dispositions = Dispositions(agents, store, dialer,
                                queue_codes={name: q.disposition_codes for name, q in flow.queues.items()},
                                campaign_codes=dialer.disposition_codes)
    calls.on_final.append(dispositions.on_final)
    # The live feed of the dashboard and agent desktops: poked by every event, it pushes what changed.
    hub = LiveHub(Sources(
        agents=agents.all, registered=reach.states, calls=calls.calls, call=calls.get,
        queue_names=lambda: agents.queue_names, lead_of=dialer.lead_of,
        disposition_pending=dispositions.pending, campaigns=dialer.campaign_views,
        service_level_seconds=lambda q: flow.queues[q].service_level_seconds if q in flow.queues else 20,
        queue_today=lambda: reports.queue_today(store, tz, flow.queues.keys()), intervals=today_intervals,
        monitors=lambda: [m.view() for m in monitors.live()]))
    monitors.listeners.append(hub.poke)
    agents.listeners.append(hub.poke)
    calls.on_final.append(hub.calls_ended)

    metrics = Metrics(calls=calls.calls, queues=lambda: agents.queue_names, agents=agents.all,
                      db_backlog=lambda: store.backlog, ami_dropped=lambda: ami.dropped,
                      campaigns=dialer.campaign_names, campaign_live=dialer.live,
                      scrape_token=settings.metrics_token)
    calls.on_final.append(metrics.call_final)

    def on_ari_event(ev: Event) -> None:
        metrics.ari_event(ev.timestamp)
        handlers.on_event(ev)
        hub.poke()

    events = AriEvents(ari, settings.ari_url, on_event=on_ari_event, on_connect=handlers.on_connect,
                       on_disconnect=handlers.on_disconnect)
    # app_queue's fallback queues follow the agents (while cc_ari is down the dialplan rings them).
    fallback_members = FallbackMembers(ami, flow.queues.keys(), agents.all)
    ami.on_event(fallback_members.on_ami_event)
    agents.listeners.append(fallback_members.notify)

    @ami.on_event
    async def on_ami_event(event: AmiEvent) -> None:
        hub.ami_event({"ts": round(time.time(), 3), "event": event.name, "fields": dict(event.fields)})
        if isinstance(event, ContactStatus):
            log.info("sip_contact_status", aor=event.aor, status=event.status)

    reconciler = (CelReconciler(settings.cel_log, store, settings.recordings_dir, agents=settings.agents,
                                is_live=lambda call_id: calls.get(call_id) is not None,
                                on_written=lambda row: metrics.call_final(row, direction="inbound"))
                  if settings.cel_log else None)

    def health() -> dict[str, Any]:
        return {"ari": events.connected.is_set(), "ami": ami.connected.is_set(), "database": store.healthy,
                "live_calls": len(calls.calls())}

    async def unknown_campaigns(names: list[str]) -> list[str]:
        known = {c.name for c in await campaign_store.all()}
        return [n for n in names if n not in known]

    tokens = Tokens(settings.api_tokens)
    api = Api(agents, calls, reach, health=health, ami_events=ami.recent_events,
              faults=events if settings.fault_injection else None,
              more=[CampaignApi(campaign_store, live=dialer.live, changed=dialer.campaign_changed),
                    DialerApi(dialer, dispositions), LiveApi(hub, tokens), MonitorApi(monitors), metrics,
                    ReportsApi(store, tz), Pages()],
              unknown_campaigns=unknown_campaigns, agent_extra=dialer.agent_view)
    runner = web.AppRunner(build_app(api, tokens), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("http_listening", host=settings.http_host, port=settings.http_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGUSR2, lambda: _dump_tracemalloc(settings.state_dir))

    writer = asyncio.create_task(_supervise("db_writer", store.run), name="db_writer")
    decisions = Tasks("service")  # stopped first at shutdown: no new offers, no new resyncs
    decisions.spawn(_supervise("dispatcher", queues.run), "dispatcher")
    decisions.spawn(_supervise("dialer", dialer.run), "dialer")
    decisions.spawn(_supervise("reconcile", lambda: calls.run_reconcile(settings.reconcile_interval,
                                                                        events.connected.is_set)), "reconcile")
    background = Tasks("service-io")
    background.spawn(_sync_queue_settings(store, flow), "queue_settings")
    background.spawn(_supervise("live", hub.run), "live")
    background.spawn(_supervise("ari_events", events.run), "ari_events")
    background.spawn(_supervise("ami", ami.run), "ami")
    background.spawn(_supervise("fallback_members", fallback_members.run), "fallback_members")
    background.spawn(_supervise("db_monitor", store.monitor), "db_monitor")
    if reconciler is not None:
        background.spawn(_supervise("cel_reconciler", reconciler.run), "cel_reconciler")
    try:
        await stop.wait()
        log.info("shutting_down", live_calls=len(calls.calls()))
    finally:
        await runner.cleanup()
        await decisions.cancel_all()
        await monitors.aclose()  # supervisors hung up (end_reason 'shutdown'); the calls go on
        # Live calls: waiting callers to the fallback; conversations stay bridged for the next cc_ari.
        # The ARI events keep flowing meanwhile, so the final rows have their hangup causes.
        await calls.close()
        await sessions.aclose()
        await dialer.aclose()
        await router_tasks.cancel_all()
        await background.cancel_all()
        await ami.close()
        await agents.aclose()
        if not await store.flushed(timeout=5.0):
            log.warning("db_not_flushed_at_exit", note="writes stay in the journal and replay at next start")
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer
        await store.close()
        await ari.close()
        log.info("stopped")
