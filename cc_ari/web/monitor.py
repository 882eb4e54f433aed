"""HTTP API of supervision (LAB.md "Operations"): ring a supervisor's phone to listen to, whisper
to or barge into a live call, switch mode without redialing, end it. Supervisor and admin tokens
only (an agent's token, bound or not, gets 403)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cc_ari.supervision.monitor import Mode, MonitorError, Monitors
from cc_ari.web.api import CONTROL_ROLES, ApiError, json_body

NAME_MAX = 64


def _supervisor_only(request: web.Request) -> None:
    if request["role"] not in CONTROL_ROLES:
        raise ApiError(403, "supervision needs a supervisor or admin token")


def _mode(raw: Any) -> Mode:
    if not isinstance(raw, str) or raw not in {m.value for m in Mode}:
        raise ApiError(422, f"mode must be one of {', '.join(m.value for m in Mode)}")
    return Mode(raw)


class MonitorApi:
    def __init__(self, monitors: Monitors) -> None:
        self._monitors = monitors

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/calls/{call_id}/monitor", self.start)
        app.router.add_get("/api/monitors", self.list_monitors)
        app.router.add_get("/api/monitors/{monitor_id}", self.get)
        app.router.add_post("/api/monitors/{monitor_id}", self.change)
        app.router.add_delete("/api/monitors/{monitor_id}", self.stop)

    async def start(self, request: web.Request) -> web.Response:
        _supervisor_only(request)
        call_id = request.match_info["call_id"]
        body = await json_body(request, required=True)
        unknown = set(body) - {"supervisor", "mode"}
        if unknown:
            raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        supervisor = body.get("supervisor")
        if not isinstance(supervisor, str) or not supervisor.strip() or len(supervisor) > NAME_MAX:
            raise ApiError(422, "supervisor must be the supervisor's extension (e.g. agent20)")
        mode = _mode(body.get("mode", "listen"))
        try:
            m = self._monitors.start(call_id, supervisor.strip(), mode)
        except MonitorError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(m.view(), status=202)  # the supervisor's phone is ringing

    async def list_monitors(self, request: web.Request) -> web.Response:
        _supervisor_only(request)
        return web.json_response({"monitors": [m.view() for m in self._monitors.live()]})

    async def get(self, request: web.Request) -> web.Response:
        _supervisor_only(request)
        try:
            m = self._monitors.get(request.match_info["monitor_id"])
        except MonitorError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(m.view())

    async def change(self, request: web.Request) -> web.Response:
        _supervisor_only(request)
        monitor_id = request.match_info["monitor_id"]
        try:
            self._monitors.get(monitor_id)  # 404 before looking at the body
        except MonitorError as exc:
            raise ApiError(exc.status, str(exc)) from None
        body = await json_body(request, required=True)
        unknown = set(body) - {"mode"}
        if unknown:
            raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        if "mode" not in body:
            raise ApiError(422, "give the mode: listen, whisper or barge")
        mode = _mode(body["mode"])
        try:
            m = await self._monitors.set_mode(monitor_id, mode)
        except MonitorError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(m.view())

    async def stop(self, request: web.Request) -> web.Response:
        _supervisor_only(request)
        try:
            m = await self._monitors.stop(request.match_info["monitor_id"])
        except MonitorError as exc:
            raise ApiError(exc.status, str(exc)) from None
        return web.json_response(m.view())
