"""Command line: pick a channel, load the settings, check the model, run until stopped.

Start-up problems (a bad setting, a channel that needs a token, a model server that refuses the key) end a server
with one line on stderr and exit status 2, never a traceback: they are the user's to fix, and the line says what
to fix. The console says the model's problem and starts anyway, so its commands keep working. Nothing unexpected
reaches the user as a traceback either: it goes to the log, and one line says so.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from agent import MemoryUnavailable
from agent.check import check_model
from bot.console_app import LOG_FILE
from bot.logs import ProblemCounter, configure_logging
from bot.settings import Settings, SettingsError, load_settings
from bot.store import StoreUnavailable

log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="livebot", description="A chat bot that streams its answers (settings: environment or .env)."
    )
    sub = parser.add_subparsers(dest="channel", required=True, metavar="{console,telegram,slack}")
    console = sub.add_parser("console", help="chat in this terminal (or answer piped lines)")
    console.add_argument("--name", default="local", help="conversation name; memory is kept per name")
    console.add_argument("--plain", action="store_true", help="plain text, each answer printed once when complete")
    sub.add_parser("telegram", help="run the Telegram bot")
    sub.add_parser("slack", help="run the Slack bot")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `livebot` and `python -m bot`. Returns the exit status."""
    args = _parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = load_settings()
        console = args.channel == "console"
        # The console's screen is the chat: its log goes to a file. Servers log to stderr, INFO by default.
        problems = configure_logging(
            settings.log_level or ("WARNING" if console else "INFO"),
            settings.secret_values,
            file=settings.bot_data_dir / LOG_FILE if console else None,
        )
        return asyncio.run(_run(args, settings, problems))
    except (SettingsError, MemoryUnavailable, StoreUnavailable) as exc:
        print(f"livebot: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C where no handler of ours was listening (start-up, shutdown)
        print(file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: the log has the traceback, the user one line
        log.critical("unexpected error", exc_info=exc)
        console_log = settings is not None and args.channel == "console"
        where = f" (details in {settings.bot_data_dir / LOG_FILE})" if console_log else ""  # type: ignore[union-attr]
        print(f"livebot: unexpected error: {type(exc).__name__}{where}", file=sys.stderr)
        return 1


async def _run(args: argparse.Namespace, settings: Settings, problems: ProblemCounter) -> int:
    problem = await check_model(settings.agent_config(), timeout=settings.model_check_timeout)
    if problem is not None:
        log.warning("model check: %s", problem.line)
    if args.channel == "console":
        from bot.console_app import run_console

        return await run_console(settings, name=args.name, plain=args.plain, problems=problems, model_problem=problem)
    if problem is not None and problem.fatal:
        raise SettingsError(problem.line)
    if args.channel == "telegram":
        from bot.telegram_app import run_telegram

        return await run_telegram(settings)
    from bot.slack_app import run_slack

    return await run_slack(settings)
