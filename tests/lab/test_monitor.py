"""Supervision end to end: listen / whisper / barge through ARI snoop channels, with real audio.

Every party's media is a Python RTP endpoint (its SDP port is ours, not SIPp's: SIPp only does the
SIP) that sends its own tone and measures what it receives, per 20 ms packet, with a Goertzel
filter at each party's frequency: the caller says 400 Hz, the agent 700 Hz, the supervisor
1200 Hz. So "the caller hears the supervisor" is "1200 Hz in the packets the caller receives",
not a packet count (Asterisk sends packets, silence included, whatever is mixed in them).

    listen   the supervisor hears 400 + 700; neither the caller nor the agent hears 1200
    whisper  the agent hears 1200; the caller does not
    barge    the caller hears 1200 too

The supervisor's phone is INVITEd once for all mode changes. An agent-role token is refused.
report.monitoring holds one row per mode segment, contiguous in time.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import math
import os
import random
import re
import struct
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from conftest import Api, kill_service, lab_cmd
from sipp import (
    REQ_HEAD,
    RESP_HEAD,
    SDP,
    Sipp,
    _base_cmd,
    _scenario,
    _write,
    next_ports,
    register_scenario,
)

pytestmark = pytest.mark.lab

AGENT = "agent19"  # spare extensions: no other lab test logs these two in to a queue
SUPERVISOR = "agent20"
F_CALLER, F_AGENT, F_SUPERVISOR = 400, 700, 1200  # whole cycles in 20 ms: no leakage between them
AMPLITUDE = 8000
HEARD = 2000  # a tone at least this strong in a packet: that party is heard in it
SILENT = 600  # ... below this: not heard

# --------------------------------------------------------------------------- G.711 A-law


def _alaw_decode(code: int) -> int:
    code ^= 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    value = (mantissa << 4) + 8 if exponent == 0 else ((mantissa << 4) + 0x108) << (exponent - 1)
    return value if code & 0x80 else -value


ALAW = [_alaw_decode(c) for c in range(256)]


def _alaw_encode(sample: int) -> int:
    return min(range(256), key=lambda c: abs(ALAW[c] - sample))  # 160 samples once per party: fine


def _ulaw_decode(code: int) -> int:
    code = ~code & 0xFF
    value = (((code & 0x0F) << 3) + 0x84) << ((code >> 4) & 0x07)
    return (0x84 - value) if code & 0x80 else (value - 0x84)


ULAW = [_ulaw_decode(c) for c in range(256)]


def tone_frame(freq: int) -> bytes:
    """20 ms of a sine as A-law; a whole number of cycles, so frames repeat seamlessly."""
    return bytes(_alaw_encode(round(AMPLITUDE * math.sin(2 * math.pi * freq * i / 8000))) for i in range(160))


def tone_amplitude(samples: list[int], freq: int) -> float:
    """Goertzel: the amplitude of `freq` in these 8 kHz samples."""
    n = len(samples)
    coeff = 2 * math.cos(2 * math.pi * freq / 8000)
    s1 = s2 = 0.0
    for x in samples:
        s1, s2 = x + coeff * s1 - s2, s1
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return 2 * math.sqrt(max(power, 0.0)) / n


# --------------------------------------------------------------------------- RTP endpoints


@dataclass
class Received:
    at: float
    amps: dict[int, float]


class RtpParty(asyncio.DatagramProtocol):
    """One party's media: sends its tone every 20 ms to Asterisk's address for the current
    dialog (from the SIP log), records the tones in every packet it receives."""

    def __init__(self, name: str, ip: str, port: int, freq: int) -> None:
        self.name, self.ip, self.port, self.freq = name, ip, port, freq
        self.frame = tone_frame(freq)
        self.remote: tuple[str, int] | None = None
        self.received: list[Received] = []
        self.transport: asyncio.DatagramTransport | None = None
        self._task: asyncio.Task[None] | None = None
        self._ssrc = random.getrandbits(32)
        self.log_file: Path | None = None  # SIPp's <log> lines: "MEDIA c=IN IP4 x m=audio p"

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=(self.ip, self.port))
        self._task = asyncio.create_task(self._send())

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:
            return
        pt = data[1] & 0x7F
        if pt not in (0, 8):
            return
        offset = 12 + 4 * (data[0] & 0x0F)
        if data[0] & 0x10 and len(data) >= offset + 4:  # header extension
            offset += 4 + 4 * struct.unpack("!H", data[offset + 2:offset + 4])[0]
        table = ALAW if pt == 8 else ULAW
        samples = [table[b] for b in data[offset:]]
        if len(samples) < 80:
            return
        self.received.append(Received(time.monotonic(), {f: tone_amplitude(samples, f)
                                                          for f in (F_CALLER, F_AGENT, F_SUPERVISOR)}))

    def _media(self) -> tuple[str, int] | None:
        if self.log_file is None or not self.log_file.exists():
            return None
        found = re.findall(r"MEDIA c=IN IP4 ([0-9.]+) m=audio ([0-9]+)", self.log_file.read_text(errors="replace"))
        return (found[-1][0], int(found[-1][1])) if found else None

    def dialogs(self) -> int:
        """How many dialogs (INVITEs) this party's SIPp saw."""
        if self.log_file is None or not self.log_file.exists():
            return 0
        return len(re.findall(r"MEDIA c=", self.log_file.read_text(errors="replace")))

    async def _send(self) -> None:
        seq, ts = random.getrandbits(16), random.getrandbits(32)
        next_at = time.monotonic()
        polled = 0.0
        while True:
            now = time.monotonic()
            if now - polled > 0.1:
                polled = now
                self.remote = self._media() or self.remote
            if self.remote is not None and self.transport is not None:
                header = struct.pack("!BBHII", 0x80, 8, seq & 0xFFFF, ts & 0xFFFFFFFF, self._ssrc)
                self.transport.sendto(header + self.frame, self.remote)
                seq += 1
                ts += 160
            next_at += 0.02
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def mark(self) -> float:
        return time.monotonic()

    def heard(self, freq: int, since: float, until: float | None = None) -> tuple[float, float, int]:
        """(fraction of packets with `freq` heard, fraction with it silent, packets) in the window."""
        window = [r for r in self.received if r.at >= since and (until is None or r.at <= until)]
        if not window:
            return 0.0, 0.0, 0
        loud = sum(1 for r in window if r.amps[freq] >= HEARD)
        quiet = sum(1 for r in window if r.amps[freq] < SILENT)
        return loud / len(window), quiet / len(window), len(window)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.transport is not None:
            self.transport.close()


