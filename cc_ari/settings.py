"""Process settings: addresses, secrets and paths, from the environment, validated once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names it."""


ROLES = ("admin", "supervisor", "agent")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    ari_url: str
    ari_user: str
    ari_password: str = field(repr=False)
    ari_app: str
    ami_host: str
    ami_port: int
    ami_user: str
    ami_password: str = field(repr=False)
    http_host: str
    http_port: int
    api_tokens: Mapping[str, str] = field(repr=False)  # token -> role ("agent:agent7": bound to that agent)
    config_path: Path
    recordings_dir: Path  # as this host sees it
    asterisk_recordings_dir: str  # the same directory as Asterisk sees it (MixMonitor's file)
    prompts_dir: str  # as Asterisk sees it
    cel_log: Path | None
    log_dir: Path | None
    state_dir: Path
    agents: tuple[str, ...] = ()
    log_level: str = "info"
    request_timeout: float = 5.0
    reconcile_interval: float = 30.0  # seconds between checks of live state against Asterisk
    fault_injection: bool = False  # tests only: POST /api/debug/faults (admin token)
    metrics_token: str | None = field(default=None, repr=False)  # GET /metrics needs it when set

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env

        def need(key: str) -> str:
            value = e.get(key, "").strip()
            if not value:
                raise SettingsError(f"{key} is required")
            return value

        def port(key: str, default: str) -> int:
            raw = e.get(key, default)
            try:
                value = int(raw)
            except ValueError:
                raise SettingsError(f"{key} must be a port number, got {raw!r}") from None
            if not 0 < value < 65536:
                raise SettingsError(f"{key} must be 1..65535, got {value}")
            return value

        ari_url = need("CC_ARI_URL").rstrip("/")
        if urlparse(ari_url).scheme not in ("http", "https"):
            raise SettingsError(f"CC_ARI_URL must be an http(s) URL, got {ari_url!r}")
        db = need("CC_DATABASE_URL")
        if urlparse(db).scheme not in ("postgres", "postgresql"):
            raise SettingsError("CC_DATABASE_URL must be a postgresql:// URL")

        tokens: dict[str, str] = {}
        admin = e.get("CC_API_TOKEN", "").strip()
        if admin:
            tokens[admin] = "admin"
        bound: dict[str, str] = {}  # token -> the one agent it controls (token:agent:agent7)
        for item in filter(None, (s.strip() for s in e.get("CC_API_TOKENS", "").split(","))):
            token, _, role = item.rpartition(":")
            if role not in ROLES:
                head, _, middle = token.rpartition(":")
                if middle == "agent" and head and role:
                    bound[head] = role
                    token, role = head, f"agent:{role}"
            if not token or role.partition(":")[0] not in ROLES:
                raise SettingsError(f"CC_API_TOKENS entries are token:role with role in {ROLES}, "
                                    "or token:agent:<agent> for a token bound to one agent")
            tokens[token] = role
        if not tokens:
            raise SettingsError("CC_API_TOKEN (or CC_API_TOKENS) is required: the API never runs open")
        if any(len(t) < 16 for t in tokens):
            raise SettingsError("API tokens must be at least 16 characters")

        if e.get("CC_AGENTS", "").strip():
            agents = tuple(a.strip() for a in e["CC_AGENTS"].split(",") if a.strip())
        else:
            count = e.get("CC_AGENT_COUNT", "20")
            if not count.isdigit() or not 0 < int(count) <= 10000:
                raise SettingsError(f"CC_AGENT_COUNT must be 1..10000, got {count!r}")
            agents = tuple(f"agent{i}" for i in range(1, int(count) + 1))

        strangers = sorted(set(bound.values()) - set(agents))
        if strangers:
            raise SettingsError(f"CC_API_TOKENS binds tokens to unknown agent(s): {', '.join(strangers)}")

        raw_interval = e.get("CC_RECONCILE_SECONDS", "30")
        try:
            reconcile_interval = float(raw_interval)
        except ValueError:
            raise SettingsError(f"CC_RECONCILE_SECONDS must be a number of seconds, got {raw_interval!r}") from None
        if not 1 <= reconcile_interval <= 3600:
            raise SettingsError(f"CC_RECONCILE_SECONDS must be 1..3600, got {raw_interval!r}")
        faults = e.get("CC_FAULT_INJECTION", "").strip().lower()
        if faults not in ("", "0", "1", "false", "true", "no", "yes"):
            raise SettingsError(f"CC_FAULT_INJECTION must be 0 or 1, got {faults!r}")

        cel = e.get("CC_CEL_LOG", "").strip()
        log_dir = e.get("CC_LOG_DIR", "").strip()
        metrics_token = e.get("CC_METRICS_TOKEN", "").strip() or None
        if metrics_token is not None and len(metrics_token) < 16:
            raise SettingsError("CC_METRICS_TOKEN must be at least 16 characters")
        return cls(
            database_url=db,
            ari_url=ari_url,
            ari_user=need("CC_ARI_USER"),
            ari_password=need("CC_ARI_PASSWORD"),
            ari_app=e.get("CC_ARI_APP", "cc_ari"),
            ami_host=e.get("CC_AMI_HOST", "127.0.0.1"),
            ami_port=port("CC_AMI_PORT", "5038"),
            ami_user=e.get("CC_AMI_USER", "cc_ari"),
            ami_password=e.get("CC_AMI_PASSWORD", ""),
            http_host=e.get("CC_HTTP_HOST", "127.0.0.1"),
            http_port=port("CC_HTTP_PORT", "8080"),
            api_tokens=tokens,
            metrics_token=metrics_token,
            config_path=Path(e.get("CC_CONFIG", "config/cc_ari.toml")),
            recordings_dir=Path(need("CC_RECORDINGS_DIR")),
            asterisk_recordings_dir=e.get("CC_ASTERISK_RECORDINGS_DIR", "").strip() or need("CC_RECORDINGS_DIR"),
            prompts_dir=need("CC_PROMPTS_DIR"),
            cel_log=Path(cel) if cel else None,
            log_dir=Path(log_dir) if log_dir else None,
            state_dir=Path(e.get("CC_STATE_DIR", ".lab/state")),
            agents=agents,
            log_level=e.get("CC_LOG_LEVEL", "info").lower(),
            reconcile_interval=reconcile_interval,
            fault_injection=faults in ("1", "true", "yes"),
        )
