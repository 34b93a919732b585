"""Settings added for the 2026 platform features: malformed values stop start-up with one line naming them."""

from __future__ import annotations

import pytest

from bot.cli import main
from bot.settings import Settings, SettingsError, load_settings
from channels.slack.agent_view import DEFAULT_PROMPTS


def test_suggested_prompts_default_to_three_and_are_separated_by_bars(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SLACK_SUGGESTED_PROMPTS", raising=False)
    assert Settings(_env_file=None).slack_suggested_prompts == list(DEFAULT_PROMPTS)  # type: ignore[call-arg]
    monkeypatch.setenv("SLACK_SUGGESTED_PROMPTS", " What is 2+2? | Summarise a page ")
    assert load_settings(None).slack_suggested_prompts == ["What is 2+2?", "Summarise a page"]


@pytest.mark.parametrize("value", ["a||b", "a|b|c|d|e", "|"])
def test_malformed_suggested_prompts_are_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SLACK_SUGGESTED_PROMPTS", value)
    with pytest.raises(SettingsError, match="SLACK_SUGGESTED_PROMPTS is invalid: must be 1 to 4 non-empty prompts"):
        load_settings(None)


def test_private_stream_is_draft_or_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_PRIVATE_STREAM", "edit")
    assert load_settings(None).telegram_private_stream == "edit"
    monkeypatch.setenv("TELEGRAM_PRIVATE_STREAM", "edits")
    with pytest.raises(SettingsError, match="TELEGRAM_PRIVATE_STREAM is invalid"):
        load_settings(None)


def test_replica_mode_needs_postgres(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """REDIS_URL without DATABASE_URL stops a server at start-up with one line naming DATABASE_URL."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("REDIS_URL", "redis://:hunter2-secret@127.0.0.1:6390/0")
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    assert main(["telegram"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DATABASE_URL is not set" in err and "REDIS_URL" in err
    assert "hunter2" not in err
    monkeypatch.setenv("DATABASE_URL", "postgresql://livebot:pw@127.0.0.1:5432/livebot")
    assert load_settings(None).replicas


def test_without_redis_nothing_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings(None)
    assert not settings.replicas and settings.metrics_port is None


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("REDIS_URL", "http://127.0.0.1:6379", "must start with redis://"),
        ("DATABASE_URL", "redis://127.0.0.1:6379/0", "is a Redis URL"),
        ("METRICS_PORT", "70000", "Input should be less than or equal to 65535"),
    ],
)
def test_malformed_replica_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"{name} is invalid: {says}") as raised:
        load_settings(None)
    if name.endswith("_URL"):  # a URL may hold a password: it is never echoed
        assert value not in str(raised.value)
