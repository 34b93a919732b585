"""Wiring for `python -m bot console`: settings -> agent -> runtime -> conversations -> console channel."""

from __future__ import annotations

import asyncio

from agent.check import ModelProblem
from bot.agent_setup import open_bot_agent
from bot.approvals import expired, open_approvals
from bot.attachments import open_attachments
from bot.conversations import Conversations
from bot.logs import ProblemCounter
from bot.runtime import DEMO_HELP, Runtime
from bot.settings import Settings
from bot.store import open_store
from channels.console import ConsoleChannel
from channels.console.surfaces import ASK_APPROVAL

LOG_FILE = "livebot.log"
EXIT_REPLY_FAILED = 1
"""Exit status of a piped console when a reply failed, so a script notices."""


def banner(settings: Settings, *, demo: bool, interactive: bool, problem: ModelProblem | None = None) -> str:
    """The first lines a console user sees: what answers them, how to leave, and what is wrong with the model."""
    model = "offline demo model" if demo else f"model {settings.llm_model}"
    lines = [f"livebot console — {model}. /help for commands."]
    if interactive:
        lines.append(
            "Enter sends, Alt-Enter adds a line, ↑/↓ recall earlier lines. Ctrl-C or /stop stops a reply; "
            "Ctrl-D (or Ctrl-C at the prompt) quits."
        )
    if demo:
        lines.append(DEMO_HELP.strip().replace("**", ""))
    if problem is not None:
        lines.append(f"⚠ {problem.line}. Fix the setting and restart (commands still work).")
    return "\n".join(lines)


async def run_console(
    settings: Settings, *, name: str, plain: bool, problems: ProblemCounter, model_problem: ModelProblem | None
) -> int:
    """Run the console chat until end of input or Ctrl-C. Returns the exit status.

    Args:
        settings: The bot's settings.
        name: The conversation name (`--name`).
        plain: `--plain`: plain text even on a terminal.
        problems: Counts what was logged at WARNING or above; the chat says once where the log is.
        model_problem: What the start-up check found wrong with the model, shown under the banner.
    """
    log_file = settings.bot_data_dir / LOG_FILE
    told = False

    def log_note() -> str | None:
        nonlocal told
        if told or not problems.count:
            return None
        told = True
        return f"(problems were logged to {log_file})"

    database_url = settings.database_url.get_secret_value() if settings.database_url else None
    async with (
        open_bot_agent(settings) as agent,
        open_attachments(settings, agent.files) as files,
        open_store(settings.bot_data_dir, database_url) as store,
    ):
        approvals = await open_approvals(store, settings.bot_data_dir, f"console:{name}", settings.approval_timeout)
        channel = ConsoleChannel(
            name=name,
            mode=settings.live_mode,
            interval=settings.stream_edit_interval,
            plain=plain,
            history=settings.bot_data_dir / "console-history",
            pictures=settings.bot_data_dir / "pictures",
        )
        runtime = Runtime(agent, attachments=files, approvals=approvals)
        conversations = Conversations(runtime, runs_per_minute=settings.user_runs_per_minute)
        text = banner(settings, demo=agent.is_demo, interactive=channel.interactive, problem=model_problem)
        if (waiting := await approvals.waiting_in(channel.conversation)) is not None:  # asked before a restart
            text += f"\n\n{waiting.text}\n\n{ASK_APPROVAL}"
        timeout = expired(settings.approval_timeout)
        watcher = asyncio.create_task(
            approvals.watch(lambda approval: conversations.decide(approval, timeout, channel.surface))
        )
        try:
            status = await channel.run(conversations, banner=text, after_reply=log_note)
        finally:
            watcher.cancel()
        await conversations.shutdown(0 if status else settings.shutdown_grace)  # Ctrl-C: the user wants out now
    if status == 0 and runtime.failed_replies and not channel.interactive:
        return EXIT_REPLY_FAILED
    return status