def _sdp(port: int) -> str:
    return SDP.replace("[media_port]", str(port))


_MEDIA_LOG = ('<ereg regexp="c=IN IP4 [0-9.]+" search_in="msg" assign_to="cline"/>'
              '<ereg regexp="m=audio [0-9]+" search_in="msg" assign_to="mline"/>'
              '<log message="MEDIA [$cline] [$mline]"/>')


def caller_xml(caller: str, media_port: int) -> str:
    """The carrier calls [service] and waits (up to 5 min) for Asterisk's BYE."""
    head = REQ_HEAD.format(user=caller, to="[service]")
    return _scenario("monitored caller", f"""
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{_sdp(media_port)}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"><action>{_MEDIA_LOG}</action></recv>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv request="BYE" timeout="300000"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
""")


def phone_xml(media_port: int, ring_ms: int = 300) -> str:
    """A softphone (UAS, one instance per INVITE) that answers with our media port and waits for BYE."""
    return _scenario("phone with python media", f"""
<recv request="INVITE" crlf="true"><action>{_MEDIA_LOG}</action></recv>
<send><![CDATA[
SIP/2.0 180 Ringing
{RESP_HEAD}Contact: <sip:phone@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<pause milliseconds="{ring_ms}"/>
<send retrans="500"><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Contact: <sip:phone@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{_sdp(media_port)}]]></send>
<recv request="ACK" crlf="true"/>
<recv request="BYE" timeout="300000"/>
<send><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Content-Length: 0

]]></send>
""")


