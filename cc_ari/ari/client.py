"""ARI over aiohttp: REST with a timeout on every call, and a reconnecting events WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import structlog

from cc_ari.ari.errors import AriBadRequest, AriConflict, AriError, AriNotFound, AriUnavailable
from cc_ari.ari.models import Bridge, Channel, Event, parse_event

log = structlog.get_logger("cc_ari.ari")

EventHandler = Callable[[Event], None]  # routes only: never awaits per-call work
ConnectHandler = Callable[[], Awaitable[None]]
Params = Mapping[str, str | int | float | bool]


def _q(params: Params | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (params or {}).items():
        out[k] = ("true" if v else "false") if isinstance(v, bool) else str(v)
    return out


class AriClient:
    """A small typed surface over the REST calls cc_ari uses."""

    def __init__(self, base_url: str, user: str, password: str, app: str, *, timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/") + "/ari"
        self._auth = aiohttp.encode_basic_auth(user, password) if hasattr(aiohttp, "encode_basic_auth") \
            else aiohttp.BasicAuth(user, password).encode()
        self.app = app
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None
        self._default_timeout = aiohttp.ClientTimeout(total=timeout)

    async def start(self) -> None:
        if self._session is None:
            # No cookies (ARI sets none), one keep-alive pool: the cost of a request is per call.
            self._session = aiohttp.ClientSession(
                headers={"Authorization": self._auth}, cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timeout, sock_connect=self._timeout))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("AriClient.start() was not called")
        return self._session

    async def request(self, method: str, path: str, *, params: Params | None = None,
                      json_body: Any = None, timeout: float | None = None) -> Any:
        url = self._base + path
        try:
            async with self.session.request(
                method, url, params=_q(params), json=json_body,
                timeout=self._default_timeout if timeout is None else aiohttp.ClientTimeout(total=timeout),
            ) as resp:
                text = (await resp.read()).decode("utf-8", "replace")  # ARI's JSON is UTF-8
                if resp.status >= 400:
                    message = text
                    with contextlib.suppress(ValueError, AttributeError):
                        message = json.loads(text).get("message", text)
                    cls: type[AriError] = AriError
                    if resp.status == 404:
                        cls = AriNotFound
                    elif resp.status == 409:
                        cls = AriConflict
                    elif resp.status in (400, 422):
                        cls = AriBadRequest
                    raise cls(f"{method} {path}: {resp.status} {message}", status=resp.status, path=path)
                if not text:
                    return None
                return json.loads(text)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise AriUnavailable(f"{method} {path}: {exc!r}", path=path) from exc

    # --- channels -------------------------------------------------------------------------
    async def channels(self, *, timeout: float | None = None) -> list[Channel]:
        """Every channel. With hundreds up, Asterisk takes a while to list them: the safety nets
        that list them pass a longer `timeout` than the default."""
        return [Channel.parse(c) for c in await self.request("GET", "/channels", timeout=timeout)]

    async def channel_exists(self, channel_id: str) -> bool:
        try:
            await self.request("GET", f"/channels/{channel_id}")
        except AriNotFound:
            return False
        return True

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        """Hang up; a channel that is already gone is fine."""
        with contextlib.suppress(AriNotFound):
            await self.request("DELETE", f"/channels/{channel_id}", params={"reason": reason})

    async def continue_in_dialplan(self, channel_id: str, context: str, extension: str, priority: int = 1) -> None:
        await self.request("POST", f"/channels/{channel_id}/continue",
                           params={"context": context, "extension": extension, "priority": priority})

    async def create_channel(self, endpoint: str, *, channel_id: str, app_args: str, originator: str | None = None,
                             caller_id: str | None = None, variables: Mapping[str, str] | None = None) -> Channel:
        params: dict[str, str | int | float | bool] = {"endpoint": endpoint, "app": self.app,
                                                       "appArgs": app_args, "channelId": channel_id}
        if originator:
            params["originator"] = originator
        body = {"variables": dict(variables or {})}
        if caller_id:
            body["variables"]["CALLERID(all)"] = caller_id
        return Channel.parse(await self.request("POST", "/channels/create", params=params, json_body=body))

    async def dial(self, channel_id: str, *, caller: str | None = None, timeout: int = 0) -> None:
        params: dict[str, str | int | float | bool] = {"timeout": timeout}
        if caller:
            params["caller"] = caller
        await self.request("POST", f"/channels/{channel_id}/dial", params=params)

    async def play(self, channel_id: str, media: list[str], playback_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/play/{playback_id}",
                           params={"media": ",".join(media)})

    async def stop_playback(self, playback_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self.request("DELETE", f"/playbacks/{playback_id}")

    async def moh(self, channel_id: str, *, on: bool, moh_class: str = "default") -> None:
        if on:
            await self.request("POST", f"/channels/{channel_id}/moh", params={"mohClass": moh_class})
        else:
            await self.request("DELETE", f"/channels/{channel_id}/moh")

    async def subscribe(self, *event_sources: str) -> None:
        """Add event sources (e.g. endpoint:PJSIP/agent1) to this app's subscriptions."""
        await self.request("POST", f"/applications/{self.app}/subscription",
                           params={"eventSource": ",".join(event_sources)})

    async def unsubscribe(self, *event_sources: str) -> None:
        """Remove event sources; one this app was not subscribed to is fine."""
        with contextlib.suppress(AriNotFound, AriBadRequest, AriConflict):
            await self.request("DELETE", f"/applications/{self.app}/subscription",
                               params={"eventSource": ",".join(event_sources)})

    async def allow_events(self, types: list[str]) -> None:
        """Only these event types are sent to this app (Asterisk filters at the source)."""
        await self.request("PUT", f"/applications/{self.app}/eventFilter",
                           json_body={"allowed": [{"type": t} for t in types], "disallowed": []})

    # --- channel variables ---------------------------------------------------------------
    async def set_var(self, channel_id: str, name: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", params={"variable": name, "value": value})

    async def get_var(self, channel_id: str, name: str) -> str | None:
        """A channel variable, or None when it is not set (or the channel is gone)."""
        try:
            res = await self.request("GET", f"/channels/{channel_id}/variable", params={"variable": name})
        except (AriNotFound, AriBadRequest):
            return None
        value = (res or {}).get("value")
        return str(value) if value else None

    async def snoop(self, channel_id: str, *, snoop_id: str, app_args: str, spy: str = "both",
                    whisper: str = "none") -> Channel:
        """A snoop channel on `channel_id` that enters this app (listen: spy, speak: whisper)."""
        return Channel.parse(await self.request(
            "POST", f"/channels/{channel_id}/snoop/{snoop_id}",
            params={"app": self.app, "appArgs": app_args, "spy": spy, "whisper": whisper}))

    # --- bridges -------------------------------------------------------------------------
    async def bridges(self, *, timeout: float | None = None) -> list[Bridge]:
        return [Bridge.parse(b) for b in await self.request("GET", "/bridges", timeout=timeout)]

    async def create_bridge(self, bridge_id: str, kind: str, name: str = "") -> Bridge:
        return Bridge.parse(await self.request("POST", f"/bridges/{bridge_id}",
                                               params={"type": kind, "name": name or bridge_id}))

    async def destroy_bridge(self, bridge_id: str) -> None:
        with contextlib.suppress(AriNotFound):
            await self.request("DELETE", f"/bridges/{bridge_id}")

    async def add_to_bridge(self, bridge_id: str, channel_ids: list[str], role: str | None = None) -> None:
        params: dict[str, str | int | float | bool] = {"channel": ",".join(channel_ids)}
        if role:
            params["role"] = role
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", params=params)

    async def remove_from_bridge(self, bridge_id: str, channel_id: str) -> None:
        with contextlib.suppress(AriNotFound, AriBadRequest, AriConflict):
            await self.request("POST", f"/bridges/{bridge_id}/removeChannel", params={"channel": channel_id})

    async def record_bridge(self, bridge_id: str, name: str, fmt: str = "wav") -> None:
        await self.request("POST", f"/bridges/{bridge_id}/record",
                           params={"name": name, "format": fmt, "ifExists": "overwrite", "beep": False,
                                   "terminateOn": "none"})

    async def stop_recording(self, name: str) -> None:
        with contextlib.suppress(AriNotFound, AriConflict):
            await self.request("POST", f"/recordings/live/{name}/stop")

    async def endpoints(self, tech: str) -> dict[str, str]:
        res = await self.request("GET", f"/endpoints/{tech}")
        return {str(e.get("resource")): str(e.get("state")) for e in res or ()}


class AriEvents:
    """The events WebSocket, reconnected with backoff for as long as the service runs.

    `on_connect` runs after each (re)connection, before any event of that connection is
    handled, so the service can resynchronise its state from Asterisk first. `on_event` is
    synchronous: the reader only routes events to their owners' queues, so one slow call never
    delays another's events.

    Fault injection (tests, `CC_FAULT_INJECTION=1`): `drop_events(s)` loses every event for s
    seconds with the socket up; `disconnect(s)` drops the socket and stays away for s seconds.
    """

    def __init__(self, client: AriClient, base_url: str, *, on_event: EventHandler, on_connect: ConnectHandler,
                 on_disconnect: ConnectHandler, max_backoff: float = 5.0) -> None:
        ws = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/")
        self._url = f"{ws}/ari/events"
        self._client = client
        self._on_event = on_event
        self._on_connect = on_connect
        self._on_disconnect = on_disconnect
        self._max_backoff = max_backoff
        self.connected = asyncio.Event()
        self.events_received = 0
        self.last_event_lag = 0.0  # seconds between Asterisk's timestamp and our reading of the event
        self._drop_until = 0.0
        self._away_until = 0.0
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    def drop_events(self, seconds: float) -> None:
        self._drop_until = time.monotonic() + seconds
        log.warning("fault_drop_ari_events", seconds=seconds)

    async def disconnect(self, seconds: float) -> None:
        self._away_until = time.monotonic() + seconds
        log.warning("fault_ari_disconnect", seconds=seconds)
        if self._ws is not None:
            await self._ws.close()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            away = self._away_until - time.monotonic()
            if away > 0:
                await asyncio.sleep(away)
            try:
                async with self._client.session.ws_connect(
                    self._url, params={"app": self._client.app, "subscribeAll": "false"},
                    heartbeat=10.0, timeout=aiohttp.ClientWSTimeout(ws_close=5.0),
                ) as ws:
                    self._ws = ws
                    log.info("ari_connected", url=self._url)
                    backoff = 0.2
                    self.connected.set()
                    await self._on_connect()
                    async for msg in ws:
                        if msg.type == aiohttp.WSMsgType.TEXT:
                            self._handle(msg.data)
                        elif msg.type in (aiohttp.WSMsgType.ERROR, aiohttp.WSMsgType.CLOSED):
                            break
            except asyncio.CancelledError:
                raise
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                # Never the exception's repr: a handshake error carries the request's headers, and
                # with them the ARI credentials.
                status = getattr(exc, "status", None)
                log.warning("ari_connect_failed", error=type(exc).__name__, status=status, retry_in=backoff)
            except Exception:
                log.exception("ari_event_loop_error")
            finally:
                self._ws = None
            if self.connected.is_set():
                self.connected.clear()
                log.warning("ari_disconnected")
                try:
                    await self._on_disconnect()
                except Exception:
                    log.exception("ari_on_disconnect_failed")
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self._max_backoff)

    def _handle(self, text: str) -> None:
        try:
            data = json.loads(text)
        except ValueError:
            log.warning("ari_bad_event_json")
            return
        if self._drop_until and time.monotonic() < self._drop_until:
            return
        event = parse_event(data)
        self.events_received += 1
        if event.timestamp is not None:
            self.last_event_lag = max(0.0, time.time() - event.timestamp.timestamp())
        try:
            self._on_event(event)
        except Exception:  # one bad handler never drops the WebSocket
            log.exception("ari_event_handler_failed", event_type=event.type)
