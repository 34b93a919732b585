"""Settings added for the 2026 platform features: malformed values stop start-up with one line naming them."""

from __future__ import annotations

import pytest

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
