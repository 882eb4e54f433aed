"""Outbound compliance rules as plain code (no I/O, no clock: `now` is passed in, aware UTC).

A lead may be dialed only while, in every one of its time zones, the local wall time is in the
campaign's window [start, end) (zoneinfo, so DST days are right: a start that does not exist on a
spring-forward day opens at the first instant whose local time is past it, an ambiguous one on a
fall-back day at its first occurrence). After each call (every call is an attempt) the lead is
`done` when answered, held 72 h (`no_redial_after_drop`) after a drop — even past `max_attempts`,
since the person was reached and must not be redialed sooner — retried after the campaign's delay
for busy / no answer / machine / failed (an `abandoned` call, hung up by the person within the
2-second grace, waits as a no answer) until `max_attempts` calls make it `exhausted`. The agent's
disposition then decides: `callback` schedules the lead at the agreed time (dialed even past
`max_attempts`), `dnc` ends it on the campaign's list, `retry` retries it as a no answer, any
other code ends it `done`. The abandon rate (drops / live answers over the last 30 days or 24 h)
is kept per minute by `AbandonLedger`.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cc_ari.campaigns.models import CODE, Settings

OUTCOMES = frozenset({"answered", "no_answer", "busy", "failed", "machine", "dropped", "abandoned"})
_OUTCOMES = OUTCOMES
_DEFAULT_RETRY = Settings().retry
_HORIZON = timedelta(days=8)  # next_window_opening looks this far ahead
_MAX_CALLBACK = timedelta(days=365)
_SAMPLE = timedelta(hours=6)  # zones are assumed to change offset at most once in this long
_HHMM = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_CODE = CODE
_PERIODS = {"30d": 30 * 86400.0, "24h": 86400.0}


@dataclass(frozen=True, slots=True)
class LeadUpdate:
    """A lead's next state: the columns `status`, `next_attempt_at`, and why (a word for logs)."""

    status: str  # 'pending'|'scheduled'|'done'|'dnc'|'exhausted'
    next_attempt_at: datetime | None  # aware UTC when scheduled, else None
    reason: str  # 'answered', 'retry_busy', 'drop_hold', 'exhausted', 'callback', 'dnc', 'retry', 'final'


# -- calling window


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return value.astimezone(UTC)


def _clock(value: str, name: str) -> time:
    match = _HHMM.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'window {name} must be "HH:MM", got {value!r}')
    return time(int(match[1]), int(match[2]))


def _window(start: str, end: str) -> tuple[time, time]:
    first, last = _clock(start, "start"), _clock(end, "end")
    if first >= last:
        raise ValueError("window start must be before its end")
    return first, last


def _zones(zones: Sequence[str]) -> list[ZoneInfo]:
    if isinstance(zones, str):
        raise ValueError("zones must be a sequence of IANA names, not a single string")
    if not zones:
        raise ValueError("a lead needs at least one time zone")
    found: list[ZoneInfo] = []
    for name in dict.fromkeys(zones):
        try:
            found.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
            raise ValueError(f"unknown time zone {name!r}") from exc
    return found


def _open(now: datetime, zones: Sequence[ZoneInfo], start: time, end: time) -> bool:
    return all(start <= now.astimezone(zone).time() < end for zone in zones)


def window_open(now: datetime, zones: Sequence[str], start: str, end: str) -> bool:
    """True when, in every zone (IANA names), the local wall time of `now` is in [start, end)."""
    return _open(_aware(now, "now"), _zones(zones), *_window(start, end))


def _occurrences(zone: ZoneInfo, wall: time, after: datetime, until: datetime) -> Iterator[datetime]:
    """The instants in (after, until] at which `zone`'s wall clock shows exactly `wall` (both
    occurrences on a fall-back day; none on a day when it falls in the spring-forward gap)."""
    day = after.astimezone(zone).date() - timedelta(days=1)
    last = until.astimezone(zone).date() + timedelta(days=1)
    while day <= last:
        local = datetime.combine(day, wall)
        for fold in (0, 1):
            instant = local.replace(tzinfo=zone, fold=fold).astimezone(UTC)
            if after < instant <= until and instant.astimezone(zone).replace(tzinfo=None) == local:
                yield instant
        day += timedelta(days=1)


def _offset(zone: ZoneInfo, seconds: int) -> timedelta | None:
    return datetime.fromtimestamp(seconds, zone).utcoffset()


