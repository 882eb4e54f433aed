"""StasisStart dispatch: a new channel in our app goes to the flow named by its first argument
(`inbound,<DNIS>` from the dialplan; `agent,...` legs are owned by the call that created them;
`outbound,...`, `snoop,...` next). A channel nobody claims is logged and hung up."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from cc_ari.ari.models import StasisStart
from cc_ari.tasks import Tasks
from cc_ari.telephony.control import CallControl

log = structlog.get_logger("cc_ari.calls")

StartHandler = Callable[[StasisStart], None]


class StasisRouter:
    def __init__(self, control: CallControl, tasks: Tasks) -> None:
        self._control = control
        self._tasks = tasks
        self._handlers: dict[str, StartHandler] = {}

    def register(self, kind: str, handler: StartHandler) -> None:
        self._handlers[kind] = handler

    def dispatch(self, ev: StasisStart) -> None:
        """Synchronous: decides and hands over; any ARI work runs in an owned task."""
        kind = ev.args[0] if ev.args else ""
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(ev)
            return
        log.warning("unexpected_stasis_channel", channel=ev.channel.name, args=list(ev.args))
        self._tasks.spawn(self._control.hangup(ev.channel.id), f"hangup-{ev.channel.id}")
