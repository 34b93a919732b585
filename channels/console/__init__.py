"""The console channel: a chat in the terminal (`channel`, `terminal`), plain text when piped (`surfaces`)."""

from channels.console.channel import ConsoleChannel

__all__ = ["ConsoleChannel"]
