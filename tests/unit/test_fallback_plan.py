"""The fallback queues' plan, pure: which agents app_queue should hold, and the actions to get there."""

from __future__ import annotations

import itertools

import pytest

from cc_ari.agents.models import Agent, AgentState
from cc_ari.fallback.plan import (
    QueueAdd,
    QueuePause,
    QueueRemove,
    desired,
    fallback_queue,
    interface_of,
    member_of,
    plan,
    record,
)

QUEUES = ("sales", "support")


def agent(name: str, state: AgentState, queues: tuple[str, ...] = ("support",), *, reason: str | None = None,
          pending: str | None = None) -> Agent:
    return Agent(name=name, state=state, queues=frozenset(queues), pause_reason=reason, pending=pending,
                 call_id="c1" if state in (AgentState.RINGING, AgentState.ON_CALL) else None)


# --- desired: cc_ari's agents -> app_queue members ---------------------------------------------------
def test_names_of_the_fallback_queues_and_interfaces() -> None:
    assert fallback_queue("support") == "cc-fb-support"
    assert interface_of("agent1") == "PJSIP/agent1"
    assert interface_of("SIP/legacy") == "SIP/legacy"
    assert member_of("PJSIP/agent1") == "agent1"
    assert member_of("SIP/legacy") == "SIP/legacy"
    assert member_of("Local/1@ctx/n") == "Local/1@ctx/n"
    for name in ("agent1", "agent20", "SIP/legacy"):
        assert member_of(interface_of(name)) == name


def test_nobody_logged_in_gives_every_managed_queue_empty() -> None:
    d = desired([agent("agent1", AgentState.LOGGED_OUT, ())], QUEUES)
    assert d.members == {"cc-fb-sales": {}, "cc-fb-support": {}}
    assert d.reasons == {}


@pytest.mark.parametrize(("state", "member", "paused"), [
    (AgentState.LOGGED_OUT, False, False),
    (AgentState.READY, True, False),
    (AgentState.PAUSED, True, True),
    (AgentState.RINGING, True, False),   # app_queue won't ring a device in use (ringinuse = no)
    (AgentState.ON_CALL, True, False),
    (AgentState.WRAPUP, True, False),    # nobody would end the wrap-up if cc_ari died
])
def test_each_agent_state_maps_to_membership_and_pause(state: AgentState, member: bool, paused: bool) -> None:
    queues = () if state is AgentState.LOGGED_OUT else ("support",)
    d = desired([agent("agent1", state, queues, reason="break" if state is AgentState.PAUSED else None)], QUEUES)
    assert d.members["cc-fb-sales"] == {}
    assert d.members["cc-fb-support"] == ({"agent1": paused} if member else {})
    assert d.reasons == ({"agent1": "break"} if paused else {})


def test_an_agent_is_a_member_of_the_fallback_queue_of_each_of_its_queues() -> None:
    d = desired([agent("agent1", AgentState.READY, ("sales", "support")),
                 agent("agent2", AgentState.PAUSED, ("sales",), reason="lunch"),
                 agent("agent3", AgentState.READY, ("support",))], QUEUES)
    assert d.members == {"cc-fb-sales": {"agent1": False, "agent2": True},
                         "cc-fb-support": {"agent1": False, "agent3": False}}
    assert d.reasons == {"agent2": "lunch"}


def test_queues_cc_ari_does_not_manage_are_ignored() -> None:
    d = desired([agent("agent1", AgentState.READY, ("support", "gone"))], ["support"])
    assert d.members == {"cc-fb-support": {"agent1": False}}


def test_a_pause_asked_for_during_a_call_pauses_the_member_now() -> None:
    d = desired([agent("agent1", AgentState.ON_CALL, pending="pause:meeting")], QUEUES)
    assert d.members["cc-fb-support"] == {"agent1": True}
    assert d.reasons == {"agent1": "meeting"}


def test_a_logout_asked_for_during_a_call_removes_the_member_now() -> None:
    d = desired([agent("agent1", AgentState.RINGING, pending="logout")], QUEUES)
    assert d.members["cc-fb-support"] == {}


def test_a_paused_agent_without_a_reason_gets_a_generic_one() -> None:
    assert desired([agent("agent1", AgentState.PAUSED)], QUEUES).reasons == {"agent1": "paused"}


def test_a_real_agent_through_its_life() -> None:
    a = Agent(name="agent1").login(frozenset({"support"}), {}, 1.0)
    seen = [desired([a], QUEUES).members["cc-fb-support"]]
    a = a.offer("c1", 2.0)
    seen.append(desired([a], QUEUES).members["cc-fb-support"])
    a = a.answered(3.0).pause("coffee", 4.0)  # deferred until the call ends
    seen.append(desired([a], QUEUES).members["cc-fb-support"])
    a = a.call_ended(5.0, wrapup=10.0)
    seen.append(desired([a], QUEUES).members["cc-fb-support"])
    a = a.ready(6.0)
    seen.append(desired([a], QUEUES).members["cc-fb-support"])
    a = a.logout(7.0)
    seen.append(desired([a], QUEUES).members["cc-fb-support"])
    assert seen == [{"agent1": False}, {"agent1": False}, {"agent1": True}, {"agent1": True},
                    {"agent1": False}, {}]


