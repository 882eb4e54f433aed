"""Campaigns, leads and do-not-call lists in PostgreSQL. Unlike calls (journaled, written
behind), these are requests an operator waits for: each is one transaction, answered when
committed, and an error reaches the caller."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
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




# --- the dialer -----------------------------------------------------------------------------
CLAIM_CANDIDATES = """
SELECT l.lead_id, l.phone, l.timezones, l.fields::text AS fields, l.attempts,
       (EXISTS (SELECT 1 FROM cc.dnc d WHERE d.number = l.phone)
        OR EXISTS (SELECT 1 FROM cc.campaign_dnc c WHERE c.campaign = l.campaign AND c.number = l.phone)) AS dnc
FROM cc.leads l
WHERE l.campaign = $1 AND (l.status = 'pending' OR (l.status = 'scheduled' AND l.next_attempt_at <= now()))
ORDER BY l.next_attempt_at NULLS LAST, l.line NULLS LAST, l.lead_id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""
MARK_DNC = """
UPDATE cc.leads SET status = 'dnc', next_attempt_at = NULL, updated_at = now()
WHERE campaign = $1 AND lead_id = $2
"""
RESCHEDULE = """
UPDATE cc.leads SET status = 'scheduled', next_attempt_at = $3, updated_at = now()
WHERE campaign = $1 AND lead_id = $2
"""
TAKE = """
UPDATE cc.leads SET status = 'scheduled', next_attempt_at = now() + make_interval(secs => $4),
    attempts = attempts + 1, dialing_call_id = $3, updated_at = now()
WHERE campaign = $1 AND lead_id = $2
"""
DNC_LISTED = """
SELECT EXISTS (SELECT 1 FROM cc.dnc WHERE number = $2)
    OR EXISTS (SELECT 1 FROM cc.campaign_dnc WHERE campaign = $1 AND number = $2)
"""
GIVE_BACK = """
UPDATE cc.leads SET status = $4, next_attempt_at = NULL, attempts = greatest(attempts - 1, 0),
    dialing_call_id = NULL, updated_at = now()
WHERE campaign = $1 AND lead_id = $2 AND dialing_call_id = $3
"""
DISPOSE = """
UPDATE cc.leads SET status = $3, next_attempt_at = $4, disposition = $5, last_outcome = 'answered',
    dialing_call_id = NULL, updated_at = now()  -- the call's own outcome write, if still on its way, is void
WHERE campaign = $1 AND lead_id = $2
RETURNING phone
"""
GET_LEAD = """
SELECT lead_id, phone, timezone, status, attempts, last_outcome, disposition, next_attempt_at, fields::text AS fields
FROM cc.leads WHERE campaign = $1 AND lead_id = $2
"""
OPEN_LEADS = "SELECT count(*) FROM cc.leads WHERE campaign = $1 AND status IN ('pending', 'scheduled')"
NEXT_DUE = """
SELECT min(next_attempt_at) FROM cc.leads WHERE campaign = $1 AND status = 'scheduled'
"""
ABANDON_BUCKETS = """
SELECT extract(epoch FROM date_trunc('minute', answered_at))::float8 AS t,
       count(*) FILTER (WHERE outcome IN ('answered', 'dropped'))::int AS lives,
       count(*) FILTER (WHERE outcome = 'dropped')::int AS drops
FROM cc.calls
WHERE campaign = $1 AND direction = 'outbound' AND answered_at > now() - make_interval(secs => $2)
GROUP BY 1
"""
RECENT_OUTCOMES = """
SELECT outcome, extract(epoch FROM (answered_at - started_at))::float8 AS answer_s,
       extract(epoch FROM (ended_at - answered_at))::float8 AS talk_s, connect_seconds IS NOT NULL AS connected
FROM cc.calls
WHERE campaign = $1 AND direction = 'outbound' AND ended_at IS NOT NULL
ORDER BY started_at DESC LIMIT $2
"""


STRANDED = """
SELECT l.lead_id, l.attempts, l.dialing_call_id, c.outcome
FROM cc.leads l JOIN cc.calls c ON c.call_id = l.dialing_call_id
WHERE l.campaign = $1 AND l.dialing_call_id IS NOT NULL AND c.ended_at IS NOT NULL
  AND c.ended_at < now() - make_interval(secs => $2)
"""


@dataclass(frozen=True, slots=True)
class Claimed:
    lead_id: str
    phone: str
    fields: dict[str, Any]
    attempts: int  # this attempt included
    call_id: str  # the call it is being dialed on


