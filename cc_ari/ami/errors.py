"""AMI errors typed by cause. An action either returns its response or raises one of these."""

from __future__ import annotations

from collections.abc import Mapping


class AmiError(Exception):
    def __init__(self, message: str, *, action: str = "") -> None:
        super().__init__(message)
        self.action = action


class AmiUnavailable(AmiError):
    """Not connected/logged in, the connection dropped, or Asterisk did not answer in time."""


class AmiActionFailed(AmiError):
    """Asterisk answered `Response: Error` (or another non-success response) to the action."""

    def __init__(self, message: str, *, action: str = "", response: Mapping[str, str] | None = None) -> None:
        super().__init__(message, action=action)
        self.response: dict[str, str] = dict(response or {})


class AmiLoginFailed(AmiActionFailed):
    """The Login action was refused (wrong user/secret, or the manager.conf ACL)."""
