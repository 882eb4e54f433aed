"""IvrEngine: pure IVR transitions, on the real call flow and on small hand-built ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cc_ari.callflow import CallFlow, Target, load, parse
from cc_ari.ivr.engine import Collect, IvrEngine, IvrState, Leave, Play

REPO = Path(__file__).resolve().parents[2]
BASE_PROMPTS = {"not-in-service": "Not in service.", "goodbye": "Goodbye."}


@pytest.fixture(scope="module")
def lab_flow() -> CallFlow:
    return load(REPO / "config" / "cc_ari.toml")


@pytest.fixture
def lab(lab_flow: CallFlow) -> IvrEngine:
    return IvrEngine(lab_flow)


def flow(ivr: dict[str, Any], *, queues: tuple[str, ...] = ("sales", "support"),
         prompts: tuple[str, ...] = ()) -> CallFlow:
    all_prompts = dict(BASE_PROMPTS)
    all_prompts.update({p: f"Prompt {p}." for p in prompts})
    return parse({"prompts": all_prompts, "queues": {q: {} for q in queues}, "ivr": ivr})


def feed(engine: IvrEngine, state: IvrState, *inputs: str | None) -> tuple[IvrState, list[list[Any]]]:
    """Feed digits (str) and timeouts (None) in order; return the last state and each step's actions."""
    steps = []
    for item in inputs:
        state, actions = engine.on_timeout(state) if item is None else engine.on_digit(state, item)
        steps.append(actions)
    return state, steps


# --- the lab contract on config/cc_ari.toml (number 5000) ------------------------------------


def test_number_5000_starts_main_menu_with_welcome_then_menu_prompt(
        lab_flow: CallFlow, lab: IvrEngine) -> None:
    route = lab_flow.route_for("5000")
    assert route is not None and route.ivr == "main"
    state, actions = lab.start(route.ivr)
    assert state == IvrState(menu="main", plays=1, invalid=0, done=False, path=())
    assert actions == [Play(("welcome", "main-menu")), Collect(5.0)]


@pytest.mark.parametrize(("digit", "queue", "prompt"), [("1", "sales", "transfer-sales"),
                                                         ("2", "support", "transfer-support")])
def test_pressing_1_or_2_leaves_for_sales_or_support_with_transfer_prompt(
        lab: IvrEngine, digit: str, queue: str, prompt: str) -> None:
    state, _ = lab.start("main")
    state, actions = lab.on_digit(state, digit)
    assert actions == [Leave(Target(queue=queue, prompt=prompt), "choice")]
    assert state.done and state.path == (digit,)


def test_no_digit_after_two_prompts_sends_caller_to_support(lab: IvrEngine) -> None:
    state, _ = lab.start("main")
    state, first = lab.on_timeout(state)
    assert first == [Play(("main-menu",)), Collect(5.0)]  # the replay skips the welcome
    assert not state.done and state.plays == 2
    state, second = lab.on_timeout(state)
    assert second == [Leave(Target(queue="support"), "timeout")]
    assert state.done and state.path == ()


def test_three_invalid_digits_send_caller_to_support(lab: IvrEngine) -> None:
    state, _ = lab.start("main")
    state, steps = feed(lab, state, "9", "#", "0")
    assert steps[0] == [Play(("invalid", "main-menu")), Collect(5.0)]
    assert steps[1] == [Play(("invalid", "main-menu")), Collect(5.0)]
    assert steps[2] == [Leave(Target(queue="support"), "invalid")]
    assert state.done and state.invalid == 3 and state.path == ()


def test_two_invalid_digits_then_a_valid_one_still_reaches_sales(lab: IvrEngine) -> None:
    state, _ = lab.start("main")
    state, steps = feed(lab, state, "7", "8", "1")
    assert steps[-1] == [Leave(Target(queue="sales", prompt="transfer-sales"), "choice")]
    assert state.path == ("1",)


def test_invalid_digit_does_not_use_up_a_timeout_attempt(lab: IvrEngine) -> None:
    # Timeouts count menu plays without a digit; invalid digits are counted separately.
    state, _ = lab.start("main")
    state, steps = feed(lab, state, "9", None)
    assert steps[1] == [Play(("main-menu",)), Collect(5.0)]
    assert (state.plays, state.invalid, state.done) == (2, 1, False)
    state, actions = lab.on_timeout(state)
    assert actions == [Leave(Target(queue="support"), "timeout")]


def test_timeout_between_invalid_digits_keeps_the_invalid_count(lab: IvrEngine) -> None:
    state, _ = lab.start("main")
    state, steps = feed(lab, state, "9", None, "9", "9")
    assert steps[-1] == [Leave(Target(queue="support"), "invalid")]
    assert state.invalid == 3


# --- hand-built flows ------------------------------------------------------------------------


