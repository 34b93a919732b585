"""The command table is the one place commands are defined: every row has an action, and each channel's way of
typing a command reaches it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from bot.runtime import Runtime
from channels.commands import COMMANDS, STOP, command_of, from_word, help_commands


def test_every_command_is_a_turn_of_the_runtime_except_stop_which_acts_at_once() -> None:
    runtime = Runtime(cast(Any, SimpleNamespace(tools=())))  # an agent with no tools
    assert set(runtime.commands) | {STOP} == set(COMMANDS)


def test_each_channel_types_commands_its_own_way() -> None:
    assert command_of("/Reset please") is command_of("/reset@livebot") is command_of(from_word("Reset.")) is not None
    assert command_of("/nonsense") is None and command_of("reset") is None
    assert from_word("start") == "start"  # in Slack a plain "start" is a question, not a command
    assert help_commands("").count("`") == help_commands("/").count("`")
    assert "`reset`" in help_commands("") and "`/reset`" in help_commands("/")
