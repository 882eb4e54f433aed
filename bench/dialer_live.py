"""The dialer live, on a lab of its own (`make bench-dialer-live`): SIPp agents in persistent
sessions, a SIPp carrier answering about 30 % of calls with a person (the rest machines, busy,
no answer, rejected, congested), a predictive campaign with AMD, then one without AMD.

Prints per phase: calls by outcome, the abandon rate against the campaign's target, and how fast a
person is connected: `connect_seconds - amd_seconds` (AMD's decision -> bridged to an agent) with
AMD, `connect_seconds` (answer -> bridged) without; p50 / p95 / p99 / max. Targets (issue #7):
p99 <= 0.3 s, abandon rate <= target.

The bench plays the agents: each talks 6 to 14 s (a random draw per call), hangs up through the
API, and sends a disposition about a second into wrap-up.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from carrier import Carrier, number  # noqa: E402

from bench.lab import peers  # noqa: E402
from bench.lab.instance import BenchLab, say  # noqa: E402

# The called parties, by kind (tests/carrier.py): about 30 % answered by a person.
MIX = {"human": 0.30, "machine": 0.15, "busy": 0.10, "no_answer": 0.20, "reject": 0.10, "congestion": 0.15}


def leads_csv(count: int, rng: random.Random) -> str:
    kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
    used: dict[str, int] = {}
    rows = []
    for i, kind in enumerate(kinds):
        n = used[kind] = used.get(kind, -1) + 1
        if n > 999:
            continue
        rows.append(f"B{i},{number(kind, n)},UTC\n")
    return "id,phone,timezone\n" + "".join(rows)


class Agents(threading.Thread):
    """The agents' side: hang up after a random talk time, dispose about a second into wrap-up."""

    def __init__(self, lab: BenchLab, names: list[str], rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.lab, self.names, self.rng = lab, names, rng
        self.stop_event = threading.Event()
        self.hang_at: dict[str, float] = {}
        self.dispose_at: dict[str, float] = {}
        self.errors = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            now = time.monotonic()
            try:
                agents = {a["agent"]: a for a in self.lab.api_ok("GET", "/api/agents")["agents"]}
            except Exception:
                self.errors += 1
                time.sleep(0.5)
                continue
            for name in self.names:
                state = agents.get(name, {}).get("state")
                if state == "on_call":
                    at = self.hang_at.setdefault(name, now + self.rng.uniform(6.0, 14.0))
                    if now >= at:
                        self.lab.api("POST", f"/api/agents/{name}/hangup")
                        self.hang_at.pop(name, None)
                else:
                    self.hang_at.pop(name, None)
                if state == "wrapup":
                    at = self.dispose_at.setdefault(name, now + 1.0)
                    if now >= at:
                        self.lab.api("POST", f"/api/agents/{name}/disposition", {"code": "sale"})
                        self.dispose_at.pop(name, None)
                else:
                    self.dispose_at.pop(name, None)
            time.sleep(0.2)


def quantile(values: list[float], p: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(p * (len(v) - 1)))]


def quantiles(values: list[float]) -> str:
    if not values:
        return "n/a"
    v = sorted(values)

    def q(p: float) -> float:
        return quantile(v, p)

    return f"p50 {q(0.5) * 1000:.0f} ms, p95 {q(0.95) * 1000:.0f} ms, p99 {q(0.99) * 1000:.0f} ms, " \
           f"max {v[-1] * 1000:.0f} ms (n={len(v)})"


