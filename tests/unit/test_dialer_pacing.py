"""Pacing policies on hand-made snapshots, and the distribution math under them."""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise, product

import pytest

from cc_ari.dialer.pacing import (
    AdaptiveDialLevel,
    BusyAgent,
    Predictive,
    Progressive,
    Snapshot,
    binomial_pmf,
    expected_excess,
    live_given_ringing,
    play,
    poisson_excess,
    poisson_pmf,
    tail_above,
)


def snap(**changes: object) -> Snapshot:
    """20 agents an hour into a campaign with budget left: 2 ready, 16 talking, 2 in wrap-up."""
    base = Snapshot(
        now=3600.0, ready_agents=2,
        busy_agents=tuple([BusyAgent("talking", 60.0)] * 16 + [BusyAgent("wrapup", 5.0)] * 2),
        ringing=(1.0, 3.0), waiting_live=0, period_seconds=3600.0, period_elapsed=3600.0,
        attempts=1500, live_answers=360, machine_answers=220, drops=2, aht=180.0, wrap=10.0,
        answer_time=8.0, answer_cdf=(), p_live=0.25, p_live_samples=1000, p_machine=0.15, p_no_answer=0.5,
        ring_timeout=20.0,
        abandon_target=0.03)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# -- distributions


@pytest.mark.parametrize("n, p", [(1, 0.5), (10, 0.25), (40, 0.9), (200, 0.03), (7, 0.0), (7, 1.0)])
def test_binomial_pmf_matches_the_formula(n: int, p: float) -> None:
    lo, pmf = binomial_pmf(n, p)
    assert math.isclose(sum(pmf), 1.0, rel_tol=1e-9)
    for i, value in enumerate(pmf):
        k = lo + i
        assert math.isclose(value, math.comb(n, k) * p**k * (1 - p) ** (n - k), rel_tol=1e-9, abs_tol=1e-15)


def test_binomial_pmf_of_a_large_count_does_not_underflow() -> None:
    lo, pmf = binomial_pmf(5000, 0.5)
    assert lo > 0 and math.isclose(sum(pmf), 1.0, rel_tol=1e-9)


@pytest.mark.parametrize("mean", [0.0, 0.3, 4.0, 60.0])
def test_poisson_pmf_matches_the_formula(mean: float) -> None:
    lo, pmf = poisson_pmf(mean)
    assert math.isclose(sum(pmf), 1.0, rel_tol=1e-9)
    for i, value in enumerate(pmf):
        k = lo + i
        assert math.isclose(value, mean**k * math.exp(-mean) / math.factorial(k), rel_tol=1e-9, abs_tol=1e-15)


def test_bad_distribution_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        binomial_pmf(3, 1.5)
    with pytest.raises(ValueError):
        poisson_pmf(-1.0)


def test_binomial_tail() -> None:
    dist = binomial_pmf(4, 0.5)
    assert math.isclose(tail_above(dist, 2), 5 / 16)
    assert tail_above(dist, 4) == 0.0
    assert math.isclose(tail_above(dist, -1), 1.0)


def test_expected_excess_is_the_brute_force_sum() -> None:
    lives, free = binomial_pmf(12, 0.3), binomial_pmf(5, 0.6)
    brute = sum(pl * pf * max(0, lives[0] + i - free[0] - j)
                for i, pl in enumerate(lives[1]) for j, pf in enumerate(free[1]))
    assert math.isclose(expected_excess(lives, free), brute, rel_tol=1e-9)
    assert expected_excess((0, [1.0]), free) == 0.0


@pytest.mark.parametrize("mean, level", [(0.5, 0.0), (2.0, 1.0), (2.0, 1.5), (6.0, 3.2), (3.0, 40.0), (0.0, 2.0)])
def test_poisson_excess_is_the_brute_force_sum(mean: float, level: float) -> None:
    lo, pmf = poisson_pmf(mean)
    brute = sum(p * max(0.0, lo + i - level) for i, p in enumerate(pmf))
    assert math.isclose(poisson_excess(mean, level), brute, rel_tol=1e-9, abs_tol=1e-12)


