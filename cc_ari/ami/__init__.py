"""AMI (Asterisk Manager Interface) over panoramisk: typed actions, typed events, reconnection."""

from cc_ari.ami.client import AmiClient, EventHandler, ManagerLike
from cc_ari.ami.errors import AmiActionFailed, AmiError, AmiLoginFailed, AmiUnavailable
from cc_ari.ami.models import AmiEvent, ContactStatus, DeviceStateChange, FullyBooted, Hangup, parse_event

__all__ = [
    "AmiActionFailed",
    "AmiClient",
    "AmiError",
    "AmiEvent",
    "AmiLoginFailed",
    "AmiUnavailable",
    "ContactStatus",
    "DeviceStateChange",
    "EventHandler",
    "FullyBooted",
    "Hangup",
    "ManagerLike",
    "parse_event",
]