@dataclass
class Phone:
    name: str
    password: str
    target: str
    media: RtpParty
    uas: Sipp | None = None
    procs: list[Sipp] = field(default_factory=list)

    def start(self) -> None:
        port, rtp = next_ports()
        self.uas_port = port
        self.media.log_file = Path(f"/tmp/cc_monitor_{port}.log")
        self.media.log_file.unlink(missing_ok=True)
        cmd = [*_base_cmd(_write(phone_xml(self.media.port)), "127.0.0.1", port, rtp, self.target), "-aa",
               "-timeout", "300s", "-trace_logs", "-log_file", str(self.media.log_file)]
        self.uas = Sipp(cmd, Path(f"/tmp/cc_sipp_{port}.err"))

    def register(self, expires: int = 600) -> None:
        port, rtp = next_ports()
        scen = _write(register_scenario(self.name, self.uas_port, expires))
        cmd = [*_base_cmd(scen, "127.0.0.1", port, rtp, self.target), "-s", self.name, "-au", self.name,
               "-ap", self.password, "-m", "1", "-timeout", "10s", "-timeout_error"]
        res = Sipp(cmd, Path(f"/tmp/cc_sipp_{port}.err")).wait(15)
        assert res.returncode == 0, f"REGISTER of {self.name} failed: {res.errors or res.stderr}"

    def stop(self) -> None:
        if self.uas is not None:
            self.uas.stop()
            with contextlib.suppress(AssertionError):
                self.register(expires=0)


def free_media_port() -> int:
    port, _ = next_ports()  # a block no SIPp of this run uses; only its first port is bound here
    return port


def ari_hangup(lab: dict[str, str], channel_id: str) -> None:
    """Hang up a channel as if that party had (the carrier's caller, here)."""
    req = urllib.request.Request(f"{lab['CC_ARI_URL']}/ari/channels/{channel_id}", method="DELETE")
    auth = base64.b64encode(f"{lab['CC_ARI_USER']}:{lab['CC_ARI_PASSWORD']}".encode()).decode()
    req.add_header("Authorization", f"Basic {auth}")
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(req, timeout=5).close()


async def until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def listen_window(seconds: float = 2.5, settle: float = 0.8) -> tuple[float, float]:
    await asyncio.sleep(settle)  # a mode change takes effect; the jitter buffers drain
    t0 = time.monotonic()
    await asyncio.sleep(seconds)
    return t0, time.monotonic()


def hears(party: RtpParty, freq: int, window: tuple[float, float]) -> bool:
    loud, _, n = party.heard(freq, *window)
    assert n >= 50, f"{party.name} received only {n} packets in {window[1] - window[0]:.1f} s"
    return loud >= 0.6


def deaf_to(party: RtpParty, freq: int, window: tuple[float, float]) -> bool:
    _, quiet, n = party.heard(freq, *window)
    assert n >= 50, f"{party.name} received only {n} packets in {window[1] - window[0]:.1f} s"
    return quiet >= 0.98


def summary(parties: list[RtpParty], window: tuple[float, float]) -> str:
    out = []
    for p in parties:
        parts = []
        for f in (F_CALLER, F_AGENT, F_SUPERVISOR):
            loud, quiet, n = p.heard(f, *window)
            parts.append(f"{f}Hz loud={loud:.2f} quiet={quiet:.2f}")
        out.append(f"{p.name} ({n} pkts): " + ", ".join(parts))
    return "; ".join(out)


def debug(info: str) -> None:
    if os.environ.get("CC_MONITOR_TEST_DEBUG"):
        print(info)


def start_caller(lab: dict[str, str], caller_number: str, media: RtpParty) -> Sipp:
    """The carrier calls 5001 (queue support); `media` is the caller's voice and ears."""
    port, rtp = next_ports()
    media.log_file = Path(f"/tmp/cc_monitor_{port}.log")
    media.log_file.unlink(missing_ok=True)
    cmd = [*_base_cmd(_write(caller_xml(caller_number, media.port)), lab["CC_CARRIER_HOST"], port, rtp,
                      f"127.0.0.1:{lab['CC_SIP_PORT']}"),
           "-s", "5001", "-m", "1", "-timeout", "300s", "-timeout_error",
           "-trace_logs", "-log_file", str(media.log_file)]
    return Sipp(cmd, Path(f"/tmp/cc_sipp_{port}.err"))