def test_a_call_ringing_longer_is_less_likely_live_and_never_after_the_timeout() -> None:
    s = snap()
    values = [live_given_ringing(s, e) for e in (0.0, 2.0, 5.0, 10.0, 19.0)]
    assert values[0] == pytest.approx(0.25 / 0.9)  # busy lines taken as known at once: cautious
    assert values == sorted(values, reverse=True)
    assert live_given_ringing(s, 20.0) == 0.0


# -- progressive


@pytest.mark.parametrize("ready, ringing, expected", [(5, 2, 3), (5, 0, 5), (1, 3, 0), (0, 0, 0), (4, 4, 0)])
def test_progressive_keeps_one_call_per_ready_agent(ready: int, ringing: int, expected: int) -> None:
    assert Progressive().calls_to_place(snap(ready_agents=ready, ringing=(2.0,) * ringing)) == expected


# -- adaptive


def test_adaptive_raises_its_level_under_the_target_and_cuts_it_over() -> None:
    policy = AdaptiveDialLevel(step=0.1, cut=0.5, adjust_seconds=10.0)
    policy.calls_to_place(snap(now=0.0, drops=0))
    for t in range(1, 6):
        policy.calls_to_place(snap(now=10.0 * t, drops=0))
    assert policy.level == pytest.approx(1.5)
    assert policy.calls_to_place(snap(now=60.0, drops=0, ready_agents=4, ringing=())) == 6
    policy.calls_to_place(snap(now=70.0, drops=30))
    assert policy.level == 1.0  # VICIdial's hard limit: over the drop limit, back to progressive
    soft = AdaptiveDialLevel(step=0.1, cut=0.5, adjust_seconds=10.0, hard_limit=False)
    for t in range(7):
        soft.calls_to_place(snap(now=10.0 * t, drops=0))
    soft.calls_to_place(snap(now=70.0, drops=30))
    assert soft.level == pytest.approx(1.1)


def test_adaptive_does_not_raise_its_level_at_the_drop_limit() -> None:
    policy = AdaptiveDialLevel(step=0.1, adjust_seconds=10.0)
    for t in range(20):
        policy.calls_to_place(snap(now=10.0 * t, drops=11))  # 11 / 360: just over 3%
    assert policy.level == 1.0


def test_adaptive_level_never_goes_under_one() -> None:
    policy = AdaptiveDialLevel(adjust_seconds=1.0)
    for t in range(20):
        policy.calls_to_place(snap(now=float(t), drops=100))
    assert policy.level == 1.0


# -- predictive


def test_predictive_dials_more_than_progressive_when_it_has_budget() -> None:
    s = snap()
    assert Predictive().calls_to_place(s) > Progressive().calls_to_place(s)


@pytest.mark.parametrize("changes", [
    {"drops": 11},  # measured rate at the target
    {"drops": 40},  # over it
    {"live_answers": 40, "drops": 0},  # 0.03 * cautious 23 lives: less than one whole drop left
    {"live_answers": 0, "drops": 0, "period_elapsed": 0.0},  # nothing measured yet
])
def test_predictive_is_progressive_when_the_abandon_budget_is_spent(changes: dict[str, object]) -> None:
    for ready, ringing in [(2, ()), (5, (1.0,)), (0, (3.0, 4.0))]:
        s = snap(ready_agents=ready, ringing=ringing, **changes)
        assert Predictive().drops_left(s) < 1.0
        assert Predictive().calls_to_place(s) == Progressive().calls_to_place(s)


def test_predictive_places_more_when_many_agents_will_free_up() -> None:
    talking = snap(ready_agents=0, ringing=(), busy_agents=(BusyAgent("talking", 5.0),) * 20)
    freeing = snap(ready_agents=0, ringing=(),
                   busy_agents=(BusyAgent("talking", 5.0),) * 12 + (BusyAgent("wrapup", 8.0),) * 8)
    assert Predictive().calls_to_place(freeing) > Predictive().calls_to_place(talking)


