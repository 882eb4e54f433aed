"""The one place that wires cc_ari together, by constructor injection."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from typing import Any

import structlog
from aiohttp import web

from cc_ari import callflow
from cc_ari.agents.service import AgentService
from cc_ari.ami.client import AmiClient
from cc_ari.ami.models import AmiEvent, ContactStatus
from cc_ari.ari.client import AriClient, AriEvents
from cc_ari.calls.service import CallService, MediaPaths
from cc_ari.db.store import CallStore
from cc_ari.reporting.reconcile import CelReconciler
from cc_ari.settings import Settings
from cc_ari.web.api import Api, build_app

log = structlog.get_logger("cc_ari.app")


async def _supervise(name: str, coro: Any) -> None:
    """Run a background loop; a crash is logged loudly (and the loop restarted)."""
    while True:
        try:
            await coro()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("task_crashed", task=name)
            await asyncio.sleep(1.0)


async def serve(settings: Settings) -> None:
    flow = callflow.load(settings.config_path)
    store = CallStore(settings.database_url, settings.state_dir / "journal.jsonl",
                      timeout=settings.request_timeout * 2)
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
    calls = CallService(ari, store, flow, agents,
                        MediaPaths(prompts_dir=settings.prompts_dir, recordings_dir=settings.recordings_dir))
    events = AriEvents(ari, settings.ari_url, on_event=calls.on_event, on_connect=calls.on_connect,
                       on_disconnect=calls.on_disconnect)
    ami = AmiClient(settings.ami_host, settings.ami_port, settings.ami_user, settings.ami_password,
                    timeout=settings.request_timeout, events="system,call,agent,reporting")

    @ami.on_event
    async def on_ami_event(event: AmiEvent) -> None:
        if isinstance(event, ContactStatus):
            log.info("sip_contact_status", aor=event.aor, status=event.status)

    reconciler = CelReconciler(settings.cel_log, store, settings.recordings_dir) if settings.cel_log else None

    def health() -> dict[str, Any]:
        return {"ari": events.connected.is_set(), "ami": ami.connected.is_set(), "database": store.healthy,
                "live_calls": len(calls.calls())}

    app = build_app(Api(agents, calls, health=health, ami_events=ami.recent_events), settings.api_tokens)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.http_host, settings.http_port)
    await site.start()
    log.info("http_listening", host=settings.http_host, port=settings.http_port)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    tasks = [
        asyncio.create_task(_supervise("db_writer", store.run), name="db_writer"),
        asyncio.create_task(_supervise("ari_events", events.run), name="ari_events"),
        asyncio.create_task(_supervise("ami", ami.run), name="ami"),
    ]
    if reconciler is not None:
        tasks.append(asyncio.create_task(_supervise("cel_reconciler", reconciler.run), name="cel_reconciler"))
    try:
        await stop.wait()
        log.info("shutting_down", live_calls=len(calls.calls()))
    finally:
        await runner.cleanup()
        for t in tasks[1:]:
            t.cancel()
        await asyncio.gather(*tasks[1:], return_exceptions=True)
        # Live calls: their channels stay in Asterisk; the next cc_ari adopts or rescues them.
        await calls.close()
        await ami.close()
        agents.close()
        if not await store.flushed(timeout=5.0):
            log.warning("db_not_flushed_at_exit", note="writes stay in the journal and replay at next start")
        tasks[0].cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await tasks[0]
        await store.close()
        await ari.close()
        log.info("stopped")
