"""Typed AMI events, parsed once at the edge from the header blocks Asterisk sends.

Every event is an `AmiEvent` (name + headers). The few events cc_ari acts on are parsed into
the subclasses below; anything else stays a plain `AmiEvent`, so in a `match` put the
subclasses first and `AmiEvent()` last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def fields_of(message: Mapping[str, object]) -> dict[str, str]:
    """A panoramisk Message (or any mapping) -> plain `dict[str, str]`.

    A header that appears several times (Output, ChanVariable, ...) arrives as a list and is
    joined with newlines. panoramisk adds a `content` key to every message; it is dropped when empty.
    """
    out: dict[str, str] = {}
    for key, value in message.items():
        if isinstance(value, list | tuple):
            text = "\n".join(str(v) for v in value)
        elif value is None:
            text = ""
        else:
            text = str(value)
        if key == "content" and not text:
            continue
        out[str(key)] = text
    return out


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class AmiEvent:
    """Any AMI event: its name and its headers (read-only, original header case)."""

    name: str
    fields: Mapping[str, str] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class ContactStatus(AmiEvent):
    """A PJSIP contact was created/removed or became Reachable/Unreachable."""

    aor: str
    endpoint: str
    status: str
    uri: str


@dataclass(frozen=True, slots=True)
class DeviceStateChange(AmiEvent):
    """A device (e.g. `PJSIP/agent1`) changed state: NOT_INUSE, INUSE, RINGING, UNAVAILABLE, ..."""

    device: str
    state: str


@dataclass(frozen=True, slots=True)
class Hangup(AmiEvent):
    channel: str
    uniqueid: str
    linkedid: str
    cause: int
    cause_txt: str


@dataclass(frozen=True, slots=True)
class FullyBooted(AmiEvent):
    """Sent after each login once Asterisk has finished booting (so: after every reconnect too)."""

    status: str


def parse_event(message: Mapping[str, object]) -> AmiEvent:
    """Headers (a dict or a panoramisk Message) -> a typed event. Never raises on odd input."""
    fields = fields_of(message)
    low = {k.lower(): v for k, v in fields.items()}
    name = low.get("event", "")
    ro = MappingProxyType(fields)
    if name == "ContactStatus":
        return ContactStatus(name, ro, aor=low.get("aor", ""), endpoint=low.get("endpointname", ""),
                             status=low.get("contactstatus", ""), uri=low.get("uri", ""))
    if name == "DeviceStateChange":
        return DeviceStateChange(name, ro, device=low.get("device", ""), state=low.get("state", ""))
    if name == "Hangup":
        return Hangup(name, ro, channel=low.get("channel", ""), uniqueid=low.get("uniqueid", ""),
                      linkedid=low.get("linkedid", ""), cause=_int(low.get("cause", "")),
                      cause_txt=low.get("cause-txt", ""))
    if name == "FullyBooted":
        return FullyBooted(name, ro, status=low.get("status", ""))
    return AmiEvent(name, ro)
