"""parse_event / Channel: typed ARI events from Asterisk's JSON; odd input never raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from cc_ari.ari.models import (
    Channel,
    ChannelDestroyed,
    ChannelDtmfReceived,
    ChannelEnteredBridge,
    ChannelHangupRequest,
    Dial,
    OtherEvent,
    PlaybackFinished,
    RecordingFinished,
    StasisEnd,
    StasisStart,
    parse_event,
)

TS = "2026-11-23T12:00:00.123+0000"


def chan(cid: str = "1700000000.1", name: str = "PJSIP/carrier-00000001", **extra: Any) -> dict[str, Any]:
    return {"id": cid, "name": name, "state": "Ring",
            "caller": {"number": "0612345678", "name": "Alice"},
            "dialplan": {"context": "from-pstn", "exten": "5000", "priority": 2,
                         "app_name": "Stasis", "app_data": "cc_ari,inbound,5000"},
            "creationtime": TS, **extra}


def test_stasis_start_carries_channel_details_and_args() -> None:
    raw = {"type": "StasisStart", "timestamp": TS, "args": ["inbound", 5000], "channel": chan()}
    ev = parse_event(raw)
    assert isinstance(ev, StasisStart)
    assert ev.args == ("inbound", "5000")
    assert ev.replace_channel is None and ev.raw is raw
    assert ev.timestamp == datetime(2026, 11, 23, 12, 0, 0, 123000, tzinfo=UTC)
    c = ev.channel
    assert (c.id, c.name, c.state, c.caller_number, c.caller_name) == (
        "1700000000.1", "PJSIP/carrier-00000001", "Ring", "0612345678", "Alice")
    assert (c.exten, c.context, c.app_name, c.app_data) == (
        "5000", "from-pstn", "Stasis", "cc_ari,inbound,5000")
    assert c.created == ev.timestamp
    assert ev.channel_ids == ("1700000000.1",)


def test_stasis_start_without_args_and_with_replaced_channel() -> None:
    ev = parse_event({"type": "StasisStart", "channel": chan(),
                      "replace_channel": chan("old.9", "Local/x-1;2")})
    assert isinstance(ev, StasisStart)
    assert ev.args == () and ev.timestamp is None
    assert ev.replace_channel is not None and ev.replace_channel.id == "old.9"


def test_channel_destroyed_carries_hangup_cause() -> None:
    ev = parse_event({"type": "ChannelDestroyed", "cause": 16, "cause_txt": "Normal Clearing",
                      "channel": chan()})
    assert isinstance(ev, ChannelDestroyed)
    assert (ev.cause, ev.cause_txt, ev.channel_ids) == (16, "Normal Clearing", ("1700000000.1",))


def test_hangup_request_with_null_cause_means_zero() -> None:
    ev = parse_event({"type": "ChannelHangupRequest", "cause": None, "channel": chan()})
    assert isinstance(ev, ChannelHangupRequest) and ev.cause == 0


def test_dtmf_received_carries_digit_and_duration() -> None:
    ev = parse_event({"type": "ChannelDtmfReceived", "digit": "#", "duration_ms": 120, "channel": chan()})
    assert isinstance(ev, ChannelDtmfReceived)
    assert (ev.digit, ev.duration_ms, ev.channel.id) == ("#", 120, "1700000000.1")


def test_stasis_end_is_a_channel_event() -> None:
    ev = parse_event({"type": "StasisEnd", "channel": chan("c9")})
    assert isinstance(ev, StasisEnd) and ev.channel_ids == ("c9",)


def test_dial_concerns_both_peer_and_caller_channels() -> None:
    ev = parse_event({"type": "Dial", "dialstatus": "ANSWER",
                      "peer": chan("agent.2", "PJSIP/agent3-00000002"), "caller": chan("caller.1")})
    assert isinstance(ev, Dial)
    assert ev.dialstatus == "ANSWER"
    assert ev.channel_ids == ("agent.2", "caller.1")
    only_peer = parse_event({"type": "Dial", "peer": chan("agent.2")})
    assert isinstance(only_peer, Dial) and only_peer.caller is None and only_peer.channel_ids == ("agent.2",)


def test_playback_finished_on_a_channel_maps_target_uri_to_channel_id() -> None:
    ev = parse_event({"type": "PlaybackFinished", "playback": {
        "id": "pb-1", "target_uri": "channel:1700000000.1", "state": "done", "media_uri": "sound:welcome"}})
    assert isinstance(ev, PlaybackFinished)
    assert (ev.playback_id, ev.state, ev.channel_ids) == ("pb-1", "done", ("1700000000.1",))
    on_bridge = parse_event({"type": "PlaybackFinished",
                             "playback": {"id": "pb-2", "target_uri": "bridge:b1"}})
    assert on_bridge.channel_ids == ()


def test_recording_finished_keeps_integer_duration_only() -> None:
    ev = parse_event({"type": "RecordingFinished", "recording": {
        "name": "1700000000.1", "target_uri": "bridge:b1", "state": "done", "duration": 42}})
    assert isinstance(ev, RecordingFinished)
    assert (ev.name, ev.target_uri, ev.state, ev.duration, ev.cause) == (
        "1700000000.1", "bridge:b1", "done", 42, "")
    odd = parse_event({"type": "RecordingFinished", "recording": {"name": "r", "duration": "42"}})
    assert isinstance(odd, RecordingFinished) and odd.duration is None


def test_channel_entered_bridge_has_bridge_and_channel() -> None:
    ev = parse_event({"type": "ChannelEnteredBridge", "channel": chan("c1"),
                      "bridge": {"id": "b1", "bridge_type": "mixing", "channels": ["c1", "c2"]}})
    assert isinstance(ev, ChannelEnteredBridge)
    assert ev.bridge is not None and (ev.bridge.id, ev.bridge.bridge_type, ev.bridge.channels) == (
        "b1", "mixing", ("c1", "c2"))
    assert ev.channel_ids == ("c1",)


def test_unknown_event_type_is_kept_as_other_event_with_iso_timestamp() -> None:
    raw = {"type": "ChannelVarset", "timestamp": "2026-11-23T12:00:00+01:00", "variable": "X"}
    ev = parse_event(raw)
    assert type(ev) is OtherEvent
    assert ev.type == "ChannelVarset" and ev.raw is raw and ev.channel_ids == ()
    assert ev.timestamp == datetime(2026, 11, 23, 12, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize("raw", [
    {},
    {"type": "StasisStart"},                                            # no channel
    {"type": "StasisStart", "channel": chan(), "args": None},           # args not a list
    {"type": "ChannelDestroyed", "channel": chan(), "cause": "busy"},   # cause not a number
    {"type": "ChannelDtmfReceived", "channel": chan(), "duration_ms": [1]},
    {"type": "ChannelStateChange", "timestamp": "yesterday"},
    {"type": None, "timestamp": 12},
])
def test_malformed_events_become_other_events(raw: dict[str, Any]) -> None:
    ev = parse_event(raw)
    assert type(ev) is OtherEvent
    assert ev.raw is raw and ev.timestamp is None


@pytest.mark.parametrize("raw", [
    {"type": "StasisStart", "channel": "1700000000.1"},
    {"type": "ChannelDtmfReceived", "digit": "1", "channel": {"id": "c1", "caller": "0612345678"}},
    {"type": "PlaybackFinished", "playback": "pb-1"},
])
def test_non_object_where_an_object_is_expected_becomes_other_event(raw: dict[str, Any]) -> None:
    assert type(parse_event(raw)) is OtherEvent


@pytest.mark.parametrize(("name", "endpoint"), [
    ("PJSIP/agent1-0000001", "PJSIP/agent1"),
    ("PJSIP/my-trunk-0000000a", "PJSIP/my-trunk"),
    ("PJSIP/agent1", "PJSIP/agent1"),
    ("", ""),
])
def test_channel_endpoint_strips_the_unique_suffix(name: str, endpoint: str) -> None:
    assert Channel(id="x", name=name, state="Up").endpoint == endpoint
