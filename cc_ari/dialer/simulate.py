"""A discrete-event simulation of an outbound campaign, to compare pacing policies.

No wall clock and no I/O: time is the event heap's, randomness a seeded `random.Random`.
Common random numbers: call number i of seed s has the same outcome draw, ring time and talk time
whichever policy placed it (each call takes three draws, in order, from a stream of its own per
seed), so policies are compared on the same luck.

The model (all times in seconds):
* talk time is exponential with mean `aht`; wrap-up is exactly `wrap`;
* a dial is answered live with `p_live`, by a machine with `p_machine`, busy with `p_busy`, else
  not answered; answers (live or machine) come after ring_time/4 + Exp(mean 3/4 ring_time)
  seconds, capped at the ring timeout; a busy line is known after `busy_seconds`; an unanswered
  call rings `ring_timeout` seconds. Machines, busy and unanswered calls take no agent time;
* a live answer is connected to a ready agent at once, else waits up to `grace` seconds for one
  and is dropped (abandoned) if none comes;
* the policy is asked `calls_to_place(snapshot)` after every event and every `tick` seconds; the
  estimates in its snapshot are measured from the run (recent talk times, answer times, live
  share), starting from the parameters as a prior;
* changing conditions: `half_live_mid_shift` halves p_live from mid-shift (the lost live answers
  become unanswered calls); `breaks` sends `break_share` of the agents on a `break_seconds` break
  each, spread through the shift (an agent on a call goes when it ends; the dialer sees the pause
  pending, as cc_ari's agent service would show it).

Figures (over the shift, after an optional `warmup` that starts with every agent ready and is
left out): talk share = talk seconds / logged-in agent seconds (breaks are not logged in), contacts
(live answers connected) per agent-hour, abandon rate = drops / live answers, dials per contact.
"""

from __future__ import annotations

import heapq
import math
import random
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from cc_ari.dialer.pacing import AdaptiveDialLevel, BusyAgent, Policy, Predictive, Progressive, Snapshot

POLICY_NAMES = ("progressive", "adaptive", "predictive", "oracle")

# outcomes
LIVE, MACHINE, BUSY, NO_ANSWER = 0, 1, 2, 3
# agent states
READY, TALKING, WRAPUP, ON_BREAK = 0, 1, 2, 3
# events, in the order they are handled at equal times
_RESOLVE, _TALK_END, _WRAP_END, _BREAK_START, _BREAK_END, _DROP_CHECK, _TICK, _WAKE = range(8)


