"""Wiring for `python -m bot console`: settings -> agent -> runtime -> console channel."""

from __future__ import annotations

from agent.thread import open_agent_thread
from bot.attachments import open_attachments
from bot.runtime import DEMO_HELP, Runtime
from bot.settings import Settings
from channels.console import ConsoleChannel
from media.store import FileStore
from tools import default_tools


def banner(settings: Settings, *, demo: bool, interactive: bool) -> str:
    """The first lines a console user sees: what answers them and how to leave."""
    model = "offline demo model" if demo else f"model {settings.llm_model}"
    lines = [f"livebot console — {model}. /help for commands."]
    if interactive:
        lines.append("Ctrl-C stops a reply; Ctrl-D (or Ctrl-C at the prompt) quits.")
    if demo:
        lines.append(DEMO_HELP.strip().replace("**", ""))
    return "\n".join(lines)


async def run_console(settings: Settings, *, name: str) -> int:
    """Run the console chat until EOF or Ctrl-C. Returns the exit status."""
    tools = default_tools(
        allow_private_fetch=settings.web_fetch_allow_private, files=FileStore(settings.agent_config().files_dir)
    )
    async with (
        open_agent_thread(settings.agent_config(), tools) as agent,
        open_attachments(settings, agent.files) as files,
    ):
        channel = ConsoleChannel(
            name=name,
            mode=settings.live_mode,
            interval=settings.stream_edit_interval,
            pictures=settings.bot_data_dir / "pictures",
        )
        channel.banner = banner(settings, demo=agent.is_demo, interactive=channel.interactive)
        return await channel.run(Runtime(agent, attachments=files).answer)
