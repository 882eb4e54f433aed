"""Queue position and expected wait, as plain code (no I/O)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

DEFAULT_HANDLE_SECONDS = 180.0


def expected_wait_seconds(position: int, agents_serving: int, handle_seconds: float) -> float | None:
    """Expected seconds until a caller at `position` (1 = next) is answered.

    Each of `agents_serving` agents frees up once per average handle time (talk + wrap-up), so
    the callers ahead are served in rounds of `agents_serving`; on average a round is half a
    handle time away. None when nobody serves the queue (no estimate can be honest).
    """
    if position < 1 or agents_serving < 1 or handle_seconds <= 0:
        return None
    rounds = math.ceil(position / agents_serving)
    return (rounds - 0.5) * handle_seconds


def wait_minutes_to_announce(seconds: float) -> int:
    """Whole minutes, rounded up, never less than one ("about 1 minute")."""
    return max(1, math.ceil(seconds / 60.0))


def position_in_queue(call_id: str, waiting: Iterable[tuple[str, float]]) -> int:
    """1-based position of `call_id` among (call_id, queued_at) pairs, oldest first."""
    order = sorted(waiting, key=lambda w: (w[1], w[0]))
    for i, (cid, _) in enumerate(order, 1):
        if cid == call_id:
            return i
    return 0


class HandleTimes:
    """Rolling average handle time (talk + wrap-up) of the last `size` answered calls of a queue."""

    def __init__(self, size: int = 50, default: float = DEFAULT_HANDLE_SECONDS) -> None:
        self._size = size
        self._default = default
        self._samples: dict[str, deque[float]] = {}

    def add(self, queue: str, seconds: float) -> None:
        if seconds > 0:
            self._samples.setdefault(queue, deque(maxlen=self._size)).append(seconds)

    def average(self, queue: str) -> float:
        samples = self._samples.get(queue)
        return sum(samples) / len(samples) if samples else self._default


def number_sounds(n: int) -> list[str]:
    """English core sound files that say `n` (0..999), e.g. 42 -> digits/40, digits/2."""
    if not 0 <= n <= 999:
        raise ValueError(f"cannot say {n}")
    out: list[str] = []
    hundreds, rest = divmod(n, 100)
    if hundreds:
        out += [f"digits/{hundreds}", "digits/hundred"]
    if rest or not out:
        if rest <= 20:
            out.append(f"digits/{rest}")
        else:
            tens, ones = divmod(rest, 10)
            out.append(f"digits/{tens * 10}")
            if ones:
                out.append(f"digits/{ones}")
    return out
