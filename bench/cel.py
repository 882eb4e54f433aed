"""4. CEL reconcile: cc_ari.reporting.reconcile CelEvent.parse + build_call, fallback calls per second."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

from bench.harness import Budget, fmt_rate, fmt_ratio, interleaved, rate, table
from cc_ari.reporting.reconcile import CelEvent, build_call

# The field names and order of asterisk/templates/cel_custom.conf (CelEvent.parse lower-cases them).
CEL_FIELDS = ("EventEnum", "UserDefType", "EventTime", "Num", "Exten", "Context", "ChanName", "AppName",
              "UniqueID", "LinkedID", "EventExtra")
RECORDINGS = Path("/var/spool/asterisk/monitor/cc_ari")


class CallWriter:
    """Writes the CEL JSON lines of fallback calls, as Asterisk's cel_custom would."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.t = 1_763_900_000.0
        self.seq = 0

    def _chan(self) -> tuple[str, int]:
        self.seq += 1
        return f"1763900000.{self.seq}", self.seq

    def _line(self, event: str, at: float, uid: str, chan: str, linked: str, *, num: str = "", exten: str = "s",
              context: str = "", app: str = "", user: str = "", extra: str = "") -> str:
        return json.dumps(dict(zip(CEL_FIELDS, (event, user, round(at, 6), num, exten, context, chan, app, uid,
                                                linked, extra), strict=True)), separators=(",", ":"))

    @staticmethod
    def _hangup(cause: int, source: str = "", dialstatus: str = "") -> str:
        return json.dumps({"hangupcause": cause, "hangupsource": source, "dialstatus": dialstatus})

    def call(self, kind: str) -> list[str]:
        """`answered` (ring-all to 2-5 agents, one answers), `abandoned` (hangs up while agents
        ring) or `invalid_number`."""
        r = self.rng
        self.t += r.uniform(1, 30)
        t0 = self.t
        cid, n = self._chan()
        chan = f"PJSIP/carrier-{n:08x}"
        num = f"06{r.randrange(10**8):08d}"
        dnis, queue = ("5999", "invalid_number") if kind == "invalid_number" else r.choice(
            (("5000", "support"), ("5001", "support")))
        route = "invalid" if kind == "invalid_number" else dnis

        def caller(event: str, at: float, **kw: str) -> str:
            kw.setdefault("exten", dnis)
            kw.setdefault("context", "from-pstn")
            return self._line(event, at, cid, chan, cid, num=num, **kw)

        lines = [caller("CHAN_START", t0),
                 caller("USER_DEFINED", t0 + 0.2, exten=route, context="cc-fallback-route", app="CELGenUserEvent",
                        user="cc_fallback", extra=json.dumps({"extra": queue}))]
        if kind == "invalid_number":
            end = t0 + 6.5
            lines += [caller("ANSWER", t0 + 0.3, exten=route, context="cc-fallback-route", app="Answer"),
                      caller("HANGUP", end, exten=route, context="cc-fallback-route",
                             extra=self._hangup(16, "", "")),
                      caller("CHAN_END", end + 0.01, exten=route, context="cc-fallback-route"),
                      caller("LINKEDID_END", end + 0.02, exten=route, context="cc-fallback-route")]
            return lines
        q = {"exten": queue, "context": "cc-fallback-queue"}
        lines.append(caller("ANSWER", t0 + 0.3, app="Answer", **q))
        ring_at = t0 + 5.0
        agents = [(*self._chan(), f"agent{a}") for a in r.sample(range(1, 21), r.randint(2, 5))]
        legs = [(uid, f"PJSIP/{name}-{m:08x}") for uid, m, name in agents]

        def agent(event: str, at: float, uid: str, achan: str, **kw: str) -> str:
            return self._line(event, at, uid, achan, cid, context="from-agents", **kw)

        lines += [agent("CHAN_START", ring_at, uid, achan) for uid, achan in legs]
        if kind == "answered":
            answer_at = ring_at + r.uniform(2, 12)
            end = answer_at + r.uniform(30, 400)
            (w_uid, w_chan), losers = legs[0], legs[1:]
            for uid, achan in losers:
                lines += [agent("HANGUP", answer_at, uid, achan, extra=self._hangup(26, "", "CANCEL")),
                          agent("CHAN_END", answer_at + 0.01, uid, achan)]
            lines += [agent("ANSWER", answer_at, w_uid, w_chan, app="AppQueue"),
                      caller("BRIDGE_ENTER", answer_at + 0.1, app="Queue", **q),
                      agent("BRIDGE_ENTER", answer_at + 0.1, w_uid, w_chan, app="AppQueue"),
                      agent("BRIDGE_EXIT", end, w_uid, w_chan, app="AppQueue"),
                      caller("BRIDGE_EXIT", end, app="Queue", **q),
                      agent("HANGUP", end, w_uid, w_chan, extra=self._hangup(16, w_chan)),
                      agent("CHAN_END", end + 0.01, w_uid, w_chan),
                      caller("HANGUP", end + 0.02, extra=self._hangup(16, w_chan, "ANSWER"), **q),
                      caller("CHAN_END", end + 0.03, **q)]
        else:  # abandoned while the agents' phones ring
            end = ring_at + r.uniform(1, 14)
            lines.append(caller("HANGUP", end, extra=self._hangup(16, chan, ""), **q))
            for uid, achan in legs:
                lines += [agent("HANGUP", end + 0.01, uid, achan, extra=self._hangup(26, "", "CANCEL")),
                          agent("CHAN_END", end + 0.02, uid, achan)]
            lines.append(caller("CHAN_END", end + 0.03, **q))
        lines.append(caller("LINKEDID_END", end + 0.05, **q))
        return lines