def on_call_with(api: Api, caller_number: str) -> bool:
    a = api.agent(AGENT)
    return a["state"] == "on_call" and (a.get("call") or {}).get("caller") == caller_number


def hang_up_session(lab: dict[str, str], api: Api) -> None:
    leg = (api.agent(AGENT).get("session") or {}).get("leg_id")
    if leg:
        ari_hangup(lab, leg)


def quietly(fn: Any, *args: Any) -> None:
    """A cleanup step that must not stop the next ones (the service may be restarting)."""
    try:
        fn(*args)
    except Exception as exc:
        print(f"cleanup {getattr(fn, '__name__', fn)} failed: {exc!r}")


@pytest.fixture
def sup_api(lab: dict[str, str]) -> Api:
    return Api(lab["CC_API_URL"], lab["CC_SUPERVISOR_TOKEN"])


async def test_listen_whisper_barge_end_to_end(lab, api, sup_api, db, caller_number):
    target = f"127.0.0.1:{lab['CC_SIP_PORT']}"
    carrier = lab["CC_CARRIER_HOST"]
    caller_media = RtpParty("caller", carrier, free_media_port(), F_CALLER)
    agent_media = RtpParty("agent", "127.0.0.1", free_media_port(), F_AGENT)
    sup_media = RtpParty("supervisor", "127.0.0.1", free_media_port(), F_SUPERVISOR)
    parties = [caller_media, agent_media, sup_media]
    agent = Phone(AGENT, lab["CC_AGENT_PASSWORD"], target, agent_media)
    sup = Phone(SUPERVISOR, lab["CC_AGENT_PASSWORD"], target, sup_media)
    caller: Sipp | None = None
    call_id = None
    try:
        assert api.agent(AGENT)["call_id"] is None and api.agent(SUPERVISOR)["call_id"] is None, "agents busy"
        for p in parties:
            await p.start()
        for phone in (agent, sup):
            phone.start()
            await asyncio.to_thread(phone.register)
            await until(lambda n=phone.name: api.agent(n)["registered"], 5, f"{phone.name} online")
        api.ok("POST", f"/api/agents/{AGENT}/login", {"queues": ["support"]})

        # The caller reaches the agent; both hear each other.
        caller = start_caller(lab, caller_number, caller_media)
        await until(lambda: on_call_with(api, caller_number), 20, f"{AGENT} on the call")
        call_id = api.agent(AGENT)["call_id"]
        base = await listen_window()
        assert hears(caller_media, F_AGENT, base) and hears(agent_media, F_CALLER, base), summary(parties, base)

        # Refusals: an agent-role token; unknown call; a supervisor who is on the call; bad bodies.
        agent_token = lab["CC_AGENT_TOKEN"]
        body = {"supervisor": SUPERVISOR, "mode": "listen"}
        status, err = api.call("POST", f"/api/calls/{call_id}/monitor", body, token=agent_token)
        assert status == 403, (status, err)
        assert api.call("GET", "/api/monitors", token=agent_token)[0] == 403
        assert sup_api.call("POST", "/api/calls/nope/monitor", body)[0] == 404
        assert sup_api.call("POST", f"/api/calls/{call_id}/monitor", {"supervisor": AGENT})[0] == 409
        assert sup_api.call("POST", f"/api/calls/{call_id}/monitor", {**body, "mode": "spy"})[0] == 422
        assert sup_api.call("POST", f"/api/calls/{call_id}/monitor", {**body, "x": 1})[0] == 422
        assert sup_api.call("POST", f"/api/calls/{call_id}/monitor", {**body, "supervisor": "nobody"})[0] == 422

        # listen: the supervisor's phone rings and hears both; nobody hears the supervisor.
        status, mon = sup_api.call("POST", f"/api/calls/{call_id}/monitor", body)
        assert status == 202, (status, mon)
        assert (mon["call_id"], mon["supervisor"], mon["agent"], mon["mode"], mon["state"]) == (
            call_id, SUPERVISOR, AGENT, "listen", "ringing")
        mid = mon["monitor_id"]
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid}")["state"] == "active", 10, "monitor active")
        assert [m["monitor_id"] for m in sup_api.ok("GET", "/api/monitors")["monitors"]] == [mid]
        assert sup_api.call("POST", f"/api/calls/{call_id}/monitor", body)[0] == 409  # already monitoring
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert hears(sup_media, F_CALLER, w) and hears(sup_media, F_AGENT, w), info
        assert deaf_to(caller_media, F_SUPERVISOR, w), info
        assert deaf_to(agent_media, F_SUPERVISOR, w), info
        assert hears(caller_media, F_AGENT, w), info  # the call itself goes on

        # whisper: the agent hears the supervisor, the caller does not.
        assert api.call("POST", f"/api/monitors/{mid}", {"mode": "whisper"}, token=agent_token)[0] == 403
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "whisper"})["mode"] == "whisper"
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert hears(agent_media, F_SUPERVISOR, w), info
        assert deaf_to(caller_media, F_SUPERVISOR, w), info
        assert hears(sup_media, F_CALLER, w) and hears(sup_media, F_AGENT, w), info
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "whisper"})["mode"] == "whisper"  # idempotent

        # barge: the caller hears the supervisor too.
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "barge"})["mode"] == "barge"
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert hears(caller_media, F_SUPERVISOR, w), info
        assert hears(agent_media, F_SUPERVISOR, w), info
        assert hears(sup_media, F_CALLER, w), info
        assert deaf_to(sup_media, F_SUPERVISOR, w), info  # no echo of themselves

        # back to listen: the caller no longer hears the supervisor.
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "listen"})["mode"] == "listen"
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert deaf_to(caller_media, F_SUPERVISOR, w) and deaf_to(agent_media, F_SUPERVISOR, w), info
        assert sup_media.dialogs() == 1, "a mode change must never call the supervisor again"

        # The end: DELETE (idempotent); the supervisor's phone gets its BYE, the call goes on.
        assert api.call("DELETE", f"/api/monitors/{mid}", token=agent_token)[0] == 403
        ended = sup_api.ok("DELETE", f"/api/monitors/{mid}")
        assert (ended["state"], ended["end_reason"]) == ("ended", "stopped")
        assert sup_api.ok("DELETE", f"/api/monitors/{mid}")["state"] == "ended"
        assert sup_api.call("POST", f"/api/monitors/{mid}", {"mode": "barge"})[0] == 409
        assert sup_api.ok("GET", "/api/monitors")["monitors"] == []
        await asyncio.sleep(1.0)
        quiet_since = time.monotonic()
        await asyncio.sleep(1.0)
        assert sup_media.heard(F_CALLER, quiet_since)[2] == 0, "the supervisor still receives media"
        assert api.agent(AGENT)["state"] == "on_call"

        # A second session ends with the call itself.
        status, mon2 = sup_api.call("POST", f"/api/calls/{call_id}/monitor", {"supervisor": SUPERVISOR,
                                                                             "mode": "whisper"})
        assert status == 202, (status, mon2)
        mid2 = mon2["monitor_id"]
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid2}")["state"] == "active", 10, "monitor 2")
        assert sup_media.dialogs() == 2
        # Concurrent switches are serialized (each answers with a consistent state), then the
        # call ends while switches are still being asked for.
        switches = ["listen", "barge", "whisper", "barge", "listen"]
        answers = await asyncio.gather(*(asyncio.to_thread(sup_api.call, "POST", f"/api/monitors/{mid2}",
                                                           {"mode": mode}) for mode in switches))
        assert all(status == 200 for status, _ in answers), answers
        final = sup_api.ok("GET", f"/api/monitors/{mid2}")
        assert final["state"] == "active" and final["mode"] in switches
        late = [asyncio.to_thread(sup_api.call, "POST", f"/api/monitors/{mid2}", {"mode": mode})
                for mode in ("whisper", "listen", "barge")]
        late_answers = asyncio.gather(*late)
        ari_hangup(lab, call_id)
        assert all(status in (200, 409) for status, _ in await late_answers)
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid2}")["state"] == "ended", 10, "monitor 2 end")
        assert sup_api.ok("GET", f"/api/monitors/{mid2}")["end_reason"] == "call_ended"
        res = await asyncio.to_thread(caller.wait, 15)
        assert res.returncode == 0, res.errors or res.stderr

        # report.monitoring: one row per mode segment, contiguous; the sessions' ends.
        async def rows() -> list[Any]:
            return await db.fetch("SELECT * FROM report.monitoring WHERE call_id = $1 ORDER BY started_at", call_id)

        deadline = time.monotonic() + 10
        got = await rows()
        while time.monotonic() < deadline and not (len(got) >= 5 and all(r["ended_at"] for r in got)):
            await asyncio.sleep(0.25)
            got = await rows()
        first = [r for r in got if r["monitor_id"] == mid]
        assert [r["mode"] for r in first] == ["listen", "whisper", "barge", "listen"], got
        assert [r["segment"] for r in first] == [1, 2, 3, 4]
        assert all((r["supervisor"], r["agent"], r["end_reason"]) == (SUPERVISOR, AGENT, "stopped") for r in first)
        assert all(a["ended_at"] == b["started_at"] for a, b in itertools.pairwise(first))
        assert all(r["ended_at"] > r["started_at"] for r in first)
        assert 2.0 < float(first[1]["seconds"]) < 8.0, first[1]
        second = [r for r in got if r["monitor_id"] == mid2]
        assert second[0]["mode"] == "whisper" and all(r["end_reason"] == "call_ended" for r in second), second
        assert [r["segment"] for r in second] == list(range(1, len(second) + 1))
        assert all(a["ended_at"] == b["started_at"] and a["mode"] != b["mode"]
                   for a, b in itertools.pairwise(second)), second
        assert all(r["ended_at"] for r in second), second
        session = await db.fetchrow("SELECT * FROM report.monitoring_sessions WHERE monitor_id = $1", mid)
        assert session["answered_at"] is not None and session["ended_at"] == first[-1]["ended_at"]
        call_row = await db.fetchrow("SELECT ended_at FROM report.calls WHERE call_id = $1", call_id)
        assert call_row["ended_at"] is not None and second[-1]["ended_at"] >= call_row["ended_at"]
        # the supervisor's phone is a leg of the call it monitored, one per session
        legs = await db.fetch("SELECT * FROM report.legs WHERE call_id = $1 AND role = 'supervisor' "
                              "ORDER BY started_at", call_id)
        assert len(legs) == 2, legs
        assert all(leg["endpoint"] == f"PJSIP/{SUPERVISOR}" and leg["answered_at"] and leg["ended_at"]
                   for leg in legs), legs
    finally:
        if call_id is not None:
            quietly(ari_hangup, lab, call_id)
        if caller is not None:
            caller.stop()
        for phone in (agent, sup):
            quietly(phone.stop)
        for p in parties:
            await p.close()
            if p.log_file is not None:
                p.log_file.unlink(missing_ok=True)



