"""pick_agent / assign: longest-idle agent selection and caller-to-agent matching (pure)."""

from __future__ import annotations

from cc_ari.agents.models import Agent
from cc_ari.queueing.routing import Assignment, Waiting, assign, pick_agent


def agent(name: str, idle_since: float, queues: tuple[str, ...] = ("sales",)) -> Agent:
    return Agent(name).login(frozenset(queues), {}, idle_since)


def test_pick_agent_chooses_the_longest_idle_ready_agent() -> None:
    agents = [agent("a1", 30.0), agent("a2", 10.0), agent("a3", 20.0)]
    picked = pick_agent("sales", agents)
    assert picked is not None and picked.name == "a2"


def test_pick_agent_breaks_idle_ties_by_name() -> None:
    agents = [agent("zed", 5.0), agent("amy", 5.0), agent("bob", 5.0)]
    picked = pick_agent("sales", agents)
    assert picked is not None and picked.name == "amy"


def test_pick_agent_skips_agents_not_ready_not_in_queue_excluded_or_unreachable() -> None:
    agents = [
        agent("paused", 1.0).pause("lunch", 2.0),
        agent("ringing", 1.0).offer("c0", 2.0),
        Agent("logged_out"),
        agent("support_only", 1.0, ("support",)),
        agent("tried", 1.0),
        agent("offline", 1.0),
        agent("good", 50.0),
    ]
    picked = pick_agent("sales", agents, exclude=frozenset({"tried"}), reachable=lambda n: n != "offline")
    assert picked is not None and picked.name == "good"


def test_pick_agent_returns_none_when_nobody_can_take_the_queue() -> None:
    assert pick_agent("sales", [agent("s", 1.0, ("support",))]) is None
    assert pick_agent("sales", []) is None


def test_assign_serves_the_oldest_caller_first_across_queues() -> None:
    both = agent("a1", 1.0, ("sales", "support"))
    waiting = [Waiting("new", "sales", queued_at=20.0), Waiting("old", "support", queued_at=10.0)]
    assert assign(waiting, [both]) == [Assignment("old", "a1")]


def test_assign_gives_each_agent_at_most_one_call_in_idle_order() -> None:
    waiting = [Waiting(f"c{i}", "sales", queued_at=float(i)) for i in range(3)]
    agents = [agent("late", 9.0), agent("early", 1.0)]
    assert assign(waiting, agents) == [Assignment("c0", "early"), Assignment("c1", "late")]


def test_assign_lets_a_caller_nobody_can_take_wait_without_blocking_later_callers() -> None:
    waiting = [Waiting("vip", "support", queued_at=1.0), Waiting("normal", "sales", queued_at=2.0)]
    assert assign(waiting, [agent("a1", 1.0, ("sales",))]) == [Assignment("normal", "a1")]


def test_assign_prefers_agents_who_have_not_let_the_call_ring_out() -> None:
    waiting = [Waiting("c1", "sales", queued_at=1.0, tried=frozenset({"a1"})),
               Waiting("c2", "sales", queued_at=2.0)]
    agents = [agent("a1", 1.0), agent("a2", 2.0)]
    assert assign(waiting, agents) == [Assignment("c1", "a2"), Assignment("c2", "a1")]


def test_assign_offers_the_call_again_to_a_tried_agent_when_nobody_else_can_take_it() -> None:
    # a single-agent queue: the agent who rang out, once ready again, gets the caller back
    waiting = [Waiting("c1", "sales", queued_at=1.0, tried=frozenset({"a1"}))]
    assert assign(waiting, [agent("a1", 1.0)]) == [Assignment("c1", "a1")]


def test_assign_orders_equal_queue_times_by_call_id_and_respects_reachability() -> None:
    waiting = [Waiting("b", "sales", queued_at=5.0), Waiting("a", "sales", queued_at=5.0)]
    agents = [agent("a1", 1.0), agent("a2", 2.0), agent("a3", 0.5)]
    result = assign(waiting, agents, reachable=lambda n: n != "a3")
    assert result == [Assignment("a", "a1"), Assignment("b", "a2")]
