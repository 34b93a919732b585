"""slack-app-manifest.yml: valid YAML on agent_view, asking for exactly the events and scopes the code uses.

A newcomer creates the app from this file, so a scope too many is a permission the bot asks for and never uses,
and an event the code does not handle is one Bolt answers 404. Scopes come from the Web API methods the Slack code
calls (found in its source) and the events it subscribes to, per Slack's reference pages."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from tests.doubles.slack_events import app_home_opened, app_mention, dm_message
from tests.scenarios.slack_scene import SlackScene

ROOT = Path(__file__).resolve().parents[2]
SLACK_CODE = [ROOT / "bot" / "slack_app.py", *sorted((ROOT / "channels" / "slack").glob("*.py"))]
METHOD_SCOPES = {  # (Slack) each method's bot scope; None: no bot scope (auth.test; the app token's own call)
    "auth.test": None,
    "apps.connections.open": None,
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.startStream": "chat:write",
    "chat.appendStream": "chat:write",
    "chat.stopStream": "chat:write",
    "assistant.threads.setStatus": "assistant:write",
    "assistant.threads.setSuggestedPrompts": "assistant:write",
    "assistant.threads.setTitle": "assistant:write",
    "files.upload.v2": "files:write",  # slack_sdk's external upload flow (files.getUploadURLExternal, ...Complete...)
}
EVENT_SCOPES = {"app_mention": "app_mentions:read", "message.im": "im:history", "app_home_opened": None}
SAMPLES = {  # a delivery of each subscribable event, as the bot would receive it
    "app_mention": lambda bot_user: app_mention("hi", bot_user_id=bot_user),
    "message.im": lambda bot_user: dm_message("hi"),
    "app_home_opened": lambda bot_user: app_home_opened(),
}


def manifest() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "slack-app-manifest.yml").read_text(encoding="utf-8"))


def methods_called() -> set[str]:
    """Web API methods the Slack code calls through slack_sdk (`client.chat_postMessage(` -> chat.postMessage)."""
    found = set()
    for path in SLACK_CODE:
        for name in re.findall(r"client\.([a-z]+(?:_[a-zA-Z0-9]+)+)\(", path.read_text(encoding="utf-8")):
            family, _, rest = name.partition("_")
            found.add(f"{family}.{rest.replace('_', '.')}")
    return found


def test_the_manifest_is_on_agent_view() -> None:
    features = manifest()["features"]
    assert "assistant_view" not in features  # Slack offers new apps only the agent messaging experience
    assert features["agent_view"]["agent_description"]
    assert features["app_home"]["messages_tab_enabled"] and not features["app_home"]["messages_tab_read_only_enabled"]
    assert manifest()["settings"]["interactivity"]["is_enabled"]  # the Stop and feedback buttons


def test_the_manifest_asks_for_exactly_the_scopes_the_code_uses() -> None:
    called = methods_called()
    assert called >= {"chat.startStream", "assistant.threads.setTitle", "chat.postEphemeral"}  # the scan works
    assert called <= METHOD_SCOPES.keys(), f"add the scope of {called - METHOD_SCOPES.keys()} to METHOD_SCOPES"
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    needed = {METHOD_SCOPES[method] for method in called} | {EVENT_SCOPES[event] for event in events}
    if any("url_private" in path.read_text(encoding="utf-8") for path in SLACK_CODE):
        needed.add("files:read")  # a shared file's url_private_download serves it to the bot token with this scope
    assert set(manifest()["oauth_config"]["scopes"]["bot"]) == needed - {None}


async def test_every_event_the_manifest_subscribes_to_is_handled(scene: SlackScene) -> None:
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) == set(SAMPLES)  # the events the bot needs: mentions, DMs, the Messages tab opening
    for event in events:
        reply = await scene.post(SAMPLES[event](scene.slack.identity.bot_user_id))
        assert reply.status == 200, event  # Bolt answers 404 to an event no listener handles
    await scene.replied()
