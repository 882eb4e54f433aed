"""The SIPp carrier's greetings (tests/carrier.py), checked offline: pcap structure, and what a port
of app_amd's decision loop (Asterisk 22 apps/app_amd.c) concludes from the audio."""

from __future__ import annotations

import shutil
import socket
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from carrier import KINDS, carrier_scenario, greeting_pcap, number

needs_tools = pytest.mark.skipif(shutil.which("espeak-ng") is None or shutil.which("sox") is None,
                                 reason="espeak-ng and sox build the greetings")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("carrier_audio")


def rtp_packets(path: Path) -> list[tuple[float, int, int, int, int, bytes]]:
    """(pcap time, marker, payload type, seq, rtp timestamp, payload) per packet, checking each layer."""
    data = path.read_bytes()
    magic, major, minor, _, _, snaplen, linktype = struct.unpack("<IHHiIII", data[:24])
    assert (magic, major, minor, linktype) == (0xA1B2C3D4, 2, 4, 1)  # classic little-endian libpcap, Ethernet
    out = []
    off = 24
    while off < len(data):
        sec, usec, incl, orig = struct.unpack("<IIII", data[off:off + 16])
        assert incl == orig <= snaplen
        frame = data[off + 16:off + 16 + incl]
        assert len(frame) == incl
        off += 16 + incl
        assert struct.unpack("!H", frame[12:14])[0] == 0x0800  # IPv4
        ip = frame[14:34]
        ver_ihl, _, total_len, _, _, _, proto, _, _, _ = struct.unpack("!BBHHHBBH4s4s", ip)
        assert ver_ihl == 0x45 and proto == 17 and total_len == len(frame) - 14
        csum = sum(struct.unpack("!10H", ip))
        while csum >> 16:
            csum = (csum & 0xFFFF) + (csum >> 16)
        assert csum == 0xFFFF, "IPv4 header checksum"
        _, _, udp_len, _ = struct.unpack("!HHHH", frame[34:42])
        assert udp_len == len(frame) - 34
        b0, b1, seq, ts, _ = struct.unpack("!BBHII", frame[42:54])
        assert b0 == 0x80  # RTP v2, no padding/extension/CSRC
        out.append((sec + usec / 1e6, b1 >> 7, b1 & 0x7F, seq, ts, frame[54:]))
    return out


def alaw_to_linear(code: int) -> int:
    code ^= 0x55
    mag = (code & 0x0F) << 4
    seg = (code & 0x70) >> 4
    if seg == 0:
        mag += 8
    else:
        mag = (mag + 0x108) << (seg - 1)
    return mag if code & 0x80 else -mag


def frame_energy(payload: bytes) -> float:
    """What Asterisk's DSP compares with the silence threshold: mean |sample| of the frame."""
    return sum(abs(alaw_to_linear(b)) for b in payload) / len(payload)


def amd(energies: list[float], *, max_words: int = 2, threshold: int = 256, initial_silence: int = 2500,
        greeting: int = 1500, after_greeting_silence: int = 800, total: int = 5000, min_word: int = 100,
        between_words: int = 50, max_word_length: int = 5000) -> tuple[str, str]:
    """app_amd's loop over 20 ms voice frames; after the audio ends, silence (no RTP reads as silence)."""
    in_word, in_initial, in_greeting = True, True, False
    voice = silence = total_time = words = consecutive = dsp_silence = 0
    frames = iter(energies)
    while True:
        energy = next(frames, 0.0)
        total_time += 20
        if total_time >= total:
            return "NOTSURE", f"TOOLONG-{total_time}"
        dsp_silence = dsp_silence + 20 if energy < threshold else 0
        if dsp_silence > 0:
            silence = dsp_silence
            if silence >= between_words:
                in_word, consecutive = False, 0
            if in_initial and silence >= initial_silence:
                return "MACHINE", f"INITIALSILENCE-{silence}"
            if in_greeting and silence >= after_greeting_silence:
                return "HUMAN", f"HUMAN-{silence}"
        else:
            consecutive += 20
            voice += 20
            if consecutive >= min_word and not in_word:
                words += 1
                in_word = True
            if consecutive >= max_word_length:
                return "MACHINE", f"MAXWORDLENGTH-{consecutive}"
            if words >= max_words:
                return "MACHINE", f"MAXWORDS-{words}-{max_words}"
            if in_greeting and voice >= greeting:
                return "MACHINE", f"LONGGREETING-{voice}"
            if voice >= min_word:
                silence = 0
            if consecutive >= min_word and not in_greeting:
                in_initial, in_greeting = False, True


def test_numbers_end_with_the_kind_digit() -> None:
    assert number("human", 14) == "+12025550140"
    assert number("busy", 0) == "+12025550004"
    assert {number(k, 7)[-1] for k in KINDS} == {str(d) for d in range(8)}
    assert len({number("machine", n) for n in range(1000)}) == 1000
    for n in (0, 999):
        assert len(number("reject", n)) == 12
    with pytest.raises(ValueError):
        number("fax", 1)
    with pytest.raises(ValueError):
        number("human", 1000)