def test_agents_about_to_pause_are_not_counted_as_freeing() -> None:
    staying = snap(ready_agents=0, ringing=(), busy_agents=(BusyAgent("wrapup", 8.0),) * 8)
    leaving = snap(ready_agents=0, ringing=(), busy_agents=(BusyAgent("wrapup", 8.0, leaving=True),) * 8)
    assert Predictive().calls_to_place(leaving) == 0 < Predictive().calls_to_place(staying)


def test_predictive_places_fewer_calls_as_p_live_grows() -> None:
    for ready, wraps in product((0, 3, 8), (0, 4)):
        busy = (BusyAgent("talking", 30.0),) * 10 + (BusyAgent("wrapup", 6.0),) * wraps
        counts = [Predictive().calls_to_place(snap(ready_agents=ready, busy_agents=busy, p_live=p,
                                                   p_no_answer=0.85 - p))
                  for p in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7)]
        assert counts == sorted(counts, reverse=True), (ready, wraps, counts)


def test_predictive_is_deterministic() -> None:
    s = snap(ready_agents=3, ringing=(0.5, 4.0, 9.0), answer_cdf=tuple(min(1.0, i / 12) for i in range(1, 21)))
    first = Predictive().calls_to_place(s)
    assert all(Predictive().calls_to_place(s) == first for _ in range(3))
    policy = Predictive()
    assert [policy.calls_to_place(s) for _ in range(3)] == [first] * 3


def test_predictive_never_adds_calls_when_answered_calls_already_wait() -> None:
    s = snap(ready_agents=0, waiting_live=3, busy_agents=(BusyAgent("talking", 5.0),) * 20)
    assert Predictive().calls_to_place(s) == 0


# -- predictive: the brake on the measured window and the budget


def test_the_brake_lowers_the_pace_as_the_window_rate_nears_the_cap() -> None:
    policy = Predictive()
    busy = (BusyAgent("talking", 30.0),) * 10 + (BusyAgent("wrapup", 6.0),) * 6
    throttles, counts = [], []
    for drops in range(0, 11):  # budget about 9.6 drops: 0.03 * cautious lives of the hour
        s = snap(ready_agents=4, ringing=(), busy_agents=busy, drops=drops)
        throttles.append(policy.throttle(s))
        counts.append(policy.calls_to_place(s))
    assert throttles[0] == 1.0 and throttles[-1] == 0.0
    assert throttles == sorted(throttles, reverse=True)
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1] == Progressive().calls_to_place(snap(ready_agents=4, ringing=()))


def test_predictive_never_plans_past_the_budget_left() -> None:
    for ready, wraps, drops in product((0, 2, 6), (0, 5), (0, 3, 6)):
        busy = (BusyAgent("talking", 30.0),) * (14 - wraps) + (BusyAgent("wrapup", 5.0),) * wraps
        s = snap(ready_agents=ready, ringing=(2.0,), busy_agents=busy, drops=drops)
        policy = Predictive()
        n = policy.calls_to_place(s)
        p_high = policy.p_live_high(s)
        forecast = policy.forecast(dataclasses.replace(s, p_live=p_high))
        expected = policy.expected_drops(forecast, s.ready_agents, s.waiting_live, n * p_high)
        assert expected <= policy.drops_left(s) + 1e-9, (ready, wraps, drops, n)


def test_bad_brake_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        Predictive(spend_from=0.9, spend_until=0.5)


# -- predictive: the Lagrangian rule (idle agent time saved against priced drops)


def _played(s: Snapshot, n: int) -> tuple[float, float]:
    policy = Predictive()
    p_high = policy.p_live_high(s)
    forecast = policy.forecast(dataclasses.replace(s, p_live=p_high))
    return play(forecast, s.ready_agents, s.waiting_live, n * p_high)


def test_play_gives_the_expected_drops_and_idle_time_that_new_calls_trade() -> None:
    s = snap(ready_agents=3, ringing=())
    policy = Predictive()
    p_high = policy.p_live_high(s)
    forecast = policy.forecast(dataclasses.replace(s, p_live=p_high))
    outcomes = [_played(s, n) for n in range(0, 30)]
    for n, (drops, _idle) in enumerate(outcomes):
        assert drops == policy.expected_drops(forecast, 3, 0, n * p_high)
    drops, idle = zip(*outcomes, strict=True)
    assert drops[0] == pytest.approx(0.0, abs=1e-9)
    assert list(drops) == sorted(drops) and list(idle) == sorted(idle, reverse=True)
    saved = [idle[n - 1] - idle[n] for n in range(1, 30)]
    risked = [drops[n] - drops[n - 1] for n in range(1, 30)]
    assert all(a >= b - 1e-9 for a, b in pairwise(saved))  # less saved per call...
    assert all(a <= b + 1e-9 for a, b in pairwise(risked))  # ...more risked


