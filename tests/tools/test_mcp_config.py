"""MCP_CONFIG: the Claude Desktop / Cursor / VS Code file format, and one clear line for every mistake in it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError
from tools.mcp_config import McpConfigError, load_mcp_config


def write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")
    return path


def test_the_common_file_format_is_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "files": {"command": "npx", "args": ["-y", "server-filesystem", "/srv"], "env": {"DEBUG": "1"}},
                "tracker": {
                    "url": "https://mcp.example.com/mcp",
                    "headers": {"Authorization": "Bearer t0ken"},
                    "tools": ["search", "create_issue"],
                    "require_approval": ["create_issue"],
                    "timeout": 90,
                },
                "legacy": {"url": "https://old.example.com/sse", "transport": "sse", "require_approval": True},
            }
        },
    )
    files, tracker, legacy = load_mcp_config(path)
    assert files.connection() == {
        "transport": "stdio",
        "command": "npx",
        "args": ["-y", "server-filesystem", "/srv"],
        "env": {"DEBUG": "1"},
    }
    assert tracker.connection() == {
        "transport": "streamable_http",
        "url": "https://mcp.example.com/mcp",
        "headers": {"Authorization": "Bearer t0ken"},
        "timeout": 90,
    }
    assert tracker.tools == {"search", "create_issue"} and tracker.timeout == 90
    assert tracker.needs_approval("create_issue") and not tracker.needs_approval("search")
    assert legacy.transport == "sse" and legacy.needs_approval("anything")
    assert not files.needs_approval("read_file")
    assert "t0ken" not in repr(tracker)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "is not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
        ({"servers": {}}, "unknown key 'servers'"),
        ({}, "mcpServers is missing"),
        ({"mcpServers": {"a": {"comand": "npx"}}}, "mcpServers.a: unknown key 'comand'"),
        ({"mcpServers": {"a": {"args": []}}}, "mcpServers.a: give either 'command' (a stdio server) or 'url'"),
        ({"mcpServers": {"a": {"command": "x", "url": "http://h/mcp"}}}, "mcpServers.a: give either"),
        ({"mcpServers": {"a": {"url": "ftp://h/mcp"}}}, "mcpServers.a.url: must start with http:// or https://"),
        ({"mcpServers": {"a": {"command": "x", "args": "--flag"}}}, "mcpServers.a.args: Input should be a valid list"),
        ({"mcpServers": {"a": {"command": "x", "timeout": 0}}}, "mcpServers.a.timeout: Input should be greater than 0"),
        ({"mcpServers": {"a": {"url": "http://h", "transport": "ws"}}}, "mcpServers.a: unknown transport 'ws'"),
        ({"mcpServers": {"a": {"command": "x", "transport": "sse"}}}, "mcpServers.a: transport 'sse' does not go"),
        (
            {"mcpServers": {"a": {"command": "x", "require_approval": "yes"}}},
            "require_approval: must be true, false or a list",
        ),
        ({"mcpServers": {"a": {"url": "http://h", "env": {"K": "v"}}}}, "'args' and 'env' are for stdio servers"),
    ],
)
def test_a_mistake_is_one_line_naming_the_file_and_the_problem(tmp_path: Path, content: object, problem: str) -> None:
    path = write(tmp_path, content)
    with pytest.raises(McpConfigError) as bad:
        load_mcp_config(path)
    message = str(bad.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert problem in message


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match=r"mcp\.json: cannot be read \(No such file or directory\)"):
        load_mcp_config(tmp_path / "mcp.json")


def test_settings_report_it_as_the_mcp_config_setting(tmp_path: Path) -> None:
    path = write(tmp_path, {"mcpServers": {"a": {"comand": "npx"}}})
    settings = Settings(_env_file=None, mcp_config=path)  # type: ignore[call-arg]
    with pytest.raises(SettingsError, match=r"^setting MCP_CONFIG is invalid: .*mcp\.json: mcpServers\.a: unknown"):
        settings.mcp_servers  # noqa: B018


def test_header_and_env_values_are_kept_out_of_the_log(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "mcpServers": {
                "a": {"url": "http://h/mcp", "headers": {"Authorization": "Bearer sekrit-1"}},
                "b": {"command": "x", "env": {"GITHUB_TOKEN": "ghp_sekrit2"}},
            }
        },
    )
    settings = Settings(_env_file=None, mcp_config=path)  # type: ignore[call-arg]
    assert {"Bearer sekrit-1", "ghp_sekrit2"} <= set(settings.secret_values)
