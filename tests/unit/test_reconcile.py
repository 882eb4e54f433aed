"""CelEvent.parse and build_call (pure): fallback calls rebuilt from cel_custom JSON lines.

The lines use the field names of asterisk/templates/cel_custom.conf:
EventEnum, UserDefType, EventTime (float seconds), Num, Exten, Context, ChanName, AppName,
UniqueID, LinkedID, EventExtra.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from cc_ari.reporting.reconcile import CelEvent, build_call

AGENTS = ("agent2", "agent3")

T0 = 1_763_900_000.25
CALLER = "1763900000.1"
AGENT2 = "1763900000.2"
AGENT3 = "1763900000.3"
CEL_FIELDS = ("EventEnum", "UserDefType", "EventTime", "Num", "Exten", "Context", "ChanName", "AppName",
              "UniqueID", "LinkedID", "EventExtra")
REPO = Path(__file__).resolve().parents[2]


def at(offset: float) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def hangup_extra(cause: int, source: str = "", dialstatus: str = "") -> str:
    return json.dumps({"hangupcause": cause, "hangupsource": source, "dialstatus": dialstatus})


def line(event: str, offset: float, uniqueid: str, chan: str, *, linkedid: str = CALLER,
         num: str = "0612345678", exten: str = "5000", context: str = "from-pstn", app: str = "",
         user: str = "", extra: str = "") -> str:
    return json.dumps(dict(zip(CEL_FIELDS, (event, user, T0 + offset, num, exten, context, chan, app,
                                            uniqueid, linkedid, extra), strict=True)))


def caller(event: str, offset: float, **kw: Any) -> str:
    return line(event, offset, CALLER, "PJSIP/carrier-00000001", **kw)


def fallback_mark(queue_or_invalid: str, offset: float = 0.2, exten: str = "5000") -> str:
    return caller("USER_DEFINED", offset, user="cc_fallback", exten=exten, context="cc-fallback-route",
                  app="CELGenUserEvent", extra=json.dumps({"extra": queue_or_invalid}))


def agent(event: str, offset: float, uniqueid: str, name: str, **kw: Any) -> str:
    return line(event, offset, uniqueid, f"PJSIP/{name}-0000000{uniqueid[-1]}", num="", exten="s",
                context="from-agents", **kw)


def answered_call_lines() -> list[str]:
    """5000 in reduced mode: apology, Queue() rings agent2 (rings out) then agent3 (answers)."""
    return [
        caller("CHAN_START", 0.0),
        fallback_mark("support"),
        caller("ANSWER", 0.3, exten="support", context="cc-fallback-queue", app="Answer"),
        agent("CHAN_START", 4.0, AGENT2, "agent2"),
        agent("HANGUP", 19.0, AGENT2, "agent2", extra=hangup_extra(19, "", "NOANSWER")),
        agent("CHAN_END", 19.0, AGENT2, "agent2"),
        agent("CHAN_START", 20.0, AGENT3, "agent3"),
        agent("ANSWER", 23.5, AGENT3, "agent3", app="AppQueue"),
        caller("BRIDGE_ENTER", 23.6, exten="support", context="cc-fallback-queue", app="Queue"),
        agent("BRIDGE_ENTER", 23.6, AGENT3, "agent3", app="AppQueue"),
        agent("BRIDGE_EXIT", 80.0, AGENT3, "agent3", app="AppQueue"),
        agent("HANGUP", 80.0, AGENT3, "agent3", extra=hangup_extra(16, "PJSIP/agent3-00000003")),
        agent("CHAN_END", 80.1, AGENT3, "agent3"),
        caller("BRIDGE_EXIT", 80.0, exten="support", context="cc-fallback-queue", app="Queue"),
        caller("HANGUP", 80.2, exten="support", context="cc-fallback-queue",
               extra=hangup_extra(16, "PJSIP/agent3-00000003", "ANSWER")),
        caller("CHAN_END", 80.3, exten="support", context="cc-fallback-queue"),
        caller("LINKEDID_END", 80.4, exten="support", context="cc-fallback-queue"),
    ]


def events(lines: list[str]) -> list[CelEvent]:
    parsed = [CelEvent.parse(raw) for raw in lines]
    assert all(e is not None for e in parsed)
    return [e for e in parsed if e is not None]


def test_cel_custom_template_uses_the_field_names_these_tests_use() -> None:
    conf = (REPO / "asterisk" / "templates" / "cel_custom.conf").read_text()
    fields = next(ln for ln in conf.splitlines() if ln.startswith("fields"))
    assert [f.split("(")[0] for f in fields.split("=", 1)[1].strip().split(",")] == list(CEL_FIELDS)


def test_parse_reads_every_cel_custom_field() -> None:
    ev = CelEvent.parse(fallback_mark("support"))
    assert ev == CelEvent(event="USER_DEFINED", user_event="cc_fallback", time=at(0.2), cid_num="0612345678",
                          exten="5000", context="cc-fallback-route", channel="PJSIP/carrier-00000001",
                          app="CELGenUserEvent", uniqueid=CALLER, linkedid=CALLER, extra={"extra": "support"})


def test_parse_reads_hangup_cause_from_json_event_extra() -> None:
    ev = CelEvent.parse(caller("HANGUP", 5.0, extra=hangup_extra(16, "PJSIP/carrier-00000001", "ANSWER")))
    assert ev is not None and ev.extra == {"hangupcause": 16, "hangupsource": "PJSIP/carrier-00000001",
                                           "dialstatus": "ANSWER"}
    assert ev.time == at(5.0)


@pytest.mark.parametrize(("extra", "expected"), [
    ("", {}),
    ("support", {"extra": "support"}),
    ("{not json", {"extra": "{not json"}),
    ({"hangupcause": 17}, {"hangupcause": 17}),
    (3, {"extra": 3}),
])
def test_parse_normalises_event_extra(extra: Any, expected: dict[str, Any]) -> None:
    ev = CelEvent.parse(json.dumps({"EventEnum": "HANGUP", "EventTime": T0, "EventExtra": extra}))
    assert ev is not None and dict(ev.extra) == expected


def test_parse_still_accepts_legacy_field_names() -> None:
    ev = CelEvent.parse(json.dumps({"eventtype": "USER_DEFINED", "usereventname": "cc_fallback",
                                    "eventtime": str(T0), "cidnum": "0611", "extra": '{"extra": "sales"}'}))
    assert ev is not None
    assert (ev.event, ev.user_event, ev.cid_num, ev.extra, ev.time) == (
        "USER_DEFINED", "cc_fallback", "0611", {"extra": "sales"}, at(0.0))


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '"CHAN_START"', '{"EventTime": "soon"}',
                                 '{"EventTime": NaN}', '{"EventTime": null}'])
def test_parse_returns_none_for_lines_that_are_not_cel_events(raw: str) -> None:
    assert CelEvent.parse(raw) is None


@pytest.mark.parametrize("raw", ['{"EventTime": 1e20}', '{"EventTime": Infinity}'])
def test_parse_returns_none_for_out_of_range_event_time(raw: str) -> None:
    assert CelEvent.parse(raw) is None


def test_fallback_call_answered_by_agent3_via_queue(tmp_path: Path) -> None:
    row = build_call(events(answered_call_lines()), recordings_dir=tmp_path, agents=AGENTS)
    assert row is not None
    assert (row.call_id, row.caller, row.dnis, row.queue, row.agent, row.outcome) == (
        CALLER, "0612345678", "5000", "support", "agent3", "answered")
    assert (row.started_at, row.queued_at, row.answered_at, row.ended_at) == (
        at(0.0), at(0.2), at(23.5), at(80.4))
    assert row.recording_path == str(tmp_path / f"{CALLER}.wav")
    legs = {leg.leg_id: leg for leg in row.legs}
    assert set(legs) == {CALLER, AGENT2, AGENT3}
    c, a2, a3 = legs[CALLER], legs[AGENT2], legs[AGENT3]
    assert (c.role, c.endpoint, c.channel_name) == ("caller", "PJSIP/carrier", "PJSIP/carrier-00000001")
    assert (c.started_at, c.answered_at, c.ended_at, c.hangup_cause) == (at(0.0), at(0.3), at(80.2), 16)
    assert (a3.role, a3.endpoint, a3.started_at, a3.answered_at, a3.ended_at, a3.hangup_cause) == (
        "agent", "PJSIP/agent3", at(20.0), at(23.5), at(80.0), 16)
    assert (a2.role, a2.answered_at, a2.ended_at, a2.hangup_cause) == ("agent", None, at(19.0), 19)
    without_dir = build_call(events(answered_call_lines()), agents=AGENTS)
    assert without_dir is not None and without_dir.recording_path is None


def test_event_order_in_the_log_does_not_matter() -> None:
    lines = answered_call_lines()
    random.Random(7).shuffle(lines)
    assert build_call(events(lines), agents=AGENTS) == build_call(events(answered_call_lines()), agents=AGENTS)


def test_fallback_call_abandoned_while_an_agent_rang(tmp_path: Path) -> None:
    lines = [
        caller("CHAN_START", 0.0),
        fallback_mark("support"),
        caller("ANSWER", 0.3, exten="support", context="cc-fallback-queue", app="Answer"),
        agent("CHAN_START", 4.0, AGENT2, "agent2"),
        caller("HANGUP", 12.0, exten="support", context="cc-fallback-queue", extra=hangup_extra(16)),
        agent("HANGUP", 12.1, AGENT2, "agent2", extra=hangup_extra(16)),
        agent("CHAN_END", 12.1, AGENT2, "agent2"),
        caller("CHAN_END", 12.2, exten="support", context="cc-fallback-queue"),
        caller("LINKEDID_END", 12.3, exten="support", context="cc-fallback-queue"),
    ]
    row = build_call(events(lines), recordings_dir=tmp_path, agents=AGENTS)
    assert row is not None
    assert (row.outcome, row.queue, row.agent, row.answered_at, row.recording_path) == (
        "abandoned", "support", None, None, None)
    assert (row.dnis, row.queued_at, row.ended_at) == ("5000", at(0.2), at(12.3))
    assert {leg.leg_id: leg.role for leg in row.legs} == {CALLER: "caller", AGENT2: "agent"}


def test_fallback_call_to_an_unknown_number_is_invalid_number() -> None:
    lines = [
        caller("CHAN_START", 0.0, exten="4321"),
        fallback_mark("invalid_number", exten="invalid"),
        caller("ANSWER", 0.3, exten="invalid", context="cc-fallback-route", app="Answer"),
        caller("HANGUP", 6.0, exten="invalid", context="cc-fallback-route", extra=hangup_extra(16)),
        caller("CHAN_END", 6.1, exten="invalid", context="cc-fallback-route"),
        caller("LINKEDID_END", 6.2, exten="invalid", context="cc-fallback-route"),
    ]
    row = build_call(events(lines), recordings_dir=Path("/rec"), agents=AGENTS)
    assert row is not None
    assert (row.outcome, row.dnis, row.queue, row.queued_at, row.agent, row.recording_path) == (
        "invalid_number", "4321", None, None, None, None)
    assert (row.caller, row.started_at, row.ended_at) == ("0612345678", at(0.0), at(6.2))
    [leg] = row.legs
    assert (leg.role, leg.answered_at, leg.ended_at, leg.hangup_cause) == ("caller", at(0.3), at(6.0), 16)


def test_call_handled_by_cc_ari_is_not_a_fallback_call() -> None:
    lines = [
        caller("CHAN_START", 0.0),
        caller("USER_DEFINED", 0.1, user="other_event", app="CELGenUserEvent", extra='{"extra": "support"}'),
        caller("ANSWER", 0.2, app="Stasis"),
        caller("HANGUP", 9.0, app="Stasis", extra=hangup_extra(16)),
        caller("CHAN_END", 9.1),
        caller("LINKEDID_END", 9.2),
    ]
    assert build_call(events(lines), agents=AGENTS) is None
    assert build_call([]) is None


def test_call_without_linkedid_end_ends_when_the_caller_hangs_up() -> None:
    lines = [ln for ln in answered_call_lines() if "LINKEDID_END" not in ln]
    row = build_call(events(lines), agents=AGENTS)
    assert row is not None and row.ended_at == at(80.2)


def test_call_cc_ari_left_open_is_finished_from_cel_when_asked() -> None:
    """cc_ari was down when its call ended: the CEL log still says how it ended."""
    lines = [
        caller("CHAN_START", 0.0),
        caller("ANSWER", 0.2, app="Stasis"),
        agent("CHAN_START", 3.0, AGENT3, "agent3", app="Stasis"),
        agent("ANSWER", 4.0, AGENT3, "agent3", app="Stasis"),
        agent("BRIDGE_ENTER", 4.1, AGENT3, "agent3", app="Stasis"),
        caller("HANGUP", 30.0, app="Stasis", extra=hangup_extra(16)),
        agent("HANGUP", 30.1, AGENT3, "agent3", extra=hangup_extra(16)),
        caller("LINKEDID_END", 30.2),
    ]
    assert build_call(events(lines), agents=AGENTS) is None  # not a fallback call ...
    row = build_call(events(lines), Path("/rec"), open_call=True, agents=AGENTS)  # ... but an open one
    assert row is not None
    assert (row.outcome, row.agent, row.queue, row.queued_at, row.recording_path) == (
        "answered", "agent3", None, None, None)
    assert row.ended_at == at(30.2) and row.answered_at == at(4.0)
    assert {leg.role for leg in row.legs} == {"caller", "agent"}
