"""Campaign settings from the API's JSON: LAB.md's defaults, every bad field named."""

from __future__ import annotations

import pytest

from cc_ari.campaigns.models import CampaignError, next_state, parse_campaign


def test_defaults_are_lab_mds() -> None:
    c = parse_campaign({"name": "spring", "mode": "predictive", "caller_id": "+15550100"})
    s = c.settings.as_json()
    assert (c.state, s["abandon_target"], s["abandon_period"], s["amd"], s["machine_action"]) == \
        ("created", 0.03, "30d", True, "hangup")
    assert s["window"] == {"start": "08:00", "end": "21:00"} and s["ring_timeout"] == 20
    assert s["max_attempts"] == 3 and s["no_redial_after_drop"] == 72
    assert s["retry"] == {"busy": 600, "no_answer": 3600, "machine": 7200, "failed": 900}


def test_given_values_override_and_partial_retry_keeps_the_other_defaults() -> None:
    c = parse_campaign({"name": "a.b-c_1", "mode": "preview", "caller_id": "15550100", "abandon_target": 0.01,
                        "abandon_period": "24h", "retry": {"busy": 120}, "window": {"start": "09:30", "end": "17:00"}})
    assert c.settings.abandon_target == 0.01 and c.settings.retry["busy"] == 120
    assert c.settings.retry["no_answer"] == 3600 and c.settings.window["start"] == "09:30"


@pytest.mark.parametrize(("change", "message"), [
    ({"name": "bad name"}, "name"),
    ({"name": "x" * 65}, "name"),
    ({"mode": "blast"}, "mode"),
    ({"caller_id": "bob"}, "caller_id"),
    ({"abandon_target": 0.9}, "abandon_target"),
    ({"abandon_target": True}, "abandon_target"),
    ({"abandon_period": "7d"}, "abandon_period"),
    ({"amd": "yes"}, "amd"),
    ({"machine_action": "voicemail"}, "machine_action"),
    ({"window": {"start": "21:00", "end": "08:00"}}, "window"),
    ({"window": {"start": "8am", "end": "21:00"}}, "window"),
    ({"ring_timeout": 10}, "ring_timeout"),  # unanswered calls ring at least 15 s
    ({"max_attempts": 0}, "max_attempts"),
    ({"retry": {"busy": 5}}, "retry.busy"),
    ({"retry": {"angry": 600}}, "retry"),
    ({"no_redial_after_drop": 24}, "no_redial_after_drop"),  # the compliance minimum is 72 h
    ({"colour": "red"}, "unknown field"),
])
def test_every_bad_field_is_named(change: dict[str, object], message: str) -> None:
    body = {"name": "spring", "mode": "predictive", "caller_id": "+15550100", **change}
    with pytest.raises(CampaignError, match=message):
        parse_campaign(body)


def test_state_transitions() -> None:
    assert next_state("start", "created") == "running"
    assert next_state("pause", "running") == "paused"
    assert next_state("start", "paused") == "running"
    assert next_state("stop", "paused") == "stopped"
    for action, state in (("start", "stopped"), ("pause", "created"), ("start", "finished")):
        with pytest.raises(CampaignError):
            next_state(action, state)
