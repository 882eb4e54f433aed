"""The interval KPI views (sql/005_operations.sql, docs/kpi.md) and the queue_log export against
HAND-COMPUTED figures: a scripted morning of calls and agent events is written straight into the
lab database, three days ago, under queue and agent names of this test alone (no foreign key ties
calls or events to configured queues or agents), and removed afterwards.

The script (times of day D, UTC). Queue Q has service_level_seconds 30 / short_abandon_seconds 5
(sync_queue_settings); queue Q2 has no row in cc.queue_settings (the defaults, 20 / 5).

  call  queue  queued    answered  ended     agent  outcome    wait   talk  wrap-up
  c1    Q      10:01:00  10:01:10  10:03:10  A      answered     10    120   15   in SL, agent hangs up
  c2    Q      10:01:05  10:02:45  10:06:45  B      answered    100    240   10   B rang out once first
  c4    Q      10:02:40  -         10:02:43  -      abandoned     3              short abandon, 2nd in line
  c5    Q      10:06:00  -         10:06:40  -      abandoned    40              long abandon
  c3    Q      10:13:00  10:14:20  10:20:00  A      answered     80    340   30   talk spans 10:15
  c6    Q      10:14:50  10:15:05  10:16:05  B      answered     15     60   10   waits across 10:15
  c7    Q      10:16:30  -         10:20:20  -      no_answer   230              max_wait: timed out
  c8    Q2     10:31:00  10:31:18  10:33:18  A      answered     18    120   10   in SL (20)
  c9    Q2     10:35:00  -         10:35:05  -      abandoned     5              not short (5 is not < 5)
  c10   Q2     10:36:00  -         10:36:04  -      abandoned     4              short; A's phone rang

Agents: A logs in 09:50 (Q, Q2), pauses 10:05-10:10 (break), logs out 10:40; B logs in 10:00 (Q),
pauses no_answer 10:02:15-10:02:30 and lunch from 10:16:15, logs out 10:30; C logs in 10:50 and
stays (an open state: it counts up to now()).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio

from cc_ari import cli
from cc_ari.db import reports

pytestmark = pytest.mark.lab

CALLER = "+15550100"


@dataclass(frozen=True)
class Script:
    tag: str
    day: date
    q: str
    q2: str
    a: str
    b: str
    c: str

    def t(self, hhmmss: str) -> datetime:
        """A time of day D (UTC), e.g. "10:02:14.9"."""
        h, m, s = hhmmss.split(":")
        return datetime(self.day.year, self.day.month, self.day.day, tzinfo=UTC) + timedelta(
            hours=int(h), minutes=int(m), seconds=float(s))

    def e(self, hhmmss: str) -> int:
        return int(self.t(hhmmss).timestamp())

    def cid(self, n: int) -> str:
        return f"kpi-{self.tag}-c{n}"


async def insert(db: asyncpg.Connection, s: Script) -> None:
    t = s.t
    # call: (n, queue, queued, answered, ended, agent, outcome)
    calls = [
        (1, s.q, "10:01:00", "10:01:10", "10:03:10", s.a, "answered"),
        (2, s.q, "10:01:05", "10:02:45", "10:06:45", s.b, "answered"),
        (4, s.q, "10:02:40", None, "10:02:43", None, "abandoned"),
        (5, s.q, "10:06:00", None, "10:06:40", None, "abandoned"),
        (3, s.q, "10:13:00", "10:14:20", "10:20:00", s.a, "answered"),
        (6, s.q, "10:14:50", "10:15:05", "10:16:05", s.b, "answered"),
        (7, s.q, "10:16:30", None, "10:20:20", None, "no_answer"),
        (8, s.q2, "10:31:00", "10:31:18", "10:33:18", s.a, "answered"),
        (9, s.q2, "10:35:00", None, "10:35:05", None, "abandoned"),
        (10, s.q2, "10:36:00", None, "10:36:04", None, "abandoned"),
    ]
    await db.executemany(
        "INSERT INTO cc.calls (call_id, direction, caller, dnis, queue, agent, started_at, queued_at, answered_at,"
        " ended_at, outcome) VALUES ($1, 'inbound', $2, '5001', $3, $4, $5, $5, $6, $7, $8)",
        [(s.cid(n), CALLER, queue, agent, t(qd), t(ans) if ans else None, t(end), outcome)
         for n, queue, qd, ans, end, agent, outcome in calls])
    # caller legs: when the caller's side ended (who hung up first)
    caller_end = {1: "10:03:10.3", 2: "10:06:45", 4: "10:02:43", 5: "10:06:40", 3: "10:20:00", 6: "10:16:05.4",
                  7: "10:20:20", 8: "10:33:18", 9: "10:35:05", 10: "10:36:04"}
    legs = [(s.cid(n), s.cid(n), "caller", "PJSIP/pstn", t(qd), t(qd), t(caller_end[n]))
            for n, _, qd, _, _, _, _ in calls]
    # agent legs: (call, leg suffix, agent, started, answered, ended)
    for n, suffix, agent, start, ans, end in [
        (1, "1", s.a, "10:01:00", "10:01:10", "10:03:10"),
        (2, "1", s.b, "10:02:00", None, "10:02:14.9"),
        (2, "2", s.b, "10:02:35", "10:02:45", "10:06:45.1"),
        (3, "1", s.a, "10:14:00", "10:14:20", "10:20:00.2"),
        (6, "1", s.b, "10:14:52", "10:15:05", "10:16:05"),
        (8, "1", s.a, "10:31:10", "10:31:18", "10:33:18.1"),
        (10, "1", s.a, "10:36:00", None, "10:36:04.5"),
    ]:
        legs.append((f"{s.cid(n)}-{suffix}", s.cid(n), "agent", f"PJSIP/{agent}", t(start), t(ans) if ans else None,
                     t(end)))
    await db.executemany(
        "INSERT INTO cc.legs (leg_id, call_id, role, endpoint, started_at, answered_at, ended_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)", legs)
    qa, qb = [s.q, s.q2], [s.q]
    events = [
        (s.a, "ready", "login", qa, None, "09:50:00"),
        (s.a, "ringing", f"offered:queue:{s.q}", qa, 1, "10:01:00"),
        (s.a, "on_call", "answered", qa, 1, "10:01:10"),
        (s.a, "wrapup", "call_ended", qa, 1, "10:03:10"),
        (s.a, "ready", "wrapup_done", qa, None, "10:03:25"),
        (s.a, "paused", "break", qa, None, "10:05:00"),
        (s.a, "ready", "ready", qa, None, "10:10:00"),
        (s.a, "ringing", f"offered:queue:{s.q}", qa, 3, "10:14:00"),
        (s.a, "on_call", "answered", qa, 3, "10:14:20"),
        (s.a, "wrapup", "call_ended", qa, 3, "10:20:00"),
        (s.a, "ready", "wrapup_done", qa, None, "10:20:30"),
        (s.a, "ringing", f"offered:queue:{s.q2}", qa, 8, "10:31:10"),
        (s.a, "on_call", "answered", qa, 8, "10:31:18"),
        (s.a, "wrapup", "call_ended", qa, 8, "10:33:18"),
        (s.a, "ready", "wrapup_done", qa, None, "10:33:28"),
        (s.a, "ringing", f"offered:queue:{s.q2}", qa, 10, "10:36:00"),
        (s.a, "ready", "offer_withdrawn", qa, 10, "10:36:04.5"),
        (s.a, "logged_out", "logout", [], None, "10:40:00"),
        (s.b, "ready", "login", qb, None, "10:00:00"),
        (s.b, "ringing", f"offered:queue:{s.q}", qb, 2, "10:02:00"),
        (s.b, "paused", "no_answer", qb, 2, "10:02:15"),
        (s.b, "ready", "ready", qb, None, "10:02:30"),
        (s.b, "ringing", f"offered:queue:{s.q}", qb, 2, "10:02:35"),
        (s.b, "on_call", "answered", qb, 2, "10:02:45"),
        (s.b, "wrapup", "call_ended", qb, 2, "10:06:45"),
        (s.b, "ready", "wrapup_done", qb, None, "10:06:55"),
        (s.b, "ringing", f"offered:queue:{s.q}", qb, 6, "10:14:52"),
        (s.b, "on_call", "answered", qb, 6, "10:15:05"),
        (s.b, "wrapup", "call_ended", qb, 6, "10:16:05"),
        (s.b, "paused", "lunch", qb, None, "10:16:15"),
        (s.b, "logged_out", "logout", [], None, "10:30:00"),
        (s.c, "ready", "login", qb, None, "10:50:00"),
    ]
    await db.executemany(
        "INSERT INTO cc.agent_events (event_key, agent, state, reason, queues, call_id, at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        [(f"kpi-{s.tag}-{i}", agent, state, reason, queues, s.cid(n) if n else None, t(at))
         for i, (agent, state, reason, queues, n, at) in enumerate(events)])


async def remove(db: asyncpg.Connection, s: Script) -> None:
    await db.execute("DELETE FROM cc.calls WHERE call_id LIKE $1", f"kpi-{s.tag}-%")  # legs cascade
    await db.execute("DELETE FROM cc.agent_events WHERE agent = ANY($1::text[])", [s.a, s.b, s.c])
    await db.execute("DELETE FROM cc.queue_settings WHERE queue = ANY($1::text[])", [s.q, s.q2])


@pytest_asyncio.fixture
async def script(db: asyncpg.Connection) -> AsyncIterator[Script]:
    tag = secrets.token_hex(4)
    now = await db.fetchval("SELECT now()")
    s = Script(tag=tag, day=now.astimezone(UTC).date() - timedelta(days=3), q=f"kpi-{tag}", q2=f"kpi-{tag}-b",
               a=f"kpi{tag}a", b=f"kpi{tag}b", c=f"kpi{tag}c")
    try:
        await reports.sync_queue_settings(db, [(s.q, 25, 7)])
        await reports.sync_queue_settings(db, [(s.q, 30, 5)])  # an update of the row
        await insert(db, s)
        yield s
    finally:
        await remove(db, s)


def plain(row: Any, keys: list[str]) -> dict[str, Any]:
    return {k: float(row[k]) if isinstance(row[k], Decimal) else row[k] for k in keys}


def check(got: dict[str, Any], want: dict[str, Any]) -> None:
    assert set(got) == set(want)
    for key, value in want.items():
        if isinstance(value, float):
            assert got[key] == pytest.approx(value, abs=1e-9), (key, got, want)
        else:
            assert got[key] == value, (key, got, want)


QUEUE_COLUMNS = ["service_level_seconds", "short_abandon_seconds", "offered", "answered", "abandoned",
                 "short_abandoned", "timed_out", "answered_within_sl", "sl_base", "service_level",
                 "wait_seconds_answered", "asa_seconds", "handled", "handle_seconds", "aht_seconds",
                 "longest_wait_seconds"]
AGENT_COLUMNS = ["logged_in_seconds", "ready_seconds", "ringing_seconds", "talk_seconds", "wrapup_seconds",
                 "pause_seconds", "occupancy", "calls"]


def queue_expected(s: Script) -> tuple[dict[tuple[str, datetime], dict[str, Any]],
                                        dict[tuple[str, datetime], dict[str, Any]]]:
    q15 = {
        # 10:00-10:15: c1 c2 c4 c5 c3 c6 (c6 answered at 10:15:05 still counts here: bucket = queued_at)
        (s.q, s.t("10:00:00")): dict(
            service_level_seconds=30, short_abandon_seconds=5, offered=6, answered=4, abandoned=2,
            short_abandoned=1, timed_out=0, answered_within_sl=2, sl_base=5, service_level=2 / 5,
            wait_seconds_answered=10.0 + 100 + 80 + 15, asa_seconds=205 / 4, handled=4,
            handle_seconds=135.0 + 250 + 370 + 70, aht_seconds=825 / 4, longest_wait_seconds=100.0),
        (s.q, s.t("10:15:00")): dict(
            service_level_seconds=30, short_abandon_seconds=5, offered=1, answered=0, abandoned=0,
            short_abandoned=0, timed_out=1, answered_within_sl=0, sl_base=1, service_level=0.0,
            wait_seconds_answered=0.0, asa_seconds=None, handled=0, handle_seconds=0.0, aht_seconds=None,
            longest_wait_seconds=230.0),
        (s.q2, s.t("10:30:00")): dict(
            service_level_seconds=20, short_abandon_seconds=5, offered=3, answered=1, abandoned=2,
            short_abandoned=1, timed_out=0, answered_within_sl=1, sl_base=2, service_level=0.5,
            wait_seconds_answered=18.0, asa_seconds=18.0, handled=1, handle_seconds=130.0, aht_seconds=130.0,
            longest_wait_seconds=18.0),
    }
    q30 = {
        (s.q, s.t("10:00:00")): dict(
            service_level_seconds=30, short_abandon_seconds=5, offered=7, answered=4, abandoned=2,
            short_abandoned=1, timed_out=1, answered_within_sl=2, sl_base=6, service_level=2 / 6,
            wait_seconds_answered=205.0, asa_seconds=205 / 4, handled=4, handle_seconds=825.0,
            aht_seconds=825 / 4, longest_wait_seconds=230.0),
        (s.q2, s.t("10:30:00")): q15[(s.q2, s.t("10:30:00"))],
    }
    return q15, q30


async def test_queue_intervals_15_and_30_minutes(db: asyncpg.Connection, script: Script) -> None:
    s = script
    q15, q30 = queue_expected(s)
    for view, want in (("report.queue_intervals", q15), ("report.queue_intervals_30m", q30)):
        rows = await db.fetch(f"SELECT * FROM {view} WHERE queue = ANY($1::text[]) ORDER BY queue, interval_start",
                              [s.q, s.q2])
        got = {(r["queue"], r["interval_start"]): plain(r, QUEUE_COLUMNS) for r in rows}
        assert sorted(got) == sorted(want), view
        for key, expected in want.items():
            check(got[key], expected)
    # the same through a WHERE on the time (the grid is filtered first): one interval
    rows = await db.fetch("SELECT queue, offered FROM report.queue_intervals WHERE interval_start >= $1"
                          " AND interval_start < $2 AND queue = ANY($3::text[])",
                          s.t("10:15:00"), s.t("10:30:00"), [s.q, s.q2])
    assert [(r["queue"], r["offered"]) for r in rows] == [(s.q, 1)]


async def test_queue_reads_for_the_pages(db: asyncpg.Connection, script: Script) -> None:
    s = script
    q15, q30 = queue_expected(s)
    keys = ["offered", "answered", "abandoned", "short_abandoned", "service_level", "asa_seconds", "aht_seconds",
            "longest_wait_seconds"]
    for minutes, want in ((15, q15), (30, q30)):
        rows = [r for r in await reports.queue_intervals(db, s.day, minutes, "UTC") if r["queue"] in (s.q, s.q2)]
        assert [(r["queue"], r["interval_start"]) for r in rows] == [
            (q, start.timestamp()) for q, start in sorted(want, key=lambda k: (k[1], k[0]))]
        for r in rows:
            assert set(r) == {"queue", "interval_start", *keys}
            check({k: r[k] for k in keys}, {k: want[(r["queue"], datetime.fromtimestamp(r["interval_start"], UTC))][k]
                                            for k in keys})
    # the local day: in UTC+14 the morning of D (UTC) is already the next day
    assert not [r for r in await reports.queue_intervals(db, s.day, 15, "Pacific/Kiritimati") if r["queue"] == s.q]
    assert len([r for r in await reports.queue_intervals(db, s.day + timedelta(days=1), 15, "Pacific/Kiritimati")
                if r["queue"] == s.q]) == 2
    with pytest.raises(ValueError, match="15 or 30"):
        await reports.queue_intervals(db, s.day, 20, "UTC")

    day = await reports.queue_day(db, s.day, "UTC", queues=[s.q, s.q2, f"{s.q}-none"])
    check(day[s.q], dict(offered=7, answered=4, abandoned=2, short_abandoned=1, service_level=2 / 6,
                         asa_seconds=51.25, aht_seconds=206.25, abandon_rate=1 / 6, longest_wait_seconds=230.0))
    check(day[s.q2], dict(offered=3, answered=1, abandoned=2, short_abandoned=1, service_level=0.5,
                          asa_seconds=18.0, aht_seconds=130.0, abandon_rate=0.5, longest_wait_seconds=18.0))
    assert day[f"{s.q}-none"] == dict(offered=0, answered=0, abandoned=0, short_abandoned=0, service_level=None,
                                      asa_seconds=None, aht_seconds=None, abandon_rate=None,
                                      longest_wait_seconds=None)
    today = await reports.queue_today(db, "UTC", queues=[s.q])
    assert today[s.q]["offered"] == 0  # the script is three days old
    assert await db.fetchrow("SELECT service_level_seconds, short_abandon_seconds FROM cc.queue_settings"
                             " WHERE queue = $1", s.q) == (30, 5)


def agent_expected(s: Script) -> tuple[dict[tuple[str, datetime], dict[str, Any]],
                                        dict[tuple[str, datetime], dict[str, Any]]]:
    def row(logged: float, ready: float, ringing: float, talk: float, wrap: float, pause: float,
            calls: int) -> dict[str, Any]:
        assert abs(ready + ringing + talk + wrap + pause - logged) < 1e-9  # the states fill the logged-in time
        busy = logged - pause
        return dict(logged_in_seconds=logged, ready_seconds=ready, ringing_seconds=ringing, talk_seconds=talk,
                    wrapup_seconds=wrap, pause_seconds=pause, occupancy=(talk + wrap) / busy if busy else None,
                    calls=calls)

    a, b = s.a, s.b
    a15 = {
        (a, s.t("09:45:00")): row(600.0, 600.0, 0.0, 0.0, 0.0, 0.0, 0),
        # ready 10:00-01:00, 03:25-05:00, 10:00-14:00; ringing 10 + 20; talk 01:10-03:10 + 14:20-15:00;
        # wrap-up 15; pause 05:00-10:00; c1 and c3 start talking here
        (a, s.t("10:00:00")): row(900.0, 60.0 + 95 + 240, 30.0, 160.0, 15.0, 300.0, 2),
        # talk on c3 until 10:20:00 (its other part), wrap-up 30, then ready
        (a, s.t("10:15:00")): row(900.0, 570.0, 0.0, 300.0, 30.0, 0.0, 0),
        # ready 70 + 152 + 235.5; ringing 8 (c8) + 4.5 (c10, withdrawn); logged out at 10:40
        (a, s.t("10:30:00")): row(600.0, 457.5, 12.5, 120.0, 10.0, 0.0, 1),
        # ready 120 + 5 + 477; ringing 15 (no answer) + 10 + 8 (c6, rings on into 10:15); no_answer pause 15
        (b, s.t("10:00:00")): row(900.0, 602.0, 33.0, 240.0, 10.0, 15.0, 1),
        (b, s.t("10:15:00")): row(900.0, 0.0, 5.0, 60.0, 10.0, 825.0, 1),
    }
    a30 = {
        (a, s.t("09:30:00")): row(600.0, 600.0, 0.0, 0.0, 0.0, 0.0, 0),
        (a, s.t("10:00:00")): row(1800.0, 965.0, 30.0, 460.0, 45.0, 300.0, 2),
        (a, s.t("10:30:00")): a15[(a, s.t("10:30:00"))],
        (b, s.t("10:00:00")): row(1800.0, 602.0, 38.0, 300.0, 20.0, 840.0, 2),
    }
    return a15, a30


async def test_agent_intervals_15_and_30_minutes(db: asyncpg.Connection, script: Script) -> None:
    s = script
    a15, a30 = agent_expected(s)
    for view, want in (("report.agent_intervals", a15), ("report.agent_intervals_30m", a30)):
        rows = await db.fetch(f"SELECT * FROM {view} WHERE agent = ANY($1::text[]) ORDER BY agent, interval_start",
                              [s.a, s.b])
        got = {(r["agent"], r["interval_start"]): plain(r, AGENT_COLUMNS) for r in rows}
        assert sorted(got) == sorted(want), view
        for key, expected in want.items():
            check(got[key], expected)

    # C logged in at 10:50 and never left: its state counts up to now(), every interval since
    rows = await reports.agent_intervals(db, s.day, 15, "UTC", agent=s.c)
    assert rows[0] == dict(agent=s.c, interval_start=s.t("10:45:00").timestamp(), logged_in_seconds=600.0,
                           ready_seconds=600.0, ringing_seconds=0.0, talk_seconds=0.0, wrapup_seconds=0.0,
                           pause_seconds=0.0, occupancy=0.0, calls=0)
    assert [r["interval_start"] for r in rows] == [
        (s.t("10:45:00") + timedelta(minutes=15 * i)).timestamp() for i in range(53)]  # to 23:45
    assert all(r["logged_in_seconds"] == 900.0 == r["ready_seconds"] for r in rows[1:])
    rows30 = await reports.agent_intervals(db, s.day, 30, "UTC", agent=s.c)
    assert [(r["interval_start"], r["logged_in_seconds"]) for r in rows30[:2]] == [
        (s.t("10:30:00").timestamp(), 600.0), (s.t("11:00:00").timestamp(), 1800.0)]
    both = await reports.agent_intervals(db, s.day, 15, "UTC")
    assert {r["agent"] for r in both} >= {s.a, s.b, s.c}
    got_a = [r for r in both if r["agent"] == s.a]
    assert [r["interval_start"] for r in got_a] == sorted(k[1].timestamp() for k in a15 if k[0] == s.a)
    assert got_a[1]["occupancy"] == pytest.approx(175 / 600)


def export_expected(s: Script) -> list[str]:
    e, q, q2, c = s.e, s.q, s.q2, s.cid
    a, b = f"Agent/{s.a}", f"Agent/{s.b}"
    return [
        f"{e('09:50:00')}|NONE|NONE|{a}|AGENTLOGIN|PJSIP/{s.a}",
        f"{e('09:50:00')}|NONE|{q}|{a}|ADDMEMBER|",
        f"{e('09:50:00')}|NONE|{q2}|{a}|ADDMEMBER|",
        f"{e('10:00:00')}|NONE|NONE|{b}|AGENTLOGIN|PJSIP/{s.b}",
        f"{e('10:00:00')}|NONE|{q}|{b}|ADDMEMBER|",
        f"{e('10:01:00')}|{c(1)}|{q}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:01:05')}|{c(2)}|{q}|NONE|ENTERQUEUE||{CALLER}|2",
        f"{e('10:01:10')}|{c(1)}|{q}|{a}|CONNECT|10|{c(1)}-1|10",
        f"{e('10:02:14')}|{c(2)}|{q}|{b}|RINGNOANSWER|14900",
        f"{e('10:02:15')}|NONE|NONE|{b}|PAUSEALL|no_answer",
        f"{e('10:02:15')}|NONE|{q}|{b}|PAUSE|no_answer",
        f"{e('10:02:30')}|NONE|NONE|{b}|UNPAUSEALL|",
        f"{e('10:02:30')}|NONE|{q}|{b}|UNPAUSE|",
        f"{e('10:02:40')}|{c(4)}|{q}|NONE|ENTERQUEUE||{CALLER}|2",
        f"{e('10:02:43')}|{c(4)}|{q}|NONE|ABANDON|2|2|3",
        f"{e('10:02:45')}|{c(2)}|{q}|{b}|CONNECT|100|{c(2)}-2|10",
        f"{e('10:03:10')}|{c(1)}|{q}|{a}|COMPLETEAGENT|10|120|1",
        f"{e('10:05:00')}|NONE|NONE|{a}|PAUSEALL|break",
        f"{e('10:05:00')}|NONE|{q}|{a}|PAUSE|break",
        f"{e('10:05:00')}|NONE|{q2}|{a}|PAUSE|break",
        f"{e('10:06:00')}|{c(5)}|{q}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:06:40')}|{c(5)}|{q}|NONE|ABANDON|1|1|40",
        f"{e('10:06:45')}|{c(2)}|{q}|{b}|COMPLETECALLER|100|240|2",
        f"{e('10:10:00')}|NONE|NONE|{a}|UNPAUSEALL|",
        f"{e('10:10:00')}|NONE|{q}|{a}|UNPAUSE|",
        f"{e('10:10:00')}|NONE|{q2}|{a}|UNPAUSE|",
        f"{e('10:13:00')}|{c(3)}|{q}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:14:20')}|{c(3)}|{q}|{a}|CONNECT|80|{c(3)}-1|20",
        f"{e('10:14:50')}|{c(6)}|{q}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:15:05')}|{c(6)}|{q}|{b}|CONNECT|15|{c(6)}-1|13",
        f"{e('10:16:05')}|{c(6)}|{q}|{b}|COMPLETEAGENT|15|60|1",
        f"{e('10:16:15')}|NONE|NONE|{b}|PAUSEALL|lunch",
        f"{e('10:16:15')}|NONE|{q}|{b}|PAUSE|lunch",
        f"{e('10:16:30')}|{c(7)}|{q}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:20:00')}|{c(3)}|{q}|{a}|COMPLETECALLER|80|340|1",
        f"{e('10:20:20')}|{c(7)}|{q}|NONE|EXITWITHTIMEOUT|1|1|230",
        f"{e('10:30:00')}|NONE|{q}|{b}|REMOVEMEMBER|",
        f"{e('10:30:00')}|NONE|NONE|{b}|AGENTLOGOFF|PJSIP/{s.b}|1800",
        f"{e('10:31:00')}|{c(8)}|{q2}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:31:18')}|{c(8)}|{q2}|{a}|CONNECT|18|{c(8)}-1|8",
        f"{e('10:33:18')}|{c(8)}|{q2}|{a}|COMPLETECALLER|18|120|1",
        f"{e('10:35:00')}|{c(9)}|{q2}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:35:05')}|{c(9)}|{q2}|NONE|ABANDON|1|1|5",
        f"{e('10:36:00')}|{c(10)}|{q2}|NONE|ENTERQUEUE||{CALLER}|1",
        f"{e('10:36:04')}|{c(10)}|{q2}|{a}|RINGCANCELED|4000",
        f"{e('10:36:04')}|{c(10)}|{q2}|NONE|ABANDON|1|1|4",
        f"{e('10:40:00')}|NONE|{q}|{a}|REMOVEMEMBER|",
        f"{e('10:40:00')}|NONE|{q2}|{a}|REMOVEMEMBER|",
        f"{e('10:40:00')}|NONE|NONE|{a}|AGENTLOGOFF|PJSIP/{s.a}|3000",
        f"{e('10:50:00')}|NONE|NONE|Agent/{s.c}|AGENTLOGIN|PJSIP/{s.c}",
        f"{e('10:50:00')}|NONE|{q}|Agent/{s.c}|ADDMEMBER|",
    ]


async def export_lines(lab: dict[str, str], monkeypatch: pytest.MonkeyPatch, tag: str, *args: str) -> list[str]:
    monkeypatch.setenv("CC_DATABASE_URL", lab["CC_DATABASE_URL"])
    code = await asyncio.to_thread(cli.main, ["export", "queue-log", *args])
    assert code == 0
    out = Path(args[args.index("--output") + 1])
    assert out.stat().st_mode & 0o777 == 0o600
    return [line for line in out.read_text().splitlines() if tag in line]


async def test_queue_log_export(lab: dict[str, str], script: Script, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    s = script
    out = str(tmp_path / "queue_log")
    lines = await export_lines(lab, monkeypatch, s.tag, "--since", f"{s.day}T09:00", "--until", f"{s.day}T11:00",
                               "--tz", "UTC", "--output", out)
    assert lines == export_expected(s)

    # a window: only the lines in [since, until); B's logoff knows its login from before; interface style
    lines = await export_lines(lab, monkeypatch, s.tag, "--since", f"{s.day}T11:30:00+01:00",
                               "--until", f"{s.day}T10:36:04Z", "--agent-style", "interface", "--output", out)
    want = [line.replace(f"Agent/{s.a}", f"PJSIP/{s.a}").replace(f"Agent/{s.b}", f"PJSIP/{s.b}")
            for line in export_expected(s) if s.e("10:30:00") <= int(line.split("|")[0]) < s.e("10:36:04")]
    assert lines == want
    assert f"{s.e('10:30:00')}|NONE|NONE|PJSIP/{s.b}|AGENTLOGOFF|PJSIP/{s.b}|1800" in lines
