"""Timing and table helpers shared by the benchmarks (time.perf_counter, stdlib only)."""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from time import perf_counter


@dataclass(frozen=True, slots=True)
class Budget:
    """How long one measurement may take: at least `min_reps` runs, then until `seconds` is spent."""

    seconds: float
    min_reps: int = 5
    max_reps: int = 10_000


def interleaved(fns: Sequence[Callable[[], object]], budget: Budget, *, warm_up: bool = True) -> list[list[float]]:
    """Seconds per call of each fn, run in turn (a, b, a, b, ...) so that drift hits them alike.

    One warm-up call each first (unless the caller has just run them). The garbage collector is
    off while timing (as timeit does); what is timed frees its objects by reference counting.
    """
    if warm_up:
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        deadline = perf_counter() + budget.seconds
        reps = 0
        while reps < budget.min_reps or (reps < budget.max_reps and perf_counter() < deadline):
            for fn, out in zip(fns, samples, strict=True):
                t0 = perf_counter()
                fn()
                out.append(perf_counter() - t0)
            reps += 1
    finally:
        if was_enabled:
            gc.enable()
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (q in 0..100)."""
    s = sorted(values)
    if not s:
        return math.nan
    pos = (len(s) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return percentile(values, 50.0)


def rate(count: int, seconds: Sequence[float]) -> float:
    """Operations per second from the median time of batches of `count` operations."""
    return count / median(seconds)


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_ms(seconds: float) -> str:
    ms = seconds * 1000.0
    return f"{ms:.3f}" if ms < 10 else f"{ms:.1f}"


def fmt_ratio(x: float) -> str:
    return f"{x:.2f}x"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1) -> str:
    """A plain-text table; the first `left` columns are left-aligned, the others right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join(["  " + line(headers), "  " + rule, *("  " + line(r) for r in rows)])
