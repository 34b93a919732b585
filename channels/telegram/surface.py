"""The Telegram reply surface: one reply in one chat (or forum topic), through python-telegram-bot.

Every call passes the shared `RateLimiter` first (the bot's 30/s, the chat's own budget, any retry_after), and
every python-telegram-bot error leaves as one of `channels.errors`, so the StreamingHandler's rules apply. Under
overload (more replies waiting than the bot's budget serves within `PREVIEW_HORIZON`), a reply's first preview is
no longer urgent: it goes only if there is room, and the final message is what the user sees first.

Drafts carry Telegram's stop button (Bot API 10.3 `can_stop`, kept on screen after the press with
`keep_on_stop`, see `stoppable_drafts`); `DraftOwners` says which reply a pressed draft belongs to.

Status while a tool runs: in a private chat it is a draft of its own (ephemeral, costs no message; like every
draft it has an id no other draft in the chat has had, and `DraftOwners` knows the reply it belongs to until that
reply ends); in a group it is a
message ("⚙️ Using calculator…") that the answer's next message then *replaces* by editing it, so the status
costs no extra message of the group's 20 a minute unless the reply ends right after the tool.
"""

from __future__ import annotations

import datetime as dtm
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, LinkPreviewOptions, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, EndPointNotFound, Forbidden, RetryAfter, TelegramError

from channels.capabilities import LiveMode, Profile
from channels.errors import (
    ChannelError,
    FormattingRejected,
    MessageGone,
    MessageTooLong,
    NotModified,
    PermanentError,
    RateLimited,
    StreamingRefused,
    TransientError,
)
from channels.inbound import approval_data
from channels.ratelimit import Budget, RateLimiter, Scope
from channels.surface import PlatformSurface, new_draft_id
from channels.telegram.drafts import DraftOwners
from channels.telegram.render import Rendered, ceiling, measure, render
from channels.telegram.stoppable_drafts import STOPPABLE

log = logging.getLogger(__name__)

BOT_BUDGET = Budget(25, 1.0)
"""Telegram allows about 30 calls a second per bot. Calls are counted when they leave the limiter, and a busy
event loop can bunch them on the way, so we keep a sixth in hand: a bot-wide 429 holds up every chat."""
MESSAGE_BUDGETS = {
    "private": Budget(3, 3.0),  # about one a second, short bursts tolerated
    "group": Budget(20, 60.0),  # 20 a minute per group
    "supergroup": Budget(20, 60.0),
    "topic": Budget(20, 60.0),  # topics share their supergroup's budget (the limiter keys on the chat)
}
DRAFT_BUDGET = Budget(4, 1.0)
"""Drafts have their own per-chat budget; the handler sends one every 0.3 s at most."""
CAPTION_LIMIT = 1024
"""Longest photo caption Telegram takes."""
STOP_DATA = "stop"
STOP_BUTTON = InlineKeyboardMarkup([[InlineKeyboardButton("⏹ Stop", callback_data=STOP_DATA)]])
"""Shown under a message while it streams; the final edit (no markup) takes it away."""
NO_PREVIEW = LinkPreviewOptions(is_disabled=True)  # a preview popping in and out while a message grows is noise

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TelegramTarget:
    """Where a reply goes (a `channels.inbound.Target`).

    Attributes:
        chat_id: The chat.
        kind: "private", "group", "supergroup" or "topic" (a capability-registry kind).
        thread_id: The forum topic, if any.
        reply_to: The user's message the first message of the reply answers (not kept in an outbox address: a
            late final message answers nothing).
    """

    chat_id: int
    kind: str
    thread_id: int | None = None
    reply_to: int | None = None

    @property
    def chat(self) -> int:
        return self.chat_id

    @property
    def conversation(self) -> str:
        """One conversation per chat, and per topic in a forum."""
        suffix = f":{self.thread_id}" if self.kind == "topic" else ""
        return f"telegram:{self.chat_id}{suffix}"

    def address(self) -> dict[str, Any]:
        return {"chat_id": self.chat_id, "kind": self.kind, "thread_id": self.thread_id}

    @classmethod
    def from_address(cls, address: dict[str, Any]) -> TelegramTarget:
        return cls(address["chat_id"], address["kind"], thread_id=address.get("thread_id"))


