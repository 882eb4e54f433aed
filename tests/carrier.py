"""A SIPp carrier for outbound-dialing tests: the called parties behind Asterisk's `pstn` trunk.

Asterisk dials ``sip:+NUMBER@127.0.0.2:5080``; one long-running SIPp UAS bound there plays the
called party chosen by the LAST DIGIT of the Request-URI user part (see `KINDS` / `number()`):

    0, 8, 9  human: rings 1 s, answers (PCMA), says "Hello?", then waits up to 300 s for Asterisk's BYE
    1        human who says "Hello?" and hangs up (BYE) 4 s after answering
    2        human who hangs up 0.5 s after answering, without a word
    3        answering machine: rings 1 s, answers, ~6 s greeting and a beep, waits for BYE
    4        486 Busy Here          (Asterisk hangup cause 17)
    5        180 Ringing until CANCEL (200 to the CANCEL, 487 to the INVITE)
    6        603 Decline            (cause 21)
    7        503 Service Unavailable (cause 34)

The greetings are espeak-ng speech resampled by sox to 8 kHz A-law and wrapped into an RTP pcap
(`greeting_pcap`) that SIPp's play_pcap_audio streams; they are shaped for app_amd's defaults:
the human says one AMD "word" (< 1.5 s of voice, no inner gap >= 50 ms) followed by 3 s of digital
silence (HUMAN after 800 ms of silence); the machine talks for ~6 s with short pauses (MACHINE by
MAXWORDS with 2-3 words, else LONGGREETING). The carrier's own BYEs carry `Reason: Q.850;cause=16`
(without it Asterisk reports hangup cause 0). Dialed numbers are logged for `calls_seen()`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

from sipp import RESP_HEAD, SDP, _base_cmd, _scenario, _write, next_ports

CARRIER_IP = "127.0.0.2"
CARRIER_PORT = 5080

# kind -> last digit of the dialed number (8 and 9 behave like 0).
KINDS: dict[str, int] = {
    "human": 0,
    "human_hangs_up": 1,
    "human_quick_hangup": 2,
    "machine": 3,
    "busy": 4,
    "no_answer": 5,
    "reject": 6,
    "congestion": 7,
}


def number(kind: str, n: int) -> str:
    """A fictional US number (+1 202 555 xxxx) whose last digit selects the carrier's behaviour.

    n (0..999) distinguishes numbers of the same kind: number("busy", 12) == "+12025550124".
    """
    if kind not in KINDS:
        raise ValueError(f"unknown carrier kind {kind!r}; one of {sorted(KINDS)}")
    if not 0 <= n <= 999:
        raise ValueError(f"n must be in 0..999, got {n}")
    return f"+1202555{n:03d}{KINDS[kind]}"


# --------------------------------------------------------------------------- audio

GreetingKind = Literal["human", "machine"]

_GENERATOR_VERSION = 1
_ALAW_SILENCE = 0xD5  # A-law code of linear 0
_FRAME = 160  # 20 ms of 8 kHz A-law
_PCAP_EPOCH = 1_700_000_000  # fixed pcap timestamps: the file is byte-for-byte reproducible


@dataclass(frozen=True)
class _Greeting:
    text: str
    speed: int  # espeak-ng words per minute
    lead: float  # seconds of digital silence before the speech
    trail: float  # seconds of digital silence at the end
    beep: float = 0.0  # seconds of 1 kHz tone 0.3 s after the speech (the machine's "tone")
    voice: str = "en-us"


_GREETINGS: dict[str, _Greeting] = {
    # One AMD word (~0.5 s of voice, no inner pause), then silence: HUMAN after 800 ms of it.
    "human": _Greeting("Hello?", speed=150, lead=0.3, trail=3.0),
    # ~6 s of speech with short pauses: MACHINE by MAXWORDS (2-3 words) or LONGGREETING (1.5 s voice).
    "machine": _Greeting("Hi, you have reached the Smith family. We cannot take your call right now. "
                         "Please leave a message after the tone.", speed=175, lead=0.3, trail=1.0, beep=0.5),
}


def _run(cmd: list[str]) -> bytes:
    res = subprocess.run(cmd, capture_output=True, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed ({res.returncode}): {res.stderr.decode(errors='replace')[-500:]}")
    out: bytes = res.stdout
    return out


def _speech_alaw(text: str, voice: str, speed: int, workdir: Path) -> bytes:
    """espeak-ng speech, trimmed of its own leading/trailing silence, as raw 8 kHz mono A-law."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (needed to build the carrier's greetings)")
    wav = workdir / "speech.wav"
    _run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(wav), text])
    # -D: no dither (reproducible output, true digital silence). The silence effects trim espeak's
    # own padding so the caller decides how much silence surrounds the words.
    return _run(["sox", "-D", str(wav), "-r", "8000", "-c", "1", "-e", "a-law", "-b", "8", "-t", "raw", "-",
                 "silence", "1", "0.01", "0.5%", "reverse", "silence", "1", "0.01", "0.5%", "reverse",
                 "norm", "-3"])


