"""2. IVR engine: cc_ari.ivr.engine.IvrEngine over config/cc_ari.toml, transitions per second."""

from __future__ import annotations

import random
from pathlib import Path

from bench.harness import Budget, fmt_rate, fmt_ratio, interleaved, rate, table
from cc_ari.callflow import CallFlow, load
from cc_ari.ivr.engine import Action, IvrEngine, IvrState, Leave

Script = tuple[str | None, ...]  # a digit, or None for "no digit before the timeout"

CALLS_PER_BATCH = 2000


def scenarios(flow: CallFlow, menu: str) -> list[tuple[str, float, Script, str]]:
    """(name, weight, inputs after start, expected leave reason) for a menu of the call flow."""
    m = flow.menus[menu]
    valid = sorted(m.choices)
    invalid = [d for d in "0123456789*#" if d not in m.choices]
    first, second = valid[0], valid[-1]
    return [
        ("choice at once", 0.45, (first,), "choice"),
        ("timeout then choice", 0.20, (None, second), "choice"),
        ("invalid then choice", 0.15, (invalid[0], first), "choice"),
        ("timeouts until on_timeout", 0.10, (None,) * m.attempts, "timeout"),
        ("invalid until on_invalid", 0.10, tuple(invalid[i % len(invalid)] for i in range(m.max_invalid)),
         "invalid"),
    ]


def drive(engine: IvrEngine, menu: str, script: Script) -> tuple[IvrState, list[Action]]:
    """One caller through the menu: the final state and the last transition's actions."""
    state, actions = engine.start(menu)
    for x in script:
        state, actions = engine.on_timeout(state) if x is None else engine.on_digit(state, x)
    return state, actions


def run(*, quick: bool, seed: int, config: Path) -> str:
    flow = load(config)
    engine = IvrEngine(flow)
    rng = random.Random(seed)
    menu = next(r.ivr for r in flow.routes.values() if r.ivr is not None)
    mix = scenarios(flow, menu)
    for name, _, script, reason in mix:  # each script does what it says, checked once before timing
        state, actions = drive(engine, menu, script)
        if not (state.done and actions and isinstance(actions[-1], Leave) and actions[-1].reason == reason):
            raise AssertionError(f"IVR scenario {name!r} did not leave the menu by {reason}")

    calls = [mix[i][2] for i in rng.choices(range(len(mix)), weights=[w for _, w, _, _ in mix], k=CALLS_PER_BATCH)]
    transitions = sum(1 + len(s) for s in calls)
    keys = [k for s in calls for k in ("", *(x or "" for x in s))]  # one lookup per transition
    choices = flow.menus[menu].choices
    assert len(keys) == transitions

    start, on_digit, on_timeout = engine.start, engine.on_digit, engine.on_timeout

    def engine_batch() -> None:
        for script in calls:
            state, _ = start(menu)
            for x in script:
                state, _ = on_timeout(state) if x is None else on_digit(state, x)

    def floor_batch() -> None:
        get = choices.get
        for k in keys:
            get(k)

    budget = Budget(0.3, min_reps=5) if quick else Budget(3.0, min_reps=20)
    subject, base = interleaved([engine_batch, floor_batch], budget)
    eng_rate, floor_rate = rate(transitions, subject), rate(transitions, base)
    shares = [f"{name} {w:.0%}" for name, w, _, _ in mix]
    share = ", ".join(shares[:3]) + ",\n   " + ", ".join(shares[3:])
    head = (f"2. IVR engine: cc_ari.ivr.engine.IvrEngine over {config.name}, menu {menu!r}, transitions/s\n"
            f"   mix of {CALLS_PER_BATCH} callers per batch ({transitions} transitions: start, digit, timeout):\n"
            f"   {share}\n"
            f"   baseline (the floor): a loop of menu.choices.get(digit), one per transition")
    body = table(["loop", "batches", "transitions/s", "us/transition", "ratio"], [
        ["IvrEngine start/on_digit/on_timeout", str(len(subject)), fmt_rate(eng_rate), f"{1e6 / eng_rate:.2f}",
         fmt_ratio(floor_rate / eng_rate)],
        ["floor: dict lookup per transition", str(len(base)), fmt_rate(floor_rate), f"{1e6 / floor_rate:.3f}",
         fmt_ratio(1.0)],
    ])
    return f"{head}\n{body}\n  ratio = time per transition / the floor's (how many dict lookups one transition costs)"