@dataclass(frozen=True, slots=True)
class SimParams:
    """One campaign to simulate. Raises ValueError on values that make no sense."""

    agents: int = 20
    aht: float = 180.0  # mean talk seconds (exponential)
    wrap: float = 10.0  # wrap-up seconds (fixed)
    p_live: float = 0.25  # P(answered by a person)
    p_machine: float = 0.15  # P(answered by a machine)
    p_busy: float = 0.10  # P(busy); the rest is not answered
    ring_time: float = 8.0  # mean seconds until a live or machine answer
    ring_timeout: float = 20.0  # an unanswered call rings this long (>= 15)
    busy_seconds: float = 3.0  # a busy line is known after this long
    abandon_target: float = 0.03  # drops / live answers allowed
    abandon_window: float = 3600.0  # the abandon period; also the rolling window reported
    hours: float = 8.0  # length of the shift
    seeds: int = 10
    half_live_mid_shift: bool = False
    breaks: bool = False
    break_share: float = 0.2
    break_seconds: float = 900.0
    grace: float = 2.0  # a live answer waits this long for an agent, then is dropped
    tick: float = 1.0
    warmup: float = 0.0  # seconds simulated before the shift's `hours`, left out of the figures

    def __post_init__(self) -> None:
        checks = [
            (self.agents >= 1, "agents must be >= 1"),
            (self.aht > 0, "aht must be > 0"),
            (self.wrap >= 0, "wrap must be >= 0"),
            (0 < self.p_live <= 1, "p-live must be in (0, 1]"),
            (self.p_machine >= 0 and self.p_busy >= 0, "p-machine and p-busy must be >= 0"),
            (self.p_live + self.p_machine + self.p_busy <= 1 + 1e-9, "p-live + p-machine + p-busy must be <= 1"),
            (self.ring_timeout >= 15, "ring timeout must be >= 15 s"),
            (0 < self.ring_time < self.ring_timeout, "ring-time must be > 0 and under the ring timeout"),
            (0 < self.busy_seconds <= self.ring_timeout, "busy seconds must be in (0, ring timeout]"),
            (0 < self.abandon_target < 1, "abandon-target must be in (0, 1)"),
            (self.abandon_window > 0, "abandon window must be > 0"),
            (0 < self.hours <= 24 * 7, "hours must be in (0, 168]"),
            (1 <= self.seeds <= 10_000, "seeds must be in [1, 10000]"),
            (0 <= self.break_share <= 1 and self.break_seconds >= 0, "bad breaks"),
            (self.grace >= 0 and self.tick > 0, "bad grace or tick"),
            (0 <= self.warmup <= 24 * 3600, "warmup must be in [0, 86400] s"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What one run (one policy, one seed) measured."""

    seed: int
    talk_seconds: float
    logged_in_seconds: float
    dials: int
    lives: int
    contacts: int
    drops: int
    worst_window: float  # highest drops / live answers over any abandon window of the run

    @property
    def abandon_rate(self) -> float:
        return self.drops / self.lives if self.lives else 0.0


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """One policy over all seeds."""

    policy: str
    talk_share: float
    contacts_per_agent_hour: float
    abandon_rate_mean: float
    abandon_rate_worst_seed: float
    abandon_rate_worst_window: float
    dials_per_contact: float
    seeds: tuple[SeedResult, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"policy": self.policy, "talk_share": self.talk_share,
                "contacts_per_agent_hour": self.contacts_per_agent_hour,
                "abandon_rate_mean": self.abandon_rate_mean,
                "abandon_rate_worst_seed": self.abandon_rate_worst_seed,
                "abandon_rate_worst_window": self.abandon_rate_worst_window,
                "dials_per_contact": self.dials_per_contact}


# ---------------------------------------------------------------------------------------------
# Closed form


def answer_delay_mean(params: SimParams) -> float:
    """Mean seconds to a (live or machine) answer: E[min(timeout, r/4 + Exp(3r/4))]."""
    shift, mean = params.ring_time / 4.0, params.ring_time * 0.75
    return shift + mean * -math.expm1(-(params.ring_timeout - shift) / mean)


def expected_dialing_cycle(params: SimParams) -> float:
    """Expected seconds from an agent becoming free to its live answer, dialing one call at a
    time: a geometric number of failed dials (mean (1 - p)/p), each costing its time, then the
    live one's answer time."""
    answer = answer_delay_mean(params)
    p_no_answer = 1.0 - params.p_live - params.p_machine - params.p_busy
    failed = params.p_machine * answer + params.p_busy * params.busy_seconds + p_no_answer * params.ring_timeout
    return answer + failed / params.p_live


def progressive_talk_share(params: SimParams) -> float:
    """AHT / (AHT + wrap + expected dialing cycle): the progressive policy's talk share."""
    return params.aht / (params.aht + params.wrap + expected_dialing_cycle(params))


# ---------------------------------------------------------------------------------------------
# The simulation


class Oracle:
    """Knows every future call's outcome, answer and talk time, and when each agent will be free:
    dials the non-live calls at once (they cost no agent time) and each live one so that it is
    answered when the next agent not yet promised to a live answer becomes free. Simulator only.
    It sees a pause pending on a busy agent, not a break that starts while an agent is ready, so
    with breaks it can drop a rare call."""

    name = "oracle"


class _Calls:
    """The pre-drawn calls of one seed: three draws per call, in call order."""

    def __init__(self, seed: int) -> None:
        self._rng = random.Random(7_919 * seed + 17)
        self._drawn: list[tuple[float, float, float]] = []

    def get(self, index: int) -> tuple[float, float, float]:
        while len(self._drawn) <= index:
            r = self._rng
            self._drawn.append((r.random(), r.expovariate(1.0), r.expovariate(1.0)))
        return self._drawn[index]


class _Estimates:
    """Recent means (talk, answer time), answer-time distribution and outcome shares, starting
    from the parameters. A dial is counted once the ring timeout has passed since it was placed
    (its outcome is then known whatever it was), so fast outcomes are not over-counted."""

    def __init__(self, params: SimParams) -> None:
        self.timeout = params.ring_timeout
        self.talks: deque[float] = deque(maxlen=200)
        self.talk_sum = 0.0
        self.answers: deque[float] = deque(maxlen=200)
        self.answer_sum = 0.0
        self.buckets = [0] * math.ceil(params.ring_timeout)  # recent answers per whole second
        self._cdf: tuple[float, ...] | None = None
        self.outcomes: deque[int] = deque(maxlen=1000)
        self.counts = [0, 0, 0, 0]
        self.pending: list[tuple[float, int, int, float]] = []  # (placed at, seq, outcome, delay)
        self._seq = 0
        self._prior_aht = params.aht
        self._prior_answer = params.ring_time
        no_answer = max(0.0, 1.0 - params.p_live - params.p_machine - params.p_busy)
        self._priors = (params.p_live, params.p_machine, params.p_busy, no_answer)

    def add_talk(self, seconds: float) -> None:
        if len(self.talks) == self.talks.maxlen:
            self.talk_sum -= self.talks[0]
        self.talks.append(seconds)
        self.talk_sum += seconds

    def add_outcome(self, placed: float, outcome: int, delay: float) -> None:
        self._seq += 1
        heapq.heappush(self.pending, (placed, self._seq, outcome, delay))

    def catch_up(self, now: float) -> None:
        """Count the dials placed at least a ring timeout ago."""
        pending, edge = self.pending, now - self.timeout
        while pending and pending[0][0] <= edge:
            _, _, outcome, delay = heapq.heappop(pending)
            if len(self.outcomes) == self.outcomes.maxlen:
                self.counts[self.outcomes[0]] -= 1
            self.outcomes.append(outcome)
            self.counts[outcome] += 1
            if outcome in (LIVE, MACHINE):
                if len(self.answers) == self.answers.maxlen:
                    self.answer_sum -= self.answers[0]
                    self.buckets[self._bucket(self.answers[0])] -= 1
                self.answers.append(delay)
                self.answer_sum += delay
                self.buckets[self._bucket(delay)] += 1
                self._cdf = None

    def _bucket(self, delay: float) -> int:
        return min(len(self.buckets) - 1, max(0, math.ceil(delay) - 1))

    def answer_cdf(self) -> tuple[float, ...]:
        """Share of the recent answers within 1, 2, ... s; empty until 50 were seen."""
        if len(self.answers) < 50:
            return ()
        if self._cdf is None:
            total, running, out = len(self.answers), 0, []
            for count in self.buckets:
                running += count
                out.append(running / total)
            self._cdf = tuple(out)
        return self._cdf

    @staticmethod
    def _blend(total: float, count: int, prior: float, weight: int) -> float:
        return (total + prior * weight) / (count + weight)

    def aht(self) -> float:
        return self._blend(self.talk_sum, len(self.talks), self._prior_aht, 20)

    def answer_time(self) -> float:
        return self._blend(self.answer_sum, len(self.answers), self._prior_answer, 20)

    def share(self, outcome: int) -> float:
        return self._blend(self.counts[outcome], len(self.outcomes), self._priors[outcome], 50)


class _Window:
    """Times of one kind of event over the last `span` seconds."""

    def __init__(self, span: float) -> None:
        self.span = span
        self.times: deque[float] = deque()

    def add(self, now: float) -> None:
        self.times.append(now)

    def count(self, now: float) -> int:
        times, edge = self.times, now - self.span
        while times and times[0] <= edge:
            times.popleft()
        return len(times)


class Simulation:
    """One run: one policy, one seed."""

    def __init__(self, params: SimParams, policy: Policy | Oracle, seed: int) -> None:
        self.p = params
        self.policy = policy
        self.seed = seed
        self.start = params.warmup  # the figures cover [start, end]
        self.end = params.warmup + params.hours * 3600.0
        self.calls = _Calls(seed)
        self.next_call = 0
        self.est = _Estimates(params)
        self.now = 0.0
        self._heap: list[tuple[float, int, int, int]] = []
        self._seq = 0
        n = params.agents
        self.state = [READY] * n
        self.since = [0.0] * n
        self.free_at = [0.0] * n  # when a busy agent will be free (the oracle's knowledge)
        self.leaving = [False] * n
        self.ready: deque[int] = deque(range(n))
        # call id -> (placed at, outcome, answer delay, talk)
        self.ringing: dict[int, tuple[float, int, float, float]] = {}
        self.waiting: dict[int, tuple[float, float]] = {}  # answered live: call id -> (at, talk)
        self.live_in_flight = 0
        self._wake_at = -1.0
        win = params.abandon_window
        self.w_attempts, self.w_lives, self.w_machines, self.w_drops = (
            _Window(win), _Window(win), _Window(win), _Window(win))
        self.live_times: list[float] = []
        self.drop_times: list[float] = []
        self.talk_seconds = 0.0
        self.break_seconds = 0.0
        self.dials = self.contacts = 0
        self.break_start: dict[int, float] = {}
        if params.breaks:
            takers = round(params.break_share * n)
            for j in range(takers):
                at = self.start + (j + 1) * (self.end - self.start) / (takers + 1)
                self.break_start[j] = at
                self._push(at, _BREAK_START, j)

    # -- events

    def _push(self, at: float, kind: int, item: int) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, kind, self._seq, item))

    def run(self) -> SeedResult:
        handlers: dict[int, Callable[[int], None]] = {
            _RESOLVE: self._on_resolve, _TALK_END: self._on_talk_end, _WRAP_END: self._on_wrap_end,
            _BREAK_START: self._on_break_start, _BREAK_END: self._on_break_end,
            _DROP_CHECK: self._on_drop_check, _TICK: lambda _: None, _WAKE: lambda _: None,
        }
        self._push(0.0, _TICK, 0)
        heap = self._heap
        while heap:
            at, kind, _, item = heapq.heappop(heap)
            if at >= self.end:
                break
            self.now = at
            handlers[kind](item)
            if kind == _TICK:
                self._push(at + self.p.tick, _TICK, 0)
            self._consult()
        return SeedResult(
            seed=self.seed, talk_seconds=self.talk_seconds,
            logged_in_seconds=self.p.agents * (self.end - self.start) - self.break_seconds,
            dials=self.dials, lives=len(self.live_times), contacts=self.contacts,
            drops=len(self.drop_times),
            worst_window=worst_window(self.live_times, self.drop_times, self.p.abandon_window,
                                      self.end - self.start))

    def _measured(self, seconds: float) -> float:
        """How much of [now, now + seconds] falls in the measured part of the run."""
        return max(0.0, min(self.now + seconds, self.end) - max(self.now, self.start))

    def _on_resolve(self, call: int) -> None:
        placed, outcome, delay, talk = self.ringing.pop(call)
        self.est.add_outcome(placed, outcome, delay)
        if outcome == MACHINE:
            self.w_machines.add(self.now)
        if outcome != LIVE:
            return
        self.live_in_flight -= 1
        if self.now >= self.start:
            self.live_times.append(self.now - self.start)
        self.w_lives.add(self.now)
        if self.ready:
            self._connect(self.ready.popleft(), talk)
        else:
            self.waiting[call] = (self.now, talk)
            self._push(self.now + self.p.grace, _DROP_CHECK, call)

    def _connect(self, agent: int, talk: float) -> None:
        self.state[agent], self.since[agent] = TALKING, self.now
        self.free_at[agent] = self.now + talk + self.p.wrap
        self.contacts += self.now >= self.start
        self.talk_seconds += self._measured(talk)
        self.est.add_talk(talk)
        self._push(self.now + talk, _TALK_END, agent)

    def _on_talk_end(self, agent: int) -> None:
        self.state[agent], self.since[agent] = WRAPUP, self.now
        self._push(self.now + self.p.wrap, _WRAP_END, agent)

    def _on_wrap_end(self, agent: int) -> None:
        self._agent_free(agent)

    def _agent_free(self, agent: int) -> None:
        if self.leaving[agent]:
            self.leaving[agent] = False
            self._start_break(agent)
            return
        if self.waiting:
            call = next(iter(self.waiting))
            _at, talk = self.waiting.pop(call)
            self._connect(agent, talk)
            return
        self.state[agent], self.since[agent] = READY, self.now
        self.free_at[agent] = self.now
        self.ready.append(agent)

    def _start_break(self, agent: int) -> None:
        self.state[agent], self.since[agent] = ON_BREAK, self.now
        self.free_at[agent] = self.now + self.p.break_seconds
        self.break_seconds += self._measured(self.p.break_seconds)
        self._push(self.now + self.p.break_seconds, _BREAK_END, agent)

    def _on_break_start(self, agent: int) -> None:
        if self.state[agent] == READY:
            self.ready.remove(agent)
            self._start_break(agent)
        else:
            self.leaving[agent] = True
            self.free_at[agent] += self.p.break_seconds

    def _on_break_end(self, agent: int) -> None:
        self._agent_free(agent)

    def _on_drop_check(self, call: int) -> None:
        if self.waiting.pop(call, None) is not None:
            if self.now >= self.start:
                self.drop_times.append(self.now - self.start)
            self.w_drops.add(self.now)

    # -- dialing

    def _outcome(self, u: float) -> int:
        p = self.p
        mid_shift = (self.start + self.end) / 2.0
        live = p.p_live / 2.0 if p.half_live_mid_shift and self.now >= mid_shift else p.p_live
        if u < live:
            return LIVE
        if u < p.p_live:
            return NO_ANSWER
        if u < p.p_live + p.p_machine:
            return MACHINE
        if u < p.p_live + p.p_machine + p.p_busy:
            return BUSY
        return NO_ANSWER

    def _draw(self, index: int) -> tuple[int, float, float]:
        u, e_answer, e_talk = self.calls.get(index)
        outcome = self._outcome(u)
        p = self.p
        if outcome in (LIVE, MACHINE):
            delay = min(p.ring_timeout, p.ring_time / 4.0 + e_answer * p.ring_time * 0.75)
        elif outcome == BUSY:
            delay = p.busy_seconds
        else:
            delay = p.ring_timeout
        return outcome, delay, e_talk * p.aht

    def _place(self, outcome: int, delay: float, talk: float) -> None:
        call = self.next_call
        self.next_call += 1
        self.dials += self.now >= self.start
        self.w_attempts.add(self.now)
        self.ringing[call] = (self.now, outcome, delay, talk)
        if outcome == LIVE:
            self.live_in_flight += 1
        self._push(self.now + delay, _RESOLVE, call)

    def _consult(self) -> None:
        if isinstance(self.policy, Oracle):
            self._oracle()
            return
        n = self.policy.calls_to_place(self.snapshot())
        for _ in range(n):
            self._place(*self._draw(self.next_call))

    def snapshot(self) -> Snapshot:
        now, p = self.now, self.p
        self.est.catch_up(now)
        busy = tuple(BusyAgent("talking" if s == TALKING else "wrapup", now - since, leave)
                     for s, since, leave in zip(self.state, self.since, self.leaving, strict=True)
                     if s in (TALKING, WRAPUP))
        return Snapshot(
            now=now, ready_agents=len(self.ready), busy_agents=busy,
            ringing=tuple(now - c[0] for c in self.ringing.values()),
            waiting_live=len(self.waiting),
            period_seconds=p.abandon_window, period_elapsed=min(now, p.abandon_window),
            attempts=self.w_attempts.count(now), live_answers=self.w_lives.count(now),
            machine_answers=self.w_machines.count(now), drops=self.w_drops.count(now),
            aht=self.est.aht(), wrap=p.wrap, answer_time=self.est.answer_time(),
            answer_cdf=self.est.answer_cdf(),
            p_live=self.est.share(LIVE), p_live_samples=len(self.est.outcomes) + 50, p_machine=self.est.share(MACHINE),
            p_no_answer=self.est.share(NO_ANSWER), ring_timeout=p.ring_timeout, abandon_target=p.abandon_target)

    def _oracle(self) -> None:
        """Non-live calls at once; the next live call when it will be answered as an agent frees."""
        while True:
            outcome, delay, talk = self._draw(self.next_call)
            if outcome != LIVE:
                self._place(outcome, delay, talk)
                continue
            promised = self.live_in_flight + len(self.waiting)
            if promised >= self.p.agents:
                return
            free = sorted(self.free_at)[promised]
            if free - delay <= self.now + 1e-9:
                self._place(outcome, delay, talk)
                continue
            if self._wake_at != free - delay:
                self._wake_at = free - delay
                self._push(free - delay, _WAKE, 0)
            return