def _beep_alaw(seconds: float) -> bytes:
    return _run(["sox", "-D", "-n", "-r", "8000", "-c", "1", "-e", "a-law", "-b", "8", "-t", "raw", "-",
                 "synth", f"{seconds}", "sine", "1000", "vol", "0.4"])


def greeting_alaw(kind: GreetingKind, workdir: Path) -> bytes:
    """The greeting as raw A-law samples (8 kHz), silence included, a whole number of 20 ms frames."""
    g = _GREETINGS[kind]
    silence = bytes([_ALAW_SILENCE])
    audio = silence * int(g.lead * 8000) + _speech_alaw(g.text, g.voice, g.speed, workdir)
    if g.beep > 0:
        audio += silence * 2400 + _beep_alaw(g.beep)
    audio += silence * int(g.trail * 8000)
    if len(audio) % _FRAME:
        audio += bytes([_ALAW_SILENCE]) * (_FRAME - len(audio) % _FRAME)
    return audio


def _ip_checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rtp_pcap(alaw: bytes, *, ssrc: int = 0x0CCA0001, src: str = "10.0.0.1", dst: str = "10.0.0.2",
             sport: int = 6000, dport: int = 6002) -> bytes:
    """A classic libpcap file (Ethernet/IPv4/UDP/RTP, like /usr/share/sip-tester/g711a.pcap): one
    RTP packet per 160 bytes of A-law (payload type 8), 20 ms apart; SIPp rewrites the addresses."""
    out = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    eth = bytes.fromhex("00d050100166" "000476222017") + struct.pack("!H", 0x0800)
    for i in range(0, len(alaw), _FRAME):
        seq = i // _FRAME
        payload = alaw[i:i + _FRAME].ljust(_FRAME, bytes([_ALAW_SILENCE]))
        rtp = struct.pack("!BBHII", 0x80, (0x80 if seq == 0 else 0) | 8, seq & 0xFFFF, i & 0xFFFFFFFF, ssrc)
        udp_len = 8 + len(rtp) + len(payload)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, seq & 0xFFFF, 0x4000, 64, 17, 0,
                         socket.inet_aton(src), socket.inet_aton(dst))
        ip = ip[:10] + struct.pack("!H", _ip_checksum(ip)) + ip[12:]
        frame = eth + ip + struct.pack("!HHHH", sport, dport, udp_len, 0) + rtp + payload
        usec = seq * 20_000
        out += struct.pack("<IIII", _PCAP_EPOCH + usec // 1_000_000, usec % 1_000_000, len(frame), len(frame))
        out += frame
    return bytes(out)


def greeting_pcap(kind: GreetingKind, cache_dir: Path) -> Path:
    """Build (once; cached under a hash of the generation parameters) the greeting's RTP pcap."""
    if kind not in _GREETINGS:
        raise ValueError(f"kind must be 'human' or 'machine', got {kind!r}")
    key = hashlib.sha256(json.dumps([_GENERATOR_VERSION, kind, asdict(_GREETINGS[kind])], sort_keys=True).encode())
    path = cache_dir / f"greeting_{kind}_{key.hexdigest()[:16]}.pcap"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cc_greeting_") as tmp:
        data = rtp_pcap(greeting_alaw(kind, Path(tmp)))
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_bytes(data)
    part.replace(path)  # atomic: concurrent builders (xdist workers) never see half a file
    return path


# --------------------------------------------------------------------------- SIP scenario

# Our own requests (BYE) in the dialog Asterisk created: its Contact, From and To swapped.
_OWN_BYE = """BYE [$remote_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: [$local_to];tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
[last_Call-ID:]
CSeq: 101 BYE
Max-Forwards: 70
Reason: Q.850;cause=16;text="Normal Clearing"
Contact: <sip:carrier@[local_ip]:[local_port]>
Content-Length: 0

"""


def _final(code: str, label: str) -> str:
    """A failure response to the INVITE, then its ACK."""
    return f"""<label id="{label}"/>
<send><![CDATA[
SIP/2.0 {code}
{RESP_HEAD}Content-Length: 0

]]></send>
<recv request="ACK" next="end"/>
"""


def carrier_scenario(human_pcap: Path, machine_pcap: Path) -> str:
    """One UAS scenario for every called party, branching on the Request-URI's last digit."""
    kinds = "".join(
        f'<ereg regexp="^INVITE sip:[^@;> ]*{d}[@;>]" search_in="msg" assign_to="k{d}"/>\n' for d in range(1, 8))
    body = f"""
<recv request="INVITE" crlf="true">
  <action>
    <ereg regexp="^INVITE sip:([^@;> ]*)" search_in="msg" assign_to="ruri,dialed"/>
    {kinds}<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="inv_cseq"/>
    <ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
    <ereg regexp=".*" search_in="hdr" header="To:" assign_to="local_to"/>
    <ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="remote_contact"/>
    <log message="DIALED [$dialed] [call_id] [$ruri]"/>
  </action>
</recv>
<nop next="busy" test="k4"/>
<nop next="no_answer" test="k5"/>
<nop next="reject" test="k6"/>
<nop next="congestion" test="k7"/>

<send><![CDATA[
SIP/2.0 180 Ringing
{RESP_HEAD}Contact: <sip:carrier@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv request="CANCEL" timeout="1000" ontimeout="answer" next="cancelled"/>
<label id="answer"/>
<send retrans="500"><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Contact: <sip:carrier@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
<recv request="ACK" crlf="true"/>
<nop next="quick_hangup" test="k2"/>
<nop next="machine" test="k3"/>
<nop><action><exec play_pcap_audio="{human_pcap}"/></action></nop>
<nop next="wait_bye" test="k1"/>
<nop next="wait_bye_long"/>

<label id="wait_bye"/>
<recv request="BYE" timeout="4000" ontimeout="own_bye" next="bye_ok"/>

<label id="quick_hangup"/>
<recv request="BYE" timeout="500" ontimeout="own_bye" next="bye_ok"/>

<label id="machine"/>
<nop><action><exec play_pcap_audio="{machine_pcap}"/></action></nop>

<label id="wait_bye_long"/>
<recv request="BYE" timeout="300000"/>
<label id="bye_ok"/>
<send next="end"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>

<label id="own_bye"/>
<send retrans="500"><![CDATA[
{_OWN_BYE}]]></send>
<recv response="200" next="end"/>

{_final("486 Busy Here", "busy")}
{_final("603 Decline", "reject")}
{_final("503 Service Unavailable", "congestion")}
<label id="no_answer"/>
<send><![CDATA[
SIP/2.0 180 Ringing
{RESP_HEAD}Contact: <sip:carrier@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv request="CANCEL" timeout="300000"/>
<label id="cancelled"/>
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

<label id="end"/>
"""
    return _scenario("carrier", body)


# --------------------------------------------------------------------------- process

_DIALED = re.compile(r"^DIALED (\S+) ")
_PLANNED_TIMEOUT = re.compile(
    r"\d{4}-\d\d-\d\d\t[^\t]*\t[0-9.]+: Call-Id: [^,]*, receive timeout on message carrier:\d+, "
    r"jumping to label \d+?(?=\d{4}-\d\d-\d\d\t|\s|$)")


class Carrier:
    """The SIPp carrier (UAS on 127.0.0.2:5080) as a context manager.

    with Carrier(sip_target="127.0.0.1:5060") as carrier:
        ...  # originate to number("busy", 1)
        assert carrier.calls_seen() == ["+12025550014"]
    """

    def __init__(self, *, sip_target: str, cache_dir: Path | None = None, max_calls: int = 500,
                 port: int = CARRIER_PORT) -> None:
        self.port = port
        self.sip_target = sip_target
        self.cache_dir = cache_dir or Path(tempfile.gettempdir()) / "cc_ari_carrier_audio"
        self.max_calls = max_calls
        self.workdir: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_file: Path | None = None
        self.err_file = Path(f"/tmp/cc_sipp_{port}.err")  # where _base_cmd points -error_file
        self._stderr: Path | None = None

    # -- lifecycle
    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("carrier already started")
        _check_port_free(CARRIER_IP, self.port)
        human = greeting_pcap("human", self.cache_dir)
        machine = greeting_pcap("machine", self.cache_dir)
        self.workdir = Path(tempfile.mkdtemp(prefix="cc_carrier_"))
        self.log_file = self.workdir / "calls.log"
        self._stderr = self.workdir / "sipp.stderr"
        scen = _write(carrier_scenario(human, machine))
        _, rtp_port = next_ports()
        with contextlib.suppress(OSError):
            self.err_file.unlink()
        cmd = [*_base_cmd(scen, CARRIER_IP, self.port, rtp_port, self.sip_target),
               "-aa", "-l", str(self.max_calls), "-trace_logs", "-log_file", str(self.log_file),
               "-recv_timeout", "330000", "-f", "60"]
        # stdout (SIPp's statistics screen) must not go to an unread pipe: it would fill and block SIPp.
        with open(self._stderr, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = self._stderr.read_text(errors="replace")[-2000:]
                self.proc = None
                raise RuntimeError(f"carrier SIPp exited at start: {msg}\ncommand: {' '.join(cmd)}")
            if _udp_bound(CARRIER_IP, self.port):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"carrier SIPp did not bind {CARRIER_IP}:{self.port} within 5 s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> Carrier:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- observations
    def calls_seen(self) -> list[str]:
        """Dialed numbers (Request-URI users of new INVITEs), in arrival order."""
        if self.log_file is None or not self.log_file.exists():
            return []
        seen = []
        for line in self.log_file.read_text(errors="replace").splitlines():
            m = _DIALED.match(line)
            if m:
                seen.append(m.group(1))
        return seen

    def errors(self) -> str:
        """The tail of SIPp's error file (unexpected messages, timeouts), for assertion messages."""
        try:
            text = self.err_file.read_text(errors="replace")
        except OSError:
            return ""
        # The planned timers (ring 1 s, hang up after 0.5 s / 4 s) end as receive timeouts that jump
        # on: not errors. SIPp writes these entries without a newline between them.
        text = _PLANNED_TIMEOUT.sub("", text).replace("The following events occurred:", "").strip()
        return text[-3000:]


def _check_port_free(ip: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((ip, port))
        except OSError as e:
            raise RuntimeError(f"carrier address {ip}:{port}/udp is busy (another carrier SIPp running?): {e}") from e


def _udp_bound(ip: str, port: int) -> bool:
    """Whether some socket listens on ip:port/udp, read from /proc (a probing bind() could steal the
    port from SIPp while it starts)."""
    want = f"{socket.inet_aton(ip)[::-1].hex().upper()}:{port:04X}"
    try:
        lines = Path("/proc/net/udp").read_text().splitlines()[1:]
    except OSError:
        return True
    return any(line.split()[1] == want for line in lines if len(line.split()) > 1)
