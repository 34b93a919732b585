"""A tool's picture lands between the text before the tool and the answer after it, on every live mode; where a
chat cannot show it, or the platform will not take it, the reply says so in words."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bot.streaming import StreamingHandler
from channels.capabilities import LiveMode, Profile
from channels.errors import PermanentError, RateLimited
from tests.fakes import FakeClock, RecordingSurface, settle

PNG = b"\x89PNG fake picture"
EDIT = Profile(key="test.edit", edit=True, interval=1.0, images_out=True, mode=LiveMode.EDIT)
OFF = Profile(key="test.off", edit=False, images_out=True, mode=LiveMode.OFF)
NATIVE = Profile(key="test.native", edit=True, native_stream=True, images_out=True, mode=LiveMode.NATIVE)


async def tool_with_picture(profile: Profile, **failures: list) -> RecordingSurface:  # type: ignore[type-arg]
    clock = FakeClock()
    surface = RecordingSurface(profile, clock, failures=dict(failures))
    handler = StreamingHandler(surface, clock=clock)
    await handler.start()
    handler.emit("Let me draw it.")
    await settle()
    await handler.take()
    pictured = asyncio.create_task(handler.picture(PNG, "Squares"))
    await clock.advance(10)
    await pictured
    handler.emit("Here it is.")
    await clock.advance(5)
    await handler.stop()
    return surface


async def test_the_picture_comes_between_the_text_before_and_after_the_tool() -> None:
    for profile in (EDIT, NATIVE):
        surface = await tool_with_picture(profile)
        assert surface.visible == ["Let me draw it.", "[picture: Squares]", "Here it is."], profile.key


async def test_final_only_mode_delivers_the_text_held_so_far_before_the_picture() -> None:
    surface = await tool_with_picture(OFF)
    assert surface.visible == ["Let me draw it.", "[picture: Squares]", "Here it is."]


async def test_a_rate_limited_picture_waits_and_lands() -> None:
    surface = await tool_with_picture(EDIT, image=[RateLimited(3.0, "429")])
    assert [c.t for c in surface.ops("image")] == [0.0, 3.0]
    assert surface.visible[1] == "[picture: Squares]"


async def test_a_chat_without_pictures_or_a_refused_picture_gets_a_note() -> None:
    blind = await tool_with_picture(replace(EDIT, images_out=False))
    assert blind.visible == [
        "Let me draw it.",
        "_🖼 Squares: a picture was made, but this chat cannot show it._\n\nHere it is.",
    ]
    small = await tool_with_picture(replace(EDIT, max_image_bytes=4))
    assert small.ops("image") == [] and "cannot show it" in small.visible[1]
    refused = await tool_with_picture(EDIT, image=[PermanentError("bot was blocked")])
    assert refused.visible[1].startswith("_🖼 Squares: the picture could not be sent._")
