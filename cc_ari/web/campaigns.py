"""HTTP API of outbound campaigns (LAB.md, "Outbound campaigns"): create, read, start / pause /
stop, lead files (CSV), do-not-call lists. Managing is for admin and supervisor tokens; reading
for any token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import structlog
from aiohttp import web

from cc_ari.campaigns.leads import normalise, parse_leads
from cc_ari.campaigns.models import Campaign, CampaignError, next_state, parse_campaign
from cc_ari.db.campaigns import CampaignExists, CampaignStore
from cc_ari.web.api import CONTROL_ROLES, ApiError, json_body

log = structlog.get_logger("cc_ari.campaigns")

MAX_LEADS_BYTES = 64 << 20  # a lead file: 100,000 leads with custom fields fit easily
MAX_DNC = 100_000


def campaign_json(c: Campaign, leads: dict[str, int] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": c.name, "mode": c.mode, "caller_id": c.caller_id, "state": c.state,
                           **c.settings.as_json()}
    if leads is not None:
        out["leads"] = {s: leads.get(s, 0) for s in ("pending", "scheduled", "done", "dnc", "exhausted")}
    return out


class CampaignApi:
    def __init__(self, store: CampaignStore, *,
                 live: Callable[[str], dict[str, Any]] = lambda _name: {},
                 changed: Callable[[Campaign], None] = lambda _c: None) -> None:
        self._store = store
        self._changed = changed  # the dialer, told of each start / pause / stop
        self._live = live  # the dialer's live figures of a campaign

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/campaigns", self.create)
        app.router.add_get("/api/campaigns", self.list)
        app.router.add_get("/api/campaigns/{name}", self.get)
        app.router.add_post("/api/campaigns/{name}/leads", self.import_leads)
        for action in ("start", "pause", "stop"):
            app.router.add_post(f"/api/campaigns/{{name}}/{action}", self._transition(action))
        app.router.add_post("/api/dnc", self.add_dnc)
        app.router.add_get("/api/dnc", self.list_dnc)
        app.router.add_delete("/api/dnc/{number}", self.remove_dnc)
        app.router.add_post("/api/campaigns/{name}/dnc", self.add_dnc)
        app.router.add_get("/api/campaigns/{name}/dnc", self.list_dnc)
        app.router.add_delete("/api/campaigns/{name}/dnc/{number}", self.remove_dnc)

    @staticmethod
    def _manage(request: web.Request) -> None:
        if request["role"] not in CONTROL_ROLES:
            raise ApiError(403, "this token's role may not manage campaigns")

    async def _campaign(self, request: web.Request) -> Campaign:
        name = request.match_info["name"]
        c = await self._store.get(name)
        if c is None:
            raise ApiError(404, f"no campaign {name!r}")
        return c

    async def create(self, request: web.Request) -> web.Response:
        self._manage(request)
        body = await json_body(request, required=True)
        try:
            c = parse_campaign(body)
        except CampaignError as exc:
            raise ApiError(422, str(exc)) from None
        try:
            await self._store.create(c)
        except CampaignExists:
            raise ApiError(409, f"campaign {c.name!r} exists") from None
        log.info("campaign_created", campaign=c.name, mode=c.mode)
        return web.json_response(campaign_json(c, {}), status=201)

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response({"campaigns": [campaign_json(c) for c in await self._store.all()]})

    async def get(self, request: web.Request) -> web.Response:
        c = await self._campaign(request)
        counts = await self._store.lead_counts(c.name)
        out = campaign_json(c, counts)
        out["live"] = live = self._live(c.name)
        if live.get("leads_left") is None:  # the dialer is not working on it: from the counts
            live["leads_left"] = counts.get("pending", 0) + counts.get("scheduled", 0)
        return web.json_response(out)

    def _transition(self, action: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            self._manage(request)
            c = await self._campaign(request)
            try:
                state = next_state(action, c.state)
            except CampaignError as exc:
                raise ApiError(409, str(exc)) from None
            await self._store.set_state(c.name, state)
            log.info("campaign_state", campaign=c.name, previous=c.state, state=state)
            changed = Campaign(c.name, c.mode, c.caller_id, c.settings, state)
            self._changed(changed)
            return web.json_response(campaign_json(changed, await self._store.lead_counts(c.name)))
        return handler

    async def import_leads(self, request: web.Request) -> web.Response:
        """A whole file or nothing: any bad row is a 422 listing every bad row."""
        self._manage(request)
        c = await self._campaign(request)
        if request.content_length and request.content_length > MAX_LEADS_BYTES:
            raise ApiError(413, f"a lead file is at most {MAX_LEADS_BYTES >> 20} MB")
        raw = bytearray()
        while chunk := await request.content.read(1 << 16):
            raw += chunk
            if len(raw) > MAX_LEADS_BYTES:
                raise ApiError(413, f"a lead file is at most {MAX_LEADS_BYTES >> 20} MB")
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ApiError(422, "the lead file must be UTF-8 text (CSV)") from None
        parsed = parse_leads(text, default_region=c.settings.country, existing=await self._store.lead_phones(c.name))
        if not parsed.ok:
            return web.json_response({"error": f"{len(parsed.errors)} bad row(s): nothing imported",
                                      "rows": [{"row": e.line, "error": e.error} for e in parsed.errors[:1000]]},
                                     status=422)
        try:
            imported = await self._store.import_leads(c.name, parsed.leads)
        except asyncpg.UniqueViolationError:
            raise ApiError(409, "another import added some of these numbers meanwhile: nothing imported") from None
        log.info("leads_imported", campaign=c.name, imported=imported, duplicates=len(parsed.duplicates))
        return web.json_response({"imported": imported,
                                  "duplicates": [{"line": d.line, "phone": d.phone} for d in parsed.duplicates]})

    # --- do-not-call ----------------------------------------------------------------------
    async def _scope(self, request: web.Request) -> str | None:
        return (await self._campaign(request)).name if "name" in request.match_info else None

    async def add_dnc(self, request: web.Request) -> web.Response:
        self._manage(request)
        campaign = await self._scope(request)
        body = await json_body(request, required=True)
        numbers = body.get("numbers")
        if set(body) != {"numbers"} or not isinstance(numbers, list) or not numbers or len(numbers) > MAX_DNC:
            raise ApiError(422, f'the body is {{"numbers": [...]}} with 1..{MAX_DNC} numbers')
        region = "US"
        if campaign is not None:
            region = (await self._campaign(request)).settings.country
        e164: list[str] = []
        for i, n in enumerate(numbers):
            if not isinstance(n, str):
                raise ApiError(422, f"numbers[{i}] must be a string")
            try:
                e164.append(normalise(n, region)[0])
            except ValueError as exc:
                raise ApiError(422, f"numbers[{i}]: {exc}") from None
        await self._store.add_dnc(sorted(set(e164)), campaign)
        log.info("dnc_added", campaign=campaign, count=len(set(e164)))
        return web.json_response({"added": sorted(set(e164))})

    async def list_dnc(self, request: web.Request) -> web.Response:
        return web.json_response({"numbers": await self._store.list_dnc(await self._scope(request))})

    async def remove_dnc(self, request: web.Request) -> web.Response:
        self._manage(request)
        campaign = await self._scope(request)
        try:
            number = normalise(request.match_info["number"], "US")[0]
        except ValueError as exc:
            raise ApiError(422, str(exc)) from None
        if not await self._store.remove_dnc(number, campaign):
            raise ApiError(404, f"{number} is not on the list")
        return web.json_response({"removed": number})
