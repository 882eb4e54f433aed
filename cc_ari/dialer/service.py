"""The dialer: paces each running campaign, claims its leads, places its calls, and keeps the
numbers compliance needs.

Every `tick` seconds (sooner when an agent becomes free) each running campaign gets a
`Snapshot` of what is going on, its pacing policy (pure: `cc_ari.dialer.pacing`, the code the
simulator runs) says how many calls to place, and that many due leads are claimed in PostgreSQL
(`FOR UPDATE SKIP LOCKED`; on a DNC list -> `dnc`; outside their window -> scheduled to its
opening), checked against the DNC lists once more, and dialed (`OutboundFlow`). When a call ends
its lead's next state is written through the journaled store (`compliance.after_outcome`).

Agents: a live answer takes the longest-idle ready agent of the campaign who is in a live
session (`take_agent`, the shared reservation: never two calls for one agent). Blended agents
(queues and campaigns): with `blend_priority` "inbound" an agent whose queue has a caller
waiting is left to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from cc_ari.agents.errors import AgentError, InvalidTransition
from cc_ari.agents.models import Agent, AgentState
from cc_ari.agents.service import AgentService
from cc_ari.agents.sessions import BRIDGE_PREFIX, AgentSessions
from cc_ari.ari.errors import AriError
from cc_ari.ari.models import Bridge, Channel, StasisStart
from cc_ari.calls.models import WAITING, Call, Phase
from cc_ari.calls.service import CallService
from cc_ari.campaigns.models import Campaign
from cc_ari.db.campaigns import CampaignStore, Claimed, DialerStore
from cc_ari.db.store import CallStore
from cc_ari.dialer import compliance
from cc_ari.dialer.outbound import (
    AMD_APP_ARG,
    AMD_STATUSES,
    DROP_CONTEXT,
    GRACE_SECONDS,
    OUTBOUND_APP_ARG,
    DialPlan,
    OutboundFlow,
)
from cc_ari.dialer.pacing import BusyAgent, Policy, Predictive, Progressive, Snapshot
from cc_ari.queueing.service import QueueService
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl
from cc_ari.telephony.models import Leg, Session, utcnow

log = structlog.get_logger("cc_ari.dialer")

LEASE_SECONDS = 4 * 3600.0  # a claimed lead comes back after this if its dialer vanished for good
REFRESH_SECONDS = 2.0  # how often the campaigns' states are read again
SWEEP_SECONDS = 15.0  # how often leads whose call ended elsewhere get its outcome
RECENT = 400  # outcomes kept for the estimates


class DialerError(Exception):
    """A request the dialer cannot honour (the message says why): 409 for the API."""


@dataclass(slots=True)
class Estimates:
    """Recent outcomes of a campaign, for its snapshot (with priors until calls are counted)."""

    outcomes: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=RECENT))
    talks: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    answers: deque[float] = field(default_factory=lambda: deque(maxlen=100))
    connects: deque[tuple[float, float | None]] = field(default_factory=lambda: deque(maxlen=RECENT))
    drops: int = 0  # drops counted since this process started working on the campaign
    amd_drops: int = 0  # ... of which AMD's decision alone took past the 2 s ("uk" rule: from the answer)

    def add_connect(self, connect_s: float, amd_s: float | None) -> None:
        self.connects.append((connect_s, amd_s))

    def connect_figures(self) -> dict[str, float | None]:
        """p50 / p99 of answer -> agent, and of AMD's decision -> agent, over recent connected calls."""
        total = sorted(c for c, _ in self.connects)
        after = sorted(c - a for c, a in self.connects if a is not None)

        def q(v: list[float], p: float) -> float | None:
            return round(v[min(len(v) - 1, round(p * (len(v) - 1)))], 3) if v else None

        return {"connect_p50": q(total, 0.5), "connect_p99": q(total, 0.99),
                "after_amd_connect_p50": q(after, 0.5), "after_amd_connect_p99": q(after, 0.99)}

    def add(self, t: float, outcome: str, *, answer_s: float | None, talk_s: float | None) -> None:
        self.outcomes.append((t, outcome))
        if answer_s is not None:
            self.answers.append(answer_s)
        if talk_s is not None and outcome == "answered":
            self.talks.append(talk_s)

    def share(self, *names: str, prior: float, weight: int = 20) -> float:
        n = sum(1 for _, o in self.outcomes if o in names)
        return (n + prior * weight) / (len(self.outcomes) + weight)

    @staticmethod
    def mean(values: deque[float], prior: float, weight: int = 5) -> float:
        return (sum(values) + prior * weight) / (len(values) + weight)