async def test_agent_in_a_persistent_session_is_monitored_on_the_sessions_channel(lab, api, sup_api, db,
                                                                                   caller_number):
    """A blended agent (campaign + queue) takes calls in their persistent session: the call's
    agent side is the session's channel (`Call.via_session`), which outlives the call. The snoop
    is on that channel; the caller's hang-up ends the supervision, the agent's session stays."""
    target = f"127.0.0.1:{lab['CC_SIP_PORT']}"
    caller_media = RtpParty("caller", lab["CC_CARRIER_HOST"], free_media_port(), F_CALLER)
    agent_media = RtpParty("agent", "127.0.0.1", free_media_port(), F_AGENT)
    sup_media = RtpParty("supervisor", "127.0.0.1", free_media_port(), F_SUPERVISOR)
    parties = [caller_media, agent_media, sup_media]
    agent = Phone(AGENT, lab["CC_AGENT_PASSWORD"], target, agent_media)
    sup = Phone(SUPERVISOR, lab["CC_AGENT_PASSWORD"], target, sup_media)
    name = f"m{time.time_ns() % 10**12}"
    caller: Sipp | None = None
    call_id = None
    try:
        assert api.agent(AGENT)["call_id"] is None and api.agent(SUPERVISOR)["call_id"] is None, "agents busy"
        for p in parties:
            await p.start()
        for phone in (agent, sup):
            phone.start()
            await asyncio.to_thread(phone.register)
            await until(lambda n=phone.name: api.agent(n)["registered"], 5, f"{phone.name} online")
        # A campaign that is never started: it only gives the agent a persistent session.
        status, out = api.call("POST", "/api/campaigns", {"name": name, "mode": "progressive",
                                                          "caller_id": "+15550100"})
        assert status == 201, out
        api.ok("POST", f"/api/agents/{AGENT}/login", {"campaigns": [name], "queues": ["support"]})
        await until(lambda: (api.agent(AGENT).get("session") or {}).get("up"), 15, "the agent's session up")
        session_leg = api.agent(AGENT)["session"]["leg_id"]
        assert agent_media.dialogs() == 1

        caller = start_caller(lab, caller_number, caller_media)
        await until(lambda: on_call_with(api, caller_number), 20, f"{AGENT} on the call")
        call_id = api.agent(AGENT)["call_id"]
        assert agent_media.dialogs() == 1  # the call joined the session: the agent's phone did not ring

        status, mon = sup_api.call("POST", f"/api/calls/{call_id}/monitor", {"supervisor": SUPERVISOR,
                                                                            "mode": "listen"})
        assert status == 202, (status, mon)
        mid = mon["monitor_id"]
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid}")["state"] == "active", 10, "monitor active")
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert hears(sup_media, F_AGENT, w) and hears(sup_media, F_CALLER, w), info
        assert deaf_to(agent_media, F_SUPERVISOR, w) and deaf_to(caller_media, F_SUPERVISOR, w), info
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "whisper"})["mode"] == "whisper"
        w = await listen_window()
        info = summary(parties, w)
        debug(info)
        assert hears(agent_media, F_SUPERVISOR, w) and deaf_to(caller_media, F_SUPERVISOR, w), info

        # The caller hangs up: the supervision ends with the call; the agent's session stays up.
        ari_hangup(lab, call_id)
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid}")["state"] == "ended", 10, "monitor end")
        assert sup_api.ok("GET", f"/api/monitors/{mid}")["end_reason"] == "call_ended"
        after = api.agent(AGENT)
        assert after["session"]["up"] and after["session"]["leg_id"] == session_leg, after
        await asyncio.sleep(1.0)
        quiet_since = time.monotonic()
        await asyncio.sleep(1.5)
        assert sup_media.heard(F_AGENT, quiet_since)[2] == 0, "the supervisor's phone was not hung up"
        assert agent_media.dialogs() == 1 and sup_media.dialogs() == 1

        deadline = time.monotonic() + 10
        rows: list[Any] = []
        while time.monotonic() < deadline and not (len(rows) == 2 and all(r["ended_at"] for r in rows)):
            rows = await db.fetch("SELECT * FROM report.monitoring WHERE monitor_id = $1 ORDER BY segment", mid)
            await asyncio.sleep(0.25)
        assert [(r["mode"], r["agent"], r["call_id"], r["end_reason"]) for r in rows] == [
            ("listen", AGENT, call_id, "call_ended"), ("whisper", AGENT, call_id, "call_ended")]
    finally:
        if call_id is not None:
            quietly(ari_hangup, lab, call_id)
        if caller is not None:
            caller.stop()
        quietly(api.call, "POST", f"/api/agents/{AGENT}/logout")
        quietly(api.call, "POST", f"/api/campaigns/{name}/stop")
        quietly(hang_up_session, lab, api)  # as the phone would: nobody is left talking to a dead phone
        for phone in (agent, sup):
            quietly(phone.stop)
        for p in parties:
            await p.close()
            if p.log_file is not None:
                p.log_file.unlink(missing_ok=True)