def _transitions(zone: ZoneInfo, after: datetime, until: datetime) -> Iterator[datetime]:
    """The instants in (after, until] at which `zone`'s UTC offset changes (the first second of
    the new offset), found by sampling every 6 hours and bisecting to the second."""
    lo = math.floor(after.timestamp())
    end = math.ceil(until.timestamp())
    step = int(_SAMPLE.total_seconds())
    while lo < end:
        hi = min(lo + step, end)
        before = _offset(zone, lo)
        if _offset(zone, hi) != before:
            a, b = lo, hi
            while b - a > 1:
                mid = (a + b) // 2
                a, b = (mid, b) if _offset(zone, mid) == before else (a, mid)
            instant = datetime.fromtimestamp(b, UTC)
            if after < instant <= until:
                yield instant
        lo = hi


def next_window_opening(now: datetime, zones: Sequence[str], start: str, end: str) -> datetime | None:
    """`now` if the window is open; else the earliest instant (UTC) within 8 days at which it is
    open in every zone; None if there is none (zones whose windows never overlap).

    The window can only open where some zone's wall clock reaches `start` or jumps (a UTC offset
    change: over a spring-forward gap, or back under `end` on a fall-back day), so those instants
    are the only candidates, checked in order.
    """
    now = _aware(now, "now")
    tzs = _zones(zones)
    first, last = _window(start, end)
    if _open(now, tzs, first, last):
        return now
    until = now + _HORIZON
    candidates: set[datetime] = set()
    for zone in tzs:
        candidates.update(_occurrences(zone, first, now, until))
        candidates.update(_transitions(zone, now, until))
    return next((t for t in sorted(candidates) if _open(t, tzs, first, last)), None)


# -- lead state after a call and after the agent's disposition


def _retry(key: str, reason: str, *, attempts: int, settings: Settings, now: datetime) -> LeadUpdate:
    if attempts >= settings.max_attempts:
        return LeadUpdate("exhausted", None, "exhausted")
    seconds = settings.retry.get(key, _DEFAULT_RETRY[key])
    return LeadUpdate("scheduled", now + timedelta(seconds=seconds), reason)


def after_outcome(outcome: str, *, attempts: int, settings: Settings, now: datetime,
                  callback: bool = False) -> LeadUpdate:
    """The lead's next state after a call; `attempts` counts the calls made, this one included.

    `dropped` holds the lead `no_redial_after_drop` hours whatever its attempts (the person was
    reached: never `exhausted` by a drop); `abandoned` waits as a `no_answer` (reason
    'retry_abandoned'). A `callback` attempt follows the same rules: past `max_attempts` a failed
    callback makes the lead `exhausted` (the flag is taken so callers need not branch).
    """
    if outcome not in _OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if attempts < 1:
        raise ValueError("attempts counts this call: at least 1")
    now = _aware(now, "now")
    if outcome == "answered":
        return LeadUpdate("done", None, "answered")
    if outcome == "dropped":
        return LeadUpdate("scheduled", now + timedelta(hours=settings.no_redial_after_drop), "drop_hold")
    key = "no_answer" if outcome == "abandoned" else outcome
    return _retry(key, f"retry_{outcome}", attempts=attempts, settings=settings, now=now)


def validate_disposition_code(code: object) -> str:
    """The code when it is 1-32 characters of a-z, 0-9, '_' or '-'; ValueError otherwise."""
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        raise ValueError("code must be 1-32 characters of a-z, 0-9, _ or -")
    return code


def after_disposition(code: str, *, attempts: int, settings: Settings, now: datetime,
                      callback_at: datetime | None = None) -> LeadUpdate:
    """The lead's next state after the agent's disposition of its last call.

    `callback` needs `callback_at` (aware, after `now`, at most 365 days ahead) and is dialed even
    past `max_attempts`; `callback_at` with any other code is an error. `dnc` ends the lead (the
    caller lists the number), `retry` retries it as a no answer, any other valid code ends it.
    """
    validate_disposition_code(code)
    if attempts < 0:
        raise ValueError("attempts must not be negative")
    now = _aware(now, "now")
    if code != "callback":
        if callback_at is not None:
            raise ValueError("callback_at is only for the callback code")
        if code == "dnc":
            return LeadUpdate("dnc", None, "dnc")
        if code == "retry":
            return _retry("no_answer", "retry", attempts=attempts, settings=settings, now=now)
        return LeadUpdate("done", None, "final")
    if callback_at is None:
        raise ValueError("callback needs callback_at")
    at = _aware(callback_at, "callback_at")
    if at <= now:
        raise ValueError("callback_at must be in the future")
    if at > now + _MAX_CALLBACK:
        raise ValueError("callback_at must be within 365 days")
    return LeadUpdate("scheduled", at, "callback")


