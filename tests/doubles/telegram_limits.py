"""Flood control for the Telegram Bot API double: per-chat and per-bot budgets, 429s and violations.

Telegram answers a bot that sends too fast with 429 and `retry_after`, and punishes a bot that calls the same chat
again before that time with longer waits. The double enforces budgets shaped like the real ones (a private chat
tolerates a short burst then about one message a second; a group twenty a minute; the bot about thirty calls a
second overall) and, more importantly for tests, records every call made inside a `retry_after` it was given, so a
test can assert "the bot never ignored a flood wait" precisely instead of hoping.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CHAT_COUNTED = frozenset({"sendmessage", "sendphoto", "editmessagetext", "editmessagereplymarkup"})
"""Methods (lower-case) that spend the chat's message budget."""
DRAFT_COUNTED = frozenset({"sendmessagedraft"})
"""Methods that spend the chat's separate draft budget."""
GLOBAL_COUNTED = CHAT_COUNTED | DRAFT_COUNTED | frozenset({"sendchataction", "deletemessage"})
"""Methods that spend the bot's global budget and are refused while their chat (or the bot) is in a flood wait."""

GLOBAL_SCOPE = "global"


def chat_scope(chat_id: int) -> str:
    """The flood-wait scope of one chat; every counted method aimed at the chat shares it."""
    return f"chat:{chat_id}"


@dataclass(frozen=True)
class RateLimits:
    """Budgets, configurable per double so a test can make them tight (and fast) or turn them off.

    Attributes:
        private_burst: Token bucket capacity of a private chat (messages that may go out back to back).
        private_per_second: Refill rate of that bucket.
        group_messages: Messages allowed per `group_window` seconds in a group or supergroup (sliding window).
        group_window: Length of that window in seconds.
        global_calls: Counted calls allowed per `global_window` seconds across all chats (sliding window).
        global_window: Length of that window in seconds.
        draft_burst: Token bucket capacity for sendMessageDraft, per chat.
        draft_per_second: Refill rate of the draft bucket.
        enabled: False turns budgets off; injected 429s are still enforced and recorded.
    """

    private_burst: int = 3
    private_per_second: float = 1.0
    group_messages: int = 20
    group_window: float = 60.0
    global_calls: int = 30
    global_window: float = 1.0
    draft_burst: int = 5
    draft_per_second: float = 5.0
    enabled: bool = True


class _TokenBucket:
    def __init__(self, capacity: int, rate: float, now: float) -> None:
        self.capacity, self.rate = capacity, rate
        self.tokens, self.updated = float(capacity), now

    def wait(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self, now: float) -> None:
        self.tokens -= 1


class _SlidingWindow:
    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.times: deque[float] = deque()

    def wait(self, now: float) -> float:
        while self.times and self.times[0] <= now - self.window:
            self.times.popleft()
        return 0.0 if len(self.times) < self.limit else self.times[0] + self.window - now

    def take(self, now: float) -> None:
        self.times.append(now)


@dataclass(frozen=True)
class Refusal:
    """Why a call gets a 429.

    Attributes:
        retry_after: Whole seconds to tell the client (at least 1).
        scope: `"global"` or `"chat:<id>"`.
        violation: True when the call came before a `retry_after` already given for `scope` had passed.
        allowed_at: Clock time from which `scope` accepts calls again.
    """

    retry_after: int
    scope: str
    violation: bool
    allowed_at: float


@dataclass
class RateLimiter:
    """Applies `RateLimits` to counted calls and remembers the flood waits it (or a test) handed out."""

    limits: RateLimits
    clock: Callable[[], float]
    blocked_until: dict[str, float] = field(default_factory=dict)
    _chat: dict[int, _TokenBucket | _SlidingWindow] = field(default_factory=dict)
    _draft: dict[int, _TokenBucket] = field(default_factory=dict)
    _global: _SlidingWindow | None = None

    def check(self, method: str, chat_id: int | None, private: bool) -> Refusal | None:
        """Spend budget for one call of `method` (lower-case) to `chat_id`, or say why not.

        A call inside an earlier flood wait of its chat or of the bot is refused with the time still left and
        marked as a violation. Otherwise, if any budget is empty, the call is refused with the whole seconds until
        it would be allowed, and that wait is remembered for the budget's scope. Nothing is spent on a refusal.
        """
        if method not in GLOBAL_COUNTED:
            return None
        now = self.clock()
        scopes = [GLOBAL_SCOPE] + ([chat_scope(chat_id)] if chat_id is not None else [])
        for scope in scopes:
            until = self.blocked_until.get(scope, 0.0)
            if now < until:
                return Refusal(max(1, math.ceil(until - now)), scope, True, until)
        if not self.limits.enabled:
            return None
        budgets: list[tuple[str, _TokenBucket | _SlidingWindow]] = [(GLOBAL_SCOPE, self._global_budget())]
        if chat_id is not None and method in CHAT_COUNTED:
            budgets.append((chat_scope(chat_id), self._chat_budget(chat_id, private, now)))
        if chat_id is not None and method in DRAFT_COUNTED:
            budgets.append((chat_scope(chat_id), self._draft_budget(chat_id, now)))
        waits = [(budget.wait(now), scope) for scope, budget in budgets]
        wait, scope = max(waits)
        if wait > 0:
            retry_after = max(1, math.ceil(wait - 1e-9))
            self.blocked_until[scope] = now + retry_after
            return Refusal(retry_after, scope, False, now + retry_after)
        for _, budget in budgets:
            budget.take(now)
        return None

    def block(self, scope: str, retry_after: int) -> None:
        """Remember a flood wait handed out by fault injection, so calls inside it count as violations too."""
        self.blocked_until[scope] = max(self.blocked_until.get(scope, 0.0), self.clock() + retry_after)

    def _global_budget(self) -> _SlidingWindow:
        if self._global is None:
            self._global = _SlidingWindow(self.limits.global_calls, self.limits.global_window)
        return self._global

    def _chat_budget(self, chat_id: int, private: bool, now: float) -> _TokenBucket | _SlidingWindow:
        if chat_id not in self._chat:
            limits = self.limits
            self._chat[chat_id] = (
                _TokenBucket(limits.private_burst, limits.private_per_second, now)
                if private
                else _SlidingWindow(limits.group_messages, limits.group_window)
            )
        return self._chat[chat_id]

    def _draft_budget(self, chat_id: int, now: float) -> _TokenBucket:
        if chat_id not in self._draft:
            self._draft[chat_id] = _TokenBucket(self.limits.draft_burst, self.limits.draft_per_second, now)
        return self._draft[chat_id]