# --- plan: desired vs actual -> actions ------------------------------------------------------------
def test_nothing_to_do_when_app_queue_already_matches() -> None:
    same = {"cc-fb-support": {"agent1": False, "agent2": True}}
    assert plan(same, same) == []
    assert plan({}, {"cc-fb-support": {"agent1": False}}) == []  # an unmanaged queue is left alone


def test_additions_removals_and_pauses() -> None:
    desired_ = {"cc-fb-support": {"agent1": False, "agent2": True, "agent3": False}}
    actual = {"cc-fb-support": {"agent2": False, "agent3": True, "agent4": False}}
    assert plan(desired_, actual, reasons={"agent2": "break"}) == [
        QueueRemove("cc-fb-support", "PJSIP/agent4"),
        QueueAdd("cc-fb-support", "PJSIP/agent1", "agent1", False),
        QueuePause("cc-fb-support", "PJSIP/agent2", True, "break"),
        QueuePause("cc-fb-support", "PJSIP/agent3", False),
    ]


def test_a_member_is_added_already_paused_with_its_reason() -> None:
    assert plan({"cc-fb-sales": {"agent1": True}}, {}, reasons={"agent1": "lunch"}) == [
        QueueAdd("cc-fb-sales", "PJSIP/agent1", "agent1", True, "lunch")]


def test_a_queue_app_queue_does_not_list_is_taken_as_empty_and_others_are_untouched() -> None:
    actions = plan({"cc-fb-sales": {"agent1": False}},
                   {"cc-fb-support": {"agent9": False}, "other": {"agent8": False}})
    assert actions == [QueueAdd("cc-fb-sales", "PJSIP/agent1", "agent1", False)]


def test_a_foreign_member_is_removed_by_its_own_interface() -> None:
    assert plan({"cc-fb-support": {}}, {"cc-fb-support": {"SIP/legacy": False}}) == [
        QueueRemove("cc-fb-support", "SIP/legacy")]


def test_actions_come_in_a_stable_order_queue_by_queue() -> None:
    desired_ = {"cc-fb-support": {"b": False, "a": False}, "cc-fb-sales": {"c": False}}
    assert [(x.queue, x.interface) for x in plan(desired_, {})] == [
        ("cc-fb-sales", "PJSIP/c"), ("cc-fb-support", "PJSIP/a"), ("cc-fb-support", "PJSIP/b")]


# Every member is absent, present and ready, or present and paused: all pairs of (desired, actual)
# over two queues x two members, 3**8 = 6561 cases.
_CHOICES = (None, False, True)


def _members(picks: tuple[bool | None, ...]) -> dict[str, dict[str, bool]]:
    out: dict[str, dict[str, bool]] = {"cc-fb-sales": {}, "cc-fb-support": {}}
    for (queue, member), paused in zip(itertools.product(out, ("agent1", "agent2")), picks, strict=True):
        if paused is not None:
            out[queue][member] = paused
    return out


def test_plan_applied_gives_desired_with_one_action_per_difference() -> None:
    for want_picks in itertools.product(_CHOICES, repeat=4):
        want = _members(want_picks)
        for have_picks in itertools.product(_CHOICES, repeat=4):
            have = _members(have_picks)
            actions = plan(want, have, reasons={"agent1": "r1", "agent2": "r2"})
            assert len(actions) == sum(w != h for w, h in zip(want_picks, have_picks, strict=True))
            assert len({(a.queue, a.interface) for a in actions}) == len(actions)  # one per member
            for a in actions:
                if isinstance(a, QueueAdd | QueuePause):
                    assert a.reason == ({"PJSIP/agent1": "r1", "PJSIP/agent2": "r2"}[a.interface]
                                        if a.paused else "")
            for a in actions:
                record(have, a)
            assert have == want


def test_record_keeps_the_known_picture_in_step() -> None:
    known: dict[str, dict[str, bool]] = {}
    record(known, QueueAdd("cc-fb-support", "PJSIP/agent1", "agent1", True, "x"))
    assert known == {"cc-fb-support": {"agent1": True}}
    record(known, QueuePause("cc-fb-support", "PJSIP/agent1", False))
    assert known == {"cc-fb-support": {"agent1": False}}
    record(known, QueueRemove("cc-fb-support", "PJSIP/agent1"))
    record(known, QueueRemove("cc-fb-support", "PJSIP/agent1"))  # already gone: no error
    assert known == {"cc-fb-support": {}}
