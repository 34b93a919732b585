"""Slack's agent messaging experience (manifest `features.agent_view`): greetings, thread titles, feedback.

Under agent_view the app's conversations live in its Messages tab, each user message there is the root of a thread
the agent answers in, and opening the tab sends `app_home_opened` with tab "messages" (it replaces the legacy
`assistant_thread_started`). This module turns those events and the feedback buttons' presses into plain values,
and builds what the bot sends back; it makes no calls itself.

The legacy `assistant_view` differs only where Slack says so: its DM messages arrive inside assistant threads
(answered there, as before), its suggested prompts name their thread, and an agent app's must not (Slack: a
`thread_ts` "will cause the call to silently fail" for agent apps). What arrives tells the two apart, so there is
no setting: `app_home_opened` means agent_view, `assistant_thread_started` means assistant_view.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_PROMPTS = (
    "What is 17.5% of 2,340?",
    "What time is it in Tokyo?",
    "What does https://example.com say?",
)
"""Three short prompts that show what the bot does: arithmetic, the clock, reading a page (SLACK_SUGGESTED_PROMPTS
overrides them)."""
GREETING = "Hi! Ask me anything: I answer while I write. For example:"
"""The title above the suggested prompts."""
MAX_PROMPTS = 4
"""Slack shows at most four suggested prompts."""
TITLE_CHARS = 60
"""A thread title is the question's first words, cut at a word boundary to about this many characters."""
FEEDBACK_ACTION = "feedback"
"""The action_id of the feedback buttons under an answer."""
RATINGS = ("positive", "negative")
"""The feedback buttons' values: what a press records."""

_MARKUP = re.compile(r"[*_`~>#]+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Greet:
    """Show the suggested prompts to `user` in `channel` (their DM with the bot); `thread_ts` for assistant_view."""

    user: str
    channel: str
    thread_ts: str | None = None


@dataclass(frozen=True, slots=True)
class FeedbackPress:
    """`user` rated the answer `message_ts` in `channel` (in thread `thread_ts`): "positive" or "negative"."""

    user: str
    channel: str
    message_ts: str
    thread_ts: str | None
    rating: str


def greeting(event: Mapping[str, Any]) -> Greet | None:
    """Who to greet for an `app_home_opened` (Messages tab) or `assistant_thread_started` event, else None."""
    if event.get("type") == "app_home_opened":
        user, channel = str(event.get("user") or ""), str(event.get("channel") or "")
        if event.get("tab") != "messages" or not user or not channel.startswith("D"):
            return None
        return Greet(user, channel)
    if event.get("type") == "assistant_thread_started":
        thread = event.get("assistant_thread") or {}
        user, channel = str(thread.get("user_id") or ""), str(thread.get("channel_id") or "")
        thread_ts = str(thread.get("thread_ts") or "")
        if not user or not channel or not thread_ts:
            return None
        return Greet(user, channel, thread_ts)
    return None


def prompts_payload(prompts: tuple[str, ...] | list[str]) -> list[dict[str, str]]:
    """setSuggestedPrompts' `prompts`: each text is both the button's title and the message it sends."""
    return [{"title": text, "message": text} for text in prompts[:MAX_PROMPTS]]


def thread_title(question: str) -> str | None:
    """A short title for a thread, from its first question (no model call): its first line's first words.

    Returns None when nothing readable is left (a question made only of markup).
    """
    line = next((line for line in question.splitlines() if line.strip()), "")
    text = _SPACE.sub(" ", _MARKUP.sub("", line)).strip()
    if not text:
        return None
    if len(text) <= TITLE_CHARS:
        return text
    cut = text[: TITLE_CHARS + 1].rsplit(" ", 1)[0] if " " in text[:TITLE_CHARS] else text[:TITLE_CHARS]
    return cut.rstrip(" ,;:.-") + "…"


def feedback_block() -> dict[str, Any]:
    """A `context_actions` block with Slack's 👍 / 👎 feedback buttons, for the last message of an answer."""
    return {
        "type": "context_actions",
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "👍"},
                    "value": "positive",
                    "accessibility_label": "Good answer",
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "👎"},
                    "value": "negative",
                    "accessibility_label": "Bad answer",
                },
            }
        ],
    }


def feedback_press(payload: Mapping[str, Any], allowed: frozenset[str] = frozenset()) -> FeedbackPress | None:
    """The feedback press in a `block_actions` payload, or None for any other interaction (or a malformed one).

    Args:
        payload: The interaction payload.
        allowed: Member ids (upper case) whose presses count; empty for everyone.
    """
    if payload.get("type") != "block_actions":
        return None
    action = next((a for a in payload.get("actions") or [] if a.get("action_id") == FEEDBACK_ACTION), None)
    if action is None or action.get("value") not in RATINGS:
        return None
    user = str((payload.get("user") or {}).get("id") or "")
    container = payload.get("container") or {}
    channel, message_ts = str(container.get("channel_id") or ""), str(container.get("message_ts") or "")
    if not user or not channel or not message_ts or (allowed and user.upper() not in allowed):
        return None
    thread = container.get("thread_ts") or (payload.get("message") or {}).get("thread_ts")
    return FeedbackPress(user, channel, message_ts, str(thread) if thread else None, str(action["value"]))
