"""Settings.from_env with an explicit dict: required keys, URLs, ports, tokens, agents."""

from __future__ import annotations

from pathlib import Path

import pytest

from cc_ari.settings import Settings, SettingsError

ADMIN = "admin-token-0123456789"
AGENT = "agent-token-0123456789"


def env(**changes: str | None) -> dict[str, str]:
    e = {
        "CC_ARI_URL": "http://127.0.0.1:8088/ari/",
        "CC_DATABASE_URL": "postgresql://cc@127.0.0.1:5432/cc",
        "CC_ARI_USER": "cc_ari",
        "CC_ARI_PASSWORD": "ari-secret",
        "CC_API_TOKEN": ADMIN,
        "CC_RECORDINGS_DIR": "/srv/recordings",
        "CC_PROMPTS_DIR": "/var/lib/asterisk/sounds/cc",
    }
    for key, value in changes.items():
        if value is None:
            e.pop(key, None)
        else:
            e[key] = value
    return e


def test_minimal_environment_gives_documented_defaults() -> None:
    s = Settings.from_env(env())
    assert s.ari_url == "http://127.0.0.1:8088/ari"  # trailing slash dropped
    assert (s.ari_app, s.ami_host, s.ami_port, s.ami_user) == ("cc_ari", "127.0.0.1", 5038, "cc_ari")
    assert (s.http_host, s.http_port) == ("127.0.0.1", 8080)
    assert s.api_tokens == {ADMIN: "admin"}
    assert s.config_path == Path("config/cc_ari.toml")
    assert s.recordings_dir == Path("/srv/recordings")
    assert (s.cel_log, s.log_dir, s.state_dir) == (None, None, Path(".lab/state"))
    assert s.agents == tuple(f"agent{i}" for i in range(1, 21))
    assert s.log_level == "info"


def test_optional_settings_are_read_when_given() -> None:
    s = Settings.from_env(env(CC_CEL_LOG="/var/log/cel.json",
                              CC_LOG_DIR="/var/log/cc", CC_LOG_LEVEL="DEBUG", CC_HTTP_PORT="9090",
                              CC_AMI_PORT="15038", CC_ARI_APP="lab"))
    assert (s.cel_log, s.log_dir) == (Path("/var/log/cel.json"), Path("/var/log/cc"))
    assert (s.log_level, s.http_port, s.ami_port, s.ari_app) == ("debug", 9090, 15038, "lab")


@pytest.mark.parametrize("key", ["CC_ARI_URL", "CC_DATABASE_URL", "CC_ARI_USER", "CC_ARI_PASSWORD",
                                 "CC_RECORDINGS_DIR", "CC_PROMPTS_DIR"])
@pytest.mark.parametrize("value", [None, "   "])
def test_required_settings_missing_or_blank_are_named(key: str, value: str | None) -> None:
    with pytest.raises(SettingsError, match=f"^{key} is required$"):
        Settings.from_env(env(**{key: value}))


@pytest.mark.parametrize("url", ["ftp://asterisk:8088/ari", "127.0.0.1:8088", "ws://asterisk/ari"])
def test_ari_url_must_be_http(url: str) -> None:
    with pytest.raises(SettingsError, match="CC_ARI_URL must be an http\\(s\\) URL"):
        Settings.from_env(env(CC_ARI_URL=url))


@pytest.mark.parametrize("url", ["mysql://cc@db/cc", "cc@127.0.0.1/cc"])
def test_database_url_must_be_postgresql(url: str) -> None:
    with pytest.raises(SettingsError, match="CC_DATABASE_URL must be a postgresql:// URL"):
        Settings.from_env(env(CC_DATABASE_URL=url))
    assert Settings.from_env(env(CC_DATABASE_URL="postgres://cc@db/cc")).database_url == "postgres://cc@db/cc"


