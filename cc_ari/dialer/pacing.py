"""How many outbound calls to place now: pacing policies, as plain code (no I/O, no clock).

Everything a policy may know comes in one `Snapshot` (the time included), so a decision is a
function of its snapshot (plus, for `AdaptiveDialLevel`, the level it keeps between decisions).

* `Progressive`: one call in flight per ready agent; never drops a call while agents stay.
* `AdaptiveDialLevel`: VICIdial-style dial level (ADAPT_HARD_LIMIT), raised while the measured
  drop rate is under the target, back to 1 (progressive) while at or over it.
* `Predictive`: forecasts, over the next ring-time horizon, the agents that will be free and the
  live answers of the calls in flight, and places each new call whose expected idle agent time
  saved is worth more than its expected drops at a price per drop (within what is left of the
  abandon budget of the period), the price rising as the window's drops near the cap.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

AgentState = Literal["talking", "wrapup"]

# Probability mass below this is dropped from the tails of a distribution.
_TAIL = 1e-12


@dataclass(frozen=True, slots=True)
class BusyAgent:
    """A logged-in agent who is not ready."""

    state: AgentState  # talking to a contact, or in wrap-up after it
    elapsed: float  # seconds spent in that state so far
    leaving: bool = False  # a pause or logout is pending: will not be ready when this call ends


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the dialer knows at `now`. Counts are over the campaign's abandon period: the last
    `period_seconds` (or since the campaign started, `period_elapsed` < `period_seconds`)."""

    now: float  # seconds (any origin); policies that keep state use it to pace themselves
    ready_agents: int  # logged in, idle and not paused (including those a ringing call is for)
    busy_agents: tuple[BusyAgent, ...]  # logged in, talking or in wrap-up
    ringing: tuple[float, ...]  # each call placed and not yet answered: seconds it has rung
    waiting_live: int  # calls answered live and still waiting (a second or two) for an agent
    period_seconds: float  # length of the abandon period (e.g. 3600: rates are per rolling hour)
    period_elapsed: float  # how much of it the counts cover: min(period, time since start)
    attempts: int  # calls placed in the period
    live_answers: int  # answered by a person in the period (connected or dropped)
    machine_answers: int  # answered by a machine in the period
    drops: int  # live answers dropped (abandoned: no agent in time) in the period
    aht: float  # estimated mean talk seconds of a contact
    wrap: float  # estimated mean wrap-up seconds after a contact
    answer_time: float  # estimated mean seconds from dial to answer, for answered calls
    answer_cdf: tuple[float, ...]  # measured share of answered calls answered within 1, 2, ... s
    #                                 (up to the ring timeout); empty: exponential, answer_time mean
    p_live: float  # estimated probability that a dial is answered by a person
    p_live_samples: int  # how many dials that estimate rests on (its precision)
    p_machine: float  # estimated probability that a dial is answered by a machine
    p_no_answer: float  # estimated probability that a dial rings to the timeout (busy lines and
    #                     failures, known within seconds, are the rest)
    ring_timeout: float  # seconds a call rings before it is given up (no answer)
    abandon_target: float  # highest drop rate allowed: drops / live answers (e.g. 0.03)


class Policy(Protocol):
    """A pacing policy: `calls_to_place(snap)` new calls to place now (>= 0)."""

    @property
    def name(self) -> str: ...

    def calls_to_place(self, snap: Snapshot) -> int: ...


# ---------------------------------------------------------------------------------------------
# Distributions, as (offset, pmf) with pmf[i] = P(X = offset + i), negligible tails cut off.


def binomial_pmf(n: int, p: float) -> tuple[int, list[float]]:
    """P(X = k) for X ~ Binomial(n, p), over the k that carry all but ~1e-12 of the mass."""
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError(f"bad binomial({n}, {p})")
    if n == 0 or p == 0.0:
        return 0, [1.0]
    if p == 1.0:
        return n, [1.0]
    mean = n * p
    sd = math.sqrt(mean * (1.0 - p))
    lo = max(0, math.floor(mean - 10.0 * sd - 3.0))
    hi = min(n, math.ceil(mean + 10.0 * sd + 3.0))
    log_first = (math.lgamma(n + 1) - math.lgamma(lo + 1) - math.lgamma(n - lo + 1)
                 + lo * math.log(p) + (n - lo) * math.log1p(-p))
    odds = p / (1.0 - p)
    out = [math.exp(log_first)]
    value = out[0]
    for k in range(lo, hi):
        value *= (n - k) / (k + 1) * odds
        out.append(value)
    return lo, out


