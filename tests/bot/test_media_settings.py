"""The settings of photos, voice and files: a bad value stops start-up with one line naming it."""

from __future__ import annotations

import pytest

from bot.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("name", "value"),
    [("VISION", "maybe"), ("MAX_FILE_MB", "0"), ("MAX_DOCUMENT_CHARS", "lots"), ("TRANSCRIBE_BASE_URL", "ftp://x")],
)
def test_a_malformed_value_is_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=f"setting {name} is invalid"):
        load_settings(env_file=None)


def test_defaults_case_and_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VISION", "OFF")
    monkeypatch.setenv("TRANSCRIBE_API_KEY", "sk-whisper-secret")
    settings = load_settings(env_file=None)
    assert (settings.vision, settings.max_file_mb, settings.max_document_chars) == ("off", 20.0, 20_000)
    assert settings.transcribe_model == "whisper-1"
    assert settings.agent_config().vision == "off"
    assert "sk-whisper-secret" in settings.secret_values
