"""The console's reply surfaces: one that redraws the reply in place on a terminal, one that prints it once.

Both print the question(s) a reply answers first (`preface`), so each answer sits under what it answers even when
follow-ups were typed while the previous answer was still being written. A picture (a chart) is saved as a file
and the reply says where.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol, TextIO

from channels.capabilities import Profile
from channels.console.files import save_picture
from channels.console.text import safe_text
from channels.errors import MessageGone

ASK_APPROVAL = "Approve? Type y (yes) or n (no)."
"""Under a request to approve a tool call: a line `y`/`yes` or `n`/`no` decides; any other line denies it."""
YOU = "you › "
BOT = "bot › "
INDENT = " " * len(BOT)
PICTURES = Path("data") / "pictures"
"""Where a picture the bot sends (a chart) is saved, unless the channel says otherwise (BOT_DATA_DIR/pictures)."""


class Screen(Protocol):
    """Where a terminal reply is drawn (the terminal UI, or an in-memory screen in a benchmark)."""

    def show(self, markdown: str | None) -> None:
        """Show `markdown` as the reply being written (None: no reply in progress)."""
        ...

    def status(self, text: str | None) -> None:
        """Show `text` as the status line under the reply (None: no status line)."""
        ...

    async def commit(self, markdown: str) -> None:
        """Write a finished message above the live area, where it stays; the live reply is cleared."""
        ...

    async def say(self, lines: list[str]) -> None:
        """Write the questions a reply answers above the live area."""
        ...

    async def done(self) -> None:
        """The reply is over (a place for a note under it)."""
        ...


class TerminalSurface:
    """A reply on a terminal: the newest message is redrawn as it grows, finished ones scroll up."""

    def __init__(
        self, screen: Screen, profile: Profile, preface: list[str] | None = None, pictures: Path = PICTURES
    ) -> None:
        self.profile = profile
        self._pictures = pictures
        self._screen = screen
        self._preface = preface or []
        self._ref = 0
        self._text: str | None = None  # the newest message, while it can still change

    def measure(self, text: str) -> int:
        return len(text)

    def ceiling(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        await self._finish()
        self._ref += 1
        self._text = text
        self._screen.show(text)
        return self._ref

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        if ref != self._ref or self._text is None:
            raise MessageGone("only the newest message can be redrawn")
        self._text = text
        self._screen.show(text)

    async def status(self, text: str | None) -> None:
        self._screen.status(text)

    async def image(self, data: bytes, *, caption: str) -> None:
        path = await asyncio.to_thread(save_picture, self._pictures, data)
        await self._finish()
        await self._screen.commit(f"🖼 {caption}: saved to {path}")

    async def ask_approval(self, text: str, approval_id: str) -> str:
        await self._finish()
        await self._screen.commit(f"{text}\n\n{ASK_APPROVAL}")
        return approval_id

    async def settle_approval(self, ref: str, text: str) -> None:
        await self._screen.commit(text)

    async def close(self) -> None:
        self._screen.status(None)
        await self._finish()
        await self._screen.done()

    def address(self) -> None:
        return None

    async def _finish(self) -> None:
        """Write what this reply shows so far above the live area: its questions first, then its last message."""
        if self._preface:
            preface, self._preface = self._preface, []
            await self._screen.say(preface)
        if self._text is not None:
            text, self._text = self._text, None
            await self._screen.commit(text)


class PlainSurface:
    """A reply printed once, whole, as plain text: piped output, `--plain`, a terminal that cannot redraw."""

    def __init__(
        self, out: TextIO, profile: Profile, preface: list[str] | None = None, pictures: Path = PICTURES
    ) -> None:
        self.profile = profile
        self._pictures = pictures
        self._out = out
        self._preface = preface or []
        self._sent = 0

    def measure(self, text: str) -> int:
        return len(text)

    def ceiling(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self._write_preface()
        self._write(BOT + safe_text(text) + "\n")
        self._sent += 1
        return self._sent

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        raise RuntimeError("a plain console cannot edit; its profile says so")

    async def image(self, data: bytes, *, caption: str) -> None:
        path = await asyncio.to_thread(save_picture, self._pictures, data)
        await self.send(f"🖼 {caption}: saved to {path}", final=True)

    async def ask_approval(self, text: str, approval_id: str) -> str:
        await self.send(f"{text}\n\n{ASK_APPROVAL}", final=True)
        return approval_id

    async def settle_approval(self, ref: str, text: str) -> None:
        await self.send(text, final=True)

    async def close(self) -> None:
        self._write_preface()
        if self._sent:
            self._write("\n")  # a blank line between one answer and the next question

    def address(self) -> None:
        return None

    def _write_preface(self) -> None:
        for line in self._preface:
            self._write(YOU + safe_text(line) + "\n")
        self._preface = []

    def _write(self, data: str) -> None:
        self._out.write(data)
        self._out.flush()