def poisson_pmf(mean: float) -> tuple[int, list[float]]:
    """P(X = k) for X ~ Poisson(mean), over the k that carry all but ~1e-12 of the mass."""
    if mean < 0.0:
        raise ValueError(f"bad poisson({mean})")
    if mean == 0.0:
        return 0, [1.0]
    sd = math.sqrt(mean)
    lo = max(0, math.floor(mean - 10.0 * sd - 3.0))
    hi = math.ceil(mean + 10.0 * sd + 3.0)
    value = math.exp(lo * math.log(mean) - mean - math.lgamma(lo + 1))
    out = [value]
    for k in range(lo, hi):
        value *= mean / (k + 1)
        out.append(value)
    return lo, out


def tail_above(dist: tuple[int, Sequence[float]], k: int) -> float:
    """P(X > k) of a distribution given as (offset, pmf)."""
    lo, pmf = dist
    return math.fsum(pmf[max(0, k + 1 - lo):])


def expected_excess(lives: tuple[int, Sequence[float]], free: tuple[int, Sequence[float]]) -> float:
    """E[max(0, L - F)] for independent L and F: the expected live answers that find no agent."""
    return _Excess(free).expect(lives)


class _Excess:
    """g(l) = E[max(0, l - F)] for every l: tabled over F's support (g(l+1) = g(l) + P(F <= l)),
    linear (l - E[F]) above it."""

    __slots__ = ("_g", "_mean", "_top")

    def __init__(self, free: tuple[int, Sequence[float]]) -> None:
        lo, pmf = free
        self._top = lo + len(pmf)  # F < top surely
        self._mean = lo + math.fsum(i * p for i, p in enumerate(pmf))
        g = [0.0] * (self._top + 1)
        cdf = 0.0
        for i, p in enumerate(pmf):
            cdf += p
            g[lo + i + 1] = g[lo + i] + min(cdf, 1.0)
        self._g = g

    def at(self, level: int) -> float:
        return self._g[level] if level <= self._top else max(0.0, level - self._mean)

    def expect(self, lives: tuple[int, Sequence[float]]) -> float:
        lo, pmf = lives
        return sum(p * self.at(lo + i) for i, p in enumerate(pmf) if p > _TAIL)


# ---------------------------------------------------------------------------------------------
# Policies


class Progressive:
    """One call in flight per ready agent: ready agents minus calls ringing, floored at 0."""

    name = "progressive"

    def calls_to_place(self, snap: Snapshot) -> int:
        return max(0, snap.ready_agents - len(snap.ringing))


class AdaptiveDialLevel:
    """VICIdial-style adaptive dial level (its ADAPT_HARD_LIMIT method): `floor(level * ready_agents)
    - ringing` calls.

    Every `adjust_seconds` the drop rate measured over the period (drops / live answers) is
    compared with the target (VICIdial's adaptive dropped percentage): under it the level goes up
    by `step`, up to `max_level`; at or over it the hard limit applies, as in VICIdial: no more
    aggressive dialing, the level falls back to 1 (progressive) until the rate is under the target
    again (`hard_limit=False` cuts it by `cut` instead, at least to 1: closer to ADAPT_AVERAGE).
    Until `min_lives` live answers have been counted in the period the level is left alone (no
    rate to trust yet). It reacts to drops already made, so it can still overshoot the target.
    """

    name = "adaptive"

    def __init__(self, *, start: float = 1.0, step: float = 0.05, cut: float = 0.25,
                 max_level: float = 10.0, adjust_seconds: float = 15.0, min_lives: int = 20,
                 hard_limit: bool = True) -> None:
        self.level = start
        self._step = step
        self._cut = cut
        self._max = max_level
        self._every = adjust_seconds
        self._min_lives = min_lives
        self._hard_limit = hard_limit
        self._next_adjust: float | None = None

    def calls_to_place(self, snap: Snapshot) -> int:
        if self._next_adjust is None:
            self._next_adjust = snap.now + self._every
        elif snap.now >= self._next_adjust:
            self._next_adjust = snap.now + self._every
            if snap.live_answers >= self._min_lives:
                rate = snap.drops / snap.live_answers
                if rate < snap.abandon_target:
                    self.level = min(self._max, self.level + self._step)
                elif self._hard_limit:
                    self.level = 1.0
                else:
                    self.level = max(1.0, self.level - self._cut)
        return max(0, math.floor(self.level * snap.ready_agents + 1e-9) - len(snap.ringing))


