"""Tool calls waiting for a person's approval, kept durably so that the buttons still work after a restart.

When a run pauses before a gated tool (agent/approval.py), the runtime records an `Approval` here and the surface
shows the calls with Approve / Deny buttons (the console asks y/n). The run itself is in the agent's checkpoint;
this store keeps what the bot needs to go on: where the request is (the target's address and the message), who
asked (only they, or a chat admin, decide: `ChannelBot.may_act`, the same rule as for Stop), and the deadline.

The rules users see (README, "Approvals"):
- A press decides once: the request's message then says what was decided and by whom, without buttons, and the
  run goes on in a new message (approved: the tool runs; denied: the model is told the user declined).
- No decision within APPROVAL_TIMEOUT: denied. The deadline is a wall-clock time on disk, so a request whose
  deadline passed while the bot was down is denied at the next start.
- A new message in the conversation while a request waits denies it ("you wrote something else instead"): the
  model answers without the tool first, then the new message is answered. The conversation is never stuck.
- /stop (and /reset) while a request waits cancels it: the request says so and the model is not called; the
  call is answered as cancelled when the conversation goes on.

Which task decides is settled in memory (`take`: whoever takes an approval decides it, once); the decision is
then written here, before the run goes on, and only the first decision written counts (`record` returns None to
any later one, another replica's included), so an approval is never resumed twice.

Approvals live in the bot's state store (`bot.store`: SQLite in BOT_DATA_DIR, or Postgres with DATABASE_URL), in the
table `livebot_approvals`. Those an earlier version kept in `BOT_DATA_DIR/approvals.sqlite` are imported at the
first start (`bot.store.import_file`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from agent.approval import DENIED
from bot.store import Schema, Store, import_file

log = logging.getLogger(__name__)

LEGACY_FILE = "approvals.sqlite"
SCHEMA = Schema(
    "approvals",
    [
        "CREATE TABLE livebot_approvals (id TEXT PRIMARY KEY, channel TEXT NOT NULL, conversation TEXT NOT NULL,"
        " asker TEXT NOT NULL, text TEXT NOT NULL, deadline DOUBLE PRECISION NOT NULL, address TEXT NOT NULL,"
        " message TEXT NOT NULL, created DOUBLE PRECISION NOT NULL, decided TEXT, note TEXT)",
        "CREATE INDEX livebot_approvals_waiting ON livebot_approvals (channel) WHERE decided IS NULL",
    ],
)
_COLUMNS = "id, channel, conversation, asker, text, deadline, address, message, created"
MAX_VALUE_CHARS = 300
"""Characters of one argument value shown in a request; the model's text may be long, and it is hostile."""
MAX_ARGS_CHARS = 1500
"""Characters of one call's arguments shown in a request."""


@dataclass(frozen=True, slots=True)
class Approval:
    """One request waiting for a decision.

    Attributes:
        id: A random token: the buttons carry it (`channels.inbound.approval_data`).
        channel: The platform ("telegram", "slack", "console"): each bot loads its own.
        conversation: The conversation (the agent's thread) whose run waits.
        asker: Who asked for the run: they may decide (or a chat admin).
        text: The request as shown (the calls), kept to settle the message after a restart.
        deadline: Wall-clock time (`time.time()`) after which it is denied.
        address: The target's address (`Target.address()`), to reach the chat after a restart; None on the console.
        message: The request's message as the surface returned it (JSON-able); None until it is shown.
    """

    id: str
    channel: str
    conversation: str
    asker: str
    text: str
    deadline: float
    address: dict[str, Any] | None = None
    message: Any = None


@dataclass(frozen=True, slots=True)
class Decision:
    """What becomes of an approval.

    Attributes:
        approve: Run the calls (True), or answer them as declined.
        note: The line under the request once decided ("✅ Approved by Alice").
        reason: Why the calls were not run, for the model.
        resume: Go on with the run now; False cancels (/stop, /reset): the model is not called.
    """

    approve: bool
    note: str
    reason: str = DENIED
    resume: bool = True


def approved(by: str) -> Decision:
    """A press of Approve by `by` (a display name: shown as plain words)."""
    return Decision(True, f"✅ Approved by {_name(by)}.")


