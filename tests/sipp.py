"""SIPp scenarios generated per test: the carrier's callers and the agents' softphones.

SIPp cannot take new INVITEs inside a scenario that began by sending, so an agent is two
SIPp processes: a one-shot REGISTER (UAC, digest auth) whose Contact points at a UAS process
that answers (or lets ring) every INVITE it gets.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PCAP_DIR = Path("/usr/share/sip-tester")
AUDIO = PCAP_DIR / "g711a.pcap"
# Below the kernel's ephemeral range (32768+), where any process's client socket may sit.
_ports = itertools.count(int(os.environ.get("CC_TEST_PORT_BASE", "21000")) + (os.getpid() % 10) * 800, 10)


def _free(port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                return False
    return True


def next_ports() -> tuple[int, int]:
    """(sip port, rtp port) unused by any other SIPp of this test run, and free right now (a
    port some other process holds made SIPp fail with "Unable to bind main socket")."""
    while True:
        p = next(_ports)
        if all(_free(q) for q in (p, p + 1, p + 2, p + 3)):
            return p, p + 2


SDP = """v=0
o=- 53655765 2353687637 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8 101
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-16
a=sendrecv
"""

REQ_HEAD = """Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:{user}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:{to}@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
Max-Forwards: 70
"""


def _scenario(name: str, body: str) -> str:
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n{body}\n</scenario>\n'


def _play(pcap: Path) -> str:
    return f'<nop><action><exec play_pcap_audio="{pcap}"/></action></nop>'


def caller_scenario(
    caller: str,
    *,
    steps: Sequence[tuple[str, object]] = (),
    hangup: str = "caller",
    wait_bye_ms: int = 60000,
) -> str:
    """The carrier calls [service] from `caller`. Steps: ("pause", ms), ("dtmf", "1"), ("audio", None).

    hangup="caller": send BYE after the steps; "remote": wait for Asterisk's BYE;
    "cancel": never answered path not used here.
    """
    head = REQ_HEAD.format(user=caller, to="[service]")
    body = f"""
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 1 INVITE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="200" rtd="true"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 1 ACK
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
"""
    for kind, arg in steps:
        if kind == "pause":
            body += f'<pause milliseconds="{int(arg)}"/>\n'  # type: ignore[call-overload]
        elif kind == "dtmf":
            digit = {"*": "star", "#": "pound"}.get(str(arg), str(arg))
            body += _play(PCAP_DIR / f"dtmf_2833_{digit}.pcap") + '\n<pause milliseconds="400"/>\n'
        elif kind == "audio":
            body += _play(AUDIO) + "\n"
    if hangup == "caller":
        body += f"""<send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 2 BYE
Contact: <sip:{caller}@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv response="200" crlf="true"/>
"""
    else:
        body += f"""<recv request="BYE" timeout="{wait_bye_ms}"/>
<send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
"""
    return _scenario("carrier caller", body)


def register_scenario(user: str, contact_port: int, expires: int = 600) -> str:
    head = REQ_HEAD.format(user=user, to=user)
    msg = f"""REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: {{cseq}} REGISTER
Contact: <sip:{user}@[local_ip]:{contact_port}>
Expires: {expires}
{{auth}}Content-Length: 0

"""
    body = f"""