class Predictive:
    """cc_ari's policy: each new call whose idle agent time saved outweighs its drops, priced.

    Forecast over the next ring timeout, in steps of `grace` (how long an answered call may wait
    for an agent): in each step, the live answers of the calls in flight against the agents idle
    or freeing in that step; live answers left over are the step's drops, idle agents left over
    carry to the next step (and count as idle agent-seconds). The number of idle agents is carried
    as a distribution, so the expected drops D(n) and idle agent-seconds I(n) with n new calls are
    exact for this model (no randomness; see `play`):
    * agents freeing: those in wrap-up when their mean wrap-up ends (residual of the mean), a
      whole number; talking agents ending their talk and then the wrap-up, a Poisson count with
      mean talking * P(wrap + Exp(aht) in the step) (talk taken as exponential, so memoryless);
      agents with a pause pending never count; idle at the start: the ready ones;
    * live answers in a step: a Poisson count (wider than the true binomial sum: cautious) with
      mean the calls' live probabilities times their chance of an answer in that step, from the
      measured answer-time distribution (`answer_cdf`; exponential with mean `answer_time` when
      there is none): each ringing call is live with P(live | still ringing after e s) (see
      `live_given_ringing`), each new call with p_live; calls already waiting come first.

    Placing (a Lagrangian rule, `drop_cost` > 0): the n-th new call is placed when the idle agent
    time it saves, I(n-1) - I(n), is worth at least its extra drops at the drop price,
    price * (D(n) - D(n-1)), with price = `drop_cost` * (aht + wrap) / target / throttle
    (`drop_price`): a drop is worth more idle time the tighter the target and the longer an agent's
    cycle, and more as the brake closes. Calls are thus placed when agents are idle or about to free
    (much idle time to save) and held while every agent stays busy through the likely answer time
    (drops to risk, nothing to gain). Also D(n) stays under D(0) (what the calls in flight already
    risk) plus `budget_share` of the budget left after that. Marginal drops are convex in n and
    the idle time saved concave, so n is found by galloping then bisection. `drop_cost=0` gives the
    older rule: the most calls whose marginal drops stay under `marginal` * target * p_live.

    Measured on the simulator (20 agents, AHT 180 s, p-live 0.25, target 3%, 2 h x 3 seeds): the
    older rule 85.4% talk share at 1.16% abandons, this one 86.0% at 1.39% (worst window 2.1%).
    Both rules, the budget and brake taken away, trace the same frontier (about 85.7% talk at 1.1%
    abandons, 87.0% at 2.2%, 87.8% at 3.3%, 90.1% at 9.8%), and so does the older rule given the
    agents' exact free times (85.7% at 0.9%, 87.8% at 3.0%): the limit is the calls' unknown
    outcomes and answer times, not the forecast of the agents. Comparing a call now with the same
    call one step later (placing it only if waiting would not pay) did not move the frontier either.

    Live answers are counted with p_live raised by `z_live` standard errors of its estimate.

    Brake (feedback on the measured rolling window): with `used` the share of the window's budget
    the drops counted already take (drops / (drops + what `drops_left` leaves)), `throttle` is
    (spend_until - used) / (spend_until - spend_from), clipped to [0, 1]: untouched up to
    `spend_from`, progressive from `spend_until`. The pace thus falls smoothly as the window's
    abandon rate nears the cap instead of running into it and going progressive at once; drops
    leaving the window raise it again. (Spending more of the budget, by a lower drop price or a
    later brake, drops more calls without more talk: the drops come in bursts, so the mean must
    stay well under the cap for every window to stay under it.)

    Budget: over a period the campaign may drop `target` of its live answers. The live answers of
    a whole period are estimated from the rate so far, cautiously: minus `z` standard deviations
    (of the rate, known from the answers counted, and of a period's count around it); what is left
    after the drops already counted, less a reserve of drops (`reserve` + `reserve_sd` * the square
    root of the drops allowed: the calls in flight may drop more than expected, and drops vary like
    a Poisson count), is the budget. Why these values (z 2.5, the brake ending at 0.8 of the
    budget, the reserve): with z 1.5, the brake at 0.95 and no reserve, the 56-cell grid had 5
    cells whose worst window went over the target, all at p-live 0.10 where a window holds few live
    answers (e.g. 1.10% for a 1% target); with a reserve of 1 drop, one (50 agents, AHT 60 s,
    p-live 0.10, 1%: 1.07%). Together they cost the reference cell 1.6 points (86.5% -> 84.9%).
    With less than
    one whole drop left once the calls in flight have taken their expected drops, or the measured
    rate at/over the target, the policy is progressive.
    """

    name = "predictive"

    def __init__(self, *, grace: float = 2.0, drop_cost: float = 0.03, marginal: float = 2.0,
                 budget_share: float = 0.3, z: float = 2.5, z_live: float = 2.0, min_elapsed: float = 600.0,
                 max_calls: int = 1000, spend_from: float = 0.6, spend_until: float = 0.8,
                 reserve: float = 1.0, reserve_sd: float = 0.3) -> None:
        if not 0.0 <= spend_from < spend_until:
            raise ValueError("need 0 <= spend_from < spend_until")
        if drop_cost < 0.0:
            raise ValueError("need drop_cost >= 0")
        self._step = max(grace, 0.5)
        self._drop_cost = drop_cost
        self._marginal = marginal
        self._budget_share = budget_share
        self._z = z
        self._z_live = z_live
        self._min_elapsed = min_elapsed
        self._max_calls = max_calls
        self._spend_from = spend_from
        self._spend_until = spend_until
        self._reserve = reserve
        self._reserve_sd = reserve_sd

    def drops_left(self, snap: Snapshot) -> float:
        """Whole-period budget left: target * cautious live answers per period - drops counted."""
        if snap.period_elapsed <= 0.0 or snap.live_answers <= 0:
            return 0.0
        if snap.drops >= snap.abandon_target * snap.live_answers:
            return 0.0
        per_period = snap.live_answers / max(snap.period_elapsed, self._min_elapsed) * snap.period_seconds
        # the rate is known from live_answers answers; a period's count varies around it too
        spread = math.sqrt(1.0 / snap.live_answers + 1.0 / per_period)
        cautious = per_period * max(0.0, 1.0 - self._z * spread)
        allowed = snap.abandon_target * cautious
        reserve = self._reserve + self._reserve_sd * math.sqrt(allowed)  # drops vary like a Poisson count
        return max(0.0, allowed - snap.drops - reserve)

    def drop_price(self, snap: Snapshot, throttle: float) -> float:
        """What a drop costs, in idle agent-seconds: `drop_cost` * (aht + wrap) / target (an agent's
        cycle per share of the budget a live answer earns), divided by the brake's `throttle`."""
        return self._drop_cost * (snap.aht + snap.wrap) / snap.abandon_target / throttle

    def calls_to_place(self, snap: Snapshot) -> int:
        progressive = max(0, snap.ready_agents - len(snap.ringing))
        left = self.drops_left(snap)
        if left < 1.0 or snap.p_live <= 0.0:
            return progressive
        p_high = self.p_live_high(snap)
        forecast = self.forecast(dataclasses.replace(snap, p_live=p_high))
        played: dict[int, tuple[float, float]] = {}

        def outcome(n: int) -> tuple[float, float]:  # (expected drops, idle agent-seconds), n new calls
            if n not in played:
                played[n] = play(forecast, snap.ready_agents, snap.waiting_live, n * p_high)
            return played[n]

        committed = outcome(progressive)[0]  # expected drops of the calls already in flight
        if left - committed < 1.0:
            return progressive
        throttle = self.throttle(snap, left)
        if throttle <= 0.0:
            return progressive
        cap = committed + self._budget_share * (left - committed)
        if self._drop_cost > 0.0:
            price = self.drop_price(snap, throttle)

            def fits(n: int) -> bool:  # the n-th call saves more idle time than its drops cost
                (drops, idle), (drops_before, idle_before) = outcome(n), outcome(n - 1)
                return drops <= cap and price * (drops - drops_before) <= idle_before - idle
        else:
            step = self._marginal * snap.abandon_target * snap.p_live * throttle

            def fits(n: int) -> bool:  # the n-th call's marginal drops are small enough
                drops, drops_before = outcome(n)[0], outcome(n - 1)[0]
                return drops <= cap and drops - drops_before <= step

        # fits is monotone: marginal drops grow with n (convex), the idle time saved shrinks
        good, bad, probe = progressive, progressive + self._max_calls + 1, 1
        while good + probe < bad:  # galloping...
            if not fits(good + probe):
                bad = good + probe
                break
            good, probe = good + probe, probe * 2
        while bad - good > 1:  # ...then bisection
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        return good

    def throttle(self, snap: Snapshot, left: float | None = None) -> float:
        """The brake, from 1 (full pace) to 0 (progressive): the share of the window's budget
        already used by the drops counted, `drops / (drops + drops_left)`, up to `spend_from`
        leaves the pace alone, from there to `spend_until` scales the marginal limit down to 0."""
        if left is None:
            left = self.drops_left(snap)
        budget = left + snap.drops
        if budget <= 0.0:
            return 0.0
        used = snap.drops / budget
        return min(1.0, max(0.0, (self._spend_until - used) / (self._spend_until - self._spend_from)))

    def forecast(self, snap: Snapshot) -> Forecast:
        """Per step: live answers expected from the calls ringing, the share of a new call's
        answers, and the agents freeing."""
        steps = max(1, math.ceil(snap.ring_timeout / self._step))
        times = [k * self._step for k in range(steps + 1)]
        new = [answered_by(snap, t) for t in times]
        new_share = [new[k + 1] - new[k] for k in range(steps)]
        ringing = [0.0] * steps
        by_age: dict[int, int] = {}  # calls ringing, by half-second of age (for speed)
        for elapsed in snap.ringing:
            age = int(elapsed * 2.0)
            by_age[age] = by_age.get(age, 0) + 1
        for age, count in by_age.items():
            elapsed = (age + 0.5) / 2.0
            q = count * live_given_ringing(snap, elapsed)
            start = answered_by(snap, elapsed)
            rest = 1.0 - start
            if q <= 0.0 or rest <= 1e-9:
                continue
            previous = start
            for k in range(steps):
                now = answered_by(snap, elapsed + times[k + 1])
                ringing[k] += q * (now - previous) / rest
                previous = now
        wrap_ends = [0] * steps
        talk_ends = [0.0] * steps
        talking = 0
        for agent in snap.busy_agents:
            if agent.leaving:
                continue
            if agent.state == "wrapup":
                k = max(0, math.ceil((snap.wrap - agent.elapsed) / self._step) - 1)
                if k < steps:
                    wrap_ends[k] += 1
            else:
                talking += 1
        if talking and snap.aht > 0.0:
            before_free = 0.0
            for k in range(steps):
                t = times[k + 1]
                if t > snap.wrap:
                    now_free = -math.expm1(-(t - snap.wrap) / snap.aht)
                    talk_ends[k] += talking * (now_free - before_free)
                    before_free = now_free
        freeing_pmf = [(whole, _trimmed_poisson(expected)[1] if expected > 1e-9 else [1.0])
                       for whole, expected in zip(wrap_ends, talk_ends, strict=True)]
        return Forecast(tuple(ringing), tuple(new_share), tuple(freeing_pmf), self._step)

    def p_live_high(self, snap: Snapshot) -> float:
        """p_live plus `z_live` standard errors of its estimate: live answers are counted high."""
        p = snap.p_live
        return min(1.0, p + self._z_live * math.sqrt(p * (1.0 - p) / max(1, snap.p_live_samples)))

    @staticmethod
    def expected_drops(forecast: Forecast, ready: int, waiting: int, new_lives: float) -> float:
        """Expected live answers that find no agent within the horizon: `ready` agents idle now,
        `waiting` answered calls waiting, `new_lives` expected of the new calls."""
        return play(forecast, ready, waiting, new_lives)[0]


