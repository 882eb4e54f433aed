"""`python -m bench.dialer [--quick] [--seeds N] [--hours H] [--jobs J]`: the pacing policies of
cc_ari.dialer on the simulator, over a grid of campaigns (agents 5/20/50 x AHT 60/180/300 s x
p-live 0.10/0.25/0.50 x abandon target 3%/1%, wrap-up 10 s), plus two runs with changing
conditions (p-live halved at mid-shift; 20% of the agents on breaks). Prints each cell, then
PASS/FAIL lines for the targets (printed, not asserted). Stdlib only; runs on all CPUs."""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

if __package__ in (None, ""):  # run as `python bench/dialer.py`: make `bench` and `cc_ari` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.harness import table
from cc_ari.dialer.simulate import (
    POLICY_NAMES,
    PolicyReport,
    SeedResult,
    SimParams,
    progressive_talk_share,
    run_seed,
    summarize,
)

AGENTS = (5, 20, 50)
AHTS = (60.0, 180.0, 300.0)
P_LIVES = (0.10, 0.25, 0.50)
TARGETS = (0.03, 0.01)
REFERENCE = (20, 180.0, 0.25, 0.03)  # agents, AHT, p-live, target: the cell with the talk-share targets
QUICK = ((5, 180.0, 0.25, 0.03), (20, 180.0, 0.25, 0.03), (20, 180.0, 0.25, 0.01), (50, 300.0, 0.5, 0.03))


@dataclass(frozen=True, slots=True)
class Cell:
    label: str
    params: SimParams


def cells(*, quick: bool, hours: float, warmup: float, seeds: int) -> list[Cell]:
    base = SimParams(wrap=10.0, hours=hours, warmup=warmup, seeds=seeds)
    grid = QUICK if quick else tuple(itertools.product(AGENTS, AHTS, P_LIVES, TARGETS))
    out = [Cell(f"{a} agents, AHT {aht:g}, p-live {p:.2f}, target {t:.0%}",
                replace(base, agents=a, aht=aht, p_live=p, abandon_target=t)) for a, aht, p, t in grid]
    agents, aht, p_live, target = REFERENCE
    reference = replace(base, agents=agents, aht=aht, p_live=p_live, abandon_target=target)
    out.append(Cell("20 agents, AHT 180, p-live 0.25, target 3%, p-live halved at mid-shift",
                    replace(reference, half_live_mid_shift=True)))
    out.append(Cell("20 agents, AHT 180, p-live 0.25, target 3%, 20% of agents on 15 min breaks",
                    replace(reference, breaks=True)))
    return out


def _cost(task: tuple[int, str, int, SimParams]) -> float:
    """Rough relative run time: dials per second, times the predictive's cost per decision."""
    _, policy, _, p = task
    return p.agents / (p.aht * p.p_live) * (p.agents if policy == "predictive" else 1.0)


def _one(task: tuple[int, str, int, SimParams]) -> tuple[int, str, SeedResult]:
    index, policy, seed, params = task
    return index, policy, run_seed(params, policy, seed)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dialer", description=__doc__)
    parser.add_argument("--quick", action="store_true", help=f"{len(QUICK)} cells + the 2 changing-conditions runs")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per cell and policy (default 10)")
    parser.add_argument("--hours", type=float, default=1.0,
                        help="simulated hours per run (default 1, the abandon window, to keep the full grid "
                             "under half an hour on 2 CPUs; a shift would be 8)")
    parser.add_argument("--warmup", type=float, default=900.0,
                        help="seconds simulated before each run's hours, every agent ready at 0, left out of "
                             "the figures (default 900)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: CPUs)")
    args = parser.parse_args(argv)
    if args.seeds < 1 or not 0 < args.hours <= 24 or not 0 <= args.warmup <= 3600 or args.jobs < 1:
        parser.error("need --seeds >= 1, 0 < --hours <= 24, 0 <= --warmup <= 3600, --jobs >= 1")

    grid = cells(quick=args.quick, hours=args.hours, warmup=args.warmup, seeds=args.seeds)
    print(f"cc_ari dialer pacing: {len(grid)} cells x {len(POLICY_NAMES)} policies x {args.seeds} seeds, "
          f"{args.hours:g} simulated hour(s) per run after a {args.warmup:g} s warm-up (abandon window 1 h"
          f"{': the worst window is the whole run' if args.hours <= 1 else ''}), {args.jobs} processes; "
          "talk exponential, wrap 10 s, p-machine 0.15, p-busy 0.10, ring time 8 s, timeout 20 s\n", flush=True)
    started = time.perf_counter()
    tasks = [(i, policy, seed, cell.params) for i, cell in enumerate(grid)
             for policy in POLICY_NAMES for seed in range(args.seeds)]
    tasks.sort(key=_cost, reverse=True)  # the slow runs first, so that the workers end together
    results: dict[tuple[int, str], list[SeedResult]] = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for index, policy, result in pool.map(_one, tasks, chunksize=1):
            results.setdefault((index, policy), []).append(result)
    reports = [{p: summarize(p, sorted(results[(i, p)], key=lambda r: r.seed)) for p in POLICY_NAMES}
               for i in range(len(grid))]

    for cell, by_policy in zip(grid, reports, strict=True):
        print(cell.label)
        print(render(by_policy.values()))
        if not (cell.params.half_live_mid_shift or cell.params.breaks):
            print(f"  progressive closed form {progressive_talk_share(cell.params):.1%}")
        print()
    print(f"simulated in {time.perf_counter() - started:.0f} s\n")
    for line in checks(grid, reports):
        print(line)
    return 0