@pytest.mark.parametrize(("stop", "reason"), [("crash", "restart"), ("restart", "shutdown")])
async def test_a_restart_during_a_barge_hangs_up_the_supervisor_and_the_call_goes_on(stop, reason, lab, api, sup_api,
                                                                                      db, caller_number):
    """cc_ari SIGKILLed (or restarted) while a supervisor barges in: supervision is not resumed.
    After a crash the next cc_ari hangs up the supervisor's phone and the snoop it finds in its app
    and closes the session's row and open segment with end_reason 'restart'; a clean stop hangs
    them up itself ('shutdown'). Either way the caller no longer hears the supervisor, and the call
    itself is adopted and goes on."""
    target = f"127.0.0.1:{lab['CC_SIP_PORT']}"
    caller_media = RtpParty("caller", lab["CC_CARRIER_HOST"], free_media_port(), F_CALLER)
    agent_media = RtpParty("agent", "127.0.0.1", free_media_port(), F_AGENT)
    sup_media = RtpParty("supervisor", "127.0.0.1", free_media_port(), F_SUPERVISOR)
    parties = [caller_media, agent_media, sup_media]
    agent = Phone(AGENT, lab["CC_AGENT_PASSWORD"], target, agent_media)
    sup = Phone(SUPERVISOR, lab["CC_AGENT_PASSWORD"], target, sup_media)
    caller: Sipp | None = None
    call_id = None
    try:
        assert api.agent(AGENT)["call_id"] is None and api.agent(SUPERVISOR)["call_id"] is None, "agents busy"
        for p in parties:
            await p.start()
        for phone in (agent, sup):
            phone.start()
            await asyncio.to_thread(phone.register)
            await until(lambda n=phone.name: api.agent(n)["registered"], 5, f"{phone.name} online")
        api.ok("POST", f"/api/agents/{AGENT}/login", {"queues": ["support"]})
        caller = start_caller(lab, caller_number, caller_media)
        await until(lambda: on_call_with(api, caller_number), 20, f"{AGENT} on the call")
        call_id = api.agent(AGENT)["call_id"]
        status, mon = sup_api.call("POST", f"/api/calls/{call_id}/monitor", {"supervisor": SUPERVISOR,
                                                                            "mode": "listen"})
        assert status == 202, (status, mon)
        mid = mon["monitor_id"]
        await until(lambda: sup_api.ok("GET", f"/api/monitors/{mid}")["state"] == "active", 10, "monitor active")
        assert sup_api.ok("POST", f"/api/monitors/{mid}", {"mode": "barge"})["mode"] == "barge"
        w = await listen_window()
        assert hears(caller_media, F_SUPERVISOR, w), summary(parties, w)

        if stop == "crash":
            await asyncio.to_thread(kill_service)
            await asyncio.sleep(2.0)
            await asyncio.to_thread(lab_cmd, "service-start")
        else:
            await asyncio.to_thread(lab_cmd, "service-restart")
        await until(lambda: sup_media.received and time.monotonic() - sup_media.received[-1].at > 1.0, 20,
                    "the supervisor's phone hung up")
        w = await listen_window(settle=0.5)
        info = summary(parties, w)
        debug(info)
        assert deaf_to(caller_media, F_SUPERVISOR, w) and deaf_to(agent_media, F_SUPERVISOR, w), info
        assert hears(caller_media, F_AGENT, w) and hears(agent_media, F_CALLER, w), info  # the call goes on
        assert sup_media.heard(F_AGENT, *w)[2] == 0, info
        assert api.agent(AGENT)["call_id"] == call_id  # adopted
        assert sup_api.ok("GET", "/api/monitors")["monitors"] == []

        deadline = time.monotonic() + 10
        rows: list[Any] = []
        while time.monotonic() < deadline and not (len(rows) == 2 and all(r["ended_at"] for r in rows)):
            rows = await db.fetch("SELECT * FROM report.monitoring WHERE monitor_id = $1 ORDER BY segment", mid)
            await asyncio.sleep(0.25)
        assert [(r["mode"], r["end_reason"]) for r in rows] == [("listen", reason), ("barge", reason)], rows
        assert all(r["ended_at"] for r in rows), rows
        session = await db.fetchrow("SELECT * FROM report.monitoring_sessions WHERE monitor_id = $1", mid)
        assert session["end_reason"] == reason and session["ended_at"] == rows[-1]["ended_at"]

        ari_hangup(lab, call_id)
        res = await asyncio.to_thread(caller.wait, 15)
        assert res.returncode == 0, res.errors or res.stderr
    finally:
        if call_id is not None:
            quietly(ari_hangup, lab, call_id)
        if caller is not None:
            caller.stop()
        for phone in (agent, sup):
            quietly(phone.stop)
        for p in parties:
            await p.close()
            if p.log_file is not None:
                p.log_file.unlink(missing_ok=True)
