"""AmiClient without a network: a fake Manager, and the real panoramisk Manager on a fake transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import panoramisk
import pytest
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.message import Message
from structlog.testing import capture_logs

from cc_ari.ami import (
    AmiActionFailed,
    AmiClient,
    AmiError,
    AmiEvent,
    AmiUnavailable,
    ContactStatus,
    DeviceStateChange,
    FullyBooted,
    Hangup,
    parse_event,
)

Reply = dict[str, str] | list[dict[str, str]] | None
Answer = Callable[[dict[str, str]], list[dict[str, str]]]


async def until(cond: Callable[[], bool], within: float = 2.0) -> None:
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110 - polling a test condition
            await asyncio.sleep(0.005)


# --- a fake panoramisk.Manager --------------------------------------------------------------------
class FakeManager:
    """What AmiClient uses of panoramisk.Manager. `reply(action)` answers each action:
    a header dict, a list of them (an event list), or None (never answers)."""

    def __init__(self, reply: Callable[[dict[str, Any]], Reply], login_ok: bool, **config: Any) -> None:
        self.config = config
        self.reply = reply
        self.login_ok = login_ok
        self.sent: list[dict[str, Any]] = []
        self.callbacks: list[Callable[[Any, Any], Any]] = []
        self.authenticated_future: asyncio.Future[Any] | None = None
        self.closed = False

    def connect(self) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        self.authenticated_future = loop.create_future()
        self.authenticated_future.set_result(Message(
            {"Response": "Success", "Message": "Authentication accepted"} if self.login_ok
            else {"Response": "Error", "Message": "Authentication failed"}))
        done = loop.create_future()
        done.set_result(None)
        return done

    def connection_made(self, future: asyncio.Future[Any]) -> None:
        pass

    def send_action(self, action: dict[str, Any], as_list: bool | None = None) -> asyncio.Future[Any]:
        self.sent.append(action)
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        answer = self.reply(action)
        if isinstance(answer, list):
            fut.set_result([Message(m) for m in answer])
        elif answer is not None:
            fut.set_result(Message(answer))
        return fut

    def register_event(self, pattern: str, callback: Callable[[Any, Any], Any]) -> None:
        self.callbacks.append(callback)

    def close(self) -> None:
        self.closed = True

    # test helpers
    def emit(self, headers: dict[str, str]) -> None:
        for cb in self.callbacks:
            cb(self, Message(headers))

    def lose_connection(self) -> None:
        self.config["on_disconnect"](self, ConnectionResetError())


class FakeAsterisk:
    def __init__(self) -> None:
        self.managers: list[FakeManager] = []
        self.login_ok = True
        self.replies: dict[str, Reply] = {"Ping": {"Response": "Success", "Ping": "Pong"}}

    def factory(self, **config: Any) -> FakeManager:
        m = FakeManager(lambda a: self.replies.get(a["Action"]), self.login_ok, **config)
        self.managers.append(m)
        return m

    @property
    def manager(self) -> FakeManager:
        return self.managers[-1]


@pytest.fixture
def asterisk() -> FakeAsterisk:
    return FakeAsterisk()


@pytest.fixture
async def client(asterisk: FakeAsterisk) -> AsyncIterator[AmiClient]:
    c = AmiClient("ami.test", 5038, "cc", "s3cret", timeout=0.1, recent_size=3, keepalive=None,
                  min_backoff=0.01, max_backoff=0.05, manager_factory=asterisk.factory)
    runner = asyncio.create_task(c.run())
    await asyncio.wait_for(c.connected.wait(), 2)
    yield c
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await c.close()


# --- parsing ---------------------------------------------------------------------------------------
def test_parse_typed_events_from_dicts() -> None:
    ev = parse_event({"Event": "ContactStatus", "URI": "sip:agent1@10.0.0.5:5060",
                      "ContactStatus": "Reachable", "AOR": "agent1", "EndpointName": "agent1",
                      "RoundtripUsec": "1234"})
    assert ev == ContactStatus("ContactStatus", {}, aor="agent1", endpoint="agent1", status="Reachable",
                               uri="sip:agent1@10.0.0.5:5060")
    assert ev.fields["RoundtripUsec"] == "1234"

    assert parse_event({"Event": "DeviceStateChange", "Device": "PJSIP/agent1", "State": "INUSE"}) == \
        DeviceStateChange("DeviceStateChange", {}, device="PJSIP/agent1", state="INUSE")

    h = parse_event({"Event": "Hangup", "Channel": "PJSIP/agent1-00000001", "Uniqueid": "1700000000.1",
                     "Linkedid": "1700000000.0", "Cause": "16", "Cause-txt": "Normal Clearing"})
    assert isinstance(h, Hangup)
    assert (h.channel, h.uniqueid, h.linkedid, h.cause, h.cause_txt) == \
        ("PJSIP/agent1-00000001", "1700000000.1", "1700000000.0", 16, "Normal Clearing")

    fb = parse_event({"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"})
    assert isinstance(fb, FullyBooted) and fb.status == "Fully Booted"


def test_parse_generic_and_odd_input() -> None:
    ev = parse_event({"Event": "Newexten", "Channel": "PJSIP/x-1", "Extension": "100"})
    assert type(ev) is AmiEvent
    assert ev.name == "Newexten" and ev.fields["Extension"] == "100"
    with pytest.raises(TypeError):
        ev.fields["Extension"] = "200"  # type: ignore[index]
    assert parse_event({"Event": "Hangup", "Cause": "not-a-number"}) == \
        Hangup("Hangup", {}, channel="", uniqueid="", linkedid="", cause=0, cause_txt="")
    assert parse_event({}).name == ""


def test_parse_panoramisk_message() -> None:
    raw = ("Event: Hangup\r\nPrivilege: call,all\r\nChannel: PJSIP/carrier-00000007\r\nUniqueID: 1700.7\r\n"
           "LinkedID: 1700.6\r\nCause: 17\r\nCause-txt: User busy\r\nChanVariable: A=1\r\nChanVariable: B=2")
    msg = Message.from_line(raw)
    assert "content" in msg  # panoramisk adds an (empty) content key to every message
    ev = parse_event(msg)
    assert isinstance(ev, Hangup)
    assert (ev.uniqueid, ev.linkedid, ev.cause, ev.cause_txt) == ("1700.7", "1700.6", 17, "User busy")
    assert "content" not in ev.fields
    assert ev.fields["ChanVariable"] == "A=1\nB=2"


# --- events: ring buffer, handlers -----------------------------------------------------------------
async def test_ring_buffer_keeps_the_last_events(client: AmiClient, asterisk: FakeAsterisk) -> None:
    for i in range(5):
        asterisk.manager.emit({"Event": "DeviceStateChange", "Device": f"PJSIP/agent{i}", "State": "INUSE"})
    recent = client.recent_events()
    assert [e["fields"]["Device"] for e in recent] == ["PJSIP/agent2", "PJSIP/agent3", "PJSIP/agent4"]
    assert all(e["event"] == "DeviceStateChange" and isinstance(e["ts"], float) for e in recent)
    assert [e["fields"]["Device"] for e in client.recent_events(limit=1)] == ["PJSIP/agent4"]
    assert client.recent_events(limit=0) == []
    recent[0]["fields"]["Device"] = "changed"  # a copy: the buffer is not touched
    assert client.recent_events()[0]["fields"]["Device"] == "PJSIP/agent2"


async def test_failing_handler_is_logged_and_isolated(client: AmiClient, asterisk: FakeAsterisk) -> None:
    got: list[AmiEvent] = []

    @client.on_event
    async def broken(event: AmiEvent) -> None:
        raise RuntimeError("boom")

    @client.on_event
    async def cancelled_inside(event: AmiEvent) -> None:
        raise asyncio.CancelledError  # not a cancellation of the dispatcher

    @client.on_event
    async def good(event: AmiEvent) -> None:
        got.append(event)

    with capture_logs() as logs:
        asterisk.manager.emit({"Event": "DeviceStateChange", "Device": "PJSIP/agent1", "State": "RINGING"})
        asterisk.manager.emit({"Event": "FullyBooted", "Status": "Fully Booted"})
        await until(lambda: len(got) == 2)
    assert isinstance(got[0], DeviceStateChange) and isinstance(got[1], FullyBooted)  # in order
    failed = [e for e in logs if e["event"] == "ami_handler_failed"]
    assert [(e["ami_event"], e["log_level"]) for e in failed] == [("DeviceStateChange", "error"),
                                                                  ("FullyBooted", "error")]
    assert "broken" in failed[0]["handler"]
    assert sum(e["event"] == "ami_handler_cancelled" for e in logs) == 2
    assert "s3cret" not in repr(logs)


async def test_close_cancels_and_awaits_tasks(asterisk: FakeAsterisk) -> None:
    c = AmiClient("ami.test", 5038, "cc", "s3cret", manager_factory=asterisk.factory)
    await c.start()
    tasks = set(c._tasks)
    assert len(tasks) == 1
    await c.close()
    assert all(t.cancelled() for t in tasks) and not c._tasks
    with pytest.raises(RuntimeError):
        await c.start()


# --- actions ---------------------------------------------------------------------------------------
async def test_action_returns_response_and_sends_fields(client: AmiClient, asterisk: FakeAsterisk) -> None:
    asterisk.replies["Originate"] = {"Response": "Success", "Message": "Originate successfully queued"}
    assert (await client.action("Ping"))["Ping"] == "Pong"
    await client.action("Originate", Channel="PJSIP/agent1", Timeout=30000, Async=True,
                        Variable=["A=1", "B=2"])
    assert asterisk.manager.sent[-1] == {"Action": "Originate", "Channel": "PJSIP/agent1", "Timeout": "30000",
                                         "Async": "true", "Variable": ["A=1", "B=2"]}


async def test_error_response_raises_action_failed(client: AmiClient, asterisk: FakeAsterisk) -> None:
    asterisk.replies["Redirect"] = {"Response": "Error", "Message": "Channel not specified"}
    with pytest.raises(AmiActionFailed) as err:
        await client.action("Redirect")
    assert err.value.action == "Redirect"
    assert err.value.response["Message"] == "Channel not specified"
    assert "Channel not specified" in str(err.value)
    asterisk.replies["Odd"] = {"Response": "Fail", "Message": "nope"}  # not Success either
    with pytest.raises(AmiActionFailed):
        await client.action("Odd")


async def test_timeout_raises_unavailable(client: AmiClient, asterisk: FakeAsterisk) -> None:
    asterisk.replies["CoreStatus"] = None  # Asterisk never answers
    with pytest.raises(AmiUnavailable, match="no answer within"):
        await client.action("CoreStatus")
    assert client.connected.is_set()  # a slow action is not a lost connection


async def test_not_connected_raises_unavailable(asterisk: FakeAsterisk) -> None:
    c = AmiClient("ami.test", 5038, "cc", "s3cret", manager_factory=asterisk.factory)
    with pytest.raises(AmiUnavailable, match="not connected"):
        await c.action("Ping")
    assert asterisk.managers == []


async def test_action_list_collects_until_complete(client: AmiClient, asterisk: FakeAsterisk) -> None:
    asterisk.replies["PJSIPShowContacts"] = [
        {"Response": "Success", "EventList": "start", "Message": "A listing of Contacts follows"},
        {"Event": "ContactList", "Endpoint": "agent1", "Status": "Reachable"},
        {"Event": "ContactList", "Endpoint": "agent2", "Status": "Unavailable"},
        {"Event": "ContactListComplete", "EventList": "Complete", "ListItems": "2"},
    ]
    items = await client.action_list("PJSIPShowContacts")
    assert [(i["Endpoint"], i["Status"]) for i in items] == [("agent1", "Reachable"),
                                                             ("agent2", "Unavailable")]

    asterisk.replies["QueueStatus"] = {"Response": "Error", "Message": "Permission denied"}
    with pytest.raises(AmiActionFailed, match="Permission denied"):
        await client.action_list("QueueStatus")
    with pytest.raises(AmiError, match="without an event list"):
        await client.action_list("Ping")


# --- connection ------------------------------------------------------------------------------------
async def test_lost_connection_fails_inflight_and_reconnects(client: AmiClient,
                                                             asterisk: FakeAsterisk) -> None:
    first = asterisk.manager
    assert first.connect.__name__ == "_no_reconnect"  # panoramisk's own reconnect is disabled
    asterisk.replies["CoreShowChannels"] = None
    pending = asyncio.create_task(client.action("CoreShowChannels"))
    await until(lambda: bool(first.sent))
    first.lose_connection()
    with pytest.raises(AmiUnavailable, match="dropped"):
        await pending
    await until(lambda: len(asterisk.managers) == 2 and client.connected.is_set())
    assert first.closed and not asterisk.manager.closed
    assert (await client.action("Ping"))["Ping"] == "Pong"  # on the new Manager
    assert asterisk.manager.sent[-1]["Action"] == "Ping"


async def test_login_refused_is_retried_with_backoff(asterisk: FakeAsterisk) -> None:
    asterisk.login_ok = False
    c = AmiClient("ami.test", 5038, "cc", "s3cret", min_backoff=0.01, max_backoff=0.02,
                  manager_factory=asterisk.factory)
    with capture_logs() as logs:
        runner = asyncio.create_task(c.run())
        await until(lambda: len(asterisk.managers) >= 3)
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
    await c.close()
    assert not c.connected.is_set()
    assert all(m.closed for m in asterisk.managers)
    failed = [e for e in logs if e["event"] == "ami_login_failed"]
    assert failed and "Authentication failed" in failed[0]["error"]
    assert [e["retry_in"] for e in failed[:3]] == [0.01, 0.02, 0.02]
    assert "s3cret" not in repr(logs)


# --- the real panoramisk Manager, fed raw AMI bytes ------------------------------------------------
class WireTransport(asyncio.Transport):
    """Parses what panoramisk writes and answers through the real AMIProtocol."""

    def __init__(self, protocol: AMIProtocol, answer: Answer) -> None:
        super().__init__()
        self.protocol = protocol
        self.answer = answer
        self.closing = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        headers = dict(line.split(": ", 1) for line in bytes(data).decode().split("\r\n") if ": " in line)
        for block in self.answer(headers):
            text = "".join(f"{k}: {v}\r\n" for k, v in block.items()) + "\r\n"
            asyncio.get_running_loop().call_soon(self.protocol.data_received, text.encode())

    def close(self) -> None:
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing


def wire_factory(answer: Answer, made: list[Any]) -> Callable[..., Any]:
    class WireManager(panoramisk.Manager):  # type: ignore[misc]
        def connect(self) -> asyncio.Future[Any]:
            protocol = AMIProtocol()
            transport = WireTransport(protocol, answer)
            protocol.connection_made(transport)
            fut = asyncio.get_running_loop().create_future()
            fut.set_result((transport, protocol))
            self.connection_made(fut)
            return fut

    def factory(**config: Any) -> Any:
        m = WireManager(**config)
        made.append(m)
        return m

    return factory


def asterisk_on_the_wire(action: dict[str, str]) -> list[dict[str, str]]:
    aid = action["ActionID"]
    match action["Action"]:
        case "Login":
            assert action["Secret"] == "s3cret"
            return [{"Response": "Success", "ActionID": aid, "Message": "Authentication accepted"},
                    {"Event": "FullyBooted", "Privilege": "system,all", "Status": "Fully Booted"}]
        case "CoreShowChannels":
            return [{"Response": "Success", "ActionID": aid, "EventList": "start",
                     "Message": "Channels will follow"},
                    {"Event": "CoreShowChannel", "ActionID": aid, "Channel": "PJSIP/agent1-00000001"},
                    {"Event": "CoreShowChannelsComplete", "ActionID": aid, "EventList": "Complete",
                     "ListItems": "1"}]
        case "QueueAdd":
            return [{"Response": "Success", "ActionID": aid, "Message": "Added interface to queue"}]
        case _:
            return [{"Response": "Error", "ActionID": aid, "Message": "Invalid/unknown command"}]


async def test_real_panoramisk_manager_on_the_wire() -> None:
    made: list[Any] = []
    c = AmiClient("ami.test", 5038, "cc", "s3cret", timeout=1.0, keepalive=None,
                  manager_factory=wire_factory(asterisk_on_the_wire, made))
    got: list[AmiEvent] = []

    @c.on_event
    async def collect(event: AmiEvent) -> None:
        got.append(event)

    runner = asyncio.create_task(c.run())
    try:
        await asyncio.wait_for(c.connected.wait(), 2)
        await until(lambda: bool(got))
        assert isinstance(got[0], FullyBooted)
        channels = await c.action_list("CoreShowChannels")
        assert [ch["Channel"] for ch in channels] == ["PJSIP/agent1-00000001"]
        # panoramisk's heuristics would take this single answer for the start of a list and hang
        added = await c.action("QueueAdd", Queue="cc-fb-support", Interface="PJSIP/agent1")
        assert added["Message"] == "Added interface to queue"
        # with panoramisk's list auto-detection an Error resolves at once (as_list=True would hang)
        with pytest.raises(AmiActionFailed, match="Invalid/unknown command"):
            await c.action_list("PJSIPShowContactz")
        made[0].dispatch(Message({"Event": "ContactStatus", "AOR": "agent1", "EndpointName": "agent1",
                                  "ContactStatus": "Unreachable", "URI": "sip:agent1@127.0.0.1:5062"}))
        await until(lambda: len(got) == 2)
        assert got[1] == ContactStatus("ContactStatus", {}, aor="agent1", endpoint="agent1",
                                       status="Unreachable", uri="sip:agent1@127.0.0.1:5062")
    finally:
        runner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await runner
        await c.close()
    assert made[0].protocol.transport.closing and made[0].pinger is None