def test_events_after_the_caller_left_are_ignored(lab: IvrEngine) -> None:
    state, _ = lab.start("main")
    state, _ = lab.on_digit(state, "2")
    assert lab.on_digit(state, "1") == (state, [])
    assert lab.on_timeout(state) == (state, [])


def test_attempts_setting_controls_how_many_plays_before_timeout_target() -> None:
    engine = IvrEngine(flow({"m": {"prompts": ["a"], "attempts": 3, "timeout": 2,
                                   "choices": {"1": {"queue": "sales"}}, "on_timeout": {"queue": "support"}}},
                            prompts=("a",)))
    state, _ = engine.start("m")
    state, steps = feed(engine, state, None, None, None)
    assert steps[0] == steps[1] == [Play(("a",)), Collect(2.0)]  # repeat_prompts default to prompts
    assert steps[2] == [Leave(Target(queue="support"), "timeout")]


def test_single_attempt_menu_leaves_on_first_timeout() -> None:
    engine = IvrEngine(flow({"m": {"prompts": ["a"], "attempts": 1, "choices": {"1": {"queue": "sales"}}}},
                            prompts=("a",)))
    state, _ = engine.start("m")
    state, actions = engine.on_timeout(state)
    assert actions == [Leave(Target(hangup=True), "timeout")]  # default on_timeout is a hangup
    assert state.done


def test_invalid_digit_without_invalid_prompt_replays_only_repeat_prompts() -> None:
    engine = IvrEngine(flow({"m": {"prompts": ["a", "b"], "repeat_prompts": ["b"],
                                   "choices": {"1": {"queue": "sales"}}}}, prompts=("a", "b")))
    state, _ = engine.start("m")
    state, actions = engine.on_digit(state, "5")
    assert actions == [Play(("b",)), Collect(5.0)]
    assert state.invalid == 1


def test_max_invalid_one_leaves_on_first_invalid_digit_for_on_invalid_target() -> None:
    engine = IvrEngine(flow({"m": {"prompts": ["a"], "max_invalid": 1, "choices": {"1": {"queue": "sales"}},
                                   "on_invalid": {"queue": "support", "prompt": "sorry"}}},
                            prompts=("a", "sorry")))
    state, _ = engine.start("m")
    state, actions = engine.on_digit(state, "*")
    assert actions == [Leave(Target(queue="support", prompt="sorry"), "invalid")]
    assert state.done


def submenu_engine() -> IvrEngine:
    return IvrEngine(flow({
        "main": {"prompts": ["main-p"], "invalid_prompt": "bad",
                 "choices": {"1": {"queue": "sales"}, "2": {"menu": "tech", "prompt": "to-tech"}},
                 "on_invalid": {"menu": "tech"}},
        "tech": {"prompts": ["tech-p"], "timeout": 3, "attempts": 1,
                 "choices": {"1": {"queue": "support"}, "9": {"hangup": True}},
                 "on_timeout": {"queue": "support"}},
    }, prompts=("main-p", "bad", "to-tech", "tech-p")))


def test_submenu_choice_plays_target_prompt_then_submenu_prompts() -> None:
    engine = submenu_engine()
    state, _ = engine.start("main")
    state, actions = engine.on_digit(state, "2")
    assert actions == [Play(("to-tech", "tech-p")), Collect(3.0)]
    assert state == IvrState(menu="tech", plays=1, invalid=0, done=False, path=("2",))


def test_submenu_records_full_digit_path_and_its_own_choices() -> None:
    engine = submenu_engine()
    state, _ = engine.start("main")
    state, steps = feed(engine, state, "2", "1")
    assert steps[-1] == [Leave(Target(queue="support"), "choice")]
    assert state.path == ("2", "1") and state.done


def test_submenu_starts_with_fresh_counters_and_uses_its_own_timeout_rules() -> None:
    engine = submenu_engine()
    state, _ = engine.start("main")
    state, _ = feed(engine, state, "5", "2")  # one invalid in main, then into tech
    assert state.invalid == 0 and state.plays == 1 and state.menu == "tech"
    state, actions = engine.on_timeout(state)  # tech has attempts = 1
    assert actions == [Leave(Target(queue="support"), "timeout")]


def test_on_invalid_can_send_the_caller_to_another_menu() -> None:
    engine = submenu_engine()
    state, _ = engine.start("main")
    state, steps = feed(engine, state, "0", "0", "0")
    assert steps[0] == [Play(("bad", "main-p")), Collect(5.0)]
    assert steps[2] == [Play(("tech-p",)), Collect(3.0)]  # no prompt on the target: just the menu
    assert state.menu == "tech" and not state.done and state.path == ()


def test_hangup_choice_leaves_with_a_hangup_target() -> None:
    engine = submenu_engine()
    state, _ = engine.start("tech")
    state, actions = engine.on_digit(state, "9")
    assert actions == [Leave(Target(hangup=True), "choice")]
    assert state.done