# -- abandon rate


def period_seconds(abandon_period: str) -> float:
    """The abandon period's length in seconds: '30d' or '24h'."""
    try:
        return _PERIODS[abandon_period]
    except (KeyError, TypeError):
        raise ValueError('abandon_period must be "30d" or "24h"') from None


class AbandonLedger:
    """Rolling count of live answers and drops over the campaign's abandon period (compliance:
    drops / live answers over the last 30 days, or 24 h). Bucketed per minute so 30 days cost at
    most 43,200 buckets; pure: times are float seconds (epoch) passed in.

    Convention: an event lies in the bucket [k * bucket, (k + 1) * bucket) holding it, and a bucket
    counts at `now` when its start is in (now - period, now]. So an event exactly a period old has
    dropped out, and so has (up to one bucket early) an event in the oldest, partly expired bucket:
    the counts never include anything older than the period. Times are expected to move forward:
    buckets expired at the latest time seen are forgotten, so asking about an earlier time may miss
    them.
    """

    def __init__(self, period: float, *, bucket: float = 60.0) -> None:
        if not period > 0 or not bucket > 0:
            raise ValueError("period and bucket must be positive")
        self._period = float(period)
        self._bucket = float(bucket)
        self._clear()

    @property
    def period(self) -> float:
        return self._period

    def _clear(self) -> None:
        self._counts: dict[int, list[int]] = {}  # bucket index -> [lives, drops]
        self._keys: list[int] = []  # bucket indexes, ascending
        self._lives = 0
        self._drops = 0
        self._latest = -math.inf

    def _start(self, key: int) -> float:
        return key * self._bucket

    def _expire(self, t: float) -> None:
        """Forget the buckets expired at `t` (or at the latest time seen, if later)."""
        self._latest = max(self._latest, t)
        horizon = self._latest - self._period
        gone = 0
        while gone < len(self._keys) and self._start(self._keys[gone]) <= horizon:
            lives, drops = self._counts.pop(self._keys[gone])
            self._lives -= lives
            self._drops -= drops
            gone += 1
        del self._keys[:gone]

    def _put(self, key: int, lives: int, drops: int) -> None:
        counts = self._counts.get(key)
        if counts is None:
            counts = self._counts[key] = [0, 0]
            bisect.insort(self._keys, key)
        counts[0] += lives
        counts[1] += drops
        self._lives += lives
        self._drops += drops

    def add(self, t: float, *, live: bool, dropped: bool) -> None:
        """One call at `t`: answered by a person (`live`), and dropped (which makes it live too)."""
        self._expire(t)
        key = math.floor(t / self._bucket)
        if (live or dropped) and self._start(key) > self._latest - self._period:
            self._put(key, 1, int(dropped))

    def load(self, rows: Iterable[tuple[float, int, int]]) -> None:
        """Replace the content with (bucket start epoch, lives, drops) rows, e.g. from the database."""
        self._clear()
        for start, lives, drops in rows:
            if lives < 0 or drops < 0:
                raise ValueError("lives and drops must not be negative")
            if lives or drops:
                self._put(math.floor(start / self._bucket), int(lives), int(drops))

    def counts(self, now: float) -> tuple[int, int]:
        """(live answers, drops) in the buckets starting in (now - period, now]."""
        self._expire(now)
        lives, drops = self._lives, self._drops
        for key in reversed(self._keys):  # buckets after `now` (a clock step back): not yet
            if self._start(key) <= now:
                break
            lives -= self._counts[key][0]
            drops -= self._counts[key][1]
        return lives, drops

    def span(self, now: float) -> float:
        """Seconds from the start of the oldest bucket still in the period to `now` (0 if none)."""
        self._expire(now)
        starts = [self._start(k) for k in self._keys if self._start(k) <= now]
        return max(0.0, now - starts[0]) if starts else 0.0

    def rate(self, now: float) -> float:
        """Drops / live answers over the period; 0.0 without live answers."""
        lives, drops = self.counts(now)
        return drops / lives if lives else 0.0

    def drops_allowed(self, now: float, target: float) -> int:
        """How many more drops keep the rate at or under `target` if no more live answers came."""
        lives, drops = self.counts(now)
        return max(0, math.floor(target * lives + 1e-9) - drops)
