"""3. ARI event parsing: cc_ari.ari.models.parse_event on WebSocket payloads, events per second."""

from __future__ import annotations

import json
from typing import Any

from bench.harness import Budget, fmt_rate, fmt_ratio, interleaved, rate, table
from cc_ari.ari.models import (
    ChannelDestroyed,
    ChannelDtmfReceived,
    Dial,
    Event,
    PlaybackFinished,
    StasisStart,
    parse_event,
)

ASTERISK_ID = "52:54:00:12:34:56"
PROMPTS = "/var/lib/cc_ari/prompts"


def _ts(n: int) -> str:
    return f"2026-11-23T12:{n // 60 % 60:02d}:{n % 60:02d}.{n * 37 % 1000:03d}+0000"


def channel(n: int, *, agent: bool = False, state: str = "Up") -> dict[str, Any]:
    """A channel as Asterisk 22 sends it (caller leg from the carrier, or an agent's leg)."""
    if agent:
        name, number, exten, context, app, data = (f"PJSIP/agent{n % 20 + 1}-{n + 1:08x}", f"agent{n % 20 + 1}",
                                                   "s", "from-agents", "AppDial", "(Outgoing Line)")
    else:
        name, number, exten, context, app, data = (f"PJSIP/carrier-{n:08x}", f"0612{n % 1000000:06d}", "5000",
                                                   "from-pstn", "Stasis", "cc_ari,inbound,5000")
    return {
        "id": f"1763900000.{n}",
        "name": name,
        "state": state,
        "protocol_id": f"{n:08x}-5d1c-4b9e-a3f2-000000000000@127.0.0.2",
        "caller": {"name": "", "number": number},
        "connected": {"name": "", "number": ""},
        "accountcode": "",
        "dialplan": {"context": context, "exten": exten, "priority": 2, "app_name": app, "app_data": data},
        "creationtime": _ts(n),
        "language": "en",
        "caller_rdnis": "",
    }


def _envelope(etype: str, n: int, **body: Any) -> dict[str, Any]:
    return {"type": etype, "timestamp": _ts(n + 3), **body, "asterisk_id": ASTERISK_ID, "application": "cc_ari"}


def payload(etype: str, n: int) -> dict[str, Any]:
    if etype == "StasisStart":
        return _envelope(etype, n, args=["inbound", "5000"], channel=channel(n, state="Ring"))
    if etype == "ChannelDtmfReceived":
        return _envelope(etype, n, digit="12"[n % 2], duration_ms=120, channel=channel(n))
    if etype == "ChannelDestroyed":
        return _envelope(etype, n, cause=16, cause_txt="Normal Clearing", channel=channel(n))
    if etype == "Dial":
        return _envelope(etype, n, caller=channel(n), peer=channel(n + 1, agent=True, state="Ringing"),
                         dialstring=f"agent{n % 20 + 1}", forward="", dialstatus=("RINGING", "ANSWER", "")[n % 3])
    if etype == "PlaybackFinished":
        return _envelope(etype, n, playback={
            "id": f"0b6f{n:04x}-8a0e-4c52-9d3e-5f2b7c1a9e40", "media_uri": f"sound:{PROMPTS}/main-menu",
            "next_media_uri": "", "target_uri": f"channel:1763900000.{n}", "language": "en", "state": "done"})
    raise ValueError(etype)


KINDS: dict[str, type[Event]] = {"StasisStart": StasisStart, "ChannelDtmfReceived": ChannelDtmfReceived,
                                 "ChannelDestroyed": ChannelDestroyed, "Dial": Dial,
                                 "PlaybackFinished": PlaybackFinished}
# One IVR call answered by an agent: 2 StasisStart (caller, agent), 3 prompts, a digit,
# Dial progress/answer, both legs destroyed.
CALL_MIX = {"StasisStart": 2, "PlaybackFinished": 3, "ChannelDtmfReceived": 1, "Dial": 3, "ChannelDestroyed": 2}


def run(*, quick: bool, seed: int) -> str:
    del seed  # the payloads are deterministic
    per_batch = 500 if quick else 2000
    cases: list[tuple[str, list[str]]] = []
    for etype in KINDS:
        cases.append((etype, [json.dumps(payload(etype, 1000 + i)) for i in range(per_batch)]))
    per_call = sum(CALL_MIX.values())
    mixed = [json.dumps(payload(etype, 1000 + i))
             for i in range(per_batch // per_call)
             for etype, count in CALL_MIX.items() for _ in range(count)]
    cases.append((f"call mix ({per_call} events/call)", mixed))

    budget = Budget(0.08, min_reps=5) if quick else Budget(0.8, min_reps=10)
    rows = []
    for name, texts in cases:
        decoded = [json.loads(t) for t in texts]
        for d in decoded:  # every payload parses to its typed event, checked once
            if not isinstance(parse_event(d), KINDS[d["type"]]):
                raise AssertionError(f"{d['type']} payload did not parse to {KINDS[d['type']].__name__}")

        def loads_only(texts: list[str] = texts) -> None:
            loads = json.loads
            for t in texts:
                loads(t)

        def loads_and_parse(texts: list[str] = texts) -> None:
            loads, parse = json.loads, parse_event
            for t in texts:
                parse(loads(t))

        def parse_only(decoded: list[dict[str, Any]] = decoded) -> None:
            parse = parse_event
            for d in decoded:
                parse(d)

        base, both, alone = interleaved([loads_only, loads_and_parse, parse_only], budget)
        n = len(texts)
        rows.append([name, str(sum(map(len, texts)) // n), str(len(base)), fmt_rate(rate(n, base)),
                     fmt_rate(rate(n, both)), fmt_rate(rate(n, alone)),
                     fmt_ratio(rate(n, base) / rate(n, both))])
    head = ("3. ARI event parsing: cc_ari.ari.models.parse_event, events/s\n"
            f"   {per_batch} WebSocket payloads per batch, shaped as Asterisk 22 sends them;\n"
            "   baseline: json.loads alone of the same text (parse_event receives the decoded dicts)")
    body = table(["event", "bytes", "batches", "json.loads only", "loads+parse_event", "parse_event only",
                  "ratio"], rows)
    return f"{head}\n{body}\n  ratio = time of json.loads+parse_event / time of json.loads only"
