"""IVR transitions as plain code: (state, input) -> (new state, actions). No I/O.

The call service executes the actions (play prompts, wait for a digit, leave the menu) and
feeds back what happened (a digit, a timeout). Barge-in is the service's business: a digit
pressed while a prompt plays is fed in like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cc_ari.callflow import CallFlow, Menu, Target


@dataclass(frozen=True, slots=True)
class Play:
    prompts: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Collect:
    """Wait up to `timeout` seconds (after the prompts end) for one digit."""

    timeout: float


@dataclass(frozen=True, slots=True)
class Leave:
    """The caller leaves the IVR for `target` (a queue or a hangup); `reason` is for logs."""

    target: Target
    reason: str  # "choice" | "timeout" | "invalid"


Action = Play | Collect | Leave


@dataclass(frozen=True, slots=True)
class IvrState:
    menu: str
    plays: int = 1  # how many times the menu has been offered
    invalid: int = 0  # invalid digits so far in this menu
    done: bool = False
    path: tuple[str, ...] = ()  # digits accepted so far, for the report


class IvrEngine:
    def __init__(self, flow: CallFlow) -> None:
        self._flow = flow

    def _menu(self, state: IvrState) -> Menu:
        return self._flow.menus[state.menu]

    def start(self, menu: str) -> tuple[IvrState, list[Action]]:
        m = self._flow.menus[menu]
        return IvrState(menu=menu), [Play(m.prompts), Collect(m.timeout)]

    def _enter(self, state: IvrState, target: Target, reason: str) -> tuple[IvrState, list[Action]]:
        if target.menu is not None:
            m = self._flow.menus[target.menu]
            new = IvrState(menu=target.menu, path=state.path)
            pre = (target.prompt,) if target.prompt else ()
            return new, [Play((*pre, *m.prompts)), Collect(m.timeout)]
        return replace(state, done=True), [Leave(target, reason)]

    def on_digit(self, state: IvrState, digit: str) -> tuple[IvrState, list[Action]]:
        if state.done:
            return state, []
        m = self._menu(state)
        target = m.choices.get(digit)
        if target is not None:
            return self._enter(replace(state, path=(*state.path, digit)), target, "choice")
        invalid = state.invalid + 1
        if invalid >= m.max_invalid:
            return self._enter(replace(state, invalid=invalid), m.on_invalid, "invalid")
        pre = (m.invalid_prompt,) if m.invalid_prompt else ()
        return replace(state, invalid=invalid), [Play((*pre, *m.repeat_prompts)), Collect(m.timeout)]

    def on_timeout(self, state: IvrState) -> tuple[IvrState, list[Action]]:
        if state.done:
            return state, []
        m = self._menu(state)
        if state.plays >= m.attempts:
            return self._enter(state, m.on_timeout, "timeout")
        return replace(state, plays=state.plays + 1), [Play(m.repeat_prompts), Collect(m.timeout)]