def phase(lab: BenchLab, name: str, *, amd: bool, seconds: float, leads: int, rng: random.Random,
          target: float) -> dict[str, Any]:
    body = {"name": name, "mode": "predictive", "caller_id": "+15550100", "amd": amd, "abandon_target": target,
            "window": {"start": "00:00", "end": "23:59"}, "ring_timeout": 15, "max_attempts": 1, "wrapup": 60}
    status, out = lab.api("POST", "/api/campaigns", body)
    if status != 201:
        raise SystemExit(f"bench: creating {name}: {status} {out}")
    import urllib.request

    req = urllib.request.Request(lab.env["CC_API_URL"] + f"/api/campaigns/{name}/leads",
                                 data=leads_csv(leads, rng).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {lab.env['CC_API_TOKEN']}")
    req.add_header("Content-Type", "text/csv")
    with urllib.request.urlopen(req, timeout=60) as resp:
        resp.read()
    agents = [a["agent"] for a in lab.api_ok("GET", "/api/agents")["agents"] if a["state"] != "logged_out"]
    for a in agents:
        lab.api_ok("POST", f"/api/agents/{a}/login", {"campaigns": [name]})
    lab.api_ok("POST", f"/api/campaigns/{name}/start")
    say(f"dialer-live: {name}: {'with' if amd else 'without'} AMD, {seconds:.0f} s ...")
    t0 = time.monotonic()
    peak_level = 0.0
    while time.monotonic() - t0 < seconds:
        time.sleep(5)
        live = lab.api_ok("GET", f"/api/campaigns/{name}")["live"]
        peak_level = max(peak_level, float(live.get("dial_level") or 0))
        say(f"  t={time.monotonic() - t0:4.0f}s dialing {live['dialing']:3d} ready {live['agents_ready']:2d} "
            f"on call {live['agents_on_call']:2d} abandon {live['abandon_rate']:.2%} leads left {live['leads_left']}")
    lab.api("POST", f"/api/campaigns/{name}/pause")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and lab.api_ok("GET", f"/api/campaigns/{name}")["live"]["dialing"]:
        time.sleep(1)
    lab.api("POST", f"/api/campaigns/{name}/stop")
    rows = lab.sql("SELECT outcome, amd_seconds, connect_seconds FROM report.calls WHERE campaign = $1 "
                   "AND ended_at IS NOT NULL", name)
    return {"name": name, "amd": amd, "rows": rows, "seconds": seconds, "peak_level": peak_level}


def report(res: dict[str, Any], target: float) -> None:
    rows = res["rows"]
    by: dict[str, int] = {}
    for r in rows:
        by[r[0]] = by.get(r[0], 0) + 1
    lives = by.get("answered", 0) + by.get("dropped", 0)
    rate = by.get("dropped", 0) / lives if lives else 0.0
    say(f"\n{res['name']} ({'AMD' if res['amd'] else 'no AMD'}, {res['seconds']:.0f} s): {len(rows)} calls "
        + ", ".join(f"{k} {v}" for k, v in sorted(by.items())))
    say(f"  abandon rate {rate:.2%} of {lives} live answers (target {target:.0%}): "
        f"{'OK' if rate <= target else 'OVER'}")
    drops = [r for r in rows if r[0] == "dropped"]
    if drops:
        slow_amd = sum(1 for r in drops if r[1] is not None and float(r[1]) >= 2.0)
        say(f"  drops with AMD's decision 2 s or more after the answer (AMD's share under the UK rule): "
            f"{slow_amd} of {len(drops)}")
    connected = [r for r in rows if r[0] == "answered" and r[2] is not None]
    if res["amd"]:
        gaps = [float(r[2]) - float(r[1]) for r in connected if r[1] is not None]
        amd = [float(r[1]) for r in rows if r[1] is not None]
        say(f"  AMD decision -> agent: {quantiles(gaps)}")
        say(f"  answer -> AMD decision: {quantiles(amd)}")
    else:
        gaps = [float(r[2]) for r in connected]
        say(f"  answer -> agent: {quantiles(gaps)}")
    ok = bool(gaps) and quantile(gaps, 0.99) <= 0.3
    say(f"  connect p99 <= 300 ms: {'OK' if ok else 'NOT MET'}; peak dial level {res['peak_level']:.2f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dialer_live", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=10, help="agents in sessions (default 10)")
    parser.add_argument("--seconds", type=float, default=180.0, help="seconds of the AMD phase (default 180)")
    parser.add_argument("--no-amd-seconds", type=float, default=60.0, help="seconds of the phase without AMD")
    parser.add_argument("--leads", type=int, default=2000, help="leads per phase (default 2000)")
    parser.add_argument("--target", type=float, default=0.03, help="abandon target (default 0.03)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lab-dir", type=Path, default=REPO / ".lab-bench")
    parser.add_argument("--port-offset", type=int, default=200)
    parser.add_argument("--keep-lab", action="store_true")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    lab = BenchLab(lab_dir=args.lab_dir.resolve(), offset=args.port_offset, agents=args.agents)
    lab.start()
    names = [f"agent{i}" for i in range(1, args.agents + 1)]
    phones = peers.Softphones(lab.sip_target, lab.env["CC_AGENT_PASSWORD"], peers.Ports(9100, 9500),
                              peers.Ports(9500, 9990))
    players: Agents | None = None
    carrier = Carrier(sip_target=lab.sip_target, port=int(lab.env["CC_CARRIER_PORT"]), max_calls=1000)
    try:
        lab.log_out_all()
        phones.add("dialer-agents", names, ring_ms=300, talk_ms=3_600_000)  # the session: up for the bench
        failed = phones.start()
        missing = lab.wait_registered(names)
        if failed or missing:
            say(f"dialer-live: WARNING registration failed for {failed or missing}")
        for a in names:
            lab.api_ok("POST", f"/api/agents/{a}/login", {"queues": ["support"]})  # logged in; campaigns per phase
        carrier.start()
        players = Agents(lab, names, rng)
        players.start()
        stamp = int(time.time()) % 100000
        results = [phase(lab, f"live-amd-{stamp}", amd=True, seconds=args.seconds, leads=args.leads, rng=rng,
                         target=args.target)]
        if args.no_amd_seconds > 0:
            results.append(phase(lab, f"live-noamd-{stamp}", amd=False, seconds=args.no_amd_seconds,
                                 leads=args.leads, rng=rng, target=args.target))
        say("\n=== cc_ari dialer, live (SIPp carrier and agents, real Asterisk and PostgreSQL) ===")
        say(f"{args.agents} agents in persistent sessions; carrier mix: "
            + ", ".join(f"{k} {v:.0%}" for k, v in MIX.items()) + "; agents talk 6-14 s")
        for res in results:
            report(res, args.target)
    finally:
        if players is not None:
            players.stop_event.set()
        with contextlib.suppress(Exception):
            lab.log_out_all()
        carrier.stop()
        phones.stop()
        if not args.keep_lab:
            lab.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
