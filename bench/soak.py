"""`python -m bench.soak [--minutes 10] [--rate 3] [--agents 10]` (`make bench-soak`): a soak test
of cc_ari on its own lab (.lab-bench, ports +200), then what it left behind and how its memory grew.

Calls (SIPp carrier from 127.0.0.2, distinct caller numbers per run): 5001 straight to the queue,
5000 IVR with digit 1 or 2, an unknown number, and callers who hang up after a few seconds while
queued. Agents (SIPp softphones, logged in over the HTTP API to sales + support): half hang up after
a short talk, half wait for the caller to hang up. Every stream is bounded (-m) and the run stops
by itself. After a drain period it prints: calls offered vs rows in report.calls, missing /
duplicated rows, legs without a call, calls still open, agents stuck, live calls, channels and
bridges left in Asterisk, taskprocessor high-water warnings, and cc_ari's RSS over time with its
least-squares slope (KB per 1000 calls, MB per hour) next to Asterisk's (the baseline, same run).

--tracemalloc: restarts the bench lab's service with PYTHONTRACEMALLOC=25 (cc_ari dumps
`tracemalloc.take_snapshot()` to `$CC_STATE_DIR/*.tracemalloc` on SIGUSR2), takes a snapshot
after the warm-up and one after the drain and prints the top growth by traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
import tracemalloc
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from bench.lab import peers
from bench.lab.instance import REPO, BenchLab, FileTail, catches_signal, high_water, least_squares, rss_kb

TRACEMALLOC_HOWTO = """How to look inside cc_ari's memory with --tracemalloc:

  1. Start the service with PYTHONTRACEMALLOC=25 in its environment (scripts/lab.py passes its own
     environment through to the service: `PYTHONTRACEMALLOC=25 python3 scripts/lab.py service-restart`;
     the soak does this itself with --tracemalloc). Python then records 25 frames per allocation
     (~2x memory, ~20-30 % CPU).
  2. cc_ari (cc_ari/app.py, `_dump_tracemalloc`) dumps a snapshot into CC_STATE_DIR on SIGUSR2.

  3. `python -m bench.soak --tracemalloc` then sends SIGUSR2 after the warm-up minute and after the
     drain (only if /proc/<pid>/status SigCgt shows SIGUSR2 caught: unhandled, it would kill the
     service), loads both snapshots and prints `compare_to(..., "traceback")`: the top growth,
     with the 25-frame stack of each. By hand: `kill -USR2 $(cat .lab-bench/run/cc_ari.pid)` twice
     and `tracemalloc.Snapshot.load(b).compare_to(tracemalloc.Snapshot.load(a), "traceback")`.
