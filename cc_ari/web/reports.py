"""`GET /api/reports/queue-intervals` and `GET /api/reports/agent-intervals`: the KPI views
(report.queue_intervals / agent_intervals and their 30-minute roll-ups) for one local day, as JSON.
The same numbers as the wallboard's (one definition, in SQL)."""

from __future__ import annotations

from datetime import date, datetime, tzinfo
from typing import Any

from aiohttp import web

from cc_ari.db import reports
from cc_ari.web.api import ApiError


class ReportsApi:
    def __init__(self, pool: Any, tz: tzinfo) -> None:
        self._pool = pool  # the CallStore (its pool is taken per request)
        self._tz = tz

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/reports/queue-intervals", self.queue_intervals)
        app.router.add_get("/api/reports/agent-intervals", self.agent_intervals)

    def _day_minutes(self, request: web.Request) -> tuple[date, int]:
        raw = request.query.get("date")
        try:
            day = date.fromisoformat(raw) if raw else datetime.now(self._tz).date()
        except ValueError:
            raise ApiError(422, "date must be YYYY-MM-DD") from None
        minutes = request.query.get("minutes", "15")
        if minutes not in ("15", "30"):
            raise ApiError(422, "minutes must be 15 or 30")
        return day, int(minutes)

    async def queue_intervals(self, request: web.Request) -> web.Response:
        day, minutes = self._day_minutes(request)
        rows = await reports.queue_intervals(self._pool, day, minutes, self._tz)
        return web.json_response({"date": day.isoformat(), "minutes": minutes, "rows": rows})

    async def agent_intervals(self, request: web.Request) -> web.Response:
        day, minutes = self._day_minutes(request)
        agent = request.query.get("agent") or None
        rows = await reports.agent_intervals(self._pool, day, minutes, self._tz, agent=agent)
        return web.json_response({"date": day.isoformat(), "minutes": minutes, "rows": rows})