def test_idle_time_is_the_ready_agents_over_the_horizon_when_nothing_can_reach_them() -> None:
    s = snap(ready_agents=2, ringing=(), busy_agents=(), waiting_live=0)
    drops, idle = _played(s, 0)
    assert drops == 0.0 and idle == pytest.approx(2 * 20.0)


def test_the_drop_price_rises_with_a_tighter_target_a_longer_cycle_and_the_brake() -> None:
    policy = Predictive(drop_cost=0.03)
    base = policy.drop_price(snap(), 1.0)
    assert base == pytest.approx(0.03 * 190.0 / 0.03)
    assert policy.drop_price(snap(abandon_target=0.01), 1.0) == pytest.approx(3 * base)
    assert policy.drop_price(snap(aht=370.0), 1.0) == pytest.approx(2 * base)
    assert policy.drop_price(snap(), 0.5) == pytest.approx(2 * base)


def test_a_dearer_drop_places_no_more_calls() -> None:
    for ready, wraps in product((0, 2, 5), (0, 4)):
        busy = (BusyAgent("talking", 30.0),) * (16 - wraps) + (BusyAgent("wrapup", 4.0),) * wraps
        s = snap(ready_agents=ready, ringing=(1.0,), busy_agents=busy)
        counts = [Predictive(drop_cost=c).calls_to_place(s) for c in (0.005, 0.01, 0.03, 0.1, 1.0)]
        assert counts == sorted(counts, reverse=True), (ready, wraps, counts)
        assert counts[-1] >= Progressive().calls_to_place(s)


def test_the_lagrangian_rule_places_each_call_it_keeps_for_its_net_value() -> None:
    s = snap(ready_agents=4, ringing=(), busy_agents=(BusyAgent("talking", 30.0),) * 16)
    policy = Predictive()
    n = policy.calls_to_place(s)
    price = policy.drop_price(s, policy.throttle(s))
    assert n > Progressive().calls_to_place(s)
    (d_before, i_before), (d_n, i_n), (d_after, i_after) = (_played(s, k) for k in (n - 1, n, n + 1))
    assert price * (d_n - d_before) <= i_before - i_n  # the last call placed pays its way...
    assert price * (d_after - d_n) > i_n - i_after  # ...the next one would not


def test_calls_wait_while_every_agent_stays_busy_through_the_answer_time() -> None:
    all_busy = snap(ready_agents=0, ringing=(), busy_agents=(BusyAgent("talking", 30.0),) * 20)
    freeing = snap(ready_agents=0, ringing=(), busy_agents=(BusyAgent("talking", 30.0),) * 14
                   + (BusyAgent("wrapup", 9.0),) * 6)
    assert Predictive().calls_to_place(all_busy) < Predictive().calls_to_place(freeing)


def test_the_older_marginal_rule_is_still_there() -> None:
    s = snap()
    assert Predictive(drop_cost=0.0).calls_to_place(s) > Progressive().calls_to_place(s)
    with pytest.raises(ValueError):
        Predictive(drop_cost=-1.0)


def test_predictive_keeps_a_reserve_of_drops_out_of_its_budget() -> None:
    s = snap(live_answers=400, drops=0, period_elapsed=3600.0, period_seconds=3600.0)
    with_reserve = Predictive(reserve=1.0).drops_left(s)
    without = Predictive(reserve=0.0).drops_left(s)
    assert without - with_reserve == pytest.approx(1.0)
    few = snap(live_answers=40, drops=0, period_elapsed=3600.0, period_seconds=3600.0, abandon_target=0.03)
    assert Predictive().drops_left(few) == 0.0  # 1.2 drops allowed, one kept in reserve, less the caution