def play(forecast: Forecast, ready: int, waiting: int, new_lives: float) -> tuple[float, float]:
    """(expected drops, expected idle agent-seconds) over the horizon: `ready` agents idle now,
    `waiting` answered calls waiting, `new_lives` expected live answers of the new calls (idle
    counted at the end of each step, after its live answers took their agents).

    The number of idle agents is carried as a distribution from step to step; agents freeing
    in a step are added as a whole number (the wrap-ups ending) plus a Poisson count (the
    talks ending), live answers are a Poisson count."""
    idle = [0.0] * ready + [1.0]  # idle[i] = P(i idle agents)
    drops = idle_seconds = 0.0
    share = forecast.new_share
    for k, (whole, talk_ends) in enumerate(forecast.freeing_pmf):
        mean = forecast.ringing[k] + new_lives * share[k] + (waiting if k == 0 else 0)
        if whole:
            idle = [0.0] * whole + idle
        if len(talk_ends) > 1:
            idle = _convolve(idle, talk_ends)
        if mean > 1e-9:
            lo, pmf = _trimmed_poisson(mean)
            size = len(pmf)
            tail_p = [0.0] * (size + 1)  # tail_p[j] = P(X >= lo + j)
            tail_xp = [0.0] * (size + 1)  # tail_xp[j] = E[X; X >= lo + j]
            for j in range(size - 1, -1, -1):
                tail_p[j] = tail_p[j + 1] + pmf[j]
                tail_xp[j] = tail_xp[j + 1] + (lo + j) * pmf[j]
            after = [0.0] * len(idle)
            for i, p_idle in enumerate(idle):
                if p_idle < 1e-10:
                    continue
                first_over = min(size, max(0, i + 1 - lo))  # index of the first x > i
                drops += p_idle * (tail_xp[first_over] - i * tail_p[first_over])
                after[0] += p_idle * tail_p[first_over]
                for j in range(first_over):  # x = lo + j <= i: i - x agents stay idle
                    after[i - lo - j] += p_idle * pmf[j]
            while len(after) > 1 and after[-1] < 1e-10:
                after.pop()
            idle = after
        idle_seconds += forecast.step * math.fsum(i * q for i, q in enumerate(idle))
    return drops, idle_seconds


