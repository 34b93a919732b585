"""A Socket Mode endpoint on 127.0.0.1 in front of the Slack Web API double, for slack_sdk's SocketModeClient.

    async with SlackDouble(token=BOT_TOKEN) as slack, SocketModeDouble(slack, app_token=APP_TOKEN) as socket:
        # the bot's SLACK_API_URL is socket.base_url
        await socket.wait_connected()
        envelope_id = await socket.send_event(slack.envelope(app_mention(...)))
        await socket.wait_acked(envelope_id)

The bot's Web API base URL points here. apps.connections.open (called with the app-level token, as Slack wants)
answers the URL of this server's WebSocket; every other method is passed on unchanged to the SlackDouble, so the
bot's replies land there as in HTTP mode. Over the WebSocket the server says `hello` as Slack does, then delivers
the envelopes a test sends (type `events_api`) and records the bot's acknowledgements (`{"envelope_id": ...}`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

import aiohttp
from aiohttp import web

from tests.doubles.slack_api import SlackDouble

_ids = itertools.count(1)


class SocketModeDouble:
    """See the module docstring.

    Attributes:
        opened_with: The token of every apps.connections.open call (refused ones included).
        acks: Every acknowledgement the bot sent, as parsed JSON.
    """

    def __init__(self, api: SlackDouble, *, app_token: str) -> None:
        self.api = api
        self.app_token = app_token
        self.base_url = ""
        self.opened_with: list[str] = []
        self.acks: list[dict[str, Any]] = []
        self._socket: web.WebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._acked = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SocketModeDouble:
        app = web.Application()
        app.router.add_get("/link", self._link)
        app.router.add_route("*", "/api/{method}", self._api)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/api/"
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._http is not None:
            await self._http.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def wait_connected(self, timeout: float = 5.0) -> None:
        """Return once the bot's WebSocket is open (it has been sent `hello`)."""
        await asyncio.wait_for(self._connected.wait(), timeout)

    async def send_event(self, envelope: dict[str, Any], *, retry_attempt: int = 0) -> str:
        """Deliver an Events API envelope over the socket; returns its envelope_id."""
        assert self._socket is not None, "no bot connected"
        envelope_id = f"env-{next(_ids)}"
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "accepts_response_payload": False,
                "retry_attempt": retry_attempt,
                "retry_reason": "timeout" if retry_attempt else "",
                "payload": envelope,
            }
        )
        return envelope_id

    async def send_interactive(self, payload: dict[str, Any]) -> str:
        """Deliver an interaction (a button press: `SlackDouble.button_press`) over the socket; returns its id."""
        assert self._socket is not None, "no bot connected"
        envelope_id = f"env-{next(_ids)}"
        await self._socket.send_json(
            {"envelope_id": envelope_id, "type": "interactive", "accepts_response_payload": True, "payload": payload}
        )
        return envelope_id

    async def wait_acked(self, envelope_id: str, timeout: float = 5.0) -> None:
        """Return once the bot acknowledged `envelope_id`."""
        async with self._acked:
            await asyncio.wait_for(
                self._acked.wait_for(lambda: any(a.get("envelope_id") == envelope_id for a in self.acks)), timeout
            )

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0LIVEBOT"}})
        self._connected.set()
        async for message in socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                async with self._acked:
                    self.acks.append(json.loads(message.data))
                    self._acked.notify_all()
        return socket

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        if method == "apps.connections.open":
            token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            self.opened_with.append(token)
            if token != self.app_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response({"ok": True, "url": f"ws://{request.host}/link"})
        assert self._http is not None
        headers = {name: value for name, value in request.headers.items() if name.lower() in _FORWARDED}
        async with self._http.request(
            request.method,
            self.api.base_url + method,
            params=request.query,
            data=await request.read(),
            headers=headers,
        ) as answer:
            body = await answer.read()
            kept = {name: value for name, value in answer.headers.items() if name.lower() in _RETURNED}
            return web.Response(body=body, status=answer.status, headers=kept)


_FORWARDED = frozenset({"authorization", "content-type"})
_RETURNED = frozenset({"content-type", "retry-after"})
