"""The bot's commands, defined once: the runtime, both parsers, the Telegram menu and the help text derive from here.

Telegram and the console type a command with a leading "/" (in a Telegram group also `/cmd@thisbot`); Slack keeps
a leading "/" for its own slash commands, so there the plain word is the command (`word=True`), and its parser
turns the word into the "/" form the runtime reads. Adding a command is a row here and its action in
`bot.runtime.Runtime` (a test checks every row has one).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Command:
    """One command.

    Attributes:
        name: What the user types after the "/" (or alone, where `word`).
        description: Its line in a command menu (Telegram's).
        help: Its phrase in the help text ("forgets this conversation"); None keeps it out of the help.
        word: Whether the plain word is this command where "/" is not available (Slack).
    """

    name: str
    description: str
    help: str | None = None
    word: bool = True


START = Command("start", "What this bot does", word=False)  # Telegram's first message; a plain "start" is a question
HELP = Command("help", "What this bot does", help="shows this")
RESET = Command("reset", "Forget this conversation", help="forgets this conversation")
STOP = Command("stop", "Stop the answer being written", help="stops an answer while I write it")
"""Acts at once, outside the conversation's queue (`bot.conversations`); the others are turns (`bot.runtime`)."""
TOOLS = Command("tools", "List the tools I can use", help="lists the tools I can use")
COMMANDS = (START, HELP, RESET, STOP, TOOLS)
"""In menu order."""
_BY_NAME = {command.name: command for command in COMMANDS}
_BY_WORD = {command.name: f"/{command.name}" for command in COMMANDS if command.word}


def command_of(text: str) -> Command | None:
    """The command `text` is ("/help", "/HELP please", "/help@livebot"), or None for a message or unknown command."""
    if not text.startswith("/"):
        return None
    return _BY_NAME.get(text.split(maxsplit=1)[0].split("@", 1)[0][1:].lower())


def from_word(text: str) -> str:
    """Where commands are plain words (Slack): "help" or "Reset." as its "/" form; any other text unchanged."""
    return _BY_WORD.get(text.lower().rstrip(".!"), text)


def help_commands(prefix: str) -> str:
    """The help text's list of commands, as users type them here (`prefix` "/" or "")."""
    return "; ".join(f"`{prefix}{c.name}` {c.help}" for c in COMMANDS if c.help)
