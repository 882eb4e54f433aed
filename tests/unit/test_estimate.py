"""Queue position and expected-wait estimates."""

from __future__ import annotations

import pytest

from cc_ari.queueing.estimate import (
    DEFAULT_HANDLE_SECONDS,
    HandleTimes,
    expected_wait_seconds,
    number_sounds,
    position_in_queue,
    wait_minutes_to_announce,
)


def test_next_caller_with_one_agent_waits_half_a_handle_time() -> None:
    assert expected_wait_seconds(1, 1, 200.0) == 100.0


def test_callers_ahead_are_served_in_rounds_of_the_agents() -> None:
    assert expected_wait_seconds(3, 2, 100.0) == 150.0  # round 2 of 2 agents
    assert expected_wait_seconds(4, 2, 100.0) == 150.0
    assert expected_wait_seconds(5, 2, 100.0) == 250.0


@pytest.mark.parametrize("position, agents, aht", [(0, 1, 100.0), (1, 0, 100.0), (1, 1, 0.0)])
def test_no_estimate_without_agents_or_a_position(position: int, agents: int, aht: float) -> None:
    assert expected_wait_seconds(position, agents, aht) is None


@pytest.mark.parametrize("seconds, minutes", [(1, 1), (59, 1), (60, 1), (61, 2), (600, 10)])
def test_minutes_are_rounded_up_and_at_least_one(seconds: float, minutes: int) -> None:
    assert wait_minutes_to_announce(seconds) == minutes


def test_position_is_by_queue_time_then_call_id() -> None:
    waiting = [("c", 3.0), ("a", 1.0), ("b", 1.0)]
    assert [position_in_queue(c, waiting) for c in "abc"] == [1, 2, 3]
    assert position_in_queue("zz", waiting) == 0


def test_handle_times_average_recent_calls_per_queue_with_a_default() -> None:
    h = HandleTimes(size=2)
    assert h.average("sales") == DEFAULT_HANDLE_SECONDS
    for s in (100.0, 200.0, 400.0):
        h.add("sales", s)
    h.add("sales", -5.0)  # nonsense ignored
    assert h.average("sales") == 300.0
    assert h.average("support") == DEFAULT_HANDLE_SECONDS


@pytest.mark.parametrize("n, files", [
    (0, ["digits/0"]), (7, ["digits/7"]), (20, ["digits/20"]), (42, ["digits/40", "digits/2"]),
    (90, ["digits/90"]), (100, ["digits/1", "digits/hundred"]),
    (315, ["digits/3", "digits/hundred", "digits/15"]),
])
def test_numbers_are_said_with_core_sound_files(n: int, files: list[str]) -> None:
    assert number_sounds(n) == files


def test_numbers_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        number_sounds(1000)
