"""Compliance rules: calling windows across zones and DST, lead states, the abandon ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cc_ari.campaigns.models import Settings
from cc_ari.dialer.compliance import (
    AbandonLedger,
    LeadUpdate,
    after_disposition,
    after_outcome,
    next_window_opening,
    period_seconds,
    validate_disposition_code,
    window_open,
)

NY, LA, LONDON = "America/New_York", "America/Los_Angeles", "Europe/London"
KOLKATA, LORD_HOWE = "Asia/Kolkata", "Australia/Lord_Howe"
MINUTE = timedelta(minutes=1)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def first_open_minute(now: datetime, zones: list[str], start: str, end: str, *, limit: timedelta) -> datetime | None:
    """Brute force: the first whole minute from `now` (rounded up) at which the window is open."""
    t = now.replace(second=0, microsecond=0)
    if t < now:
        t += MINUTE
    while t <= now + limit:
        if window_open(t, zones, start, end):
            return t
        t += MINUTE
    return None


# -- window_open


@pytest.mark.parametrize(("now", "zone", "expected"), [
    (utc(2026, 1, 15, 12, 59), NY, False),  # 07:59 EST
    (utc(2026, 1, 15, 13, 0), NY, True),  # 08:00 EST
    (utc(2026, 1, 16, 1, 59), NY, True),  # 20:59 EST
    (utc(2026, 1, 16, 2, 0), NY, False),  # 21:00 EST: the end is excluded
    (utc(2026, 7, 15, 12, 0), NY, True),  # 08:00 EDT
    (utc(2026, 7, 15, 11, 59), NY, False),
    (utc(2026, 1, 15, 16, 0), LA, True),  # 08:00 PST
    (utc(2026, 1, 15, 15, 59, 59), LA, False),
    (utc(2026, 7, 15, 15, 0), LA, True),  # 08:00 PDT
    (utc(2026, 1, 15, 8, 0), LONDON, True),  # 08:00 GMT
    (utc(2026, 7, 15, 7, 0), LONDON, True),  # 08:00 BST
    (utc(2026, 7, 15, 6, 59), LONDON, False),
    (utc(2026, 7, 15, 20, 0), LONDON, False),  # 21:00 BST
    (utc(2026, 1, 15, 2, 30), KOLKATA, True),  # 08:00 IST (+05:30)
    (utc(2026, 1, 15, 2, 29), KOLKATA, False),
    (utc(2026, 1, 15, 15, 29), KOLKATA, True),  # 20:59 IST
    (utc(2026, 1, 15, 15, 30), KOLKATA, False),
    (utc(2026, 7, 14, 21, 30), LORD_HOWE, True),  # 08:00 LHST (+10:30)
    (utc(2026, 7, 14, 21, 29), LORD_HOWE, False),
    (utc(2026, 1, 14, 21, 0), LORD_HOWE, True),  # 08:00 LHDT (+11)
    (utc(2026, 1, 14, 20, 59), LORD_HOWE, False),
])
def test_window_open_in_one_zone(now: datetime, zone: str, expected: bool) -> None:
    assert window_open(now, [zone], "08:00", "21:00") is expected


def test_window_open_takes_any_aware_now() -> None:
    paris = utc(2026, 1, 15, 14, 0).astimezone(ZoneInfo("Europe/Paris"))
    assert window_open(paris, [NY], "08:00", "21:00") == window_open(utc(2026, 1, 15, 14, 0), [NY], "08:00", "21:00")


def test_window_open_needs_every_zone() -> None:
    zones = [NY, LA]  # winter: open 16:00 UTC (08:00 PST) to 02:00 UTC (21:00 EST)
    assert not window_open(utc(2026, 1, 15, 15, 59), zones, "08:00", "21:00")
    assert window_open(utc(2026, 1, 15, 16, 0), zones, "08:00", "21:00")
    assert window_open(utc(2026, 1, 16, 1, 59), zones, "08:00", "21:00")
    assert not window_open(utc(2026, 1, 16, 2, 0), zones, "08:00", "21:00")
    assert window_open(utc(2026, 1, 15, 16, 0), [NY, LA, NY], "08:00", "21:00")  # duplicates are harmless


@pytest.mark.parametrize(("zones", "start", "end", "message"), [
    ([], "08:00", "21:00", "at least one"),
    (["Mars/Olympus_Mons"], "08:00", "21:00", "unknown time zone"),
    (["America"], "08:00", "21:00", "unknown time zone"),
    (["../etc/passwd"], "08:00", "21:00", "unknown time zone"),
    ([NY, ""], "08:00", "21:00", "unknown time zone"),
    (NY, "08:00", "21:00", "not a single string"),
    ([NY], "8:00", "21:00", "HH:MM"),
    ([NY], "08:00", "24:00", "HH:MM"),
    ([NY], "08:60", "21:00", "HH:MM"),
    ([NY], "21:00", "08:00", "before its end"),
    ([NY], "08:00", "08:00", "before its end"),
])
def test_window_rejects_bad_input(zones: list[str], start: str, end: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        window_open(utc(2026, 1, 15, 12), zones, start, end)
    with pytest.raises(ValueError, match=message):
        next_window_opening(utc(2026, 1, 15, 12), zones, start, end)


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        window_open(datetime(2026, 1, 15, 12), [NY], "08:00", "21:00")
    with pytest.raises(ValueError, match="aware"):
        next_window_opening(datetime(2026, 1, 15, 12), [NY], "08:00", "21:00")


# -- DST days


def test_spring_forward_new_york() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT at 07:00 UTC; 02:30 does not exist that day.
    assert not window_open(utc(2026, 3, 8, 6, 59, 59), [NY], "02:30", "05:00")  # 01:59:59 EST
    assert window_open(utc(2026, 3, 8, 7, 0), [NY], "02:30", "05:00")  # 03:00 EDT
    assert next_window_opening(utc(2026, 3, 8, 5, 0), [NY], "02:30", "05:00") == utc(2026, 3, 8, 7, 0)
    # A window wholly inside the gap does not open that day: the next day, 02:00 EDT.
    assert next_window_opening(utc(2026, 3, 8, 5, 0), [NY], "02:00", "02:45") == utc(2026, 3, 9, 6, 0)
    # The usual window: 08:00 EDT.
    assert next_window_opening(utc(2026, 3, 8, 5, 0), [NY], "08:00", "21:00") == utc(2026, 3, 8, 12, 0)


def test_fall_back_new_york() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST at 06:00 UTC; 01:00-02:00 happens twice.
    assert next_window_opening(utc(2026, 11, 1, 4, 0), [NY], "01:30", "05:00") == utc(2026, 11, 1, 5, 30)
    # A window ending in the repeated hour closes at its first 01:30, opens again when the clock
    # goes back to 01:00 and closes at the second 01:30.
    assert next_window_opening(utc(2026, 11, 1, 4, 0), [NY], "00:30", "01:30") == utc(2026, 11, 1, 4, 30)
    assert not window_open(utc(2026, 11, 1, 5, 45), [NY], "00:30", "01:30")
    assert next_window_opening(utc(2026, 11, 1, 5, 45), [NY], "00:30", "01:30") == utc(2026, 11, 1, 6, 0)
    assert not window_open(utc(2026, 11, 1, 6, 30), [NY], "00:30", "01:30")
    # A window starting inside the repeated hour, closed by the jump back: its second occurrence.
    assert not window_open(utc(2026, 11, 1, 6, 10), [NY], "01:30", "05:00")  # 01:10 EST
    assert next_window_opening(utc(2026, 11, 1, 6, 10), [NY], "01:30", "05:00") == utc(2026, 11, 1, 6, 30)
    # The usual window: 08:00 EST.
    assert next_window_opening(utc(2026, 11, 1, 4, 0), [NY], "08:00", "21:00") == utc(2026, 11, 1, 13, 0)


def test_spring_forward_london() -> None:
    # 2026-03-29: 01:00 GMT becomes 02:00 BST at 01:00 UTC.
    assert next_window_opening(utc(2026, 3, 29, 0, 0), [LONDON], "01:30", "04:00") == utc(2026, 3, 29, 1, 0)
    assert next_window_opening(utc(2026, 3, 28, 22, 0), [LONDON], "08:00", "21:00") == utc(2026, 3, 29, 7, 0)


def test_fall_back_london() -> None:
    # 2026-10-25: 02:00 BST becomes 01:00 GMT at 01:00 UTC.
    assert next_window_opening(utc(2026, 10, 24, 23, 0), [LONDON], "01:30", "04:00") == utc(2026, 10, 25, 0, 30)
    assert next_window_opening(utc(2026, 10, 24, 22, 0), [LONDON], "08:00", "21:00") == utc(2026, 10, 25, 8, 0)


def test_half_hour_dst_lord_howe() -> None:
    # 2026-10-04: 02:00 LHST (+10:30) becomes 02:30 LHDT (+11) at 15:30 UTC the day before.
    assert next_window_opening(utc(2026, 10, 3, 12, 0), [LORD_HOWE], "02:15", "03:00") == utc(2026, 10, 3, 15, 30)
    assert next_window_opening(utc(2026, 10, 3, 12, 0), [LORD_HOWE], "08:00", "21:00") == utc(2026, 10, 3, 21, 0)


# -- next_window_opening


def test_open_now_returns_now() -> None:
    now = utc(2026, 1, 15, 15, 0, 12, 345678)
    assert next_window_opening(now, [NY], "08:00", "21:00") == now


def test_next_opening_across_midnight() -> None:
    # 22:00 EST on the 14th: tomorrow 08:00 EST.
    assert next_window_opening(utc(2026, 1, 15, 3, 0), [NY], "08:00", "21:00") == utc(2026, 1, 15, 13, 0)
    # 06:00 IST: today 08:00 IST (02:30 UTC).
    assert next_window_opening(utc(2026, 1, 15, 0, 30), [KOLKATA], "08:00", "21:00") == utc(2026, 1, 15, 2, 30)


def test_next_opening_of_several_zones_is_the_intersection() -> None:
    # 09:00 EST; LA opens at 08:00 PST = 16:00 UTC.
    assert next_window_opening(utc(2026, 1, 15, 14, 0), [NY, LA], "08:00", "21:00") == utc(2026, 1, 15, 16, 0)
    # 21:30 EST: NY is closed until tomorrow 08:00 EST, LA is then still closed until 16:00 UTC.
    assert next_window_opening(utc(2026, 1, 16, 2, 30), [NY, LA], "08:00", "21:00") == utc(2026, 1, 16, 16, 0)
    # London and Kolkata overlap from 08:00 GMT to 15:30 UTC (21:00 IST).
    assert next_window_opening(utc(2026, 1, 15, 16, 0), [LONDON, KOLKATA], "08:00", "21:00") == utc(2026, 1, 16, 8, 0)


def test_next_opening_across_the_us_change_for_two_zones() -> None:
    # NY changes on 2026-03-08, London only on 03-29: the overlap moves by an hour.
    zones = [NY, LONDON]
    assert next_window_opening(utc(2026, 3, 7, 18, 0), zones, "08:00", "18:00") == utc(2026, 3, 8, 12, 0)
    assert next_window_opening(utc(2026, 3, 6, 18, 0), zones, "08:00", "18:00") == utc(2026, 3, 7, 13, 0)


@pytest.mark.parametrize(("now", "zones", "start", "end"), [
    (utc(2026, 6, 15, 12), ["Pacific/Kiritimati", "Pacific/Pago_Pago"], "09:00", "10:00"),  # 25 h apart
    (utc(2026, 6, 15, 12), ["Asia/Tokyo", NY], "09:00", "17:00"),
    (utc(2026, 6, 15, 12), ["Pacific/Kiritimati", "America/Adak"], "09:00", "10:00"),  # 23 h apart in summer
])
def test_never_overlapping_windows(now: datetime, zones: list[str], start: str, end: str) -> None:
    assert next_window_opening(now, zones, start, end) is None


def test_kiritimati_and_adak_overlap_in_winter() -> None:
    # Adak on standard time is 24 h behind Kiritimati: the same wall clock, a day apart.
    zones = ["Pacific/Kiritimati", "America/Adak"]
    assert next_window_opening(utc(2026, 1, 15, 12), zones, "09:00", "10:00") == utc(2026, 1, 15, 19, 0)


def test_opening_further_than_eight_days_is_none() -> None:
    # Adak goes back to standard time on 2026-11-01: from 10-20 that is 12 days away.
    zones = ["Pacific/Kiritimati", "America/Adak"]
    assert next_window_opening(utc(2026, 10, 20, 12), zones, "09:00", "10:00") is None
    assert next_window_opening(utc(2026, 10, 28, 12), zones, "09:00", "10:00") == utc(2026, 11, 1, 19, 0)


@pytest.mark.parametrize(("now", "zones", "start", "end"), [
    (utc(2026, 3, 7, 20, 7), [NY], "02:30", "03:30"),
    (utc(2026, 10, 31, 23, 0), [NY], "00:30", "01:30"),
    (utc(2026, 11, 1, 5, 31), [NY, LA], "01:00", "05:00"),
    (utc(2026, 3, 28, 20, 0), [LONDON, NY], "01:00", "07:00"),
    (utc(2026, 10, 24, 20, 0), [LONDON], "01:15", "01:45"),
    (utc(2026, 10, 3, 10, 0), [LORD_HOWE, KOLKATA], "02:00", "23:00"),
    (utc(2026, 4, 4, 10, 0), [LORD_HOWE], "01:40", "01:50"),
])
def test_next_opening_matches_a_minute_scan(now: datetime, zones: list[str], start: str, end: str) -> None:
    expected = first_open_minute(now, zones, start, end, limit=timedelta(days=2))
    assert expected is not None
    assert next_window_opening(now, zones, start, end) == expected


ZONES = [NY, LA, LONDON, KOLKATA, LORD_HOWE, "Europe/Paris", "Asia/Tokyo", "America/Adak", "Pacific/Kiritimati",
         "America/Sao_Paulo", "Australia/Sydney", "Asia/Kathmandu"]


@st.composite
def windows(draw: st.DrawFn) -> tuple[str, str]:
    first = draw(st.integers(0, 1438))
    last = draw(st.integers(first + 1, 1439))
    return f"{first // 60:02}:{first % 60:02}", f"{last // 60:02}:{last % 60:02}"


@settings(max_examples=60, deadline=None)
@given(
    now=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=3, unique=True),
    window=windows(),
)
def test_next_opening_is_open_and_first(now: datetime, zones: list[str], window: tuple[str, str]) -> None:
    start, end = window
    found = next_window_opening(now, zones, start, end)
    if found is None:
        t = now
        while t <= now + timedelta(days=8):
            assert not window_open(t, zones, start, end)
            t += 10 * MINUTE
        return
    assert now <= found <= now + timedelta(days=8)
    assert window_open(found, zones, start, end)
    if found > now:
        assert found - timedelta(seconds=1) < now or not window_open(found - timedelta(seconds=1), zones, start, end)
        assert first_open_minute(now, zones, start, end, limit=found - now) in (found, None)


# -- after a call


def test_answered_is_done() -> None:
    now = utc(2026, 1, 15, 15)
    assert after_outcome("answered", attempts=1, settings=Settings(), now=now) == LeadUpdate("done", None, "answered")
    assert after_outcome("answered", attempts=9, settings=Settings(), now=now).status == "done"


@pytest.mark.parametrize(("outcome", "delay"), [
    ("busy", 600), ("no_answer", 3600), ("machine", 7200), ("failed", 900), ("abandoned", 3600)])
def test_retries_before_max_attempts(outcome: str, delay: int) -> None:
    now = utc(2026, 1, 15, 15)
    update = after_outcome(outcome, attempts=2, settings=Settings(), now=now)
    assert update == LeadUpdate("scheduled", now + timedelta(seconds=delay), f"retry_{outcome}")


@pytest.mark.parametrize("outcome", ["busy", "no_answer", "machine", "failed", "abandoned"])
def test_exhausted_at_max_attempts(outcome: str) -> None:
    now = utc(2026, 1, 15, 15)
    exhausted = LeadUpdate("exhausted", None, "exhausted")
    assert after_outcome(outcome, attempts=3, settings=Settings(), now=now) == exhausted
    assert after_outcome(outcome, attempts=4, settings=Settings(), now=now).status == "exhausted"


def test_retry_delays_come_from_the_campaign() -> None:
    now = utc(2026, 1, 15, 15)
    custom = Settings(max_attempts=5, retry={"busy": 120, "no_answer": 300, "machine": 60, "failed": 86400})
    assert after_outcome("busy", attempts=4, settings=custom, now=now).next_attempt_at == now + timedelta(seconds=120)
    assert after_outcome("abandoned", attempts=1, settings=custom, now=now).next_attempt_at == now + 5 * MINUTE
    assert after_outcome("failed", attempts=1, settings=custom, now=now).next_attempt_at == now + timedelta(days=1)
    assert after_outcome("busy", attempts=5, settings=custom, now=now).status == "exhausted"
    partial = Settings(retry={"busy": 120})  # stored settings missing a key: the default delay
    assert after_outcome("machine", attempts=1, settings=partial, now=now).next_attempt_at == now + timedelta(hours=2)


def test_one_attempt_campaign_is_exhausted_at_once() -> None:
    now = utc(2026, 1, 15, 15)
    assert after_outcome("busy", attempts=1, settings=Settings(max_attempts=1), now=now).status == "exhausted"


@pytest.mark.parametrize("attempts", [1, 3, 10])
def test_drop_holds_the_lead_even_past_max_attempts(attempts: int) -> None:
    now = utc(2026, 1, 15, 15)
    update = after_outcome("dropped", attempts=attempts, settings=Settings(), now=now)
    assert update == LeadUpdate("scheduled", now + timedelta(hours=72), "drop_hold")
    longer = after_outcome("dropped", attempts=attempts, settings=Settings(no_redial_after_drop=96), now=now)
    assert longer.next_attempt_at == now + timedelta(hours=96)


def test_callback_attempt_follows_the_same_rules() -> None:
    now = utc(2026, 1, 15, 15)
    assert after_outcome("no_answer", attempts=5, settings=Settings(), now=now, callback=True).status == "exhausted"
    assert after_outcome("busy", attempts=2, settings=Settings(), now=now, callback=True).reason == "retry_busy"
    assert after_outcome("answered", attempts=5, settings=Settings(), now=now, callback=True).status == "done"
    assert after_outcome("dropped", attempts=5, settings=Settings(), now=now, callback=True).reason == "drop_hold"


def test_outcome_times_are_utc() -> None:
    paris = datetime(2026, 1, 15, 16, 0, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    update = after_outcome("busy", attempts=1, settings=Settings(), now=paris)
    assert update.next_attempt_at == utc(2026, 1, 15, 16, 10)
    assert update.next_attempt_at is not None and update.next_attempt_at.tzinfo is UTC


def test_bad_outcomes() -> None:
    now = utc(2026, 1, 15, 15)
    with pytest.raises(ValueError, match="unknown outcome"):
        after_outcome("hung_up", attempts=1, settings=Settings(), now=now)
    with pytest.raises(ValueError, match="at least 1"):
        after_outcome("busy", attempts=0, settings=Settings(), now=now)
    with pytest.raises(ValueError, match="aware"):
        after_outcome("busy", attempts=1, settings=Settings(), now=datetime(2026, 1, 15, 15))


# -- after the agent's disposition


def test_callback_is_scheduled_even_past_max_attempts() -> None:
    now = utc(2026, 1, 15, 15)
    at = utc(2026, 1, 16, 10, 30)
    for attempts in (1, 3, 7):
        update = after_disposition("callback", attempts=attempts, settings=Settings(), now=now, callback_at=at)
        assert update == LeadUpdate("scheduled", at, "callback")
    later = now + timedelta(days=365)
    assert after_disposition("callback", attempts=1, settings=Settings(), now=now, callback_at=later).next_attempt_at \
        == later


def test_callback_time_is_returned_in_utc() -> None:
    now = utc(2026, 1, 15, 15)
    at = datetime(2026, 1, 16, 9, 0, tzinfo=ZoneInfo(NY))
    update = after_disposition("callback", attempts=1, settings=Settings(), now=now, callback_at=at)
    assert update.next_attempt_at == utc(2026, 1, 16, 14, 0)
    assert update.next_attempt_at is not None and update.next_attempt_at.tzinfo is UTC


@pytest.mark.parametrize(("callback_at", "message"), [
    (None, "needs callback_at"),
    (datetime(2026, 1, 16, 10), "aware"),
    (utc(2026, 1, 15, 15), "future"),
    (utc(2026, 1, 15, 14, 59), "future"),
    (utc(2026, 1, 15, 15) + timedelta(days=365, seconds=1), "365 days"),
    (utc(2028, 1, 1), "365 days"),
])
def test_bad_callback_times(callback_at: datetime | None, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        after_disposition("callback", attempts=1, settings=Settings(), now=utc(2026, 1, 15, 15),
                          callback_at=callback_at)


def test_callback_at_only_with_callback() -> None:
    with pytest.raises(ValueError, match="only for the callback"):
        after_disposition("sale", attempts=1, settings=Settings(), now=utc(2026, 1, 15, 15),
                          callback_at=utc(2026, 1, 16))


def test_dnc_disposition() -> None:
    update = after_disposition("dnc", attempts=1, settings=Settings(), now=utc(2026, 1, 15, 15))
    assert update == LeadUpdate("dnc", None, "dnc")


def test_retry_disposition() -> None:
    now = utc(2026, 1, 15, 15)
    assert after_disposition("retry", attempts=2, settings=Settings(), now=now) == \
        LeadUpdate("scheduled", now + timedelta(hours=1), "retry")
    assert after_disposition("retry", attempts=3, settings=Settings(), now=now) == \
        LeadUpdate("exhausted", None, "exhausted")
    custom = Settings(retry={"busy": 600, "no_answer": 120, "machine": 7200, "failed": 900})
    assert after_disposition("retry", attempts=1, settings=custom, now=now).next_attempt_at == now + 2 * MINUTE


@pytest.mark.parametrize("code", ["sale", "no_sale", "not-interested", "x", "a" * 32, "wrong_number", "42"])
def test_other_dispositions_are_final(code: str) -> None:
    update = after_disposition(code, attempts=1, settings=Settings(), now=utc(2026, 1, 15, 15))
    assert update == LeadUpdate("done", None, "final")


@pytest.mark.parametrize("code", ["sale", "a" * 32, "0", "call_back-2"])
def test_valid_disposition_codes(code: str) -> None:
    assert validate_disposition_code(code) == code


@pytest.mark.parametrize("code", ["", "a" * 33, "Sale", "sale ", "sale\n", "vente é", "a.b", None, 3, ["sale"]])
def test_invalid_disposition_codes(code: object) -> None:
    with pytest.raises(ValueError, match="1-32 characters of a-z, 0-9, _ or -"):
        validate_disposition_code(code)
    if isinstance(code, str):
        with pytest.raises(ValueError, match="1-32 characters"):
            after_disposition(code, attempts=1, settings=Settings(), now=utc(2026, 1, 15, 15))


# -- abandon ledger


def test_period_seconds() -> None:
    assert period_seconds("30d") == 30 * 86400
    assert period_seconds("24h") == 86400
    for bad in ("1h", "30D", "", "7d", None, ["30d"]):
        with pytest.raises(ValueError, match="abandon_period"):
            period_seconds(bad)  # type: ignore[arg-type]


def test_ledger_counts_lives_and_drops() -> None:
    ledger = AbandonLedger(3600.0)
    assert ledger.counts(0.0) == (0, 0)
    ledger.add(100.0, live=True, dropped=False)
    ledger.add(110.0, live=True, dropped=True)
    ledger.add(120.0, live=False, dropped=False)  # a machine or no answer: nothing
    ledger.add(130.0, live=False, dropped=True)  # a drop is a live answer
    assert ledger.counts(200.0) == (3, 2)


def test_ledger_event_exactly_a_period_old_drops_out() -> None:
    ledger = AbandonLedger(3600.0)
    ledger.add(600.0, live=True, dropped=True)
    assert ledger.counts(4199.5) == (1, 1)
    assert ledger.counts(4200.0) == (0, 0)
    assert ledger.rate(4200.0) == 0.0


def test_ledger_partly_expired_bucket_is_left_out() -> None:
    ledger = AbandonLedger(3600.0)
    ledger.add(630.0, live=True, dropped=False)  # bucket [600, 660)
    assert ledger.counts(4199.0) == (1, 0)
    assert ledger.counts(4210.0) == (0, 0)  # the event is 3580 s old, but its bucket started 3610 s ago


def test_ledger_rolls() -> None:
    ledger = AbandonLedger(86400.0)
    for minute in range(3 * 1440):  # one live answer a minute for three days, a drop every 100th
        ledger.add(minute * 60.0 + 5, live=True, dropped=minute % 100 == 0)
    now = 3 * 86400.0 - 1
    lives, drops = ledger.counts(now)
    assert lives == 1440
    assert drops == sum(1 for m in range(2 * 1440, 3 * 1440) if m % 100 == 0)
    assert len(ledger._keys) <= 1440 + 1


def test_ledger_thirty_days_stay_bounded() -> None:
    ledger = AbandonLedger(period_seconds("30d"))
    for minute in range(31 * 1440):
        ledger.add(minute * 60.0, live=True, dropped=False)
    assert ledger.counts(31 * 86400.0 - 60) == (43200, 0)
    assert len(ledger._counts) <= 43200 + 1


def test_ledger_out_of_order_and_future_events() -> None:
    ledger = AbandonLedger(3600.0)
    ledger.add(1000.0, live=True, dropped=False)
    ledger.add(500.0, live=True, dropped=True)  # a late report: an older bucket
    assert ledger.counts(1000.0) == (2, 1)
    assert ledger.counts(480.0 + 3600.0) == (1, 0)  # bucket 480 has expired, 960 has not
    ledger.add(4200.0, live=True, dropped=False)
    assert ledger.counts(4100.0) == (1, 0)  # bucket 4200 is after `now`
    assert ledger.counts(4200.0) == (2, 0)
    ledger.add(100.0, live=True, dropped=True)  # already out of the period: ignored
    assert ledger.counts(4200.0) == (2, 0)


def test_ledger_load_replaces_content() -> None:
    ledger = AbandonLedger(3600.0)
    ledger.add(5000.0, live=True, dropped=True)
    ledger.load([(1200.0, 10, 1), (1260.0, 5, 0), (1200.0, 2, 1), (-2400.0, 7, 7), (1320.0, 0, 0)])
    assert ledger.counts(1400.0) == (17, 2)  # the row before the period is left out, 5000 is gone
    assert ledger.counts(1200.0 + 3600.0) == (5, 0)  # bucket 1200 out
    ledger.load([])
    assert ledger.counts(1400.0) == (0, 0)
    with pytest.raises(ValueError, match="negative"):
        ledger.load([(0.0, -1, 0)])


def test_ledger_custom_bucket() -> None:
    ledger = AbandonLedger(100.0, bucket=10.0)
    ledger.add(15.0, live=True, dropped=False)
    assert ledger.counts(109.0) == (1, 0)
    assert ledger.counts(110.0) == (0, 0)
    with pytest.raises(ValueError, match="positive"):
        AbandonLedger(0.0)
    with pytest.raises(ValueError, match="positive"):
        AbandonLedger(60.0, bucket=0.0)


def test_ledger_rate() -> None:
    ledger = AbandonLedger(86400.0)
    assert ledger.rate(0.0) == 0.0
    for i in range(50):
        ledger.add(float(i), live=True, dropped=i < 2)
    assert ledger.rate(100.0) == pytest.approx(0.04)


@pytest.mark.parametrize(("lives", "drops", "target", "allowed"), [
    (0, 0, 0.03, 0),
    (100, 0, 0.03, 3),
    (100, 1, 0.03, 2),
    (100, 3, 0.03, 0),
    (100, 5, 0.03, 0),  # over target: none, never negative
    (99, 0, 0.03, 2),
    (100, 0, 0.29, 29),  # 0.29 * 100 is 28.999... in floating point
    (1000, 10, 0.05, 40),
    (100, 0, 0.0, 0),
])
def test_drops_allowed(lives: int, drops: int, target: float, allowed: int) -> None:
    ledger = AbandonLedger(86400.0)
    ledger.load([(0.0, lives, drops)])
    assert ledger.drops_allowed(60.0, target) == allowed


def test_ledger_span_is_the_age_of_its_oldest_counted_bucket() -> None:
    ledger = AbandonLedger(3600.0)
    assert ledger.span(1000.0) == 0.0
    ledger.add(600.0, live=True, dropped=False)
    ledger.add(900.0, live=True, dropped=True)
    assert ledger.span(1000.0) == 400.0  # the bucket starting at 600
    assert ledger.span(600.0 + 3600.0 + 1.0) == pytest.approx(3600.0 + 601.0 - 900.0)  # 600 expired
