"""What the agent needs to know, independent of where the settings came from.

The bot reads environment variables and .env (README.md, "Settings") and builds one `AgentConfig`; the agent
never reads the environment itself, so tests can build a config by hand and no setting is read twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SYSTEM_PROMPT = (
    "You are a helpful assistant in a chat app. Answer in Markdown that reads well in a chat bubble: short "
    "paragraphs, lists where they help, code in fenced blocks. Be concise and direct; skip filler. Use the tools "
    "you have when they give a better answer (arithmetic, the current time, reading a web page), and say so when "
    "a tool fails instead of guessing."
)


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """Settings of the agent.

    Attributes:
        api_key: OPENAI_API_KEY. With neither a key nor a base URL the offline demo model is used.
        base_url: OPENAI_BASE_URL, for any OpenAI-compatible server (Ollama, vLLM, LM Studio, OpenRouter).
        model: LLM_MODEL.
        system_prompt: The instructions every conversation starts with.
        data_dir: BOT_DATA_DIR; the conversation memory lives in `data_dir / "memory.sqlite"` unless
            `database_url` is set.
        database_url: DATABASE_URL: keep the conversation memory in this Postgres database instead of SQLite.
            Left out of `repr`, like `api_key`: it usually holds a password.
        token_budget: MEMORY_TOKEN_BUDGET, the estimated tokens (about 4 characters each) that one model request
            may spend on the system prompt, the tools and the history. The oldest turns are left out of the
            request to fit; the stored history keeps them. The current turn is always sent whole.
        step_limit: Maximum number of model calls in one run that may still use tools. The call after the last
            of them gets no tools and is told to answer with what it has, so a run always ends in an answer.
        tool_timeout: Seconds a single tool call may take before the model is told it timed out.
        first_token_timeout: MODEL_FIRST_TOKEN_TIMEOUT: seconds a model step may take before its first words (or
            tool call); past it the reply ends with a notice instead of waiting on a silent server.
        idle_timeout: MODEL_IDLE_TIMEOUT: seconds the model may stay silent between chunks once it has started;
            past it the reply ends with the text so far and a notice.
        demo_delay: Seconds between the demo model's tokens, so the offline demo streams visibly.
    """

    api_key: str | None = field(repr=False)
    base_url: str | None
    model: str = "gpt-4o-mini"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    data_dir: Path = Path("data")
    database_url: str | None = field(default=None, repr=False)
    token_budget: int = 6000
    step_limit: int = 8
    tool_timeout: float = 30.0
    first_token_timeout: float = 60.0
    idle_timeout: float = 30.0
    demo_delay: float = 0.03

    def __post_init__(self) -> None:
        if self.step_limit < 0:
            raise ValueError(f"step_limit must be >= 0, got {self.step_limit}")
        if self.tool_timeout <= 0:
            raise ValueError(f"tool_timeout must be > 0, got {self.tool_timeout}")
        if self.first_token_timeout <= 0 or self.idle_timeout <= 0:
            raise ValueError(f"model timeouts must be > 0, got {self.first_token_timeout}, {self.idle_timeout}")
        if self.token_budget <= 0:
            raise ValueError(f"token_budget must be > 0, got {self.token_budget}")
        if self.demo_delay < 0:
            raise ValueError(f"demo_delay must be >= 0, got {self.demo_delay}")

    @property
    def uses_demo(self) -> bool:
        """True when no model server is configured and the offline demo model answers."""
        return not self.api_key and not self.base_url
