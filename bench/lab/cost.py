"""`python -m bench.lab` (`make bench-lab`): cc_ari's cost per answered call against Asterisk's
native Queue() on the same Asterisk, in one run, phases alternating (cc_ari, native, cc_ari, ...).

Its own lab (.lab-bench, ports +200). 20 SIPp agents (agent1..20, 127.0.0.1) answer after a short
ring, talk 2-4 s and hang up; SIPp callers from 127.0.0.9 (pjsip endpoint `bench`) keep
`agents + backlog` calls up at all times (-l), so callers are always offered faster than served.
They dial `ccari` (Stasis -> cc_ari queue `bench`, wrap-up 0; agents logged in over the API) or
`native` (Answer, MixMonitor, Queue(bench-native), wrapuptime 0; agents logged out of cc_ari, rung
as static members). Per phase, over the measured window (after a warm-up):
  * answered calls per minute: the agents' channels' ANSWER events in the CEL log;
  * agent idle gap: an agent channel's ANSWER minus the same agent's previous HANGUP (CEL), i.e.
    time from hanging up to talking again, ring time included; the same for both paths;
  * CPU seconds per answered call of Asterisk, the cc_ari service and PostgreSQL (postmaster and
    its children), from /proc/<pid>/stat utime+stime (+ reaped children) deltas.
Then overall per path and the ratios cc_ari / native, against the issue's target (CPU per
answered call <= 1.3x native).

--waiting N: N callers held waiting for --hold seconds (no agent), counting Asterisk's
`Taskprocessor '...' queue reached ... (high water mark ...)` warnings, cc_ari's application
taskprocessor (stasis/m:ari:application/cc_ari...) apart; then the same N callers in the native
Queue() as the baseline. Target: no high-water warning at 800 waiting callers.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.lab import peers
from bench.lab.instance import REPO, BenchLab, CpuSnapshot, FileTail, cel_events, cpu_snapshot, high_water

TARGET_CPU_RATIO = 1.3
APP_TASKPROCESSOR = "stasis/m:ari:application/"
PROCS = ("asterisk", "cc_ari", "postgres")


@dataclass
class Phase:
    index: int
    path: str  # "ccari" | "native"
    seconds: float = 0.0
    answered: int = 0
    gaps: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    sipp_ok: int = 0
    sipp_failed: int = 0
    agents_used: int = 0

    def per_call(self, proc: str) -> float:
        return self.cpu[proc] / self.answered if self.answered else float("nan")

    @property
    def per_minute(self) -> float:
        return self.answered * 60 / self.seconds if self.seconds else float("nan")


def cpu_delta(a: CpuSnapshot, b: CpuSnapshot) -> dict[str, float]:
    return {"asterisk": b.asterisk - a.asterisk, "cc_ari": b.cc_ari - a.cc_ari, "postgres": b.postgres - a.postgres}


def pct(values: Sequence[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    pos = (len(s) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def agent_of(channel: str) -> str | None:
    """`PJSIP/agent7-0000002a` -> `agent7` (agent legs only)."""
    if not channel.startswith("PJSIP/agent"):
        return None
    return channel[len("PJSIP/"):].rsplit("-", 1)[0]


def analyse_cel(events: Sequence[dict[str, object]], start: float, end: float) -> tuple[int, list[float], int]:
    """(answers in [start, end), idle gaps of those answers, agents who answered) from CEL events."""
    last_hangup: dict[str, float] = {}
    answered = 0
    gaps: list[float] = []
    agents: set[str] = set()
    for ev in sorted(events, key=lambda e: float(e.get("eventtime", 0))):  # type: ignore[arg-type]
        agent = agent_of(str(ev.get("channame", "")))
        if agent is None:
            continue
        t = float(ev.get("eventtime", 0))  # type: ignore[arg-type]
        kind = ev.get("eventenum")
        if kind == "HANGUP":
            last_hangup[agent] = t
        elif kind == "ANSWER" and start <= t < end:
            answered += 1
            agents.add(agent)
            if agent in last_hangup:
                gaps.append(t - last_hangup[agent])
    return answered, gaps, len(agents)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--phases", type=int, default=4, help="phases in all, alternating cc_ari/native (default 4, "
                        "i.e. 2 each; at least 2)")
    parser.add_argument("--phase-seconds", type=float, default=120.0, help="measured seconds per phase (default 120)")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring, per phase (default 10)")
    parser.add_argument("--agents", type=int, default=20, help="agents agent1..N (default 20)")
    parser.add_argument("--backlog", type=int, default=20, help="callers waiting on top of one per agent (default 20)")
    parser.add_argument("--ring-ms", type=int, default=300, help="agents' ring before answering (default 300)")
    parser.add_argument("--talk-ms", default="2000,3000,4000",
                        help="talk times, one agent group each (default 2000,3000,4000)")
    parser.add_argument("--waiting", type=int, default=0, help="also hold N waiting callers (e.g. 800); default off")
    parser.add_argument("--hold", type=float, default=60.0, help="seconds the N callers are held (default 60)")
    parser.add_argument("--waiting-rate", type=float, default=40.0, help="calls/s while filling the queue (default 40)")
    parser.add_argument("--no-native-waiting", action="store_true", help="--waiting for cc_ari only (no baseline)")
    parser.add_argument("--lab-dir", type=Path, default=REPO / ".lab-bench", help="the bench lab (default .lab-bench)")
    parser.add_argument("--port-offset", type=int, default=200, help="added to every lab port (default 200)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the bench lab running at the end")
    args = parser.parse_args(argv)
    if args.phases < 2:
        parser.error("--phases must be at least 2 (one cc_ari, one native)")
    talks = [int(x) for x in args.talk_ms.split(",") if x.strip()]

    lab = BenchLab(lab_dir=args.lab_dir.resolve(), offset=args.port_offset, agents=args.agents)
    run_id = f"{int(time.time()) % 10000:04d}"
    streams: list[peers.Sipp] = []
    phones: peers.Softphones | None = None
    started = time.monotonic()
    lab.start()
    try:
        lab.log_out_all()
        names = [f"agent{i}" for i in range(1, args.agents + 1)]
        phones = peers.Softphones(lab.sip_target, lab.env["CC_AGENT_PASSWORD"], peers.Ports(9100, 9500),
                                  peers.Ports(9500, 9990))
        for g, talk in enumerate(talks):
            phones.add(f"lab-agents-{talk}", names[g::len(talks)], ring_ms=args.ring_ms, talk_ms=talk)
        failed = phones.start()
        missing = lab.wait_registered(names)
        if failed or missing:
            print(f"bench-lab: WARNING registration failed for {failed or missing}", flush=True)
        pg = lab.pg_pid()
        print(f"\nbench-lab: {args.phases} phases x ({args.warmup:g} s warm-up + {args.phase_seconds:g} s measured), "
              f"{args.agents} agents (ring {args.ring_ms} ms, talk {args.talk_ms} ms, wrap-up 0), "
              f"{args.agents + args.backlog} callers up at all times, from 127.0.0.9", flush=True)
        idle = measure_idle(lab, pg, 10.0)
        phases: list[Phase] = []
        ports = peers.Ports(9200, 9500)
        for i in range(args.phases):
            path = "ccari" if i % 2 == 0 else "native"
            phases.append(run_phase(lab, pg, i, path, args, ports, run_id, names, streams))
        report(phases, idle)
        if args.waiting > 0:
            phones.stop()  # nobody answers: every caller waits
            phones = None
            lab.log_out_all()
            results = [hold_waiting(lab, pg, "ccari", args, ports, run_id, streams)]
            if not args.no_native_waiting:
                results.append(hold_waiting(lab, pg, "native", args, ports, run_id, streams))
            report_waiting(results, args.waiting)
        print(f"\nbench-lab: done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    finally:
        with contextlib.suppress(Exception):
            lab.log_out_all()
        if phones is not None:
            phones.stop()
        for s in streams:
            s.stop()
        if not args.keep_lab:
            lab.stop()
    return 0


def measure_idle(lab: BenchLab, pg: int, seconds: float) -> dict[str, float]:
    """CPU seconds per second of each process with no call up (the background under both paths)."""
    a = cpu_snapshot(lab, pg)
    time.sleep(seconds)
    b = cpu_snapshot(lab, pg)
    return {k: v / (b.at - a.at) for k, v in cpu_delta(a, b).items()}


def run_phase(lab: BenchLab, pg: int, i: int, path: str, args: argparse.Namespace, ports: peers.Ports,
              run_id: str, names: list[str], streams: list[peers.Sipp]) -> Phase:
    phase = Phase(i + 1, path)
    if path == "ccari":
        lab.log_in(names, ["bench"])
    else:
        lab.log_out_all()
    time.sleep(1.0)
    cel = FileTail(lab.cel_log)
    events: list[dict[str, object]] = []
    limit = args.agents + args.backlog
    callers = peers.caller_stream(
        f"lab-{run_id}-{i + 1}-{path}", target=lab.sip_target, local_ip="127.0.0.9", ports=ports, dnis=path,
        prefix=f"0177{run_id}{i + 1}", rate=max(10.0, limit / 2), total=1_000_000, limit=limit,
        patience_ms=300_000, timeout_s=int(args.warmup + args.phase_seconds + 600))
    streams.append(callers)
    label = "cc_ari" if path == "ccari" else "native Queue()"
    print(f"\n  phase {i + 1}: {label} — warm-up {args.warmup:g} s", flush=True)
    callers.start()
    time.sleep(args.warmup)
    events.extend(cel_events(cel.read_lines()))
    a = cpu_snapshot(lab, pg)
    wall_a = time.time()
    end = time.monotonic() + args.phase_seconds
    while time.monotonic() < end:
        time.sleep(min(30.0, max(0.0, end - time.monotonic())))
        events.extend(cel_events(cel.read_lines()))
        so_far, _, _ = analyse_cel(events, wall_a, time.time())
        print(f"    {time.monotonic() - (end - args.phase_seconds):4.0f} s  answered {so_far:5d}  "
              f"SIPp calls up {callers.current:3d}", flush=True)
    b = cpu_snapshot(lab, pg)
    wall_b = time.time()
    callers.soft_stop()
    if callers.wait(120) is None:
        print("    callers did not finish within 120 s of the stop; killing SIPp", flush=True)
        callers.stop()
    time.sleep(1.0)
    events.extend(cel_events(cel.read_lines()))
    phase.seconds = b.at - a.at
    phase.answered, phase.gaps, phase.agents_used = analyse_cel(events, wall_a, wall_b)
    phase.cpu = cpu_delta(a, b)
    phase.sipp_ok = callers.count("SuccessfulCall(C)")
    phase.sipp_failed = callers.count("FailedCall(C)")
    if phase.sipp_failed:
        print(f"    SIPp failed calls: {phase.sipp_failed}; last errors:\n{callers.errors(600)}", flush=True)
    print(f"    -> {phase.per_minute:.0f} answered/min, idle gap p50 {pct(phase.gaps, 50):.2f} s, CPU s/call: "
          + ", ".join(f"{p} {phase.per_call(p) * 1000:.1f} ms" for p in PROCS), flush=True)
    return phase


def report(phases: list[Phase], idle: dict[str, float]) -> None:
    print("\nbench-lab results (figures measured now; nothing asserted)")
    print("  idle background, no call up (CPU ms per s): "
          + ", ".join(f"{p} {idle[p] * 1000:.1f}" for p in PROCS))
    print("  agent idle gap = an agent's ANSWER - its previous HANGUP (CEL; ring included); "
          "CPU = ms per answered call")
    head = (f"  {'phase':14s} {'s':>5s} {'answered':>8s} {'/min':>6s} {'agents':>6s} {'gap p50':>8s} {'p95':>7s} "
            f"{'mean':>7s} {'Asterisk':>9s} {'cc_ari':>7s} {'PG':>6s} {'total':>7s} {'failed':>6s}")
    print(head)
    rows: dict[str, Phase] = {}
    for ph in phases:
        print_row(f"{ph.index}. {'cc_ari' if ph.path == 'ccari' else 'native'}", ph)
        agg = rows.setdefault(ph.path, Phase(0, ph.path, cpu={p: 0.0 for p in PROCS}))
        agg.seconds += ph.seconds
        agg.answered += ph.answered
        agg.gaps += ph.gaps
        agg.sipp_failed += ph.sipp_failed
        agg.agents_used = max(agg.agents_used, ph.agents_used)
        for p in PROCS:
            agg.cpu[p] += ph.cpu[p]
    print("  " + "-" * (len(head) - 2))
    for path in ("ccari", "native"):
        if path in rows:
            print_row(f"all {'cc_ari' if path == 'ccari' else 'native'}", rows[path])
    if "ccari" not in rows or "native" not in rows:
        return
    cc, nat = rows["ccari"], rows["native"]

    def ratio(x: float, y: float) -> str:
        return f"{x / y:.2f}x" if y > 0 else "n/a"

    total_cc = sum(cc.per_call(p) for p in PROCS)
    total_nat = sum(nat.per_call(p) for p in PROCS)
    print(f"\n  ratios cc_ari / native: answered/min {ratio(cc.per_minute, nat.per_minute)}, "
          f"idle gap p50 {ratio(pct(cc.gaps, 50), pct(nat.gaps, 50))}, CPU per answered call: "
          + ", ".join(f"{p} {ratio(cc.per_call(p), nat.per_call(p))}" for p in PROCS)
          + f", total {ratio(total_cc, total_nat)}")
    r = total_cc / total_nat if total_nat > 0 else float("nan")
    verdict = "within" if r <= TARGET_CPU_RATIO else "OVER"
    print(f"  target: CPU per answered call (Asterisk + cc_ari + PostgreSQL) <= {TARGET_CPU_RATIO}x native: "
          f"{total_cc * 1000:.1f} ms vs {total_nat * 1000:.1f} ms = {r:.2f}x ({verdict} target)")
    ast = ratio(cc.per_call("asterisk"), nat.per_call("asterisk"))
    print(f"  (Asterisk alone {ast}: ARI/Stasis work inside Asterisk; in native phases cc_ari and PostgreSQL "
          "only idle, their CPU is still counted)")


def print_row(label: str, ph: Phase) -> None:
    total = sum(ph.per_call(p) for p in PROCS)
    mean = statistics.fmean(ph.gaps) if ph.gaps else float("nan")
    print(f"  {label:14s} {ph.seconds:5.0f} {ph.answered:8d} {ph.per_minute:6.0f} {ph.agents_used:6d} "
          f"{pct(ph.gaps, 50):7.2f}s {pct(ph.gaps, 95):6.2f}s {mean:6.2f}s "
          f"{ph.per_call('asterisk') * 1000:9.1f} {ph.per_call('cc_ari') * 1000:7.1f} "
          f"{ph.per_call('postgres') * 1000:6.1f} {total * 1000:7.1f} {ph.sipp_failed:6d}", flush=True)


# ------------------------------------------------------------------------------ --waiting N
@dataclass
class Waiting:
    path: str
    reached: int = 0
    peak_channels: int = 0
    peak_waiting: int = 0
    held: float = 0.0
    warnings: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)
    failed: int = 0


def hold_waiting(lab: BenchLab, pg: int, path: str, args: argparse.Namespace, ports: peers.Ports, run_id: str,
                 streams: list[peers.Sipp]) -> Waiting:
    n = args.waiting
    ramp = n / args.waiting_rate
    out = Waiting(path)
    log = FileTail(lab.messages_log)
    callers = peers.caller_stream(
        f"lab-{run_id}-waiting-{path}", target=lab.sip_target, local_ip="127.0.0.9", ports=ports, dnis=path,
        prefix=f"0176{run_id}{'1' if path == 'ccari' else '2'}", rate=args.waiting_rate, total=n, limit=n,
        patience_ms=int((ramp + args.hold + 5) * 1000), timeout_s=int(ramp + args.hold + 300))
    streams.append(callers)
    label = "cc_ari" if path == "ccari" else "native Queue()"
    print(f"\n  waiting: {n} callers into {label} at {args.waiting_rate:g}/s (~{ramp:.0f} s), held ~{args.hold:g} s, "
          "no agent", flush=True)
    callers.start()
    t0 = time.monotonic()
    cpu_a: CpuSnapshot | None = None
    hold_start = 0.0
    while callers.running():
        time.sleep(5)
        try:
            chans = len(lab.ari("/channels", timeout=20))
        except OSError:
            chans = -1
        waiting = -1
        if path == "ccari":
            with contextlib.suppress(OSError, RuntimeError, KeyError):
                waiting = sum(q["waiting"] for q in lab.api_ok("GET", "/api/queues")["queues"])
        out.peak_channels = max(out.peak_channels, chans)
        out.peak_waiting = max(out.peak_waiting, waiting)
        if cpu_a is None and (chans >= n or callers.created >= n):  # all offered: the hold begins
            cpu_a = cpu_snapshot(lab, pg)
            hold_start = time.monotonic()
        if cpu_a is not None and not out.cpu and 0 <= chans < out.peak_channels * 0.9:  # callers leaving
            b = cpu_snapshot(lab, pg)
            out.cpu = {k: v / (b.at - cpu_a.at) for k, v in cpu_delta(cpu_a, b).items()}
            out.held = b.at - hold_start
        print(f"    {time.monotonic() - t0:4.0f} s  channels {chans:4d}"
              + (f"  waiting in cc_ari {waiting:4d}" if path == "ccari" else "")
              + f"  SIPp calls up {callers.current:4d}", flush=True)
        if time.monotonic() - t0 > ramp + args.hold + 300:
            callers.stop()
    time.sleep(3)
    out.reached = out.peak_channels
    out.warnings = high_water(log.read_lines())
    out.failed = callers.count("FailedCall(C)")
    return out


def report_waiting(results: list[Waiting], n: int) -> None:
    print(f"\n  waiting callers: {n} offered, no agent; Asterisk taskprocessor high-water warnings during the run")
    for w in results:
        app = sum(v for k, v in w.warnings.items() if k.startswith(APP_TASKPROCESSOR))
        other = {k: v for k, v in w.warnings.items() if not k.startswith(APP_TASKPROCESSOR)}
        label = "cc_ari" if w.path == "ccari" else "native"
        cpu = ", ".join(f"{p} {w.cpu[p] * 100:.0f}%" for p in PROCS) if w.cpu else "n/a"
        print(f"  {label:7s} peak channels {w.peak_channels:4d}"
              + (f", peak waiting (API) {w.peak_waiting:4d}" if w.path == "ccari" else "")
              + f", held {w.held:3.0f} s, SIPp failed calls {w.failed}; CPU while held: {cpu}")
        if w.reached < n:
            print(f"          only {w.reached} of {n} callers were up at once (see SIPp failures, cc_ari's log)")
        print(f"          warnings for {APP_TASKPROCESSOR}cc_ari*: {app}; others: "
              + (", ".join(f"{k} x{v}" for k, v in other.items()) or "none"))
        if w.path == "ccari":
            print(f"          target: no high-water warning for cc_ari's application at {n} waiting callers: "
                  f"{'met' if app == 0 else 'NOT met'}" + ("" if n >= 800 else " (the target is stated for 800)"))
    sys.stdout.flush()