class TelegramSurface(PlatformSurface[Bot, TelegramTarget]):
    """Sends, edits and drafts one reply. See the module docstring; the arguments are `PlatformSurface`'s, the
    client an initialised python-telegram-bot `Bot`, and `on_live_refused` is called when drafts are refused.

    Args:
        drafts: The bot's record of which reply each draft belongs to; this reply's drafts are in it until
            `close`.
    """

    def __init__(
        self,
        client: Bot,
        limiter: RateLimiter,
        target: TelegramTarget,
        profile: Profile,
        *,
        on_live_refused: Callable[[], None] = lambda: None,
        drafts: DraftOwners | None = None,
    ) -> None:
        self._drafts = drafts if drafts is not None else DraftOwners()
        super().__init__(client, limiter, target, profile, on_live_refused=on_live_refused)

    def _begin(self) -> None:
        chat = self._target.chat_id
        self._scopes: dict[str, tuple[Scope, ...]] = {
            "messages": (Scope((chat, "messages"), MESSAGE_BUDGETS[self._target.kind]),),
            "drafts": (Scope((chat, "drafts"), DRAFT_BUDGET),),
            "typing": (),  # chat actions count against the bot's budget only
        }
        self._reply_to = self._target.reply_to
        self._drafted: set[int] = set()  # drafts Telegram has shown
        self._recorded: set[int] = set()  # drafts in `drafts`, shown or being sent
        self._status_ref: int | None = None
        self._status_draft: int | None = None  # the draft showing the status line, while it shows

    def measure(self, text: str) -> int:
        return measure(text)

    def ceiling(self, text: str) -> int:
        return ceiling(text)

    async def send(self, text: str, *, final: bool, plain: bool = False) -> int:
        if self._status_ref is not None:  # the answer takes over the status message
            ref, self._status_ref = self._status_ref, None
            await self.edit(ref, text, final=final, plain=plain)
            return ref
        # A final message goes before intermediate edits; so does a first one, unless the line is so long that the
        # answer will be complete before it would go out (then the final alone is the better use).
        return await self._post(text, self._buttons(final), plain=plain, urgent=final or self._limiter.prompt())

    async def _post(self, text: str, markup: InlineKeyboardMarkup | None, *, plain: bool, urgent: bool) -> int:
        """sendMessage, as the reply's first message answers the user's (if it does) and in its topic."""
        reply = ReplyParameters(self._reply_to, allow_sending_without_reply=True) if self._reply_to else None
        message = await self._call_rendered(
            lambda rendered: self._client.send_message(
                self._target.chat_id,
                rendered.text,
                entities=rendered.entities,
                message_thread_id=self._target.thread_id,
                reply_parameters=reply,
                link_preview_options=NO_PREVIEW,
                reply_markup=markup,
            ),
            text,
            plain=plain,
            urgent=urgent,
        )
        self._reply_to = None
        return message.message_id

    async def edit(self, ref: int, text: str, *, final: bool, plain: bool = False) -> None:
        await self._call_rendered(
            lambda rendered: self._client.edit_message_text(
                rendered.text,
                chat_id=self._target.chat_id,
                message_id=ref,
                entities=rendered.entities,
                link_preview_options=NO_PREVIEW,
                reply_markup=self._buttons(final),
            ),
            text,
            plain=plain,
            urgent=final,
        )

    async def drop_buttons(self, ref: int) -> None:
        """Take the Stop button off message `ref` (one a reply cut short by a crash left behind)."""
        await self._call(
            lambda: self._client.edit_message_reply_markup(self._target.chat_id, ref, reply_markup=None), urgent=False
        )

    def adopt(self, ref: int) -> None:
        """Nothing to learn: a final edit sends no markup, which takes any Stop button off."""

    async def ask_approval(self, text: str, approval_id: str) -> int:
        """The request as a message with an inline keyboard: Approve and Deny (callback data well under 64 bytes)."""
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("✅ Approve", callback_data=approval_data(approval_id, True)),
                    InlineKeyboardButton("❌ Deny", callback_data=approval_data(approval_id, False)),
                ]
            ]
        )
        await self.close()  # a status message left above would otherwise be edited into the answer after it
        return await self._post(text, keyboard, plain=False, urgent=True)

    async def settle_approval(self, ref: int, text: str) -> None:
        """A final edit: the decision replaces the request, and an edit without markup takes the buttons away."""
        await self.edit(ref, text, final=True)

    def _buttons(self, final: bool) -> InlineKeyboardMarkup | None:
        """The Stop button while a message streams; an edit without markup removes it, so the final has none."""
        return STOP_BUTTON if self.profile.buttons and not final else None

    async def draft(self, draft_id: int, text: str, *, plain: bool = False) -> None:
        # The first preview is the user's first sight of the answer: it goes first, unless the line is long.
        first = draft_id not in self._drafted and self._limiter.prompt()
        if draft_id not in self._recorded:  # before the call: an update about the draft may come as soon as it shows
            self._recorded.add(draft_id)
            self._drafts.record(self._target.chat_id, draft_id, self._target)
        try:
            await self._call_rendered(
                lambda rendered: self._client.send_message_draft(
                    self._target.chat_id,
                    draft_id,
                    rendered.text,
                    message_thread_id=self._target.thread_id,
                    entities=rendered.entities,
                    api_kwargs=STOPPABLE,
                ),
                text,
                plain=plain,
                lane="drafts",
                urgent=first,
            )
        except StreamingRefused:
            self._on_live_refused()
            raise
        self._drafted.add(draft_id)

    async def typing(self) -> None:
        await self._call(
            lambda: self._client.send_chat_action(
                self._target.chat_id, ChatAction.TYPING, message_thread_id=self._target.thread_id
            ),
            lane="typing",
            urgent=False,
        )

    async def status(self, text: str | None) -> None:
        if text is None:
            # A status draft fades as the answer's next draft or message appears; the next status is a new draft.
            # A status message stays until the answer replaces it (send) or the reply ends (close).
            self._status_draft = None
            return
        line = f"⚙️ {text}"
        if self.profile.mode is LiveMode.DRAFT:
            if self._status_draft is None:
                self._status_draft = new_draft_id()
            await self.draft(self._status_draft, line)
        elif self._status_ref is None:
            message = await self._call(
                lambda: self._client.send_message(self._target.chat_id, line, message_thread_id=self._target.thread_id),
                urgent=False,
            )
            self._status_ref = message.message_id
        else:
            await self.edit(self._status_ref, line, final=False, plain=True)

    async def image(self, data: bytes, *, caption: str) -> None:
        """sendPhoto, with the caption as plain text; the status message goes first, so the answer after the
        picture is a new message below it rather than an edit of the status above it."""
        await self.close()
        reply = ReplyParameters(self._reply_to, allow_sending_without_reply=True) if self._reply_to else None
        await self._call(
            lambda: self._client.send_photo(
                self._target.chat_id,
                data,
                caption=caption[:CAPTION_LIMIT],
                message_thread_id=self._target.thread_id,
                reply_parameters=reply,
            ),
            urgent=True,
        )
        self._reply_to = None

    async def close(self) -> None:
        self._drafts.release(self._target.chat_id, self._recorded)
        if self._status_ref is not None:  # the reply ended right after a tool: remove the stale status
            ref, self._status_ref = self._status_ref, None
            await self._call(lambda: self._client.delete_message(self._target.chat_id, ref), urgent=True)

    async def _call_rendered(
        self,
        request: Callable[[Rendered], Awaitable[T]],
        text: str,
        *,
        plain: bool,
        urgent: bool,
        lane: str = "messages",
    ) -> T:
        """`_call` for a text: the Markdown is rendered once the call has its slot, so a refused update costs no CPU."""
        return await self._call(lambda: request(render(text, plain=plain)), urgent=urgent, lane=lane)

    async def _call(self, request: Callable[[], Awaitable[T]], *, urgent: bool, lane: str = "messages") -> T:
        """Make the request inside the limiter's slot (which bookkeeps a 429), translating the library's errors."""
        async with self._limiter.slot(self._scopes[lane], gate=self._target.chat_id, urgent=urgent):
            try:
                return await request()
            except TelegramError as exc:
                raise translate(exc, drafts=lane == "drafts") from exc