@dataclass(frozen=True, slots=True)
class ClaimResult:
    claimed: list[Claimed]
    dnc: list[str]  # leads found on a do-not-call list (now status dnc)
    outside_window: list[str]  # leads rescheduled to their next window opening


class DialerStore:
    """What the dialer reads and changes in PostgreSQL. Claims are one transaction each, with
    `FOR UPDATE SKIP LOCKED`: two dialers (processes) never take the same lead."""

    def __init__(self, store: CallStore, *, timeout: float = 10.0) -> None:
        self._store = store
        self._timeout = timeout

    async def claim(self, campaign: str, n: int, *, call_ids: Callable[[], str],
                    window: Callable[[Sequence[str]], datetime | None], lease: float) -> ClaimResult:
        """Up to `n` due leads of the campaign for dialing, each bound to a new call id. Leads on a
        do-not-call list become `dnc`; leads outside their calling window are rescheduled to its
        next opening (`window(zones)`: None when open now, else when it opens)."""
        claimed: list[Claimed] = []
        dnc: list[str] = []
        later: list[tuple[str, datetime]] = []
        pool = await self._store.pool()
        async with pool.acquire(timeout=self._timeout) as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_CANDIDATES, campaign, n * 4 + 4, timeout=self._timeout)
            takes: list[tuple[str, str, str, float]] = []
            for r in rows:
                if r["dnc"]:
                    dnc.append(r["lead_id"])
                    continue
                opens = window(r["timezones"])
                if opens is not None:
                    later.append((r["lead_id"], opens))
                    continue
                if len(claimed) >= n:
                    continue  # left as it is, for the next claim
                call_id = call_ids()
                takes.append((campaign, r["lead_id"], call_id, lease))
                claimed.append(Claimed(r["lead_id"], r["phone"], json.loads(r["fields"]), r["attempts"] + 1, call_id))
            if dnc:
                await conn.executemany(MARK_DNC, [(campaign, lead) for lead in dnc], timeout=self._timeout)
            if later:
                await conn.executemany(RESCHEDULE, [(campaign, lead, at) for lead, at in later],
                                       timeout=self._timeout)
            if takes:
                await conn.executemany(TAKE, takes, timeout=self._timeout)
        return ClaimResult(claimed, dnc, [lead for lead, _ in later])

    async def stranded(self, campaign: str, *, older_than: float) -> list[dict[str, Any]]:
        """Leads still bound to a call that ended `older_than` seconds ago or more: its outcome
        never reached the lead (the call was finished by another process, or from the CEL log)."""
        pool = await self._store.pool()
        return [dict(r) for r in await pool.fetch(STRANDED, campaign, older_than, timeout=self._timeout)]

    async def dnc_listed(self, campaign: str, phone: str) -> bool:
        pool = await self._store.pool()
        return bool(await pool.fetchval(DNC_LISTED, campaign, phone, timeout=self._timeout))

    async def give_back(self, campaign: str, lead_id: str, call_id: str, *, status: str) -> None:
        """A claimed lead that was not dialed after all (found on a DNC list just before): not an attempt."""
        pool = await self._store.pool()
        await pool.execute(GIVE_BACK, campaign, lead_id, call_id, status, timeout=self._timeout)

    async def dispose(self, campaign: str, lead_id: str, *, status: str, next_attempt_at: datetime | None,
                      code: str) -> str | None:
        """The agent's disposition on a lead; its phone number (None if no such lead)."""
        pool = await self._store.pool()
        value = await pool.fetchval(DISPOSE, campaign, lead_id, status, next_attempt_at, code, timeout=self._timeout)
        return str(value) if value is not None else None

    async def lead(self, campaign: str, lead_id: str) -> dict[str, Any] | None:
        pool = await self._store.pool()
        row = await pool.fetchrow(GET_LEAD, campaign, lead_id, timeout=self._timeout)
        if row is None:
            return None
        out = dict(row)
        out["fields"] = json.loads(out["fields"])
        return out

    async def open_leads(self, campaign: str) -> int:
        pool = await self._store.pool()
        return int(await pool.fetchval(OPEN_LEADS, campaign, timeout=self._timeout))

    async def abandon_buckets(self, campaign: str, period: float) -> list[tuple[float, int, int]]:
        pool = await self._store.pool()
        rows = await pool.fetch(ABANDON_BUCKETS, campaign, period, timeout=self._timeout)
        return [(float(r["t"]), int(r["lives"]), int(r["drops"])) for r in rows]

    async def recent_outcomes(self, campaign: str, limit: int = 500) -> list[dict[str, Any]]:
        pool = await self._store.pool()
        return [dict(r) for r in await pool.fetch(RECENT_OUTCOMES, campaign, limit, timeout=self._timeout)]
