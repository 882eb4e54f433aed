"""Telephony errors, typed by cause."""

from __future__ import annotations


class TelephonyError(Exception):
    """A call-control step failed (Asterisk refused it, or it did not happen in time)."""


class ChannelGone(TelephonyError):
    """The session's anchor channel (the caller / customer) is gone: the current step stops."""
