"""Wiring for `python -m bot console`: settings -> agent -> runtime -> console channel."""

from __future__ import annotations

from bot.agent_setup import open_bot_agent
from bot.runtime import DEMO_HELP, Runtime
from bot.settings import Settings
from channels.console import ConsoleChannel


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
    async with open_bot_agent(settings) as agent:
        channel = ConsoleChannel(name=name, mode=settings.live_mode, interval=settings.stream_edit_interval)
        channel.banner = banner(settings, demo=agent.is_demo, interactive=channel.interactive)
        return await channel.run(Runtime(agent).answer)
