"""callflow.parse / load: the config becomes frozen objects; every mistake names its key."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest

from cc_ari.callflow import CallFlowError, QueueConfig, Route, Target, load, parse

REPO = Path(__file__).resolve().parents[2]


def valid() -> dict[str, Any]:
    return {
        "prompts": {"not-in-service": "Not in service.", "goodbye": "Goodbye.", "menu": "Press 1.",
                    "oops": "Invalid."},
        "routes": {"5000": {"ivr": "main"}, "5001": {"queue": "support"}},
        "queues": {"sales": {"ring_timeout": 20, "wrapup": 0, "max_wait": 60}, "support": {}},
        "ivr": {"main": {"prompts": ["menu"], "invalid_prompt": "oops",
                         "choices": {"1": {"queue": "sales"}, "2": {"queue": "support"}}}},
    }


DELETE = object()


def with_change(path: str, value: Any) -> dict[str, Any]:
    """A copy of valid() with the dotted `path` set to `value` (or deleted if value is DELETE)."""
    data = copy.deepcopy(valid())
    *parents, last = path.split(".")
    node = data
    for p in parents:
        node = node[p]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return data



def test_real_config_file_loads_with_lab_routes_queues_and_menu() -> None:
    flow = load(REPO / "config" / "cc_ari.toml")
    assert flow.route_for("5000") == Route(dnis="5000", ivr="main")
    assert flow.route_for("5001") == Route(dnis="5001", queue="support")
    assert flow.route_for("4321") is None
    assert set(flow.queues) == {"sales", "support"}
    main = flow.menus["main"]
    assert (main.timeout, main.attempts, main.max_invalid) == (5.0, 2, 3)
    assert main.on_timeout == main.on_invalid == Target(queue="support")
    assert main.choices["1"] == Target(queue="sales", prompt="transfer-sales")


def test_defaults_fill_queue_and_menu_settings() -> None:
    flow = parse(valid())
    assert flow.queues["support"] == QueueConfig("support", ring_timeout=15.0, wrapup=10.0, max_wait=600.0)
    assert flow.queues["sales"] == QueueConfig("sales", ring_timeout=20.0, wrapup=0.0, max_wait=60.0)
    main = flow.menus["main"]
    assert main.repeat_prompts == ("menu",)
    assert (main.timeout, main.attempts, main.max_invalid) == (5.0, 2, 3)
    assert main.on_timeout == main.on_invalid == Target(hangup=True)


def test_numeric_route_keys_become_strings() -> None:
    data = valid()
    data["routes"] = {5002: {"queue": "sales"}}
    assert parse(data).route_for("5002") == Route(dnis="5002", queue="sales")


@pytest.mark.parametrize(("path", "value", "message"), [
    ("routes.5001.queue", "billing", "routes.5001: queue 'billing' is not defined"),
    ("routes.5000.ivr", "nomenu", "routes.5000: menu 'nomenu' is not defined"),
    ("ivr.main.choices.2", {"queue": "billing"}, "ivr.main.choices.2: queue 'billing'"),
    ("ivr.main.choices.2", {"menu": "other"}, "ivr.main.choices.2: menu 'other'"),
    ("ivr.main.on_timeout", {"queue": "billing"}, "ivr.main.on_timeout: queue 'billing'"),
    ("ivr.main.on_invalid", {"menu": "x"}, "ivr.main.on_invalid: menu 'x'"),
    ("ivr.main.choices.1", {"queue": "sales", "prompt": "hello"}, "ivr.main.choices.1: prompt 'hello'"),
    ("ivr.main.prompts", ["menu", "welcome"], "ivr.main: prompt 'welcome' is not defined"),
    ("ivr.main.repeat_prompts", ["again"], "ivr.main: prompt 'again'"),
    ("ivr.main.invalid_prompt", "bad", "ivr.main: prompt 'bad'"),
    ("prompts.goodbye", DELETE, "goodbye: prompt 'goodbye' is not defined"),
    ("prompts.not-in-service", DELETE, "invalid number: prompt 'not-in-service'"),
])
def test_unknown_references_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(CallFlowError, match=message):
        parse(with_change(path, value))


@pytest.mark.parametrize(("path", "value", "message"), [
    ("ivr.main.choices", {"12": {"queue": "sales"}}, "ivr.main.choices: '12' is not a single DTMF digit"),
    ("ivr.main.choices", {"A": {"queue": "sales"}}, "'A' is not a single DTMF digit"),
    ("ivr.main.choices", {}, "ivr.main.choices must map digits to targets"),
    ("ivr.main.choices", DELETE, "ivr.main.choices must map digits to targets"),
    ("ivr.main.timeout", "5", "ivr.main.timeout must be a number, got '5'"),
    ("ivr.main.timeout", True, "ivr.main.timeout must be a number"),
    ("ivr.main.timeout", 0.1, r"ivr.main.timeout must be >= 0.5"),
    ("ivr.main.attempts", 0, r"ivr.main.attempts must be >= 1"),
    ("ivr.main.max_invalid", "three", "ivr.main.max_invalid must be a number"),
    ("queues.sales.ring_timeout", "15s", "queues.sales.ring_timeout must be a number"),
    ("queues.sales.wrapup", -1, r"queues.sales.wrapup must be >= 0"),
    ("queues.sales.max_wait", 0, r"queues.sales.max_wait must be >= 1"),
    ("queues.sales", "big", "queues.sales must be a table"),
    ("ivr.main", ["menu"], "ivr.main must be a table"),
    ("ivr.main.prompts", [], "ivr.main.prompts must list at least one prompt"),
    ("ivr.main.prompts", DELETE, "ivr.main.prompts must list at least one prompt"),
    ("prompts.menu", "   ", "prompts.menu must be non-empty text"),
    ("prompts.menu", 42, "prompts.menu must be non-empty text"),
])
def test_malformed_values_name_the_key(path: str, value: Any, message: str) -> None:
    with pytest.raises(CallFlowError, match=message):
        parse(with_change(path, value))


@pytest.mark.parametrize(("target", "message"), [
    ({"queue": "sales", "menu": "main"}, "needs exactly one of queue, menu, hangup"),
    ({"prompt": "menu"}, "needs exactly one of queue, menu, hangup"),
    ({"hangup": False}, "needs exactly one of queue, menu, hangup"),
    ({"queue": "sales", "ring": 3}, r"unknown keys \['ring'\]"),
    ("sales", "must be a table like"),
])
def test_targets_need_exactly_one_destination(target: Any, message: str) -> None:
    with pytest.raises(CallFlowError, match=f"ivr.main.on_timeout.*{message}"):
        parse(with_change("ivr.main.on_timeout", target))


@pytest.mark.parametrize("route", [{}, {"ivr": "main", "queue": "sales"}, {"ivr": ""}, "main"])
def test_routes_need_exactly_one_of_ivr_or_queue(route: Any) -> None:
    with pytest.raises(CallFlowError, match=re.escape("routes.5000 needs exactly one of ivr, queue")):
        parse(with_change("routes.5000", route))


def test_list_where_a_queue_name_is_expected_is_a_callflow_error() -> None:
    with pytest.raises(CallFlowError, match=re.escape("ivr.main.choices.1")):
        parse(with_change("ivr.main.choices.1", {"queue": ["sales"]}))


def test_missing_file_is_a_callflow_error_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(CallFlowError, match=f"call-flow file {missing} does not exist"):
        load(missing)


def test_invalid_toml_is_a_callflow_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[routes]\n"5000" = { ivr = \n')
    with pytest.raises(CallFlowError, match=str(bad)):
        load(bad)


def test_loaded_toml_is_validated_like_parse(tmp_path: Path) -> None:
    path = tmp_path / "flow.toml"
    path.write_text('[prompts]\ngoodbye = "Bye."\n"not-in-service" = "No."\n\n'
                    '[routes]\n"5000" = { queue = "nowhere" }\n')
    with pytest.raises(CallFlowError, match=re.escape("routes.5000: queue 'nowhere'")):
        load(path)
