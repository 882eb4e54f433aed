"""AMI over panoramisk: actions with a timeout and typed errors, events parsed once at the edge,
and a connection loop that reconnects with capped exponential backoff."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import panoramisk
import structlog

from cc_ari.ami.errors import AmiActionFailed, AmiError, AmiLoginFailed, AmiUnavailable
from cc_ari.ami.models import AmiEvent, fields_of, parse_event

log = structlog.get_logger("cc_ari.ami")

EventHandler = Callable[[AmiEvent], Awaitable[None]]
FieldValue = str | int | float | bool | Sequence[str]

_SUCCESS = frozenset({"success", "follows", "goodbye"})


class ManagerLike(Protocol):
    """The part of panoramisk.Manager that AmiClient uses (what a test fake has to provide)."""

    authenticated_future: asyncio.Future[Any] | None

    def connect(self) -> Any: ...  # an asyncio.Task for the TCP connect

    def connection_made(self, future: asyncio.Future[Any]) -> Any: ...

    def send_action(self, action: dict[str, Any], as_list: bool | None = None) -> asyncio.Future[Any]: ...

    def register_event(self, pattern: str, callback: Callable[[Any, Any], Any]) -> Any: ...

    def close(self) -> None: ...


ManagerFactory = Callable[..., ManagerLike]


@dataclass(eq=False)
class _Connection:
    """One logged-in panoramisk Manager; a reconnect gets a new one."""

    manager: ManagerLike
    lost: asyncio.Future[str]
    inflight: set[asyncio.Future[Any]] = field(default_factory=set)


def _no_reconnect(*_args: Any, **_kwargs: Any) -> None:
    """Stands in for Manager.connect once AmiClient has used it (see AmiClient._open)."""


def _get(fields: Mapping[str, str], key: str) -> str:
    key = key.lower()
    return next((v for k, v in fields.items() if k.lower() == key), "")


def _value(v: FieldValue) -> str | list[str]:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float):
        return str(v)
    return [str(x) for x in v]


def _check(name: str, response: Mapping[str, str]) -> None:
    """Anything but Success/Follows/Goodbye is an error; never hand back a failed response."""
    status = _get(response, "Response")
    if status.lower() not in _SUCCESS:
        message = _get(response, "Message") or "(no message)"
        raise AmiActionFailed(f"{name}: {status or 'no Response'}: {message}", action=name, response=response)


def _is_list_end(fields: Mapping[str, str]) -> bool:
    return _get(fields, "Event").endswith("Complete") or _get(fields, "EventList").lower() == "complete"


def _handler_name(handler: EventHandler) -> str:
    return str(getattr(handler, "__qualname__", None) or repr(handler))


class AmiClient:
    """AMI actions and events for one Asterisk.

    `run()` owns the connection (start it as a task); `action()`/`action_list()` raise
    AmiUnavailable while it is not connected. Handlers registered with `on_event()` are awaited
    one event at a time, in the order Asterisk sent the events, by a single dispatcher task.
    """

    def __init__(self, host: str, port: int, user: str, secret: str, *, timeout: float = 5.0,
                 events: str = "on", recent_size: int = 500, queue_size: int = 10_000,
                 min_backoff: float = 0.5, max_backoff: float = 30.0, keepalive: float | None = 20.0,
                 manager_factory: ManagerFactory = panoramisk.Manager) -> None:
        self.host = host
        self.port = port
        self.user = user
        self._secret = secret
        self._timeout = timeout
        self._events = events  # Login "Events:": "on", "off" or a class list like "system,call"
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._keepalive = keepalive
        self._factory = manager_factory
        self.connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._handlers: list[EventHandler] = []
        self._recent: deque[dict[str, Any]] = deque(maxlen=recent_size)
        self._queue: asyncio.Queue[AmiEvent] = asyncio.Queue(maxsize=queue_size)
        self._tasks: set[asyncio.Task[None]] = set()
        self._conn: _Connection | None = None
        self._started = False
        self._running = False
        self._dropped = 0

    # --- lifecycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Start the event dispatcher. No network; `run()` connects (and calls this itself)."""
        if self._closing.is_set():
            raise RuntimeError("AmiClient is closed")
        if not self._started:
            self._started = True
            self._spawn(self._dispatch(), "ami-dispatch")

    async def close(self) -> None:
        """Drop the connection, fail in-flight actions, cancel and await the client's tasks.

        Cancel the `run()` task first; if it is still running it returns on its own. Final."""
        self._closing.set()
        if self._conn is not None:
            self._drop(self._conn, "client closed")
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def run(self) -> None:
        """Connect, log in, stay connected; on any failure retry with capped exponential backoff.

        Runs until cancelled (CancelledError propagates) or until `close()`.
        """
        await self.start()
        if self._running:
            raise RuntimeError("AmiClient.run() is already running")
        self._running = True
        backoff = self._min_backoff
        try:
            while not self._closing.is_set():
                try:
                    conn = await self._open()
                except AmiLoginFailed as exc:
                    log.error("ami_login_failed", host=self.host, port=self.port, user=self.user,
                              error=str(exc), retry_in=backoff)
                except (AmiError, OSError) as exc:
                    log.warning("ami_connect_failed", host=self.host, port=self.port, error=repr(exc),
                                retry_in=backoff)
                except Exception:
                    log.exception("ami_connect_error", host=self.host, port=self.port, retry_in=backoff)
                else:
                    backoff = self._min_backoff
                    reason = await self._supervise(conn)
                    self._drop(conn, reason)
                    if self._closing.is_set():
                        break
                    log.warning("ami_disconnected", host=self.host, port=self.port, reason=reason,
                                retry_in=backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff)
        finally:
            self._running = False
            if self._conn is not None:
                self._drop(self._conn, "run() stopped")

    # --- actions --------------------------------------------------------------------------
    async def action(self, name: str, **fields: FieldValue) -> dict[str, str]:
        """Send one action and return its response headers.

        Raises AmiUnavailable (not connected, connection lost, no answer within `timeout`) or
        AmiActionFailed (Asterisk answered Response: Error). A list-valued field is sent as a
        repeated header (e.g. Variable=["A=1", "B=2"]); a repeated header in the answer comes back
        joined with newlines (e.g. Command's Output). For list actions use `action_list()`.
        """
        answer = await self._send(name, fields, as_list=False)
        first = answer[0] if isinstance(answer, list) else answer
        response = fields_of(first)
        _check(name, response)
        return response

    async def action_list(self, name: str, **fields: FieldValue) -> list[dict[str, str]]:
        """Send an action that answers with an event list (PJSIPShowContacts, CoreShowChannels,
        QueueStatus, ...) and return the list's events, without the ...Complete event.

        Same errors as `action()`; `timeout` covers the whole list. Some actions answer "nothing to
        list" with Response: Error rather than an empty list; that too raises AmiActionFailed.
        """
        answer = await self._send(name, fields, as_list=None)
        if not isinstance(answer, list):
            response = fields_of(answer)
            _check(name, response)
            raise AmiError(f"{name}: answered without an event list", action=name)
        _check(name, fields_of(answer[0]))
        return [f for f in map(fields_of, answer[1:]) if not _is_list_end(f)]

    async def _send(self, name: str, fields: Mapping[str, FieldValue], *, as_list: bool | None) -> Any:
        conn = self._conn
        if conn is None:
            raise AmiUnavailable(f"{name}: not connected to AMI", action=name)
        action: dict[str, Any] = {"Action": name, **{k: _value(v) for k, v in fields.items()}}
        # as_list=None (action_list): panoramisk detects a list from "EventList: start" and resolves
        # with all its messages at "...Complete". (as_list=True would never resolve on a Response:
        # Error.) as_list=False (action): the first response is the answer; left to its heuristics,
        # panoramisk takes QueueAdd's "Added interface to queue" for a list and never resolves.
        fut = conn.manager.send_action(action, as_list=as_list)
        conn.inflight.add(fut)
        try:
            return await asyncio.wait_for(fut, self._timeout)
        except TimeoutError as exc:
            raise AmiUnavailable(f"{name}: no answer within {self._timeout}s", action=name) from exc
        finally:
            conn.inflight.discard(fut)

    # --- events ---------------------------------------------------------------------------
    def on_event(self, handler: EventHandler) -> EventHandler:
        """Register `async def handler(event: AmiEvent) -> None`; usable as a decorator."""
        self._handlers.append(handler)
        return handler

    @property
    def dropped(self) -> int:
        """AMI events lost because the dispatch queue was full."""
        return self._dropped

    def recent_events(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The last events received, oldest first: {"ts": unix time, "event": name, "fields": {...}}."""
        items = list(self._recent)
        if limit is not None:
            items = items[-limit:] if limit > 0 else []
        return [{**e, "fields": dict(e["fields"])} for e in items]

    def _on_message(self, _manager: Any, message: Any) -> None:
        """panoramisk's callback, called inside the protocol's data_received: must never raise
        (an exception there is fatal to the transport) and must not block."""
        try:
            event = parse_event(message)
            self._recent.append({"ts": time.time(), "event": event.name, "fields": dict(event.fields)})
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self._dropped += 1
            if self._dropped == 1 or self._dropped % 1000 == 0:
                log.warning("ami_events_dropped", dropped=self._dropped, queue_size=self._queue.maxsize)
        except Exception:
            log.exception("ami_event_parse_failed")

    async def _dispatch(self) -> None:
        while True:
            event = await self._queue.get()
            for handler in tuple(self._handlers):
                try:
                    await handler(event)
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise
                    log.error("ami_handler_cancelled", ami_event=event.name, handler=_handler_name(handler))
                except Exception:
                    log.exception("ami_handler_failed", ami_event=event.name, handler=_handler_name(handler))

    # --- connection -----------------------------------------------------------------------
    async def _open(self) -> _Connection:
        """A new panoramisk Manager, connected and logged in (or an exception, nothing left open)."""
        loop = asyncio.get_running_loop()
        lost: asyncio.Future[str] = loop.create_future()

        def on_disconnect(_manager: Any, exc: object) -> None:
            if not lost.done():
                # panoramisk passes the Shutdown event itself when Asterisk announces a shutdown.
                lost.set_result("Asterisk shut down" if isinstance(exc, Mapping)
                                else f"connection lost: {exc!r}")

        manager = self._factory(host=self.host, port=self.port, username=self.user, secret=self._secret,
                                events=self._events, loop=loop, on_disconnect=on_disconnect)
        # panoramisk reconnects by itself (`call_later(reconnect_timeout, self.connect)` after a failed
        # connect or a lost connection) and, on the same Manager, re-sends unanswered actions after
        # FullyBooted. AmiClient owns reconnection instead (backoff, a fresh Manager, nothing
        # re-sent), so this Manager's connect is used once here and then made a no-op.
        open_connection = manager.connect
        manager.connect = _no_reconnect  # type: ignore[method-assign]
        manager.register_event("*", self._on_message)
        connecting: asyncio.Future[Any] = open_connection()
        # Manager.connection_made, a done-callback of `connecting`, sends Login and keeps its future
        # in `authenticated_future` until the answer is processed (then it is reset to None). Done-
        # callbacks run back to back in the order added, so this one sees it before any answer can.
        login_sent: list[asyncio.Future[Any] | None] = []
        connecting.add_done_callback(lambda _: login_sent.append(manager.authenticated_future))
        try:
            try:
                await asyncio.wait_for(asyncio.shield(connecting), self._timeout)
                login = login_sent[0] if login_sent else None
                if login is None:
                    raise AmiUnavailable("connected, but no Login was sent", action="Login")
                response = fields_of(await asyncio.wait_for(asyncio.shield(login), self._timeout))
            except TimeoutError as exc:
                raise AmiUnavailable(f"no connection/login within {self._timeout}s", action="Login") from exc
            if _get(response, "Response").lower() != "success":
                raise AmiLoginFailed(f"Login: {_get(response, 'Message') or 'refused'}", action="Login",
                                     response=response)
        except BaseException:
            connecting.remove_done_callback(manager.connection_made)  # else it sees CancelledError
            connecting.cancel()
            manager.close()
            raise
        conn = _Connection(manager, lost)
        self._conn = conn
        self.connected.set()
        log.info("ami_connected", host=self.host, port=self.port, user=self.user)
        return conn

    async def _supervise(self, conn: _Connection) -> str:
        """Wait until the connection is lost; a Ping every `keepalive` s catches a silent peer."""
        while True:
            await asyncio.wait({conn.lost}, timeout=self._keepalive)
            if conn.lost.done():
                return conn.lost.result()
            try:
                await self.action("Ping")
            except AmiUnavailable as exc:
                return f"keepalive failed: {exc}"
            except AmiError as exc:
                log.warning("ami_keepalive_refused", error=str(exc))

    def _drop(self, conn: _Connection, reason: str) -> None:
        if self._conn is conn:
            self._conn = None
            self.connected.clear()
        if not conn.lost.done():
            conn.lost.set_result(reason)
        conn.manager.close()
        for fut in list(conn.inflight):
            if not fut.done():
                fut.set_exception(AmiUnavailable(f"AMI connection dropped: {reason}"))
        conn.inflight.clear()

    async def _sleep(self, delay: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    # --- tracked tasks --------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.error("ami_task_failed", task=task.get_name(), exc_info=exc)
