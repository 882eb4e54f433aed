"""HTTP API of an agent's outbound work (LAB.md): end the customer call, the disposition, and
preview dialing. Supervisors and admins may act for any agent, a token bound to an agent for that
agent only. The disposition closes the wrap-up of an inbound call too (its code on the call row)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cc_ari.agents.dispositions import DispositionError, Dispositions
from cc_ari.dialer import compliance
from cc_ari.dialer.service import Dialer, DialerError
from cc_ari.web.api import ApiError, json_body, may_control


class DialerApi:
    def __init__(self, dialer: Dialer, dispositions: Dispositions) -> None:
        self._dialer = dialer
        self._dispositions = dispositions  # inbound and outbound: the agent's last call

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/agents/{agent}/hangup", self.hangup)
        app.router.add_post("/api/agents/{agent}/disposition", self.disposition)
        app.router.add_post("/api/agents/{agent}/dial", self.dial)

    @staticmethod
    def _control(request: web.Request) -> str:
        agent = request.match_info["agent"]
        may_control(request, agent)
        return agent

    def _known(self, agent: str) -> None:
        self._dialer.agent(agent)  # UnknownAgent -> 404

    async def hangup(self, request: web.Request) -> web.Response:
        agent = self._control(request)
        self._known(agent)
        await json_body(request, required=False)
        try:
            call = await self._dialer.hangup(agent)
        except DialerError as exc:
            raise ApiError(409, str(exc)) from None
        return web.json_response({"agent": agent, "call_id": call.call_id, "hung_up": True})

    async def disposition(self, request: web.Request) -> web.Response:
        agent = self._control(request)
        self._known(agent)
        body = await json_body(request, required=True)
        unknown = set(body) - {"code", "callback_at"}
        if unknown:
            raise ApiError(422, f"unknown field(s): {', '.join(sorted(unknown))}")
        try:
            code = compliance.validate_disposition_code(body.get("code"))
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        callback_at = _time(body.get("callback_at"))
        if code == "callback" and callback_at is None:
            raise ApiError(422, "a callback needs callback_at (ISO 8601 time with its UTC offset)")
        if code != "callback" and callback_at is not None:
            raise ApiError(422, "callback_at goes only with the code callback")
        try:
            out = await self._dispositions.dispose(agent, code, callback_at)
        except (DialerError, DispositionError) as exc:
            raise ApiError(409, str(exc)) from None
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        return web.json_response({"agent": agent, "code": code, **out})

    async def dial(self, request: web.Request) -> web.Response:
        agent = self._control(request)
        self._known(agent)
        await json_body(request, required=False)
        try:
            call = await self._dialer.preview_dial(agent)
        except DialerError as exc:
            raise ApiError(409, str(exc)) from None
        return web.json_response({"agent": agent, "call_id": call.call_id, "lead": self._dialer.lead_of(call)})


def _time(raw: Any) -> datetime | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > 64:
        raise ApiError(422, "callback_at must be an ISO 8601 time")
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(422, "callback_at must be an ISO 8601 time") from None
    if value.tzinfo is None:
        raise ApiError(422, "callback_at needs its UTC offset (e.g. 2026-12-01T15:00:00+01:00)")
    return value.astimezone(UTC)
