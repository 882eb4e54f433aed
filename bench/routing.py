"""1. Agent selection: cc_ari.queueing.routing.assign against a naive reference."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial

from bench.harness import Budget, fmt_ms, fmt_ratio, interleaved, median, percentile, table
from cc_ari.agents.models import Agent, AgentState
from cc_ari.queueing.routing import Assignment, Waiting, assign

QUEUES = ("sales", "support", "billing", "retention", "vip")


@dataclass(frozen=True, slots=True)
class Case:
    agents: int
    waiting: int
    queues: int
    seconds: float  # share of the full run's time budget


CASES = (Case(20, 50, 2, 1.0), Case(200, 500, 5, 2.5), Case(1000, 2000, 5, 7.0))


def build(case: Case, rng: random.Random) -> tuple[list[Waiting], list[Agent]]:
    """Agents logged in (via Agent.login) and ready, each in 1-2 queues, idle for up to an hour;
    callers queued over the last 10 minutes, one in ten already refused by 1-2 of its queue's agents."""
    queues = QUEUES[: case.queues]
    now = 100_000.0
    agents = []
    for i in range(case.agents):
        member = frozenset(rng.sample(queues, min(len(queues), rng.choice((1, 1, 2)))))
        agents.append(Agent(f"agent{i + 1}").login(member, {}, now - rng.uniform(0, 3600)))
    by_queue = {q: [a.name for a in agents if q in a.queues] for q in queues}
    waiting = []
    for i in range(case.waiting):
        q = rng.choice(queues)
        tried: frozenset[str] = frozenset()
        if by_queue[q] and rng.random() < 0.1:
            tried = frozenset(rng.sample(by_queue[q], min(len(by_queue[q]), rng.choice((1, 2)))))
        waiting.append(Waiting(f"1763900000.{i + 1}", q, now - rng.uniform(0, 600), tried))
    return waiting, agents


def naive_assign(waiting: Sequence[Waiting], agents: Iterable[Agent]) -> list[Assignment]:
    """Reference: for each waiting call (oldest first), scan every agent, sort the candidates."""
    everyone = list(agents)
    taken: set[str] = set()
    out: list[Assignment] = []
    for w in sorted(waiting, key=lambda w: (w.queued_at, w.call_id)):
        ranked = sorted(
            (a for a in everyone if a.state is AgentState.READY and w.queue in a.queues and a.name not in taken),
            key=lambda a: (a.idle_since, a.name),
        )
        chosen = next((a for a in ranked if a.name not in w.tried), None)
        if chosen is None and ranked:  # only agents who already let it ring out: one of them again
            chosen = ranked[0]
        if chosen is not None:
            out.append(Assignment(w.call_id, chosen.name))
            taken.add(chosen.name)
    return out


def run(*, quick: bool, seed: int) -> str:
    rng = random.Random(seed)
    rows = []
    for case in CASES:
        waiting, agents = build(case, rng)
        expected = naive_assign(waiting, agents)
        got = assign(waiting, agents)
        if got != expected:
            raise AssertionError(f"assign() and the naive reference disagree for {case}")
        budget = Budget(case.seconds / 10, min_reps=3) if quick else Budget(case.seconds, min_reps=10)
        subject, base = interleaved([partial(assign, waiting, agents), partial(naive_assign, waiting, agents)],
                                    budget, warm_up=False)  # both just ran, for the equality check
        rows.append([
            f"{case.agents} agents / {case.waiting} waiting / {case.queues} queues",
            str(len(got)),
            str(len(subject)),
            fmt_ms(median(subject)),
            fmt_ms(percentile(subject, 95)),
            fmt_ms(median(base)),
            fmt_ms(percentile(base, 95)),
            fmt_ratio(median(subject) / median(base)),
            fmt_ratio(median(base) / median(subject)),
        ])
    head = ("1. Agent selection: cc_ari.queueing.routing.assign(waiting, agents), ms per call\n"
            "   baseline: naive reference in bench/routing.py (per waiting call: scan all agents, sort);\n"
            "   its assignments are checked equal to assign()'s before timing")
    body = table(["size", "assigned", "reps", "p50 ms", "p95 ms", "base p50", "base p95", "ratio", "speed-up"],
                 rows)
    return f"{head}\n{body}\n  ratio = assign p50 / baseline p50 (below 1: assign is faster); speed-up = its inverse"