@pytest.mark.parametrize(("key", "raw", "message"), [
    ("CC_HTTP_PORT", "http", "must be a port number, got 'http'"),
    ("CC_HTTP_PORT", "", "must be a port number, got ''"),
    ("CC_AMI_PORT", "0", "must be 1..65535, got 0"),
    ("CC_AMI_PORT", "65536", "must be 1..65535, got 65536"),
])
def test_bad_ports_are_rejected_naming_the_key(key: str, raw: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"{key} {message}"):
        Settings.from_env(env(**{key: raw}))


def test_api_tokens_list_assigns_roles_and_adds_to_the_admin_token() -> None:
    sup = "sup:with:colons-0123456789"
    s = Settings.from_env(env(CC_API_TOKENS=f" {AGENT}:agent , ,{sup}:supervisor,"))
    assert s.api_tokens == {ADMIN: "admin", AGENT: "agent", sup: "supervisor"}
    only_list = Settings.from_env(env(CC_API_TOKEN=None, CC_API_TOKENS=f"{AGENT}:admin"))
    assert only_list.api_tokens == {AGENT: "admin"}


def test_a_token_can_be_bound_to_one_agent() -> None:
    bound = "desk-token-0123456789"
    s = Settings.from_env(env(CC_API_TOKENS=f"{bound}:agent:agent7,{AGENT}:agent"))
    assert s.api_tokens == {ADMIN: "admin", AGENT: "agent", bound: "agent:agent7"}
    with pytest.raises(SettingsError, match="unknown agent"):
        Settings.from_env(env(CC_API_TOKENS=f"{bound}:agent:agent999"))
    with pytest.raises(SettingsError, match="token:role with role in"):
        Settings.from_env(env(CC_API_TOKENS=f"{bound}:supervisor:agent7"))


@pytest.mark.parametrize("entry", [AGENT, f"{AGENT}:root", ":agent", f"{AGENT}:Agent", ":agent:agent7"])
def test_api_token_entries_need_token_and_known_role(entry: str) -> None:
    with pytest.raises(SettingsError, match="token:role with role in"):
        Settings.from_env(env(CC_API_TOKENS=entry))


def test_api_never_runs_without_a_token() -> None:
    with pytest.raises(SettingsError, match="the API never runs open"):
        Settings.from_env(env(CC_API_TOKEN="  ", CC_API_TOKENS=" , "))


@pytest.mark.parametrize("changes", [{"CC_API_TOKEN": "short"}, {"CC_API_TOKENS": "fifteen-chars-x:agent"}])
def test_tokens_shorter_than_16_characters_are_rejected(changes: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="at least 16 characters"):
        Settings.from_env(env(**changes))
    assert Settings.from_env(env(CC_API_TOKEN="sixteen-chars-xx")).api_tokens == {"sixteen-chars-xx": "admin"}


def test_agent_names_come_from_cc_agents_or_cc_agent_count() -> None:
    assert Settings.from_env(env(CC_AGENTS=" alice, bob,,carol ", CC_AGENT_COUNT="x")).agents == (
        "alice", "bob", "carol")
    assert Settings.from_env(env(CC_AGENT_COUNT="3")).agents == ("agent1", "agent2", "agent3")


@pytest.mark.parametrize("count", ["0", "-1", "10001", "ten", ""])
def test_bad_agent_count_is_rejected(count: str) -> None:
    with pytest.raises(SettingsError, match=r"CC_AGENT_COUNT must be 1\.\.10000"):
        Settings.from_env(env(CC_AGENT_COUNT=count))


def test_secrets_are_not_in_the_repr() -> None:
    text = repr(Settings.from_env(env(CC_AMI_PASSWORD="ami-secret")))
    assert "ari-secret" not in text and "ami-secret" not in text and ADMIN not in text
    assert "cc_ari" in text


def test_metrics_token_is_optional_and_long_enough() -> None:
    assert Settings.from_env(env()).metrics_token is None
    assert Settings.from_env(env(CC_METRICS_TOKEN="scrape-token-0123456789")).metrics_token == "scrape-token-0123456789"
    with pytest.raises(SettingsError, match="CC_METRICS_TOKEN"):
        Settings.from_env(env(CC_METRICS_TOKEN="short"))