def worst_window(lives: Sequence[float], drops: Sequence[float], window: float, end: float) -> float:
    """Highest drops / live answers over the windows [s, s + window] within [0, end] (the whole
    run if it is shorter). Checked at every start and end that can change the ratio."""
    if not drops:
        return 0.0
    if end <= window:
        return len(drops) / len(lives) if lives else math.inf
    last = end - window
    starts = {0.0, last}
    for t in drops:
        starts.add(min(max(t, 0.0), last))
        starts.add(min(max(t - window, 0.0), last))
    for t in lives:
        starts.add(min(max(math.nextafter(t, math.inf), 0.0), last))
        starts.add(min(max(math.nextafter(t - window, -math.inf), 0.0), last))
    worst = 0.0
    for s in starts:
        d = bisect_right(drops, s + window) - bisect_left(drops, s)
        if d:
            n = bisect_right(lives, s + window) - bisect_left(lives, s)
            worst = max(worst, d / n if n else math.inf)
    return worst


def make_policy(name: str) -> Policy | Oracle:
    """A fresh policy by name (progressive, adaptive, predictive, oracle)."""
    factories: dict[str, Callable[[], Policy | Oracle]] = {
        "progressive": Progressive, "adaptive": AdaptiveDialLevel, "predictive": Predictive, "oracle": Oracle}
    try:
        return factories[name]()
    except KeyError:
        raise ValueError(f"unknown policy {name!r} (choose from {', '.join(POLICY_NAMES)})") from None


