"""Dispositions: the agent's last conversation, inbound (code on the call row) or outbound (the
dialer), closing the wrap-up. The agent service is the real one; rows and the dialer are fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cc_ari.agents.dispositions import DEFAULT_QUEUE_CODES, DispositionError, Dispositions
from cc_ari.agents.models import AgentState
from cc_ari.agents.service import AgentService
from cc_ari.calls.models import Call, Phase
from cc_ari.telephony.models import Session

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Rows:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.events: list[dict[str, Any]] = []

    def call(self, call_id: str, mode: Any = "merge", **values: Any) -> None:
        self.calls.append((call_id, values))

    def agent_event(self, key: str, **values: Any) -> None:
        self.events.append(values)

    def agent_state(self, agent: str, **values: Any) -> None:
        pass


class Dialer:
    def __init__(self) -> None:
        self.last: dict[str, Call] = {}
        self.disposed: list[tuple[str, str, datetime | None]] = []

    def last_call(self, agent: str) -> Call | None:
        return self.last.get(agent)

    async def disposition(self, agent: str, code: str, callback_at: datetime | None) -> dict[str, Any]:
        self.disposed.append((agent, code, callback_at))
        del self.last[agent]
        return {"campaign": "spring"}


def call(call_id: str, *, outbound: bool = False, ended: float = 60.0, queue: str | None = "support") -> Call:
    c = Call(call_id, "+15551230000", "5001", T0, Session(call_id), direction="outbound" if outbound else "inbound",
             phase=Phase.ENDING, queue=queue, agent="agent1", answered_at=T0 + timedelta(seconds=5),
             campaign="spring" if outbound else None)
    c.ended_at = T0 + timedelta(seconds=ended)
    return c


@pytest.fixture
async def world() -> AsyncIterator[tuple[Dispositions, AgentService, Rows, Dialer]]:
    rows, dialer = Rows(), Dialer()
    agents = AgentService(["agent1", "agent2"], ["support", "sales"], rows)  # type: ignore[arg-type]
    d = Dispositions(agents, rows, dialer, queue_codes={"sales": ("sale", "no_sale")})
    yield d, agents, rows, dialer
    agents.close()


def in_wrapup(agents: AgentService, call_id: str) -> None:
    agents.login("agent1", ["support", "sales"])
    agents.reserve("agent1", call_id)  # offered (ringing)
    agents.answered("agent1")
    agents.release("agent1", call_id, answered=True, wrapup=600)
    assert agents.get("agent1").state is AgentState.WRAPUP


async def test_inbound_code_lands_on_the_row_and_ends_wrapup(world: Any) -> None:
    d, agents, rows, _ = world
    c = call("c1")
    in_wrapup(agents, "c1")
    d.on_final(c)
    assert d.pending("agent1") == {"call_id": "c1", "direction": "inbound", "queue": "support",
                                   "codes": list(DEFAULT_QUEUE_CODES)}
    assert await d.dispose("agent1", "resolved", None) == {"call_id": "c1", "queue": "support"}
    assert rows.calls[-1] == ("c1", {"direction": "inbound", "started_at": T0, "disposition": "resolved"})
    assert agents.get("agent1").state is AgentState.READY
    assert d.pending("agent1") is None
    with pytest.raises(DispositionError, match="no call to dispose"):
        await d.dispose("agent1", "resolved", None)


async def test_queue_codes_are_enforced_and_callbacks_are_outbound_only(world: Any) -> None:
    d, agents, rows, _ = world
    in_wrapup(agents, "c2")
    d.on_final(call("c2", queue="sales"))
    assert d.pending("agent1")["codes"] == ["sale", "no_sale"]  # type: ignore[index]
    with pytest.raises(ValueError, match="one of sale, no_sale"):
        await d.dispose("agent1", "resolved", None)
    with pytest.raises(ValueError, match="outbound"):
        await d.dispose("agent1", "sale", T0 + timedelta(days=1))
    with pytest.raises(ValueError, match="1-32 characters"):
        await d.dispose("agent1", "Not A Code", None)
    assert rows.calls == [] and agents.get("agent1").state is AgentState.WRAPUP  # nothing applied


async def test_the_latest_conversation_wins_and_outbound_goes_to_the_dialer(world: Any) -> None:
    d, agents, _, dialer = world
    in_wrapup(agents, "c3")
    d.on_final(call("c3", ended=30.0))
    dialer.last["agent1"] = call("o1", outbound=True, ended=90.0)
    assert d.pending("agent1")["direction"] == "outbound"  # type: ignore[index]
    await d.dispose("agent1", "callback", T0 + timedelta(days=1))
    assert dialer.disposed == [("agent1", "callback", T0 + timedelta(days=1))]
    assert d.pending("agent1")["call_id"] == "c3"  # type: ignore[index]


async def test_unanswered_or_agentless_calls_await_no_disposition(world: Any) -> None:
    d, _, _, _ = world
    c = call("c4")
    c.answered_at = None
    d.on_final(c)
    d.on_final(call("o2", outbound=True))  # outbound: the dialer's
    assert d.pending("agent1") is None


async def test_still_on_the_call_is_refused(world: Any) -> None:
    d, agents, _, dialer = world
    agents.login("agent1", ["support"])
    agents.reserve("agent1", "o3")
    dialer.last["agent1"] = call("o3", outbound=True)
    assert d.pending("agent1") is None
    with pytest.raises(DispositionError, match="still on the call"):
        await d.dispose("agent1", "sale", None)


async def test_a_campaign_list_restricts_final_codes_but_never_the_scheduling_ones() -> None:
    rows, dialer = Rows(), Dialer()
    agents = AgentService(["agent1"], ["support"], rows)  # type: ignore[arg-type]
    try:
        d = Dispositions(agents, rows, dialer, campaign_codes=lambda c: ("sale", "no_sale") if c == "spring" else ())
        agents.login("agent1", ["support"])
        dialer.last["agent1"] = call("o4", outbound=True)
        assert d.pending("agent1")["codes"] == ["sale", "no_sale", "callback", "retry", "dnc"]  # type: ignore[index]
        with pytest.raises(ValueError, match="one of sale, no_sale, callback, retry, dnc"):
            await d.dispose("agent1", "not_interested", None)
        assert dialer.disposed == []
        await d.dispose("agent1", "retry", None)
        assert dialer.disposed == [("agent1", "retry", None)]
    finally:
        agents.close()


def test_campaign_disposition_codes_are_validated_and_stored() -> None:
    from cc_ari.campaigns.models import CampaignError, parse_campaign, settings_from_json

    base = {"name": "c1", "mode": "progressive", "caller_id": "+15550000000"}
    c = parse_campaign({**base, "disposition_codes": ["sale", "no_sale", "sale"]})
    assert c.settings.disposition_codes == ("sale", "no_sale")
    assert settings_from_json(c.settings.as_json()).disposition_codes == ("sale", "no_sale")
    assert parse_campaign(base).settings.disposition_codes == ()
    for bad in ("sale", ["Sale"], [""], [1]):
        with pytest.raises(CampaignError, match="disposition_codes"):
            parse_campaign({**base, "disposition_codes": bad})