"""


@dataclass(frozen=True)
class Stream:
    """One kind of carrier call: one SIPp process."""

    name: str
    share: float
    dnis: str
    steps: tuple[tuple[str, object], ...]
    patience_ms: int
    what: str


STREAMS = (
    Stream("queue", 0.40, "5001", (), 25000, "5001 straight to support; waits up to 25 s"),
    Stream("ivr1", 0.15, "5000", (("pause", 2500), ("dtmf", "1")), 30000, "5000 IVR, digit 1 (sales)"),
    Stream("ivr2", 0.15, "5000", (("pause", 2500), ("dtmf", "2")), 30000, "5000 IVR, digit 2 (support)"),
    Stream("unknown", 0.10, "5999", (), 30000, "5999, not in service"),
    Stream("abandon", 0.20, "5001", (), 5000, "5001, hangs up after 5 s (queued)"),
)


@dataclass
class Sample:
    at: float
    calls: int
    cc_rss: int
    ast_rss: int


@dataclass
class Run:
    prefix: str
    t0: float = 0.0
    wall0: float = 0.0
    load_end: float = 0.0
    samples: list[Sample] = field(default_factory=list)
    streams: dict[str, peers.Sipp] = field(default_factory=dict)
    asterisk_log: FileTail | None = None
    cc_log: FileTail | None = None
    before: dict[str, list[str]] = field(default_factory=dict)

    def created(self) -> int:
        return sum(s.created for s in self.streams.values())


def fmt_mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of calls (default 10; 1 = quick)")
    parser.add_argument("--rate", type=float, default=3.0, help="calls offered per second (default 3)")
    parser.add_argument("--agents", type=int, default=10, help="agents agent1..N (default 10)")
    parser.add_argument("--drain", type=float, default=30.0,
                        help="seconds after the last call before the checks (default 30: wrap-up is 10 s)")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples (default 5)")
    parser.add_argument("--lab-dir", type=Path, default=REPO / ".lab-bench", help="the bench lab (default .lab-bench)")
    parser.add_argument("--port-offset", type=int, default=200, help="added to every lab port (default 200)")
    parser.add_argument("--keep-lab", action="store_true", help="leave the bench lab running at the end")
    parser.add_argument("--tracemalloc", action="store_true", help="service with PYTHONTRACEMALLOC=25; snapshots "
                        "if it handles SIGUSR2 (see --help-tracemalloc)")
    parser.add_argument("--help-tracemalloc", action="store_true", help="how to make cc_ari dump snapshots")
    args = parser.parse_args(argv)
    if args.help_tracemalloc:
        print(TRACEMALLOC_HOWTO)
        return 0

    lab = BenchLab(lab_dir=args.lab_dir.resolve(), offset=args.port_offset, agents=args.agents)
    run = Run(prefix=f"0188{int(time.time()) % 100000:05d}")
    phones: peers.Softphones | None = None
    lab.start()
    try:
        if args.tracemalloc:
            print("soak: restarting the bench lab's service with PYTHONTRACEMALLOC=25", flush=True)
            lab.restart_service({"PYTHONTRACEMALLOC": "25"})
        phones = setup_agents(lab, args.agents)
        soak(lab, run, args, phones)
        report(lab, run, args, phones)
    finally:
        if phones is not None:
            with contextlib.suppress(Exception):
                lab.log_out_all()
            phones.stop()
        for s in run.streams.values():
            s.stop()
        if not args.keep_lab:
            lab.stop()
    return 0


def setup_agents(lab: BenchLab, count: int) -> peers.Softphones:
    lab.log_out_all()
    names = [f"agent{i}" for i in range(1, count + 1)]
    phones = peers.Softphones(lab.sip_target, lab.env["CC_AGENT_PASSWORD"], peers.Ports(9100, 9500),
                              peers.Ports(9500, 9990))
    half = (count + 1) // 2
    phones.add("soak-agents-hangup", names[:half], ring_ms=1000, talk_ms=4000)  # agent hangs up after 4 s
    phones.add("soak-agents-wait", names[half:], ring_ms=1500, talk_ms=60000)  # caller hangs up (or 60 s)
    failed = phones.start()
    missing = lab.wait_registered(names)
    if failed or missing:
        print(f"soak: WARNING registration failed for {failed or missing}", flush=True)
    lab.log_in(names, ["sales", "support"])
    return phones


def sample(lab: BenchLab, run: Run) -> Sample:
    s = Sample(time.monotonic() - run.t0, run.created(), rss_kb(lab.pid("cc_ari")), rss_kb(lab.pid("asterisk")))
    run.samples.append(s)
    return s


def soak(lab: BenchLab, run: Run, args: argparse.Namespace, phones: peers.Softphones) -> None:
    seconds = args.minutes * 60
    print(f"\nsoak: {args.minutes:g} min at {args.rate:g} calls/s, {args.agents} agents, caller numbers "
          f"{run.prefix}<stream digit><n>; drain {args.drain:g} s; RSS every {args.sample:g} s", flush=True)
    ports = peers.Ports(9200, 9500)
    for i, st in enumerate(STREAMS):
        rate = args.rate * st.share
        total = max(1, round(rate * seconds))
        run.streams[st.name] = peers.caller_stream(
            f"soak-{st.name}", target=lab.sip_target, local_ip=lab.env["CC_CARRIER_HOST"], ports=ports,
            dnis=st.dnis, prefix=f"{run.prefix}{i}", rate=rate, total=total, limit=1000, steps=st.steps,
            patience_ms=st.patience_ms, timeout_s=int(seconds + 600))
        print(f"  stream {st.name:8s} {rate:5.2f} calls/s x {total:5d}  {st.what}", flush=True)
    run.asterisk_log = FileTail(lab.messages_log)
    run.cc_log = FileTail(Path(lab.env["CC_LOG_DIR"]) / "cc_ari.jsonl")
    run.t0 = time.monotonic()
    run.wall0 = time.time()
    run.before = leftovers(lab)
    sample(lab, run)
    snap_a = None
    snap_tried = False
    for s in run.streams.values():
        s.start()
    last_progress = 0.0
    deadline = run.t0 + seconds + 120  # the last callers' patience, then SIPp is stopped
    while time.monotonic() < deadline and any(s.running() for s in run.streams.values()):
        time.sleep(args.sample)
        smp = sample(lab, run)
        phones.refresh()
        if args.tracemalloc and not snap_tried and smp.at >= min(60.0, seconds / 2):
            snap_tried = True
            snap_a = tracemalloc_snapshot(lab)
        if smp.at - last_progress >= 30:
            last_progress = smp.at
            progress(lab, run, smp)
    for s in run.streams.values():
        if s.running():
            print(f"soak: stream {s.name} still running at the deadline; stopping it", flush=True)
            s.stop()
    run.load_end = time.monotonic() - run.t0
    print(f"soak: all calls placed and ended at {run.load_end:.0f} s; draining {args.drain:g} s", flush=True)
    drain_end = time.monotonic() + args.drain
    while time.monotonic() < drain_end:
        time.sleep(min(args.sample, max(0.1, drain_end - time.monotonic())))
        sample(lab, run)
    if args.tracemalloc and snap_a is not None:
        snap_b = tracemalloc_snapshot(lab)
        if snap_b is not None:
            print_tracemalloc(snap_a, snap_b)


def progress(lab: BenchLab, run: Run, smp: Sample) -> None:
    try:
        queues = {q["queue"]: q for q in lab.api_ok("GET", "/api/queues")["queues"]}
        waiting = sum(q["waiting"] for q in queues.values())
        talking = sum(q["talking"] for q in queues.values())
    except (OSError, RuntimeError, KeyError):
        waiting = talking = -1
    current = sum(s.current for s in run.streams.values())
    print(f"  {smp.at:5.0f} s  calls placed {smp.calls:6d}  SIPp up {current:4d}  waiting {waiting:3d}  "
          f"talking {talking:3d}  cc_ari RSS {fmt_mb(smp.cc_rss)}  Asterisk RSS {fmt_mb(smp.ast_rss)}", flush=True)


def leftovers(lab: BenchLab) -> dict[str, list[str]]:
    """What lives in Asterisk and cc_ari that should not when no call is up."""
    chans = [c["name"] for c in lab.ari("/channels")]
    bridges = [f"{b.get('name') or b['id']}({len(b['channels'])} ch)" for b in lab.ari("/bridges")
               if not (str(b.get("name", "")).startswith("cc-hold-") and not b["channels"])]
    idle_holds = [b["id"] for b in lab.ari("/bridges")
                  if str(b.get("name", "")).startswith("cc-hold-") and not b["channels"]]
    live = [f"{c['call_id']}:{c['phase']}" for c in lab.api_ok("GET", "/api/calls")["calls"]]
    return {"channels": chans, "bridges": bridges, "idle_holds": idle_holds, "live_calls": live}


def report(lab: BenchLab, run: Run, args: argparse.Namespace, phones: peers.Softphones) -> None:
    print("\nsoak results (bench lab; figures measured now, nothing asserted)", flush=True)
    # -- calls offered vs rows
    expected: dict[str, str] = {}
    rows_out = []
    for i, st in enumerate(STREAMS):
        sp = run.streams[st.name]
        created = sp.created
        for n in range(1, created + 1):
            expected[f"{run.prefix}{i}{n}"] = st.name
        rows_out.append((st.name, created, sp.count("SuccessfulCall(C)"), sp.count("FailedCall(C)")))
    rows = lab.sql(
        "SELECT caller, count(*) AS n, count(*) FILTER (WHERE ended_at IS NULL) AS open, "
        "array_agg(coalesce(outcome, '-') ORDER BY started_at) AS outcomes, "
        "array_agg(coalesce(handled_by, '-')) AS handled "
        "FROM report.calls WHERE caller LIKE $1 GROUP BY caller", run.prefix + "%")
    by_caller = {r["caller"]: r for r in rows}
    missing = [c for c in expected if c not in by_caller]
    dups = [c for c, r in by_caller.items() if r["n"] > 1]
    strangers = [c for c in by_caller if c not in expected]
    still_open = [c for c, r in by_caller.items() if r["open"]]
    outcomes: dict[str, Counter[str]] = {st.name: Counter() for st in STREAMS}
    handled: Counter[str] = Counter()
    for c, r in by_caller.items():
        outcomes[expected.get(c, STREAMS[0].name)].update(r["outcomes"])
        handled.update(r["handled"])
    legs_orphan = lab.sql_val(
        "SELECT count(*) FROM report.legs l WHERE l.started_at >= to_timestamp($1) "
        "AND NOT EXISTS (SELECT 1 FROM report.calls c WHERE c.call_id = l.call_id)", run.wall0 - 1)
    offered = len(expected)
    seconds = args.minutes * 60
    print(f"\n  calls offered (SIPp created): {offered} over {seconds:.0f} s ({offered / seconds:.2f} calls/s; "
          f"the last ended at {run.load_end:.0f} s); rows in report.calls for them: "
          f"{sum(int(r['n']) for c, r in by_caller.items() if c in expected)}")
    table = [("stream", "offered", "SIPp ok", "SIPp failed", "outcomes (report.calls)")]
    for name, created, ok, failed in rows_out:
        oc = ", ".join(f"{k} {v}" for k, v in outcomes[name].most_common())
        table.append((name, str(created), str(ok), str(failed), oc))
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    for r in table:
        print("  " + "  ".join(r[i].rjust(widths[i]) if i else r[i].ljust(widths[i]) for i in range(4)) + "  " + r[4])
    print(f"  handled_by: {dict(handled)}")

    def some(xs: list[str]) -> str:
        return f" e.g. {', '.join(xs[:5])}" if xs else ""

    agents = {a["agent"]: a for a in lab.api_ok("GET", "/api/agents")["agents"]}
    stuck = [f"{n}:{agents[n]['state']}" + (f"({agents[n]['pause_reason']})" if agents[n].get("pause_reason") else "")
             for n in phones.agents if agents.get(n, {}).get("state") != "ready"]
    left = leftovers(lab)
    before = run.before
    hw = high_water(run.asterisk_log.read_lines() if run.asterisk_log else [])
    cc_levels: Counter[str] = Counter()
    cc_events: Counter[str] = Counter()
    for line in run.cc_log.read_lines() if run.cc_log else []:
        with contextlib.suppress(ValueError, AttributeError):
            rec = json.loads(line)
            lvl = str(rec.get("level", "?"))
            cc_levels[lvl] += 1
            if lvl in ("warning", "error", "critical"):
                cc_events[f"{lvl}:{rec.get('event', '?')}"] += 1
    uas = phones.uas_stats()
    checks = [
        ("rows missing (offered, no row)", len(missing), some(missing)),
        ("rows duplicated (>1 row per caller)", len(dups), some(dups)),
        ("rows for numbers never offered", len(strangers), some(strangers)),
        ("legs without a call (report.legs since start)", int(legs_orphan or 0), ""),
        ("calls still open (ended_at NULL)", len(still_open), some(still_open)),
        ("agents stuck (not ready after drain)", len(stuck), some(stuck)),
        ("live calls left (GET /api/calls)", len(left["live_calls"]), some(left["live_calls"])),
        ("channels left in Asterisk (GET /channels)", len(left["channels"]), some(left["channels"])),
        ("bridges left (other than idle cc-hold-*)", len(left["bridges"]), some(left["bridges"])),
        ("taskprocessor high-water warnings (messages.log)", sum(hw.values()),
         " " + ", ".join(f"{k} x{v}" for k, v in hw.items()) if hw else ""),
    ]
    print(f"\n  after a {args.drain:g} s drain                                  found  (before the run)")
    before_n = {"live calls left (GET /api/calls)": len(before["live_calls"]),
                "channels left in Asterisk (GET /channels)": len(before["channels"]),
                "bridges left (other than idle cc-hold-*)": len(before["bridges"])}
    for what, n, ex in checks:
        b = f"  ({before_n[what]})" if what in before_n else ""
        print(f"  {what:50s} {n:5d}{b}{ex}")
    print(f"  idle cc-hold-* holding bridges (not leaks): {len(left['idle_holds'])}")
    print(f"  agent softphones: INVITEs {uas.get('IncomingCall(C)', 0)}, ok {uas.get('SuccessfulCall(C)', 0)}, "
          f"failed {uas.get('FailedCall(C)', 0)}")
    print(f"  cc_ari log lines by level: {dict(cc_levels)}")
    if cc_events:
        print("  cc_ari warnings/errors: " + ", ".join(f"{k} x{v}" for k, v in cc_events.most_common(8)))
    print_rss(run, offered)


def print_rss(run: Run, offered: int) -> None:
    load = [s for s in run.samples if s.at <= run.load_end + 0.5]
    drain = [s for s in run.samples if s.at > run.load_end]
    if len(load) < 2:
        print("  RSS: too few samples")
        return
    print(f"\n  RSS (/proc/<pid>/status VmRSS), {len(run.samples)} samples; slope = least squares over the "
          f"{len(load)} samples under load")
    print("  process   start     end of load   after drain   KB / 1000 calls   MB / hour   drain slope MB/h")
    for name, get in (("cc_ari", lambda s: s.cc_rss), ("Asterisk", lambda s: s.ast_rss)):
        ys = [float(get(s)) for s in load]
        per_call = least_squares([float(s.calls) for s in load], ys) * 1000
        per_hour = least_squares([s.at for s in load], ys) * 3600 / 1024
        drain_h = least_squares([s.at for s in drain], [float(get(s)) for s in drain]) * 3600 / 1024
        after = get(run.samples[-1])
        print(f"  {name:8s}  {fmt_mb(get(load[0])):>8s}  {fmt_mb(get(load[-1])):>12s}  {fmt_mb(after):>12s}"
              f"  {per_call:+16.0f}  {per_hour:+10.1f}  {drain_h:+16.1f}")
    cc = [float(s.cc_rss) for s in load]
    ast = [float(s.ast_rss) for s in load]
    cc_kb = least_squares([float(s.calls) for s in load], cc)
    ast_kb = least_squares([float(s.calls) for s in load], ast)
    print(f"  cc_ari grows {cc_kb:+.2f} KB per call; Asterisk (baseline, same calls) {ast_kb:+.2f} KB per call"
          + (f"; ratio {cc_kb / ast_kb:.1f}x" if ast_kb > 0.01 else ""))
    print("  (a leak shows as a steady KB/1000 calls that does not fall back during the drain; the first "
          "minute includes warm-up: caches, pools)")


# ------------------------------------------------------------------------------ tracemalloc
def tracemalloc_snapshot(lab: BenchLab) -> tracemalloc.Snapshot | None:
    pid = lab.pid("cc_ari")
    if not catches_signal(pid, signal.SIGUSR2):
        print("soak: --tracemalloc: cc_ari does not handle SIGUSR2, no snapshot taken "
              "(python -m bench.soak --help-tracemalloc)", flush=True)
        return None
    state = Path(lab.env["CC_STATE_DIR"])
    before = set(state.glob("*.tracemalloc"))
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = sorted(set(state.glob("*.tracemalloc")) - before)
        if new:
            time.sleep(1.0)  # let the dump finish
            return tracemalloc.Snapshot.load(str(new[-1]))
        time.sleep(0.5)
    print("soak: --tracemalloc: no snapshot appeared in CC_STATE_DIR within 60 s", flush=True)
    return None


def print_tracemalloc(a: tracemalloc.Snapshot, b: tracemalloc.Snapshot) -> None:
    print("\n  tracemalloc: top growth between the snapshot after warm-up and the one after the drain")
    for stat in b.compare_to(a, "traceback")[:10]:
        print(f"  {stat.size_diff / 1024:+9.1f} KB  {stat.count_diff:+7d} blocks")
        for line in stat.traceback.format(limit=6):
            print(f"      {line}")


if __name__ == "__main__":
    sys.exit(main())
