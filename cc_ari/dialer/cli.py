"""`cc-ari dialer simulate`: compare pacing policies on a simulated campaign (no lab needed)."""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence

from cc_ari.dialer.simulate import (
    POLICY_NAMES,
    PolicyReport,
    SimParams,
    expected_dialing_cycle,
    progressive_talk_share,
    simulate,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `cc-ari dialer simulate`."""
    d = SimParams()
    parser.add_argument("--agents", type=int, default=d.agents, help=f"agents logged in (default {d.agents})")
    parser.add_argument("--aht", type=float, default=d.aht, help=f"mean talk seconds, exponential (default {d.aht:g})")
    parser.add_argument("--wrap", type=float, default=d.wrap, help=f"wrap-up seconds (default {d.wrap:g})")
    parser.add_argument("--p-live", type=float, default=d.p_live, help=f"P(live answer) (default {d.p_live:g})")
    parser.add_argument("--p-machine", type=float, default=d.p_machine,
                        help=f"P(answering machine) (default {d.p_machine:g})")
    parser.add_argument("--p-busy", type=float, default=d.p_busy,
                        help=f"P(busy); the rest is no answer (default {d.p_busy:g})")
    parser.add_argument("--ring-time", type=float, default=d.ring_time,
                        help=f"mean seconds to a live or machine answer (default {d.ring_time:g})")
    parser.add_argument("--ring-timeout", type=float, default=d.ring_timeout,
                        help=f"seconds an unanswered call rings, >= 15 (default {d.ring_timeout:g})")
    parser.add_argument("--abandon-target", type=float, default=d.abandon_target,
                        help=f"drops / live answers allowed (default {d.abandon_target:g})")
    parser.add_argument("--abandon-window", type=float, default=d.abandon_window,
                        help=f"abandon period and rolling window, seconds (default {d.abandon_window:g})")
    parser.add_argument("--hours", type=float, default=d.hours, help=f"shift length (default {d.hours:g})")
    parser.add_argument("--warmup", type=float, default=d.warmup,
                        help="seconds simulated first (every agent ready at 0) and left out of the figures "
                             f"(default {d.warmup:g})")
    parser.add_argument("--seeds", type=int, default=d.seeds, help=f"runs per policy (default {d.seeds})")
    parser.add_argument("--policy", type=policy_list, default=list(POLICY_NAMES),
                        help=f"comma-separated, of {','.join(POLICY_NAMES)} (default all)")
    parser.add_argument("--half-live-mid-shift", action="store_true", help="p-live halves at mid-shift")
    parser.add_argument("--breaks", action="store_true", help="20%% of the agents take a 15 min break each")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def policy_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in POLICY_NAMES]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown policy {', '.join(unknown) or '(none)'}; choose from {','.join(POLICY_NAMES)}")
    return list(dict.fromkeys(names))


def params_from(args: argparse.Namespace) -> SimParams:
    """SimParams from parsed options; ValueError names what is wrong."""
    for name in ("aht", "wrap", "p_live", "p_machine", "p_busy", "ring_time", "ring_timeout",
                 "abandon_target", "abandon_window", "hours", "warmup"):
        if not math.isfinite(getattr(args, name)):
            raise ValueError(f"{name.replace('_', '-')} must be a finite number")
    return SimParams(agents=args.agents, aht=args.aht, wrap=args.wrap, p_live=args.p_live,
                     p_machine=args.p_machine, p_busy=args.p_busy, ring_time=args.ring_time,
                     ring_timeout=args.ring_timeout, abandon_target=args.abandon_target,
                     abandon_window=args.abandon_window, hours=args.hours, warmup=args.warmup, seeds=args.seeds,
                     half_live_mid_shift=args.half_live_mid_shift, breaks=args.breaks)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    """Simulate and print; a bad value is a one-line argparse error (exit code 2)."""
    try:
        params = params_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    reports = simulate(params, args.policy)
    if args.json:
        print(json.dumps({"params": params.as_dict(), "policies": [r.as_dict() for r in reports]}))
    else:
        print(render(params, reports))
    return 0


def render(params: SimParams, reports: Sequence[PolicyReport]) -> str:
    """The reports as a plain-text table, with the progressive closed form under it."""
    headers = ("policy", "talk share", "contacts/agent-h", "abandon mean", "worst seed", "worst window",
               "dials/contact")
    rows = [(r.policy, f"{r.talk_share:.1%}", f"{r.contacts_per_agent_hour:.2f}", f"{r.abandon_rate_mean:.2%}",
             f"{r.abandon_rate_worst_seed:.2%}", f"{r.abandon_rate_worst_window:.2%}",
             f"{r.dials_per_contact:.2f}") for r in reports]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths,
                                                                                              strict=True)))

    conditions = [c for c, on in (("p-live halved at mid-shift", params.half_live_mid_shift),
                                  ("breaks", params.breaks)) if on]
    out = [f"{params.agents} agents, AHT {params.aht:g} s, wrap {params.wrap:g} s, p-live {params.p_live:g}, "
           f"target {params.abandon_target:.1%}, {params.hours:g} h x {params.seeds} seeds"
           + (f" ({', '.join(conditions)})" if conditions else ""),
           line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]
    if not conditions:
        out.append(f"progressive closed form: talk share {progressive_talk_share(params):.1%} "
                   f"(dialing cycle {expected_dialing_cycle(params):.1f} s)")
    return "\n".join(out)