def render(reports: Iterable[PolicyReport]) -> str:
    rows = [(r.policy, f"{r.talk_share:.1%}", f"{r.contacts_per_agent_hour:.1f}", f"{r.abandon_rate_mean:.2%}",
             f"{r.abandon_rate_worst_seed:.2%}", f"{r.abandon_rate_worst_window:.2%}", f"{r.dials_per_contact:.2f}")
            for r in reports]
    return table(("policy", "talk share", "contacts/agent-h", "abandon mean", "worst seed", "worst window",
                  "dials/contact"), rows)


def checks(grid: Sequence[Cell], reports: Sequence[dict[str, PolicyReport]]) -> list[str]:
    out: list[str] = []

    def verdict(ok: bool, what: str) -> None:
        out.append(f"{'PASS' if ok else 'FAIL'}  {what}")

    over = [(c.label, r["predictive"]) for c, r in zip(grid, reports, strict=True)
            if max(r["predictive"].abandon_rate_worst_seed, r["predictive"].abandon_rate_worst_window)
            > c.params.abandon_target + 1e-12]
    verdict(not over, f"predictive abandon <= target on every seed and every rolling window, in every cell "
                      f"({len(grid) - len(over)}/{len(grid)} cells)")
    for label, pred_report in over:
        out.append(f"      {label}: worst seed {pred_report.abandon_rate_worst_seed:.2%}, "
                   f"worst window {pred_report.abandon_rate_worst_window:.2%}")

    for cell, r in zip(grid, reports, strict=True):
        p = cell.params
        if (p.agents, p.aht, p.p_live, p.abandon_target) == REFERENCE and not (
                p.half_live_mid_shift or p.breaks):
            prog, adapt = r["progressive"].talk_share, r["adaptive"].talk_share
            pred, oracle = r["predictive"].talk_share, r["oracle"].talk_share
            closed = (pred - prog) / (oracle - prog) if oracle > prog else 0.0
            verdict(closed >= 0.70, f"{cell.label}: predictive closes {closed:.0%} of the progressive->oracle "
                                    f"talk-share gap ({prog:.1%} -> {pred:.1%}, oracle {oracle:.1%}; need 70%)")
            verdict(pred - adapt >= 0.10, f"{cell.label}: predictive beats adaptive by "
                                          f"{(pred - adapt) * 100:.1f} points ({pred:.1%} vs {adapt:.1%}; need 10)")

    small = [(c.label, r) for c, r in zip(grid, reports, strict=True) if c.params.agents == 5]
    worse = [(label, r) for label, r in small if r["predictive"].talk_share < r["progressive"].talk_share]
    verdict(not worse, f"5 agents: predictive talk share never below progressive ({len(small) - len(worse)}/"
                       f"{len(small)} cells)")
    for label, r in worse:
        out.append(f"      {label}: {r['predictive'].talk_share:.1%} < {r['progressive'].talk_share:.1%}")

    static = [(c, r) for c, r in zip(grid, reports, strict=True)
              if not (c.params.half_live_mid_shift or c.params.breaks)]
    off = [(c, r) for c, r in static
           if abs(r["progressive"].talk_share - progressive_talk_share(c.params)) > 0.02]
    verdict(not off, f"progressive talk share within 2 points of its closed form ({len(static) - len(off)}/"
                     f"{len(static)} cells)")
    for c, r in off:
        out.append(f"      {c.label}: {r['progressive'].talk_share:.1%} vs {progressive_talk_share(c.params):.1%}")
    return out


if __name__ == "__main__":
    sys.exit(main())
