"""ARI events -> owners. The WebSocket reader calls `on_event` synchronously: it only routes
(an event to the session owning its channel, a new channel to the router); no per-call work is
awaited there, so one slow call never delays another's events."""

from __future__ import annotations

import structlog

from cc_ari.agents.models import agent_endpoint
from cc_ari.agents.reachability import Reachability
from cc_ari.ari.errors import AriError
from cc_ari.ari.models import Event, StasisStart
from cc_ari.calls.router import StasisRouter
from cc_ari.calls.service import CallService
from cc_ari.telephony.control import CallControl

log = structlog.get_logger("cc_ari.calls")

# What cc_ari acts on. Asterisk filters the rest at the source (ChannelVarset, ChannelDialplan,
# ... were most of the traffic): cheaper for Asterisk and for us.
EVENT_TYPES = [
    "StasisStart", "StasisEnd", "ChannelDestroyed", "ChannelHangupRequest", "ChannelStateChange",
    "ChannelDtmfReceived", "Dial", "PlaybackFinished", "RecordingStarted", "RecordingFinished",
    "RecordingFailed", "EndpointStateChange", "ApplicationReplaced",
]


class AriHandlers:
    def __init__(self, control: CallControl, router: StasisRouter, calls: CallService,
                 reachability: Reachability) -> None:
        self._control = control
        self._registry = control.registry
        self._router = router
        self._calls = calls
        self._reach = reachability

    def on_event(self, ev: Event) -> None:
        if ev.type == "EndpointStateChange":
            ep = ev.raw.get("endpoint") or {}
            if ep.get("technology") == "PJSIP":
                self._reach.update(str(ep.get("resource")), str(ep.get("state")))
            return
        if isinstance(ev, StasisStart) and ev.channel.id not in self._registry:
            self._router.dispatch(ev)
            return
        self._registry.route(ev)

    async def on_connect(self) -> None:
        """After each (re)connection, before its events are read: subscriptions, then resync."""
        ari = self._control.ari
        try:
            # Agents' endpoints only (not endpoint:PJSIP, which also streams every trunk channel).
            await ari.unsubscribe("endpoint:PJSIP")
            await ari.subscribe(*(f"endpoint:{agent_endpoint(a)}" for a in sorted(self._reach.agents)))
            await ari.allow_events(EVENT_TYPES)
            self._reach.reset(await ari.endpoints("PJSIP"))
        except AriError as exc:
            log.error("ari_setup_failed", error=str(exc))
        await self._calls.resync(reason="connect")

    async def on_disconnect(self) -> None:
        log.warning("ari_lost", live_calls=len(self._calls.calls()))
