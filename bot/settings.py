"""Settings from the environment and `.env`; the names are a public interface (README.md, "Settings").

A malformed value stops start-up with one line naming the setting (`SettingsError`); secrets are `SecretStr`, so
they print as '**********' wherever a settings object is shown, and `secret_values` feeds the log redactor.
Settings a channel needs (tokens) are checked when that channel starts, so the console runs with none of them.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from agent.config import DEFAULT_SYSTEM_PROMPT, AgentConfig
from channels.capabilities import LiveMode
from channels.slack.agent_view import DEFAULT_PROMPTS, MAX_PROMPTS
from tools.mcp_config import McpConfigError, ServerConfig, load_mcp_config
from tools.web_search import BRAVE_URL, TAVILY_URL, Brave, SearchBackend, Searxng, Tavily


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line that names it."""


class Settings(BaseSettings):
    """Every setting of the bot. See .env.example for what each one means."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    agent_step_limit: int = Field(8, ge=1, le=100)
    tool_timeout: float = Field(30.0, gt=0, le=600)
    model_first_token_timeout: float = Field(60.0, gt=0, le=3600)
    model_idle_timeout: float = Field(30.0, gt=0, le=3600)
    web_fetch_allow_private: bool = False
    web_fetch_require_approval: bool = False
    approval_timeout: float = Field(600.0, gt=0, le=7 * 24 * 3600)
    mcp_config: Path | None = None
    searxng_url: str | None = None
    brave_api_key: SecretStr | None = None
    brave_api_url: str = BRAVE_URL
    tavily_api_key: SecretStr | None = None
    tavily_api_url: str = TAVILY_URL
    demo_token_delay: float = Field(0.03, ge=0, le=5)
    model_check_timeout: float = Field(10.0, gt=0, le=120)
    max_input_chars: int = Field(4000, ge=1)
    user_runs_per_minute: int = Field(20, ge=1)
    shutdown_grace: float = Field(20.0, ge=0, le=600)
    final_patience: float = Field(120.0, ge=0)

    bot_data_dir: Path = Path("data")
    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None
    metrics_port: int | None = Field(None, ge=1, le=65535)
    metrics_listen: str = "0.0.0.0"
    memory_token_budget: int = Field(6000, ge=100)

    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_listen: str = "0.0.0.0"
    telegram_webhook_port: int = Field(8443, ge=1, le=65535)
    telegram_allowed_users: Annotated[list[str], NoDecode] = []
    telegram_private_stream: Literal["draft", "edit"] = "draft"

    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_port: int = Field(3000, ge=1, le=65535)
    slack_listen: str = "0.0.0.0"
    slack_allowed_users: Annotated[list[str], NoDecode] = []
    slack_suggested_prompts: Annotated[list[str], NoDecode] = list(DEFAULT_PROMPTS)
    slack_tier2_per_minute: int = Field(20, ge=1, le=10_000)
    slack_tier3_per_minute: int = Field(50, ge=1, le=10_000)
    slack_tier4_per_minute: int = Field(100, ge=1, le=10_000)
    slack_posts_per_minute_per_channel: int = Field(60, ge=1, le=10_000)
    slack_posts_per_minute_per_workspace: int = Field(300, ge=1, le=100_000)

    vision: Literal["auto", "on", "off"] = "auto"
    max_file_mb: float = Field(20.0, gt=0, le=2000)
    max_document_chars: int = Field(20_000, ge=100, le=1_000_000)
    transcribe_model: str = "whisper-1"
    transcribe_base_url: str | None = None
    transcribe_api_key: SecretStr | None = None

    stream_mode: Literal["auto", "draft", "native", "edit", "off"] = "auto"
    stream_edit_interval: float | None = Field(None, gt=0, le=60)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] | None = None

    @field_validator("telegram_allowed_users", "slack_allowed_users", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lstrip("@") for part in value.split(",") if part.strip()]
        return value

    @field_validator("slack_suggested_prompts", mode="before")
    @classmethod
    def _prompts(cls, value: object) -> object:
        if isinstance(value, str):
            value = [part.strip() for part in value.split("|")]
        if isinstance(value, list) and not (1 <= len(value) <= MAX_PROMPTS and all(value)):
            raise ValueError(f"must be 1 to {MAX_PROMPTS} non-empty prompts separated by |")
        return value

    @field_validator(
        "openai_base_url",
        "telegram_api_base_url",
        "slack_api_url",
        "telegram_webhook_url",
        "searxng_url",
        "brave_api_url",
        "tavily_api_url",
        "transcribe_base_url",
    )
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError("is a Redis URL; DATABASE_URL is the Postgres database (REDIS_URL is Redis's)")
        return value

    def check_replicas(self) -> None:
        """Replica mode keeps every durable state in Postgres: without DATABASE_URL it cannot start.

        Raises:
            SettingsError: REDIS_URL is set and DATABASE_URL is not (one line naming it).
        """
        if self.replicas and self.database_url is None:
            raise SettingsError(
                "DATABASE_URL is not set; replica mode (REDIS_URL) keeps memory and the outbox in Postgres, "
                "e.g. DATABASE_URL=postgresql://livebot:secret@db:5432/livebot"
            )

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{16,256}", value.get_secret_value()):
            raise ValueError(
                "must be 16 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule, and long enough)"
            )
        return value

    @field_validator("log_level", "vision", mode="before")
    @classmethod
    def _case(cls, value: object, info: ValidationInfo) -> object:
        if not isinstance(value, str):
            return value
        return value.lower() if info.field_name == "vision" else value.upper()

    @property
    def replicas(self) -> bool:
        """Replica mode: REDIS_URL is set, so this process is one of several sharing Redis and Postgres."""
        return self.redis_url is not None

    @property
    def live_mode(self) -> LiveMode | None:
        """STREAM_MODE as the capability registry takes it (None = auto)."""
        return None if self.stream_mode == "auto" else LiveMode(self.stream_mode)

    @property
    def secret_values(self) -> list[str]:
        """Every secret's value, for the log redactor (MCP servers' headers and environment values included)."""
        secrets = [
            value.get_secret_value()
            for value in (
                self.openai_api_key,
                self.transcribe_api_key,
                self.database_url,
                self.redis_url,
                self.telegram_bot_token,
                self.telegram_webhook_secret,
                self.slack_bot_token,
                self.slack_app_token,
                self.slack_signing_secret,
                self.brave_api_key,
                self.tavily_api_key,
            )
            if value is not None and value.get_secret_value()
        ]
        try:
            servers = self.mcp_servers
        except SettingsError:
            servers = []  # reported when the servers are started
        for server in servers:
            secrets.extend(value for value in (*(server.env or {}).values(), *(server.headers or {}).values()))
        return [secret for secret in secrets if len(secret) >= 4]

    @cached_property
    def mcp_servers(self) -> list[ServerConfig]:
        """The servers of MCP_CONFIG (none when it is not set).

        Raises:
            SettingsError: The file is missing, is not JSON or describes servers wrongly (one line naming it).
        """
        if self.mcp_config is None:
            return []
        try:
            return load_mcp_config(self.mcp_config)
        except McpConfigError as exc:
            raise SettingsError(f"setting MCP_CONFIG is invalid: {exc}") from None

    @property
    def search_backends(self) -> list[SearchBackend]:
        """The web search backends configured, in the order they are tried."""
        backends: list[SearchBackend] = []
        if self.searxng_url:
            backends.append(Searxng(self.searxng_url))
        if self.brave_api_key and self.brave_api_key.get_secret_value():
            backends.append(Brave(self.brave_api_key.get_secret_value(), url=self.brave_api_url))
        if self.tavily_api_key and self.tavily_api_key.get_secret_value():
            backends.append(Tavily(self.tavily_api_key.get_secret_value(), url=self.tavily_api_url))
        return backends

    def agent_config(self) -> AgentConfig:
        """The agent's part of the settings (the agent package never reads settings itself)."""
        return AgentConfig(
            api_key=self.openai_api_key.get_secret_value() if self.openai_api_key else None,
            base_url=self.openai_base_url,
            model=self.llm_model,
            system_prompt=self.system_prompt,
            data_dir=self.bot_data_dir,
            step_limit=self.agent_step_limit,
            tool_timeout=self.tool_timeout,
            first_token_timeout=self.model_first_token_timeout,
            idle_timeout=self.model_idle_timeout,
            demo_delay=self.demo_token_delay,
            database_url=self.database_url.get_secret_value() if self.database_url else None,
            token_budget=self.memory_token_budget,
            vision=self.vision,
        )

    def require(self, *names: str) -> None:
        """Stop start-up with one line when a setting the chosen channel needs is missing.

        Raises:
            SettingsError: Naming the first missing setting.
        """
        for name in names:
            if getattr(self, name.lower()) in (None, ""):
                raise SettingsError(f"{name} is not set; it is needed for this channel (see .env.example)")


def load_settings(env_file: str | Path | None = ".env") -> Settings:
    """Read the settings, turning pydantic's report into one line about the first bad setting.

    Raises:
        SettingsError: Naming the setting and what is wrong; the value is shown only for non-secrets.
    """
    try:
        settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "settings"
        secret = any(word in name for word in ("TOKEN", "KEY", "SECRET", "DATABASE_URL", "REDIS_URL"))
        got = "" if secret or "input" not in error else f" (got {error['input']!r})"
        message = error["msg"].removeprefix("Value error, ")
        raise SettingsError(f"setting {name} is invalid: {message}{got}") from None
    settings.check_replicas()
    return settings
