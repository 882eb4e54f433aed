"""Lead files: CSV in, validated leads out. Pure: no I/O, no database.

The rules (LAB.md, "Rules the outside tests rely on"): a header row, `phone` required, optional
`id` and `timezone`, every other column a custom field shown to the agent. Row numbers in
errors are file lines (the header is line 1). A number must be *possible* for `phonenumbers`
(fictional 555 numbers import) and is stored in E.164; duplicates are decided after
normalising and reported with the line and the number of the rows left out. An explicit
`timezone` is any IANA name and wins over the number's. Any bad row rejects the whole file:
the caller imports nothing unless `errors` is empty.

Time zones for compliance windows: a number maps to one zone (most), to several (a country or
an area code spanning zones) or to none (fictional numbers: the country's zones then). All of
them are kept (`timezones`); the dialer calls a lead only when its window is open in every one
of them, so an ambiguous number is never called too early or too late somewhere.
"""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import phonenumbers
from phonenumbers import timezone as phone_tz

MAX_ROWS = 1_000_000
MAX_FIELD = 1000  # characters per value: a lead file, not a document store
RESERVED = frozenset({"phone", "id", "timezone"})
_UNKNOWN = "Etc/Unknown"


@dataclass(frozen=True, slots=True)
class Lead:
    line: int
    lead_id: str
    phone: str  # E.164
    timezone: str  # the zone shown (explicit, or the number's first)
    timezones: tuple[str, ...]  # every zone the window must hold in
    fields: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    error: str


@dataclass(frozen=True, slots=True)
class Duplicate:
    line: int
    phone: str


@dataclass
class LeadFile:
    leads: list[Lead] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    duplicates: list[Duplicate] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@functools.lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    """An IANA zone this machine's tz database can load (cached: loading is slow)."""
    if name not in _all_zones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@functools.lru_cache(maxsize=1)
def _all_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def number_zones(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """The IANA zones a number may be in (never empty for a number of a known country)."""
    zones = tuple(z for z in phone_tz.time_zones_for_number(number) if z != _UNKNOWN)
    if not zones:
        zones = tuple(z for z in phone_tz.time_zones_for_geographical_number(number) if z != _UNKNOWN)
    return tuple(z for z in zones if _known_zone(z))


def normalise(raw: str, default_region: str) -> tuple[str, phonenumbers.PhoneNumber]:
    """E.164 of a possible number; ValueError with the reason otherwise."""
    text = raw.strip()
    if not text:
        raise ValueError("phone is empty")
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"phone {text!r} is not a phone number ({exc})") from None
    if not phonenumbers.is_possible_number(number):
        raise ValueError(f"phone {text!r} is not a possible phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), number


def parse_leads(text: str, *, default_region: str = "US", existing: Mapping[str, str] | None = None,
                max_rows: int = MAX_ROWS) -> LeadFile:
    """Validate a whole lead file. `existing`: E.164 -> lead id already in the campaign (they
    are duplicates too)."""
    out = LeadFile()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        out.errors.append(RowError(1, "the file is empty: a header row with a `phone` column is required"))
        return out
    except csv.Error as exc:
        out.errors.append(RowError(1, f"unreadable CSV: {exc}"))
        return out
    names = [h.strip().lower() for h in header]
    if "phone" not in names:
        out.errors.append(RowError(1, "the header has no `phone` column"))
        return out
    seen_names: set[str] = set()
    for name in names:
        if not name:
            out.errors.append(RowError(1, "a column has no name"))
        elif name in seen_names:
            out.errors.append(RowError(1, f"column {name!r} appears twice"))
        seen_names.add(name)
    if out.errors:
        return out
    by_phone: dict[str, int] = dict.fromkeys(existing or {}, 0)
    by_id: dict[str, int] = {}
    existing_ids = set((existing or {}).values())
    start = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.errors.append(RowError(start, f"unreadable CSV: {exc}"))
            break
        line, start = start, reader.line_num + 1
        if not row or all(not v.strip() for v in row):
            continue  # a blank line
        if len(out.leads) + len(out.errors) + len(out.duplicates) >= max_rows:
            out.errors.append(RowError(line, f"more than {max_rows} rows"))
            break
        lead_or_error = _row(line, names, row, default_region)
        if isinstance(lead_or_error, RowError):
            out.errors.append(lead_or_error)
            continue
        lead = lead_or_error
        if lead.phone in by_phone:
            out.duplicates.append(Duplicate(line, lead.phone))
            continue
        if lead.lead_id in by_id or lead.lead_id in existing_ids:
            where = f"line {by_id[lead.lead_id]}" if lead.lead_id in by_id else "the campaign"
            out.errors.append(RowError(line, f"id {lead.lead_id!r} is already used ({where})"))
            continue
        by_phone[lead.phone] = line
        by_id[lead.lead_id] = line
        out.leads.append(lead)
    return out


def _row(line: int, names: list[str], row: list[str], default_region: str) -> Lead | RowError:
    if len(row) != len(names):
        return RowError(line, f"{len(row)} values for {len(names)} columns")
    values = dict(zip(names, (v.strip() for v in row), strict=True))
    too_long = [n for n, v in values.items() if len(v) > MAX_FIELD]
    if too_long:
        return RowError(line, f"{too_long[0]!r} is longer than {MAX_FIELD} characters")
    try:
        phone, number = normalise(values["phone"], default_region)
    except ValueError as exc:
        return RowError(line, str(exc))
    explicit = values.get("timezone", "")
    if explicit:
        if not _known_zone(explicit):
            return RowError(line, f"timezone {explicit!r} is not an IANA time zone name")
        zones: tuple[str, ...] = (explicit,)
    else:
        zones = number_zones(number)
        if not zones:
            return RowError(line, f"no time zone is known for {phone}: add a `timezone` column")
    lead_id = values.get("id", "") or phone
    fields = {n: v for n, v in values.items() if n not in RESERVED}
    return Lead(line, lead_id, phone, zones[0], zones, fields)
