"""MCP_CONFIG: the MCP servers the bot connects to, read from the JSON file Claude Desktop, Cursor and VS Code use.

```json
{"mcpServers": {
    "files": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv/docs"]},
    "tracker": {"url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${TRACKER_TOKEN}"}}
}}
```

A server is started as a process when it has a `command` (stdio), or reached at its `url` (Streamable HTTP;
`"transport": "sse"` for older servers). Per server, livebot also reads `tools` (an allowlist of tool names),
`require_approval` (true, false or a list of tool names: those wait for a person's approval, agent/approval.py)
and `timeout` (seconds per tool call, instead of TOOL_TIMEOUT). Anything else is a mistake worth stopping for: an
unknown key, a wrong type or a bad URL makes `load_mcp_config` raise `McpConfigError` with one line naming the file,
the server and the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = ["McpConfigError", "ServerConfig", "load_mcp_config"]

Transport = Literal["stdio", "streamable_http", "sse"]
_TRANSPORTS: dict[str, Transport] = {
    "stdio": "stdio",
    "http": "streamable_http",
    "streamable-http": "streamable_http",
    "streamable_http": "streamable_http",
    "sse": "sse",
}


class McpConfigError(ValueError):
    """MCP_CONFIG cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """One MCP server, checked.

    Attributes:
        name: The key under `mcpServers`; tool names are prefixed with it where they would collide.
        transport: "stdio" (a `command`), "streamable_http" or "sse" (a `url`).
        command: The program of a stdio server, and its `args` and `env` (added to a minimal environment: the bot's
            own secrets are not passed on; `${VAR}` in a value is taken from the bot's environment).
        url: The endpoint of an HTTP server, and the `headers` sent with every request.
        tools: Only these tools are offered to the model (None: all the server has).
        require_approval: True, False or the names of the tools that need a person's approval before they run.
        timeout: Seconds one tool call may take (None: TOOL_TIMEOUT); also bounds connecting to the server.
    """

    name: str
    transport: Transport
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = field(default=None, repr=False)
    url: str | None = None
    headers: Mapping[str, str] | None = field(default=None, repr=False)
    tools: frozenset[str] | None = None
    require_approval: bool | frozenset[str] = False
    timeout: float | None = None

    def needs_approval(self, tool: str) -> bool:
        """Whether a call to `tool` (the server's own name for it) waits for a person's approval."""
        if isinstance(self.require_approval, bool):
            return self.require_approval
        return tool in self.require_approval

    def connection(self) -> dict[str, Any]:
        """The connection in the form `langchain_mcp_adapters.sessions.create_session` takes."""
        if self.transport == "stdio":
            return {
                "transport": "stdio",
                "command": self.command,
                "args": list(self.args),
                "env": dict(self.env) if self.env is not None else None,
            }
        connection: dict[str, Any] = {"transport": self.transport, "url": self.url}
        if self.headers:
            connection["headers"] = dict(self.headers)
        if self.timeout is not None:
            connection["timeout"] = self.timeout
        return connection


class _Server(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    command: str | None = Field(None, min_length=1)
    args: list[str] = []
    env: dict[str, str] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    transport: str | None = None
    type: str | None = None  # what VS Code and Claude Code call `transport`
    tools: list[str] | None = None
    require_approval: bool | list[str] = False
    timeout: float | None = Field(None, gt=0, le=3600)

    @field_validator("require_approval", mode="before")
    @classmethod
    def _approval(cls, value: object) -> object:
        if isinstance(value, bool) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return value
        raise ValueError("must be true, false or a list of tool names")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> _Server:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either 'command' (a stdio server) or 'url' (an HTTP server)")
        kind = self.transport or self.type
        if kind is not None and kind not in _TRANSPORTS:
            raise ValueError(f"unknown transport {kind!r} (use stdio, http or sse)")
        if self.command is not None and self.headers is not None:
            raise ValueError("'headers' is for HTTP servers; a stdio server takes 'env'")
        if self.url is not None and (self.args or self.env is not None):
            raise ValueError("'args' and 'env' are for stdio servers; an HTTP server takes 'headers'")
        return self

    def checked(self, name: str) -> ServerConfig:
        transport: Transport = "stdio" if self.command is not None else "streamable_http"
        if (kind := self.transport or self.type) is not None:
            transport = _TRANSPORTS[kind]
        if (transport == "stdio") != (self.command is not None):
            raise ValueError(f"transport {transport!r} does not go with {'command' if self.command else 'url'!r}")
        approval = self.require_approval
        return ServerConfig(
            name=name,
            transport=transport,
            command=self.command,
            args=tuple(self.args),
            env=self.env,
            url=self.url,
            headers=self.headers,
            tools=frozenset(self.tools) if self.tools is not None else None,
            require_approval=approval if isinstance(approval, bool) else frozenset(approval),
            timeout=self.timeout,
        )


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    mcpServers: dict[str, _Server]  # (the name every MCP client uses)


def load_mcp_config(path: Path) -> list[ServerConfig]:
    """Read and check the MCP servers file.

    Raises:
        McpConfigError: The file cannot be read, is not JSON, or does not describe servers as above; the message
            names the file, where in it the problem is and what it is, in one line.
    """
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise McpConfigError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise McpConfigError(f"{path}: is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise McpConfigError(f"{path}: is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    try:
        parsed = _File.model_validate(raw)
    except ValidationError as exc:
        raise McpConfigError(f"{path}: {_first_problem(exc)}") from None
    servers: list[ServerConfig] = []
    for name, server in parsed.mcpServers.items():
        if not name.strip():
            raise McpConfigError(f"{path}: a server in mcpServers has an empty name")
        try:
            servers.append(server.checked(name))
        except ValueError as exc:
            raise McpConfigError(f"{path}: mcpServers.{name}: {exc}") from None
    return servers


def _first_problem(exc: ValidationError) -> str:
    # A misspelt key explains a "missing" one, so it is named first.
    error = min(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    where = ".".join(str(part) for part in error["loc"] if not str(part).startswith("function-"))
    if error["type"] == "extra_forbidden":
        parent, _, key = where.rpartition(".")
        hint = "" if parent else " (the servers go under 'mcpServers')"
        return f"{parent + ': ' if parent else ''}unknown key {key!r}{hint}"
    if error["type"] == "missing":
        return f"{where} is missing" if where else "missing"
    message = error["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message