def _trimmed_poisson(mean: float) -> tuple[int, list[float]]:
    """poisson_pmf without the tail terms under 1e-10 (speed; what is cut is negligible)."""
    lo, pmf = poisson_pmf(mean)
    first, last = 0, len(pmf)
    while first < last - 1 and pmf[first] < 1e-10:
        first += 1
    while last > first + 1 and pmf[last - 1] < 1e-10:
        last -= 1
    return lo + first, pmf[first:last]


@dataclass(frozen=True, slots=True)
class Forecast:
    """Per step of the horizon (Predictive): expected live answers of the calls ringing, share
    of a new call's answers that come in it, agents freeing in it (wrap-ups ending: a whole
    number; talks ending: the pmf of a Poisson count)."""

    ringing: tuple[float, ...]
    new_share: tuple[float, ...]
    freeing_pmf: tuple[tuple[int, list[float]], ...]
    step: float = 2.0


def answered_by(snap: Snapshot, seconds: float) -> float:
    """Share of answered calls answered within `seconds` of the dial (the measured distribution,
    interpolated; exponential with the mean answer time when none was measured)."""
    if seconds <= 0.0:
        return 0.0
    cdf = snap.answer_cdf
    if not cdf:
        return -math.expm1(-seconds / snap.answer_time) if snap.answer_time > 0.0 else 1.0
    whole = int(seconds)
    if whole >= len(cdf):
        return 1.0
    low = cdf[whole - 1] if whole else 0.0
    return low + (cdf[whole] - low) * (seconds - whole)


