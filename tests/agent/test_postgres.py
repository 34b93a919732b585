"""Conversation memory in Postgres (DATABASE_URL), against a real server, and the start-up errors of the store.

The server tests need LIVEBOT_TEST_DATABASE_URL (`.ci/run` installs PostgreSQL, starts it and sets it) and skip
only when it is unset. Every test uses thread ids of its own, so runs against the same database never meet.
The errors for a database that cannot be reached need no server and always run.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from agent import AgentConfig, MemoryUnavailable, open_agent
from agent.memory import open_checkpointer
from tests.agent.conftest import collect, default_tools, text_of
from tests.agent.test_memory import conversation
from tests.doubles.openai_server import OpenAIDouble, Text

MakeConfig = Callable[..., AgentConfig]
PASSWORD = "S3cret-pw%40x"  # as written in a URL; the server sees "S3cret-pw@x"


@pytest.fixture
def database_url() -> str:
    url = os.environ.get("LIVEBOT_TEST_DATABASE_URL")
    if not url:
        pytest.skip("LIVEBOT_TEST_DATABASE_URL is not set (.ci/run sets up PostgreSQL and sets it)")
    return url


@pytest.fixture
def thread() -> Callable[[str], str]:
    run = uuid.uuid4().hex[:12]
    return lambda name: f"test:{run}:{name}"


def with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit(parts._replace(netloc=netloc))


def free_port() -> int:
    """A loopback port nobody listens on (it was free a moment ago; nothing here takes it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def assert_clean(message: str) -> None:
    assert "\n" not in message
    for secret in ("S3cret", "%40x"):
        assert secret not in message


# -- against the real server --------------------------------------------------------------------------------------


async def test_memory_survives_a_restart(
    llm: OpenAIDouble, make_config: MakeConfig, database_url: str, thread: Callable[[str], str]
) -> None:
    config = make_config(llm, database_url=database_url)
    llm.script(Text("Noted: blue."), Text("Blue."))
    async with open_agent(config, default_tools()) as agent:
        await collect(agent.run("My favourite colour is blue.", thread_id=thread("me")))
    async with open_agent(config, default_tools()) as agent:
        events = await collect(agent.run("Which colour?", thread_id=thread("me")))

    assert text_of(events) == "Blue."
    assert conversation(llm.requests[1]) == [
        ("user", "My favourite colour is blue."),
        ("assistant", "Noted: blue."),
        ("user", "Which colour?"),
    ]
    assert not config.data_dir.exists(), "with a database, nothing is kept in BOT_DATA_DIR"


async def test_threads_are_separate_and_reset_forgets_one(
    llm: OpenAIDouble, make_config: MakeConfig, database_url: str, thread: Callable[[str], str]
) -> None:
    config = make_config(llm, database_url=database_url)
    llm.script(Text("Hi A."), Text("Hi B."), Text("Fresh start."), Text("You are B."))
    async with open_agent(config, default_tools()) as agent:
        await collect(agent.run("I am A.", thread_id=thread("a")))
        await collect(agent.run("I am B.", thread_id=thread("b")))
    async with open_agent(config, default_tools()) as agent:
        await agent.reset(thread("a"))
        await collect(agent.run("Who am I?", thread_id=thread("a")))
        await collect(agent.run("Who am I?", thread_id=thread("b")))

    assert conversation(llm.requests[1]) == [("user", "I am B.")]
    assert conversation(llm.requests[2]) == [("user", "Who am I?")]
    assert conversation(llm.requests[3]) == [("user", "I am B."), ("assistant", "Hi B."), ("user", "Who am I?")]


async def test_a_wrong_password_stops_start_up_without_showing_it(
    llm: OpenAIDouble, make_config: MakeConfig, database_url: str
) -> None:
    parts = urlsplit(database_url)
    config = make_config(llm, database_url=with_password(database_url, PASSWORD))

    with pytest.raises(MemoryUnavailable) as caught:
        async with open_agent(config, default_tools()):
            pass

    message = str(caught.value)
    assert message.startswith(
        f"cannot connect to the Postgres database at {parts.hostname}:{parts.port or 5432}{parts.path}: "
    )
    assert "password authentication failed" in message
    assert_clean(message)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


# -- no server needed ---------------------------------------------------------------------------------------------


async def test_an_unreachable_server_stops_start_up_with_one_clean_line(tmp_path: Path) -> None:
    port = free_port()
    with pytest.raises(MemoryUnavailable) as caught:
        async with open_checkpointer(tmp_path, f"postgresql://livebot:{PASSWORD}@127.0.0.1:{port}/livebot"):
            pass

    message = str(caught.value)
    assert message.startswith(f"cannot connect to the Postgres database at 127.0.0.1:{port}/livebot: ")
    assert "refused" in message.lower()
    assert_clean(message)
    assert isinstance(caught.value, ConnectionError)


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://livebot:{PASSWORD}@127.0.0.1/livebot",  # not a libpq URL: libpq would quote it whole
        f"livebot:{PASSWORD}@127.0.0.1/livebot",
        f"postgresql://livebot:{PASSWORD}@127.0.0.1:notaport/livebot",
        f"postgresql://livebot:{PASSWORD}@127.0.0.1:1/livebot?nonsense=1",
    ],
)
async def test_a_malformed_url_stops_start_up_without_the_password(url: str, tmp_path: Path) -> None:
    with pytest.raises(MemoryUnavailable) as caught:
        async with open_checkpointer(tmp_path, url):
            pass

    assert_clean(str(caught.value))


async def test_an_unusable_data_directory_stops_start_up(tmp_path: Path) -> None:
    in_the_way = tmp_path / "data"
    in_the_way.write_text("a file where the data directory should be")

    with pytest.raises(MemoryUnavailable, match=r"cannot open the conversation memory at .*memory\.sqlite"):
        async with open_checkpointer(in_the_way):
            pass


def test_the_database_url_is_not_in_the_config_repr() -> None:
    config = AgentConfig(api_key="sk-hidden", base_url=None, database_url=f"postgresql://u:{PASSWORD}@h/db")
    assert "S3cret" not in repr(config)
    assert "sk-hidden" not in repr(config)