def denied(by: str) -> Decision:
    """A press of Deny by `by`."""
    return Decision(False, f"❌ Denied by {_name(by)}.", reason=f"{DENIED} (they pressed Deny)")


def _name(name: str) -> str:
    """A user's display name as plain words in Markdown: people choose their names, so no markup gets through."""
    return "".join(char if char.isalnum() or char in " .-'" else "_" for char in name).strip()[:64] or "someone"


def expired(timeout: float) -> Decision:
    wait = f"{timeout / 60:g} minutes" if timeout >= 60 else f"{timeout:g} s"
    return Decision(False, f"⌛ No answer within {wait}: denied.", reason=f"no one approved it within {wait}")


SUPERSEDED = Decision(
    False, "❌ Denied: a new message came instead.", reason=f"{DENIED}: they wrote a new message instead"
)
CANCELLED = Decision(False, "⏹ Cancelled.", resume=False)
CANNOT_ASK = "this chat cannot show the approval buttons, so no one could approve it"


def describe_calls(calls: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """The request's text in Markdown: each call's tool and its arguments as JSON in a code block.

    The arguments are the model's text, so they are treated as hostile: each value is cut at MAX_VALUE_CHARS and
    each call at MAX_ARGS_CHARS, and backticks, control, format (bidi) and separator characters are shown as JSON
    escapes, so nothing can close the code block, reorder the text or fake lines.
    """
    lines = ["🔐 **Approval needed** before I use a tool:" if len(calls) == 1 else "🔐 **Approval needed** for:"]
    for label, args in calls:
        shown = json.dumps({key: _cut(value) for key, value in args.items()}, ensure_ascii=False, indent=1)
        shown = "".join(_visible(char) for char in shown)
        if len(shown) > MAX_ARGS_CHARS:
            shown = shown[: MAX_ARGS_CHARS - 1] + "…"
        name = "".join(char if char.isalnum() or char in " :_-." else "_" for char in label)[:100]
        lines.append(f"**{name}**\n```json\n{shown}\n```")
    return "\n\n".join(lines)


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_VALUE_CHARS else value[: MAX_VALUE_CHARS - 1] + "…"
    if isinstance(value, Mapping):
        return {str(key)[:MAX_VALUE_CHARS]: _cut(item) for key, item in list(value.items())[:50]}
    if isinstance(value, list):
        return [_cut(item) for item in value[:50]]
    return value


def _visible(char: str) -> str:
    if char == "`" or (char not in "\n" and unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co")):
        return f"\\u{ord(char):04x}"
    return char


class Approvals:
    """The approvals of one channel: in the store, and indexed in memory. Open with `open_approvals`.

    Args:
        store: The bot's state store, its `approvals` schema set up.
        channel: The platform name whose approvals these are.
        timeout: APPROVAL_TIMEOUT, seconds.
        clock: Wall-clock time (tests may pass their own).
    """

    def __init__(self, store: Store, channel: str, timeout: float, *, clock: Callable[[], float] = time.time) -> None:
        self.timeout = timeout
        self._store = store
        self._channel = channel
        self._clock = clock
        self._waiting: dict[str, Approval] = {}
        self._messages: dict[str, Any] = {}  # where requests decided before `shown` returned are shown
        self._changed = asyncio.Event()

    async def load(self) -> None:
        """Read the approvals still waiting (from before a restart)."""
        async with self._store.transaction() as tx:
            rows = await tx.fetchall(
                "SELECT id, conversation, asker, text, deadline, address, message FROM livebot_approvals"
                " WHERE channel = ? AND decided IS NULL",
                (self._channel,),
            )
        for row in rows:
            approval = Approval(
                row[0], self._channel, row[1], row[2], row[3], row[4], json.loads(row[5]), json.loads(row[6])
            )
            self._waiting[approval.id] = approval
        if self._waiting:
            log.info("%s: %d approval(s) still waiting from before", self._channel, len(self._waiting))

    def get(self, approval_id: str) -> Approval | None:
        """The waiting approval `approval_id`, or None (decided, expired, or never this bot's)."""
        return self._waiting.get(approval_id)

    def waiting_in(self, conversation: str) -> Approval | None:
        """The approval waiting in `conversation`, if any (a conversation has at most one: its run is paused)."""
        return next((a for a in self._waiting.values() if a.conversation == conversation), None)

    async def open(self, conversation: str, asker: str, text: str, address: dict[str, Any] | None) -> Approval:
        """Record a new request; it waits until `take`n, or until APPROVAL_TIMEOUT from now."""
        approval = Approval(
            secrets.token_urlsafe(12), self._channel, conversation, asker, text, self._clock() + self.timeout, address
        )
        async with self._store.transaction() as tx:
            await tx.execute(
                f"INSERT INTO livebot_approvals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, 'null', ?)",
                (approval.id, self._channel, conversation, asker, text, approval.deadline, json.dumps(address),
                 self._clock()),
            )  # fmt: skip
        self._waiting[approval.id] = approval
        self._changed.set()
        return approval

    async def shown(self, approval: Approval, message: Any) -> Approval:
        """Record where the request is shown (its message), so it can be settled after a restart."""
        async with self._store.transaction() as tx:
            await tx.execute(
                "UPDATE livebot_approvals SET message = ? WHERE id = ?", (json.dumps(message), approval.id)
            )
        approval = replace(approval, message=message)
        if approval.id in self._waiting:
            self._waiting[approval.id] = approval
        else:  # a press came as soon as the buttons showed: its decision is queued behind this reply
            self._messages[approval.id] = message
        return approval

    def take(self, approval_id: str, *, pressed: Any = None) -> Approval | None:
        """Take the approval out of the waiting ones, to decide it: only the first taker gets it.

        Args:
            approval_id: The approval.
            pressed: The message whose button was pressed: the request, also when the bot went down before it
                recorded where the request is.
        """
        approval = self._waiting.pop(approval_id, None)
        if approval is None:
            return None
        self._changed.set()
        if approval.message is None and pressed is not None:
            approval = replace(approval, message=pressed)
        return approval

    async def record(self, approval: Approval, decision: Decision) -> Approval | None:
        """Write the decision, before the run goes on (so it is never resumed twice, a restart included); returns
        the approval with its message (which may have been recorded after it was taken), or None when a decision
        was written already (by another replica sharing the store): that one counts, this one is dropped."""
        outcome = "approved" if decision.approve else ("denied" if decision.resume else "cancelled")
        message = self._messages.pop(approval.id, approval.message)
        async with self._store.transaction() as tx:
            won = await tx.fetchall(
                "UPDATE livebot_approvals SET decided = ?, note = ? WHERE id = ? AND decided IS NULL RETURNING id",
                (outcome, decision.note, approval.id),
            )
        if not won:
            log.info("%s: approval %s was decided elsewhere first", approval.conversation, approval.id)
            return None
        return replace(approval, message=message)

    async def watch(self, expire: Callable[[Approval], object]) -> None:
        """Call `expire` for each approval whose deadline passes (at once for those that passed while the bot was
        down), until cancelled; `expire` decides it (and so takes it)."""
        while True:
            self._changed.clear()
            now = self._clock()
            for approval in [a for a in self._waiting.values() if a.deadline <= now]:
                log.info("%s: approval %s expired", approval.conversation, approval.id)
                expire(approval)
                self._waiting.pop(approval.id, None)  # (in case `expire` did not take it)
            soonest = min((a.deadline for a in self._waiting.values()), default=None)
            timeout = None if soonest is None else max(soonest - self._clock(), 0.0) + 0.01
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout)


async def open_approvals(store: Store, data_dir: Path, channel: str, timeout: float) -> Approvals:
    """`channel`'s approvals in `store` (the table set up, those an earlier version kept in
    `data_dir / "approvals.sqlite"` imported), with the waiting ones loaded."""
    await store.migrate(SCHEMA)
    await import_file(  # the ids are random tokens: an import repeated after a crash skips what it has
        store,
        data_dir / LEGACY_FILE,
        f"SELECT {_COLUMNS} FROM approvals WHERE decided IS NULL",
        f"INSERT INTO livebot_approvals ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
    )
    approvals = Approvals(store, channel, timeout)
    await approvals.load()
    return approvals