def translate(exc: TelegramError, *, drafts: bool = False) -> ChannelError:
    """python-telegram-bot's exception as a channel error.

    python-telegram-bot rewrites descriptions ("Bad Request: message is not modified" arrives as "Message is not
    modified"), so descriptions are matched case-insensitively on their distinctive words.
    """
    if isinstance(exc, RetryAfter):
        seconds = exc.retry_after  # a timedelta with PTB_TIMEDELTA=1 (bot.telegram_app sets it), else seconds
        wait = seconds.total_seconds() if isinstance(seconds, dtm.timedelta) else float(seconds)
        return RateLimited(wait, str(exc))
    message = exc.message.lower()
    if isinstance(exc, BadRequest):
        if "not modified" in message:
            return NotModified(message)
        if drafts:
            return StreamingRefused(message)
        if "message to edit not found" in message or "can't be edited" in message or "message_id_invalid" in message:
            return MessageGone(message)
        if "too long" in message:
            return MessageTooLong(message)
        if "entit" in message or "text is empty" in message or "parse" in message:
            return FormattingRejected(message)
        return PermanentError(message)  # chat not found, topic closed, ...: asking again gets the same answer
    if isinstance(exc, EndPointNotFound):  # an older Bot API server without sendMessageDraft
        return StreamingRefused(message) if drafts else PermanentError(message)
    if isinstance(exc, Forbidden):
        return PermanentError(message)
    return TransientError(message)  # NetworkError, TimedOut, and a server error the library did not classify
