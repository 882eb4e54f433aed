"""Agent: the pure agent state machine (times passed in)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cc_ari.agents.errors import InvalidTransition
from cc_ari.agents.models import Agent, AgentState

Q = frozenset({"sales"})


def ready(at: float = 10.0) -> Agent:
    return Agent("agent1").login(Q, {"en": 5}, at)


def on_call() -> Agent:
    return ready().offer("call-1", 20.0).answered(21.0)


def test_login_makes_agent_ready_in_queues_with_idle_clock_started() -> None:
    a = ready(at=10.0)
    assert a.state is AgentState.READY
    assert (a.queues, dict(a.skills), a.since, a.idle_since) == (Q, {"en": 5}, 10.0, 10.0)
    assert a.available_for("sales") and not a.available_for("support")


def test_login_from_paused_clears_pause_and_makes_ready() -> None:
    a = ready().pause("lunch", 11.0).login(frozenset({"support"}), {}, 12.0)
    assert (a.state, a.pause_reason, a.since) == (AgentState.READY, None, 12.0)
    assert a.queues == frozenset({"support"})


def test_relogin_during_a_call_changes_queues_but_keeps_the_call() -> None:
    a = on_call().logout(22.0).login(frozenset({"support"}), {}, 23.0)
    assert (a.state, a.call_id, a.pending) == (AgentState.ON_CALL, "call-1", None)
    assert a.queues == frozenset({"support"})


def test_pause_and_ready_toggle_with_reason_and_timestamps() -> None:
    paused = ready().pause("lunch", 15.0)
    assert (paused.state, paused.pause_reason, paused.since) == (AgentState.PAUSED, "lunch", 15.0)
    assert not paused.available_for("sales")
    back = paused.ready(30.0)
    assert (back.state, back.pause_reason, back.since, back.idle_since) == (
        AgentState.READY, None, 30.0, 30.0)


def test_requests_that_do_not_apply_leave_the_agent_unchanged() -> None:
    a = ready(at=10.0)
    assert a.ready(50.0) is a  # already ready: the idle clock keeps running
    paused = a.pause("x", 12.0)
    assert paused.wrapup_done(99.0) is paused


@pytest.mark.parametrize("request_", [lambda a: a.pause("x", 1.0), lambda a: a.ready(1.0)])
def test_pause_or_ready_while_logged_out_is_invalid(request_: Callable[[Agent], Agent]) -> None:
    with pytest.raises(InvalidTransition, match="agent1 is logged out"):
        request_(Agent("agent1"))


@pytest.mark.parametrize("agent", [Agent("agent1"), ready().pause("x", 1.0), on_call(),
                                   ready().offer("c", 1.0)])
def test_offer_to_an_agent_who_is_not_ready_is_invalid(agent: Agent) -> None:
    with pytest.raises(InvalidTransition, match="not ready"):
        agent.offer("call-2", 30.0)


def test_logout_leaves_all_queues() -> None:
    a = ready().logout(40.0)
    assert (a.state, a.queues, a.since) == (AgentState.LOGGED_OUT, frozenset(), 40.0)


def test_offer_answer_end_goes_through_ringing_on_call_and_wrapup() -> None:
    ringing = ready().offer("call-1", 20.0)
    assert (ringing.state, ringing.call_id, ringing.since) == (AgentState.RINGING, "call-1", 20.0)
    talking = ringing.answered(21.0)
    assert (talking.state, talking.call_id) == (AgentState.ON_CALL, "call-1")
    wrap = talking.call_ended(60.0, wrapup=10.0)
    assert (wrap.state, wrap.call_id, wrap.wrapup_until) == (AgentState.WRAPUP, None, 70.0)
    assert not wrap.available_for("sales")
    done = wrap.wrapup_done(70.0)
    assert (done.state, done.idle_since, done.wrapup_until) == (AgentState.READY, 70.0, None)


def test_call_ended_without_wrapup_is_ready_at_once() -> None:
    a = on_call().call_ended(60.0, wrapup=0.0)
    assert (a.state, a.idle_since, a.call_id) == (AgentState.READY, 60.0, None)


@pytest.mark.parametrize("leave", [lambda a: a.pause("coffee", 65.0), lambda a: a.ready(65.0),
                                   lambda a: a.logout(65.0)])
def test_leaving_wrapup_early_clears_the_wrapup_deadline(leave: Callable[[Agent], Agent]) -> None:
    a = leave(on_call().call_ended(60.0, wrapup=10.0))
    assert a.state is not AgentState.WRAPUP and a.wrapup_until is None


def test_no_answer_pauses_the_agent_with_reason_no_answer() -> None:
    a = ready().offer("call-1", 20.0).no_answer(35.0)
    assert (a.state, a.pause_reason, a.call_id, a.since) == (AgentState.PAUSED, "no_answer", None, 35.0)


def test_offer_withdrawn_returns_agent_to_ready_without_wrapup() -> None:
    a = ready().offer("call-1", 20.0).offer_withdrawn(25.0)
    assert (a.state, a.call_id, a.idle_since, a.wrapup_until) == (AgentState.READY, None, 25.0, None)


@pytest.mark.parametrize(("request_", "pending"), [(lambda a: a.pause("lunch", 30.0), "pause:lunch"),
                                                   (lambda a: a.logout(30.0), "logout")])
def test_pause_or_logout_during_a_call_is_remembered_not_applied(
        request_: Callable[[Agent], Agent], pending: str) -> None:
    a = request_(on_call())
    assert (a.state, a.call_id, a.pending) == (AgentState.ON_CALL, "call-1", pending)


def test_ready_during_a_call_cancels_a_pending_pause() -> None:
    a = on_call().pause("lunch", 30.0).ready(31.0)
    assert (a.state, a.pending) == (AgentState.ON_CALL, None)
    assert a.call_ended(60.0, wrapup=0.0).state is AgentState.READY




def test_pending_logout_is_applied_when_the_call_ends() -> None:
    a = on_call().logout(30.0).call_ended(60.0, wrapup=10.0)
    assert (a.state, a.queues, a.pending, a.call_id) == (AgentState.LOGGED_OUT, frozenset(), None, None)


def test_pending_pause_is_applied_when_the_call_ends_instead_of_wrapup() -> None:
    a = on_call().pause("lunch", 30.0).call_ended(60.0, wrapup=10.0)
    assert (a.state, a.pause_reason, a.pending, a.wrapup_until) == (AgentState.PAUSED, "lunch", None, None)


def test_pending_logout_is_applied_when_the_agent_does_not_answer() -> None:
    a = ready().offer("call-1", 20.0).logout(22.0).no_answer(35.0)
    assert (a.state, a.pending) == (AgentState.LOGGED_OUT, None)


def test_pending_pause_is_applied_when_the_offer_is_withdrawn() -> None:
    a = ready().offer("call-1", 20.0).pause("lunch", 22.0).offer_withdrawn(25.0)
    assert (a.state, a.pause_reason, a.pending) == (AgentState.PAUSED, "lunch", None)
