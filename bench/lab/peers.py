"""SIPp load for the lab benchmarks: streams of carrier callers and groups of agent softphones.

Unlike tests/sipp.py (one SIPp per call), one SIPp process here places a whole stream of calls
(`-r`/`-rp` rate, `-l` concurrency, `-m` total: bounded) and one UAS process answers for a group
of agents (every agent of the group REGISTERs its Contact to that process's port). Each caller
number is `<prefix>[call_number]`, so a stream's calls are known from its count alone.

Scenarios branch with labels so that nothing waits on a message that may never come: a caller
waits for Asterisk's BYE at most `patience_ms`, then hangs up itself; an agent answers after
`ring_ms` unless CANCELled, then hangs up after `talk_ms` unless the caller did first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.sipp import PCAP_DIR, REQ_HEAD, RESP_HEAD, SDP, register_scenario

WORK = Path(tempfile.gettempdir()) / "cc_bench_sipp"


def _scenario(name: str, body: str) -> str:
    return f'<?xml version="1.0" encoding="ISO-8859-1" ?>\n<scenario name="{name}">\n{body}\n</scenario>\n'


def caller_scenario(prefix: str, *, steps: Sequence[tuple[str, object]] = (), patience_ms: int = 60000) -> str:
    """A carrier caller `<prefix>[call_number]` dialing [service]: after the steps ("pause", ms) /
    ("dtmf", digit), waits for Asterisk's BYE up to patience_ms, else sends its own BYE."""
    user = f"{prefix}[call_number]"
    head = REQ_HEAD.format(user=user, to="[service]")
    contact = f"Contact: <sip:{user}@[local_ip]:[local_port]>"
    body = f"""
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 1 INVITE
{contact}
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
{contact}
Content-Length: 0

]]></send>
"""
    for kind, arg in steps:
        if kind == "pause":
            body += f'<pause milliseconds="{arg}"/>\n'
        elif kind == "dtmf":
            digit = {"*": "star", "#": "pound"}.get(str(arg), str(arg))
            body += (f'<nop><action><exec play_pcap_audio="{PCAP_DIR / f"dtmf_2833_{digit}.pcap"}"/></action></nop>\n'
                     '<pause milliseconds="400"/>\n')
    body += f"""<recv request="BYE" timeout="{patience_ms}" ontimeout="1"/>
<send next="9"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
<label id="1"/>
<send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
{head}CSeq: 2 BYE
{contact}
Content-Length: 0

]]></send>
<recv response="200" crlf="true"/>
<label id="9"/>
"""
    return _scenario("bench caller", body)


def agent_scenario(*, ring_ms: int, talk_ms: int) -> str:
    """UAS for a group of agents: rings ring_ms (a CANCEL then ends it: 200 + 487), answers, and
    hangs up after talk_ms unless the caller's BYE comes first."""
    body = f"""
<recv request="INVITE" crlf="true"><action>
<ereg regexp="[0-9]+" search_in="hdr" header="CSeq:" assign_to="inv_cseq"/>
<ereg regexp=".*" search_in="hdr" header="From:" assign_to="remote_from"/>
<ereg regexp="sip:[^>;]*" search_in="hdr" header="Contact:" assign_to="remote_contact"/>
</action></recv>
<send><![CDATA[
SIP/2.0 180 Ringing
{RESP_HEAD}Contact: <sip:agent@[local_ip]:[local_port]>
Content-Length: 0

]]></send>
<recv request="CANCEL" timeout="{ring_ms}" ontimeout="1"/>
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
<recv request="ACK" next="9"/>
<label id="1"/>
<send retrans="500"><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Contact: <sip:agent@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP}]]></send>
<recv request="ACK" rtd="true" crlf="true"/>
<recv request="BYE" timeout="{talk_ms}" ontimeout="2"/>
<send next="9"><![CDATA[
SIP/2.0 200 OK
{RESP_HEAD}Content-Length: 0

]]></send>
<label id="2"/>
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
<label id="9"/>
"""
    return _scenario("bench agent", body)


class Ports:
    """SIP and media ports for the bench's SIPp processes, 10 apart (SIPp uses mp..mp+3), taken
    in turn from [base, end) and round again (for the short-lived REGISTER processes)."""

    def __init__(self, base: int, end: int) -> None:
        self.base, self.end, self.next = base, end, base

    def take(self) -> tuple[int, int]:
        if self.next + 10 > self.end:
            self.next = self.base
        p = self.next
        self.next += 10
        return p, p + 4


@dataclass
class Sipp:
    """One SIPp process and its files (scenario, errors, statistics CSV)."""

    name: str
    cmd: list[str]
    stat_file: Path
    err_file: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path = field(default=Path("/dev/null"))

    def start(self) -> Sipp:
        self.log = self.stat_file.with_suffix(".out")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stats(self) -> dict[str, str]:
        """The last line of SIPp's statistics CSV (-trace_stat), as {column: value}."""
        try:
            with open(self.stat_file, "rb") as f:
                head = f.readline().decode(errors="replace").strip().split(";")
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - 8192))
                tail = f.read().decode(errors="replace").strip().splitlines()
        except OSError:
            return {}
        if len(tail) < 1 or tail[-1].startswith("StartTime"):
            return {}
        return dict(zip(head, tail[-1].split(";"), strict=False))

    def count(self, column: str) -> int:
        try:
            return int(self.stats().get(column, "0") or 0)
        except ValueError:
            return 0

    @property
    def created(self) -> int:
        return self.count("TotalCallCreated")

    @property
    def current(self) -> int:
        return self.count("CurrentCall")

    def dump_stats(self) -> None:
        """Make SIPp write a statistics line now (SIGUSR2 dumps the screens and the CSV)."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGUSR2)

    def soft_stop(self) -> None:
        """No new calls; SIPp exits when the calls in progress end (SIGUSR1)."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGUSR1)

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.running():
            assert self.proc is not None
            self.proc.terminate()
            if self.wait(5) is None:
                self.proc.kill()
                self.proc.wait()

    def errors(self, limit: int = 1500) -> str:
        try:
            return self.err_file.read_text(errors="replace")[-limit:]
        except OSError:
            return ""