def _convolve(a: Sequence[float], b: Sequence[float]) -> list[float]:
    out = [0.0] * (len(a) + len(b) - 1)
    for i, x in enumerate(a):
        if x < _TAIL:
            continue
        for j, y in enumerate(b):
            out[i + j] += x * y
    return out


def poisson_excess(mean: float, level: float) -> float:
    """E[max(0, X - level)] for X ~ Poisson(mean) and a real level >= 0."""
    if mean <= 0.0:
        return 0.0
    if level <= 0.0:
        return mean - level
    if level > mean + 12.0 * math.sqrt(mean) + 12.0:
        return 0.0
    # E[(X - c)+] = mean - c + E[(c - X)+], the last over x <= c only
    p = math.exp(-mean)
    below = 0.0
    x = 0
    while x <= level:
        below += (level - x) * p
        x += 1
        p *= mean / x
    return max(0.0, mean - level + below)


def live_given_ringing(snap: Snapshot, elapsed: float) -> float:
    """P(a call still ringing after `elapsed` s will be answered live), from the snapshot's
    estimates: answers come as `answered_by` says, the unanswered ring to the timeout (busy lines are
    taken as known at once: the cautious side, more live answers still to come)."""
    if elapsed >= snap.ring_timeout:
        return 0.0
    p_live, p_machine, p_other = snap.p_live, snap.p_machine, snap.p_no_answer
    still = 1.0 - answered_by(snap, elapsed)
    denominator = (p_live + p_machine) * still + p_other
    return p_live * still / denominator if denominator > 0.0 else 0.0