def test_scenario_is_xml_and_every_jump_has_a_label() -> None:
    root = ET.fromstring(carrier_scenario(Path("/x/human.pcap"), Path("/x/machine.pcap")).encode("latin-1"))
    labels = {e.get("id") for e in root.iter("label")}
    targets = {e.get(a) for e in root for a in ("next", "ontimeout") if e.get(a)}
    assert targets <= labels, targets - labels
    tested = {e.get("test") for e in root if e.get("test")}
    assigned = {v for e in root.iter("ereg") for v in (e.get("assign_to") or "").split(",")}
    assert tested <= assigned


@needs_tools
@pytest.mark.parametrize(("kind", "min_s", "max_s"), [("human", 3.6, 4.4), ("machine", 5.0, 12.0)])
def test_pcap_is_20ms_pcma_rtp(cache: Path, kind: str, min_s: float, max_s: float) -> None:
    path = greeting_pcap(kind, cache)  # type: ignore[arg-type]
    pkts = rtp_packets(path)
    assert min_s / 0.02 <= len(pkts) <= max_s / 0.02
    assert path.stat().st_size < 200_000
    t0 = pkts[0][0]
    for i, (t, marker, pt, seq, ts, payload) in enumerate(pkts):
        assert pt == 8 and len(payload) == 160
        assert marker == (i == 0)
        assert seq == pkts[0][3] + i and ts == pkts[0][4] + 160 * i
        assert t - t0 == pytest.approx(0.02 * i, abs=1e-6)


@needs_tools
def test_pcap_matches_sipp_sample_layout(cache: Path) -> None:
    """Same link/IP/UDP framing as the pcap SIPp ships (the payload differs: 240 bytes there)."""
    sample = Path("/usr/share/sip-tester/g711a.pcap")
    if not sample.exists():
        pytest.skip("sip-tester sample pcap not installed")
    ref = rtp_packets(sample)
    assert ref[0][2] == 8  # the reader accepts SIPp's own file
    ours = greeting_pcap("human", cache).read_bytes()
    assert ours[:24] == sample.read_bytes()[:24]
    assert socket.inet_ntoa(ours[24 + 16 + 26:24 + 16 + 30]) == "10.0.0.1"


@needs_tools
def test_cached_and_reproducible(cache: Path, tmp_path: Path) -> None:
    first = greeting_pcap("human", cache)
    mtime = first.stat().st_mtime_ns
    assert greeting_pcap("human", cache) == first
    assert first.stat().st_mtime_ns == mtime  # not rebuilt
    assert greeting_pcap("human", tmp_path).read_bytes() == first.read_bytes()


@needs_tools
def test_human_says_one_word_then_digital_silence(cache: Path) -> None:
    pkts = rtp_packets(greeting_pcap("human", cache))
    energies = [frame_energy(p[5]) for p in pkts]
    voiced = [i for i, e in enumerate(energies) if e >= 256]
    assert 0.3 <= len(voiced) * 0.02 <= 1.0  # "Hello?" ~0.5 s
    assert voiced[-1] - voiced[0] + 1 == len(voiced), "no inner pause: AMD must count one word"
    assert voiced[0] * 0.02 == pytest.approx(0.3, abs=0.05)
    assert all(p[5] == b"\xd5" * 160 for p in pkts[voiced[-1] + 1 + 5:]), "trailing silence is digital zero"
    assert (len(pkts) - voiced[-1] - 1) * 0.02 >= 2.9


@needs_tools
@pytest.mark.parametrize("max_words", [2, 3])
@pytest.mark.parametrize("late_ms", [0, 200, 400])
def test_amd_defaults_say_human(cache: Path, max_words: int, late_ms: int) -> None:
    """late_ms: AMD() starts after the first RTP packets arrived (SIPp plays on the ACK)."""
    energies = [frame_energy(p[5]) for p in rtp_packets(greeting_pcap("human", cache))][late_ms // 20:]
    status, cause = amd(energies, max_words=max_words)
    assert status == "HUMAN", cause


@needs_tools
@pytest.mark.parametrize("max_words", [2, 3])
@pytest.mark.parametrize("late_ms", [0, 200, 400])
def test_amd_defaults_say_machine(cache: Path, max_words: int, late_ms: int) -> None:
    energies = [frame_energy(p[5]) for p in rtp_packets(greeting_pcap("machine", cache))][late_ms // 20:]
    status, cause = amd(energies, max_words=max_words)
    assert status == "MACHINE", cause
    # Without the word limit the greeting length decides it, still well within the 5 s analysis.
    status, cause = amd(energies, max_words=99)
    assert (status, cause.split("-")[0]) == ("MACHINE", "LONGGREETING"), cause
