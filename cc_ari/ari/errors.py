"""ARI errors typed by cause. A vanished channel (404) is normal flow, not a crash."""

from __future__ import annotations


class AriError(Exception):
    def __init__(self, message: str, *, status: int | None = None, path: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.path = path


class AriNotFound(AriError):
    """The channel/bridge/playback no longer exists (usually: the caller hung up)."""


class AriConflict(AriError):
    """409: the object is not in a state that allows the request (e.g. channel not in Stasis)."""


class AriBadRequest(AriError):
    """400/422: our request was wrong."""


class AriUnavailable(AriError):
    """Asterisk did not answer in time, or the connection failed."""