def run_seed(params: SimParams, policy: str, seed: int) -> SeedResult:
    """One run of a named policy on one seed (a fresh policy: its state is per run)."""
    return Simulation(params, make_policy(policy), seed).run()


def summarize(policy: str, runs: Sequence[SeedResult]) -> PolicyReport:
    talk = sum(r.talk_seconds for r in runs)
    logged = sum(r.logged_in_seconds for r in runs)
    contacts = sum(r.contacts for r in runs)
    return PolicyReport(
        policy=policy,
        talk_share=talk / logged if logged else 0.0,
        contacts_per_agent_hour=contacts / (logged / 3600.0) if logged else 0.0,
        abandon_rate_mean=sum(r.abandon_rate for r in runs) / len(runs),
        abandon_rate_worst_seed=max(r.abandon_rate for r in runs),
        abandon_rate_worst_window=max(r.worst_window for r in runs),
        dials_per_contact=sum(r.dials for r in runs) / contacts if contacts else math.inf,
        seeds=tuple(runs))


def simulate(params: SimParams, policies: Sequence[str]) -> list[PolicyReport]:
    """Every policy on seeds 0 .. seeds-1 (the same calls for each)."""
    return [summarize(name, [run_seed(params, name, seed) for seed in range(params.seeds)]) for name in policies]
