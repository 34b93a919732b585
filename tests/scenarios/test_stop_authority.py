"""Who may stop a reply: the person who asked, or (in a Telegram group) an admin; anyone else is told so and the
reply goes on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.channel import StopOutcome
from bot.runtime import STOPPED_MARK
from channels.slack.surface import STOP_ACTION
from tests.doubles.openai_server import Hang, OpenAIDouble
from tests.doubles.slack_api import SlackMessage
from tests.doubles.telegram_api import TelegramDouble
from tests.scenarios.conftest import running
from tests.scenarios.slack_scene import CHANNEL, clean_environment, running_scene

STOPPED = STOPPED_MARK.replace("_", "")
NOT_YOURS = StopOutcome.NOT_YOURS.value


async def test_a_group_member_who_did_not_ask_cannot_stop_the_reply_but_an_admin_can(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice, bob, carol = tg.add_user("Alice"), tg.add_user("Bob"), tg.add_user("Carol")
    group = tg.add_group("Team", admins=(carol,))
    llm.script(Hang("Streaming until the right person presses the button"))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test go")
        (message,) = await tg.wait_for(lambda: tg.bot_messages(group))
        press = tg.press_button(group, message.message_id, bob, "stop")
        await tg.wait_for(lambda: press.answered)
        assert press.answer is not None and press.answer.get("text") == NOT_YOURS
        assert not llm.disconnected.is_set() and tg.bot_messages(group)[0].reply_markup is not None

        press = tg.press_button(group, message.message_id, carol, "stop")  # an admin of the group
        await asyncio.wait_for(llm.disconnected.wait(), 10)
        await tg.wait_for(lambda: tg.bot_messages(group)[0].reply_markup is None)
    assert STOPPED in tg.visible_texts(group)[0]
    assert press.answer is not None and press.answer.get("text") == StopOutcome.STOPPED.value


async def test_the_asker_stops_their_own_reply_without_an_admin_lookup(
    tg: TelegramDouble, llm: OpenAIDouble, tmp_path: Path
) -> None:
    alice = tg.add_user("Alice")
    group = tg.add_group("Team")
    llm.script(Hang("Streaming until Alice presses the button"))
    async with running(tg, llm, tmp_path):
        tg.user_message(group, alice, "@livebot_test go")
        (message,) = await tg.wait_for(lambda: tg.bot_messages(group))
        tg.press_button(group, message.message_id, alice, "stop")
        await asyncio.wait_for(llm.disconnected.wait(), 10)
    assert tg.calls_to("getChatAdministrators") == []


def stop_buttons(message: SlackMessage) -> list[dict[str, Any]]:
    return [e for block in message.blocks for e in block.get("elements") or [] if e.get("action_id") == STOP_ACTION]


async def test_on_slack_only_the_asker_stops_and_others_get_a_note_only_they_see(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clean_environment(monkeypatch)
    async with running_scene(tmp_path, stream_mode="edit") as scene:
        scene.llm.script(Hang("Streaming until Alice presses the button"))
        mention = scene.mention("go", user="U0ALICE")
        await scene.post(mention)
        await scene.slack.wait_for(lambda: bool(scene.thread(mention)) and bool(stop_buttons(scene.thread(mention)[0])))
        [message] = scene.thread(mention)

        reply = await scene.press(message, STOP_ACTION, user="U0BOB")
        assert reply.status == 200
        await scene.slack.wait_for(lambda: bool(scene.slack.workspace.ephemerals))
        [note] = scene.slack.workspace.ephemerals
        assert (note.channel, note.user, note.text) == (CHANNEL, "U0BOB", NOT_YOURS)
        assert note.thread_ts == mention["ts"]
        assert not scene.llm.disconnected.is_set() and stop_buttons(scene.thread(mention)[0])

        await scene.press(scene.thread(mention)[0], STOP_ACTION, user="U0ALICE")
        await asyncio.wait_for(scene.llm.disconnected.wait(), 10)
        await scene.replied()
        assert stop_buttons(scene.thread(mention)[0]) == []
        assert len(scene.slack.workspace.ephemerals) == 1
