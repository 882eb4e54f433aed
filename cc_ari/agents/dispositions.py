"""The agent's disposition of their last conversation, which closes their wrap-up.

Outbound calls go to the dialer (the code decides the lead's next state); inbound calls get the
code on their row (`report.calls.disposition`). Which codes an agent is offered: the queue's
`disposition_codes` (inbound), the campaign's `disposition_codes` (outbound; `callback`, `dnc` and
`retry`, which the dialer's rules give a meaning, always; a campaign without a list accepts any
valid code and its agents are offered a default list).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Protocol

import structlog

from cc_ari.agents.service import AgentService
from cc_ari.calls.models import Call
from cc_ari.dialer.compliance import validate_disposition_code

log = structlog.get_logger("cc_ari.dispositions")

DEFAULT_QUEUE_CODES = ("resolved", "follow_up", "escalated", "wrong_number", "other")
DEFAULT_CAMPAIGN_CODES = ("sale", "not_interested", "callback", "retry", "dnc", "wrong_number")
SCHEDULING_CODES = ("callback", "retry", "dnc")  # the dialer's rules give these a meaning: always allowed


class DispositionError(Exception):
    """The disposition cannot be taken now (409) — e.g. no call to dispose, still on the call."""


class OutboundDispositions(Protocol):
    def last_call(self, agent: str) -> Call | None: ...

    async def disposition(self, agent: str, code: str, callback_at: datetime | None) -> dict[str, Any]: ...


class CallRows(Protocol):
    def call(self, call_id: str, mode: Any = "merge", **values: Any) -> None: ...


class Dispositions:
    def __init__(self, agents: AgentService, rows: CallRows, outbound: OutboundDispositions, *,
                 queue_codes: Mapping[str, tuple[str, ...]] | None = None,
                 campaign_codes: Callable[[str], tuple[str, ...]] = lambda _c: ()) -> None:
        self._agents = agents
        self._rows = rows
        self._outbound = outbound
        self._queue_codes = dict(queue_codes or {})
        self._campaign_list = campaign_codes  # the campaign's own list (empty: any valid code)
        self._inbound: dict[str, Call] = {}  # agent -> their last answered inbound call, not yet disposed

    def on_final(self, call: Call) -> None:
        """CallService's final hook: an inbound conversation that ended awaits its disposition."""
        if call.outbound or call.agent is None or call.answered_at is None:
            return
        self._inbound[call.agent] = call

    def _campaign_codes(self, campaign: str) -> tuple[tuple[str, ...], bool]:
        """(what the desktop offers, whether only those are accepted): the campaign's list and the
        scheduling codes when it has one, else the defaults, any valid code accepted."""
        own = self._campaign_list(campaign)
        return (tuple(dict.fromkeys((*own, *SCHEDULING_CODES))), True) if own else (DEFAULT_CAMPAIGN_CODES, False)

    def codes(self, queue: str | None) -> tuple[str, ...]:
        return self._queue_codes.get(queue or "", ()) or DEFAULT_QUEUE_CODES

    def _last(self, agent: str) -> Call | None:
        """The agent's most recent conversation awaiting a disposition, inbound or outbound."""
        candidates = [c for c in (self._inbound.get(agent), self._outbound.last_call(agent)) if c is not None]
        if not candidates:
            return None
        return max(candidates, key=lambda c: c.ended_at or c.started_at)

    def pending(self, agent: str) -> dict[str, Any] | None:
        """What the agent desktop's disposition form needs, or None."""
        call = self._last(agent)
        if call is None or self._agents.get(agent).call_id == call.call_id:
            return None
        if call.outbound:
            codes, _ = self._campaign_codes(call.campaign or "")
            return {"call_id": call.call_id, "direction": "outbound", "campaign": call.campaign, "codes": list(codes)}
        return {"call_id": call.call_id, "direction": "inbound", "queue": call.queue,
                "codes": list(self.codes(call.queue))}

    async def dispose(self, agent: str, code: str, callback_at: datetime | None) -> dict[str, Any]:
        """Record the agent's disposition of their last call; their wrap-up ends. Raises
        DispositionError (nothing to dispose, still talking) or ValueError (a bad code)."""
        validate_disposition_code(code)
        call = self._last(agent)
        if call is None:
            raise DispositionError(f"{agent} has no call to dispose")
        if self._agents.get(agent).call_id == call.call_id:
            raise DispositionError(f"{agent} is still on the call: hang up first (POST /api/agents/{agent}/hangup)")
        if call.outbound:
            offered, only = self._campaign_codes(call.campaign or "")
            if only and code not in offered:
                raise ValueError(f"code must be one of {', '.join(offered)} for campaign {call.campaign}")
            return await self._outbound.disposition(agent, code, callback_at)
        if callback_at is not None:
            raise ValueError("callback_at is for outbound calls (the lead is called back)")
        allowed = self.codes(call.queue)
        if code not in allowed:
            raise ValueError(f"code must be one of {', '.join(allowed)} for queue {call.queue}")
        # with the NOT NULL columns: an upsert's insert half is checked even when the row exists
        self._rows.call(call.call_id, direction=call.direction, started_at=call.started_at, disposition=code)
        del self._inbound[agent]
        if self._agents.get(agent).call_id is None:
            self._agents.end_wrapup(agent)
        log.info("call_disposed", call_id=call.call_id, queue=call.queue, code=code)
        return {"call_id": call.call_id, "queue": call.queue}
