"""Security by default: the carrier trunk cannot be spoofed; logs are private; nested JSON is a 400."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import REPO
from sipp import next_ports

pytestmark = pytest.mark.lab

# An INVITE posing as the carrier: From user "pstn" (the trunk endpoint's name), a caller ID in the
# display name and in P-Asserted-Identity (which the trunk trusts) to find the call if it got in.
# Whatever final response comes is ACKed; a 200 would be hung up at once.
SPOOF = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="carrier spoof">
<send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "{caller}" <sip:pstn@[local_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Max-Forwards: 70
Contact: <sip:pstn@[local_ip]:[local_port]>
P-Asserted-Identity: "{caller}" <sip:{caller}@[local_ip]>
Content-Type: application/sdp
Content-Length: [len]

v=0
o=- 1 1 IN IP[local_ip_type] [local_ip]
s=-
c=IN IP[media_ip_type] [media_ip]
t=0 0
m=audio [media_port] RTP/AVP 8
a=rtpmap:8 PCMA/8000
]]></send>
<recv response="100" optional="true"/>
<recv response="180" optional="true"/>
<recv response="183" optional="true"/>
<recv response="401" optional="true" next="refused"/>
<recv response="403" optional="true" next="refused"/>
<recv response="404" optional="true" next="refused"/>
<recv response="407" optional="true" next="refused"/>
<recv response="488" optional="true" next="refused"/>
<recv response="603" optional="true" next="refused"/>
<recv response="200"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
<send retrans="500"><![CDATA[
BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
<recv response="200"/>
<nop next="end"/>
<label id="refused"/>
<send><![CDATA[
ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
<label id="end"/>
</scenario>
"""


def final_responses(trace: str) -> list[int]:
    """Status codes of the final (>= 200) responses SIPp received, in order."""
    codes = []
    for block in trace.split("----------------------------------------------- "):
        if "message received" in block:
            m = re.search(r"^SIP/2\.0 (\d{3})", block, re.MULTILINE)
            if m and int(m.group(1)) >= 200 and "CSeq: 1 INVITE" in block:
                codes.append(int(m.group(1)))
    return codes


def send_spoof(lab: dict[str, str], dnis: str, caller: str, source_ip: str) -> tuple[list[int], str]:
    sip_port, rtp_port = next_ports()
    work = Path(tempfile.mkdtemp(prefix="cc_spoof_"))
    scenario, trace = work / "spoof.xml", work / "messages.log"
    scenario.write_text(SPOOF.format(caller=caller))
    cmd = ["sipp", f"127.0.0.1:{lab['CC_SIP_PORT']}", "-sf", str(scenario), "-i", source_ip, "-p", str(sip_port),
           "-mi", source_ip, "-mp", str(rtp_port), "-s", dnis, "-m", "1", "-nostdin", "-timeout", "15s",
           "-timeout_error", "-trace_msg", "-message_file", str(trace)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    text = trace.read_text(errors="replace") if trace.exists() else ""
    return final_responses(text), f"sipp exit {res.returncode}\n{res.stderr[-1500:]}\n{text[-3000:]}"


async def test_invite_from_another_address_posing_as_the_carrier_is_refused(lab, db, caller_number):
    # From: <sip:pstn@127.0.0.3> — the trunk's name, but not the carrier's address (127.0.0.2)
    since = await db.fetchval("SELECT now()")
    codes, log = await asyncio.to_thread(send_spoof, lab, "5001", caller_number, "127.0.0.3")
    assert codes, f"no final response to the spoofed INVITE\n{log}"
    assert 400 <= codes[0] < 700, f"spoofed INVITE answered {codes[0]}\n{log}"  # challenged/refused
    await asyncio.sleep(2.0)  # a call that got in has its row from its first second
    rows = await db.fetch("SELECT call_id, caller FROM report.calls WHERE started_at >= $1 AND "
                          "(caller = $2 OR caller = 'pstn')", since, caller_number)
    assert rows == [], rows


def test_logs_holding_caller_numbers_are_not_world_readable(lab):
    logs = REPO / ".lab" / "logs"
    assert stat.S_IMODE(os.stat(logs).st_mode) == 0o750
    for name in ("cc_ari.jsonl", "cc_ari.out", "asterisk.out"):
        mode = stat.S_IMODE(os.stat(logs / name).st_mode)
        assert mode == 0o640, (name, oct(mode))


def test_deeply_nested_json_is_a_400_not_a_500(api):
    for path in ("/api/agents/agent1/login", "/api/agents/agent1/pause", "/api/agents/agent1/ready",
                 "/api/agents/agent1/logout"):
        status, body = api.call("POST", path, raw=b"[" * 32000)
        assert status == 400, (path, status, body)
        assert "nested" in body["error"] or "JSON" in body["error"]