def _write(name: str, xml: str) -> Path:
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / f"{name}.xml"
    path.write_text(xml)
    return path


def _sipp(name: str, xml: str, *, target: str, local_ip: str, ports: Ports, extra: Sequence[str]) -> Sipp:
    sip_port, media_port = ports.take()
    scen = _write(name, xml)
    stat = WORK / f"{name}.csv"
    err = WORK / f"{name}.err"
    for f in (stat, err):
        f.unlink(missing_ok=True)
    cmd = ["sipp", target, "-sf", str(scen), "-i", local_ip, "-p", str(sip_port), "-mi", local_ip,
           "-mp", str(media_port), "-nostdin", "-aa", "-trace_err", "-error_file", str(err),
           "-trace_stat", "-stf", str(stat), "-fd", "5", "-max_recv_loops", "2000", *extra]
    return Sipp(name, cmd, stat, err)


def caller_stream(name: str, *, target: str, local_ip: str, ports: Ports, dnis: str, prefix: str,
                  rate: float, total: int, limit: int, steps: Sequence[tuple[str, object]] = (),
                  patience_ms: int = 60000, timeout_s: int = 3600) -> Sipp:
    """A stream of `total` calls at `rate` calls/s, at most `limit` at once (SIPp -m/-r/-l)."""
    xml = caller_scenario(prefix, steps=steps, patience_ms=patience_ms)
    period_ms = 1000
    calls = rate
    while calls != int(calls) and period_ms < 1_000_000:  # -r takes calls per -rp ms, as integers
        calls *= 10
        period_ms *= 10
    extra = ["-s", dnis, "-r", str(max(1, round(calls))), "-rp", str(period_ms), "-m", str(total),
             "-l", str(limit), "-timeout", f"{timeout_s}s"]
    return _sipp(name, xml, target=target, local_ip=local_ip, ports=ports, extra=extra)


@dataclass
class AgentGroup:
    """Agents sharing one SIPp UAS process (same ring and talk times)."""

    agents: list[str]
    uas: Sipp
    uas_port: int


def agent_group(name: str, agents: Sequence[str], *, target: str, ports: Ports, ring_ms: int, talk_ms: int,
                local_ip: str = "127.0.0.1") -> AgentGroup:
    uas = _sipp(name, agent_scenario(ring_ms=ring_ms, talk_ms=talk_ms), target=target, local_ip=local_ip,
                ports=ports, extra=["-timeout", "86400s"])
    return AgentGroup(list(agents), uas, int(uas.cmd[uas.cmd.index("-p") + 1]))


def register(agent: str, password: str, *, contact_port: int, target: str, ports: Ports, expires: int = 3600,
             local_ip: str = "127.0.0.1") -> bool:
    """REGISTER `agent` with its Contact at contact_port (digest auth); True on 200."""
    s = _sipp(f"register-{agent}", register_scenario(agent, contact_port, expires), target=target,
              local_ip=local_ip, ports=ports,
              extra=["-s", agent, "-au", agent, "-ap", password, "-m", "1", "-timeout", "10s", "-timeout_error"])
    s.start()
    rc = s.wait(15)
    if rc is None:
        s.stop()
    return rc == 0


def wait_all(procs: Sequence[Sipp], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if not any(p.running() for p in procs):
            return True
        time.sleep(0.5)
    return False


@dataclass
class Softphones:
    """The agents' softphones: UAS groups, registered (and re-registered) from 127.0.0.1."""

    target: str
    password: str
    ports: Ports
    register_ports: Ports
    groups: list[AgentGroup] = field(default_factory=list)
    registered_at: float = 0.0

    def add(self, name: str, agents: Sequence[str], *, ring_ms: int, talk_ms: int) -> None:
        if agents:
            self.groups.append(agent_group(name, agents, target=self.target, ports=self.ports, ring_ms=ring_ms,
                                           talk_ms=talk_ms))

    @property
    def agents(self) -> list[str]:
        return [a for g in self.groups for a in g.agents]

    def start(self) -> list[str]:
        """Start the UAS processes and REGISTER every agent; the agents whose REGISTER failed."""
        for g in self.groups:
            g.uas.start()
        time.sleep(0.3)
        return self.register()

    def register(self, expires: int = 3600) -> list[str]:
        failed = [a for g in self.groups for a in g.agents
                  if not register(a, self.password, contact_port=g.uas_port, target=self.target,
                                  ports=self.register_ports, expires=expires)]
        self.registered_at = time.monotonic()
        return failed

    def refresh(self, every: float = 1200) -> None:
        """Re-REGISTER when `every` seconds have passed (the registrations last an hour)."""
        if time.monotonic() - self.registered_at > every:
            self.register()

    def stop(self) -> None:
        for g in self.groups:
            g.uas.stop()
        self.register(expires=0)

    def uas_stats(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for g in self.groups:
            for col in ("IncomingCall(C)", "SuccessfulCall(C)", "FailedCall(C)"):
                out[col] = out.get(col, 0) + g.uas.count(col)
        return out
