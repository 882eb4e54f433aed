"""Reconcile calls served by the fallback dialplan (cc_ari down) from Asterisk's CEL log.

Asterisk writes every channel event as one JSON line (cel_custom). A call that went through
the fallback is marked by the CEL user event `cc_fallback` (its extra is the queue, or
`invalid_number`). When the call's LINKEDID_END arrives, its rows are built from the events
(`build_call`, pure) and written idempotently. A cursor (file inode + byte offset) in the
database says how far the log is done; it never moves past a call that is not complete yet,
so a restart re-reads and re-writes (harmlessly) rather than missing anything.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from cc_ari.db.store import CallStore
from cc_ari.telephony.models import Leg

log = structlog.get_logger("cc_ari.reconcile")

CURSOR_SOURCE = "cel"
STALE_GROUP_SECONDS = 6 * 3600  # a call whose end never came (Asterisk crashed) stops pinning the cursor


@dataclass(frozen=True, slots=True)
class CelEvent:
    event: str
    user_event: str
    time: datetime
    cid_num: str
    exten: str
    context: str
    channel: str
    app: str
    uniqueid: str
    linkedid: str
    extra: Mapping[str, Any]

    @classmethod
    def parse(cls, line: str) -> CelEvent | None:
        try:
            raw = json.loads(line)
        except ValueError:
            return None
        if not isinstance(raw, dict):
            return None
        d = {str(k).lower(): v for k, v in raw.items()}
        try:
            t = datetime.fromtimestamp(float(d.get("eventtime", 0)), UTC)
        except (TypeError, ValueError, OverflowError, OSError):
            return None
        extra_raw = d.get("eventextra", d.get("extra", ""))
        extra: Mapping[str, Any] = {}
        if isinstance(extra_raw, dict):
            extra = extra_raw
        elif isinstance(extra_raw, str) and extra_raw.startswith("{"):
            try:
                extra = json.loads(extra_raw)
            except ValueError:
                extra = {"extra": extra_raw}
        elif extra_raw:
            extra = {"extra": extra_raw}
        return cls(
            event=str(d.get("eventenum") or d.get("eventtype") or ""),
            user_event=str(d.get("userdeftype") or d.get("usereventname") or ""),
            time=t,
            cid_num=str(d.get("num") or d.get("cidnum") or ""),
            exten=str(d.get("exten") or ""),
            context=str(d.get("context") or ""),
            channel=str(d.get("channame") or ""),
            app=str(d.get("appname") or ""),
            uniqueid=str(d.get("uniqueid") or ""),
            linkedid=str(d.get("linkedid") or ""),
            extra=extra,
        )


@dataclass(slots=True)
class CallRow:
    call_id: str
    caller: str | None
    dnis: str | None
    queue: str | None
    agent: str | None
    started_at: datetime
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    outcome: str
    recording_path: str | None
    legs: list[Leg] = field(default_factory=list)
    fallback: bool = False  # served by the fallback dialplan (marked cc_fallback)


def _endpoint(channel: str) -> str:
    return channel.rsplit("-", 1)[0] if "-" in channel else channel


def build_call(events: Iterable[CelEvent], recordings_dir: Path | None = None, *,
               open_call: bool = False, agents: Iterable[str] = ()) -> CallRow | None:
    """A call's rows from its CEL events (pure).

    Fallback calls (marked `cc_fallback`) always; other calls only with `open_call=True`: calls
    cc_ari started but could not finish (it was stopped or crashed before they ended). Leg
    roles are decided, not guessed: the call's own channel is the caller, an agent's endpoint
    (one of `agents`, PJSIP/<name>) is an agent, anything else a transfer target.
    """
    agent_endpoints = frozenset(f"PJSIP/{a}" for a in agents)
    evs = sorted(events, key=lambda e: e.time)
    marks = [e for e in evs if e.event == "USER_DEFINED" and e.user_event == "cc_fallback"]
    if not evs or not (marks or open_call):
        return None
    call_id = evs[0].linkedid
    legs: dict[str, Leg] = {}
    for e in evs:
        if not e.uniqueid:
            continue
        leg = legs.get(e.uniqueid)
        if leg is None:
            endpoint = _endpoint(e.channel)
            role = "caller" if e.uniqueid == call_id else ("agent" if endpoint in agent_endpoints else "transfer")
            leg = legs[e.uniqueid] = Leg(e.uniqueid, role, _endpoint(e.channel), e.channel, e.time)
        if e.event == "ANSWER" and leg.answered_at is None:
            leg.answered_at = e.time
        elif e.event == "HANGUP":
            leg.ended_at = e.time
            cause = e.extra.get("hangupcause")
            if isinstance(cause, int | str) and str(cause).isdigit():
                leg.hangup_cause = int(cause)
        elif e.event == "CHAN_END" and leg.ended_at is None:
            leg.ended_at = e.time
    caller_leg = legs.get(call_id)
    if not marks and (caller_leg is None or caller_leg.ended_at is None):
        # A linkedid can end while its call goes on: a channel bridged with an older one (an
        # agent's persistent session) takes that one's linkedid. Only a call whose own channel
        # has ended is finished from the CEL.
        return None
    mark_value = str(marks[0].extra.get("extra", "")) if marks else ""
    invalid = mark_value == "invalid_number"
    bridged_agents = [legs[e.uniqueid] for e in evs
                      if e.event == "BRIDGE_ENTER" and e.uniqueid in legs and legs[e.uniqueid].role == "agent"]
    answering = next((leg for leg in bridged_agents if leg.answered_at), None)
    end = next((e.time for e in reversed(evs) if e.event == "LINKEDID_END"), None)
    if end is None and caller_leg is not None:
        end = caller_leg.ended_at
    outcome = "invalid_number" if invalid else ("answered" if answering else "abandoned")
    recording = None
    if answering is not None and recordings_dir is not None and marks:  # MixMonitor's name
        recording = str(recordings_dir / f"{call_id}.wav")
    first = caller_leg or next(iter(legs.values()))
    return CallRow(
        call_id=call_id,
        caller=(evs[0].cid_num or None),
        dnis=(first_exten(evs, call_id) or None),
        queue=None if invalid else (mark_value or None),
        agent=answering.endpoint.split("/", 1)[-1] if answering else None,
        started_at=first.started_at,
        queued_at=marks[0].time if marks and not invalid else None,
        answered_at=answering.answered_at if answering else None,
        ended_at=end,
        outcome=outcome,
        recording_path=recording,
        legs=list(legs.values()),
        fallback=bool(marks),
    )


def first_exten(evs: list[CelEvent], call_id: str) -> str:
    for e in evs:
        if e.uniqueid == call_id and e.exten and e.exten not in ("s", "invalid") and e.exten[0].isdigit():
            return e.exten
    return ""


class CelReconciler:
    def __init__(self, path: Path, store: CallStore, recordings_dir: Path, *, interval: float = 1.0,
                 agents: Iterable[str] = (), is_live: Callable[[str], bool] = lambda _call_id: False,
                 on_written: Callable[[CallRow], None] | None = None) -> None:
        self._agents = tuple(agents)
        self._on_written = on_written  # told of each call row written from the CEL log (metrics)
        self._is_live = is_live  # a call cc_ari is still finishing itself is left to it
        self._path = path
        self._store = store
        self._recordings_dir = recordings_dir
        self._interval = interval
        self._open: dict[str, list[tuple[int, CelEvent]]] = {}
        self._inode: int | None = None
        self._offset = 0
        self.reconciled = 0

    async def run(self) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except (OSError, ValueError) as exc:
                log.warning("cel_poll_failed", error=repr(exc))
            except Exception as exc:  # database down: try again later, cursor unchanged
                log.warning("cel_poll_failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    async def poll(self) -> int:
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return 0
        if self._inode is None:
            saved = await self._store.get_cel_cursor(CURSOR_SOURCE)
            if saved is not None and saved[0] == st.st_ino and saved[1] <= st.st_size:
                self._inode, self._offset = saved
            else:
                self._inode, self._offset = st.st_ino, 0
        if st.st_ino != self._inode or st.st_size < self._offset:
            log.info("cel_log_rotated")
            self._inode, self._offset, self._open = st.st_ino, 0, {}
        if st.st_size == self._offset:
            return 0
        data = await asyncio.to_thread(self._read_from, self._offset)
        end = data.rfind(b"\n")
        if end < 0:
            return 0
        pos = self._offset
        done = 0
        unmarked: dict[str, list[CelEvent]] = {}
        newest: datetime | None = None
        for raw in data[: end + 1].splitlines(keepends=True):
            line_at = pos
            pos += len(raw)
            ev = CelEvent.parse(raw.decode("utf-8", "replace"))
            if ev is None or not ev.linkedid:
                continue
            newest = ev.time
            self._open.setdefault(ev.linkedid, []).append((line_at, ev))
            if ev.event == "LINKEDID_END":
                group = [e for _, e in self._open.pop(ev.linkedid)]
                row = build_call(group, self._recordings_dir, agents=self._agents)
                if row is not None:
                    done += self._write(row)
                else:
                    unmarked[ev.linkedid] = group
        self._offset = pos  # in memory first: a failed await below never re-reads these lines
        if newest is not None:
            for linkedid, group_lines in list(self._open.items()):
                if (newest - group_lines[-1][1].time).total_seconds() > STALE_GROUP_SECONDS:
                    log.warning("cel_group_never_ended", linkedid=linkedid)
                    del self._open[linkedid]
        # Calls cc_ari began but did not finish (it was down when they ended): finish them now.
        if unmarked:
            open_ids = await self._store.open_call_ids(unmarked)
            for linkedid in open_ids - {i for i in open_ids if self._is_live(i)}:
                done += self._write(build_call(unmarked[linkedid], self._recordings_dir, open_call=True,
                                               agents=self._agents))
        # The cursor never passes the first line of a call that has not ended.
        cursor = min((g[0][0] for g in self._open.values()), default=pos)
        if done:
            await self._store.flushed(timeout=30.0)
        await self._store.set_cel_cursor(CURSOR_SOURCE, self._inode, cursor)
        self.reconciled += done
        return done

    def _read_from(self, offset: int, limit: int = 8 << 20) -> bytes:
        with open(self._path, "rb") as f:
            f.seek(offset)
            return f.read(limit)

    def _write(self, row: CallRow | None) -> bool:
        if row is None:
            return False
        s = self._store
        s.call(row.call_id, mode="fill", direction="inbound", caller=row.caller, dnis=row.dnis, queue=row.queue,
               agent=row.agent, started_at=row.started_at, queued_at=row.queued_at, answered_at=row.answered_at,
               ended_at=row.ended_at, outcome=row.outcome, recording_path=row.recording_path,
               handled_by="fallback")
        if row.fallback:  # whoever wrote the row first (a call cc_ari handed over), the dialplan served it
            s.call(row.call_id, direction="inbound", started_at=row.started_at, handled_by="fallback")
        for leg in row.legs:
            s.leg(leg.leg_id, mode="fill", **leg.as_row(row.call_id))
        if self._on_written is not None:
            try:
                self._on_written(row)
            except Exception:
                log.exception("reconciled_hook_failed")
        log.info("call_reconciled_from_cel", call_id=row.call_id, outcome=row.outcome, queue=row.queue,
                 agent=row.agent)
        return True