MIX = {"answered": 0.7, "abandoned": 0.2, "invalid_number": 0.1}


def run(*, quick: bool, seed: int) -> str:
    rng = random.Random(seed)
    writer = CallWriter(rng)
    per_batch = 50 if quick else 200
    cases: list[tuple[str, list[tuple[str, list[str]]]]] = [
        (kind, [(kind, writer.call(kind)) for _ in range(per_batch)]) for kind in MIX]
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=per_batch)
    mix_name = "mix " + "/".join(f"{w * 100:.0f}" for w in MIX.values()) + " of the above"
    cases.append((mix_name, [(k, writer.call(k)) for k in kinds]))

    budget = Budget(0.1, min_reps=5) if quick else Budget(1.0, min_reps=15)
    rows = []
    for name, calls in cases:
        for kind, lines in calls:  # each call rebuilds as what it is, checked once before timing
            evs = [CelEvent.parse(line) for line in lines]
            row = build_call([e for e in evs if e is not None], RECORDINGS)
            if row is None or None in evs or row.outcome != kind or not row.ended_at:
                raise AssertionError(f"a synthetic {kind} call rebuilt as {row and row.outcome}")
        groups = [lines for _, lines in calls]
        fns: list[Callable[[], None]] = [_loads_only(groups), _parse_only(groups), _parse_and_build(groups)]
        base, parsed, built = interleaved(fns, budget)
        n = len(groups)
        rows.append([name, f"{sum(map(len, groups)) / n:.1f}", str(len(base)), fmt_rate(rate(n, base)),
                     fmt_rate(rate(n, parsed)), fmt_rate(rate(n, built)),
                     fmt_rate(rate(sum(map(len, groups)), built)), fmt_ratio(rate(n, base) / rate(n, built))])
    head = ("4. CEL reconcile: CelEvent.parse + build_call on fallback calls, calls/s\n"
            f"   {per_batch} calls per batch as cel_custom JSON lines with the fields\n"
            f"   {','.join(CEL_FIELDS)};\n"
            "   answered = ring-all to 2-5 agents, one answers; abandoned = caller hangs up while they ring;\n"
            "   baseline: json.loads alone of the same lines")
    body = table(["calls", "lines/call", "batches", "json.loads only", "CelEvent.parse", "parse+build_call",
                  "lines/s (p+b)", "ratio"], rows)
    return f"{head}\n{body}\n  ratio = time of CelEvent.parse + build_call / time of json.loads only"


def _loads_only(groups: list[list[str]]) -> Callable[[], None]:
    def loads_only() -> None:
        loads = json.loads
        for lines in groups:
            for line in lines:
                loads(line)
    return loads_only


def _parse_only(groups: list[list[str]]) -> Callable[[], None]:
    def parse_only() -> None:
        parse = CelEvent.parse
        for lines in groups:
            for line in lines:
                parse(line)
    return parse_only


def _parse_and_build(groups: list[list[str]]) -> Callable[[], None]:
    def parse_and_build() -> None:
        parse = CelEvent.parse
        for lines in groups:
            build_call([e for e in map(parse, lines) if e is not None], RECORDINGS)
    return parse_and_build
