"""Campaigns, leads and do-not-call lists in PostgreSQL. Unlike calls (journaled, written
behind), these are requests an operator waits for: each is one transaction, answered when
committed, and an error reaches the caller."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from cc_ari.campaigns.leads import Lead
from cc_ari.campaigns.models import Campaign, settings_from_json
from cc_ari.db.store import CallStore

CREATE = """
INSERT INTO cc.campaigns (name, mode, caller_id, settings) VALUES ($1, $2, $3, $4::jsonb)
ON CONFLICT (name) DO NOTHING
"""
GET = "SELECT name, mode, caller_id, settings::text AS settings, state FROM cc.campaigns WHERE name = $1"
LIST = "SELECT name, mode, caller_id, settings::text AS settings, state FROM cc.campaigns ORDER BY name"
SET_STATE = "UPDATE cc.campaigns SET state = $2, updated_at = now() WHERE name = $1"
LEAD_COUNTS = "SELECT status, count(*) AS n FROM cc.leads WHERE campaign = $1 GROUP BY status"
LEAD_PHONES = "SELECT phone, lead_id FROM cc.leads WHERE campaign = $1"
LEAD_COLUMNS = ("campaign", "lead_id", "phone", "timezone", "timezones", "fields", "line")
DNC_ADD = "INSERT INTO cc.dnc (number) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING"
DNC_LIST = "SELECT number FROM cc.dnc ORDER BY number"
DNC_REMOVE = "DELETE FROM cc.dnc WHERE number = $1"
CAMPAIGN_DNC_ADD = """
INSERT INTO cc.campaign_dnc (campaign, number) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING
"""
CAMPAIGN_DNC_LIST = "SELECT number FROM cc.campaign_dnc WHERE campaign = $1 ORDER BY number"
CAMPAIGN_DNC_REMOVE = "DELETE FROM cc.campaign_dnc WHERE campaign = $1 AND number = $2"


class CampaignExists(Exception):
    pass


def _campaign(row: Any) -> Campaign:
    return Campaign(name=row["name"], mode=row["mode"], caller_id=row["caller_id"],
                    settings=settings_from_json(json.loads(row["settings"])), state=row["state"])


class CampaignStore:
    def __init__(self, store: CallStore, *, timeout: float = 30.0) -> None:
        self._store = store
        self._timeout = timeout

    async def create(self, c: Campaign) -> None:
        pool = await self._store.pool()
        status = await pool.execute(CREATE, c.name, c.mode, c.caller_id, json.dumps(c.settings.as_json()),
                                    timeout=self._timeout)
        if status.endswith(" 0"):
            raise CampaignExists(c.name)

    async def get(self, name: str) -> Campaign | None:
        pool = await self._store.pool()
        row = await pool.fetchrow(GET, name, timeout=self._timeout)
        return _campaign(row) if row is not None else None

    async def all(self) -> list[Campaign]:
        pool = await self._store.pool()
        return [_campaign(r) for r in await pool.fetch(LIST, timeout=self._timeout)]

    async def set_state(self, name: str, state: str) -> None:
        pool = await self._store.pool()
        await pool.execute(SET_STATE, name, state, timeout=self._timeout)

    async def lead_counts(self, name: str) -> dict[str, int]:
        pool = await self._store.pool()
        return {r["status"]: int(r["n"]) for r in await pool.fetch(LEAD_COUNTS, name, timeout=self._timeout)}

    async def lead_phones(self, name: str) -> dict[str, str]:
        """E.164 -> lead id of the campaign's leads (duplicates of an import are decided against them)."""
        pool = await self._store.pool()
        return {r["phone"]: r["lead_id"] for r in await pool.fetch(LEAD_PHONES, name, timeout=self._timeout)}

    async def import_leads(self, name: str, leads: Sequence[Lead]) -> int:
        """All or nothing, with COPY (100,000 leads in seconds, not row-by-row inserts).
        A UniqueViolationError when a concurrent import took a number meanwhile."""
        records = [(name, lead.lead_id, lead.phone, lead.timezone, list(lead.timezones), json.dumps(dict(lead.fields)),
                    lead.line) for lead in leads]
        pool = await self._store.pool()
        async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '10s'")
            await conn.copy_records_to_table("leads", schema_name="cc", columns=list(LEAD_COLUMNS),
                                             records=records, timeout=self._timeout)
        return len(records)

    # --- do-not-call ----------------------------------------------------------------------
    async def add_dnc(self, numbers: Sequence[str], campaign: str | None = None) -> None:
        pool = await self._store.pool()
        if campaign is None:
            await pool.execute(DNC_ADD, list(numbers), timeout=self._timeout)
        else:
            await pool.execute(CAMPAIGN_DNC_ADD, campaign, list(numbers), timeout=self._timeout)

    async def list_dnc(self, campaign: str | None = None) -> list[str]:
        pool = await self._store.pool()
        rows = (await pool.fetch(DNC_LIST, timeout=self._timeout) if campaign is None
                else await pool.fetch(CAMPAIGN_DNC_LIST, campaign, timeout=self._timeout))
        return [r["number"] for r in rows]

    async def remove_dnc(self, number: str, campaign: str | None = None) -> bool:
        pool = await self._store.pool()
        status = (await pool.execute(DNC_REMOVE, number, timeout=self._timeout) if campaign is None
                  else await pool.execute(CAMPAIGN_DNC_REMOVE, campaign, number, timeout=self._timeout))
        return not str(status).endswith(" 0")


