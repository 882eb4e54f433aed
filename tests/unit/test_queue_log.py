"""The queue_log formatter (cc_ari/reporting/queue_log.py, pure) line by line, and the argument
errors of `cc-ari export queue-log` (exit code 2, a message, no database touched)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cc_ari import cli
from cc_ari.reporting.queue_log import AgentEvent, AgentLeg, QueueCall, epoch, export, positions

T0 = datetime(2026, 3, 2, 10, 0, 0, tzinfo=UTC)
E0 = int(T0.timestamp())


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def lines_of(calls: Sequence[QueueCall], events: Sequence[AgentEvent] = (), agent_style: str = "agent") -> list[str]:
    return export(calls, events, since=at(-3600), until=at(3600), agent_style=agent_style)  # type: ignore[arg-type]


def test_epoch_is_floored_whole_seconds() -> None:
    assert epoch(at(0.999)) == E0
    assert epoch(at(-0.001)) == E0 - 1


def test_answered_call_completed_by_the_caller() -> None:
    call = QueueCall("c1", "support", at(0), caller="+15550101", answered_at=at(12.4), ended_at=at(100.2),
                     outcome="answered", agent="agent3", caller_ended_at=at(100.2),
                     legs=(AgentLeg("c1-1", "agent3", at(9.9), at(12.4), at(100.25)),))
    assert lines_of([call]) == [
        f"{E0}|c1|support|NONE|ENTERQUEUE||+15550101|1",
        f"{E0 + 12}|c1|support|Agent/agent3|CONNECT|12|c1-1|3",  # ring 9.9 -> 12.4: epochs 9 -> 12
        f"{E0 + 100}|c1|support|Agent/agent3|COMPLETECALLER|12|88|1",
    ]


def test_agent_hanging_up_first_is_completeagent_and_interface_style() -> None:
    call = QueueCall("c1", "sales", at(0), caller=None, answered_at=at(5), ended_at=at(65), outcome="answered",
                     agent="agent3", caller_ended_at=at(65.3), legs=(AgentLeg("L", "agent3", at(1), at(5), at(65)),))
    assert lines_of([call], agent_style="interface") == [
        f"{E0}|c1|sales|NONE|ENTERQUEUE|||1",
        f"{E0 + 5}|c1|sales|PJSIP/agent3|CONNECT|5|L|4",
        f"{E0 + 65}|c1|sales|PJSIP/agent3|COMPLETEAGENT|5|60|1",
    ]


def test_ring_no_answer_then_answer_by_the_next_agent() -> None:
    call = QueueCall("c1", "support", at(0), answered_at=at(20), ended_at=at(30), outcome="answered",
                     agent="agent2", caller_ended_at=at(30),
                     legs=(AgentLeg("L1", "agent1", at(0.5), None, at(15.5)),
                           AgentLeg("L2", "agent2", at(16), at(20), at(30.1))))
    assert lines_of([call]) == [
        f"{E0}|c1|support|NONE|ENTERQUEUE|||1",
        f"{E0 + 15}|c1|support|Agent/agent1|RINGNOANSWER|15000",
        f"{E0 + 20}|c1|support|Agent/agent2|CONNECT|20|L2|4",
        f"{E0 + 30}|c1|support|Agent/agent2|COMPLETECALLER|20|10|1",
    ]


def test_abandon_while_ringing_is_ringcanceled_then_abandon() -> None:
    call = QueueCall("c1", "support", at(0), ended_at=at(7.25), outcome="abandoned",
                     legs=(AgentLeg("L1", "agent1", at(3), None, at(7.5)),))
    assert lines_of([call]) == [
        f"{E0}|c1|support|NONE|ENTERQUEUE|||1",
        f"{E0 + 7}|c1|support|Agent/agent1|RINGCANCELED|4250",
        f"{E0 + 7}|c1|support|NONE|ABANDON|1|1|7",
    ]


def test_timeout_is_exitwithtimeout_and_positions_are_first_come_first_served() -> None:
    a = QueueCall("a", "q", at(0), answered_at=at(50), ended_at=at(60), outcome="answered", agent="agent1")
    b = QueueCall("b", "q", at(10), ended_at=at(40), outcome="abandoned")  # behind a all along
    c = QueueCall("c", "q", at(20), ended_at=at(620), outcome="no_answer")  # 3rd; 1st when it leaves
    other = QueueCall("x", "other", at(15), ended_at=at(16), outcome="abandoned")  # another queue: no effect
    assert positions([a, b, c, other]) == {"a": (1, 1), "b": (2, 2), "c": (3, 1), "x": (1, 1)}
    out = lines_of([c, b, a, other])
    assert f"{E0 + 40}|b|q|NONE|ABANDON|2|2|30" in out
    assert f"{E0 + 620}|c|q|NONE|EXITWITHTIMEOUT|1|3|600" in out
    assert f"{E0 + 60}|a|q|Agent/agent1|COMPLETECALLER|50|10|1" in out
    assert out == sorted(out, key=lambda line: int(line.split("|")[0]))


def test_call_still_waiting_or_talking_has_only_its_lines_so_far() -> None:
    waiting = QueueCall("w", "q", at(0))
    talking = QueueCall("t", "q", at(1), answered_at=at(3), agent="agent1")
    assert lines_of([waiting, talking]) == [
        f"{E0}|w|q|NONE|ENTERQUEUE|||1",
        f"{E0 + 1}|t|q|NONE|ENTERQUEUE|||2",
        f"{E0 + 3}|t|q|Agent/agent1|CONNECT|2||0",
    ]


def test_agent_login_pause_queue_change_and_logout() -> None:
    ev = [
        AgentEvent("agent7", "ready", at(0), "login", ("support", "sales")),
        AgentEvent("agent7", "ringing", at(10), "offered:queue:support", ("sales", "support")),
        AgentEvent("agent7", "paused", at(25), "no_answer", ("sales", "support")),
        AgentEvent("agent7", "paused", at(30), "lunch", ("sales", "support")),
        AgentEvent("agent7", "ready", at(90), "ready", ("sales", "support")),
        AgentEvent("agent7", "ready", at(100), "login", ("support",)),
        AgentEvent("agent7", "paused", at(110), "break", ("support",)),
        AgentEvent("agent7", "logged_out", at(200), "logout", ()),
    ]
    assert lines_of([], ev) == [
        f"{E0}|NONE|NONE|Agent/agent7|AGENTLOGIN|PJSIP/agent7",
        f"{E0}|NONE|sales|Agent/agent7|ADDMEMBER|",
        f"{E0}|NONE|support|Agent/agent7|ADDMEMBER|",
        f"{E0 + 25}|NONE|NONE|Agent/agent7|PAUSEALL|no_answer",
        f"{E0 + 25}|NONE|sales|Agent/agent7|PAUSE|no_answer",
        f"{E0 + 25}|NONE|support|Agent/agent7|PAUSE|no_answer",
        f"{E0 + 30}|NONE|NONE|Agent/agent7|PAUSEALL|lunch",
        f"{E0 + 30}|NONE|sales|Agent/agent7|PAUSE|lunch",
        f"{E0 + 30}|NONE|support|Agent/agent7|PAUSE|lunch",
        f"{E0 + 90}|NONE|NONE|Agent/agent7|UNPAUSEALL|",
        f"{E0 + 90}|NONE|sales|Agent/agent7|UNPAUSE|",
        f"{E0 + 90}|NONE|support|Agent/agent7|UNPAUSE|",
        f"{E0 + 100}|NONE|sales|Agent/agent7|REMOVEMEMBER|",
        f"{E0 + 110}|NONE|NONE|Agent/agent7|PAUSEALL|break",
        f"{E0 + 110}|NONE|support|Agent/agent7|PAUSE|break",
        f"{E0 + 200}|NONE|support|Agent/agent7|REMOVEMEMBER|",
        f"{E0 + 200}|NONE|NONE|Agent/agent7|AGENTLOGOFF|PJSIP/agent7|200",
    ]


def test_window_keeps_lines_in_since_until_with_state_and_login_time_from_before() -> None:
    ev = [AgentEvent("agent1", "ready", at(-500), "login", ("q",)),
          AgentEvent("agent1", "paused", at(-100), "break", ("q",)),
          AgentEvent("agent1", "logged_out", at(50), "logout", ())]
    call = QueueCall("c", "q", at(-30), answered_at=at(5), ended_at=at(100), outcome="answered", agent="agent2",
                     caller_ended_at=at(100))
    out = export([call], ev, since=at(0), until=at(100))
    assert out == [
        f"{E0 + 5}|c|q|Agent/agent2|CONNECT|35||0",
        f"{E0 + 50}|NONE|q|Agent/agent1|REMOVEMEMBER|",
        f"{E0 + 50}|NONE|NONE|Agent/agent1|AGENTLOGOFF|PJSIP/agent1|550",
    ]  # the ENTERQUEUE before `since` and the COMPLETECALLER at `until` are left out


def test_separators_in_values_never_split_a_line() -> None:
    call = QueueCall("c", "q", at(0), caller="12|34\n5")
    ev = [AgentEvent("agent1", "ready", at(1), "login", ("q",)),
          AgentEvent("agent1", "paused", at(2), "a|b\nc", ("q",))]
    out = lines_of([call], ev)
    assert f"{E0}|c|q|NONE|ENTERQUEUE||12_34 5|1" in out
    assert f"{E0 + 2}|NONE|NONE|Agent/agent1|PAUSEALL|a_b c" in out
    assert all("\n" not in line for line in out)


def test_unknown_agent_style_is_refused() -> None:
    with pytest.raises(ValueError, match="agent style"):
        lines_of([], agent_style="Local")


# --- the command line: argument errors exit 2 before any database access -------------------
@pytest.mark.parametrize(("argv", "message"), [
    (["--since", "yesterday"], "expected an ISO time"),
    (["--since", "2026-13-01"], "expected an ISO time"),
    (["--since", "2026-11-30", "--until", "soon"], "expected an ISO time"),
    (["--since", "2026-11-30", "--tz", "Mars/Olympus"], "unknown time zone"),
    (["--since", "2026-11-30", "--agent-style", "sip"], "invalid choice"),
    ([], "the following arguments are required: --since"),
])
def test_bad_arguments_exit_2(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    with pytest.raises(SystemExit) as exc:
        cli.main(["export", "queue-log", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "env", "message"), [
    (["--since", "2026-11-30T10:00", "--until", "2026-11-30T10:00", "--tz", "UTC"], "postgresql://x@h/db",
     "--until (2026-11-30T10:00:00+00:00) must be after --since"),
    (["--since", "2026-11-30", "--until", "2026-11-29T23:00:00+01:00", "--tz", "Europe/Paris"],
     "postgresql://x@h/db", "must be after --since"),
    (["--since", "2026-11-30"], "", "CC_DATABASE_URL is required"),
    (["--since", "2026-11-30"], "mysql://x@h/db", "CC_DATABASE_URL must be a postgresql:// URL"),
    (["--since", "2026-11-30", "--output", "/nonexistent-dir/q.log"], "postgresql://x@h/db", "does not exist"),
])
def test_inconsistent_arguments_exit_2(argv: list[str], env: str, message: str, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CC_DATABASE_URL", env)
    assert cli.main(["export", "queue-log", *argv]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_unreachable_database_exits_3(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    monkeypatch.setenv("CC_DATABASE_URL", "postgresql://nobody:secret@127.0.0.1:1/none")
    out = tmp_path / "q.log"
    assert cli.main(["export", "queue-log", "--since", "2026-11-30", "--output", str(out)]) == 3
    err = capsys.readouterr().err
    assert "database unreachable" in err and "secret" not in err
    assert not out.exists()


# --- the queue keys the reports read (config/cc_ari.toml, validated by callflow) -------------
def test_queue_report_keys_default_and_validation() -> None:
    from cc_ari.callflow import CallFlowError, parse

    prompts = {"not-in-service": "x", "goodbye": "y"}
    q = parse({"prompts": prompts, "queues": {"s": {}}}).queues["s"]
    assert (q.service_level_seconds, q.short_abandon_seconds) == (20, 5)
    q = parse({"prompts": prompts, "queues": {"s": {"service_level_seconds": 30, "short_abandon_seconds": 0}}}
              ).queues["s"]
    assert (q.service_level_seconds, q.short_abandon_seconds) == (30, 0)
    for key, value, message in [("service_level_seconds", 2.5, "must be a whole number of seconds"),
                                ("service_level_seconds", "20", "must be a whole number of seconds"),
                                ("short_abandon_seconds", True, "must be a whole number of seconds"),
                                ("short_abandon_seconds", -1, "must be 0..86400")]:
        with pytest.raises(CallFlowError, match=f"queues.s.{key} {message}"):
            parse({"prompts": prompts, "queues": {"s": {key: value}}})
