"""The call-flow configuration (config/cc_ari.toml): routes, queues and IVR menus.

Parsed and validated once at start into frozen objects; a mistake in the file is a clear
error naming the key, never a surprise in the middle of a call.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cc_ari.campaigns.models import CODE

DIGITS = frozenset("0123456789*#")


class CallFlowError(ValueError):
    """The call-flow file is wrong; the message says where."""


@dataclass(frozen=True, slots=True)
class Target:
    """Where a caller goes: a queue, another menu, or a polite hangup."""

    queue: str | None = None
    menu: str | None = None
    hangup: bool = False
    prompt: str | None = None  # played before going there


@dataclass(frozen=True, slots=True)
class Menu:
    name: str
    prompts: tuple[str, ...]
    repeat_prompts: tuple[str, ...]
    timeout: float
    attempts: int
    max_invalid: int
    invalid_prompt: str | None
    choices: Mapping[str, Target]
    on_timeout: Target
    on_invalid: Target


@dataclass(frozen=True, slots=True)
class QueueConfig:
    name: str
    ring_timeout: float = 15.0
    wrapup: float = 10.0
    max_wait: float = 600.0
    announce_first: float = 15.0  # seconds in queue before the first position announcement
    announce_every: float = 0.0  # seconds between announcements; 0 (the default) = never announce
    service_level_seconds: int = 20  # reports: a call answered within this many seconds of waiting is in SL
    short_abandon_seconds: int = 5  # reports: a caller who hangs up sooner is a short abandon
    disposition_codes: tuple[str, ...] = ()  # what an agent may code a call with (empty: the defaults)


@dataclass(frozen=True, slots=True)
class Route:
    """What a dialed number does: an IVR menu or a queue."""

    dnis: str
    ivr: str | None = None
    queue: str | None = None


@dataclass(frozen=True, slots=True)
class CallFlow:
    prompts: Mapping[str, str]
    routes: Mapping[str, Route]
    queues: Mapping[str, QueueConfig]
    menus: Mapping[str, Menu]
    invalid_number_prompt: str = "not-in-service"
    goodbye_prompt: str = "goodbye"
    position_prompts: tuple[str, str, str] = ("queue-position", "queue-expected-wait", "queue-minutes")
    extra: Mapping[str, Any] = field(default_factory=dict)

    def route_for(self, dnis: str) -> Route | None:
        return self.routes.get(dnis)


def _num(where: str, raw: Any, default: float, *, minimum: float = 0.0) -> float:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CallFlowError(f"{where} must be a number, got {raw!r}")
    if raw < minimum:
        raise CallFlowError(f"{where} must be >= {minimum}, got {raw!r}")
    return float(raw)


def _whole(where: str, raw: Any, default: int, *, minimum: int = 0, maximum: int = 86400) -> int:
    if raw is None:
        return default
    if isinstance(raw, bool) or not (isinstance(raw, int) or (isinstance(raw, float) and raw.is_integer())):
        raise CallFlowError(f"{where} must be a whole number of seconds, got {raw!r}")
    if not minimum <= raw <= maximum:
        raise CallFlowError(f"{where} must be {minimum}..{maximum}, got {raw!r}")
    return int(raw)


def _codes(where: str, raw: Any) -> tuple[str, ...]:
    if raw is None:
        return ()
    if (not isinstance(raw, list) or not raw
            or not all(isinstance(c, str) and CODE.fullmatch(c) for c in raw)):
        raise CallFlowError(f"{where} must be a non-empty list of codes of 1-32 characters a-z, 0-9, _ or -")
    return tuple(dict.fromkeys(raw))


def _target(where: str, raw: Any) -> Target:
    if not isinstance(raw, dict):
        raise CallFlowError(f"{where} must be a table like {{ queue = \"support\" }}")
    unknown = set(raw) - {"queue", "menu", "hangup", "prompt"}
    if unknown:
        raise CallFlowError(f"{where}: unknown keys {sorted(unknown)}")
    kinds = [k for k in ("queue", "menu", "hangup") if raw.get(k)]
    if len(kinds) != 1:
        raise CallFlowError(f"{where} needs exactly one of queue, menu, hangup")
    for key in ("queue", "menu", "prompt"):
        if key in raw and not isinstance(raw[key], str):
            raise CallFlowError(f"{where}.{key} must be a name (a string), got {raw[key]!r}")
    return Target(queue=raw.get("queue"), menu=raw.get("menu"), hangup=bool(raw.get("hangup")),
                  prompt=raw.get("prompt"))


def parse(data: Mapping[str, Any]) -> CallFlow:
    prompts = dict(data.get("prompts", {}))
    for key, text in prompts.items():
        if not isinstance(text, str) or not text.strip():
            raise CallFlowError(f"prompts.{key} must be non-empty text")

    queues: dict[str, QueueConfig] = {}
    for name, q in dict(data.get("queues", {})).items():
        if not isinstance(q, dict):
            raise CallFlowError(f"queues.{name} must be a table")
        queues[name] = QueueConfig(
            name=name,
            ring_timeout=_num(f"queues.{name}.ring_timeout", q.get("ring_timeout"), 15.0, minimum=1),
            wrapup=_num(f"queues.{name}.wrapup", q.get("wrapup"), 10.0),
            max_wait=_num(f"queues.{name}.max_wait", q.get("max_wait"), 600.0, minimum=1),
            announce_first=_num(f"queues.{name}.announce_first", q.get("announce_first"), 15.0, minimum=1),
            announce_every=_num(f"queues.{name}.announce_every", q.get("announce_every"), 0.0),
            service_level_seconds=_whole(f"queues.{name}.service_level_seconds", q.get("service_level_seconds"), 20),
            short_abandon_seconds=_whole(f"queues.{name}.short_abandon_seconds", q.get("short_abandon_seconds"), 5),
            disposition_codes=_codes(f"queues.{name}.disposition_codes", q.get("disposition_codes")),
        )

    menus: dict[str, Menu] = {}
    for name, m in dict(data.get("ivr", {})).items():
        where = f"ivr.{name}"
        if not isinstance(m, dict):
            raise CallFlowError(f"{where} must be a table")
        choices_raw = m.get("choices", {})
        if not isinstance(choices_raw, dict) or not choices_raw:
            raise CallFlowError(f"{where}.choices must map digits to targets")
        choices = {}
        for digit, t in choices_raw.items():
            if digit not in DIGITS:
                raise CallFlowError(f"{where}.choices: {digit!r} is not a single DTMF digit")
            choices[digit] = _target(f"{where}.choices.{digit}", t)
        for key in ("prompts", "repeat_prompts"):
            value = m.get(key, [])
            if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
                raise CallFlowError(f"{where}.{key} must be a list of prompt names")
        if m.get("invalid_prompt") is not None and not isinstance(m["invalid_prompt"], str):
            raise CallFlowError(f"{where}.invalid_prompt must be a prompt name")
        prompts_list = tuple(m.get("prompts", ()))
        if not prompts_list:
            raise CallFlowError(f"{where}.prompts must list at least one prompt")
        menus[name] = Menu(
            name=name,
            prompts=prompts_list,
            repeat_prompts=tuple(m.get("repeat_prompts", prompts_list)),
            timeout=_num(f"{where}.timeout", m.get("timeout"), 5.0, minimum=0.5),
            attempts=int(_num(f"{where}.attempts", m.get("attempts"), 2, minimum=1)),
            max_invalid=int(_num(f"{where}.max_invalid", m.get("max_invalid"), 3, minimum=1)),
            invalid_prompt=m.get("invalid_prompt"),
            choices=choices,
            on_timeout=_target(f"{where}.on_timeout", m.get("on_timeout", {"hangup": True})),
            on_invalid=_target(f"{where}.on_invalid", m.get("on_invalid", {"hangup": True})),
        )

    routes: dict[str, Route] = {}
    for dnis, r in dict(data.get("routes", {})).items():
        if not isinstance(r, dict) or len([k for k in ("ivr", "queue") if r.get(k)]) != 1:
            raise CallFlowError(f"routes.{dnis} needs exactly one of ivr, queue")
        if not all(isinstance(r.get(k), str) for k in ("ivr", "queue") if k in r):
            raise CallFlowError(f"routes.{dnis}: ivr/queue must be a name (a string)")
        routes[str(dnis)] = Route(dnis=str(dnis), ivr=r.get("ivr"), queue=r.get("queue"))

    flow = CallFlow(prompts=prompts, routes=routes, queues=queues, menus=menus)
    _check_references(flow)
    return flow


def _check_references(flow: CallFlow) -> None:
    def check_prompt(where: str, key: str | None) -> None:
        if key is not None and key not in flow.prompts:
            raise CallFlowError(f"{where}: prompt {key!r} is not defined in [prompts]")

    def check_target(where: str, t: Target) -> None:
        if t.queue is not None and t.queue not in flow.queues:
            raise CallFlowError(f"{where}: queue {t.queue!r} is not defined in [queues]")
        if t.menu is not None and t.menu not in flow.menus:
            raise CallFlowError(f"{where}: menu {t.menu!r} is not defined in [ivr]")
        check_prompt(where, t.prompt)

    for r in flow.routes.values():
        if r.queue is not None and r.queue not in flow.queues:
            raise CallFlowError(f"routes.{r.dnis}: queue {r.queue!r} is not defined")
        if r.ivr is not None and r.ivr not in flow.menus:
            raise CallFlowError(f"routes.{r.dnis}: menu {r.ivr!r} is not defined")
    for m in flow.menus.values():
        for p in (*m.prompts, *m.repeat_prompts, m.invalid_prompt):
            check_prompt(f"ivr.{m.name}", p)
        for d, t in m.choices.items():
            check_target(f"ivr.{m.name}.choices.{d}", t)
        check_target(f"ivr.{m.name}.on_timeout", m.on_timeout)
        check_target(f"ivr.{m.name}.on_invalid", m.on_invalid)
    check_prompt("invalid number", flow.invalid_number_prompt)
    check_prompt("goodbye", flow.goodbye_prompt)
    if any(q.announce_every > 0 for q in flow.queues.values()):
        for p in flow.position_prompts:
            check_prompt("queue announcements", p)


def load(path: Path) -> CallFlow:
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise CallFlowError(f"call-flow file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise CallFlowError(f"{path}: {exc}") from None
    return parse(data)