<send retrans="500"><![CDATA[
{msg.format(cseq=1, auth="")}]]></send>
<recv response="401" auth="true"/>
<send retrans="500"><![CDATA[
{msg.format(cseq=2, auth="[authentication]" + chr(10))}]]></send>
<recv response="200"/>
"""
    return _scenario("agent register", body)


RESP_HEAD = """[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
"""


def agent_scenario(*, answer: bool = True, ring_ms: int = 500, talk_ms: int | None = None,
                   play_audio: bool = True, refer_to: str | None = None, refer_response: int = 603) -> str:
    """UAS: one instance per INVITE. answer=False lets it ring until CANCEL.

    talk_ms=None: wait for the caller's BYE; else the agent hangs up after talk_ms.
    refer_to: 1 s after answering, the agent asks for a blind transfer (REFER) to that number
    and expects `refer_response` (cc_ari refuses phone transfers: the call goes on).
    """
    captures = ""
    if not answer:
        captures += '<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="inv_cseq"/>'
    elif talk_ms is not None or refer_to is not None:
        captures += ('<ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>'
                     '<ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="remote_contact"/>')
    body = f"""
<recv request="INVITE" crlf="true"><action>{captures}</action></recv>
<send><![CDATA[
SIP/2.0 180 Ringing
{RESP_HEAD}Contact: <sip:agent@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
"""
    if not answer:
        body += f"""<recv request="CANCEL" timeout="120000"/>
<send><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Content-Length: 0

]]></send>
<send><![CDATA[
SIP/2.0 487 Request Terminated
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
CSeq: [$inv_cseq] INVITE
Content-Length: 0

]]></send>
<recv request="ACK"/>
"""
        return _scenario("agent lets it ring", body)
    body += f"""<pause milliseconds="{ring_ms}"/>
<send retrans="500"><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Contact: <sip:agent@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
<recv request="ACK" rtd="true" crlf="true"/>
"""
    if play_audio:
        body += _play(AUDIO) + "\n"
    if refer_to is not None:
        body += f"""<pause milliseconds="1000"/>
<send retrans="500"><![CDATA[
REFER [$remote_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:agent@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
[last_Call-ID:]
CSeq: 2 REFER
Max-Forwards: 70
Contact: <sip:agent@[local_ip]:[local_port]>
Refer-To: <sip:{refer_to}@[remote_ip]:[remote_port]>
Referred-By: <sip:agent@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv response="{refer_response}"/>
"""
    if talk_ms is None:
        body += f"""<recv request="BYE" timeout="120000"/>
<send><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Content-Length: 0

]]></send>
"""
    else:
        body += f"""<pause milliseconds="{talk_ms}"/>
<send retrans="500"><![CDATA[
BYE [$remote_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:agent@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
"""
    return _scenario("agent answers", body)


@dataclass
class SippResult:
    returncode: int
    stdout: str
    stderr: str
    errors: str


def _write(xml: str) -> Path:
    fd, name = tempfile.mkstemp(prefix="cc_sipp_", suffix=".xml")
    with os.fdopen(fd, "w") as f:
        f.write(xml)
    return Path(name)


def _base_cmd(scenario: Path, local_ip: str, sip_port: int, rtp_port: int, target: str) -> list[str]:
    return ["sipp", target, "-sf", str(scenario), "-i", local_ip, "-p", str(sip_port), "-mi", local_ip,
            "-mp", str(rtp_port), "-nostdin", "-trace_err", "-error_file", f"/tmp/cc_sipp_{sip_port}.err",
            "-nd", "-max_recv_loops", "1000"]


class Sipp:
    """A running SIPp process."""

    def __init__(self, cmd: list[str], err_file: Path) -> None:
        self.cmd = cmd
        self.err_file = err_file
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     stdin=subprocess.DEVNULL)

    def wait(self, timeout: float) -> SippResult:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
            return SippResult(-9, out, err, self._errors())
        return SippResult(self.proc.returncode, out, err, self._errors())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _errors(self) -> str:
        try:
            return self.err_file.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


def start_call(dnis: str, caller: str, *, sip_target: str, carrier_ip: str = "127.0.0.2",
               steps: Sequence[tuple[str, object]] = (), hangup: str = "caller", timeout_s: int = 90) -> Sipp:
    sip_port, rtp_port = next_ports()
    scen = _write(caller_scenario(caller, steps=steps, hangup=hangup))
    cmd = [*_base_cmd(scen, carrier_ip, sip_port, rtp_port, sip_target),
           "-s", dnis, "-m", "1", "-timeout", f"{timeout_s}s", "-timeout_error"]
    return Sipp(cmd, Path(f"/tmp/cc_sipp_{sip_port}.err"))


class AgentPhone:
    """A registered softphone: REGISTER once, then a UAS that handles every INVITE."""

    def __init__(self, name: str, password: str, *, sip_target: str, answer: bool = True, ring_ms: int = 500,
                 talk_ms: int | None = None, local_ip: str = "127.0.0.1", refer_to: str | None = None) -> None:
        self.name = name
        self.password = password
        self.sip_target = sip_target
        self.local_ip = local_ip
        self.uas_port, rtp = next_ports()
        scen = _write(agent_scenario(answer=answer, ring_ms=ring_ms, talk_ms=talk_ms, refer_to=refer_to))
        self.uas = Sipp([*_base_cmd(scen, local_ip, self.uas_port, rtp, sip_target), "-aa", "-timeout", "300s"],
                        Path(f"/tmp/cc_sipp_{self.uas_port}.err"))

    def register(self, *, password: str | None = None, expires: int = 600) -> SippResult:
        port, rtp = next_ports()
        scen = _write(register_scenario(self.name, self.uas_port, expires))
        cmd = [*_base_cmd(scen, self.local_ip, port, rtp, self.sip_target), "-s", self.name, "-au", self.name,
               "-ap", password or self.password, "-m", "1", "-timeout", "10s", "-timeout_error"]
        return Sipp(cmd, Path(f"/tmp/cc_sipp_{port}.err")).wait(15)

    def unregister(self) -> SippResult:
        return self.register(expires=0)

    def stop(self) -> None:
        self.uas.stop()
        self.unregister()  # no stale contact left for later tests (or the fallback queue)


def wait_until(pred: object, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(interval)
    return False
