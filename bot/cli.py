"""Command line: pick a channel, load the settings, run until stopped.

Start-up problems (a bad setting, a channel that needs a token) end the process with one line on stderr and exit
status 2, never a traceback: they are the user's to fix, and the line says what to fix.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from agent import MemoryUnavailable
from bot.logs import configure_logging
from bot.settings import Settings, SettingsError, load_settings
from tools.mcp_config import McpStartError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livebot", description="A chat bot that streams its answers (settings: environment or .env)."
    )
    sub = parser.add_subparsers(dest="channel", required=True, metavar="{console,telegram,slack}")
    console = sub.add_parser("console", help="chat in this terminal (or answer piped lines)")
    console.add_argument("--name", default="local", help="conversation name; memory is kept per name")
    sub.add_parser("telegram", help="run the Telegram bot")
    sub.add_parser("slack", help="run the Slack bot")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `livebot` and `python -m bot`. Returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        # A chat in the terminal shares the screen with the log: only problems by default there.
        default_level = "WARNING" if args.channel == "console" else "INFO"
        configure_logging(settings.log_level or default_level, settings.secret_values)
        return asyncio.run(_run(args, settings))
    except (SettingsError, MemoryUnavailable, McpStartError) as exc:
        print(f"livebot: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.channel == "console":
        from bot.console_app import run_console

        return await run_console(settings, name=args.name)
    if args.channel == "telegram":
        from bot.telegram_app import run_telegram

        return await run_telegram(settings)
    from bot.slack_app import run_slack

    return await run_slack(settings)
