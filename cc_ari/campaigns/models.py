"""A campaign's settings, validated from the API's JSON with LAB.md's defaults. Pure."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MODES = ("preview", "progressive", "predictive")
STATES = ("created", "running", "paused", "stopped", "finished")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
CODE = re.compile(r"[a-z0-9_-]{1,32}")  # a disposition code
RETRY_OUTCOMES = ("busy", "no_answer", "machine", "failed")
# AMD()'s parameters, in its argument order, with amd.conf's defaults except the number of words:
# Asterisk's 2 makes "Hello, John speaking" a machine (measured on the lab's Asterisk 22).
AMD_DEFAULTS: Mapping[str, int] = {
    "initial_silence": 2500, "greeting": 1500, "after_greeting_silence": 800, "total_analysis_time": 5000,
    "min_word_length": 100, "between_words_silence": 50, "maximum_number_of_words": 3,
    "silence_threshold": 256, "maximum_word_length": 5000,
}
CHOICES: Mapping[str, tuple[str, ...]] = {"connect_rule": ("us", "uk"), "notsure": ("person", "machine"),
                                           "blend_priority": ("inbound", "outbound")}
# What may happen to a campaign from each state (start / pause / stop).
TRANSITIONS: Mapping[str, Mapping[str, str]] = {
    "start": {"created": "running", "paused": "running", "running": "running"},
    "pause": {"running": "paused", "paused": "paused"},
    "stop": {"created": "stopped", "running": "stopped", "paused": "stopped", "stopped": "stopped"},
}


class CampaignError(ValueError):
    """A campaign request that cannot be: the message says which field and why."""


@dataclass(frozen=True, slots=True)
class Settings:
    abandon_target: float = 0.03
    abandon_period: str = "30d"
    amd: bool = True
    machine_action: str = "hangup"
    window: Mapping[str, str] = field(default_factory=lambda: {"start": "08:00", "end": "21:00"})
    ring_timeout: int = 20
    max_attempts: int = 3
    retry: Mapping[str, int] = field(default_factory=lambda: {"busy": 600, "no_answer": 3600, "machine": 7200,
                                                              "failed": 900})
    no_redial_after_drop: int = 72
    country: str = "US"  # numbers without "+" in lead files are read as this country's
    wrapup: int = 120  # seconds of wrap-up after a call at most; the agent's disposition ends it sooner
    connect_rule: str = "us"  # 2-second rule from: "us" the end of the greeting (AMD's decision), "uk" the answer
    notsure: str = "person"  # AMD's NOTSURE is connected as a "person", or treated as a "machine"
    blend_priority: str = "inbound"  # a blended agent free while both wait: "inbound" callers or "outbound" first
    amd_params: Mapping[str, int] = field(default_factory=lambda: dict(AMD_DEFAULTS))
    # The final codes an agent may give (callback, dnc and retry always may); empty: any code
    disposition_codes: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True)
class Campaign:
    name: str
    mode: str
    caller_id: str
    settings: Settings
    state: str = "created"


def _number(body: Mapping[str, Any], key: str, default: float, lo: float, hi: float, *, integer: bool) -> Any:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise CampaignError(f"{key} must be {'an integer' if integer else 'a number'}")
    if not lo <= value <= hi:
        raise CampaignError(f"{key} must be between {lo:g} and {hi:g}, got {value}")
    return value


def parse_campaign(body: Mapping[str, Any]) -> Campaign:
    """A campaign from `POST /api/campaigns`' body; CampaignError naming the field otherwise."""
    known = {"name", "mode", "caller_id", *Settings.__dataclass_fields__}
    unknown = sorted(set(body) - known)
    if unknown:
        raise CampaignError(f"unknown field(s): {', '.join(unknown)}")
    name = body.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise CampaignError("name must be 1-64 letters, digits, '_', '.' or '-' (starting with a letter or digit)")
    mode = body.get("mode")
    if mode not in MODES:
        raise CampaignError(f"mode must be one of {', '.join(MODES)}")
    caller_id = body.get("caller_id")
    if not isinstance(caller_id, str) or not re.fullmatch(r"\+?[0-9]{3,20}", caller_id):
        raise CampaignError("caller_id must be a phone number (digits, optional leading +)")
    defaults = Settings()
    period = body.get("abandon_period", defaults.abandon_period)
    if period not in ("30d", "24h"):
        raise CampaignError('abandon_period must be "30d" or "24h"')
    amd = body.get("amd", defaults.amd)
    if not isinstance(amd, bool):
        raise CampaignError("amd must be true or false")
    action = body.get("machine_action", defaults.machine_action)
    if action not in ("hangup", "message"):
        raise CampaignError('machine_action must be "hangup" or "message"')
    window = body.get("window", defaults.window)
    if (not isinstance(window, Mapping) or set(window) != {"start", "end"}
            or not all(isinstance(window[k], str) and HHMM.match(window[k]) for k in ("start", "end"))):
        raise CampaignError('window must be {"start": "HH:MM", "end": "HH:MM"}')
    if window["start"] >= window["end"]:
        raise CampaignError("window start must be before its end (same day, the lead's local time)")
    retry = body.get("retry", defaults.retry)
    if not isinstance(retry, Mapping) or set(retry) - set(RETRY_OUTCOMES):
        raise CampaignError(f"retry takes seconds for {', '.join(RETRY_OUTCOMES)}")
    merged_retry = dict(defaults.retry)
    for outcome, seconds in retry.items():
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 60 <= seconds <= 30 * 86400:
            raise CampaignError(f"retry.{outcome} must be whole seconds between 60 and 2592000")
        merged_retry[outcome] = seconds
    choices = {}
    for key, allowed in CHOICES.items():
        value = body.get(key, getattr(defaults, key))
        if value not in allowed:
            raise CampaignError(f"{key} must be one of {', '.join(allowed)}")
        choices[key] = value
    amd_params = body.get("amd_params", {})
    if not isinstance(amd_params, Mapping) or set(amd_params) - set(AMD_DEFAULTS):
        raise CampaignError(f"amd_params takes {', '.join(AMD_DEFAULTS)} (milliseconds, or counts)")
    for key, value in amd_params.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 60000:
            raise CampaignError(f"amd_params.{key} must be an integer between 0 and 60000")
    codes = body.get("disposition_codes", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) and CODE.fullmatch(c) for c in codes):
        raise CampaignError("disposition_codes must be a list of codes of 1-32 characters a-z, 0-9, _ or -")
    country = body.get("country", defaults.country)
    if not isinstance(country, str) or not re.fullmatch(r"[A-Z]{2}", country):
        raise CampaignError("country must be a two-letter region code (e.g. US, FR)")
    settings = Settings(
        abandon_target=float(_number(body, "abandon_target", defaults.abandon_target, 0.0, 0.5, integer=False)),
        abandon_period=period, amd=amd, machine_action=action, window={"start": window["start"],
                                                                     "end": window["end"]},
        ring_timeout=int(_number(body, "ring_timeout", defaults.ring_timeout, 15, 120, integer=True)),
        max_attempts=int(_number(body, "max_attempts", defaults.max_attempts, 1, 100, integer=True)),
        retry=merged_retry,
        no_redial_after_drop=int(_number(body, "no_redial_after_drop", defaults.no_redial_after_drop, 72, 24 * 365,
                                         integer=True)),
        country=country,
        wrapup=int(_number(body, "wrapup", defaults.wrapup, 0, 3600, integer=True)),
        amd_params={**AMD_DEFAULTS, **amd_params},
        disposition_codes=tuple(dict.fromkeys(codes)),
        **choices,
    )
    return Campaign(name=name, mode=mode, caller_id=caller_id, settings=settings)


def settings_from_json(data: Mapping[str, Any]) -> Settings:
    """Settings as stored (already validated; fields added since take their defaults)."""
    values = {k: v for k, v in data.items() if k in Settings.__dataclass_fields__}
    if "amd_params" in values:
        values["amd_params"] = {**AMD_DEFAULTS, **values["amd_params"]}
    if "disposition_codes" in values:
        values["disposition_codes"] = tuple(values["disposition_codes"])
    return Settings(**values)


def amd_arguments(settings: Settings) -> str:
    """AMD()'s arguments for the dialplan, in Asterisk's order."""
    return ",".join(str(settings.amd_params[k]) for k in AMD_DEFAULTS)


def next_state(action: str, state: str) -> str:
    """The state after start / pause / stop; CampaignError when the campaign cannot."""
    to = TRANSITIONS[action].get(state)
    if to is None:
        raise CampaignError(f"a {state} campaign cannot {action}")
    return to
