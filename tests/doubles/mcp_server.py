"""A real MCP server, written with the official SDK's FastMCP, that the MCP tests start as a process.

`python tests/doubles/mcp_server.py stdio` serves over stdin/stdout; `... http PORT` serves Streamable HTTP on
127.0.0.1:PORT at `/mcp`. Its tools are what the tests need to see: a plain answer, a long one (the cap), a
picture (described as text), a tool error, and `crash`, which kills the process mid-call as a real server
that dies would. `--name` changes the greeting so two servers can be told apart; each start appends a line to
the file named by `MCP_DOUBLE_STARTS` (if set), so tests can count restarts.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys

from mcp.server.fastmcp import FastMCP, Image

# The smallest valid PNG (1×1, transparent).
PIXEL_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


def build(name: str, port: int = 8000) -> FastMCP:
    server = FastMCP(name, host="127.0.0.1", port=port)

    @server.tool()
    def echo(text: str) -> str:
        """Repeat the text back, prefixed with the server's name."""
        return f"{name} echoes: {text}"

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    def long_text(chars: int) -> str:
        """Return `chars` characters of text."""
        return "x" * chars

    @server.tool()
    def picture() -> Image:
        """Return a tiny PNG image."""
        return Image(data=PIXEL_PNG, format="png")

    @server.tool()
    def fail(reason: str) -> str:
        """Always fail with the given reason."""
        raise ValueError(reason)

    @server.tool()
    def crash() -> str:
        """Kill this server process at once (a server that dies mid-call)."""
        sys.stdout.flush()
        os._exit(3)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("port", nargs="?", type=int, default=8000)
    parser.add_argument("--name", default="double")
    args = parser.parse_args()
    if starts := os.environ.get("MCP_DOUBLE_STARTS"):
        with open(starts, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()}\n")
    server = build(args.name, args.port)
    server.run("stdio" if args.transport == "stdio" else "streamable-http")


if __name__ == "__main__":
    main()
