"""docs/architecture.md, "How to add a platform", kept true: a platform that is only a parser, a surface, a profile
row and a target streams a reply through the real channel core, runtime, agent thread and model client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agent.thread import open_agent_thread
from bot.channel import ChannelBot, serve_channel
from bot.runtime import Runtime
from bot.settings import Settings
from bot.streaming import StreamingHandler
from channels import capabilities
from channels.capabilities import Profile
from channels.inbound import Answer, Identity, Ignore, Incoming, Refuse, Verdict, screen
from channels.ratelimit import Budget
from channels.surface import CapabilityMismatch
from tests.doubles.openai_server import OpenAIDouble, Text
from tools import default_tools

# -- the whole platform -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PadTarget:
    room: str
    kind: str = "room"

    chat = property(lambda self: self.room)
    conversation = property(lambda self: f"pad:{self.room}")

    def address(self) -> dict[str, Any]:
        return {"room": self.room}

    @classmethod
    def from_address(cls, address: dict[str, Any]) -> PadTarget:
        return cls(address["room"])


def read_line(room: str, line: str, me: Identity) -> Verdict[PadTarget]:
    """The parser: one line typed in a room."""
    if not line.strip():
        return Ignore("blank line")
    target = PadTarget(room)
    text = screen(target, line.strip(), me, allowed=me.allows(room))
    return text if isinstance(text, Refuse) else Answer(Incoming(target.conversation, text, user_id=room), target)


@dataclass
class PadSurface:
    """The surface: a room is a list of messages, and a message can be rewritten."""

    profile: Profile
    room: list[str]
    shown: list[str] = field(default_factory=list)  # every text shown, in order

    def measure(self, text: str) -> int:
        return len(text)

    def ceiling(self, text: str) -> int:
        return len(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        self.room.append(text)
        self.shown.append(text)
        return len(self.room) - 1

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        self.room[ref] = text
        self.shown.append(text)

    async def close(self) -> None:
        pass

    def address(self) -> dict[str, Any]:
        return {}


class PadBot(ChannelBot[PadTarget]):
    platform, budget, target_type = "pad", Budget(100, 1.0), PadTarget

    def __init__(self, runtime: Runtime, settings: Settings) -> None:
        super().__init__(runtime, settings)
        self.rooms: dict[str, list[str]] = {}
        self.surfaces: list[PadSurface] = []

    def open_surface(self, target: PadTarget, profile: Profile, *, on_live_refused: Callable[[], None]) -> PadSurface:
        self.surfaces.append(PadSurface(profile, self.rooms.setdefault(target.room, [])))
        return self.surfaces[-1]

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings, runtime: Runtime) -> AsyncIterator[PadBot]:
        yield cls(runtime, settings)

    @asynccontextmanager
    async def listen(self) -> AsyncIterator[None]:
        yield


ROW = Profile(key="pad.room", edit=True, max_chars=200, interval=0.05)

# -- the tests --------------------------------------------------------------------------------------------


@pytest.fixture
async def pad(tmp_path: Path, llm: OpenAIDouble, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[PadBot]:
    monkeypatch.setitem(capabilities._PROFILES, ("pad", "room"), ROW)  # the profile row
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        openai_api_key="sk-test-key-for-the-double",
        openai_base_url=llm.base_url,
        llm_model="m",
        bot_data_dir=tmp_path,
    )
    async with (
        open_agent_thread(settings.agent_config(), default_tools()) as agent,
        serve_channel(settings, agent, PadBot) as bot,
    ):
        yield bot


async def test_a_platform_of_parser_surface_and_profile_row_streams_a_reply(pad: PadBot, llm: OpenAIDouble) -> None:
    answer = "This answer grows in the room while the model writes it, a few characters at a time."
    llm.script(Text(answer, chunk_size=6, delay=0.05))
    pad.dispatch(read_line("lobby", "hello?", Identity()), "line 1")
    await pad.conversations.drain()
    assert pad.rooms["lobby"] == [answer]
    shown = pad.surfaces[0].shown
    assert len(shown) > 1 and all(answer.startswith(text) for text in shown)  # it grew in place: it streamed
    assert llm.requests[0]["messages"][-1]["content"] == "hello?"


async def test_the_core_gives_the_new_platform_commands_refusals_and_the_outbox(pad: PadBot, llm: OpenAIDouble) -> None:
    pad.dispatch(read_line("lobby", "/help", Identity()), "line 1")
    pad.dispatch(read_line("attic", "hello", Identity(allowed=frozenset({"lobby"}))), "line 2")
    pad.dispatch(read_line("lobby", "   ", Identity()), "line 3")
    await pad.conversations.drain()
    await pad.deliver(PadTarget("cellar").address(), "Kept for later.")
    assert "`/reset` forgets this conversation" in "".join(pad.rooms["lobby"])  # (split at the row's 200)
    assert pad.rooms["attic"] == ["Sorry, this bot is private: it only answers the people it was set up for."]
    assert pad.rooms["cellar"] == ["Kept for later."]
    assert llm.requests == []


async def test_a_row_that_claims_more_than_its_surface_has_fails_before_any_reply(
    pad: PadBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(capabilities._PROFILES, ("pad", "room"), Profile(key="pad.room", edit=True, typing=True))
    with pytest.raises(CapabilityMismatch, match=r"pad\.room claims typing, but PadSurface has no typing"):
        StreamingHandler(pad.surface(PadTarget("lobby")))
    assert pad.rooms.get("lobby", []) == []