@dataclass(slots=True)
class Run:
    """A campaign the dialer is working on."""

    campaign: Campaign
    policy: Policy | None  # None: preview (the agent dials)
    ledger: compliance.AbandonLedger
    est: Estimates = field(default_factory=Estimates)
    calls: dict[str, Call] = field(default_factory=dict)
    open_leads: int | None = None
    attempts_per_s: float = 0.0

    def live_calls(self) -> list[Call]:
        return list(self.calls.values())


def make_policy(mode: str) -> Policy | None:
    if mode == "predictive":
        return Predictive()
    if mode == "progressive":
        return Progressive()
    return None


class Dialer:
    def __init__(self, campaigns: CampaignStore, leads: DialerStore, store: CallStore, control: CallControl,
                 calls: CallService, agents: AgentService, sessions: AgentSessions, queues: QueueService,
                 flow: OutboundFlow, *, tick: float = 0.5) -> None:
        self._control = control
        self._campaigns = campaigns
        self._leads = leads
        self._store = store
        self._calls = calls
        self._agents = agents
        self._sessions = sessions
        self._queues = queues
        self._flow = flow
        self._tick = tick
        self._runs: dict[str, Run] = {}
        self._freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._last: dict[str, Call] = {}  # agent -> their last outbound call (for the disposition)
        self._preview: dict[str, str] = {}  # call id -> the agent who dials it (preview)
        self._attempts: dict[str, int] = {}  # call id -> its lead's attempts, this one included
        self._tasks = Tasks("dialer")
        flow.picker = self
        calls.on_final.append(self._on_final)
        agents.listeners.append(self._on_agent)
        sessions.on_up = lambda _agent: self.notify()

    def campaign_changed(self, campaign: Campaign) -> None:
        """A start / pause / stop through the API: in force now, not at the next refresh."""
        run = self._runs.get(campaign.name)
        if run is not None:
            run.campaign = campaign
        self._wake.set()

    # --- wake-ups -------------------------------------------------------------------------
    def notify(self) -> None:
        """An agent may have become free: waiting live answers look again, the pacer runs."""
        self._freed.set()
        self._freed = asyncio.Event()
        self._wake.set()

    def agent_freed(self) -> asyncio.Event:
        return self._freed

    def _on_agent(self, agent: Agent) -> None:
        if agent.state is AgentState.READY and agent.campaigns:
            self.notify()

    # --- the loop -------------------------------------------------------------------------
    async def run(self) -> None:
        next_refresh = next_sweep = 0.0
        while True:
            if time.monotonic() >= next_refresh:
                await self._refresh()
                next_refresh = time.monotonic() + REFRESH_SECONDS
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + SWEEP_SECONDS
                for run in list(self._runs.values()):
                    await self._sweep(run)
            for run in list(self._runs.values()):
                if run.campaign.state == "running" and run.policy is not None and not self._calls.closing:
                    try:
                        await self._pace(run)
                    except Exception as exc:  # the database may be down: try again next tick
                        log.warning("dialer_pace_failed", campaign=run.campaign.name, error=repr(exc))
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._tick)

    async def _refresh(self) -> None:
        try:
            campaigns = await self._campaigns.all()
        except Exception as exc:
            log.warning("dialer_refresh_failed", error=repr(exc))
            return
        for c in campaigns:
            run = self._runs.get(c.name)
            if run is None:
                if c.state not in ("running", "paused"):
                    continue
                run = await self._start_run(c)
            run.campaign = c
            if c.state == "running":
                try:
                    run.open_leads = await self._leads.open_leads(c.name)
                except Exception as exc:
                    log.warning("dialer_leads_count_failed", campaign=c.name, error=repr(exc))
                    continue
                if run.open_leads == 0 and not run.calls:
                    await self._campaigns.set_state(c.name, "finished")
                    run.campaign = Campaign(c.name, c.mode, c.caller_id, c.settings, "finished")
                    log.info("campaign_finished", campaign=c.name)
        known = {c.name for c in campaigns}
        for name in [n for n, r in self._runs.items() if n not in known or
                     (r.campaign.state in ("stopped", "finished", "created") and not r.calls)]:
            del self._runs[name]

    async def _sweep(self, run: Run) -> None:
        """Leads whose call ended without their outcome (a restart while AMD ran: the dialplan
        served the person; the CEL reconciler wrote the call): the outcome now, from the call's row."""
        try:
            rows = await self._leads.stranded(run.campaign.name, older_than=10.0)
        except Exception as exc:
            log.warning("dialer_sweep_failed", campaign=run.campaign.name, error=repr(exc))
            return
        for r in rows:
            if r["dialing_call_id"] in run.calls:
                continue
            outcome = r["outcome"] if r["outcome"] in compliance.OUTCOMES else "failed"
            update = compliance.after_outcome(outcome, attempts=max(1, int(r["attempts"])),
                                              settings=run.campaign.settings, now=datetime.now(UTC))
            self._store.lead_outcome(r["dialing_call_id"], campaign=run.campaign.name, lead_id=r["lead_id"],
                                     status=update.status, next_attempt_at=update.next_attempt_at, outcome=outcome)
            log.warning("lead_outcome_recovered", campaign=run.campaign.name, lead=r["lead_id"], outcome=outcome,
                        lead_status=update.status)

    async def _start_run(self, c: Campaign) -> Run:
        period = compliance.period_seconds(c.settings.abandon_period)
        run = Run(c, make_policy(c.mode), compliance.AbandonLedger(period))
        try:
            run.ledger.load(await self._leads.abandon_buckets(c.name, period))
            now = time.time()
            for row in reversed(await self._leads.recent_outcomes(c.name, RECENT)):
                run.est.add(now, row["outcome"] or "failed", answer_s=row["answer_s"],
                            talk_s=row["talk_s"] if row["connected"] else None)
        except Exception as exc:
            log.warning("dialer_history_unreadable", campaign=c.name, error=repr(exc))
        self._runs[c.name] = run
        log.info("campaign_run_started", campaign=c.name, mode=c.mode, state=c.state)
        return run

    def _campaign_agents(self, name: str) -> list[Agent]:
        return [a for a in self._agents.all() if name in a.campaigns and a.state is not AgentState.LOGGED_OUT]

    def _free(self, agent: Agent, campaign: str, *, blend: str) -> bool:
        if not (agent.available_for_campaign(campaign) and self._sessions.live(agent.name)):
            return False
        if blend == "inbound" and agent.queues:
            return not any(self._queues.waiting(q) for q in agent.queues)
        return True

    def _pacing_share(self, agent: Agent) -> str | None:
        """The campaign an agent's availability is counted for (an agent in several running
        campaigns is counted once, for the first by name)."""
        running = sorted(c for c in agent.campaigns if (r := self._runs.get(c)) is not None
                         and r.campaign.state == "running" and r.policy is not None)
        return running[0] if running else None

    def snapshot(self, run: Run) -> Snapshot:
        c = run.campaign
        mono = time.monotonic()
        now = time.time()
        ready = 0
        busy: list[BusyAgent] = []
        for a in self._campaign_agents(c.name):
            if self._pacing_share(a) != c.name or not self._sessions.live(a.name):
                continue
            if self._free(a, c.name, blend=c.settings.blend_priority):
                ready += 1
            elif a.state in (AgentState.ON_CALL, AgentState.RINGING):
                busy.append(BusyAgent("talking", max(0.0, mono - a.since), leaving=a.pending is not None))
            elif a.state is AgentState.WRAPUP:
                busy.append(BusyAgent("wrapup", max(0.0, mono - a.since), leaving=a.pending is not None))
        calls = run.live_calls()
        ringing = tuple(max(0.0, (utcnow() - call.started_at).total_seconds())
                        for call in calls if call.phase in (Phase.NEW, Phase.RINGING))
        waiting = sum(1 for call in calls if call.phase in WAITING and call.answered_at is not None)
        lives, drops = run.ledger.counts(now)
        span = min(run.ledger.period, max(60.0, run.ledger.span(now)))
        recent = [o for t, o in run.est.outcomes if t > now - run.ledger.period]
        est = run.est
        return Snapshot(
            now=mono, ready_agents=ready, busy_agents=tuple(busy), ringing=ringing, waiting_live=waiting,
            # The period is what the counts cover so far, not the whole 30 days: the budget is
            # then the drops the calls already made allow (the rate so far stays under the cap),
            # never drops borrowed from live answers that may never come (a campaign that stops
            # after a day would be over the cap for the whole period).
            period_seconds=span, period_elapsed=span,
            attempts=len(recent), live_answers=lives, machine_answers=sum(1 for o in recent if o == "machine"),
            drops=drops, aht=est.mean(est.talks, 120.0), wrap=min(float(c.settings.wrapup), 15.0),
            answer_time=est.mean(est.answers, 8.0), answer_cdf=(),
            p_live=est.share("answered", "dropped", "abandoned", prior=0.25),
            p_live_samples=len(est.outcomes) + 20,
            p_machine=est.share("machine", prior=0.15), p_no_answer=est.share("no_answer", prior=0.3),
            ring_timeout=float(c.settings.ring_timeout), abandon_target=c.settings.abandon_target)

    async def _pace(self, run: Run) -> None:
        assert run.policy is not None
        n = run.policy.calls_to_place(self.snapshot(run))
        if n <= 0:
            return
        n = min(n, 50)
        c = run.campaign
        result = await self._leads.claim(c.name, n, call_ids=_call_id, window=window_check(c),
                                         lease=LEASE_SECONDS)
        if result.dnc or result.outside_window:
            log.info("leads_set_aside", campaign=c.name, dnc=len(result.dnc), outside_window=len(result.outside_window))
        for lead in result.claimed:
            await self._place(run, lead)

    async def _place(self, run: Run, lead: Claimed, *, agent: str | None = None) -> Call | None:
        c = run.campaign
        # The do-not-call lists once more, just before dialing (a number may have been added since the claim).
        if await self._leads.dnc_listed(c.name, lead.phone):
            await self._leads.give_back(c.name, lead.lead_id, lead.call_id, status="dnc")
            log.info("lead_dnc_at_dial", campaign=c.name, lead=lead.lead_id)
            return None
        call = Call(call_id=lead.call_id, caller=c.caller_id, dnis=lead.phone, started_at=utcnow(),
                    session=Session(anchor=lead.call_id), direction="outbound", campaign=c.name,
                    lead_id=lead.lead_id, lead=dict(lead.fields), wrapup=float(c.settings.wrapup))
        run.calls[call.call_id] = call
        self._attempts[call.call_id] = lead.attempts
        self._flow.plans[call.call_id] = DialPlan(c, lead.phone)
        if agent is not None:
            self._preview[call.call_id] = agent
            call.agent = agent  # reserved for it: released by the call's end whatever happens
        self._calls.start(call)
        return call

    # --- agents for live answers ------------------------------------------------------------
    def connected(self, call: Call) -> None:
        """The call reached its agent: theirs to dispose (after it, in wrap-up)."""
        if call.agent is not None:
            self._last[call.agent] = call

    def take_agent(self, call: Call) -> str | None:
        """Reserve the agent for a person who answered (None: nobody free now)."""
        chosen = self._preview.pop(call.call_id, None)
        if chosen is not None:
            return chosen  # preview: reserved when the agent dialed
        run = self._runs.get(call.campaign or "")
        blend = run.campaign.settings.blend_priority if run else "inbound"
        free = [a for a in self._agents.all() if call.campaign and self._free(a, call.campaign, blend=blend)]
        for a in sorted(free, key=lambda a: a.idle_since):
            try:
                self._agents.reserve(a.name, call.call_id, consumer="dialer")
            except InvalidTransition:
                continue
            return a.name
        return None

    # --- a call's end -------------------------------------------------------------------------
    def _on_final(self, call: Call) -> None:
        if not call.outbound or call.campaign is None or call.lead_id is None:
            return
        run = self._runs.get(call.campaign)
        outcome = call.outcome or "failed"
        now = time.time()
        if run is not None:
            run.calls.pop(call.call_id, None)
            live = outcome in ("answered", "dropped")
            if live:
                run.ledger.add(now, live=True, dropped=outcome == "dropped")
            answer_s = ((call.answered_at - call.started_at).total_seconds()
                        if call.answered_at is not None else None)
            talk_s = ((call.ended_at - call.answered_at).total_seconds()
                      if call.ended_at is not None and call.answered_at is not None else None)
            run.est.add(now, outcome, answer_s=answer_s, talk_s=talk_s)
            if call.connect_seconds is not None and outcome == "answered":
                run.est.add_connect(call.connect_seconds, call.amd_seconds)
            if outcome == "dropped":
                run.est.drops += 1
                if call.amd_seconds is not None and call.amd_seconds >= GRACE_SECONDS \
                        and run.campaign.settings.connect_rule == "uk":
                    run.est.amd_drops += 1
            settings = run.campaign.settings
        else:
            settings = None
        self._preview.pop(call.call_id, None)
        if settings is None:
            log.warning("lead_outcome_without_campaign", campaign=call.campaign)
            return
        plan_attempts = max(1, self._attempts.pop(call.call_id, 1))
        update = compliance.after_outcome(outcome, attempts=plan_attempts, settings=settings,
                                          now=datetime.now(UTC))
        self._store.lead_outcome(call.call_id, campaign=call.campaign, lead_id=call.lead_id, status=update.status,
                                 next_attempt_at=update.next_attempt_at, outcome=outcome)
        log.info("lead_attempted", campaign=call.campaign, lead=call.lead_id, outcome=outcome,
                 lead_status=update.status, reason=update.reason)
        self.notify()

    # --- agent requests -----------------------------------------------------------------------
    def agent(self, name: str) -> Agent:
        return self._agents.get(name)

    def agent_view(self, name: str) -> dict[str, Any]:
        """What GET /api/agents/{agent} adds: the session, and the current call with its lead."""
        s = self._sessions.get(name)
        out: dict[str, Any] = {"session": None if s is None else {
            "leg_id": s.leg_id, "up": s.up, "started_at": s.started_at.isoformat()}}
        call = self.current_call(name)
        if call is not None:
            out["call"] = {"call_id": call.call_id, "direction": call.direction, "phase": str(call.phase),
                           "caller": call.caller, "dnis": call.dnis, "queue": call.queue,
                           "ivr_path": call.ivr_path or None, "lead": self.lead_of(call)}
        else:
            out["call"] = None
        last = self._last.get(name)
        out["disposition_pending"] = None if last is None else {"call_id": last.call_id, "lead": self.lead_of(last)}
        return out

    def current_call(self, agent: str) -> Call | None:
        call_id = self._agents.get(agent).call_id
        return self._calls.get(call_id) if call_id else None

    def last_call(self, agent: str) -> Call | None:
        return self._last.get(agent)

    async def hangup(self, agent: str) -> Call:
        """End the agent's customer call (the agent stays in the session, in wrap-up)."""
        call = self.current_call(agent)
        if call is None or call.phase is not Phase.TALKING:
            raise DialerError(f"{agent} is not on a call")
        await self._control.hangup(call.call_id)
        return call

    async def disposition(self, agent: str, code: str, callback_at: datetime | None) -> dict[str, Any]:
        """The agent's disposition of their last outbound call: the lead's next state; wrap-up ends."""
        call = self._last.get(agent)
        if call is None or call.campaign is None or call.lead_id is None:
            raise DialerError(f"{agent} has no outbound call to dispose")
        if self._agents.get(agent).call_id == call.call_id:
            raise DialerError(f"{agent} is still on the call: hang up first (POST /api/agents/{agent}/hangup)")
        run = self._runs.get(call.campaign)
        campaign = run.campaign if run is not None else await self._campaigns.get(call.campaign)
        if campaign is None:
            raise DialerError(f"campaign {call.campaign!r} no longer exists")
        lead = await self._leads.lead(call.campaign, call.lead_id)
        if lead is None:
            raise DialerError("the lead no longer exists")
        update = compliance.after_disposition(code, attempts=int(lead["attempts"]), settings=campaign.settings,
                                              now=datetime.now(UTC), callback_at=callback_at)
        phone = await self._leads.dispose(call.campaign, call.lead_id, status=update.status,
                                          next_attempt_at=update.next_attempt_at, code=code)
        if code == "dnc" and phone:
            await self._campaigns.add_dnc([phone], call.campaign)
        if update.status == "scheduled" and campaign.state == "finished":
            await self._campaigns.set_state(campaign.name, "running")
        del self._last[agent]
        with_agent = self._agents.get(agent)
        if with_agent.call_id is None:
            self._agents.end_wrapup(agent)
        log.info("lead_disposed", campaign=call.campaign, lead=call.lead_id, code=code, lead_status=update.status)
        return {"campaign": call.campaign, "lead_id": call.lead_id, "status": update.status,
                "next_attempt_at": update.next_attempt_at.isoformat() if update.next_attempt_at else None}

    async def preview_dial(self, agent: str) -> Call:
        """Preview mode: the agent dials the next lead of their preview campaign, reserved for them."""
        a = self._agents.get(agent)
        names = sorted(c for c in a.campaigns if (r := self._runs.get(c)) is not None
                       and r.campaign.state == "running" and r.policy is None)
        if not names:
            raise DialerError(f"{agent} is not logged in to a running preview campaign")
        if a.state is not AgentState.READY or not self._sessions.live(agent):
            raise DialerError(f"{agent} must be ready, in a live session, to dial")
        for name in names:
            run = self._runs[name]
            result = await self._leads.claim(name, 1, call_ids=_call_id, window=window_check(run.campaign),
                                             lease=LEASE_SECONDS)
            for lead in result.claimed:
                try:
                    self._agents.reserve(agent, lead.call_id, consumer="dialer")
                except AgentError as exc:
                    await self._leads.give_back(name, lead.lead_id, lead.call_id, status="scheduled")
                    raise DialerError(str(exc)) from None
                call = await self._place(run, lead, agent=agent)
                if call is None:
                    self._agents.release(agent, lead.call_id, answered=False, wrapup=0.0)
                    continue
                return call
        raise DialerError("no lead to dial now")

    # --- views --------------------------------------------------------------------------------
    def live(self, name: str) -> dict[str, Any]:
        run = self._runs.get(name)
        agents = self._campaign_agents(name)
        out: dict[str, Any] = {
            "dialing": 0, "ringing": 0, "waiting_for_agent": 0,
            "agents_logged_in": len(agents),
            "agents_in_session": sum(1 for a in agents if self._sessions.live(a.name)),
            "agents_ready": sum(1 for a in agents if a.state is AgentState.READY and self._sessions.live(a.name)),
            "agents_on_call": sum(1 for a in agents if a.state in (AgentState.ON_CALL, AgentState.RINGING)),
            "agents_wrapup": sum(1 for a in agents if a.state is AgentState.WRAPUP),
            "agents_paused": sum(1 for a in agents if a.state is AgentState.PAUSED),
            "dial_level": 0.0, "abandon_rate": 0.0, "abandon_cap": None, "live_answers": 0, "drops": 0,
            "leads_left": None, "forecast_finish_seconds": None,
        }
        if run is None:
            return out
        calls = run.live_calls()
        unanswered = [c for c in calls if c.answered_at is None]
        out["dialing"] = len(calls)
        out["ringing"] = len(unanswered)
        out["waiting_for_agent"] = sum(1 for c in calls if c.answered_at is not None and c.phase in WAITING)
        out["dial_level"] = round(len(unanswered) / max(1, out["agents_ready"] + out["agents_on_call"]), 2)
        now = time.time()
        lives, drops = run.ledger.counts(now)
        out.update(abandon_rate=round(run.ledger.rate(now), 4), abandon_cap=run.campaign.settings.abandon_target,
                   live_answers=lives, drops=drops, abandon_period=run.campaign.settings.abandon_period,
                   leads_left=run.open_leads)
        out.update(run.est.connect_figures())
        out["amd_drop_share"] = round(run.est.amd_drops / run.est.drops, 3) if run.est.drops else None
        recent = [t for t, _ in run.est.outcomes if t > now - 600]
        if run.open_leads and len(recent) >= 2:
            rate = len(recent) / max(60.0, now - min(recent))
            out["forecast_finish_seconds"] = round(run.open_leads / rate)
        return out

    def campaign_names(self) -> list[str]:
        return sorted(self._runs)

    def disposition_codes(self, name: str) -> tuple[str, ...]:
        """The campaign's own disposition codes (empty: none set, or not a campaign worked on now)."""
        run = self._runs.get(name)
        return run.campaign.settings.disposition_codes if run is not None else ()

    def campaign_views(self) -> list[dict[str, Any]]:
        """Every campaign the dialer works on, for the live feed: name, state, mode, live figures."""
        return [{"campaign": name, "status": run.campaign.state, "mode": run.campaign.mode, "live": self.live(name)}
                for name, run in sorted(self._runs.items())]

    def lead_of(self, call: Call) -> dict[str, Any] | None:
        if not call.outbound:
            return None
        return {"campaign": call.campaign, "lead_id": call.lead_id, "phone": call.dnis, "fields": call.lead}

    # --- restart ----------------------------------------------------------------------------
    async def adopt(self, ch: Channel, args: Sequence[str], bridges: Sequence[Bridge]) -> bool:
        """A customer channel a previous cc_ari left in our app (or one back from AMD that this
        process did not send there). Talking with an agent (in an agent's session bridge):
        followed to its end. Back from AMD with a person: connected to a free agent at once, else
        the safe-harbor message. Otherwise ended here (a person hears the safe-harbor message).
        Either way its rows and its lead's outcome are written."""
        state = await self._control.load_state(ch.id)  # campaign, lead, phone (set at originate)
        campaign = state.get("campaign") or (args[1] if len(args) > 1 and args[0] == OUTBOUND_APP_ARG else "")
        lead_id = state.get("lead") or (args[2] if len(args) > 2 and args[0] == OUTBOUND_APP_ARG else "")
        c = self._runs[campaign].campaign if campaign in self._runs else await self._campaigns.get(campaign)
        if c is None or not lead_id:
            return False
        run = self._runs.get(campaign) or await self._start_run(c)
        started = ch.created or utcnow()
        session = Session(anchor=ch.id)
        session.legs[ch.id] = Leg(ch.id, "customer", ch.endpoint, ch.name, started,
                                  answered_at=started if ch.state == "Up" else None)
        call = Call(call_id=ch.id, caller=c.caller_id, dnis=state.get("phone", ""), started_at=started,
                    session=session, direction="outbound", campaign=campaign, lead_id=lead_id,
                    wrapup=float(c.settings.wrapup), adopted=True)
        if ch.state == "Up":  # the answer time the previous process wrote, else the channel's start
            with contextlib.suppress(Exception):
                row = await self._store.fetch_call(ch.id)
                if row and row.get("answered_at"):
                    session.legs[ch.id].answered_at = row["answered_at"]
        call.answered_at = session.legs[ch.id].answered_at
        from_amd = bool(args) and args[0] == AMD_APP_ARG
        with contextlib.suppress(Exception):  # its lead's attempts (this call included), for its outcome
            lead = await self._leads.lead(campaign, lead_id)
            if lead is not None:
                self._attempts[ch.id] = int(lead["attempts"])
        bridge = next((b for b in bridges if b.name.startswith(BRIDGE_PREFIX) and ch.id in b.channels), None)
        if bridge is not None:
            agent = bridge.name.removeprefix(BRIDGE_PREFIX)
            call.agent = agent
            call.phase = Phase.TALKING
            call.via_session = True
            call.connect_seconds = None
            with contextlib.suppress(AgentError):
                self._agents.adopt_call(agent, call.call_id)
            log.warning("outbound_call_adopted", call_id=ch.id, agent=agent)
        elif from_amd and ch.state == "Up":
            status = args[1] if len(args) > 1 else "NOTSURE"
            call.amd_result = status if status in AMD_STATUSES else "NOTSURE"
            call.amd_seconds = call.seconds_since(call.answered_at) if call.answered_at else None
            call.phase = Phase.QUEUED  # the flow picks it up after AMD
            self._flow.plans[call.call_id] = DialPlan(c, call.dnis)
            log.warning("outbound_call_resumed_after_amd", call_id=ch.id, amd=call.amd_result)
        else:
            call.outcome = "dropped" if ch.state == "Up" else "failed"
            self._flow.plans[call.call_id] = DialPlan(c, call.dnis)
            log.warning("outbound_call_ended_at_adoption", call_id=ch.id, outcome=call.outcome)
        run.calls[call.call_id] = call
        self._calls.start(call)
        return True

    def on_amd_return(self, ev: StasisStart) -> None:
        """Back from AMD, unknown to this process (it restarted meanwhile): taken back now."""
        self._tasks.spawn(self._adopt_now(ev), f"amd-return-{ev.channel.id}")

    async def _adopt_now(self, ev: StasisStart) -> None:
        try:
            taken = await self.adopt(ev.channel, ev.args, ())
        except Exception:
            log.exception("amd_return_adopt_failed")
            taken = False
        if not taken:  # not ours to serve: the dialplan's safe-harbor message
            with contextlib.suppress(AriError):
                await self._control.ari.continue_in_dialplan(ev.channel.id, DROP_CONTEXT, "s")

    async def aclose(self) -> None:
        await self._tasks.cancel_all()



def window_check(c: Campaign) -> Callable[[Sequence[str]], datetime | None]:
    """For a claim: None when a lead's calling window is open now in all its zones, else when it
    opens (a day from now when its zones' windows never overlap within the week: looked at again
    then, never dialed outside it)."""
    now = datetime.now(UTC)
    start, end = c.settings.window["start"], c.settings.window["end"]

    def opens(zones: Sequence[str]) -> datetime | None:
        at = compliance.next_window_opening(now, zones, start, end)
        if at == now:
            return None
        return at or now.replace(microsecond=0) + timedelta(days=1)

    return opens


def _call_id() -> str:
    return f"cc-out-{uuid.uuid4().hex}"
