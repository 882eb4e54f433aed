"""`GET /api/live`: the WebSocket the dashboard and the agent desktop listen on (docs/operations.md).

The token comes in the URL (`?token=`) or as the first message (`{"token": "..."}`) within
`AUTH_SECONDS`; a bad one gets an error message and close code 4401. Then: `hello`, the whole
current state, `synced`, and every change as the hub broadcasts it. Pages send nothing else (what
they send is ignored).
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import structlog
from aiohttp import WSMsgType, web

from cc_ari.ops.live import LiveHub, Viewer
from cc_ari.web.api import Tokens

log = structlog.get_logger("cc_ari.web.live")

AUTH_SECONDS = 5.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_SLOW = 4408


class LiveApi:
    def __init__(self, hub: LiveHub, tokens: Tokens) -> None:
        self._hub = hub
        self._tokens = tokens

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/live", self.live)

    async def _token(self, request: web.Request, ws: web.WebSocketResponse) -> str | None:
        token = request.query.get("token")
        if token:
            return token
        try:
            msg = await ws.receive(timeout=AUTH_SECONDS)
        except TimeoutError:
            return None
        if msg.type is not WSMsgType.TEXT:
            return None
        try:
            data = json.loads(msg.data)
        except ValueError:
            return None
        value = data.get("token") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None

    async def live(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, max_msg_size=4096)
        if not ws.can_prepare(request).ok:
            return web.json_response({"error": "this is a WebSocket: connect with a WebSocket client"}, status=426)
        await ws.prepare(request)
        token = await self._token(request, ws)
        who = self._tokens.principal(token) if token else None
        if who is None:
            await ws.send_json({"type": "error", "error": "missing or invalid token",
                                "hint": "connect to /api/live?token=<token> or send {\"token\": ...} first"})
            await ws.close(code=CLOSE_UNAUTHORIZED, message=b"unauthorized")
            return ws
        viewer = Viewer(who.role, who.agent)
        sub = self._hub.subscribe(viewer)  # first: changes during the snapshot are queued, not lost
        reader = asyncio.create_task(self._drain(ws), name="live-reader")
        try:
            await ws.send_str(self._hub.hello(viewer))
            for text in self._hub.snapshot(viewer):
                await ws.send_str(text)
            await ws.send_str('{"type":"synced"}')
            while not ws.closed:
                get = asyncio.ensure_future(sub.get())
                done, _ = await asyncio.wait({get, reader}, return_when=asyncio.FIRST_COMPLETED)
                if get not in done:
                    get.cancel()
                    break  # the page went away
                item = get.result()
                if item is None:
                    await ws.close(code=CLOSE_TOO_SLOW, message=b"too slow: reconnect")
                    break
                await ws.send_str(item)
        except ConnectionResetError:
            pass  # the page went away mid-send
        finally:
            self._hub.unsubscribe(sub)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if not ws.closed:
                await ws.close()
        return ws

    @staticmethod
    async def _drain(ws: web.WebSocketResponse) -> None:
        """Read (and ignore) what the page sends, so pings, pongs and the close are handled."""
        async for _msg in ws:
            pass
